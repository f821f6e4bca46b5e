"""What the benchmarks' reports share: reading one pipeline's measurements
(hyperfine's JSON export and GNU time's output) and writing times and sizes."""

import json
import re
import statistics


def seconds(s):
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.2f} s"
    if s < 100:
        return f"{s:.1f} s"
    m, r = divmod(round(s), 60)
    return f"{m} min {r:02d} s"


def mb(b):
    return "–" if b is None else f"{b / 1e6:.0f} MB"


def load(res, key, n):
    """Pipeline KEY at size N from RESULTS_DIR res: KEY-N.json (hyperfine
    --export-json) and KEY-N.time (/usr/bin/time -v of every measured run)."""
    path = res / f"{key}-{n}.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())["results"][0]
    rss = []
    tpath = res / f"{key}-{n}.time"
    if tpath.exists():
        rss = [
            int(m.group(1)) * 1024
            for m in re.finditer(
                r"Maximum resident set size \(kbytes\): (\d+)", tpath.read_text()
            )
        ]
    return {
        "runs": len(r["times"]),
        "wall": statistics.median(r["times"]),
        "min": min(r["times"]),
        "max": max(r["times"]),
        # hyperfine exports the mean user and system time over the runs.
        "cpu": r["user"] + r["system"],
        "rss": max(rss) if rss else None,
    }


def table(data, sizes, pipelines):
    """The Markdown rows of every pipeline at every size: data maps (KEY,
    N) to what load() read, pipelines is [(KEY, label)]."""
    out = [
        "| nodes | pipeline | runs | wall, median (min–max) | CPU user+sys, mean | peak RSS |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for n in sizes:
        for key, label in pipelines:
            d = data[(key, n)]
            if d is None:
                continue
            spread = f"{seconds(d['wall'])} ({seconds(d['min'])}–{seconds(d['max'])})"
            if d["runs"] == 1:
                spread = seconds(d["wall"])
            out.append(
                f"| {n} | {label} | {d['runs']} | {spread} | {seconds(d['cpu'])} | {mb(d['rss'])} |"
            )
    return out
