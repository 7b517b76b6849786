"""The operations of the event-level graph IR (``neurosim.ir.graph.Graph`` holds them).

A ``Graph`` wraps a networkx ``DiGraph``. Each node holds one operation: a small dataclass that
validates itself in ``__post_init__`` and serialises generically from its fields. Each edge
carries ``kind`` ("spike": non-negative integer counts per tick, e.g. binary LIF spikes or SFA
bursts of 0..D; "graded": real multi-bit values), and ``port`` (input slot of the consumer).
Pipeline timing is not stored: a chip derives it (``Graph.pipeline_stages``).

Numeric semantics (what every executor implements, bit for bit):

* A reduction (conv, linear, spike products, token sums) runs on exact integers: spike inputs are
  counts; a graded input is first quantized by the consumer, ``q = clip(rint(x / in_scale),
  -2^(in_bits-1), 2^(in_bits-1)-1)`` (saturations counted). Weights are integers.
* Then ``out = acc * scale[c] + bias[c]`` in float64 (two correctly rounded operations).
* Everything else (adds, pooling, neuron dynamics, means) is elementwise float64.

Shapes are per sample and per tick: (C, H, W) maps, (C,) vectors. Units: potentials are in the
units of the neuron's input (after folding: weight LSBs); time in ticks (one tick = one time step,
or one SFA sub-step on a chip).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neurosim.ir.addressing import conv_fan_out

EDGE_KINDS = ("spike", "graded")
NODE_TYPES: dict[str, type] = {}


class GraphError(ValueError):
    """An invalid graph or node; the message names the node."""


def _node_type(cls):
    NODE_TYPES[cls.__name__] = cls
    return cls


def _int_dtype(bits: int):
    """Smallest signed numpy integer type holding ``bits`` bits."""
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if bits <= np.iinfo(dt).bits:
            return dt
    raise ValueError(f"{bits}-bit integers are not supported")


def _arr(x, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=dtype))


INT_LIMIT = 2 ** 31          # |integer parameter| and shape entries: the kernels index in int32


def _scalar(op: "Node", key: str, v, typ: str):
    """A scalar field checked against its declared type (``int``, ``float``, ``bool``, ``str``)
    and returned as the plain Python value; a wrong type or a non-finite number is an error
    naming the node and the field (a file may hold anything)."""
    if typ == "bool":
        if not isinstance(v, (bool, np.bool_)):
            op.fail(f"{key} must be true or false, got {type(v).__name__} {v!r}")
        return bool(v)
    if typ == "str":
        if not isinstance(v, str) or not v:
            op.fail(f"{key} must be a non-empty string, got {type(v).__name__} {v!r}")
        return v
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                             np.floating)):
        op.fail(f"{key} must be a number, got {type(v).__name__} {v!r}")
    if typ == "int":
        if not isinstance(v, (int, np.integer)):
            op.fail(f"{key} must be an integer, got {v!r}")
        if not -INT_LIMIT <= int(v) < INT_LIMIT:
            op.fail(f"{key} = {int(v)} is outside the supported range +-2^31")
        return int(v)
    if not np.isfinite(v):
        op.fail(f"{key} must be finite, got {v}")
    return float(v)


def _shape(op: "Node", key: str, v) -> tuple:
    """A shape field: a sequence of integers (each below 2^31)."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        op.fail(f"{key} must be a list of integers, got {type(v).__name__} {v!r}")
    out = tuple(v)
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer))
           for s in out):
        op.fail(f"{key} must be a list of integers, got {list(out)!r}")
    if any(not -INT_LIMIT < int(s) < INT_LIMIT for s in out):
        op.fail(f"{key} {list(out)} has an entry beyond 2^31")
    return tuple(int(s) for s in out)


def _real(op: "Node", key: str, x, dtype) -> np.ndarray:
    """An array field as ``dtype``: real numbers only (a complex, string or object array is an
    error naming the node, never a silent cast that drops the imaginary part)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        op.fail(f"{key} must hold real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a.astype(dtype))


@dataclass(eq=False)
class Node:
    """Base class: ``name`` is the graph key, ``shape`` the per-tick output shape."""

    name: str
    shape: tuple

    n_inputs: ClassVar[tuple[int, int]] = (1, 1)   # (min, max) number of input ports
    out_kind: ClassVar[str | None] = None           # fixed output edge kind, or None = derived

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"{type(self).__name__} node: name must be a non-empty string, "
                             f"got {self.name!r}")
        for f in dataclasses.fields(self):     # declared types; arrays are checked per class
            v = getattr(self, f.name)
            if f.type == "tuple":
                setattr(self, f.name, _shape(self, f.name, v))
            elif f.type in ("int", "float", "bool", "str"):
                setattr(self, f.name, _scalar(self, f.name, v, f.type))
        if not self.shape or any(s < 1 for s in self.shape):
            self.fail(f"shape must be non-empty and positive, got {self.shape}")

    def fail(self, msg: str):
        raise GraphError(f"node {self.name!r} ({type(self).__name__}): {msg}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def channels(self) -> int:
        return self.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def params(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray):
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def equals(self, other: "Node") -> bool:
        if type(self) is not type(other) or self.params() != other.params():
            return False
        a, b = self.arrays(), other.arrays()
        return a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- sources and sinks
@_node_type
@dataclass(eq=False)
class Input(Node):
    """Model input per tick. ``kind`` spike: event counts (DVS frames); graded: pixel values.
    ``T`` time steps per sample."""

    kind: str = "graded"
    T: int = 1
    n_inputs: ClassVar = (0, 0)

    def __post_init__(self):
        super().__post_init__()
        if self.kind not in EDGE_KINDS:
            self.fail(f"kind must be one of {EDGE_KINDS}, got {self.kind!r}")
        if self.T < 1:
            self.fail(f"T must be >= 1, got {self.T}")


@_node_type
@dataclass(eq=False)
class Readout(Node):
    """Logits: the mean over the T time steps of the input, summed in tick order. A map input
    (C, H, W) gives ``size`` = C*H*W logits, flattened in (C, H, W) order like every vector."""

    out_kind: ClassVar = "graded"


# ----------------------------------------------------------------------------- neurons
NEURON_MODELS = ("lif", "if", "sfa", "mt")


@_node_type
@dataclass(eq=False)
class Neurons(Node):
    """A neuron population (seed-facts §1). Per-channel ``v_th`` / ``v_reset`` after folding.

    lif/if: charge, fire on H >= v_th, reset (hard/soft/none). sfa: time-free integer neuron;
    the count round-half-up(clamp(u / v_th, 0, D)) equals the IF soft-reset burst length
    (Proposition 1), emitted as spike counts 0..D. mt: multi-threshold graded output with
    levels v_th * 2^k (positive) and -theta_neg * 2^k. ``state_bits``: membrane register width;
    the membrane saturates to [-2^(b-1), 2^(b-1)-1] * ``v_lsb`` (counted).
    """

    model: str = "lif"
    v_th: np.ndarray = None
    v_reset: np.ndarray = None
    tau: float = 2.0
    reset: str = "hard"
    decay_input: bool = True
    D: int = 1
    levels: int = 1
    theta_neg: np.ndarray = None
    state_bits: int = 16
    v_lsb: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        C = self.channels
        if self.model not in NEURON_MODELS:
            self.fail(f"model must be one of {NEURON_MODELS}, got {self.model!r}")
        self.v_th = _real(self, "v_th", self.v_th if self.v_th is not None else np.ones(C),
                          np.float64)
        self.v_reset = _real(self, "v_reset",
                             self.v_reset if self.v_reset is not None else np.zeros(C), np.float64)
        self.theta_neg = _real(self, "theta_neg",
                               self.theta_neg if self.theta_neg is not None else self.v_th,
                               np.float64)
        for k in ("v_th", "v_reset", "theta_neg"):
            if getattr(self, k).shape != (C,):
                self.fail(f"{k} must have one value per channel ({C}), got "
                          f"{getattr(self, k).shape}")
        if not np.all(self.v_th > 0) or not np.all(np.isfinite(self.v_th)):
            self.fail(f"threshold must be positive and finite, min is {self.v_th.min()}")
        for k in ("v_reset", "theta_neg"):
            if not np.all(np.isfinite(getattr(self, k))):
                self.fail(f"{k} must be finite")
        if not self.tau >= 1:
            self.fail(f"tau must be >= 1 tick, got {self.tau}")
        if self.reset not in ("hard", "soft", "none"):
            self.fail(f"reset must be hard, soft or none, got {self.reset!r}")
        if int(self.D) != self.D or self.D < 1:
            self.fail(f"SFA D must be an integer >= 1, got {self.D}")
        self.D = int(self.D)
        if self.levels < 1:
            self.fail(f"levels must be >= 1, got {self.levels}")
        if not 2 <= self.state_bits <= 64:
            self.fail(f"state_bits must be in 2..64, got {self.state_bits}")
        if not self.v_lsb > 0:
            self.fail(f"v_lsb must be > 0, got {self.v_lsb}")

    @property
    def out_kind(self) -> str:  # type: ignore[override]
        return "graded" if self.model == "mt" else "spike"

    @property
    def v_range(self) -> tuple[float, float]:
        half = 2.0 ** (self.state_bits - 1)
        return -half * self.v_lsb, (half - 1) * self.v_lsb


# ----------------------------------------------------------------------------- projections
@dataclass(eq=False)
class _Weighted(Node):
    """Shared fields of weighted projections: integer ``weight``, per-channel ``scale`` and
    ``bias`` (float64), graded-input quantization (``in_scale``, ``in_bits``), ``weight_bits``,
    and the folded float weights before quantization (``weight_float``, kept for reference)."""

    in_shape: tuple = ()
    weight: np.ndarray = None
    scale: np.ndarray = None
    bias: np.ndarray = None
    weight_bits: int = 8
    in_scale: float = 1.0
    in_bits: int = 16
    weight_float: np.ndarray | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.weight_float is not None:
            self.weight_float = _real(self, "weight_float", self.weight_float, np.float32)
        if self.weight is None:
            self.fail("weight is missing")
        if not 2 <= self.weight_bits <= 32:
            self.fail(f"weight_bits must be in 2..32, got {self.weight_bits}")
        w = _real(self, "weight", self.weight, np.float64)
        if not np.all(np.isfinite(w)) or np.any(w != np.round(w)):
            self.fail("weights must be integers (quantized)")
        lim = 2 ** (self.weight_bits - 1)
        if w.size and (w.min() < -lim or w.max() > lim - 1):
            self.fail(f"weights exceed {self.weight_bits}-bit range [{-lim}, {lim - 1}]")
        self.weight = _arr(w, _int_dtype(self.weight_bits))
        C = self.channels
        self.scale = _real(self, "scale", self.scale if self.scale is not None else np.ones(C),
                           np.float64)
        self.bias = _real(self, "bias", self.bias if self.bias is not None else np.zeros(C),
                          np.float64)
        for k in ("scale", "bias"):
            if getattr(self, k).shape != (C,):
                self.fail(f"{k} must have one value per output channel ({C}), "
                          f"got {getattr(self, k).shape}")
        if not np.all(np.isfinite(self.scale)) or not np.all(np.isfinite(self.bias)):
            self.fail("scale and bias must be finite")
        if not self.in_scale > 0:
            self.fail(f"in_scale must be > 0, got {self.in_scale}")
        if not 2 <= self.in_bits <= 32:
            self.fail(f"in_bits must be in 2..32, got {self.in_bits}")

    out_kind: ClassVar = "graded"


@_node_type
@dataclass(eq=False)
class Conv(_Weighted):
    """2-D convolution [C_out, C_in/groups, k, k] with zero padding. ``ssc``: spike sparse
    convolution, an output site is computed only where the input has an event (any channel) at
    the kernel-centre position (stride 1 only, seed sdt-v3). ``form`` names what was lowered
    (plain, repconv-fused, ...), since it changes operation counts.

    Address mapping: an input event at (c, y, x) reaches weights w[o, c mod (C_in/g), ky, kx] and
    targets (o, (y + p - ky) / s, (x + p - kx) / s) for every o in c's group and every (ky, kx)
    where the division is exact and the target lies inside the output map.
    """

    stride: int = 1
    padding: int = 0
    groups: int = 1
    ssc: bool = False
    form: str = "plain"

    def __post_init__(self):
        super().__post_init__()
        if len(self.in_shape) != 3 or len(self.shape) != 3:
            self.fail(f"conv needs (C, H, W) shapes, got in {self.in_shape} out {self.shape}")
        Ci, H, W = self.in_shape
        Co = self.shape[0]
        if self.weight.ndim != 4:
            self.fail(f"weight must be 4-D, got {self.weight.shape}")
        k = self.weight.shape[2]
        if self.weight.shape[3] != k:
            self.fail(f"only square kernels are supported, got {self.weight.shape[2:]}")
        if self.groups < 1 or Ci % self.groups or Co % self.groups:
            self.fail(f"groups={self.groups} must divide C_in={Ci} and C_out={Co}")
        if self.weight.shape[:2] != (Co, Ci // self.groups):
            self.fail(f"weight shape {self.weight.shape} does not fit C_in={Ci}, C_out={Co}, "
                      f"groups={self.groups}")
        if self.stride < 1 or self.padding < 0:
            self.fail(f"stride must be >= 1 and padding >= 0, got {self.stride}, {self.padding}")
        if k > H + 2 * self.padding or k > W + 2 * self.padding:
            self.fail(f"kernel {k}x{k} is larger than the padded input {H}x{W} "
                      f"(padding {self.padding})")
        Ho = (H + 2 * self.padding - k) // self.stride + 1
        Wo = (W + 2 * self.padding - k) // self.stride + 1
        if self.shape != (Co, Ho, Wo):
            self.fail(f"output shape {self.shape} != computed {(Co, Ho, Wo)}")
        if self.ssc and (self.stride != 1 or (Ho, Wo) != (H, W)):
            self.fail("spike sparse convolution needs stride 1 and 'same' padding")

    @property
    def kernel(self) -> int:
        return self.weight.shape[2]

    def fan_out(self) -> np.ndarray:
        """Synaptic targets reached by one event at each input address, shape in_shape
        (counting border clipping and stride; equals the AC count of one spike)."""
        return conv_fan_out(self.in_shape, self.shape[0], self.kernel, self.stride,
                            self.padding, self.groups)


@_node_type
@dataclass(eq=False)
class Linear(_Weighted):
    """Fully connected projection, weight [C_out, C_in]; input (C_in,), output (C_out,)."""

    def __post_init__(self):
        super().__post_init__()
        if self.weight.shape != (self.shape[0], int(np.prod(self.in_shape))):
            self.fail(f"weight shape {self.weight.shape} does not fit in {self.in_shape} -> "
                      f"out {self.shape}")

    def fan_out(self) -> np.ndarray:
        return np.full(self.in_shape, self.shape[0], dtype=np.int64)


@_node_type
@dataclass(eq=False)
class Pool(Node):
    """Max pooling (padding never wins: -inf); on spikes it is an OR."""

    in_shape: tuple = ()
    kernel: int = 3
    stride: int = 2
    padding: int = 1

    def __post_init__(self):
        super().__post_init__()
        if len(self.in_shape) != 3 or len(self.shape) != 3:
            self.fail(f"pooling needs (C, H, W) shapes, got in {self.in_shape} out {self.shape}")
        C, H, W = self.in_shape
        if self.kernel < 1 or self.stride < 1 or self.padding < 0 or self.padding > self.kernel // 2:
            self.fail(f"invalid pooling kernel={self.kernel} stride={self.stride} "
                      f"padding={self.padding}")
        if self.kernel > min(H, W) + 2 * self.padding:
            self.fail(f"pool kernel {self.kernel} larger than the padded input {H}x{W}")
        Ho = (H + 2 * self.padding - self.kernel) // self.stride + 1
        Wo = (W + 2 * self.padding - self.kernel) // self.stride + 1
        if self.shape != (C, Ho, Wo):
            self.fail(f"output shape {self.shape} != computed {(C, Ho, Wo)}")


@_node_type
@dataclass(eq=False)
class SpikeMatmul(Node):
    """Per-head product of spike (count) tensors q, k, v (ports 0, 1, 2), each (C, H, W):
    out = scale * q @ (k^T @ v) (``order`` "q(kv)") or scale * (q @ k^T) @ v ("(qk)v"),
    with N = H*W tokens and C/heads channels per head. Integer-exact before the scale."""

    heads: int = 1
    scale: float = 1.0
    order: str = "q(kv)"
    n_inputs: ClassVar = (3, 3)
    out_kind: ClassVar = "graded"

    def __post_init__(self):
        super().__post_init__()
        if self.heads < 1 or self.shape[0] % self.heads:
            self.fail(f"heads={self.heads} must divide channels {self.shape[0]}")
        if self.order not in ("q(kv)", "(qk)v"):
            self.fail(f"order must be 'q(kv)' or '(qk)v', got {self.order!r}")
        if not np.isfinite(self.scale) or self.scale == 0:
            self.fail(f"scale must be finite and non-zero, got {self.scale}")


@_node_type
@dataclass(eq=False)
class TokenSum(Node):
    """Sum over tokens of the product of its spike inputs, times ``scale``: SDSA-1's
    out[c] = sum_n k[c, n] * v[c, n] (ports 0 = k, 1 = v), or SDSA-2's sum_n k[c, n] (one port).
    Shape (C, 1, 1); integer-exact before the scale."""

    scale: float = 1.0
    n_inputs: ClassVar = (1, 2)
    out_kind: ClassVar = "graded"


@_node_type
@dataclass(eq=False)
class Mask(Node):
    """Hadamard product a * b (ports 0, 1) broadcast over tokens; spike x spike is an AND."""

    n_inputs: ClassVar = (2, 2)


@_node_type
@dataclass(eq=False)
class TokenMean(Node):
    """Mean over the H*W token positions: (C, H, W) -> (C,), out = (sum_n q) * in_scale / N.
    Graded inputs are quantized first (step ``in_scale``, ``in_bits``) so the sum is
    integer-exact; for spike inputs q is the count and ``in_scale`` the value of one spike."""

    in_scale: float = 1.0
    in_bits: int = 16
    out_kind: ClassVar = "graded"

    def __post_init__(self):
        super().__post_init__()
        if not self.in_scale > 0:
            self.fail(f"in_scale must be > 0, got {self.in_scale}")
        if not 2 <= self.in_bits <= 32:
            self.fail(f"in_bits must be in 2..32, got {self.in_bits}")


@_node_type
@dataclass(eq=False)
class Add(Node):
    """Elementwise sum of its inputs (membrane / spike shortcuts), in port order."""

    n_inputs: ClassVar = (2, 8)


NEURON_TYPES = (Neurons,)
WEIGHTED_TYPES = (Conv, Linear)




# ----------------------------------------------------------------------------- ECMT (seed ecmt)
@_node_type
@dataclass(eq=False)
class MTSpikes(Node):
    """Multi-threshold neurons with one-hot 2n-channel spike output (seed ecmt eq. 19-25).

    Input graded, shape ``in_shape`` = (C, ...); output spikes (C * 2n, ...): channel
    c * 2n + p fires for level lambda_p = theta_pos[c] 2^p (p < n) or -theta_neg[c] 2^(p-n).
    The membrane (input units) starts at 0, integrates x, fires the largest level reached
    (V >= lambda - theta/2 on either sign) and subtracts it; it saturates to
    [-2^(b-1), 2^(b-1) - 1] * ``v_lsb`` (counted)."""

    in_shape: tuple = ()
    levels: int = 1
    theta_pos: np.ndarray = None
    theta_neg: np.ndarray = None
    state_bits: int = 32
    v_lsb: float = 1.0
    out_kind: ClassVar = "spike"

    def __post_init__(self):
        super().__post_init__()
        if self.levels < 1:
            self.fail(f"levels must be >= 1, got {self.levels}")
        C = self.in_shape[0] if self.in_shape else 0
        if not self.in_shape or self.shape != (C * 2 * self.levels,) + tuple(self.in_shape[1:]):
            self.fail(f"output shape {self.shape} must be (C * 2n, ...) of in_shape "
                      f"{self.in_shape} with n = {self.levels}")
        for k in ("theta_pos", "theta_neg"):
            a = _real(self, k, getattr(self, k) if getattr(self, k) is not None
                      else np.ones(C), np.float64)
            if a.shape != (C,) or not np.all(np.isfinite(a)) or not np.all(a > 0):
                self.fail(f"{k} must hold {C} positive finite thresholds, got {a}")
            setattr(self, k, a)
        if not 2 <= self.state_bits <= 64 or not self.v_lsb > 0:
            self.fail(f"state_bits must be in 2..64 and v_lsb > 0, got {self.state_bits}, "
                      f"{self.v_lsb}")

    @property
    def v_range(self) -> tuple[float, float]:
        half = 2.0 ** (self.state_bits - 1)
        return -half * self.v_lsb, (half - 1) * self.v_lsb

    def check_inputs(self, shapes, kinds, need) -> None:
        need(shapes[0] == self.in_shape, f"expects input shape {self.in_shape}")


EC_FORMS = ("qk", "av")
EC_FUNCTIONS = ("softmax", "gelu", "layernorm")


@_node_type
@dataclass(eq=False)
class MatMulEC(Node):
    """Matrix-Product expectation compensation (seed ecmt eq. 16-18) of two MTSpikes outputs
    a (port 0) and b (port 1), each one threshold pair (theta_pos, theta_neg) for all channels,
    n = ``levels``; ``heads`` of d channels. Form "qk": a, b token maps (h d 2n, H, W) ->
    (h, N, N), out[h, i, j] = scale O(sum_c a[h, c, i] b[h, c, j]); form "av": a attention
    maps (h 2n, N, N), b a token map (h d 2n, H, W) -> (h d, H, W), out[h d + c, i] =
    scale O(sum_j a[h, i, j] b[h, c, j]); tokens N = H W in row-major order. The products and
    sums S_A, S_B, S_K are exact integers in units of the operands' level grids (semantics)."""

    form: str = "qk"
    heads: int = 1
    levels: int = 1
    a_theta_pos: float = 1.0
    a_theta_neg: float = 1.0
    b_theta_pos: float = 1.0
    b_theta_neg: float = 1.0
    scale: float = 1.0
    n_inputs: ClassVar = (2, 2)
    out_kind: ClassVar = "graded"

    def __post_init__(self):
        super().__post_init__()
        if self.form not in EC_FORMS:
            self.fail(f"form must be one of {EC_FORMS}, got {self.form!r}")
        if self.heads < 1 or self.levels < 1:
            self.fail(f"heads and levels must be >= 1, got {self.heads}, {self.levels}")
        th = (self.a_theta_pos, self.a_theta_neg, self.b_theta_pos, self.b_theta_neg)
        if not all(t > 0 for t in th) or not np.isfinite(self.scale) or self.scale == 0:
            self.fail(f"thresholds must be > 0 and scale finite and non-zero, got {th}, "
                      f"{self.scale}")

    def check_inputs(self, shapes, kinds, need) -> None:
        a, b = shapes
        m, h = 2 * self.levels, self.heads
        need(all(k == "spike" for k in kinds), "needs MT spike inputs on both ports")
        need(len(a) == 3 and len(b) == 3, "inputs must be (C, H, W) maps")
        if self.form == "qk":
            N = a[1] * a[2]
            need(a == b and a[0] % (m * h) == 0, "q and k must share a (h d 2n, H, W) shape")
            need(self.shape == (h, N, N), f"output must be {(h, N, N)}")
        else:
            N = b[1] * b[2]
            need(a == (h * m, N, N), f"attention input must be {(h * m, N, N)}")
            need(b[0] % (m * h) == 0 and self.shape == (b[0] // m,) + tuple(b[1:]),
                 f"output must be {(b[0] // m,) + tuple(b[1:])}")


@_node_type
@dataclass(eq=False)
class ExpectationEC(Node):
    """General expectation compensation (seed ecmt eq. 15) around ``fn``: O(t) =
    t F(S(t)/t) - (t-1) F(S(t-1)/(t-1)), S the sum of the inputs so far. F: "softmax" over
    the last axis (W), "gelu" (exact, erf), "layernorm" over the channels at each position
    (per-channel ``weight`` and ``bias``, ``eps``); float64 (``semantics.ec_function``)."""

    fn: str = "gelu"
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5
    out_kind: ClassVar = "graded"

    def __post_init__(self):
        super().__post_init__()
        if self.fn not in EC_FUNCTIONS:
            self.fail(f"fn must be one of {EC_FUNCTIONS}, got {self.fn!r}")
        if self.fn == "layernorm":
            C = self.channels
            for k in ("weight", "bias"):
                a = _real(self, k, getattr(self, k) if getattr(self, k) is not None
                          else np.full(C, 1.0 if k == "weight" else 0.0), np.float64)
                if a.shape != (C,) or not np.all(np.isfinite(a)):
                    self.fail(f"{k} must hold {C} finite values")
                setattr(self, k, a)
            if not self.eps > 0:
                self.fail(f"eps must be > 0, got {self.eps}")

    def check_inputs(self, shapes, kinds, need) -> None:
        need(shapes[0] == self.shape, f"expects input shape {self.shape}")


@_node_type
@dataclass(eq=False)
class AddConst(Node):
    """x + ``values``, a constant of the node's shape (e.g. a position embedding), float64."""

    values: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        v = _real(self, "values", self.values if self.values is not None
                  else np.zeros(self.shape), np.float64)
        if v.shape != self.shape or not np.all(np.isfinite(v)):
            self.fail(f"values must be finite and shaped {self.shape}, got {v.shape}")
        self.values = v

    def check_inputs(self, shapes, kinds, need) -> None:
        need(shapes[0] == self.shape, f"expects input shape {self.shape}")


ECMT_TYPES = (MTSpikes, MatMulEC, ExpectationEC, AddConst)
