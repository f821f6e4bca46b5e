#!/usr/bin/env python3
"""Turns one scale benchmark run's measurements into the Markdown report.

    scale-report.py RESULTS_DIR SIZES TITLE

RESULTS_DIR holds, per pipeline KEY (gen, verify, floor) and size N:
  KEY-N.json    hyperfine --export-json
  KEY-N.time    /usr/bin/time -v of every measured run, appended
floor-N.parts (one line of JSON per floor run: its own keygen_s, hash_s and
total_s), outputs.txt ("N artifacts bytes" lines) and machine.txt ("Label:
value" lines, in order). Prints the report; exits 3 when a target is missed.
"""

import json
import statistics
import sys
from pathlib import Path

from measured import load, mb, seconds, table

PIPELINES = [
    ("gen", "etcdpack gen, empty output"),
    ("verify", "etcdpack verify of gen's output"),
    ("floor", "floor: RSA keys and SHA-256 on every core"),
]
# The targets: verify ÷ gen at most, verify's peak RSS at most (bytes), and
# at the largest size gen ÷ floor at most.
VERIFY_MAX = 1.0
RSS_MAX = 150_000_000
FLOOR_MAX = 1.5


def parts(res, n):
    """The floor's own clock, the median of each part over its runs."""
    path = res / f"floor-{n}.parts"
    if not path.exists():
        return None
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not runs:
        return None
    out = {k: statistics.median(r[k] for r in runs) for k in ("keygen_s", "hash_s", "total_s")}
    out.update({k: runs[0][k] for k in ("keys", "bytes", "streams", "threads")})
    return out


def mark(ok):
    return "PASS" if ok else "**FAIL**"


def main():
    res = Path(sys.argv[1])
    sizes = [int(s) for s in sys.argv[2].split(",")]
    title = sys.argv[3]
    largest = max(sizes)
    out = [f"# {title}", ""]
    data = {(k, n): load(res, k, n) for n in sizes for k, _ in PIPELINES}
    outputs = {}
    path = res / "outputs.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            n, count, size = (int(x) for x in line.split())
            outputs[n] = (count, size)

    out += table(data, sizes, PIPELINES)

    out += [
        "",
        "What gen wrote, and the floor's parts by its own clock (the median over its "
        "runs; its wall time above adds starting the process):",
        "",
        "| nodes | artifacts | total | floor: RSA-2048 keys | keygen | SHA-256 streams "
        "| hashing | keygen + hashing |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        count, size = outputs.get(n, (None, None))
        p = parts(res, n)
        cells = [
            str(n),
            "–" if count is None else str(count),
            mb(size),
        ]
        if p:
            cells += [
                str(p["keys"]),
                seconds(p["keygen_s"]),
                f"{p['streams']} × {p['bytes'] / p['streams'] / 1e6:.1f} MB"
                if p["streams"]
                else "–",
                seconds(p["hash_s"]),
                seconds(p["total_s"]),
            ]
        else:
            cells += ["–"] * 5
        out.append("| " + " | ".join(cells) + " |")

    missed = False
    out += [
        "",
        f"Targets (wall: median ÷ median): verify ÷ gen at most {VERIFY_MAX:.1f}, "
        f"verify's peak RSS at most {RSS_MAX // 1_000_000} MB, and at {largest} "
        f"nodes gen ÷ floor at most {FLOOR_MAX:.1f}×"
        + (" (at fewer nodes shown, not judged):" if len(sizes) > 1 else ":"),
        "",
        f"| nodes | verify ÷ gen (≤ {VERIFY_MAX:.1f}) | verify peak RSS "
        f"(≤ {RSS_MAX // 1_000_000} MB) | gen ÷ floor (≤ {FLOOR_MAX:.1f}× at {largest} nodes) |",
        "|---:|---:|---:|---:|",
    ]
    for n in sizes:
        g, v, f = (data[(k, n)] for k, _ in PIPELINES)
        cells = []
        if g and v and g["wall"] > 0:
            x = v["wall"] / g["wall"]
            ok = x <= VERIFY_MAX
            cells.append(f"{x:.2f} {mark(ok)}")
        else:
            ok = False
            cells.append("–")
        missed |= not ok
        ok = bool(v) and v["rss"] is not None and v["rss"] <= RSS_MAX
        cells.append(f"{mb(v and v['rss'])} {mark(ok)}")
        missed |= not ok
        x = g["wall"] / f["wall"] if g and f and f["wall"] > 0 else None
        if n == largest:
            ok = x is not None and x <= FLOOR_MAX
            missed |= not ok
            cells.append("–" if x is None else f"{x:.2f}× {mark(ok)}")
        else:
            cells.append("–" if x is None else f"{x:.2f}×")
        out.append(f"| {n} | " + " | ".join(cells) + " |")

    out += [
        "",
        "Peak RSS is GNU time's maximum resident set size, the maximum over the "
        "measured runs. The floor generates the CA's and every node's RSA-2048 key "
        "as etcdpack does (rcgen on aws-lc-rs) and hashes the artifacts' total size "
        "with sha2, one stream per artifact from memory, both on every core: it "
        "reads, compresses and writes nothing. MB are 10^6 bytes.",
        "",
        "Machine:",
        "",
    ]
    for line in (res / "machine.txt").read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.append(f"- {k.strip()}: {v.strip()}")
    print("\n".join(out))
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
