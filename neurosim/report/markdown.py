"""Run reports: ``result.json`` (everything), CSV tables, plots and a readable ``report.md``.

``write_report`` gathers the runs, their energy breakdowns, the paper-mode estimate, mappings
and metadata into ``result.json`` (sorted keys; wall-clock times only under ``wall_s``, which
nothing rendered reads) and then calls ``render_report``, which draws every other file from
``result.json`` alone. Re-rendering a directory therefore reproduces ``report.md``, the CSVs and
the PNGs byte for byte (``neurosim report RUN_DIR``).

Files:
    result.json               runs (RunResult.to_dict with energy), comparison, paper mode, ...
    report.md                 the summary a person reads
    energy_by_layer.csv       per run and node: layer, type, energy per inference by category
    energy_by_core.csv        per run and core: energy per inference by category
    energy_by_category.csv    per run and category: total and per inference, share
    spikes_by_layer.csv       per run and population: neurons, spikes per inference, rate
    comparison.csv            one row per run (chip, mode, accuracy, energy, latency, ...)
    paper_vs_event.csv        per run and layer: paper SOPs/MACs, the terms of the difference
    plots/*.png
"""
from __future__ import annotations

from importlib import metadata

import csv
import io
import json
import platform
from collections import Counter
from pathlib import Path

import numpy as np

from neurosim.costing.energy import CATEGORY_LABELS, ENERGY_CATEGORIES
from neurosim.ir.units import fmt_energy, fmt_time

FORMAT = "neurosim-report/1"
RESULT = "result.json"


# ----------------------------------------------------------------------------- building
def _versions() -> dict:
    import matplotlib
    import numba
    import simpy
    import torch

    return {"neurosim": metadata.version("neurosim"), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "numba": numba.__version__,
            "matplotlib": matplotlib.__version__, "simpy": simpy.__version__}


def _mapping_dict(m) -> dict:
    return m if isinstance(m, dict) else m.to_dict()


def build_record(results, *, graph, model_name: str, workload: str, chips, paper=None,
                 mapping_reports: dict | None = None, extra: dict | None = None) -> dict:
    """The JSON-ready content of ``result.json`` (see ``write_report``)."""
    from neurosim.run.compare import Comparison, run_label
    from neurosim.costing.paper import compare_paper_event
    from neurosim.report.graph_table import graph_rows, totals

    cmp = results if isinstance(results, Comparison) else Comparison.from_results(graph, results)
    runs, wall = [], {}
    for r in cmp.results:
        if r.energy is None:
            raise ValueError(f"run {run_label(r)} has no energy: call neurosim.costing.energy."
                             "attach_energy(result, chip) first")
        d = r.to_dict()
        wall[run_label(r)] = d["stats"].pop("wall_s", None)
        d["label"] = run_label(r)
        runs.append(d)
    meta = {k: v for k, v in graph.meta.items() if k not in ("fx_map", "folded")}
    rec = {
        "format": FORMAT, "model": model_name, "workload": workload,
        "n": max((r.n for r in cmp.results), default=0),
        "chips": [c if isinstance(c, str) else c.name for c in chips],
        "graph": {"meta": meta, "totals": totals(graph), "nodes": graph_rows(graph)},
        "runs": runs,
        "comparison": {"rows": cmp.table(), "reference_source": cmp.reference_source},
        "mappings": {c: _mapping_dict(m) for c, m in cmp.mappings.items()},
        "mapping_reports": {c: _mapping_dict(m) for c, m in (mapping_reports or {}).items()},
        "paper": None, "paper_vs_event": {},
        "versions": _versions(), "extra": extra or {}, "wall_s": wall,
    }
    if paper is not None:
        rec["paper"] = paper.to_dict()
        for r in cmp.results:                # runs on the paper estimate's inputs only
            if r.n == paper.n:
                rec["paper_vs_event"][run_label(r)] = compare_paper_event(paper, r,
                                                                          graph).to_dict()
    return json.loads(json.dumps(rec, sort_keys=True))      # plain types only


def write_report(out_dir, results, *, graph, model_name: str, workload: str, chips,
                 paper=None, mapping_reports: dict | None = None,
                 extra: dict | None = None) -> Path:
    """Write ``result.json`` and render the report into ``out_dir`` (created). ``results``: a
    ``Comparison`` or a list of RunResults with energy attached; ``paper``: a
    ``PaperEstimate`` built with ``graph=graph`` on the same inputs; ``mapping_reports``: chip
    name -> Mapping (e.g. non-strict mappings on real chips the model does not fit)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec = build_record(results, graph=graph, model_name=model_name, workload=workload,
                       chips=chips, paper=paper, mapping_reports=mapping_reports, extra=extra)
    (out / RESULT).write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    render_report(out)
    return out


def load_record(run_dir) -> dict:
    p = Path(run_dir) / RESULT
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: {run_dir} is not a neurosim run directory "
                                f"(write one with `neurosim simulate ... --out DIR` or "
                                f"`neurosim compare ... --out DIR`)")
    try:
        rec = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        got = rec.get("format") if isinstance(rec, dict) else None
        raise ValueError(f"{p}: 'format' is {got!r}, expected {FORMAT!r}")
    return rec


# ----------------------------------------------------------------------------- derived data
def _sizes(rec) -> dict[str, int]:
    return {r["node"]: r["neurons"] for r in rec["graph"]["nodes"]}


def _types(rec) -> dict[str, str]:
    return {r["node"]: r["type"] for r in rec["graph"]["nodes"]}


def _layer_of(rec, chip: str) -> dict[str, str]:
    m = rec["mappings"].get(chip, {})
    return {n: L for L, nodes in m.get("layer_nodes", {}).items() for n in nodes}


def _layer_order(rec, chip: str) -> list[str]:
    """Mapped layers in network order (first appearance of their nodes in graph order)."""
    lo = _layer_of(rec, chip)
    return list(dict.fromkeys(lo[r["node"]] for r in rec["graph"]["nodes"] if r["node"] in lo))


def firing_rates(rec, run) -> list[tuple[str, float]]:
    """(population, spikes per neuron per time step) in network order."""
    sizes = _sizes(rec)
    order = [r["node"] for r in rec["graph"]["nodes"]]
    out = []
    for n in order:
        sc = run["spike_counts"].get(n)
        if sc is None or not sizes.get(n):
            continue
        a = np.asarray(sc, dtype=float)                     # [B, T]
        out.append((n, float(a.sum() / (a.size * sizes[n]))))
    return out


def layer_energy(rec, run) -> list[tuple[str, dict]]:
    """Dynamic energy per inference by category, summed over each mapped layer's nodes."""
    n = run["n"]
    layer_of = _layer_of(rec, run["chip"])
    acc: dict[str, dict] = {}
    for node, cats in run["energy"]["by_node_category_j"].items():
        L = layer_of.get(node, node)
        d = acc.setdefault(L, {})
        for c, v in cats.items():
            d[c] = d.get(c, 0.0) + v / n
    order = _layer_order(rec, run["chip"]) or list(acc)
    return [(L, acc[L]) for L in order if L in acc and sum(acc[L].values()) > 0]


def _runs(rec) -> list[dict]:
    return rec["runs"]


def _primary(rec) -> dict | None:
    for r in rec["runs"]:
        if r["mode"] in ("sync", "async-windowed"):
            return r
    return rec["runs"][0] if rec["runs"] else None


def _slug(label: str) -> str:
    return label.replace("/", "_")


# ----------------------------------------------------------------------------- CSV
def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([repr(v) if isinstance(v, float) else v for v in r])
    path.write_text(buf.getvalue())


def write_csvs(rec: dict, out: Path) -> list[Path]:
    cats = list(ENERGY_CATEGORIES)
    dyn = [c for c in cats if c != "static"]
    types = _types(rec)
    paths = []
    rows = []
    for run in _runs(rec):
        e, n = run["energy"], run["n"]
        lo = _layer_of(rec, run["chip"])
        for node, d in e["by_node_category_j"].items():
            rows.append([run["label"], node, lo.get(node, ""), types.get(node, ""),
                         e["per_inference"]["by_node_j"][node]]
                        + [d.get(c, 0.0) / n for c in dyn])
    paths.append(out / "energy_by_layer.csv")
    _csv(paths[-1], ["run", "node", "layer", "type", "energy_per_inference_j"]
         + [f"{c}_j" for c in dyn], rows)
    rows = []
    for run in _runs(rec):
        e, n = run["energy"], run["n"]
        for core, d in sorted(e["by_core_category_j"].items(), key=lambda kv: int(kv[0])):
            rows.append([run["label"], int(core), e["per_inference"]["by_core_j"][core]]
                        + [d.get(c, 0.0) / n for c in dyn])
    paths.append(out / "energy_by_core.csv")
    _csv(paths[-1], ["run", "core", "energy_per_inference_j"] + [f"{c}_j" for c in dyn], rows)
    rows = []
    for run in _runs(rec):
        e = run["energy"]
        for c in cats:
            tot = e["total_j"]
            rows.append([run["label"], c, e["by_category_j"][c],
                         e["per_inference"]["by_category_j"][c],
                         e["by_category_j"][c] / tot if tot else 0.0])
    paths.append(out / "energy_by_category.csv")
    _csv(paths[-1], ["run", "category", "energy_j", "energy_per_inference_j", "share"], rows)
    rows = []
    sizes = _sizes(rec)
    for run in _runs(rec):
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


# ----------------------------------------------------------------------------- plots
def render_plots(rec: dict, out: Path) -> list[Path]:
    from neurosim.report import plots as P

    pdir = out / "plots"
    made = []
    model = rec["model"]
    runs = _runs(rec)
    for run in runs:
        slug, label = _slug(run["label"]), run["label"]
        made.append(P.energy_by_layer(layer_energy(rec, run), pdir / f"energy_by_layer_{slug}.png",
                                      title=f"{model} on {label}: energy per layer",
                                      static_j=run["energy"]["per_inference"]["static_j"]))
        tl = run["timeline"] or {}
        if run["mode"] == "sync":
            sizes = _sizes(rec)
            spikes = [(n, (np.asarray(run["spike_counts"][n], float).mean(axis=0)
                           / sizes[n]).tolist()) for n, _ in firing_rates(rec, run)]
            made.append(P.sync_timeline(tl.get("tick_s", []), tl.get("core_busy_cycles", {}),
                                        spikes, pdir / f"timeline_{slug}.png",
                                        title=f"{model} on {label}: core activity per tick "
                                              "(first input)",
                                        ticks_per_step=tl.get("ticks_per_step", 1)))
        elif tl.get("items"):
            made.append(P.async_timeline(tl["items"], pdir / f"timeline_{slug}.png",
                                         title=f"{model} on {label}: work items per core "
                                               "(first input)"))
        fifo = run["stats"].get("fifo_occupancy")
        if fifo:
            made.append(P.fifo_occupancy(fifo, pdir / f"fifo_{slug}.png",
                                         title=f"{model} on {label}: input FIFO occupancy, "
                                               "first input",
                                         depth=run["stats"].get("fifo_depth")))
    made.append(P.energy_by_category([(r["label"], r["energy"]["per_inference"]["by_category_j"])
                                      for r in runs], pdir / "energy_by_category.png",
                                     title=f"{model}: energy per inference by category"))
    prim = _primary(rec)
    if prim is not None:
        made.append(P.firing_rates(firing_rates(rec, prim), pdir / "firing_rates.png",
                                   title=f"{model}: firing rate per population "
                                         f"({prim['label']}, {prim['n']} inputs)"))
    made.append(P.run_comparison(rec["comparison"]["rows"], pdir / "comparison.png",
                                 title=f"{model} on {rec['workload']}: runs side by side"))
    if prim is not None and prim["label"] in rec["paper_vs_event"]:
        made.append(P.paper_vs_event(rec["paper_vs_event"][prim["label"]]["rows"],
                                     pdir / "paper_vs_event.png",
                                     title=f"{model}: paper convention vs event level "
                                           f"({prim['label']})"))
    return made


# ----------------------------------------------------------------------------- markdown
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _md_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Markdown pipe table; numbers right-aligned."""
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])
    num = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
               for r in rows) for c in columns]

    def cell(v):
        if isinstance(v, float):
            if v == 0:
                return "0"
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v).replace("|", "\\|")
    out = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---:" if n else "---" for n in num) + "|"]
    out += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def summarise_violations(mapping: dict, limit: int = 3) -> list[str]:
    """Human lines: violations grouped by kind, with up to ``limit`` examples each."""
    vs = mapping.get("violations", [])
    kinds = Counter(v["kind"] for v in vs)
    lines = []
    for kind, k in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        ex = [v for v in vs if v["kind"] == kind][:limit]
        lines.append(f"{kind} ({k}): " + "; ".join(v["message"] for v in ex)
                     + (f"; ... {k - len(ex)} more" if k > len(ex) else ""))
    return lines


def render_markdown(rec: dict, plots: list[Path], out: Path) -> str:
    model, runs = rec["model"], _runs(rec)
    g = rec["graph"]
    gt, gm = g["totals"], g["meta"]
    L = [f"# neurosim report: {model}", ""]
    L += [f"- **Model**: {model} ({gm.get('family') or '?'}): {gt['nodes']} graph nodes, "
          f"{gt['neurons']:,} neurons, {gt['weights']:,} weights ({gm.get('weight_bits')}-bit), "
          f"T = {gt['T']}, RepConv {gm.get('repconv')}, SSC {'on' if gm.get('ssc') else 'off'}",
          f"- **Workload**: {rec['workload']}, n = {rec['n']} inputs"
          + ("" if len({r["n"] for r in runs}) <= 1 else
             " (" + ", ".join(f"{r['label']}: first {r['n']}" for r in runs if r["n"] != rec["n"])
             + ")"),
          f"- **Chips**: {', '.join(rec['chips'])}",
          f"- **Runs**: {', '.join(r['label'] for r in runs)}", ""]
    # results
    L += ["## Results per run", ""]
    rows = []
    for r in rec["comparison"]["rows"]:
        rows.append({"run": f"{r['chip']}/{r['mode']}", "n": r["n"],
                     "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
                     "agreement": f"{r['agreement']:.3f}",
                     "energy / inference": fmt_energy(r["energy_per_inference_j"]),
                     "dynamic": fmt_energy(r["dynamic_per_inference_j"]),
                     "static": fmt_energy(r["static_per_inference_j"]),
                     "latency / inference": fmt_time(r["latency_per_inference_s"]),
                     "spikes / inf": round(r["spikes_per_inference"]),
                     "ACs / inf": round(r["ac_per_inference"]),
                     "NoC hops / inf": round(r["noc_hops_per_inference"]),
                     "stalls": r["stalls"], "drops": r["drops"]})
    L += [_md_table(rows), "",
          f"Agreement = fraction of inputs whose prediction equals the exact one "
          f"(reference: {rec['comparison']['reference_source']}). Energy = the chip's energy "
          "table x the counted actions; static = the table's static power x latency.", ""]
    # energy by category
    L += ["## Energy per inference by category", ""]
    crow = []
    for c in ENERGY_CATEGORIES:
        row = {"category": CATEGORY_LABELS[c]}
        for r in runs:
            e = r["energy"]["per_inference"]
            tot = e["total_j"]
            v = e["by_category_j"][c]
            row[r["label"]] = f"{fmt_energy(v)} ({_pct(v / tot) if tot else '-'})"
        crow.append(row)
    crow.append({"category": "**total**",
                 **{r["label"]: f"**{fmt_energy(r['energy']['per_inference']['total_j'])}**"
                    for r in runs}})
    L += [_md_table(crow), "",
          "Energy tables: " + ", ".join(f"{r['label']}: `{r['energy']['table']}`" for r in runs),
          ""]
    # top consumers
    L += ["## Top-10 energy consumers (dynamic energy per inference)", ""]
    types = _types(rec)
    for r in runs:
        e = r["energy"]
        by = e["per_inference"]["by_node_j"]
        top = sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        tot = e["per_inference"]["total_j"]
        lo = _layer_of(rec, r["chip"])
        rows = []
        for node, v in top:
            cats = e["by_node_category_j"][node]
            main = max(cats.items(), key=lambda kv: (kv[1], kv[0]))[0] if cats else ""
            rows.append({"node": node, "layer": lo.get(node, ""), "type": types.get(node, ""),
                         "energy / inf": fmt_energy(v), "share of total": _pct(v / tot),
                         "largest part": CATEGORY_LABELS.get(main, main)})
        L += [f"**{r['label']}**", "", _md_table(rows), ""]
    # paper mode
    if rec["paper"]:
        p = rec["paper"]
        L += ["## Paper convention vs event level", "",
              f"Paper mode (seed papers' convention, `{p['table']}` table, {p['arithmetic']}: "
              f"E_AC {p['e_ac_pj']} pJ, E_MAC {p['e_mac_pj']} pJ) on the float model: "
              f"**{fmt_energy(p['energy_per_inference_j'])} per inference** "
              f"({p['sops_per_inference']:,.0f} SOPs + {p['macs_per_inference']:,.0f} MACs).", ""]
        L += [f"- {note}" for note in p["notes"]] + [""]
        prim = _primary(rec)
        pe = rec["paper_vs_event"].get(prim["label"]) if prim else None
        if pe:
            en = pe["energy"]
            L += [f"Event-level counts of {prim['label']} priced at the paper's costs: "
                  f"{fmt_energy(en['event_at_paper_costs_j'])} per inference; on the chip "
                  f"(`{en.get('chip_table')}`): {fmt_energy(en.get('chip_j', 0.0))}, of which "
                  f"{fmt_energy(en.get('chip_ignored_by_paper_total_j', 0.0))} is what the "
                  "paper ignores (" + ", ".join(
                      f"{CATEGORY_LABELS[c]} {fmt_energy(v)}"
                      for c, v in en.get("chip_ignored_by_paper_j", {}).items() if v) + ").", ""]
            t = pe["totals"]
            L += [f"Operations per inference, all counted layers: paper {t['paper']:,.0f}, "
                  f"event {t['event']:,.0f} = paper {t['d_quantization']:+,.1f} (quantization) "
                  f"{t['d_border_stride']:+,.1f} (border/stride) {t['d_products']:+,.1f} "
                  f"(spike-product coincidences) {t['d_first_layer']:+,.1f} (first layer every "
                  f"time step) {t['d_other']:+,.1f} (other).", ""]
            rows = [{"layer": r["layer"], "op": r["op_type"],
                     "rate (float)": "-" if r["rate_float"] is None else f"{r['rate_float']:.3f}",
                     "paper": r["paper"], "quantization": r["d_quantization"],
                     "border/stride": r["d_border_stride"], "products": r["d_products"],
                     "first layer": r["d_first_layer"], "other": r["d_other"],
                     "event": r["event"]} for r in pe["rows"]]
            L += [f"Per layer ({prim['label']}, operations per inference):", "",
                  _md_table(rows), ""]
    # mapping
    L += ["## Mapping", ""]
    for chip, m in rec["mappings"].items():
        t = m["totals"]
        L += [f"- **{chip}** ({t['placement']} placement): {t['cores_used']} of {t['n_cores']} "
              f"cores, {t['layers']} layers, neuron use {_pct(t['neuron_util'])}, memory use "
              f"{_pct(t['memory_util'])} of the used cores, hops per spike mean "
              f"{t['hops_mean']:.2f} max {t['hops_max']}, "
              + ("fits" if t["fits"] else f"{t['violations']} violations")]
    L += [""]
    for chip, m in rec["mapping_reports"].items():
        t = m["totals"]
        if t["fits"]:
            L += [f"- **{chip}**: fits ({t['cores_used']} of {t['n_cores']} cores)"]
            continue
        L += [f"**{chip}: the model does not fit** ({t['violations']} violations; best-effort "
              f"mapping needs {t['cores_used']} cores of {t['n_cores']}):", ""]
        L += [f"- {line}" for line in summarise_violations(m)] + [""]
    # comparison
    L += ["## Sync vs async", ""]
    rows = [{"run": f"{r['chip']}/{r['mode']}", "n": r["n"],
             "energy / inf": fmt_energy(r["energy_per_inference_j"]),
             "latency / inf": fmt_time(r["latency_per_inference_s"]),
             "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
             "agreement": f"{r['agreement']:.3f}",
             "max logit diff": f"{r['max_logit_diff']:.3g}",
             "stalls": r["stalls"], "drops": r["drops"]} for r in rec["comparison"]["rows"]]
    L += [_md_table(rows), ""]
    for r in runs:
        s = r["stats"]
        if r["mode"].startswith("async"):
            L += [f"- {r['label']}: {s.get('events_in', 0):,} events in, "
                  f"{s.get('stalls', 0):,} stalls ({fmt_time(s.get('stall_s', 0.0))} of stall time "
                  f"summed over the stalled batches of all {r['n']} inputs), "
                  f"{s.get('drops', 0):,} dropped, peak FIFO {s.get('max_fifo_occupancy', 0)} "
                  f"of {s.get('fifo_depth', '?')} events"]
        elif "ticks_per_inference" in s:
            L += [f"- {r['label']}: {s['ticks_per_inference']} ticks per inference at "
                  f"{s['clock_hz'] / 1e6:g} MHz, {s.get('saturations', 0)} saturations"]
    L += [""]
    # plots and files
    L += ["## Plots", ""]
    for p in plots:
        rel = p.relative_to(out).as_posix()
        L += [f"![{p.stem}]({rel})", ""]
    L += ["## Files", "",
          "`result.json` (everything, including per-node counts), `energy_by_layer.csv`, "
          "`energy_by_core.csv`, `energy_by_category.csv`, `spikes_by_layer.csv`, "
          "`comparison.csv`" + (", `paper_vs_event.csv`" if rec["paper_vs_event"] else "")
          + ", `plots/`. Re-render with `neurosim report " + "RUN_DIR`.", "",
          "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(rec["versions"].items())), ""]
    return "\n".join(L)


def render_report(run_dir) -> Path:
    """(Re-)write report.md, the CSVs and the plots of ``run_dir`` from its result.json."""
    out = Path(run_dir)
    rec = load_record(out)
    write_csvs(rec, out)
    plots = render_plots(rec, out)
    (out / "report.md").write_text(render_markdown(rec, plots, out))
    return out / "report.md"


__all__ = ["write_report", "render_report", "build_record", "load_record",
           "summarise_violations", "firing_rates", "layer_energy", "FORMAT"]
