#!/usr/bin/env python3
"""Independent check for the Slurm CI step: every n in 1..N appears exactly once.

Reads volley's JSONL outputs (one per array task), counts each line's "n", and
fails (exit 1) naming the missing and doubled n, or a line that is not JSON.
Kept apart from `volley report --expect` on purpose, so a bug there cannot hide a
lost or doubled target.

usage: exactly_once.py N FILE...
"""
import json
import sys


def main():
    n_max, files = int(sys.argv[1]), sys.argv[2:]
    seen = [0] * (n_max + 1)
    bad = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                try:
                    n = json.loads(line)["n"]
                except (ValueError, KeyError, TypeError):
                    print(f"{path}:{no}: not a result line: {line[:80]!r}")
                    bad += 1
                    continue
                if type(n) is not int or not 1 <= n <= n_max:
                    print(f"{path}:{no}: n out of range: {n!r}")
                    bad += 1
                    continue
                seen[n] += 1
    missing = [n for n in range(1, n_max + 1) if seen[n] == 0]
    doubled = [n for n in range(1, n_max + 1) if seen[n] > 1]
    if missing:
        print(f"missing {len(missing)}: {missing[:20]}")
    if doubled:
        print(f"doubled {len(doubled)}: {doubled[:20]}")
    if missing or doubled or bad:
        sys.exit(1)
    print(f"exactly once: all {n_max} n across {len(files)} files")


if __name__ == "__main__":
    main()
