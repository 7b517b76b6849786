"""Layers of a graph and what their parts need: ``Part``, ``Layer``, ``_build_layers`` (grouping
graph nodes into layers) and ``_Needs`` (resources of a channel range of a layer on a chip).

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
    * output pooling (chips with ``limits.pool_sizes``, Speck): a sum pool of a layer's own
      spikes (``output_pools``: a depthwise all-ones Conv, kernel = stride in ``pool_sizes``,
      no padding, unit scale, no bias; NIR ``SumPool2d`` imports as one) is what a DYNAP-CNN
      core applies to its output before sending (sinabs ``DynapcnnLayer``: conv -> IAF ->
      sum pool). It joins its producer's layer, needs no memory, and its pooled counts leave
      the core as spike events (a spike at (c, y, x) is sent to (c, y // k, x // k)).

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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from chips.spec import ChipSpec
from neurosim.ir import graph as G

REDUCTIONS = (G.Conv, G.Linear, G.SpikeMatmul, G.TokenSum, G.TokenMean)
ALIGN_PORT = {G.SpikeMatmul: 2, G.TokenSum: -1}
FLAT_RESOURCES = ("neurons", "weight_bytes", "state_bytes")
DYNAPCNN_RESOURCES = ("kernel_entries", "neuron_entries", "bias_entries")


class Part(NamedTuple):
    """Output channels [c0, c1) of a node, on core ``core`` (unpacks as (core, c0, c1))."""

    core: int
    c0: int
    c1: int

    @property
    def channels(self) -> int:
        return self.c1 - self.c0


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


def _clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1."""
    return int(n - 1).bit_length() if n > 1 else 0


def _hw(shape: tuple) -> tuple[int, int]:
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def is_output_pool(graph: G.Graph, n: str, chip: ChipSpec | None) -> bool:
    """True when node ``n`` is a sum pool that a core of ``chip`` applies to its own output
    spikes (module doc): a depthwise Conv with all-ones weights, unit scale, no bias, kernel =
    stride in ``chip.limits.pool_sizes``, no padding, fed by the spikes of a Neurons node.
    Its output counts are integers: the pooled spike events."""
    sizes = chip.limits.pool_sizes if chip is not None else None
    op = graph.op(n)
    if not sizes or not isinstance(op, G.Conv) or op.ssc:
        return False
    ins = graph.inputs(n)
    C = op.channels
    return (len(ins) == 1 and isinstance(graph.op(ins[0]), G.Neurons)
            and graph.out_kind(ins[0]) == "spike"
            and op.groups == C == op.in_shape[0] and op.kernel == op.stride
            and op.padding == 0 and op.kernel in sizes
            and bool(np.all(op.weight == 1)) and bool(np.all(op.scale == 1))
            and bool(np.all(op.bias == 0)))


def output_pools(graph: G.Graph, chip: ChipSpec | None) -> set[str]:
    """Nodes of ``graph`` that ``chip``'s cores fold into their producer (``is_output_pool``)."""
    return {n for n in graph.order() if is_output_pool(graph, n, chip)}


def folded_pools(graph: G.Graph, chip: ChipSpec | None, layer_of: dict[str, str]) -> set[str]:
    """Output pools (``output_pools``) that sit in their producer's layer (``layer_of``), i.e.
    that its cores apply to their output: no synaptic ops, no memory, spike events out."""
    return {n for n in output_pools(graph, chip)
            if layer_of.get(n) is not None and layer_of.get(n) == layer_of.get(graph.inputs(n)[0])}


def _build_layers(graph: G.Graph, chip: ChipSpec | None = None
                  ) -> tuple[dict[str, Layer], dict[str, str], dict[str, str]]:
    """Group nodes into layers (``chip``: for its output pooling). Returns (layers by name,
    layer of each node, align producer of each layer that does not start with a
    Conv/Linear)."""
    layers: dict[str, Layer] = {}
    layer_of: dict[str, str] = {}
    anchor: dict[str, str] = {}
    pools = output_pools(graph, chip)
    for n in graph.order():
        op = graph.op(n)
        if isinstance(op, G.Input):
            continue
        ins = graph.inputs(n)
        join = None
        if n in pools and ins[0] in layer_of:
            join = layer_of[ins[0]]
        elif isinstance(op, G.Neurons):
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


def ecmt_state(graph: G.Graph, n: str, k: int) -> tuple[int, int]:
    """(neurons, other state words) of ``k`` output channels of an ECMT node (seed ecmt):
    MTSpikes one membrane per 2n output channels and position; ExpectationEC two words per
    element (S and T F(S/T)); MatMulEC its S_K elements plus its channels' share of the
    operand sums S_A, S_B (one word per operand element); AddConst none (its constants are
    stored like a bias)."""
    op = graph.op(n)
    H, W = _hw(op.shape)
    if isinstance(op, G.MTSpikes):
        return -(-k // (2 * op.levels)) * H * W, 0
    if isinstance(op, G.ExpectationEC):
        return 0, 2 * k * H * W
    if isinstance(op, G.MatMulEC):
        ops = sum(int(np.prod(graph.op(u).shape)) for u in graph.inputs(n)) // (2 * op.levels)
        return 0, k * H * W + -(-ops * k // op.channels)
    return 0, 0


class _Needs:
    """Resource needs of layer parts on a given chip (pure functions of the channel range)."""

    def __init__(self, graph: G.Graph, chip: ChipSpec, layer_of: dict[str, str]):
        self.graph, self.chip, self.layer_of = graph, chip, layer_of
        self.pools = {n for n in output_pools(graph, chip)
                      if layer_of.get(n) == layer_of.get(graph.inputs(n)[0])}
        self.flat = chip.core.memory_model == "flat"
        self.wbits, self.sbits = chip.core.weight_bits, chip.core.state_bits
        self._acc: dict[str, bool] = {}            # memo of accumulates()
        self._bias_nz: dict[str, np.ndarray] = {}  # prefix counts of nonzero biases

    def _has_bias(self, n: str, op, c0: int, c1: int) -> bool:
        """Any nonzero bias among output channels [c0, c1) (prefix counts: O(1) per call)."""
        pre = self._bias_nz.get(n)
        if pre is None:
            pre = self._bias_nz[n] = np.concatenate([[0], np.cumsum(op.bias != 0)])
        return bool(pre[c1] > pre[c0])

    def _cin(self, op) -> int:
        """Input channels per output channel as stored (compact or dense grouped kernels)."""
        cin = op.in_shape[0]
        return cin // op.groups if self.chip.features.grouped_conv else cin

    def accumulates(self, n: str) -> bool:
        """A reduction keeps graded-output accumulators unless Neurons of its own layer
        consume all its output."""
        if n not in self._acc:
            cons = self.graph.consumers(n)
            self._acc[n] = not cons or not all(isinstance(self.graph.op(v), G.Neurons)
                                               and self.layer_of[v] == self.layer_of[n]
                                               for v in cons)
        return self._acc[n]

    def fan_in(self, L: Layer) -> int:
        f = 0
        for n in L.nodes:
            op = self.graph.op(n)
            if n in self.pools:
                continue                      # output pooling: no synapses
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
        """Resources of node ``n`` for output channels [c0, c1) (an output pool: none)."""
        op, k = self.graph.op(n), c1 - c0
        if n in self.pools:
            keys = FLAT_RESOURCES if self.flat else DYNAPCNN_RESOURCES
            return dict.fromkeys(keys, 0)
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
                bias = k if self._has_bias(n, op, c0, c1) else 0
            elif isinstance(op, G.Linear):
                cin = op.in_shape[0]
                kk = int(np.prod(op.in_shape[1:])) if len(op.in_shape) > 1 else 1
                weights = k * int(np.prod(op.in_shape))
                kernel = cin * 2 ** (_clog2(kk) + _clog2(k))
                bias = k if self._has_bias(n, op, c0, c1) else 0
            elif isinstance(op, G.SpikeMatmul):
                d = op.channels // op.heads
                if op.order == "q(kv)":
                    extra_state = d * k
                else:
                    heads = (c1 - 1) // d - c0 // d + 1      # heads touched by [c0, c1)
                    extra_state = heads * (H * W) ** 2
        elif isinstance(op, G.ECMT_TYPES):
            neurons, extra_state = ecmt_state(self.graph, n, k)
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
