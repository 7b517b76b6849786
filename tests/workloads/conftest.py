"""Fixtures for the workloads tests: tiny CIFAR-10 batches in the originals' format."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

_RECONSTRUCT = np.empty(0).__reduce__()[0]


class Py2Pickler(pickle._Pickler):
    """Pickles like Python 2's cPickle did for the CIFAR-10 originals (protocol 2): text and
    bytes as BINSTRING (read back as bytes with encoding="bytes"), numpy globals under their
    NumPy 1.x module names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string

    def save_global(self, obj, name=None):
        names = {id(np.ndarray): ("numpy", "ndarray"), id(np.dtype): ("numpy", "dtype"),
                 id(_RECONSTRUCT): ("numpy.core.multiarray", "_reconstruct")}
        module, qual = names[id(obj)]
        self.write(pickle.GLOBAL + f"{module}\n{qual}\n".encode("ascii"))
        self.memoize(obj)


def dump(obj, path: Path, style: str) -> None:
    with open(path, "wb") as f:
        if style == "py2":
            Py2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=2)


def write_cifar(root: Path, n_train_per_batch: int = 3, n_test: int = 4, style: str = "py2",
                seed: int = 0) -> dict:
    """Write data_batch_1..5, test_batch and batches.meta under ``root``; returns the arrays."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    dump({b"num_cases_per_batch": n_train_per_batch, b"label_names": names, b"num_vis": 3072},
         root / "batches.meta", style)
    out = {}
    for name, n in [(f"data_batch_{i}", n_train_per_batch) for i in range(1, 6)] + \
            [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        dump({b"batch_label": f"batch {name}".encode(), b"labels": labels, b"data": data,
              b"filenames": [f"img_{i}.png".encode() for i in range(n)]}, root / name, style)
        out[name] = (data, labels)
    return out


@pytest.fixture
def cifar_writer():
    """``write_cifar(root, n_train_per_batch=3, n_test=4, style="py2"|"py3")``."""
    return write_cifar


@pytest.fixture
def py2_dump():
    """``py2_dump(obj, path)`` pickles like the CIFAR-10 originals (Python 2, protocol 2)."""
    return lambda obj, path: dump(obj, path, "py2")
