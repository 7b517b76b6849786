"""Reference interpreter: runs a ``Graph`` densely with numpy, tick by tick, in topological order.

It is the semantic oracle for the chip engines (see ``neurosim.graph`` for the numeric rules) and
is written for clarity, not speed. Arrays carry a leading batch axis: [B, *node.shape].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import graph as G


# ----------------------------------------------------------------------------- numeric rules
def quantize(x: np.ndarray, step: float, bits: int) -> tuple[np.ndarray, int]:
    """Graded value -> integer grid: clip(rint(x / step), -2^(b-1), 2^(b-1)-1); returns
    (float64 integers, number of saturated entries)."""
    lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    q = np.rint(x / step)
    sat = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi), sat


def conv_int(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """Exact integer convolution in float64 (values stay below 2^53): [B,Ci,H,W] -> [B,Co,Ho,Wo]."""
    B, Ci, H, W = x.shape
    Co, Cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # B,Ci,Ho,Wo,k,k
    Ho, Wo = win.shape[2:4]
    wf = w.astype(np.float64)
    og = Co // groups
    out = np.empty((B, Co, Ho, Wo))
    for gi in range(groups):
        xs = win[:, gi * Cg:(gi + 1) * Cg]                       # B,Cg,Ho,Wo,k,k
        ws = wf[gi * og:(gi + 1) * og]                           # og,Cg,k,k
        out[:, gi * og:(gi + 1) * og] = np.einsum("bchwij,ocij->bohw", xs, ws, optimize=True)
    return out


def ssc_mask(x: np.ndarray) -> np.ndarray:
    """Active sites for spike sparse convolution: positions with any input event, [B,1,H,W]."""
    return (x != 0).any(axis=1, keepdims=True)


def _ch(a: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel vector broadcast against [B, C, ...] with ``ndim`` trailing dims."""
    return a.reshape((1, -1) + (1,) * (ndim - 2))


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


def neuron_step(op: G.Neurons, v: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """One tick of a population: returns (output, v_next, saturations). SFA: the whole burst."""
    nd = x.ndim
    vth, vr = _ch(op.v_th, nd), _ch(op.v_reset, nd)
    lo, hi = op.v_range
    if op.model == "sfa":
        h = x + 0.5 * vth                      # Proposition 1: the rounding bias, folded
        sat = int(np.count_nonzero((h < lo) | (h > hi)))
        h = np.clip(h, lo, hi)
        count = np.zeros_like(h)
        for _ in range(op.D):                 # IF soft reset over D sub-steps, input at the first
            s = h >= vth
            count += s
            h = np.where(s, h - vth, h)
        return count, v, sat
    if op.model == "mt":
        h = v + x
        sat = int(np.count_nonzero((h < lo) | (h > hi)))
        h = np.clip(h, lo, hi)
        out = np.zeros_like(h)
        done = np.zeros(h.shape, bool)
        tn = _ch(op.theta_neg, nd)
        for k in reversed(range(op.levels)):
            lp, ln = vth * 2.0 ** k, tn * 2.0 ** k
            fp = ~done & (h >= lp - vth / 2)
            fn = ~done & ~fp & (h <= -(ln - tn / 2))
            out = np.where(fp, lp, np.where(fn, -ln, out))
            done |= fp | fn
        return out, h - out, sat
    return fire_reset(op, lif_charge(op, v, x, vr), vth, vr)


def lif_charge(op: G.Neurons, v: np.ndarray, x: np.ndarray, vr) -> np.ndarray:
    """H = V + X (IF); V + (X - (V - V_reset)) / tau (LIF, decay_input); else
    V - (V - V_reset) / tau + X. ``vr`` broadcasts against ``v``."""
    if op.model == "if":
        return v + x
    if op.decay_input:
        return v + (x - (v - vr)) / op.tau
    return v - (v - vr) / op.tau + x


def fire_reset(op: G.Neurons, h: np.ndarray, vth, vr) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip H to the membrane range (counting saturations), fire on H >= V_th, reset:
    returns (spikes, V_next, saturations). ``vth`` / ``vr`` broadcast against ``h``."""
    lo, hi = op.v_range
    sat = int(np.count_nonzero((h < lo) | (h > hi)))
    h = np.clip(h, lo, hi)
    s = h >= vth
    if op.reset == "hard":
        v_next = np.where(s, vr, h)
    elif op.reset == "soft":
        v_next = np.where(s, h - vth, h)
    else:
        v_next = h
    return s.astype(np.float64), v_next, sat


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


# ----------------------------------------------------------------------------- driver
def input_ticks(graph: G.Graph, x: np.ndarray) -> np.ndarray:
    """Validate ``x`` against the Input node and return it as [T, B, *shape] float64."""
    op = graph.op(graph.input_node())
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == bool):
        raise TypeError(f"input dtype {x.dtype} is not numeric")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or infinite values")
    if x.ndim == len(op.shape) + 1 and tuple(x.shape[1:]) == op.shape:
        x = np.broadcast_to(x, (op.T,) + x.shape)
    elif not (x.ndim == len(op.shape) + 2 and tuple(x.shape[2:]) == op.shape
              and x.shape[0] == op.T):
        raise ValueError(f"input shape {tuple(x.shape)} does not fit the graph's input "
                         f"{op.name!r}: expected [B, {', '.join(map(str, op.shape))}] or "
                         f"[T={op.T}, B, ...]")
    if op.kind == "spike" and (np.any(x < 0) or np.any(x != np.round(x))):
        raise ValueError(f"input {op.name!r} carries spikes: values must be non-negative counts")
    return x


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
    logits = st.acc[outn] / graph.T
    return InterpResult(logits=logits, outputs={n: np.stack(v) for n, v in rec.items()},
                        saturations=st.sat)
