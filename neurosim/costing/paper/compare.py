"""Paper mode beside the event-level count, the difference split exactly into its causes.

``compare_paper_event`` sets the paper's per-layer count beside the event-level count of the
same layer (model modules map to graph nodes through ``graph.meta["fx_map"]``) and splits the
difference exactly:

    event = paper + d_quantization + d_border_stride + d_products + d_first_layer + d_other

* d_quantization: the same formula on the quantized graph's spikes (the quantized PyTorch twin,
  bit-exact with the engines) minus on the float model's spikes;
* d_border_stride: the true fan-out of every input spike (``op.fan_out()``: kernel taps clipped
  at the borders, stride) minus the paper's assumed ``FLOPs / (C_in H W)`` per spike
  (``k^2 C_out / (groups s^2)`` away from borders), summed over the quantized spikes;
* d_products: exact coincidence counts of spike products minus their rate-product estimate;
* d_first_layer: the image-encoding layer runs every time step on a chip with its own
  channels (``T - 1`` extra passes under the ``neurosim`` convention; under ``spikformer`` the
  convention's 64 stem channels against the model's own);
* d_other: what the engine counted beyond an exact count of the quantized spikes (0 for the
  sync engine and async windowed mode; free-running async mode and SSC masks make it non-zero).

The energy that the paper ignores (memory, routing, neuron updates, static power) is given from
the event-level breakdown beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from chips.spec import load_energy_table
from neurosim.ir import graph as G

from neurosim.costing.paper.estimate import PaperEstimate


# ----------------------------------------------------------------------------- comparison
EVENT_CATEGORY = {"conv": ("ac", "mac"), "linear": ("ac", "mac"),
                  "spike_matmul": ("aux_ops",), "token_sum": ("aux_ops",)}
DELTAS = ("d_quantization", "d_border_stride", "d_products", "d_first_layer", "d_other")


@dataclass
class PaperComparison:
    """Per-layer paper-mode vs event-level operation counts (per inference) and energies."""

    rows: list[dict]
    totals: dict
    energy: dict
    notes: list[str]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "totals": self.totals, "energy": self.energy,
                "notes": self.notes}


def compare_paper_event(paper: PaperEstimate, result, graph: G.Graph, *,
                        chip_energy: dict | None = None) -> PaperComparison:
    """Paper SOPs / MACs of every layer beside the event-level count of the same graph node,
    with the exact decomposition of the difference (module doc), per inference.

    ``paper`` must come from ``paper_estimate(model, inputs, graph=graph)`` on the inputs
    ``result`` was simulated on. Energy: the paper's estimate, the event-level counts priced at
    the paper's costs, and the event-level energy on the chip (``chip_energy``, default
    ``result.energy``) by category, including what the paper ignores.
    """
    from neurosim.costing.energy import energy_breakdown

    if not paper.quantized:
        raise ValueError("paper estimate lacks the quantized pass: build it with "
                         "paper_estimate(model, inputs, graph=graph)")
    if paper.n != result.n:
        raise ValueError(f"paper estimate covers {paper.n} inputs but the run {result.n}; "
                         "use the same inputs")
    n = Fraction(result.n)
    rows = []
    sums = {k: Fraction(0) for k in ("paper", "event", *DELTAS)}
    for lay in paper.layers:
        if lay.name not in result.counts:
            raise ValueError(f"layer {lay.name!r} has no event-level counts in the run")
        ev = sum(int(result.counts[lay.name][c]) for c in EVENT_CATEGORY[lay.kind])
        q = lay.quantized
        exact = Fraction(q["exact_event_ops_total"])
        d = dict.fromkeys(DELTAS, Fraction(0))
        if lay.is_mac:
            op = graph.op(lay.name)
            clipped = int(op.fan_out().sum())             # true MACs of one pass
            # the image layer as the convention counts it (passes, stem channels) vs. every
            # time step with its own channels; 0 for the other graded layers
            d["d_first_layer"] = Fraction(lay.flops * paper.T) * n - lay.ops_total
            d["d_border_stride"] = Fraction((clipped - lay.flops) * paper.T) * n
        else:
            d["d_quantization"] = q["ops_total"] - lay.ops_total
            key = "d_products" if lay.kind in ("spike_matmul", "token_sum") else "d_border_stride"
            d[key] = exact - q["ops_total"]
        d["d_other"] = Fraction(ev) - (lay.ops_total + sum(d.values()))
        row = {"layer": lay.name, "kind": lay.kind, "op_type": "MAC" if lay.is_mac else "SOP",
               "flops": lay.flops, "paper": float(lay.ops_total / n),
               **{k: float(v / n) for k, v in d.items()}, "event": float(Fraction(ev) / n),
               "rate_float": _main_rate(lay.rates), "rate_quantized": _main_rate(q["rates"])}
        rows.append(row)
        sums["paper"] += lay.ops_total
        sums["event"] += ev
        for k in DELTAS:
            sums[k] += d[k]
    totals = {k: float(v / n) for k, v in sums.items()}
    at_paper = energy_breakdown(result, load_energy_table(paper.table), static_power_w=0.0)
    chip = chip_energy if chip_energy is not None else result.energy
    energy = {"paper_j": paper.energy_j, "paper_table": paper.table,
              "event_at_paper_costs_j": at_paper["per_inference"]["total_j"],
              "event_at_paper_costs_by_category_j": at_paper["per_inference"]["by_category_j"]}
    if chip is not None:
        cats = chip["per_inference"]["by_category_j"]
        ignored = {c: v for c, v in cats.items() if c not in ("synaptic_ac", "mac", "aux_adds")}
        energy.update({"chip_table": chip["table"], "chip_j": chip["per_inference"]["total_j"],
                       "chip_by_category_j": cats, "chip_ignored_by_paper_j": ignored,
                       "chip_ignored_by_paper_total_j": float(sum(ignored.values()))})
    notes = list(paper.notes) + [
        "event = paper + d_quantization + d_border_stride + d_products + d_first_layer "
        "+ d_other (per inference, exact)"]
    return PaperComparison(rows=rows, totals=totals, energy=energy, notes=notes)


def _main_rate(rates: dict) -> float | None:
    if not rates:
        return None
    return float(np.mean(list(rates.values())))


__all__ = ["DELTAS", "PaperComparison", "compare_paper_event"]
