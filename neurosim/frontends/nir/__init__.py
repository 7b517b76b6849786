"""NIR interchange: ``neurosim.Graph`` <-> ``nir.NIRGraph`` (Neuromorphic Intermediate Repr.).

NIR describes continuous-time dynamics; neurosim runs in ticks. One tick lasts ``dt`` seconds
(default 1 ms, norse's convention; snntorch's exporter assumes dt = 0.1 ms: import its files with
``dt=1e-4``). Neurons are stepped with forward Euler, one step per tick, which is the reading that
snntorch and norse use when they import NIR:

    LIF  v <- v + (dt / tau) * (v_leak - v + r * I)       then spike if v > v_threshold
    IF   v <- v + r * I  (r per tick; norse and snntorch write and read r = 1 this way)
    after a spike v <- v_reset; neurons start at v_reset.

Mapping (export ``to_nir`` / import ``from_nir``):

    neurosim                              NIR
    Input(shape, kind, T)                 Input(shape); kind and T only in metadata
    Conv(w, scale, bias, s, p, g)         Conv2d(weight = w * scale[c] / u (float64), bias,
                                          stride s, padding p, dilation 1, groups 1); u = 1
                                          for spike input, in_scale for graded input (the
                                          integer accumulator counts steps of in_scale);
                                          groups g > 1 is written as the equal dense weight
                                          with zero blocks (NIR 1.0.8 cannot read grouped
                                          Conv2d back: it takes C_in from weight.shape[1])
    Linear, in (N,)                       Affine(weight = w * scale[c] / u, bias)
    Linear, in (C, H, W)                  Flatten "<name>.flatten" -> Affine
    Neurons lif, hard reset               LIF(tau = tau_ticks * dt, r = 1 if decay_input else
                                          tau_ticks, v_leak = v_reset, v_reset,
                                          v_threshold = nextafter(v_th, -inf))
    Neurons if, hard reset                IF(r = 1, v_reset, v_threshold = nextafter(v_th, -inf))
    Add (2..8 inputs)                     Scale(ones) with one edge per input (NIR sums fan-in)
    TokenMean                             AvgPool2d(kernel = stride = (H, W)) -> Flatten
    Readout                               Output (neurosim reads it as the mean over the T ticks)

neurosim fires on ``v >= v_th``, NIR on ``v > v_threshold``: the float64 neighbour below
``v_th`` makes the two tests identical for every float64 membrane, in both directions.

On import, LIF with r = 1 and v_leak = v_reset gives ``decay_input=True``; r = tau/dt (snntorch)
gives ``decay_input=False``; any other r or v_leak is folded into the preceding projection
(input gain r and offset v_leak - v_reset per channel). NIR ``Threshold`` becomes a stateless
LIF (tau = 1 tick, decay_input=False, v_reset = 0), exact. ``SumPool2d``/``AvgPool2d`` become a
depthwise Conv with all-ones integer weights and scale 1 or 1/k^2 (AvgPool divides by k^2, zero
padding included); an AvgPool covering the whole map followed by a Flatten becomes TokenMean.
``Flatten`` is absorbed by the Affine/Linear it feeds. Several edges into one node are summed (as
nirtorch's interpreter does): an Add node.
Float weights are quantized per output channel to ``weight_bits`` (lowering's scheme); graded
inputs of projections are quantized with a step calibrated on ``example_input`` (2x headroom,
as in lowering) or a fixed ``in_scale``.

NIR has no fixed point: graded-input quantization (in_scale, in_bits) and membrane saturation
(state_bits, v_lsb) travel only as metadata; the NIR parameters are their real-valued meaning.
Exact round trips: every exported node also carries its neurosim fields in NIR metadata
(``neurosim_*`` keys: integer weights, scales, tau in ticks, quantization and register widths);
``from_nir`` rebuilds the graph from them, bit for bit, after checking that re-exporting the
rebuilt graph reproduces the file's NIR parameters exactly. ``use_metadata=False`` imports the
plain NIR parameters instead: thresholds, resets and leak modes come back exact, integer weights
too where every channel reaches +-(2^(b-1) - 1) (as lowering's do), tau and scales to ~1 ulp.

Not expressible in NIR 1.0 (``NIRExportError`` lists every such node): max Pool, SpikeMatmul,
TokenSum, Mask, SFA and multi-threshold neurons, soft or no reset, spike sparse convolution,
TokenMean of scaled spike counts. Not importable (``NIRImportError`` names key and type):
CubaLIF, CubaLI, LI, I, Delay, Conv1d, nested graphs (recurrence), cycles.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import networkx as nx
import nir
import numpy as np

from neurosim.ir import graph as G

DEFAULT_DT = 1e-3            # seconds per tick
FORMAT = "neurosim-nir/1"
META = "neurosim_"           # prefix of the metadata keys written by to_nir
RTOL = 1e-6                  # NIR files are often float32: relative tolerance for r vs tau/dt
CALIB_HEADROOM = 2.0         # same as neurosim.frontends.lower.CALIB_HEADROOM


class NIRExportError(ValueError):
    """The graph holds nodes NIR cannot express; the message lists all of them."""


class NIRImportError(ValueError):
    """The NIR graph cannot be imported; the message names the NIR node key and type."""


def _prev(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float64), -np.inf)


def _next(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float64), np.inf)


def quant_weight(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization in float64: (integer weights, scales).
    The numpy twin of ``neurosim.frontends.lower._quant_weight`` (same operations, same results)."""
    w = np.asarray(w, np.float64)
    qmax = 2 ** (bits - 1) - 1
    m = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(m > 0, m / qmax, 1.0)
    wq = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax)
    return wq, scale


# ============================================================================== export
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


def _json(x) -> str:
    def plain(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")
    return json.dumps(x, sort_keys=True, default=plain)


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


# ============================================================================== import
_UNSUPPORTED = {
    "CubaLIF": "a synaptic current state (second state variable) has no neurosim equivalent",
    "CubaLI": "a synaptic current state and graded membrane output have no neurosim equivalent",
    "LI": "a non-spiking membrane read-out has no neurosim equivalent",
    "I": "a non-spiking integrator read-out has no neurosim equivalent",
    "Delay": "axonal delays are not modelled",
    "Conv1d": "1-D convolution is not supported (Conv2d only)",
    "NIRGraph": "nested graphs (recurrent layers) are not supported",
}
_SUPPORTED = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d,
              nir.AvgPool2d, nir.Flatten, nir.LIF, nir.IF, nir.Threshold, nir.Scale)


def _full_flatten(node: nir.Flatten, ndim: int) -> bool:
    """Does the Flatten turn a per-sample ``ndim``-D value into one vector?"""
    return (int(node.start_dim) % ndim, int(node.end_dim) % ndim) == (0, ndim - 1)


@dataclasses.dataclass
class _Val:
    """The neurosim node ``name`` that carries a NIR node's output; ``shape`` is the NIR shape;
    ``flat`` marks a flattened view of a (C, H, W) output (only an Affine/Linear may read it)."""

    name: str
    shape: tuple
    flat: bool = False


class _Importer:
    def __init__(self, ng: nir.NIRGraph, T: int, kind: str, dt: float, weight_bits: int,
                 in_bits: int, state_bits: int, steps: dict, default_step: float):
        self.ng, self.T, self.kind, self.dt = ng, T, kind, dt
        self.wb, self.ib, self.sb = weight_bits, in_bits, state_bits
        self.steps, self.default_step = steps, default_step
        self.graph = G.Graph(meta={"source": "nir", "dt_s": dt, "weight_bits": weight_bits,
                                   "in_bits": in_bits, "state_bits": state_bits, "folded": []})
        self.val: dict[str, _Val] = {}
        self.graded_src: dict[str, str] = {}   # projection -> its graded source (calibration)
        self.preds: dict[str, list[str]] = {k: [] for k in ng.nodes}
        self.succs: dict[str, list[str]] = {k: [] for k in ng.nodes}
        for a, b in ng.edges:
            for k in (a, b):
                if k not in ng.nodes:
                    raise NIRImportError(f"edge ({a!r}, {b!r}) refers to unknown node {k!r}")
            self.preds[b].append(a)
            self.succs[a].append(b)
        self.absorbed: set[str] = set()

    # helpers --------------------------------------------------------------------------------
    def fail(self, key: str, msg: str):
        raise NIRImportError(f"NIR node {key!r} ({type(self.ng.nodes[key]).__name__}): {msg}")

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.ng.nodes or name in self.graph.g:
            name, i = f"{base}_{i}", i + 1
        return name

    def add(self, key: str, op: G.Node, inputs: list[str]) -> str:
        try:
            self.graph.add(op, inputs)
        except G.GraphError as e:
            self.fail(key, str(e))
        return op.name

    def vals_in(self, key: str) -> list[_Val]:
        preds = self.preds[key]
        if not preds:
            self.fail(key, "has no input edge")
        return [self.val[p] for p in preds]

    def single(self, key: str) -> _Val:
        """The node's input; several incoming edges are summed by an Add node."""
        vs = self.vals_in(key)
        if len(vs) == 1:
            return vs[0]
        return self.add_sum(key, vs, self.fresh(f"{key}.sum"))

    def add_sum(self, key: str, vs: list[_Val], name: str) -> _Val:
        if any(v.flat for v in vs):
            self.fail(key, "sums a flattened value; Flatten must feed an Affine/Linear directly")
        shapes = {v.shape for v in vs}
        if len(shapes) != 1:
            self.fail(key, f"incoming edges carry different shapes {sorted(shapes)}")
        if len(vs) > 8:
            self.fail(key, f"{len(vs)} incoming edges; neurosim's Add takes at most 8")
        self.add(key, G.Add(name=name, shape=vs[0].shape), [v.name for v in vs])
        return _Val(name, vs[0].shape)

    def unflat(self, key: str, x: _Val, ndim: int | None = None) -> _Val:
        if x.flat:
            self.fail(key, "reads a Flatten output; Flatten must feed an Affine/Linear directly")
        if ndim is not None and len(x.shape) != ndim:
            self.fail(key, f"expects a {ndim}-D input, got shape {x.shape}")
        return x

    def check_declared(self, key: str, shape: tuple, which: str = "input"):
        node = self.ng.nodes[key]
        types = node.input_type if which == "input" else node.output_type
        t = (types or {}).get(which)
        if t is not None and np.size(t) and tuple(int(s) for s in np.ravel(t)) != tuple(shape):
            self.fail(key, f"declares {which} shape {tuple(int(s) for s in np.ravel(t))} but "
                           f"receives {tuple(shape)}")

    def per_neuron(self, key: str, field: str, a, shape: tuple) -> np.ndarray:
        a = np.asarray(a, np.float64)
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            self.fail(key, f"{field} has shape {a.shape}, the input has shape {shape}")

    def per_channel(self, key: str, field: str, a, shape: tuple) -> np.ndarray:
        """A per-neuron parameter -> one value per channel (must be constant within a channel)."""
        c = self.per_neuron(key, field, a, shape).reshape(shape[0], -1)
        if not np.all(c == c[:, :1]):
            self.fail(key, f"{field} varies within a channel; neurosim keeps one value per "
                           "channel")
        if not np.all(np.isfinite(c)):
            self.fail(key, f"{field} is not finite")
        return np.ascontiguousarray(c[:, 0])

    def unit_step(self, name: str, x: _Val) -> tuple[float, float]:
        """(in_scale, value of one input count) for a projection ``name`` reading ``x``."""
        if self.graph.out_kind(x.name) == "spike":
            return 1.0, 1.0
        self.graded_src[name] = x.name
        step = float(self.steps.get(name, self.default_step))
        return step, step

    def fold(self, key: str, x: _Val, gain: np.ndarray, offset: np.ndarray, what: str):
        """Absorb ``x' = gain * x + offset`` (per channel) into the projection producing ``x``."""
        src = self.graph.op(x.name)
        preds = self.preds[key]
        if not isinstance(src, G.WEIGHTED_TYPES) or x.flat or preds != [x.name] or \
                self.succs.get(x.name) != [key]:
            self.fail(key, f"{what} needs a preceding Affine/Linear/Conv2d that feeds only this "
                           "node, to absorb the per-channel input gain/offset")
        new = dataclasses.replace(src, scale=src.scale * gain, bias=src.bias * gain + offset)
        self.graph.replace(new)
        self.graph.meta["folded"].append([x.name, key])

    # node handlers ---------------------------------------------------------------------------
    def do_input(self, key, node):
        shape = tuple(int(s) for s in np.ravel(node.input_type["input"]))
        if len(shape) not in (1, 3):
            self.fail(key, f"input shape {shape} must be per sample: (C, H, W) or (N,) "
                           "(export without the batch dimension, e.g. ignore_dims=[0])")
        self.add(key, G.Input(name=key, shape=shape, kind=self.kind, T=self.T), [])
        return _Val(key, shape)

    def do_output(self, key, node):
        x = self.unflat(key, self.single(key))
        self.check_declared(key, x.shape, "output")
        self.add(key, G.Readout(name=key, shape=x.shape), [x.name])
        return _Val(key, x.shape)

    def do_conv2d(self, key, node):
        x = self.unflat(key, self.single(key), 3)
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            self.fail(key, f"weight must be [C_out, C_in/groups, k, k], got {w.shape}")
        k = w.shape[2]
        dil = np.ravel(node.dilation)
        if not np.all(dil == 1):
            self.fail(key, f"dilation {tuple(dil)} is not supported (1 only)")
        stride = self.square(key, "stride", node.stride)
        pad = node.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = 0
            elif stride == 1 and k % 2 == 1:
                pad = (k - 1) // 2
            else:
                self.fail(key, f"padding 'same' with stride {stride}, kernel {k} is asymmetric")
        pad = self.square(key, "padding", pad)
        groups = int(np.ravel(node.groups)[0])
        Ci, H, W = x.shape
        if groups < 1 or Ci != w.shape[1] * groups:
            self.fail(key, f"weight {w.shape} with groups={groups} expects {w.shape[1] * groups} "
                           f"input channels, input has shape {x.shape}")
        declared = None if node.input_shape is None else \
            tuple(int(s) for s in np.ravel(node.input_shape))
        if declared is not None and declared != (H, W):
            self.fail(key, f"input_shape {declared} does not match the incoming map {(H, W)}")
        if k > H + 2 * pad or k > W + 2 * pad:
            self.fail(key, f"kernel {k} larger than the padded input {x.shape}")
        shape = (w.shape[0], (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1)
        bias = np.zeros(w.shape[0]) if node.bias is None else np.asarray(node.bias, np.float64)
        if bias.shape != (w.shape[0],):
            self.fail(key, f"bias shape {bias.shape} does not fit {w.shape[0]} output channels")
        return self.projection(key, G.Conv, x, w, bias, shape, stride=stride,
                               padding=pad, groups=groups)

    def square(self, key, field, v) -> int:
        a = np.ravel(np.asarray(v))
        if a.size not in (1, 2) or (a.size == 2 and a[0] != a[1]):
            self.fail(key, f"{field} {tuple(a)} must be equal in both dimensions")
        return int(a[0])

    def projection(self, key, cls, x: _Val, w: np.ndarray, bias: np.ndarray, shape: tuple,
                   in_shape: tuple | None = None, **kw) -> _Val:
        wq, ws = quant_weight(w, self.wb)
        in_scale, unit = self.unit_step(key, x)
        src_shape = in_shape if in_shape is not None else x.shape
        try:
            op = cls(name=key, shape=shape, in_shape=src_shape, weight=wq, scale=ws * unit,
                     bias=bias, weight_bits=self.wb, in_scale=in_scale, in_bits=self.ib,
                     weight_float=w.astype(np.float32), **kw)
        except G.GraphError as e:
            self.fail(key, str(e))
        self.add(key, op, [x.name])
        self.check_declared(key, shape, "output")
        return _Val(key, shape)

    def do_affine(self, key, node):
        x = self.single(key)
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 2:
            self.fail(key, f"weight must be 2-D [N_out, N_in], got {w.shape}")
        src_shape = self.graph.op(x.name).shape if x.flat else x.shape
        if not x.flat and len(x.shape) != 1:
            self.fail(key, f"input has shape {x.shape}; an Affine/Linear needs a vector "
                           "(insert a Flatten)")
        if w.shape[1] != int(np.prod(x.shape)):
            what = f"a Flatten of {src_shape}" if x.flat else f"shape {x.shape}"
            self.fail(key, f"weight {w.shape} expects {w.shape[1]} inputs, the input is {what} "
                           f"({int(np.prod(x.shape))} values)")
        bias = getattr(node, "bias", None)
        bias = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64)
        if bias.shape != (w.shape[0],):
            self.fail(key, f"bias shape {bias.shape} does not fit {w.shape[0]} outputs")
        return self.projection(key, G.Linear, _Val(x.name, src_shape), w, bias, (w.shape[0],))

    def do_flatten(self, key, node):
        x = self.single(key)
        if x.flat:
            return x
        nd = len(x.shape)
        if node.input_type and node.input_type.get("input") is not None:
            self.check_declared(key, x.shape, "input")
        if not _full_flatten(node, nd):
            self.fail(key, f"start_dim={node.start_dim}, end_dim={node.end_dim} flattens part of "
                           f"{x.shape}; only full flattening (0, -1) is supported")
        return x if nd == 1 else _Val(x.name, (int(np.prod(x.shape)),), flat=True)

    def neurons(self, key, x: _Val, **kw) -> _Val:
        try:
            op = G.Neurons(name=key, shape=x.shape, reset="hard", state_bits=self.sb,
                           v_lsb=2.0 ** -(self.sb // 2), **kw)
        except G.GraphError as e:
            self.fail(key, str(e))
        self.add(key, op, [x.name])
        return _Val(key, x.shape)

    def threshold(self, key, thr: np.ndarray) -> np.ndarray:
        if np.any(thr < 0):
            self.fail(key, f"negative threshold {thr.min()}: neurosim thresholds are positive")
        return _next(thr)

    def do_lif(self, key, node):
        x = self.unflat(key, self.single(key))
        pc = {f: self.per_channel(key, f, getattr(node, f), x.shape)
              for f in ("r", "v_leak", "v_threshold", "v_reset")}
        tau = self.per_neuron(key, "tau", node.tau, x.shape) / self.dt
        t0 = float(tau.flat[0])
        if not np.allclose(tau, t0, rtol=RTOL, atol=0):
            self.fail(key, "tau varies across neurons; neurosim keeps one tau per population")
        if not t0 >= 1:
            self.fail(key, f"tau = {t0 * self.dt:g} s is {t0:g} ticks of dt = {self.dt:g} s; "
                           "neurosim needs >= 1 tick (is dt right? snntorch writes NIR with "
                           "dt = 1e-4, norse with 1e-3)")
        r, vl, vr = pc["r"], pc["v_leak"], pc["v_reset"]
        if np.array_equal(vl, vr) and np.allclose(r, 1.0, rtol=RTOL, atol=0):
            decay_input = True
        elif np.array_equal(vl, vr) and np.allclose(r, t0, rtol=RTOL, atol=0):
            decay_input = False
        else:
            self.fold(key, x, r, vl - vr, "r != 1 or tau/dt, or v_leak != v_reset,")
            decay_input = True
        return self.neurons(key, x, model="lif", tau=t0, decay_input=decay_input,
                            v_th=self.threshold(key, pc["v_threshold"]), v_reset=vr)

    def do_if(self, key, node):
        x = self.unflat(key, self.single(key))
        pc = {f: self.per_channel(key, f, getattr(node, f), x.shape)
              for f in ("r", "v_threshold", "v_reset")}
        if not np.allclose(pc["r"], 1.0, rtol=RTOL, atol=0):
            self.fold(key, x, pc["r"], np.zeros_like(pc["r"]), "r != 1")
        return self.neurons(key, x, model="if", v_th=self.threshold(key, pc["v_threshold"]),
                            v_reset=pc["v_reset"])

    def do_threshold(self, key, node):
        x = self.unflat(key, self.single(key))
        thr = self.per_channel(key, "threshold", node.threshold, x.shape)
        # h = v - (v - 0)/1 + x = x exactly: a stateless comparison x > threshold
        return self.neurons(key, x, model="lif", tau=1.0, decay_input=False,
                            v_th=self.threshold(key, thr), v_reset=np.zeros(x.shape[0]))

    def do_pool(self, key, node):
        x = self.unflat(key, self.single(key), 3)
        C, H, W = x.shape
        ks = np.ravel(node.kernel_size)
        kh, kw = (int(ks[0]), int(ks[-1]))
        avg = isinstance(node, nir.AvgPool2d)
        pad = np.ravel(node.padding)
        succ = self.succs[key]
        if avg and (kh, kw) == (H, W) and np.all(pad == 0) and len(succ) == 1 and \
                isinstance(self.ng.nodes[succ[0]], nir.Flatten) and \
                _full_flatten(self.ng.nodes[succ[0]], 3) and len(self.preds[succ[0]]) == 1:
            in_scale, _ = self.unit_step(key, x)
            self.add(key, G.TokenMean(name=key, shape=(C,), in_scale=in_scale, in_bits=self.ib),
                     [x.name])
            self.val[succ[0]] = _Val(key, (C,))
            self.absorbed.add(succ[0])
            return _Val(key, (C, 1, 1))
        if kh != kw:
            self.fail(key, f"kernel {(kh, kw)} must be square")
        stride, p = self.square(key, "stride", node.stride), self.square(key, "padding", pad)
        if kh > H + 2 * p:
            self.fail(key, f"kernel {kh} larger than the padded input {x.shape}")
        shape = (C, (H + 2 * p - kh) // stride + 1, (W + 2 * p - kh) // stride + 1)
        w = np.ones((C, 1, kh, kh))
        wq = w.astype(np.int8)
        in_scale, unit = self.unit_step(key, x)
        op = G.Conv(name=key, shape=shape, in_shape=x.shape, weight=wq,
                    scale=np.full(C, unit / (kh * kh) if avg else unit), bias=np.zeros(C),
                    weight_bits=self.wb, in_scale=in_scale, in_bits=self.ib,
                    weight_float=w.astype(np.float32), stride=stride, padding=p, groups=C,
                    form="avgpool" if avg else "sumpool")
        self.add(key, op, [x.name])
        return _Val(key, shape)

    def do_scale(self, key, node):
        vs = self.vals_in(key)
        s = np.asarray(node.scale, np.float64)
        if np.all(s == 1):
            return vs[0] if len(vs) == 1 else self.add_sum(key, vs, key)
        if len(vs) != 1:
            self.fail(key, "scales a sum of several inputs; only a single projection input "
                           "can absorb a scale")
        x = vs[0]
        gain = self.per_channel(key, "scale", s, x.shape)
        self.fold(key, x, gain, np.zeros_like(gain), "a non-unit Scale")
        return x

    # driver -----------------------------------------------------------------------------------
    def run(self) -> G.Graph:
        ng = self.ng
        bad = []
        for k, n in ng.nodes.items():
            if not isinstance(n, _SUPPORTED):
                t = type(n).__name__
                bad.append(f"{k!r} ({t}: {_UNSUPPORTED.get(t, 'no neurosim equivalent')})")
        if bad:
            raise NIRImportError(f"{len(bad)} NIR node(s) cannot be imported: " + "; ".join(bad))
        ins = [k for k, n in ng.nodes.items() if isinstance(n, nir.Input)]
        outs = [k for k, n in ng.nodes.items() if isinstance(n, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise NIRImportError(f"neurosim needs exactly one Input and one Output node, the NIR "
                                 f"graph has inputs {ins} and outputs {outs}")
        dg = nx.DiGraph()
        dg.add_nodes_from(ng.nodes)
        dg.add_edges_from(ng.edges)
        if not nx.is_directed_acyclic_graph(dg):
            raise NIRImportError(f"NIR graph has a cycle (recurrence is not supported): "
                                 f"{nx.find_cycle(dg)}")
        pos = {k: i for i, k in enumerate(ng.nodes)}
        handlers = {nir.Input: self.do_input, nir.Output: self.do_output,
                    nir.Affine: self.do_affine, nir.Linear: self.do_affine,
                    nir.Conv2d: self.do_conv2d, nir.SumPool2d: self.do_pool,
                    nir.AvgPool2d: self.do_pool, nir.Flatten: self.do_flatten,
                    nir.LIF: self.do_lif, nir.IF: self.do_if, nir.Threshold: self.do_threshold,
                    nir.Scale: self.do_scale}
        for k in nx.lexicographical_topological_sort(dg, key=lambda k: pos[k]):
            if k in self.absorbed:
                continue
            self.val[k] = handlers[type(ng.nodes[k])](k, ng.nodes[k])
        try:
            return self.graph.validate()
        except G.GraphError as e:
            raise NIRImportError(f"imported graph is invalid: {e}") from None


def _fields(node: nir.NIRNode) -> dict:
    out = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)
           if f.name not in ("input_type", "output_type", "metadata")}
    if isinstance(node, (nir.Input, nir.Flatten)):
        out["input_type"] = node.input_type.get("input")
    if isinstance(node, nir.Output):
        out["output_type"] = node.output_type.get("output")
    return out


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return (a is None and b is None) or (isinstance(a, str) and a == b)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def nir_difference(a: nir.NIRGraph, b: nir.NIRGraph) -> str | None:
    """The first difference between two NIR graphs (nodes, parameters, edges), or None.
    Metadata is ignored; parameters must be equal value for value."""
    if set(a.nodes) != set(b.nodes):
        return f"node keys differ: {sorted(set(a.nodes) ^ set(b.nodes))}"
    for k in a.nodes:
        na, nb = a.nodes[k], b.nodes[k]
        if type(na) is not type(nb):
            return f"node {k!r} is {type(na).__name__} vs {type(nb).__name__}"
        fa, fb = _fields(na), _fields(nb)
        for f in fa:
            if f not in fb or not _same(fa[f], fb[f]):
                return f"node {k!r} ({type(na).__name__}) field {f!r} differs"
    ea = {tuple(e) for e in a.edges}
    eb = {tuple(e) for e in b.edges}
    if ea != eb:
        return f"edges differ: {sorted(ea ^ eb)}"
    return None


def _from_metadata(ng: nir.NIRGraph, T: int, kind: str | None, dt: float | None) -> G.Graph:
    md = ng.metadata
    file_dt = float(md[f"{META}dt_s"])
    if dt is not None and dt != file_dt:
        raise NIRImportError(f"the file was written by neurosim with dt = {file_dt} s per tick, "
                             f"got dt = {dt}")
    info = json.loads(md[f"{META}graph"])
    g = G.Graph(info["meta"])
    for name in info["order"]:
        node = ng.nodes.get(name)
        if node is None or f"{META}type" not in (node.metadata or {}):
            raise NIRImportError(f"node {name!r} or its neurosim metadata is missing from the "
                                 "NIR graph; pass use_metadata=False to import the NIR "
                                 "parameters alone")
        nmd = node.metadata
        typ = G.NODE_TYPES.get(str(nmd[f"{META}type"]))
        if typ is None:
            raise NIRImportError(f"NIR node {name!r}: unknown neurosim type "
                                 f"{nmd[f'{META}type']!r}")
        kw = json.loads(nmd[f"{META}params"])
        kw.update({k[len(META):]: np.asarray(v) for k, v in nmd.items()
                   if k.startswith(META) and k not in (f"{META}type", f"{META}params")})
        if typ is G.Input:
            kw["T"] = T
            kw["kind"] = kind or kw["kind"]
        try:
            g.add(typ(**kw), info["inputs"][name])
        except (TypeError, G.GraphError) as e:
            raise NIRImportError(f"NIR node {name!r}: neurosim metadata is invalid: {e}") from None
    g.validate()
    diff = nir_difference(to_nir(g, file_dt), ng)
    if diff is not None:
        raise NIRImportError(f"neurosim metadata disagrees with the NIR parameters ({diff}); "
                             "was the file edited after export? pass use_metadata=False to "
                             "import the NIR parameters alone")
    return g


def from_nir(nir_graph: nir.NIRGraph, T: int, input_kind: str | None = None, *,
             dt: float | None = None, weight_bits: int = 8, in_bits: int = 16,
             in_scale: float | None = None, example_input=None, state_bits: int = 16,
             use_metadata: bool = True) -> G.Graph:
    """Import a NIR graph as a neurosim ``Graph`` that runs for ``T`` ticks per sample.

    input_kind: "graded" (real values, quantized by the first projection) or "spike" (event
    counts); default: the file's (neurosim export) or "graded". dt: seconds per tick (default:
    the file's, else 1e-3; snntorch files need 1e-4). weight_bits: per-channel weight
    quantization. in_bits / in_scale / example_input: graded inputs of projections are
    quantized to ``in_bits`` with step ``in_scale``, or with a step calibrated per projection on
    ``example_input`` ([B, *in] or [T, B, *in]; 2 x max |x| / (2^(in_bits-1) - 1)), else
    2^-(in_bits // 2). state_bits: membrane register width (v_lsb = 2^-(state_bits // 2)).
    Files written by ``to_nir`` are rebuilt exactly from their metadata unless
    ``use_metadata=False``; then the other options apply to them too.
    """
    if not isinstance(nir_graph, nir.NIRGraph):
        raise TypeError(f"expected a nir.NIRGraph, got {type(nir_graph).__name__}")
    if int(T) != T or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T}")
    T = int(T)
    if input_kind not in (None, *G.EDGE_KINDS):
        raise ValueError(f"input_kind must be one of {G.EDGE_KINDS}, got {input_kind!r}")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    if not 2 <= int(weight_bits) <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {weight_bits}")
    if in_scale is not None and not in_scale > 0:
        raise ValueError(f"in_scale must be > 0, got {in_scale}")
    md = nir_graph.metadata if isinstance(nir_graph.metadata, dict) else {}
    fmt = md.get(f"{META}format")
    if use_metadata and fmt is not None:
        if fmt != FORMAT:
            raise NIRImportError(f"neurosim metadata format {fmt!r} is not {FORMAT!r}")
        return _from_metadata(nir_graph, T, input_kind, dt)
    if dt is None:
        dt = float(md.get(f"{META}dt_s", DEFAULT_DT))
    kind = input_kind or "graded"
    default = in_scale if in_scale is not None else 2.0 ** -(in_bits // 2)

    def build(steps, bits, step):
        return _Importer(nir_graph, T, kind, dt, int(weight_bits), bits, state_bits,
                         steps, step)

    imp = build({}, in_bits, default)
    graph = imp.run()
    if example_input is None or in_scale is not None or not imp.graded_src:
        return graph
    from neurosim.reference.interp import run   # calibration: a fine-grained pass, then the real steps
    fine = build({}, 32, 2.0 ** -16)
    res = run(fine.run(), example_input, record="all")
    qmax = 2 ** (in_bits - 1) - 1
    steps = {}
    for proj, src in fine.graded_src.items():
        m = float(np.abs(res.outputs[src]).max()) * CALIB_HEADROOM
        steps[proj] = (m if m > 0 else 1.0) / qmax
    graph = build(steps, in_bits, default).run()
    graph.meta["in_steps"] = steps
    return graph


def read_nir(path: str | Path, T: int, **kw) -> G.Graph:
    """``nir.read`` the HDF5 file at ``path`` and ``from_nir`` it (keywords as there)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIR file not found: {path}")
    try:   # neurosim checks every shape itself, naming the node (NIR's check cannot read
        ng = nir.read(path, type_check=False)   # grouped Conv2d, see _dense)
    except Exception as e:  # h5py and nir raise many types; report them uniformly
        raise NIRImportError(f"{path}: cannot read NIR file: {type(e).__name__}: {e}") from None
    return from_nir(ng, T, **kw)
