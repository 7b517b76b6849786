"""Per-node executors shared by the chip engines: one time step of a node for a batch of
inputs, channels-last.

Each executor is built once per (graph, mapping) and keeps per-input state (membranes, readout
accumulators). ``step_batch(ins, counts)`` takes the node's inputs for one time step of B input
samples (maps [B, H, W, C], vectors [B, C], float64) and returns its output [B, ...]; it adds
the step's operation counts into ``counts`` [B, parts, categories] (int64), per input and per
mapped part (an output-channel range on one core). ``step(ins, counts)`` does the same for one
input (no batch axis; counts [parts, categories]). A batch gives each input exactly the result
and counts of running it alone. The numerics are the Graph's (see ``neurosim.ir.graph``),
written independently of the reference interpreter and checked against it bit for bit.

Modules: ``exec_base`` (``Exec``, categories, part sums), ``exec_synaptic`` (conv, linear and
spike products, each step on the scatter or the dense path: ``chips.engines.paths``),
``exec_neurons`` (populations); the elementwise executors and the output pool of Speck-style
cores (``OutputPoolExec``) live here with the registry.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.counts import CATEGORIES, pool_ops
from chips.engines import kernels as K
from chips.engines.exec_base import CAT, Exec, add_counts, part_sums, split_total
from chips.engines.exec_ecmt import ECMT_EXECUTORS
from chips.engines.exec_neurons import NeuronExec
from chips.engines.exec_synaptic import (ConvExec, LinearExec, MatmulExec, SynapticExec,
                                         check_exact)
from chips.engines.paths import PATHS, PathModel, load_path_model


class PoolExec(Exec):
    def step_batch(self, ins, counts):
        op = self.op
        p, k, s = op.padding, op.kernel, op.stride
        xp = np.pad(ins[0], ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-np.inf)
        out = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(-1, -2))
        add_counts(counts, "aux_ops", split_total(pool_ops(op), self.widths))
        if self.kinds[0] == "graded":
            self.graded_out(counts)
        return out


class OutputPoolExec(ConvExec):
    """A sum pool that the producing core applies to its own output spikes before sending
    (``chips.mapping.layers.is_output_pool``, folded into its producer's layer: Speck's
    DYNAP-CNN output pooling). The pooled counts are the Conv's result exactly (all-ones
    kernel = stride, unit scale, no bias); the pooling is address arithmetic (a spike at
    (c, y, x) leaves as one at (c, y // k, x // k)): no synaptic op, weight read or graded
    value is counted here, and the engines route its output as spike events
    (``Engine.sends``). A ``ConvExec`` still: code that inspects the Conv's executor
    (weights, taps, ``graded``) keeps working."""

    def step_batch(self, ins, counts):
        x, k = ins[0], self.op.kernel
        B, C = x.shape[0], x.shape[-1]
        Ho, Wo = self.op.shape[1:]
        check_exact(self.op, 1, int(x.max()) if x.size else 0, k * k)
        out = x[:, :Ho * k, :Wo * k].reshape(B, Ho, k, Wo, k, C).sum(axis=(2, 4))
        self.out_sums = (out, np.rint(out.reshape(B, -1, C).sum(axis=1)).astype(np.int64))
        return out

    def subtick_ops(self, q: np.ndarray, D: int) -> np.ndarray:
        """No synaptic ops in any sub-tick."""
        return np.zeros((q.shape[0], D, len(self.parts)) if q.ndim == 4
                        else (D, len(self.parts)), np.int64)


class TokenSumExec(Exec):
    def step_batch(self, ins, counts):
        prod = ins[0] if len(ins) == 1 else ins[0] * ins[1]
        out = prod.sum(axis=(1, 2), keepdims=True) * self.op.scale
        ops = np.rint(prod.reshape(prod.shape[0], -1).sum(axis=1)).astype(np.int64)
        add_counts(counts, "aux_ops", split_total(ops, self.widths))
        self.graded_out(counts)
        return out


class MaskExec(Exec):
    def step_batch(self, ins, counts):
        out = ins[0] * ins[1]
        add_counts(counts, "aux_ops", self.sizes)
        if "graded" in self.kinds:
            self.graded_out(counts)
        return out


class TokenMeanExec(Exec):
    def step_batch(self, ins, counts):
        op, x = self.op, ins[0]
        B = x.shape[0]
        if self.kinds[0] == "graded":
            q = np.empty(x.shape, np.float64)
            sat, nnz, mx = (np.zeros(B, np.int64) for _ in range(3))
            lo, hi = -(2.0 ** (op.in_bits - 1)), 2.0 ** (op.in_bits - 1) - 1
            K.quantize_batch(np.ascontiguousarray(x, np.float64).reshape(B, -1),
                             float(op.in_scale), lo, hi, q.reshape(B, -1), sat, nnz, mx)
            counts[:, 0, CAT["saturations"]] += sat
            x = q
            n_adds = np.full(B, x[0].size, np.int64)
        else:
            n_adds = np.rint(x.reshape(B, -1).sum(axis=1)).astype(np.int64)
        N = x.shape[1] * x.shape[2]
        out = x.sum(axis=(1, 2)) * op.in_scale / N
        add_counts(counts, "aux_ops", split_total(n_adds, self.widths))
        self.graded_out(counts)
        return out


class AddExec(Exec):
    def step_batch(self, ins, counts):
        out = ins[0]
        for x in ins[1:]:
            out = out + x
        add_counts(counts, "aux_ops", self.sizes * (len(ins) - 1))
        if "graded" in self.kinds:
            self.graded_out(counts)
        return out


class ReadoutExec(Exec):
    def reset(self):
        self.acc = None

    def step_batch(self, ins, counts):
        self.acc = ins[0].copy() if self.acc is None else self.acc + ins[0]
        add_counts(counts, "aux_ops", self.sizes)
        return ins[0]


EXECUTORS = {G.Conv: ConvExec, G.Linear: LinearExec, G.Neurons: NeuronExec, G.Pool: PoolExec,
             G.SpikeMatmul: MatmulExec, G.TokenSum: TokenSumExec, G.Mask: MaskExec,
             G.TokenMean: TokenMeanExec, G.Add: AddExec, G.Readout: ReadoutExec}
EXECUTORS.update(ECMT_EXECUTORS)          # seed ecmt: MT spikes, EC nodes (chips.engines.exec_ecmt)


def build_executors(graph: G.Graph, parts: dict[str, list[tuple[int, int]]],
                    dense_threshold: float | None = None, *, path: str = "auto",
                    path_model: PathModel | None = None,
                    pools: set[str] = frozenset()) -> dict[str, Exec]:
    """One executor per node but the Input. ``path``: "auto" (the cost model ``path_model``,
    default this machine's :func:`~chips.engines.paths.load_path_model`, or the legacy
    ``dense_threshold`` on input density when given), "scatter" or "dense" (forced).
    ``pools``: output pools folded into their producer's cores
    (``chips.mapping.layers.folded_pools``): an ``OutputPoolExec`` each, and a Conv / Linear
    they feed counts their pooled counts as spike events (``events_in``)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if dense_threshold is not None and not (np.isfinite(dense_threshold) and dense_threshold >= 0):
        raise ValueError(f"dense_threshold must be a density >= 0, got {dense_threshold}")
    opts = {"dense_threshold": None if dense_threshold is None else float(dense_threshold),
            "path": path, "model": path_model or load_path_model()}
    out = {}
    for n in graph.order():
        op = graph.op(n)
        if isinstance(op, G.Input):
            continue
        ins = graph.inputs(n)
        kinds = [graph.out_kind(u) for u in ins]
        cls = OutputPoolExec if n in pools else EXECUTORS[type(op)]
        out[n] = e = cls(op, kinds, parts[n], opts)
        if isinstance(e, (ConvExec, LinearExec)) and ins and ins[0] in pools:
            e.events_in = True
    return out


__all__ = ["CAT", "CATEGORIES", "EXECUTORS", "AddExec", "ConvExec", "Exec", "LinearExec",
           "MaskExec", "MatmulExec", "NeuronExec", "OutputPoolExec", "PoolExec", "ReadoutExec",
           "SynapticExec", "TokenMeanExec", "TokenSumExec", "build_executors", "check_exact",
           "part_sums"]
