"""The run scaffold both chip engines share: set-up, routing counts, tallies, recording, result.

An engine is built once per (graph, chip, mapping): executors per node (``executors.py``),
mapped parts and the cross-core routes of every edge. ``Engine.run`` checks the input, then
for each input sample resets the executors and calls the engine's ``run_one``, which executes
the sample its own way (clocked ticks or SimPy processes) and reports what it did through the
``Tally``: operation counts per node and core, spike counts, recorded tensors. The scaffold
records the input node itself, so ``record="all"`` gives the same tensors in every engine.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from neurosim.ir import graph as G
from neurosim.ir.counts import CATEGORIES
from neurosim.ir.result import RunResult, check_labels
from neurosim.ir.semantics import input_ticks
from chips.engines.executors import CAT, build_executors, part_sums

RECORD = ("counts", "spikes", "all")


def channels_first(v: np.ndarray) -> np.ndarray:
    """An engine's channels-last map [H, W, C] as the graph's [C, H, W]; vectors unchanged."""
    return np.moveaxis(v, -1, 0) if v.ndim == 3 else v


@dataclass
class SampleRun:
    """What ``run_one`` returns for one input sample: logits [K], latency (s), clock ticks
    (0 for clockless chips), the sample's timeline record and engine statistics to merge."""

    logits: np.ndarray
    latency_s: float
    ticks: int = 0
    timeline: dict | None = None
    stats: dict = field(default_factory=dict)


class Tally:
    """Accumulators of one ``Engine.run`` over ``B`` samples of ``T`` time steps."""

    def __init__(self, engine: "Engine", T: int, B: int):
        graph, ncat = engine.graph, len(CATEGORIES)
        self.part_cores = engine.part_cores
        self.node_counts = {n: np.zeros(ncat, np.int64) for n in engine.execs}
        self.core_counts = np.zeros((engine.n_cores, ncat), np.int64)
        self.spike_counts = {n: np.zeros((B, T), np.int64) for n in engine.pops}
        rec = engine.record
        self.spikes = {n: np.zeros((T, B) + graph.op(n).shape) for n in engine.order
                       if rec == "all" or (rec == "spikes" and n in engine.pops)}

    def account(self, n: str, c: np.ndarray) -> None:
        """Add one step's counts ``c`` [parts, categories] of node ``n`` to node and cores."""
        self.node_counts[n] += c.sum(axis=0)
        np.add.at(self.core_counts, self.part_cores[n], c)

    def output(self, n: str, t: int, b: int, out: np.ndarray) -> None:
        """Node ``n``'s output (channels-last) at time step ``t`` of sample ``b``; adds, so an
        engine that emits a step's output in increments records their sum."""
        if n in self.spike_counts:
            self.spike_counts[n][b, t] += int(out.sum())
        if n in self.spikes:
            self.spikes[n][t, b] += channels_first(out)


class Engine(ABC):
    """Shared machinery of both engines: executors, mapping parts, routing, counting, the run
    loop. Subclasses set ``mode`` and implement ``run_one`` and, optionally, ``merge_stats``."""

    mode = "base"

    def __init__(self, graph: G.Graph, chip, mapping, *, dense_threshold: float = 0.05,
                 record: str = "counts"):
        if record not in RECORD:
            raise ValueError(f"record must be one of {RECORD}, got {record!r}")
        self.graph = graph.validate()
        self.chip, self.mapping, self.record = chip, mapping, record
        self.order = graph.order()
        self.inp, self.out = graph.input_node(), graph.output_node()
        self.inputs_of = {n: graph.inputs(n) for n in self.order}
        self.parts = {n: mapping.parts(n) for n in self.order if n != self.inp}
        self.part_cores = {n: np.array([c for c, _, _ in p], np.int64)
                           for n, p in self.parts.items()}
        self.execs = build_executors(graph, {n: [(c0, c1) for _, c0, c1 in p]
                                             for n, p in self.parts.items()}, dense_threshold)
        self.n_cores = mapping.n_cores
        self.pops = [n for n in self.order if isinstance(graph.op(n), G.Neurons)]
        self.D = max([graph.op(n).D for n in self.pops if graph.op(n).model == "sfa"], default=1)
        self.routes = self._routes()

    # ------------------------------------------------------------------------ set-up
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

    # ------------------------------------------------------------------------ counting
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

    def new_counts(self, n: str) -> np.ndarray:
        """A zero count block [parts of ``n``, categories] for one step of node ``n``."""
        return np.zeros((len(self.parts[n]), len(CATEGORIES)), np.int64)

    # ------------------------------------------------------------------------ run loop
    def _check_input(self, x) -> np.ndarray:
        xs = input_ticks(self.graph, x)                         # [T, B, *shape] float64
        op = self.graph.op(self.inp)
        return np.moveaxis(xs, 2, -1) if len(op.shape) == 3 else xs

    def _reset(self):
        for e in self.execs.values():
            e.reset()

    def run(self, x, labels=None) -> RunResult:
        """Simulate ``x`` ([B, *in] static or [T, B, *in] frames), one sample at a time."""
        t0 = time.perf_counter()
        xs = self._check_input(x)                               # [T, B, *channels-last]
        T, B = xs.shape[:2]
        labels = check_labels(labels, B, self.graph.op(self.out).shape[0])
        tally = Tally(self, T, B)
        if self.inp in tally.spikes:
            for b in range(B):
                for t in range(T):
                    tally.spikes[self.inp][t, b] = channels_first(xs[t, b])
        logits = np.zeros((B,) + self.graph.op(self.out).shape)
        latency, ticks = np.zeros(B), np.zeros(B, np.int64)
        runs = []
        for b in range(B):
            self._reset()
            r = self.run_one(xs[:, b], b, tally)
            logits[b], latency[b], ticks[b] = r.logits, r.latency_s, r.ticks
            runs.append(r)
        stats = self.merge_stats([r.stats for r in runs])
        stats["wall_s"] = time.perf_counter() - t0
        stats["saturations"] = int(sum(v[CAT["saturations"]] for v in tally.node_counts.values()))
        cat = list(CATEGORIES)
        return RunResult(
            mode=self.mode, chip=self.chip.name, model=self.graph.meta.get("model", "?"),
            logits=logits, spike_counts=tally.spike_counts,
            counts={n: {c: int(v[i]) for i, c in enumerate(cat)}
                    for n, v in tally.node_counts.items()},
            core_counts={int(k): {c: int(v[i]) for i, c in enumerate(cat)}
                         for k, v in enumerate(tally.core_counts) if v.any()},
            latency_s=latency, ticks=ticks, timeline=runs[0].timeline if runs else None,
            stats=stats, labels=labels,
            spikes=tally.spikes)

    @abstractmethod
    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        """Execute sample ``b`` (``x`` [T, *channels-last]) with fresh executor state."""

    def merge_stats(self, per_sample: list[dict]) -> dict:
        """Engine statistics of the whole run from each sample's ``SampleRun.stats``."""
        return {}
