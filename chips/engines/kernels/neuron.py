"""Numba neuron kernels: IF/LIF population updates (:func:`lif_update`) and SFA bursts
(:func:`sfa_burst`), bit-identical to ``neurosim.ir.semantics.neuron_step`` (float64, same
operation order, no fastmath), plus :func:`neuron_codes` to call them from a ``Neurons`` op.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from chips.engines.kernels.layout import (MODEL_CODES, MODEL_IF, RESET_CODES, RESET_HARD,
                                          RESET_SOFT)

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
        sat = _lif_channels_last(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input,
                                 lo, hi, np.empty(0, np.int64))
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
def _count_rows(spikes, a0, nrows, L, per_c):
    """per_c[c] += spikes of channel c over rows [a0 + r L, a0 + (r+1) L) (int64 sums)."""
    for r in range(nrows):
        a = a0 + r * L
        sr = spikes[a:a + L]
        for i in range(L):
            per_c[i] += np.int64(sr[i])


@njit(cache=True)
def lif_update_counted(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input, lo, hi,
                       per_c):
    """:func:`lif_update` of a channels-last population (inner = 1) that also adds each
    channel's spikes into ``per_c`` (int64 [C]), counted block by block while the block is
    still in cache (one pass less than summing the output afterwards)."""
    if v.shape[0] % v_th.shape[0] != 0 or per_c.shape[0] != v_th.shape[0]:
        raise ValueError("lif_update_counted: len(v) must be a multiple of len(v_th) = C")
    return _lif_channels_last(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input,
                              lo, hi, per_c)


@njit(cache=True)
def _lif_channels_last(x, v, spikes, v_th, v_reset, model, tau, reset, decay_input, lo, hi,
                       per_c):
    """The channels-last LIF update, block by block; with a non-empty ``per_c`` each block's
    spikes are added per channel while the block is still in cache."""
    nc = v_th.shape[0]
    rows = v.shape[0] // nc
    per = max(1, _BLOCK // nc)
    count = per_c.shape[0] > 0
    sat = 0
    for r0 in range(0, rows, per):
        m = min(per, rows - r0)
        _charge_rows(x, v, r0 * nc, m, nc, v_reset, model, tau, decay_input)
        sat += _fire_rows(v, spikes, r0 * nc, m, nc, v_th, v_reset, reset, lo, hi)
        if count:
            _count_rows(spikes, r0 * nc, m, nc, per_c)
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
