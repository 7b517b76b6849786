"""Lowering: a trained zoo model -> ``neurosim.Graph``.

``torch.fx`` traces the model with the leaf vocabulary of ``models.layers`` / ``models.neurons``
as leaves; each leaf is lowered by the function registered for its type in ``LOWERINGS``; an
unmapped module or function raises an error naming its path and type. Then:

* BN is folded into weights and biases: W' = W * g, b' = (b - mu) * g + beta, g = gamma/sigma.
* Weights are quantized per output channel to ``weight_bits`` (symmetric, w_scale = max|W'| /
  (2^(b-1)-1)); the float folded weights stay in ``weight_float``.
* Values are tracked with a *unit* (the real value of one count): LIF spikes 1, SFA bursts
  1/Norm. A projection's ``scale`` = w_scale x unit (spike input) or w_scale x in_scale (graded
  input, quantized with a step calibrated on the example input).
* A projection whose only consumer is a neuron population has its scale folded into that
  population's threshold: bias' = bias / scale, V_th' = V_th / scale, scale' = 1 (the membrane is
  then counted in weight LSBs). This is how SDSA-3's 0.125 becomes threshold 0.5 / 0.125 = 4.
* RepConv is fused into one 3x3 conv (``repconv="fused"``) or kept as three stages
  ("unfused", graded MAC stages); the node's ``form`` says which.

Users' own models (standard torch.nn layers, tensor operations inside ``forward``, spikingjelly
and snntorch neurons) lower through the same loop: ``frontends.user_models`` registers their
lowerings here (``LOWERINGS``, ``FX_NODES`` for fx function/method nodes, ``TRACE_FORWARDS``
for containers fx cannot trace).
"""
from __future__ import annotations

import dataclasses
import functools
import operator
import warnings

import numpy as np
import torch
from torch import fx, nn

from models import layers as L
from models import neurons as N
from models.checkpoint import SSCMismatchWarning, ssc_mismatch
from neurosim.ir import graph as G

LOWERINGS: dict[type, callable] = {}
FUNCTIONS = {operator.add: "add"}
# (fx op, target) -> fn(ctx, node) -> IR node name, for fx nodes other than leaf modules
# (placeholder and output use target None); filled by neurosim.frontends.tensor_ops
FX_NODES: dict[tuple[str, object], callable] = {}
# module type -> traceable replacement forward(module, *args) for containers fx cannot trace
# (e.g. spikingjelly's SeqToANNContainer); filled by the frontends that know them
TRACE_FORWARDS: dict[type, callable] = {}


def lowering(*types):
    def deco(fn):
        for t in types:
            LOWERINGS[t] = fn
        return fn
    return deco


class LoweringError(ValueError):
    """The model cannot be lowered; the message names the module path and type."""


# ----------------------------------------------------------------------------- tracing
def leaf_types() -> tuple[type, ...]:
    return tuple(LOWERINGS)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, leaf_types()) or not any(True for _ in m.children())

    def call_module(self, m: nn.Module, forward, args, kwargs):
        fwd = TRACE_FORWARDS.get(type(m))
        if fwd is not None:
            forward = functools.partial(fwd, m)
        return super().call_module(m, forward, args, kwargs)


def trace(model: nn.Module) -> fx.GraphModule:
    """fx-trace ``model`` with the lowering's leaves (errors name the failing construct)."""
    try:
        g = _Tracer().trace(model)
    except Exception as e:  # fx raises many types; report them uniformly
        raise LoweringError(f"cannot trace {type(model).__name__}: {e}") from None
    return fx.GraphModule(model, g)


class _Recorder(fx.Interpreter):
    def __init__(self, gm):
        super().__init__(gm)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n):
        out = super().run_node(n)
        self.values[n.name] = out
        return out


# ----------------------------------------------------------------------------- context
@dataclasses.dataclass
class _Ctx:
    graph: G.Graph
    acts: dict
    weight_bits: int
    in_bits: int
    state_bits: int
    repconv: str
    ssc: bool
    env: dict = dataclasses.field(default_factory=dict)     # fx node name -> IR node name
    unit: dict = dataclasses.field(default_factory=dict)    # IR spike node -> value of one count
    fx_map: dict = dataclasses.field(default_factory=dict)  # fx node name -> [IR node names]
    frontend: dict = dataclasses.field(default_factory=dict)  # tensor_ops state: views, folds

    def shape(self, fx_name: str) -> tuple:
        t = self.acts[fx_name]
        return tuple(t.shape[1:]) if fx_name == "__input__" else tuple(t.shape[2:])

    def kind(self, ir: str) -> str:
        return self.graph.out_kind(ir)

    def add(self, op: G.Node, inputs: list[str], fx_name: str, unit: float | None = None) -> str:
        self.graph.add(op, inputs)
        self.fx_map.setdefault(fx_name, []).append(op.name)
        if unit is not None:
            self.unit[op.name] = float(unit)
        return op.name

    def in_step(self, fx_src: str) -> float:
        """Quantization step for a graded value: 2 max |x| over the example / (2^(b-1) - 1)
        (a factor 2 of headroom: the quantized graph may exceed the float model's range)."""
        return calib_step(self.acts[fx_src], self.in_bits)


CALIB_HEADROOM = 2.0


def calib_step(x: torch.Tensor, bits: int) -> float:
    m = float(x.abs().max()) * CALIB_HEADROOM
    return (m if m > 0 else 1.0) / (2 ** (bits - 1) - 1)


def _quant_weight(w: torch.Tensor, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization: (integer weights, scales)."""
    w = w.detach().double()
    qmax = 2 ** (bits - 1) - 1
    m = w.reshape(w.shape[0], -1).abs().amax(dim=1)
    scale = torch.where(m > 0, m / qmax, torch.ones_like(m))
    wq = torch.clamp(torch.round(w / scale.view(-1, *[1] * (w.dim() - 1))), -qmax, qmax)
    return wq.numpy(), scale.numpy()


def _bn_fold(bn: nn.BatchNorm2d | None, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, h) such that BN(z) = g * z + h, per channel, float64."""
    if bn is None:
        return torch.ones(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
    g = (bn.weight.detach().double() if bn.affine else torch.ones(c, dtype=torch.float64)) / \
        torch.sqrt(bn.running_var.double() + bn.eps)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros(c, dtype=torch.float64)
    return g, beta - bn.running_mean.double() * g


def _input_scale(ctx: _Ctx, src_ir: str, src_fx: str) -> tuple[float, float]:
    """(in_scale, unit multiplier of the accumulator) for a projection fed by ``src_ir``."""
    if ctx.kind(src_ir) == "spike":
        return 1.0, ctx.unit[src_ir]
    step = ctx.in_step(src_fx)
    return step, step


def _projection(ctx: _Ctx, cls, name: str, fx_src: str, src: str, w: torch.Tensor,
                b: torch.Tensor, fx_name: str, **kw) -> str:
    wq, wscale = _quant_weight(w, ctx.weight_bits)
    in_scale, unit = _input_scale(ctx, src, fx_src)
    op = cls(name=name, weight=wq, scale=wscale * unit, bias=b.numpy(), weight_bits=ctx.weight_bits,
             in_scale=in_scale, in_bits=ctx.in_bits, weight_float=w.float().numpy(), **kw)
    return ctx.add(op, [src], fx_name)


# ----------------------------------------------------------------------------- leaf lowerings
@lowering(L.Encoder)
def _lower_encoder(ctx, node, mod, args):
    x = ctx.acts["__input__"]
    shape = tuple(x.shape[1:]) if x.dim() == 4 else tuple(x.shape[2:])
    events = x.dim() == 5 and bool(torch.all(x >= 0)) and bool(torch.all(x == torch.round(x)))
    op = G.Input(name="input", shape=shape, kind="spike" if events else "graded", T=mod.T)
    return ctx.add(op, [], node.name, unit=1.0)


@lowering(L.ConvBN)
def _lower_conv(ctx, node, mod: L.ConvBN, args):
    conv = mod.conv
    c_out = conv.out_channels
    g, h = _bn_fold(mod.bn, c_out)
    w = conv.weight.detach().double() * g.view(-1, 1, 1, 1)
    b0 = conv.bias.detach().double() if conv.bias is not None else torch.zeros(c_out, dtype=torch.float64)
    b = b0 * g + h
    src_fx = node.args[0].name
    return _projection(ctx, G.Conv, node.target, src_fx, args[0], w, b, node.name,
                       shape=ctx.shape(node.name), in_shape=ctx.shape(src_fx),
                       stride=conv.stride[0], padding=conv.padding[0], groups=conv.groups,
                       ssc=ctx.ssc and conv.stride[0] == 1 and ctx.shape(node.name)[1:] ==
                       ctx.shape(src_fx)[1:])


def repconv_fused(mod: L.RepConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact fusion of RepConvBN into one 3x3 conv (padding 1): (weight, bias), float64.

    y = bn2(bn1(pw2(dw(pad_h(g0 * pw1(x) + h0))))) with the padding ring at h0 = BN(0); since
    pad_h(g0 * z + h0) = g0 * pad_0(z) + h0, the map is a 3x3 conv of zero-padded x with kernel
    K[o,i] = a[o] * sum_c pw2[o,c] dw[c] g0[c] pw1[c,i] and bias a[o] * sum_c pw2[o,c] h0[c]
    sum(dw[c]) + b[o], where a, b is bn2 o bn1.
    """
    pw1 = mod.pw1.weight.detach().double()[:, :, 0, 0]           # C x Ci
    dw = mod.dw.weight.detach().double()[:, 0]                    # C x 3 x 3
    pw2 = mod.pw2.weight.detach().double()[:, :, 0, 0]           # Co x C
    g0, h0 = _bn_fold(mod.bn_pad.bn, pw1.shape[0])
    g1, h1 = _bn_fold(mod.bn1, pw2.shape[0])
    g2, h2 = _bn_fold(mod.bn2, pw2.shape[0])
    a, bb = g2 * g1, g2 * h1 + h2
    K = torch.einsum("oc,cyx,c,ci->oiyx", pw2, dw, g0, pw1) * a.view(-1, 1, 1, 1)
    bias = a * (pw2 @ (h0 * dw.sum(dim=(1, 2)))) + bb
    return K, bias


@lowering(L.RepConvBN)
def _lower_repconv(ctx, node, mod: L.RepConvBN, args):
    src_fx, shape = node.args[0].name, ctx.shape(node.name)
    in_shape = ctx.shape(src_fx)
    if ctx.repconv == "fused":
        K, bias = repconv_fused(mod)
        return _projection(ctx, G.Conv, node.target, src_fx, args[0], K, bias, node.name,
                           shape=shape, in_shape=in_shape, stride=1, padding=1,
                           form="repconv-fused")
    # unfused: pw1 * g0 (graded out) -> dw3x3 zero-pad + h0 * sum(dw) -> pw2 with bn2 o bn1
    C = mod.pw1.out_channels
    g0, h0 = _bn_fold(mod.bn_pad.bn, C)
    g1, h1 = _bn_fold(mod.bn1, mod.pw2.out_channels)
    g2, h2 = _bn_fold(mod.bn2, mod.pw2.out_channels)
    w1 = mod.pw1.weight.detach().double() * g0.view(-1, 1, 1, 1)
    s1 = _projection(ctx, G.Conv, f"{node.target}.pw1", src_fx, args[0], w1,
                     torch.zeros(C, dtype=torch.float64), node.name,
                     shape=(C,) + in_shape[1:], in_shape=in_shape, form="repconv-unfused")
    step = _unfused_step(ctx, node, mod, stage=1)
    dww = mod.dw.weight.detach().double()
    s2 = _graded_projection(ctx, G.Conv, f"{node.target}.dw", s1, dww, h0 * dww.sum(dim=(1, 2, 3)),
                            step, node.name, shape=(C,) + in_shape[1:], in_shape=(C,) + in_shape[1:],
                            padding=1, groups=C, form="repconv-unfused")
    step2 = _unfused_step(ctx, node, mod, stage=2)
    w3 = mod.pw2.weight.detach().double() * (g2 * g1).view(-1, 1, 1, 1)
    return _graded_projection(ctx, G.Conv, f"{node.target}.pw2", s2, w3, g2 * h1 + h2, step2,
                              node.name, shape=shape, in_shape=(C,) + in_shape[1:],
                              form="repconv-unfused")


def _unfused_step(ctx, node, mod: L.RepConvBN, stage: int) -> float:
    """Calibrated quantization step of an unfused RepConv's internal graded stage."""
    x = ctx.acts[node.args[0].name]
    with torch.no_grad():
        z = L._seq(mod.pw1, x)
        g0, _ = _bn_fold(mod.bn_pad.bn, mod.pw1.out_channels)
        z = z * g0.float().view(1, 1, -1, 1, 1)
        if stage == 2:
            _, h0 = _bn_fold(mod.bn_pad.bn, mod.pw1.out_channels)
            bias = (h0 * mod.dw.weight.detach().double().sum(dim=(1, 2, 3))).float()
            z = L._seq(lambda t: nn.functional.conv2d(t, mod.dw.weight, bias, padding=1,
                                                      groups=mod.dw.groups), z)
    return calib_step(z, ctx.in_bits)


def _graded_projection(ctx, cls, name, src, w, b, step, fx_name, **kw) -> str:
    wq, wscale = _quant_weight(w, ctx.weight_bits)
    op = cls(name=name, weight=wq, scale=wscale * step, bias=b.numpy(),
             weight_bits=ctx.weight_bits, in_scale=step, in_bits=ctx.in_bits,
             weight_float=w.float().numpy(), **kw)
    return ctx.add(op, [src], fx_name)


@lowering(nn.Linear)
def _lower_linear(ctx, node, mod: nn.Linear, args):
    src_fx = node.args[0].name
    b = mod.bias.detach().double() if mod.bias is not None else \
        torch.zeros(mod.out_features, dtype=torch.float64)
    return _projection(ctx, G.Linear, node.target, src_fx, args[0], mod.weight.detach().double(),
                       b, node.name, shape=(mod.out_features,), in_shape=ctx.shape(src_fx))


@lowering(L.MaxPool)
def _lower_pool(ctx, node, mod: L.MaxPool, args):
    op = G.Pool(name=node.target, shape=ctx.shape(node.name), in_shape=ctx.shape(node.args[0].name),
                kernel=mod.kernel_size, stride=mod.stride, padding=mod.padding)
    return ctx.add(op, args, node.name, unit=ctx.unit.get(args[0]))


def _neuron_op(ctx, node, cfg: N.NeuronConfig, v_th: float, tau: float) -> G.Neurons:
    shape = ctx.shape(node.name)
    C = shape[0]
    model = {"lif": "lif", "plif": "lif", "if": "if", "sfa": "sfa", "mt": "mt"}[cfg.kind]
    common = dict(name=node.target, shape=shape, model=model, state_bits=ctx.state_bits,
                  v_lsb=2.0 ** -(ctx.state_bits // 2))
    if model == "sfa":
        return G.Neurons(**common, v_th=np.ones(C), D=cfg.D, reset="soft")
    if model == "mt":
        return G.Neurons(**common, v_th=np.full(C, cfg.theta_pos), levels=cfg.levels,
                         theta_neg=np.full(C, cfg.theta_neg), reset="soft")
    return G.Neurons(**common, v_th=np.full(C, v_th), v_reset=np.full(C, cfg.v_reset), tau=tau,
                     reset=cfg.reset, decay_input=cfg.decay_input)


def _lower_neuron(ctx, node, mod, args, v_th: float, tau: float):
    cfg = mod.cfg
    op = _neuron_op(ctx, node, cfg, v_th, tau)
    unit = 1.0 / cfg.norm if cfg.kind == "sfa" else 1.0
    return ctx.add(op, args, node.name, unit=unit)


@lowering(N.LIFNode)
def _lower_lif(ctx, node, mod: N.LIFNode, args):
    return _lower_neuron(ctx, node, mod, args, mod.cfg.v_th, mod.tau_value())


@lowering(N.LearnableThresholdLIF)
def _lower_learned_threshold(ctx, node, mod: N.LearnableThresholdLIF, args):
    return _lower_neuron(ctx, node, mod, args, mod.threshold(), mod.cfg.tau)


@lowering(N.SFANode, N.MultiThresholdNode)
def _lower_sfa_mt(ctx, node, mod, args):
    return _lower_neuron(ctx, node, mod, args, mod.cfg.v_th, mod.cfg.tau)


def _spike_unit(ctx, node, ir: str) -> float:
    if ctx.kind(ir) != "spike":
        raise LoweringError(f"module {node.target!r} ({type(node).__name__}) needs spike inputs, "
                            f"but {ir!r} carries graded values")
    return ctx.unit[ir]


@lowering(L.SpikeMatmul)
def _lower_matmul(ctx, node, mod: L.SpikeMatmul, args):
    u = np.prod([_spike_unit(ctx, node, a) for a in args])
    op = G.SpikeMatmul(name=node.target, shape=ctx.shape(node.name), heads=mod.heads,
                       scale=mod.scale * float(u))
    return ctx.add(op, args, node.name)


@lowering(L.TokenSumProduct)
def _lower_token_sum(ctx, node, mod, args):
    u = np.prod([_spike_unit(ctx, node, a) for a in args])
    op = G.TokenSum(name=node.target, shape=ctx.shape(node.name), scale=float(u))
    return ctx.add(op, args, node.name)


@lowering(L.TokenSum)
def _lower_token_sum_single(ctx, node, mod, args):
    op = G.TokenSum(name=node.target, shape=ctx.shape(node.name),
                    scale=float(_spike_unit(ctx, node, args[0])))
    return ctx.add(op, args, node.name)


@lowering(L.HadamardMask)
def _lower_mask(ctx, node, mod, args):
    kinds = [ctx.kind(a) for a in args]
    units = [ctx.unit.get(a, 1.0) for a in args]
    if "graded" in kinds and any(u != 1.0 for k, u in zip(kinds, units) if k == "spike"):
        raise LoweringError(f"module {node.target!r}: masking graded values with scaled spikes")
    op = G.Mask(name=node.target, shape=ctx.shape(node.name))
    return ctx.add(op, args, node.name,
                   unit=float(np.prod(units)) if kinds == ["spike", "spike"] else None)


@lowering(L.TokenMean)
def _lower_token_mean(ctx, node, mod, args):
    src_fx = node.args[0].name
    in_scale, _ = _input_scale(ctx, args[0], src_fx)
    if ctx.kind(args[0]) == "spike":
        in_scale = ctx.unit[args[0]]
    op = G.TokenMean(name=node.target, shape=ctx.shape(node.name), in_scale=in_scale,
                     in_bits=ctx.in_bits)
    return ctx.add(op, args, node.name)


@lowering(L.TimeMean)
def _lower_time_mean(ctx, node, mod, args):
    shape = tuple(ctx.acts[node.name].shape[1:])
    return ctx.add(G.Readout(name="readout", shape=shape), args, node.name)


def _lower_add(ctx, node, args, shape: tuple | None = None):
    kinds = [ctx.kind(a) for a in args]
    units = {ctx.unit.get(a, 1.0) for a, k in zip(args, kinds) if k == "spike"}
    if len(units) > 1 or ("graded" in kinds and units and units != {1.0}):
        raise LoweringError(f"add {node.name!r}: inputs {args} carry values of different units "
                            f"{sorted(units)}; cannot sum them exactly")
    op = G.Add(name=node.name, shape=shape or ctx.shape(node.name))
    return ctx.add(op, args, node.name, unit=units.pop() if kinds == ["spike"] * len(args) else None)


# ----------------------------------------------------------------------------- folding
FOLD_HEADROOM = 8.0


def fold_thresholds(graph: G.Graph) -> G.Graph:
    """Fold a projection's positive per-channel scale into its sole consumer population.

    Folding puts the membrane in weight LSBs; it is done only where the folded threshold, with
    a factor FOLD_HEADROOM to spare, fits the population's state register (a graded-input conv,
    whose LSB is tiny, keeps its population in fixed-point real units instead)."""
    for n in graph.order():
        op = graph.op(n)
        if not isinstance(op, G.Neurons):
            continue
        (src,) = graph.inputs(n)
        sop = graph.op(src)
        if graph.consumers(src) != [n] or not isinstance(sop, (G.Conv, G.Linear, G.SpikeMatmul)):
            continue
        s = np.broadcast_to(np.asarray(sop.scale, np.float64), (op.channels,)).copy()
        if not np.all(s > 0):
            continue
        vth_lsb = np.max(op.v_th / s) * (op.D if op.model == "sfa" else 1)
        if vth_lsb * FOLD_HEADROOM > 2.0 ** (op.state_bits - 1):
            continue
        if isinstance(sop, G.SpikeMatmul):
            new_src = dataclasses.replace(sop, scale=1.0)
        else:
            new_src = dataclasses.replace(sop, scale=np.ones_like(s), bias=sop.bias / s)
        new_op = dataclasses.replace(op, v_th=op.v_th / s, v_reset=op.v_reset / s,
                                     theta_neg=op.theta_neg / s, v_lsb=1.0)
        graph.replace(new_src)
        graph.replace(new_op)
        graph.meta.setdefault("folded", []).append([src, n])
    return graph


# ----------------------------------------------------------------------------- entry point
def _short(t: type) -> str:
    """``package.Class``: torch.Conv2d, spikingjelly.LIFNode, models.ConvBN."""
    return f"{t.__module__.split('.')[0]}.{t.__name__}"


def _holds_tensor(v) -> bool:
    return isinstance(v, torch.Tensor) or (isinstance(v, (tuple, list)) and
                                           any(isinstance(u, torch.Tensor) for u in v))


def record(model: nn.Module, x: torch.Tensor) -> tuple[fx.GraphModule, dict]:
    """Trace ``model`` and run it on ``x``: (GraphModule, {fx node name: value}) with the input
    under ``"__input__"``. A model may bring its own ``neurosim_record(x)`` returning the same
    (``frontends.stepwise.Stepwise`` traces one time step and stacks the T calls)."""
    if hasattr(model, "neurosim_record"):
        return model.neurosim_record(x)
    gm = trace(model)
    rec = _Recorder(gm)
    with torch.no_grad():
        try:
            rec.run(x)
        except Exception as e:
            raise LoweringError(f"example input of shape {tuple(x.shape)} does not run through "
                                f"{type(model).__name__}: {e}") from None
    acts = dict(rec.values)
    acts["__input__"] = x
    return gm, acts


def lower(model: nn.Module, example_input, weight_bits: int = 8, *, in_bits: int = 16,
          state_bits: int = 16, repconv: str = "fused", ssc: bool = False,
          fold: bool = True) -> G.Graph:
    """Lower ``model`` (eval mode) to a Graph, calibrating graded steps on ``example_input``.

    example_input: [B, C, H, W] images or [T, B, C, H, W] event frames (torch or numpy); a
    model without the zoo's Encoder takes [T, B, ...] (see ``frontends.user_models``).
    weight_bits: 2..16; repconv: "fused" | "unfused"; ssc: spike sparse convolution on every
    stride-1 'same' conv (warns, ``SSCMismatchWarning``, when the model was trained with
    vanilla convolution: ``models.checkpoint.ssc_mismatch``); fold: fold scales into thresholds.
    """
    if not 2 <= int(weight_bits) <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {weight_bits}")
    if repconv not in ("fused", "unfused"):
        raise ValueError(f"repconv must be 'fused' or 'unfused', got {repconv!r}")
    if ssc and ssc_mismatch(model):      # trained with VSC: SSC costs accuracy
        warnings.warn(SSCMismatchWarning(ssc_mismatch(model)), stacklevel=2)
    x = torch.as_tensor(np.asarray(example_input), dtype=torch.float32)
    if x.dim() < 3:
        raise ValueError(f"example_input must be [B, C, H, W] or [T, B, C, H, W], "
                         f"got shape {tuple(x.shape)}")
    model = model.eval()
    gm, acts = record(model, x)
    cfg = getattr(model, "neurosim_config", {})
    graph = G.Graph(meta={"model": cfg.get("name", type(model).__name__),
                          "family": cfg.get("family"), "config": cfg.get("config", {}),
                          "weight_bits": int(weight_bits), "in_bits": in_bits,
                          "state_bits": state_bits, "repconv": repconv, "ssc": ssc})
    ctx = _Ctx(graph, acts, int(weight_bits), in_bits, state_bits, repconv, ssc)
    modules = dict(gm.named_modules())
    encoder = any(isinstance(m, L.Encoder) for m in modules.values())
    for node in gm.graph.nodes:
        hook = FX_NODES.get((node.op, None if node.op in ("placeholder", "output")
                             else node.target))
        if node.op == "placeholder":       # the zoo's Encoder makes the Input node itself
            if hook is not None and not encoder:
                ctx.env[node.name] = hook(ctx, node)
            continue
        if node.op == "output":
            if hook is not None:           # a Readout for models that do not end in TimeMean
                hook(ctx, node)
            break
        if node.op != "call_module" and not _holds_tensor(acts.get(node.name)):
            continue                       # shape arithmetic (x.shape[0], C // heads): constants
        if hook is not None:
            ctx.env[node.name] = hook(ctx, node)
            continue
        args = []
        for a in node.args:
            if not isinstance(a, fx.Node):
                raise LoweringError(f"{node.op} {node.target!r} takes a constant argument {a!r}; "
                                    "only tensors from other layers are supported")
            if a.op != "placeholder" or a.name in ctx.env:
                args.append(ctx.env[a.name])
        if node.op == "call_module":
            mod = modules[node.target]
            fn = LOWERINGS.get(type(mod))
            if fn is None:
                raise LoweringError(f"no lowering for module {node.target!r} of type "
                                    f"{type(mod).__module__}.{type(mod).__name__}; lowerable "
                                    f"types: {', '.join(sorted({_short(t) for t in LOWERINGS}))}")
            ctx.env[node.name] = fn(ctx, node, mod, args)
        elif node.op == "call_function" and node.target in FUNCTIONS:
            ctx.env[node.name] = _lower_add(ctx, node, args)
        else:
            where = node.meta.get("stack_trace", "").strip().splitlines()[-1:] or [""]
            raise LoweringError(f"cannot lower {node.op} {getattr(node.target, '__name__', node.target)!r} "
                                f"(fx node {node.name!r}) {where[0]}; put it inside a leaf module")
    graph.meta["fx_map"] = ctx.fx_map
    if fold:
        fold_thresholds(graph)
    return graph.validate()
