"""Operation counting shared by the engines (DESIGN invariant 2: every synaptic operation once).

Counts are exact integers computed from a node's inputs for one time step, independently of
how the engine executed the node (scatter or dense). Channels-last arrays: maps [H, W, C],
vectors [C]. Categories:

  ac               synaptic accumulates driven by spikes: sum over input events of count x fan-out
  mac              multiply-accumulates driven by graded inputs: every input value x its fan-out
  aux_ops          other arithmetic: spike-product adds, shortcut adds, pooling compares, masks
  weight_reads     one per synaptic operation (ac + mac)
  membrane_reads / membrane_writes / neuron_updates   neuron state traffic and updates
  spikes           spikes emitted (an SFA burst of n counts n)
  graded_values    multi-bit values produced by graded nodes (shortcuts, attention products)
  saturations      clipped membranes or graded inputs
  noc_messages / noc_hops / graded_messages / graded_hops   routing (added by the engines):
                   packets sent to other cores (one per destination core) and the router hops
                   they travel, counted at the sending core
  noc_hops_ns      the north-south (mesh y) part of noc_hops
  noc_messages_in  spike packets received, counted at the receiving core (one per source spike
                   and destination core; events from the off-chip Input included; sync engine)
  neuron_accesses  neurons visited by a clocked core: every mapped neuron, every tick the chip
                   runs, idle or not (time-multiplexed cores such as Loihi's; sync engine only)
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.addressing import axis_targets

CATEGORIES = ("ac", "mac", "aux_ops", "weight_reads", "membrane_reads", "membrane_writes",
              "neuron_updates", "spikes", "graded_values", "saturations", "noc_messages",
              "noc_hops", "graded_messages", "graded_hops", "noc_hops_ns", "noc_messages_in",
              "neuron_accesses")


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(CATEGORIES, 0)


class ConvCounter:
    """Exact AC / MAC counts of a Conv per output-channel range.

    ``taps[y, x]`` = kernel taps of an input event at (y, x) that land inside the output map;
    an event of input channel c reaches ``|group(c) & [c0, c1)|`` output channels of a part.
    """

    def __init__(self, op: G.Conv, parts: list[tuple[int, int]]):
        C, H, W = op.in_shape
        Ho, Wo = op.shape[1:]
        k, s, p, g = op.kernel, op.stride, op.padding, op.groups
        self.taps = np.outer(axis_targets(H, Ho, k, s, p), axis_targets(W, Wo, k, s, p))
        og, cg = op.shape[0] // g, C // g
        grp = np.arange(C) // cg
        self.overlap = np.stack([np.clip(np.minimum((grp + 1) * og, c1) -
                                         np.maximum(grp * og, c0), 0, None)
                                 for c0, c1 in parts], axis=1).astype(np.int64)   # [C, parts]
        self.k, self.pad, self.ssc = k, p, op.ssc

    def per_channel(self, x: np.ndarray, graded: bool) -> np.ndarray:
        """Sum over positions of (count or 1) x taps, per input channel (int64 [C])."""
        if graded:
            w = np.broadcast_to(self.taps[..., None], x.shape)
            return w.sum(axis=(0, 1)).astype(np.int64)
        cnt = x.astype(np.int64)
        if self.ssc:
            # only taps landing on active sites count: box-sum of the active mask
            active = (x != 0).any(axis=2).astype(np.int64)
            pad = np.pad(active, self.pad)
            nb = sliding_window_view(pad, (self.k, self.k)).sum(axis=(2, 3))
            return np.einsum("yxc,yx->c", cnt, nb)
        return np.einsum("yxc,yx->c", cnt, self.taps)

    def parts(self, x: np.ndarray, graded: bool) -> np.ndarray:
        """Synaptic operations per part (int64 [parts])."""
        return self.per_channel(x, graded) @ self.overlap


def linear_parts(x: np.ndarray, graded: bool, parts: list[tuple[int, int]]) -> np.ndarray:
    n = x.size if graded else int(x.astype(np.int64).sum())
    return np.array([n * (c1 - c0) for c0, c1 in parts], np.int64)


def matmul_ops(op: G.SpikeMatmul, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> int:
    """Adds of a spike x spike product on counts: q(kv): sum_n a_k[n] a_v[n] per head for
    K^T V, then each q spike adds a row of d_v; (qk)v: sum_i sum_n q sum_m k per channel, then
    each v spike adds a column of N."""
    h = op.heads
    N = q.shape[0] * q.shape[1]
    qt, kt, vt = (a.reshape(N, h, -1).astype(np.int64) for a in (q, k, v))
    dv = vt.shape[2]
    if op.order == "q(kv)":
        kv = int((kt.sum(axis=2) * vt.sum(axis=2)).sum())
        return kv + int(qt.sum()) * dv
    qk = int((qt.sum(axis=0) * kt.sum(axis=0)).sum())
    return qk + int(vt.sum()) * N


def token_sum_ops(xs: list[np.ndarray]) -> int:
    prod = xs[0].astype(np.int64) if len(xs) == 1 else xs[0].astype(np.int64) * xs[1]
    return int(prod.sum())


def pool_ops(op: G.Pool) -> int:
    return int(np.prod(op.shape)) * op.kernel ** 2
