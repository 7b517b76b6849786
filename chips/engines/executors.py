"""Per-node executors shared by the chip engines: one time step of one node, channels-last.

Each executor is built once per (graph, mapping) and keeps per-input state (membranes, readout
accumulators). ``step(ins, counts)`` takes the node's inputs for one time step of one input
sample (maps [H, W, C], vectors [C], float64) and returns its output; it adds the step's
operation counts into ``counts`` [parts, categories] (int64), one row per mapped part (an
output-channel range on one core). The numerics are the Graph's (see ``neurosim.ir.graph``),
written independently of the reference interpreter and checked against it bit for bit.
Synaptic layers run event-driven (Numba scatter) below ``dense_threshold`` input density and
densely (exact integer torch conv / matmul) above it; counts do not depend on the path.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.counts import CATEGORIES, ConvCounter, linear_parts, matmul_ops, pool_ops, \
    token_sum_ops
from neurosim.ir.semantics import neuron_step, quantize
from chips.engines import kernels as K

CAT = {c: i for i, c in enumerate(CATEGORIES)}


def _add(counts: np.ndarray, cat: str, per_part) -> None:
    counts[:, CAT[cat]] += per_part


def part_sums(per_channel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum a per-channel vector over contiguous parts starting at ``starts`` (int64)."""
    return np.add.reduceat(np.asarray(per_channel, np.int64), starts)


def _split(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split an integer count over parts proportionally to ``sizes`` (exact: remainder to the
    first parts, so the parts sum to the total)."""
    sizes = np.asarray(sizes, np.int64)
    base = total * sizes // sizes.sum()
    base[: int(total - base.sum())] += 1
    return base


class Exec:
    """Base executor: ``parts`` are (c0, c1) output-channel ranges, one per mapped core."""

    def __init__(self, op: G.Node, kinds: list[str], parts: list[tuple[int, int]], engine_opts):
        self.op, self.kinds, self.parts = op, kinds, parts
        self.widths = np.array([c1 - c0 for c0, c1 in parts], np.int64)
        self.starts = np.array([c0 for c0, _ in parts], np.int64)
        self.inner = int(np.prod(op.shape[1:])) if len(op.shape) > 1 else 1
        self.opts = engine_opts
        self.last_events = 0            # synaptic events delivered by the kernel (cross-check)
        self.dense_steps = 0

    def reset(self) -> None:
        pass

    def per_part_sizes(self) -> np.ndarray:
        return self.widths * self.inner

    def graded_out(self, counts, out: np.ndarray) -> None:
        _add(counts, "graded_values", self.per_part_sizes())


class ConvExec(Exec):
    def __init__(self, op: G.Conv, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.w_cl = K.conv_weight_cl(op.weight)
        self.counter = ConvCounter(op, parts)
        self.max_w = int(np.abs(op.weight.astype(np.int64)).max()) if op.weight.size else 0
        self.fan_in = (op.in_shape[0] // op.groups) * op.kernel ** 2
        self.graded = kinds[0] == "graded"
        self.w_cache: dict = {}

    def accumulate(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        op = self.op
        nnz = int(np.count_nonzero(q))
        max_count = int(max(q.max(), -q.min())) if nnz else 0
        mask = None
        if K.choose_dense(nnz, q.size, self.opts["dense_threshold"]):
            self.dense_steps += 1
            acc = K.dense_conv_exact(q, op.weight, op.stride, op.padding, op.groups,
                                     max_w=self.max_w, max_x=max_count, w_cache=self.w_cache,
                                     as_float=True)
            if op.ssc:
                mask = (q != 0).any(axis=2).astype(np.uint8)
            self.last_events = -1
            return acc, mask
        Ho, Wo = op.shape[1:]
        acc = np.zeros((Ho, Wo, op.shape[0]), K.acc_dtype(self.max_w, max_count, self.fan_in))
        ys, xs, cs, cnt = K.map_to_events(q)
        if op.ssc:
            mask = np.zeros(q.shape[:2], np.uint8)
            self.last_events = K.conv_scatter_ssc(ys, xs, cs, cnt, self.w_cl, acc, op.padding,
                                                  op.groups, mask)
        else:
            self.last_events = K.conv_scatter(ys, xs, cs, cnt, self.w_cl, acc, op.stride,
                                              op.padding, op.groups)
        return acc, mask

    def step(self, ins, counts):
        op, x = self.op, ins[0]
        if self.graded:
            q, sat = quantize(x, op.in_scale, op.in_bits)
            counts[0, CAT["saturations"]] += sat
        else:
            q = x
        acc, mask = self.accumulate(q)
        ops = self.counter.parts(q, self.graded)
        _add(counts, "mac" if self.graded else "ac", ops)
        _add(counts, "weight_reads", ops)
        self.graded_out(counts, None)
        return K.affine_out(acc, op.scale, op.bias, mask)

    def subtick_ops(self, q: np.ndarray, D: int) -> np.ndarray:
        """Synaptic ops per sub-tick [D, parts] when a burst of counts arrives one spike per
        tick (spike d of a burst at sub-tick d); sums to the step's count exactly."""
        return np.stack([self.counter.parts((q > d).astype(np.int64), False) for d in range(D)])


class LinearExec(Exec):
    def __init__(self, op: G.Linear, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.w_t = np.ascontiguousarray(op.weight.T)
        self.w_f = op.weight.astype(np.float64)
        self.graded = kinds[0] == "graded"
        self.map_input = len(op.in_shape) == 3

    def step(self, ins, counts):
        op, x = self.op, ins[0]
        if self.map_input:                       # Graph flattens (C, H, W) channel-major
            x = np.moveaxis(x, 2, 0)
        x = x.reshape(-1)
        if self.graded:
            q, sat = quantize(x, op.in_scale, op.in_bits)
            counts[0, CAT["saturations"]] += sat
        else:
            q = x
        nnz = int(np.count_nonzero(q))
        if K.choose_dense(nnz, q.size, self.opts["dense_threshold"]):
            acc = self.w_f @ q                   # integers < 2^53: exact in float64
            self.dense_steps += 1
            self.last_events = -1
        else:
            idx = np.flatnonzero(q).astype(np.int32)
            acc = np.zeros(op.shape[0], np.int64)
            self.last_events = K.linear_scatter(idx, q[idx].astype(np.int32), self.w_t, acc)
        ops = linear_parts(q, self.graded, self.parts)
        _add(counts, "mac" if self.graded else "ac", ops)
        _add(counts, "weight_reads", ops)
        self.graded_out(counts, None)
        return acc.astype(np.float64) * op.scale + op.bias

    def subtick_ops(self, q: np.ndarray, D: int) -> np.ndarray:
        return np.stack([linear_parts((q > d).astype(np.int64), False, self.parts)
                         for d in range(D)])


class NeuronExec(Exec):
    def __init__(self, op: G.Neurons, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.lo, self.hi = op.v_range
        self.v = None
        self.codes = K.neuron_codes(op) if op.model in ("lif", "if") else None
        self.steps_per_t = op.D if op.model == "sfa" else 1

    def reset(self):
        self.v = None

    def step(self, ins, counts):
        op, x = self.op, ins[0]
        n_par = self.per_part_sizes() * self.steps_per_t
        for cat in ("neuron_updates", "membrane_reads", "membrane_writes"):
            _add(counts, cat, n_par)
        if op.model == "mt":                     # rare: the reference rule, channels-first
            xc = np.moveaxis(x, -1, 0)[None]
            if self.v is None:
                self.v = np.broadcast_to(op.v_reset.reshape((1, -1) + (1,) * (xc.ndim - 2)),
                                         xc.shape).astype(np.float64)
            out, self.v, sat = neuron_step(op, self.v, xc)
            counts[0, CAT["saturations"]] += sat
            self.graded_out(counts, None)
            return np.moveaxis(out[0], 0, -1)
        xf = np.ascontiguousarray(x, np.float64).reshape(-1)
        if op.model == "sfa":
            out = np.zeros(xf.size, np.int64)
            sat = K.sfa_burst(xf, out, op.v_th, 1, op.D, self.lo, self.hi)
        else:
            if self.v is None:
                self.v = np.tile(op.v_reset, xf.size // op.channels)
            out = np.zeros(xf.size, np.float64)
            sat = K.lif_update(xf, self.v, out, op.v_th, op.v_reset, 1, **self.codes)
        counts[0, CAT["saturations"]] += sat
        out = out.reshape(x.shape).astype(np.float64)
        per_c = out.reshape(-1, op.channels).sum(axis=0).astype(np.int64)
        _add(counts, "spikes", part_sums(per_c, self.starts))
        return out


class PoolExec(Exec):
    def step(self, ins, counts):
        op = self.op
        p, k, s = op.padding, op.kernel, op.stride
        xp = np.pad(ins[0], ((p, p), (p, p), (0, 0)), constant_values=-np.inf)
        out = sliding_window_view(xp, (k, k), axis=(0, 1))[::s, ::s].max(axis=(-1, -2))
        _add(counts, "aux_ops", _split(pool_ops(op), self.widths))
        if self.kinds[0] == "graded":
            self.graded_out(counts, out)
        return out


class MatmulExec(Exec):
    def step(self, ins, counts):
        op = self.op
        q, k, v = ins
        H, W = v.shape[:2]
        N, h = H * W, op.heads

        def heads(a):                                           # h, N, d (contiguous: BLAS)
            return np.ascontiguousarray(a.reshape(N, h, -1).transpose(1, 0, 2))
        qh, kh, vh = heads(q), heads(k), heads(v)
        if op.order == "q(kv)":
            prod = qh @ (kh.transpose(0, 2, 1) @ vh)
        else:
            prod = (qh @ kh.transpose(0, 2, 1)) @ vh
        out = prod.transpose(1, 0, 2).reshape(H, W, -1) * op.scale
        _add(counts, "aux_ops", _split(matmul_ops(op, q, k, v), self.widths))
        self.graded_out(counts, out)
        return out


class TokenSumExec(Exec):
    def step(self, ins, counts):
        prod = ins[0] if len(ins) == 1 else ins[0] * ins[1]
        out = prod.sum(axis=(0, 1), keepdims=True) * self.op.scale
        _add(counts, "aux_ops", _split(token_sum_ops(ins), self.widths))
        self.graded_out(counts, out)
        return out


class MaskExec(Exec):
    def step(self, ins, counts):
        out = ins[0] * ins[1]
        _add(counts, "aux_ops", self.per_part_sizes())
        if "graded" in self.kinds:
            self.graded_out(counts, out)
        return out


class TokenMeanExec(Exec):
    def step(self, ins, counts):
        op, x = self.op, ins[0]
        if self.kinds[0] == "graded":
            x, sat = quantize(x, op.in_scale, op.in_bits)
            counts[0, CAT["saturations"]] += sat
            n_adds = x.size
        else:
            n_adds = int(x.astype(np.int64).sum())
        N = x.shape[0] * x.shape[1]
        out = x.sum(axis=(0, 1)) * op.in_scale / N
        _add(counts, "aux_ops", _split(n_adds, self.widths))
        self.graded_out(counts, out)
        return out


class AddExec(Exec):
    def step(self, ins, counts):
        out = ins[0]
        for x in ins[1:]:
            out = out + x
        _add(counts, "aux_ops", self.per_part_sizes() * (len(ins) - 1))
        if "graded" in self.kinds:
            self.graded_out(counts, out)
        return out


class ReadoutExec(Exec):
    def reset(self):
        self.acc = None

    def step(self, ins, counts):
        self.acc = ins[0].copy() if self.acc is None else self.acc + ins[0]
        _add(counts, "aux_ops", self.per_part_sizes())
        return ins[0]


EXECUTORS = {G.Conv: ConvExec, G.Linear: LinearExec, G.Neurons: NeuronExec, G.Pool: PoolExec,
             G.SpikeMatmul: MatmulExec, G.TokenSum: TokenSumExec, G.Mask: MaskExec,
             G.TokenMean: TokenMeanExec, G.Add: AddExec, G.Readout: ReadoutExec}


def build_executors(graph: G.Graph, parts: dict[str, list[tuple[int, int]]],
                    dense_threshold: float = 0.05) -> dict[str, Exec]:
    opts = {"dense_threshold": float(dense_threshold)}
    out = {}
    for n in graph.order():
        op = graph.op(n)
        if isinstance(op, G.Input):
            continue
        kinds = [graph.out_kind(u) for u in graph.inputs(n)]
        out[n] = EXECUTORS[type(op)](op, kinds, parts[n], opts)
    return out
