#!/usr/bin/env python3
"""Side-by-side check of `hood eval --json` against tools/train/evaluate.py --json on the same
images (issue #6's acceptance: |ΔAUROC| ≤ 0.002 and |ΔFPR95| ≤ 0.5 percentage points per OOD set).
With both score CSVs it also reports the largest per-image |Δscore| and class disagreements.

    python tools/train/compare_eval.py PT.json HOOD.json [--pt-csv PT.csv --hood-csv HOOD.csv]

Prints a Markdown table; exit status 1 when a bound is exceeded or the image counts differ.
"""
import argparse
import csv
import json
import sys

AUROC_TOL = 0.002
FPR95_TOL = 0.005


def per_image(path):
    with open(path, newline="") as f:
        return {(r["set"], r["path"]): (int(r["class"]), float(r["score"]))
                for r in csv.DictReader(f)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pt")
    ap.add_argument("hood")
    ap.add_argument("--pt-csv")
    ap.add_argument("--hood-csv")
    a = ap.parse_args()
    pt = json.load(open(a.pt))
    hd = json.load(open(a.hood))
    hood_ood = {o["name"]: o for o in hd["ood"]}
    ok = True
    print(f"ID: {pt['id']['n']} images (PyTorch), {hd['id']['images']} (hood {hd['backend']})")
    if pt["id"]["n"] != hd["id"]["images"]:
        ok = False
    if "accuracy" in pt["id"]:
        print(f"accuracy: PyTorch {100 * pt['id']['accuracy']:.2f} %, hood "
              f"{100 * (hd['id']['accuracy'] or 0):.2f} %")
    print("\n| OOD set | n | AUROC PyTorch | AUROC hood | FPR95 PyTorch | FPR95 hood | "
          "AUPR-In PyTorch | AUPR-In hood | AUPR-Out PyTorch | AUPR-Out hood |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in pt["ood"].items():
        h = hood_ood.get(name)
        if h is None:
            print(f"| {name} | missing in hood's output |")
            ok = False
            continue
        bad = (abs(m["auroc"] - h["auroc"]) > AUROC_TOL or abs(m["fpr95"] - h["fpr95"]) > FPR95_TOL
               or m["n_ood"] != h["images"])
        ok &= not bad
        print(f"| {name}{' **EXCEEDS**' if bad else ''} | {h['images']} | {m['auroc']:.4f} | "
              f"{h['auroc']:.4f} | {100 * m['fpr95']:.2f} % | {100 * h['fpr95']:.2f} % | "
              f"{m['aupr_in']:.4f} | {h['aupr_in']:.4f} | {m['aupr_out']:.4f} | "
              f"{h['aupr_out']:.4f} |")
    if a.pt_csv and a.hood_csv:
        p, h = per_image(a.pt_csv), per_image(a.hood_csv)
        common = p.keys() & h.keys()
        d = max((abs(p[k][1] - h[k][1]) for k in common), default=float("nan"))
        disagree = sum(p[k][0] != h[k][0] for k in common)
        print(f"\nper image: {len(common)} matched, max |Δscore| {d:.2e}, "
              f"{disagree} class disagreements")
        if len(common) != len(p) or len(common) != len(h):
            print(f"unmatched rows: PyTorch {len(p) - len(common)}, hood {len(h) - len(common)}")
            ok = False
    print(f"\nbounds (|ΔAUROC| ≤ {AUROC_TOL}, |ΔFPR95| ≤ {100 * FPR95_TOL} pp): "
          f"{'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
