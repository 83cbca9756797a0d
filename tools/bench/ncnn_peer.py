"""hood vs ncnn vs PyTorch on the CPU, same HEAT pipelines, one run (for docs/BENCHMARKS.md).

Models (`--models`, both by default):
* resnet18: the full-width ResNet-18 CIFAR-10 pipeline with random weights that
  heat_pipeline.build writes (checkpoints in the authors' layout), converted to a `.hood` with
  `convert`;
* wrn40_2: the bundled demo, models/heat-wrn40-2-cifar10.hood and its checkpoints
  models/heat-wrn40-2-cifar10/ (loaded with tools/train/evaluate.py's load_run).
Both are exported with pnnx to ncnn as two nets: the classifier (image -> z, logits) and the
decoder with the score (z, one-hot class -> score, heatmap); argmax and one-hot run in numpy
between them.

Peers, for every model x batch (`--batches`) x thread count (`--threads`):
* hood cpu: `hood bench MODEL --backend cpu` with HOOD_CPU_THREADS=N, its p50 ms;
* hood reference: the same with `--backend reference`, `--ref-iters` timed iterations and no
  warm-up (plain loops: slow, nothing to warm up); `--no-reference` skips it;
* ncnn CPU: `opt.use_vulkan_compute = False`, `opt.num_threads = N`; a batch is n extractions,
  one image each (ncnn has no batch dimension); timed per batch: for every image numpy ->
  ncnn.Mat, classifier extraction, argmax + one-hot, decoder extraction, score out;
* PyTorch CPU: eager fp32, `torch.set_num_threads(N)`, `torch.inference_mode()`; a batch is
  one forward of n images through heat_models.heat_forward (classifier -> argmax -> decoder ->
  score, the authors' normalisation of z in the graph), scores out as numpy;
* with `--vulkan`: hood `--backend vulkan` (needs a hood built with the vulkan feature) and
  ncnn with `use_vulkan_compute = True`.
hood's timed region: `hood bench --help` (normalised tensor in, scores out, no heatmaps).
Inputs are normalised random images in [-1, 1).

Every peer measurement is its own process under `/usr/bin/time -f %M`, so its peak RSS is its
own (the Python peers' includes the interpreter and their imports; their RSS after the imports
is printed below the table and kept in the JSON). Peers are interleaved: each round runs every
configuration once with every peer (peer order rotated per round), and the table gives the
median over `--rounds` of each peer's p50, so drift of the machine hits all peers alike.
Before timing, one batch of 8 random PNGs is scored by `hood infer` (cpu, and reference unless
skipped), ncnn and PyTorch, and the largest |score difference| to hood cpu is printed.

Usage (repository root; a venv with tools/train/requirements.txt plus `pip install ncnn pnnx`,
and GNU time at /usr/bin/time):

    cargo build --release -p hood-cli --no-default-features --bin hood   # CPU-only hood
    cargo build --release -p hood-convert   # pulls hood-runtime's default vulkan feature (shaderc)
    $VENV/bin/python tools/bench/ncnn_peer.py --hood target/release/hood \
        --convert target/release/convert [--rounds 3] [--iters 10] [--ref-iters 1] \
        [--json peers.json] [--no-reference] [--vulkan] [--models resnet18,wrn40_2]

`--peer ncnn|torch` is the sub-mode each Python peer measurement runs in (one JSON line out).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))

WRN_HOOD = os.path.join(ROOT, "models/heat-wrn40-2-cifar10.hood")
WRN_CKPT = os.path.join(ROOT, "models/heat-wrn40-2-cifar10")
CHECK_BATCH = 8
# Largest |score difference| to hood cpu in the check before it warns (scores are in [0, 1]).
CHECK_TOL = 1e-3


def images(n, size, seed=0):
    """n normalised images [n, 3, size, size] in [-1, 1)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, size, size), dtype=np.float32) * 2 - 1


def rss_mb():
    """This process's peak RSS so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------
# ncnn
# ------------------------------------------------------------------------------------------------


def ncnn_net(prefix, vulkan, threads):
    import ncnn
    net = ncnn.Net()
    net.opt.use_vulkan_compute = vulkan
    net.opt.num_threads = threads
    net.load_param(prefix + ".param")
    net.load_model(prefix + ".bin")
    return net


def ncnn_batch(cnet, dnet, imgs):
    """Scores and classes of `imgs` ([n, 3, H, W]), one image per extraction."""
    import ncnn
    scores, classes = [], []
    for img in imgs:
        ex = cnet.create_extractor()
        ex.input("in0", ncnn.Mat(img))
        _, z = ex.extract("out0")
        _, logits = ex.extract("out1")
        logits = np.array(logits).reshape(-1)
        k = int(np.argmax(logits))
        onehot = np.zeros(len(logits), dtype=np.float32)
        onehot[k] = 1.0
        # ncnn.Mat(array) wraps the array's memory without copying: keep the array alive.
        z = np.array(z).reshape(-1).copy()
        ed = dnet.create_extractor()
        ed.input("in0", ncnn.Mat(z))
        ed.input("in1", ncnn.Mat(onehot))
        _, s = ed.extract("out0")
        scores.append(float(np.array(s).reshape(-1)[0]))
        classes.append(k)
    return np.array(scores), np.array(classes)


# ------------------------------------------------------------------------------------------------
# Peer sub-mode: one measurement in this process, one JSON line out
# ------------------------------------------------------------------------------------------------


def timed(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": statistics.median(ts), "mean_ms": sum(ts) / len(ts), "iters": iters}


def peer_main(a):
    x = images(a.batch, a.size)
    if a.peer == "ncnn":
        import ncnn  # noqa: F401
        base = rss_mb()
        cnet, dnet = (ncnn_net(os.path.join(a.net_dir, p), a.peer_vulkan, a.threads)
                      for p in ("cls.ncnn", "dec.ncnn"))
        imgs = [np.ascontiguousarray(i) for i in x]
        r = timed(lambda: ncnn_batch(cnet, dnet, imgs), a.iters, a.warmup)
    else:
        import torch
        torch.set_num_threads(a.threads)
        sys.path.insert(0, HERE)
        import heat_pipeline as P
        import heat_models as M
        base = rss_mb()
        cfg, enc, head, dec, lo, hi, _ = P.load(a.run_dir)
        fw = int(cfg["fw_layers"])
        xt = torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                return M.heat_forward(enc, head, dec, xt, lo, hi, fw).score.numpy()
        r = timed(run, a.iters, a.warmup)
    r["import_rss_mb"] = base
    print(json.dumps(r), flush=True)


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------


def sh(cmd, env=None):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"$ {' '.join(cmd)}\nexit {res.returncode}\n{res.stderr[-4000:]}")
    return res.stdout


def measured(cmd, env):
    """Runs `cmd` under /usr/bin/time; (stdout, peak RSS MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        out = sh(["/usr/bin/time", "-f", "%M", "-o", f.name] + cmd, env)
        kb = int(f.read().strip().splitlines()[-1])
    return out, kb / 1024


class Peers:
    """How each peer is run for one configuration: name -> fn(model, batch, threads) ->
    {"ms": p50 ms per batch, "rss_mb": peak RSS, ...}."""

    def __init__(self, a):
        self.a = a
        self.names = ["hood-cpu"] + ([] if a.no_reference else ["hood-reference"]) + \
            ["ncnn-cpu", "torch-cpu"] + (["hood-vulkan", "ncnn-vulkan"] if a.vulkan else [])

    def run(self, name, m, n, t):
        a = self.a
        env = dict(os.environ, HOOD_CPU_THREADS=str(t), OMP_NUM_THREADS=str(t))
        if name.startswith("hood-"):
            backend = name[len("hood-"):]
            iters, warmup = (a.ref_iters, 0) if backend == "reference" else (a.iters, a.warmup)
            cmd = [a.hood, "bench", m["hood"], "--backend", backend, "--batch", str(n),
                   "--iters", str(iters), "--warmup", str(warmup), "--max-seconds", "600",
                   "--json"]
            out, rss = measured(cmd, env)
            r = json.loads(out.strip().splitlines()[-1])
            if r["backend"] != backend:
                raise SystemExit(f"hood ran on {r['backend']}, asked for {backend}")
            return {"ms": r["p50_ms"], "rss_mb": rss, "iters": r["iters"]}
        peer = name.split("-")[0]
        cmd = [sys.executable, os.path.abspath(__file__), "--peer", peer, "--batch", str(n),
               "--threads", str(t), "--iters", str(a.iters), "--warmup", str(a.warmup),
               "--size", str(m["size"])]
        cmd += ["--net-dir", m["ncnn"]] if peer == "ncnn" else ["--run-dir", m["ckpt"]]
        if name == "ncnn-vulkan":
            cmd.append("--peer-vulkan")
        out, rss = measured(cmd, env)
        r = json.loads(out.strip().splitlines()[-1])
        return {"ms": r["p50_ms"], "rss_mb": rss, "import_rss_mb": r["import_rss_mb"],
                "iters": r["iters"]}


def prepare(a, name):
    """Checkpoints, .hood and ncnn nets of one model: {"name", "hood", "ckpt", "ncnn", "size"}."""
    import heat_pipeline as P
    work = os.path.join(a.work, name)
    os.makedirs(work, exist_ok=True)
    if name == "resnet18":
        P.build(work)
        hood_model = os.path.join(work, "resnet18_c10_full.hood")
        cmd = [a.convert, os.path.join(work, "classifier.pt"), os.path.join(work, "decoder.pt"),
               hood_model]
        print("$", " ".join(cmd), flush=True)
        sh(cmd)
        ckpt = work
    elif name == "wrn40_2":
        hood_model, ckpt = a.wrn_hood, a.wrn_ckpt
    else:
        raise SystemExit(f"--models: unknown model {name} (resnet18, wrn40_2)")
    run = P.load(ckpt)
    size = int(run[0].get("img_size", 32))
    cls, dec = P.split(run)
    P.export_ncnn(cls, dec, work, size)
    return {"name": name, "hood": hood_model, "ckpt": ckpt, "ncnn": work, "size": size,
            "run": run}


def check(a, m):
    """Scores of one batch of random PNGs from hood infer, ncnn and PyTorch; max |Δscore|."""
    import torch
    from PIL import Image
    import evaluate
    import heat_data as D
    d = os.path.join(a.work, m["name"], "check")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(CHECK_BATCH):
        u8 = rng.integers(0, 256, (m["size"], m["size"], 3), dtype=np.uint8)
        Image.fromarray(u8).save(os.path.join(d, f"{i}.png"))
    paths, t_s, t_c = evaluate.score_folder(d, m["run"], m["size"], torch.device("cpu"), None)
    x = np.stack([D.load_image(p, m["size"]) for p in paths])
    x = np.ascontiguousarray(((x.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5).astype(np.float32))
    nets = [ncnn_net(os.path.join(m["ncnn"], p), False, 2) for p in ("cls.ncnn", "dec.ncnn")]
    n_s, n_c = ncnn_batch(*nets, x)
    out = {"images": len(paths)}
    backends = ["cpu"] + ([] if a.no_reference else ["reference"])
    hood = {}
    for b in backends:
        txt = sh([a.hood, "infer", m["hood"], *paths, "--backend", b, "--json", "--batch",
                  str(CHECK_BATCH)], dict(os.environ, HOOD_CPU_THREADS="2"))
        rows = {r["path"]: r for r in map(json.loads, txt.strip().splitlines())}
        hood[b] = (np.array([rows[p]["score"] for p in paths]),
                   np.array([rows[p]["class"] for p in paths]))
    ref_s, ref_c = hood["cpu"]
    peers = {"ncnn-cpu": (n_s, n_c), "torch-cpu": (t_s, t_c)}
    if "reference" in hood:
        peers["hood-reference"] = hood["reference"]
    for k, (s, c) in peers.items():
        out[k] = {"max_abs_dscore": float(np.max(np.abs(s - ref_s))),
                  "class_mismatches": int(np.sum(c != ref_c))}
    out["ncnn_vs_torch_max_abs_dscore"] = float(np.max(np.abs(n_s - t_s)))
    out["hood_cpu_scores"] = [float(v) for v in ref_s]
    return out


def header(a):
    import ncnn
    import torch
    from importlib.metadata import version

    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"
    cpu = next((ln.split(":", 1)[1].strip() for ln in cmd(["lscpu"]).splitlines()
                if ln.startswith("Model name")), "?")
    dirty = " (+ uncommitted changes)" if cmd(["git", "status", "--porcelain"]) else ""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "commit": cmd(["git", "rev-parse", "--short", "HEAD"]) + dirty,
            "cpu": cpu, "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
            "hood": cmd([a.hood, "--version"]), "ncnn": ncnn.__version__,
            "pnnx": version("pnnx"), "torch": torch.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


COLUMNS = [("hood-cpu", "hood cpu"), ("hood-reference", "hood reference"),
           ("ncnn-cpu", "ncnn CPU"), ("torch-cpu", "PyTorch CPU"),
           ("hood-vulkan", "hood Vulkan"), ("ncnn-vulkan", "ncnn Vulkan")]


def table(rows, names):
    cols = [(k, t) for k, t in COLUMNS if k in names]
    head = ["model", "batch", "threads"] + [f"{t} ms/img" for _, t in cols] + \
        ["hood cpu / ncnn"] + [f"{t} RSS MB" for _, t in cols]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + " |"]
    for r in rows:
        p = r["peers"]
        cells = [r["model"], str(r["batch"]), str(r["threads"])]
        cells += [f"{p[k]['ms_per_image']:.2f}" for k, _ in cols]
        cells.append(f"{r['hood_cpu_over_ncnn']:.2f}" if r["hood_cpu_over_ncnn"] else "")
        cells += [f"{p[k]['rss_mb']:.0f}" for k, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_driver(a):
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(ROOT, "tools/train"))
    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    os.makedirs(a.work, exist_ok=True)
    meta = header(a)
    meta["settings"] = {k: getattr(a, k) for k in ("rounds", "iters", "ref_iters", "warmup",
                                                   "batches", "threads", "models")}
    for k, v in meta.items():
        if k != "settings":
            print(f"{k}: {v}")
    print(f"settings: {meta['settings']}", flush=True)

    import torch
    torch.set_num_threads(2)
    models = [prepare(a, name) for name in a.models.split(",")]
    checks = {}
    for m in models:
        c = checks[m["name"]] = check(a, m)
        lo, hi = min(c["hood_cpu_scores"]), max(c["hood_cpu_scores"])
        print(f"check {m['name']} ({c['images']} random PNGs, vs hood infer --backend cpu, "
              f"scores {lo:.3g}..{hi:.3g}): " +
              ", ".join(f"{k} max |dscore| {v['max_abs_dscore']:.2e} "
                        f"({v['class_mismatches']} class mismatches)"
                        for k, v in c.items() if isinstance(v, dict)) +
              f"; ncnn vs torch {c['ncnn_vs_torch_max_abs_dscore']:.2e}", flush=True)
        bad = [k for k, v in c.items() if isinstance(v, dict)
               and (v["max_abs_dscore"] > CHECK_TOL or v["class_mismatches"])]
        if bad:
            print(f"WARNING: {', '.join(bad)} disagree with hood cpu on {m['name']} "
                  f"(|dscore| > {CHECK_TOL} or another class): not the same computation",
                  flush=True)

    peers = Peers(a)
    configs = [(m, n, t) for m in models for n in batches for t in threads]
    raw = {(m["name"], n, t): {k: [] for k in peers.names} for m, n, t in configs}
    for rnd in range(a.rounds):
        order = peers.names[rnd % len(peers.names):] + peers.names[:rnd % len(peers.names)]
        for m, n, t in configs:
            for name in order:
                r = peers.run(name, m, n, t)
                raw[(m["name"], n, t)][name].append(r)
                print(f"round {rnd + 1}/{a.rounds} {m['name']:<8} batch {n:>2} threads {t} "
                      f"{name:<14} {r['ms'] / n:9.2f} ms/img  {r['rss_mb']:7.0f} MB",
                      flush=True)

    rows = []
    for m, n, t in configs:
        ps = {}
        for k, rs in raw[(m["name"], n, t)].items():
            ms = statistics.median(r["ms"] for r in rs)
            ps[k] = {"ms_per_image": ms / n, "ms_per_batch": ms,
                     "rss_mb": max(r["rss_mb"] for r in rs),
                     "rounds_ms_per_batch": [r["ms"] for r in rs],
                     "rounds_rss_mb": [r["rss_mb"] for r in rs]}
            if "import_rss_mb" in rs[0]:
                ps[k]["import_rss_mb"] = statistics.median(r["import_rss_mb"] for r in rs)
        ratio = ps["hood-cpu"]["ms_per_image"] / ps["ncnn-cpu"]["ms_per_image"]
        rows.append({"model": m["name"], "batch": n, "threads": t, "peers": ps,
                     "hood_cpu_over_ncnn": ratio})

    print(f"\n{meta['date']}, commit {meta['commit']}, {meta['cpu']} ({meta['cpus']} CPUs); "
          f"{meta['hood']}, ncnn {meta['ncnn']}, pnnx {meta['pnnx']}, "
          f"torch {meta['torch']}")
    print(f"ms per image: median over {a.rounds} rounds of each run's p50 per batch / batch "
          f"({a.iters} timed iterations, {a.ref_iters} for hood reference); RSS: peak over "
          "rounds of the process's max RSS\n")
    print(table(rows, peers.names))
    imports = {k: statistics.median(r["peers"][k]["import_rss_mb"] for r in rows)
               for k in peers.names if "import_rss_mb" in rows[0]["peers"][k]}
    if imports:
        print("\nPython peers' RSS after their imports, before loading the model (median): " +
              ", ".join(f"{k} {v:.0f} MB" for k, v in imports.items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "check": checks, "rows": rows}, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hood", default=os.path.join(ROOT, "target/release/hood"))
    ap.add_argument("--convert", default=os.path.join(ROOT, "target/release/convert"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "hood-ncnn-peer"))
    ap.add_argument("--models", default="resnet18,wrn40_2")
    ap.add_argument("--wrn-hood", default=WRN_HOOD)
    ap.add_argument("--wrn-ckpt", default=WRN_CKPT)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2",
                    help="thread counts (driver); one count (with --peer)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per run")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations per run")
    ap.add_argument("--ref-iters", type=int, default=1,
                    help="timed iterations of hood reference (no warm-up)")
    ap.add_argument("--no-reference", action="store_true", help="skip hood reference")
    ap.add_argument("--vulkan", action="store_true", help="add hood and ncnn on Vulkan")
    ap.add_argument("--json", help="write the results here")
    sub = ap.add_argument_group("peer sub-mode (one measurement, run by the driver)")
    sub.add_argument("--peer", choices=["ncnn", "torch"])
    sub.add_argument("--batch", type=int)
    sub.add_argument("--size", type=int, default=32)
    sub.add_argument("--net-dir")
    sub.add_argument("--run-dir")
    sub.add_argument("--peer-vulkan", action="store_true")
    a = ap.parse_args()
    if a.peer:
        a.threads = int(a.threads)
        peer_main(a)
    else:
        main_driver(a)


if __name__ == "__main__":
    main()
