"""Mapping: place a ``Graph`` onto the cores of a chip (``chips.spec.ChipSpec``).

Layers
    Nodes are grouped into *layers*, the unit a core implements (synapses -> dendrite -> soma):

    * every ``Conv`` / ``Linear`` starts a layer (its weights);
    * a ``Neurons`` node fed directly by a reduction (Conv, Linear, SpikeMatmul, TokenSum,
      TokenMean) joins that reduction's layer: the dendrite integrates straight into the soma;
      any other ``Neurons`` node starts a *soma-only* layer (identity synapses: 1 weight per
      channel, fan-in 1);
    * nodes without weights or neurons (Add, Mask, Pool, TokenMean, Readout, SpikeMatmul,
      TokenSum) join the layer of their producer on the aligned port (port 0; SpikeMatmul port
      2 = v, whose channel c' is output channel c'; TokenSum its last port) when the channel
      counts agree, so they run on the core holding the same channels. Otherwise they form a
      layer of their own; one that needs no memory takes no core and sits on its producer's
      (or, after the Input, its consumer's) first core.
    * the ``Input`` is off-chip: its events enter at the destination cores (0 hops).

Resources of one part (output channels [c0, c1) of a layer) on one core
    * neurons: ``(c1 - c0) * H * W`` per Neurons node, plus the same for a reduction whose
      output is not consumed only by Neurons of its own layer (a graded-output accumulator);
    * weights (weight sharing, as Speck does): a conv core stores only the kernel slice of its
      output channels, ``(c1 - c0) * C_in/groups * k * k`` weights (``C_in`` when the chip has
      no compact grouped kernels); a linear core ``(c1 - c0) * prod(in_shape)``; weights of
      ``core.weight_bits`` each;
    * state: every neuron / accumulator holds ``core.state_bits``; a SpikeMatmul also stores
      its product: order q(kv) keeps the KV columns of its channels, ``d * (c1 - c0)`` entries
      (d = C / heads), order (qk)v the ``N x N`` QK matrix of every head it touches;
    * ``dynapcnn`` memory (Speck, sinabs ``DynapcnnLayer.memory_summary``): kernel entries
      ``c_in * 2^(ceil(log2(kx*ky)) + ceil(log2 c_out))``, neuron entries
      ``c_out * 2^(ceil(log2 h_out) + ceil(log2 w_out))``, bias entries ``c_out``.

Splits
    A layer too big for one core is split by output channels into contiguous, exact,
    non-overlapping ranges ``[c0, c1)`` covering ``0..C`` (balanced sizes when they fit). A
    depthwise conv's input channel c travels with its output channel c. A channel is never
    divided: a single channel that does not fit is a violation. Chips without
    ``features.split_layers`` (Speck) give each layer exactly one core.

Placement
    Homogeneous cores: layers in topological order either along a serpentine (boustrophedon)
    path over the mesh, or greedily on the free cores nearest (Manhattan) to the cores of
    their producers; ``placement="auto"`` keeps whichever gives fewer total spike hops.
    Heterogeneous cores (Speck): a minimum-waste assignment of layers to cores that fit
    (``scipy.optimize.linear_sum_assignment``).

Hops
    XY routing on a mesh (hops = |dx| + |dy|, core id = y * mesh_x + x); all-to-all chips are
    one hop between distinct cores. A spike of source channel c (on core a) is delivered once
    to every distinct core b holding an output channel of the consumer that depends on c (a
    conv: c's group; a linear: all; elementwise: c; SpikeMatmul q/k: c's head, v: c); each
    copy travels hops(a, b) (unicast per destination core, no shared multicast tree; a copy to
    a == b costs 0 hops). ``hops_per_spike(u, v)`` sums those hops per source channel,
    ``packets_per_spike(u, v)`` counts the copies sent over the network (b != a; all of them
    from the off-chip Input); ``route(u, v)`` returns both.

Violations
    Every problem (memory, neurons, fan-in, cores, per-layer limits, unsupported operations,
    graded edges, precision) becomes a ``Violation`` naming the layer and node, what is needed
    and what the chip has. ``strict=True`` raises ``MappingError`` listing them all;
    ``strict=False`` returns the best-effort mapping (oversubscribing cores) with
    ``Mapping.violations`` filled in.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chips.spec import ChipSpec, CoreCapacity, load_chip
from neurosim.ir import graph as G

REDUCTIONS = (G.Conv, G.Linear, G.SpikeMatmul, G.TokenSum, G.TokenMean)
SPIKE_PRODUCTS = (G.SpikeMatmul, G.TokenSum, G.Mask)
ALIGN_PORT = {G.SpikeMatmul: 2, G.TokenSum: -1}
FLAT_RESOURCES = ("neurons", "weight_bytes", "state_bytes")
DYNAPCNN_RESOURCES = ("kernel_entries", "neuron_entries", "bias_entries")
_LABEL = {"neurons": "neurons", "weight_bytes": "bytes of weight memory",
          "state_bytes": "bytes of state memory", "kernel_entries": "kernel memory entries",
          "neuron_entries": "neuron memory entries", "bias_entries": "bias memory entries"}


class MappingError(ValueError):
    """A graph does not fit a chip. ``violations`` lists every problem; the message names
    each layer, what it needs and what the chip has."""

    def __init__(self, message: str, violations=()):
        super().__init__(message)
        self.violations = list(violations)


class Part(NamedTuple):
    """Output channels [c0, c1) of a node, on core ``core`` (unpacks as (core, c0, c1))."""

    core: int
    c0: int
    c1: int

    @property
    def channels(self) -> int:
        return self.c1 - self.c0


class PartTable(dict):
    """``{node: [Part, ...]}`` in channel order; also callable: ``parts(node)`` returns the
    node's parts ([] for the off-chip Input)."""

    def __call__(self, node: str) -> list[Part]:
        return list(self.get(node, []))


@dataclass(frozen=True)
class Violation:
    """One way the graph does not fit the chip. ``kind``: neurons, weight_bytes, state_bytes,
    kernel_entries, neuron_entries, bias_entries, fan_in, cores, no_core, kernel_size, stride,
    padding, channels, input_size, destinations, graded_edge, spike_product, max_pool,
    precision."""

    layer: str
    node: str
    kind: str
    needed: Any
    available: Any
    message: str

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Layer:
    """Nodes sharing one channel split and one set of cores. ``needs[i]``: resources of
    ``parts[i]`` by resource name; ``by_node[i]``: the same per node."""

    name: str
    nodes: list[str]
    channels: int
    fan_in: int
    parts: list[Part] = field(default_factory=list)
    needs: list[dict] = field(default_factory=list)
    by_node: list[dict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True when the layer needs memory (and so cores of its own)."""
        return any(v for n in self.needs for v in n.values())

    @property
    def cores(self) -> list[int]:
        return [p.core for p in self.parts]


@dataclass
class CoreUse:
    """What one core holds: layers, nodes, resource usage (total and per node), capacity."""

    core: int
    xy: tuple
    capacity: CoreCapacity
    layers: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    by_node: dict = field(default_factory=dict)

    def utilisation(self) -> dict[str, float]:
        cap = self.capacity.as_dict()
        return {k: self.usage.get(k, 0) / cap[k] for k in cap if cap[k]}

    def to_dict(self) -> dict:
        return {"core": self.core, "x": self.xy[0], "y": self.xy[1], "layers": self.layers,
                "nodes": self.nodes, "usage": dict(self.usage),
                "capacity": self.capacity.as_dict(),
                "utilisation": {k: round(v, 6) for k, v in self.utilisation().items()}}


def _clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1."""
    return int(n - 1).bit_length() if n > 1 else 0


def _hw(shape: tuple) -> tuple[int, int]:
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


# ----------------------------------------------------------------------------- the mapping
class Mapping:
    """Placement of a graph on a chip.

    ``parts[node]`` / ``parts(node)``: list of ``Part(core, c0, c1)``; ``layers[name]``: the ``Layer`` objects
    (in topological order); ``layer_of[node]``; ``cores[core_id]``: ``CoreUse`` for every core
    holding something; ``violations``: problems (empty when the graph fits); ``placement``:
    the strategy used. The Input node is off-chip and has no parts."""

    def __init__(self, graph: G.Graph, chip: ChipSpec, layers: dict[str, Layer],
                 layer_of: dict[str, str], violations: list[Violation], placement: str):
        self.graph, self.chip = graph, chip
        self.layers, self.layer_of = layers, layer_of
        self.violations = list(violations)
        self.placement = placement
        self.input = graph.input_node()
        self.parts = PartTable()
        for L in layers.values():
            for n in L.nodes:
                self.parts[n] = list(L.parts)
        self._resources = (FLAT_RESOURCES if chip.core.memory_model == "flat"
                           else DYNAPCNN_RESOURCES)
        self.cores: dict[int, CoreUse] = {}
        for L in layers.values():
            for p, need, per_node in zip(L.parts, L.needs, L.by_node):
                cu = self.cores.get(p.core)
                if cu is None:
                    cu = self.cores[p.core] = CoreUse(p.core, self.coords(p.core),
                                                      chip.capacity(p.core))
                if L.name not in cu.layers:
                    cu.layers.append(L.name)
                for n in L.nodes:
                    if n not in cu.nodes:
                        cu.nodes.append(n)
                for k, v in need.items():
                    cu.usage[k] = cu.usage.get(k, 0) + v
                for n, d in per_node.items():
                    acc = cu.by_node.setdefault(n, {})
                    for k, v in d.items():
                        acc[k] = acc.get(k, 0) + v
        self.cores = dict(sorted(self.cores.items()))
        self._chan_cache: dict[str, np.ndarray] = {}
        self._edge_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # geometry ---------------------------------------------------------------------------
    @property
    def n_cores(self) -> int:
        return self.chip.n_cores

    @property
    def fits(self) -> bool:
        return not self.violations

    def coords(self, core: int) -> tuple[int, int]:
        """(x, y) of a core on the mesh (all-to-all chips: (core, 0))."""
        if self.chip.mesh.topology == "mesh":
            return core % self.chip.mesh.mesh_x, core // self.chip.mesh.mesh_x
        return core, 0

    def hops(self, a: int, b: int) -> int:
        """Router hops from core a to core b: XY routing on a mesh (|dx| + |dy|); 1 between
        distinct cores of an all-to-all chip; 0 when a == b or a is off-chip (-1)."""
        if a < 0 or b < 0 or a == b:
            return 0
        if self.chip.mesh.topology == "mesh":
            (xa, ya), (xb, yb) = self.coords(a), self.coords(b)
            return abs(xa - xb) + abs(ya - yb)
        return 1

    def path(self, a: int, b: int) -> list[int]:
        """Cores a packet visits after leaving core ``a`` on its way to core ``b`` (XY: x
        first, then y); ``len(path(a, b)) == hops(a, b)``."""
        if a < 0 or a == b:
            return []
        if self.chip.mesh.topology != "mesh":
            return [b]
        X = self.chip.mesh.mesh_x
        (x, y), (xb, yb) = self.coords(a), self.coords(b)
        out = []
        while x != xb:
            x += 1 if xb > x else -1
            out.append(y * X + x)
        while y != yb:
            y += 1 if yb > y else -1
            out.append(y * X + x)
        return out

    # channels and cores ---------------------------------------------------------------
    def channel_cores(self, node: str) -> np.ndarray:
        """Core of each output channel of ``node`` (int64, -1 for the off-chip Input)."""
        if node not in self._chan_cache:
            op = self.graph.op(node)
            out = np.full(op.channels, -1, dtype=np.int64)
            for p in self.parts.get(node, []):
                out[p.c0:p.c1] = p.core
            self._chan_cache[node] = out
        return self._chan_cache[node]

    def cores_of(self, node: str) -> list[int]:
        """Distinct cores holding part of ``node``, in channel order."""
        return list(dict.fromkeys(p.core for p in self.parts.get(node, [])))

    def _dependents(self, u: str, v: str) -> tuple[np.ndarray, np.ndarray]:
        """Per source channel c of u: the range [lo, hi) of v's output channels that c feeds."""
        if not self.graph.g.has_edge(u, v):
            raise G.GraphError(f"no edge {u!r} -> {v!r} in the graph")
        src, dst = self.graph.op(u), self.graph.op(v)
        C, Cv = src.channels, dst.channels
        c = np.arange(C)
        port = self.graph.edge(u, v)["port"]
        if isinstance(dst, G.Conv):
            cin_g, cout_g = dst.in_shape[0] // dst.groups, Cv // dst.groups
            lo = (c // cin_g) * cout_g
            return lo, lo + cout_g
        if isinstance(dst, G.Linear):
            return np.zeros(C, np.int64), np.full(C, Cv, np.int64)
        if isinstance(dst, G.SpikeMatmul) and port in (0, 1):
            d = Cv // dst.heads
            lo = (c // d) * d
            return lo, lo + d
        if C == Cv:
            return c, c + 1
        return np.zeros(C, np.int64), np.full(C, Cv, np.int64)

    def dest_cores(self, u: str, v: str, c0: int, c1: int) -> list[int]:
        """Cores holding a part of ``v`` that depends on any of ``u``'s channels [c0, c1)."""
        lo, hi = self._dependents(u, v)
        a, b = int(lo[c0:c1].min()), int(hi[c0:c1].max())
        return sorted({p.core for p in self.parts.get(v, []) if p.c0 < b and p.c1 > a})

    def _edge(self, u: str, v: str) -> tuple[np.ndarray, np.ndarray]:
        key = (u, v)
        if key not in self._edge_cache:
            lo, hi = self._dependents(u, v)
            src = self.channel_cores(u)
            vparts = self.parts.get(v, [])
            hops = np.zeros(len(src), np.int64)
            packets = np.zeros(len(src), np.int64)
            memo: dict[tuple, tuple[int, int]] = {}
            for c in range(len(src)):
                k = (int(src[c]), int(lo[c]), int(hi[c]))
                if k not in memo:
                    dest = dict.fromkeys(p.core for p in vparts if p.c0 < k[2] and p.c1 > k[1])
                    memo[k] = (sum(self.hops(k[0], b) for b in dest),
                               sum(1 for b in dest if b != k[0]))
                hops[c], packets[c] = memo[k]
            self._edge_cache[key] = (hops, packets)
        return self._edge_cache[key]

    def hops_per_spike(self, u: str, v: str) -> np.ndarray:
        """Per output channel of ``u``: total router hops one spike (or graded value) of that
        channel travels to reach ``v`` (one copy per distinct destination core, each copy
        ``hops(a, b)``; 0 from the off-chip Input)."""
        return self._edge(u, v)[0].copy()

    def packets_per_spike(self, u: str, v: str) -> np.ndarray:
        """Per output channel of ``u``: packets one spike of that channel puts on the network
        for consumer ``v``: one per destination core other than its own (delivery inside the
        source core is part of the synaptic op; from the off-chip Input every destination
        core counts)."""
        return self._edge(u, v)[1].copy()

    def route(self, u: str, v: str) -> tuple[np.ndarray, np.ndarray]:
        """``(packets_per_spike(u, v), hops_per_spike(u, v))``: per source channel, the network
        messages and router hops of one unit sent from node ``u`` to node ``v``."""
        h, p = self._edge(u, v)
        return p.copy(), h.copy()

    def cross_edges(self) -> list[tuple[str, str]]:
        """Edges whose ends lie in different layers (or start at the Input): NoC traffic."""
        return [(u, v) for u, v in self.graph.edges()
                if u == self.input or self.layer_of[u] != self.layer_of[v]]

    def total_hops(self) -> int:
        """Sum over cross-layer edges and source channels of hops_per_spike (one spike per
        channel): a static measure of placement quality."""
        return int(sum(self._edge(u, v)[0].sum() for u, v in self.cross_edges()))

    # reports ------------------------------------------------------------------------------
    def _util(self, L: Layer) -> tuple[float, float, int, int]:
        caps = [self.chip.capacity(p.core) for p in L.parts]
        used = {k: sum(n.get(k, 0) for n in L.needs) for k in self._resources}
        if self.chip.core.memory_model == "flat":
            neu, ncap = used["neurons"], sum(c.neurons for c in caps)
            mem = used["weight_bytes"] + used["state_bytes"]
            mcap = sum(c.weight_bytes + c.state_bytes for c in caps)
        else:
            neu, ncap = used["neuron_entries"], sum(c.neuron_entries for c in caps)
            mem, mcap = used["kernel_entries"], sum(c.kernel_entries for c in caps)
        return (neu / ncap if ncap else 0.0), (mem / mcap if mcap else 0.0), neu, mem

    def summary(self) -> list[dict]:
        """One row per layer: cores, neurons, memory, utilisation, fan-in and the hops of the
        spikes arriving at it (mean / max over source channels of its incoming NoC edges)."""
        incoming: dict[str, list[np.ndarray]] = {}
        for u, v in self.cross_edges():
            incoming.setdefault(self.layer_of[v], []).append(self._edge(u, v)[0])
        rows = []
        for L in self.layers.values():
            nu, mu, neu, mem = self._util(L)
            h = np.concatenate(incoming.get(L.name, [np.zeros(0, np.int64)]))
            types = "+".join(dict.fromkeys(type(self.graph.op(n)).__name__ for n in L.nodes))
            rows.append({"layer": L.name, "types": types, "nodes": len(L.nodes),
                         "channels": L.channels, "cores": len(L.parts) if L.active else 0,
                         "neurons": neu, "memory": mem, "neuron_util": round(nu, 4),
                         "memory_util": round(mu, 4), "fan_in": L.fan_in,
                         "hops_mean": round(float(h.mean()), 4) if h.size else 0.0,
                         "hops_max": int(h.max()) if h.size else 0})
        return rows

    def totals(self) -> dict:
        """Whole-mapping figures: cores used, utilisation over the used cores, hops."""
        used = [c for c in self.cores.values() if any(c.usage.values())]
        res = self._resources
        neu_k, mem_k = (("neurons", ("weight_bytes", "state_bytes")) if res == FLAT_RESOURCES
                        else ("neuron_entries", ("kernel_entries",)))
        ncap = sum(getattr(c.capacity, neu_k) for c in used)
        mcap = sum(getattr(c.capacity, k) for c in used for k in mem_k)
        nuse = sum(c.usage.get(neu_k, 0) for c in used)
        muse = sum(c.usage.get(k, 0) for c in used for k in mem_k)
        hs = [self._edge(u, v)[0] for u, v in self.cross_edges()]
        h = np.concatenate(hs) if hs else np.zeros(0, np.int64)
        return {"chip": self.chip.name, "placement": self.placement, "n_cores": self.n_cores,
                "cores_used": len(used), "layers": len(self.layers),
                "neuron_util": round(nuse / ncap, 4) if ncap else 0.0,
                "memory_util": round(muse / mcap, 4) if mcap else 0.0,
                "hops_mean": round(float(h.mean()), 4) if h.size else 0.0,
                "hops_max": int(h.max()) if h.size else 0, "total_hops": int(h.sum()),
                "violations": len(self.violations), "fits": self.fits}

    def format_table(self) -> str:
        """Plain-text table of ``summary()`` with totals and violations, for the CLI."""
        mem = "mem" if self.chip.core.memory_model == "flat" else "kernel"
        head = ["layer", "types", "ch", "cores", "neurons", "neu%", mem, "mem%", "fan-in",
                "hops", "max"]
        rows = [[r["layer"], r["types"], r["channels"], r["cores"], r["neurons"],
                 f"{100 * r['neuron_util']:.1f}", r["memory"], f"{100 * r['memory_util']:.1f}",
                 r["fan_in"], f"{r['hops_mean']:.2f}", r["hops_max"]] for r in self.summary()]
        cells = [head] + [[str(c) for c in r] for r in rows]
        w = [max(len(r[i]) for r in cells) for i in range(len(head))]
        line = lambda r: "  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i])  # noqa: E731
                                   for i, c in enumerate(r))
        t = self.totals()
        out = [f"mapping on {self.chip.name} ({t['placement']} placement): "
               f"{t['cores_used']}/{t['n_cores']} cores, neurons {100 * t['neuron_util']:.1f}%,"
               f" memory {100 * t['memory_util']:.1f}%, hops mean {t['hops_mean']:.2f} "
               f"max {t['hops_max']}", line(head), line(["-" * x for x in w])]
        out += [line(r) for r in cells[1:]]
        if self.violations:
            out.append(f"{len(self.violations)} violation(s):")
            out += [f"  - {v.message}" for v in self.violations]
        else:
            out.append("fits: yes")
        return "\n".join(out)

    def to_dict(self) -> dict:
        """JSON-ready description (plain ints, floats, strings)."""
        return {"chip": self.chip.name, "placement": self.placement,
                "totals": self.totals(), "layers": self.summary(),
                "layer_nodes": {L.name: list(L.nodes) for L in self.layers.values()},
                "parts": {n: [[p.core, p.c0, p.c1] for p in ps] for n, ps in self.parts.items()},
                "cores": [c.to_dict() for c in self.cores.values()],
                "violations": [v.to_dict() for v in self.violations]}

    def __repr__(self) -> str:
        t = self.totals()
        return (f"Mapping({self.chip.name}: {t['layers']} layers on {t['cores_used']}/"
                f"{t['n_cores']} cores, {t['violations']} violations)")


# ----------------------------------------------------------------------------- building layers
def _build_layers(graph: G.Graph) -> tuple[dict[str, Layer], dict[str, str], dict[str, str]]:
    """Group nodes into layers. Returns (layers by name, layer of each node, align producer of
    each layer that does not start with a Conv/Linear)."""
    layers: dict[str, Layer] = {}
    layer_of: dict[str, str] = {}
    anchor: dict[str, str] = {}
    for n in graph.order():
        op = graph.op(n)
        if isinstance(op, G.Input):
            continue
        ins = graph.inputs(n)
        join = None
        if isinstance(op, G.Neurons):
            src = ins[0]
            if isinstance(graph.op(src), REDUCTIONS) and src in layer_of:
                join = layer_of[src]
        elif not isinstance(op, (G.Conv, G.Linear)):
            src = ins[ALIGN_PORT.get(type(op), 0)]
            if src in layer_of and graph.op(src).channels == op.channels:
                join = layer_of[src]
        if join is None:
            layers[n] = Layer(n, [n], op.channels, 0)
            layer_of[n] = n
            if ins:
                anchor[n] = ins[ALIGN_PORT.get(type(op), 0)]
        else:
            layers[join].nodes.append(n)
            layer_of[n] = join
    return layers, layer_of, anchor


class _Needs:
    """Resource needs of layer parts on a given chip (pure functions of the channel range)."""

    def __init__(self, graph: G.Graph, chip: ChipSpec, layer_of: dict[str, str]):
        self.graph, self.chip, self.layer_of = graph, chip, layer_of
        self.flat = chip.core.memory_model == "flat"
        self.wbits, self.sbits = chip.core.weight_bits, chip.core.state_bits

    def _cin(self, op) -> int:
        """Input channels per output channel as stored (compact or dense grouped kernels)."""
        cin = op.in_shape[0]
        return cin // op.groups if self.chip.features.grouped_conv else cin

    def accumulates(self, n: str) -> bool:
        """A reduction keeps graded-output accumulators unless Neurons of its own layer
        consume all its output."""
        cons = self.graph.consumers(n)
        return not cons or not all(isinstance(self.graph.op(v), G.Neurons)
                                   and self.layer_of[v] == self.layer_of[n] for v in cons)

    def fan_in(self, L: Layer) -> int:
        f = 0
        for n in L.nodes:
            op = self.graph.op(n)
            if isinstance(op, G.Conv):
                f = max(f, self._cin(op) * op.kernel ** 2)
            elif isinstance(op, G.Linear):
                f = max(f, int(np.prod(op.in_shape)))
            elif isinstance(op, G.SpikeMatmul):
                H, W = _hw(op.shape)
                f = max(f, op.channels // op.heads if op.order == "q(kv)" else H * W)
            elif isinstance(op, (G.TokenSum, G.TokenMean)):
                src = self.graph.op(self.graph.inputs(n)[0])
                f = max(f, int(np.prod(src.shape[1:])) if len(src.shape) > 1 else 1)
        if f == 0 and isinstance(self.graph.op(L.name), G.Neurons):
            f = 1      # soma-only layer: identity synapses
        return f

    def node(self, L: Layer, n: str, c0: int, c1: int) -> dict[str, int]:
        """Resources of node ``n`` for output channels [c0, c1)."""
        op, k = self.graph.op(n), c1 - c0
        H, W = _hw(op.shape)
        neurons = 0         # neuron / accumulator slots (state words)
        extra_state = 0     # product storage (state words)
        weights = 0         # weights as stored
        kernel = 0          # dynapcnn kernel entries
        bias = 0
        if isinstance(op, G.Neurons):
            neurons = k * H * W
            if n == L.name:   # soma-only layer: identity synapses
                weights = k
                kernel = k * 2 ** _clog2(k)
        elif isinstance(op, REDUCTIONS):
            if self.accumulates(n):
                neurons = k * H * W
            if isinstance(op, G.Conv):
                cin = self._cin(op)
                weights = k * cin * op.kernel ** 2
                kernel = cin * 2 ** (_clog2(op.kernel ** 2) + _clog2(k))
                bias = k if np.any(op.bias[c0:c1] != 0) else 0
            elif isinstance(op, G.Linear):
                cin = op.in_shape[0]
                kk = int(np.prod(op.in_shape[1:])) if len(op.in_shape) > 1 else 1
                weights = k * int(np.prod(op.in_shape))
                kernel = cin * 2 ** (_clog2(kk) + _clog2(k))
                bias = k if np.any(op.bias[c0:c1] != 0) else 0
            elif isinstance(op, G.SpikeMatmul):
                d = op.channels // op.heads
                if op.order == "q(kv)":
                    extra_state = d * k
                else:
                    heads = (c1 - 1) // d - c0 // d + 1      # heads touched by [c0, c1)
                    extra_state = heads * (H * W) ** 2
        if self.flat:
            return {"neurons": neurons,
                    "weight_bytes": -(-weights * self.wbits // 8),
                    "state_bytes": -(-(neurons + extra_state) * self.sbits // 8)}
        populations = neurons // (k * H * W)     # neuron / accumulator maps of this node
        neuron_entries = populations * k * 2 ** (_clog2(H) + _clog2(W)) + extra_state
        return {"kernel_entries": kernel, "neuron_entries": neuron_entries,
                "bias_entries": bias}

    def part(self, L: Layer, c0: int, c1: int) -> tuple[dict[str, int], dict[str, dict]]:
        per_node = {n: self.node(L, n, c0, c1) for n in L.nodes}
        keys = FLAT_RESOURCES if self.flat else DYNAPCNN_RESOURCES
        total = {k: sum(d[k] for d in per_node.values()) for k in keys}
        return total, per_node


def _exceeds(need: dict, cap: CoreCapacity) -> list[str]:
    """Resources of ``need`` exceeding ``cap`` (empty when it fits)."""
    return [k for k, v in need.items() if v > (getattr(cap, k) or 0)]


def _max_capacity(chip: ChipSpec) -> CoreCapacity:
    caps = chip.capacities()
    return CoreCapacity(**{f.name: (max(getattr(c, f.name) for c in caps)
                                    if getattr(caps[0], f.name) is not None else None)
                           for f in dataclasses.fields(CoreCapacity)})


def _split(L: Layer, needs: _Needs, cap: CoreCapacity, allow: bool) -> list[tuple[int, int]]:
    """Contiguous channel ranges covering 0..C, each fitting ``cap`` when possible (balanced
    sizes if the balanced split fits, else greedy maximal ranges)."""
    C = L.channels
    if not allow:
        return [(0, C)]
    ranges, c0 = [], 0
    while c0 < C:
        if _exceeds(needs.part(L, c0, c0 + 1)[0], cap):
            ranges.append((c0, c0 + 1))       # one channel does not fit: reported later
            c0 += 1
            continue
        lo, hi = c0 + 1, C                    # largest c1 that fits (needs grow with c1)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _exceeds(needs.part(L, c0, mid)[0], cap):
                hi = mid - 1
            else:
                lo = mid
        ranges.append((c0, lo))
        c0 = lo
    k = len(ranges)
    even = [(C * i // k, C * (i + 1) // k) for i in range(k)]
    if even != ranges and all(not _exceeds(needs.part(L, a, b)[0], cap) for a, b in even):
        return even
    return ranges


# ----------------------------------------------------------------------------- checks
def _check_layer(graph: G.Graph, chip: ChipSpec, L: Layer, needs: _Needs, cap: CoreCapacity,
                 out: list[Violation]):
    """Per-layer limits, features and precision."""
    lim, feat, core = chip.limits, chip.features, chip.core

    def add(node, kind, needed, avail, msg):
        out.append(Violation(L.name, node, kind, needed, avail,
                             f"layer {L.name!r} (node {node!r}, "
                             f"{type(graph.op(node)).__name__}): {msg}"))

    if core.fan_in_max is not None and L.fan_in > core.fan_in_max:
        worst = max(L.nodes, key=lambda n: needs.fan_in(Layer(n, [n], 1, 0)))
        add(worst, "fan_in", L.fan_in, core.fan_in_max,
            f"fan-in {L.fan_in} inputs per neuron, a {chip.name} core accepts "
            f"{core.fan_in_max}")
    for n in L.nodes:
        op = graph.op(n)
        if isinstance(op, (G.Conv, G.Linear)) and op.weight_bits > core.weight_bits:
            add(n, "precision", op.weight_bits, core.weight_bits,
                f"{op.weight_bits}-bit weights, {chip.name} stores {core.weight_bits}-bit")
        if isinstance(op, G.Neurons) and op.state_bits > core.state_bits:
            add(n, "precision", op.state_bits, core.state_bits,
                f"{op.state_bits}-bit membrane, {chip.name} holds {core.state_bits}-bit")
        if isinstance(op, SPIKE_PRODUCTS) and not feat.spike_products:
            add(n, "spike_product", type(op).__name__, "convolution, neurons, sum pooling",
                f"spike x spike products are not supported on {chip.name}")
        if isinstance(op, G.Pool) and not feat.max_pool:
            add(n, "max_pool", f"max pool k={op.kernel} s={op.stride} p={op.padding}",
                f"sum pooling {list(lim.pool_sizes or [])}",
                f"max pooling is not supported on {chip.name} (sum pooling only)")
        if isinstance(op, (G.Conv, G.Linear)):
            if isinstance(op, G.Conv):
                k, s, p = op.kernel, op.stride, op.padding
                cin, (h, w) = op.in_shape[0], op.in_shape[1:]
            else:
                cin = op.in_shape[0]
                h, w = _hw(op.in_shape)
                k, s, p = h, 1, 0
            if lim.kernel_max is not None and k > lim.kernel_max:
                add(n, "kernel_size", k, lim.kernel_max,
                    f"kernel {k}x{k}, {chip.name} allows up to {lim.kernel_max}x{lim.kernel_max}")
            if lim.strides is not None and s not in lim.strides:
                add(n, "stride", s, list(lim.strides),
                    f"stride {s}, {chip.name} allows {list(lim.strides)}")
            if lim.padding_max is not None and p > lim.padding_max:
                add(n, "padding", p, lim.padding_max,
                    f"padding {p}, {chip.name} allows up to {lim.padding_max}")
            if lim.channels_max is not None and max(cin, op.channels) > lim.channels_max:
                add(n, "channels", max(cin, op.channels), lim.channels_max,
                    f"{cin} input / {op.channels} output channels, {chip.name} allows "
                    f"{lim.channels_max}")
            if lim.input_hw_max is not None and max(h, w) > lim.input_hw_max:
                add(n, "input_size", f"{h}x{w}", lim.input_hw_max,
                    f"input {h}x{w}, {chip.name} allows up to "
                    f"{lim.input_hw_max}x{lim.input_hw_max}")
    # memory of each part against the largest core: one violation per resource
    over: dict[str, list] = {}
    for p, need_node in zip(L.parts, L.by_node):
        need = {k: sum(d[k] for d in need_node.values()) for k in next(iter(need_node.values()))}
        for res in _exceeds(need, cap):
            over.setdefault(res, []).append((need[res], p, need_node))
    split = chip.features.split_layers
    for res, items in over.items():
        amount, p, need_node = max(items, key=lambda t: t[0])
        worst = max(need_node, key=lambda n: need_node[n][res])
        parts = [f"{n} {d[res]}" for n, d in need_node.items() if d[res]]
        detail = f" ({', '.join(parts)})" if len(parts) > 1 else ""
        if split and p.channels == 1:
            scope = (f"for one output channel{detail}; {len(items)} of its {L.channels} "
                     f"channels exceed")
            why = " (a channel cannot be divided: layers split by output channel)"
        else:
            scope = f"for output channels [{p.c0}, {p.c1}){detail}"
            why = "" if split else f" ({chip.name} places each layer on one core)"
        out.append(Violation(
            L.name, worst, res, amount, getattr(cap, res),
            f"layer {L.name!r} (node {worst!r}, {type(graph.op(worst)).__name__}): needs "
            f"{amount} {_LABEL[res]} {scope}; the largest {chip.name} core has "
            f"{getattr(cap, res)}{why}"))


def _check_graph(graph: G.Graph, chip: ChipSpec, layers: dict[str, Layer],
                 layer_of: dict[str, str], out: list[Violation]):
    """Edges: graded values between cores, destination counts."""
    inp = graph.input_node()
    for u, v in graph.edges():
        cross = u == inp or layer_of[u] != layer_of[v]
        if cross and graph.edge(u, v)["kind"] == "graded" and not chip.features.graded_edges:
            what = "graded input (pixel values)" if u == inp else "graded values"
            L = layer_of[v]
            out.append(Violation(L, v, "graded_edge", f"{u} -> {v}", "spike events only",
                                 f"layer {L!r} (node {v!r}): edge {u!r} -> {v!r} carries {what}"
                                 f" between cores; {chip.name} routes spike events only"))
    dmax = chip.limits.destinations_max
    if dmax is None:
        return
    for L in layers.values():
        dests = list(dict.fromkeys(layer_of[v] for n in L.nodes for v in graph.consumers(n)
                                   if layer_of[v] != L.name))
        if len(dests) > dmax:
            out.append(Violation(L.name, L.name, "destinations", len(dests), dmax,
                                 f"layer {L.name!r}: sends to {len(dests)} layers "
                                 f"({', '.join(dests)}), a {chip.name} core has at most "
                                 f"{dmax} destinations"))


# ----------------------------------------------------------------------------- placement
def _serpentine(chip: ChipSpec) -> list[int]:
    if chip.mesh.topology != "mesh":
        return list(range(chip.n_cores))
    X, Y = chip.mesh.mesh_x, chip.mesh.mesh_y
    return [y * X + (x if y % 2 == 0 else X - 1 - x) for y in range(Y) for x in range(X)]


def _producers(graph: G.Graph, L: Layer, layer_of: dict[str, str]) -> list[str]:
    inp = graph.input_node()
    return list(dict.fromkeys(layer_of[u] for n in L.nodes for u in graph.inputs(n)
                              if u != inp and layer_of[u] != L.name))


def _place_homogeneous(graph, chip, layers, layer_of, active, strategy) -> None:
    """Assign cores to the parts of active layers (in place)."""
    order = _serpentine(chip)
    rank = {c: i for i, c in enumerate(order)}
    total = sum(len(layers[n].parts) for n in active)
    if strategy == "serpentine" or total > chip.n_cores:
        i = 0
        for n in active:
            L = layers[n]
            L.parts = [p._replace(core=order[(i + j) % chip.n_cores])
                       for j, p in enumerate(L.parts)]
            i += len(L.parts)
        return
    xy = np.array([((c % chip.mesh.mesh_x, c // chip.mesh.mesh_x)
                    if chip.mesh.topology == "mesh" else (c, 0)) for c in range(chip.n_cores)])
    free = np.ones(chip.n_cores, bool)
    ranks = np.array([rank[c] for c in range(chip.n_cores)])
    for n in active:
        L = layers[n]
        k = len(L.parts)
        prod = [c for m in _producers(graph, L, layer_of) if m in active
                for c in layers[m].cores]
        cand = np.flatnonzero(free)
        if prod and chip.mesh.topology == "mesh":
            d = np.abs(xy[cand][:, None, :] - xy[np.array(prod)][None, :, :]).sum(-1).sum(-1)
            pick = cand[np.lexsort((ranks[cand], d))[:k]]
        else:
            pick = cand[np.argsort(ranks[cand], kind="stable")[:k]]
        pick = sorted(pick.tolist(), key=lambda c: rank[c])
        free[pick] = False
        L.parts = [p._replace(core=c) for p, c in zip(L.parts, pick)]


def _place_heterogeneous(chip, layers, active, needs: _Needs, out: list[Violation]) -> None:
    """Minimum-waste assignment of parts to cores that fit them; the rest oversubscribe."""
    from scipy.optimize import linear_sum_assignment

    items = [(n, i) for n in active for i in range(len(layers[n].parts))]
    caps = chip.capacities()
    big = 1e12
    cost = np.full((len(items), chip.n_cores), big)
    for r, (n, i) in enumerate(items):
        need = layers[n].needs[i]
        for c, cap in enumerate(caps):
            if not _exceeds(need, cap):
                # waste (< 3) plus 4 per topological rank: earlier layers win the cores
                cost[r, c] = 4 * r + sum(1 - need[k] / getattr(cap, k) for k in need
                                         if getattr(cap, k))
    rows, cols = linear_sum_assignment(cost)
    assigned = {items[r]: int(c) for r, c in zip(rows, cols) if cost[r, c] < big}
    load = np.zeros(chip.n_cores, int)
    for c in assigned.values():
        load[c] += 1
    for n, i in items:
        L = layers[n]
        if (n, i) in assigned:
            core = assigned[(n, i)]
        else:
            need = L.needs[i]
            fitting = [c for c, cap in enumerate(caps) if not _exceeds(need, cap)]
            pool = fitting or list(range(chip.n_cores))
            core = min(pool, key=lambda c: (load[c], c))
            load[core] += 1
            if fitting:
                msg = (f"layer {n!r}: no free core left ({len(items)} layers, {chip.name} has "
                       f"{chip.n_cores} cores, one layer per core); placed on core {core} "
                       f"with another layer")
                out.append(Violation(n, n, "cores", len(items), chip.n_cores, msg))
            else:
                need_s = ", ".join(f"{v} {_LABEL[k]}" for k, v in need.items() if v)
                msg = (f"layer {n!r}: no {chip.name} core holds its {need_s} at once; placed "
                       f"on core {core}")
                out.append(Violation(n, n, "no_core", need_s, "see chip core memories", msg))
        L.parts[i] = L.parts[i]._replace(core=core)


# ----------------------------------------------------------------------------- entry point
def map_graph(graph: G.Graph, chip: ChipSpec | str | Path, *, strict: bool = True,
              placement: str = "auto") -> Mapping:
    """Place every node of ``graph`` on the cores of ``chip`` (a ChipSpec, a chip name or a
    TOML path). ``placement``: "auto" (fewer total hops of serpentine / greedy), "serpentine"
    or "greedy" (homogeneous chips; heterogeneous chips always use the memory-fit assignment).
    ``strict``: raise ``MappingError`` naming every violation; otherwise return the
    best-effort mapping with ``violations`` listed."""
    chip = load_chip(chip)
    if placement not in ("auto", "serpentine", "greedy"):
        raise ValueError(f"placement must be auto, serpentine or greedy, got {placement!r}")
    graph.validate()
    layers, layer_of, anchor = _build_layers(graph)
    needs = _Needs(graph, chip, layer_of)
    cap = _max_capacity(chip)
    violations: list[Violation] = []
    for L in layers.values():
        L.fan_in = needs.fan_in(L)
        ranges = _split(L, needs, cap, chip.features.split_layers)
        L.parts = [Part(-1, a, b) for a, b in ranges]
        L.needs, L.by_node = map(list, zip(*(needs.part(L, a, b) for a, b in ranges)))
        _check_layer(graph, chip, L, needs, cap, violations)
    _check_graph(graph, chip, layers, layer_of, violations)

    active = [n for n, L in layers.items() if L.active]
    total = sum(len(layers[n].parts) for n in active)
    if chip.homogeneous:
        if total > chip.n_cores:
            first, acc = None, 0
            for n in active:
                acc += len(layers[n].parts)
                if acc > chip.n_cores:
                    first = n
                    break
            big = sorted(active, key=lambda n: -len(layers[n].parts))[:3]
            violations.append(Violation(
                first, first, "cores", total, chip.n_cores,
                f"model needs {total} cores, {chip.name} has {chip.n_cores}; first layer "
                f"without a free core: {first!r}; largest layers: "
                + ", ".join(f"{n!r} {len(layers[n].parts)} cores" for n in big)))
        strategies = (["serpentine"] if total > chip.n_cores    # oversubscribed: wrap around
                      else ["serpentine", "greedy"] if placement == "auto" else [placement])
        best = None
        for s in strategies:
            trial = {n: dataclasses.replace(L, parts=list(L.parts)) for n, L in layers.items()}
            _place_homogeneous(graph, chip, trial, layer_of, active, s)
            _place_passive(graph, trial, layer_of, anchor, active)
            m = Mapping(graph, chip, trial, layer_of, violations, s)
            if best is None or m.total_hops() < best.total_hops():
                best = m
        mapping = best
    else:
        _place_heterogeneous(chip, layers, active, needs, violations)
        _place_passive(graph, layers, layer_of, anchor, active)
        mapping = Mapping(graph, chip, layers, layer_of, violations, "memory-fit")
    if strict and mapping.violations:
        vs = mapping.violations
        raise MappingError(f"graph does not fit chip {chip.name!r} ({len(vs)} problem(s)):"
                           + "".join(f"\n  - {v.message}" for v in vs), vs)
    return mapping


def _place_passive(graph, layers, layer_of, anchor, active) -> None:
    """Layers that need no memory sit on the first core of their producer's layer (after the
    Input: of their first consumer's layer)."""
    inp = graph.input_node()
    pending = [n for n in layers if n not in active]
    for _ in range(len(pending) + 1):
        left = []
        for n in pending:
            L = layers[n]
            src = anchor.get(n)
            if src is not None and src != inp:
                host = layers[layer_of[src]]
            else:
                cons = [layer_of[v] for m in L.nodes for v in graph.consumers(m)
                        if layer_of[v] != n]
                host = layers[cons[0]] if cons else None
            if host is None or not host.parts or host.parts[0].core < 0:
                left.append(n)
                continue
            L.parts = [Part(host.parts[0].core, 0, L.channels)]
        if not left:
            return
        pending = left
    for n in pending:    # nothing on-chip to sit next to (e.g. Input -> Readout)
        layers[n].parts = [Part(0, 0, layers[n].channels)]


__all__ = ["Mapping", "MappingError", "Part", "Layer", "CoreUse", "Violation", "map_graph"]
