#!/usr/bin/env python3
"""Tests of heat_data.py's readers for a user's data: an image folder per class, CIFAR-10's
python batches (written here in the official format: protocol-2 pickles of dicts with bytes keys,
`data` N×3072 uint8 rows in channel-major order, `labels` a list), the unpickler's refusal of any
other global, and the held-out split. Needs numpy and Pillow (tools/train/requirements.txt).

    python3 tools/train/test_heat_data.py        # exits 1 on the first failure
"""
import os
import pickle
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heat_data as D  # noqa: E402


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def expect_exit(fn, what):
    try:
        fn()
    except SystemExit as e:
        check(True, f"{what} ({e})")
        return
    raise SystemExit(f"FAIL: {what}: no error")


def write_batch(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def main():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        # An image folder per class, with a hidden folder, a stray file and an empty class.
        root = os.path.join(tmp, "shapes")
        for cls, n in [("b-square", 3), ("a-circle", 2), ("c-empty", 0), (".hidden", 2)]:
            os.makedirs(os.path.join(root, cls, "nested"), exist_ok=True)
            for i in range(n):
                sub = "nested" if i == 0 else ""
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(img).save(os.path.join(root, cls, sub, f"{i}.png"))
        with open(os.path.join(root, "notes.txt"), "w") as f:
            f.write("not a class\n")
        paths, labels, classes = D.image_folder(root)
        check(classes == ["a-circle", "b-square"], f"classes sorted, hidden and empty skipped: "
                                                   f"{classes}")
        check(labels.tolist() == [0, 0, 1, 1, 1], f"labels follow the classes: {labels.tolist()}")
        check(all(p.startswith(os.path.join(root, classes[y])) for p, y in zip(paths, labels)),
              "each path under its class folder (nested folders included)")
        expect_exit(lambda: D.image_folder(os.path.join(root, "a-circle")),
                    "a folder without class sub-folders is refused")

        # CIFAR-10 python batches in the official format.
        cif = os.path.join(tmp, "cifar-10-batches-py")
        os.makedirs(cif)
        names = [b"airplane", b"automobile", b"bird"]
        write_batch(os.path.join(cif, "batches.meta"),
                    {b"label_names": names, b"num_cases_per_batch": 4, b"num_vis": 3072})
        want_x, want_y = [], []
        for b in D.CIFAR_TRAIN_BATCHES + ["test_batch"]:
            x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
            y = [int(v) for v in rng.integers(0, 3, 4)]
            write_batch(os.path.join(cif, b), {b"batch_label": b.encode(), b"labels": y,
                                               b"data": x, b"filenames": [b"f.png"] * 4})
            if b != "test_batch":
                want_x.append(x)
                want_y += y
        check(D.is_cifar_batches(cif) and not D.is_cifar_batches(root),
              "the python-version folder is recognised")
        u8, y, cls = D.cifar_batches(cif, "train")
        check(cls == ["airplane", "automobile", "bird"], f"class names from batches.meta: {cls}")
        check(u8.shape == (20, 32, 32, 3) and list(y) == want_y, "five batches, in order")
        row = np.concatenate(want_x)[7]
        check(np.array_equal(u8[7][:, :, 0].ravel(), row[:1024])
              and np.array_equal(u8[7][:, :, 2].ravel(), row[2048:]),
              "rows are channel-major: R plane, G plane, B plane")
        u8t, _, _ = D.cifar_batches(cif, "test")
        check(u8t.shape == (4, 32, 32, 3), "the test batch")
        out = os.path.join(tmp, "pngs")
        D.write_pngs(u8t, [0, 2, 2, 1], cls, out)
        back = np.asarray(Image.open(os.path.join(out, "bird", "00001.png")))
        check(np.array_equal(back, u8t[2]), "written as lossless PNGs, numbered per class")
        again = os.path.join(tmp, "again")
        D.write_cifar_batches(u8, y, u8t, [0, 2, 2, 1], cls, again)
        u8a, ya, clsa = D.cifar_batches(again, "train")
        u8ta, yta, _ = D.cifar_batches(again, "test")
        check(np.array_equal(u8a, u8) and list(ya) == list(y) and clsa == cls
              and np.array_equal(u8ta, u8t) and list(yta) == [0, 2, 2, 1],
              "write_cifar_batches writes what cifar_batches reads")

        # A pickle that names any other global is refused, not run.
        evil = os.path.join(tmp, "evil")
        os.makedirs(evil)
        for f in ["test_batch"] + D.CIFAR_TRAIN_BATCHES:
            os.symlink(os.path.join(cif, f), os.path.join(evil, f))
        marker = os.path.join(tmp, "ran")
        with open(os.path.join(evil, "batches.meta"), "wb") as f:
            f.write(b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR.")
        expect_exit(lambda: D.cifar_batches(evil, "train"), "a pickle calling os.system is refused")
        check(not os.path.exists(marker), "and nothing ran")
        with open(os.path.join(evil, "batches.meta"), "wb") as f:
            f.write(b"\x80\x02}q\x00")  # truncated
        expect_exit(lambda: D.cifar_batches(evil, "train"), "a truncated pickle is an error")

        # The held-out split: the last images of each class, at most a fifth of a class.
        lab = np.array([0] * 10 + [1] * 100 + [0] * 5)
        tr, va = D.split_val_labels(lab, 50)
        check(sorted(np.concatenate([tr, va]).tolist()) == list(range(len(lab))), "a partition")
        check(list(va[lab[va] == 0]) == [112, 113, 114] and (lab[va] == 1).sum() == 20,
              "last 3 of 15 (a fifth) and 20 of 100 (a fifth, under --val-per-class 50)")
    print("all heat_data tests passed")


if __name__ == "__main__":
    main()
