#!/usr/bin/env python3
"""PyTorch evaluation of a HEAT checkpoint in the authors' layout — the reference that `hood eval`
is compared with (docs/RESULTS.md).

    python tools/train/evaluate.py --ckpt RUN_DIR --id DIR --ood NAME=DIR ... \
        [--json metrics.json] [--csv scores.csv] [--limit N]

RUN_DIR holds classifier.pt, decoder.pt and config.txt (as tools/train/train_heat.py writes them,
or the authors' code). Images are listed and preprocessed as `hood eval` does (heat_data.py):
recursive sorted listing, Resize + CenterCrop to the model size, (x/255 − 0.5)/0.5. The model runs
in float32 (TF32 off) with the highest decoder epoch; score = mean over pixels of max over channels
of |h|. Metrics with scikit-learn, ID = positive class (the paper's convention, the one
runtime/src/metrics.rs documents): AUROC, AUPR-In, AUPR-Out, FPR at 95 % TPR; accuracy when the ID
folder has class sub-folders. `--limit N` keeps N evenly spaced images of each set (as hood eval's
--limit does).
"""

import argparse
import ast
import csv
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import heat_data as D  # noqa: E402
import heat_models as M  # noqa: E402
from train_heat import build_models  # noqa: E402


def load_run(run_dir, device):
    with open(os.path.join(run_dir, "config.txt")) as f:
        cfg = ast.literal_eval(f.read().strip())
    fw, nc = int(cfg["fw_layers"]), int(cfg["num_classes"])
    enc, head, dec = build_models(cfg["arch"], fw, nc, 0.0)
    ck = torch.load(os.path.join(run_dir, "classifier.pt"), map_location="cpu", weights_only=True)
    enc.load_state_dict(ck["net_state_dict"])
    head.load_state_dict(ck["cls_state_dict"])
    dk = torch.load(os.path.join(run_dir, "decoder.pt"), map_location="cpu", weights_only=True)
    epoch = max(k for k in dk if isinstance(k, int))
    dec.load_state_dict(dk[epoch]["generator"])
    for m in (enc, head, dec):
        m.to(device).eval()
    return cfg, enc, head, dec, float(dk["min"]), float(dk["max"]), epoch


def evenly_spaced(items, limit):
    """runtime/src/calibrate.rs evenly_spaced: item ⌊i·n/limit⌋ for i < limit."""
    n = len(items)
    if not limit or limit >= n:
        return items
    return [items[i * n // limit] for i in range(limit)]


@torch.no_grad()
def score_folder(root, model, size, device, limit, bs=500):
    cfg, enc, head, dec, lo, hi, _ = model
    paths = evenly_spaced(D.list_images(root), limit)
    scores, classes = [], []
    for i in range(0, len(paths), bs):
        x = np.stack([D.load_image(p, size) for p in paths[i:i + bs]])
        x = (torch.as_tensor(x).to(device).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
        out = M.heat_forward(enc, head, dec, x, lo, hi, int(cfg["fw_layers"]))
        scores.append(out.score.cpu().double().numpy())
        classes.append(out.cls.cpu().numpy())
    return paths, np.concatenate(scores), np.concatenate(classes)


def metrics(id_s, ood_s):
    score = np.concatenate([id_s, ood_s])
    is_id = np.concatenate([np.ones(len(id_s)), np.zeros(len(ood_s))])
    fpr, tpr, _ = roc_curve(is_id, -score, drop_intermediate=False)
    return {"auroc": float(roc_auc_score(1 - is_id, score)),
            "aupr_in": float(average_precision_score(is_id, -score)),
            "aupr_out": float(average_precision_score(1 - is_id, score)),
            "fpr95": float(fpr[np.argmax(tpr >= 0.95)]),
            "n_ood": int(len(ood_s))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--ood", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--json")
    ap.add_argument("--csv")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.perf_counter()
    model = load_run(args.ckpt, device)
    size = int(model[0].get("img_size", 32))
    id_paths, id_s, id_cls = score_folder(args.id, model, size, device, args.limit)
    result = {"checkpoint": os.path.abspath(args.ckpt), "decoder_epoch": model[6],
              "torch": torch.__version__, "device": str(device),
              "id": {"dir": args.id, "n": len(id_s)}, "ood": {}}
    labels = []
    for p in id_paths:
        sub = os.path.relpath(p, args.id).split(os.sep)[0]
        labels.append(D.CIFAR_CLASSES.index(sub) if sub in D.CIFAR_CLASSES else -1)
    if labels and min(labels) >= 0:
        result["id"]["accuracy"] = float(np.mean(np.array(labels) == id_cls))
    rows = [(p, "id", int(c), float(s)) for p, c, s in zip(id_paths, id_cls, id_s)]
    per = []
    for spec in args.ood:
        name, _, d = spec.partition("=")
        if not d:
            raise SystemExit(f"--ood {spec}: expected NAME=DIR")
        paths, s, cls = score_folder(d, model, size, device, args.limit)
        m = metrics(id_s, s)
        m["dir"] = d
        result["ood"][name] = m
        per.append(m)
        rows += [(p, name, int(c), float(v)) for p, c, v in zip(paths, cls, s)]
    if per:
        result["average"] = {k: float(np.mean([m[k] for m in per]))
                             for k in ("auroc", "aupr_in", "aupr_out", "fpr95")}
    result["seconds"] = time.perf_counter() - t0
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "set", "class", "score"])
            w.writerows(rows)


if __name__ == "__main__":
    main()
