"""Numba kernels of the batched windowed asynchronous path (``async_windowed_batch``): what a
node window sends (events and core service per position of every batch copy, for B inputs),
and which neurons a conv's spikes reach (event-driven neuron updates).

All sums are of integer-valued float64 (spike counts or nonzero flags times integer fan-outs)
below 2^53, so they are exact and equal the per-input numpy / BLAS results of the SimPy path
whatever the summation order.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _events(V, b, p, c0, c1, graded):
    """Events at position p of input b over channels [c0, c1): the spike counts, or for
    ``graded`` values one event per nonzero value."""
    a0 = 0.0
    if graded:
        for c in range(c0, c1):
            a0 += 1.0 if V[b, p, c] != 0.0 else 0.0
    else:
        for c in range(c0, c1):
            a0 += V[b, p, c]
    return a0


@njit(cache=True)
def copy_events(V, graded, service_s, H, W, porder, g_c0, g_c1, g_m, g_t0, g_moff, g_ssc_k,
                g_ssc_p, Mflat, tp_fan, n_ev, e_len, e_cnt, e_svc):
    """Batch copies of one sender's window for B inputs ``V`` [B, P, C] (channels-last
    positions; ``graded``: a value is one event when nonzero). Group g sends channels
    [g_c0, g_c1) to ``g_m`` destination cores (templates ``g_t0 .. g_t0 + g_m - 1`` of the
    sender); its matrix ``M`` [channels, 2 m] (at ``g_moff`` in ``Mflat``) holds per
    destination the channels it needs (column 2 j) and their synaptic ops per event (column
    2 j + 1; the common case of every channel needed at the same ops per event takes one sum
    per position). Per copy and input: ``cnt[p] = sum_c x[p, c] * M[c, 2 j]`` events and core
    seconds ``max(cnt, ops * fan[p]) * service_s`` where ``fan`` is the template's per-position
    fan (``tp_fan`` [templates, P]), or for an SSC conv (``g_ssc_k`` > 0) the active sites of
    the k x k box around p (padding ``g_ssc_p``, an H x W map).

    Writes the events per input and template ``n_ev`` [B, templates], and the nonzero
    positions' events and seconds in (template, input, emission order) into ``e_cnt`` /
    ``e_svc``, ``e_len`` [templates, B] of them each; emission order is ``porder[b]`` when
    given ([B, P]), else address order. Returns the entries written."""
    B, P, C = V.shape
    ordered = porder.shape[0] > 0
    mmax = 1
    for g in range(g_m.shape[0]):
        if g_m[g] > mmax:
            mmax = g_m[g]
    cnt = np.zeros((mmax, B, P))
    ops = np.zeros((mmax, B, P))
    sfan = np.zeros((B, P))
    act = np.zeros(P)
    e = 0
    for g in range(g_m.shape[0]):
        c0, c1, m = g_c0[g], g_c1[g], g_m[g]
        w = c1 - c0
        Mt = np.ascontiguousarray(Mflat[g_moff[g]:g_moff[g] + w * 2 * m].reshape((w, 2 * m)).T)
        k = g_ssc_k[g]
        uniform = True                  # every destination needs every channel, same ops
        for j in range(m):
            for c in range(w):
                if Mt[2 * j, c] != 1.0 or Mt[2 * j + 1, c] != Mt[2 * j + 1, 0]:
                    uniform = False
        if uniform and m == 1 and k == 0:               # one pass: sum, emit
            f = Mt[1, 0]
            t = g_t0[g]
            for b in range(B):
                n0 = e
                total = 0.0
                for r in range(P):
                    p = porder[b, r] if ordered else r
                    a0 = _events(V, b, p, c0, c1, graded)
                    if a0 != 0.0:
                        o = a0 * f * tp_fan[t, p]
                        e_cnt[e] = a0
                        e_svc[e] = (a0 if a0 > o else o) * service_s
                        e += 1
                        total += a0
                n_ev[b, t] = np.int64(total)
                e_len[t, b] = e - n0
            continue
        for b in range(B):
            for p in range(P):
                if uniform:
                    a0 = _events(V, b, p, c0, c1, graded)
                    for j in range(m):
                        cnt[j, b, p] = a0
                        ops[j, b, p] = a0 * Mt[2 * j + 1, 0]
                else:
                    for j in range(m):
                        a0 = 0.0
                        a1 = 0.0
                        for c in range(w):
                            x = V[b, p, c0 + c]
                            if graded:
                                x = 1.0 if x != 0.0 else 0.0
                            a0 += x * Mt[2 * j, c]
                            a1 += x * Mt[2 * j + 1, c]
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
                for r in range(P):
                    p = porder[b, r] if ordered else r
                    c = cnt[j, b, p]
                    if c != 0.0:
                        o = ops[j, b, p] * (sfan[b, p] if k > 0 else tp_fan[t, p])
                        e_cnt[e] = c
                        e_svc[e] = (c if c > o else o) * service_s
                        e += 1
                        total += c
                n_ev[b, t] = np.int64(total)
                e_len[t, b] = e - n0
    return e


@njit(cache=True)
def touched_windows(X, groups, k, s, p, Ho, Wo, out):
    """Per input and group, the output positions of a k x k conv (stride ``s``, padding ``p``,
    ``groups`` channel groups) whose window holds a nonzero input of the group (``X``
    [B, H, W, C]): ``out`` [B, groups]."""
    B, H, W, C = X.shape
    cg = C // groups
    act = np.zeros((H, W, groups), np.uint8)
    for b in range(B):
        for y in range(H):
            for x in range(W):
                for g in range(groups):
                    a = 0
                    for c in range(g * cg, (g + 1) * cg):
                        if X[b, y, x, c] != 0.0:
                            a = 1
                            break
                    act[y, x, g] = a
        for g in range(groups):
            n = 0
            for oy in range(Ho):
                for ox in range(Wo):
                    hit = False
                    for dy in range(k):
                        y = oy * s - p + dy
                        if y < 0 or y >= H:
                            continue
                        for dx in range(k):
                            x = ox * s - p + dx
                            if x >= 0 and x < W and act[y, x, g] != 0:
                                hit = True
                                break
                        if hit:
                            break
                    if hit:
                        n += 1
            out[b, g] = n


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
