#!/usr/bin/env python3
"""Per-image |Δscore| between two `hood eval --csv` files of the same images (e.g. the CPU
reference and a Vulkan kernel variant): count, percentiles, maximum, and how many images change
class.

    python3 tools/bench/score_delta.py REFERENCE.csv OTHER.csv [LABEL]

The CSVs are `path,set,class,score` (hood eval --csv). Every path must be in both files.
Prints one Markdown table row: | LABEL | images | p50 | p90 | p99 | max | class changes |
"""
import csv
import sys


def read(path):
    with open(path, newline="") as f:
        return {r["path"]: (int(r["class"]), float(r["score"])) for r in csv.DictReader(f)}


def percentile(sorted_values, q):
    # Nearest rank, as numpy's "lower" method: the value below which a fraction q lies.
    i = min(len(sorted_values) - 1, max(0, int(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ref, other = read(sys.argv[1]), read(sys.argv[2])
    label = sys.argv[3] if len(sys.argv) > 3 else sys.argv[2]
    if set(ref) != set(other):
        sys.exit(f"score_delta: the two files score different images ({len(ref)} vs {len(other)})")
    if not ref:
        sys.exit("score_delta: no images")
    deltas = sorted(abs(ref[p][1] - other[p][1]) for p in ref)
    changes = sum(ref[p][0] != other[p][0] for p in ref)
    cells = [label, str(len(deltas))] + [f"{percentile(deltas, q):.2e}" for q in (0.5, 0.9, 0.99)]
    cells += [f"{deltas[-1]:.2e}", str(changes)]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
