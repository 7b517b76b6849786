"""Numeric semantics shared by the reference interpreter and the chip engines, bit for bit.

Pure functions on numpy arrays: graded-input quantization, exact integer convolution, the neuron
step (charge, fire, reset; SFA bursts, Proposition 1 of seed sdt-v3; multi-threshold neurons of
seed ecmt) and the check of a graph's input tensor. Units: potentials in the neuron's input
units (weight LSBs after folding), one call = one tick.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G


def quantize(x: np.ndarray, step: float, bits: int) -> tuple[np.ndarray, int]:
    """Graded value -> integer grid: clip(rint(x / step), -2^(b-1), 2^(b-1)-1); returns
    (float64 integers, number of saturated entries)."""
    lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    q = np.rint(x / step)
    sat = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi), sat


def conv_int(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """Exact integer convolution in float64 (values stay below 2^53): [B,Ci,H,W] -> [B,Co,Ho,Wo]."""
    B, Ci, H, W = x.shape
    Co, Cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # B,Ci,Ho,Wo,k,k
    Ho, Wo = win.shape[2:4]
    wf = w.astype(np.float64)
    og = Co // groups
    out = np.empty((B, Co, Ho, Wo))
    for gi in range(groups):
        xs = win[:, gi * Cg:(gi + 1) * Cg]                       # B,Cg,Ho,Wo,k,k
        ws = wf[gi * og:(gi + 1) * og]                           # og,Cg,k,k
        out[:, gi * og:(gi + 1) * og] = np.einsum("bchwij,ocij->bohw", xs, ws, optimize=True)
    return out


def ssc_mask(x: np.ndarray) -> np.ndarray:
    """Active sites for spike sparse convolution: positions with any input event, [B,1,H,W]."""
    return (x != 0).any(axis=1, keepdims=True)


def _ch(a: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel vector broadcast against [B, C, ...] with ``ndim`` trailing dims."""
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def neuron_step(op: G.Neurons, v: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """One tick of a population: returns (output, v_next, saturations). SFA: the whole burst."""
    nd = x.ndim
    vth, vr = _ch(op.v_th, nd), _ch(op.v_reset, nd)
    lo, hi = op.v_range
    if op.model == "sfa":
        h = x + 0.5 * vth                      # Proposition 1: the rounding bias, folded
        sat = int(np.count_nonzero((h < lo) | (h > hi)))
        h = np.clip(h, lo, hi)
        count = np.zeros_like(h)
        for _ in range(op.D):                 # IF soft reset over D sub-steps, input at the first
            s = h >= vth
            count += s
            h = np.where(s, h - vth, h)
        return count, v, sat
    if op.model == "mt":
        h = v + x
        sat = int(np.count_nonzero((h < lo) | (h > hi)))
        h = np.clip(h, lo, hi)
        out = np.zeros_like(h)
        done = np.zeros(h.shape, bool)
        tn = _ch(op.theta_neg, nd)
        for k in reversed(range(op.levels)):
            lp, ln = vth * 2.0 ** k, tn * 2.0 ** k
            fp = ~done & (h >= lp - vth / 2)
            fn = ~done & ~fp & (h <= -(ln - tn / 2))
            out = np.where(fp, lp, np.where(fn, -ln, out))
            done |= fp | fn
        return out, h - out, sat
    return fire_reset(op, lif_charge(op, v, x, vr), vth, vr)


def lif_charge(op: G.Neurons, v: np.ndarray, x: np.ndarray, vr) -> np.ndarray:
    """H = V + X (IF); V + (X - (V - V_reset)) / tau (LIF, decay_input); else
    V - (V - V_reset) / tau + X. ``vr`` broadcasts against ``v``."""
    if op.model == "if":
        return v + x
    if op.decay_input:
        return v + (x - (v - vr)) / op.tau
    return v - (v - vr) / op.tau + x


def fire_reset(op: G.Neurons, h: np.ndarray, vth, vr) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip H to the membrane range (counting saturations), fire on H >= V_th, reset:
    returns (spikes, V_next, saturations). ``vth`` / ``vr`` broadcast against ``h``."""
    lo, hi = op.v_range
    sat = int(np.count_nonzero((h < lo) | (h > hi)))
    h = np.clip(h, lo, hi)
    s = h >= vth
    if op.reset == "hard":
        v_next = np.where(s, vr, h)
    elif op.reset == "soft":
        v_next = np.where(s, h - vth, h)
    else:
        v_next = h
    return s.astype(np.float64), v_next, sat


def input_ticks(graph: G.Graph, x: np.ndarray) -> np.ndarray:
    """Validate ``x`` against the Input node and return it as [T, B, *shape] float64."""
    op = graph.op(graph.input_node())
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == bool):
        raise TypeError(f"input dtype {x.dtype} is not numeric")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or infinite values")
    if x.ndim == len(op.shape) + 1 and tuple(x.shape[1:]) == op.shape:
        x = np.broadcast_to(x, (op.T,) + x.shape)
    elif not (x.ndim == len(op.shape) + 2 and tuple(x.shape[2:]) == op.shape
              and x.shape[0] == op.T):
        raise ValueError(f"input shape {tuple(x.shape)} does not fit the graph's input "
                         f"{op.name!r}: expected [B, {', '.join(map(str, op.shape))}] or "
                         f"[T={op.T}, B, ...]")
    if x.shape[1] == 0:
        raise ValueError(f"input {op.name!r}: the batch is empty (0 inputs)")
    if op.kind == "spike" and (np.any(x < 0) or np.any(x != np.round(x))):
        raise ValueError(f"input {op.name!r} carries spikes: values must be non-negative counts")
    return x
