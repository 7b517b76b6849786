"""Per-node summary of a Graph: what `neurosim lower` prints."""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G


def fan_in(op: G.Node) -> int:
    """Synapses per target neuron (weights read per output value)."""
    if isinstance(op, G.Conv):
        return (op.in_shape[0] // op.groups) * op.kernel ** 2
    if isinstance(op, G.Linear):
        return int(np.prod(op.in_shape))
    return 0


def mean_fan_out(op: G.Node) -> float:
    """Mean synaptic targets per input event (border and stride effects included)."""
    if isinstance(op, (G.Conv, G.Linear)):
        return float(op.fan_out().mean())
    return 0.0


def graph_rows(graph: G.Graph) -> list[dict]:
    rows = []
    stage = graph.pipeline_stages()
    for n in graph.order():
        op = graph.op(n)
        ins = graph.inputs(n)
        w = getattr(op, "weight", None)
        rows.append({
            "node": n,
            "type": type(op).__name__ + (f"/{op.model}" if isinstance(op, G.Neurons) else "")
            + (f"/{op.form}" if isinstance(op, G.Conv) and op.form != "plain" else ""),
            "shape": "x".join(map(str, op.shape)),
            "in": ",".join(graph.out_kind(u)[0] for u in ins) or "-",
            "out": graph.out_kind(n),
            "fan_in": fan_in(op),
            "fan_out": round(mean_fan_out(op), 2),
            "weights": int(w.size) if w is not None else 0,
            "bits": op.weight_bits if w is not None else 0,
            "neurons": op.size if isinstance(op, G.Neurons) else 0,
            "stage": stage[n],
        })
    return rows


COLUMNS = ["node", "type", "shape", "in", "out", "fan_in", "fan_out", "weights", "bits",
           "neurons", "stage"]


def totals(graph: G.Graph) -> dict:
    ops = graph.nodes.values()
    return {"nodes": len(graph),
            "neurons": sum(op.size for op in ops if isinstance(op, G.Neurons)),
            "weights": sum(op.weight.size for op in ops if isinstance(op, G.WEIGHTED_TYPES)),
            "spike_edges": graph.edge_kinds().count("spike"),
            "graded_edges": graph.edge_kinds().count("graded"),
            "T": graph.T}
