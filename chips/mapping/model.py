"""The result of mapping: ``Mapping`` (parts of every node, per-core usage, the spike routes
between cores, reports), with ``PartTable`` and ``CoreUse``.

Hops
    Core geometry and XY routes come from ``chips.topology``. A spike of source channel c (on
    core a) is delivered once to every distinct core b holding an output channel of the
    consumer that depends on c (a conv: c's group; a linear: all; elementwise: c; SpikeMatmul
    q/k: c's head, v: c); each copy travels hops(a, b) (unicast per destination core, no shared
    multicast tree; a copy to a == b costs 0 hops). ``hops_per_spike(u, v)`` sums those hops
    per source channel, ``packets_per_spike(u, v)`` counts the copies sent over the network
    (b != a; all of them from the off-chip Input); ``route(u, v)`` returns both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chips import topology
from chips.mapping.capacity import Violation
from chips.mapping.layers import DYNAPCNN_RESOURCES, FLAT_RESOURCES, Layer, Part
from chips.spec import ChipSpec, CoreCapacity
from neurosim.ir import graph as G


class PartTable(dict):
    """``{node: [Part, ...]}`` in channel order; also callable: ``parts(node)`` returns the
    node's parts ([] for the off-chip Input)."""

    def __call__(self, node: str) -> list[Part]:
        return list(self.get(node, []))


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
                if not cu.layers or cu.layers[-1] != L.name:   # layers come one at a time,
                    cu.layers.append(L.name)                    # nodes in exactly one layer
                    cu.nodes.extend(n for n in L.nodes if n not in cu.nodes)
                usage = cu.usage
                for k, v in need.items():
                    usage[k] = usage.get(k, 0) + v
                for n, d in per_node.items():
                    acc = cu.by_node.setdefault(n, {})
                    for k, v in d.items():
                        acc[k] = acc.get(k, 0) + v
        self.cores = dict(sorted(self.cores.items()))
        self._chan_cache: dict[str, np.ndarray] = {}
        self._edge_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._xy: np.ndarray | None = None           # topology.core_xy, when first needed

    # geometry ---------------------------------------------------------------------------
    @property
    def n_cores(self) -> int:
        return self.chip.n_cores

    @property
    def fits(self) -> bool:
        return not self.violations

    def coords(self, core: int) -> tuple[int, int]:
        """(x, y) of a core on the mesh (all-to-all chips: (core, 0)); ``topology.coords``."""
        return topology.coords(self.chip, core)

    def hops(self, a: int, b: int) -> int:
        """Router hops from core a to core b (``topology.hops``): XY routing on a mesh
        (|dx| + |dy|); 1 between distinct cores of an all-to-all chip; 0 when a == b or a is
        off-chip (-1)."""
        return topology.hops(self.chip, a, b)

    def path(self, a: int, b: int) -> list[int]:
        """Cores a packet visits after leaving core ``a`` on its way to core ``b`` (XY: x
        first, then y; ``topology.path``); ``len(path(a, b)) == hops(a, b)``."""
        return topology.path(self.chip, a, b)

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

    def _edge(self, u: str, v: str) -> tuple[np.ndarray, ...]:
        """Per source channel of ``u``: (hops, packets, north-south hops, deliveries), the
        last a [channels of u, parts of v] 0/1 matrix: a packet of that channel arrives at
        that part's core (only the first part of ``v`` on a core receives it)."""
        key = (u, v)
        if key not in self._edge_cache:
            lo, hi = self._dependents(u, v)
            self._edge_cache[key] = self._edge_arrays(self.channel_cores(u), lo, hi,
                                                      self.parts.get(v, []))
        return self._edge_cache[key]

    def _edge_arrays(self, src: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     vparts: list[Part]) -> tuple[np.ndarray, ...]:
        """``_edge``'s arrays, vectorised (a 30k-part mapping routes in seconds): channels
        sharing (source core, dependent range) share one route; each route's destination
        cores are the distinct cores of the parts overlapping its range."""
        C, P = len(src), len(vparts)
        out = [np.zeros(C, np.int64) for _ in range(3)] + [np.zeros((C, P), np.int64)]
        if P == 0 or C == 0:
            return tuple(out)
        pc = np.array([p.core for p in vparts], np.int64)
        p0 = np.array([p.c0 for p in vparts], np.int64)
        p1 = np.array([p.c1 for p in vparts], np.int64)
        span = int(max(hi.max(), 0)) + 2                      # one int64 key per route
        code, inv = np.unique((src + 1) * span * span + lo * span + hi, return_inverse=True)
        keys = np.stack([code // (span * span) - 1, code // span % span, code % span], axis=1)
        inv = inv.reshape(-1)
        order = np.argsort(p0, kind="stable")                 # parts in channel order
        j0 = np.searchsorted(p1[order], keys[:, 1], side="right")
        j1 = np.searchsorted(p0[order], keys[:, 2], side="left")
        n = np.maximum(j1 - j0, 0)
        kid = np.repeat(np.arange(len(keys)), n)              # (route, part) pairs
        part = order[np.repeat(j0, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
        core = pc[part]
        cores, first = np.unique(pc, return_index=True)      # first part of v on each core
        if len(cores) < P:                                    # parts share cores: distinct
            pair = np.unique(kid * (pc.max() + 2) + core + 1)  # (route, core) pairs
            kid, core = pair // (pc.max() + 2), pair % (pc.max() + 2) - 1
        a = keys[kid, 0]
        hop, hop_ns = self._hop_arrays(a, core)
        sent = core != a
        per_key = [np.bincount(kid, w, len(keys)).astype(np.int64)
                   for w in (hop, sent, hop_ns)]
        deliv = np.zeros((len(keys), P), np.int64)
        deliv[kid[sent], first[np.searchsorted(cores, core[sent])]] = 1
        return per_key[0][inv], per_key[1][inv], per_key[2][inv], deliv[inv]

    def _hop_arrays(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``topology.hops`` and ``topology.hops_ns`` of core pairs (a[i], b[i]), vectorised:
        the coordinates come from ``topology.core_xy`` (``coords`` of every core); on a mesh hops =
        |dx| + |dy| and hops_ns = |dy|, elsewhere 1 and 0 between distinct cores; 0 when
        a == b or either is off-chip (-1)."""
        if self._xy is None:
            self._xy = np.asarray(topology.core_xy(self.chip), np.int64).reshape(-1, 2)
        live = (a >= 0) & (b >= 0) & (a != b)
        if topology.is_mesh(self.chip):
            d = np.abs(self._xy[np.where(live, a, 0)] - self._xy[np.where(live, b, 0)])
            return np.where(live, d.sum(axis=1), 0), np.where(live, d[:, 1], 0)
        return live.astype(np.int64), np.zeros(len(a), np.int64)

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
        h, p = self._edge(u, v)[:2]
        return p.copy(), h.copy()

    def hops_ns_per_spike(self, u: str, v: str) -> np.ndarray:
        """Per output channel of ``u``: the north-south (mesh y) part of ``hops_per_spike``."""
        return self._edge(u, v)[2].copy()

    def deliveries(self, u: str, v: str) -> np.ndarray:
        """[channels of ``u``, parts of ``v``] 0/1: one packet of that channel arrives at that
        part's core (once per destination core, at the first part of ``v`` there; none to the
        source's own core; every destination core of a channel of the off-chip Input)."""
        return self._edge(u, v)[3].copy()

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
