"""NIR export: ``to_nir`` (neurosim ``Graph`` -> ``nir.NIRGraph``) and ``write_nir`` (to HDF5).

Each neurosim node becomes one NIR node (two for a Linear reading a map and for TokenMean: a
Flatten helper) carrying its exact neurosim fields as ``neurosim_*`` metadata; see the package
doc for the mapping and for what NIR cannot express."""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neurosim.frontends.nir.common import (DEFAULT_DT, FORMAT, META, NIRExportError, _json, _prev,
                                           require_nir)
from neurosim.ir import graph as G


def _per_neuron(op: G.Node, a: np.ndarray) -> np.ndarray:
    """Per-channel vector -> array of the population's shape (NIR parameters are per neuron)."""
    a = np.asarray(a, np.float64).reshape((-1,) + (1,) * (len(op.shape) - 1))
    return np.ascontiguousarray(np.broadcast_to(a, op.shape))


def _why_not(graph: G.Graph, op: G.Node) -> str | None:
    """Why ``op`` has no NIR form, or None."""
    reasons = {G.Pool: "max pooling has no NIR node (NIR 1.0 has SumPool2d/AvgPool2d only)",
               G.SpikeMatmul: "products of two spike tensors have no NIR node",
               G.TokenSum: "token sums of spike products have no NIR node",
               G.Mask: "the Hadamard product of two inputs has no NIR node"}
    if type(op) in reasons:
        return reasons[type(op)]
    if "/" in op.name:
        return "'/' in a node name is a path separator in NIR's HDF5 files"
    if isinstance(op, G.Neurons):
        if op.model in ("sfa", "mt"):
            return f"model {op.model!r} (multi-spike / graded neurons) has no NIR node"
        if op.reset != "hard":
            return f"reset={op.reset!r}: NIR LIF/IF always reset to v_reset"
    if isinstance(op, G.Conv) and op.ssc:
        return "spike sparse convolution (ssc=True) has no NIR form"
    if isinstance(op, G.TokenMean) and op.in_scale != 1.0 and \
            graph.out_kind(graph.inputs(op.name)[0]) == "spike":
        return f"a mean of spike counts worth {op.in_scale} each (in_scale) has no NIR form"
    if isinstance(op, (G.Linear, G.TokenMean)) and f"{op.name}.flatten" in graph.g:
        return f"its helper node name {op.name + '.flatten'!r} is taken"
    return None


def _dense(w: np.ndarray, groups: int) -> np.ndarray:
    """Grouped conv weight [C_out, C_in/g, k, k] -> the equivalent dense [C_out, C_in, k, k]
    with zero blocks. NIR 1.0.8's Conv2d takes its input channel count from weight.shape[1]
    and so rejects every grouped convolution when a file is read with type checking."""
    if groups == 1:
        return w
    Co, Cg = w.shape[:2]
    og = Co // groups
    out = np.zeros((Co, Cg * groups) + w.shape[2:])
    for gi in range(groups):
        out[gi * og:(gi + 1) * og, gi * Cg:(gi + 1) * Cg] = w[gi * og:(gi + 1) * og]
    return out


def _node_meta(op: G.Node) -> dict:
    md = {f"{META}type": type(op).__name__, f"{META}params": _json(op.params())}
    md.update({f"{META}{k}": v for k, v in op.arrays().items()})
    return md


def _export_op(graph: G.Graph, op: G.Node, dt: float) -> tuple[list, list, str, str]:
    """One neurosim op -> (NIR (key, node) pairs, internal edges, entry key, exit key)."""
    n = op.name
    md = _node_meta(op)
    helper = {f"{META}part_of": n}
    if isinstance(op, G.Input):
        return [(n, nir.Input(input_type=np.array(op.shape), metadata=md))], [], n, n
    if isinstance(op, G.Readout):
        return [(n, nir.Output(output_type=np.array(op.shape), metadata=md))], [], n, n
    if isinstance(op, G.WEIGHTED_TYPES):     # real weight of a real input value (see module doc)
        graded = graph.out_kind(graph.inputs(n)[0]) == "graded"
        real = op.scale / op.in_scale if graded else op.scale
    if isinstance(op, G.Conv):
        w = _dense(op.weight.astype(np.float64) * real[:, None, None, None], op.groups)
        node = nir.Conv2d(input_shape=tuple(op.in_shape[1:]), weight=w, stride=op.stride,
                          padding=op.padding, dilation=1, groups=1, bias=op.bias.copy(),
                          metadata=md)
        return [(n, node)], [], n, n
    if isinstance(op, G.Linear):
        w = op.weight.astype(np.float64) * real[:, None]
        aff = (n, nir.Affine(weight=w, bias=op.bias.copy(), metadata=md))
        if len(op.in_shape) == 1:
            return [aff], [], n, n
        fk = f"{n}.flatten"
        fl = nir.Flatten(input_type=np.array(op.in_shape), start_dim=0, end_dim=-1,
                         metadata=helper)
        return [(fk, fl), aff], [(fk, n)], fk, n
    if isinstance(op, G.Neurons):
        vth, vr = _per_neuron(op, _prev(op.v_th)), _per_neuron(op, op.v_reset)
        if op.model == "if":
            node = nir.IF(r=np.ones(op.shape), v_threshold=vth, v_reset=vr, metadata=md)
        else:
            r = 1.0 if op.decay_input else op.tau
            node = nir.LIF(tau=np.full(op.shape, op.tau * dt), r=np.full(op.shape, float(r)),
                           v_leak=vr.copy(), v_threshold=vth, v_reset=vr, metadata=md)
        return [(n, node)], [], n, n
    if isinstance(op, G.Add):
        return [(n, nir.Scale(scale=np.ones(op.shape), metadata=md))], [], n, n
    if isinstance(op, G.TokenMean):
        fk = f"{n}.flatten"
        hw = np.array(graph.op(graph.inputs(n)[0]).shape[1:])
        pool = nir.AvgPool2d(kernel_size=hw, stride=hw.copy(), padding=np.zeros(2, np.int64),
                             metadata=md)
        fl = nir.Flatten(input_type=np.array([op.shape[0], 1, 1]), start_dim=0, end_dim=-1,
                         metadata=helper)
        return [(n, pool), (fk, fl)], [(n, fk)], n, fk
    raise NIRExportError(f"node {n!r} ({type(op).__name__}) has no NIR form")


def to_nir(graph: G.Graph, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """Export ``graph`` as a NIR graph with ``dt`` seconds per tick (see the module doc).

    Raises ``GraphError`` for an invalid graph and ``NIRExportError`` listing every node that
    NIR cannot express. Exported nodes carry their exact neurosim fields as metadata."""
    require_nir()
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    graph.validate()
    bad = []
    for n in graph.order():
        why = _why_not(graph, graph.op(n))
        if why is not None:
            bad.append(f"{n!r} ({type(graph.op(n)).__name__}: {why})")
    if bad:
        raise NIRExportError(f"{len(bad)} node(s) cannot be expressed in NIR: " + "; ".join(bad))
    nodes, edges, entry, exit_ = {}, [], {}, {}
    for n in graph.g.nodes:
        parts, internal, entry[n], exit_[n] = _export_op(graph, graph.op(n), dt)
        nodes.update(parts)
        edges.extend(internal)
    for n in graph.g.nodes:
        edges.extend((exit_[u], entry[n]) for u in graph.inputs(n))
    info = {"order": list(graph.g.nodes), "inputs": {n: graph.inputs(n) for n in graph.g.nodes},
            "meta": graph.meta}
    try:
        blob = _json(info)
    except TypeError as e:
        raise NIRExportError(f"graph.meta cannot be written as JSON: {e}") from None
    meta = {f"{META}format": FORMAT, f"{META}dt_s": float(dt), f"{META}graph": blob}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def write_nir(graph: G.Graph, path: str | Path, dt: float = DEFAULT_DT) -> Path:
    """``to_nir`` then ``nir.write`` (HDF5) to ``path``; returns the path."""
    path = Path(path)
    nir.write(path, to_nir(graph, dt))
    return path
