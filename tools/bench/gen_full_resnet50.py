"""Writes a full-size ResNet-50 Tiny ImageNet HEAT checkpoint pair (authors' layout, random
weights with BatchNorm statistics from a few random batches) for timing `convert` on a
realistically large model. Not committed (≈ 300 MB). Usage:

    $VENV/bin/python tools/bench/gen_full_resnet50.py $WORK/r50full

($VENV: a Python virtual environment with torch, outside the repository; $WORK: any scratch
folder. Without an argument the files go to /tmp/r50full.)

Architectures from tools/train/heat_models.py (base width 64 = the authors' model).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tools/train"))
from heat_models import ResNet50, ResNet_Linear, TImageNet_Deconv_GAN  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/r50full"
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
enc, head = ResNet50(fw_layers=1, img_size=64), ResNet_Linear(num_classes=200, expansion=4)
dec = TImageNet_Deconv_GAN(fw_layers=1)
for m in (enc, dec):
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None
enc.train()
with torch.no_grad():
    for _ in range(2):
        enc(torch.rand(16, 3, 64, 64) * 2 - 1)
torch.save({"net_state_dict": enc.state_dict(), "cls_state_dict": head.state_dict()},
           os.path.join(out, "classifier.pt"))
snap = {"min": 0.0, "max": 5.0}
for e in (129, 139, 149):
    snap[e] = {"generator": dec.state_dict()}
torch.save(snap, os.path.join(out, "decoder.pt"))
with open(os.path.join(out, "config.txt"), "w") as f:
    f.write("{'id_dataset': 'tinyimagenet', 'num_classes': 200, 'arch': 'resnet50', 'fw_layers': 1}\n")
print("wrote", out)
