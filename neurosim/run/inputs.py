"""Joins a model's configuration with a workload: the arrays the model consumes.

Static workloads are loaded at the model's ``img_size`` / ``in_channels`` ([N, C, H, W] in
[0, 1]); event workloads are binned into the model's T frames ([N, T, P, H, W]).
"""
from __future__ import annotations

import numpy as np

import workloads


def model_input_spec(model) -> dict:
    """img_size, in_channels, T and num_classes from a zoo model's stored configuration."""
    cfg = getattr(model, "neurosim_config", None)
    if cfg is None:
        raise ValueError("model has no neurosim_config; build it with models.create")
    c = cfg["config"]
    missing = [k for k in ("img_size", "in_channels", "num_classes") if k not in c]
    if missing:
        raise ValueError(f"model {cfg['name']!r} configuration lacks {missing}")
    return {"img_size": int(c["img_size"]), "in_channels": int(c["in_channels"]),
            "T": int(c.get("T", 1)), "num_classes": int(c["num_classes"])}


def load_for_model(model, workload: str, split: str, n: int | None = None):
    """(x, y, dataset) for ``model`` from ``workload``; ``n`` keeps the first n samples."""
    spec = model_input_spec(model)
    if workload in workloads.EVENT_WORKLOADS:
        ds = workloads.load(workload, split=split)
        if n is not None:
            ds = ds.subset(n)
        x = ds.to_frames(spec["T"])
        P, H, W = x.shape[2:]
        if (P, H, W) != (spec["in_channels"], spec["img_size"], spec["img_size"]):
            raise ValueError(
                f"workload {workload!r} gives frames of {P} polarities x {H}x{W} pixels, but the "
                f"model expects in_channels={spec['in_channels']}, img_size={spec['img_size']}: "
                f"create it with --set in_channels={P} --set img_size={H}")
    else:
        ds = workloads.load(workload, split=split, img_size=spec["img_size"],
                            in_channels=spec["in_channels"])
        if n is not None:
            ds = ds.subset(n)
        x = ds.x
    y = np.asarray(ds.y, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= spec["num_classes"]):
        raise ValueError(f"workload {workload!r} has labels up to {int(y.max())}, but the model "
                         f"has num_classes={spec['num_classes']}")
    return x, y, ds


def model_arrays(model, workload: str):
    """((x_train, y_train), (x_test, y_test), workload name) for training and evaluation."""
    x_tr, y_tr, _ = load_for_model(model, workload, "train")
    x_te, y_te, _ = load_for_model(model, workload, "test")
    return (x_tr, y_tr), (x_te, y_te), workload


def engine_inputs(model, workload: str, split: str = "test", n: int | None = None):
    """(inputs, labels, input_window_s) for the chip engines.

    Static images stay [N, C, H, W] (graded input: the first layer's MACs); event frames
    become [T, N, P, H, W] spike counts (no MACs), and ``input_window_s`` is the real duration
    of one time bin of the stream (for the async engine's clock), else None.
    """
    x, y, ds = load_for_model(model, workload, split, n)
    if x.ndim == 5:
        T = x.shape[1]
        return np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4)), y, ds.duration_us * 1e-6 / T
    return x, y, None
