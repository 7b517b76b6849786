"""The neuron executor, batched: IF / LIF / SFA populations through the Numba neuron kernels
(bit-identical to ``neurosim.ir.semantics.neuron_step``), multi-threshold neurons through the
reference rule. Membranes are per input ([B, n], channels-last flat) and cleared by ``reset``.
"""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G
from neurosim.ir.semantics import neuron_step
from chips.engines import kernels as K
from chips.engines.exec_base import CAT, Exec, add_counts, part_sums


class NeuronExec(Exec):
    def __init__(self, op: G.Neurons, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.lo, self.hi = op.v_range
        self.v = None
        self.fresh = True
        self.codes = K.neuron_codes(op) if op.model in ("lif", "if") else None
        self.steps_per_t = op.D if op.model == "sfa" else 1

    def reset(self):
        """Fresh membranes for the next inputs; the buffer is kept and refilled in place at the
        next step (re-touching fresh memory costs page faults on every run)."""
        self.fresh = True
        if self.op.model == "mt":
            self.v = None

    def step_batch(self, ins, counts):
        op, x = self.op, ins[0]
        B = x.shape[0]
        n_par = self.sizes * self.steps_per_t
        for cat in ("neuron_updates", "membrane_reads", "membrane_writes"):
            add_counts(counts, cat, n_par)
        if op.model == "mt":
            return self._mt(x, counts)
        xf = np.ascontiguousarray(x, np.float64).reshape(B, -1)
        out = np.empty(xf.shape, np.float64)
        sat = np.zeros(B, np.int64)
        per_c = None                                 # spikes per input and channel
        if op.model == "sfa":
            K.sfa_burst_batch(xf, out, op.v_th, op.D, self.lo, self.hi, sat)
        else:
            if self.v is None or self.v.shape != xf.shape:
                self.v = np.empty(xf.shape)
                self.fresh = True
            if self.fresh:
                self.v.reshape(B, -1, op.channels)[:] = op.v_reset
                self.fresh = False
            if len(op.v_th) == op.channels:
                per_c = np.empty((B, op.channels), np.int64)   # spikes counted in the pass
                K.lif_update_counted_batch(xf, self.v, out, op.v_th, op.v_reset, sat=sat,
                                           per_c=per_c, **self.codes)
            else:
                K.lif_update_batch(xf, self.v, out, op.v_th, op.v_reset, sat=sat, **self.codes)
        counts[:, 0, CAT["saturations"]] += sat
        out = out.reshape(x.shape)
        if per_c is None:
            per_c = np.rint(out.reshape(B, -1, op.channels).sum(axis=1)).astype(np.int64)
        add_counts(counts, "spikes", part_sums(per_c, self.starts))
        self.out_sums = (out, per_c)
        return out

    def _mt(self, x: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Multi-threshold neurons (rare): the reference rule, channels-first, per input (so
        saturations are counted per input)."""
        op = self.op
        xc = np.moveaxis(x, -1, 1)                                   # [B, C, ...]
        if self.v is None:
            self.v = np.broadcast_to(op.v_reset.reshape((1, -1) + (1,) * (xc.ndim - 2)),
                                     xc.shape).astype(np.float64)
        outs, vs = [], []
        for b in range(x.shape[0]):
            o, v, sat = neuron_step(op, self.v[b:b + 1], xc[b:b + 1])
            outs.append(o)
            vs.append(v)
            counts[b, 0, CAT["saturations"]] += sat
        self.v = np.concatenate(vs)
        self.graded_out(counts)
        return np.moveaxis(np.concatenate(outs), 1, -1)
