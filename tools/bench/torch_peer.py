#!/usr/bin/env python3
"""PyTorch peer timing of the ResNet-18 CIFAR-10 HEAT pipeline on a CUDA GPU, and the same model as
a `.hood` for `hood bench` in the same run (docs/BENCHMARKS.md, NVIDIA section).

The model is tools/bench/heat_pipeline.py's `build` (full-width ResNet-18 + head + decoder, random
weights, seed 0), written in the authors' layout and converted with `convert`. Timed region per
batch, as issue #4's reference points: a host float32 batch in, → GPU, classifier → argmax →
decoder → score, scores back on the host (`.cpu()`), in
* eager fp16 channels_last (autocast off: the modules are cast to half), and
* the same in one CUDA graph (static input buffer; the host copy-in and copy-out stay outside the
  graph but inside the timed region).

    python3 tools/bench/torch_peer.py --convert path/to/convert --work $WORK/peer --json out.json

($WORK: any scratch folder; without --work the script uses /tmp/hood-torch-peer.)
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from heat_pipeline import MAX, MIN, build  # noqa: E402


class Pipeline(torch.nn.Module):
    def __init__(self, cls, dec):
        super().__init__()
        self.cls, self.dec = cls, dec

    def forward(self, x):
        z, logits = self.cls(x)
        k = logits.argmax(1)
        onehot = torch.nn.functional.one_hot(k, 10).to(z.dtype)
        score, _ = self.dec(z, onehot)
        return score


def timed(fn, iters, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return {"p50_ms": ts[len(ts) // 2], "p99_ms": ts[min(len(ts) - 1, int(len(ts) * 0.99))],
            "mean_ms": sum(ts) / len(ts), "iters": iters}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--convert", required=True)
    ap.add_argument("--work", default="/tmp/hood-torch-peer")
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    cls, dec = build(a.work)
    model = os.path.join(a.work, "resnet18_c10_full.hood")
    subprocess.run([a.convert, os.path.join(a.work, "classifier.pt"),
                    os.path.join(a.work, "decoder.pt"), model], check=True,
                   stdout=subprocess.DEVNULL)
    out = {"model": model, "min": MIN, "max": MAX, "torch": torch.__version__}
    if not torch.cuda.is_available():
        out["results"] = {}
        out["note"] = "no CUDA device: the model was written, the peers were not timed"
        print(json.dumps(out))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        return
    dev = torch.device("cuda")
    out["gpu"] = torch.cuda.get_device_name()
    pipe = Pipeline(cls, dec).to(dev).half().to(memory_format=torch.channels_last).eval()
    res = {}
    with torch.no_grad():
        for n in [int(b) for b in a.batches.split(",")]:
            host = torch.rand(n, 3, 32, 32) * 2 - 1
            eager = timed(lambda: pipe(host.to(dev).half().contiguous(
                memory_format=torch.channels_last)).float().cpu(), a.iters)
            static = torch.zeros(n, 3, 32, 32, device=dev, dtype=torch.half).contiguous(
                memory_format=torch.channels_last)
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    pipe(static)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static_out = pipe(static)

            def graphed():
                static.copy_(host.to(dev).half())
                g.replay()
                return static_out.float().cpu()

            graph = timed(graphed, a.iters)
            for r in (eager, graph):
                r["images_per_s"] = n / (r["mean_ms"] / 1e3)
            res[n] = {"eager_fp16_channels_last": eager, "cuda_graph_fp16": graph}
            print(f"batch {n}: eager {eager['p50_ms']:.3f} ms ({eager['images_per_s']:.0f} img/s),"
                  f" graph {graph['p50_ms']:.3f} ms ({graph['images_per_s']:.0f} img/s)",
                  flush=True)
    out["results"] = res
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
