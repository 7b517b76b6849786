"""Numba event kernels: event lists from maps / vectors, conv and linear scatter into integer
accumulators, spike sparse convolution (SSC) masks, and the affine output of an accumulator.

Scatter kernels *add* into ``acc`` (the caller zeroes it) and return the synaptic events they
delivered, ``sum over events of count * targets``.
"""
from __future__ import annotations

import numpy as np
from numba import njit


# ----------------------------------------------------------------------------- event lists
INT32_COUNT = 2 ** 31      # event lists hold int32 counts below this; wide lists beyond


@njit(cache=True)
def map_to_events(x_cl):
    """Channels-last map [H, W, C] (any numeric dtype holding integer counts) -> int32 event
    lists (ys, xs, cs, counts) of its nonzero entries, in (y, x, c) order. A count outside
    int32 raises OverflowError (never wraps): such maps go through :func:`events_wide`."""
    H, W, C = x_cl.shape
    n = 0
    for y in range(H):
        for x in range(W):
            for c in range(C):
                if x_cl[y, x, c] != 0:
                    n += 1
    ys = np.empty(n, np.int32)
    xs = np.empty(n, np.int32)
    cs = np.empty(n, np.int32)
    counts = np.empty(n, np.int32)
    e = 0
    for y in range(H):
        for x in range(W):
            for c in range(C):
                val = x_cl[y, x, c]
                if val != 0:
                    if val >= INT32_COUNT or val < -INT32_COUNT:
                        raise OverflowError("event count outside int32: use events_wide")
                    ys[e] = y
                    xs[e] = x
                    cs[e] = c
                    counts[e] = np.int32(val)
                    e += 1
    return ys, xs, cs, counts


@njit(cache=True)
def vector_to_events(x):
    """1-D array of integer counts -> int32 (idx, counts) of its nonzero entries; a count
    outside int32 raises OverflowError (never wraps): use :func:`events_wide`."""
    n = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            n += 1
    idx = np.empty(n, np.int32)
    counts = np.empty(n, np.int32)
    e = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            if x[i] >= INT32_COUNT or x[i] < -INT32_COUNT:
                raise OverflowError("event count outside int32: use events_wide")
            idx[e] = i
            counts[e] = np.int32(x[i])
            e += 1
    return idx, counts


def events_wide(x: np.ndarray) -> tuple:
    """Event lists with int64 counts (exact to 2^63) for inputs holding 2^31 or more events at
    one address: a map [H, W, C] -> (ys, xs, cs, counts), a vector -> (idx, counts), indices
    int32, in the order of :func:`map_to_events` / :func:`vector_to_events`. The scatter
    kernels compile for either count type."""
    nz = np.nonzero(x)                       # C order: (y, x, c) for maps
    counts = x[nz].astype(np.int64)
    return tuple(i.astype(np.int32) for i in nz) + (counts,)


def events(x: np.ndarray, max_count: int) -> tuple:
    """:func:`map_to_events` / :func:`vector_to_events`, or :func:`events_wide` when
    ``max_count`` (the largest |count| in ``x``) does not fit int32."""
    if max_count >= INT32_COUNT:
        return events_wide(x)
    return map_to_events(x) if x.ndim == 3 else vector_to_events(x)


@njit(cache=True)
def count_fanout_acs(idx, counts, fan_out_flat):
    """Synaptic operations of an event list: sum of count * fan_out[idx] (int64). For a conv,
    ``fan_out_flat`` is ``Conv.fan_out()`` transposed to channels-last and flattened."""
    total = 0
    for e in range(idx.shape[0]):
        total += np.int64(counts[e]) * np.int64(fan_out_flat[idx[e]])
    return total


# ----------------------------------------------------------------------------- conv scatter
@njit(cache=True, inline="always")
def _axis_range(pos, padding, k, stride, n_out):
    """Output coordinates o with pos + p - o * s in [0, k) and 0 <= o < n_out: [lo, hi]."""
    num = pos + padding                      # >= 0
    top = num - k + 1
    lo = 0 if top <= 0 else (top + stride - 1) // stride
    hi = num // stride
    if hi > n_out - 1:
        hi = n_out - 1
    return lo, hi


@njit(cache=True)
def _conv_scatter_rows(ys, xs, cs, counts, w_cl, acc, stride, padding, groups, mask, use_mask):
    """Row-slice scatter shared by conv_scatter and conv_scatter_ssc (``use_mask``: only into
    output sites with mask[oy, ox] != 0). Returns sum count * targets."""
    k = w_cl.shape[0]
    Cg = w_cl.shape[2]
    Co = w_cl.shape[3]
    Ho = acc.shape[0]
    Wo = acc.shape[1]
    og = Co // groups
    wf = w_cl.reshape(-1)
    af = acc.reshape(-1)
    total = 0
    for e in range(ys.shape[0]):
        cnt = counts[e]
        if cnt == 0:
            continue
        c = cs[e]
        g = c // Cg
        cl = c - g * Cg
        o0 = g * og
        ny = ys[e] + padding
        nx = xs[e] + padding
        oy_lo, oy_hi = _axis_range(ys[e], padding, k, stride, Ho)
        ox_lo, ox_hi = _axis_range(xs[e], padding, k, stride, Wo)
        for oy in range(oy_lo, oy_hi + 1):
            ky = ny - stride * oy
            for ox in range(ox_lo, ox_hi + 1):
                if use_mask and mask[oy, ox] == 0:
                    continue
                kx = nx - stride * ox
                wb = ((ky * k + kx) * Cg + cl) * Co + o0
                ab = (oy * Wo + ox) * Co + o0
                total += np.int64(cnt) * og
                arow = af[ab:ab + og]          # row slices: non-negative loop indices
                wrow = wf[wb:wb + og]          # let LLVM drop wraparound and vectorise
                if cnt == 1:
                    for o in range(og):
                        arow[o] += wrow[o]
                else:
                    for o in range(og):
                        arow[o] += cnt * wrow[o]
    return total


@njit(cache=True)
def conv_scatter_depthwise(ys, xs, cs, counts, w_cl, acc, stride, padding):
    """Depthwise (groups = C_in = C_out, w_cl [k, k, 1, C]) scatter. Consecutive events at the
    same site (the (y, x, c) order of :func:`map_to_events`) are gathered into a dense channel
    vector, so each tap adds one row over the run's channel span instead of one scalar per
    event; sparse inputs fall back to scalar adds. Returns sum count * targets.

    Kept as one function (over 60 lines) on purpose: the run gathering and the tap loops share
    the per-site state (``tmp``, ``cmin``/``cmax``, the dense/scalar mode) in the hot loop."""
    k = w_cl.shape[0]
    C = w_cl.shape[3]
    Ho = acc.shape[0]
    Wo = acc.shape[1]
    wf = w_cl.reshape(-1)
    af = acc.reshape(-1)
    tmp = np.zeros(C, acc.dtype)
    n = ys.shape[0]
    runs = 0
    for e in range(n):
        if e == 0 or ys[e] != ys[e - 1] or xs[e] != xs[e - 1]:
            runs += 1
    # one mode per call (a per-site choice mispredicts): rows over the channel span once a
    # site holds >= ~1/8 of the channels on average (measured crossover), else scalar adds
    dense = 8 * n >= runs * C
    total = 0
    e = 0
    while e < n:
        y = ys[e]
        x = xs[e]
        r = e
        cmin = C
        cmax = -1
        csum = 0
        while r < n and ys[r] == y and xs[r] == x:
            c = cs[r]
            if counts[r] != 0:
                tmp[c] += counts[r]
                csum += counts[r]
                if c < cmin:
                    cmin = c
                if c > cmax:
                    cmax = c
            r += 1
        if cmax >= 0:
            oy_lo, oy_hi = _axis_range(y, padding, k, stride, Ho)
            ox_lo, ox_hi = _axis_range(x, padding, k, stride, Wo)
            ntap = 0
            if oy_hi >= oy_lo and ox_hi >= ox_lo:
                ntap = (oy_hi - oy_lo + 1) * (ox_hi - ox_lo + 1)
            total += np.int64(csum) * ntap
            span = cmax - cmin + 1
            for oy in range(oy_lo, oy_hi + 1):
                ky = y + padding - stride * oy
                for ox in range(ox_lo, ox_hi + 1):
                    kx = x + padding - stride * ox
                    wb = (ky * k + kx) * C
                    ab = (oy * Wo + ox) * C
                    if dense:
                        arow = af[ab + cmin:ab + cmax + 1]
                        wrow = wf[wb + cmin:wb + cmax + 1]
                        trow = tmp[cmin:cmax + 1]
                        for c in range(span):
                            arow[c] += trow[c] * wrow[c]
                    else:
                        for q in range(e, r):
                            c = cs[q]
                            af[ab + c] += counts[q] * wf[wb + c]
            for q in range(e, r):
                tmp[cs[q]] = 0
        e = r
    return total


@njit(cache=True)
def conv_scatter(ys, xs, cs, counts, w_cl, acc, stride, padding, groups):
    """Address-mapped scatter of input events into ``acc`` [H_out, W_out, C_out] (adds).

    Each event (y, x, c) with count n adds n * w_cl[ky, kx, c mod C_in/g, group slice] to
    acc[(y + p - ky) / s, (x + p - kx) / s, group slice] for every tap with an exact division
    and a target inside the map. ``w_cl`` is :func:`conv_weight_cl` of the graph weight (must be
    C-contiguous). Equals ``semantics.conv_int`` transposed to channels-last. Depthwise layers
    (one output channel per group, one input channel per group) take the site-gathering path.
    Returns the synaptic event count, sum of count * targets (int64).
    """
    Cg = w_cl.shape[2]
    og = w_cl.shape[3] // groups
    if og == 1 and Cg == 1:
        return conv_scatter_depthwise(ys, xs, cs, counts, w_cl, acc, stride, padding)
    mask = np.zeros((1, 1), np.uint8)
    return _conv_scatter_rows(ys, xs, cs, counts, w_cl, acc, stride, padding, groups, mask,
                              False)


@njit(cache=True)
def ssc_mask_events(ys, xs, counts, mask):
    """Fill ``mask`` [H, W] (uint8, zeroed here) with 1 where any event with count != 0 sits
    (semantics.ssc_mask: any channel nonzero). Returns the number of active sites."""
    mask[:, :] = 0
    n = 0
    for e in range(ys.shape[0]):
        if counts[e] != 0 and mask[ys[e], xs[e]] == 0:
            mask[ys[e], xs[e]] = 1
            n += 1
    return n


@njit(cache=True)
def conv_scatter_ssc(ys, xs, cs, counts, w_cl, acc, padding, groups, mask):
    """Spike sparse convolution (stride 1, 'same' padding): fills ``mask`` [H, W] (uint8) with
    the active sites (any input event there) and scatters only into active output sites; the
    other sites of ``acc`` are left untouched. The caller computes
    ``out = where(mask, acc * scale + bias, 0)`` (see :func:`affine_out`), which equals interp's
    ``ssc`` semantics. Returns the synaptic events delivered to active sites (sum count *
    active targets)."""
    ssc_mask_events(ys, xs, counts, mask)
    return _conv_scatter_rows(ys, xs, cs, counts, w_cl, acc, 1, padding, groups, mask, True)


def affine_out(acc: np.ndarray, scale: np.ndarray, bias: np.ndarray,
               mask: np.ndarray | None = None) -> np.ndarray:
    """``acc * scale[c] + bias[c]`` in float64 over a channels-last accumulator (the graph's two
    correctly rounded operations); with an SSC ``mask`` [H, W], inactive sites are 0."""
    out = acc.astype(np.float64) * scale + bias
    if mask is not None:
        out = np.where(mask[..., None] != 0, out, 0.0)
    return out


# ----------------------------------------------------------------------------- linear scatter
@njit(cache=True)
def linear_scatter(idx, counts, w_t, acc):
    """Scatter input events into ``acc`` [C_out] (adds): acc += count * w_t[idx, :], with
    ``w_t`` the transposed weight [C_in, C_out] (C-contiguous). Returns sum count * C_out."""
    n_out = w_t.shape[1]
    total = 0
    for e in range(idx.shape[0]):
        cnt = counts[e]
        if cnt == 0:
            continue
        i = idx[e]
        total += np.int64(cnt) * n_out
        row = w_t[i]
        if cnt == 1:
            for o in range(n_out):
                acc[o] += row[o]
        else:
            for o in range(n_out):
                acc[o] += cnt * row[o]
    return total
