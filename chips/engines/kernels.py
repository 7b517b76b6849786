"""Numba compute kernels shared by the chip engines: event scatter, neuron updates, dense paths.

Conventions (seed-facts §7: channels-last maps and row-slice inner loops are ~5x faster):

* Maps are channels-last ``[H, W, C]``; a flat index into such a map is ``(y * W + x) * C + c``.
* Conv weights are re-laid by :func:`conv_weight_cl` from the graph's ``[C_out, C_in/g, k, k]``
  to ``[k, k, C_in/g, C_out]`` so that one (event, tap) pair adds one contiguous row of its
  group's output channels.
* Spike inputs are event lists: int32 ``ys, xs, cs`` (or flat ``idx`` for vectors) and int32
  ``counts`` (> 1 for SFA bursts / event frames; for a graded input, the quantized integer
  value, which may be negative). Events with count 0 are skipped.
* Accumulators are exact integers: int32 when :func:`acc_dtype` says the bound
  ``max|w| * max|count| * fan_in`` stays below 2^31, else int64 (the same kernels compile for
  both). Scatter kernels *add* into ``acc``; the caller zeroes it.
* Neuron kernels repeat ``neurosim.ir.semantics.neuron_step`` element by element in float64, operation
  for operation (no fastmath), so their results are bit-identical to the reference interpreter.

No bounds checks: the caller guarantees event coordinates inside the input map and C-contiguous
``acc`` / weight arrays (the kernels take flat views of them).

The scatter kernels return the number of synaptic events they delivered,
``sum over events of count * targets`` (the AC count of spike inputs; seed-facts' accounting
of a burst of n spikes as n ACs per synapse).
"""
from __future__ import annotations

import numpy as np
from numba import njit

MODEL_IF, MODEL_LIF = 0, 1
RESET_HARD, RESET_SOFT, RESET_NONE = 0, 1, 2
MODEL_CODES = {"if": MODEL_IF, "lif": MODEL_LIF}
RESET_CODES = {"hard": RESET_HARD, "soft": RESET_SOFT, "none": RESET_NONE}

F32_EXACT = 2 ** 24      # float32 holds every integer of magnitude <= 2^24
F64_EXACT = 2 ** 53


# ----------------------------------------------------------------------------- layouts and bounds
def conv_weight_cl(w: np.ndarray) -> np.ndarray:
    """Graph conv weight ``[C_out, C_in/g, k, k]`` -> contiguous ``[k, k, C_in/g, C_out]``."""
    return np.ascontiguousarray(np.transpose(np.asarray(w), (2, 3, 1, 0)))


def conv_out_hw(H: int, W: int, k: int, stride: int, padding: int) -> tuple[int, int]:
    return (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1


def exact_bound(max_w: int, max_count: int, fan_in: int) -> int:
    """Upper bound on |any partial sum| of an integer reduction (Python int, no overflow)."""
    return int(max_w) * int(max_count) * int(fan_in)


def acc_dtype(max_w: int, max_count: int, fan_in: int):
    """int32 if every partial sum fits (bound < 2^31), else int64 (bound must be < 2^63)."""
    b = exact_bound(max_w, max_count, fan_in)
    if b < 2 ** 31:
        return np.int32
    if b < 2 ** 63:
        return np.int64
    raise OverflowError(f"integer accumulation bound {b} exceeds int64")


def choose_dense(n_events: int, n_inputs: int, threshold: float = 0.05) -> bool:
    """True when the input is dense enough (events > threshold * inputs) that a dense kernel
    beats scatter (seed-facts §7: the crossover is near 5% on this machine class)."""
    return n_inputs > 0 and n_events > threshold * n_inputs


# ----------------------------------------------------------------------------- event lists
@njit(cache=True)
def map_to_events(x_cl):
    """Channels-last map [H, W, C] (any numeric dtype holding integer counts) -> int32 event
    lists (ys, xs, cs, counts) of its nonzero entries, in (y, x, c) order."""
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
                    ys[e] = y
                    xs[e] = x
                    cs[e] = c
                    counts[e] = np.int32(val)
                    e += 1
    return ys, xs, cs, counts


@njit(cache=True)
def vector_to_events(x):
    """1-D array of integer counts -> int32 (idx, counts) of its nonzero entries."""
    n = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            n += 1
    idx = np.empty(n, np.int32)
    counts = np.empty(n, np.int32)
    e = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            idx[e] = i
            counts[e] = np.int32(x[i])
            e += 1
    return idx, counts


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
    event; sparse inputs fall back to scalar adds. Returns sum count * targets."""
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


# ----------------------------------------------------------------------------- neurons
# The neuron kernels walk blocks of rows that share one parameter layout (channels-last rows of
# C channels, or a run of one channel) and run mode-specific loops over each block: the mode
# branches sit outside the loops so that LLVM vectorises them (a branch per element, or a call
# per short row, costs 3-10x). A block (~4k elements) stays in L1 between the two passes.
_BLOCK = 4096


@njit(cache=True)
def _charge_rows(x, v, a0, nrows, L, vrr, model, tau, decay_input):
    """v <- H over rows [a0 + r L, a0 + (r+1) L) (semantics.neuron_step's charge, same order)."""
    if model == MODEL_IF:
        for r in range(nrows):
            a = a0 + r * L
            xr = x[a:a + L]
            vrow = v[a:a + L]
            for i in range(L):
                vrow[i] = vrow[i] + np.float64(xr[i])
    elif decay_input:
        for r in range(nrows):
            a = a0 + r * L
            xr = x[a:a + L]
            vrow = v[a:a + L]
            for i in range(L):
                vi = vrow[i]
                vrow[i] = vi + (np.float64(xr[i]) - (vi - vrr[i])) / tau
    else:
        for r in range(nrows):
            a = a0 + r * L
            xr = x[a:a + L]
            vrow = v[a:a + L]
            for i in range(L):
                vi = vrow[i]
                vrow[i] = vi - (vi - vrr[i]) / tau + np.float64(xr[i])


@njit(cache=True)
def _fire_rows(v, spikes, a0, nrows, L, thr, vrr, reset, lo, hi):
    """Clip H to [lo, hi] (counting), spike on H >= v_th, reset; returns saturations."""
    sat = 0
    if reset == RESET_HARD:
        for r in range(nrows):
            a = a0 + r * L
            vrow = v[a:a + L]
            sr = spikes[a:a + L]
            for i in range(L):
                h = vrow[i]
                sat += (h < lo) | (h > hi)
                h = lo if h < lo else (hi if h > hi else h)
                s = h >= thr[i]
                vrow[i] = vrr[i] if s else h
                sr[i] = s
    elif reset == RESET_SOFT:
        for r in range(nrows):
            a = a0 + r * L
            vrow = v[a:a + L]
            sr = spikes[a:a + L]
            for i in range(L):
                h = vrow[i]
                sat += (h < lo) | (h > hi)
                h = lo if h < lo else (hi if h > hi else h)
                vt = thr[i]
                s = h >= vt
                vrow[i] = h - vt if s else h
                sr[i] = s
    else:
        for r in range(nrows):
            a = a0 + r * L
            vrow = v[a:a + L]
            sr = spikes[a:a + L]
            for i in range(L):
                h = vrow[i]
                sat += (h < lo) | (h > hi)
                h = lo if h < lo else (hi if h > hi else h)
                vrow[i] = h
                sr[i] = h >= thr[i]
    return sat


@njit(cache=True)
def lif_update(x, v, spikes, v_th, v_reset, inner, model, tau, reset, decay_input, lo, hi):
    """One tick of an IF/LIF population, in place on ``v`` (float64, flat [n]); ``x`` is the
    input (flat [n], any real dtype, read as float64); ``spikes`` (flat [n], any dtype) receives
    0/1. ``v_th`` / ``v_reset`` (float64) have one value per channel: element i belongs to
    channel ``(i // inner) % len(v_th)`` (channels-last: inner = 1; channels-first [C, N]:
    inner = N; per-element: len(v_th) = n). ``model``: MODEL_IF / MODEL_LIF; ``reset``:
    RESET_HARD / SOFT / NONE; ``lo, hi``: the membrane range (Neurons.v_range); see
    :func:`neuron_codes`. Returns the number of saturations. Operation order is
    semantics.neuron_step's, so results are bit-identical."""
    n = v.shape[0]
    nc = v_th.shape[0]
    if inner < 1 or n % (nc * inner) != 0:
        raise ValueError("lif_update: len(v) must be a multiple of len(v_th) * inner")
    sat = 0
    if inner == 1:
        rows = n // nc
        per = max(1, _BLOCK // nc)
        for r0 in range(0, rows, per):
            m = min(per, rows - r0)
            _charge_rows(x, v, r0 * nc, m, nc, v_reset, model, tau, decay_input)
            sat += _fire_rows(v, spikes, r0 * nc, m, nc, v_th, v_reset, reset, lo, hi)
    else:
        th = np.empty(inner)
        vr = np.empty(inner)
        for b in range(n // (nc * inner)):
            for c in range(nc):
                th[:] = v_th[c]
                vr[:] = v_reset[c]
                a = (b * nc + c) * inner
                _charge_rows(x, v, a, 1, inner, vr, model, tau, decay_input)
                sat += _fire_rows(v, spikes, a, 1, inner, th, vr, reset, lo, hi)
    return sat


@njit(cache=True)
def _sfa_rows(x, counts, a0, nrows, L, thr, hb, D, lo, hi):
    sat = 0
    for r in range(nrows):
        a = a0 + r * L
        xr = x[a:a + L]
        cr = counts[a:a + L]
        hr = hb[r * L:(r + 1) * L]
        for i in range(L):
            h = np.float64(xr[i]) + 0.5 * thr[i]
            sat += (h < lo) | (h > hi)
            hr[i] = lo if h < lo else (hi if h > hi else h)
            cr[i] = 0
    for _ in range(D):                     # IF soft reset over D sub-steps
        fired = 0
        for r in range(nrows):
            a = a0 + r * L
            cr = counts[a:a + L]
            hr = hb[r * L:(r + 1) * L]
            for i in range(L):
                h = hr[i]
                vt = thr[i]
                s = h >= vt
                cr[i] += s
                fired += s
                hr[i] = h - vt if s else h
        if fired == 0:                     # h only decreases: no later sub-step fires
            break
    return sat


@njit(cache=True)
def sfa_burst(x, counts, v_th, inner, D, lo, hi):
    """SFA population (time-free): per element, h = x + 0.5 * v_th clipped to [lo, hi], then IF
    with soft reset over D sub-steps; ``counts`` (flat [n], integer dtype) receives the burst
    lengths 0..D. Channel mapping as :func:`lif_update`. Returns the number of saturations.
    Identical to semantics.neuron_step's sfa branch."""
    n = x.shape[0]
    nc = v_th.shape[0]
    if inner < 1 or n % (nc * inner) != 0:
        raise ValueError("sfa_burst: len(x) must be a multiple of len(v_th) * inner")
    sat = 0
    if inner == 1:
        rows = n // nc
        per = max(1, _BLOCK // nc)
        hb = np.empty(per * nc)
        for r0 in range(0, rows, per):
            m = min(per, rows - r0)
            sat += _sfa_rows(x, counts, r0 * nc, m, nc, v_th, hb, D, lo, hi)
    else:
        hb = np.empty(inner)
        th = np.empty(inner)
        for b in range(n // (nc * inner)):
            for c in range(nc):
                th[:] = v_th[c]
                sat += _sfa_rows(x, counts, (b * nc + c) * inner, 1, inner, th, hb, D, lo, hi)
    return sat


def neuron_codes(op) -> dict:
    """Keyword arguments of :func:`lif_update` from a ``graph.Neurons`` op (lif/if)."""
    lo, hi = op.v_range
    return dict(model=MODEL_CODES[op.model], tau=float(op.tau), reset=RESET_CODES[op.reset],
                decay_input=bool(op.decay_input), lo=float(lo), hi=float(hi))


# ----------------------------------------------------------------------------- dense paths
def _exact_float_dtype(bound: int):
    import torch
    if bound < F32_EXACT:
        return torch.float32, np.float32
    if bound < F64_EXACT:
        return torch.float64, np.float64
    raise OverflowError(f"integer reduction bound {bound} exceeds float64's exact range 2^53")


def dense_dtype(max_w: int, max_count: int, fan_in: int) -> str:
    """'float32' when max|w| * max|count| * fan_in < 2^24 (every partial sum is an exactly
    representable integer, whatever the summation order), else 'float64' (< 2^53)."""
    return "float32" if exact_bound(max_w, max_count, fan_in) < F32_EXACT else "float64"


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64, copy=False)).max()) if a.size else 0


def dense_conv_exact(x_cl: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int,
                     out_dtype=None, *, max_w: int | None = None, max_x: int | None = None,
                     w_cache: dict | None = None, as_float: bool = False) -> np.ndarray:
    """Exact integer conv through torch: ``x_cl`` channels-last counts [H, W, C_in] (or
    [B, H, W, C_in]), ``w`` the graph weight [C_out, C_in/g, k, k]. Runs in float32 when the
    bound max|w| * max|x| * fan_in < 2^24, else float64 (NNPACK, which may use inexact fast
    algorithms, is disabled). Returns integer accumulators [(B,) H_out, W_out, C_out], int32 or
    int64 by :func:`acc_dtype` unless ``out_dtype`` is given; ``as_float=True`` returns them in
    the float type that computed them (every value an exact integer). Callers that know
    ``max_w`` / ``max_x`` pass them; ``w_cache`` (a dict) keeps the float weights per dtype."""
    import torch
    import torch.nn.functional as F
    x = np.asarray(x_cl)
    w = np.asarray(w)
    single = x.ndim == 3
    if single:
        x = x[None]
    Co, Cg, k, _ = w.shape
    mw = _max_abs(w) if max_w is None else int(max_w)
    mx = _max_abs(x) if max_x is None else int(max_x)
    tdt, ndt = _exact_float_dtype(exact_bound(mw, mx, Cg * k * k))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=ndt)).permute(0, 3, 1, 2)
    if w_cache is not None and ndt in w_cache:
        wt = w_cache[ndt]
    else:
        wt = torch.from_numpy(np.ascontiguousarray(w, dtype=ndt))
        if w_cache is not None:
            w_cache[ndt] = wt
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        out = F.conv2d(xt, wt, stride=stride, padding=padding, groups=groups)
    res = out.permute(0, 2, 3, 1).numpy()
    if not as_float:
        res = res.astype(out_dtype or acc_dtype(mw, mx, Cg * k * k))
    return res[0] if single else res


def dense_linear_exact(x: np.ndarray, w: np.ndarray, out_dtype=None) -> np.ndarray:
    """Exact integer ``x @ w.T`` through torch (float32 under the 2^24 bound, else float64):
    ``x`` counts [..., C_in], ``w`` the graph weight [C_out, C_in]. Returns [..., C_out]
    integers, int32 or int64 by :func:`acc_dtype` unless ``out_dtype`` is given."""
    import torch
    x = np.asarray(x)
    w = np.asarray(w)
    mw, mx = _max_abs(w), _max_abs(x)
    tdt, ndt = _exact_float_dtype(exact_bound(mw, mx, w.shape[1]))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=ndt))
    wt = torch.from_numpy(np.ascontiguousarray(w, dtype=ndt))
    with torch.no_grad():
        out = xt @ wt.T
    return out.numpy().astype(out_dtype or acc_dtype(mw, mx, w.shape[1]))
