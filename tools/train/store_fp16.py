#!/usr/bin/env python3
"""Rewrites a HEAT checkpoint (classifier.pt or decoder.pt, the layouts train_heat.py writes) with
every floating-point tensor rounded to fp16, in place (temp file + rename).

A `.hood` holds fp16 weights, so converting the rounded file gives the same weights as converting
the fp32 original; the file is half the size. Integer tensors (`num_batches_tracked`) and plain
Python numbers (the decoder's `min` / `max`) are kept as they are.

    python3 tools/train/store_fp16.py models/heat-wrn40-2-cifar10/classifier.pt \
        models/heat-wrn40-2-cifar10/decoder.pt
"""
import os
import sys

import torch


def half(obj):
    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) is not dict else {}
        for k, v in obj.items():
            out[k] = half(v)
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata
        return out
    return obj


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        tmp = path + ".tmp"
        torch.save(half(ckpt), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
