"""Paper mode's quantized pass: the paper's counting formula on the quantized graph's spikes
(the PyTorch twin, bit-exact with the engines) and the exact event-level count of each layer."""
from __future__ import annotations

import numpy as np
import torch

from neurosim.ir import graph as G
from neurosim.ir.counts import ConvCounter, matmul_ops, token_sum_ops


def _hwc(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 0, -1) if a.ndim == 3 else a


def _exact_event_ops(op: G.Node, ins: list, graded: bool, T: int, B: int) -> int:
    """What an exact engine counts for one node over [T, B] given its inputs' spike counts."""
    if isinstance(op, (G.Conv, G.Linear)):
        fo = op.fan_out().astype(np.int64)
        if graded:
            return int(fo.sum()) * T * B
        x = ins[0].astype(np.int64)
        if isinstance(op, G.Conv) and op.ssc:
            cc = ConvCounter(op, [(0, op.shape[0])])
            return int(sum(int(cc.per_channel(_hwc(x[t, b]), False).sum())
                           for t in range(T) for b in range(B)))
        return int((x.reshape(T * B, -1) * fo.reshape(-1)).sum())
    if isinstance(op, G.SpikeMatmul):
        q, k, v = (a.astype(np.int64) for a in ins)
        return int(sum(matmul_ops(op, _hwc(q[t, b]), _hwc(k[t, b]), _hwc(v[t, b]))
                       for t in range(T) for b in range(B)))
    if isinstance(op, G.TokenSum):
        return int(sum(token_sum_ops([a[t, b] for a in ins]) for t in range(T) for b in range(B)))
    raise ValueError(f"no exact count for node {op.name!r} ({type(op).__name__})")


def _quantized_batch(model, graph: G.Graph, xb: torch.Tensor, rows: list[dict]):
    """Per row: (operand spike totals, exact event ops) on the quantized graph's spikes."""
    from neurosim.frontends.twin import run_twin

    tw = run_twin(model, graph, xb.numpy())
    fx_map = graph.meta.get("fx_map", {})
    out = []
    for row in rows:
        if row["fx_node"] not in fx_map:
            raise ValueError(f"graph.meta['fx_map'] has no entry for {row['fx_node']!r}: the "
                             "graph was not lowered from this model")
        if row["name"] not in graph.g:
            raise ValueError(f"paper-mode layer {row['name']!r} is not a node of the graph "
                             f"(RepConv form of the graph: {graph.meta.get('repconv')})")
        op = graph.op(row["name"])
        srcs = graph.inputs(row["name"])
        graded = any(graph.out_kind(u) == "graded" for u in srcs)
        ins = [None if graph.out_kind(u) == "graded" else tw.outputs[u] for u in srcs]
        T, B = tw.outputs[srcs[0]].shape[:2]
        totals = [None if a is None else (int(a.sum()), int(np.prod(a.shape[2:]))) for a in ins]
        out.append((totals, _exact_event_ops(op, ins, graded, T, B)))
    return out
