"""Train a searched architecture with a fixed budget (the rank-correlation study's ground
truth) and the data it trains on.

:func:`study_arrays` loads a workload for models built for an ``InputSpec``: static images are
loaded at the spec's size and channels; event streams are binned into the spec's T frames and,
when the spec's image side is the sensor's divided by an integer k, summed over k x k pixel
blocks (event counts are preserved). So the ``micro-*`` spaces (built for 32x32 motion frames
with pools after SPS stages 2 and 3) can be studied at 16x16 with one pool (after stage 3):
same parameters, same 8x8 tokens, same FLOPs, a quarter of the stem's work.

:func:`train_arch` is an executor task: plain data in, plain data out, one torch thread, seeded
(weights by ``seed``, batches by ``seed``), so its accuracy does not depend on where it ran.
"""
from __future__ import annotations

import time

import numpy as np

from .space import Arch, InputSpec


def _pool(frames: np.ndarray, k: int) -> np.ndarray:
    """Sum event-count frames [N, T, P, H, W] over k x k pixel blocks."""
    N, T, P, H, W = frames.shape
    return frames.reshape(N, T, P, H // k, k, W // k, k).sum(axis=(4, 6))


def _split(workload: str, split: str, n: int | None, inputs: InputSpec):
    import workloads
    if workload in workloads.EVENT_WORKLOADS:
        kw = {"n": n} if workload == "motion" and n is not None else {}
        ds = workloads.load(workload, split=split, **kw)
        if n is not None and len(ds) > n:
            ds = ds.subset(n)
        x = ds.to_frames(inputs.T)
        P, H = x.shape[2], x.shape[3]
        if P != inputs.in_channels:
            raise ValueError(f"workload {workload!r} has {P} polarities, the space's models "
                             f"take in_channels={inputs.in_channels}")
        if H != inputs.img_size:
            if H % inputs.img_size:
                raise ValueError(f"workload {workload!r} gives {H}x{H} frames; the space's "
                                 f"img_size {inputs.img_size} must divide {H}")
            x = _pool(x, H // inputs.img_size)
    else:
        ds = workloads.load(workload, split=split, img_size=inputs.img_size,
                            in_channels=inputs.in_channels)
        if n is not None:
            ds = ds.subset(n)
        x = ds.x
    y = np.asarray(ds.y, dtype=np.int64)
    if y.size and y.max() >= inputs.num_classes:
        raise ValueError(f"workload {workload!r} has labels up to {int(y.max())}, the space's "
                         f"models have num_classes={inputs.num_classes}")
    return np.ascontiguousarray(x, dtype=np.float32), y


def study_arrays(workload: str, inputs: InputSpec, train_n: int | None = None,
                 test_n: int | None = None) -> dict:
    """{"x_train", "y_train", "x_test", "y_test"} for models built for ``inputs`` (module
    doc); ``*_n`` keep the first samples of each split."""
    x_tr, y_tr = _split(workload, "train", train_n, inputs)
    x_te, y_te = _split(workload, "test", test_n, inputs)
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


def train_arch(arch: dict, inputs: dict, data: dict, *, epochs: int, lr: float = 2e-3,
               batch_size: int = 64, seed: int = 0) -> dict:
    """Task: train the ``autost`` model of ``arch`` (weights seeded ``seed``) for ``epochs`` on
    ``data`` (:func:`study_arrays`); returns final and best test accuracy, seconds, history."""
    import torch

    from .syops import build_untrained
    from ..train import TrainConfig, fit
    threads = torch.get_num_threads()
    try:
        a, spec = Arch.from_dict(arch), InputSpec(**inputs)
        model = build_untrained(a, spec, seed)
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, shift_px=0, seed=seed,
                          threads=1)
        res = fit(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"], cfg,
                  progress=False)
    finally:
        torch.set_num_threads(threads)
    return {"accuracy": res.final_test_accuracy, "best_accuracy": res.best_test_accuracy,
            "train_s": time.perf_counter() - t0,
            "history": [{k: h[k] for k in ("epoch", "loss", "train_acc", "test_acc")}
                        for h in res.history]}


__all__ = ["study_arrays", "train_arch"]
