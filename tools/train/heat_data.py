"""Image folders → uint8 arrays, for tools/train (training and the PyTorch evaluation).

Layouts after `tar xzf` of the data-set tarballs (tools/train/README.md, "Data", says where the
data comes from):
* cifar10/{train,test}/<class>/NNNN.jpg (label = class index in CIFAR_CLASSES order, which is also
  the sorted order of the folder names);
* tinyimagenet32/train/<wnid>/*.JPEG, tinyimagenet32/val/images/*.JPEG;
* dtd10/<class>/*.jpg (128 px on the shorter side).

A user's own data (`train_heat.py --id-train DIR --ood-train DIR`):
* an image folder per class, `DIR/<class>/**/*.<ext>` (torchvision's ImageFolder: the classes are
  the sub-folder names in sorted order, label = index in that order), any number ≥ 2 of them;
* or CIFAR-10's own "python version" folder (`data_batch_1` … `data_batch_5`, `test_batch`,
  `batches.meta`), read by a restricted unpickler that builds only plain containers and numpy
  arrays (it runs nothing else the file names);
* OOD training data: any folder of images, searched recursively, labels not read.

Files are listed exactly as `hood eval` / `hood calibrate` list them (runtime/src/calibrate.rs:
recursive, sorted by path, by extension), so both tools see the same images in the same order.
Images not of the model's size are resized as torchvision's `Resize(size)` + `CenterCrop(size)`
on a PIL image (bilinear with antialiasing), the preprocessing the authors' evaluation uses.
"""

import io
import os
import pickle
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
    return paths, load_paths(paths, size, cache)


def load_paths(paths, size, cache=None):
    """uint8 array N×size×size×3 of the images at `paths`, in that order; cached as .npz (the
    cache is used only when it holds exactly these paths)."""
    if cache and os.path.exists(cache):
        z = np.load(cache, allow_pickle=False)
        if list(z["paths"]) == list(paths):
            return z["images"]
    images = np.stack([load_image(p, size) for p in paths]) if paths else \
        np.zeros((0, size, size, 3), np.uint8)
    if cache:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, paths=np.array(paths), images=images)
        os.replace(tmp, cache)
    return images


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


def image_folder(root):
    """(paths, labels, class names) of an image folder per class (ImageFolder layout): classes are
    the sorted names of the visible sub-folders of `root` that hold at least one image (as
    tools/tch-train reads the same layout)."""
    if not os.path.isdir(root):
        raise SystemExit(f"{root}: not a directory")
    classes, paths, labels = [], [], []
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(d):
            continue
        files = list_images(d)
        if not files:
            continue
        classes.append(name)
        paths += files
        labels += [len(classes) - 1] * len(files)
    if len(classes) < 2:
        raise SystemExit(f"{root}: expected an image folder per class (at least two classes with "
                         f"images), found {len(classes)}")
    return paths, np.array(labels, dtype=np.int64), classes


CIFAR_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def is_cifar_batches(root):
    """Whether `root` is CIFAR-10's python-version folder."""
    return all(os.path.isfile(os.path.join(root, f))
               for f in ["batches.meta", "test_batch"] + CIFAR_TRAIN_BATCHES)


class _NumpyOnly(pickle.Unpickler):
    """Unpickles the plain containers, strings and numpy arrays the CIFAR batches hold; any other
    global (a function or class the file names) is refused instead of imported."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def _unpickle(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _NumpyOnly(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise SystemExit(f"{path}: not a CIFAR-10 python batch ({e})")


def _key(d, name):
    """`d[name]` whether the batch's keys are bytes (Python 2 pickles) or str."""
    for k in (name.encode(), name):
        if isinstance(d, dict) and k in d:
            return d[k]
    raise SystemExit(f"CIFAR-10 batch without {name!r}")


def cifar_batches(root, split):
    """(uint8 N×32×32×3, labels, class names) of CIFAR-10's python batches, `split` "train"
    (the five data batches in order) or "test"."""
    meta = _unpickle(os.path.join(root, "batches.meta"))
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in _key(meta, "label_names")]
    names = CIFAR_TRAIN_BATCHES if split == "train" else ["test_batch"]
    xs, ys = [], []
    for n in names:
        path = os.path.join(root, n)
        b = _unpickle(path)
        x = np.asarray(_key(b, "data"), dtype=np.uint8)
        y = np.asarray(_key(b, "labels"), dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(y) != len(x):
            raise SystemExit(f"{path}: expected N×3072 pixels and N labels, got {x.shape} and "
                             f"{len(y)}")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise SystemExit(f"{path}: labels outside 0..{len(classes) - 1}")
        xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys), classes


def write_pngs(u8, labels, classes, out):
    """Images as `out/<class>/NNNNN.png` (lossless), numbered in order within each class."""
    count = {}
    for img, y in zip(u8, labels):
        cls = classes[int(y)]
        i = count.get(cls, 0)
        count[cls] = i + 1
        d = os.path.join(out, cls)
        os.makedirs(d, exist_ok=True)
        Image.fromarray(img).save(os.path.join(d, f"{i:05d}.png"))


def write_cifar_batches(train_u8, train_y, test_u8, test_y, classes, out):
    """Writes uint8 N×32×32×3 images as CIFAR-10's python batches in `out` (the official layout:
    protocol-2 pickles of dicts with bytes keys, `data` N×3072 planar uint8, `labels` a list of
    int; the training images split over the five data batches in order)."""
    os.makedirs(out, exist_ok=True)

    def dump(name, obj):
        tmp = os.path.join(out, f".{name}.partial")
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(out, name))

    def batch(label, u8, y):
        planar = np.ascontiguousarray(np.asarray(u8, dtype=np.uint8).transpose(0, 3, 1, 2))
        return {b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                b"data": planar.reshape(len(planar), 3072),
                b"filenames": [f"{i:05d}.png".encode() for i in range(len(planar))]}

    dump("batches.meta", {b"label_names": [c.encode() for c in classes],
                          b"num_cases_per_batch": -(-len(train_u8) // 5), b"num_vis": 3072})
    parts = np.array_split(np.arange(len(train_u8)), 5)
    for i, (name, idx) in enumerate(zip(CIFAR_TRAIN_BATCHES, parts)):
        dump(name, batch(f"training batch {i + 1} of 5", train_u8[idx], np.asarray(train_y)[idx]))
    dump("test_batch", batch("testing batch 1 of 1", test_u8, test_y))


def split_val_labels(labels, per_class):
    """Indices (train, val) of a user's ID training images in listing order: the last `per_class`
    of each class are held out, but never more than a fifth of a class (small data sets keep
    four fifths for training)."""
    train, val = [], []
    for c in sorted(set(int(y) for y in labels)):
        idx = np.flatnonzero(labels == c)
        cut = len(idx) - min(per_class, len(idx) // 5)
        train += list(idx[:cut])
        val += list(idx[cut:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))
