"""Numba kernels of the batched windowed asynchronous path (``async_windowed_batch``): what a
node window sends (every batch copy's events for B inputs, cut into the runs the queue model
takes, with their core service), and which neurons a conv's spikes reach (event-driven neuron
updates).

All sums are of integer-valued float64 (spike counts or nonzero flags times integer fan-outs)
below 2^53, so they are exact and equal the per-input numpy / BLAS results of the SimPy path
whatever the summation order. The run cutting repeats ``queues.route_dense``'s float
operations in its order (``queues.run_add``). ``_copy_events`` runs without reference counts
(see ``kernels.queues``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from chips.engines.kernels import queues as Q


@njit(cache=True, inline="always")
def _events(V, b, p, c0, c1, graded):
    """Events at position p of input b over channels [c0, c1): the spike counts, or for
    ``graded`` values one event per nonzero value. Integer sums (module doc), so they are
    taken in four independent chains (a float add waits for the previous one otherwise)."""
    if graded:
        n = 0
        for c in range(c0, c1):
            n += V[b, p, c] != 0.0
        return float(n)
    s0 = s1 = s2 = s3 = 0.0
    c = c0
    while c + 3 < c1:
        s0 += V[b, p, c]
        s1 += V[b, p, c + 1]
        s2 += V[b, p, c + 2]
        s3 += V[b, p, c + 3]
        c += 4
    while c < c1:
        s0 += V[b, p, c]
        c += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def copy_events(V, graded, service_s, run, H, W, porder, g_c0, g_c1, g_m, g_t0, g_moff,
                g_uniform, g_ssc_k, g_ssc_p, MT, tp_fan, n_ev, e_len, rj, rm, rs):
    """Batch copies of one sender's window for B inputs ``V`` [B, P, C] (channels-last
    positions; ``graded``: a value is one event when nonzero). Group g sends channels
    [g_c0, g_c1) to ``g_m`` destination cores (templates ``g_t0 .. g_t0 + g_m - 1`` of the
    sender); its matrix ``M`` [channels, 2 m], stored transposed ([2 m, channels], flat at
    ``g_moff`` in ``MT``), holds per destination the channels it needs (column 2 j) and their
    synaptic ops per event (column 2 j + 1); ``g_uniform``: every destination needs every
    channel at the same ops per event (one sum per position). Per copy and input:
    ``cnt[p] = sum_c x[p, c] * M[c, 2 j]`` events and core seconds
    ``max(cnt, ops * fan[p]) * service_s`` where ``fan`` is the template's per-position fan
    (``tp_fan`` [templates, P]), or for an SSC conv (``g_ssc_k`` > 0) the active sites of the
    k x k box around p (padding ``g_ssc_p``, an H x W map).

    Writes the events per input and template ``n_ev`` [B, templates], and each copy's runs
    as the queue model takes them (``queues.run_add``: up to ``run`` consecutive events of its
    nonzero positions in emission order, ``porder[b]`` when given ([B, P]), else address
    order) in (template, input) order into ``rj`` / ``rm`` / ``rs`` (first event, events,
    core seconds), ``e_len`` [templates, B] of them each. Returns the runs there are: when
    more than ``rj`` holds, only those that fit were written (the caller grows and calls
    again)."""
    B, P, C = V.shape
    mmax = 0                            # scratch only for groups off the one-pass path
    ssc = 0
    for g in range(g_m.shape[0]):
        if not (g_uniform[g] != 0 and g_m[g] == 1 and g_ssc_k[g] == 0) and g_m[g] > mmax:
            mmax = g_m[g]
        if g_ssc_k[g] > 0:
            ssc = 1
    return _copy_events(V, graded, service_s, run, H, W, porder, g_c0, g_c1, g_m, g_t0,
                        g_moff, g_uniform, g_ssc_k, g_ssc_p, MT, tp_fan, n_ev, e_len, rj, rm,
                        rs, np.zeros((mmax, B, P)), np.zeros((mmax, B, P)),
                        np.zeros((B * ssc, P)), np.zeros(P * ssc))


@njit(cache=True, _nrt=False)      # no reference counts: see ``kernels.queues``
def _copy_events(V, graded, service_s, run, H, W, porder, g_c0, g_c1, g_m, g_t0, g_moff,
                 g_uniform, g_ssc_k, g_ssc_p, MT, tp_fan, n_ev, e_len, rj, rm, rs, cnt, ops,
                 sfan, act):
    """``copy_events`` with its scratch (events and ops per copy, input and position; SSC
    fans; active sites); allocates nothing."""
    B, P, C = V.shape
    ordered = porder.shape[0] > 0
    e = 0
    for g in range(g_m.shape[0]):
        c0, c1, m = g_c0[g], g_c1[g], g_m[g]
        w = c1 - c0
        mo = g_moff[g]                  # M^T[i, c] at MT[mo + i * w + c]
        k = g_ssc_k[g]
        uniform = g_uniform[g] != 0
        if uniform and m == 1 and k == 0:               # one pass: sum, emit
            f = MT[mo + w]
            t = g_t0[g]
            for b in range(B):
                n0 = e
                total = 0.0
                j, mr, sr, j0 = 0.0, 0, 0.0, 0.0
                for r in range(P):
                    p = porder[b, r] if ordered else r
                    a0 = _events(V, b, p, c0, c1, graded)
                    n = int(a0)
                    o = a0 * f * tp_fan[t, p]
                    sv = (a0 if a0 > o else o) * service_s
                    if mr + n < run:        # run_add's common case without a branch on n:
                        j0 = j if mr == 0 else j0        # adding 0 events (or + 0.0) is exact
                        mr += n
                        j += n
                        sr += sv * n / (n if n != 0 else 1)
                    else:
                        j, mr, sr, j0, e = Q.run_add(n, sv, run, j, mr, sr, j0, rj, rm, rs, e)
                    total += a0
                e = Q.run_close(mr, sr, j0, rj, rm, rs, e)
                n_ev[b, t] = np.int64(total)
                e_len[t, b] = e - n0
            continue
        for b in range(B):
            for p in range(P):
                if uniform:
                    a0 = _events(V, b, p, c0, c1, graded)
                    for j in range(m):
                        cnt[j, b, p] = a0
                        ops[j, b, p] = a0 * MT[mo + (2 * j + 1) * w]
                else:
                    for j in range(m):
                        a0 = 0.0
                        a1 = 0.0
                        r0 = mo + 2 * j * w
                        r1 = r0 + w
                        for c in range(w):
                            x = V[b, p, c0 + c]
                            if graded:
                                x = 1.0 if x != 0.0 else 0.0
                            a0 += x * MT[r0 + c]
                            a1 += x * MT[r1 + c]
                        cnt[j, b, p] = a0
                        ops[j, b, p] = a1
                if k > 0:
                    a = 0.0
                    for c in range(c0, c1):
                        if V[b, p, c] != 0.0:
                            a = 1.0
                    act[p] = a
            if k > 0:                                   # SSC: active sites around p
                pad = g_ssc_p[g]
                for y in range(H):
                    for xx in range(W):
                        s = 0.0
                        for dy in range(k):
                            yy = y - pad + dy
                            if yy < 0 or yy >= H:
                                continue
                            for dx in range(k):
                                x2 = xx - pad + dx
                                if x2 >= 0 and x2 < W:
                                    s += act[yy * W + x2]
                        sfan[b, y * W + xx] = s
        for j in range(m):
            t = g_t0[g] + j
            for b in range(B):
                n0 = e
                total = 0.0
                jj, mr, sr, j0 = 0.0, 0, 0.0, 0.0
                for r in range(P):
                    p = porder[b, r] if ordered else r
                    c = cnt[j, b, p]
                    if c != 0.0:
                        o = ops[j, b, p] * (sfan[b, p] if k > 0 else tp_fan[t, p])
                        jj, mr, sr, j0, e = Q.run_add(int(c), (c if c > o else o) * service_s,
                                                      run, jj, mr, sr, j0, rj, rm, rs, e)
                        total += c
                e = Q.run_close(mr, sr, j0, rj, rm, rs, e)
                n_ev[b, t] = np.int64(total)
                e_len[t, b] = e - n0
    return e


@njit(cache=True)
def touched_parts(X, groups, k, s, p, Ho, Wo, starts, C_out, out):
    """Per input and part of a k x k conv's output (stride ``s``, padding ``p``, ``groups``
    channel groups; parts are output channel ranges from ``starts``, ``C_out`` channels): the
    output neurons whose window holds a nonzero input of their group (``X`` [B, H, W, C]),
    into ``out`` [B, parts]. A window test is an OR over k columns, then over k rows."""
    B, H, W, C = X.shape
    cg = C // groups
    og = C_out // groups
    Hp, Wp = H + 2 * p + k + s * Ho, W + 2 * p + k + s * Wo     # zero margins: no bounds tests
    act = np.zeros((groups, Hp, Wp), np.uint8)
    rows = np.zeros((Hp, Wo), np.uint8)
    win = np.zeros(groups, np.int64)
    for b in range(B):
        for y in range(H):
            for x in range(W):
                for g in range(groups):
                    a = 0
                    for c in range(g * cg, (g + 1) * cg):
                        a |= X[b, y, x, c] != 0.0
                    act[g, y + p, x + p] = a
        for g in range(groups):
            for y in range(H + 2 * p):
                for ox in range(Wo):
                    r = 0
                    for dx in range(k):
                        r |= act[g, y, ox * s + dx]
                    rows[y, ox] = r
            n = 0
            for oy in range(Ho):
                for ox in range(Wo):
                    hit = 0
                    for dy in range(k):
                        hit |= rows[oy * s + dy, ox]
                    n += hit
            win[g] = n
        for i in range(starts.shape[0]):          # np.add.reduceat over channels
            c1 = starts[i + 1] if i + 1 < starts.shape[0] else C_out
            t = win[starts[i] // og]
            for c in range(starts[i] + 1, c1):
                t += win[c // og]
            out[b, i] = t


@njit(cache=True)
def channel_nonzeros(X, out):
    """Nonzero values per input and channel of ``X`` [B, P, C]: ``out`` [B, C] (int64)."""
    B, P, C = X.shape
    for b in range(B):
        for c in range(C):
            out[b, c] = 0
        for q in range(P):
            for c in range(C):
                if X[b, q, c] != 0.0:
                    out[b, c] += 1


@njit(cache=True)
def quantized_nonzero_taps(X, in_scale, lo, hi, taps, out):
    """Per input and channel, the sum over positions p of ``taps[p]`` where the quantized
    value ``clip(rint(x / in_scale), lo, hi)`` of ``X`` [B, P, C] is nonzero (``taps`` [P],
    or one entry for every position): ``out`` [B, C] float64 (integer sums, exact)."""
    B, P, C = X.shape
    one = taps.shape[0] == 1
    for b in range(B):
        for c in range(C):
            out[b, c] = 0.0
        for q in range(P):
            t = taps[0] if one else taps[q]
            for c in range(C):
                v = np.rint(X[b, q, c] / in_scale)
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                if v != 0.0:
                    out[b, c] += t
