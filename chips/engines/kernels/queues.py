"""Numba kernels of the asynchronous chip's event network: computed service schedules of
events through router queues, links and a core's input FIFO (``chips.engines.async_links``).

A *queue* is a buffer of ``depth`` events in front of one server: a link (serves one event per
``1 / link_events_per_s``) or a core (serves an event in ``ops x synop_service``). Events enter
a queue in runs (one event, or up to ``run`` consecutive events of a batch) and a run's events
leave evenly over its service: event i of a run that starts service at ``start`` with ``each``
seconds per event leaves at ``start + each * (i + 1)``. Queue state, one row per queue:
``ring[q]`` the run records of its last ``depth`` admitted events (a circular buffer of
``depth`` records in admission order: first event, start, each, departure of its last event;
departures never decrease: one FIFO server) and ``qs[q]`` (float64 columns ``QS_*``: events and
runs admitted, when the server is next free, a cursor on the first event not yet departed for
occupancies, a cursor for stall look-ups). A departure is computed from its record when asked,
with the operations that would have stored it, so a run costs O(1) instead of O(events). An
event offered to a full queue (the event admitted ``depth`` places earlier has not left yet) is
dropped (``drop``) or waits until that event leaves (stall); a stalled event holds the server it
came from until it gets in (blocking after service), and a stall at the first queue holds the
sender, so later emissions wait.

An event's path is the queue ids it visits in order (links, then the destination core) with the
latency after each (hop latency after a link; 0 after the core). Every kernel walks events in
emission order and returns per-path statistics in ``res`` (see ``RES``); one call serves one
copy of a batch for one destination core, so a later call (a later batch) queues behind it
(batch-granular arbitration).

Busy intervals of the destination core (for timelines) are written to ``busy`` [k, 2] (service
runs whose gaps are at most ``gap`` seconds merge; once it is full, the last interval extends
over the rest), and its occupancy at each
event's entry to ``trace`` [m, 2] (time, events) while that has room: pass empty arrays to
record neither.

Kernels that walk events call the inline helpers with arrays; Numba would count references to
those arrays at every call (atomic operations that took most of the run time), so they are
compiled without reference counting (``_nrt=False``): they only read and write the arrays
they are given and never allocate.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# columns of the queue state ``qs`` (float64 [queues, QS_SIZE])
QS_COUNT, QS_RUNS, QS_FREE, QS_DN, QS_DK, QS_DLAST, QS_SK = range(7)
QS_SIZE = 7
# fields of a run record ``ring[q, slot]`` (float64 [queues, depth, R_SIZE])
R_FIRST, R_START, R_EACH, R_LAST = range(4)
R_SIZE = 4

# indices into the statistics vector ``res`` (float64 [RES_SIZE]) returned per call
RES_EVENTS, RES_DROPPED, RES_STALL_S, RES_STALLED, RES_FIRST_ARRIVAL, RES_LAST_LEAVE, \
    RES_MAX_OCC, RES_BUSY, RES_DROPPED_LINK, RES_BUSY_S, RES_PEAK_T, RES_TRACE = range(12)
RES_SIZE = 12


def new_state(n_queues: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty queues: (ring [n, depth, R_SIZE], qs [n, QS_SIZE]); servers free since -inf."""
    qs = np.zeros((n_queues, QS_SIZE))
    qs[:, QS_FREE] = -np.inf
    qs[:, QS_DLAST] = -np.inf
    return np.zeros((n_queues, depth, R_SIZE)), qs


def new_res() -> np.ndarray:
    """A zeroed statistics vector (first arrival unset: -1)."""
    r = np.zeros(RES_SIZE)
    r[RES_FIRST_ARRIVAL] = -1.0
    return r


@njit(cache=True, inline="always")
def _end(ring, qs, q, k, depth):
    """One past the last event of run record ``k`` of queue ``q``."""
    if k + 1 >= int(qs[q, QS_RUNS]):
        return int(qs[q, QS_COUNT])
    return int(ring[q, (k + 1) % depth, R_FIRST])


@njit(cache=True, inline="always")
def _dep(ring, qs, q, k, x, depth):
    """Departure of event ``x`` (admission order) of queue ``q``, held by run record ``k``:
    ``start + each * (i + 1)`` for its i-th event, its last as recorded."""
    s = k % depth
    if x == _end(ring, qs, q, k, depth) - 1:
        return ring[q, s, R_LAST]
    return ring[q, s, R_START] + ring[q, s, R_EACH] * (x - int(ring[q, s, R_FIRST]) + 1)


@njit(cache=True, inline="always")
def _record_of(ring, qs, q, x, depth):
    """The run record holding event ``x`` (one of the queue's last ``depth`` events)."""
    runs = int(qs[q, QS_RUNS])
    lo = runs - depth if runs > depth else 0
    hi = runs - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(ring[q, mid % depth, R_FIRST]) <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True, inline="always")
def occupancy(ring, qs, q, depth, t):
    """Events of queue ``q`` inside at time ``t`` (admitted, departure > t), of its last
    ``depth`` events (older ones have left). Amortised O(1) per run record while ``t`` does
    not decrease (a cursor walks the departures, a record at a time, and inside a record,
    whose departures do not decrease, by bisection); else a bisection over the events."""
    n = int(qs[q, QS_COUNT])
    m = n if n < depth else depth
    if t < qs[q, QS_DLAST]:
        lo, hi = 0, m                  # first k (admission order) with dep > t
        while lo < hi:
            mid = (lo + hi) // 2
            x = n - m + mid
            if _dep(ring, qs, q, _record_of(ring, qs, q, x, depth), x, depth) > t:
                hi = mid
            else:
                lo = mid + 1
        return m - lo
    dn, dk = int(qs[q, QS_DN]), int(qs[q, QS_DK])
    if dn < n - m:                     # older than the ring: all departed by now
        dn = n - m
        dk = _record_of(ring, qs, q, dn, depth)
    while dn < n:
        s = dk % depth
        end = _end(ring, qs, q, dk, depth)
        if ring[q, s, R_LAST] <= t:     # the whole record has left
            dn = end
            dk += 1
            continue
        f = int(ring[q, s, R_FIRST])
        start, each = ring[q, s, R_START], ring[q, s, R_EACH]
        lo, hi = dn, end - 1           # first event left inside at t (the last one is)
        while lo < hi:
            mid = (lo + hi) // 2
            if start + each * (mid - f + 1) > t:
                hi = mid
            else:
                lo = mid + 1
        dn = lo
        break
    qs[q, QS_DN] = dn
    qs[q, QS_DK] = dk
    qs[q, QS_DLAST] = t
    return n - dn


@njit(cache=True, inline="always")
def _admit(q, a, m, svc, depth, drop, ring, qs):
    """Offer a run of ``m`` events arriving at ``a`` to queue ``q``, served in ``svc`` seconds
    in all. Returns (entry time, events admitted, departure of the last). ``drop``: as many
    as there is room for at ``a`` get in, the rest are dropped; stall: the run waits until all
    of it fits. The server starts it once it is in and the previous run has left; its events
    leave evenly over its service (one run record)."""
    n = int(qs[q, QS_COUNT])
    runs = int(qs[q, QS_RUNS])
    if drop:
        room = depth - occupancy(ring, qs, q, depth, a) if n >= depth - m else m
        if room <= 0:
            return a, 0, -1.0
        if room < m:
            svc = svc * room / m
            m = room
    elif n + m > depth:
        x = n + m - 1 - depth             # the event depth places before the run's last
        k = int(qs[q, QS_SK])             # a cursor: x grows from call to call
        if k < runs - depth:
            k = runs - depth
        if int(ring[q, k % depth, R_FIRST]) > x:
            k = _record_of(ring, qs, q, x, depth)
        while k + 1 < runs and int(ring[q, (k + 1) % depth, R_FIRST]) <= x:
            k += 1
        qs[q, QS_SK] = k
        d = _dep(ring, qs, q, k, x, depth)
        if d > a:
            a = d
    free = qs[q, QS_FREE]
    start = a if a > free else free
    each = svc / m
    s = runs % depth
    ring[q, s, R_FIRST] = n
    ring[q, s, R_START] = start
    ring[q, s, R_EACH] = each
    ring[q, s, R_LAST] = start + each * m
    dep = start + svc
    qs[q, QS_COUNT] = n + m
    qs[q, QS_RUNS] = runs + 1
    qs[q, QS_FREE] = dep
    return a, m, dep


@njit(cache=True, inline="always")
def pass_run(e, m, svc_core, path, lat, svc_link, depth, drop, ring, qs, res):
    """A run of ``m`` events emitted from ``e`` through ``path`` (links, then the core, which
    serves the run in ``svc_core`` seconds). Returns (events that reached the core, departure
    of the last from the core, entry time into the first queue: the sender is held until
    then, entry time into the core's FIFO, the core's service of what got in). Stalls and
    drops are added to ``res``."""
    t = e
    first_entry = e
    core_entry = e
    m0 = m
    last = path.shape[0] - 1
    for j in range(last + 1):
        q = path[j]
        svc = svc_core * m / m0 if j == last else svc_link * m
        entry, got, dep = _admit(q, t, m, svc, depth, drop, ring, qs)
        if got < m:
            res[RES_DROPPED] += m - got
            if j < last:
                res[RES_DROPPED_LINK] += m - got
            if got == 0:
                return 0, -1.0, first_entry, core_entry, 0.0
            m = got
        if entry > t:
            res[RES_STALL_S] += entry - t
            res[RES_STALLED] += m
            if j > 0:                    # the upstream server holds the run until it gets in
                p = path[j - 1]
                held = entry - lat[j - 1]
                if held > qs[p, QS_FREE]:
                    qs[p, QS_FREE] = held
                k = (int(qs[p, QS_RUNS]) - 1) % depth    # its last event's record
                if held > ring[p, k, R_LAST]:
                    ring[p, k, R_LAST] = held
        if j == 0:
            first_entry = entry
        if j == last:
            core_entry = entry
            if res[RES_FIRST_ARRIVAL] < 0.0 or entry < res[RES_FIRST_ARRIVAL]:
                res[RES_FIRST_ARRIVAL] = entry
            return m, dep, first_entry, core_entry, svc
        t = dep + lat[j]
    return m, t, first_entry, core_entry, 0.0


@njit(cache=True, inline="always")
def _note_core(at, leave, svc, occ, gap, res, busy, trace):
    """Record one run served on the core: last leave, peak occupancy (``occ`` at its entry
    ``at``, itself included), the occupancy trace (when ``trace`` has rows), busy intervals."""
    if leave > res[RES_LAST_LEAVE]:
        res[RES_LAST_LEAVE] = leave
    if occ > res[RES_MAX_OCC]:
        res[RES_MAX_OCC] = occ
        res[RES_PEAK_T] = at
    res[RES_BUSY_S] += svc
    m = int(res[RES_TRACE])
    if m < trace.shape[0]:
        trace[m, 0] = at
        trace[m, 1] = occ
        res[RES_TRACE] = m + 1
    k = int(res[RES_BUSY])
    if busy.shape[0] == 0 or svc <= 0.0:
        return
    s = leave - svc
    if k > 0 and (busy[k - 1, 1] + gap >= s or k == busy.shape[0]):
        if leave > busy[k - 1, 1]:
            busy[k - 1, 1] = leave
    else:
        busy[k, 0] = s
        busy[k, 1] = leave
        res[RES_BUSY] = k + 1


@njit(cache=True, inline="always")
def _flush(e, m, svc, path, lat, svc_link, depth, drop, ring, qs, gap, res, busy, trace):
    """Send one run; returns (events that reached the core, entry into the first queue)."""
    got, leave, entered, at, served = pass_run(e, m, svc, path, lat, svc_link, depth, drop,
                                               ring, qs, res)
    if got > 0:
        core = path[path.shape[0] - 1]
        _note_core(at, leave, served, occupancy(ring, qs, core, depth, at), gap, res, busy,
                   trace)
    return got, entered


@njit(cache=True)
def route_dense(cnt, svc_pos, porder, n_ev, t0, dur, run, path, lat, svc_link, depth, drop,
                ring, qs, gap, dropped, res, busy, trace):
    """One batch, given per position of its map: ``cnt[p]`` events and ``svc_pos[p]`` seconds
    of core service for all of them, through ``path`` to its core. Positions go in address
    order (``porder`` order when not empty); of the ``n_ev`` events the sender says it sends,
    event j is emitted at ``t0 + dur * j / n_ev`` or later (the sender emits in order, and
    waits while its first queue is full). The schedule is computed per run of up to ``run``
    consecutive events (emitted at its first event's time, served in the sum of its events'
    service); ``dropped[p]`` receives the events of position p a full queue dropped."""
    route_dense_into(cnt, svc_pos, porder, n_ev, t0, dur, run, path, lat, svc_link, depth,
                     drop, ring, qs, gap, dropped, np.empty(run + 1, np.int64),
                     np.empty(run + 1, np.int64), res, busy, trace)


@njit(cache=True, _nrt=False)     # no reference counts (module doc)
def route_dense_into(cnt, svc_pos, porder, n_ev, t0, dur, run, path, lat, svc_link, depth,
                     drop, ring, qs, gap, dropped, seg_p, seg_n, res, busy, trace):
    """``route_dense`` with the caller's scratch for a run's segments (position, events),
    ``seg_p`` and ``seg_n`` (int64, ``run + 1`` entries or more): no allocation per batch."""
    npos = cnt.shape[0]
    if n_ev <= 0:
        return
    step = dur / n_ev
    sender = t0
    j = 0.0
    ordered = porder.shape[0] > 0
    ns = 0
    m = 0
    svc_run = 0.0
    e_run = 0.0
    for r in range(npos):
        p = porder[r] if ordered else r
        n = int(cnt[p])
        done = 0
        while done < n:
            take = n - done if n - done < run - m else run - m
            if m == 0:
                e_run = t0 + step * j
                if e_run < sender:
                    e_run = sender
            seg_p[ns] = p
            seg_n[ns] = take
            ns += 1
            m += take
            j += take
            done += take
            svc_run += svc_pos[p] * take / n
            if m == run:
                got, entered = _flush(e_run, m, svc_run, path, lat, svc_link, depth, drop,
                                      ring, qs, gap, res, busy, trace)
                _dropped_tail(dropped, seg_p, seg_n, ns, m - got)
                if entered > sender:
                    sender = entered
                m = 0
                ns = 0
                svc_run = 0.0
    if m > 0:
        got, _ = _flush(e_run, m, svc_run, path, lat, svc_link, depth, drop, ring, qs, gap,
                        res, busy, trace)
        _dropped_tail(dropped, seg_p, seg_n, ns, m - got)
    res[RES_EVENTS] += j


@njit(cache=True, inline="always")
def run_add(n, svc_p, run, j, m, s, j0, rj, rm, rs, e):
    """Add a position's ``n`` events (``svc_p`` seconds of core service for all of them) to
    the runs of a batch, as ``route_dense`` cuts them: runs of up to ``run`` consecutive
    events, a run's service the sum of ``svc_p * take / n`` over the positions it takes
    ``take`` events of (same operations, same order). State: ``j`` events so far (float),
    ``m`` events and ``s`` seconds of the open run, ``j0`` its first event; a completed run
    is written at ``e`` into ``rj`` (first event), ``rm`` (events), ``rs`` (seconds) while
    ``e`` is inside them. Returns the new (j, m, s, j0, e)."""
    done = 0
    while done < n:
        take = n - done if n - done < run - m else run - m
        if m == 0:
            j0 = j
        m += take
        j += take
        done += take
        s += svc_p * take / n
        if m == run:
            if e < rj.shape[0]:
                rj[e] = j0
                rm[e] = m
                rs[e] = s
            e += 1
            m = 0
            s = 0.0
    return j, m, s, j0, e


@njit(cache=True, inline="always")
def run_close(m, s, j0, rj, rm, rs, e):
    """Write the open run (when it holds events) at ``e``; returns the runs written."""
    if m > 0:
        if e < rj.shape[0]:
            rj[e] = j0
            rm[e] = m
            rs[e] = s
        e += 1
    return e


@njit(cache=True, _nrt=False)
def dense_runs(cnt, svc_pos, porder, run, rj, rm, rs):
    """The runs ``route_dense`` cuts a batch into (its positions in address order, or
    ``porder`` order when not empty): first event, events and core seconds of each, into
    ``rj`` / ``rm`` / ``rs``; returns how many there are (written while they fit)."""
    ordered = porder.shape[0] > 0
    j = 0.0
    m = 0
    s = 0.0
    j0 = 0.0
    e = 0
    for r in range(cnt.shape[0]):
        p = porder[r] if ordered else r
        j, m, s, j0, e = run_add(int(cnt[p]), svc_pos[p], run, j, m, s, j0, rj, rm, rs, e)
    return run_close(m, s, j0, rj, rm, rs, e)


@njit(cache=True, _nrt=False)     # no reference counts (module doc)
def route_runs(rj, rm, rs, n_ev, t0, dur, path, lat, svc_link, depth, drop, ring, qs, gap,
               res, busy, trace):
    """``route_dense`` of a batch already cut into runs (``dense_runs``; ``rm`` events per
    run, exact in float64): run r is emitted at ``t0 + dur / n_ev * rj[r]`` or later, and
    served in ``rs[r]`` seconds by the core; same queue operations, same results (without
    the per-position drop attribution)."""
    if n_ev <= 0:
        return
    step = dur / n_ev
    sender = t0
    for r in range(rj.shape[0]):
        e_run = t0 + step * rj[r]
        if e_run < sender:
            e_run = sender
        _, entered = _flush(e_run, int(rm[r]), rs[r], path, lat, svc_link, depth, drop, ring,
                            qs, gap, res, busy, trace)
        if entered > sender:
            sender = entered
    n = rj.shape[0]
    if n > 0:
        res[RES_EVENTS] += rj[n - 1] + rm[n - 1]


@njit(cache=True, inline="always")
def _dropped_tail(dropped, seg_p, seg_n, ns, d):
    """The ``d`` events a run lost are its last: charge them to its segments' positions."""
    for k in range(ns - 1, -1, -1):
        if d <= 0:
            return
        g = d if d < seg_n[k] else seg_n[k]
        dropped[seg_p[k]] += g
        d -= g


@njit(cache=True)
def take_back(keep, C, c_lo, c_hi, need, graded, dropped):
    """Take ``dropped[p]`` events out of ``keep`` (flat channels-last [npos * C]) at each
    position p: the last of its events (channels [c_lo, c_hi) with ``need``, descending; a
    count of k being k events; a graded entry one event, set to 0)."""
    for p in range(dropped.shape[0]):
        d = dropped[p]
        c = c_hi - 1
        while d > 0 and c >= c_lo:
            v = keep[p * C + c]
            if v != 0.0 and need[c]:
                if graded:
                    keep[p * C + c] = 0.0
                    d -= 1
                else:
                    k = d if d < v else v
                    keep[p * C + c] = v - k
                    d -= k
            c -= 1


@njit(cache=True, _nrt=False)     # no reference counts (module doc)
def links_multi(t_emit, copy, paths, lats, n_hops, svc_link, depth, drop, ring, qs, arrive,
                res):
    """Copies of one sender's events (a multicast) through their routes' link queues, merged
    in emission order (``t_emit`` non-decreasing; ``copy[i]`` picks event i's route: row
    ``copy[i]`` of ``paths`` / ``lats``, ``n_hops`` queues long), so copies that share a queue
    interleave in time instead of one copy waiting behind another; ``arrive[i]`` receives the
    time event i reaches the end of its route (after the latency following its last link), or
    -1 when a full queue dropped it. Emission waits while a first queue is full (stall)."""
    sender = -np.inf
    for i in range(t_emit.shape[0]):
        k = copy[i]
        last = n_hops[k] - 1
        t = t_emit[i] if t_emit[i] > sender else sender
        arrive[i] = -1.0
        for j in range(last + 1):
            q = paths[k, j]
            entry, got, dep = _admit(q, t, 1, svc_link, depth, drop, ring, qs)
            if got == 0:
                res[RES_DROPPED] += 1.0
                res[RES_DROPPED_LINK] += 1.0
                break
            if entry > t:
                res[RES_STALL_S] += entry - t
                res[RES_STALLED] += 1.0
                if j > 0:
                    p = paths[k, j - 1]
                    held = entry - lats[k, j - 1]
                    if held > qs[p, QS_FREE]:
                        qs[p, QS_FREE] = held
            if j == 0 and entry > sender:
                sender = entry
            t = dep + lats[k, j]
            if j == last:
                arrive[i] = t
    res[RES_EVENTS] += t_emit.shape[0]


@njit(cache=True, _nrt=False)     # no reference counts (module doc)
def core_list(t_arr, ops, svc_op, q, depth, drop, ring, qs, gap, leave, res, busy, trace):
    """Events reaching core ``q``'s FIFO at ``t_arr`` (non-decreasing), served in arrival
    order, ``max(1, ops) * svc_op`` each: ``leave[i]`` receives event i's service completion,
    or -1 when the FIFO was full (drop). A stalled event waits outside the FIFO."""
    for i in range(t_arr.shape[0]):
        o = ops[i]
        svc = (o if o > 1.0 else 1.0) * svc_op
        entry, got, dep = _admit(q, t_arr[i], 1, svc, depth, drop, ring, qs)
        if got == 0:
            res[RES_DROPPED] += 1.0
            leave[i] = -1.0
            continue
        if entry > t_arr[i]:
            res[RES_STALL_S] += entry - t_arr[i]
            res[RES_STALLED] += 1.0
        if res[RES_FIRST_ARRIVAL] < 0.0 or entry < res[RES_FIRST_ARRIVAL]:
            res[RES_FIRST_ARRIVAL] = entry
        leave[i] = dep
        _note_core(entry, dep, svc, occupancy(ring, qs, q, depth, entry), gap, res, busy,
                   trace)
    res[RES_EVENTS] += t_arr.shape[0]
