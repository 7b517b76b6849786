"""Static image workloads: scikit-learn's digits and CIFAR-10 (python pickle batches).

Images come out as float32 ``[N, C, H, W]`` in ``[0, 1]`` with int64 labels. Resizing uses
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
"""
from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")
DIGITS_TEST_FRACTION = 0.2
DIGITS_CLASSES = [str(i) for i in range(10)]
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
CIFAR10_META_FILE = "batches.meta"
# ITU-R BT.601 luma weights, used when CIFAR-10 is asked for with in_channels=1.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def check_split(split) -> str:
    """Return ``split`` if it is "train" or "test", else raise ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return split


def _check_pos_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class StaticDataset:
    """A labelled image set: ``x`` float32 ``[N, C, H, W]`` in [0, 1], ``y`` int64 ``[N]``."""

    x: np.ndarray
    y: np.ndarray
    name: str
    classes: list[str]
    split: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.float32 or self.x.ndim != 4:
            raise ValueError(f"{self.name}: x must be a float32 [N, C, H, W] array, got "
                             f"{getattr(self.x, 'dtype', type(self.x))} "
                             f"{getattr(self.x, 'shape', '')}")
        if not isinstance(self.y, np.ndarray) or self.y.dtype != np.int64 or self.y.ndim != 1:
            raise ValueError(f"{self.name}: y must be an int64 [N] array")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.name}: x has {self.x.shape[0]} samples, y has "
                             f"{self.y.shape[0]}")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(f"{self.name}: labels must be in 0..{len(self.classes) - 1}, got "
                             f"{int(self.y.min())}..{int(self.y.max())}")
        check_split(self.split)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int) -> "StaticDataset":
        """The first ``n`` samples (a copy)."""
        n = _check_n(n, len(self), self.name, self.split)
        meta = dict(self.meta, subset=n)
        return StaticDataset(self.x[:n].copy(), self.y[:n].copy(), self.name,
                             list(self.classes), self.split, meta)

    def as_tensors(self):
        """``(x, y)`` as torch tensors (copies), float32 and int64."""
        import torch

        return torch.tensor(self.x), torch.tensor(self.y)


def _check_n(n, length: int, name: str, split: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name}: subset size must be a non-negative int, got {n!r}")
    if n > length:
        raise ValueError(f"{name} ({split}): asked for subset({int(n)}) but the split has only "
                         f"{length} samples")
    return int(n)


def resize_images(x: np.ndarray, img_size: int, in_channels: int) -> np.ndarray:
    """Resize float32 ``[N, C, h, w]`` images in [0, 1] to ``img_size`` x ``img_size``
    (bilinear, ``align_corners=False``) and repeat a 1-channel image to ``in_channels``.

    Bilinear weights are convex, so values stay in [0, 1]; float32 rounding excess (<1e-5) is
    trimmed back to the range.
    """
    import torch
    import torch.nn.functional as F

    img_size = _check_pos_int("img_size", img_size)
    in_channels = _check_pos_int("in_channels", in_channels)
    n, c, h, w = x.shape
    if (h, w) != (img_size, img_size):
        out = np.empty((n, c, img_size, img_size), dtype=np.float32)
        chunk = 4096
        with torch.no_grad():
            for s in range(0, n, chunk):
                t = torch.from_numpy(np.ascontiguousarray(x[s:s + chunk]))
                out[s:s + chunk] = F.interpolate(t, size=(img_size, img_size), mode="bilinear",
                                                 align_corners=False).numpy()
        if out.size:
            lo, hi = float(out.min()), float(out.max())
            if lo < -1e-5 or hi > 1 + 1e-5:
                raise RuntimeError(f"resize produced values outside [0, 1]: {lo}..{hi}")
        np.clip(out, 0.0, 1.0, out=out)
        x = out
    if c == in_channels:
        return np.ascontiguousarray(x, dtype=np.float32)
    if c == 1:
        return np.ascontiguousarray(np.repeat(x, in_channels, axis=1), dtype=np.float32)
    raise ValueError(f"cannot turn {c}-channel images into in_channels={in_channels}")


# ----------------------------------------------------------------------------- digits

@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    target = np.asarray(bunch.target, dtype=np.int64)
    if images.shape != (1797, 8, 8) or images.min() < 0 or images.max() > 16:
        raise RuntimeError(f"unexpected scikit-learn digits data: shape {images.shape}")
    images.flags.writeable = False
    target.flags.writeable = False
    return images, target


def digits_split_indices(split: str, seed: int = 0) -> np.ndarray:
    """Indices (ascending) of the digits samples in ``split``.

    Stratified: for each class (in order 0..9) a ``numpy.random.default_rng(seed)`` permutation
    of that class's indices puts the first ``round(0.2 * n_class)`` into "test", the rest into
    "train" (1,438 train / 359 test for seed 0). Shared by ``digits`` and ``ndigits``.
    """
    check_split(split)
    _, target = _digits_raw()
    rng = np.random.default_rng(seed)
    test = []
    for c in range(10):
        idx = np.flatnonzero(target == c)
        n_test = int(round(DIGITS_TEST_FRACTION * idx.size))
        test.append(rng.permutation(idx)[:n_test])
    test_idx = np.sort(np.concatenate(test))
    if split == "test":
        return test_idx
    mask = np.ones(target.size, dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask)


def digits_images(split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits of ``split`` scaled to [0, 1]: float32 ``[N, 8, 8]`` and int64 ``[N]``."""
    images, target = _digits_raw()
    idx = digits_split_indices(split, seed)
    return (images[idx] / 16.0).astype(np.float32), target[idx].copy()


def load_digits(split: str = "test", *, img_size: int = 32, in_channels: int = 1,
                seed: int = 0) -> StaticDataset:
    """scikit-learn's digits (1,797 8x8 images, 10 classes) as a :class:`StaticDataset`.

    Pixel values 0..16 are scaled to [0, 1], resized to ``img_size`` pixels (bilinear) and
    repeated to ``in_channels``. Split: :func:`digits_split_indices` (seeded, stratified 80/20).
    """
    check_split(split)
    img, y = digits_images(split, seed)
    x = resize_images(img[:, None], img_size, in_channels)
    meta = {"source": "sklearn.datasets.load_digits", "original_size_px": (8, 8),
            "img_size_px": int(img_size), "in_channels": int(in_channels), "seed": seed,
            "split_rule": "stratified per class, round(0.2 * n_class) to test",
            "value_range": (0.0, 1.0)}
    return StaticDataset(x, y, "digits", list(DIGITS_CLASSES), split, meta)


# ----------------------------------------------------------------------------- CIFAR-10

class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy-array allow-list."""


_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]
_LATIN1 = ("latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1")


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(str, "latin1"); nothing else.
    if not isinstance(text, str) or str(encoding).lower() not in _LATIN1 or errors != "strict":
        raise UnsafePickleError(f"_codecs.encode called with unexpected arguments "
                                f"({type(text).__name__}, {encoding!r}, {errors!r})")
    return text.encode("latin1")


_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
for _mod in ("builtins", "__builtin__"):
    for _name, _obj in (("dict", dict), ("list", list), ("tuple", tuple), ("set", set),
                        ("frozenset", frozenset), ("bytearray", bytearray)):
        _SAFE_GLOBALS[(_mod, _name)] = _obj


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals numpy needs to rebuild arrays (and a few
    builtin containers); any other global raises :class:`UnsafePickleError` naming the file and
    the global, before anything from it is called."""

    def __init__(self, file, path, **kw):
        super().__init__(file, **kw)
        self._path = path

    def find_class(self, module, name):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self._path}: refusing to load global '{module}.{name}' "
                                    "(only numpy array globals are allowed)") from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._path}: refusing persistent id {pid!r}")


def safe_pickle_load(path) -> object:
    """Load a pickle file with :class:`RestrictedUnpickler` (``encoding="bytes"``, as CIFAR-10's
    Python 2 pickles need). Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, path, encoding="bytes").load()
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated/corrupt pickles raise many types
            raise ValueError(f"{path}: not a readable pickle: {type(e).__name__}: {e}") from e


def _bytes_keys(obj, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if isinstance(k, str):
            k = k.encode("latin1")
        out[k] = v
    return out


def _read_cifar_meta(path: Path) -> list[str]:
    meta = _bytes_keys(safe_pickle_load(path), path)
    if b"label_names" not in meta:
        raise ValueError(f"{path}: missing key b'label_names' (has {sorted(meta)})")
    names = meta[b"label_names"]
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"{path}: key b'label_names' must be a non-empty list")
    out = []
    for i, n in enumerate(names):
        if isinstance(n, bytes):
            n = n.decode("utf-8")
        if not isinstance(n, str):
            raise ValueError(f"{path}: key b'label_names'[{i}] is {type(n).__name__}, not text")
        out.append(n)
    return out


def _read_cifar_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _bytes_keys(safe_pickle_load(path), path)
    for key in (b"data", b"labels"):
        if key not in batch:
            raise ValueError(f"{path}: missing key {key!r} (has {sorted(batch)})")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray):
        raise ValueError(f"{path}: key b'data' must be a numpy array, got {type(data).__name__}")
    if data.dtype != np.uint8:
        raise ValueError(f"{path}: key b'data' must be uint8, got {data.dtype}")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: key b'data' must have shape [N, 3072], got {data.shape}")
    raw = batch[b"labels"]
    if not isinstance(raw, (list, tuple, np.ndarray)):
        raise ValueError(f"{path}: key b'labels' must be a list, got {type(raw).__name__}")
    try:
        labels = np.asarray(raw)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"{path}: key b'labels' is not a list of ints: {e}") from e
    if labels.size == 0 and data.shape[0] == 0:
        labels = labels.astype(np.int64)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: key b'labels' must be a flat list of ints, got dtype "
                         f"{labels.dtype} shape {labels.shape}")
    if labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: key b'labels' has {labels.shape[0]} entries but b'data' has "
                         f"{data.shape[0]} rows")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(f"{path}: key b'labels' has label {int(bad)} outside 0..{n_classes - 1}")
    return data, labels.astype(np.int64)


def cifar10_root(root=None) -> Path:
    """The directory holding the CIFAR-10 batch files: ``root`` if given, else
    ``$NEUROSIM_DATA/cifar-10-batches-py``, else ``~/.neurosim/data/cifar-10-batches-py``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("NEUROSIM_DATA")
    base = Path(env) if env else Path.home() / ".neurosim" / "data"
    return base / CIFAR10_DIR


def load_cifar10(split: str = "test", *, root=None, img_size: int = 32,
                 in_channels: int = 3) -> StaticDataset:
    """CIFAR-10 from its python pickle batches (``data_batch_1..5``, ``test_batch``,
    ``batches.meta``) in ``root`` (see :func:`cifar10_root`); nothing is downloaded.

    Pickles are read with :class:`RestrictedUnpickler` (never executes code from the file).
    ``in_channels=3`` keeps RGB; ``in_channels=1`` converts to luma (BT.601 weights).
    Images are scaled to [0, 1] and resized to ``img_size`` pixels (bilinear).
    """
    check_split(split)
    img_size = _check_pos_int("img_size", img_size)
    in_channels = _check_pos_int("in_channels", in_channels)
    if in_channels not in (1, 3):
        raise ValueError(f"cifar10: in_channels must be 1 (luma) or 3 (RGB), got {in_channels}")
    base = cifar10_root(root)
    if not base.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {base} (set root= or "
                                "NEUROSIM_DATA; it must hold the python pickle batches)")
    names = CIFAR10_TRAIN_FILES if split == "train" else CIFAR10_TEST_FILES
    paths = [base / n for n in (CIFAR10_META_FILE, *names)]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"CIFAR-10 file not found: {p}")
    classes = _read_cifar_meta(paths[0])
    parts = [_read_cifar_batch(p, len(classes)) for p in paths[1:]]
    data = np.concatenate([d for d, _ in parts]) if parts else np.zeros((0, 3072), np.uint8)
    y = np.concatenate([lab for _, lab in parts])
    x = data.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0)
    if in_channels == 1:
        w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)[None, :, None, None]
        x = np.clip((x * w).sum(axis=1, keepdims=True, dtype=np.float32), 0.0, 1.0)
    x = resize_images(x, img_size, in_channels)
    meta = {"source": str(base), "files": [p.name for p in paths[1:]],
            "original_size_px": (32, 32), "img_size_px": img_size, "in_channels": in_channels,
            "value_range": (0.0, 1.0)}
    return StaticDataset(x, y, "cifar10", classes, split, meta)
