#!/usr/bin/env python3
"""Turns one run's measurements into the Markdown report.

    report.py RESULTS_DIR SIZES TITLE

RESULTS_DIR holds, per pipeline KEY (A, B, C, Cre) and size N:
  KEY-N.json   hyperfine --export-json
  KEY-N.time   /usr/bin/time -v of every measured run, appended
and machine.txt ("Label: value" lines, in order). Prints the report.
"""

import json
import re
import statistics
import sys
from pathlib import Path

PIPELINES = [
    ("A", "A by hand (cfssl, tar, dpkg-deb, rpmbuild)"),
    ("B", "B nfpm (cfssl, tar, nfpm)"),
    ("C", "C etcdpack gen"),
    ("Cre", "C etcdpack gen, unchanged rerun"),
]


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


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    x = a / b
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def load(res, key, n):
    path = res / f"{key}-{n}.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())["results"][0]
    rss = []
    tpath = res / f"{key}-{n}.time"
    if tpath.exists():
        rss = [
            int(m.group(1))
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
        "rss_kib": max(rss) if rss else None,
    }


def main():
    res = Path(sys.argv[1])
    sizes = [int(s) for s in sys.argv[2].split(",")]
    title = sys.argv[3]
    out = [f"# {title}", ""]

    data = {(k, n): load(res, k, n) for n in sizes for k, _ in PIPELINES}

    out += [
        "| nodes | pipeline | runs | wall, median (min–max) | wall ÷ C | CPU user+sys, mean | peak RSS |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for n in sizes:
        c = data[("C", n)]
        for key, label in PIPELINES:
            d = data[(key, n)]
            if d is None:
                continue
            spread = f"{seconds(d['wall'])} ({seconds(d['min'])}–{seconds(d['max'])})"
            if d["runs"] == 1:
                spread = seconds(d["wall"])
            rss = "–" if d["rss_kib"] is None else f"{d['rss_kib'] / 1024:.0f} MiB"
            out.append(
                f"| {n} | {label} | {d['runs']} | {spread} | "
                f"{ratio(d['wall'], c and c['wall'])} | {seconds(d['cpu'])} | {rss} |"
            )

    out += [
        "",
        "Wall-time ratios (median ÷ median; above 1× means etcdpack was faster):",
        "",
        "| nodes | A / C | B / C | C rerun / C |",
        "|---:|---:|---:|---:|",
    ]
    for n in sizes:
        w = {k: (data[(k, n)] or {}).get("wall") for k, _ in PIPELINES}
        out.append(
            f"| {n} | {ratio(w['A'], w['C'])} | {ratio(w['B'], w['C'])} | {ratio(w['Cre'], w['C'])} |"
        )

    out += [
        "",
        "Peak RSS is that of the largest single process of the pipeline (GNU time's "
        "maximum resident set size over the pipeline's process tree, the maximum over "
        "the measured runs); A and B run many processes one after another, C one.",
        "",
        "Machine:",
        "",
    ]
    for line in (res / "machine.txt").read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.append(f"- {k.strip()}: {v.strip()}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
