"""The PyTorch side of the peer benchmarks (ncnn_peer.py, torch_peer.py): the HEAT pipelines they
time, as PyTorch modules, and their ncnn export.

* `build(work)`: the ResNet-18 CIFAR-10 HEAT pipeline at full width (the authors' model:
  ResNet18 + ResNet_Linear + ResNet18_CIFAR10_Deconv_GAN from tools/train/heat_models.py,
  fw_layers 1; random weights, BatchNorm statistics from two random batches, seed 0), written
  to WORK as checkpoints in the authors' layout (classifier.pt, decoder.pt, config.txt).
* `load(run_dir)`: any checkpoint directory in the authors' layout (the one `build` writes, or
  models/heat-wrn40-2-cifar10/), loaded with tools/train/evaluate.py's `load_run`.
* `split(...)`: the pipeline as two modules for ncnn, which has no argmax between nets: the
  classifier (image -> z, logits) and the decoder with the score (z, one-hot -> score, heatmap).
* `export_ncnn(...)`: both through pnnx to ncnn (cls.ncnn.*, dec.ncnn.* in a folder).
"""
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(ROOT, "tools/train"))
import heat_models as M  # noqa: E402

# The feature range `build` writes into decoder.pt.
MIN, MAX = 0.0, 5.0


class Classifier(nn.Module):
    def __init__(self, enc, head):
        super().__init__()
        self.enc, self.head = enc, head

    def forward(self, x):
        z = self.enc(x)
        return z, self.head(z)


class DecoderScore(nn.Module):
    """(z, one-hot) -> (score [N], heatmap [N, H, W]). The authors' normalisation of z,
    (z - lo) / (hi - lo), is folded into fc1 (as hood's converter does; it also keeps
    ncnn's CPU BinaryOp-with-scalar on a 1-D blob, which crashes in ncnn 1.0.20261020, out
    of the graph)."""

    def __init__(self, dec, lo=MIN, hi=MAX):
        super().__init__()
        self.dec = dec
        self.nz = dec.fc1.in_features - dec.num_classes
        nz = self.nz
        self.fc1 = nn.Linear(dec.fc1.in_features, dec.fc1.out_features)
        with torch.no_grad():
            w = dec.fc1.weight.clone()
            self.fc1.bias.copy_(dec.fc1.bias - lo / (hi - lo) * w[:, :nz].sum(dim=1))
            w[:, :nz] /= hi - lo
            self.fc1.weight.copy_(w)

    def forward(self, z, onehot):
        x = torch.cat((z, onehot), dim=1)
        x = self.fc1(x).view(-1, self.dec.lat, 1, 1)
        for i in range(len(self.dec.num_filters)):
            x = getattr(self.dec, "conv_block%d" % (i + 1))(x)
        h = getattr(self.dec, self.dec.final_block_name)(x)
        heat = torch.amax(torch.abs(h), dim=1)
        return torch.mean(heat, dim=(1, 2)), heat


def build(work):
    """Writes the full-width ResNet-18 pipeline's checkpoints to `work`; returns it as
    (Classifier, DecoderScore) in eval mode."""
    torch.manual_seed(0)
    enc, head = M.ResNet18(fw_layers=1, img_size=32), M.ResNet_Linear(num_classes=10)
    dec = M.ResNet18_CIFAR10_Deconv_GAN(fw_layers=1)
    for m in (enc, dec):
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = None
    enc.train()
    with torch.no_grad():
        for _ in range(2):
            enc(torch.rand(16, 3, 32, 32) * 2 - 1)
    enc.eval(), head.eval(), dec.eval()
    torch.save({"net_state_dict": enc.state_dict(), "cls_state_dict": head.state_dict()},
               os.path.join(work, "classifier.pt"))
    torch.save({"min": MIN, "max": MAX, 149: {"generator": dec.state_dict()}},
               os.path.join(work, "decoder.pt"))
    with open(os.path.join(work, "config.txt"), "w") as f:
        f.write("{'id_dataset': 'cifar10', 'num_classes': 10, 'arch': 'resnet18', "
                "'z_dim': 522, 'fw_layers': 1}\n")
    return Classifier(enc, head).eval(), DecoderScore(dec).eval()


def load(run_dir):
    """evaluate.load_run on the CPU: (cfg, enc, head, dec, min, max, decoder epoch)."""
    import evaluate  # here, not at the top: it needs scikit-learn, `build` does not

    run = evaluate.load_run(run_dir, torch.device("cpu"))
    if int(run[0]["fw_layers"]) != 1:
        raise SystemExit(f"{run_dir}: fw_layers {run[0]['fw_layers']}, the peers need 1")
    return run


def split(run):
    """A loaded run as (Classifier, DecoderScore) for the ncnn export."""
    _, enc, head, dec, lo, hi, _ = run
    return Classifier(enc, head).eval(), DecoderScore(dec, lo, hi).eval()


def export_ncnn(cls, dec, out_dir, size=32):
    """pnnx export of both halves into `out_dir` (its log in out_dir/pnnx.log); returns the two
    ncnn prefixes (classifier, decoder) — each has a .param and a .bin."""
    import pnnx
    x = torch.rand(1, 3, size, size) * 2 - 1
    z = torch.rand(1, dec.nz)
    oh = torch.zeros(1, dec.dec.num_classes)
    oh[0, 0] = 1
    cwd = os.getcwd()
    os.chdir(out_dir)  # pnnx writes its side files next to the cwd
    # pnnx logs every pass from C++; keep that in out_dir/pnnx.log.
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open("pnnx.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1), os.dup2(log, 2)
    try:
        pnnx.export(cls, "cls.pt", (x,))
        pnnx.export(dec, "dec.pt", (z, oh))
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)
        os.chdir(cwd)
    return [os.path.join(out_dir, n) for n in ("cls.ncnn", "dec.ncnn")]
