"""The run scaffold both chip engines share: set-up, routing counts, tallies, recording, result.

An engine is built once per (graph, chip, mapping): executors per node (``executors.py``),
mapped parts and the cross-core routes of every edge. ``Engine.run`` checks the input, then
for each batch of ``batch_size`` inputs resets the executors and calls the engine's
``run_batch``, which executes the batch its own way (the sync engine: clocked ticks, all inputs
of the batch through each node together; the default: one input at a time through
``run_one``, e.g. SimPy processes) and reports what it did through the ``Tally``: operation
counts per node and core, spike counts, recorded tensors. Every input's results, counts and
timeline are its own, whatever the batch size. The scaffold records the input node itself, so
``record="all"`` gives the same tensors in every engine.

Routing is counted by what a node *sends* (``Engine.sends``): its Graph edge kind, except an
output pool folded into its producer's cores (``Engine.folded``, Speck), whose pooled counts
leave as spike events (``noc_messages``, one per pooled spike and destination core).
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
from chips.mapping.layers import folded_pools

RECORD = ("counts", "spikes", "all")


def channels_first(v: np.ndarray) -> np.ndarray:
    """An engine's channels-last map [H, W, C] as the graph's [C, H, W]; vectors unchanged."""
    return np.moveaxis(v, -1, 0) if v.ndim == 3 else v


def flat_logits(v: np.ndarray, size: int, node: str) -> np.ndarray:
    """An engine's readout value (vector, or channels-last map) as the graph's [K] logits in
    (C, H, W) order, as the interpreter gives them; a wrong size is an error naming the node."""
    v = np.asarray(v, np.float64)
    if v.size != size:
        raise RuntimeError(f"readout {node!r}: the engine produced {v.size} logits "
                           f"(shape {v.shape}), the graph has {size}")
    return channels_first(v).reshape(-1)


@dataclass
class SampleRun:
    """What ``run_one`` returns for one input sample: logits (the readout's value: a vector
    [K], or a channels-last map [H, W, C] that :func:`flat_logits` flattens), latency (s),
    clock ticks (0 for clockless chips), the sample's timeline record and engine statistics."""

    logits: np.ndarray
    latency_s: float
    ticks: int = 0
    timeline: dict | None = None
    stats: dict = field(default_factory=dict)


class Tally:
    """Accumulators of one ``Engine.run`` over ``B`` samples of ``T`` time steps."""

    def __init__(self, engine: "Engine", T: int, B: int):
        graph, ncat = engine.graph, len(CATEGORIES)
        self.engine = engine
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

    def account_batch(self, n: str, c: np.ndarray) -> None:
        """:meth:`account` of one step of a batch: ``c`` [B, parts, categories]."""
        c = c.sum(axis=0)
        self.node_counts[n] += c.sum(axis=0)
        np.add.at(self.core_counts, self.part_cores[n], c)

    def output_batch(self, n: str, t: int, b0: int, out: np.ndarray) -> None:
        """:meth:`output` of samples ``b0 .. b0 + B - 1`` at once (``out`` [B, ...])."""
        B = out.shape[0]
        if n in self.spike_counts:
            self.spike_counts[n][b0:b0 + B, t] += self.engine.channel_sums(n, out).sum(axis=1)
        if n in self.spikes:
            self.spikes[n][t, b0:b0 + B] += np.moveaxis(out, -1, 1) if out.ndim == 4 else out


class Engine(ABC):
    """Shared machinery of both engines: executors, mapping parts, routing, counting, the run
    loop. Subclasses set ``mode`` and implement ``run_one`` and, optionally, ``merge_stats``."""

    mode = "base"

    def __init__(self, graph: G.Graph, chip, mapping, *, dense_threshold: float | None = None,
                 path: str = "auto", path_model=None, batch_size: int | None = None,
                 record: str = "counts"):
        if record not in RECORD:
            raise ValueError(f"record must be one of {RECORD}, got {record!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or
                                       int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 (or None: automatic), "
                             f"got {batch_size!r}")
        self.graph = graph.validate()
        self.chip, self.mapping, self.record = chip, mapping, record
        self.order = graph.order()
        self.inp, self.out = graph.input_node(), graph.output_node()
        self.inputs_of = {n: graph.inputs(n) for n in self.order}
        self.parts = {n: mapping.parts(n) for n in self.order if n != self.inp}
        self.part_cores = {n: np.array([c for c, _, _ in p], np.int64)
                           for n, p in self.parts.items()}
        # output pools the producing cores apply (Speck): their pooled counts leave as spikes
        self.folded = folded_pools(graph, chip, mapping.layer_of)
        self.sends = {n: "spike" if n in self.folded else graph.out_kind(n) for n in self.order}
        self.execs = build_executors(graph, {n: [(c0, c1) for _, c0, c1 in p]
                                             for n, p in self.parts.items()}, dense_threshold,
                                     path=path, path_model=path_model, pools=self.folded)
        self.path_model = next(iter(self.execs.values())).opts["model"] if self.execs else None
        self.batch_size = int(batch_size) if batch_size else default_batch_size(graph)
        self.n_cores = mapping.n_cores
        self.pops = [n for n in self.order if isinstance(graph.op(n), G.Neurons)]
        self.D = max([graph.op(n).D for n in self.pops if graph.op(n).model == "sfa"], default=1)
        self.routes = self._routes()
        self.arrivals = self._arrivals()

    # ------------------------------------------------------------------------ set-up
    def _routes(self) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]]:
        """Per source node, its edges that cross cores: (messages, hops, north-south hops) per
        source channel for one unit sent, and the longest route in hops."""
        out: dict[str, list] = {}
        for v in self.order:
            for u in self.inputs_of[v]:
                if u == self.inp:
                    continue
                msgs, hops = (np.asarray(a, np.int64) for a in self.mapping.route(u, v))
                if msgs.any():
                    ns = np.asarray(self.mapping.hops_ns_per_spike(u, v), np.int64)
                    out.setdefault(u, []).append((msgs, hops, ns, int(hops.max())))
        return out

    def _arrivals(self) -> dict[str, list[tuple[int, np.ndarray]]]:
        """Per consumer node, its spike inputs that arrive in packets (from another core or
        the off-chip Input): (input port, deliveries [source channels, parts])."""
        out: dict[str, list] = {}
        for v in self.order:
            for port, u in enumerate(self.inputs_of[v]):
                if self.sends[u] != "spike":
                    continue
                d = np.asarray(self.mapping.deliveries(u, v), np.int64)
                if d.any():       # float64 for BLAS (0/1 entries: sums exact below 2^53)
                    out.setdefault(v, []).append((port, d.astype(np.float64)))
        return out

    # ------------------------------------------------------------------------ counting
    def route_counts(self, u: str, val: np.ndarray, counts: np.ndarray) -> int:
        """Add the messages and hops of one step of ``u``'s output to ``u``'s parts; returns the
        longest route used (hops), 0 if nothing crossed a core. One input: ``val``
        channels-last, ``counts`` [parts, categories] (:meth:`route_counts_batch` for B)."""
        return int(self.route_counts_batch(u, val[None], counts[None])[0])

    def route_counts_batch(self, u: str, val: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """:meth:`route_counts` of B inputs at once (``val`` [B, ...], ``counts`` [B, parts,
        categories]); returns the longest route of each input (int64 [B])."""
        B = val.shape[0]
        longest = np.zeros(B, np.int64)
        routes = self.routes.get(u)
        if not routes:
            return longest
        kind = self.sends[u]
        C = val.shape[-1]
        per_c = (self.channel_sums(u, val) if kind == "spike"
                 else np.full((B, C), val[0].size // C, np.int64))
        cat_m, cat_h = (("noc_messages", "noc_hops") if kind == "spike" else
                        ("graded_messages", "graded_hops"))
        starts = self.execs[u].starts
        for msgs, hops, ns, far in routes:
            m = per_c * msgs
            counts[..., CAT[cat_m]] += part_sums(m, starts)
            counts[..., CAT[cat_h]] += part_sums(per_c * hops, starts)
            if kind == "spike":
                counts[..., CAT["noc_hops_ns"]] += part_sums(per_c * ns, starts)
            longest = np.where(m.any(axis=1), np.maximum(longest, far), longest)
        return longest

    def arrival_counts(self, v: str, ins: list, counts: np.ndarray) -> None:
        """Add to ``v``'s parts the spike packets they receive in one step of ``v``'s inputs
        ``ins`` (channels-last): one per source spike and destination core
        (``noc_messages_in``). One input; :meth:`arrival_counts_batch` for B."""
        self.arrival_counts_batch(v, [x[None] for x in ins], counts[None])

    def arrival_counts_batch(self, v: str, ins: list, counts: np.ndarray) -> None:
        """:meth:`arrival_counts` of B inputs (``ins`` [B, ...], ``counts`` [B, parts, ...])."""
        for port, d in self.arrivals.get(v, ()):
            per_c = self.channel_sums(self.inputs_of[v][port], ins[port])
            counts[..., CAT["noc_messages_in"]] += np.rint(per_c @ d).astype(np.int64)

    def channel_sums(self, u: str, val: np.ndarray) -> np.ndarray:
        """Per input and channel, the sum of ``u``'s output ``val`` [B, ..., C] (int64 [B, C]):
        the executor's own sums when it kept them for this very output, else computed."""
        e = self.execs.get(u)
        if e is not None and e.out_sums is not None and e.out_sums[0] is val:
            return e.out_sums[1]
        B, C = val.shape[0], val.shape[-1]
        return np.rint(val.reshape(B, -1, C).sum(axis=1)).astype(np.int64)

    def new_counts(self, n: str) -> np.ndarray:
        """A zero count block [parts of ``n``, categories] for one step of node ``n``."""
        return np.zeros((len(self.parts[n]), len(CATEGORIES)), np.int64)

    def new_counts_batch(self, n: str, B: int) -> np.ndarray:
        """Zero count blocks [B, parts of ``n``, categories] for one step of B inputs."""
        return np.zeros((B, len(self.parts[n]), len(CATEGORIES)), np.int64)

    # ------------------------------------------------------------------------ run loop
    def _check_input(self, x) -> np.ndarray:
        xs = input_ticks(self.graph, x)                         # [T, B, *shape] float64
        op = self.graph.op(self.inp)
        return np.moveaxis(xs, 2, -1) if len(op.shape) == 3 else xs

    def _reset(self):
        for e in self.execs.values():
            e.reset()

    def run(self, x, labels=None) -> RunResult:
        """Simulate ``x`` ([B, *in] static or [T, B, *in] frames) in batches of
        ``batch_size`` inputs (each input's results and counts are those of running it alone)."""
        t0 = time.perf_counter()
        xs = self._check_input(x)                               # [T, B, *channels-last]
        T, B = xs.shape[:2]
        K = self.graph.op(self.out).size                      # a map readout: C*H*W logits
        labels = check_labels(labels, B, K)
        tally = Tally(self, T, B)
        if self.inp in tally.spikes:
            tally.spikes[self.inp][:] = np.moveaxis(xs, -1, 2) if xs.ndim == 5 else xs
        logits = np.zeros((B, K))
        latency, ticks = np.zeros(B), np.zeros(B, np.int64)
        runs = []
        for b0 in range(0, B, self.batch_size):
            self._reset()
            rs = self.run_batch(xs[:, b0:b0 + self.batch_size], b0, tally)
            for b, r in enumerate(rs, b0):
                logits[b] = flat_logits(r.logits, K, self.out)
                latency[b], ticks[b] = r.latency_s, r.ticks
            runs.extend(rs)
        stats = self.merge_stats([r.stats for r in runs])
        stats["wall_s"] = time.perf_counter() - t0
        stats["batch_size"] = self.batch_size
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

    def run_batch(self, x: np.ndarray, b0: int, tally: Tally) -> list[SampleRun]:
        """Execute samples ``b0 ..`` (``x`` [T, B, *channels-last]) with fresh executor state;
        this default runs them one at a time through :meth:`run_one` (engines that execute a
        batch together override it)."""
        out = []
        for b in range(x.shape[1]):
            self._reset()
            out.append(self.run_one(x[:, b], b0 + b, tally))
        return out

    @abstractmethod
    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        """Execute sample ``b`` (``x`` [T, *channels-last]) with fresh executor state."""

    def merge_stats(self, per_sample: list[dict]) -> dict:
        """Engine statistics of the whole run from each sample's ``SampleRun.stats``."""
        return {}


# Activation memory one batch may hold (bytes): with the interpreter, torch, the graph and the
# mapping this keeps a run of meta-spikeformer-8-384 at 224x224 under ~2 GB resident.
BATCH_MEMORY_BYTES = 512 * 2 ** 20
MAX_BATCH = 128


def live_bytes_per_input(graph: G.Graph) -> int:
    """Peak bytes of one input's node outputs held at once during a time step (float64, each
    output freed after its last consumer), plus the largest node's working copies (x 3)."""
    order = graph.order()
    pos = {n: i for i, n in enumerate(order)}
    last = {n: max((pos[v] for v in graph.consumers(n)), default=pos[n]) for n in order}
    size = {n: 8 * int(np.prod(graph.op(n).shape)) for n in order}
    live, peak = 0, 0
    for i, n in enumerate(order):
        live += size[n]
        peak = max(peak, live)
        live -= sum(size[u] for u in graph.inputs(n) if last[u] == i)
    return peak + 3 * max(size.values())


def default_batch_size(graph: G.Graph, budget_bytes: int = BATCH_MEMORY_BYTES) -> int:
    """Inputs per batch: as many as fit ``budget_bytes`` of activations, 1 ..
    ``MAX_BATCH``."""
    return int(np.clip(budget_bytes // max(1, live_bytes_per_input(graph)), 1, MAX_BATCH))
