"""Windowed (exact) execution of the asynchronous engine: end-of-window tokens.

A node fires window t once every batch of window t has been served on all its cores (each
source part sends every destination core one batch per window, empty batches being the
tokens), so it sees its whole input and the results equal the sync engine bit for bit. SimPy
runs one process per (node, window); a batch copy is one computed service schedule
(``Network.send_dense``) and one SimPy event, when its last event has been served.

With ``overflow="drop"`` the cores of one node can receive different events; a node then runs
once per distinct input (stateless operations) or on the input assembled part by part
(neurons and the readout, which are channel-local), each core keeping what it received.
"""
from __future__ import annotations

import numpy as np
import simpy

from chips.engines.base import SampleRun, Tally
from chips.engines.executors import ConvExec, LinearExec, NeuronExec, ReadoutExec
from chips.engines.kernels import queues as Q

_EMPTY = np.zeros(0, np.int64)


class WindowedSim:
    """One input sample through the chip in windowed mode (module doc)."""

    def __init__(self, eng, x: np.ndarray, b: int, tally: Tally):
        self.eng, self.x, self.b, self.tally = eng, x, b, tally
        self.env = env = simpy.Environment()
        self.net = eng.net
        self.net.reset(record=b == 0)
        self.T = x.shape[0]
        self.window = eng.input_window()
        keys = [(v, k) for v in eng.execs for k in range(self.T)]
        self.inbox = {(v, k): [None] * len(eng.inputs_of[v]) for v, k in keys}
        self.lost: dict = {}                  # (v, k) -> {port: {core: events dropped}}
        self.expected = self._expected()
        self.got = dict.fromkeys(keys, 0)
        self.ready = {key: env.event() for key in keys}
        self.done = {key: env.event() for key in keys}
        self.left: dict = {}                  # batch id -> copies not yet served
        self.spike_in: dict = {}              # (projection, k) -> its spike input
        self.batches = 0
        self.out_time = 0.0

    def _expected(self) -> dict:
        """Batches each (node, window) receives before it may fire: one per source part with
        a destination for it (or an internal edge)."""
        eng = self.eng
        out = {}
        for v in eng.execs:
            n = sum(1 for u in eng.inputs_of[v] for i in range(len(eng.src_parts[u]))
                    if eng.internal[(u, v)] or (u, i, v) in eng.dest)
            for k in range(self.T):
                out[(v, k)] = n
        return out

    # -------------------------------------------------------------------------- traffic
    def receive(self, v: str, k: int, port: int, val: np.ndarray, c0: int, c1: int) -> None:
        """Channels [c0, c1) of input ``port`` of (v, k) are complete on every core."""
        box = self.inbox[(v, k)]
        if c0 == 0 and c1 == val.shape[-1]:              # one part holds every channel
            box[port] = val
        else:
            if box[port] is None:
                box[port] = np.zeros_like(val)
            box[port][..., c0:c1] = val[..., c0:c1]
        self.got[(v, k)] += 1
        if self.got[(v, k)] == self.expected[(v, k)]:
            self.ready[(v, k)].succeed()

    def _copy_done(self, bid: int, queued: int, args: tuple) -> None:
        self.net.served += queued
        self.left[bid] -= 1
        if self.left[bid] == 0:
            self.receive(*args)

    def _at(self, t: float, fn, *a) -> None:
        ev = self.env.timeout(max(0.0, t - self.env.now))
        ev.callbacks.append(lambda _e: fn(*a))

    def send(self, u: str, k: int, val: np.ndarray, times: dict) -> None:
        """Multicast every part of u's window-k output: part i leaves over ``times[core]``
        (start, end) of its core's work."""
        eng = self.eng
        graded = eng.sends[u] == "graded"
        C = val.shape[-1]
        porder = self._order(val) if u == eng.inp else _EMPTY
        burst = not graded and u != eng.inp and u not in eng.folded  # pooled: no burst
        for i, (core, c0, c1) in enumerate(eng.src_parts[u]):
            per_c = None
            t0, t1 = times[core]
            for v in eng.consumers[u]:
                port = eng.inputs_of[v].index(u)
                if eng.internal[(u, v)]:
                    self.receive(v, k, port, val, c0, c1)
                    continue
                dests = eng.dest.get((u, i, v))
                if not dests:
                    continue
                if per_c is None:
                    part = val.reshape(-1, C)[:, c0:c1]
                    per_c = (np.count_nonzero(part, axis=0) if graded else
                             part.sum(axis=0).astype(np.int64))
                    if burst and part.size:           # a burst of k spans (k - 1) ISIs
                        t1 = max(t1, t0 + (float(part.max()) - 1.0) * eng.isi_s)
                bid = len(self.left)
                self.left[bid] = len(dests)
                args = (v, k, port, val, c0, c1)
                for dst, need in dests:
                    self.batches += 1
                    n = int(per_c[need[c0:c1] != 0].sum())
                    if n == 0:                                 # an empty batch: a token
                        path, lat = self.net.route(core, dst)
                        self._at(t1 + float(lat.sum()) + (self.net.event_s if len(path) == 1
                                                          else 0.0), self._copy_done, bid, 0, args)
                        continue
                    cnt, svc = self._load(v, port, dst, val, c0, c1, graded, need)
                    last, queued, dropped = self.net.send_dense(cnt, svc, porder, t0, t1 - t0,
                                                                core, dst, v, n)
                    if dropped is not None:
                        flat = np.ascontiguousarray(val, np.float64).reshape(-1)
                        keep = flat.copy()
                        Q.take_back(keep, C, c0, c1, need, graded, dropped)
                        lost = self.lost.setdefault((v, k), {}).setdefault(port, {})
                        d = (flat - keep).reshape(val.shape)
                        lost[dst] = d if dst not in lost else lost[dst] + d
                    self._at(last, self._copy_done, bid, queued, args)

    def _load(self, v: str, port: int, dst: int, val: np.ndarray, c0: int, c1: int,
              graded: bool, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per position of ``val``'s channels [c0, c1): the events ``dst`` receives (spike
        counts, or nonzero graded values, of the channels it needs) and the seconds of core
        service they take there (at least one synaptic op per event)."""
        eng = self.eng
        fan_pos, fan_ch = eng.fans[(v, port, dst)]
        part = val.reshape(-1, val.shape[-1])[:, c0:c1]
        if graded:
            part = (part != 0).astype(np.float64)
        nf = need[c0:c1].astype(np.float64)
        agg = part @ np.stack([nf, nf * fan_ch[c0:c1]], axis=1)
        ssc = eng.ssc_fan(v, val, c0, c1)
        cnt = np.ascontiguousarray(agg[:, 0])
        ops = agg[:, 1] * (fan_pos if ssc is None else ssc)
        return cnt, np.maximum(cnt, ops) * eng.service_s

    def _order(self, xt: np.ndarray) -> np.ndarray:
        """Emission order of the input's positions: raster (empty), or saliency (largest
        absolute value first, ties in address order)."""
        if self.eng.input_order == "raster":
            return _EMPTY
        mag = np.abs(xt).reshape(-1, xt.shape[-1]).max(axis=1)
        return np.argsort(-mag, kind="stable").astype(np.int64)

    # -------------------------------------------------------------------------- nodes
    def _step(self, v: str, k: int, ins: list, c: np.ndarray) -> np.ndarray:
        eng = self.eng
        e = eng.execs[v]
        lost = self.lost.get((v, k))
        out = e.step(ins, c) if not lost else self._step_cores(v, ins, c, lost)
        prev = None
        if isinstance(e, NeuronExec):
            prev = self.spike_in.pop((eng.inputs_of[v][0], k), None)
        elif isinstance(e, (ConvExec, LinearExec)) and (not e.graded or e.events_in) and \
                v not in eng.folded:
            self.spike_in[(v, k)] = ins[0]
        eng.event_counts(v, ins, c, prev)
        return out

    def _step_cores(self, v: str, ins: list, c: np.ndarray, lost: dict) -> np.ndarray:
        """One step when some cores of ``v`` lost events (module doc)."""
        eng = self.eng
        e, parts = eng.execs[v], eng.parts[v]
        if isinstance(e, (NeuronExec, ReadoutExec)):            # channel-local, stateful
            own = [a.copy() for a in ins]
            for port, per_core in lost.items():
                for core, d in per_core.items():
                    for j in eng.core_part[v][core]:
                        own[port][..., parts[j][1]:parts[j][2]] -= d[..., parts[j][1]:parts[j][2]]
            return e.step(own, c)
        cores = {core for per_core in lost.values() for core in per_core}
        groups = [([cc for cc in eng.core_part[v] if cc not in cores], ins)]
        groups += [([core], [a - lost.get(p, {}).get(core, 0) for p, a in enumerate(ins)])
                   for core in sorted(cores)]
        out = None
        for members, own in groups:
            if not members:
                continue
            cg = np.zeros_like(c)
            o = e.step(own, cg)
            rows = [j for core in members for j in eng.core_part[v][core]]
            c[rows] += cg[rows]
            if out is None:
                out = o.copy()
            for j in rows:
                out[..., parts[j][1]:parts[j][2]] = o[..., parts[j][1]:parts[j][2]]
        return out

    def fire(self, v: str, k: int):
        """Node v runs window k once all its input batches for k were served."""
        eng, env, net = self.eng, self.env, self.net
        if k > 0:
            yield self.done[(v, k - 1)]
        yield self.ready[(v, k)]
        ins = self.inbox.pop((v, k))
        c = eng.new_counts(v)
        out = self._step(v, k, ins, c)
        eng.arrival_counts(v, ins, c)
        eng.route_counts(v, out, c)
        self.tally.account(v, c)
        self.tally.output(v, k, self.b, out)
        times = {core: net.work(core, env.now, s, v) for core, s in
                 eng.fire_seconds(v, c).items()}
        self.send(v, k, out, times)
        if v == eng.out:
            self.out_time = max([self.out_time] + [t1 for _, t1 in times.values()])
        self.done[(v, k)].succeed()

    def source(self):
        """The input: window t's events leave over [t, t + 1) x input_window_s."""
        eng, env = self.eng, self.env
        for t in range(self.T):
            at = t * self.window
            yield env.timeout(max(0.0, at - env.now))
            self.send(eng.inp, t, self.x[t], {-1: (at, at + self.window)})

    # -------------------------------------------------------------------------- driver
    def run(self) -> None:
        eng = self.eng
        self.env.process(self.source())
        for v in eng.order:
            if v in eng.execs:
                for k in range(self.T):
                    self.env.process(self.fire(v, k))
        self.env.run()
        unfinished = [(v, k) for k in range(self.T) for v in eng.order
                      if v in eng.execs and not self.done[(v, k)].triggered]
        if unfinished:
            v, k = unfinished[0]
            raise RuntimeError(f"async simulation stalled: node {v!r} window {k} received "
                               f"{self.got[(v, k)]} of {self.expected[(v, k)]} input batches "
                               "(deadlock)")
        self.net.check(f"sample {self.b}")

    def outcome(self) -> SampleRun:
        eng = self.eng
        acc = eng.execs[eng.out].acc[0]            # [1, ...] channels-last; base flattens it
        stats = dict(eng.sample_stats(), batches=self.batches)
        return SampleRun(logits=acc / self.T, latency_s=self.out_time,
                         timeline=eng.timeline() if self.b == 0 else None, stats=stats)


__all__ = ["WindowedSim"]
