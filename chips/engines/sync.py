"""Synchronous engine: a Tianjic-style chip with a global clock.

Execution. Each time step, every node runs in topological order (the Graph's semantics), for a
batch of inputs at once (``batch_size``; state per input, reset between batches; each input's
results, counts and timing are those of running it alone). Spikes travel between populations
on a tick boundary, so a population ``s`` spike hops from the input sits in pipeline stage
``s`` and processes time step t at tick t + s (``Graph.pipeline_stages``; a node holds its
earlier inputs until the latest arrives, so residual paths wait for the long branch).
An SFA time step is D ticks: spike d of a burst is emitted at sub-tick d, and a layer fires its
own burst only after its input burst is complete (integer-exact, seed sdt-v3 §6.1).

Timing. A core's work in a tick has two phases: the synapse phase (ACs x ``cycles_per_ac``
+ MACs x ``cycles_per_mac`` + other adds x ``cycles_per_ac`` + packets received x
``cycles_per_message_in``) and the neuron phase (neuron updates x ``cycles_per_neuron_update``
+ spikes x ``cycles_per_spike`` + packets sent x ``cycles_per_message_out`` + mapped neurons x
``cycles_per_neuron_access``; the optional per-event cycles default to 0). A tick lasts
max(``tick_cycles``, busiest core's work + ``comm_phase_cycles`` + the barrier + ``hop_cycles``
x the longest route used in the tick), where a core's work is the sum of its two phases, or,
with ``overlap_phases`` (Loihi as SANA-FE times it: a core serves incoming packets while its
neurons update), the longer of the busiest synapse phase and the busiest neuron phase over all
cores. With ``soma_next_tick`` (Loihi: spikes collect in dendritic accumulators during a time
step and the neurons integrate them in the next) a population's neuron phase (updates, spikes,
packets sent) is timed one tick after its synapse phase; counts and results do not change, and
a pipeline stage always ends before the run's last tick, so the run keeps its length. With
``overlap_phases`` the timeline keeps both phases per core (``core_phase_cycles``). The barrier
is ``barrier_cycles`` for the tiles in use (the entry of the largest
``barrier_tiles`` not above them; none when not given). Every neuron of a population is updated
every tick of its time steps (leak), whether or not it received input; every mapped neuron is
visited every tick of the run (``neuron_accesses``: fill and drain ticks included). Latency =
sum of tick durations / ``clock_hz``.

Real-time input. With ``input_window_s`` (event streams: the duration of one time bin), the
frame of time step t is complete only at (t + 1) x ``input_window_s``: a tick that first needs it waits
until then, the chip idling (static power only) in between. Latency then runs from the first
input event to the decision.
"""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G
from chips import topology
from chips.engines.base import Engine, SampleRun, Tally
from chips.engines.executors import CAT, CATEGORIES, ConvExec, LinearExec


class SyncEngine(Engine):
    """Global-clock execution with pipelined time steps (module doc)."""

    mode = "sync"

    def __init__(self, graph, chip, mapping, *, input_window_s: float | None = None, **kw):
        super().__init__(graph, chip, mapping, **kw)
        if input_window_s is not None and (not np.isfinite(input_window_s) or input_window_s < 0):
            raise ValueError(f"input_window_s must be a finite duration >= 0, got {input_window_s}")
        self.input_window_s = input_window_s or 0.0
        t = chip.timing
        self.cyc_syn = np.zeros(len(CATEGORIES))          # synapse phase, cycles per count
        self.cyc_syn[CAT["ac"]] = t.cycles_per_ac
        self.cyc_syn[CAT["aux_ops"]] = t.cycles_per_ac
        self.cyc_syn[CAT["mac"]] = t.cycles_per_mac
        self.cyc_syn[CAT["noc_messages_in"]] = t.cycles_per_message_in or 0.0
        self.cyc_neu = np.zeros(len(CATEGORIES))          # neuron phase
        self.cyc_neu[CAT["neuron_updates"]] = t.cycles_per_neuron_update
        self.cyc_neu[CAT["spikes"]] = t.cycles_per_spike or 0.0
        self.cyc_neu[CAT["noc_messages"]] = t.cycles_per_message_out or 0.0
        self.access_cyc = t.cycles_per_neuron_access or 0.0
        lag = 1 if t.soma_next_tick else 0               # neuron phase one tick after synapses
        self.neu_lag = {n: lag if n in self.pops else 0 for n in self.order}
        self.barrier_cyc = barrier_cycles(chip, mapping)
        self.stage = self.graph.pipeline_stages()
        self.n_stages = max(self.stage.values()) + 1
        self.burst_fed = {n: any(isinstance(self.graph.op(u), G.Neurons) and
                                 self.graph.op(u).model == "sfa" for u in self.inputs_of[n])
                          for n in self.execs}
        # busy cycles are kept only for the cores in use (compact index), per input
        used = np.unique(np.concatenate([self.part_cores[n] for n in self.execs]))
        self.used_cores = used
        self.core_slot = {n: np.searchsorted(used, self.part_cores[n]) for n in self.execs}
        self.slots_unique = {n: len(np.unique(v)) == len(v) for n, v in self.core_slot.items()}
        pos = {n: i for i, n in enumerate(self.order)}
        last = {u: max(pos[v] for v in self.graph.consumers(u)) for u in self.order
                if self.graph.consumers(u)}
        self.free_after = {n: [u for u in self.inputs_of[n] if last[u] == pos[n]]
                           for n in self.order}

    def _timing_rows(self, n: str, ins, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Synapse-phase and neuron-phase cycles per (input, sub-tick, core part), each
        [B, D, parts], of one node's step of B inputs (``c`` [B, parts, categories])."""
        D = self.D
        syn, neu = c @ self.cyc_syn, c @ self.cyc_neu          # [B, parts]
        if D == 1:
            return syn[:, None, :], neu[:, None, :]
        e = self.execs[n]
        rows = np.repeat(syn[:, None, :] / D, D, axis=1)
        if self.burst_fed[n] and isinstance(e, (ConvExec, LinearExec)) and not e.graded:
            ops = e.subtick_ops(ins[0], D)                     # [B, D, parts]
            rest = syn - c[..., CAT["ac"]] * self.cyc_syn[CAT["ac"]]
            rows = ops * self.cyc_syn[CAT["ac"]] + rest[:, None, :] / D
        return rows, np.repeat(neu[:, None, :] / D, D, axis=1)

    def _add_busy(self, busy: np.ndarray, n: str, rows: np.ndarray) -> None:
        """Add ``rows`` [B, parts] to the busy cycles ``busy`` [B, used cores] of n's cores."""
        slot = self.core_slot[n]
        if self.slots_unique[n]:
            busy[:, slot] += rows
        else:
            np.add.at(busy, (slice(None), slot), rows)

    def _accesses(self, n_ticks: int, tally: Tally, busy_neu: np.ndarray) -> None:
        """Every mapped neuron is visited in every tick of each sample (``neuron_accesses``),
        its cycles added to every tick's neuron phase (``busy_neu`` [B, ticks, used cores])."""
        B = busy_neu.shape[0]
        for n in self.pops:
            sizes = self.execs[n].per_part_sizes()
            c = self.new_counts_batch(n, B)
            c[..., CAT["neuron_accesses"]] = sizes * n_ticks
            tally.account_batch(n, c)
            if self.access_cyc:
                np.add.at(busy_neu, (slice(None), slice(None), self.core_slot[n]),
                          sizes * self.access_cyc)

    def _tick_cycles(self, busy_syn: np.ndarray, busy_neu: np.ndarray,
                     max_hops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cycles of every tick and each core's busy cycles per tick ([..., ticks] and
        [..., ticks, cores]; a leading input axis passes through)."""
        tm = self.chip.timing
        if tm.overlap_phases:
            busy = np.maximum(busy_syn, busy_neu)
            work = np.maximum(busy_syn.max(axis=-1), busy_neu.max(axis=-1))
        else:
            busy = busy_syn + busy_neu
            work = busy.max(axis=-1)
        hop_cyc = self.chip.mesh.hop_cycles or 0.0
        tick = np.maximum(tm.tick_cycles or 0.0, work + (tm.comm_phase_cycles or 0.0)
                          + self.barrier_cyc + hop_cyc * max_hops)
        return tick, busy

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

    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        return self.run_batch(x[:, None], b, tally)[0]

    def run_batch(self, x: np.ndarray, b0: int, tally: Tally) -> list[SampleRun]:
        """Samples b0 .. b0 + B - 1 (``x`` [T, B, ...]): every node runs its step for the B
        inputs together; counts, spikes, busy cycles and ticks stay per input."""
        T, B = x.shape[:2]
        n_ticks = (T + self.n_stages - 1) * self.D
        busy_syn = np.zeros((B, n_ticks, len(self.used_cores)))
        busy_neu = np.zeros((B, n_ticks, len(self.used_cores)))
        max_hops = np.zeros((B, n_ticks), np.int64)
        for t in range(T):
            vals = {self.inp: x[t]}
            for n in self.order[1:]:
                ins = [vals[u] for u in self.inputs_of[n]]
                c = self.new_counts_batch(n, B)
                vals[n] = out = self.execs[n].step_batch(ins, c)
                self.arrival_counts_batch(n, ins, c)
                g0 = (t + self.stage[n]) * self.D
                far = self.route_counts_batch(n, out, c)
                hops = max_hops[:, g0:g0 + self.D]
                np.maximum(hops, far[:, None], out=hops)
                tally.account_batch(n, c)
                syn, neu = self._timing_rows(n, ins, c)
                gn = g0 + self.neu_lag[n]
                for d in range(self.D):
                    self._add_busy(busy_syn[:, g0 + d], n, syn[:, d])
                    self._add_busy(busy_neu[:, gn + d], n, neu[:, d])
                tally.output_batch(n, t, b0, out)
                for u in self.free_after[n]:
                    del vals[u]
        self._accesses(n_ticks, tally, busy_neu)
        tick_cyc, busy = self._tick_cycles(busy_syn, busy_neu, max_hops)
        tick_s = tick_cyc / self.chip.timing.clock_hz                  # [B, ticks]
        logits = self.execs[self.out].acc / T
        out = []
        for b in range(B):
            start = self._tick_starts(tick_s[b], T)
            timeline = None
            if b0 + b == 0:
                timeline = {"tick_s": tick_s[b].tolist(), "tick_start_s": start.tolist(),
                            "core_busy_cycles": {int(k): busy[b, :, i].tolist()
                                                 for i, k in enumerate(self.used_cores)
                                                 if busy[b, :, i].any()},
                            "stages": self.n_stages, "ticks_per_step": self.D}
                if self.chip.timing.overlap_phases:     # the phases do not add up: keep both
                    timeline["core_phase_cycles"] = {
                        int(k): {"synapse": busy_syn[b, :, i].tolist(),
                                 "neuron": busy_neu[b, :, i].tolist()}
                        for i, k in enumerate(self.used_cores) if busy[b, :, i].any()}
            out.append(SampleRun(logits=logits[b], latency_s=start[-1] + tick_s[b, -1],
                                 ticks=n_ticks, timeline=timeline, stats={"ticks": n_ticks}))
        return out

    def merge_stats(self, per_sample: list[dict]) -> dict:
        return {"dense_steps": {n: e.dense_steps for n, e in self.execs.items() if e.dense_steps},
                "scatter_steps": {n: e.scatter_steps for n, e in self.execs.items()
                                  if e.scatter_steps},
                "path_model": self.path_model.source if self.path_model else None,
                "ticks_per_inference": per_sample[0]["ticks"] if per_sample else 0,
                "clock_hz": self.chip.timing.clock_hz, "input_window_s": self.input_window_s,
                "barrier_cycles": self.barrier_cyc}


def tiles_in_use(chip, mapping) -> int:
    """Tiles (routers) holding at least one mapped part."""
    return len({topology.tile(chip, c) for c in mapping.cores if c >= 0})


def barrier_cycles(chip, mapping) -> float:
    """End-of-tick barrier for ``mapping``: ``timing.barrier_cycles`` at the largest
    ``barrier_tiles`` entry not above the tiles in use (the first entry below them, as in
    SANA-FE's lookup table); 0 when the chip gives none."""
    tm = chip.timing
    if not tm.barrier_tiles:
        return 0.0
    n = tiles_in_use(chip, mapping)
    i = max([k for k, t in enumerate(tm.barrier_tiles) if t <= n], default=0)
    return float(tm.barrier_cycles[i])
