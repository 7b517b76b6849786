"""Spiking neurons: pure step functions plus thin stateful ``nn.Module`` wrappers.

Equations (seed-facts §1; spikingjelly ``MultiStepLIFNode`` semantics):

    LIF charge (decay_input=True):  H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    LIF charge (decay_input=False): H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
    IF charge:                      H[t] = V[t-1] + X[t]
    fire:                           S[t] = Heaviside(H[t] - V_th), Heaviside(0) = 1
    hard reset:                     V[t] = H[t] * (1 - S[t]) + V_reset * S[t]
    soft reset:                     V[t] = H[t] - V_th * S[t]
    no reset:                       V[t] = H[t]

SFA integer neuron (seed sdt-v3 eq. 5): s = round(clamp(u, 0, D)) / Norm with a straight-through
gradient inside [0, D] and zero outside. Multi-threshold neuron (seed ecmt §4.3).

Multi-step modules take tensors shaped [T, B, ...] and loop over the first axis; the SFA neuron is
time-free (applied elementwise). Potentials are dimensionless (in units of the threshold's scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, asdict

import torch
from torch import nn

RESETS = ("hard", "soft", "none")
V_TH_MIN = 1e-3             # floor of a learned threshold (keeps it positive)
KINDS = ("lif", "if", "plif", "sfa", "mt")


# ----------------------------------------------------------------------------- surrogates
class _SigmoidSpike(torch.autograd.Function):
    """Heaviside forward; derivative of sigmoid(alpha * x) backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sg * (1.0 - sg), None


class _RectSpike(torch.autograd.Function):
    """Heaviside forward; rectangular window of width ``width`` (height 1/width) backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.width = width
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        w = ctx.width
        return grad * (x.abs() < w / 2).to(grad.dtype) / w, None


def heaviside(x: torch.Tensor, surrogate: str = "sigmoid", alpha: float = 4.0) -> torch.Tensor:
    """Spike function with a surrogate gradient: ``sigmoid`` (alpha) or ``rect`` (alpha = width)."""
    if surrogate == "sigmoid":
        return _SigmoidSpike.apply(x, alpha)
    if surrogate == "rect":
        return _RectSpike.apply(x, alpha)
    raise ValueError(f"unknown surrogate {surrogate!r}; expected 'sigmoid' or 'rect'")


# ----------------------------------------------------------------------------- pure steps
def lif_step(v: torch.Tensor, x: torch.Tensor, *, tau: float | torch.Tensor, v_th, v_reset: float,
             reset: str, decay_input: bool = True, leak: bool = True, surrogate: str = "sigmoid",
             alpha: float = 4.0, detach_reset: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of an LIF (``leak``) or IF neuron; returns ``(spike, v_next)``. See module doc."""
    if not leak:
        h = v + x
    elif decay_input:
        h = v + (x - (v - v_reset)) / tau
    else:
        h = v - (v - v_reset) / tau + x
    s = heaviside(h - v_th, surrogate, alpha)
    sr = s.detach() if detach_reset else s
    if reset == "hard":
        v_next = h * (1.0 - sr) + v_reset * sr
    elif reset == "soft":
        v_next = h - sr * v_th
    elif reset == "none":
        v_next = h
    else:
        raise ValueError(f"unknown reset {reset!r}; expected one of {RESETS}")
    return s, v_next


class _SFAQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, D: int) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.D = D
        return torch.floor(torch.clamp(u, 0, D) + 0.5)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        inside = (u >= 0) & (u <= ctx.D)
        return grad * inside.to(grad.dtype), None


def sfa_forward(u: torch.Tensor, D: int, norm: float) -> torch.Tensor:
    """SFA integer activation s = round(clamp(u, 0, D)) / Norm (seed sdt-v3 eq. 5).

    Rounding is half-up, floor(x + 0.5): exactly the spike count of an IF soft-reset burst
    (``if_soft_burst``, Proposition 1), so the chip's bursts and this activation agree bit for
    bit. The authors' code uses torch.round (half-to-even); the two differ only at exact .5 ties.
    The gradient is straight-through for 0 <= u <= D and zero elsewhere.
    """
    return _SFAQuant.apply(u, D) / norm


def if_soft_burst(u: torch.Tensor, D: int, v_th: float = 1.0) -> torch.Tensor:
    """Spike train of an IF soft-reset neuron given ``u`` in the first of D sub-steps.

    Returns spikes shaped [D, ...] (seed sdt-v3 Proposition 1). The 0.5 rounding bias is added
    to the first input, as the paper folds it into the weights: the burst length then equals
    floor(clamp(u, 0, D) + 0.5), i.e. ``sfa_forward(u, D, 1)``.
    """
    v = torch.zeros_like(u)
    out = []
    for d in range(D):
        x = u + 0.5 * v_th if d == 0 else torch.zeros_like(u)
        s, v = lif_step(v, x, tau=1.0, v_th=v_th, v_reset=0.0, reset="soft", leak=False)
        out.append(s)
    return torch.stack(out)


def multi_threshold_step(v: torch.Tensor, x: torch.Tensor, *, theta_pos: float, theta_neg: float,
                         levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-threshold neuron step (seed ecmt §4.3, ``TwoSideNeuron``).

    Thresholds theta_pos*2^k and -theta_neg*2^k (k = 0..levels-1). After integrating x, the
    neuron fires the largest positive level k with V >= theta_pos*2^k - theta_pos/2 (or the
    largest negative one with V <= -(theta_neg*2^k - theta_neg/2)), emits +-theta*2^k and
    soft-resets by it. Returns ``(output, v_next)`` where output is the emitted graded value.
    """
    h = v + x
    out = torch.zeros_like(h)
    pos = torch.zeros_like(h, dtype=torch.bool)
    neg = torch.zeros_like(h, dtype=torch.bool)
    for k in reversed(range(levels)):
        lp = theta_pos * 2.0 ** k
        ln = theta_neg * 2.0 ** k
        fire_p = (~pos) & (~neg) & (h >= lp - theta_pos / 2)
        fire_n = (~pos) & (~neg) & (~fire_p) & (h <= -(ln - theta_neg / 2))
        out = torch.where(fire_p, torch.full_like(h, lp), out)
        out = torch.where(fire_n, torch.full_like(h, -ln), out)
        pos |= fire_p
        neg |= fire_n
    return out, h - out


# ----------------------------------------------------------------------------- configuration
@dataclass
class NeuronConfig:
    """Neuron settings passed as configuration (one place, no repetition across layers).

    kind: lif | if | plif | sfa | mt. ``tau`` is the membrane time constant in time steps;
    ``init_tau`` seeds PLIF's learnable tau. ``D``/``norm`` configure SFA; ``levels``,
    ``theta_pos``, ``theta_neg`` the multi-threshold neuron.
    """

    kind: str = "lif"
    tau: float = 2.0
    v_th: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    decay_input: bool = True
    detach_reset: bool = True
    surrogate: str = "sigmoid"
    alpha: float = 4.0
    D: int = 4
    norm: float = 4.0
    levels: int = 8
    theta_pos: float = 1.0
    theta_neg: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"neuron kind {self.kind!r} unknown; expected one of {KINDS}")
        if self.reset not in RESETS:
            raise ValueError(f"neuron reset {self.reset!r} unknown; expected one of {RESETS}")
        if self.surrogate not in ("sigmoid", "rect"):
            raise ValueError(f"neuron surrogate {self.surrogate!r} unknown; expected sigmoid|rect")
        if not self.tau >= 1.0:
            raise ValueError(f"neuron tau must be >= 1 (time steps), got {self.tau}")
        if self.kind != "mt" and not self.v_th > 0:
            raise ValueError(f"neuron v_th must be > 0, got {self.v_th}")
        if int(self.D) != self.D or self.D < 1:
            raise ValueError(f"SFA D must be an integer >= 1, got {self.D}")
        if not self.norm > 0:
            raise ValueError(f"SFA norm must be > 0, got {self.norm}")
        if self.levels < 1 or self.theta_pos <= 0 or self.theta_neg <= 0:
            raise ValueError("multi-threshold neuron needs levels >= 1 and thresholds > 0")
        self.D = int(self.D)

    @classmethod
    def from_dict(cls, d: dict | "NeuronConfig" | None, **overrides) -> "NeuronConfig":
        base = asdict(d) if isinstance(d, NeuronConfig) else dict(d or {})
        base.update(overrides)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(base) - known)
        if unknown:
            raise ValueError(f"unknown neuron parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- modules
class LIFNode(nn.Module):
    """Multi-step LIF / IF / PLIF neuron over inputs shaped [T, B, ...] (see module doc).

    PLIF (parametric LIF, AutoST) learns w with tau = 1 / sigmoid(w), initialised from tau.
    """

    def __init__(self, cfg: NeuronConfig | dict | None = None, **overrides):
        super().__init__()
        self.cfg = NeuronConfig.from_dict(cfg, **overrides)
        if self.cfg.kind not in ("lif", "if", "plif"):
            raise ValueError(f"LIFNode cannot run neuron kind {self.cfg.kind!r}")
        if self.cfg.kind == "plif":
            self.w = nn.Parameter(torch.tensor(-math.log(self.cfg.tau - 1.0)
                                               if self.cfg.tau > 1.0 else 10.0))

    @property
    def leak(self) -> bool:
        return self.cfg.kind != "if"

    def tau_value(self) -> float:
        """Current membrane time constant in steps (learned for PLIF)."""
        if self.cfg.kind == "plif":
            return float(1.0 / torch.sigmoid(self.w.detach()))
        return self.cfg.tau

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        tau = 1.0 / torch.sigmoid(self.w) if c.kind == "plif" else c.tau
        v = torch.full_like(x[0], c.v_reset)
        out = []
        for t in range(x.shape[0]):
            s, v = lif_step(v, x[t], tau=tau, v_th=c.v_th, v_reset=c.v_reset, reset=c.reset,
                            decay_input=c.decay_input, leak=self.leak, surrogate=c.surrogate,
                            alpha=c.alpha, detach_reset=c.detach_reset)
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        c = self.cfg
        return f"kind={c.kind}, tau={c.tau}, v_th={c.v_th}, reset={c.reset}"


class SFANode(nn.Module):
    """SFA integer neuron, time-free: s = round(clamp(u, 0, D)) / Norm (seed sdt-v3 eq. 5)."""

    def __init__(self, cfg: NeuronConfig | dict | None = None, **overrides):
        super().__init__()
        self.cfg = NeuronConfig.from_dict(cfg, **{"kind": "sfa", **overrides})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sfa_forward(x, self.cfg.D, self.cfg.norm)

    def extra_repr(self) -> str:
        return f"D={self.cfg.D}, norm={self.cfg.norm}"


class MultiThresholdNode(nn.Module):
    """Multi-step multi-threshold neuron over [T, B, ...] (seed ecmt §4.3); outputs graded values."""

    def __init__(self, cfg: NeuronConfig | dict | None = None, **overrides):
        super().__init__()
        self.cfg = NeuronConfig.from_dict(cfg, **{"kind": "mt", **overrides})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            o, v = multi_threshold_step(v, x[t], theta_pos=c.theta_pos, theta_neg=c.theta_neg,
                                        levels=c.levels)
            out.append(o)
        return torch.stack(out)


class LearnableThresholdLIF(nn.Module):
    """Multi-step LIF / IF neuron with a learned scalar threshold (the SN of SDSA-4).

    Same dynamics as ``LIFNode`` (seed-facts §1) with ``v_th`` an ``nn.Parameter`` (floored at
    ``V_TH_MIN``) trained through the surrogate gradient; ``threshold()`` gives its current value
    for lowering. Input and output [T, B, ...].
    """

    def __init__(self, cfg: NeuronConfig | dict | None, v_th: float):
        super().__init__()
        self.cfg = NeuronConfig.from_dict(cfg, v_th=float(v_th))
        if self.cfg.kind not in ("lif", "if"):
            raise ValueError(f"SDSA-4 learnable-threshold neuron needs kind 'lif' or 'if', "
                             f"got {self.cfg.kind!r}")
        self.v_th = nn.Parameter(torch.tensor(float(v_th)))

    def threshold(self) -> float:
        """Current firing threshold (potential units, same scale as the neuron input)."""
        return float(self.v_th.detach().clamp_min(V_TH_MIN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        v_th = self.v_th.clamp_min(V_TH_MIN)
        v = torch.full_like(x[0], c.v_reset)
        out = []
        for t in range(x.shape[0]):
            s, v = lif_step(v, x[t], tau=c.tau, v_th=v_th, v_reset=c.v_reset, reset=c.reset,
                            decay_input=c.decay_input, leak=c.kind == "lif",
                            surrogate=c.surrogate, alpha=c.alpha, detach_reset=c.detach_reset)
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"kind={self.cfg.kind}, tau={self.cfg.tau}, v_th=learned({self.threshold():.4g})"


NEURON_MODULES = (LIFNode, SFANode, MultiThresholdNode, LearnableThresholdLIF)


def make_neuron(cfg: NeuronConfig | dict | None = None, **overrides) -> nn.Module:
    """Build the neuron module a configuration names (overrides win over ``cfg``)."""
    c = NeuronConfig.from_dict(cfg, **overrides)
    if c.kind in ("lif", "if", "plif"):
        return LIFNode(c)
    if c.kind == "sfa":
        return SFANode(c)
    return MultiThresholdNode(c)
