"""Does it fit: ``Violation`` / ``MappingError``, core capacities (``_exceeds``,
``_max_capacity``), channel splits (``_split``) and the checks of layers and edges against the
chip's limits (``_check_layer``, ``_check_graph``).

Splits
    A layer too big for one core is split by output channels into contiguous, exact,
    non-overlapping ranges ``[c0, c1)`` covering ``0..C`` (balanced sizes when they fit). A
    depthwise conv's input channel c travels with its output channel c. A channel is never
    divided: a single channel that does not fit is a violation. Chips without
    ``features.split_layers`` (Speck) give each layer exactly one core.

Violations
    Every problem (memory, neurons, fan-in, cores, per-layer limits, unsupported operations,
    graded edges, precision) becomes a ``Violation`` naming the layer and node, what is needed
    and what the chip has. ``strict=True`` raises ``MappingError`` listing them all;
    ``strict=False`` returns the best-effort mapping (oversubscribing cores) with
    ``Mapping.violations`` filled in.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from chips.mapping.layers import Layer, _hw, _Needs, output_pools
from chips.spec import ChipSpec, CoreCapacity
from neurosim.ir import graph as G

SPIKE_PRODUCTS = (G.SpikeMatmul, G.TokenSum, G.Mask)
_LABEL = {"neurons": "neurons", "weight_bytes": "bytes of weight memory",
          "state_bytes": "bytes of state memory", "kernel_entries": "kernel memory entries",
          "neuron_entries": "neuron memory entries", "bias_entries": "bias memory entries"}


class MappingError(ValueError):
    """A graph does not fit a chip. ``violations`` lists every problem; the message names
    each layer, what it needs and what the chip has."""

    def __init__(self, message: str, violations=()):
        super().__init__(message)
        self.violations = list(violations)


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


# ----------------------------------------------------------------------------- capacities
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
    def fits(a: int, b: int) -> bool:
        return not _exceeds(needs.part(L, a, b)[0], cap)

    ranges, c0, size = [], 0, 0
    while c0 < C:
        guess = min(C, c0 + size)             # needs grow with c1: the previous range's size
        if size and fits(c0, guess) and (guess == C or not fits(c0, guess + 1)):
            ranges.append((c0, guess))        # is the largest again (2 checks, not log C)
            c0 = guess
            continue
        if not fits(c0, c0 + 1):
            ranges.append((c0, c0 + 1))       # one channel does not fit: reported later
            c0 += 1
            continue
        lo, hi = c0 + 1, C                    # largest c1 that fits (needs grow with c1)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(c0, mid):
                lo = mid
            else:
                hi = mid - 1
        ranges.append((c0, lo))
        size, c0 = lo - c0, lo
    k = len(ranges)
    even = [(C * i // k, C * (i + 1) // k) for i in range(k)]
    if even != ranges and all(not _exceeds(needs.part(L, a, b)[0], cap) for a, b in even):
        return even
    return ranges


# ----------------------------------------------------------------------------- layer checks
def _check_layer(graph: G.Graph, chip: ChipSpec, L: Layer, needs: _Needs, cap: CoreCapacity,
                 out: list[Violation]):
    """Per-layer limits, features, precision and memory (appended to ``out`` in that order)."""
    core = chip.core
    if core.fan_in_max is not None and L.fan_in > core.fan_in_max:
        worst = max(L.nodes, key=lambda n: needs.fan_in(Layer(n, [n], 1, 0)))
        out.append(_node_violation(
            graph, L, worst, "fan_in", L.fan_in, core.fan_in_max,
            f"fan-in {L.fan_in} inputs per neuron, a {chip.name} core accepts "
            f"{core.fan_in_max}"))
    for n in L.nodes:
        out.extend(_check_features(graph, chip, L, n))
        out.extend(_check_geometry(graph, chip, L, n))
    out.extend(_check_memory(graph, chip, L, cap))


def _node_violation(graph: G.Graph, L: Layer, node: str, kind: str, needed, available,
                    msg: str) -> Violation:
    """A violation of ``node`` in layer ``L``; the message is prefixed with layer, node, type."""
    return Violation(L.name, node, kind, needed, available,
                     f"layer {L.name!r} (node {node!r}, {type(graph.op(node)).__name__}): {msg}")


def _check_features(graph: G.Graph, chip: ChipSpec, L: Layer, n: str) -> list[Violation]:
    """Precision of weights / membranes, and operations the chip lacks, for node ``n``."""
    lim, feat, core = chip.limits, chip.features, chip.core
    op, out = graph.op(n), []

    def add(kind, needed, avail, msg):
        out.append(_node_violation(graph, L, n, kind, needed, avail, msg))

    if isinstance(op, (G.Conv, G.Linear)) and op.weight_bits > core.weight_bits:
        add("precision", op.weight_bits, core.weight_bits,
            f"{op.weight_bits}-bit weights, {chip.name} stores {core.weight_bits}-bit")
    if isinstance(op, G.Neurons) and op.state_bits > core.state_bits:
        add("precision", op.state_bits, core.state_bits,
            f"{op.state_bits}-bit membrane, {chip.name} holds {core.state_bits}-bit")
    if isinstance(op, SPIKE_PRODUCTS) and not feat.spike_products:
        add("spike_product", type(op).__name__, "convolution, neurons, sum pooling",
            f"spike x spike products are not supported on {chip.name}")
    if isinstance(op, G.Pool) and not feat.max_pool:
        add("max_pool", f"max pool k={op.kernel} s={op.stride} p={op.padding}",
            f"sum pooling {list(lim.pool_sizes or [])}",
            f"max pooling is not supported on {chip.name} (sum pooling only)")
    return out


def _check_geometry(graph: G.Graph, chip: ChipSpec, L: Layer, n: str) -> list[Violation]:
    """Kernel, stride, padding, channel and input-size limits of a Conv / Linear node ``n``
    (a Linear counts as a kernel covering its whole input)."""
    op, lim, out = graph.op(n), chip.limits, []
    if not isinstance(op, (G.Conv, G.Linear)):
        return out

    def add(kind, needed, avail, msg):
        out.append(_node_violation(graph, L, n, kind, needed, avail, msg))

    if isinstance(op, G.Conv):
        k, s, p = op.kernel, op.stride, op.padding
        cin, (h, w) = op.in_shape[0], op.in_shape[1:]
    else:
        cin = op.in_shape[0]
        h, w = _hw(op.in_shape)
        k, s, p = max(h, w), 1, 0
        if h != w and chip.core.memory_model == "dynapcnn":
            add("kernel_size", f"{h}x{w}", "square kernels",
                f"a linear layer over a {h}x{w} map is a {h}x{w} kernel on a DYNAP-CNN core; "
                f"{chip.name} kernels are square (sinabs DynapcnnLayer)")
    if lim.kernel_max is not None and k > lim.kernel_max:
        add("kernel_size", k, lim.kernel_max,
            f"kernel {k}x{k}, {chip.name} allows up to {lim.kernel_max}x{lim.kernel_max}")
    if lim.strides is not None and s not in lim.strides:
        add("stride", s, list(lim.strides), f"stride {s}, {chip.name} allows {list(lim.strides)}")
    if lim.padding_max is not None and p > lim.padding_max:
        add("padding", p, lim.padding_max,
            f"padding {p}, {chip.name} allows up to {lim.padding_max}")
    if lim.channels_max is not None and max(cin, op.channels) > lim.channels_max:
        add("channels", max(cin, op.channels), lim.channels_max,
            f"{cin} input / {op.channels} output channels, {chip.name} allows "
            f"{lim.channels_max}")
    if lim.input_hw_max is not None and max(h, w) > lim.input_hw_max:
        add("input_size", f"{h}x{w}", lim.input_hw_max,
            f"input {h}x{w}, {chip.name} allows up to {lim.input_hw_max}x{lim.input_hw_max}")
    return out


def _check_memory(graph: G.Graph, chip: ChipSpec, L: Layer,
                  cap: CoreCapacity) -> list[Violation]:
    """Memory of each part of ``L`` against the largest core: one violation per resource
    (the worst part, named by its largest node)."""
    over: dict[str, list] = {}
    for p, need_node in zip(L.parts, L.by_node):
        need = {k: sum(d[k] for d in need_node.values()) for k in next(iter(need_node.values()))}
        for res in _exceeds(need, cap):
            over.setdefault(res, []).append((need[res], p, need_node))
    split = chip.features.split_layers
    out = []
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
    return out


# ----------------------------------------------------------------------------- graph checks
def _check_graph(graph: G.Graph, chip: ChipSpec, layers: dict[str, Layer],
                 layer_of: dict[str, str], out: list[Violation]):
    """Edges: graded values between cores (a core's output pool sends spike events),
    destination counts."""
    inp = graph.input_node()
    pooled = {n for n in output_pools(graph, chip) if layer_of[n] == layer_of[graph.inputs(n)[0]]}
    for u, v in graph.edges():
        cross = u == inp or layer_of[u] != layer_of[v]
        graded = graph.edge(u, v)["kind"] == "graded" and u not in pooled
        if cross and graded and not chip.features.graded_edges:
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


def _check_cores(chip: ChipSpec, layers: dict[str, Layer], active: list[str],
                 out: list[Violation]):
    """Homogeneous chips: the parts of the active layers need more cores than the chip has
    (names the first layer in topological order left without a free core)."""
    total = sum(len(layers[n].parts) for n in active)
    if total <= chip.n_cores:
        return
    first, acc = None, 0
    for n in active:
        acc += len(layers[n].parts)
        if acc > chip.n_cores:
            first = n
            break
    big = sorted(active, key=lambda n: -len(layers[n].parts))[:3]
    out.append(Violation(
        first, first, "cores", total, chip.n_cores,
        f"model needs {total} cores, {chip.name} has {chip.n_cores}; first layer "
        f"without a free core: {first!r}; largest layers: "
        + ", ".join(f"{n!r} {len(layers[n].parts)} cores" for n in big)))
