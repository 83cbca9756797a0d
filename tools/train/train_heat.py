#!/usr/bin/env python3
"""Train a HEAT detector (classifier + heatmap decoder) on CIFAR-10, following the paper's recipe
(docs/HEAT.md), and write the authors' checkpoint layout that `convert` reads
(docs/CHECKPOINTS.md §6).

    python tools/train/train_heat.py --datasets $DATA --work $WORK --out $WORK/run \
        [--preset gpu|cpu-small] [--arch wrn40_2|resnet18]

    python tools/train/train_heat.py --id-train DIR --ood-train DIR --work $WORK --out $WORK/run

$DATA: a folder holding the three data-set tarballs, or the data sets already unpacked; $WORK: a
scratch folder outside the repository (tools/train/README.md, "Data", says where to get the data
and which layout is expected). Or your own data: `--id-train` an image folder per class
(DIR/<class>/...; any number ≥ 2 of classes) or CIFAR-10's python-version folder
(`data_batch_1` … `batches.meta`), and `--ood-train` a folder of OOD training images.

Steps:
1. Classifier on CIFAR-10 train minus a held-out validation split (`--val-per-class`, default 500
   per class = 5 000 images kept for calibration): SGD (momentum 0.9, Nesterov, weight decay 5e-4),
   linear warm-up then cosine decay, random crop (zero padding 4) + horizontal flip.
2. Feature min / max over the ID training features (z, and the forwarded maps with fw_layers > 1);
   min is clamped to ≤ 0 as in the authors' files.
3. Prototypes: for each OOD training image (Tiny ImageNet-32 train subset) the closest ID training
   image (Euclidean distance on z) among those with the same predicted class.
4. Decoder: target t = x for ID images, t = prototype for OOD images; loss Σ_pixels
   (1 + 5|t|)·(x + h − t)², mean over the batch; Adam(lr 2e-4, betas (0.5, 0.999)); each step
   takes `--dec-batch`/2 ID and `--dec-batch`/2 OOD images (OOD drawn with replacement); one epoch
   = one pass over the ID training images. Snapshots as the authors: key `epoch − 1`.
5. Writes OUT/classifier.pt ({'net_state_dict', 'cls_state_dict'}), OUT/decoder.pt ({'min',
   'max', <epoch>: {'generator': state_dict}, ...}), OUT/config.txt (printed dict),
   OUT/classes.txt, OUT/train_log.json, and WORK/<id>-val/<class>/ (the held-out split, for
   `hood calibrate`; <id> is cifar10 or the --id-train folder's name; images from CIFAR-10's
   python batches are written as PNG). With --id-train the split is the last --val-per-class
   images of each class in listing order, at most a fifth of the class.

Epoch counts: `--cls-epochs` / `--dec-epochs`, or with `--cls-budget-s` / `--dec-budget-s` the
count that fits the budget, from the measured time of a few probe steps (on a throw-away copy).
Differences from the paper (stated in docs/RESULTS.md): far fewer epochs, the Tiny ImageNet-32
subset instead of 80M Tiny Images as OOD training data, CIFAR JPEGs instead of the binary release.
"""

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import heat_data as D  # noqa: E402
import heat_models as M  # noqa: E402

PRESETS = {
    # A GPU run: budgets in seconds (H200: see tools/train/README.md for what they give).
    "gpu": dict(cls_budget_s=170.0, dec_budget_s=75.0, cls_batch=256, cls_lr=0.2, dec_batch=200,
                max_cls_epochs=100, max_dec_epochs=150),
    # A CPU run that finishes in minutes on 2 cores: a subset and few epochs. A smoke test of the
    # whole recipe, not a useful detector.
    "cpu-small": dict(cls_epochs=1, dec_epochs=2, cls_batch=64, cls_lr=0.05, dec_batch=64,
                      id_limit=2000, ood_limit=500),
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_user_id(root, cache):
    """A user's ID training data (--id-train): (name, paths or None, uint8 images, labels, class
    names) from an image folder per class or CIFAR-10's python batches."""
    if D.is_cifar_batches(root):
        u8, y, classes = D.cifar_batches(root, "train")
        return "cifar10", None, u8, y, classes
    paths, y, classes = D.image_folder(root)
    u8 = D.load_paths(paths, 32, os.path.join(cache, "id_train.npz"))
    # The folder's name, or its parent's when it is only called "train" (DATA/train).
    name = os.path.basename(os.path.normpath(root))
    if name == "train":
        name = os.path.basename(os.path.dirname(os.path.normpath(root))) or name
    return name, paths, u8, y, classes


def build_models(arch, fw_layers, num_classes, dropout):
    if arch == "wrn40_2":
        enc = M.Wide_ResNet(40, 2, dropout, fw_layers)
        head = M.WideResNet_Linear(2, num_classes)
        dec = M.WideResNet_40x2_Deconv_GAN(128 + num_classes, fw_layers, num_classes, 2)
    elif arch == "resnet18":
        enc = M.ResNet18(fw_layers, 32)
        head = M.ResNet_Linear(num_classes)
        dec = M.ResNet18_CIFAR10_Deconv_GAN(512 + num_classes, fw_layers, num_classes)
    else:
        raise SystemExit(f"unknown --arch {arch}")
    return enc, head, dec


def to_input(u8, device):
    """uint8 N×H×W×3 (numpy or tensor) → normalised float N×3×H×W, (x/255 − 0.5)/0.5."""
    t = torch.as_tensor(u8).to(device)
    return (t.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5


def augment(u8, gen):
    """Random crop 32 with zero padding 4 and horizontal flip, batched (uint8 N×H×W×3 tensor)."""
    n, h, w, _ = u8.shape
    pad = F.pad(u8.permute(0, 3, 1, 2), (4, 4, 4, 4)).permute(0, 2, 3, 1)
    oy = torch.randint(0, 9, (n,), generator=gen, device="cpu").to(u8.device)
    ox = torch.randint(0, 9, (n,), generator=gen, device="cpu").to(u8.device)
    rows = oy[:, None] + torch.arange(h, device=u8.device)
    cols = ox[:, None] + torch.arange(w, device=u8.device)
    flip = torch.rand(n, generator=gen).to(u8.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx = torch.arange(n, device=u8.device)
    return pad[idx[:, None, None], rows[:, :, None], cols[:, None, :]]


class Classifier(torch.nn.Module):
    def __init__(self, enc, head, fw_layers):
        super().__init__()
        self.enc, self.head, self.fw = enc, head, fw_layers

    def forward(self, x):
        f = self.enc(x)
        z = f[0] if self.fw > 1 else f
        return self.head(z)


def autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def probe_step_time(step_fn, steps=12, warm=4):
    for _ in range(warm):
        step_fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step_fn()
    sync()
    return (time.perf_counter() - t0) / steps


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def epochs_for(budget_s, step_s, steps_per_epoch, max_epochs):
    return max(1, min(max_epochs, int(budget_s / max(step_s * steps_per_epoch, 1e-9))))


def epochs_from_probe(what, model, make_opt, step, draw, budget_s, steps_per_epoch, max_epochs):
    """Epochs that fit `budget_s`, from the time of a few `step`s (indices from `draw`) on a
    throw-away copy of `model` and its optimiser."""
    probe = copy.deepcopy(model)
    popt = make_opt(probe)
    step_s = probe_step_time(lambda: step(probe, popt, draw()))
    epochs = epochs_for(budget_s, step_s, steps_per_epoch, max_epochs)
    log(f"{what}: probe {step_s * 1e3:.1f} ms/step → {epochs} epochs in {budget_s:.0f} s")
    return epochs


def train_classifier(clf, x_u8, y, args, device, gen):
    n = len(x_u8)
    bs = args.cls_batch
    steps_per_epoch = max(1, n // bs)

    def make_opt(model):
        pb = [p for p in model.parameters() if p.ndim <= 1]
        pw = [p for p in model.parameters() if p.ndim > 1]
        return torch.optim.SGD([{"params": pw, "weight_decay": 5e-4},
                                {"params": pb, "weight_decay": 0.0}],
                               lr=args.cls_lr, momentum=0.9, nesterov=True)

    def step(model, opt, idx):
        xb = to_input(augment(x_u8[idx], gen), device).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    epochs = args.cls_epochs
    if epochs is None:
        epochs = epochs_from_probe(
            "classifier", clf, make_opt, step, lambda: torch.randint(0, n, (bs,), device=device),
            args.cls_budget_s, steps_per_epoch, args.max_cls_epochs)
    opt = make_opt(clf)
    total = epochs * steps_per_epoch
    warm = max(1, min(total // 10, 2 * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    clf.train()
    t0 = time.perf_counter()
    history = []
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        run = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            run += step(clf, opt, perm[s * bs:(s + 1) * bs]).detach()
            sched.step()
        history.append(float(run) / steps_per_epoch)
        log(f"classifier epoch {ep + 1}/{epochs} loss {history[-1]:.4f} "
            f"({time.perf_counter() - t0:.0f} s)")
    clf.eval()
    return {"epochs": epochs, "seconds": time.perf_counter() - t0, "loss": history,
            "batch": bs, "lr": args.cls_lr}


@torch.no_grad()
def features(enc, head, x_u8, fw_layers, device, bs=1000):
    """Per image: list of forwarded features [z, f1, ...] (fp32, on device) and predicted class."""
    feats, preds = None, []
    for i in range(0, len(x_u8), bs):
        x = to_input(x_u8[i:i + bs], device).contiguous(memory_format=torch.channels_last)
        f = enc(x)
        f = [f] if fw_layers == 1 else list(f)
        preds.append(head(f[0]).argmax(1))
        f = [t.float() for t in f]
        feats = [[t] for t in f] if feats is None else [a + [t] for a, t in zip(feats, f)]
    return [torch.cat(a) for a in feats], torch.cat(preds)


@torch.no_grad()
def prototypes(z_id, pred_id, z_ood, pred_ood):
    """Index into the ID set of the nearest ID image (Euclidean on z) with the same predicted
    class, for every OOD image; -1 when no ID image has that predicted class."""
    out = torch.full((len(z_ood),), -1, dtype=torch.long, device=z_ood.device)
    for c in torch.unique(pred_ood).tolist():
        ood_idx = (pred_ood == c).nonzero().flatten()
        id_idx = (pred_id == c).nonzero().flatten()
        if len(id_idx) == 0:
            continue
        for j in range(0, len(ood_idx), 4096):
            chunk = ood_idx[j:j + 4096]
            d = torch.cdist(z_ood[chunk].double(), z_id[id_idx].double())
            out[chunk] = id_idx[d.argmin(1)]
    return out


def train_decoder(dec, id_feats, id_pred, id_u8, ood_feats, ood_pred, ood_u8, proto, norm, args,
                  device, gen):
    lo, hi = norm
    keep = (proto >= 0).nonzero().flatten()
    ood_feats = [f[keep] for f in ood_feats]
    ood_pred, ood_u8, proto = ood_pred[keep], ood_u8[keep], proto[keep]
    n_id, n_ood = len(id_u8), len(ood_u8)
    half = args.dec_batch // 2
    steps_per_epoch = max(1, n_id // half)
    fw = args.fw_layers

    def loss_of(model, id_idx, ood_idx):
        x = torch.cat([to_input(id_u8[id_idx], device), to_input(ood_u8[ood_idx], device)])
        t = torch.cat([to_input(id_u8[id_idx], device), to_input(id_u8[proto[ood_idx]], device)])
        zs = [(torch.cat([a[id_idx], b[ood_idx]]) - lo) / (hi - lo)
              for a, b in zip(id_feats, ood_feats)]
        cls = torch.cat([id_pred[id_idx], ood_pred[ood_idx]])
        with autocast(device):
            h = model(zs if fw > 1 else zs[0], cls)
        h = h.float()
        return ((1 + 5 * t.abs()) * (x + h - t) ** 2).sum(dim=(1, 2, 3)).mean()

    def make_opt(model):
        return torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(model, opt, id_idx):
        ood_idx = torch.randint(0, n_ood, (len(id_idx),), generator=gen).to(device)
        loss = loss_of(model, id_idx, ood_idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    epochs = args.dec_epochs
    if epochs is None:
        epochs = epochs_from_probe(
            "decoder", dec, make_opt, step,
            lambda: torch.randint(0, n_id, (half,), generator=gen).to(device),
            args.dec_budget_s, steps_per_epoch, args.max_dec_epochs)
    opt = make_opt(dec)
    dec.train()
    snapshots = {}
    history = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        perm = torch.randperm(n_id, generator=gen).to(device)
        run = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            run += step(dec, opt, perm[s * half:(s + 1) * half]).detach()
        history.append(float(run) / steps_per_epoch)
        if (ep + 1) % 10 == 0 or ep + 1 == epochs:
            snapshots[ep] = {k: v.detach().cpu().clone() for k, v in dec.state_dict().items()}
        log(f"decoder epoch {ep + 1}/{epochs} loss {history[-1]:.2f} "
            f"({time.perf_counter() - t0:.0f} s)")
    dec.eval()
    kept = sorted(snapshots)[-args.keep_snapshots:]
    return {k: {"generator": snapshots[k]} for k in kept}, {
        "epochs": epochs, "seconds": time.perf_counter() - t0, "loss": history,
        "batch": args.dec_batch, "ood_used": int(n_ood), "snapshots": kept}


def cpu_state(sd):
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets",
                    help="folder with the data-set tarballs, or with them already "
                         "unpacked (tools/train/README.md, Data)")
    ap.add_argument("--id-train",
                    help="your in-distribution training data instead of --datasets: an image "
                         "folder per class (DIR/<class>/...), or CIFAR-10's python-version folder "
                         "(data_batch_1 ... batches.meta)")
    ap.add_argument("--ood-train",
                    help="your OOD training data (with --id-train): a folder of images, searched "
                         "recursively")
    ap.add_argument("--work", required=True, help="scratch folder (unpacked data, caches)")
    ap.add_argument("--out", required=True, help="where the checkpoints go")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    ap.add_argument("--arch", choices=["wrn40_2", "resnet18"], default="wrn40_2")
    ap.add_argument("--fw-layers", type=int, default=1, choices=[1, 2, 3, 4])
    ap.add_argument("--dropout", type=float, default=0.3, help="WRN dropout (authors: 0.3)")
    ap.add_argument("--val-per-class", type=int, default=500)
    ap.add_argument("--cls-epochs", type=int)
    ap.add_argument("--dec-epochs", type=int)
    ap.add_argument("--cls-budget-s", type=float)
    ap.add_argument("--dec-budget-s", type=float)
    ap.add_argument("--keep-snapshots", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20230103)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.id_train or args.ood_train:
        if not (args.id_train and args.ood_train):
            raise SystemExit("--id-train and --ood-train go together")
        if args.datasets:
            raise SystemExit("give --datasets or --id-train with --ood-train, not both")
    elif not args.datasets:
        raise SystemExit("give --datasets, or --id-train and --ood-train")
    preset = dict(PRESETS[args.preset])
    for k, v in preset.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    for k in ("cls_epochs", "dec_epochs", "id_limit", "ood_limit", "max_cls_epochs",
              "max_dec_epochs", "cls_budget_s", "dec_budget_s"):
        if not hasattr(args, k):
            setattr(args, k, None)
    if args.cls_epochs is None and args.cls_budget_s is None:
        raise SystemExit("give --cls-epochs or --cls-budget-s")
    if args.dec_epochs is None and args.dec_budget_s is None:
        raise SystemExit("give --dec-epochs or --dec-budget-s")
    args.max_cls_epochs = args.max_cls_epochs or 1000
    args.max_dec_epochs = args.max_dec_epochs or 1000

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    t_start = time.perf_counter()
    log(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), "
        f"torch {torch.__version__}, preset {args.preset}")

    # Data
    cache = os.path.join(args.work, "cache")
    if args.id_train:
        tr_root = args.id_train
        id_name, tr_paths, tr_u8, tr_y, classes = load_user_id(tr_root, cache)
        tr_idx, val_idx = D.split_val_labels(tr_y, args.val_per_class)
        ood_root, ood_name = args.ood_train, os.path.basename(os.path.normpath(args.ood_train))
        ood_paths, ood_u8 = D.load_folder(ood_root, 32, os.path.join(cache, "ood_train.npz"))
        if len(ood_u8) == 0:
            raise SystemExit(f"{ood_root}: no images")
    else:
        data = os.path.join(args.work, "data")
        src = args.datasets
        if not os.path.isdir(os.path.join(src, "cifar10")):
            D.unpack(src, data)
            src = data
        tr_root = os.path.join(src, "cifar10", "train")
        tr_paths, tr_u8 = D.load_folder(tr_root, 32, os.path.join(cache, "cifar10_train.npz"))
        tr_y = D.cifar_labels(tr_paths, tr_root)
        tr_idx, val_idx = D.split_val(tr_paths, args.val_per_class)
        ood_root = os.path.join(src, "tinyimagenet32", "train")
        ood_paths, ood_u8 = D.load_folder(ood_root, 32, os.path.join(cache, "tin32_train.npz"))
        id_name, ood_name, classes = "cifar10", "tinyimagenet32-subset", D.CIFAR_CLASSES
    if args.id_limit:
        tr_idx = tr_idx[np.random.RandomState(args.seed).permutation(len(tr_idx))[:args.id_limit]]
    if args.ood_limit:
        ood_u8 = ood_u8[np.random.RandomState(args.seed + 1).permutation(len(ood_u8))[
            :args.ood_limit]]
    log(f"data: {len(classes)} classes, {len(tr_idx)} ID train, {len(val_idx)} ID val (held out), "
        f"{len(ood_u8)} OOD train ({time.perf_counter() - t_start:.0f} s)")

    # Held-out validation split as image files, for `hood calibrate --id`.
    val_dir = os.path.join(args.work, f"{id_name}-val")
    if os.path.isdir(val_dir):
        shutil.rmtree(val_dir)
    if tr_paths is None:
        D.write_pngs(tr_u8[val_idx], tr_y[val_idx], classes, val_dir)
    else:
        for i in val_idx:
            rel = os.path.relpath(tr_paths[i], tr_root)
            os.makedirs(os.path.join(val_dir, os.path.dirname(rel)), exist_ok=True)
            shutil.copyfile(tr_paths[i], os.path.join(val_dir, rel))

    x_id = torch.as_tensor(tr_u8[tr_idx]).to(device)
    y_id = torch.as_tensor(tr_y[tr_idx]).to(device)
    x_ood = torch.as_tensor(ood_u8).to(device)

    enc, head, dec = build_models(args.arch, args.fw_layers, len(classes), args.dropout)
    clf = Classifier(enc, head, args.fw_layers).to(device).to(memory_format=torch.channels_last)
    cls_log = train_classifier(clf, x_id, y_id, args, device, gen)

    # Features, min / max, prototypes (classifier frozen, eval mode)
    f_id, p_id = features(enc, head, x_id, args.fw_layers, device)
    train_acc = float((p_id == y_id).float().mean())
    x_val = torch.as_tensor(tr_u8[val_idx]).to(device)
    _, p_val = features(enc, head, x_val, args.fw_layers, device)
    val_acc = float((p_val.cpu() == torch.as_tensor(tr_y[val_idx])).float().mean())
    lo = min(0.0, min(float(f.min()) for f in f_id))
    hi = max(float(f.max()) for f in f_id)
    f_ood, p_ood = features(enc, head, x_ood, args.fw_layers, device)
    proto = prototypes(f_id[0], p_id, f_ood[0], p_ood)
    log(f"classifier: train acc {train_acc:.4f}, val acc {val_acc:.4f}; min {lo:.4f} max {hi:.4f};"
        f" prototypes for {int((proto >= 0).sum())}/{len(proto)} OOD images")

    dec = dec.to(device)
    snaps, dec_log = train_decoder(dec, f_id, p_id, x_id, f_ood, p_ood, x_ood, proto, (lo, hi),
                                   args, device, gen)

    os.makedirs(args.out, exist_ok=True)
    torch.save({"net_state_dict": cpu_state(enc.state_dict()),
                "cls_state_dict": cpu_state(head.state_dict())},
               os.path.join(args.out, "classifier.pt"))
    torch.save({"min": lo, "max": hi, **snaps}, os.path.join(args.out, "decoder.pt"))
    config = {"arch": args.arch, "id_dataset": id_name, "num_classes": len(classes),
              "fw_layers": args.fw_layers, "img_size": 32, "ood_train": ood_name,
              "preset": args.preset, "cls_epochs": cls_log["epochs"],
              "gen_epochs": dec_log["epochs"], "batch_size": args.dec_batch, "lr": 2e-4,
              "betas": (0.5, 0.999), "seed": args.seed, "dropout": args.dropout}
    with open(os.path.join(args.out, "config.txt"), "w") as f:
        f.write(repr(config) + "\n")
    with open(os.path.join(args.out, "classes.txt"), "w") as f:
        f.write("\n".join(classes) + "\n")
    summary = {"device": str(device),
               "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "args": vars(args), "n_id_train": len(tr_idx),
               "n_val": len(val_idx), "n_ood_train": len(ood_u8), "train_acc": train_acc,
               "val_acc": val_acc, "min": lo, "max": hi, "classifier": cls_log,
               "decoder": dec_log, "total_seconds": time.perf_counter() - t_start}
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log(f"done in {summary['total_seconds']:.0f} s → {args.out}")


if __name__ == "__main__":
    main()
