"""Asynchronous engine: a Speck-style event-driven chip, simulated with SimPy.

There is no global clock; time is continuous (seconds). SimPy schedules *batches* (the events
one part of a node sends one destination core), never single spikes (seed-facts §7). Every
event of a batch has its own time: a layer's output events leave in address order spread over
the time its core takes to produce them, an SFA burst's k spikes ``burst_isi_ns`` apart.

Network (``async_links``). A batch copy walks its route event by event, in a computed service
schedule (one Numba kernel call per copy): the off-chip input port or the links of its XY route
(mesh; an all-to-all chip shares one event bus), each serving ``link_events_per_s`` events per
second behind a queue of ``fifo_depth`` events and followed by ``hop_latency_ns`` (the last by
the per-layer ``event_latency_ns``), then the destination core's input FIFO (``fifo_depth``
events) and the core, ``synop_service_ns`` per synaptic op the event triggers there (at least
one op per event). ``overflow="stall"``: full queues hold events back, up to the sender;
``"drop"``: the congestion balancer drops each event that finds its queue full, so drops follow
congestion over time. A core serves batches in the order they reach it.

Conservation. Events offered are counted by the sender from the batches it sends, drops and
queued events by the queue kernels, served events when a copy's last event has been served;
every sample ends with the check sent = served + dropped + in flight (``Network.check``).

Input. Window t of the input covers [t, t + 1) x ``input_window_s`` (default 1 ms for event
input, 0 for static images: the next frame follows as soon as the chip takes it); its events
leave in ``input_order`` (``raster``: address order; ``saliency``: largest value first) spread
over the window. A graded input (an image) sends one event per nonzero value; zeros send
nothing and cost nothing.

Modes.
  windowed  (``async_windowed``) End-of-window tokens: a node fires window t once every batch
            of window t has been served on all its cores (empty batches are the tokens), so it
            sees its whole input: results equal the sync engine bit for bit (without drops).
  free      (``async_free``) Free-running: each core integrates events one by one in the
            order it serves them (event lists, one event per spike; graded changes sent once
            per address and slice) and a neuron fires the moment it crosses threshold, at most
            once per time step (IF / LIF) or D times (SFA); leak and bias are applied at each
            time step's first event. Operations that need a complete operand (spike products,
            token means, max pooling, the readout) are realised per ``realisation``: ``token``
            (a local end-of-window handshake: exact) or ``timeout`` (fire after ``settle_ns``
            without input; later events are late, counted, and lost for the window). SimPy
            advances in slices of ``slice_ns`` (default ten per-layer event latencies; one
            latency or less makes the FIFO order exact too).

Accounting. As the sync engine, except neuron state is touched only by events: with
``membrane_rmw_per_synop`` each synaptic op reads and writes its target membrane; a neuron's
update (fire check, lazy leak) counts once per window in which it received input. Graded
inputs cost MACs only for nonzero (quantized) values, and graded messages only for nonzero
values. Static (resting) energy follows from the elapsed time.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from chips.engines.async_links import Network
from chips.engines.base import Engine, SampleRun, Tally
from chips.engines.executors import CAT, ConvExec, LinearExec, NeuronExec, part_sums
from chips.engines.kernels import windowed as KW

OVERFLOW = ("stall", "drop")
SLICE_LATENCIES = 10          # default free-running slice, in per-layer event latencies
ASYNC_MODES = ("windowed", "free")
WINDOWED_SCHEDULES = ("batched", "simpy")
REALISATIONS = ("token", "timeout")
INPUT_ORDERS = ("raster", "saliency")
_ONE = np.ones(1)


def _duration(name: str, v) -> float:
    if v is None or isinstance(v, bool) or not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite latency >= 0, got {v}")
    return float(v)


class AsyncEngine(Engine):
    """Event-driven execution on SimPy (module doc)."""

    def __init__(self, graph, chip, mapping, *, async_mode: str = "windowed",
                 fifo_depth: int | None = None, synop_service_ns: float | None = None,
                 overflow: str = "stall", input_window_s: float | None = None,
                 link_events_per_s: float | None = None, settle_ns: float | None = None,
                 realisation: str | None = None, input_order: str = "raster",
                 slice_ns: float | None = None, trace_fifo: bool = False,
                 windowed_schedule: str = "batched", **kw):
        super().__init__(graph, chip, mapping, **kw)
        t = chip.timing
        if async_mode not in ASYNC_MODES:
            raise ValueError(f"async_mode must be 'windowed' or 'free', got {async_mode!r}")
        if windowed_schedule not in WINDOWED_SCHEDULES:
            raise ValueError(f"windowed_schedule must be one of {WINDOWED_SCHEDULES}, "
                             f"got {windowed_schedule!r}")
        self.windowed_schedule = windowed_schedule
        self._wplan = None            # async_windowed_batch.WindowedPlan, built at first use
        self._nonzeros = (None, None)  # channel_nonzeros: (last array, its counts)
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
        realisation = realisation or t.free_realisation or "token"
        if realisation not in REALISATIONS:
            raise ValueError(f"realisation must be one of {REALISATIONS}, got {realisation!r}")
        if input_order not in INPUT_ORDERS:
            raise ValueError(f"input_order must be one of {INPUT_ORDERS}, got {input_order!r}")
        depth = t.fifo_depth if fifo_depth is None else fifo_depth
        if isinstance(depth, bool) or int(depth) != depth or depth < 1:
            raise ValueError(f"fifo_depth must be an integer >= 1 event, got {depth}")
        rate = chip.mesh.link_events_per_s if link_events_per_s is None else link_events_per_s
        if rate is None or isinstance(rate, bool) or not np.isfinite(rate) or rate <= 0:
            raise ValueError(f"link_events_per_s must be a finite rate > 0 events/s, got {rate}")
        service = _duration("synop_service_ns",
                            t.synop_service_ns if synop_service_ns is None else synop_service_ns)
        settle = _duration("settle_ns", t.settle_ns if settle_ns is None else settle_ns)
        for name, v in (("event_latency_ns", t.event_latency_ns),
                        ("burst_isi_ns", t.burst_isi_ns), ("hop_latency_ns", chip.mesh.hop_latency_ns)):
            _duration(name, v)
        if input_window_s is not None:
            _duration("input_window_s", input_window_s)
        self.async_mode, self.mode = async_mode, f"async-{async_mode}"
        self.depth, self.overflow, self.realisation = int(depth), overflow, realisation
        self.link_events_per_s, self.settle_s = float(rate), settle * 1e-9
        self.input_order = input_order
        self.service_s = service * 1e-9
        # free-running slices (async_free): SLICE_LATENCIES per-layer event latencies
        default = SLICE_LATENCIES * t.event_latency_ns if t.event_latency_ns > 0 else 1.0
        self.slice_s = _duration("slice_ns", default if slice_ns is None else slice_ns) * 1e-9
        if self.slice_s <= 0:
            raise ValueError(f"slice_ns must be a time > 0 ns, got {slice_ns}")
        self.isi_s = t.burst_isi_ns * 1e-9
        self.input_window_s = input_window_s
        self.net = Network(chip, depth=self.depth, drop=overflow == "drop",
                           link_events_per_s=self.link_events_per_s,
                           hop_s=chip.mesh.hop_latency_ns * 1e-9,
                           event_s=t.event_latency_ns * 1e-9, service_s=self.service_s,
                           trace_events=trace_fifo)
        if async_mode == "free":
            for n in self.order:
                op = graph.op(n)
                if isinstance(op, G.Neurons) and op.model == "mt":
                    raise ValueError(f"free-running mode does not support the multi-threshold "
                                     f"neurons of {n!r}; use async_mode='windowed'")
        self._build_routes()

    # -------------------------------------------------------------------------- routes
    def _build_routes(self) -> None:
        """Who sends what to which core: consumers of each node, internal (same layer) edges,
        destination cores of every (source part, consumer) with the source channels each one
        needs, and the synaptic ops an event of each source channel triggers there."""
        m, graph = self.mapping, self.graph
        self.internal = {(u, v): m.layer_of.get(u) is not None and m.layer_of.get(u) ==
                         m.layer_of.get(v) for v in self.order for u in self.inputs_of[v]}
        self.consumers = {n: [] for n in self.order}
        for v in self.order:
            for u in self.inputs_of[v]:
                self.consumers[u].append(v)
        self.src_parts = {u: ([(-1, 0, graph.op(u).shape[0])] if u == self.inp else
                              [tuple(p) for p in self.parts[u]]) for u in self.order}
        self.core_part = {n: {c: [i for i, p in enumerate(self.parts[n]) if p[0] == c]
                              for c in dict.fromkeys(self.part_cores[n].tolist())}
                          for n in self.parts}
        # parts grouped by core (core_part order): (order of the parts, first of each core),
        # (None, None) when every core holds one part, in order
        self.core_runs = {}
        for n, cp in self.core_part.items():
            perm = [i for idx in cp.values() for i in idx]
            one = perm == list(range(len(perm))) and len(cp) == len(perm)
            self.core_runs[n] = (None, None) if one else (
                np.array(perm, np.int64),
                np.cumsum([0] + [len(idx) for idx in cp.values()])[:-1].astype(np.int64))
        self.dest: dict = {}          # (u, i, v) -> [(core, need mask [C_u] uint8)]
        self.fans: dict = {}          # (v, port, core) -> (fan_pos, fan_ch)
        for v in self.order:
            for port, u in enumerate(self.inputs_of[v]):
                if self.internal[(u, v)]:
                    continue
                lo, hi = m._dependents(u, v)
                for core, idx in self.core_part[v].items():
                    need = np.zeros(len(lo), np.uint8)
                    for j in idx:
                        _, c0, c1 = self.parts[v][j]
                        need |= ((lo < c1) & (hi > c0)).astype(np.uint8)
                    self.fans[(v, port, core)] = self._fan(v, core, len(lo))
                    for i, (_, a, b) in enumerate(self.src_parts[u]):
                        if need[a:b].any():
                            self.dest.setdefault((u, i, v), []).append((core, need))

    def _fan(self, v: str, core: int, C: int) -> tuple[np.ndarray, np.ndarray]:
        """Synaptic ops on ``core`` of one event at (position p, channel c) of an input of
        ``v``: ``fan_pos[p] * fan_ch[c]`` (one entry in ``fan_pos``: any position)."""
        e, idx = self.execs[v], self.core_part[v][core]
        if isinstance(e, ConvExec):
            return e.taps.astype(np.float64), e.overlap[:, idx].sum(axis=1)
        if isinstance(e, LinearExec):
            return np.ones(1), np.full(C, float(e.widths[idx].sum()))
        return np.ones(1), np.ones(C)

    def ssc_fan(self, v: str, x: np.ndarray, c0: int, c1: int) -> np.ndarray | None:
        """SSC conv ``v``: per input position, the active sites an event there reaches (the
        box sum of the batch's active mask), replacing the static taps; None otherwise."""
        nb = self.ssc_fan_batch(v, x[None], c0, c1)
        return None if nb is None else nb[0]

    def ssc_fan_batch(self, v: str, x: np.ndarray, c0: int, c1: int) -> np.ndarray | None:
        """:meth:`ssc_fan` of B inputs ``x`` [B, H, W, C]: [B, H * W] or None."""
        op = self.graph.op(v)
        if not (isinstance(op, G.Conv) and op.ssc):
            return None
        act = (x[..., c0:c1] != 0).any(axis=-1).astype(np.float64)
        k, p = op.kernel, op.padding
        nb = sliding_window_view(np.pad(act, ((0, 0), (p, p), (p, p))), (k, k),
                                 axis=(1, 2)).sum(axis=(3, 4))
        return np.ascontiguousarray(nb.reshape(x.shape[0], -1))

    # -------------------------------------------------------------------------- accounting
    # One input is a batch of one (``[None]``): the SimPy path and the batched path
    # (``async_windowed_batch``) share these functions.
    def touched(self, v: str, ins: list[np.ndarray], prev_in: np.ndarray | None) -> np.ndarray:
        """Neurons of population ``v`` that received input this window, per part (x D for
        SFA); ``prev_in``: the spike input of ``v``'s projection, when it has one."""
        return self.touched_batch(v, [a[None] for a in ins],
                                  None if prev_in is None else prev_in[None])[0]

    def touched_batch(self, v: str, ins: list, prev_in: np.ndarray | None) -> np.ndarray:
        """:meth:`touched` of B inputs (``ins`` and ``prev_in`` [B, ...]): [B, parts]."""
        op = self.graph.op(v)
        (u,) = self.inputs_of[v]
        uop = self.graph.op(u)
        B = ins[0].shape[0]
        D = op.D if op.model == "sfa" else 1
        starts = self.execs[v].starts
        if isinstance(uop, G.Linear) and prev_in is not None:
            hit = prev_in.reshape(B, -1).any(axis=1).astype(np.int64)
            per_c = np.repeat(hit[:, None] * (op.size // op.channels), op.channels, axis=1)
        elif isinstance(uop, G.Conv) and prev_in is not None:   # sites a window of spikes hits
            out = np.empty((B, len(starts)), np.int64)
            KW.touched_parts(np.ascontiguousarray(prev_in, np.float64), uop.groups,
                             uop.kernel, uop.stride, uop.padding, op.shape[1], op.shape[2],
                             starts, op.channels, out)
            return out * D
        else:
            per_c = self.channel_nonzeros(ins[0])
        return part_sums(per_c, starts) * D

    def graded_ops(self, v: str, x: np.ndarray) -> np.ndarray:
        """MACs per part of a graded input ``x`` of projection ``v``: nonzero quantized values
        only (an event-driven chip receives no event for a zero)."""
        return self.graded_ops_batch(v, x[None])[0]

    def graded_ops_batch(self, v: str, x: np.ndarray) -> np.ndarray:
        """:meth:`graded_ops` of B inputs ``x`` [B, ...]: [B, parts]."""
        e, op = self.execs[v], self.graph.op(v)
        B, C = x.shape[0], x.shape[-1]
        conv = isinstance(e, ConvExec)
        per_c = np.empty((B, C))                          # taps (conv) or 1 per nonzero value
        KW.quantized_nonzero_taps(np.ascontiguousarray(x, np.float64).reshape(B, -1, C),
                                  float(op.in_scale), -(2.0 ** (op.in_bits - 1)),
                                  2.0 ** (op.in_bits - 1) - 1, e.taps if conv else _ONE, per_c)
        if conv:
            return np.rint(per_c @ e.overlap).astype(np.int64)
        return np.rint(per_c.sum(axis=1)).astype(np.int64)[:, None] * e.widths

    def event_counts(self, v: str, ins, c: np.ndarray, prev_in=None) -> None:
        """Replace the sync engine's clocked accounting of one step of ``v`` by event-driven
        accounting: nonzero graded inputs only, membrane traffic per synaptic op (Speck) and
        neuron updates of the neurons that received input."""
        self.event_counts_batch(v, [a[None] for a in ins], c[None],
                                None if prev_in is None else prev_in[None])

    def event_counts_batch(self, v: str, ins, c: np.ndarray, prev_in=None) -> None:
        """:meth:`event_counts` of B inputs (``c`` [B, parts, categories])."""
        e = self.execs[v]
        if isinstance(e, (ConvExec, LinearExec)):
            if e.graded and not e.events_in:
                ops = self.graded_ops_batch(v, ins[0])
                c[..., CAT["mac"]] = ops
                c[..., CAT["weight_reads"]] = ops
            if self.chip.core.membrane_rmw_per_synop:
                syn = c[..., CAT["ac"]] + c[..., CAT["mac"]]
                c[..., CAT["membrane_reads"]] += syn
                c[..., CAT["membrane_writes"]] += syn
            return
        if not isinstance(e, NeuronExec):
            return
        touched = self.touched_batch(v, ins, prev_in)
        c[..., CAT["neuron_updates"]] = touched
        c[..., CAT["membrane_writes"]] = touched
        # with rmw the synapses already read the membrane; else the update reads it once
        c[..., CAT["membrane_reads"]] = 0 if self.chip.core.membrane_rmw_per_synop else touched

    def route_counts_batch(self, u: str, val: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """As ``Engine.route_counts_batch``, but a graded source sends only its nonzero
        values."""
        if self.sends[u] == "spike" or u not in self.routes:
            return super().route_counts_batch(u, val, counts)
        B = val.shape[0]
        per_c = self.channel_nonzeros(val)
        starts, longest = self.execs[u].starts, np.zeros(B, np.int64)
        for r in self.routes[u]:
            msgs, hops, far = r[0], r[1], r[-1]
            m = per_c * msgs
            counts[..., CAT["graded_messages"]] += part_sums(m, starts)
            counts[..., CAT["graded_hops"]] += part_sums(per_c * hops, starts)
            longest = np.where(m.any(axis=1), np.maximum(longest, far), longest)
        return longest

    def channel_nonzeros(self, val: np.ndarray) -> np.ndarray:
        """Nonzero values per input and channel of ``val`` [B, ..., C] (int64 [B, C]); the
        last array asked for is remembered (a graded output is counted for its routes, then
        again as its consumer neurons' input)."""
        if self._nonzeros[0] is not val:
            B, C = val.shape[0], val.shape[-1]
            out = np.empty((B, C), np.int64)
            KW.channel_nonzeros(np.ascontiguousarray(val, np.float64).reshape(B, -1, C), out)
            self._nonzeros = (val, out)
        return self._nonzeros[1]

    def fire_seconds(self, v: str, c: np.ndarray) -> dict[int, float]:
        """Core time of a node's own work in one step (neuron updates, other adds), per core."""
        return dict(zip(self.core_part[v], self.fire_seconds_batch(v, c[None])[0].tolist()))

    def fire_seconds_batch(self, v: str, c: np.ndarray) -> np.ndarray:
        """:meth:`fire_seconds` of B inputs (``c`` [B, parts, categories]): [B, cores] in
        ``core_part[v]`` order."""
        w = c[..., CAT["aux_ops"]] + c[..., CAT["neuron_updates"]]
        perm, starts = self.core_runs[v]
        if perm is not None:
            w = np.add.reduceat(w[:, perm], starts, axis=1)
        return w.astype(np.float64) * self.service_s

    # -------------------------------------------------------------------------- run
    def input_window(self) -> float:
        """Seconds per input window: as given, else 1 ms for event input, 0 for static."""
        if self.input_window_s is not None:
            return self.input_window_s
        return 1e-3 if self.graph.op(self.inp).kind == "spike" else 0.0

    def run_batch(self, x: np.ndarray, b0: int, tally: Tally) -> list[SampleRun]:
        """Windowed mode: the batch at once (``async_windowed_batch``) unless
        ``windowed_schedule="simpy"``; on SimPy one input at a time (``run_one``) otherwise,
        and for a batch the batched path hands back (drops: ``WindowedBatch.reason``)."""
        if self.async_mode != "windowed" or self.windowed_schedule == "simpy":
            return self._simpy_batch(x, b0, tally, None)
        from chips.engines.async_windowed_batch import WindowedBatch
        if not self.net.drop:
            runs = WindowedBatch(self, x, b0, tally).run()
        else:                         # counts go to a scratch tally until no input dropped
            T, B = x.shape[:2]
            scratch = Tally(self, T, B)
            wb = WindowedBatch(self, x, b0, scratch, row0=0)
            runs = wb.run()
            if runs is None:
                self._reset()
                return self._simpy_batch(x, b0, tally, wb.reason)
            _merge_tally(tally, scratch, b0)
        for r in runs:
            r.stats["schedule"] = "batched"
        return runs

    def _simpy_batch(self, x, b0: int, tally: Tally, reason: str | None) -> list[SampleRun]:
        runs = super().run_batch(x, b0, tally)
        for r in runs:
            r.stats["schedule"] = "simpy"
            r.stats["simpy_reason"] = reason
        return runs

    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        if self.async_mode == "windowed":
            from chips.engines.async_windowed import WindowedSim
            sim = WindowedSim(self, x, b, tally)
        else:
            from chips.engines.async_free import FreeSim
            sim = FreeSim(self, x, b, tally)
        sim.run()
        return sim.outcome()

    def merge_stats(self, per_sample: list[dict]) -> dict:
        def total(k):
            return sum(s.get(k, 0) for s in per_sample)
        out = {"fifo_depth": self.depth, "overflow": self.overflow,
               "async_mode": self.async_mode, "link_events_per_s": self.link_events_per_s,
               "stalls": total("stalls"), "stall_s": total("stall_s"), "drops": total("drops"),
               "drops_at_links": total("drops_at_links"),
               "events_in": total("events_in"), "events_served": total("events_served"),
               "events_dropped": total("drops"), "events_in_flight": total("events_in_flight"),
               "max_fifo_occupancy": max((s["max_fifo"] for s in per_sample), default=0),
               "batches": total("batches"),
               "fifo_occupancy": per_sample[0]["fifo"] if per_sample else None,
               "input_window_s": self.input_window()}
        if self.async_mode == "free":
            out.update(realisation=self.realisation, settle_s=self.settle_s,
                       late_events=total("late_events"), timeouts=total("timeouts"))
        else:                         # which path produced each input's results, and why
            paths = [s.get("schedule") for s in per_sample]
            out["windowed_schedule"] = {p: paths.count(p) for p in WINDOWED_SCHEDULES}
            out["simpy_reason"] = next((s["simpy_reason"] for s in per_sample
                                        if s.get("simpy_reason")), None)
        return out

    def sample_stats(self) -> dict:
        """The network's counters of the sample just run."""
        n = self.net
        return {"stalls": n.stalls, "stall_s": n.stall_s, "drops": n.dropped,
                "drops_at_links": n.dropped_link, "events_in": n.sent,
                "events_served": n.served, "events_in_flight": n.queued - n.served,
                "max_fifo": int(n.max_occ.max()) if len(n.max_occ) else 0,
                "fifo": n.fifo_trace()}

    def timeline(self) -> dict:
        n = self.net
        return {"items": n.items,
                "core_busy_s": {int(c): float(s) for c, s in enumerate(n.busy_s) if s}}


def _merge_tally(tally: Tally, part: Tally, b0: int) -> None:
    """Add ``part`` (a batch counted on its own, rows from 0) into ``tally`` at row ``b0``."""
    for n, v in part.node_counts.items():
        tally.node_counts[n] += v
    tally.core_counts += part.core_counts
    for n, v in part.spike_counts.items():
        tally.spike_counts[n][b0:b0 + len(v)] += v
    for n, v in part.spikes.items():
        tally.spikes[n][:, b0:b0 + v.shape[1]] += v


__all__ = ["AsyncEngine", "ASYNC_MODES", "INPUT_ORDERS", "OVERFLOW", "REALISATIONS",
           "WINDOWED_SCHEDULES"]
