"""The seed papers' energy estimate ("paper mode") and its comparison with the event-level count.

Convention (seed-facts §3; Spikformer, SDT v1-v3 papers):

    SOPs(l) = firing_rate(input of l) x T x FLOPs(l)
    E       = E_MAC x FLOPs(first conv, real-valued input) + E_AC x sum over other layers SOPs(l)

with E_MAC = 4.6 pJ and E_AC = 0.9 pJ (fp32 at 45 nm, Horowitz ISSCC 2014: the ``45nm`` energy
table, ``arithmetic = "fp32"``). It ignores memory, routing, neuron updates and static power.

How neurosim applies it (stated, since recounts differ by up to 1.6x):

* The float PyTorch model runs once (``torch.fx`` trace with the lowering's leaf modules,
  recording every leaf's inputs). Layers counted: every ``ConvBN``, ``RepConvBN``,
  ``nn.Linear`` (dense MACs = FLOPs), ``SpikeMatmul`` and token sums (additions of spike x spike
  products, counted as ACs as the papers do). Masks (AND), pooling, shortcut adds, token means
  and neuron updates are not counted.
* FLOPs(l) = multiply-accumulates of the dense layer for one sample and one time step:
  conv ``C_out H_out W_out (C_in / groups) k^2``; linear ``in x out`` per token.
* RepConv: ``repconv="fused"`` counts one 3x3 conv (``C_out H W C_in 9``); ``"unfused"`` counts
  the three stages, of which only the first (1x1 on spikes) is spike-driven: the depthwise 3x3
  and the second 1x1 take graded values and are counted as MACs every time step. Pass the
  lowered graph and its ``graph.meta["repconv"]`` is used.
* firing_rate = mean spikes per neuron per time step of the layer's input (an SFA burst of n
  counts n, so for SFA this is D x the rate per sub-step). Spike products: the K^T V adds
  count ``r_k r_v`` per dense MAC (an add happens where both spikes are present), the Q (KV)
  adds ``r_q`` per dense MAC; token sums ``r_k r_v`` (SDSA-1) or ``r_k`` (SDSA-2).
* The first layer whose input is the real-valued image counts ``FLOPs`` MACs once per inference
  (the image is the same every time step); any other graded-input layer counts ``T x FLOPs``
  MACs. Event inputs (DVS counts) make the first layer spike-driven.

The choices above are the ``neurosim`` convention; ``convention=`` selects another one the seed
papers used (``neurosim.costing.paper.conventions``: ``spikformer``, ``meta-spikeformer``),
which changes how the first layer, RepConv and graded layers are counted. The comparison with
the event-level count is ``neurosim.costing.paper.compare``.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
from torch import fx, nn

from chips.spec import EnergyTable, load_energy_table
from models import layers as L
from models import neurons as N
from neurosim.ir import graph as G
from neurosim.costing.paper.conventions import Convention, get_convention
from neurosim.costing.paper.quantized import _quantized_batch

PAPER_TABLE = "45nm"
SYNAPTIC = ("conv", "linear", "spike_matmul", "token_sum")


@dataclass
class PaperLayer:
    """One counted layer. ``name``: the graph node it lowers to (module path; unfused RepConv
    stages end in .pw1 / .dw / .pw2); ``fx_node``: the traced call; ``inputs``: 'spike' or
    'graded'; ``flops``: dense MACs per sample per time step; ``rates``: firing rate of each
    spike operand (per time step); ``ops_total``: SOPs (spike input) or MACs (graded) summed
    over the inputs, exact; ``ops`` = ops_total / n; ``energy_j`` per inference; ``priced``:
    "MAC" (E_MAC) or "AC" (E_AC), as the convention prices the row."""

    name: str
    fx_node: str
    module: str
    kind: str
    inputs: str
    flops: int
    in_shape: tuple
    rates: dict
    ops_total: Fraction
    ops: float = 0.0
    energy_j: float = 0.0
    mac_passes: int = 0
    quantized: dict | None = None
    priced: str = "AC"

    @property
    def is_mac(self) -> bool:
        """Graded input: the chip executes it as MACs (whatever the convention prices)."""
        return self.inputs == "graded"

    def to_dict(self) -> dict:
        d = {"name": self.name, "fx_node": self.fx_node, "module": self.module,
             "kind": self.kind, "inputs": self.inputs, "flops": int(self.flops),
             "in_shape": list(self.in_shape), "rates": dict(self.rates),
             "ops": float(self.ops), "ops_total": float(self.ops_total),
             "op_type": "MAC" if self.is_mac else "SOP", "priced": self.priced,
             "energy_j": float(self.energy_j), "mac_passes": self.mac_passes}
        if self.quantized is not None:
            d["quantized"] = {k: (float(v) if isinstance(v, Fraction) else v)
                              for k, v in self.quantized.items()}
        return d


@dataclass
class PaperEstimate:
    """Paper-mode energy of ``n`` inferences: per-layer rows and totals (per inference)."""

    model: str
    n: int
    T: int
    D: int
    repconv: str
    table: str
    arithmetic: str
    e_ac_pj: float
    e_mac_pj: float
    layers: list[PaperLayer]
    first_layer: str | None
    quantized: bool = False
    notes: list[str] = field(default_factory=list)
    convention: Convention = field(default_factory=lambda: get_convention("neurosim"))

    @property
    def sops(self) -> float:
        """Operations priced at E_AC, per inference."""
        return float(sum((lay.ops_total for lay in self.layers if lay.priced == "AC"),
                         Fraction(0)) / self.n)

    @property
    def macs(self) -> float:
        """Operations priced at E_MAC, per inference."""
        return float(sum((lay.ops_total for lay in self.layers if lay.priced == "MAC"),
                         Fraction(0)) / self.n)

    def energy_exact(self) -> Fraction:
        pj = Fraction(1, 10 ** 12)
        ac, mac = Fraction(self.e_ac_pj) * pj, Fraction(self.e_mac_pj) * pj
        return sum(((mac if lay.priced == "MAC" else ac) * lay.ops_total
                    for lay in self.layers), Fraction(0)) / self.n

    @property
    def energy_j(self) -> float:
        """E_MAC x MACs + E_AC x SOPs, per inference (J)."""
        return float(self.energy_exact())

    def layer(self, name: str) -> PaperLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(f"no paper-mode layer {name!r}; layers: {[lay.name for lay in self.layers]}")

    def to_dict(self) -> dict:
        return {"model": self.model, "n": self.n, "T": self.T, "D": self.D,
                "repconv": self.repconv, "table": self.table, "arithmetic": self.arithmetic,
                "e_ac_pj": self.e_ac_pj, "e_mac_pj": self.e_mac_pj,
                "first_layer": self.first_layer, "quantized": self.quantized,
                "convention": self.convention.to_dict(),
                "energy_per_inference_j": self.energy_j, "sops_per_inference": self.sops,
                "macs_per_inference": self.macs, "notes": list(self.notes),
                "layers": [lay.to_dict() for lay in self.layers]}


# ----------------------------------------------------------------------------- float pass
def _spike_unit(mod: nn.Module) -> float | None:
    """Value of one spike count at a neuron module's output (None: graded output)."""
    cfg = getattr(mod, "cfg", None)
    if not isinstance(cfg, N.NeuronConfig):
        return None
    if cfg.kind == "sfa":
        return 1.0 / cfg.norm
    if cfg.kind == "mt":
        return None
    return 1.0


def _count_sum(x: torch.Tensor, unit: float) -> tuple[int, int]:
    """(total spike count, neurons per time step) of a [T, B, ...] spike tensor."""
    return int(torch.round(x.detach().double() / unit).sum().item()), int(x[0, 0].numel())


def _conv_flops(conv: nn.Conv2d, out_hw: tuple[int, int]) -> int:
    k = conv.kernel_size[0] * conv.kernel_size[1]
    return conv.out_channels * out_hw[0] * out_hw[1] * (conv.in_channels // conv.groups) * k


class _Pass(fx.Interpreter):
    """Runs the traced float model, tracking which values are spike counts (and their unit)
    and recording, for each counted layer, its FLOPs and the spike totals of its operands
    (``None`` for a graded operand)."""

    def __init__(self, gm: fx.GraphModule, repconv: str):
        super().__init__(gm)
        self.modules = dict(gm.named_modules())
        self.unit: dict[str, float | None] = {}
        self.rows: list[dict] = []
        self.repconv = repconv

    def run_node(self, n):
        out = super().run_node(n)
        self.unit[n.name] = self._unit_of(n, out)
        if n.op == "call_module":
            self._record(n, self.modules[n.target], out)
        return out

    def _unit_of(self, n, out) -> float | None:
        if n.op == "placeholder":
            ev = out.dim() == 5 and bool(torch.all(out >= 0)) and \
                bool(torch.all(out == torch.round(out)))
            return 1.0 if ev else None
        args = [a.name for a in n.args if isinstance(a, fx.Node)]
        if n.op == "call_function" and n.target is operator.add:
            us = {self.unit[a] for a in args}
            return us.pop() if len(us) == 1 and None not in us else None
        if n.op != "call_module":
            return None
        mod = self.modules[n.target]
        if isinstance(mod, (L.Encoder, L.MaxPool)):
            return self.unit[args[0]]
        if isinstance(mod, L.HadamardMask):
            us = [self.unit[a] for a in args]
            return None if None in us else float(np.prod(us))
        return _spike_unit(mod)

    def _operand(self, n, i: int = 0):
        """(input tensor, spike totals (sum, size) or None when graded)."""
        a = n.args[i]
        x, u = self.env[a], self.unit[a.name]
        return x, (None if u is None else _count_sum(x, u))

    def _from_image(self, n) -> bool:
        """True when the layer's input is the (encoded) real-valued model input."""
        a = n.args[0]
        return a.op == "placeholder" or (
            a.op == "call_module" and isinstance(self.modules[a.target], L.Encoder)
            and self.unit[a.name] is None)

    def _row(self, n, name, kind, flops, operands, in_shape, from_image=False, out_channels=1):
        self.rows.append(dict(name=name, fx_node=n.name, module=n.target, kind=kind,
                              flops=int(flops), in_shape=tuple(int(s) for s in in_shape),
                              operands=operands, from_input=from_image,
                              out_channels=int(out_channels)))

    def _record(self, n, mod, out):
        img = self._from_image(n)
        if isinstance(mod, L.ConvBN):
            x, c = self._operand(n)
            self._row(n, n.target, "conv", _conv_flops(mod.conv, tuple(out.shape[-2:])), [c],
                      x.shape[2:], img, mod.conv.out_channels)
        elif isinstance(mod, L.RepConvBN):
            x, c = self._operand(n)
            Ci, H, W = x.shape[2:]
            C, Co = mod.pw1.out_channels, mod.pw2.out_channels
            if self.repconv == "fused":
                self._row(n, n.target, "conv", Co * H * W * Ci * 9, [c], x.shape[2:], img, Co)
            else:
                self._row(n, f"{n.target}.pw1", "conv", C * H * W * Ci, [c], x.shape[2:], img,
                          C)
                self._row(n, f"{n.target}.dw", "conv", C * H * W * 9, [None], (C, H, W))
                self._row(n, f"{n.target}.pw2", "conv", Co * H * W * C, [None], (C, H, W))
        elif isinstance(mod, nn.Linear):
            x, c = self._operand(n)
            tokens = x[0, 0].numel() // mod.in_features
            self._row(n, n.target, "linear", mod.in_features * mod.out_features * tokens, [c],
                      x.shape[2:], img, mod.out_features)
        elif isinstance(mod, L.SpikeMatmul):
            ops = [self._operand(n, i) for i in range(3)]
            if any(c is None for _, c in ops):
                raise ValueError(f"paper mode: {n.target!r} multiplies graded values; the "
                                 "convention counts spike x spike products only")
            (q, _), _, (v, _) = ops
            _, _, Cq, H, W = q.shape
            h, Cv = mod.heads, v.shape[2]
            one = h * (Cq // h) * (H * W) * (Cv // h)         # dense MACs of one product
            self._row(n, n.target, "spike_matmul", 2 * one, [c for _, c in ops], q.shape[2:])
        elif isinstance(mod, (L.TokenSumProduct, L.TokenSum)):
            ops = [self._operand(n, i) for i in range(len(n.args))]
            if any(c is None for _, c in ops):
                raise ValueError(f"paper mode: {n.target!r} sums graded values")
            x0 = ops[0][0]
            C, H, W = x0.shape[2:]
            self._row(n, n.target, "token_sum", C * H * W, [c for _, c in ops], x0.shape[2:])


def _ops_exact(row: dict, T: int, B: int, static: bool, totals: list,
               conv: Convention) -> tuple[Fraction, dict, int]:
    """(ops summed over the B inputs, firing rate per operand, MAC passes per inference) from
    the operands' spike totals [(sum, size) or None for graded], summed over T and B; the
    image layer's passes and channels follow the convention ``conv``."""
    flops = row["flops"]
    if any(t is None for t in totals):
        if row["from_input"]:
            passes = conv.first_layer_passes(T, static)
            return conv.stem_flops(flops, row["out_channels"]) * passes * B, {}, passes
        return Fraction(flops * T * B), {}, T
    r = [Fraction(s, size * T * B) for s, size in totals]
    names = _OPERAND_NAMES[row["kind"]]
    rates = {names[i]: float(v) for i, v in enumerate(r)}
    if row["kind"] in ("conv", "linear"):
        return Fraction(flops) * T * B * r[0], rates, 0
    if row["kind"] == "spike_matmul":
        rq, rk, rv = r
        return Fraction(flops, 2) * T * B * (rk * rv + rq), rates, 0
    return Fraction(flops) * T * B * (r[0] * r[1] if len(r) == 2 else r[0]), rates, 0


_OPERAND_NAMES = {"spike_matmul": ("q", "k", "v"), "token_sum": ("k", "v"),
                  "conv": ("x",), "linear": ("x",)}


def _add_totals(acc: list | None, new: list) -> list:
    if acc is None:
        return list(new)
    return [None if a is None else (a[0] + b[0], a[1]) for a, b in zip(acc, new)]


def paper_estimate(model: nn.Module, inputs, *, graph: G.Graph | None = None,
                   repconv: str | None = None, table: EnergyTable | str = PAPER_TABLE,
                   batch: int = 16, convention: str | Convention = "neurosim") -> PaperEstimate:
    """The seeds' energy estimate for ``inputs`` ([B, C, H, W] images or [T, B, ...] frames).

    With ``graph`` (the model lowered by ``neurosim.frontends.lower``), the RepConv form follows
    ``graph.meta["repconv"]``, rows are named by their graph nodes, and every row also gets
    the same estimate on the quantized graph's spikes (the quantized twin) and the exact event
    count those spikes imply (``layer.quantized``), which ``compare_paper_event`` uses.
    ``convention``: a name in ``conventions.CONVENTIONS`` or a ``Convention`` (module doc of
    ``conventions``); an explicit ``repconv`` overrides the convention's, a ``graph`` lowered
    with another RepConv form than the convention's is an error. Inputs run ``batch`` at a time.
    """
    from neurosim.frontends.lower import trace

    conv = get_convention(convention)
    tab = table if isinstance(table, EnergyTable) else load_energy_table(table)
    form = _repconv_form(repconv, graph, conv)
    if form not in ("fused", "unfused"):
        raise ValueError(f"repconv must be 'fused' or 'unfused', got {form!r}")
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    if x.dim() not in (4, 5):
        raise ValueError(f"inputs must be [B, C, H, W] or [T, B, C, H, W], got {tuple(x.shape)}")
    static = x.dim() == 4
    bdim = 0 if static else 1
    B = x.shape[bdim]
    if B < 1:
        raise ValueError("paper_estimate needs at least one input")
    gm = trace(model.eval())
    rows, totals, qtotals, exact = None, None, None, None
    for i in range(0, B, batch):
        xb = x.narrow(bdim, i, min(batch, B - i))
        p = _Pass(gm, form)
        with torch.no_grad():
            p.run(xb)
        if rows is None:
            rows = p.rows
            totals = [None] * len(rows)
            qtotals, exact = [None] * len(rows), [0] * len(rows)
        for j, r in enumerate(p.rows):
            totals[j] = _add_totals(totals[j], r["operands"])
        if graph is not None:
            for j, (qt, ex) in enumerate(_quantized_batch(model, graph, xb, rows)):
                qtotals[j] = _add_totals(qtotals[j], qt)
                exact[j] += ex
    enc = [m for m in model.modules() if isinstance(m, L.Encoder)]
    T = enc[0].T if enc else 1
    Ds = [m.cfg.D for m in model.modules()
          if isinstance(getattr(m, "cfg", None), N.NeuronConfig) and m.cfg.kind == "sfa"]
    D = max(Ds, default=1)
    cfg = getattr(model, "neurosim_config", {})
    pj = Fraction(1, 10 ** 12)
    first = next((r["name"] for r in rows if r["from_input"]), None)
    layers = []
    for j, row in enumerate(rows):
        total, rates, passes = _ops_exact(row, T, B, static, totals[j], conv)
        priced = "MAC" if passes and (row["from_input"] or conv.graded == "mac") else "AC"
        cost = Fraction(float(tab.mac_pj) if priced == "MAC" else float(tab.ac_pj)) * pj
        layer = PaperLayer(name=row["name"], fx_node=row["fx_node"], module=row["module"],
                           kind=row["kind"], inputs="graded" if passes else "spike",
                           flops=row["flops"], in_shape=row["in_shape"], rates=rates,
                           ops_total=total, ops=float(total / B),
                           energy_j=float(cost * total / B), mac_passes=passes, priced=priced)
        if graph is not None:
            tq, rq, _ = _ops_exact(row, T, B, static, qtotals[j], conv)
            layer.quantized = {"rates": rq, "ops_total": tq, "exact_event_ops_total": exact[j]}
        layers.append(layer)
    est = PaperEstimate(model=cfg.get("name", type(model).__name__), n=B, T=T, D=D,
                        repconv=form, table=tab.name, arithmetic=tab.arithmetic,
                        e_ac_pj=float(tab.ac_pj), e_mac_pj=float(tab.mac_pj), layers=layers,
                        first_layer=first, quantized=graph is not None, convention=conv)
    est.notes = _notes(conv, form, first, static, D)
    return est


def _repconv_form(repconv: str | None, graph: G.Graph | None, conv: Convention) -> str:
    """RepConv form: explicit argument, else the graph's (which must agree with the
    convention's), else the convention's, else fused."""
    if repconv is not None:
        return repconv
    if graph is not None:
        form = graph.meta.get("repconv", "fused")
        if conv.repconv is not None and conv.repconv != form:
            raise ValueError(f"paper convention {conv.name!r} counts RepConv {conv.repconv}, but "
                             f"the graph was lowered with repconv={form!r}: lower with "
                             f"repconv={conv.repconv!r} or pass repconv= explicitly")
        return form
    return conv.repconv or "fused"


def _notes(conv: Convention, form: str, first: str | None, static: bool, D: int) -> list[str]:
    """What the estimate counted, in words."""
    once = conv.first_layer_passes(2, static) == 1
    stem = (f" as {conv.stem_out_channels} output channels" if conv.stem_out_channels else "")
    return [
        f"convention {conv.name!r} ({conv.source})",
        f"RepConv counted {form}" + (" (one 3x3 conv)" if form == "fused" else
                                     " (1x1 on spikes; dw 3x3 and 1x1 on graded values)"),
        ("first layer " + (f"{first!r}: its FLOPs{stem} counted as MACs once per inference "
                           "(the image is the same every time step)" if once
                           else f"{first!r}: its FLOPs{stem} counted as MACs every time step"))
        if first else "first layer spike-driven (event input)",
        f"graded-input layers after the first counted as {conv.graded.upper()}s every time step",
        "rate = mean spikes per neuron per time step"
        + (f"; an SFA burst of n spikes counts n (D = {D})" if D > 1 else ""),
        "not counted: masks, pooling, shortcut adds, token means, neuron updates, memory, "
        "routing, static power",
    ]
