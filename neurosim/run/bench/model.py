"""Whole-model benchmark, the user's case: a test set through PyTorch (batched) and through the
chip engines, side by side, and the set-up time before the first run.

Cases (each figure the median of ``repeat`` runs with min and max; one thread for torch, Numba
and BLAS; lowering, mapping, engine construction and Numba compilation excluded, a warm-up run
first):

* ``tiny-B1`` / ``tiny-B100``: the shipped meta-spikeformer-tiny checkpoint on the first B
  digits test images: torch forward of the batch, the sync engine (tianjic-x16), the async
  engine in windowed mode (speck-xl);
* ``8-384-224``: meta-spikeformer-8-384 at 224x224, one random image, thresholds calibrated so
  every layer fires ~15% (untrained weights; mapped best-effort, it does not fit the chips);
* ``8-384-224-sparse``: the same calibrated to ~2% firing per layer, where the engines take
  the scatter path (the dense/scatter choice per layer and step is in the result);
* ``setup``: lowering + mapping of meta-spikeformer-8-384 (224x224) on tianjic-x16 from a
  checkpoint file, cold (empty set-up cache) and cached (``neurosim.run.cache``).

The machine's load average is recorded before and after every case.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from neurosim.run.bench.common import load_avg, machine_info, ratio, repeats

SYNC_CHIP, ASYNC_CHIP = "tianjic-x16", "speck-xl"
TARGETS = {"tiny-B100": {"sync_over_torch": 2.0, "async_over_sync": 1.5},
           "8-384-224": {"sync_over_torch": 1.0, "async_over_sync": 1.5},
           "8-384-224-sparse": {"sync_over_torch": 1.0},
           "setup": {"cold_s": 10.0, "cached_s": 1.0}}
CASES = ("tiny", "8-384", "sparse", "setup")


def bench_model(repeat: int = 5, threads: int = 1, batch: int = 100, seed: int = 0,
                cases: tuple = CASES, async_engine: bool = True, img_size: int = 224,
                fifo_depth: int | None = None) -> dict:
    """Run the benchmark ``cases`` (module doc) and return a JSON-able dict: per case the
    figures of torch, sync and async, their ratios, paths taken, firing rates and load.
    ``fifo_depth``: the async engine's FIFO depth (default the chip's)."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    bad = [c for c in cases if c not in CASES]
    if bad:
        raise ValueError(f"unknown benchmark case(s) {bad}; cases: {', '.join(CASES)}")
    old_t, old_nb = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    out = {"threads": threads, "repeat": repeat, "machine": machine_info(), "cases": {},
           "async_fifo_depth": fifo_depth}
    opts = {} if fifo_depth is None else {"fifo_depth": fifo_depth}
    try:
        with threadpool_limits(threads):          # numpy's BLAS too: same thread count for all
            if "tiny" in cases:
                for B in (1, batch):
                    out["cases"][f"tiny-B{B}"] = _tiny(B, repeat, async_engine, opts)
            for case, rate in (("8-384", 0.15), ("sparse", 0.02)):
                if case in cases:
                    name = "8-384-224" + ("-sparse" if case == "sparse" else "")
                    out["cases"][name] = _big(rate, repeat, seed, async_engine, img_size, opts)
            if "setup" in cases:
                out["cases"]["setup"] = _setup(repeat, seed, img_size)
    finally:
        torch.set_num_threads(old_t)
        numba.set_num_threads(old_nb)
    out["acceptance"] = acceptance(out["cases"])
    out["load_avg_end"] = load_avg()
    return out


def acceptance(cases: dict) -> dict:
    """Each measured ratio or time against its target (``TARGETS``): value, target, met."""
    out = {}
    for case, targets in TARGETS.items():
        c = cases.get(case)
        if c is None:
            continue
        for k, target in targets.items():
            v = c.get(k)
            if v is not None:
                out[f"{case}.{k}"] = {"value": v, "target": target, "met": bool(v <= target)}
    return out


# ----------------------------------------------------------------------------- engines
def _engines(graph, x, repeat: int, async_engine: bool, async_opts: dict) -> dict:
    """Figures of the sync and async (windowed) engines on ``x``, their paths, the results."""
    from chips.mapping import map_graph
    from neurosim.run.simulate import build_engine

    out = {}
    runs = {}
    modes = [("sync", SYNC_CHIP)] + ([("async", ASYNC_CHIP)] if async_engine else [])
    for mode, chip in modes:
        mapping = map_graph(graph, chip, strict=False)
        eng = build_engine(graph, chip, mode, mapping=mapping, batch_size=len(x),
                           async_opts=async_opts)
        out[mode], res = repeats(lambda: eng.run(x), repeat)
        out[mode]["chip"] = chip
        out[mode]["parts"] = int(sum(len(mapping.parts(n)) for n in eng.execs))
        out[mode]["synaptic_ops"] = int(res.totals()["ac"] + res.totals()["mac"])
        dense = sum(res.stats.get("dense_steps", {}).values())
        scatter = sum(res.stats.get("scatter_steps", {}).values())
        if dense + scatter:
            out[mode]["scatter_share"] = scatter / (dense + scatter)
        out[mode]["path_model"] = res.stats.get("path_model")
        runs[mode] = res
    if "async" in runs:
        out["async_equals_sync"] = bool(np.array_equal(runs["async"].logits,
                                                       runs["sync"].logits))
    return out


def _case(torch_fig: dict, eng: dict, extra: dict) -> dict:
    out = {"load_avg_start": extra.pop("load_avg_start"), "torch": torch_fig, **eng, **extra}
    out["sync_over_torch"] = ratio(eng["sync"], torch_fig)
    if "async" in eng:
        out["async_over_sync"] = ratio(eng["async"], eng["sync"])
    out["load_avg_end"] = load_avg()
    return out


def _torch_figure(model, x: np.ndarray, repeat: int) -> dict:
    import torch
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    with torch.no_grad():
        fig, _ = repeats(lambda: model(xt), repeat)
    return fig


def _tiny(B: int, repeat: int, async_engine: bool, async_opts: dict) -> dict:
    """The shipped meta-spikeformer-tiny on the first B digits test images."""
    import models
    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import engine_inputs, load_for_model

    load0 = load_avg()
    model = models.load_checkpoint(models.shipped_checkpoint("meta-spikeformer-tiny"))
    x, _, _ = engine_inputs(model, "digits", "test", B)
    x_cal, _, _ = load_for_model(model, "digits", "train", n=64)
    graph = lower(model, x_cal)
    torch_fig = _torch_figure(model, x, repeat)
    eng = _engines(graph, x, repeat, async_engine, async_opts)
    return _case(torch_fig, eng, {"load_avg_start": load0, "model": "meta-spikeformer-tiny",
                                  "checkpoint": "shipped", "workload": "digits test", "B": B})


def _big(rate: float, repeat: int, seed: int, async_engine: bool, img_size: int,
         async_opts: dict) -> dict:
    """meta-spikeformer-8-384, one random image, every layer calibrated to fire ~``rate``."""
    from neurosim.frontends.lower import lower
    from neurosim.run.bench.calibrate import calibrate_firing_rates

    load0 = load_avg()
    model = _calibrated(rate, seed, img_size)
    rng = np.random.default_rng(seed + 1)
    x = rng.random((1, 3, img_size, img_size), dtype=np.float32)
    rates = list(calibrate_firing_rates(model, x).values())
    graph = lower(model, x)
    torch_fig = _torch_figure(model, x, repeat)
    eng = _engines(graph, x, repeat, async_engine, async_opts)
    return _case(torch_fig, eng, {
        "load_avg_start": load0, "model": "meta-spikeformer-8-384", "img_size": img_size,
        "B": 1, "firing_rate_target": rate, "firing_rate_mean": float(np.mean(rates)),
        "firing_rate_median": float(np.median(rates)), "firing_rate_max": float(max(rates)),
        "nodes": len(graph)})


def _calibrated(rate: float, seed: int, img_size: int):
    import torch
    import models
    from neurosim.run.bench.calibrate import calibrate_firing

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = models.create("meta-spikeformer-8-384", img_size=img_size, T=1)
    calib = torch.from_numpy(rng.random((4, 3, img_size, img_size), dtype=np.float32))
    calibrate_firing(model, calib, rate=rate, seed=seed)
    return model


def _setup(repeat: int, seed: int, img_size: int) -> dict:
    """Lowering + mapping of meta-spikeformer-8-384 from a checkpoint file on tianjic-x16:
    cold (an empty set-up cache each time) and cached (a warm one)."""
    import models
    from chips.spec import load_chip
    from neurosim.frontends.lower import lower
    from neurosim.run.cache import SetupCache

    load0 = load_avg()
    chip = load_chip(SYNC_CHIP)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = models.save_checkpoint(_calibrated(0.15, seed, img_size),
                                      Path(tmp) / "model.safetensors")
        t = time.perf_counter()
        model = models.load_checkpoint(ckpt)
        load_s = time.perf_counter() - t
        x_cal = np.random.default_rng(seed).random((4, 3, img_size, img_size), dtype=np.float32)
        options = {"calibration": f"uniform random images, seed {seed}, 4", "weight_bits": 8}

        def run(root):
            cache = SetupCache(root)
            graph, lk = cache.lowered(ckpt, options, lambda: lower(model, x_cal))
            mapping, mk = cache.mapped(graph, chip, strict=False)
            return graph, mapping, (lk.status, mk.status)

        def cold():
            r = run(Path(tmp) / f"cold-{time.perf_counter_ns()}")
            if r[2] != ("miss", "miss"):
                raise RuntimeError(f"cold set-up found a cache entry: {r[2]}")
            return r

        cold_fig, (graph, mapping, _) = repeats(cold, repeat, warmup=0)
        warm_root = Path(tmp) / "warm"
        run(warm_root)
        cached_fig, (_, _, status) = repeats(lambda: run(warm_root), repeat, warmup=0)
        if status != ("hit", "hit"):
            raise RuntimeError(f"cached set-up missed the cache: {status}")
    parts = int(sum(len(mapping.parts(n)) for n in graph.order()))
    return {"load_avg_start": load0, "model": "meta-spikeformer-8-384", "img_size": img_size,
            "chip": SYNC_CHIP, "parts": parts, "checkpoint_load_s": load_s,
            "what": "lowering (4 calibration images) + mapping, from a checkpoint file",
            "cold": cold_fig, "cached": cached_fig, "cold_s": cold_fig["median_s"],
            "cached_s": cached_fig["median_s"], "load_avg_end": load_avg()}
