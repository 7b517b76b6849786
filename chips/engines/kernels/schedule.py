"""Numba kernel of the windowed asynchronous schedule over a batch of inputs: the event order
of ``chips.engines.async_windowed`` (SimPy), replayed per input without SimPy.

The numerics of windowed mode do not depend on time (``async_windowed_batch``), so what is left
per input is the order in which node windows fire and batch copies enter the queues: the
queue state (``kernels.queues``) is shared by every copy, so a different call order would give
different times. The kernel keeps SimPy's event queue exactly: entries ordered by (time,
sequence number of scheduling), every event scheduled in the order the SimPy processes schedule
theirs, and times computed with the same float operations (``now + max(0, t - now)``).

Events (all of SimPy's priority NORMAL; the processes' start-up events are URGENT at time 0
and only register what each process first waits for, which the kernel sets up directly):

* ``EV_SRC`` the input's window t starts: its batches are sent, then window t + 1 is scheduled;
* ``EV_COPY`` a batch copy's last event was served (or a token arrived): when it was the
  batch's last copy, the batch is received;
* ``EV_READY`` (node, window) received all its batches; ``EV_DONE`` (node, window) fired.
  A node fires window k when both ready(k) and done(k - 1) have been processed (a SimPy process
  resumes only from a processed event; yielding an already processed one continues at once).

A node's firing and the input's windows run the sender's op list (``OP_*``): take a part's
(start, end) time, receive an internal edge at once, open a batch, send one copy of it (a token
when it holds no event, else ``queues.route_runs`` over its runs, cut as ``route_dense``
cuts them).

Per input the kernel returns the network counters (``ST_*``); for the recorded input it also
logs every core occupation (work, by the firing node) and every copy sent (by the consuming
node), with the copies' busy intervals and FIFO occupancy points, in call order, for the
timeline.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from chips.engines.kernels import queues as Q

OP_PART, OP_RECV, OP_BATCH, OP_COPY = range(4)
EV_SRC, EV_COPY, EV_READY, EV_DONE = range(4)
# per-input statistics (float64 columns)
ST_SENT, ST_QUEUED, ST_SERVED, ST_DROPPED, ST_DROPPED_LINK, ST_STALLS, ST_STALL_S, \
    ST_MAX_FIFO, ST_BATCHES, ST_OUT_TIME, ST_FIRED, ST_STUCK, ST_STUCK_GOT = range(13)
ST_SIZE = 13
# log of the recorded input: int64 columns, and float64 columns (a copy's ``res``, or a work
# item's start and end)
LOG_KIND, LOG_CORE, LOG_NODE, LOG_BUSY_AT, LOG_TRACE_AT = range(5)
LOG_INT = 5
LOG_WORK, LOG_COPY = 0, 1


@njit(cache=True, inline="always")
def _push(ht, hs, hk, ha, hb, st, t, kind, a, b):
    """Schedule an event at time ``t`` (binary heap on (time, sequence))."""
    i = st[0]
    seq = st[1]
    st[0] = i + 1
    st[1] = seq + 1
    while i > 0:
        p = (i - 1) // 2
        if ht[p] < t or (ht[p] == t and hs[p] < seq):
            break
        ht[i], hs[i], hk[i], ha[i], hb[i] = ht[p], hs[p], hk[p], ha[p], hb[p]
        i = p
    ht[i], hs[i], hk[i], ha[i], hb[i] = t, seq, kind, a, b


@njit(cache=True, inline="always")
def _pop(ht, hs, hk, ha, hb, st):
    """Remove the first event; returns (time, kind, a, b)."""
    t0, k0, a0, b0 = ht[0], hk[0], ha[0], hb[0]
    n = st[0] - 1
    st[0] = n
    t, s, k, a, b = ht[n], hs[n], hk[n], ha[n], hb[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and (ht[c + 1] < ht[c] or (ht[c + 1] == ht[c] and hs[c + 1] < hs[c])):
            c += 1
        if t < ht[c] or (t == ht[c] and s < hs[c]):
            break
        ht[i], hs[i], hk[i], ha[i], hb[i] = ht[c], hs[c], hk[c], ha[c], hb[c]
        i = c
    ht[i], hs[i], hk[i], ha[i], hb[i] = t, s, k, a, b
    return t0, k0, a0, b0


@njit(cache=True, inline="always")
def _later(now, t):
    """SimPy's time of a timeout set for ``t``: ``now + max(0, t - now)``."""
    d = t - now
    return now + (d if d > 0.0 else 0.0)


@njit(cache=True)
def windowed_schedule(T, window, isi, event_s, link_s, depth, drop, gap, n_queues,
                      n_cores, out_node, record, trace_events, busy_rows,
                      op_start, op_kind, op_a, op_b, op_c, nc_start, nc_core, expected,
                      tp_dst, tp_path0, tp_path_len, tp_lat_sum, tp_direct, path_q, path_lat,
                      fire_s, pmax, n_ev, e_start, rj, rm, rs,
                      stats, busy_s0, log_i, log_f, busy_buf, trace_buf, log_n):
    """The windowed schedule of every input b (module doc). Senders: 0 the input, j + 1 exec
    node j; (node j, window k) is ``j * T + k``. Static tables: ops per sender (``op_start``
    CSR), each node's cores (``nc_start`` CSR), batches each node window expects, copy
    templates (destination core, route in ``path_q`` / ``path_lat``, its latency sum, whether
    it is direct: no link). Per input: node work seconds ``fire_s`` [B, T, core slots],
    largest spike count per part ``pmax`` [B, T, part slots] (-1: none), events per copy
    ``n_ev`` [B, T * templates] and each copy's runs (``queues.run_add``: first event
    ``rj``, events ``rm``, core seconds ``rs``; ``e_start`` [T * templates, B + 1]). Results
    in ``stats`` [B, ST_SIZE]; the recorded input (b = 0 when ``record``) logs into
    ``log_*``, ``busy_buf`` (up to ``busy_rows`` intervals per copy), ``trace_buf`` (one row
    per event with ``trace_events``) and its per-core busy seconds into ``busy_s0``."""
    N = expected.shape[0]
    n_tmpl = tp_dst.shape[0]
    n_nw = N * T
    ring = np.zeros((n_queues, depth, Q.R_SIZE))      # as queues.new_state (qs per input)
    qs = np.zeros((n_queues, Q.QS_SIZE))
    got = np.zeros(n_nw, np.int64)
    rstate = np.zeros(n_nw, np.int64)          # ready: 0 not triggered, 1 scheduled, 2 processed
    waiting = np.zeros(n_nw, np.int64)         # 1 on ready, 2 on done(k - 1), 0 fired
    n_batch_ops = 0
    for i in range(op_kind.shape[0]):
        if op_kind[i] == OP_BATCH:
            n_batch_ops += 1
    left = np.zeros(n_batch_ops * T + 1, np.int64)
    target = np.zeros(n_batch_ops * T + 1, np.int64)
    cap = n_tmpl * T + 2 * n_nw + T + 4
    ht = np.zeros(cap)
    hs = np.zeros(cap, np.int64)
    hk = np.zeros(cap, np.int64)
    ha = np.zeros(cap, np.int64)
    hb = np.zeros(cap, np.int64)
    hst = np.zeros(2, np.int64)
    max_cores = 1
    for j in range(N):
        if nc_start[j + 1] - nc_start[j] > max_cores:
            max_cores = nc_start[j + 1] - nc_start[j]
    t0s = np.zeros(max_cores)
    t1s = np.zeros(max_cores)
    busy = np.zeros(n_cores)
    no_rows = np.zeros((0, 2))
    res = np.zeros(Q.RES_SIZE)
    cur = np.zeros(3, np.int64)                # log rows, busy rows, trace rows used
    _schedule(T, window, isi, event_s, link_s, depth, drop, gap, n_cores, out_node, record,
              trace_events, busy_rows, op_start, op_kind, op_a, op_b, op_c, nc_start, nc_core,
              expected, tp_dst, tp_path0, tp_path_len, tp_lat_sum, tp_direct, path_q, path_lat,
              fire_s, pmax, n_ev, e_start, rj, rm, rs, stats, busy_s0, log_i, log_f, busy_buf,
              trace_buf, log_n, ring, qs, got, rstate, waiting, left, target, ht, hs, hk, ha, hb,
              hst, t0s, t1s, busy, no_rows, res, cur)


@njit(cache=True, _nrt=False)      # no reference counts: see ``kernels.queues``
def _schedule(T, window, isi, event_s, link_s, depth, drop, gap, n_cores, out_node, record,
              trace_events, busy_rows, op_start, op_kind, op_a, op_b, op_c, nc_start, nc_core,
              expected, tp_dst, tp_path0, tp_path_len, tp_lat_sum, tp_direct, path_q, path_lat,
              fire_s, pmax, n_ev, e_start, rj, rm, rs, stats, busy_s0, log_i, log_f, busy_buf,
              trace_buf, log_n, ring, qs, got, rstate, waiting, left, target, ht, hs, hk, ha, hb,
              hst, t0s, t1s, busy, no_rows, res, cur):
    """``windowed_schedule`` on the scratch it allocated (queue state, event heap, per node
    window counters); allocates nothing."""
    B = fire_s.shape[0]
    N = expected.shape[0]
    n_tmpl = tp_dst.shape[0]
    n_nw = N * T
    for b in range(B):
        rec = record and b == 0
        qs[:] = 0.0                 # empty queues: a ring slot is read only once written
        qs[:, Q.QS_FREE] = -np.inf
        qs[:, Q.QS_DLAST] = -np.inf
        got[:] = 0
        rstate[:] = 0
        for nw in range(n_nw):
            waiting[nw] = 1 if nw % T == 0 else 2
        busy[:] = 0.0
        sent = queued = served = n_drop = n_drop_link = stalls = batches = 0
        stall_s = 0.0
        max_occ = 0
        out_time = 0.0
        fired = 0
        nb = 0
        bid = 0
        hst[0] = 0
        hst[1] = 0
        _push(ht, hs, hk, ha, hb, hst, 0.0, EV_SRC, 0, 0)
        while hst[0] > 0:
            now, kind, a, a2 = _pop(ht, hs, hk, ha, hb, hst)
            sender = -1
            k = 0
            if kind == EV_SRC:
                sender = 0
                k = a
                at = k * window
                t0s[0] = at
                t1s[0] = at + window
            elif kind == EV_COPY:
                served += a2
                left[a] -= 1
                if left[a] == 0:
                    nw = target[a]
                    got[nw] += 1
                    if got[nw] == expected[nw // T]:
                        rstate[nw] = 1
                        _push(ht, hs, hk, ha, hb, hst, now, EV_READY, nw, 0)
            elif kind == EV_READY:
                rstate[a] = 2
                if waiting[a] == 1:
                    sender = a // T + 1
                    k = a % T
            else:                                           # EV_DONE
                if a % T + 1 < T and waiting[a + 1] == 2:
                    if rstate[a + 1] == 2:
                        sender = a // T + 1
                        k = a % T + 1
                    else:
                        waiting[a + 1] = 1
            if sender < 0:
                continue
            j = sender - 1
            if sender > 0:                                  # the node's own work per core
                waiting[j * T + k] = 0
                for slot in range(nc_start[j], nc_start[j + 1]):
                    core = nc_core[slot]
                    sec = fire_s[b, k, slot]
                    free = qs[core, Q.QS_FREE]
                    start = now if now >= free else free
                    end = start + sec
                    qs[core, Q.QS_FREE] = end
                    busy[core] += sec
                    t0s[slot - nc_start[j]] = start
                    t1s[slot - nc_start[j]] = end
                    if rec and sec > 0:
                        r = cur[0]
                        log_i[r, LOG_KIND] = LOG_WORK
                        log_i[r, LOG_CORE] = core
                        log_i[r, LOG_NODE] = j
                        log_f[r, 0] = start
                        log_f[r, 1] = end
                        cur[0] = r + 1
            t0 = 0.0
            t1 = 0.0
            for o in range(op_start[sender], op_start[sender + 1]):
                ok = op_kind[o]
                if ok == OP_PART:
                    t0 = t0s[op_a[o]]
                    t1 = t1s[op_a[o]]
                    if op_c[o] != 0:
                        pm = pmax[b, k, op_b[o]]
                        if pm >= 0.0:
                            x = t0 + (pm - 1.0) * isi
                            if x > t1:
                                t1 = x
                elif ok == OP_RECV:
                    nw = op_a[o] * T + k
                    got[nw] += 1
                    if got[nw] == expected[op_a[o]]:
                        rstate[nw] = 1
                        _push(ht, hs, hk, ha, hb, hst, now, EV_READY, nw, 0)
                elif ok == OP_BATCH:
                    bid = nb
                    nb += 1
                    left[bid] = op_b[o]
                    target[bid] = op_a[o] * T + k
                else:                                       # OP_COPY
                    tm = op_a[o]
                    cid = k * n_tmpl + tm
                    batches += 1
                    n = n_ev[b, cid]
                    if n == 0:                              # a token
                        _push(ht, hs, hk, ha, hb, hst,
                              _later(now, t1 + tp_lat_sum[tm] + (event_s if tp_direct[tm]
                                                                  else 0.0)),
                              EV_COPY, bid, 0)
                        continue
                    p0 = tp_path0[tm]
                    path = path_q[p0:p0 + tp_path_len[tm]]
                    lat = path_lat[p0:p0 + tp_path_len[tm]]
                    s0 = t0 + event_s if tp_direct[tm] else t0
                    res[:] = 0.0
                    res[Q.RES_FIRST_ARRIVAL] = -1.0
                    e0, e1 = e_start[cid, b], e_start[cid, b + 1]
                    bz = no_rows
                    tr = no_rows
                    if rec:
                        rows = n if n < busy_rows else busy_rows
                        bz = busy_buf[cur[1]:cur[1] + rows]
                        if trace_events:
                            tr = trace_buf[cur[2]:cur[2] + n]
                    Q.route_runs(rj[e0:e1], rm[e0:e1], rs[e0:e1], float(n), s0, t1 - t0,
                                 path, lat, link_s, depth, drop, ring, qs, gap, res, bz, tr)
                    sent += n
                    ne = int(res[Q.RES_EVENTS])
                    d = int(res[Q.RES_DROPPED])
                    queued += ne - d
                    n_drop += d
                    n_drop_link += int(res[Q.RES_DROPPED_LINK])
                    stalls += int(res[Q.RES_STALLED])
                    stall_s += res[Q.RES_STALL_S]
                    mo = int(res[Q.RES_MAX_OCC])
                    if mo > max_occ:
                        max_occ = mo
                    dst = tp_dst[tm]
                    busy[dst] += res[Q.RES_BUSY_S]
                    if rec:
                        r = cur[0]
                        log_i[r, LOG_KIND] = LOG_COPY
                        log_i[r, LOG_CORE] = dst
                        log_i[r, LOG_NODE] = op_b[o]
                        log_i[r, LOG_BUSY_AT] = cur[1]
                        log_i[r, LOG_TRACE_AT] = cur[2]
                        for i in range(Q.RES_SIZE):
                            log_f[r, i] = res[i]
                        cur[0] = r + 1
                        cur[1] += bz.shape[0]
                        cur[2] += tr.shape[0]
                    _push(ht, hs, hk, ha, hb, hst, _later(now, res[Q.RES_LAST_LEAVE]), EV_COPY,
                          bid, ne - d)
            if sender == 0:
                if k + 1 < T:
                    _push(ht, hs, hk, ha, hb, hst, _later(now, (k + 1) * window), EV_SRC,
                          k + 1, 0)
            else:
                if j == out_node:
                    for slot in range(nc_start[j + 1] - nc_start[j]):
                        if t1s[slot] > out_time:
                            out_time = t1s[slot]
                fired += 1
                _push(ht, hs, hk, ha, hb, hst, now, EV_DONE, j * T + k, 0)
        st = stats[b]
        st[ST_SENT] = sent
        st[ST_QUEUED] = queued
        st[ST_SERVED] = served
        st[ST_DROPPED] = n_drop
        st[ST_DROPPED_LINK] = n_drop_link
        st[ST_STALLS] = stalls
        st[ST_STALL_S] = stall_s
        st[ST_MAX_FIFO] = max_occ
        st[ST_BATCHES] = batches
        st[ST_OUT_TIME] = out_time
        st[ST_FIRED] = fired
        st[ST_STUCK] = -1                          # first node window that never fired
        for kk in range(T):
            for jj in range(N):
                if waiting[jj * T + kk] != 0 and st[ST_STUCK] < 0:
                    st[ST_STUCK] = jj * T + kk
                    st[ST_STUCK_GOT] = got[jj * T + kk]
        if rec:
            for i in range(n_cores):
                busy_s0[i] = busy[i]
    log_n[0] = cur[0]

