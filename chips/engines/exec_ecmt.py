"""Executors of the ECMT nodes (seed ecmt; ``neurosim.ir.ops`` MTSpikes, MatMulEC,
ExpectationEC, AddConst), batched, channels-last like every executor. The numerics are the
Graph's (``neurosim.ir.semantics``: ``mt_spikes_step``, ``matmul_ec_step``, ``ec_step``), run on
channels-first views; state (membranes, EC sums) is per input and cleared by ``reset``.

Counts, in the existing categories (``neurosim.ir.counts``), per step of one input:

* MTSpikes: ``neuron_updates``, ``membrane_reads``, ``membrane_writes`` one per MT neuron (C_in
  x H x W; 2n output channels share one neuron), ``spikes`` the spikes fired.
* MatMulEC: ``aux_ops`` the accumulator adds of eq. 18 (non-zero operand pairs of the three
  products), ``membrane_reads`` and ``membrane_writes`` one per accumulator word updated (S_A,
  S_B and S_K), ``graded_values`` its outputs.
* ExpectationEC: ``mac`` one per element F is evaluated on (Table 3's unit: N C for LayerNorm,
  N_h N^2 for softmax, N C_h for GELU), ``aux_ops`` one per element accumulated into S,
  ``membrane_reads`` / ``membrane_writes`` two per element (S and T F(S/T)), ``graded_values``.
* AddConst: ``aux_ops`` and ``graded_values`` one per element.

Counts of a node are split over its mapped parts in proportion to their output channels
(``split_total``), except spikes, which are summed per output channel.
"""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G
from neurosim.ir.semantics import ec_step, matmul_ec_step, mt_spikes_step
from chips.engines.exec_base import CAT, Exec, add_counts, part_sums, split_total


def _cf(x: np.ndarray) -> np.ndarray:
    """Channels-last [B, ..., C] -> channels-first [B, C, ...] (float64)."""
    return np.moveaxis(np.asarray(x, np.float64), -1, 1)


def _cl(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


class MTSpikesExec(Exec):
    def __init__(self, op, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.v = None

    def reset(self):
        self.v = None

    def step_batch(self, ins, counts):
        x = _cf(ins[0])
        B = x.shape[0]
        v = self.v if self.v is not None and self.v.shape == x.shape else np.zeros_like(x)
        lo, hi = self.op.v_range
        h = v + x
        counts[:, 0, CAT["saturations"]] += ((h < lo) | (h > hi)).reshape(B, -1).sum(axis=1)
        out, self.v, _ = mt_spikes_step(self.op, v, x)
        per_neuron = split_total(int(x[0].size), self.widths)
        for cat in ("neuron_updates", "membrane_reads", "membrane_writes"):
            add_counts(counts, cat, per_neuron)
        per_c = np.rint(out.reshape(B, out.shape[1], -1).sum(axis=2)).astype(np.int64)
        add_counts(counts, "spikes", part_sums(per_c, self.starts))
        return _cl(out)


class _StatefulExec(Exec):
    """An executor whose EC accumulators (``state``) live across the steps of one input."""

    def __init__(self, op, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.state = None

    def reset(self):
        self.state = None


class MatMulECExec(_StatefulExec):
    def step_batch(self, ins, counts):
        out, self.state, adds = matmul_ec_step(self.op, self.state, _cf(ins[0]), _cf(ins[1]))
        add_counts(counts, "aux_ops", split_total(adds, self.widths))
        words = sum(int(np.prod(s.shape[1:])) for s in (*self.state["a"], *self.state["b"]))
        words = words // 2 + int(np.prod(self.op.shape))       # S_A, S_B and S_K (real)
        for cat in ("membrane_reads", "membrane_writes"):
            add_counts(counts, cat, split_total(words, self.widths))
        self.graded_out(counts)
        return _cl(out)


class ExpectationECExec(_StatefulExec):
    def step_batch(self, ins, counts):
        out, self.state = ec_step(self.op, self.state, _cf(ins[0]))
        add_counts(counts, "mac", self.sizes)
        add_counts(counts, "aux_ops", self.sizes)
        for cat in ("membrane_reads", "membrane_writes"):
            add_counts(counts, cat, 2 * self.sizes)
        self.graded_out(counts)
        return _cl(out)


class AddConstExec(Exec):
    def __init__(self, op, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.values_cl = _cl(op.values[None])[0]

    def step_batch(self, ins, counts):
        add_counts(counts, "aux_ops", self.sizes)
        self.graded_out(counts)
        return ins[0] + self.values_cl


ECMT_EXECUTORS = {G.MTSpikes: MTSpikesExec, G.MatMulEC: MatMulECExec,
                  G.ExpectationEC: ExpectationECExec, G.AddConst: AddConstExec}
