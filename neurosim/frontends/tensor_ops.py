"""Tensor operations inside a user's traced ``forward``: views, residual adds, constant scales,
spike products (``q @ k^T @ v``), means, the model's input and output.

The IR holds per-sample, per-tick values shaped (C, H, W) or (C,). A user's tensor is a *view*
of one IR node: leading time/batch dims (``lead``: [T, B] or [T*B] for multi-step models, [B]
for a ``Stepwise`` single-step model) and a per-sample index map ``elem`` into the node's flat
(C, H, W) elements (None: the identity). A view operation (flatten, reshape, transpose, permute,
nn.Flatten, ...) is lowered by applying it to an integer tensor holding each element's index and
reading the new map back, so any bijective rearrangement lowers exactly and anything that mixes
time/batch with features, or selects or repeats elements, is an error naming the node.

A spike product is kept pending between its two matmuls: ``(q @ k^T) @ v`` and ``q @ (k^T @ v)``
become one ``SpikeMatmul`` (order "(qk)v" / "q(kv)") when q, k, v are per-head views
[heads, N, C/heads] of (C, H, W) spike nodes (tokens N = H*W); a constant multiplying either the
product or its half folds into the node's scale.
"""
from __future__ import annotations

import dataclasses
import math
import operator

import numpy as np
import torch
from torch import fx

from neurosim.frontends import lower as _lower
from neurosim.frontends.lower import FX_NODES, LoweringError
from neurosim.ir import graph as G

VIEW_METHODS = ("flatten", "reshape", "view", "permute", "transpose", "unflatten", "squeeze",
                "unsqueeze", "contiguous", "clone", "detach", "float", "movedim", "swapaxes")
VIEW_FUNCTIONS = (torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze,
                  torch.unsqueeze, torch.movedim, torch.swapaxes)


@dataclasses.dataclass(frozen=True)
class View:
    """How a user's tensor holds an IR node: leading dims ``lead`` and per-sample map ``elem``
    (flat (C, H, W) index of each element; None = the node's own shape and order)."""

    lead: tuple
    elem: torch.Tensor | None = None


@dataclasses.dataclass
class Pending:
    """Half a spike product: ``q @ k^T`` ("(qk)v", a = q, b = k) or ``k^T @ v`` ("q(kv)",
    a = k, b = v), waiting for its second matmul; ``scale`` collects constant factors."""

    order: str
    a: str
    b: str
    heads: int
    lead: tuple
    scale: float = 1.0


# ----------------------------------------------------------------------------- views
def stepwise(ctx) -> bool:
    return ctx.acts.get("__time__") == "stepwise"


def leads(ctx) -> list[tuple]:
    """Allowed leading dims: [(T, B), (T*B,)] multi-step, [(B,)] single-step."""
    T, B = (int(s) for s in ctx.acts["__input__"].shape[:2])
    return [(B,)] if stepwise(ctx) else [(T, B), (T * B,)]


def _views(ctx) -> dict:
    return ctx.frontend.setdefault("views", {})


def view(ctx, fx_name: str) -> View:
    return _views(ctx).get(fx_name) or View(leads(ctx)[0])


def set_view(ctx, fx_name: str, v: View) -> None:
    _views(ctx)[fx_name] = v


def recorded(ctx, fx_name: str):
    """The value one call of the traced forward produced (a tuple's first element)."""
    v = ctx.acts[fx_name]
    v = v[0] if isinstance(v, (tuple, list)) else v
    return v[0] if stepwise(ctx) else v


def ir_shape(ctx, ir: str) -> tuple:
    return ctx.graph.op(ir).shape


def elem_of(ctx, ir: str, v: View) -> torch.Tensor:
    shape = ir_shape(ctx, ir)
    return v.elem if v.elem is not None else torch.arange(math.prod(shape)).reshape(shape)


def full_index(ctx, ir: str, v: View) -> torch.Tensor:
    """Integer tensor shaped like the user's tensor: sample * size + element index."""
    e = elem_of(ctx, ir, v)
    n = math.prod(ir_shape(ctx, ir))
    samples = torch.arange(math.prod(v.lead)).reshape(v.lead + (1,) * e.dim())
    return samples * n + e


def analyze(ctx, ir: str, idx: torch.Tensor, where: str) -> View:
    """Read a full index tensor back into a View; error if time/batch mix with features or
    elements are selected or repeated."""
    shape, n = tuple(idx.shape), math.prod(ir_shape(ctx, ir))
    for lead in leads(ctx):
        k, L = len(lead), math.prod(lead)
        if shape[:k] != lead:
            continue
        flat = idx.reshape(L, -1)
        if not bool(((flat // n) == torch.arange(L).view(L, 1)).all()):
            continue
        e = flat % n
        if not bool((e == e[0]).all()):
            continue
        e = e[0]
        if e.numel() != n or not torch.equal(torch.sort(e).values, torch.arange(n)):
            raise LoweringError(f"{where}: selects or repeats elements of {ir!r}; only "
                                "rearrangements (reshape, transpose, permute, flatten) lower")
        e = e.reshape(shape[k:])
        same = shape[k:] == ir_shape(ctx, ir) and torch.equal(e.flatten(), torch.arange(n))
        return View(lead, None if same else e)
    raise LoweringError(f"{where}: a tensor shaped {list(shape)} does not keep time and batch "
                        f"apart from the features (expected leading dims "
                        f"{' or '.join(str(list(x)) for x in leads(ctx))})")


def label(node: fx.Node) -> str:
    """A readable IR name for a function node: enclosing module path + fx name."""
    stack = node.meta.get("nn_module_stack") or {}
    path = next(reversed(stack.values()), ("", None))[0] if stack else ""
    return f"{path}.{node.name}" if path else node.name


def where(node: fx.Node) -> str:
    tgt = getattr(node.target, "__name__", node.target)
    path = label(node)[:-len(node.name) - 1]
    return f"{node.op} {tgt!r} (fx node {node.name!r}{f' in {path!r}' if path else ''})"


def pending_of(ctx, fx_name: str) -> Pending | None:
    return ctx.frontend.get("pending", {}).get(fx_name)


def source(ctx, node: fx.Node, i: int = 0) -> tuple[str, str, View]:
    """(fx name, IR name, View) of tensor argument ``i``; a pending spike product is an error."""
    a = node.args[i]
    if not isinstance(a, fx.Node) or a.name not in ctx.env:
        raise LoweringError(f"{where(node)}: argument {i} is not a tensor from another layer")
    if pending_of(ctx, a.name) is not None:
        raise LoweringError(f"{where(node)}: uses the spike product {a.name!r} before it is "
                            "multiplied by v; the IR's SpikeMatmul computes (q k^T) v or "
                            "q (k^T v) as one operation")
    return a.name, ctx.env[a.name], view(ctx, a.name)


def _resolve(ctx, x):
    """Concrete value of a non-tensor fx argument (shape arithmetic) from the recording."""
    return fx.node.map_arg(x, lambda n: ctx.acts[n.name])


# ----------------------------------------------------------------------------- handlers
def handler(*keys):
    def deco(fn):
        for k in keys:
            FX_NODES[k] = fn
        return fn
    return deco


@handler(("placeholder", None))
def lower_input(ctx, node) -> str:
    """The model's input [T, B, *shape]: spike counts if non-negative integers, else graded."""
    x = ctx.acts["__input__"]
    if "input" in ctx.graph.g:
        raise LoweringError(f"input {node.name!r}: the model takes more than one input; "
                            "lowering needs forward(x) with x [T, B, ...]")
    shape = tuple(x.shape[2:])
    if len(shape) not in (1, 3):
        raise LoweringError(f"input {node.name!r}: per-sample shape {shape} must be (C,) or "
                            f"(C, H, W); the example input is [T, B, ...] = {list(x.shape)}")
    events = bool(torch.all(x >= 0)) and bool(torch.all(x == torch.round(x)))
    op = G.Input(name="input", shape=shape, kind="spike" if events else "graded", T=x.shape[0])
    return ctx.add(op, [], node.name, unit=1.0)


@handler(("output", None))
def lower_output(ctx, node) -> None:
    """A Readout (mean over T) of the model's [T, B, ...] output, unless the model made one.
    A tuple output (snntorch's (spikes, membrane)) reads its first element."""
    out = node.args[0]
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, fx.Node) or out.name not in ctx.env:
        raise LoweringError(f"the model's output {out!r} is not a lowered tensor")
    made = [n for n, op in ctx.graph.nodes.items() if isinstance(op, G.Readout)]
    if made and ctx.env[out.name] not in made:
        raise LoweringError(f"the time mean {made[0]!r} (x.mean(0)) must be the model's last "
                            f"operation; {out.name!r} comes after it")
    if not made:
        _readout(ctx, node, out.name, leads(ctx)[0])


def _readout(ctx, node, fx_src: str, lead: tuple) -> str:
    if pending_of(ctx, fx_src) is not None:
        raise LoweringError(f"{where(node)}: the output is an unfinished spike product")
    v, ir = view(ctx, fx_src), ctx.env[fx_src]
    if v.lead != lead or v.elem is not None:
        raise LoweringError(f"{where(node)}: the model output {fx_src!r} must be [T, B, "
                            f"{', '.join(map(str, ir_shape(ctx, ir)))}] in the order of its "
                            f"last layer; got shape {list(recorded(ctx, fx_src).shape)}")
    return ctx.add(G.Readout(name="readout", shape=ir_shape(ctx, ir)), [ir], node.name)


def apply_view(ctx, node, fn) -> str:
    """Lower a rearrangement: ``fn(index tensor)`` gives the new index tensor."""
    name, ir, v = source(ctx, node)
    idx = fn(full_index(ctx, ir, v))
    got = tuple(recorded(ctx, node.name).shape)
    if tuple(idx.shape) != got:
        raise LoweringError(f"{where(node)}: replayed shape {list(idx.shape)} != recorded {got}")
    set_view(ctx, node.name, analyze(ctx, ir, idx, where(node)))
    return ir


@handler(*[("call_method", m) for m in VIEW_METHODS])
def lower_view_method(ctx, node) -> str:
    args, kwargs = _resolve(ctx, node.args[1:]), _resolve(ctx, dict(node.kwargs))
    if node.target == "float":
        return apply_view(ctx, node, lambda i: i)
    return apply_view(ctx, node, lambda i: getattr(i, node.target)(*args, **kwargs))


@handler(*[("call_function", f) for f in VIEW_FUNCTIONS])
def lower_view_function(ctx, node) -> str:
    args, kwargs = _resolve(ctx, node.args[1:]), _resolve(ctx, dict(node.kwargs))
    return apply_view(ctx, node, lambda i: node.target(i, *args, **kwargs))


@handler(("call_function", operator.getitem))
def lower_getitem(ctx, node) -> str:
    """``out[0]`` of a neuron returning (spikes, state) is its spikes; indexing a tensor is a
    view (it must keep every element)."""
    src, i = node.args
    val = ctx.acts[src.name]
    if isinstance(val, (tuple, list)):
        if i != 0:
            raise LoweringError(f"{where(node)}: uses output {i} of {src.target!r} (a membrane or "
                                "synaptic state); only spikes (output 0) can be lowered")
        name, ir, v = source(ctx, node)
        set_view(ctx, node.name, v)
        return ir
    key = _resolve(ctx, i)
    return apply_view(ctx, node, lambda t: t[key])


@handler(("call_function", operator.add), ("call_function", torch.add),
         ("call_method", "add"), ("call_function", operator.iadd))
def lower_add(ctx, node) -> str:
    """Residual add of same-shaped tensors laid out alike (spikes + spikes stay spike counts)."""
    if node.kwargs.get("alpha", 1) != 1:
        raise LoweringError(f"{where(node)}: add with alpha={node.kwargs['alpha']} is not "
                            "supported")
    if len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args):
        raise LoweringError(f"{where(node)}: adding a constant is not supported; only sums of "
                            "tensors from other layers (residual adds)")
    srcs = [source(ctx, node, i) for i in range(2)]
    irs = [s[1] for s in srcs]
    shapes = {ir_shape(ctx, ir) for ir in irs}
    vs = [s[2] for s in srcs]
    same = len(shapes) == 1 and all(v.lead == vs[0].lead for v in vs) and all(
        (v.elem is None and vs[0].elem is None) or
        (v.elem is not None and vs[0].elem is not None and torch.equal(v.elem, vs[0].elem))
        for v in vs)
    if not same:
        raise LoweringError(f"{where(node)}: adds tensors of different shapes or layouts "
                            f"{[list(recorded(ctx, s[0]).shape) for s in srcs]} "
                            "(broadcasting adds are not supported)")
    if vs[0].elem is None and vs[0].lead == leads(ctx)[0]:
        return _lower._lower_add(ctx, node, irs)
    out = _lower._lower_add(ctx, node, irs, shape=shapes.pop())
    set_view(ctx, node.name, vs[0])
    return out


def _scalar_arg(ctx, node) -> tuple[int, float] | None:
    """(index of the tensor argument, constant) when one argument of a binary op is a number."""
    vals = [_resolve(ctx, a) if isinstance(a, fx.Node) else a for a in node.args[:2]]
    for i in (0, 1):
        c = vals[1 - i]
        if isinstance(node.args[i], fx.Node) and isinstance(vals[i], torch.Tensor) and \
                isinstance(c, (int, float)) and not isinstance(c, bool):
            return i, float(c)
    return None


@handler(("call_function", operator.mul), ("call_function", torch.mul), ("call_method", "mul"),
         ("call_function", operator.truediv), ("call_function", torch.div),
         ("call_method", "div"))
def lower_scale(ctx, node) -> str:
    """``x * c`` / ``x / c`` folded into the producing spike product or projection (its scale and
    bias); ``a * b`` of two spike tensors laid out alike is a Mask (an AND on spikes)."""
    div = node.target in (operator.truediv, torch.div, "div")
    sc = _scalar_arg(ctx, node)
    if sc is None:
        if div:
            raise LoweringError(f"{where(node)}: dividing tensors is not supported")
        return _mask(ctx, node)
    i, c = sc
    if div and i == 1:
        raise LoweringError(f"{where(node)}: dividing a constant by a tensor is not supported")
    c = 1.0 / c if div else c
    src = node.args[i]
    p = pending_of(ctx, src.name)
    if p is not None:
        ctx.frontend["pending"][node.name] = dataclasses.replace(p, scale=p.scale * c)
        ctx.env[node.name] = ctx.env[src.name]
        return ctx.env[src.name]
    ir, v = ctx.env[src.name], view(ctx, src.name)
    op = ctx.graph.op(ir)
    if len(src.users) != 1 or ctx.graph.consumers(ir) or \
            not isinstance(op, (G.SpikeMatmul, G.Conv, G.Linear)):
        raise LoweringError(f"{where(node)}: a constant factor must directly follow a linear "
                            f"layer or spike product used only here (it follows {ir!r}, a "
                            f"{type(op).__name__})")
    if isinstance(op, G.SpikeMatmul):
        new = dataclasses.replace(op, scale=op.scale * c)
    else:
        wf = None if op.weight_float is None else op.weight_float * np.float32(c)
        new = dataclasses.replace(op, scale=op.scale * c, bias=op.bias * c, weight_float=wf)
    ctx.graph.replace(new)
    set_view(ctx, node.name, v)
    return ir


def _mask(ctx, node) -> str:
    srcs = [source(ctx, node, i) for i in range(2)]
    (_, a, va), (_, b, vb) = srcs
    if ir_shape(ctx, a) != ir_shape(ctx, b) or va.lead != vb.lead or \
            (va.elem is None) != (vb.elem is None) or \
            (va.elem is not None and not torch.equal(va.elem, vb.elem)):
        raise LoweringError(f"{where(node)}: multiplies tensors of different shapes or layouts")
    if len(ir_shape(ctx, a)) != 3 or {ctx.kind(a), ctx.kind(b)} != {"spike"}:
        raise LoweringError(f"{where(node)}: an elementwise product lowers only for two spike "
                            "maps (C, H, W) (a Mask)")
    unit = ctx.unit[a] * ctx.unit[b]
    out = ctx.add(G.Mask(name=label(node), shape=ir_shape(ctx, a)), [a, b], node.name, unit=unit)
    set_view(ctx, node.name, va)
    return out


# ----------------------------------------------------------------------------- spike products
def _heads_elem(ir_shape_: tuple, heads: int) -> torch.Tensor:
    """Per-head view [heads, N, C/heads] of a (C, H, W) node: (h * d + j) * N + n."""
    C, H, W = ir_shape_
    N, d = H * W, C // heads
    return torch.arange(C * N).reshape(heads, d, N).transpose(1, 2)


def _as_heads(ctx, ir: str, v: View, transposed: bool) -> int | None:
    """Number of heads if ``v`` is the per-head view of ``ir`` (or its transpose), else None."""
    shape = ir_shape(ctx, ir)
    e = elem_of(ctx, ir, v)
    if len(shape) != 3 or e.dim() not in (2, 3):
        return None
    e = e.unsqueeze(0) if e.dim() == 2 else e
    if transposed:
        e = e.transpose(1, 2)
    heads = e.shape[0]
    if shape[0] % heads or tuple(e.shape) != (heads, shape[1] * shape[2], shape[0] // heads):
        return None
    return heads if torch.equal(e, _heads_elem(shape, heads)) else None


def _spike_unit(ctx, node, ir: str) -> float:
    if ctx.kind(ir) != "spike":
        raise LoweringError(f"{where(node)}: a spike product needs spike inputs, but {ir!r} "
                            "carries graded values (put a spiking neuron before the matmul)")
    return ctx.unit[ir]


@handler(("call_function", operator.matmul), ("call_function", torch.matmul),
         ("call_method", "matmul"))
def lower_matmul(ctx, node) -> str:
    """First matmul of q k^T v: a Pending half; the second one makes the SpikeMatmul."""
    a, b = node.args
    pa, pb = pending_of(ctx, a.name), pending_of(ctx, b.name)
    if pa is None and pb is None:
        (_, ia, va), (_, ib, vb) = source(ctx, node, 0), source(ctx, node, 1)
        ha, hb = _as_heads(ctx, ia, va, False), _as_heads(ctx, ib, vb, True)
        order = "(qk)v"
        if ha is None or hb is None:
            ha, hb, order = _as_heads(ctx, ia, va, True), _as_heads(ctx, ib, vb, False), "q(kv)"
        if ha is None or hb is None or ha != hb or va.lead != vb.lead:
            raise LoweringError(_matmul_help(ctx, node))
        ctx.frontend.setdefault("pending", {})[node.name] = Pending(order, ia, ib, ha, va.lead)
        return f"<spike product {node.name}: to be multiplied by v>"
    if pa is not None and pa.order == "(qk)v" and pb is None:
        (_, iv, vv) = source(ctx, node, 1)
        q, k, v, p, ok = pa.a, pa.b, iv, pa, _as_heads(ctx, iv, vv, False) == pa.heads
    elif pb is not None and pb.order == "q(kv)" and pa is None:
        (_, iq, vq) = source(ctx, node, 0)
        q, k, v, p, ok = iq, pb.a, pb.b, pb, _as_heads(ctx, iq, vq, False) == pb.heads
        vv = vq
    else:
        raise LoweringError(_matmul_help(ctx, node))
    if not ok or vv.lead != p.lead:
        raise LoweringError(_matmul_help(ctx, node))
    unit = math.prod(_spike_unit(ctx, node, x) for x in (q, k, v))
    op = G.SpikeMatmul(name=label(node), shape=ir_shape(ctx, v), heads=p.heads,
                       scale=p.scale * float(unit), order=p.order)
    out = ctx.add(op, [q, k, v], node.name)
    e = _heads_elem(ir_shape(ctx, v), p.heads)
    e = e if elem_of(ctx, v, vv).dim() == 3 else e[0]
    if tuple(recorded(ctx, node.name).shape) != p.lead + tuple(e.shape):
        raise LoweringError(_matmul_help(ctx, node))
    set_view(ctx, node.name, View(p.lead, e))
    return out


def _matmul_help(ctx, node) -> str:
    shapes = [list(recorded(ctx, a.name).shape) if isinstance(a, fx.Node) and
              isinstance(ctx.acts.get(a.name), torch.Tensor) else "pending" for a in node.args]
    return (f"{where(node)}: matmul of {shapes} is not a spike product the IR holds; expected "
            "(q @ k.transpose(-2, -1)) @ v or q @ (k.transpose(-2, -1) @ v) with q, k, v spike "
            "tensors [..., N, C] or per-head [..., heads, N, C/heads] (C split head-major, "
            "tokens N = H*W of a (C, H, W) map)")


# ----------------------------------------------------------------------------- means
@handler(("call_method", "mean"), ("call_function", torch.mean))
def lower_mean(ctx, node) -> str:
    """``x.mean(0)`` over time is the Readout; a mean over all token dims is a TokenMean."""
    name, ir, v = source(ctx, node)
    args = _resolve(ctx, node.args[1:])
    kw = _resolve(ctx, dict(node.kwargs))
    dims = kw.get("dim", args[0] if args else None)
    if kw.get("keepdim", args[1] if len(args) > 1 else False) or dims is None:
        raise LoweringError(f"{where(node)}: mean needs dims and keepdim=False")
    nd = recorded(ctx, name).dim()
    dims = sorted({d % nd for d in (dims if isinstance(dims, (tuple, list)) else [dims])})
    if dims == [0] and not stepwise(ctx) and len(v.lead) == 2:
        return _readout(ctx, node, name, v.lead)
    k = len(v.lead)
    if not dims or dims[0] < k:
        raise LoweringError(f"{where(node)}: mean over dims {dims} mixes time or batch")
    return _token_mean(ctx, node, name, ir, v, [d - k for d in dims])


def _token_mean(ctx, node, name: str, ir: str, v: View, dims: list[int]) -> str:
    shape = ir_shape(ctx, ir)
    e = elem_of(ctx, ir, v)
    keep = [d for d in range(e.dim()) if d not in dims]
    HW = math.prod(shape[1:]) if len(shape) == 3 else 0
    ok = len(shape) == 3 and len(keep) == 1
    if ok:
        e = e.permute(*keep, *dims).reshape(e.shape[keep[0]], -1)
        ch, pos = e // HW, e % HW
        ok = bool((ch == ch[:, :1]).all()) and bool((pos == pos[:1]).all())
    if not ok:
        raise LoweringError(f"{where(node)}: a mean lowers over all token positions of a "
                            f"(C, H, W) map, keeping its channels (a TokenMean)")
    grid = ctx.frontend.get("grid", {}).get(ir)
    in_scale = ctx.unit[ir] if ctx.kind(ir) == "spike" else grid or ctx.in_step(name)
    op = G.TokenMean(name=label(node), shape=(shape[0],), in_scale=in_scale, in_bits=ctx.in_bits)
    out = ctx.add(op, [ir], node.name)
    ctx.frontend.setdefault("grid", {})[out] = in_scale / HW     # outputs: counts * in_scale / N
    order = ch[:, 0]
    if not torch.equal(order, torch.arange(shape[0])):
        set_view(ctx, node.name, View(v.lead, order))
    elif v.lead != leads(ctx)[0]:
        set_view(ctx, node.name, View(v.lead))
    return out
