"""Image folders → uint8 arrays, for tools/train (training and the PyTorch evaluation).

Layouts after `tar xzf` of the data-set tarballs (tools/train/README.md, "Data", says where the
data comes from):
* cifar10/{train,test}/<class>/NNNN.jpg (label = class index in CIFAR_CLASSES order, which is also
  the sorted order of the folder names);
* tinyimagenet32/train/<wnid>/*.JPEG, tinyimagenet32/val/images/*.JPEG;
* dtd10/<class>/*.jpg (128 px on the shorter side).

Files are listed exactly as `hood eval` / `hood calibrate` list them (runtime/src/calibrate.rs:
recursive, sorted by path, by extension), so both tools see the same images in the same order.
Images not of the model's size are resized as torchvision's `Resize(size)` + `CenterCrop(size)`
on a PIL image (bilinear with antialiasing), the preprocessing the authors' evaluation uses.
"""

import os
import tarfile

import numpy as np
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]

# runtime/src/calibrate.rs IMAGE_EXTENSIONS
IMAGE_EXTENSIONS = {"png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm", "pbm",
                    "pnm", "tga", "qoi"}

TARBALLS = {
    "cifar10": "cifar10-jpeg.tar.gz",
    "tinyimagenet32": "tinyimagenet32-subset.tar.gz",
    "dtd10": "dtd10-128px.tar.gz",
}


def unpack(tar_dir, data_dir):
    """Unpack the data-set tarballs found in `tar_dir` into `data_dir` (skipping ones already there).
    Members are checked to stay inside `data_dir`."""
    os.makedirs(data_dir, exist_ok=True)
    for top, name in TARBALLS.items():
        if os.path.isdir(os.path.join(data_dir, top)):
            continue
        path = os.path.join(tar_dir, name)
        if not os.path.exists(path):
            raise SystemExit(f"{path}: missing (expected the shared dataset tarball)")
        root = os.path.realpath(data_dir)
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                target = os.path.realpath(os.path.join(data_dir, m.name))
                if not target.startswith(root + os.sep) or not (m.isfile() or m.isdir()):
                    raise SystemExit(f"{path}: refusing member {m.name!r}")
            tf.extractall(data_dir)


def list_images(root):
    """Every image file under `root`, recursively, sorted by full path (as hood lists them)."""
    if not os.path.isdir(root):
        raise SystemExit(f"{root}: not a directory")
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            ext = f.rsplit(".", 1)[-1].lower() if "." in f else ""
            if ext in IMAGE_EXTENSIONS:
                out.append(os.path.join(d, f))
    out.sort()
    return out


def load_image(path, size):
    """One image as uint8 HWC RGB of `size`×`size`: Resize(size) (shorter side, bilinear,
    antialias) + CenterCrop(size), as torchvision does on a PIL image; untouched when already
    `size`×`size`."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if (w, h) != (size, size):
        # torchvision.transforms.functional.resize on PIL: the shorter side becomes `size`,
        # the longer int(size * long / short).
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), Image.BILINEAR)
        left = int(round((nw - size) / 2.0))
        top = int(round((nh - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8)


def load_folder(root, size, cache=None):
    """(paths, uint8 array N×size×size×3) of every image under `root`; cached as .npz."""
    paths = list_images(root)
    if cache and os.path.exists(cache):
        z = np.load(cache, allow_pickle=False)
        if list(z["paths"]) == paths:
            return paths, z["images"]
    images = np.stack([load_image(p, size) for p in paths]) if paths else \
        np.zeros((0, size, size, 3), np.uint8)
    if cache:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, paths=np.array(paths), images=images)
        os.replace(tmp, cache)
    return paths, images


def cifar_labels(paths, root):
    """Label of each CIFAR-10 image from its class sub-folder under `root`."""
    labels = []
    for p in paths:
        cls = os.path.relpath(p, root).split(os.sep)[0]
        labels.append(CIFAR_CLASSES.index(cls))
    return np.array(labels, dtype=np.int64)


def split_val(paths, per_class):
    """Indices (train, val) of a CIFAR training listing: the last `per_class` files of each class
    folder (sorted by name) are held out for validation / calibration."""
    by_class = {}
    for i, p in enumerate(paths):
        by_class.setdefault(os.path.dirname(p), []).append(i)
    train, val = [], []
    for _, idx in sorted(by_class.items()):
        cut = max(0, len(idx) - per_class)
        train += idx[:cut]
        val += idx[cut:]
    return np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)
