"""Kernel micro-benchmarks: how fast this machine runs the chip engines' inner loops.

``bench_kernels`` times, on one thread, the Numba kernels of ``chips.engines.kernels`` on realistic
layer workloads and the dense PyTorch equivalents of the same workloads, and returns a JSON-able
dict (units in the key names). Rates are *synaptic events per second*: the number of
(input event, target synapse) pairs delivered, i.e. the sum over events of count * fan-out;
dense PyTorch rates divide that same count by PyTorch's time (so they compare the two ways of
doing the same useful work; ``*_dense_MAC_per_s`` gives PyTorch's raw throughput).

Numba compilation is done before timing (warm-up call). Each sample repeats the kernel enough
times to last about ``sample_s``; the best sample is the headline figure (the least disturbed by
other processes) and the median is reported beside it. The path cost model the engines use to
choose scatter or dense per layer is measured by :mod:`neurosim.run.bench.costs`.
"""
from __future__ import annotations

import numpy as np

from neurosim.run.bench.common import machine_info, timed

# seed-facts §7, measured on this machine class (one thread)
TARGETS = {
    "conv3x3_events_per_s": 2.5e9,
    "linear_events_per_s": 3.0e9,
    "lif_updates_per_s": 1.4e9,
    "memcpy_GB_per_s": 23.0,
}


def _per(t: tuple[float, float], k: int) -> tuple[float, float]:
    return t[0] / k, t[1] / k


def _rates(prefix: str, work: float, times: tuple[float, float], unit: str) -> dict:
    best, med = times
    return {f"{prefix}_{unit}": work / best, f"{prefix}_{unit}_median": work / med,
            f"{prefix}_s_per_call": best}


def bench_kernels(repeat: int = 15, seed: int = 0, sample_s: float = 0.02,
                  conv_hw: int = 56, conv_channels: int = 64, conv_density: float = 0.15,
                  linear_size: int = 4096, linear_density: float = 0.10,
                  copy_mib: int = 256, n_sets: int = 4) -> dict:
    """Time the kernels on one thread and return figures, workload and machine info.

    ``repeat`` timed samples per kernel (best and median reported); ``n_sets`` different
    random input frames per layer, cycled inside each sample; rates are per frame."""
    import numba
    import torch

    rng = np.random.default_rng(seed)
    timing = dict(repeat=repeat, sample_s=sample_s, n_sets=n_sets)
    old_nb, old_torch = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    out: dict = {}
    try:
        conv_work = _bench_conv(out, rng, conv_hw, conv_channels, conv_density, **timing)
        lin_work = _bench_linear(out, rng, linear_size, linear_density, **timing)
        neuron_work = _bench_neurons(out, rng, conv_hw * conv_hw * conv_channels, conv_channels,
                                     repeat, sample_s)
        out["memcpy_GB_per_s"], out["memcpy_GB_per_s_median"] = _bench_memcpy(copy_mib, repeat)
    finally:
        numba.set_num_threads(old_nb)
        torch.set_num_threads(old_torch)
    out["ratios"] = {
        "conv3x3_scatter_over_torch_dense":
            out["conv3x3_events_per_s"] / out["conv3x3_torch_dense_events_per_s"],
        "linear_scatter_over_torch_dense":
            out["linear_events_per_s"] / out["linear_torch_dense_events_per_s"],
        **{f"{k}_over_target": out[k] / v for k, v in TARGETS.items()},
    }
    out["targets"] = dict(TARGETS)
    out["workload"] = {
        "threads": 1, "repeat": repeat, "seed": seed, "sample_s": sample_s, **conv_work,
        **lin_work, **neuron_work,
        "memcpy": {"MiB": copy_mib, "note": "bytes copied per second (read + write = 2x)"},
        "torch_dense": {"dtype": "float32", "conv": "F.conv2d NCHW batch 1",
                        "linear": "F.linear batch 1"},
    }
    out["machine"] = machine_info()
    return out


def _bench_conv(out: dict, rng, H: int, C: int, density: float, *, repeat: int,
                sample_s: float, n_sets: int) -> dict:
    """conv3x3 address-mapped scatter (channels-last, int8 weights, int32 acc), its depthwise
    variant, and dense torch float32 conv2d on the same frames; returns the workload."""
    import torch
    import torch.nn.functional as F

    from chips.engines import kernels as K
    from neurosim.ir.addressing import conv_fan_out

    W = H
    w = rng.integers(-128, 128, (C, C, 3, 3)).astype(np.int8)
    w_cl = K.conv_weight_cl(w)
    # several input frames, cycled, so that no single event set stays hot in the caches
    frames = [(rng.random((H, W, C)) < density).astype(np.int32) for _ in range(n_sets)]
    ev = [K.map_to_events(f) for f in frames]
    acc = np.zeros((H, W, C), np.int32)
    fan = conv_fan_out((C, H, W), C, 3, 1, 1, 1)
    fan_dw = conv_fan_out((C, H, W), C, 3, 1, 1, C)
    conv_syn = sum(int((np.moveaxis(f, -1, 0) * fan).sum()) for f in frames)
    dw_syn = sum(int((np.moveaxis(f, -1, 0) * fan_dw).sum()) for f in frames)

    def conv_all(wc, g):
        tot = 0
        for ys, xs, cs, cn in ev:
            tot += K.conv_scatter(ys, xs, cs, cn, wc, acc, 1, 1, g)
        return tot

    assert conv_all(w_cl, 1) == conv_syn                       # warm-up (compiles)
    t = timed(lambda: conv_all(w_cl, 1), repeat, sample_s, setup=lambda: acc.fill(0))
    out.update(_rates("conv3x3", conv_syn / n_sets, _per(t, n_sets), "events_per_s"))
    wd_cl = K.conv_weight_cl(rng.integers(-128, 128, (C, 1, 3, 3)).astype(np.int8))
    assert conv_all(wd_cl, C) == dw_syn                        # depthwise: site gathering
    t = timed(lambda: conv_all(wd_cl, C), repeat, sample_s, setup=lambda: acc.fill(0))
    out.update(_rates("conv3x3_depthwise", dw_syn / n_sets, _per(t, n_sets), "events_per_s"))
    xts = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(f, -1, 0)[None], np.float32))
           for f in frames]
    wt = torch.from_numpy(w.astype(np.float32))

    def torch_conv_all():
        for xt in xts:
            F.conv2d(xt, wt, padding=1)

    with torch.no_grad():
        torch_conv_all()
        t = _per(timed(torch_conv_all, repeat, sample_s), n_sets)
    out.update(_rates("conv3x3_torch_dense", conv_syn / n_sets, t, "events_per_s"))
    out["conv3x3_torch_dense_MAC_per_s"] = H * W * C * C * 9 / t[0]
    return {"conv3x3": {"H": H, "W": W, "C_in": C, "C_out": C, "stride": 1, "padding": 1,
                        "density": density, "frames": n_sets,
                        "events_per_frame": sum(len(e[0]) for e in ev) / n_sets,
                        "synaptic_events_per_frame": conv_syn / n_sets, "weights": "int8",
                        "acc": "int32", "layout": "channels-last"},
            "conv3x3_depthwise": {"groups": C, "synaptic_events_per_frame": dw_syn / n_sets}}


def _bench_linear(out: dict, rng, N: int, density: float, *, repeat: int, sample_s: float,
                  n_sets: int) -> dict:
    """Linear scatter (int8 weights, int32 acc) and dense torch float32 linear; returns the
    workload."""
    import torch
    import torch.nn.functional as F

    from chips.engines import kernels as K

    wl = rng.integers(-128, 128, (N, N)).astype(np.int8)
    w_t = np.ascontiguousarray(wl.T)
    xvs = [(rng.random(N) < density).astype(np.int32) for _ in range(n_sets)]
    evl = [K.vector_to_events(xv) for xv in xvs]
    accl = np.zeros(N, np.int32)
    lin_syn = sum(int(xv.sum()) for xv in xvs) * N

    def lin_all():
        tot = 0
        for idx, cnt in evl:
            tot += K.linear_scatter(idx, cnt, w_t, accl)
        return tot

    assert lin_all() == lin_syn
    t = timed(lin_all, repeat, sample_s, setup=lambda: accl.fill(0))
    out.update(_rates("linear", lin_syn / n_sets, _per(t, n_sets), "events_per_s"))
    xlts = [torch.from_numpy(xv.astype(np.float32)[None]) for xv in xvs]
    wlt = torch.from_numpy(wl.astype(np.float32))

    def torch_lin_all():
        for xlt in xlts:
            F.linear(xlt, wlt)

    with torch.no_grad():
        torch_lin_all()
        t = _per(timed(torch_lin_all, repeat, sample_s), n_sets)
    out.update(_rates("linear_torch_dense", lin_syn / n_sets, t, "events_per_s"))
    out["linear_torch_dense_MAC_per_s"] = N * N / t[0]
    return {"linear": {"C_in": N, "C_out": N, "density": density, "frames": n_sets,
                       "events_per_frame": sum(len(e[0]) for e in evl) / n_sets,
                       "synaptic_events_per_frame": lin_syn / n_sets, "weights": "int8",
                       "acc": "int32"}}


def _bench_neurons(out: dict, rng, n: int, C: int, repeat: int, sample_s: float) -> dict:
    """LIF update over a channels-last map of ``n`` neurons (``C`` channels) and SFA bursts."""
    from chips.engines import kernels as K

    xin = rng.normal(0.4, 1.0, n)
    v = np.zeros(n)
    spk = np.zeros(n, np.uint8)
    vth, vr = np.ones(C), np.zeros(C)
    args = (1, K.MODEL_LIF, 2.0, K.RESET_HARD, True, -32768.0, 32767.0)
    K.lif_update(xin, v, spk, vth, vr, *args)
    t = timed(lambda: K.lif_update(xin, v, spk, vth, vr, *args), repeat, sample_s)
    out.update(_rates("lif", n, t, "updates_per_s"))
    D = 4
    cnt_sfa = np.zeros(n, np.int32)
    xs_sfa = rng.uniform(-0.5, D, n)
    K.sfa_burst(xs_sfa, cnt_sfa, vth, 1, D, -32768.0, 32767.0)
    t = timed(lambda: K.sfa_burst(xs_sfa, cnt_sfa, vth, 1, D, -32768.0, 32767.0), repeat,
              sample_s)
    out.update(_rates("sfa", n, t, "updates_per_s"))
    return {"lif": {"neurons": n, "model": "lif", "tau": 2.0, "reset": "hard",
                    "layout": "channels-last per-channel v_th"},
            "sfa": {"neurons": n, "D": D}}


def _bench_memcpy(copy_mib: int, repeat: int) -> tuple[float, float]:
    """Memory copy bandwidth, best and median GB/s (bytes copied; each read and written)."""
    nbytes = copy_mib * 2 ** 20
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = timed(lambda: np.copyto(dst, src), max(3, repeat // 3), 0.0)
    return nbytes / t[0] / 1e9, nbytes / t[1] / 1e9
