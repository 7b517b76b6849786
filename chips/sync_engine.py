"""Synchronous engine: a Tianjic-style chip with a global clock.

Execution. Each time step, every node runs in topological order (the Graph's semantics), one
input at a time with state reset between inputs. Spikes travel between populations on a tick
boundary, so a population ``s`` spike hops from the input sits in pipeline stage ``s`` and
processes time step t at tick t + s (residual paths are delayed to match: ``Graph.align_delays``).
An SFA time step is D ticks: spike d of a burst is emitted at sub-tick d, and a layer fires its
own burst only after its input burst is complete (integer-exact, seed sdt-v3 §6.1).

Timing. A tick lasts max(``tick_cycles``, slowest core's compute cycles + ``comm_phase_cycles``
+ ``hop_cycles`` x the longest route used in the tick); compute cycles of a core = its ACs x
``cycles_per_ac`` + MACs x ``cycles_per_mac`` + other adds x ``cycles_per_ac`` + neuron updates
x ``cycles_per_neuron_update``. Every neuron of a population is updated every tick of its time
steps (leak), whether or not it received input. Latency = sum of tick durations / ``clock_hz``.

Real-time input. With ``input_window_s`` (event streams: the duration of one time bin), the
frame of time step t is complete only at (t + 1) x ``input_window_s``: a tick that first needs it waits
until then, the chip idling (static power only) in between. Latency then runs from the first
input event to the decision.
"""
from __future__ import annotations

import time

import numpy as np

from neurosim import graph as G
from neurosim.accounting import CATEGORIES
from neurosim.interp import input_ticks
from neurosim.result import RunResult
from .executors import CAT, ConvExec, LinearExec, NeuronExec, build_executors, part_sums


def pipeline_stages(graph: G.Graph) -> dict[str, int]:
    """Stage of each node: spike hops from the input (a population's output crosses a tick)."""
    st: dict[str, int] = {}
    for n in graph.order():
        preds = graph.inputs(n)
        st[n] = max((st[p] + isinstance(graph.op(p), G.Neurons) for p in preds), default=0)
    return st


class Engine:
    """Shared machinery of both engines: executors, mapping parts, routing, counting."""

    mode = "base"

    def __init__(self, graph: G.Graph, chip, mapping, *, dense_threshold: float = 0.05,
                 record: str = "counts"):
        if record not in ("counts", "spikes", "all"):
            raise ValueError(f"record must be counts, spikes or all, got {record!r}")
        self.graph = graph.validate()
        self.chip, self.mapping, self.record = chip, mapping, record
        self.order = graph.order()
        self.inp, self.out = graph.input_node(), graph.output_node()
        self.inputs_of = {n: graph.inputs(n) for n in self.order}
        self.parts = {n: mapping.parts(n) for n in self.order if n != self.inp}
        self.part_cores = {n: np.array([c for c, _, _ in p], np.int64) for n, p in self.parts.items()}
        self.execs = build_executors(graph, {n: [(c0, c1) for _, c0, c1 in p]
                                             for n, p in self.parts.items()}, dense_threshold)
        self.n_cores = mapping.n_cores
        self.pops = [n for n in self.order if isinstance(graph.op(n), G.Neurons)]
        self.D = max([graph.op(n).D for n in self.pops if graph.op(n).model == "sfa"], default=1)
        self.routes = self._routes()

    def _routes(self) -> dict[str, list[tuple[np.ndarray, np.ndarray, int]]]:
        """Per source node, its edges that cross cores: (messages, hops) per source channel for
        one unit sent, and the longest route in hops."""
        out: dict[str, list] = {}
        for v in self.order:
            for u in self.inputs_of[v]:
                if u == self.inp:
                    continue
                msgs, hops = self.mapping.route(u, v)
                msgs, hops = np.asarray(msgs, np.int64), np.asarray(hops, np.int64)
                if msgs.any():
                    out.setdefault(u, []).append((msgs, hops, int(hops.max())))
        return out

    def route_counts(self, u: str, val: np.ndarray, counts: np.ndarray) -> int:
        """Add the messages and hops of one step of ``u``'s output to ``u``'s parts; returns the
        longest route used (hops), 0 if nothing crossed a core."""
        routes = self.routes.get(u)
        if not routes:
            return 0
        kind = self.graph.out_kind(u)
        C = val.shape[-1]
        per_c = (val.reshape(-1, C).astype(np.int64).sum(axis=0) if kind == "spike"
                 else np.full(C, val.size // C, np.int64))
        cat_m, cat_h = (("noc_messages", "noc_hops") if kind == "spike" else
                        ("graded_messages", "graded_hops"))
        longest = 0
        starts = self.execs[u].starts
        for msgs, hops, far in routes:
            m = per_c * msgs
            counts[:, CAT[cat_m]] += part_sums(m, starts)
            counts[:, CAT[cat_h]] += part_sums(per_c * hops, starts)
            if m.any():
                longest = max(longest, far)
        return longest

    def _check_input(self, x) -> np.ndarray:
        xs = input_ticks(self.graph, x)                         # [T, B, *shape] float64
        op = self.graph.op(self.inp)
        return np.moveaxis(xs, 2, -1) if len(op.shape) == 3 else xs

    def _reset(self):
        for e in self.execs.values():
            e.reset()

    def _new_result(self, logits, spike_counts, node_counts, core_counts, latency, ticks,
                    timeline, stats, labels, spikes) -> RunResult:
        cat = list(CATEGORIES)
        return RunResult(
            mode=self.mode, chip=self.chip.name, model=self.graph.meta.get("model", "?"),
            logits=logits, spike_counts=spike_counts,
            counts={n: {c: int(v[i]) for i, c in enumerate(cat)} for n, v in node_counts.items()},
            core_counts={int(k): {c: int(v[i]) for i, c in enumerate(cat)}
                         for k, v in enumerate(core_counts) if v.any()},
            latency_s=latency, ticks=ticks, timeline=timeline, stats=stats,
            labels=None if labels is None else np.asarray(labels, np.int64), spikes=spikes)


class SyncEngine(Engine):
    """Global-clock execution with pipelined time steps (module doc)."""

    mode = "sync"

    def __init__(self, graph, chip, mapping, *, input_window_s: float | None = None, **kw):
        super().__init__(graph, chip, mapping, **kw)
        if input_window_s is not None and (not np.isfinite(input_window_s) or input_window_s < 0):
            raise ValueError(f"input_window_s must be a finite duration >= 0, got {input_window_s}")
        self.input_window_s = input_window_s or 0.0
        t = chip.timing
        self.cyc = np.zeros(len(CATEGORIES))
        self.cyc[CAT["ac"]] = t.cycles_per_ac
        self.cyc[CAT["aux_ops"]] = t.cycles_per_ac
        self.cyc[CAT["mac"]] = t.cycles_per_mac
        self.cyc[CAT["neuron_updates"]] = t.cycles_per_neuron_update
        self.stage = pipeline_stages(self.graph)
        self.n_stages = max(self.stage.values()) + 1
        self.burst_fed = {n: any(isinstance(self.graph.op(u), G.Neurons) and
                                 self.graph.op(u).model == "sfa" for u in self.inputs_of[n])
                          for n in self.execs}

    def _timing_rows(self, n: str, ins, c: np.ndarray) -> np.ndarray:
        """Cycles per (sub-tick, core part) [D, parts] of one node's step."""
        D = self.D
        cyc = c @ self.cyc                                     # [parts]
        if D == 1:
            return cyc[None, :]
        e = self.execs[n]
        rows = np.repeat(cyc[None, :] / D, D, axis=0)
        if self.burst_fed[n] and isinstance(e, (ConvExec, LinearExec)) and not e.graded:
            syn = e.subtick_ops(ins[0] if not isinstance(e, LinearExec) else ins[0].reshape(-1), D)
            rest = cyc - c[:, CAT["ac"]] * self.cyc[CAT["ac"]]
            rows = syn * self.cyc[CAT["ac"]] + rest[None, :] / D
        return rows

    def _tick_starts(self, tick_s: np.ndarray, T: int) -> np.ndarray:
        """Start time of every tick: after the previous tick, and not before the input frame
        it first consumes is complete (tick g of stage 0 consumes time step g // D)."""
        w = self.input_window_s
        if w == 0:
            return np.concatenate([[0.0], np.cumsum(tick_s)[:-1]])
        start = np.zeros(len(tick_s))
        end = 0.0
        for g in range(len(tick_s)):
            step = g // self.D
            avail = (step + 1) * w if (step < T and g % self.D == 0) else 0.0
            start[g] = max(end, avail)
            end = start[g] + tick_s[g]
        return start

    def run(self, x, labels=None) -> RunResult:
        t0 = time.perf_counter()
        xs = self._check_input(x)
        T, B = xs.shape[:2]
        graph, ncat = self.graph, len(CATEGORIES)
        node_counts = {n: np.zeros(ncat, np.int64) for n in self.execs}
        core_counts = np.zeros((self.n_cores, ncat), np.int64)
        spike_counts = {n: np.zeros((B, T), np.int64) for n in self.pops}
        spikes = {n: np.zeros((T, B) + graph.op(n).shape) for n in self.order
                  if self.record == "all" or (self.record == "spikes" and n in self.pops)}
        n_ticks = (T + self.n_stages - 1) * self.D
        logits = np.zeros((B,) + graph.op(self.out).shape)
        latency, ticks = np.zeros(B), np.full(B, n_ticks, np.int64)
        timeline = None
        tm = self.chip.timing
        hop_cyc = self.chip.mesh.hop_cycles or 0.0
        for b in range(B):
            self._reset()
            busy = np.zeros((n_ticks, self.n_cores))
            max_hops = np.zeros(n_ticks, np.int64)
            for t in range(T):
                vals = {self.inp: xs[t, b]}
                for n in self.order[1:]:
                    ins = [vals[u] for u in self.inputs_of[n]]
                    c = np.zeros((len(self.parts[n]), ncat), np.int64)
                    vals[n] = out = self.execs[n].step(ins, c)
                    g0 = (t + self.stage[n]) * self.D
                    far = self.route_counts(n, out, c)
                    max_hops[g0:g0 + self.D] = np.maximum(max_hops[g0:g0 + self.D], far)
                    node_counts[n] += c.sum(axis=0)
                    np.add.at(core_counts, self.part_cores[n], c)
                    rows = self._timing_rows(n, ins, c)
                    for d in range(self.D):
                        np.add.at(busy[g0 + d], self.part_cores[n], rows[d])
                    if n in spike_counts:
                        spike_counts[n][b, t] = int(out.sum())
                    if n in spikes:
                        spikes[n][t, b] = np.moveaxis(out, -1, 0) if out.ndim == 3 else out
                if self.inp in spikes:
                    v = xs[t, b]
                    spikes[self.inp][t, b] = np.moveaxis(v, -1, 0) if v.ndim == 3 else v
            logits[b] = self.execs[self.out].acc / T
            tick_cyc = np.maximum(tm.tick_cycles or 0.0, busy.max(axis=1) +
                                  (tm.comm_phase_cycles or 0.0) + hop_cyc * max_hops)
            tick_s = tick_cyc / tm.clock_hz
            start = self._tick_starts(tick_s, T)
            latency[b] = start[-1] + tick_s[-1]
            if b == 0:
                timeline = {"tick_s": tick_s.tolist(), "tick_start_s": start.tolist(),
                            "core_busy_cycles": {int(k): busy[:, k].tolist()
                                                 for k in range(self.n_cores) if busy[:, k].any()},
                            "stages": self.n_stages, "ticks_per_step": self.D}
        stats = {"wall_s": time.perf_counter() - t0,
                 "saturations": int(sum(v[CAT["saturations"]] for v in node_counts.values())),
                 "dense_steps": {n: e.dense_steps for n, e in self.execs.items() if e.dense_steps},
                 "ticks_per_inference": n_ticks, "clock_hz": tm.clock_hz,
                 "input_window_s": self.input_window_s}
        return self._new_result(logits, spike_counts, node_counts, core_counts, latency, ticks,
                                timeline, stats, labels, spikes)
