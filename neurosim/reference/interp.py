"""Reference interpreter: runs a ``Graph`` densely with numpy, tick by tick, in topological order.

It is the semantic oracle for the chip engines (the numeric rules are ``neurosim.ir.semantics``;
the chip engines share them, never this module's code) and is written for clarity, not speed. Arrays carry a leading batch axis: [B, *node.shape].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurosim.ir import graph as G
from neurosim.ir.semantics import (_ch, conv_int, ec_step, input_ticks, matmul_ec_step,
                                   mt_spikes_step, neuron_step, quantize, ssc_mask)


# ----------------------------------------------------------------------------- results
@dataclass
class InterpResult:
    """``outputs[name]``: [T, B, *shape] per recorded node; ``logits`` [B, K] float64;
    ``saturations[name]``: clipped membrane or input-quantization entries."""

    logits: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int] = field(default_factory=dict)

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    def spikes(self, graph: G.Graph) -> dict[str, np.ndarray]:
        """The recorded outputs of the spiking nodes (neuron populations)."""
        return {n: a for n, a in self.outputs.items()
                if isinstance(graph.op(n), G.Neurons) and graph.out_kind(n) == "spike"}


# ----------------------------------------------------------------------------- node semantics
class _State:
    def __init__(self):
        self.v: dict[str, np.ndarray] = {}
        self.acc: dict[str, np.ndarray] = {}
        self.sat: dict[str, int] = {}

    def count(self, name: str, n: int):
        self.sat[name] = self.sat.get(name, 0) + n


def _q_in(op, x: np.ndarray, kind: str, st: _State) -> np.ndarray:
    if kind == "spike":
        return x
    q, n = quantize(x, op.in_scale, op.in_bits)
    st.count(op.name, n)
    return q


def _conv(op: G.Conv, ins, kinds, st):
    x = _q_in(op, ins[0], kinds[0], st)
    acc = conv_int(x, op.weight, op.stride, op.padding, op.groups)
    out = acc * _ch(op.scale, 4) + _ch(op.bias, 4)
    if op.ssc:
        out = np.where(ssc_mask(x), out, 0.0)
    return out


def _linear(op: G.Linear, ins, kinds, st):
    x = _q_in(op, ins[0], kinds[0], st).reshape(len(ins[0]), -1)
    acc = x @ op.weight.astype(np.float64).T
    return acc * op.scale + op.bias


def _pool(op: G.Pool, ins, kinds, st):
    p, k, s = op.padding, op.kernel, op.stride
    xp = np.pad(ins[0], ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s].max(axis=(-1, -2))


def _neurons(op: G.Neurons, ins, kinds, st):
    x = ins[0]
    v = st.v.get(op.name)
    if v is None:
        v = np.broadcast_to(_ch(op.v_reset, x.ndim), x.shape).astype(np.float64)
    out, st.v[op.name], n = neuron_step(op, v, x)
    st.count(op.name, n)
    return out


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    B, C = x.shape[:2]
    return x.reshape(B, heads, C // heads, -1).transpose(0, 1, 3, 2)   # B, h, N, d


def _matmul(op: G.SpikeMatmul, ins, kinds, st):
    q, k, v = (_heads(a, op.heads) for a in ins)
    if op.order == "q(kv)":
        prod = q @ (k.transpose(0, 1, 3, 2) @ v)
    else:
        prod = (q @ k.transpose(0, 1, 3, 2)) @ v
    B, C, H, W = ins[2].shape
    return (prod.transpose(0, 1, 3, 2).reshape(B, C, H, W)) * op.scale


def _token_sum(op, ins, kinds, st):
    prod = ins[0] if len(ins) == 1 else ins[0] * ins[1]
    return prod.sum(axis=(2, 3), keepdims=True) * op.scale


def _mask(op, ins, kinds, st):
    return ins[0] * ins[1]


def _token_mean(op: G.TokenMean, ins, kinds, st):
    x = _q_in(op, ins[0], kinds[0], st)
    N = x.shape[2] * x.shape[3]
    return x.sum(axis=(2, 3)) * op.in_scale / N


def _add(op, ins, kinds, st):
    out = ins[0]
    for x in ins[1:]:
        out = out + x
    return out


def _readout(op, ins, kinds, st):
    prev = st.acc.get(op.name)
    st.acc[op.name] = ins[0].copy() if prev is None else prev + ins[0]
    return ins[0]


EVAL = {G.Conv: _conv, G.Linear: _linear, G.Pool: _pool, G.Neurons: _neurons,
        G.SpikeMatmul: _matmul, G.TokenSum: _token_sum, G.Mask: _mask,
        G.TokenMean: _token_mean, G.Add: _add, G.Readout: _readout}


# ECMT nodes (seed ecmt): the state of each (membranes, EC sums) lives in ``st.v``
def _mt_spikes(op, ins, kinds, st):
    v = st.v.get(op.name)
    out, st.v[op.name], n = mt_spikes_step(op, np.zeros_like(ins[0]) if v is None else v, ins[0])
    st.count(op.name, n)
    return out


def _matmul_ec(op, ins, kinds, st):
    out, st.v[op.name], _ = matmul_ec_step(op, st.v.get(op.name), ins[0], ins[1])
    return out


def _expectation_ec(op, ins, kinds, st):
    out, st.v[op.name] = ec_step(op, st.v.get(op.name), ins[0])
    return out


EVAL.update({G.MTSpikes: _mt_spikes, G.MatMulEC: _matmul_ec, G.ExpectationEC: _expectation_ec,
             G.AddConst: lambda op, ins, kinds, st: ins[0] + op.values})


# ----------------------------------------------------------------------------- driver
def run(graph: G.Graph, x: np.ndarray, record: str = "spikes") -> InterpResult:
    """Run ``graph`` on ``x`` ([B, *in] static or [T, B, *in] per tick).

    ``record``: "spikes" keeps neuron outputs, "all" every node's output, "none" only logits.
    """
    if record not in ("spikes", "all", "none"):
        raise ValueError(f"record must be spikes, all or none, got {record!r}")
    xs = input_ticks(graph, x)
    order = graph.order()
    inp, outn = graph.input_node(), graph.output_node()
    ins_of = {n: graph.inputs(n) for n in order}
    kinds_of = {n: [graph.out_kind(u) for u in ins_of[n]] for n in order}
    keep = [n for n in order if record == "all" or
            (record == "spikes" and isinstance(graph.op(n), G.Neurons))]
    rec: dict[str, list] = {n: [] for n in keep}
    st = _State()
    for t in range(graph.T):
        vals: dict[str, np.ndarray] = {inp: xs[t]}
        for n in order:
            if n == inp:
                continue
            op = graph.op(n)
            vals[n] = EVAL[type(op)](op, [vals[u] for u in ins_of[n]], kinds_of[n], st)
        for n in keep:
            rec[n].append(vals[n])
    acc = st.acc[outn]
    logits = (acc / graph.T).reshape(acc.shape[0], -1)     # a map readout: (C, H, W) order
    return InterpResult(logits=logits, outputs={n: np.stack(v) for n, v in rec.items()},
                        saturations=st.sat)
