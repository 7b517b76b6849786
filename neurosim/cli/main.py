"""The ``neurosim`` command line. Each subcommand is one function ``cmd_NAME(args)``.

Bad input (unknown names, missing files, impossible sizes, models that do not fit a chip) is
reported as one clear message on stderr with exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CHIPS = "tianjic-x16,speck-xl"
REAL_CHIPS = "tianjic,speck"
DEMO_OUT = Path("runs/demo")
DEMO_N_ASYNC = 10


class UsageError(ValueError):
    """Bad command-line input (reported without a traceback, exit status 2)."""


def _parse_sets(items: list[str]) -> dict:
    """``key=value`` overrides; values parse as JSON when they can (numbers, lists, dicts)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _emit(args, payload: dict, lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, sort_keys=True))
    elif not getattr(args, "quiet", False):
        print("\n".join(lines))


def _chatty(args) -> bool:
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))


def _bar(args, total: int, desc: str):
    """A tqdm progress bar on stderr (disabled by --quiet / --json)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not _chatty(args), leave=False,
                file=sys.stderr, dynamic_ncols=True)


def _chip_list(text: str) -> list[str]:
    from chips.spec import load_chip
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    if not names:
        raise UsageError("no chip given (e.g. --chips tianjic-x16,speck-xl)")
    for c in names:
        load_chip(c)                       # unknown names: SpecError listing the chips
    return names


# ----------------------------------------------------------------------------- shared steps
def _load_model(args):
    import models
    try:
        return models.load_checkpoint(args.checkpoint)
    except FileNotFoundError:
        shipped = models.list_shipped()
        if args.checkpoint in shipped:
            return models.load_checkpoint(models.shipped_checkpoint(args.checkpoint))
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint} (shipped checkpoints, "
                                f"usable by name: {', '.join(shipped) or 'none'})") from None


def _lower_from_args(model, args):
    from neurosim.run.inputs import load_for_model
    from neurosim.frontends.lower import lower

    x_cal, _, _ = load_for_model(model, args.workload, "train", n=args.calib_n)
    if x_cal.ndim == 5:                                    # event frames [N, T, ...] -> [T, N, ...]
        import numpy as np
        x_cal = np.moveaxis(x_cal, 1, 0)
    return lower(model, x_cal, weight_bits=args.weight_bits, repconv=args.repconv, ssc=args.ssc)


def _test_inputs(model, workload: str, n: int, split: str = "test"):
    """The first ``n`` samples of ``workload``'s ``split`` (names both numbers when too few),
    and the engine keywords: event streams run on the chips' clocks in real time (one time bin
    lasts ``input_window_s``)."""
    from neurosim.run.inputs import engine_inputs, load_for_model

    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    have = int(len(load_for_model(model, workload, split)[1]))
    if n > have:
        raise UsageError(f"--n {n} is more than the {have} samples of the {workload!r} "
                         f"{split} split; use --n {have} or fewer")
    x, y, window = engine_inputs(model, workload, split, n)
    return x, y, ({} if window is None else {"input_window_s": window})


def _split_size(model, workload: str, split: str = "test") -> int:
    from neurosim.run.inputs import load_for_model
    return int(len(load_for_model(model, workload, split)[1]))


def _model_name(model, fallback: str) -> str:
    return getattr(model, "neurosim_config", {}).get("name", fallback)


def _fit_reports(graph, chips: list[str]) -> dict:
    from chips.mapping import map_graph
    return {c: map_graph(graph, c, strict=False) for c in chips}


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _fit_lines(name: str, reports: dict) -> list[str]:
    """Console lines: per chip, "fits" or the violations counted by kind plus the first
    example of the commonest kind (``reports``: chip -> Mapping or its ``to_dict()``)."""
    from collections import Counter
    out = []
    for chip, m in reports.items():
        d = m if isinstance(m, dict) else m.to_dict()
        vs = d["violations"]
        if not vs:
            out.append(f"  {name} fits {chip} ({d['totals']['cores_used']} cores)")
            continue
        kinds = Counter(v["kind"] for v in vs).most_common()
        out.append(f"  {name} does not fit {chip}: {len(vs)} violations ("
                   + ", ".join(f"{k} {c}" for k, c in kinds) + ")")
        first = next(v for v in vs if v["kind"] == kinds[0][0])
        out.append(f"      e.g. {_clip(first['message'], 150)}")
    return out


# ----------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    import models
    names = models.list_models()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names))
    return 0


def cmd_train(args) -> int:
    import models
    from models.train import TrainConfig, fit
    from neurosim.run.inputs import model_arrays

    overrides = _parse_sets(args.set)
    model = models.create(args.model, **overrides)
    (x_tr, y_tr), (x_te, y_te), ds_name = model_arrays(model, args.workload)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      shift_px=args.shift_px, max_minutes=args.max_minutes, threads=args.threads)
    n_params = sum(p.numel() for p in model.parameters())
    if _chatty(args):
        print(f"training {args.model} ({n_params:,} parameters) on {ds_name}: "
              f"{len(x_tr)} train / {len(x_te)} test samples, input {tuple(x_tr.shape[1:])}")
    res = fit(model, x_tr, y_tr, x_te, y_te, cfg, progress=_chatty(args))
    meta = {"workload": args.workload, "command": " ".join(sys.argv[1:]) or "train",
            "config": cfg.__dict__, "parameters": n_params, **res.to_dict()}
    out = models.save_checkpoint(model, args.out, training=meta)
    _emit(args, {"checkpoint": str(out), **meta},
          [f"test accuracy {res.final_test_accuracy:.4f} (best {res.best_test_accuracy:.4f}) "
           f"after {res.epochs_run} epochs in {res.train_seconds:.1f} s",
           f"checkpoint written to {out}"])
    return 0


def cmd_lower(args) -> int:
    from neurosim.report.graph_table import COLUMNS, graph_rows, totals
    from neurosim.ir.units import format_table

    model = _load_model(args)
    graph = _lower_from_args(model, args)
    out = graph.save(args.out) if args.out else None
    rows, tot = graph_rows(graph), totals(graph)
    _emit(args, {"graph_dir": str(out) if out else None, "totals": tot, "nodes": rows},
          [format_table(rows, COLUMNS), "",
           f"{tot['nodes']} nodes, {tot['neurons']:,} neurons, {tot['weights']:,} weights "
           f"({graph.meta['weight_bits']}-bit), {tot['spike_edges']} spike / "
           f"{tot['graded_edges']} graded edges, T={tot['T']}, RepConv {graph.meta['repconv']}, "
           f"SSC {'on' if graph.meta['ssc'] else 'off'}"]
          + ([f"graph written to {out}"] if out else []))
    return 0


def _energy_rows(e: dict) -> list[dict]:
    from neurosim.costing.energy import CATEGORY_LABELS, ENERGY_CATEGORIES
    from neurosim.ir.units import fmt_energy
    per = e["per_inference"]
    tot = per["total_j"]
    return [{"category": CATEGORY_LABELS[c],
             "energy/inference": fmt_energy(per["by_category_j"][c]),
             "share": f"{100 * per['by_category_j'][c] / tot:.1f}%" if tot else "-"}
            for c in ENERGY_CATEGORIES]


def cmd_simulate(args) -> int:
    from chips.spec import load_chip, load_energy_table
    from neurosim.run.compare import Comparison, simulate_batched
    from neurosim.costing.energy import attach_energy
    from neurosim.ir.units import fmt_energy, fmt_time
    from chips.mapping import map_graph
    from neurosim.ir.units import format_table

    chip = load_chip(args.chip)
    table = load_energy_table(args.energy_table) if args.energy_table else None
    mode = args.mode or chip.kind
    model = _load_model(args)
    x, y, timing = _test_inputs(model, args.workload, args.n, args.split)
    graph = _lower_from_args(model, args)
    mapping = map_graph(graph, chip, strict=True)
    name = _model_name(model, Path(args.checkpoint).stem)
    label = f"{chip.name}/{mode}" + (f"-{args.async_mode}" if mode == "async" else "")
    kw = dict(timing, **({"async_mode": args.async_mode} if mode == "async" else {}))
    with _bar(args, len(y), f"simulating {label}") as bar:
        res = simulate_batched(graph, chip, x, mode, labels=y, mapping=mapping, chunk=10,
                               on_chunk=bar.update, **kw)
    e = attach_energy(res, chip, table=table, mapping=mapping)
    per_counts = res.per_inference()
    out_dir = None
    if args.out:
        from neurosim.costing.paper import paper_estimate
        from neurosim.report.markdown import write_report
        paper = paper_estimate(model, x, graph=graph)
        cmp = Comparison.from_results(graph, [res], {chip.name: mapping}) \
            if res.mode != "async-free" else None
        if cmp is None:
            from neurosim.reference.interp import run as interpret
            ref = interpret(graph, x, record="none").logits
            cmp = Comparison(graph=graph, results=[res], mappings={chip.name: mapping},
                             reference_predictions=ref.argmax(axis=1), reference_logits=ref,
                             reference_source="interpreter", labels=y, chips=[chip.name])
        out_dir = write_report(args.out, cmp, graph=graph, model_name=name,
                               workload=args.workload, chips=[chip.name], paper=paper,
                               extra={"command": "simulate"})
    lat = float(res.latency_s.mean())
    payload = {"model": name, "chip": chip.name, "mode": res.mode, "workload": args.workload,
               "split": args.split, "n": res.n, "accuracy": res.accuracy,
               "latency_per_inference_s": lat,
               "energy_per_inference_j": e["per_inference"]["total_j"],
               "energy": {"table": e["table"], **e["per_inference"]},
               "counts_per_inference": per_counts,
               "stats": {k: v for k, v in res.stats.items()
                         if k not in ("fifo_occupancy", "wall_s", "dense_steps")},
               "report_dir": str(out_dir) if out_dir else None}
    s = res.stats
    timing = (f"{s['ticks_per_inference']} ticks at {s['clock_hz'] / 1e6:g} MHz"
              if "ticks_per_inference" in s else
              f"{s.get('stalls', 0):,} stalls, {s.get('drops', 0):,} drops, peak FIFO "
              f"{s.get('max_fifo_occupancy', 0)} of {s.get('fifo_depth', '?')} events")
    counts = [{"count": k, "per inference": int(round(v)) if v >= 100 else round(v, 2)}
              for k, v in per_counts.items() if v]
    lines = [f"{name} on {label}: {args.workload} {args.split} split, {res.n} inputs",
             f"  accuracy             {res.accuracy:.4f}",
             f"  latency / inference  {fmt_time(lat)}  ({timing})",
             f"  energy / inference   {fmt_energy(e['per_inference']['total_j'])}  (dynamic "
             f"{fmt_energy(e['per_inference']['dynamic_j'])}, static "
             f"{fmt_energy(e['per_inference']['static_j'])}; energy table {e['table']})", "",
             format_table(_energy_rows(e)), "", format_table(counts)]
    if out_dir:
        lines += ["", f"report written to {out_dir}/report.md"]
    _emit(args, payload, lines)
    return 0


def cmd_compare(args) -> int:
    from neurosim.run.compare import compare
    from neurosim.ir.units import fmt_energy
    from neurosim.report.markdown import write_report

    from neurosim.run.compare import RUN_MODES
    chips = _chip_list(args.chips)
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else None
    bad = [m for m in modes or [] if m not in RUN_MODES]
    if bad:
        raise UsageError(f"unknown mode(s) {bad}; modes are {', '.join(RUN_MODES)}")
    check = [c for c in _chip_list(args.check_fit)] if args.check_fit else []
    model = _load_model(args)
    x, y, timing = _test_inputs(model, args.workload, args.n, args.split)
    graph = _lower_from_args(model, args)
    name = _model_name(model, Path(args.checkpoint).stem)
    limits = {"async-windowed": args.n_async, "async-free": args.n_async} if args.n_async else None
    with _bar(args, 0, "comparing") as bar:
        def start(label, k):
            bar.set_description(f"{name} {label}")
            bar.reset(total=k)
        cmp = compare(graph, chips, x, y, modes=modes, limits=limits, progress=start,
                      on_chunk=bar.update, **timing)
    reports = _fit_reports(graph, check)
    out_dir = None
    if args.out:
        from neurosim.costing.paper import paper_estimate
        paper = paper_estimate(model, x, graph=graph)
        out_dir = write_report(args.out, cmp, graph=graph, model_name=name,
                               workload=args.workload, chips=chips, paper=paper,
                               mapping_reports=reports, extra={"command": "compare"})
    payload = {"model": name, "workload": args.workload, "n": len(y), "rows": cmp.table(),
               "fit": {c: m.to_dict()["totals"] | {"violations": [v.message for v in m.violations]}
                       for c, m in reports.items()},
               "report_dir": str(out_dir) if out_dir else None}
    lines = [f"{name} on {args.workload} ({len(y)} inputs): " +
             ", ".join(f"{r['chip']}/{r['mode']} {fmt_energy(r['energy_per_inference_j'])}"
                       for r in cmp.table()), "", cmp.format()]
    if reports:
        lines += ["", "fit on the real chips:"] + _fit_lines(name, reports)
    if out_dir:
        lines += ["", f"report, CSVs and plots written to {out_dir}/ (open report.md)"]
    _emit(args, payload, lines)
    return 0


def cmd_report(args) -> int:
    from neurosim.report.markdown import render_report

    path = render_report(args.run_dir)
    d = path.parent
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    _emit(args, {"report": str(path), "files": files},
          [f"re-rendered {path} from {d / 'result.json'}",
           f"{sum(f.endswith('.png') for f in files)} plots, "
           f"{sum(f.endswith('.csv') for f in files)} CSV tables in {d}/"])
    return 0


def _flat(d, prefix="") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            out.append(f"{prefix}{k}: {v:.4g}")
        else:
            out.append(f"{prefix}{k}: {v}")
    return out


def cmd_bench(args) -> int:
    from neurosim.run import bench as bench
    if args.what == "kernels":
        res = bench.bench_kernels(repeat=args.repeat)
    else:
        fn = getattr(bench, "bench_model", None)
        if fn is None:
            raise UsageError("this installation has no neurosim.run.bench.bench_model")
        res = fn()
    _emit(args, res, _flat(res))
    return 0


def _demo_plan(paths: dict, n: int, n_async: int) -> dict:
    """Per checkpoint: its workload (from the training metadata) and how many inputs each run
    uses, for the progress bar and the workers."""
    import models
    plan = {}
    for name, path in paths.items():
        model = models.load_checkpoint(path)
        workload = getattr(model, "neurosim_training", {}).get("workload") or "digits"
        k = min(n, _split_size(model, workload))
        plan[name] = {"path": str(path), "workload": workload, "n": k,
                      "n_async": min(k, n_async)}
    return plan


def _demo_model(name: str, item: dict, out: str, chips: list, real: list, tick=None,
                threads: int | None = None) -> dict:
    """One model of the demo (runs in a worker process when --jobs > 1): lower, compare on
    ``chips``, paper mode, fit on ``real`` chips, report. Returns plain data for the summary."""
    import numpy as np

    import models
    from neurosim.run.compare import compare
    from neurosim.run.inputs import load_for_model
    from neurosim.frontends.lower import lower
    from neurosim.costing.paper import paper_estimate
    from neurosim.report.markdown import write_report

    if threads:
        import numba
        import torch
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    model = models.load_checkpoint(item["path"])
    workload = item["workload"]
    x, y, timing = _test_inputs(model, workload, item["n"])
    x_cal, _, _ = load_for_model(model, workload, "train", n=64)
    if x_cal.ndim == 5:
        x_cal = np.moveaxis(x_cal, 1, 0)
    graph = lower(model, x_cal)
    limits = {"async-windowed": item["n_async"], "async-free": item["n_async"]}
    cmp = compare(graph, chips, x, y, limits=limits, on_chunk=tick, **timing)
    paper = paper_estimate(model, x, graph=graph)
    reports = _fit_reports(graph, real)
    d = write_report(Path(out) / name, cmp, graph=graph, model_name=name, workload=workload,
                     chips=chips, paper=paper, mapping_reports=reports,
                     extra={"command": "demo"})
    return {"name": name, "workload": workload, "dir": str(d), "rows": cmp.table(),
            "paper_j": paper.energy_j, "fit": {c: m.to_dict() for c, m in reports.items()}}


def _demo_worker(args_tuple):
    name, item, out, chips, real, queue = args_tuple
    return _demo_model(name, item, out, chips, real, tick=queue.put, threads=1)


def cmd_demo(args) -> int:
    import os
    import time

    import models
    from neurosim.ir.units import fmt_energy, fmt_time
    from neurosim.ir.units import format_table

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
    if args.n < 1 or args.n_async < 1:
        raise UsageError(f"--n and --n-async must be at least 1, got {args.n}, {args.n_async}")
    chips = _chip_list(DEFAULT_CHIPS)
    real = _chip_list(REAL_CHIPS)
    out = Path(args.out)
    t0 = time.perf_counter()
    plan = _demo_plan(paths, args.n, args.n_async)
    names = list(plan)
    total = sum(it["n"] + 2 * it["n_async"] for it in plan.values())
    jobs = max(1, min(args.jobs or (os.cpu_count() or 1), len(names)))
    results = {}
    with _bar(args, total, f"demo: {len(names)} models, {jobs} job(s)") as bar:
        if jobs == 1:
            for name in names:
                results[name] = _demo_model(name, plan[name], str(out), chips, real,
                                            tick=bar.update)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor
            ctx = mp.get_context("spawn")
            with ctx.Manager() as manager:
                queue = manager.Queue()
                order = sorted(names, key=lambda k: -(plan[k]["n"] + 2 * plan[k]["n_async"]))
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
    summary, points = [], []
    for name in names:
        res = results[name]
        for r in res["rows"]:
            run = f"{r['chip']}/{r['mode']}"
            summary.append({"model": name, "workload": res["workload"], "run": run,
                            "n": r["n"], "accuracy": round(r["accuracy"], 3),
                            "agreement": round(r["agreement"], 3),
                            "energy/inf": fmt_energy(r["energy_per_inference_j"]),
                            "latency/inf": fmt_time(r["latency_per_inference_s"]),
                            "paper-mode energy/inf": fmt_energy(res["paper_j"])})
            points.append({"model": name, "run": run, "energy_j": r["energy_per_inference_j"],
                           "accuracy": r["accuracy"]})
    from neurosim.report.plots import energy_vs_accuracy
    plot = energy_vs_accuracy(points, out / "energy_vs_accuracy.png",
                              title=f"energy vs accuracy (sync: {args.n} test inputs, "
                                    f"async: the first {min(args.n, args.n_async)})")
    fit_lines = [line for n in names for line in _fit_lines(n, results[n]["fit"])]
    wl = ", ".join(sorted({results[n]["workload"] for n in names}))
    md = [f"# neurosim demo: {len(names)} models on {wl} ({args.n} test inputs on the sync "
          f"chip, the first {min(args.n, args.n_async)} in each async mode)", "",
          "Each model is lowered to the event-level graph, simulated on the scaled chips "
          f"({', '.join(chips)}; the async chip in windowed and free-running modes) and priced "
          "with the chips' energy tables; the paper-mode column is the seed papers' convention "
          "(45 nm fp32 E_AC / E_MAC on SOPs).", "",
          _md_summary(summary), "", f"![energy vs accuracy]({plot.name})", "",
          "## Fit on the real chips", ""]
    from neurosim.report.markdown import summarise_violations
    for n in names:
        for chip, m in results[n]["fit"].items():
            if not m["violations"]:
                md.append(f"- {n} fits {chip}")
                continue
            md.append(f"- **{n}** does not fit **{chip}** ({len(m['violations'])} violations):")
            md += [f"  - {line}" for line in summarise_violations(m, limit=1)]
    md += ["", "## Reports", ""] + [f"- [{n}]({n}/report.md)" for n in names] + [""]
    (out / "summary.md").write_text("\n".join(md))
    wall = time.perf_counter() - t0
    payload = {"n": args.n, "n_async": args.n_async, "rows": summary,
               "report_dirs": {n: results[n]["dir"] for n in names},
               "summary": str(out / "summary.md"), "wall_s": wall, "jobs": jobs,
               "fit": {n: {c: [v["message"] for v in m["violations"]]
                           for c, m in results[n]["fit"].items()} for n in names}}
    lines = [f"neurosim demo: {len(names)} models on {wl}, {args.n} test inputs on the sync "
             f"chip, the first {min(args.n, args.n_async)} in each async mode; chips "
             f"{', '.join(chips)}", "", format_table(summary), "",
             "why the models do not fit the real chips:"] + fit_lines + [
             "", "reports: " + ", ".join(f"{results[n]['dir']}/report.md" for n in names),
             f"summary: {out / 'summary.md'} (plot {plot})",
             f"done in {wall:.0f} s ({jobs} parallel job(s))"]
    _emit(args, payload, lines)
    return 0


def _md_summary(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------- parser
def _lowering_args(sp, checkpoint_help="a .safetensors checkpoint, or the name of a shipped "
                                       "one (see models/checkpoints/)") -> None:
    sp.add_argument("--checkpoint", required=True, help=checkpoint_help)
    sp.add_argument("--workload", default="digits",
                    help="data set: calibration (train split) and inputs (default: digits)")
    sp.add_argument("--calib-n", type=int, default=64,
                    help="training samples used to calibrate graded-value steps (default 64)")
    sp.add_argument("--weight-bits", type=int, default=8, help="weight precision (default 8)")
    sp.add_argument("--repconv", choices=["fused", "unfused"], default="fused",
                    help="lower RepConv as one fused 3x3 conv or as its three stages")
    sp.add_argument("--ssc", action="store_true",
                    help="spike sparse convolution on stride-1 convs (default: vanilla)")


def _run_args(sp, n_default: int = 100) -> None:
    sp.add_argument("--n", type=int, default=n_default,
                    help=f"number of inputs, the first n of the split (default {n_default})")
    sp.add_argument("--split", default="test", choices=["test", "train"],
                    help="which split supplies the inputs (default: test)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Simulate trained spiking transformers on virtual neuromorphic chips and "
                    "account their energy and latency.",
        epilog="Start with `neurosim demo`; every command has --help.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, fn, help_, desc=None, epilog=None):
        sp = sub.add_parser(name, help=help_, description=desc or help_, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("models", cmd_models, "list the model zoo's registered names")
    sp.add_argument("--json", action="store_true", help="print a JSON list")

    sp = add("train", cmd_train, "train a zoo model on a workload and write a checkpoint")
    sp.add_argument("--model", required=True, help="zoo name, e.g. meta-spikeformer-tiny "
                    "(see `neurosim models`)")
    sp.add_argument("--workload", default="digits", help="training data (default: digits)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a model argument, e.g. --set T=2 --set dims=[16,32,64,64]")
    sp.add_argument("--epochs", type=int, default=20)
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--lr", type=float, default=2e-3)
    sp.add_argument("--shift-px", type=int, default=2, help="random-shift augmentation, pixels")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    sp.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    sp.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add("lower", cmd_lower, "lower a checkpoint to the event-level graph and print its nodes")
    _lowering_args(sp)
    sp.add_argument("--out", help="directory to write the graph to (graph.json + arrays.npz)")
    sp.add_argument("--json", action="store_true", help="print the node table as JSON")
    sp.add_argument("--quiet", action="store_true")

    sp = add("simulate", cmd_simulate, "run a checkpoint on one chip: accuracy, counts, "
             "energy, latency",
             desc="Lower a checkpoint, run the first --n inputs of a workload on one chip and "
                  "print accuracy, operation counts, energy and latency per inference.",
             epilog="examples:\n"
                    "  neurosim simulate --checkpoint meta-spikeformer-tiny --chip tianjic-x16 "
                    "--n 100\n"
                    "  neurosim simulate --checkpoint e-spikeformer-tiny --chip speck-xl "
                    "--async-mode free --out runs/free")
    _lowering_args(sp)
    sp.add_argument("--chip", default="tianjic-x16",
                    help="chip name or TOML path (default tianjic-x16; chips/*.toml lists them)")
    _run_args(sp)
    sp.add_argument("--mode", choices=["sync", "async"], default=None,
                    help="execution mode (default: the chip's own kind)")
    sp.add_argument("--async-mode", choices=["windowed", "free"], default="windowed",
                    help="async execution: windowed (exact) or free-running (default windowed)")
    sp.add_argument("--energy-table", default=None,
                    help="price the run with this energy table instead of the chip's "
                         "(e.g. 45nm; chips/energy/*.toml)")
    sp.add_argument("--out", metavar="RUN_DIR",
                    help="also write a report directory (result.json, report.md, CSVs, plots)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add("compare", cmd_compare, "run a checkpoint on several chips and modes, side by side",
             desc="Run the same inputs on every chip (sync chips in sync mode, async chips in "
                  "windowed and free-running modes), print the comparison and, with --out, "
                  "write the report, CSV tables and plots.",
             epilog="example:\n  neurosim compare --checkpoint meta-spikeformer-tiny "
                    "--chips tianjic-x16,speck-xl --n 100 --out runs/cmp")
    _lowering_args(sp)
    sp.add_argument("--chips", default=DEFAULT_CHIPS,
                    help=f"comma-separated chip names (default {DEFAULT_CHIPS})")
    _run_args(sp)
    sp.add_argument("--n-async", type=int, default=None, metavar="N",
                    help="run the async modes on only the first N inputs (the event-driven "
                         "engine is slower; agreement is measured on those N)")
    sp.add_argument("--modes", default=None,
                    help="only these runs: comma-separated sync, async-windowed, async-free")
    sp.add_argument("--check-fit", default=REAL_CHIPS, metavar="CHIPS",
                    help=f"also map onto these chips and list why the model does not fit "
                         f"(default {REAL_CHIPS}; '' to skip)")
    sp.add_argument("--out", metavar="RUN_DIR", help="write report.md, result.json, CSVs, plots")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sp.add_argument("--json", action="store_true", help="print the comparison as JSON")

    sp = add("report", cmd_report, "re-render a run directory's report from its result.json",
             desc="Re-draw report.md, the CSV tables and the plots of RUN_DIR from its "
                  "result.json (byte-identical to the original rendering).")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="directory written by simulate/compare "
                    "--out or by demo")
    sp.add_argument("--quiet", action="store_true")
    sp.add_argument("--json", action="store_true", help="print the written files as JSON")

    sp = add("bench", cmd_bench, "benchmark the simulator on this machine",
             desc="kernels: the Numba inner loops vs dense PyTorch (synaptic events per "
                  "second); model: whole-model simulation speed.")
    sp.add_argument("what", choices=["kernels", "model"], help="what to benchmark")
    sp.add_argument("--repeat", type=int, default=15, help="timed samples per kernel (kernels)")
    sp.add_argument("--json", action="store_true", help="print the full result as JSON")
    sp.add_argument("--quiet", action="store_true")

    sp = add("demo", cmd_demo, "run the shipped checkpoints on the scaled chips and write "
             "reports (what `make demo` runs)",
             desc="Lower every shipped checkpoint, run the first --n digits test images on "
                  "tianjic-x16 (sync) and speck-xl (async, windowed and free-running), compare, "
                  "and write reports and plots to runs/demo/<model>/ plus runs/demo/summary.md; "
                  "also explain why each model does not fit the real tianjic / speck.")
    sp.add_argument("--n", type=int, default=100,
                    help="test images per model on the sync chip (default 100)")
    sp.add_argument("--n-async", type=int, default=DEMO_N_ASYNC, metavar="N",
                    help="test images per model in each async mode, the first N of --n "
                         f"(default {DEMO_N_ASYNC}: the event-driven engine is slower)")
    sp.add_argument("--out", default=str(DEMO_OUT), help=f"output directory (default {DEMO_OUT})")
    sp.add_argument("--jobs", type=int, default=None,
                    help="models simulated in parallel processes (default: one per CPU core)")
    sp.add_argument("--checkpoints", metavar="DIR", default=None,
                    help="use the *.safetensors checkpoints in DIR instead of the shipped ones")
    sp.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    from chips.mapping import MappingError

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:                    # output piped into `head` and the like
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MappingError as e:
        print(f"neurosim {args.command}: error: {e}\nhint: the scaled chips tianjic-x16 and "
              f"speck-xl fit the zoo's tiny models", file=sys.stderr)
        return 2
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"neurosim {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
