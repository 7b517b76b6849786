"""Windowed asynchronous execution of a batch of inputs without SimPy: the numerics batched like
the sync engine, the timing as one Numba schedule per input; results equal to
``async_windowed.WindowedSim`` field for field (tests/chips/test_async_batched.py).

In windowed mode a node fires window t with its whole input, so without drops its values and
operation counts do not depend on when it fires. This path therefore runs every node's step
for the B inputs together in graph order (the executors and the event-driven accounting of
``AsyncEngine``), and records, per input, what the timing model needs: each node window's work
seconds per core, each batch copy's events cut into the runs the queue model takes (first
event, events, core seconds: ``queues.run_add`` over the nonzero positions in emission order,
as ``queues.route_dense`` cuts them), and the largest spike count of each sent part whose
counts can exceed 1 (SFA bursts; an IF / LIF part's burst never outlasts its work). The timing
model then replays the SimPy schedule per input (``kernels.schedule``): same event order, same
queue operations, same float operations, so latency, statistics, FIFO traces and the timeline
are identical.

Exact fallback. With ``overflow="drop"`` a dropped event changes what a core computes, so the
numerics depend on time: when any input of a batch had a drop, the batch is simulated again on
SimPy (``WindowedSim``) and its results come from there (the batched pass counted into a
scratch ``Tally``, which is then discarded). The run's statistics say how many inputs took
each path and why (``windowed_schedule``, ``simpy_reason``).
"""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G
from chips.engines.async_links import BUSY_ROWS
from chips.engines.base import SampleRun, Tally
from chips.engines.executors import ConvExec, LinearExec, NeuronExec
from chips.engines.kernels import queues as Q
from chips.engines.kernels import schedule as S
from chips.engines.kernels import windowed as KW

_NO_ORDER = np.zeros((0, 0), np.int64)
_NEURON, _SPIKE_PROJECTION = 1, 2        # WindowedPlan.steps roles


class WindowedPlan:
    """The static tables of the schedule of one engine (``kernels.schedule`` op lists, copy
    templates and routes) and, per sender, the groups of copies whose event maps are computed
    together (one source part to one consumer's destination cores)."""

    def __init__(self, eng):
        net = eng.net
        self.nodes = [v for v in eng.order if v in eng.execs]
        jof = {v: j for j, v in enumerate(self.nodes)}
        self.senders = [eng.inp] + self.nodes
        self.out_node = jof[eng.out]
        nc_start, nc_core = [0], []
        for v in self.nodes:
            nc_core += list(eng.core_part[v])
            nc_start.append(len(nc_core))
        self.nc_start = np.array(nc_start, np.int64)
        self.nc_core = np.array(nc_core, np.int64)
        self.core_slots = {v: slice(nc_start[j], nc_start[j + 1])
                           for j, v in enumerate(self.nodes)}
        self.expected = np.array(
            [sum(1 for u in eng.inputs_of[v] for i in range(len(eng.src_parts[u]))
                 if eng.internal[(u, v)] or (u, i, v) in eng.dest) for v in self.nodes], np.int64)
        ops, op_start = [], [0]
        dst, path0, path_len, lat_sum, direct, path_q, path_lat = [], [], [], [], [], [], []
        self.parts: list = []          # part slot -> (sender, c0, c1)
        self.bursts: list = []         # per sender: [(part slot, c0, c1)] sending bursts
        self.groups: list = []         # per sender: [(c0, c1, v, [template], M, fan_pos)]
        for s, u in enumerate(self.senders):
            slot = {-1: 0} if u == eng.inp else {c: i for i, c in enumerate(eng.core_part[u])}
            # a part's burst can end after its work only with spike counts above 1: IF / LIF
            # spikes are 0 or 1 (end t0 + (max - 1) ISI <= t0), so they need no maximum
            op = eng.graph.op(u)
            binary = isinstance(op, G.Neurons) and op.model in ("if", "lif")
            burst = (eng.sends[u] != "graded" and u != eng.inp and u not in eng.folded
                     and not binary)
            bursts, groups = [], []
            for i, (core, c0, c1) in enumerate(eng.src_parts[u]):
                ps = len(self.parts)
                self.parts.append((s, c0, c1))
                is_burst = burst and c1 > c0
                if is_burst:
                    bursts.append((ps, c0, c1))
                ops.append((S.OP_PART, slot[core], ps, int(is_burst)))
                for v in eng.consumers[u]:
                    port = eng.inputs_of[v].index(u)
                    if eng.internal[(u, v)]:
                        ops.append((S.OP_RECV, jof[v], 0, 0))
                        continue
                    dests = eng.dest.get((u, i, v))
                    if not dests:
                        continue
                    ops.append((S.OP_BATCH, jof[v], len(dests), 0))
                    tms, cols, fans = [], [], []
                    for d, need in dests:
                        path, lat = net.route(core, d)
                        tms.append(len(dst))
                        ops.append((S.OP_COPY, len(dst), jof[v], 0))
                        dst.append(d)
                        path0.append(len(path_q))
                        path_len.append(len(path))
                        lat_sum.append(float(lat.sum()))
                        direct.append(len(path) == 1)
                        path_q.extend(path.tolist())
                        path_lat.extend(lat.tolist())
                        fan_pos, fan_ch = eng.fans[(v, port, d)]
                        nf = need[c0:c1].astype(np.float64)
                        cols += [nf, nf * fan_ch[c0:c1]]
                        fans.append(fan_pos)
                    groups.append((c0, c1, v, tms, np.stack(cols, axis=1), fans))
            op_start.append(len(ops))
            self.bursts.append(bursts)
            self.groups.append(groups)
        o = np.array(ops, np.int64).reshape(-1, 4)
        self.op_start = np.array(op_start, np.int64)
        self.op_kind, self.op_a, self.op_b, self.op_c = (np.ascontiguousarray(o[:, i])
                                                         for i in range(4))
        self.tp_dst = np.array(dst, np.int64)
        self.tp_path0 = np.array(path0, np.int64)
        self.tp_path_len = np.array(path_len, np.int64)
        self.tp_lat_sum = np.array(lat_sum, np.float64)
        self.tp_direct = np.array(direct, np.bool_)
        self.path_q = np.array(path_q, np.int64)
        self.path_lat = np.array(path_lat, np.float64)
        self.n_tmpl = len(dst)
        self.n_queues = net.n_queues          # every route is resolved: the queues are final
        self.n_core_slots = len(nc_core)
        self.tables = [self._copy_tables(eng, s, u) for s, u in enumerate(self.senders)]
        self.service_s, self.run = float(eng.service_s), int(net.run_events)
        # per node: (name, executor, inputs, role for the event-driven neuron updates, core
        # slots, inputs whose last consumer it is)
        pos = {n: i for i, n in enumerate(self.senders)}
        last = {u: max([pos[v] for v in eng.consumers[u]], default=pos[u]) for u in pos}
        self.steps = []
        for v in self.nodes:
            e = eng.execs[v]
            role = (_NEURON if isinstance(e, NeuronExec) else
                    _SPIKE_PROJECTION if isinstance(e, (ConvExec, LinearExec)) and
                    (not e.graded or e.events_in) and v not in eng.folded else 0)
            self.steps.append((v, e, eng.inputs_of[v], role, self.core_slots[v],
                               [u for u in dict.fromkeys(eng.inputs_of[v])
                                if last[u] == pos[v]]))
        self.e_buf = np.empty((3, 1 << 14))   # WindowedBatch's run buffer, grown on demand

    def _copy_tables(self, eng, s: int, u: str) -> dict:
        """Sender ``s``'s groups as flat arrays for ``kernels.windowed.copy_events``."""
        shape = eng.graph.op(u).shape
        C = shape[0]
        P = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        H, W = shape[1:] if len(shape) == 3 else (1, 1)
        groups = self.groups[s]
        m = [len(g[3]) for g in groups]
        t0 = groups[0][3][0] if groups else 0
        fan = np.zeros((sum(m), P))
        mflat, moff, uniform, ssc_k, ssc_p = [], [], [], [], []
        for c0, c1, v, tms, M, fans in groups:
            moff.append(sum(a.size for a in mflat))
            mflat.append(np.ascontiguousarray(M.T).reshape(-1))        # [2 m, channels]
            # every destination needs every channel, at the same ops per event
            uniform.append(bool((M[:, 0::2] == 1.0).all() and (M[:, 1::2] == M[:1, 1::2]).all()))
            op = eng.graph.op(v)
            ssc = isinstance(op, G.Conv) and bool(op.ssc)
            ssc_k.append(op.kernel if ssc else 0)
            ssc_p.append(op.padding if ssc else 0)
            for t, f in zip(tms, fans):
                fan[t - t0] = np.broadcast_to(f, (P,))
        i64 = np.int64
        return {"P": P, "C": C, "H": H, "W": W, "t0": t0, "n": sum(m),
                "graded": eng.sends[u] == "graded",
                "c0": np.array([g[0] for g in groups], i64),
                "c1": np.array([g[1] for g in groups], i64), "m": np.array(m, i64),
                "g_t0": np.array([g[3][0] - t0 for g in groups], i64),
                "moff": np.array(moff, i64), "uniform": np.array(uniform, np.uint8),
                "ssc_k": np.array(ssc_k, i64), "ssc_p": np.array(ssc_p, i64),
                "MT": np.concatenate(mflat) if mflat else np.zeros(0), "fan": fan}


class WindowedBatch:
    """One batch of inputs in windowed mode (module doc): ``run()`` returns their
    ``SampleRun``s, or None when the batch must be simulated on SimPy (``reason`` says why)."""

    def __init__(self, eng, x: np.ndarray, b0: int, tally: Tally, row0: int | None = None):
        if getattr(eng, "_wplan", None) is None:
            eng._wplan = WindowedPlan(eng)
        self.eng, self.plan, self.x, self.b0, self.tally = eng, eng._wplan, x, b0, tally
        self.row0 = b0 if row0 is None else row0        # the batch's first row in ``tally``
        self.T, self.B = x.shape[:2]
        self.reason = None
        p, T, B = self.plan, self.T, self.B
        self.fire_s = np.zeros((B, T, max(1, p.n_core_slots)))
        self.pmax = np.full((B, T, max(1, len(p.parts))), -1.0)
        self.n_ev = np.zeros((B, T * p.n_tmpl), np.int64)
        self.e_len = np.zeros((T * p.n_tmpl, B), np.int64)
        self.e_buf = self.plan.e_buf       # each copy's runs: first event, events, seconds
        self.e_used = 0
        self.e_cid: list = []            # (first copy id, copies) in the order stored

    # -------------------------------------------------------------------------- numerics
    def _sends(self, s: int, k: int, val: np.ndarray) -> None:
        """What sender ``s`` sends in window ``k`` (``val`` [B, ...] channels-last): per copy
        and input its events in the runs the queue model takes (the nonzero positions of
        ``WindowedSim._load``, ``kernels.windowed.copy_events``), and the largest spike
        count of each bursting part."""
        p = self.plan
        tb = p.tables[s]
        if not tb["n"] and not p.bursts[s]:
            return
        B = val.shape[0]
        V = np.ascontiguousarray(val, np.float64).reshape(B, tb["P"], tb["C"])
        for ps, c0, c1 in p.bursts[s] if tb["P"] else ():
            self.pmax[:, k, ps] = V[:, :, c0:c1].max(axis=(1, 2))
        if not tb["n"]:
            return
        porder = _NO_ORDER
        if s == 0 and self.eng.input_order == "saliency":      # WindowedSim._order, per input
            mag = np.abs(V).max(axis=2)
            porder = np.argsort(-mag, axis=1, kind="stable").astype(np.int64)
        a = k * p.n_tmpl + tb["t0"]                  # this window's copies: a .. a + n - 1
        n_ev, e_len = self.n_ev[:, a:a + tb["n"]], self.e_len[a:a + tb["n"]]
        u = self.e_used
        while True:              # runs written while they fit; else grow (x2) and again
            buf = self.e_buf
            used = KW.copy_events(V, tb["graded"], p.service_s, p.run, tb["H"], tb["W"],
                                  porder, tb["c0"], tb["c1"], tb["m"], tb["g_t0"], tb["moff"],
                                  tb["uniform"], tb["ssc_k"], tb["ssc_p"], tb["MT"], tb["fan"],
                                  n_ev, e_len, buf[0, u:], buf[1, u:], buf[2, u:])
            if u + used <= buf.shape[1]:
                break
            grown = np.empty((3, max(2 * buf.shape[1], u + used)))
            grown[:, :u] = buf[:, :u]
            self.e_buf = self.plan.e_buf = grown       # kept for the next batch (no refaults)
        self.e_used = u + used
        self.e_cid.append((a, tb["n"]))

    def numerics(self) -> None:
        """Every node's step for the B inputs, window by window in graph order, with the
        event-driven accounting of ``WindowedSim.fire``; fills the timing inputs."""
        eng, p, tally = self.eng, self.plan, self.tally
        x, b0, B = self.x, self.row0, self.B
        for k in range(self.T):
            vals = {eng.inp: x[k]}
            self._sends(0, k, x[k])
            spike_in: dict = {}
            for j, (v, e, inputs, role, slots, frees) in enumerate(p.steps):
                ins = [vals[u] for u in inputs]
                c = eng.new_counts_batch(v, B)
                out = e.step_batch(ins, c)
                prev = None
                if role == _NEURON:               # the spike input of its projection
                    prev = spike_in.pop(inputs[0], None)
                elif role == _SPIKE_PROJECTION:
                    spike_in[v] = ins[0]
                eng.event_counts_batch(v, ins, c, prev)
                eng.arrival_counts_batch(v, ins, c)
                eng.route_counts_batch(v, out, c)
                tally.account_batch(v, c)
                tally.output_batch(v, k, b0, out)
                self.fire_s[:, k, slots] = eng.fire_seconds_batch(v, c)
                self._sends(j + 1, k, out)
                vals[v] = out
                for u in frees:
                    del vals[u]

    # -------------------------------------------------------------------------- timing
    def schedule(self) -> tuple[np.ndarray, dict | None]:
        """Run the schedule kernel; returns per-input statistics [B, ST_SIZE] and the
        recorded input's log (or None)."""
        eng, p, B, T = self.eng, self.plan, self.B, self.T
        n_cid = T * p.n_tmpl
        e_start = np.zeros((n_cid, B + 1), np.int64)
        order = (np.concatenate([np.arange(a, a + n) for a, n in self.e_cid]) if self.e_cid
                 else np.zeros(0, np.int64))
        lens = self.e_len[order]                                        # [copies, B]
        base = np.concatenate([[0], np.cumsum(lens.sum(axis=1))[:-1]]) if len(order) else []
        e_start[order] = np.asarray(base, np.int64)[:, None] + np.concatenate(
            [np.zeros((len(order), 1), np.int64), np.cumsum(lens, axis=1)], axis=1)
        rj, rm, rs = (self.e_buf[i, :self.e_used] for i in range(3))
        record = self.b0 == 0
        net = eng.net
        n0 = self.n_ev[0]
        sent0 = n0[n0 > 0]
        n_log = int(p.nc_start[-1]) * T + len(sent0) + 1
        log_i = np.zeros((n_log if record else 1, S.LOG_INT), np.int64)
        log_f = np.zeros((n_log if record else 1, Q.RES_SIZE))
        busy_buf = np.zeros((int(np.minimum(sent0, BUSY_ROWS).sum()) if record else 0, 2))
        trace_buf = np.zeros((int(sent0.sum()) if record and net.trace_events else 0, 2))
        stats = np.zeros((B, S.ST_SIZE))
        busy_s0 = np.zeros(eng.n_cores)
        log_n = np.zeros(1, np.int64)
        S.windowed_schedule(
            T, float(eng.input_window()), float(eng.isi_s), float(net.event_s), float(net.link_s),
            net.depth, net.drop, float(net.gap_s), p.n_queues, eng.n_cores,
            p.out_node, record, net.trace_events, BUSY_ROWS,
            p.op_start, p.op_kind, p.op_a, p.op_b, p.op_c, p.nc_start, p.nc_core, p.expected,
            p.tp_dst, p.tp_path0, p.tp_path_len, p.tp_lat_sum, p.tp_direct, p.path_q,
            p.path_lat, self.fire_s, self.pmax, self.n_ev, e_start, rj, rm, rs,
            stats, busy_s0, log_i, log_f, busy_buf, trace_buf, log_n)
        log = None
        if record:
            log = {"i": log_i[:log_n[0]], "f": log_f[:log_n[0]], "busy": busy_buf,
                   "trace": trace_buf, "busy_s": busy_s0}
        return stats, log

    def _replay(self, st: np.ndarray, log: dict | None) -> None:
        """Set the network's counters (and, for the recorded input, its timeline items and FIFO
        points, in call order as ``Network._after`` and ``work`` record them) to what SimPy
        leaves after this input, so ``AsyncEngine.sample_stats`` and ``timeline`` read them."""
        net, p = self.eng.net, self.plan
        net.sent, net.queued = int(st[S.ST_SENT]), int(st[S.ST_QUEUED])
        net.served, net.dropped = int(st[S.ST_SERVED]), int(st[S.ST_DROPPED])
        net.dropped_link, net.stalls = int(st[S.ST_DROPPED_LINK]), int(st[S.ST_STALLS])
        net.stall_s = float(st[S.ST_STALL_S])
        net.max_occ = np.full(min(1, net.n_cores), int(st[S.ST_MAX_FIFO]), np.int64)
        net.record = log is not None
        net.items, net.fifo = [], {}
        if log is None:
            return
        net.busy_s = log["busy_s"].copy()
        for (kind, core, j, at_b, at_t), f in zip(log["i"].tolist(), log["f"]):
            node = p.nodes[j]
            if kind == S.LOG_WORK:
                net.items.append([core, float(f[0]), float(f[1]), node, "fire"])
                continue
            n, d = int(f[Q.RES_EVENTS]), int(f[Q.RES_DROPPED])
            if n == d:
                continue
            nb = int(f[Q.RES_BUSY])
            net.items.extend([core, s0, e0, node, "synops"]
                             for s0, e0 in log["busy"][at_b:at_b + nb].tolist())
            pts = net.fifo.setdefault(core, [])
            if net.trace_events:
                pts.extend((float(t), int(o)) for t, o in
                           log["trace"][at_t:at_t + int(f[Q.RES_TRACE])])
            else:
                pts.extend([(float(f[Q.RES_FIRST_ARRIVAL]), 1),
                            (float(f[Q.RES_PEAK_T]), int(f[Q.RES_MAX_OCC])),
                            (float(f[Q.RES_LAST_LEAVE]), 0)])

    # -------------------------------------------------------------------------- driver
    def run(self) -> list[SampleRun] | None:
        eng = self.eng
        self.numerics()
        stats, log = self.schedule()
        if eng.net.drop and stats[:, S.ST_DROPPED].any():
            self.reason = "overflow='drop': dropped events change what the cores compute"
            return None
        short = np.flatnonzero(stats[:, S.ST_FIRED] < len(self.plan.nodes) * self.T)
        if len(short):                                   # as WindowedSim.run reports it
            b = int(short[0])
            j, k = divmod(int(stats[b, S.ST_STUCK]), self.T)
            v = self.plan.nodes[j]
            raise RuntimeError(f"async simulation stalled: node {v!r} window {k} received "
                               f"{int(stats[b, S.ST_STUCK_GOT])} of {self.plan.expected[j]} "
                               "input batches (deadlock)")
        acc = eng.execs[eng.out].acc
        out = []
        for b in range(self.B):
            st = stats[b]
            rec = b == 0 and log is not None
            self._replay(st, log if rec else None)
            eng.net.check(f"sample {self.b0 + b}")
            stats_b = dict(eng.sample_stats(), batches=int(st[S.ST_BATCHES]))
            out.append(SampleRun(logits=acc[b] / self.T, latency_s=float(st[S.ST_OUT_TIME]),
                                 timeline=eng.timeline() if rec else None, stats=stats_b))
        return out


__all__ = ["WindowedBatch", "WindowedPlan"]
