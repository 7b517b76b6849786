"""Numba kernels of free-running asynchronous execution (``chips.engines.async_free``): a
core integrates its events one by one in time order and neurons fire the moment they cross
threshold.

Messages are parallel arrays in time order: ``t`` (seconds), ``addr`` (flat channels-last
index into the receiving node's input, or output for what a kernel emits), and for graded
values ``same`` (the message belongs to the receiver's current window), ``absv`` (the value
after the change) and ``dv`` (the change). A graded receiver keeps a copy of its input: set to
``absv`` when ``same`` (exact), else advanced by ``dv`` (a late message, integrated into the
current window). Spike messages carry counts ``cnt``. Every kernel returns how many entries it
wrote to its output arrays, which the caller sizes (an upper bound it computes).

Arithmetic repeats the graph's operation for operation (no fastmath): a projection's output is
``float64(acc) * scale[c] + bias[c]`` of its exact integer accumulator, a neuron's charge is
``semantics.lif_charge`` on its current input, so when every event pushes the same way the
window's end state equals the clocked one bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from chips.engines.kernels.layout import MODEL_IF, RESET_HARD, RESET_SOFT


@njit(cache=True)
def requantize(addr, same, absv, dv, x, q, in_scale, lo, hi, dq):
    """Graded input copy ``x`` (and its quantized ``q = clip(rint(x / in_scale), lo, hi)``)
    updated by each message; ``dq[i]`` = the change of q at message i (0: no synaptic event)."""
    for i in range(addr.shape[0]):
        a = addr[i]
        x[a] = absv[i] if same[i] else x[a] + dv[i]
        v = np.rint(x[a] / in_scale)
        v = lo if v < lo else (hi if v > hi else v)
        dq[i] = v - q[a]
        q[a] = v


@njit(cache=True, inline="always")
def _integrate(n, ti, j, co, dacc, acc, scale, bias, val, out_t, out_addr, out_abs, out_dv):
    """Add ``dacc`` to accumulator ``j`` (output channel ``co``), re-evaluate its value
    (``acc * scale + bias``) and write output event ``n`` (time, address, new value, change);
    returns n + 1."""
    acc[j] += dacc
    new = np.float64(acc[j]) * scale[co] + bias[co]
    out_t[n] = ti
    out_addr[n] = j
    out_abs[n] = new
    out_dv[n] = new - val[j]
    val[j] = new
    return n + 1


@njit(cache=True)
def conv_events(t, addr, cnt, Ci, W, w_cl, stride, pad, groups, Ho, Wo, Co, co_lo, co_hi,
                acc, scale, bias, val, out_t, out_addr, out_abs, out_dv):
    """Scatter input events (``addr`` = (y * W + x) * Ci + ci, count ``cnt``; 0 skipped) into
    the conv's integer accumulator ``acc`` (flat [Ho * Wo * Co]) for output channels
    [co_lo, co_hi); each changed output is re-evaluated (``val``) and emitted. Returns the
    outputs written."""
    k = w_cl.shape[0]
    cg, og = Ci // groups, Co // groups
    n = 0
    for i in range(addr.shape[0]):
        c = cnt[i]
        if c == 0:
            continue
        a = addr[i]
        ci = a % Ci
        yx = a // Ci
        y, x = yx // W, yx % W
        g = ci // cg
        lo = g * og if g * og > co_lo else co_lo
        hi = (g + 1) * og if (g + 1) * og < co_hi else co_hi
        if lo >= hi:
            continue
        cin = ci - g * cg
        for ky in range(k):
            ny = y + pad - ky
            if ny < 0 or ny % stride:
                continue
            yo = ny // stride
            if yo >= Ho:
                continue
            for kx in range(k):
                nx = x + pad - kx
                if nx < 0 or nx % stride:
                    continue
                xo = nx // stride
                if xo >= Wo:
                    continue
                base = (yo * Wo + xo) * Co
                for co in range(lo, hi):
                    w = w_cl[ky, kx, cin, co]
                    if w == 0:
                        continue
                    n = _integrate(n, t[i], base + co, co, c * w, acc, scale, bias, val,
                                   out_t, out_addr, out_abs, out_dv)
    return n


@njit(cache=True)
def linear_events(t, idx, cnt, w_t, co_lo, co_hi, acc, scale, bias, val, out_t, out_addr,
                  out_abs, out_dv):
    """Linear layer: input events at graph-order index ``idx`` (count ``cnt``; 0 skipped)
    into ``acc`` [C_out] for outputs [co_lo, co_hi), as ``conv_events``."""
    n = 0
    for i in range(idx.shape[0]):
        c = cnt[i]
        if c == 0:
            continue
        row = idx[i]
        for co in range(co_lo, co_hi):
            w = w_t[row, co]
            if w == 0:
                continue
            n = _integrate(n, t[i], co, co, c * w, acc, scale, bias, val, out_t, out_addr,
                           out_abs, out_dv)
    return n


@njit(cache=True)
def add_events(t, port, addr, same, absv, dv, copies, val, out_t, out_addr, out_abs, out_dv):
    """Elementwise sum of P inputs: each message updates its port's copy (``copies`` [P, n])
    and the sum is re-evaluated in port order (the graph's order of additions)."""
    P = copies.shape[0]
    m = 0
    for i in range(addr.shape[0]):
        a, p = addr[i], port[i]
        copies[p, a] = absv[i] if same[i] else copies[p, a] + dv[i]
        s = copies[0, a]
        for q in range(1, P):
            s = s + copies[q, a]
        if s != val[a]:
            out_t[m] = t[i]
            out_addr[m] = a
            out_abs[m] = s
            out_dv[m] = s - val[a]
            val[a] = s
            m += 1
    return m


@njit(cache=True)
def _charge(v, x, vr, model, tau, decay_input):
    """``semantics.lif_charge``: H from membrane ``v`` and input ``x``."""
    if model == MODEL_IF:
        return v + x
    if decay_input:
        return v + (x - (v - vr)) / tau
    return v - (v - vr) / tau + x


@njit(cache=True)
def membrane(v, x, k, xf, vth, vr, model, tau, decay_input, reset):
    """H of an IF / LIF neuron in its window: window-start membrane ``v``, input so far ``x``,
    ``k`` spikes fired (at input ``xf`` for a hard reset: it then integrates from ``vr``)."""
    if k > 0 and reset == RESET_HARD:
        g = 1.0 / tau if (model != MODEL_IF and decay_input) else 1.0
        return vr + g * (x - xf)
    h = _charge(v, x, vr, model, tau, decay_input)
    if reset == RESET_SOFT:
        for _ in range(k):
            h = h - vth
    return h


@njit(cache=True)
def lif_events(t, addr, same, absv, dv, C, X, V, K, XF, touched, v_th, v_reset, model, tau,
               reset, decay_input, lo, hi, budget, out_t, out_addr):
    """IF / LIF neurons (flat channels-last, C channels): each message updates the input copy
    ``X`` and the neuron fires the moment its membrane (clipped to [lo, hi]) reaches threshold,
    at most ``budget`` times per window (``K`` counts them; ``XF`` the input at the last hard
    reset). Returns the spikes written (time, neuron)."""
    n = 0
    for i in range(addr.shape[0]):
        a = addr[i]
        X[a] = absv[i] if same[i] else X[a] + dv[i]
        touched[a] = 1
        if K[a] >= budget:
            continue
        c = a % C
        h = membrane(V[a], X[a], K[a], XF[a], v_th[c], v_reset[c], model, tau, decay_input,
                     reset)
        h = lo if h < lo else (hi if h > hi else h)
        if h >= v_th[c]:
            K[a] += 1
            XF[a] = X[a]
            out_t[n] = t[i]
            out_addr[n] = a
            n += 1
    return n


@njit(cache=True)
def sfa_events(t, addr, same, absv, dv, C, X, K, touched, v_th, D, isi, lo, hi, out_t,
               out_addr):
    """SFA neurons: h = clip(input so far + v_th / 2) minus v_th per spike already fired; the
    neuron fires (up to D spikes per window, a burst ``isi`` apart) while h >= v_th
    (``semantics.neuron_step``'s burst, event by event). Returns the spikes written."""
    n = 0
    for i in range(addr.shape[0]):
        a = addr[i]
        X[a] = absv[i] if same[i] else X[a] + dv[i]
        touched[a] = 1
        k = K[a]
        if k >= D:
            continue
        vt = v_th[a % C]
        h = X[a] + 0.5 * vt
        h = lo if h < lo else (hi if h > hi else h)
        for _ in range(k):
            h = h - vt
        d = 0
        while k < D and h >= vt:
            h = h - vt
            k += 1
            out_t[n] = t[i] + d * isi
            out_addr[n] = a
            n += 1
            d += 1
        K[a] = k
    return n


__all__ = ["add_events", "conv_events", "linear_events", "lif_events", "membrane",
           "requantize", "sfa_events"]
