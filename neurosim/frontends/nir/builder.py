"""Plain-parameter NIR import: ``_Importer`` builds a neurosim ``Graph`` from the NIR node
parameters alone (no neurosim metadata), one handler per supported NIR node type, folding
per-channel gains/offsets into the preceding projection and quantizing weights and graded
inputs. ``neurosim.frontends.nir.importer.from_nir`` drives it."""
from __future__ import annotations

import dataclasses

import networkx as nx
import nir
import numpy as np

from neurosim.frontends.nir.common import RTOL, NIRImportError, _next, quant_weight
from neurosim.ir import graph as G


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
    """One import of the NIR graph ``ng``: ``run()`` returns the neurosim Graph. ``steps`` maps a
    projection to its graded-input step (calibrated), others use ``default_step``."""

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
