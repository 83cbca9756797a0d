#!/usr/bin/env python3
"""Fashion-MNIST test set (IDX, from Debian's `dataset-fashion-mnist`) → a folder of 32×32 RGB PNGs,
the far-OOD test set for CIFAR-10 models: grey replicated to 3 channels, zero-padded by 2 pixels on
each side (tools/train/README.md, "Data"). Both `hood eval` and tools/train/evaluate.py read the
folder, so they see identical pixels.

    python tools/train/export_fashion_mnist.py [--idx /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz] OUT_DIR
"""

import argparse
import gzip
import os
import struct

import numpy as np
from PIL import Image

DEFAULT = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def read_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 16:
        raise SystemExit(f"{path}: too short for an IDX header")
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x00000803:
        raise SystemExit(f"{path}: not an IDX3 uint8 image file (magic {magic:#x})")
    if len(data) != 16 + n * rows * cols:
        raise SystemExit(f"{path}: {len(data)} bytes, expected {16 + n * rows * cols}")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idx", default=DEFAULT)
    ap.add_argument("out")
    args = ap.parse_args()
    imgs = read_idx_images(args.idx)
    os.makedirs(args.out, exist_ok=True)
    for i, g in enumerate(imgs):
        rgb = np.repeat(np.pad(g, 2)[:, :, None], 3, axis=2)
        Image.fromarray(rgb).save(os.path.join(args.out, f"{i:05d}.png"))
    print(f"{len(imgs)} images → {args.out}")


if __name__ == "__main__":
    main()
