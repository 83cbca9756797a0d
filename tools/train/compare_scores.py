#!/usr/bin/env python3
"""Compares two tools' per-image HEAT outputs on the same images: a CSV `path,class,score` (as
`tch-train predict` writes) against `hood infer --json` lines. Standard library only.

    python3 tools/train/compare_scores.py tch.csv hood.jsonl [--max-dscore 2e-3] [--label TEXT]
        [--report-only]

Prints the image count, class agreement and the max / median |Δscore|; exits 1 when an image is
missing from either side, a class differs, or max |Δscore| exceeds --max-dscore.
"""
import argparse
import csv
import json
import os
import statistics
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("jsonl")
    ap.add_argument("--max-dscore", type=float, default=2e-3)
    ap.add_argument("--label", default="hood vs tch")
    ap.add_argument("--report-only", action="store_true", help="print, never fail")
    a = ap.parse_args()
    with open(a.csv, newline="") as f:
        ref = {os.path.realpath(r["path"]): (int(r["class"]), float(r["score"]))
               for r in csv.DictReader(f)}
    got = {}
    with open(a.jsonl) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                got[os.path.realpath(j["path"])] = (int(j["class"]), float(j["score"]))
    missing = sorted(set(ref) ^ set(got))
    common = sorted(set(ref) & set(got))
    if not common:
        sys.exit(f"{a.label}: no image in both {a.csv} and {a.jsonl}")
    diff_cls = [p for p in common if ref[p][0] != got[p][0]]
    ds = [abs(ref[p][1] - got[p][1]) for p in common]
    print(f"{a.label}: {len(common)} images, classes agree on {len(common) - len(diff_cls)}, "
          f"max |Δscore| {max(ds):.2e}, median {statistics.median(ds):.2e} "
          f"(bound {a.max_dscore:.0e})")
    bad = []
    if missing:
        bad.append(f"{len(missing)} images on one side only, e.g. {missing[0]}")
    if diff_cls:
        bad.append(f"{len(diff_cls)} class differences, e.g. {diff_cls[0]}")
    if max(ds) > a.max_dscore:
        bad.append(f"max |Δscore| {max(ds):.2e} > {a.max_dscore:.0e}")
    if bad and a.report_only:
        print(f"{a.label}: (report only) " + "; ".join(bad))
    elif bad:
        sys.exit(f"{a.label}: " + "; ".join(bad))


if __name__ == "__main__":
    main()
