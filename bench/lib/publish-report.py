#!/usr/bin/env python3
"""Turns one publish benchmark run's measurements into the Markdown report.

    publish-report.py RESULTS_DIR SIZES TITLE

RESULTS_DIR holds, per pipeline KEY (H, P, Pre) and size N:
  KEY-N.json   hyperfine --export-json
  KEY-N.time   /usr/bin/time -v of every measured run, appended
inputs.txt ("N deb-bytes rpm-bytes" lines) and machine.txt ("Label: value"
lines, in order). Prints the report; exits 3 when a target is missed.
"""

import sys
from pathlib import Path

from measured import load, mb, seconds, table

PIPELINES = [
    ("H", "by hand (apt-ftparchive, gpg, rpmsign, createrepo_c)"),
    ("P", "etcdpack publish, empty repository"),
    ("Pre", "etcdpack publish, unchanged republish"),
]
# The targets: by hand ÷ publish at least, publish's peak RSS at most (bytes),
# republish ÷ publish at most.
SPEEDUP = 3.0
RSS_MAX = 150_000_000
REPUBLISH_MAX = 0.05


def mark(ok):
    return "PASS" if ok else "**FAIL**"


def main():
    res = Path(sys.argv[1])
    sizes = [int(s) for s in sys.argv[2].split(",")]
    title = sys.argv[3]
    out = [f"# {title}", ""]
    data = {(k, n): load(res, k, n) for n in sizes for k, _ in PIPELINES}

    out += table(data, sizes, PIPELINES)

    missed = False
    out += [
        "",
        f"Targets (wall: median ÷ median): by hand ÷ publish at least {SPEEDUP:.0f}×, "
        f"publish's peak RSS at most {RSS_MAX // 1_000_000} MB, "
        f"unchanged republish ÷ publish at most {REPUBLISH_MAX:.0%}:",
        "",
        f"| nodes | by hand ÷ publish (≥ {SPEEDUP:.0f}×) | peak RSS of publish and republish "
        f"(≤ {RSS_MAX // 1_000_000} MB) | republish ÷ publish (≤ {REPUBLISH_MAX:.0%}) |",
        "|---:|---:|---:|---:|",
    ]
    for n in sizes:
        h, p, pre = (data[(k, n)] for k, _ in PIPELINES)
        cells = []
        if h and p and p["wall"] > 0:
            x = h["wall"] / p["wall"]
            ok = x >= SPEEDUP
            cells.append(f"{x:.1f}× {mark(ok)}")
        else:
            ok = False
            cells.append("–")
        missed |= not ok
        rss = [d["rss"] for d in (p, pre) if d and d["rss"] is not None]
        ok = bool(rss) and max(rss) <= RSS_MAX
        cells.append(f"{mb(max(rss)) if rss else '–'} {mark(ok)}")
        missed |= not ok
        if p and pre and p["wall"] > 0:
            x = pre["wall"] / p["wall"]
            ok = x <= REPUBLISH_MAX
            cells.append(f"{x:.1%} {mark(ok)}")
        else:
            ok = False
            cells.append("–")
        missed |= not ok
        out.append(f"| {n} | " + " | ".join(cells) + " |")

    out += [
        "",
        "Peak RSS is GNU time's maximum resident set size, the maximum over the "
        "measured runs; for the pipeline by hand, which runs one tool after "
        "another, it is that of its largest single process (not a sum). "
        "MB are 10^6 bytes.",
        "",
        "Input (one `etcdpack gen` per size, deb and rpm, RSA-2048, no client "
        "certificates; every pipeline publishes the same files):",
        "",
    ]
    inputs = res / "inputs.txt"
    if inputs.exists():
        for line in inputs.read_text().splitlines():
            n, deb, rpm = (int(x) for x in line.split())
            if n in sizes:
                out.append(
                    f"- {n} nodes: {n} .deb ({mb(deb)}) and {n} .rpm ({mb(rpm)})"
                )
    out += ["", "Machine:", ""]
    for line in (res / "machine.txt").read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.append(f"- {k.strip()}: {v.strip()}")
    print("\n".join(out))
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
