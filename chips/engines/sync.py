"""Synchronous engine: a Tianjic-style chip with a global clock.

Execution. Each time step, every node runs in topological order (the Graph's semantics), one
input at a time with state reset between inputs. Spikes travel between populations on a tick
boundary, so a population ``s`` spike hops from the input sits in pipeline stage ``s`` and
processes time step t at tick t + s (``Graph.pipeline_stages``; a node holds its earlier inputs
until the latest arrives, so residual paths wait for the long branch).
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

import numpy as np

from neurosim.ir import graph as G
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
        self.cyc = np.zeros(len(CATEGORIES))
        self.cyc[CAT["ac"]] = t.cycles_per_ac
        self.cyc[CAT["aux_ops"]] = t.cycles_per_ac
        self.cyc[CAT["mac"]] = t.cycles_per_mac
        self.cyc[CAT["neuron_updates"]] = t.cycles_per_neuron_update
        self.stage = self.graph.pipeline_stages()
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

    def run_one(self, x: np.ndarray, b: int, tally: Tally) -> SampleRun:
        T = x.shape[0]
        n_ticks = (T + self.n_stages - 1) * self.D
        busy = np.zeros((n_ticks, self.n_cores))
        max_hops = np.zeros(n_ticks, np.int64)
        for t in range(T):
            vals = {self.inp: x[t]}
            for n in self.order[1:]:
                ins = [vals[u] for u in self.inputs_of[n]]
                c = self.new_counts(n)
                vals[n] = out = self.execs[n].step(ins, c)
                g0 = (t + self.stage[n]) * self.D
                far = self.route_counts(n, out, c)
                max_hops[g0:g0 + self.D] = np.maximum(max_hops[g0:g0 + self.D], far)
                tally.account(n, c)
                rows = self._timing_rows(n, ins, c)
                for d in range(self.D):
                    np.add.at(busy[g0 + d], self.part_cores[n], rows[d])
                tally.output(n, t, b, out)
        tm = self.chip.timing
        hop_cyc = self.chip.mesh.hop_cycles or 0.0
        tick_cyc = np.maximum(tm.tick_cycles or 0.0, busy.max(axis=1) +
                              (tm.comm_phase_cycles or 0.0) + hop_cyc * max_hops)
        tick_s = tick_cyc / tm.clock_hz
        start = self._tick_starts(tick_s, T)
        timeline = None
        if b == 0:
            timeline = {"tick_s": tick_s.tolist(), "tick_start_s": start.tolist(),
                        "core_busy_cycles": {int(k): busy[:, k].tolist()
                                             for k in range(self.n_cores) if busy[:, k].any()},
                        "stages": self.n_stages, "ticks_per_step": self.D}
        return SampleRun(logits=self.execs[self.out].acc / T, latency_s=start[-1] + tick_s[-1],
                         ticks=n_ticks, timeline=timeline, stats={"ticks": n_ticks})

    def merge_stats(self, per_sample: list[dict]) -> dict:
        return {"dense_steps": {n: e.dense_steps for n, e in self.execs.items() if e.dense_steps},
                "ticks_per_inference": per_sample[0]["ticks"] if per_sample else 0,
                "clock_hz": self.chip.timing.clock_hz, "input_window_s": self.input_window_s}
