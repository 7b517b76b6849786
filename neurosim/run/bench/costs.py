"""Measure the path cost model of this machine (``chips.engines.paths``): for each layer kind,
time the engine's own executor step on its scatter and on its dense path at a few batch sizes,
densities and layer sizes, and fit the model's constants by non-negative least squares.

    scatter time = scatter_fixed_s + scatter_scan_s x elements + scatter_event_s x events
    dense time   = dense_fixed_s + dense_weight_s x weights + dense_mac_s x MACs

``dense_f64_factor`` is float64's time over that of the plan spike inputs take (int8 where the
machine allows it, ``chips.engines.kernels.int8``, else float32) for the same dense product.
Every point is the best of ``repeat`` timed samples (the least disturbed by other processes),
one thread.
``measure_path_model`` returns the model and the raw points; ``neurosim bench kernels`` saves
the model as this machine's cost file, which every engine then loads.
"""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G
from neurosim.run.bench.common import timed

# reference layers per kind: (big, small) shapes; big ones resemble the bench model's layers
LAYERS = {
    "conv": [dict(ci=64, co=64, hw=28, k=3), dict(ci=8, co=8, hw=8, k=3)],
    "conv1x1": [dict(ci=64, co=128, hw=28, k=1), dict(ci=8, co=8, hw=8, k=1)],
    "depthwise": [dict(ci=64, co=64, hw=28, k=7, g=64), dict(ci=8, co=8, hw=8, k=7, g=8)],
    "linear": [dict(ci=2048, co=2048), dict(ci=64, co=64)],
    "matmul": [dict(c=256, hw=14, heads=8), dict(c=16, hw=4, heads=2)],
}
SCATTER_POINTS = [(1, 0.10), (4, 0.10), (1, 0.02), (4, 0.02), (4, 0.30)]   # big layer (B, rho)


def _node(kind: str, rng, spec: dict):
    """A graph node of ``kind`` with random int8 weights, and its input shapes."""
    if kind == "linear":
        w = rng.integers(-128, 128, (spec["co"], spec["ci"]))
        return G.Linear("fc", (spec["co"],), in_shape=(spec["ci"],), weight=w), [(spec["ci"],)]
    if kind == "matmul":
        c, hw = spec["c"], spec["hw"]
        op = G.SpikeMatmul("mm", (c, hw, hw), heads=spec["heads"], scale=0.125)
        return op, [(hw, hw, c)] * 3
    g, k, hw = spec.get("g", 1), spec["k"], spec["hw"]
    w = rng.integers(-128, 128, (spec["co"], spec["ci"] // g, k, k))
    op = G.Conv("conv", (spec["co"], hw, hw), in_shape=(spec["ci"], hw, hw), weight=w,
                padding=k // 2, groups=g)
    return op, [(hw, hw, spec["ci"])]


def _executor(kind: str, op, path: str, model):
    from chips.engines.executors import EXECUTORS
    opts = {"path": path, "dense_threshold": None, "model": model}
    n_in = 3 if kind == "matmul" else 1
    return EXECUTORS[type(op)](op, ["spike"] * n_in, [(0, op.shape[0])], opts)


def _work(kind: str, e, ins: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(events, elements, dense MACs, weights) of one step, as the executor sees them."""
    from chips.engines.exec_synaptic import matmul_ops_batch
    B = ins[0].shape[0]
    elements = float(sum(a.size for a in ins))
    if kind == "linear":
        return float(ins[0].sum()) * e.op.shape[0], elements, B * e.op.weight.size, e.op.weight.size
    if kind == "matmul":
        ck = ins[0].shape[-1]
        return float(matmul_ops_batch(e.op, *ins).sum()), elements, B * e.macs(ck), 0.0
    return float(e.ops_batch(ins[0]).sum()), elements, B * e.dense_macs, e.op.weight.size


def _step_time(e, ins: list[np.ndarray], repeat: int, sample_s: float) -> float:
    from neurosim.ir.counts import CATEGORIES
    counts = np.zeros((ins[0].shape[0], 1, len(CATEGORIES)), np.int64)
    return timed(lambda: e.step_batch(ins, counts), repeat, sample_s)[0]


def _nnls(rows: list[list[float]], times: list[float]) -> list[float]:
    """Non-negative least squares of ``times`` on ``rows`` (columns scaled to 1)."""
    from scipy.optimize import nnls
    A = np.asarray(rows, float)
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(A / scale, np.asarray(times, float))
    return [float(c / s) for c, s in zip(coef, scale)]


FLOOR = 1e-13          # constants must be positive; a fit that finds no cost gets this


def _point(kind: str, op, shapes, path: str, B: int, rho: float, rng, repeat: int,
           sample_s: float) -> dict:
    """One timed executor step: its work (events, elements, MACs, weights) and seconds."""
    from chips.engines.paths import PathModel
    ins = [(rng.random((B,) + s) < rho).astype(np.float64) for s in shapes]
    e = _executor(kind, op, path, PathModel.defaults())
    ev, el, macs, w = _work(kind, e, ins)
    return {"B": B, "density": rho, "events": ev, "elements": el, "macs": macs, "weights": w,
            "s": _step_time(e, ins, repeat, sample_s)}


def measure_kind(kind: str, rng, repeat: int, sample_s: float) -> tuple[dict, dict]:
    """Constants of one kind and the timed points they come from. Fixed costs: the small
    layer's step (one input; scatter: no events); per-element and per-event scatter costs:
    least squares over the big layer's points at several batch sizes and densities; per-MAC
    dense cost: the big layer at B = 8 against B = 1, the rest of B = 1's time per weight."""
    (big, big_shapes), (small, small_shapes) = (_node(kind, rng, s) for s in LAYERS[kind])
    args = (rng, repeat, sample_s)
    s_fix = _point(kind, small, small_shapes, "scatter", 1, 0.0, *args)
    s_pts = [_point(kind, big, big_shapes, "scatter", B, rho, *args)
             for B, rho in SCATTER_POINTS]
    scan, event = _nnls([[p["elements"], p["events"]] for p in s_pts],
                        [max(0.0, p["s"] - s_fix["s"]) for p in s_pts])
    d_fix = _point(kind, small, small_shapes, "dense", 1, 0.15, *args)
    d1, d8 = (_point(kind, big, big_shapes, "dense", B, 0.15, *args) for B in (1, 8))
    mac = max(d8["s"] - d1["s"], 0.0) / (d8["macs"] - d1["macs"])
    rest = d1["s"] - d_fix["s"] - mac * d1["macs"]
    weight = max(rest, 0.0) / d1["weights"] if d1["weights"] and kind != "matmul" else 0.0
    f64 = _f64_factor(kind, big, rng, repeat, sample_s)
    costs = dict(scatter_fixed_s=max(s_fix["s"], FLOOR), scatter_scan_s=max(scan, FLOOR),
                 scatter_event_s=max(event, FLOOR), dense_fixed_s=max(d_fix["s"], FLOOR),
                 dense_weight_s=weight, dense_mac_s=max(mac, FLOOR), dense_f64_factor=f64)
    return costs, {"scatter_fixed": s_fix, "scatter": s_pts, "dense_fixed": d_fix,
                   "dense": [d1, d8], "f64_factor": f64}


def _f64_factor(kind: str, op, rng, repeat: int, sample_s: float) -> float:
    """float64 time / the time of the plan spike inputs take (convs: int8 where available;
    linear and matmul: float32) of the same exact dense product (B = 4), at least 1."""
    from chips.engines import kernels as K
    B = 4
    if kind == "matmul":
        hw, c = op.shape[1], op.shape[0]
        a = (rng.random((B, op.heads, hw * hw, c // op.heads)) < 0.15)
        t = [timed(lambda dt=dt: a.astype(dt) @ (a.astype(dt).transpose(0, 1, 3, 2) @
                                                 a.astype(dt)), repeat, sample_s)[0]
             for dt in (np.float32, np.float64)]
    elif kind == "linear":
        q = (rng.random((B, op.in_shape[0])) < 0.15).astype(np.float64)
        w = {dt: np.ascontiguousarray(op.weight.T, dt) for dt in (np.float32, np.float64)}
        t = [timed(lambda p=p: K.matmul_exact(q, w.__getitem__, (p, 1, 0)), repeat,
                   sample_s)[0] for p in ("float32", "float64")]
    else:
        from chips.engines.paths import PathModel
        C, H, W = op.in_shape
        q = (rng.random((B, H, W, C)) < 0.15).astype(np.float64)
        e = _executor(kind, op, "dense", PathModel.defaults())
        own = e.plan(1, e.fan_in)[0]          # what spike inputs take: int8 where available
        t = [timed(lambda p=p: K.conv_exact_nhwc(q, e.weights, op.stride, op.padding,
                                                 op.groups, p, signed=False), repeat,
                   sample_s)[0] for p in (own, ("float64", 1, 0))]
    return max(1.0, t[1] / t[0])


def measure_path_model(repeat: int = 5, seed: int = 0, sample_s: float = 0.005):
    """(PathModel of this machine, the measured points per kind), one thread."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    from chips.engines.paths import PathModel, check_costs, machine_fingerprint
    rng = np.random.default_rng(seed)
    old_nb, old_torch = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    costs, points = {}, {}
    try:
        with threadpool_limits(1):
            for kind in LAYERS:
                costs[kind], points[kind] = measure_kind(kind, rng, repeat, sample_s)
    finally:
        numba.set_num_threads(old_nb)
        torch.set_num_threads(old_torch)
    fp = machine_fingerprint()
    return PathModel(check_costs(costs), f"measured on {fp['cpu_model']}"), points


def linear_in_engine(model, size: int = 4096, density: float = 0.10, repeat: int = 7,
                     seed: int = 0, sample_s: float = 0.02) -> dict:
    """Synaptic events per second of a ``size`` x ``size`` int8 linear layer at ``density``,
    one input, through the engine's executor with its automatic path choice (one thread)."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(seed)
    op, shapes = _node("linear", rng, dict(ci=size, co=size))
    e = _executor("linear", op, "auto", model)
    x = [(rng.random((1,) + shapes[0]) < density).astype(np.float64)]
    old_nb, old_torch = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            t = _step_time(e, x, repeat, sample_s)
    finally:
        numba.set_num_threads(old_nb)
        torch.set_num_threads(old_torch)
    events = float(x[0].sum()) * size
    return {"size": size, "density": density, "synaptic_events": events, "s_per_step": t,
            "events_per_s": events / t, "path": "dense" if e.dense_steps else "scatter",
            "path_model": model.source}
