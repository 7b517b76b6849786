"""The quantized PyTorch twin: the model's own fx dataflow run with exactly the integer weights,
scales, biases and folded thresholds a ``Graph`` holds (fake-quant, float64, torch ops).

It shares no code with the interpreter: the twin executes layer by layer over all T steps at
once, following the PyTorch model's graph; the interpreter executes tick by tick, following the
Graph. Equality of the two, bit for bit, is the exactness reference for lowering and engines.
"""
from __future__ import annotations

import operator

import numpy as np
import torch
from torch.nn import functional as F

from neurosim.ir import graph as G
from neurosim.frontends.lower import trace


def _q(op, x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "spike":
        return x
    lo, hi = -(2.0 ** (op.in_bits - 1)), 2.0 ** (op.in_bits - 1) - 1
    return torch.clamp(torch.round(x / op.in_scale), lo, hi)


def _pc(a: np.ndarray, ndim: int) -> torch.Tensor:
    """Per-channel vector shaped to broadcast over [N, C, ...] with ``ndim`` dims in all."""
    return torch.from_numpy(np.asarray(a, np.float64)).view(1, -1, *[1] * (ndim - 2))


def _tb(fn, x: torch.Tensor) -> torch.Tensor:
    T, B = x.shape[:2]
    y = fn(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


def _conv(op: G.Conv, x, kind):
    def f(z):
        q = _q(op, z, kind)
        acc = F.conv2d(q, torch.from_numpy(op.weight.astype(np.float64)), stride=op.stride,
                       padding=op.padding, groups=op.groups)
        out = acc * _pc(op.scale, 4) + _pc(op.bias, 4)
        if op.ssc:
            out = torch.where((q != 0).any(dim=1, keepdim=True), out, torch.zeros_like(out))
        return out
    return _tb(f, x)


def _linear(op: G.Linear, x, kind):
    q = _q(op, x, kind)
    acc = q @ torch.from_numpy(op.weight.astype(np.float64)).T
    return acc * torch.from_numpy(op.scale) + torch.from_numpy(op.bias)


def _pool(op: G.Pool, x, kind):
    return _tb(lambda z: F.max_pool2d(z, op.kernel, op.stride, op.padding), x)


def _neurons(op: G.Neurons, x, kind):
    """Multi-step population over [T, B, ...]; same rules as the Graph (see ``neurosim.ir.graph``)."""
    nd = x.dim() - 1
    vth, vr, tn = _pc(op.v_th, nd), _pc(op.v_reset, nd), _pc(op.theta_neg, nd)
    lo, hi = op.v_range
    out = []
    v = vr.expand_as(x[0]).clone()
    for t in range(x.shape[0]):
        if op.model == "sfa":
            h = torch.clamp(x[t] + 0.5 * vth, lo, hi)
            count = torch.zeros_like(h)
            for _ in range(op.D):
                s = (h >= vth).double()
                count = count + s
                h = h - s * vth
            out.append(count)
            continue
        if op.model == "mt":
            h = torch.clamp(v + x[t], lo, hi)
            o = torch.zeros_like(h)
            done = torch.zeros_like(h, dtype=torch.bool)
            for k in reversed(range(op.levels)):
                lp, ln = vth * 2.0 ** k, tn * 2.0 ** k
                fp = ~done & (h >= lp - vth / 2)
                fn = ~done & ~fp & (h <= -(ln - tn / 2))
                o = torch.where(fp, lp.expand_as(h), torch.where(fn, (-ln).expand_as(h), o))
                done = done | fp | fn
            v = h - o
            out.append(o)
            continue
        if op.model == "if":
            h = v + x[t]
        elif op.decay_input:
            h = v + (x[t] - (v - vr)) / op.tau
        else:
            h = v - (v - vr) / op.tau + x[t]
        h = torch.clamp(h, lo, hi)
        s = (h >= vth).double()
        if op.reset == "hard":
            v = h * (1.0 - s) + vr * s
        elif op.reset == "soft":
            v = h - s * vth
        else:
            v = h
        out.append(s)
    return torch.stack(out)


def _matmul(op: G.SpikeMatmul, q, k, v):
    def heads(a):
        T, B, C, H, W = a.shape
        return a.reshape(T, B, op.heads, C // op.heads, H * W).transpose(-1, -2)
    qh, kh, vh = heads(q), heads(k), heads(v)
    prod = qh @ (kh.transpose(-1, -2) @ vh) if op.order == "q(kv)" else (qh @ kh.transpose(-1, -2)) @ vh
    T, B, C, H, W = v.shape
    return prod.transpose(-1, -2).reshape(T, B, C, H, W) * op.scale


def _token_sum(op: G.TokenSum, *xs):
    prod = xs[0] if len(xs) == 1 else xs[0] * xs[1]
    return prod.sum(dim=(-2, -1), keepdim=True) * op.scale


def _token_mean(op: G.TokenMean, x, kind):
    q = _q(op, x, kind)
    N = q.shape[-1] * q.shape[-2]
    return q.sum(dim=(-2, -1)) * op.in_scale / N


def _readout(op, x, kind):
    acc = x[0].clone()
    for t in range(1, x.shape[0]):
        acc = acc + x[t]
    return acc / x.shape[0]


UNARY = {G.Conv: _conv, G.Linear: _linear, G.Pool: _pool, G.Neurons: _neurons,
         G.TokenMean: _token_mean, G.Readout: _readout}


class TwinResult:
    def __init__(self, logits: np.ndarray, outputs: dict[str, np.ndarray]):
        self.logits, self.outputs = logits, outputs

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


@torch.no_grad()
def run_twin(model, graph: G.Graph, x) -> TwinResult:
    """Run ``model``'s dataflow with ``graph``'s quantized parameters on ``x`` (as for lowering).

    Returns logits [B, K] float64 and ``outputs[ir_name]`` = [T, B, *shape] for every IR node.
    """
    fx_map: dict[str, list[str]] = graph.meta["fx_map"]
    gm = trace(model.eval())
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    env: dict[str, torch.Tensor] = {}
    outputs: dict[str, np.ndarray] = {}
    modules = dict(gm.named_modules())
    result = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node.name] = xt
            continue
        if node.op == "output":
            result = env[node.args[0].name]
            break
        args = [env[a.name] for a in node.args]
        if node.op == "call_function" and node.target is operator.add:
            val = args[0]
            for a in args[1:]:
                val = val + a
            (ir,) = fx_map[node.name]
            outputs[ir] = val.numpy()
            env[node.name] = val
            continue
        mod = modules[node.target]
        chain = fx_map[node.name]
        if isinstance(graph.op(chain[0]), G.Input):
            val = mod(args[0]).double()
            outputs[chain[0]] = val.numpy()
            env[node.name] = val
            continue
        val = None
        for i, ir in enumerate(chain):
            op = graph.op(ir)
            kinds = [graph.out_kind(u) for u in graph.inputs(ir)]
            if isinstance(op, G.SpikeMatmul):
                val = _matmul(op, *args)
            elif isinstance(op, G.TokenSum):
                val = _token_sum(op, *args)
            elif isinstance(op, G.Mask):
                val = args[0] * args[1]
            else:
                val_in = args[0] if i == 0 else val
                val = UNARY[type(op)](op, val_in, kinds[0])
                if isinstance(op, G.Readout):   # record per-tick values, as the interpreter does
                    outputs[ir] = val_in.numpy()
                    continue
            outputs[ir] = val.numpy()
        env[node.name] = val
    logits = result.numpy()                 # a map output: (C, H, W) order, as the interpreter
    return TwinResult(logits=logits.reshape(logits.shape[0], -1), outputs=outputs)
