"""hood vs ncnn on the same HEAT pipeline, in one run (for docs/BENCHMARKS.md).

Builds the ResNet-18 CIFAR-10 HEAT pipeline at full width (the authors' model: ResNet18 +
ResNet_Linear + ResNet18_CIFAR10_Deconv_GAN from tools/train/heat_models.py,
fw_layers 1; random weights, BatchNorm statistics from two random batches, seed 0), then

1. writes it as checkpoints in the authors' layout and converts them to a `.hood` with
   `convert` (target/release/convert; build it with `cargo build --release -p hood-convert`);
2. exports it with pnnx to ncnn as two nets: the classifier (image -> z, logits) and the
   decoder with the score (normalised z, one-hot class -> score, heatmap); argmax and one-hot
   run in numpy between them;
3. times ncnn (Vulkan and CPU, 2 threads) at batch 1 and 8 (ncnn has no batch dimension: a
   batch is n extractions, one image each) and `hood bench` (Vulkan and CPU) at batch 1 and 8,
   and prints ms/image for each.

ncnn's timed region per batch: for every image, numpy -> ncnn.Mat, classifier extraction,
argmax + one-hot, decoder extraction, score out. hood's: see `hood bench --help`
(normalised tensor in, scores out).

Usage (repository root; needs `pip install ncnn pnnx` in /opt/hood-venv):

    /opt/hood-venv/bin/python tools/bench/ncnn_peer.py --hood /work/target-vk/debug/hood \
        [--work /tmp/hood-ncnn-peer] [--iters 5]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(ROOT, "tools/train"))
from heat_models import ResNet18, ResNet18_CIFAR10_Deconv_GAN, ResNet_Linear  # noqa: E402

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
    (z - min) / (max - min), is folded into fc1 (as hood's converter does; it also keeps
    ncnn's CPU BinaryOp-with-scalar on a 1-D blob, which crashes in ncnn 1.0.20261020, out
    of the graph)."""

    def __init__(self, dec):
        super().__init__()
        self.dec = dec
        nz = dec.fc1.in_features - dec.num_classes
        self.fc1 = nn.Linear(dec.fc1.in_features, dec.fc1.out_features)
        with torch.no_grad():
            w = dec.fc1.weight.clone()
            self.fc1.bias.copy_(dec.fc1.bias - MIN / (MAX - MIN) * w[:, :nz].sum(dim=1))
            w[:, :nz] /= MAX - MIN
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
    torch.manual_seed(0)
    enc, head = ResNet18(fw_layers=1, img_size=32), ResNet_Linear(num_classes=10)
    dec = ResNet18_CIFAR10_Deconv_GAN(fw_layers=1)
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


def export_ncnn(cls, dec, work):
    import pnnx
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    z = torch.rand(1, 512)
    oh = torch.zeros(1, 10)
    oh[0, 3] = 1
    cwd = os.getcwd()
    os.chdir(work)  # pnnx writes its side files next to the cwd
    try:
        pnnx.export(cls, "cls.pt", (x,))
        pnnx.export(dec, "dec.pt", (z, oh))
    finally:
        os.chdir(cwd)
    return [os.path.join(work, n) for n in ("cls.ncnn", "dec.ncnn")]


def ncnn_net(prefix, vulkan):
    import ncnn
    net = ncnn.Net()
    net.opt.use_vulkan_compute = vulkan
    net.opt.num_threads = 2
    net.load_param(prefix + ".param")
    net.load_model(prefix + ".bin")
    return net


def ncnn_batch(cnet, dnet, images):
    import ncnn
    scores = []
    for img in images:
        ex = cnet.create_extractor()
        ex.input("in0", ncnn.Mat(img))
        _, z = ex.extract("out0")
        _, logits = ex.extract("out1")
        k = int(np.argmax(np.array(logits).reshape(-1)))
        onehot = np.zeros(10, dtype=np.float32)
        onehot[k] = 1.0
        ed = dnet.create_extractor()
        ed.input("in0", ncnn.Mat(np.array(z).reshape(-1).copy()))
        ed.input("in1", ncnn.Mat(onehot))
        _, s = ed.extract("out0")
        scores.append(float(np.array(s).reshape(-1)[0]))
    return scores


def time_ncnn(prefixes, vulkan, batches, iters):
    cnet, dnet = (ncnn_net(p, vulkan) for p in prefixes)
    rng = np.random.default_rng(0)
    out = {}
    for n in batches:
        imgs = [(rng.random((3, 32, 32), dtype=np.float32) * 2 - 1) for _ in range(n)]
        ncnn_batch(cnet, dnet, imgs)  # warm-up (pipeline creation, uploads)
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter()
            ncnn_batch(cnet, dnet, imgs)
            ts.append((time.perf_counter() - t0) * 1e3)
        ts.sort()
        out[n] = {"p50_ms": ts[len(ts) // 2], "mean_ms": sum(ts) / len(ts)}
    return out


def time_hood(hood, model, backend, batches, iters):
    cmd = [hood, "bench", model, "--backend", backend, "--batch", ",".join(map(str, batches)),
           "--iters", str(iters), "--warmup", "1", "--json"]
    print("$", " ".join(cmd), flush=True)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = {}
    for line in res.stdout.splitlines():
        r = json.loads(line)
        if r["backend"] != backend:
            raise SystemExit(f"hood ran on {r['backend']}, asked for {backend}")
        out[r["batch"]] = r
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hood", default=os.path.join(ROOT, "target/release/hood"),
                    help="hood binary built with --features vulkan")
    ap.add_argument("--convert", default=os.path.join(ROOT, "target/release/convert"))
    ap.add_argument("--work", default="/tmp/hood-ncnn-peer")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--skip", default="", help="comma list of runs to skip: "
                    "ncnn-vulkan,ncnn-cpu,hood-vulkan,hood-cpu")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    skip = set(filter(None, a.skip.split(",")))
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(2)
    cls, dec = build(a.work)
    model = os.path.join(a.work, "resnet18_c10_full.hood")
    cmd = [a.convert, os.path.join(a.work, "classifier.pt"), os.path.join(a.work, "decoder.pt"),
           model]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    prefixes = export_ncnn(cls, dec, a.work)

    import ncnn
    print(f"ncnn {ncnn.__version__}, GPUs: {ncnn.get_gpu_count()}", flush=True)
    results = {}
    for name, fn in [
        ("hood-vulkan", lambda: time_hood(a.hood, model, "vulkan", batches, a.iters)),
        ("hood-cpu", lambda: time_hood(a.hood, model, "cpu", batches, a.iters)),
        ("ncnn-vulkan", lambda: time_ncnn(prefixes, True, batches, a.iters)),
        ("ncnn-cpu", lambda: time_ncnn(prefixes, False, batches, a.iters)),
    ]:
        if name in skip:
            continue
        results[name] = fn()
        for n in batches:
            r = results[name][n]
            print(f"{name:<12} batch {n:>3}: p50 {r['p50_ms']:9.2f} ms/batch "
                  f"{r['p50_ms'] / n:9.2f} ms/image", flush=True)
    print("\nms per image (p50 of the batch / batch size)")
    print(f"{'batch':>6} " + " ".join(f"{k:>12}" for k in results))
    for n in batches:
        print(f"{n:>6} " + " ".join(f"{results[k][n]['p50_ms'] / n:>12.2f}" for k in results))


if __name__ == "__main__":
    main()
