"""ECMT: ANN-to-SNN conversion of vision transformers with Expectation Compensation modules and
Multi-Threshold neurons (seed ecmt, Algorithm 1; repo h-z-h-cell/Transformer-to-SNN-ECMT).

Algorithm 1, as implemented by :func:`convert`:

1. Thresholds. Run the ANN on calibration inputs and collect the activations entering every
   linear layer and both operands of every matrix product; theta1 = their p-th percentile,
   -theta2 = their (1 - p)-th (rank floor(p N) and floor((1 - p) N) of N values, as the
   authors' ``TestNeuron`` takes ``kthvalue``). A site with fewer than 1/(1 - p) values is an
   error (the low percentile would not exist). A one-sided site (theta1 <= 0 or theta2 <= 0:
   e.g. softmax outputs, all >= 0) uses the other side's threshold for both signs.
2. Replacement. ``nn.Linear`` -> :class:`SpikingLinear` (an MT neuron before it, eq. 19-25,
   and parallel parameter normalization, eq. 27-28); ``models.vit.MatMul`` ->
   :class:`MatMulEC` (two MT neurons and the Matrix-Product EC, eq. 16-18); ``nn.Softmax``,
   ``nn.GELU``, ``nn.LayerNorm`` -> :class:`GeneralEC` (eq. 15); ``nn.Dropout`` / ``nn.Identity``
   stay. Any other leaf module is an error naming its path and type. Operations inside a
   ``forward`` that are not modules must be linear in the activations (adds, constant or
   scalar products, reshapes, means), as in ``models.vit``.
3. Membranes start at 0; every step the network sees the same image; the logits at time T are
   the mean of the outputs of steps 1..T (:meth:`ECMTNet.run`).

Expectation compensation (Theorem 4.1, eq. 15), S(T) the sum of a module's inputs up to T:

    O(T) = T F(S(T) / T) - (T - 1) F(S(T - 1) / (T - 1))        =>   sum_{t<=T} O(t) = T F(mean)

Matrix-Product EC (Theorem 4.2, eq. 16-18), A(t) = sum_a v_a A_a(t) the MT levels fired:

    K(T) = A(T) B(T) + A(T) S_B(T-1) + S_A(T-1) B(T);  S_K(T) = S_K(T-1) + K(T) = S_A(T) S_B(T)
    O(T) = S_K(T) / T - S_K(T-1) / (T-1)                =>   sum_{t<=T} O(t) = T mean_A mean_B

Multi-threshold neuron: :func:`models.neurons.multi_threshold_step` (levels lambda_p = theta1
2^(p-1), p = 1..n, and -theta2 2^(p-n-1), p = n+1..2n); it emits one-hot spikes over the 2n
levels. Parallel parameter normalization (eq. 27): W_SNN,p = W_ANN lambda_p^(l-1) /
lambda_1^l, one weight per level, so a linear layer adds weights for spikes (eq. 28). Here
lambda_1^l = 1 for every layer (no linear layer of a ViT feeds an MT neuron directly: its
output goes through an EC, a split into heads or a residual add); :func:`ppn_weights` takes any
lambda_1^l and the tests check eq. 27-29's equivalence.

Operation counts per step (for the energy ratio, seed ecmt §5.5 eq. 30; the authors'
``SOPMonitor``): ``ac_linear`` = spikes x fan-out; ``ac_matmul`` = non-zero operand pairs of
the three products of eq. 18; ``ec_elements`` = elements a general EC evaluates F on (its
MACs in Table 3's units: LayerNorm N C, softmax N_h N^2, GELU N C_h); ``spikes``;
``mt_updates`` = MT neuron updates (one membrane each); ``ec_state`` = accumulator words an EC
updates (general EC: S and T F(S/T) per element; Matrix-Product EC: S_A, S_B and S_K).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.neurons import multi_threshold_step
from models.vit import MatMul

FORMAT = "neurosim-ecmt/1"
# shipped ANN checkpoints (the models ECMT converts): a folder of their own, so that the SNN
# checkpoints ``models.list_shipped()`` names (which ``neurosim demo`` lowers) stay spiking
ANN_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "ann"
EC_FUNCTIONS = (nn.Softmax, nn.GELU, nn.LayerNorm)
PASS_THROUGH = (nn.Dropout, nn.Identity)
OP_KEYS = ("ac_linear", "ac_matmul", "ec_elements", "spikes", "mt_updates", "ec_state")


class ConversionError(ValueError):
    """The model or the conversion settings cannot be converted; the message names what."""


# ----------------------------------------------------------------------------- settings
def check_settings(n, p, T=1) -> None:
    """n >= 1 threshold levels per sign, 0.5 < p < 1 percentile, T >= 1 steps."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConversionError(f"ECMT needs n >= 1 threshold levels per sign, got n = {n!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.5 < p < 1:
        raise ConversionError(f"ECMT threshold percentile p must be in (0.5, 1), got p = {p!r}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ConversionError(f"ECMT needs T >= 1 time steps, got T = {T!r}")


def min_calibration_values(p: float) -> int:
    """Fewest activation values a site needs for the (1 - p)-th percentile: ceil(1/(1 - p))."""
    return math.ceil(1.0 / (1.0 - p) - 1e-9)


def percentile_thresholds(values, p: float, site: str = "?") -> tuple[float, float]:
    """(theta1, theta2) of one site (step 1 of Algorithm 1, module doc): theta1 = value of rank
    floor(p N), -theta2 = value of rank floor((1 - p) N) among the N sorted values."""
    v = np.asarray(values, np.float64).ravel()
    N, need = v.size, min_calibration_values(p)
    if N < need:
        raise ConversionError(f"calibration at {site!r}: {N} activation values, fewer than "
                              f"1/(1 - p) = {need} needed for the {100 * (1 - p):.3g}th "
                              f"percentile (p = {p}); use more calibration inputs")
    if not np.all(np.isfinite(v)):
        raise ConversionError(f"calibration at {site!r}: activations contain NaN or inf")
    k_hi, k_lo = int(math.floor(p * N + 1e-9)), int(math.floor((1 - p) * N + 1e-9))
    part = np.partition(v, sorted({k_lo - 1, k_hi - 1}))
    theta_pos, theta_neg = float(part[k_hi - 1]), float(-part[k_lo - 1])
    if theta_pos <= 0 and theta_neg <= 0:
        raise ConversionError(f"calibration at {site!r}: the {100 * p:.3g}th and "
                              f"{100 * (1 - p):.3g}th percentiles are both 0 (a silent site); "
                              f"no threshold can be set")
    if theta_pos <= 0:
        theta_pos = theta_neg
    if theta_neg <= 0:
        theta_neg = theta_pos
    return theta_pos, theta_neg


def levels(theta_pos: float, theta_neg: float, n: int) -> torch.Tensor:
    """The 2n thresholds lambda_1..lambda_2n of eq. 19, float32 (theta * 2^k computed in float64
    and rounded once, exactly as ``multi_threshold_step`` emits them)."""
    return torch.tensor([theta_pos * 2.0 ** k for k in range(n)]
                        + [-theta_neg * 2.0 ** k for k in range(n)], dtype=torch.float32)


def ppn_weights(w: torch.Tensor, lam_in: torch.Tensor, lam_next=1.0) -> torch.Tensor:
    """Parallel parameter normalization, eq. 27: W [O, I] -> W_SNN [O, I * 2n] with
    W_SNN[o, i * 2n + p] = W[o, i] lambda_p / lambda_1^l[o] (``lam_next`` a scalar or [O])."""
    lam_next = torch.as_tensor(lam_next, dtype=w.dtype).reshape(-1, 1, 1)
    return (w[:, :, None] * lam_in.to(w.dtype)[None, None, :] / lam_next).reshape(w.shape[0], -1)


# ----------------------------------------------------------------------------- pure EC steps
def general_ec_step(state, x, f):
    """One step of the general EC (eq. 15). ``state`` = (t, S(t), t F(S(t)/t)) or None at the
    start; returns (O(t+1), new state). Works on tensors and numpy object arrays (Fractions)."""
    t, s, prev = state if state is not None else (0, x * 0, 0)
    t, s = t + 1, s + x
    now = f(s / t) * t
    return now - prev, (t, s, now)


def matmul_ec_step(state, a, b):
    """One step of the Matrix-Product EC (eq. 16-18) on graded operands a(t) = sum v_a A_a(t),
    b(t). ``state`` = (t, S_A, S_B, S_K) or None; returns (O(t+1), new state)."""
    if state is None:
        state = (0, a * 0, b * 0, (a @ b) * 0)
    t, sa, sb, sk = state
    k = a @ b + a @ sb + sa @ b                                       # eq. 18
    sk_new = sk + k                                                   # eq. 17
    t += 1
    out = sk_new / t - sk / (t - 1) if t > 1 else sk_new              # eq. 16
    return out, (t, sa + a, sb + b, sk_new)


# ----------------------------------------------------------------------------- modules
class _Stateful(nn.Module):
    """A module with per-input state across steps (``reset``) and optional op counting: when
    ``ops`` is a dict, ``forward`` adds its counts (summed over the batch) into it."""

    ops: dict | None = None

    def reset(self) -> None:
        self.state = None

    def tally(self, key: str, value) -> None:
        if self.ops is not None:
            self.ops[key] = self.ops.get(key, 0) + int(value)


class MTNeuron(_Stateful):
    """Multi-threshold neuron (eq. 19-25), thresholds theta1 2^k and -theta2 2^k, k < n;
    membrane starts at 0. Input graded [..., C]; output one-hot spikes [..., C, 2n]."""

    def __init__(self, theta_pos: float, theta_neg: float, n: int):
        super().__init__()
        check_settings(n, 0.99)
        if not (theta_pos > 0 and theta_neg > 0 and math.isfinite(theta_pos)
                and math.isfinite(theta_neg)):
            raise ConversionError(f"MT thresholds must be positive and finite, got "
                                  f"theta1 = {theta_pos}, theta2 = {theta_neg}")
        self.theta_pos, self.theta_neg, self.n = float(theta_pos), float(theta_neg), int(n)
        self.register_buffer("lam", levels(theta_pos, theta_neg, n), persistent=False)
        self.state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.state if self.state is not None else torch.zeros_like(x)
        out, self.state = multi_threshold_step(v, x, theta_pos=self.theta_pos,
                                               theta_neg=self.theta_neg, levels=self.n)
        spikes = (out.unsqueeze(-1) == self.lam).to(x.dtype)
        self.tally("spikes", spikes.sum())
        self.tally("mt_updates", x.numel())
        return spikes

    def graded(self, spikes: torch.Tensor) -> torch.Tensor:
        """sum_p s_p lambda_p (eq. 23): the postsynaptic value of one-hot spikes."""
        return spikes @ self.lam

    def extra_repr(self) -> str:
        return f"theta1={self.theta_pos:.4g}, theta2={self.theta_neg:.4g}, n={self.n}"


class SpikingLinear(_Stateful):
    """An MT neuron followed by a linear layer on its 2n-channel spikes with parallel-normalized
    weights (eq. 26-28, lambda_1^l = 1): out = sum_{i,p} W_SNN[o, i, p] s[i, p] + b."""

    def __init__(self, linear: nn.Linear, mt: MTNeuron):
        super().__init__()
        self.mt = mt
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", ppn_weights(linear.weight.detach().float(), mt.lam))
        b = linear.bias
        self.register_buffer("bias", b.detach().float().clone() if b is not None
                             else torch.zeros(linear.out_features))

    def reset(self) -> None:
        self.mt.reset()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.mt(x)
        self.tally("ac_linear", s.sum() * self.out_features)          # spikes x fan-out
        return s.flatten(-2) @ self.weight.T + self.bias


class MatMulEC(_Stateful):
    """Two MT neurons and the Matrix-Product EC (Algorithm 1 line 11, eq. 16-18)."""

    def __init__(self, mt_a: MTNeuron, mt_b: MTNeuron):
        super().__init__()
        self.mt_a, self.mt_b = mt_a, mt_b
        self.state = None

    def reset(self) -> None:
        self.state = None
        self.mt_a.reset()
        self.mt_b.reset()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ga = self.mt_a.graded(self.mt_a(a))
        gb = self.mt_b.graded(self.mt_b(b.transpose(-2, -1))).transpose(-2, -1)
        if self.ops is not None:                 # additions: non-zero operand pairs, eq. 18
            na, nb = (ga != 0).float(), (gb != 0).float()
            n = (na @ nb).sum()
            if self.state is not None:
                _, sa, sb, _ = self.state
                n = n + (na @ (sb != 0).float()).sum() + ((sa != 0).float() @ nb).sum()
            self.tally("ac_matmul", n)
        out, self.state = matmul_ec_step(self.state, ga, gb)
        self.tally("ec_state", sum(s.numel() for s in self.state[1:]))
        return out


class GeneralEC(_Stateful):
    """General expectation compensation around a non-linear module F (eq. 15)."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, self.state = general_ec_step(self.state, x, self.fn)
        self.tally("ec_elements", x.numel())
        self.tally("ec_state", 2 * x.numel())
        return out


# ----------------------------------------------------------------------------- the network
class ECMTNet(nn.Module):
    """A converted SNN: ``net`` (the ANN with its modules replaced) run for ``T`` steps.

    ``forward(x)`` -> logits at T [B, K]; ``run(x, T)`` -> logits after each step [T, B, K]
    (the mean of the outputs so far); ``run_counted`` adds per-step operation counts."""

    def __init__(self, net: nn.Module, *, n: int, p: float, T: int, thresholds: dict):
        super().__init__()
        check_settings(n, p, T)
        self.net, self.n, self.p, self.T = net, int(n), float(p), int(T)
        self.thresholds = {k: (float(a), float(b)) for k, a, b in
                           ((k, *v) for k, v in thresholds.items())}

    def stateful(self) -> list[_Stateful]:
        return [m for m in self.net.modules() if isinstance(m, _Stateful)]

    def reset(self) -> None:
        for m in self.stateful():
            m.reset()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.T)[-1]

    @torch.no_grad()
    def run(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        return self.run_counted(x, T, count=False)[0]

    @torch.no_grad()
    def run_counted(self, x: torch.Tensor, T: int | None = None, count: bool = True):
        """(logits after each step [T, B, K], per-step op counts {key: [T] int64}, summed over
        the batch; empty when ``count`` is False)."""
        T = self.T if T is None else T
        check_settings(self.n, self.p, T)
        x = torch.as_tensor(x, dtype=torch.float32)
        self.reset()
        mods = self.stateful()
        total, outs = None, []
        ops = {k: np.zeros(T, np.int64) for k in OP_KEYS} if count else {}
        for t in range(T):
            step = {}
            for m in mods:
                m.ops = step if count else None
            y = self.net(x)
            total = y if total is None else total + y
            outs.append(total / (t + 1))
            for k, v in step.items():
                ops[k][t] = v
        for m in mods:
            m.ops = None
        self.reset()
        return torch.stack(outs), ops


# ----------------------------------------------------------------------------- conversion
def check_mappable(model: nn.Module) -> None:
    """Every leaf module must have an ECMT mapping (module doc); else an error naming it."""
    for path, m in model.named_modules():
        if any(True for _ in m.children()):
            continue
        if not isinstance(m, (nn.Linear, MatMul) + EC_FUNCTIONS + PASS_THROUGH):
            raise ConversionError(
                f"module {path or '<root>'!r} ({type(m).__module__}.{type(m).__name__}) has no "
                f"ECMT mapping: linear layers are nn.Linear, matrix products models.vit.MatMul, "
                f"EC-wrapped non-linearities {[c.__name__ for c in EC_FUNCTIONS]}, "
                f"pass-through {[c.__name__ for c in PASS_THROUGH]}")


def _sites(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(p, m) for p, m in model.named_modules() if isinstance(m, (nn.Linear, MatMul))]


@torch.no_grad()
def calibrate(model: nn.Module, x_calib, p: float, batch_size: int = 128) -> dict:
    """Step 1 of Algorithm 1: {site: (theta1, theta2)} for the input of every linear layer
    (site = its path) and both operands of every matrix product (``path.a``, ``path.b``; b
    as the transposed right operand's rows, i.e. per key token)."""
    vals: dict[str, list[np.ndarray]] = {}
    hooks = []

    def grab(site):
        def hook(mod, args):
            if isinstance(mod, MatMul):
                vals.setdefault(site + ".a", []).append(args[0].detach().numpy().ravel())
                vals.setdefault(site + ".b", []).append(args[1].detach().numpy().ravel())
            else:
                vals.setdefault(site, []).append(args[0].detach().numpy().ravel())
        return hook

    for path, m in _sites(model):
        hooks.append(m.register_forward_pre_hook(grab(path)))
    try:
        model.eval()
        x = torch.as_tensor(np.asarray(x_calib), dtype=torch.float32)
        if len(x) == 0:
            raise ConversionError("calibration set is empty")
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
    return {s: percentile_thresholds(np.concatenate(v), p, s) for s, v in vals.items()}


def _replace(module: nn.Module, prefix: str, thresholds: dict, n: int) -> None:
    for name, child in list(module.named_children()):
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Linear):
            new = SpikingLinear(child, MTNeuron(*thresholds[path], n))
        elif isinstance(child, MatMul):
            new = MatMulEC(MTNeuron(*thresholds[path + ".a"], n),
                           MTNeuron(*thresholds[path + ".b"], n))
        elif isinstance(child, EC_FUNCTIONS):
            new = GeneralEC(child)
        else:
            _replace(child, path, thresholds, n)
            continue
        setattr(module, name, new)


def from_thresholds(ann: nn.Module, thresholds: dict, *, n: int, p: float, T: int) -> ECMTNet:
    """Steps 2-3 of Algorithm 1 with given thresholds (a copy of ``ann`` is converted)."""
    check_settings(n, p, T)
    net = copy.deepcopy(ann).eval()
    check_mappable(net)
    missing = sorted({s for path, m in _sites(net)
                      for s in ((path + ".a", path + ".b") if isinstance(m, MatMul) else (path,))}
                     - set(thresholds))
    if missing:
        raise ConversionError(f"no thresholds for site(s) {missing}")
    _replace(net, "", thresholds, n)
    snn = ECMTNet(net, n=n, p=p, T=T, thresholds=thresholds)
    object.__setattr__(snn, "ann", copy.deepcopy(ann).eval())    # kept, not a submodule
    snn.ann_config = copy.deepcopy(getattr(ann, "neurosim_config", None))
    return snn


def convert(ann: nn.Module, x_calib, *, n: int = 8, p: float = 0.99, T: int = 8,
            batch_size: int = 128) -> ECMTNet:
    """Algorithm 1: thresholds from ``x_calib`` (inputs the ANN takes, e.g. [N, C, H, W]),
    then MT neurons, Matrix-Product ECs and general ECs in a copy of ``ann`` (module doc)."""
    check_settings(n, p, T)
    check_mappable(ann)
    return from_thresholds(ann, calibrate(copy.deepcopy(ann), x_calib, p, batch_size),
                           n=n, p=p, T=T)


# ----------------------------------------------------------------------------- ANN op counts
@torch.no_grad()
def ann_ops(ann: nn.Module, x) -> dict:
    """Operations of one ANN inference per input (seed ecmt Table 3): ``mac_linear`` (output
    elements x in_features), ``mac_matmul`` (output elements x inner dimension),
    ``nonlinear`` (elements of LayerNorm, softmax, GELU outputs)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    ops = dict.fromkeys(("mac_linear", "mac_matmul", "nonlinear"), 0)
    hooks = []

    def hook(mod, args, out):
        if isinstance(mod, nn.Linear):
            ops["mac_linear"] += out.numel() * mod.in_features
        elif isinstance(mod, MatMul):
            ops["mac_matmul"] += out.numel() * args[0].shape[-1]
        else:
            ops["nonlinear"] += out.numel()

    for m in ann.modules():
        if isinstance(m, (nn.Linear, MatMul) + EC_FUNCTIONS):
            hooks.append(m.register_forward_hook(hook))
    try:
        ann.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return {k: v / len(x) for k, v in ops.items()}


# ----------------------------------------------------------------------------- files
def list_shipped_anns() -> list[str]:
    """Names of the shipped ANN checkpoints (``models/checkpoints/ann/NAME.safetensors``)."""
    return sorted(q.stem for q in ANN_DIR.glob("*.safetensors"))


def resolve_ann(ref: str | Path) -> Path:
    """An ANN checkpoint: an existing file, a shipped ANN name (``list_shipped_anns``) or a
    shipped checkpoint name; else FileNotFoundError listing the shipped ANNs."""
    from models.checkpoint import resolve_checkpoint
    if Path(ref).is_file():
        return Path(ref)
    if str(ref) in list_shipped_anns():
        return ANN_DIR / f"{ref}.safetensors"
    try:
        return resolve_checkpoint(ref)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"no ANN checkpoint {str(ref)!r}: not a file nor a shipped ANN "
                                f"({', '.join(list_shipped_anns()) or 'none'}); {e}") from None

def save_snn(snn: ECMTNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write the converted SNN: the ANN's tensors (``ann.*``) and, as JSON metadata, the ANN's
    zoo configuration and the conversion (n, p, T, thresholds per site)."""
    from safetensors.torch import save_file
    if snn.ann_config is None:
        raise ConversionError("the converted ANN has no neurosim_config (build it with "
                              "models.create or load it from a checkpoint)")
    ann = snn.ann
    tensors = {f"ann.{k}": v.detach().contiguous().clone() for k, v in ann.state_dict().items()}
    meta = {"format": FORMAT, "model": json.dumps(snn.ann_config, sort_keys=True),
            "ecmt": json.dumps({"n": snn.n, "p": snn.p, "T": snn.T,
                                "thresholds": snn.thresholds, **(extra or {})}, sort_keys=True)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_snn(path: str | Path) -> ECMTNet:
    """Read a file written by :func:`save_snn` (JSON and raw tensors only; no code runs)."""
    from safetensors import safe_open
    from models import registry
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such converted-SNN file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:                              # safetensors raises several types
        raise ConversionError(f"{path}: not a readable safetensors file ({e})") from e
    if meta.get("format") != FORMAT:
        raise ConversionError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        cfg, conv = json.loads(meta["model"]), json.loads(meta["ecmt"])
        ann = registry.build(cfg["family"], cfg["config"], name=cfg["name"])
        ann.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ann.")})
        ann.neurosim_config = cfg
        th = {k: tuple(v) for k, v in conv["thresholds"].items()}
        return from_thresholds(ann, th, n=conv["n"], p=conv["p"], T=conv["T"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConversionError(f"{path}: invalid converted-SNN metadata or tensors ({e})") from e


# ----------------------------------------------------------------------------- evaluation
E_MAC_PJ, E_AC_PJ = 4.6, 0.9     # seed ecmt §5.5, eq. 30 (Horowitz ISSCC 2014, 45 nm fp32)


@torch.no_grad()
def evaluate(snn: ECMTNet, x, y, T: int, batch_size: int = 128) -> tuple[np.ndarray, dict]:
    """(accuracy after each step 1..T [T], per-input operation counts summed over steps 1..t
    {key: [T] float64}) of ``snn`` on inputs ``x`` with labels ``y``."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y))
    if len(x) == 0 or len(x) != len(y):
        raise ConversionError(f"evaluate needs as many labels as inputs (>0), got {len(x)} "
                              f"inputs and {len(y)} labels")
    correct = np.zeros(T)
    ops = {k: np.zeros(T) for k in OP_KEYS}
    for i in range(0, len(x), batch_size):
        logits, step_ops = snn.run_counted(x[i:i + batch_size], T)
        correct += (logits.argmax(-1) == y[i:i + batch_size]).sum(-1).numpy()
        for k, v in step_ops.items():
            ops[k] += v
    return correct / len(x), {k: np.cumsum(v) / len(x) for k, v in ops.items()}


def paper_energy_ratio(snn_ops: dict, ann: dict, *, with_ec: bool = False,
                       e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ):
    """E_SNN / E_ANN of eq. 30 per input: the SNN's additions (linear + matrix-product ACs,
    summed over the steps) at E_AC and MACs_SNN = 0 as the paper takes it; the ANN's MACs
    (linear, matrix products and Table 3's non-linear element counts) at E_MAC. ``with_ec``
    also prices the general ECs' evaluations of F (one per element per step) at E_MAC, which
    the paper leaves out."""
    e_snn = e_ac_pj * (np.asarray(snn_ops["ac_linear"]) + np.asarray(snn_ops["ac_matmul"]))
    if with_ec:
        e_snn = e_snn + e_mac_pj * np.asarray(snn_ops["ec_elements"])
    e_ann = e_mac_pj * (ann["mac_linear"] + ann["mac_matmul"] + ann["nonlinear"])
    return e_snn / e_ann
