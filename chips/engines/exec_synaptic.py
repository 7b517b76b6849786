"""Synaptic executors, batched: ``Conv``, ``Linear`` and spike products (``SpikeMatmul``).

Each step of B inputs runs on one of two paths, chosen per node and step
(:meth:`SynapticExec.use_dense`): *scatter* (Numba kernels over the B event lists, exact integer
accumulators) or *dense* (one batched torch conv / BLAS matmul on exact integers in float32,
split into float32 digits, or float64: ``kernels.dense.exact_plan``). The choice comes from the
engine's ``path`` option ("scatter" / "dense" force it), else from a legacy ``dense_threshold``
on input density when one is given, else from the cost model (``chips.engines.paths``).
Results and counts are identical on both paths and for any batch size; the counts come from the
inputs (``neurosim.ir.counts``), never from the path. A graded input that leaves its core as
spike events (``events_in``: the pooled counts of a folded output pool, ``executors``) is
quantized as the Graph says but counted as ACs, one per event and target (spike input).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.counts import ConvCounter
from chips.engines import kernels as K
from chips.engines.exec_base import CAT, Exec, add_counts, split_total


def check_exact(op: G.Node, max_w: int, max_count: int, fan_in: int) -> None:
    """Integer reductions are exact (and equal the interpreter's float64 sums) while
    max|w| * max|input count| * fan-in < 2^53; beyond it the run is refused, naming the node,
    instead of rounding or wrapping."""
    bound = K.exact_bound(max_w, max_count, fan_in)
    if bound >= K.F64_EXACT:
        op.fail(f"input values up to {max_count:,} x weights up to {max_w} x fan-in {fan_in} "
                f"can reach {bound:.3g}, beyond the exact integer range 2^53 of a reduction")


def _max_abs_w(w: np.ndarray) -> int:
    """max |w| of an integer weight array (no widened copy: min and max in its dtype)."""
    return max(int(w.max()), -int(w.min())) if w.size else 0


class SynapticExec(Exec):
    """Path choice and bookkeeping shared by the synaptic executors (module doc)."""

    kind = "conv"
    events_in = False    # graded input that arrives as spike events (a folded output pool)

    def use_dense(self, B: int, *, events: float, elements: int, nnz, macs: float,
                  weights: float, passes: float) -> bool:
        """Dense (True) or scatter for one step of B inputs; records the choice."""
        o = self.opts
        if o["path"] != "auto":
            dense = o["path"] == "dense"
        elif o["dense_threshold"] is not None:
            dense = K.choose_dense(int(np.sum(nnz)), elements, o["dense_threshold"])
        else:
            dense = o["model"].dense_faster(self.kind, events=events, elements=elements,
                                            macs=macs, weights=weights, passes=passes)
        if dense:
            self.dense_steps += B
        else:
            self.scatter_steps += B
        return dense

    def plan(self, max_x: int, fan_in: int) -> tuple[tuple[str, int, int], float]:
        """The cheapest exact dense plan and its cost in float32 passes."""
        plan = K.exact_plan(self.max_w, max_x, fan_in)
        if plan[0] == "split":
            f64 = self.opts["model"].costs[self.kind]["dense_f64_factor"]
            if f64 < plan[1]:
                return ("float64", 1, 0), f64
            return plan, float(plan[1])
        if plan[0] == "float64":
            return plan, self.opts["model"].costs[self.kind]["dense_f64_factor"]
        return plan, 1.0

    def quantize(self, x: np.ndarray, counts: np.ndarray, in_scale: float, in_bits: int):
        """Graded input [B, ...] -> (q float64 integers, nnz [B], max |q|), saturations counted
        per input (``semantics.quantize``)."""
        B = x.shape[0]
        q = np.empty(x.shape, np.float64)
        sat, nnz, mx = (np.zeros(B, np.int64) for _ in range(3))
        lo, hi = -(2.0 ** (in_bits - 1)), 2.0 ** (in_bits - 1) - 1
        K.quantize_batch(np.ascontiguousarray(x, np.float64).reshape(B, -1), float(in_scale),
                         lo, hi, q.reshape(B, -1), sat, nnz, mx)
        counts[:, 0, CAT["saturations"]] += sat
        return q, nnz, int(mx.max())

    def affine(self, acc: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``acc * scale[c] + bias[c]`` in float64 (one fused pass); SSC: inactive sites 0."""
        acc = np.ascontiguousarray(acc)
        out = np.empty(acc.shape, np.float64)
        K.affine_rows(acc.reshape(-1), self.op.scale, self.op.bias, out.reshape(-1))
        if mask is not None:
            out[mask == 0] = 0.0
        return out


class ConvExec(SynapticExec):
    def __init__(self, op: G.Conv, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.w_cl = K.conv_weight_cl(op.weight)
        self.counter = ConvCounter(op, parts)
        self.max_w = _max_abs_w(op.weight)
        self.fan_in = (op.in_shape[0] // op.groups) * op.kernel ** 2
        self.graded = kinds[0] == "graded"
        self.w_cache: dict = {}
        C, H, W = op.in_shape
        self.taps = self.counter.taps.reshape(-1).astype(np.float64)          # [H * W]
        self.overlap = self.counter.overlap.astype(np.float64)                # [C, parts]
        self.mac_parts = self.counter.parts(np.zeros((H, W, C)), True)        # graded: fixed
        self.dense_macs = int(np.prod(op.shape)) * self.fan_in                # per input
        self.fan_mean = self.mac_parts.sum() / max(1, C * H * W)
        depthwise = op.groups == C and op.shape[0] == C
        self.kind = "depthwise" if depthwise else ("conv1x1" if op.kernel == 1 else "conv")
        self.int8 = K.int8_weights(op.weight)      # int8 weights: the int8 dense path may apply

    def plan(self, max_x: int, fan_in: int) -> tuple[tuple[str, int, int], float]:
        """The int8 plan (``kernels.int8``; one pass each digit) where this machine and the
        weights allow it, else the cheapest exact float plan."""
        if self.int8 and K.int8_available():
            plan = K.int8_plan(self.max_w, max_x, fan_in, signed=self.graded)
            if plan is not None:
                return plan, float(plan[1])
        return super().plan(max_x, fan_in)

    def weights(self, dtype) -> "object":
        """The torch weight in ``dtype``, channels-last like the inputs (oneDNN then runs
        without reordering it on every call; up to 1.3x faster), or for ``("int8", zero
        point, input shape)`` the oneDNN-packed int8 weight (``kernels.int8.pack_conv``),
        cached."""
        if dtype not in self.w_cache:
            import torch
            if isinstance(dtype, tuple):
                op = self.op
                self.w_cache[dtype] = K.pack_conv(op.weight, dtype[1], op.stride, op.padding,
                                                  op.groups, dtype[2])
                return self.w_cache[dtype]
            w = torch.from_numpy(np.ascontiguousarray(self.op.weight, dtype))
            self.w_cache[dtype] = w.contiguous(memory_format=torch.channels_last)
        return self.w_cache[dtype]

    def ops_batch(self, q: np.ndarray) -> np.ndarray:
        """Synaptic ops of spike counts ``q`` [B, H, W, C] per input and part [B, parts]
        (``ConvCounter.parts`` of each input; float64 sums of integers below 2^53)."""
        B, H, W, C = q.shape
        if self.op.ssc:
            act = (q != 0).any(axis=3).astype(np.float64)
            k, p = self.op.kernel, self.op.padding
            nb = sliding_window_view(np.pad(act, ((0, 0), (p, p), (p, p))), (k, k),
                                     axis=(1, 2)).sum(axis=(3, 4))           # [B, H, W]
            per_c = np.einsum("byxc,byx->bc", q, nb)
        else:
            per_c = self.taps @ q.reshape(B, H * W, C)
        return np.rint(per_c @ self.overlap).astype(np.int64)

    def step_batch(self, ins, counts):
        op, x = self.op, ins[0]
        B = x.shape[0]
        if self.graded:
            q, nnz, max_x = self.quantize(x, counts, op.in_scale, op.in_bits)
            if self.events_in:               # pooled spike counts: ACs per event
                ops = self.ops_batch(q)
                events = float(ops.sum())
            else:
                ops = np.broadcast_to(self.mac_parts, (B, len(self.parts)))
                events = float(nnz.sum()) * self.fan_mean
        else:
            q = x
            ops = self.ops_batch(q)
            events = float(ops.sum())
            nnz = None
            max_x = int(q.max()) if q.size else 0
            if self.opts["dense_threshold"] is not None and self.opts["path"] == "auto":
                nnz = np.count_nonzero(q)
        check_exact(op, self.max_w, max_x, self.fan_in)
        plan, passes = self.plan(max_x, self.fan_in)
        dense = self.use_dense(B, events=events, elements=q.size, nnz=nnz,
                               macs=B * self.dense_macs, weights=op.weight.size, passes=passes)
        if dense:
            acc = K.conv_exact_nhwc(q, self.weights, op.stride, op.padding, op.groups, plan,
                                    signed=self.graded)
            mask = (q != 0).any(axis=3) if op.ssc else None
            self.last_events = -1
        else:
            acc, mask = self.scatter(q, max_x)
        add_counts(counts, "mac" if self.graded and not self.events_in else "ac", ops)
        add_counts(counts, "weight_reads", ops)
        self.graded_out(counts)
        return self.affine(acc, mask)

    def scatter(self, q: np.ndarray, max_x: int):
        """Event-driven accumulation of B inputs: (integer acc [B, Ho, Wo, Co], SSC mask)."""
        op = self.op
        B = q.shape[0]
        acc = np.zeros((B,) + op.shape[1:] + op.shape[:1],
                       K.acc_dtype(self.max_w, max_x, self.fan_in))
        mask = np.zeros(q.shape[:3], np.uint8) if op.ssc else None
        ev = np.zeros(B, np.int64)
        if max_x >= K.INT32_COUNT:                       # wide counts: one input at a time
            for b in range(B):
                e = K.events(q[b], max_x)
                ev[b] = (K.conv_scatter_ssc(*e, self.w_cl, acc[b], op.padding, op.groups,
                                            mask[b]) if op.ssc else
                         K.conv_scatter(*e, self.w_cl, acc[b], op.stride, op.padding, op.groups))
        else:
            ys, xs, cs, cnt, off = K.maps_to_events(q)
            if op.ssc:
                K.conv_scatter_ssc_batch(ys, xs, cs, cnt, off, self.w_cl, acc, op.padding,
                                         op.groups, mask, ev)
            else:
                K.conv_scatter_batch(ys, xs, cs, cnt, off, self.w_cl, acc, op.stride,
                                     op.padding, op.groups, ev)
        self.last_events = int(ev.sum())
        return acc, mask

    def subtick_ops(self, q: np.ndarray, D: int) -> np.ndarray:
        """Synaptic ops per sub-tick when a burst of counts arrives one spike per tick (spike d
        of a burst at sub-tick d): [B, D, parts] for a batch q [B, H, W, C] ([D, parts] for
        one input [H, W, C]); sums to the step's count exactly."""
        if q.ndim == 3:
            return self.subtick_ops(q[None], D)[0]
        return np.stack([self.ops_batch((q > d).astype(np.float64)) for d in range(D)], axis=1)


class LinearExec(SynapticExec):
    kind = "linear"

    def __init__(self, op: G.Linear, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        self.w_t = np.ascontiguousarray(op.weight.T)
        self.max_w = _max_abs_w(op.weight)
        self.graded = kinds[0] == "graded"
        self.map_input = len(op.in_shape) == 3
        self.fan_in = int(np.prod(op.in_shape))
        self.w_cache: dict = {}

    def weights_t(self, dtype) -> np.ndarray:
        """The transposed weight [C_in, C_out] in ``dtype`` (cached)."""
        if dtype not in self.w_cache:
            self.w_cache[dtype] = np.ascontiguousarray(self.w_t, dtype)
        return self.w_cache[dtype]

    def flat(self, x: np.ndarray) -> np.ndarray:
        """Inputs [B, ...] as the graph's flat vectors [B, C_in] (maps flatten channel-major)."""
        if self.map_input:
            x = np.moveaxis(x, 3, 1)
        return np.ascontiguousarray(x.reshape(x.shape[0], -1))

    def step_batch(self, ins, counts):
        op = self.op
        x = self.flat(ins[0])
        B, n_in = x.shape
        n_out = op.shape[0]
        if self.graded:
            q, nnz, max_x = self.quantize(x, counts, op.in_scale, op.in_bits)
            if self.events_in:               # pooled spike counts: ACs per event
                per = q.sum(axis=1)
                ops = np.rint(per).astype(np.int64)[:, None] * self.widths
                events = float(per.sum()) * n_out
            else:
                ops = np.broadcast_to(n_in * self.widths, (B, len(self.parts)))
                events = float(nnz.sum()) * n_out
        else:
            q, nnz = x, None
            per = q.sum(axis=1)
            ops = np.rint(per).astype(np.int64)[:, None] * self.widths
            events = float(per.sum()) * n_out
            max_x = int(q.max()) if q.size else 0
            if self.opts["dense_threshold"] is not None and self.opts["path"] == "auto":
                nnz = np.count_nonzero(q)
        check_exact(op, self.max_w, max_x, n_in)
        plan, passes = self.plan(max_x, n_in)
        if self.use_dense(B, events=events, elements=q.size, nnz=nnz, macs=B * n_in * n_out,
                          weights=n_in * n_out, passes=passes):
            acc = K.matmul_exact(q, self.weights_t, plan)
            self.last_events = -1
        else:
            acc = self.scatter(q, max_x)
        add_counts(counts, "mac" if self.graded and not self.events_in else "ac", ops)
        add_counts(counts, "weight_reads", ops)
        self.graded_out(counts)
        return self.affine(acc)

    def scatter(self, q: np.ndarray, max_x: int) -> np.ndarray:
        B = q.shape[0]
        acc = np.zeros((B, self.op.shape[0]), K.acc_dtype(self.max_w, max_x, self.fan_in))
        ev = np.zeros(B, np.int64)
        if max_x >= K.INT32_COUNT:
            for b in range(B):
                ev[b] = K.linear_scatter(*K.events(q[b], max_x), self.w_t, acc[b])
        else:
            idx, cnt, off = K.vectors_to_events(q)
            K.linear_scatter_batch(idx, cnt, off, self.w_t, acc, ev)
        self.last_events = int(ev.sum())
        return acc

    def subtick_ops(self, q: np.ndarray, D: int) -> np.ndarray:
        """As ``ConvExec.subtick_ops``; ``q`` [B, ...] or one input's flat vector."""
        if q.ndim == 1:
            return self.subtick_ops(q[None], D)[0]
        spikes = np.stack([(q.reshape(q.shape[0], -1) > d).sum(axis=1) for d in range(D)], 1)
        return spikes[:, :, None].astype(np.int64) * self.widths


def matmul_ops_batch(op: G.SpikeMatmul, q, k, v) -> np.ndarray:
    """``neurosim.ir.counts.matmul_ops`` of each input of a batch [B, H, W, C] (int64 [B])."""
    B = q.shape[0]
    h = op.heads
    qt, kt, vt = (a.reshape(B, -1, h, a.shape[-1] // h) for a in (q, k, v))
    N, dv = qt.shape[1], vt.shape[3]
    if op.order == "q(kv)":
        kv = (kt.sum(axis=3) * vt.sum(axis=3)).sum(axis=(1, 2))
        total = kv + qt.sum(axis=(1, 2, 3)) * dv
    else:
        qk = (qt.sum(axis=1) * kt.sum(axis=1)).sum(axis=(1, 2))
        total = qk + vt.sum(axis=(1, 2, 3)) * N
    return np.rint(total).astype(np.int64)


class MatmulExec(SynapticExec):
    """Spike x spike products (SpikeMatmul), integer-exact before the scale."""

    kind = "matmul"

    def __init__(self, op: G.SpikeMatmul, kinds, parts, opts):
        super().__init__(op, kinds, parts, opts)
        C, H, W = op.shape
        self.N = H * W

    def macs(self, ck: int) -> int:
        """Dense multiply-accumulates of one input (both products; q, k with ``ck`` channels)."""
        cv, N, h = self.op.shape[0], self.N, self.op.heads
        if self.op.order == "q(kv)":
            return 2 * N * (ck // h) * cv
        return N * N * (ck + cv)

    def step_batch(self, ins, counts):
        op = self.op
        q, k, v = ins
        B = v.shape[0]
        H, W = v.shape[1:3]
        ops = matmul_ops_batch(op, q, k, v)
        mq, mk, mv = (int(a.max()) if a.size else 0 for a in (q, k, v))
        ck = q.shape[-1]
        bound = mq * mk * mv * self.N * (ck // op.heads)  # |any partial sum| of either order
        dense = self.use_dense(B, events=float(ops.sum()), elements=q.size + k.size + v.size,
                               nnz=sum(np.count_nonzero(a) for a in (q, k, v)),
                               macs=B * self.macs(ck), weights=0,
                               passes=1.0 if bound < K.F32_EXACT else
                               self.opts["model"].costs["matmul"]["dense_f64_factor"])
        if dense:
            dt = np.float32 if bound < K.F32_EXACT else np.float64

            def heads(a):                                   # B, h, N, d
                return np.ascontiguousarray(
                    a.reshape(B, self.N, op.heads, -1).transpose(0, 2, 1, 3), dt)
            qh, kh, vh = heads(q), heads(k), heads(v)
            kt = kh.transpose(0, 1, 3, 2)
            prod = qh @ (kt @ vh) if op.order == "q(kv)" else (qh @ kt) @ vh
            prod = prod.transpose(0, 2, 1, 3).reshape(B, H, W, -1).astype(np.float64)
        else:
            acc = np.zeros((B, self.N, op.shape[0]), np.int64)
            K.spike_matmul_scatter(*(np.ascontiguousarray(a.reshape(B, self.N, -1))
                                     for a in (q, k, v)), op.heads, op.order == "q(kv)", acc)
            prod = acc.reshape(B, H, W, -1).astype(np.float64)
        out = prod * op.scale
        add_counts(counts, "aux_ops", split_total(ops, self.widths))
        self.graded_out(counts)
        return out
