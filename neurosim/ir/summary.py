"""What ``print(result)`` shows, and a result as rows (one per graph node) for tables.

``summary(result)`` is a short text: accuracy, energy and average power per inference, latency,
and the top energy consumers, read from the energy breakdown already attached to the result
(``result.energy``, computed by ``neurosim.costing.energy``; this module prices nothing).
``node_rows(result)`` holds the full per-node data (spikes, operation counts and energy per
inference) that ``RunResult.to_frame`` turns into a DataFrame. Standard library and numpy only.
"""
from __future__ import annotations

import numpy as np

from neurosim.ir.counts import CATEGORIES
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time, format_table

TOP = 5                      # consumers listed by ``summary``


def _label(category: str) -> str:
    return category.replace("_", " ")


def _energy_lines(e: dict) -> list[str]:
    per, pw = e["per_inference"], e["power_w"]
    lines = [f"  energy / inference   {fmt_energy(per['total_j'])}  (dynamic "
             f"{fmt_energy(per['dynamic_j'])}, static {fmt_energy(per['static_j'])}; "
             f"energy table {e['table']})"]
    if pw.get("total") is not None:
        lines.append(f"  average power        {fmt_power(pw['total'])}  (dynamic "
                     f"{fmt_power(pw['dynamic'])}, static {fmt_power(pw['static'])})")
    return lines


def top_consumers(result, k: int = TOP) -> list[dict]:
    """The ``k`` graph nodes with the most dynamic energy per inference: node, energy (J),
    share of the dynamic energy per inference (static power belongs to cores, not to nodes;
    None when there is no dynamic energy to share, e.g. a zero energy table), and the energy
    category that dominates the node's energy ("" when the node has none)."""
    e = result.energy
    if e is None:
        return []
    per = e["per_inference"]
    dynamic = per["dynamic_j"]
    cats = e.get("by_node_category_j", {})
    out = []
    for node, j in sorted(per["by_node_j"].items(), key=lambda kv: (-kv[1], kv[0]))[:k]:
        parts = cats.get(node) or {}
        main = max(parts.items(), key=lambda kv: (kv[1], kv[0]))[0] if parts and j > 0 else ""
        share = j / dynamic if np.isfinite(dynamic) and dynamic > 0 else None
        out.append({"node": node, "energy_j": j, "share": share,
                    "largest_part": main})
    return out


def summary(result) -> str:
    """A short table for a terminal (module doc); the full data is in ``result.to_dict()``."""
    r = result
    lat = np.asarray(r.latency_s, dtype=float)
    acc = ("-  (no labels given)" if r.accuracy is None else
           f"{r.accuracy:.4f}  ({int(round(r.accuracy * r.n))} of {r.n} correct)")
    lines = [f"{r.model} on {r.chip} ({r.mode}): {r.n} input{'s' if r.n != 1 else ''}",
             f"  accuracy             {acc}"]
    if r.energy is None:
        lines.append("  energy / inference   not priced (neurosim.costing.energy.attach_energy)")
    else:
        lines += _energy_lines(r.energy)
    if lat.size:
        spread = f"  (min {fmt_time(lat.min())}, max {fmt_time(lat.max())})" if lat.size > 1 \
            else ""
        lines.append(f"  latency / inference  {fmt_time(float(lat.mean()))}{spread}")
    top = top_consumers(r)
    if top:
        rows = [{"node": t["node"], "energy / inference": fmt_energy(t["energy_j"]),
                 "% of dynamic": "n/a" if t["share"] is None else f"{100 * t['share']:.1f}%",
                 "largest part": _label(t["largest_part"])}
                for t in top]
        lines += ["", f"top {len(top)} energy consumers (dynamic energy per inference):",
                  *("  " + ln for ln in format_table(rows).splitlines())]
    lines += ["", "full data: .to_dict(), .to_frame() (one row per node), .counts, .energy"]
    return "\n".join(lines)


def short_repr(result) -> str:
    """One line: what ran, on how many inputs, and the headline figures."""
    r = result
    acc = "None" if r.accuracy is None else f"{r.accuracy:.4g}"
    e = "None" if r.energy is None else fmt_energy(r.energy["per_inference"]["total_j"])
    lat = fmt_time(float(np.mean(r.latency_s))) if len(r.latency_s) else "None"
    return (f"<RunResult {r.model} on {r.chip}/{r.mode}: n={r.n}, accuracy={acc}, "
            f"energy/inference={e}, latency/inference={lat}>")


def node_rows(result) -> list[dict]:
    """One dict per graph node, in the result's node order: spikes per inference, every
    operation count per inference and, when priced, dynamic energy per inference (J) in all
    and by energy category."""
    r = result
    n = max(r.n, 1)
    e = r.energy
    nodes = list(dict.fromkeys([*r.counts, *r.spike_counts]))
    rows = []
    for node in nodes:
        row = {"node": node}
        sc = r.spike_counts.get(node)
        row["spikes_per_inference"] = float(np.sum(sc)) / n if sc is not None else 0.0
        c = r.counts.get(node, {})
        for cat in CATEGORIES:
            row[f"{cat}_per_inference"] = int(c.get(cat, 0)) / n
        if e is not None:
            row["energy_per_inference_j"] = e["per_inference"]["by_node_j"].get(node, 0.0)
            for cat, j in (e.get("by_node_category_j", {}).get(node) or {}).items():
                row[f"{cat}_per_inference_j"] = j / n
        rows.append(row)
    return rows


__all__ = ["summary", "short_repr", "node_rows", "top_consumers"]
