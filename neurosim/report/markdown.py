"""Run reports: ``result.json`` (everything), CSV tables, plots and a readable ``report.md``.

``write_report`` gathers the runs, their energy breakdowns, the paper-mode estimate, mappings
and metadata into ``result.json`` (sorted keys, no wall-clock time: it is byte-identical
across runs of the same inputs) and the runs' wall-clock seconds into ``timing.json``, then
calls ``render_report``, which checks ``result.json`` against its schema
(:mod:`neurosim.report.record_schema`) and draws every other file from it alone. Re-rendering a directory therefore reproduces ``report.md``, the CSVs and
the PNGs byte for byte (``neurosim report RUN_DIR``).

Files:
    result.json               runs (RunResult.to_dict with energy), comparison, paper mode, ...
    timing.json               wall-clock seconds per run (the only non-deterministic file)
    report.md                 the summary a person reads
    report.html               the same, one self-contained file (plots embedded) for sharing
    energy_by_layer.csv       per run and node: layer, type, energy per inference by category
    energy_by_core.csv        per run and core: energy per inference by category, static
                              included, and a row for the uncore's static energy
    energy_by_category.csv    per run and category: total and per inference, share
    spikes_by_layer.csv       per run and population: neurons, spikes per inference, rate
    comparison.csv            one row per run (chip, mode, accuracy, energy, latency, ...)
    paper_vs_event.csv        per run and layer: paper SOPs/MACs, the terms of the difference
    plots/*.png
"""
from __future__ import annotations

from importlib import metadata

import json
import math
import platform
from collections import Counter
from pathlib import Path

import numpy as np

from neurosim.costing.energy import CATEGORY_LABELS, ENERGY_CATEGORIES
from neurosim.costing.static import POLICIES
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
from neurosim.report.csv_tables import write_csvs
from neurosim.report.record_schema import FORMAT, RecordError, validate_record
from neurosim.report.record import (firing_rates, layer_energy, layer_of_nodes, node_sizes,
                                    node_types, primary_run, runs_of, slug)

RESULT = "result.json"
TIMING = "timing.json"                 # wall-clock times, apart so result.json is deterministic
TIMING_FORMAT = "neurosim-timing/1"


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
    runs = []
    for r in cmp.results:
        if r.energy is None:
            raise ValueError(f"run {run_label(r)} has no energy: call neurosim.costing.energy."
                             "attach_energy(result, chip) first")
        d = r.to_dict()
        d["stats"].pop("wall_s", None)                   # wall-clock time: timing.json only
        d["label"] = run_label(r)
        runs.append(d)
    meta = {k: v for k, v in graph.meta.items() if k not in ("fx_map", "folded")}
    rec = {
        "format": FORMAT, "model": model_name, "workload": workload,
        "n": max((r.n for r in cmp.results), default=0),
        "chips": [c if isinstance(c, str) else c.name for c in chips],
        "graph": {"meta": meta, "totals": totals(graph), "nodes": graph_rows(graph)},
        "runs": runs,
        "comparison": {"rows": cmp.table(), "ratios": cmp.ratios(),
                       "reference_source": cmp.reference_source},
        "mappings": {c: _mapping_dict(m) for c, m in cmp.mappings.items()},
        "mapping_reports": {c: _mapping_dict(m) for c, m in (mapping_reports or {}).items()},
        "paper": None, "paper_vs_event": {},
        "versions": _versions(), "extra": extra or {},
    }
    if paper is not None:
        rec["paper"] = paper.to_dict()
        for r in cmp.results:                # runs on the paper estimate's inputs only
            if r.n == paper.n:
                rec["paper_vs_event"][run_label(r)] = compare_paper_event(paper, r,
                                                                          graph).to_dict()
    return json.loads(json.dumps(rec, sort_keys=True))      # plain types only


def build_timing(results) -> dict:
    """The content of ``timing.json``: wall-clock seconds of each run (``stats["wall_s"]``),
    kept out of ``result.json`` so that file is byte-identical across runs."""
    from neurosim.run.compare import Comparison, run_label
    rs = results.results if isinstance(results, Comparison) else results
    return {"format": TIMING_FORMAT,
            "wall_s": {run_label(r): r.stats.get("wall_s") for r in rs}}


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
    (out / TIMING).write_text(json.dumps(build_timing(results), indent=1, sort_keys=True) + "\n")
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
        rec = json.loads(p.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise RecordError(f"{p}: not valid JSON in UTF-8 ({e})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        got = rec.get("format") if isinstance(rec, dict) else None
        raise RecordError(f"{p}: 'format' is {got!r}, expected {FORMAT!r}")
    return validate_record(rec, p)


# ----------------------------------------------------------------------------- plots
def render_plots(rec: dict, out: Path) -> list[Path]:
    from neurosim.report import plots as P
    from neurosim.report.timeline_data import core_layers

    pdir = out / "plots"
    made = []
    model = rec["model"]
    runs = runs_of(rec)
    for run in runs:
        sl, label = slug(run["label"]), run["label"]
        made.append(P.energy_by_layer(layer_energy(rec, run),
                                      pdir / f"energy_by_layer_{sl}.png",
                                      title=f"{model} on {label}: energy per layer",
                                      static_j=run["energy"]["per_inference"]["static_j"]))
        tl = run["timeline"] or {}
        if run["mode"] == "sync":
            sizes = node_sizes(rec)
            spikes = [(n, (np.asarray(run["spike_counts"][n], float).mean(axis=0)
                           / sizes[n]).tolist()) for n, _ in firing_rates(rec, run)]
            made.append(P.sync_timeline(tl.get("tick_s", []), tl.get("core_busy_cycles", {}),
                                        spikes, pdir / f"timeline_{sl}.png",
                                        title=f"{model} on {label}: core activity per tick "
                                              "(first input)",
                                        ticks_per_step=tl.get("ticks_per_step", 1),
                                        core_labels=core_layers(rec["mappings"].get(run["chip"]))))
        elif tl.get("items"):
            made.append(P.async_timeline(tl["items"], pdir / f"timeline_{sl}.png",
                                         title=f"{model} on {label}: work items per core "
                                               "(first input)",
                                         core_labels=core_layers(rec["mappings"].get(run["chip"]))))
        fifo = run["stats"].get("fifo_occupancy")
        if fifo:
            made.append(P.fifo_occupancy(fifo, pdir / f"fifo_{sl}.png",
                                         title=f"{model} on {label}: input FIFO occupancy, "
                                               "first input",
                                         depth=run["stats"].get("fifo_depth")))
    made.append(P.energy_by_category([(r["label"], r["energy"]["per_inference"]["by_category_j"])
                                      for r in runs], pdir / "energy_by_category.png",
                                     title=f"{model}: energy per inference by category"))
    prim = primary_run(rec)
    if prim is not None:
        made.append(P.firing_rates(firing_rates(rec, prim), pdir / "firing_rates.png",
                                   title=f"{model}: firing rate per population "
                                         f"({prim['label']}, {prim['n']} inputs)"))
    made.append(P.run_comparison(rec["comparison"]["rows"], pdir / "comparison.png",
                                 title=f"{model} on {rec['workload']}: runs side by side "
                                       f"(the same {rec['n']} inputs each)"))
    if prim is not None and prim["label"] in rec["paper_vs_event"]:
        made.append(P.paper_vs_event(rec["paper_vs_event"][prim["label"]]["rows"],
                                     pdir / "paper_vs_event.png",
                                     title=f"{model}: paper convention vs event level "
                                           f"({prim['label']})"))
    return made


# ----------------------------------------------------------------------------- markdown
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _share(part: float, total: float) -> str:
    """``part`` as a percentage of ``total``; "n/a" when the total is zero (a zero energy
    table, an empty run) or not finite: never nan, inf or a division by zero."""
    return _pct(part / total) if math.isfinite(total) and total > 0 else "n/a"


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


def _x(v) -> str:
    return "n/a" if v is None else f"{v:.3g}x"


def _static_section(rec: dict) -> list[str]:
    """How every run's static energy was priced, and what it is under each policy."""
    rows = []
    for r in runs_of(rec):
        st = r["energy"].get("static") or {}
        alt = st.get("by_policy_per_inference_j") or {}
        rows.append({"run": r["label"], "n": r["n"], "gating": st.get("policy") or "-",
                     "cores drawing static": "-" if st.get("cores_on") is None
                     else st["cores_on"],
                     "static / inf": fmt_energy(r["energy"]["per_inference"]["static_j"]),
                     **{f"if {p}": "n/a" if alt.get(p) is None else fmt_energy(alt[p])
                        for p in POLICIES},
                     "how": st.get("basis", "")})
    return ["## Static power", "",
            "Static energy per inference under the policy used (*gating*), and under each "
            "policy (none: every core leaks for the whole run; unused: cores with no mapped "
            "part are off; idle: a core leaks only while it has work, paying a wake-up "
            "energy). The chips' per-core leakage is an estimate (chips/*.toml [power]).", "",
            _md_table(rows), ""]


def _ratio_section(rec: dict) -> list[str]:
    """The sync/async energy ratios with their parts and the policy sensitivity."""
    ratios = rec["comparison"].get("ratios") or []
    if not ratios:
        return []
    rows = [{"sync / async": f"{r['sync']} / {r['async']}", "n": r["n"],
             "sync dynamic + static": f"{fmt_energy(r['sync_dynamic_j'])} + "
                                      f"{fmt_energy(r['sync_static_j'])}",
             "async dynamic + static": f"{fmt_energy(r['async_dynamic_j'])} + "
                                       f"{fmt_energy(r['async_static_j'])}",
             "ratio": _x(r["ratio"]), "dynamic only": _x(r["dynamic_ratio"]),
             **{f"gating {p}": _x(r["ratio_by_policy"].get(p)) for p in POLICIES}}
            for r in ratios]
    return ["Energy per inference, sync over async, on the same inputs: under each chip's "
            "default gating (*ratio*), dynamic energy alone, and with both chips under each "
            "power-gating policy.", "", _md_table(rows), ""]


def render_markdown(rec: dict, plots: list[Path], out: Path) -> str:
    model, runs = rec["model"], runs_of(rec)
    g = rec["graph"]
    gt, gm = g["totals"], g["meta"]
    L = [f"# neurosim report: {model}", ""]
    L += [f"- **Model**: {model} ({gm.get('family') or '?'}): {gt['nodes']} graph nodes, "
          f"{gt['neurons']:,} neurons, {gt['weights']:,} weights ({gm.get('weight_bits')}-bit), "
          f"T = {gt['T']}, RepConv {gm.get('repconv')}, SSC {'on' if gm.get('ssc') else 'off'}",
          f"- **Workload**: {rec['workload']}, n = {rec['n']} inputs, the same in every run",
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
                     "gating": r.get("power_gating") or "-",
                     "power": fmt_power(r.get("average_power_w")),
                     "latency / inference": fmt_time(r["latency_per_inference_s"]),
                     "spikes / inf": round(r["spikes_per_inference"]),
                     "ACs / inf": round(r["ac_per_inference"]),
                     "NoC hops / inf": round(r["noc_hops_per_inference"]),
                     "stalls": r["stalls"], "drops": r["drops"]})
    L += [_md_table(rows), "",
          f"Agreement = fraction of inputs whose prediction equals the exact one "
          f"(reference: {rec['comparison']['reference_source']}). Energy = the chip's energy "
          "table x the counted actions; static = the chip's static power model (per-core "
          "leakage and uncore, under the power-gating policy in *gating*) over the latency; "
          "power = energy / latency.", ""]
    # energy by category
    L += _static_section(rec)
    L += ["## Energy per inference by category", "",
          f"Per inference, n = {rec['n']} inputs in every run.", ""]
    crow = []
    for c in ENERGY_CATEGORIES:
        row = {"category": CATEGORY_LABELS[c]}
        for r in runs:
            e = r["energy"]["per_inference"]
            tot = e["total_j"]
            v = e["by_category_j"][c]
            row[r["label"]] = f"{fmt_energy(v)} ({_share(v, tot)})"
        crow.append(row)
    crow.append({"category": "**total**",
                 **{r["label"]: f"**{fmt_energy(r['energy']['per_inference']['total_j'])}**"
                    for r in runs}})
    L += [_md_table(crow), "",
          "Energy tables: " + ", ".join(f"{r['label']}: `{r['energy']['table']}`" for r in runs),
          ""]
    # top consumers
    L += ["## Top-10 energy consumers (dynamic energy per inference)", ""]
    types = node_types(rec)
    for r in runs:
        e = r["energy"]
        by = e["per_inference"]["by_node_j"]
        top = sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        tot = e["per_inference"]["total_j"]
        lo = layer_of_nodes(rec, r["chip"])
        rows = []
        for node, v in top:
            cats = e["by_node_category_j"][node]
            main = max(cats.items(), key=lambda kv: (kv[1], kv[0]))[0] if cats and v > 0 else ""
            rows.append({"node": node, "layer": lo.get(node, ""), "type": types.get(node, ""),
                         "energy / inf": fmt_energy(v), "share of total": _share(v, tot),
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
        prim = primary_run(rec)
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
    L += _ratio_section(rec)
    rows = [{"run": f"{r['chip']}/{r['mode']}", "n": r["n"],
             "energy / inf": fmt_energy(r["energy_per_inference_j"]),
             "dynamic": fmt_energy(r["dynamic_per_inference_j"]),
             "static": fmt_energy(r["static_per_inference_j"]),
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
    """(Re-)write report.md, report.html (self-contained), the CSVs and the plots of
    ``run_dir`` from its result.json."""
    from neurosim.report.html import write_html
    out = Path(run_dir)
    rec = load_record(out)
    write_csvs(rec, out)
    plots = render_plots(rec, out)
    md = render_markdown(rec, plots, out)
    (out / "report.md").write_text(md)
    write_html(out, md)
    return out / "report.md"


__all__ = ["write_report", "render_report", "build_record", "build_timing", "load_record",
           "RecordError", "TIMING",
           "summarise_violations", "firing_rates", "layer_energy", "FORMAT"]
