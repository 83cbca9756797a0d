#!/usr/bin/env python3
"""Writes image folders (one sub-folder per class, 32×32 images) as CIFAR-10's python batches:
OUT/data_batch_1..5, test_batch, batches.meta (heat_data.write_cifar_batches). For tests of the
trainers' CIFAR readers on data that is not CIFAR-10 (scripts/tch_journey.sh).

    python3 tools/train/to_cifar_batches.py --train DIR --test DIR --out OUT
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heat_data as D  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tr_paths, tr_y, classes = D.image_folder(a.train)
    te_paths, te_y, te_classes = D.image_folder(a.test)
    if te_classes != classes:
        raise SystemExit(f"{a.test}: classes {te_classes}, but {a.train} has {classes}")
    D.write_cifar_batches(D.load_paths(tr_paths, 32), tr_y, D.load_paths(te_paths, 32), te_y,
                          classes, a.out)
    print(f"{a.out}: {len(tr_paths)} training and {len(te_paths)} test images, "
          f"{len(classes)} classes")


if __name__ == "__main__":
    main()
