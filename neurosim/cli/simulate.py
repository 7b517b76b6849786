"""``neurosim simulate`` (one chip) and ``neurosim compare`` (several chips and modes)."""
from __future__ import annotations

from pathlib import Path

from neurosim.cli.common import (UsageError, batch_size, chatty, chip_list, emit, fit_lines,
                                 fit_reports, load_model, lower_from_args, map_from_args,
                                 model_name, progress_bar, run_inputs)

PROGRESS_STEPS = 20             # progress updates per run when a bar is shown


def progress_chunk(args, n: int, bs: int) -> int:
    """Inputs per progress update: about ``PROGRESS_STEPS`` per run of ``n`` inputs when a bar
    is shown, so it moves and its ETA means something (each chunk is one engine call; chunks
    of 6 instead of 60 cost the sync engine ~10% on meta-spikeformer-tiny); one engine batch
    (``bs``) with --quiet / --json. Results do not depend on it."""
    if not chatty(args):
        return bs
    return min(bs, max(4, -(-n // PROGRESS_STEPS)))


def _energy_rows(e: dict) -> list[dict]:
    from neurosim.costing.energy import CATEGORY_LABELS, ENERGY_CATEGORIES
    from neurosim.ir.units import fmt_energy
    per = e["per_inference"]
    tot = per["total_j"]
    return [{"category": CATEGORY_LABELS[c],
             "energy/inference": fmt_energy(per["by_category_j"][c]),
             "share": f"{100 * per['by_category_j'][c] / tot:.1f}%" if tot else "-"}
            for c in ENERGY_CATEGORIES]


def _static_lines(e: dict) -> list[str]:
    """How static energy was priced, and what it would be under every gating policy."""
    from neurosim.ir.units import fmt_energy
    st = e["static"]
    if st["policy"] is None:
        return [f"  static               {st['source']}: {st['basis']}"]
    alt = ", ".join(f"{p} {fmt_energy(v) if v is not None else 'n/a'}"
                    for p, v in st["by_policy_per_inference_j"].items())
    default = " (the chip's default)" if st["policy"] == st["default_policy"] else \
        f" (the chip's default: {st['default_policy']})"
    return [f"  static power gating  {st['policy']}{default}: {st['cores_on']} cores drawing "
            f"static power",
            f"  static / inference   under each policy: {alt}"]


def _simulate_report(args, model, x, y, graph, res, chip, mapping, name: str) -> Path:
    """Write the --out report directory of a one-chip run (free-running async runs have no
    per-input reference on the chip, so the interpreter supplies it)."""
    from neurosim.costing.paper import paper_estimate
    from neurosim.report.markdown import write_report
    from neurosim.run.compare import Comparison

    paper = paper_estimate(model, x, graph=graph)
    cmp = Comparison.from_results(graph, [res], {chip.name: mapping}) \
        if res.mode != "async-free" else None
    if cmp is None:
        from neurosim.reference.interp import run as interpret
        ref = interpret(graph, x, record="none").logits
        cmp = Comparison(graph=graph, results=[res], mappings={chip.name: mapping},
                         reference_predictions=ref.argmax(axis=1), reference_logits=ref,
                         reference_source="interpreter", labels=y, chips=[chip.name])
    return write_report(args.out, cmp, graph=graph, model_name=name, workload=args.workload,
                        chips=[chip.name], paper=paper, extra={"command": "simulate"})


def _simulate_output(args, name: str, chip: str, label: str, res, e: dict,
                     out_dir) -> tuple[dict, list]:
    """The JSON payload and the console lines of a one-chip run."""
    from neurosim.ir.units import fmt_energy, fmt_power, fmt_time, format_table

    per_counts = res.per_inference()
    lat = float(res.latency_s.mean())
    per = e["per_inference"]
    payload = {"model": name, "chip": chip, "mode": res.mode, "workload": args.workload,
               "split": args.split, "n": res.n, "accuracy": res.accuracy,
               "latency_per_inference_s": lat, "energy_per_inference_j": per["total_j"],
               "average_power_w": e["power_w"]["total"],
               "energy": {"table": e["table"], **per}, "counts_per_inference": per_counts,
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
    pw = e["power_w"]
    lines = [f"{name} on {label}: {args.workload} {args.split} split, {res.n} inputs",
             f"  accuracy             {res.accuracy:.4f}",
             f"  latency / inference  {fmt_time(lat)}  ({timing})",
             f"  energy / inference   {fmt_energy(per['total_j'])}  (dynamic "
             f"{fmt_energy(per['dynamic_j'])}, static "
             f"{fmt_energy(per['static_j'])}; energy table {e['table']})",
             f"  average power        {fmt_power(pw['total'])}  (dynamic "
             f"{fmt_power(pw['dynamic'])}, static {fmt_power(pw['static'])})",
             *_static_lines(e), "",
             format_table(_energy_rows(e)), "", format_table(counts)]
    if out_dir:
        lines += ["", f"report written to {out_dir}/report.md (and report.html, plots "
                      "embedded, for sharing)"]
    return payload, lines


ASYNC_FLAGS = {"fifo_depth": "fifo_depth", "overflow": "overflow",
               "link_events_per_s": "link_events_per_s", "settle_ns": "settle_ns",
               "async_realisation": "realisation"}


def async_options(args) -> dict:
    """The asynchronous engine's settings given on the command line (engine keywords)."""
    return {kw: getattr(args, flag) for flag, kw in ASYNC_FLAGS.items()
            if getattr(args, flag, None) is not None}


def cmd_simulate(args) -> int:
    from chips.spec import load_chip, load_energy_table
    from neurosim.costing.energy import attach_energy
    from neurosim.run.compare import simulate_batched

    chip = load_chip(args.chip)
    table = load_energy_table(args.energy_table) if args.energy_table else None
    mode = args.mode or chip.kind
    model = load_model(args)
    x, y, timing = run_inputs(model, args.workload, args.n, args.split)
    graph = lower_from_args(model, args)
    mapping = map_from_args(graph, chip, args, strict=True)
    name = model_name(model, Path(args.checkpoint).stem)
    label = f"{chip.name}/{mode}" + (f"-{args.async_mode}" if mode == "async" else "")
    bs = batch_size(graph, args)
    opts = async_options(args)
    if opts and mode != "async":
        flags = ", ".join("--" + f.replace("_", "-") for f in ASYNC_FLAGS
                          if getattr(args, f, None) is not None)
        raise UsageError(f"{flags} apply to asynchronous chips; {chip.name} runs in {mode} mode")
    kw = dict(timing, batch_size=bs,
              **({"async_mode": args.async_mode, **opts} if mode == "async" else {}))
    with progress_bar(args, len(y), f"simulating {label}") as bar:
        res = simulate_batched(graph, chip, x, mode, labels=y, mapping=mapping,
                               chunk=progress_chunk(args, len(y), bs), on_chunk=bar.update, **kw)
    e = attach_energy(res, chip, table=table, power_gating=args.power_gating, mapping=mapping)
    out_dir = (_simulate_report(args, model, x, y, graph, res, chip, mapping, name)
               if args.out else None)
    emit(args, *_simulate_output(args, name, chip.name, label, res, e, out_dir))
    return 0


def cmd_compare(args) -> int:
    from neurosim.ir.units import fmt_energy, fmt_power
    from neurosim.report.markdown import write_report
    from chips.spec import load_chip
    from neurosim.run.compare import RUN_MODES, compare

    chips = chip_list(args.chips)
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else None
    bad = [m for m in modes or [] if m not in RUN_MODES]
    if bad:
        raise UsageError(f"unknown mode(s) {bad}; modes are {', '.join(RUN_MODES)}")
    check = chip_list(args.check_fit) if args.check_fit else []
    model = load_model(args)
    x, y, timing = run_inputs(model, args.workload, args.n, args.split)
    graph = lower_from_args(model, args)
    name = model_name(model, Path(args.checkpoint).stem)
    bs = batch_size(graph, args)
    mappings = {c: map_from_args(graph, c, args, strict=True) for c in chips}
    with progress_bar(args, 0, "comparing") as bar:
        def start(label, k):
            bar.set_description(f"{name} {label}")
            bar.reset(total=k)
        cmp = compare(graph, chips, x, y, modes=modes, power_gating=args.power_gating,
                      progress=start, on_chunk=bar.update,
                      chunk=progress_chunk(args, len(y), bs), batch_size=bs,
                      mappings={load_chip(c).name: m for c, m in mappings.items()},
                      async_opts=async_options(args), **timing)
    reports = fit_reports(graph, check, args)
    out_dir = None
    if args.out:
        from neurosim.costing.paper import paper_estimate
        paper = paper_estimate(model, x, graph=graph)
        out_dir = write_report(args.out, cmp, graph=graph, model_name=name,
                               workload=args.workload, chips=chips, paper=paper,
                               mapping_reports=reports, extra={"command": "compare"})
    payload = {"model": name, "workload": args.workload, "n": len(y), "rows": cmp.table(),
               "ratios": cmp.ratios(),
               "fit": {c: m.to_dict()["totals"] | {"violations": [v.message for v in m.violations]}
                       for c, m in reports.items()},
               "report_dir": str(out_dir) if out_dir else None}
    lines = [f"{name} on {args.workload} ({len(y)} inputs, the same in every run): " +
             ", ".join(f"{r['chip']}/{r['mode']} {fmt_energy(r['energy_per_inference_j'])} "
                       f"({fmt_power(r['average_power_w'])})" for r in cmp.table()),
             "", cmp.format()]
    if cmp.ratios():
        lines += ["", "sync/async energy per inference:"] + [f"  {ln}" for ln in
                                                              cmp.format_ratios()]
    if reports:
        lines += ["", "fit on the real chips:"] + fit_lines(name, reports)
    if out_dir:
        lines += ["", f"report, CSVs and plots written to {out_dir}/ (open report.md, or "
                      "report.html: one self-contained file)"]
    emit(args, payload, lines)
    return 0
