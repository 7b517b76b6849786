"""Asynchronous engine: a Speck-style event-driven chip simulated with SimPy.

There is no global clock. Time is continuous (seconds). Work moves in *batches*: the output of
one part of a node (an output-channel range on one core) for one window is one multicast batch,
sent to every core that holds a dependent part of each consumer. SimPy schedules batches, never
single synaptic operations (seed-facts §7); Numba kernels do the per-synapse work.

Cores. Each core serves its queue in arrival order; a batch costs ``synop_service_ns`` per
synaptic operation it triggers on that core. Each core has an input FIFO of ``fifo_depth``
events; a batch's events occupy it from admission until served. When a batch does not fit:
``overflow="stall"`` holds it at the router until space frees (stall time is recorded);
``overflow="drop"`` (a congestion balancer, as on Speck2e) drops the batch's excess events at
the sending router before multicast: the last events in address order are lost for every
destination and counted. Invariant: events in = served + dropped + in flight.

Latency of a batch = ``event_latency_ns`` (one layer, Speck) + hops x ``hop_latency_ns``; an SFA
burst of k spikes spans (k - 1) x ``burst_isi_ns``. Batches between nodes of one layer (synapses
-> soma on one core) are internal: no router, no FIFO.

Input. Window t of the input covers [t, t + 1) x ``input_window_s``; its events (or the image's
graded values) arrive in ``input_batches`` equal slices spread over the window (event frames lose
sub-bin timestamps; the slices stand for them). Static images default to a zero-length window:
the next frame follows as soon as the chip accepts it.

Modes.
  windowed  End-of-window tokens: a node fires window t once every batch of window t has been
            served on all its cores (the tokens are the batches themselves, empty ones included),
            so it sees its whole input: results equal the sync engine bit for bit.
  free      Greedy: every served batch is integrated at once and neurons fire on partial input.
            LIF leak and bias are applied at a window's first batch; spike products keep running
            operand sums and emit increments (q @ (K^T V) with the K^T V accumulated so far, and
            so on), so their window totals are exact but downstream neurons see them early; max
            pooling emits the change of the pooled running input; token means and the readout
            accumulate to the end. Deviation from exact execution is reported by ``compare``.

Accounting. As the sync engine, except neuron state is touched only by events: with
``membrane_rmw_per_synop`` each synaptic op reads and writes its target membrane; a neuron's
update (fire check, lazy leak) counts once per window in which it received input. Static
(resting) energy follows from the elapsed time.
"""
from __future__ import annotations

import numpy as np
import simpy
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.semantics import fire_reset, lif_charge
from chips.engines.base import Engine, SampleRun, Tally
from chips.engines.executors import CAT, ConvExec, LinearExec, NeuronExec, part_sums

OVERFLOW = ("stall", "drop")


class _Core:
    """A core: a SimPy resource serving batches, and its FIFO bookkeeping (events)."""

    def __init__(self, env: simpy.Environment, cid: int, depth: int, trace: bool):
        self.env, self.id, self.depth = env, cid, depth
        self.res = simpy.Resource(env, capacity=1)
        self.occ = 0
        self.space = env.event()
        self.arrived = self.served = self.dropped = 0
        self.stall_s = 0.0
        self.stalls = 0
        self.max_occ = 0
        self.busy_s = 0.0
        self.trace = [] if trace else None

    def log(self):
        if self.trace is not None:
            self.trace.append((self.env.now, self.occ))

    def admit(self, n: int):
        self.occ += n
        self.arrived += n
        self.max_occ = max(self.max_occ, self.occ)
        self.log()

    def release(self, n: int):
        self.occ -= n
        self.served += n
        self.log()
        ev, self.space = self.space, self.env.event()
        ev.succeed()


class AsyncEngine(Engine):
    """Event-driven execution on SimPy (module doc)."""

    def __init__(self, graph, chip, mapping, *, async_mode: str = "windowed",
                 fifo_depth: int | None = None, synop_service_ns: float | None = None,
                 overflow: str = "stall", input_window_s: float | None = None,
                 input_batches: int = 4, trace_cores: bool = True, **kw):
        super().__init__(graph, chip, mapping, **kw)
        t = chip.timing
        if async_mode not in ("windowed", "free"):
            raise ValueError(f"async_mode must be 'windowed' or 'free', got {async_mode!r}")
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
        depth = t.fifo_depth if fifo_depth is None else fifo_depth
        if int(depth) != depth or depth < 1:
            raise ValueError(f"fifo_depth must be an integer >= 1 event, got {depth}")
        service = t.synop_service_ns if synop_service_ns is None else synop_service_ns
        for name, v in (("synop_service_ns", service), ("event_latency_ns", t.event_latency_ns),
                        ("burst_isi_ns", t.burst_isi_ns), ("hop_latency_ns", chip.mesh.hop_latency_ns),
                        ("input_window_s", input_window_s if input_window_s is not None else 0.0)):
            if v is None or not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite latency >= 0, got {v}")
        if int(input_batches) != input_batches or input_batches < 1:
            raise ValueError(f"input_batches must be an integer >= 1, got {input_batches}")
        self.async_mode, self.mode = async_mode, f"async-{async_mode}"
        self.depth, self.overflow = int(depth), overflow
        self.service_s = service * 1e-9
        self.event_s = t.event_latency_ns * 1e-9
        self.isi_s = t.burst_isi_ns * 1e-9
        self.hop_s = chip.mesh.hop_latency_ns * 1e-9
        self.input_window_s = input_window_s
        self.input_batches = int(input_batches)
        self.trace_cores = trace_cores
        self.rmw = bool(chip.core.membrane_rmw_per_synop)
        m = mapping
        self.internal = {(u, v): m.layer_of.get(u) is not None and m.layer_of.get(u) == m.layer_of.get(v)
                         for v in self.order for u in self.inputs_of[v]}
        self.consumers = {n: [] for n in self.order}
        for v in self.order:
            for u in self.inputs_of[v]:
                self.consumers[u].append(v)
        self.dest = {}
        for u in self.order:
            parts_u = [(None, 0, graph.op(u).shape[0])] if u == self.inp else self.parts[u]
            for v in self.consumers[u]:
                for i, (_, c0, c1) in enumerate(parts_u):
                    self.dest[(u, i, v)] = m.dest_cores(u, v, c0, c1)
        for n in self.order:
            if isinstance(graph.op(n), G.Neurons) and graph.op(n).model == "mt" and \
                    async_mode == "free":
                raise ValueError(f"free-running mode does not support the multi-threshold "
                                 f"neurons of {n!r}; use async_mode='windowed'")
        self.cl_shape = {n: (graph.op(n).shape[1:] + graph.op(n).shape[:1]
                             if len(graph.op(n).shape) == 3 else graph.op(n).shape)
                         for n in self.order}             # channels-last shape of each output
        self.core_part = {n: {c: [i for i, p in enumerate(self.parts[n]) if p[0] == c]
                              for c in set(self.part_cores[n].tolist())} for n in self.parts}

    # -------------------------------------------------------------------------- helpers
    def _arrival_ops(self, v: str, port: int, x: np.ndarray, core: int) -> int:
        """Synaptic ops a batch ``x`` (one input of ``v``) triggers on ``core``."""
        e = self.execs[v]
        idx = self.core_part[v][core]
        if isinstance(e, ConvExec) and not e.graded:
            return int(e.counter.parts(x, False)[idx].sum())
        if isinstance(e, ConvExec):
            return 0
        if isinstance(e, LinearExec) and not e.graded:
            return int(x.astype(np.int64).sum()) * int(e.widths[idx].sum())
        return 0

    @staticmethod
    def _drop_tail(x: np.ndarray, n_drop: int) -> np.ndarray:
        """Remove the last ``n_drop`` events of a count tensor in flat (address) order."""
        flat = x.reshape(-1).astype(np.int64).copy()
        csum = np.cumsum(flat[::-1])
        keep_rev = np.maximum(flat[::-1] - np.clip(n_drop - (csum - flat[::-1]), 0, None), 0)
        return keep_rev[::-1].reshape(x.shape).astype(x.dtype)

    def _touched(self, v: str, ins: list[np.ndarray]) -> np.ndarray:
        """Neurons of population ``v`` that received input this window, per part."""
        op = self.graph.op(v)
        (u,) = self.inputs_of[v]
        uop = self.graph.op(u)
        x_src = None
        if isinstance(uop, (G.Conv, G.Linear)) and self.graph.out_kind(self.inputs_of[u][0]) == "spike":
            x_src = self._last_inputs[u][0]
        if isinstance(uop, G.Linear) and x_src is not None:
            hit = np.full(op.shape, bool(np.any(x_src)))
        elif isinstance(uop, G.Conv) and x_src is not None:
            k, s, p, g = uop.kernel, uop.stride, uop.padding, uop.groups
            cg, og = uop.in_shape[0] // g, op.channels // g
            act = (x_src != 0).reshape(x_src.shape[:2] + (g, cg)).any(axis=3).astype(np.int64)
            pad = np.pad(act, ((p, p), (p, p), (0, 0)))
            win = sliding_window_view(pad, (k, k), axis=(0, 1))[::s, ::s].sum(axis=(-1, -2)) > 0
            hit = np.repeat(win, og, axis=2)                       # [Ho, Wo, C]
        else:
            hit = ins[0] != 0
        per_c = hit.reshape(-1, op.channels).sum(axis=0)
        D = op.D if op.model == "sfa" else 1
        return part_sums(per_c, self.execs[v].starts) * D

    def _async_counts(self, v: str, ins, c: np.ndarray) -> None:
        """Replace the sync engine's clocked neuron accounting by event-driven accounting."""
        e = self.execs[v]
        if not isinstance(e, NeuronExec):
            if self.rmw and isinstance(e, (ConvExec, LinearExec)):
                syn = c[:, CAT["ac"]] + c[:, CAT["mac"]]
                c[:, CAT["membrane_reads"]] += syn
                c[:, CAT["membrane_writes"]] += syn
            return
        touched = self._touched(v, ins)
        c[:, CAT["neuron_updates"]] = touched
        if self.rmw:                   # the synapses already read/wrote; the update writes once
            c[:, CAT["membrane_reads"]] = 0
            c[:, CAT["membrane_writes"]] = touched
        else:
            c[:, CAT["membrane_reads"]] = touched
            c[:, CAT["membrane_writes"]] = touched

    # -------------------------------------------------------------------------- run
    def input_window(self) -> float:
        """Seconds per input window: as given, else 1 ms for event input, 0 for static."""
        if self.input_window_s is not None:
            return self.input_window_s
        return 1e-3 if self.graph.op(self.inp).kind == "spike" else 0.0

    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        sim = _SampleSim(self, x, b, tally)
        sim.run()
        return sim.outcome()

    def merge_stats(self, per_sample: list[dict]) -> dict:
        def total(k):
            return sum(s[k] for s in per_sample)
        arrived, drops = total("arrived"), total("drops")
        return {"fifo_depth": self.depth, "overflow": self.overflow,
                "async_mode": self.async_mode, "stalls": total("stalls"),
                "stall_s": total("stall_s"), "drops": drops, "events_in": arrived + drops,
                "events_served": total("served"), "events_dropped": drops,
                "events_in_flight": arrived - total("served"),
                "max_fifo_occupancy": max((s["max_fifo"] for s in per_sample), default=0),
                "batches": total("batches"),
                "fifo_occupancy": per_sample[0]["fifo"] if per_sample else None,
                "input_window_s": self.input_window()}

    def _slices(self, xt: np.ndarray, graded: bool) -> list[np.ndarray]:
        """Split one input window into ``input_batches`` slices (events in address order)."""
        k = self.input_batches
        if k == 1:
            return [xt]
        flat = xt.reshape(-1)
        bounds = np.linspace(0, flat.size, k + 1).astype(int)
        out = []
        for j in range(k):
            s = np.zeros_like(flat)
            s[bounds[j]:bounds[j + 1]] = flat[bounds[j]:bounds[j + 1]]
            out.append(s.reshape(xt.shape))
        return out


class _SampleSim:
    """One input sample through the chip: SimPy processes for deliveries, cores and firings.

    Steps: windowed mode has one step per window (k = t); free mode ``input_batches`` phases
    per window (k = t * S + j), a node firing on each phase's partial input."""

    def __init__(self, eng: AsyncEngine, x: np.ndarray, b: int, tally: Tally):
        self.eng, self.x, self.b, self.tally = eng, x, b, tally
        self.env = env = simpy.Environment()
        self.cores = {c: _Core(env, c, eng.depth, eng.trace_cores and b == 0)
                      for c in range(eng.n_cores)}
        self.T = x.shape[0]
        self.free = eng.async_mode == "free"
        self.S = S = eng.input_batches
        self.K = K = self.T * S if self.free else self.T
        self.window = eng.input_window()
        keys = [(v, k) for v in eng.execs for k in range(K)]
        self.inbox = {(v, k): [None] * len(eng.inputs_of[v]) for v, k in keys}
        self.expected = self._expected_batches()
        self.got = dict.fromkeys(keys, 0)
        self.ready = {key: env.event() for key in keys}
        self.done = {key: env.event() for key in keys}
        eng._last_inputs = {}
        self.work = []                        # [core, start_s, end_s, node, kind] of input 0
        self.last_item: dict[int, int] = {}   # core -> index of its latest work item
        self.stats = {"stalls": 0, "stall_s": 0.0, "drops": 0, "batches": 0}
        self.out_time = 0.0
        self.free_state = {n: _FreeState(eng, n) for n in eng.execs} if self.free else None
        self.copies_left: dict[int, int] = {}

    def _expected_batches(self) -> dict:
        """Batches each (node, step) will receive before it may fire."""
        eng = self.eng
        expected = {(v, k): 0 for v in eng.execs for k in range(self.K)}
        for v in eng.execs:
            for u in eng.inputs_of[v]:
                nparts = 1 if u == eng.inp else len(eng.parts[u])
                per_step = self.S if (u == eng.inp and not self.free) else 1
                for i in range(nparts):
                    n = 1 if (eng.internal[(u, v)] or eng.dest[(u, i, v)]) else 0
                    for k in range(self.K):
                        expected[(v, k)] += n * per_step
        return expected

    # -------------------------------------------------------------------------- processes
    def serve(self, core: _Core, seconds: float, n_events: int, node: str, kind: str):
        """Occupy ``core`` for ``seconds``, then free ``n_events`` FIFO slots."""
        env = self.env
        with core.res.request() as req:
            yield req
            start = env.now
            if seconds > 0:
                yield env.timeout(seconds)
            core.busy_s += seconds
            if n_events:
                core.release(n_events)
            if core.trace is not None and seconds > 0:
                work, last = self.work, self.last_item.get(core.id)
                if last is not None and work[last][3] == node and work[last][4] == kind \
                        and work[last][2] == start:              # back-to-back: extend
                    work[last][2] = env.now
                else:
                    self.last_item[core.id] = len(work)
                    work.append([core.id, start, env.now, node, kind])

    def receive(self, v, k, port, xb):
        """A batch of step k's input of ``v`` on ``port`` has been integrated."""
        cur = self.inbox[(v, k)][port]
        self.inbox[(v, k)][port] = xb if cur is None else cur + xb
        self.got[(v, k)] += 1
        if self.got[(v, k)] == self.expected[(v, k)]:
            self.ready[(v, k)].succeed()

    def _batch_ops(self, v, port, xb, core_id, graded) -> int:
        eng = self.eng
        if graded and isinstance(eng.execs[v], ConvExec):
            return int(eng.execs[v].counter.parts(xb, True)[eng.core_part[v][core_id]].sum())
        return 0 if graded else eng._arrival_ops(v, port, xb, core_id)

    def deliver(self, key, u, i, v, k, port, xb, send_s, core_id, graded):
        """One copy of a batch to one destination core: route, FIFO admission, service."""
        eng, env, core = self.eng, self.env, self.cores[core_id]
        src_core = None if u == eng.inp else eng.parts[u][i][0]
        hops = 0 if src_core is None else eng.mapping.hops(src_core, core_id)
        yield env.timeout(max(0.0, send_s - env.now) + eng.event_s + hops * eng.hop_s)
        n = int(np.count_nonzero(xb)) if graded else int(xb.astype(np.int64).sum())
        ops = self._batch_ops(v, port, xb, core_id, graded)
        # stream the batch through the FIFO: the core serves admitted events while the
        # rest waits at the router (stall policy); ops are split over chunks exactly
        procs, admitted = [], 0
        while admitted < n:
            free_slots = core.depth - core.occ
            if free_slots <= 0:
                t_stall = env.now
                self.stats["stalls"] += 1
                core.stalls += 1
                yield core.space
                core.stall_s += env.now - t_stall
                self.stats["stall_s"] += env.now - t_stall
                continue
            chunk = min(free_slots, n - admitted)
            core.admit(chunk)
            share = ops * (admitted + chunk) // n - ops * admitted // n
            procs.append(env.process(self.serve(core, share * eng.service_s, chunk, v, "synops")))
            admitted += chunk
        if n == 0 and ops:
            procs.append(env.process(self.serve(core, ops * eng.service_s, 0, v, "synops")))
        if procs:
            yield env.all_of(procs)
        self.copies_left[key] -= 1
        if self.copies_left[key] == 0:     # every destination core has integrated the batch
            self.receive(v, k, port, xb)

    def send(self, u, i, k, val, at_s):
        """Multicast part i of u's step-k output to every consumer."""
        eng = self.eng
        _, c0, c1 = (None, 0, val.shape[-1]) if u == eng.inp else eng.parts[u][i]
        xb = np.zeros_like(val)
        xb[..., c0:c1] = val[..., c0:c1]
        graded = eng.graph.out_kind(u) == "graded"
        burst = 0.0
        if not graded and xb.size and xb.max() > 1:
            burst = (float(xb.max()) - 1) * eng.isi_s
        for v in eng.consumers[u]:
            port = eng.inputs_of[v].index(u)
            if eng.internal[(u, v)]:
                self.receive(v, k, port, xb)
                continue
            dests = eng.dest[(u, i, v)]
            if not dests:
                continue
            xv = xb
            if eng.overflow == "drop" and not graded:
                xv = self._drop_excess(xb, dests)
            self.stats["batches"] += len(dests)
            key = len(self.copies_left)
            self.copies_left[key] = len(dests)
            for c in dests:
                self.env.process(self.deliver(key, u, i, v, k, port, xv, at_s + burst, c,
                                              graded))

    def _drop_excess(self, xb: np.ndarray, dests) -> np.ndarray:
        """The congestion balancer: events beyond the fullest destination FIFO's free slots."""
        n = int(xb.astype(np.int64).sum())
        over = max(max(0, n - (self.cores[c].depth - self.cores[c].occ)) for c in dests)
        if not over:
            return xb
        self.stats["drops"] += over * len(dests)
        for c in dests:
            self.cores[c].dropped += over
        return self.eng._drop_tail(xb, over)

    def _step(self, v, k, ins, c):
        """Node v's output for step k (windowed: the executor; free: increments)."""
        eng = self.eng
        if self.free:
            out, acc_in = self.free_state[v].step(k // self.S, k % self.S, ins, c)
            eng._last_inputs[v] = ins
            eng._async_counts(v, [acc_in] if isinstance(eng.execs[v], NeuronExec) else ins, c)
        else:
            out = eng.execs[v].step(ins, c)
            eng._last_inputs[v] = ins
            eng._async_counts(v, ins, c)
        return out

    def fire(self, v, k):
        """Node v runs step k once all of its input batches for k were served."""
        eng, env = self.eng, self.env
        if k > 0:
            yield self.done[(v, k - 1)]
        yield self.ready[(v, k)]
        c = eng.new_counts(v)
        out = self._step(v, k, self.inbox[(v, k)], c)
        eng.route_counts(v, out, c)
        self.tally.account(v, c)
        self.tally.output(v, k // self.S if self.free else k, self.b, out)
        per_core = {cid: int(c[idx, CAT["aux_ops"]].sum() + c[idx, CAT["neuron_updates"]].sum())
                    for cid, idx in eng.core_part[v].items()}
        procs = [env.process(self.serve(self.cores[cid], ops * eng.service_s, 0, v, "fire"))
                 for cid, ops in per_core.items() if ops]
        if procs:
            yield env.all_of(procs)
        for i in range(len(eng.parts[v])):
            self.send(v, i, k, out, env.now)
        if v == eng.out:
            self.out_time = max(self.out_time, env.now)
        self.done[(v, k)].succeed()

    def source(self):
        """The input: window t's values in S slices spread over the window."""
        eng, env = self.eng, self.env
        graded = eng.graph.op(eng.inp).kind == "graded"
        for t in range(self.T):
            for j, sl in enumerate(eng._slices(self.x[t], graded)):
                at = (t + j / self.S) * self.window
                yield env.timeout(max(0.0, at - env.now))
                self.send(eng.inp, 0, t * self.S + j if self.free else t, sl, env.now)

    # -------------------------------------------------------------------------- driver
    def run(self) -> None:
        eng = self.eng
        self.env.process(self.source())
        for v in eng.order:
            if v in eng.execs:
                for k in range(self.K):
                    self.env.process(self.fire(v, k))
        self.env.run()
        unfinished = [(v, k) for k in range(self.K) for v in eng.order
                      if v in eng.execs and not self.done[(v, k)].triggered]
        if unfinished:
            v, k = unfinished[0]
            raise RuntimeError(f"async simulation stalled: node {v!r} step {k} received "
                               f"{self.got[(v, k)]} of {self.expected[(v, k)]} input batches "
                               "(deadlock)")

    def outcome(self) -> SampleRun:
        eng, cores = self.eng, self.cores.values()
        acc = self.free_state[eng.out].readout_acc if self.free else eng.execs[eng.out].acc
        stats = dict(self.stats, arrived=sum(c.arrived for c in cores),
                     served=sum(c.served for c in cores),
                     max_fifo=max(c.max_occ for c in cores),
                     fifo={c.id: c.trace for c in cores if c.trace and c.max_occ})
        timeline = {"items": self.work,
                    "core_busy_s": {c.id: c.busy_s for c in cores if c.busy_s}}
        return SampleRun(logits=acc / self.T, latency_s=self.out_time,
                         timeline=timeline if self.b == 0 else None, stats=stats)


class _FreeState:
    """Per-node state of free-running execution: phase j of window t integrates the phase's
    input increments and fires on the partial sum (module doc, mode ``free``). With one phase
    per window every rule below reduces to the windowed one, operation for operation."""

    def __init__(self, eng: AsyncEngine, v: str):
        self.eng, self.v = eng, v
        self.op, self.e = eng.graph.op(v), eng.execs[v]
        self.acc = None                   # running operand sums of the current window
        self.vm = None                    # membrane (LIF / IF)
        self.h = self.fired = None        # SFA membrane and spikes within the window
        self.readout_acc = None

    def step(self, t: int, j: int, ins: list[np.ndarray], c: np.ndarray):
        """(output increment, neuron input) of phase j of window t; counts added to ``c``."""
        op, e = self.op, self.e
        if isinstance(op, (G.Conv, G.Linear)):
            out = e.step(ins, c)
            return (out if j == 0 else out - op.bias), None     # bias once per window
        if isinstance(op, G.Neurons):
            return self._neurons(ins[0], j, c), ins[0]
        if isinstance(op, G.Readout):
            x = ins[0]
            self.readout_acc = x.copy() if self.readout_acc is None else self.readout_acc + x
            c[:, CAT["aux_ops"]] += e.per_part_sizes()
            return x, None
        if isinstance(op, (G.Add, G.TokenMean)):              # linear: increments pass on
            return e.step(ins, c), None
        # pooling and spike products: f(new running input) - f(old running input)
        old = self.acc if j > 0 else None
        new = ins if old is None else [a + d for a, d in zip(old, ins)]
        self.acc = new
        out = e.step(new, c)
        if old is None:
            return out, None
        c_old = np.zeros_like(c)
        prev = e.step(old, c_old)
        c -= c_old
        c[:, CAT["graded_values"]] += c_old[:, CAT["graded_values"]]
        return out - prev, None

    def _neurons(self, x: np.ndarray, j: int, c: np.ndarray) -> np.ndarray:
        op = self.op
        vth = op.v_th
        lo, hi = op.v_range
        n_par = self.e.per_part_sizes()
        if op.model == "sfa":
            if j == 0:
                self.h = x + 0.5 * vth
                self.fired = np.zeros(x.shape)
            else:
                self.h = self.h + x
            sat = int(np.count_nonzero((self.h < lo) | (self.h > hi)))
            self.h = np.clip(self.h, lo, hi)
            out = np.zeros(x.shape)
            for _ in range(op.D):
                s = (self.h >= vth) & (self.fired < op.D)
                out += s
                self.fired += s
                self.h = np.where(s, self.h - vth, self.h)
        else:
            v = self.vm if self.vm is not None else \
                np.broadcast_to(op.v_reset, x.shape).astype(np.float64)
            if j > 0 and op.model == "lif":   # leak once per window, at its first phase
                h = v + x / op.tau if op.decay_input else v + x
            else:
                h = lif_charge(op, v, x, op.v_reset)
            out, self.vm, sat = fire_reset(op, h, vth, op.v_reset)
        c[0, CAT["saturations"]] += sat
        for cat in ("neuron_updates", "membrane_reads", "membrane_writes"):
            c[:, CAT[cat]] += n_par
        per_c = out.reshape(-1, op.channels).sum(axis=0).astype(np.int64)
        c[:, CAT["spikes"]] += part_sums(per_c, self.e.starts)
        return out
