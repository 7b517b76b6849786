"""Energy accounting: workload counts x per-action costs, joined in one small pure function.

The three inputs are kept apart, as in Accelergy: the *architecture* (``chips.spec.ChipSpec``,
which names its energy table), the *per-action costs* (``chips.spec.EnergyTable``, pJ per
action and a static power in W) and the *workload counts* (``neurosim.RunResult``: operation
counts per node and per core, by the categories of ``neurosim.ir.counts``, and the latency of
every inference). ``energy_breakdown`` joins them through one explicit table, ``COSTS``:

    count category    action cost           energy category
    ac                ac_pj                 synaptic_ac        (spike-driven accumulates)
    aux_ops           ac_pj                 aux_adds           (spike-product, shortcut, pool adds)
    mac               mac_pj                mac                (graded-input multiply-accumulates)
    weight_reads      weight_read_pj        weight_memory
    membrane_reads    membrane_read_pj      membrane_memory
    membrane_writes   membrane_write_pj     membrane_memory
    neuron_updates    neuron_update_pj      neuron_updates
    spikes            neuron_spike_pj       neuron_updates     (extra cost of a firing update)
    neuron_accesses   neuron_access_pj      neuron_updates     (every mapped neuron, every tick)
    noc_messages      spike_route_pj        routing
    noc_hops          hop_pj                routing
    noc_hops_ns       hop_ns_extra_pj       routing            (extra of a N-S hop over hop_pj)
    graded_messages   graded_transfer_pj    graded_transfers
    graded_hops       graded_hop_pj         graded_transfers
    (latency)         chip [power] model    static             (neurosim.costing.static)

``graded_values`` (values produced, already paid for by the arithmetic that made them),
``saturations`` (an event, not an action) and ``noc_messages_in`` (the receiving end of
``noc_messages``, priced once at the sender) carry no cost; they are listed under ``unpriced``.

Exactness (DESIGN invariant 2). Every cell (a count times a cost) is computed exactly as a
``fractions.Fraction`` of the float cost and the integer count. Float joules are produced once,
on a common power-of-two grid ``2**k`` J chosen so that the whole total holds in 52 bits: each
breakdown's cells are apportioned (largest remainder) from the same rounded grid total, so every
float in a breakdown is exact on the grid and ``math.fsum`` of any breakdown equals its total
exactly; the grid step is ~2e-16 of the total, far below any cost's precision. Breakdowns by
node hold dynamic energy (static belongs to cores, not to graph nodes); breakdowns by core hold
both, static as its own category; the static energy of the parts shared by all cores (the
uncore; or a whole-chip constant from a table) is ``static_shared``, and ``static_by_core``
lists it under ``"uncore"`` (or ``"chip"``): ``fsum(by_node) + static == total ==
fsum(by_core) + static_shared == fsum(by_category)`` and ``fsum(static_by_core) == static``.

Static energy comes from the chip's ``[power]`` model under a power-gating policy (the chip's
default, or ``power_gating=``), computed by :mod:`neurosim.costing.static`; a table that sets
``static_power_w`` (the 45 nm paper convention: 0) or the ``static_power_w=`` argument replaces
it by a whole-chip constant. Average power (W) = energy / total latency, dynamic and static.
"""
from __future__ import annotations

import math
from fractions import Fraction

from chips.spec import ChipSpec, EnergyTable, load_energy_table
from neurosim.costing.static import static_cells
from neurosim.ir.counts import CATEGORIES

# count category -> (per-action cost in the EnergyTable, energy category)
COSTS: dict[str, tuple[str, str]] = {
    "ac": ("ac_pj", "synaptic_ac"),
    "aux_ops": ("ac_pj", "aux_adds"),
    "mac": ("mac_pj", "mac"),
    "weight_reads": ("weight_read_pj", "weight_memory"),
    "membrane_reads": ("membrane_read_pj", "membrane_memory"),
    "membrane_writes": ("membrane_write_pj", "membrane_memory"),
    "neuron_updates": ("neuron_update_pj", "neuron_updates"),
    "spikes": ("neuron_spike_pj", "neuron_updates"),
    "noc_messages": ("spike_route_pj", "routing"),
    "noc_hops": ("hop_pj", "routing"),
    "noc_hops_ns": ("hop_ns_extra_pj", "routing"),
    "neuron_accesses": ("neuron_access_pj", "neuron_updates"),
    "graded_messages": ("graded_transfer_pj", "graded_transfers"),
    "graded_hops": ("graded_hop_pj", "graded_transfers"),
}
UNPRICED = {"graded_values": "produced values; their cost is in the arithmetic that made them",
            "saturations": "clipping events, not actions",
            "noc_messages_in": "the receiving end of noc_messages, priced at the sender "
                               "(spike_route_pj); the Input's events arrive from off-chip"}
ENERGY_CATEGORIES = ("synaptic_ac", "aux_adds", "mac", "weight_memory", "membrane_memory",
                     "neuron_updates", "routing", "graded_transfers", "static")
CATEGORY_LABELS = {"synaptic_ac": "synaptic AC", "aux_adds": "other adds", "mac": "MAC",
                   "weight_memory": "weight memory", "membrane_memory": "membrane memory",
                   "neuron_updates": "neuron updates", "routing": "spike routing (NoC)",
                   "graded_transfers": "graded transfers", "static": "static"}
assert set(COSTS) | set(UNPRICED) == set(CATEGORIES), "every count category needs a row"

PJ = Fraction(1, 10 ** 12)


def _apportion(cells: dict, total: int, step: Fraction) -> dict:
    """Integer grid units per cell summing exactly to ``total`` (largest remainder; ties by
    key order, so the result is deterministic)."""
    units = {k: v / step for k, v in cells.items()}
    floors = {k: math.floor(u) for k, u in units.items()}
    left = total - sum(floors.values())
    assert 0 <= left <= len(units), (left, len(units))
    for k in sorted(units, key=lambda k: (-(units[k] - floors[k]), str(k)))[:left]:
        floors[k] += 1
    return floors


def _grid(total: Fraction) -> Fraction:
    """Power-of-two step so that ``total`` is at most 2**52 steps, and never finer than the
    smallest float (2**-1074), so that every multiple of it up to the total is a float."""
    if total <= 0:
        return Fraction(1)
    k = math.floor(math.log2(total.numerator) - math.log2(total.denominator)) - 51
    return Fraction(2) ** max(k, -1074)


def _breakdown(node_cells: dict, core_cells: dict, static_cells: dict) -> dict:
    """Exact cells -> float breakdowns on a common grid. ``node_cells[(node, count_cat)]``,
    ``core_cells[(core, count_cat)]``, ``static_cells[core or "uncore" / "chip"]``: exact
    joules."""
    static = sum(static_cells.values(), Fraction(0))
    by_cat_exact: dict[str, Fraction] = {c: Fraction(0) for c in ENERGY_CATEGORIES}
    by_count_exact: dict[str, Fraction] = {c: Fraction(0) for c in COSTS}
    for (_, cc), v in node_cells.items():
        by_cat_exact[COSTS[cc][1]] += v
        by_count_exact[cc] += v
    by_cat_exact["static"] = static
    dynamic = sum(by_cat_exact.values()) - static
    step = _grid(dynamic + static)
    static_u, dyn_u = round(static / step), round(dynamic / step)
    total_u = static_u + dyn_u

    def per(cells, key_index):
        out: dict = {}
        for key, v in cells.items():
            out[key[key_index]] = out.get(key[key_index], Fraction(0)) + v
        return out

    nodes_exact, cores_exact = per(node_cells, 0), per(core_cells, 0)
    if sum(cores_exact.values()) != dynamic:
        raise ValueError(f"per-core counts price to {float(sum(cores_exact.values()))} J but "
                         f"per-node counts to {float(dynamic)} J: the result's core_counts and "
                         f"counts disagree")
    by_node_u = _apportion(nodes_exact, dyn_u, step)
    static_core_u = _apportion(static_cells, static_u, step)
    by_core_u = _apportion(cores_exact, dyn_u, step)             # dynamic, then + static
    for k, u in static_core_u.items():
        if isinstance(k, int):
            by_core_u[k] = by_core_u.get(k, 0) + u
    shared_u = sum(u for k, u in static_core_u.items() if not isinstance(k, int))
    core_static = {k: v for k, v in static_cells.items() if isinstance(k, int)}
    by_cat_u = _apportion({c: v for c, v in by_cat_exact.items() if c != "static"}, dyn_u, step)
    by_count_u = _apportion(by_count_exact, dyn_u, step)
    by_cat_u["static"] = static_u

    def rows(cells, row_totals_u, static_rows=None):
        """Per row (node or core): energy categories apportioned to the row's total."""
        grouped: dict = {}
        for (r, cc), v in cells.items():
            g = grouped.setdefault(r, {})
            g[COSTS[cc][1]] = g.get(COSTS[cc][1], Fraction(0)) + v
        for r, v in (static_rows or {}).items():
            grouped.setdefault(r, {})["static"] = v
        return {r: {c: u * step for c, u in _apportion(g, row_totals_u[r], step).items()}
                for r, g in grouped.items()}

    f = lambda u: float(u * step)  # noqa: E731  exact: |u| <= 2**53, step a power of two
    return {
        "total_j": f(total_u), "dynamic_j": f(dyn_u), "static_j": f(static_u),
        "by_category_j": {c: f(by_cat_u[c]) for c in ENERGY_CATEGORIES},
        "by_count_j": {c: f(u) for c, u in by_count_u.items()},
        "by_node_j": {n: f(u) for n, u in by_node_u.items()},
        "by_core_j": {str(c): f(u) for c, u in by_core_u.items()},
        "by_node_category_j": {n: {c: float(v) for c, v in d.items()}
                               for n, d in rows(node_cells, by_node_u).items()},
        "by_core_category_j": {str(k): {c: float(v) for c, v in d.items()}
                               for k, d in rows(core_cells, by_core_u, core_static).items()},
        "static_by_core_j": {str(c): f(u) for c, u in static_core_u.items()},
        "static_shared_j": f(shared_u),
        "grid_j": float(step),
    }


def _costs(table: EnergyTable) -> dict[str, Fraction]:
    out = {}
    for cc, (action, _) in COSTS.items():
        v = getattr(table, action)
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"energy table {table.name!r}: {action} = {v!r}; costs must be "
                             f"finite and >= 0")
        out[cc] = Fraction(v) * PJ
    return out


def energy_breakdown(result, table: EnergyTable | str, *, chip: ChipSpec | None = None,
                     power_gating: str | None = None, static_power_w: float | None = None,
                     mapping=None) -> dict:
    """Energy of ``result`` (a ``RunResult``) under ``table`` (an ``EnergyTable`` or a table
    name / path), JSON-ready, joules inside.

    Static energy: the ``chip``'s ``[power]`` model under ``power_gating`` (default: the
    chip's policy), unless the table or the ``static_power_w`` argument gives a whole-chip
    constant (W; module doc). With a ``mapping`` (``chips.mapping.Mapping``) the dynamic energy
    is also given per mapped layer (``by_layer_j``) and ``unused`` gating powers the mapped
    cores. Returns total, dynamic and static energy; by energy category, by count category, by
    node, by core (static included) and node / core x category; the same per inference
    (divided by n); average power (``power_w``); the static model used (``static``, with the
    static energy per inference under every policy); the costs and the unpriced counts. Every
    breakdown sums exactly to its total (module doc).
    """
    if not isinstance(table, EnergyTable):
        table = load_energy_table(table)
    cost = _costs(table)
    n = int(result.n)
    if n < 1:
        raise ValueError("result holds no inferences (n = 0)")
    node_cells = {(node, cc): cost[cc] * int(c.get(cc, 0))
                  for node, c in result.counts.items() for cc in COSTS}
    core_cells = {(int(core), cc): cost[cc] * int(c.get(cc, 0))
                  for core, c in result.core_counts.items() for cc in COSTS}
    latency_total_s = sum((Fraction(float(t)) for t in result.latency_s), Fraction(0))
    static, static_info = static_cells(result, chip=chip, table_power_w=table.static_power_w,
                                       power_gating=power_gating,
                                       static_power_w=static_power_w, mapping=mapping)
    out = _breakdown(node_cells, core_cells, static)
    per = _breakdown({k: v / n for k, v in node_cells.items()},
                     {k: v / n for k, v in core_cells.items()},
                     {k: v / n for k, v in static.items()})
    out["per_inference"] = {k: per[k] for k in ("total_j", "dynamic_j", "static_j",
                                                "by_category_j", "by_count_j", "by_node_j",
                                                "by_core_j", "static_by_core_j",
                                                "static_shared_j")}
    if mapping is not None:
        layers: dict[str, Fraction] = {}
        for (node, _), v in node_cells.items():
            L = mapping.layer_of.get(node, node)
            layers[L] = layers.get(L, Fraction(0)) + v
        step = Fraction(out["grid_j"])
        dyn_u = round(Fraction(out["dynamic_j"]) / step)
        out["by_layer_j"] = {L: float(u * step) for L, u in _apportion(layers, dyn_u, step).items()}
    lat = float(latency_total_s)
    out.update({
        "table": table.name, "arithmetic": table.arithmetic, "chip": result.chip,
        "mode": result.mode, "n": n, "latency_total_s": lat,
        "static_power_w": out["static_j"] / lat if lat > 0 else 0.0,
        "power_w": {k: (out[f"{k}_j"] / lat if lat > 0 else None)
                    for k in ("total", "dynamic", "static")},
        "static": static_info,
        "costs": {a: float(getattr(table, a)) for a in sorted({a for a, _ in COSTS.values()})},
        "cost_map": {cc: {"action": a, "category": c} for cc, (a, c) in COSTS.items()},
        "unpriced": {cc: int(sum(int(c.get(cc, 0)) for c in result.counts.values()))
                     for cc in UNPRICED},
    })
    return out


def attach_energy(result, chip: ChipSpec | str | None = None, *, table=None,
                  power_gating: str | None = None, static_power_w: float | None = None,
                  mapping=None) -> dict:
    """Compute ``energy_breakdown`` with the chip's energy table (its overrides applied) and
    static model, or with ``table`` when given (the chip's static model still applies unless
    the table sets ``static_power_w``), store it in ``result.energy`` and return it."""
    from chips.spec import load_chip
    spec = None
    if chip is not None or table is None:
        spec = load_chip(chip if chip is not None else result.chip)
    if table is None:
        table = spec.energy()
    result.energy = energy_breakdown(result, table, chip=spec, power_gating=power_gating,
                                     static_power_w=static_power_w, mapping=mapping)
    return result.energy


__all__ = ["COSTS", "UNPRICED", "ENERGY_CATEGORIES", "CATEGORY_LABELS", "energy_breakdown",
           "attach_energy"]
