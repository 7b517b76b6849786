"""Event-driven spike products (``SpikeMatmul``) over a batch: the scatter path of the
spike-product executor, exact in int64 accumulators.

Inputs are count tensors q, k [B, N, C_k] and v [B, N, C_v] (N = H * W tokens, channels-last;
any numeric dtype holding non-negative integer counts), ``heads`` dividing both, d_k = C_k /
heads and d_v = C_v / heads channels per head; the output ``out`` [B, N, C_v] (int64, zeroed by
the caller) receives the integer product before the scale.

* ``q(kv)``: per head, KV[i, j] = sum_n k[n, i] v[n, j] accumulates one row of v's nonzero
  channels per k event; then every q event (n, i) adds q[n, i] x KV[i, :] to out[n, :].
* ``(qk)v``: per head, QK[n, m] = sum_i q[n, i] k[m, i] accumulates one row of k's nonzero
  tokens per q event; then every v event (m, j) adds v[m, j] x QK[:, m] to out[:, j].

Only nonzero entries do work (the synaptic events the engines count with
``neurosim.ir.counts.matmul_ops``); the result equals the dense integer product exactly.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _nonzero_rows(a, h, d):
    """Per token n, the nonzero channels of head h: (flat channel list, offsets [N + 1])."""
    N = a.shape[0]
    off = np.zeros(N + 1, np.int64)
    for n in range(N):
        k = 0
        for i in range(d):
            if a[n, h * d + i] != 0:
                k += 1
        off[n + 1] = off[n] + k
    idx = np.empty(off[N], np.int64)
    e = 0
    for n in range(N):
        for i in range(d):
            if a[n, h * d + i] != 0:
                idx[e] = i
                e += 1
    return idx, off


@njit(cache=True)
def _q_kv(q, k, v, heads, out):
    N = q.shape[0]
    dk = q.shape[1] // heads
    dv = v.shape[1] // heads
    kv = np.zeros((dk, dv), np.int64)
    for h in range(heads):
        kv[:, :] = 0
        vi, voff = _nonzero_rows(v, h, dv)
        k0 = h * dk
        v0 = h * dv
        for n in range(N):
            if voff[n + 1] == voff[n]:
                continue
            for i in range(dk):
                kc = np.int64(k[n, k0 + i])
                if kc == 0:
                    continue
                row = kv[i]
                for e in range(voff[n], voff[n + 1]):
                    j = vi[e]
                    row[j] += kc * np.int64(v[n, v0 + j])
        for n in range(N):
            orow = out[n, v0:v0 + dv]
            for i in range(dk):
                qc = np.int64(q[n, k0 + i])
                if qc == 0:
                    continue
                krow = kv[i]
                for j in range(dv):
                    orow[j] += qc * krow[j]


@njit(cache=True)
def _qk_v(q, k, v, heads, out):
    N = q.shape[0]
    dk = q.shape[1] // heads
    dv = v.shape[1] // heads
    qk = np.zeros((N, N), np.int64)
    tok = np.empty(N, np.int64)
    cnt = np.empty(N, np.int64)
    for h in range(heads):
        qk[:, :] = 0
        c0 = h * dk
        for i in range(dk):
            nk = 0                                   # k's nonzero tokens of channel i
            for m in range(N):
                if k[m, c0 + i] != 0:
                    tok[nk] = m
                    cnt[nk] = np.int64(k[m, c0 + i])
                    nk += 1
            if nk == 0:
                continue
            for n in range(N):
                qc = np.int64(q[n, c0 + i])
                if qc == 0:
                    continue
                row = qk[n]
                for e in range(nk):
                    row[tok[e]] += qc * cnt[e]
        v0 = h * dv
        for m in range(N):
            for j in range(dv):
                vc = np.int64(v[m, v0 + j])
                if vc == 0:
                    continue
                for n in range(N):
                    out[n, v0 + j] += vc * qk[n, m]


@njit(cache=True)
def spike_matmul_scatter(q, k, v, heads, q_kv, out):
    """Integer spike product of each input: ``q_kv`` True for order "q(kv)", False for
    "(qk)v"; q, k [B, N, C_k], v [B, N, C_v] counts; adds into ``out`` [B, N, C_v] (int64)."""
    for b in range(q.shape[0]):
        if q_kv:
            _q_kv(q[b], k[b], v[b], heads, out[b])
        else:
            _qk_v(q[b], k[b], v[b], heads, out[b])
