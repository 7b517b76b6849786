"""Numeric semantics shared by the reference interpreter and the chip engines, bit for bit.

Pure functions on numpy arrays: graded-input quantization, exact integer convolution, the neuron
step (charge, fire, reset; SFA bursts, Proposition 1 of seed sdt-v3; multi-threshold neurons of
seed ecmt) and the check of a graph's input tensor. Units: potentials in the neuron's input
units (weight LSBs after folding), one call = one tick.
"""
from __future__ import annotations

import math

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


# ----------------------------------------------------------------------------- ECMT (seed ecmt)
def mt_spikes_step(op: G.MTSpikes, v: np.ndarray, x: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """One tick of multi-threshold neurons (``G.MTSpikes``): x, v [B, C, ...] float64 ->
    (one-hot spikes [B, C * 2n, ...], v_next, saturations). Level k fires when V >= theta 2^k
    - theta/2 (largest k first; then the negative side), and V drops by the level's value."""
    nd, n = x.ndim, op.levels
    tp, tn = _ch(op.theta_pos, nd), _ch(op.theta_neg, nd)
    lo, hi = op.v_range
    h = v + x
    sat = int(np.count_nonzero((h < lo) | (h > hi)))
    h = np.clip(h, lo, hi)
    out = np.zeros_like(h)
    level = np.full(h.shape, -1, np.int64)
    done = np.zeros(h.shape, bool)
    for k in reversed(range(n)):
        lp, ln = tp * 2.0 ** k, tn * 2.0 ** k
        fp = ~done & (h >= lp - tp / 2)
        fn = ~done & ~fp & (h <= -(ln - tn / 2))
        out = np.where(fp, lp, np.where(fn, -ln, out))
        level = np.where(fp, k, np.where(fn, n + k, level))
        done |= fp | fn
    B, C = h.shape[:2]
    spikes = (level[:, :, None] == np.arange(2 * n).reshape((1, 1, -1) + (1,) * (nd - 2)))
    return spikes.astype(np.float64).reshape((B, C * 2 * n) + h.shape[2:]), h - out, sat


def mt_decode(s: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """One-hot spikes [B, C * 2n, ...] -> integer level grids (P, Q) [B, C, ...] (float64):
    P = sum_k 2^k s_k (positive side, units theta_pos), Q = sum_k 2^k s_(n+k) (units theta_neg),
    so the graded value is theta_pos P - theta_neg Q."""
    B, n = s.shape[0], levels
    r = s.reshape((B, -1, 2 * n) + s.shape[2:])
    w = 2.0 ** np.arange(n)
    return (np.tensordot(w, np.moveaxis(r[:, :, :n], 2, 0), axes=1),
            np.tensordot(w, np.moveaxis(r[:, :, n:], 2, 0), axes=1))


def _ec_operands(op: G.MatMulEC, a: np.ndarray, b: np.ndarray):
    """Per-head integer operands ((Pa, Qa) [B, h, N, k], (Pb, Qb) [B, h, k, M])."""
    h = op.heads
    (pa, qa), (pb, qb) = mt_decode(a, op.levels), mt_decode(b, op.levels)
    B = a.shape[0]
    if op.form == "qk":                        # q, k: [B, h d, H, W] -> [B, h, N, d], [B, h, d, N]
        left = [x.reshape(B, h, -1, x.shape[2] * x.shape[3]).swapaxes(2, 3) for x in (pa, qa)]
        right = [x.reshape(B, h, -1, x.shape[2] * x.shape[3]) for x in (pb, qb)]
    else:                                      # attn [B, h, N, N]; v -> [B, h, N, d]
        left = [pa, qa]
        right = [x.reshape(B, h, -1, x.shape[2] * x.shape[3]).swapaxes(2, 3) for x in (pb, qb)]
    return left, right


def matmul_ec_step(op: G.MatMulEC, state, a: np.ndarray, b: np.ndarray):
    """One tick of the Matrix-Product EC (eq. 16-18) on MT spikes a, b ([B, ...] per the
    node's form). The sums S_A, S_B and the four integer products S_K^(XY) = S_Xa S_Yb (X, Y in
    {P, Q}) are updated by eq. 17-18 in exact integers; the real S_K = th_pa th_pb S_K^PP
    - th_pa th_nb S_K^PQ - th_na th_pb S_K^QP + th_na th_nb S_K^QQ, and
    O(t) = scale (S_K(t)/t - S_K(t-1)/(t-1)). Returns (O in the node's layout, new state,
    additions per input [B]: non-zero operand pairs of the three products of eq. 18)."""
    (pa, qa), (pb, qb) = _ec_operands(op, a, b)
    if state is None:
        z = np.zeros_like
        state = {"t": 0, "a": (z(pa), z(qa)), "b": (z(pb), z(qb)), "prev": 0.0,
                 "sk": {xy: 0.0 for xy in ("pp", "pq", "qp", "qq")}}
    sa, sb = state["a"], state["b"]
    na = ((pa != 0) | (qa != 0)).astype(np.float64)
    nb = ((pb != 0) | (qb != 0)).astype(np.float64)
    nsa = ((sa[0] != 0) | (sa[1] != 0)).astype(np.float64)
    nsb = ((sb[0] != 0) | (sb[1] != 0)).astype(np.float64)
    adds = (na @ nb + na @ nsb + nsa @ nb).reshape(len(na), -1).sum(axis=1)
    sk = {}
    for i, x in enumerate("pq"):
        for j, y in enumerate("pq"):
            xa, yb = (pa, qa)[i], (pb, qb)[j]
            sk[x + y] = state["sk"][x + y] + (xa @ yb + xa @ sb[j] + sa[i] @ yb)
    t = state["t"] + 1
    c = matmul_ec_coefficients(op)
    real = ((c[0] * sk["pp"] - c[1] * sk["pq"]) - c[2] * sk["qp"]) + c[3] * sk["qq"]
    out = (real / t - state["prev"] / (t - 1) if t > 1 else real) * op.scale
    new = {"t": t, "a": (sa[0] + pa, sa[1] + qa), "b": (sb[0] + pb, sb[1] + qb), "prev": real,
           "sk": sk}
    B = out.shape[0]
    if op.form == "av":                        # [B, h, N, d] -> [B, h d, H, W]
        out = out.swapaxes(2, 3).reshape((B,) + op.shape)
    return out, new, np.rint(adds).astype(np.int64)


def matmul_ec_coefficients(op: G.MatMulEC) -> tuple[float, float, float, float]:
    """The real values of one unit of S_K^PP, ^PQ, ^QP, ^QQ (products of level units)."""
    return (op.a_theta_pos * op.b_theta_pos, op.a_theta_pos * op.b_theta_neg,
            op.a_theta_neg * op.b_theta_pos, op.a_theta_neg * op.b_theta_neg)


_ERF = np.frompyfunc(math.erf, 1, 1)


def ec_function(op: G.ExpectationEC, z: np.ndarray) -> np.ndarray:
    """F of a general EC on [B, *shape] float64 (the one definition the interpreter, the engines
    and the twin use): softmax over the last axis, exact GELU 0.5 z (1 + erf(z / sqrt 2)),
    LayerNorm over axis 1 (biased variance, eps inside the square root)."""
    z = np.ascontiguousarray(z, np.float64)     # reductions depend on the memory layout
    if op.fn == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if op.fn == "gelu":
        return 0.5 * z * (1.0 + _ERF(z / math.sqrt(2.0)).astype(np.float64))
    mu = z.mean(axis=1, keepdims=True)
    var = ((z - mu) ** 2).mean(axis=1, keepdims=True)
    nd = z.ndim
    return (z - mu) / np.sqrt(var + op.eps) * _ch(op.weight, nd) + _ch(op.bias, nd)


def ec_step(op: G.ExpectationEC, state, x: np.ndarray):
    """One tick of the general EC (eq. 15): state (t, S, t F(S/t)) or None -> (O, new state)."""
    t, s, prev = state if state is not None else (0, np.zeros_like(x), 0.0)
    t, s = t + 1, s + x
    now = ec_function(op, s / t) * t
    return now - prev, (t, s, now)
