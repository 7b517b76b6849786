"""Numba kernels over a batch of B inputs: event lists of B maps / vectors, conv and linear
scatter over B event lists, and the fused passes of the batched executors (graded-input
quantization, the affine output, neuron updates with per-input saturation counts).

Batched arrays carry the input index first: maps ``[B, H, W, C]`` (channels-last), vectors
``[B, N]``; every array is C-contiguous. An event list of a batch is one list in input order
with ``offsets`` (int64 [B + 1]): input b's events are ``offsets[b]:offsets[b + 1]``. Scatter
kernels add into ``acc`` (the caller zeroes it) and write the synaptic events delivered to each
input into ``events`` (int64 [B]); per input they are exactly the single-input kernels of
:mod:`~chips.engines.kernels.scatter`, so a batch gives the B single-input results bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from chips.engines.kernels.neuron import lif_update, lif_update_counted, sfa_burst
from chips.engines.kernels.scatter import conv_scatter, conv_scatter_ssc, linear_scatter

_WIDE = 2 ** 31          # counts at or beyond +-2^31 do not fit int32 event lists


# ----------------------------------------------------------------------------- event lists
@njit(cache=True)
def maps_to_events(x):
    """Channels-last maps [B, H, W, C] of integer counts (any numeric dtype) -> int32 event
    lists (ys, xs, cs, counts) of the nonzero entries, in (b, y, x, c) order, and int64
    ``offsets`` [B + 1]. A count outside int32 raises OverflowError (never wraps; callers
    route such inputs through ``scatter.events``)."""
    B, H, W, C = x.shape
    offsets = np.zeros(B + 1, np.int64)
    for b in range(B):
        n = 0
        for y in range(H):
            for xx in range(W):
                for c in range(C):
                    if x[b, y, xx, c] != 0:
                        n += 1
        offsets[b + 1] = offsets[b] + n
    n = offsets[B]
    ys = np.empty(n, np.int32)
    xs = np.empty(n, np.int32)
    cs = np.empty(n, np.int32)
    counts = np.empty(n, np.int32)
    e = 0
    for b in range(B):
        for y in range(H):
            for xx in range(W):
                for c in range(C):
                    val = x[b, y, xx, c]
                    if val != 0:
                        if val >= _WIDE or val < -_WIDE:
                            raise OverflowError("maps_to_events: a count outside int32")
                        ys[e] = y
                        xs[e] = xx
                        cs[e] = c
                        counts[e] = np.int32(val)
                        e += 1
    return ys, xs, cs, counts, offsets


@njit(cache=True)
def vectors_to_events(x):
    """Vectors [B, N] of integer counts -> int32 (idx, counts) of the nonzero entries in
    (b, i) order and int64 ``offsets`` [B + 1]. A count outside int32 raises OverflowError."""
    B, N = x.shape
    offsets = np.zeros(B + 1, np.int64)
    for b in range(B):
        n = 0
        for i in range(N):
            if x[b, i] != 0:
                n += 1
        offsets[b + 1] = offsets[b] + n
    idx = np.empty(offsets[B], np.int32)
    counts = np.empty(offsets[B], np.int32)
    e = 0
    for b in range(B):
        for i in range(N):
            val = x[b, i]
            if val != 0:
                if val >= _WIDE or val < -_WIDE:
                    raise OverflowError("vectors_to_events: a count outside int32")
                idx[e] = i
                counts[e] = np.int32(val)
                e += 1
    return idx, counts, offsets


# ----------------------------------------------------------------------------- scatter
@njit(cache=True)
def conv_scatter_batch(ys, xs, cs, counts, offsets, w_cl, acc, stride, padding, groups,
                       events):
    """:func:`~chips.engines.kernels.scatter.conv_scatter` of each input's events into its
    accumulator ``acc[b]`` ([B, H_out, W_out, C_out]); ``events[b]`` = its synaptic events."""
    for b in range(acc.shape[0]):
        s = offsets[b]
        e = offsets[b + 1]
        events[b] = conv_scatter(ys[s:e], xs[s:e], cs[s:e], counts[s:e], w_cl, acc[b],
                                 stride, padding, groups)


@njit(cache=True)
def conv_scatter_ssc_batch(ys, xs, cs, counts, offsets, w_cl, acc, padding, groups, mask,
                           events):
    """:func:`~chips.engines.kernels.scatter.conv_scatter_ssc` per input: fills ``mask[b]``
    ([B, H, W] uint8) with input b's active sites and scatters into ``acc[b]``."""
    for b in range(acc.shape[0]):
        s = offsets[b]
        e = offsets[b + 1]
        events[b] = conv_scatter_ssc(ys[s:e], xs[s:e], cs[s:e], counts[s:e], w_cl, acc[b],
                                     padding, groups, mask[b])


@njit(cache=True)
def linear_scatter_batch(idx, counts, offsets, w_t, acc, events):
    """:func:`~chips.engines.kernels.scatter.linear_scatter` per input into ``acc[b]``
    ([B, C_out])."""
    for b in range(acc.shape[0]):
        s = offsets[b]
        e = offsets[b + 1]
        events[b] = linear_scatter(idx[s:e], counts[s:e], w_t, acc[b])


# ----------------------------------------------------------------------------- fused passes
@njit(cache=True)
def quantize_batch(x, step, lo, hi, q, sat, nnz, maxabs):
    """Graded values [B, n] (float64) -> the integer grid ``q = clip(rint(x / step), lo, hi)``
    (``semantics.quantize``, same two correctly rounded operations) written into ``q`` [B, n]
    (float64 or float32: every value of a <= 24-bit grid is exact in float32). Per input:
    ``sat[b]`` entries clipped, ``nnz[b]`` nonzero results, ``maxabs[b]`` = max |q| (all int64).
    One pass instead of numpy's five."""
    B, n = x.shape
    for b in range(B):
        s = 0
        z = 0
        m = 0
        xb = x[b]
        qb = q[b]
        for i in range(n):              # selects, not branches: the loop vectorises (3x)
            v = np.rint(xb[i] / step)
            under = v < lo
            over = v > hi
            v = lo if under else (hi if over else v)
            s += under + over
            qb[i] = v
            z += v != 0.0
            a = np.abs(v)               # NaN (never counted as a maximum) -> 0
            m = max(m, np.int64(a) if a <= 9.2e18 else np.int64(0))
        sat[b] = s
        nnz[b] = z
        maxabs[b] = m


@njit(cache=True)
def affine_rows(acc, scale, bias, out):
    """``out = float64(acc) * scale[c] + bias[c]`` over channels-last rows (``acc`` and ``out``
    flat [rows * C]; any real ``acc`` dtype holding exact integers): the graph's two correctly
    rounded float64 operations, one pass and no temporary (no fastmath, so no fused
    multiply-add)."""
    C = scale.shape[0]
    rows = acc.shape[0] // C
    for r in range(rows):
        a = r * C
        ar = acc[a:a + C]
        orow = out[a:a + C]
        for c in range(C):
            orow[c] = np.float64(ar[c]) * scale[c] + bias[c]


@njit(cache=True)
def lif_update_batch(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input, lo, hi,
                     sat):
    """:func:`~chips.engines.kernels.neuron.lif_update` (channels-last, inner = 1) on each
    input's row of ``x``, ``v``, ``spikes`` ([B, n]); ``sat[b]`` = input b's saturations."""
    for b in range(x.shape[0]):
        sat[b] = lif_update(x[b], v[b], spikes[b], v_th, v_reset, 1, model, tau, reset,
                            decay_input, lo, hi)


@njit(cache=True)
def lif_update_counted_batch(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input, lo,
                             hi, sat, per_c):
    """:func:`lif_update_batch` that also writes each input's spikes per channel into
    ``per_c`` [B, C] (int64, zeroed here) (:func:`~chips.engines.kernels.neuron.
    lif_update_counted`)."""
    for b in range(x.shape[0]):
        per_c[b, :] = 0
        sat[b] = lif_update_counted(x[b], v[b], spikes[b], v_th, v_reset, model, tau, reset,
                                    decay_input, lo, hi, per_c[b])


@njit(cache=True)
def sfa_burst_batch(x, counts, v_th, D, lo, hi, sat):
    """:func:`~chips.engines.kernels.neuron.sfa_burst` (channels-last) per input row
    ([B, n]); ``sat[b]`` = input b's saturations."""
    for b in range(x.shape[0]):
        sat[b] = sfa_burst(x[b], counts[b], v_th, 1, D, lo, hi)


@njit(cache=True)
def split_digits_into(q, s, out):
    """:func:`~chips.engines.kernels.dense.split_digits` in one pass: integer-valued ``q``
    (flat float64) into ``out`` [p, n] (float32), digit 0 the signed top one (floor of
    q / 2^(s (p-1))), the others in [0, 2^s), most significant first. Exact: every step is a
    floor of an exact quotient by a power of two, or an exact product / difference."""
    p = out.shape[0]
    base = 2.0 ** s
    top = base ** (p - 1)
    for i in range(q.shape[0]):
        v = q[i]
        d = np.floor(v / top)
        out[0, i] = d
        rest = v - d * top
        scale = top
        for j in range(1, p):
            scale = scale / base
            d = np.floor(rest / scale)
            out[j, i] = d
            rest = rest - d * scale
