"""Lowerings of standard ``torch.nn`` modules in a user's own model (registered into
``lower.LOWERINGS``; importing this module registers them).

Conv2d and Linear are weighted projections (per-channel quantized like the zoo's); a BatchNorm
that follows one (through rearrangements only, the projection used nowhere else) is folded into
it: W' = W * g, b' = (b - mu) * g + beta, g = gamma / sqrt(var + eps); any other BatchNorm is a
per-channel affine, lowered as a depthwise 1x1 convolution (maps) or a diagonal Linear (vectors).
A Linear applied over the last dim of tokens [..., N, C] is a 1x1 convolution on the (C, H, W)
map the tokens come from. MaxPool2d is a Pool; AvgPool2d and AdaptiveAvgPool2d are depthwise
convolutions with unit weights and scale 1/k^2 (on spikes: a sum pool, exact), whose outputs
are known multiples of that scale, so a projection reading them quantizes on that grid exactly.
Flatten, Unflatten, Identity and Dropout (inference) rearrange or pass values through.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import fx, nn

from neurosim.frontends import lower as _lower
from neurosim.frontends import tensor_ops as ops
from neurosim.frontends.lower import LoweringError, lowering
from neurosim.ir import graph as G

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
FOLD_HOPS = 8           # rearrangements allowed between a projection and the BN folded into it


def _pair(v, what: str, where: str) -> int:
    """An int or a square pair; anything else is an error naming the module and parameter."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise LoweringError(f"{where}: non-square {what} {tuple(v)}; the IR holds square "
                                "kernels and equal strides/padding")
        v = v[0]
    return int(v)


def _where(node, mod) -> str:
    return f"module {node.target!r} ({type(mod).__name__})"


def grid_of(ctx, ir: str) -> float | None:
    """Known spacing of a graded node's values (average pools), or None."""
    return ctx.frontend.get("grid", {}).get(ir)


def project(ctx, cls, node, src_fx: str, src: str, w: torch.Tensor, b: torch.Tensor,
            **kw) -> str:
    """A weighted projection (``lower._projection``); a graded input on a known grid is
    quantized on that grid, exactly."""
    grid = grid_of(ctx, src)
    if ctx.kind(src) == "spike" or grid is None:
        return _lower._projection(ctx, cls, node.target, src_fx, src, w, b, node.name, **kw)
    wq, ws = _lower._quant_weight(w, ctx.weight_bits)
    op = cls(name=node.target, weight=wq, scale=ws * grid, bias=b.numpy(),
             weight_bits=ctx.weight_bits, in_scale=grid, in_bits=ctx.in_bits,
             weight_float=w.float().numpy(), **kw)
    return ctx.add(op, [src], node.name)


# ----------------------------------------------------------------------------- batch norm
def following_bn(node: fx.Node) -> fx.Node | None:
    """The BatchNorm node this projection feeds through rearrangements only, used nowhere
    else (so it can be folded), or None."""
    gm = node.graph.owning_module
    cur = node
    for _ in range(FOLD_HOPS):
        if len(cur.users) != 1:
            return None
        (u,) = cur.users
        if u.op == "call_module":
            m = gm.get_submodule(u.target)
            if isinstance(m, BATCHNORMS):
                return u if u.args[0] is cur else None
            if _lower.LOWERINGS.get(type(m)) not in (view_module, identity):
                return None
        elif not (u.op == "call_method" and u.target in ops.VIEW_METHODS or
                  u.op == "call_function" and u.target in ops.VIEW_FUNCTIONS):
            return None
        cur = u
    return None


def _bn_for(ctx, node) -> tuple[nn.Module | None, fx.Node | None]:
    bn_node = following_bn(node)
    if bn_node is None:
        return None, None
    ctx.frontend.setdefault("folded_bn", set()).add(bn_node.name)
    return node.graph.owning_module.get_submodule(bn_node.target), bn_node


def _affine(node, bn) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, h) with BN(z) = g z + h from the running statistics (inference)."""
    if bn.running_var is None:
        raise LoweringError(f"module {node.target!r} ({type(bn).__name__}) keeps no running "
                            "statistics (track_running_stats=False); inference needs them")
    return _lower._bn_fold(bn, bn.num_features)


def _fold(ctx, node, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    bn, bn_node = _bn_for(ctx, node)
    if bn is None:
        return w, b
    if bn.num_features != w.shape[0]:
        raise LoweringError(f"module {bn_node.target!r}: {bn.num_features} channels after "
                            f"{node.target!r} with {w.shape[0]} outputs")
    g, h = _affine(bn_node, bn)
    return w * g.view(-1, *[1] * (w.dim() - 1)), b * g + h


def _bn_channels_match(ctx, node, mod, ir: str, v: ops.View) -> None:
    """The BN's channel dim must be the IR node's channel axis, in order."""
    where = _where(node, mod)
    cdim = 2 if getattr(mod, "step_mode", "s") == "m" else 1
    if len(v.lead) != cdim:
        raise LoweringError(f"{where}: normalizes dim {cdim} of a tensor shaped "
                            f"{list(ops.recorded(ctx, node.args[0].name).shape)} whose leading "
                            f"dims {list(v.lead)} are time/batch; its channels would mix them")
    shape = ops.ir_shape(ctx, ir)
    if v.elem is not None:
        ch = v.elem // math.prod(shape[1:])
        want = torch.arange(shape[0]).view(-1, *[1] * (ch.dim() - 1))
        if ch.shape[0] != shape[0] or not bool((ch == want).all()):
            raise LoweringError(f"{where}: its channel dim is not the channel axis of {ir!r} "
                                "(normalize channels in the order the layer before made them)")


@lowering(*BATCHNORMS)
def _batchnorm(ctx, node, mod, args):
    """Folded (already applied by the projection) or a per-channel affine projection."""
    name, ir, v = ops.source(ctx, node)
    _bn_channels_match(ctx, node, mod, ir, v)
    if node.name in ctx.frontend.get("folded_bn", ()):
        ops.set_view(ctx, node.name, v)
        return ir
    shape = ops.ir_shape(ctx, ir)
    g, h = _affine(node, mod)
    if len(shape) == 3:
        out = project(ctx, G.Conv, node, name, ir, g.view(-1, 1, 1, 1), h, shape=shape,
                      in_shape=shape, groups=shape[0], form="batchnorm")
    else:
        out = project(ctx, G.Linear, node, name, ir, torch.diag(g), h, shape=shape,
                      in_shape=shape)
    ops.set_view(ctx, node.name, v)
    return out


# ----------------------------------------------------------------------------- projections
@lowering(nn.Conv2d)
def conv2d(ctx, node, mod: nn.Conv2d, args):
    where = _where(node, mod)
    if mod.padding_mode != "zeros" or _pair(mod.dilation, "dilation", where) != 1:
        raise LoweringError(f"{where}: padding_mode={mod.padding_mode!r}, dilation="
                            f"{mod.dilation}; the IR holds zero-padded, undilated convolutions")
    k = _pair(mod.kernel_size, "kernel", where)
    s = _pair(mod.stride, "stride", where)
    p = (k - 1) // 2 if mod.padding == "same" else 0 if mod.padding == "valid" else \
        _pair(mod.padding, "padding", where)
    name, ir, v = ops.source(ctx, node)
    if v.elem is not None or len(ops.ir_shape(ctx, ir)) != 3:
        raise LoweringError(f"{where}: its input is a rearranged view of {ir!r}; a convolution "
                            "reads (C, H, W) maps in their own order")
    w = mod.weight.detach().double()
    b = mod.bias.detach().double() if mod.bias is not None else \
        torch.zeros(mod.out_channels, dtype=torch.float64)
    w, b = _fold(ctx, node, w, b)
    out_shape = tuple(ops.recorded(ctx, node.name).shape[len(v.lead):])
    in_shape = ops.ir_shape(ctx, ir)
    out = project(ctx, G.Conv, node, name, ir, w, b, shape=out_shape, in_shape=in_shape,
                  stride=s, padding=p, groups=mod.groups,
                  ssc=ctx.ssc and s == 1 and out_shape[1:] == in_shape[1:])
    ops.set_view(ctx, node.name, ops.View(v.lead))
    return out


@lowering(nn.Linear)
def linear(ctx, node, mod: nn.Linear, args):
    """Over a vector: a Linear (columns follow the input's order); over tokens [..., N, C]:
    a 1x1 Conv on the (C, H, W) map they come from."""
    name, ir, v = ops.source(ctx, node)
    shape = ops.ir_shape(ctx, ir)
    e = ops.elem_of(ctx, ir, v)
    w0 = mod.weight.detach().double()
    b = mod.bias.detach().double() if mod.bias is not None else \
        torch.zeros(mod.out_features, dtype=torch.float64)
    if e.dim() == 1:                                 # a vector, possibly a flattened map
        w = torch.zeros(mod.out_features, math.prod(shape), dtype=torch.float64)
        w[:, e] = w0
        w, b = _fold(ctx, node, w, b)
        out = project(ctx, G.Linear, node, name, ir, w, b, shape=(mod.out_features,),
                      in_shape=shape)
        ops.set_view(ctx, node.name, ops.View(v.lead))
        return out
    HW = math.prod(shape[1:]) if len(shape) == 3 else 0
    ok = HW > 0 and e.shape[-1] == shape[0]
    if ok:
        ch, pos = e // HW, e % HW
        ok = bool((ch == ch.reshape(-1, shape[0])[:1].reshape(ch.shape[-1])).all()) and \
            bool((pos == pos[..., :1]).all())
    if not ok:
        raise LoweringError(f"{_where(node, mod)}: input {list(ops.recorded(ctx, name).shape)} "
                            f"is neither a vector nor tokens [..., N, C] of a (C, H, W) map "
                            f"(it is a view of {ir!r} {shape})")
    order = ch.reshape(-1, shape[0])[0]
    w = torch.zeros(mod.out_features, shape[0], 1, 1, dtype=torch.float64)
    w[:, order, 0, 0] = w0
    w, b = _fold(ctx, node, w, b)
    out_shape = (mod.out_features,) + tuple(shape[1:])
    out = project(ctx, G.Conv, node, name, ir, w, b, shape=out_shape, in_shape=shape,
                  form="token-linear")
    e_out = pos[..., :1] + torch.arange(mod.out_features) * HW
    ops.set_view(ctx, node.name, ops.analyze(ctx, out, ops.full_index(
        ctx, out, ops.View(v.lead, e_out)), _where(node, mod)))
    return out


# ----------------------------------------------------------------------------- pooling
@lowering(nn.MaxPool2d)
def max_pool2d(ctx, node, mod: nn.MaxPool2d, args):
    where = _where(node, mod)
    if mod.ceil_mode or mod.return_indices or _pair(mod.dilation, "dilation", where) != 1:
        raise LoweringError(f"{where}: ceil_mode, return_indices and dilation are not supported")
    name, ir, v = _map_input(ctx, node, mod)
    op = G.Pool(name=node.target, shape=tuple(ops.recorded(ctx, node.name).shape[len(v.lead):]),
                in_shape=ops.ir_shape(ctx, ir), kernel=_pair(mod.kernel_size, "kernel", where),
                stride=_pair(mod.stride, "stride", where),
                padding=_pair(mod.padding, "padding", where))
    out = ctx.add(op, [ir], node.name, unit=ctx.unit.get(ir))
    ops.set_view(ctx, node.name, ops.View(v.lead))
    return out


def _map_input(ctx, node, mod) -> tuple[str, str, ops.View]:
    name, ir, v = ops.source(ctx, node)
    if v.elem is not None or len(ops.ir_shape(ctx, ir)) != 3:
        raise LoweringError(f"{_where(node, mod)}: pools (C, H, W) maps in their own order; "
                            f"its input is a view of {ir!r}")
    return name, ir, v


def avg_pool(ctx, node, mod, k: int, s: int, p: int) -> str:
    """Depthwise conv with unit weights, scale u / k^2 (u: one input count's value)."""
    name, ir, v = _map_input(ctx, node, mod)
    shape = ops.ir_shape(ctx, ir)
    C = shape[0]
    if ctx.kind(ir) == "spike":
        in_scale, u = 1.0, ctx.unit[ir]
    else:
        in_scale = grid_of(ctx, ir) or ctx.in_step(name)
        u = in_scale
    step = u / (k * k)
    out_shape = tuple(ops.recorded(ctx, node.name).shape[len(v.lead):])
    op = G.Conv(name=node.target, shape=out_shape, in_shape=shape,
                weight=np.ones((C, 1, k, k), np.int8), scale=np.full(C, step),
                bias=np.zeros(C), weight_bits=ctx.weight_bits, in_scale=in_scale,
                in_bits=ctx.in_bits, weight_float=np.full((C, 1, k, k), 1.0 / (k * k)),
                stride=s, padding=p, groups=C, form="avgpool")
    out = ctx.add(op, [ir], node.name)
    ctx.frontend.setdefault("grid", {})[out] = step
    ops.set_view(ctx, node.name, ops.View(v.lead))
    return out


@lowering(nn.AvgPool2d)
def avg_pool2d(ctx, node, mod: nn.AvgPool2d, args):
    where = _where(node, mod)
    k, s, p = (_pair(x, n, where) for x, n in ((mod.kernel_size, "kernel"),
                                               (mod.stride, "stride"), (mod.padding, "padding")))
    if mod.ceil_mode or mod.divisor_override or (p and not mod.count_include_pad):
        raise LoweringError(f"{where}: ceil_mode, divisor_override and count_include_pad=False "
                            "with padding are not supported (the divisor must be k*k)")
    return avg_pool(ctx, node, mod, k, s, p)


@lowering(nn.AdaptiveAvgPool2d)
def adaptive_avg_pool2d(ctx, node, mod, args):
    name, ir, v = _map_input(ctx, node, mod)
    _, H, W = ops.ir_shape(ctx, ir)
    oh, ow = tuple(ops.recorded(ctx, node.name).shape[-2:])
    if H % oh or W % ow or H // oh != W // ow:
        raise LoweringError(f"{_where(node, mod)}: {H}x{W} -> {oh}x{ow} is not an even square "
                            "pooling window")
    return avg_pool(ctx, node, mod, H // oh, H // oh, 0)


# ----------------------------------------------------------------------------- pass-through
@lowering(nn.Flatten, nn.Unflatten)
def view_module(ctx, node, mod, args):
    return ops.apply_view(ctx, node, mod)


@lowering(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
def identity(ctx, node, mod, args):
    if mod.training:
        raise LoweringError(f"{_where(node, mod)} is in training mode; lower the model in eval()")
    return ops.apply_view(ctx, node, lambda i: i)



# ----------------------------------------------------------------------------- neurons
def neurons(ctx, node, mod, *, model: str, v_th: float, v_reset: float = 0.0, tau: float = 2.0,
            reset: str = "hard", decay_input: bool = True, unit: float = 1.0,
            single_step: bool) -> str:
    """A Neurons population over the input's IR node (elementwise: the view carries over).
    ``single_step``: the module is called once per tick (needs a ``Stepwise`` model); else it
    takes [T, B, ...] (needs a multi-step model)."""
    name, ir, v = ops.source(ctx, node)
    where = _where(node, mod)
    if single_step != ops.stepwise(ctx):
        raise LoweringError(
            f"{where} is a {'single' if single_step else 'multi'}-step neuron in a "
            f"{'single' if ops.stepwise(ctx) else 'multi'}-step model: "
            + ("wrap the model with neurosim.frontends.stepwise.stepwise(model, T)"
               if single_step else "set the model's neurons to multi-step mode ('m') or lower "
               "the model unwrapped"))
    if v.lead != ops.leads(ctx)[0]:
        raise LoweringError(f"{where}: receives a tensor shaped "
                            f"{list(ops.recorded(ctx, name).shape)}; a multi-step neuron needs "
                            "[T, B, ...] (time first, then batch)")
    shape = ops.ir_shape(ctx, ir)
    C = shape[0]
    op = G.Neurons(name=node.target, shape=shape, model=model, v_th=np.full(C, float(v_th)),
                   v_reset=np.full(C, float(v_reset)), tau=float(tau), reset=reset,
                   decay_input=bool(decay_input), state_bits=ctx.state_bits,
                   v_lsb=2.0 ** -(ctx.state_bits // 2))
    out = ctx.add(op, [ir], node.name, unit=unit)
    ops.set_view(ctx, node.name, v)
    return out
