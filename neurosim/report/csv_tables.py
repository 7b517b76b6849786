"""CSV tables of a run record (``result.json``): per layer, per core, per category, spikes,
the comparison rows and paper-vs-event counts. Floats are written with ``repr`` (exact
round trip); rows follow the record's order, so re-rendering is byte-identical.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from neurosim.costing.energy import ENERGY_CATEGORIES
from neurosim.report.record import firing_rates, layer_of_nodes, node_sizes, node_types, runs_of


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([repr(v) if isinstance(v, float) else v for v in r])
    path.write_text(buf.getvalue())


def write_csvs(rec: dict, out: Path) -> list[Path]:
    """Write the CSV tables of ``rec`` into ``out``; returns their paths. energy_by_core.csv
    holds dynamic and static energy per core (and a row for the uncore's static energy)."""
    cats = list(ENERGY_CATEGORIES)
    dyn = [c for c in cats if c != "static"]
    types = node_types(rec)
    paths = []
    rows = []
    for run in runs_of(rec):
        e, n = run["energy"], run["n"]
        lo = layer_of_nodes(rec, run["chip"])
        for node, d in e["by_node_category_j"].items():
            rows.append([run["label"], node, lo.get(node, ""), types.get(node, ""),
                         e["per_inference"]["by_node_j"][node]]
                        + [d.get(c, 0.0) / n for c in dyn])
    paths.append(out / "energy_by_layer.csv")
    _csv(paths[-1], ["run", "node", "layer", "type", "energy_per_inference_j"]
         + [f"{c}_j" for c in dyn], rows)
    rows = []
    for run in runs_of(rec):
        e, n = run["energy"], run["n"]
        per = e["per_inference"]
        for core, d in sorted(e["by_core_category_j"].items(), key=lambda kv: int(kv[0])):
            rows.append([run["label"], core, per["by_core_j"][core]]
                        + [d.get(c, 0.0) / n for c in cats])
        for k, v in sorted(per.get("static_by_core_j", {}).items()):
            if not k.isdigit():                   # the uncore: static only, not a core
                rows.append([run["label"], k, v] + [v if c == "static" else 0.0 for c in cats])
    paths.append(out / "energy_by_core.csv")
    _csv(paths[-1], ["run", "core", "energy_per_inference_j"] + [f"{c}_j" for c in cats], rows)
    rows = []
    for run in runs_of(rec):
        e = run["energy"]
        for c in cats:
            tot = e["total_j"]
            rows.append([run["label"], c, e["by_category_j"][c],
                         e["per_inference"]["by_category_j"][c],
                         e["by_category_j"][c] / tot if tot else 0.0])
    paths.append(out / "energy_by_category.csv")
    _csv(paths[-1], ["run", "category", "energy_j", "energy_per_inference_j", "share"], rows)
    rows = []
    sizes = node_sizes(rec)
    for run in runs_of(rec):
        for node, rate in firing_rates(rec, run):
            tot = float(np.asarray(run["spike_counts"][node]).sum())
            rows.append([run["label"], node, sizes[node], tot / run["n"], rate])
    paths.append(out / "spikes_by_layer.csv")
    _csv(paths[-1], ["run", "node", "neurons", "spikes_per_inference",
                     "spikes_per_neuron_per_step"], rows)
    crow = rec["comparison"]["rows"]
    keys = list(crow[0]) if crow else []
    paths.append(out / "comparison.csv")
    _csv(paths[-1], keys, [[r[k] for k in keys] for r in crow])
    if rec["paper_vs_event"]:
        rows, keys = [], None
        for label, pe in rec["paper_vs_event"].items():
            for r in pe["rows"]:
                keys = keys or list(r)
                rows.append([label] + [r[k] for k in keys])
        paths.append(out / "paper_vs_event.csv")
        _csv(paths[-1], ["run"] + (keys or []), rows)
    return paths


