"""Generated datasets written in the exact on-disk formats ddbook reads (CIFAR-10/100 python pickles, MNIST and
Fashion-MNIST idx files, SVHN MATLAB files, Tiny ImageNet JPEG folders), with the real image shapes and class counts
and a few images per class: what the paper-scale dry runs of configs/ train on."""
import gzip
import pickle
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

# name -> (channels, size, classes)
SHAPES = {"CIFAR10": (3, 32, 10), "CIFAR100": (3, 32, 100), "MNIST": (1, 28, 10), "FashionMNIST": (1, 28, 10),
          "SVHN": (3, 32, 10), "TinyImageNet": (3, 64, 200)}


def class_images(name: str, per_class: int, seed: int) -> tuple:
    "uint8 images [K*per_class, C, H, W] whose mean colour depends on the class, and their labels (grouped by class)."
    C, S, K = SHAPES[name]
    r = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), per_class)
    base = (np.arange(K)[:, None] * np.array([37, 91, 53][:C]) % 200 + 28)[y]         # [N, C]
    x = np.clip(base[:, :, None, None] + r.normal(0, 30, (len(y), C, S, S)), 0, 255).astype(np.uint8)
    perm = r.permutation(len(y))                                                       # files are not grouped
    return x[perm], y[perm]


def _pickle(path: Path, d: dict):
    path.write_bytes(pickle.dumps(d, protocol=2))


def _cifar10(root, tr, te):
    folder = root / "cifar-10-batches-py"; folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(tr[1])), 5), 1):
        _pickle(folder / f"data_batch_{i}", {b"data": tr[0][part].reshape(len(part), -1), b"labels": tr[1][part].tolist()})
    _pickle(folder / "test_batch", {b"data": te[0].reshape(len(te[1]), -1), b"labels": te[1].tolist()})
    _pickle(folder / "batches.meta", {b"label_names": [f"class{k}".encode() for k in range(10)]})


def _cifar100(root, tr, te):
    folder = root / "cifar-100-python"; folder.mkdir(parents=True)
    for split, (x, y) in (("train", tr), ("test", te)):
        _pickle(folder / split, {b"data": x.reshape(len(y), -1), b"fine_labels": y.tolist(),
                                 b"coarse_labels": (y // 5).tolist()})
    _pickle(folder / "meta", {b"fine_label_names": [f"class{k:02d}".encode() for k in range(100)]})


def _idx(name):
    def write(root, tr, te):
        folder = root / name / "raw"; folder.mkdir(parents=True)
        for split, (x, y) in (("train", tr), ("t10k", te)):
            for kind, a, magic in (("images-idx3", x[:, 0], 2051), ("labels-idx1", y, 2049)):
                hdr = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
                (folder / f"{split}-{kind}-ubyte.gz").write_bytes(gzip.compress(hdr + a.astype(np.uint8).tobytes()))
    return write


def _svhn(root, tr, te):
    root.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in (("train", tr), ("test", te)):
        y10 = np.where(y == 0, 10, y).astype(np.uint8).reshape(-1, 1)                   # 10 stands for the digit 0
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y10})


def _tiny(root, tr, te):
    top = root / "tiny-imagenet-200"
    wnids = [f"n{k:08d}" for k in range(200)]
    (top / "val" / "images").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (top / "words.txt").write_text("".join(f"{w}\tthing {k}\n" for k, w in enumerate(wnids)))
    for i, (x, k) in enumerate(zip(*tr)):
        d = top / "train" / wnids[k] / "images"; d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x.transpose(1, 2, 0)).save(d / f"{wnids[k]}_{i}.JPEG", quality=95)
    lines = []
    for i, (x, k) in enumerate(zip(*te)):
        Image.fromarray(x.transpose(1, 2, 0)).save(top / "val" / "images" / f"val_{i}.JPEG", quality=95)
        lines.append(f"val_{i}.JPEG\t{wnids[k]}\t0\t0\t63\t63")
    (top / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


WRITERS = {"CIFAR10": _cifar10, "CIFAR100": _cifar100, "MNIST": _idx("MNIST"), "FashionMNIST": _idx("FashionMNIST"),
           "SVHN": _svhn, "TinyImageNet": _tiny}


def write_fake(root: Path, name: str, per_class: int | None = None, test_per_class: int = 3) -> np.ndarray:
    """Write dataset `name` under `root` in its on-disk format (by default at least 1 000 training images: with fewer,
    an expert's epoch is one SGD step and trajectory matching's normalised loss is ill-conditioned); returns the
    training labels in file order."""
    per_class = per_class or max(12, 1000 // SHAPES[name][2])
    tr, te = class_images(name, per_class, 0), class_images(name, test_per_class, 1)
    WRITERS[name](Path(root), tr, te)
    return tr[1]


def write_scores(path: Path, labels: np.ndarray, cscore: bool):
    "A difficulty file for SelMatch: a C-score .npz (scores and labels) or a forgetting .npy, one value per image."
    path.parent.mkdir(parents=True, exist_ok=True)
    s = np.random.default_rng(5).random(len(labels)).astype(np.float32)
    if cscore: np.savez(path, scores=s, labels=labels)
    else: np.save(path, (s * 10).round())
