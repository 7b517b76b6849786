"""The queue state kept as run records (``kernels.queues``) against a plain per-event model of
the same FIFO (every event's departure stored, as the state was before): same entry times,
departures, stalls, drops and occupancies bit for bit, including held servers (blocking after
service), occupancy queries that go back in time and records that wrap around the ring; and
batches cut into runs (``dense_runs`` + ``route_runs``, the batched windowed path) equal to
``route_dense`` (the SimPy path)."""
import numpy as np
import pytest

from chips.engines.kernels import queues as Q


class EventQueue:
    """One FIFO of ``depth`` events with every departure in a list (the reference)."""

    def __init__(self, depth: int):
        self.depth, self.dep, self.free = depth, [], -np.inf
        self.dn, self.dlast = 0, -np.inf
        self.holds = 0                  # times a hold moved the last departure

    def occupancy(self, t: float) -> int:
        n = len(self.dep)
        m = min(n, self.depth)
        if t < self.dlast:                              # bisection over the last m events
            lo, hi = 0, m
            while lo < hi:
                mid = (lo + hi) // 2
                if self.dep[n - m + mid] > t:
                    hi = mid
                else:
                    lo = mid + 1
            return m - lo
        self.dn = max(self.dn, n - m)
        while self.dn < n and self.dep[self.dn] <= t:
            self.dn += 1
        self.dlast = t
        return n - self.dn

    def admit(self, a: float, m: int, svc: float, drop: bool):
        n, depth = len(self.dep), self.depth
        if drop:
            room = depth - self.occupancy(a) if n >= depth - m else m
            if room <= 0:
                return a, 0, -1.0
            if room < m:
                svc, m = svc * room / m, room
        elif n + m > depth:
            a = max(a, self.dep[n + m - 1 - depth])
        start = a if a > self.free else self.free
        each = svc / m
        self.dep.extend(start + each * (i + 1) for i in range(m))
        self.free = start + svc
        return a, m, self.free

    def hold(self, held: float) -> None:
        """The server holds its last event until ``held`` (blocking after service)."""
        self.free = max(self.free, held)
        self.holds += held > self.dep[-1]
        self.dep[-1] = max(self.dep[-1], held)


def _hold(ring, qs, q, held, depth):
    """What ``pass_run`` does to the upstream queue of a stalled run."""
    if held > qs[q, Q.QS_FREE]:
        qs[q, Q.QS_FREE] = held
    k = (int(qs[q, Q.QS_RUNS]) - 1) % depth
    if held > ring[q, k, Q.R_LAST]:
        ring[q, k, Q.R_LAST] = held


@pytest.mark.parametrize("depth,drop,seed", [(1, False, 0), (3, False, 1), (5, True, 2),
                                             (8, False, 3), (8, True, 4), (64, False, 5)])
def test_run_records_give_the_per_event_schedule(depth, drop, seed):
    rng = np.random.default_rng(seed)
    n_q = 3
    ring, qs = Q.new_state(n_q, depth)
    ref = [EventQueue(depth) for _ in range(n_q)]
    t = 0.0
    for step in range(600):
        q = int(rng.integers(n_q))
        op = rng.random()
        t += float(rng.exponential(0.4))
        if op < 0.55:                                  # a run of m events arrives
            m = int(rng.integers(1, depth + 1))
            svc = 0.0 if rng.random() < 0.05 else float(rng.exponential(0.3 * m))
            got = Q._admit(q, t, m, svc, depth, drop, ring, qs)
            want = ref[q].admit(t, m, svc, drop)
            assert got == want, (step, got, want)
        elif op < 0.85:          # occupancy: now, back in time, or at a departure (a tie)
            at = t if rng.random() < 0.5 else t - float(rng.exponential(2.0))
            if ref[q].dep and rng.random() < 0.4:
                at = ref[q].dep[-int(rng.integers(1, min(depth, len(ref[q].dep)) + 1))]
            assert Q.occupancy(ring, qs, q, depth, at) == ref[q].occupancy(at), step
        elif ref[q].dep:                               # blocking after service
            held = ref[q].dep[-1] + float(rng.exponential(0.2)) - 0.1
            _hold(ring, qs, q, held, depth)
            ref[q].hold(held)
        assert qs[q, Q.QS_COUNT] == len(ref[q].dep) and qs[q, Q.QS_FREE] == ref[q].free
    assert sum(len(r.dep) for r in ref) > 4 * depth          # records wrapped the ring


def _pass_run(queues, e, m, svc_core, path, lat, svc_link, drop, res):
    """``queues.pass_run`` on the per-event reference (links, then the core)."""
    t, m0, last = e, m, len(path) - 1
    first_entry = core_entry = e
    for j, q in enumerate(path):
        svc = svc_core * m / m0 if j == last else svc_link * m
        entry, got, dep = queues[q].admit(t, m, svc, drop)
        if got < m:
            res[Q.RES_DROPPED] += m - got
            if j < last:
                res[Q.RES_DROPPED_LINK] += m - got
            if got == 0:
                return 0, -1.0, first_entry, core_entry, 0.0
            m = got
        if entry > t:
            res[Q.RES_STALL_S] += entry - t
            res[Q.RES_STALLED] += m
            if j > 0:
                queues[path[j - 1]].hold(entry - lat[j - 1])
        if j == 0:
            first_entry = entry
        if j == last:
            if res[Q.RES_FIRST_ARRIVAL] < 0.0 or entry < res[Q.RES_FIRST_ARRIVAL]:
                res[Q.RES_FIRST_ARRIVAL] = entry
            return m, dep, first_entry, entry, svc
        t = dep + lat[j]


@pytest.mark.parametrize("drop", [False, True])
def test_runs_through_routes_hold_upstream_servers_as_per_event(drop):
    """Runs over routes of one to three queues sharing links: a run stalled at a queue holds
    the server before it (its last event leaves when the run gets in) in both models."""
    rng = np.random.default_rng(11 + drop)
    depth = 6
    routes = [np.array([3, 0]), np.array([3, 4, 1]), np.array([4, 1]), np.array([2])]
    ring, qs = Q.new_state(5, depth)
    ref = [EventQueue(depth) for _ in range(5)]
    res, want = Q.new_res(), Q.new_res()
    t = 0.0
    for step in range(500):
        path = routes[int(rng.integers(len(routes)))]
        lat = np.append(np.full(len(path) - 1, 0.05), 0.0)
        m = int(rng.integers(1, depth + 1))
        t += float(rng.exponential(0.15))
        args = (t, m, float(rng.exponential(0.2 * m)), path, lat, 0.04)
        got = Q.pass_run(*args, depth, drop, ring, qs, res)
        assert got == _pass_run(ref, *args, drop, want), step
        np.testing.assert_array_equal(res, want)
        for q in range(5):
            assert qs[q, Q.QS_FREE] == ref[q].free and qs[q, Q.QS_COUNT] == len(ref[q].dep)
    if drop:
        assert res[Q.RES_DROPPED] > 0 and res[Q.RES_DROPPED_LINK] > 0
    else:
        assert res[Q.RES_STALLED] > 0 and sum(r.holds for r in ref) > 0


@pytest.mark.parametrize("drop", [False, True])
def test_batches_cut_into_runs_route_as_route_dense(drop):
    """Random batches through a two-link route into a small core FIFO, one after the other:
    ``route_runs`` of ``dense_runs`` leaves the same statistics, busy intervals, occupancy
    trace and queue state as ``route_dense``."""
    rng = np.random.default_rng(7 + drop)
    depth, run = 8, 2
    path, lat = np.array([1, 2, 0]), np.array([5e-9, 5e-9, 0.0])
    a_ring, a_qs = Q.new_state(3, depth)
    b_ring, b_qs = Q.new_state(3, depth)
    t0, lost, stalled = 0.0, 0.0, 0.0
    for _ in range(40):
        npos = int(rng.integers(1, 30))
        cnt = rng.integers(0, 6, npos).astype(np.float64)
        cnt[rng.random(npos) < 0.3] = 0.0
        cnt = cnt[cnt > 0] if (cnt > 0).any() else np.ones(1)
        svc = cnt * rng.uniform(1e-9, 3e-8, len(cnt))
        porder = rng.permutation(len(cnt)).astype(np.int64) if rng.random() < 0.5 else \
            np.zeros(0, np.int64)
        n_ev, dur = float(cnt.sum()), float(rng.uniform(0.0, 2e-7))
        ra, rb = Q.new_res(), Q.new_res()
        busy_a, busy_b = np.zeros((4, 2)), np.zeros((4, 2))
        tr_a, tr_b = np.zeros((int(n_ev), 2)), np.zeros((int(n_ev), 2))
        Q.route_dense(cnt, svc, porder, n_ev, t0, dur, run, path, lat, 1e-8, depth, drop,
                      a_ring, a_qs, 1e-9, np.zeros(len(cnt), np.int64), ra, busy_a, tr_a)
        rj, rm, rs = (np.zeros(int(n_ev)) for _ in range(3))
        k = Q.dense_runs(cnt, svc, porder, run, rj, rm, rs)
        Q.route_runs(rj[:k], rm[:k], rs[:k], n_ev, t0, dur, path, lat, 1e-8, depth, drop,
                     b_ring, b_qs, 1e-9, rb, busy_b, tr_b)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(busy_a, busy_b)
        np.testing.assert_array_equal(tr_a, tr_b)
        lost, stalled = lost + ra[Q.RES_DROPPED], stalled + ra[Q.RES_STALLED]
        t0 += float(rng.uniform(0.0, 3e-7))
    np.testing.assert_array_equal(a_qs, b_qs)
    np.testing.assert_array_equal(a_ring, b_ring)
    assert (lost > 0) if drop else (stalled > 0)       # the full-queue paths were taken


def test_dense_runs_cut_at_run_events_and_keep_emission_order():
    """Runs of up to ``run`` events across positions, a position split where a run fills;
    a run's service is the sum of its positions' shares."""
    cnt = np.array([3.0, 1.0, 4.0])
    svc = np.array([3.0, 2.0, 8.0])
    rj, rm, rs = np.zeros(8), np.zeros(8), np.zeros(8)
    k = Q.dense_runs(cnt, svc, np.zeros(0, np.int64), 3, rj, rm, rs)
    assert k == 3
    np.testing.assert_array_equal(rj[:k], [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(rm[:k], [3.0, 3.0, 2.0])
    np.testing.assert_array_equal(rs[:k], [3.0, 2.0 + 8.0 * 2 / 4, 8.0 * 2 / 4])
    k = Q.dense_runs(cnt, svc, np.array([2, 0, 1]), 3, rj, rm, rs)   # saliency order
    np.testing.assert_array_equal(rm[:k], [3.0, 3.0, 2.0])
    np.testing.assert_array_equal(rs[:k], [8.0 * 3 / 4, 8.0 * 1 / 4 + 3.0 * 2 / 3,
                                           3.0 * 1 / 3 + 2.0])
    assert Q.dense_runs(cnt, svc, np.zeros(0, np.int64), 3, rj[:1], rm[:1], rs[:1]) == 3
