"""``neurosim demo``: every shipped checkpoint on the scaled chips, a report per model, a
summary with a plot, the sync/async energy ratio with its dynamic and static parts and under
each power-gating policy, and why each model does not fit the real chips (what ``make demo``
runs). Every run of a model uses the same first ``--n`` test inputs.

Models run in parallel worker processes (``--jobs``); a worker runs ``_demo_worker`` in this
module, so the module imports nothing heavy at module level.
"""
from __future__ import annotations

from pathlib import Path

from neurosim.cli.common import (DEFAULT_CHIPS, GATING_POLICIES, REAL_CHIPS, UsageError,
                                 chip_list, emit, fit_lines, fit_reports, progress_bar,
                                 run_inputs, split_size)

ALL_MODES = ["sync", "async-windowed", "async-free"]
EVENT_MODES = ["sync", "async-windowed"]    # event workloads, unless --free-on-events
FREE_SKIPPED = ("free-running mode was not run on the event workloads ({names}): it integrates "
                "every event one by one in time order, several seconds per input here; "
                "`neurosim demo --free-on-events` includes it")


def _demo_paths(args) -> dict:
    """name -> checkpoint path: the *.safetensors in --checkpoints, else the shipped ones."""
    import models
    if args.checkpoints:
        ckdir = Path(args.checkpoints)
        paths = {p.stem: p for p in sorted(ckdir.glob("*.safetensors"))}
        if not paths:
            raise FileNotFoundError(f"no *.safetensors checkpoints in {ckdir}")
    else:
        paths = {n: models.shipped_checkpoint(n) for n in models.list_shipped()}
        if not paths:
            raise FileNotFoundError(f"no shipped checkpoints under "
                                    f"{models.checkpoint.SHIPPED_DIR}; pass --checkpoints DIR")
    return paths


def _demo_plan(paths: dict, n: int, free_on_events: bool = False) -> dict:
    """Per checkpoint: its workload (from the training metadata), how many inputs its runs
    use (the same in every run) and its modes (free-running on event workloads only with
    ``free_on_events``), for the progress bar and the workers."""
    import models
    from workloads import EVENT_WORKLOADS
    plan = {}
    for name, path in paths.items():
        model = models.load_checkpoint(path)
        workload = getattr(model, "neurosim_training", {}).get("workload") or "digits"
        k = min(n, split_size(model, workload))
        events = workload in EVENT_WORKLOADS
        plan[name] = {"path": str(path), "workload": workload, "n": k, "events": events,
                      "modes": EVENT_MODES if events and not free_on_events else ALL_MODES}
    return plan


def _demo_model(name: str, item: dict, out: str, chips: list, real: list, tick=None,
                threads: int | None = None) -> dict:
    """One model of the demo (runs in a worker process when --jobs > 1): lower, compare on
    ``chips``, paper mode, fit on ``real`` chips, report. Returns plain data for the summary."""
    import numpy as np

    import models
    from neurosim.costing.paper import paper_estimate
    from neurosim.frontends.lower import lower
    from neurosim.report.markdown import write_report
    from neurosim.run.compare import compare
    from neurosim.run.inputs import load_for_model

    if threads:
        import numba
        import torch
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    model = models.load_checkpoint(item["path"])
    workload = item["workload"]
    x, y, timing = run_inputs(model, workload, item["n"])
    x_cal, _, _ = load_for_model(model, workload, "train", n=64)
    if x_cal.ndim == 5:
        x_cal = np.moveaxis(x_cal, 1, 0)
    graph = lower(model, x_cal)
    cmp = compare(graph, chips, x, y, modes=item["modes"], on_chunk=tick, **timing)
    paper = paper_estimate(model, x, graph=graph)
    reports = fit_reports(graph, real)
    d = write_report(Path(out) / name, cmp, graph=graph, model_name=name, workload=workload,
                     chips=chips, paper=paper, mapping_reports=reports,
                     extra={"command": "demo"})
    return {"name": name, "workload": workload, "dir": str(d), "rows": cmp.table(),
            "ratios": cmp.ratios(), "paper_j": paper.energy_j, "fit": {c: m.to_dict() for c, m in reports.items()}}


def _demo_worker(args_tuple):
    name, item, out, chips, real, queue = args_tuple
    return _demo_model(name, item, out, chips, real, tick=queue.put, threads=1)


def _run_parallel(plan: dict, out: Path, chips: list, real: list, jobs: int, bar) -> dict:
    """Each model in a spawned worker process (largest first); progress comes back through a
    managed queue."""
    import multiprocessing as mp
    import time
    from concurrent.futures import ProcessPoolExecutor

    results = {}
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        order = sorted(plan, key=lambda k: -plan[k]["n"])
        with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futs = {pool.submit(_demo_worker, (k, plan[k], str(out), chips, real,
                                               queue)): k for k in order}
            pending = set(futs)
            while pending:
                done = {f for f in pending if f.done()}
                for f in done:
                    results[futs[f]] = f.result()
                pending -= done
                while not queue.empty():
                    bar.update(queue.get())
                time.sleep(0.1)
    return results


def _run_all(args, plan: dict, out: Path, chips: list, real: list, jobs: int) -> dict:
    total = sum(len(it["modes"]) * it["n"] for it in plan.values())
    with progress_bar(args, total, f"demo: {len(plan)} models, {jobs} job(s)") as bar:
        if jobs > 1:
            return _run_parallel(plan, out, chips, real, jobs, bar)
        return {name: _demo_model(name, plan[name], str(out), chips, real, tick=bar.update)
                for name in plan}


def _summary_rows(names: list, results: dict) -> tuple[list[dict], list[dict]]:
    """The summary table (one row per model and run, all runs of a model on the same n inputs)
    and the energy-vs-accuracy points."""
    from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
    summary, points = [], []
    for name in names:
        res = results[name]
        for r in res["rows"]:
            run = f"{r['chip']}/{r['mode']}"
            summary.append({"model": name, "workload": res["workload"], "run": run,
                            "n": r["n"], "accuracy": round(r["accuracy"], 3),
                            "agreement": round(r["agreement"], 3),
                            "energy/inf": fmt_energy(r["energy_per_inference_j"]),
                            "dynamic": fmt_energy(r["dynamic_per_inference_j"]),
                            "static": fmt_energy(r["static_per_inference_j"]),
                            "gating": r["power_gating"] or "-",
                            "power": fmt_power(r["average_power_w"]),
                            "latency/inf": fmt_time(r["latency_per_inference_s"]),
                            "paper-mode energy/inf": fmt_energy(res["paper_j"])})
            points.append({"model": name, "run": run, "n": r["n"],
                           "energy_j": r["energy_per_inference_j"],
                           "dynamic_j": r["dynamic_per_inference_j"],
                           "accuracy": r["accuracy"]})
    return summary, points


def _x(v) -> str:
    return "n/a" if v is None else f"{v:.3g}x"


def _ratio_rows(names: list, results: dict, async_mode: str = "async-windowed") -> list[dict]:
    """Per model: the sync/async energy ratio (sync run vs the ``async_mode`` run, the same
    inputs), its dynamic and static parts, and the ratio with both chips under each policy."""
    from neurosim.ir.units import fmt_energy
    rows = []
    for name in names:
        for r in results[name]["ratios"]:
            if not r["async"].endswith(async_mode):
                continue
            rows.append({"model": name, "n": r["n"],
                         "sync dynamic + static": f"{fmt_energy(r['sync_dynamic_j'])} + "
                                                  f"{fmt_energy(r['sync_static_j'])}",
                         "async dynamic + static": f"{fmt_energy(r['async_dynamic_j'])} + "
                                                   f"{fmt_energy(r['async_static_j'])}",
                         "ratio": _x(r["ratio"]), "dynamic only": _x(r["dynamic_ratio"]),
                         **{f"gating {p}": _x(r["ratio_by_policy"][p]) for p in GATING_POLICIES}})
    return rows


def _md_summary(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _driver_note(results: dict, names: list) -> list[str]:
    """Plain sentences on what drives the sync/async ratio, from the numbers (windowed pairs)."""
    pairs = [r for n in names for r in results[n]["ratios"]
             if r["async"].endswith("async-windowed")]
    if not pairs:
        return []
    share = [r["sync_static_j"] / (r["sync_dynamic_j"] + r["sync_static_j"]) for r in pairs
             if r["sync_dynamic_j"] + r["sync_static_j"] > 0]

    def span(vals):
        vals = [v for v in vals if v is not None]
        return "n/a" if not vals else (f"{min(vals):.3g}x" if min(vals) == max(vals) else
                                       f"{min(vals):.3g}x to {max(vals):.3g}x")
    pol = "; ".join(f"{p} {span([r['ratio_by_policy'][p] for r in pairs])}"
                    for p in GATING_POLICIES)
    return [f"What drives the ratio: static power. Under each chip's default gating "
            f"({pairs[0]['sync_policy']} / {pairs[0]['async_policy']}) static is "
            f"{100 * min(share):.3g}-{100 * max(share):.3g}% of the sync chip's energy; the "
            f"ratio is {span([r['ratio'] for r in pairs])}, dynamic energy alone "
            f"{span([r['dynamic_ratio'] for r in pairs])}.",
            f"With both chips under one gating policy: {pol}. Static power per core and the "
            f"policies are estimates (chips/*.toml [power], README: 'What drives the "
            f"sync/async ratio')."]


def _summary_md(args, names: list, results: dict, summary: list, ratios: list, chips: list,
                plot: Path, wl: str, notes: list) -> str:
    """runs/demo/summary.md: the tables, the plot, the fit on the real chips, the reports."""
    from neurosim.report.markdown import summarise_violations
    md = [f"# neurosim demo: {len(names)} models on {wl} (the same first {args.n} test inputs "
          "in every run)", "",
          "Each model is lowered to the event-level graph, simulated on the scaled chips "
          f"({', '.join(chips)}; the async chip in windowed and free-running modes) and priced "
          "with the chips' energy tables and static power models (dynamic and static shown "
          "apart; power = energy / latency); the paper-mode column is the seed papers' "
          "convention (45 nm fp32 E_AC / E_MAC on SOPs).", "",
          _md_summary(summary), ""] + [f"{t}." for t in notes] + [
          "", "## Sync vs async energy", "",
          f"{chips[0]}/sync over {chips[-1]}/async-windowed (the same spikes, the same "
          "inputs). *ratio*: "
          "energy per inference under each chip's default power gating; *dynamic only*: "
          "without static energy; *gating p*: both chips' static power under policy p "
          "(none: every core leaks for the whole run; unused: cores with no mapped part are "
          "off; idle: a core leaks only while it has work, paying a wake-up energy).", "",
          _md_summary(ratios), ""] + _driver_note(results, names) + [
          "", f"![energy vs accuracy]({plot.name})", "",
          "## Fit on the real chips", ""]
    for n in names:
        for chip, m in results[n]["fit"].items():
            if not m["violations"]:
                md.append(f"- {n} fits {chip}")
                continue
            md.append(f"- **{n}** does not fit **{chip}** ({len(m['violations'])} violations):")
            md += [f"  - {line}" for line in summarise_violations(m, limit=1)]
    md += ["", "## Reports", ""] + [f"- [{n}]({n}/report.md)" for n in names] + [""]
    return "\n".join(md)


def cmd_demo(args) -> int:
    import os
    import time

    from neurosim.ir.units import format_table
    from neurosim.report.plots import energy_vs_accuracy

    paths = _demo_paths(args)
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    chips, real = chip_list(DEFAULT_CHIPS), chip_list(REAL_CHIPS)
    out = Path(args.out)
    t0 = time.perf_counter()
    plan = _demo_plan(paths, args.n, args.free_on_events)
    skipped = [k for k, it in plan.items() if "async-free" not in it["modes"]]
    skip_note = [FREE_SKIPPED.format(names=", ".join(skipped))] if skipped else []
    names = list(plan)
    jobs = max(1, min(args.jobs or (os.cpu_count() or 1), len(names)))
    results = _run_all(args, plan, out, chips, real, jobs)
    summary, points = _summary_rows(names, results)
    ratios = _ratio_rows(names, results)
    ns = sorted({p["n"] for p in points})
    plot = energy_vs_accuracy(points, out / "energy_vs_accuracy.png",
                              title="energy vs accuracy, every run of a model on the same "
                                    f"{'/'.join(map(str, ns))} test inputs")
    wl = ", ".join(sorted({results[n]["workload"] for n in names}))
    (out / "summary.md").write_text(_summary_md(args, names, results, summary, ratios, chips,
                                                plot, wl, skip_note))
    wall = time.perf_counter() - t0
    payload = {"n": args.n, "rows": summary, "notes": skip_note, "ratios": {n: results[n]["ratios"] for n in names},
               "report_dirs": {n: results[n]["dir"] for n in names},
               "summary": str(out / "summary.md"), "wall_s": wall, "jobs": jobs,
               "fit": {n: {c: [v["message"] for v in m["violations"]]
                           for c, m in results[n]["fit"].items()} for n in names}}
    lines = [f"neurosim demo: {len(names)} models on {wl}, the same first {args.n} test inputs "
             f"in every run; chips {', '.join(chips)}", "", format_table(summary)] + skip_note + [
             "",
             f"sync vs async energy per inference, {chips[0]}/sync over {chips[-1]}/"
             "async-windowed (the same inputs and spikes): ratio under each chip's default "
             "power gating, dynamic energy alone, and with both chips under each policy:", "",
             format_table(ratios), ""] + _driver_note(results, names) + [
             "", "why the models do not fit the real chips:"]
    lines += [line for n in names for line in fit_lines(n, results[n]["fit"])]
    lines += ["", "reports: " + ", ".join(f"{results[n]['dir']}/report.md" for n in names),
              f"summary: {out / 'summary.md'} (plot {plot})",
              f"done in {wall:.0f} s ({jobs} parallel job(s))"]
    emit(args, payload, lines)
    return 0
