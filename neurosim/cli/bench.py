"""``neurosim bench``: benchmark the simulator on this machine.

``kernels``: the Numba kernels vs dense PyTorch, then the scatter / dense path cost model the
engines use, saved as this machine's cost file (``chips.engines.paths``). ``model``: whole
models as users run them (``neurosim.run.bench.model``)."""
from __future__ import annotations

from neurosim.cli.common import UsageError, chatty, emit


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


def _fig(f: dict | None) -> str:
    if not f:
        return "-"
    return f"{f['median_s']:.4g} s [{f['min_s']:.3g}-{f['max_s']:.3g}]"


def model_lines(res: dict) -> list[str]:
    """Console summary of ``bench_model``: per case the three figures (median [min-max] over
    the repeats), the ratios, the scatter share and the load; then the acceptance table."""
    m = res["machine"]
    lines = [f"{m['cpu_model']}, {m['cores_usable']} usable cores, {res['threads']} thread(s), "
             f"median [min-max] of {res['repeat']} runs; load average (1/5/15 min) at start "
             f"{m['load_avg_1_5_15min']}, at end {res['load_avg_end']}"]
    for name, c in res["cases"].items():
        if name == "setup":
            lines += [f"setup  {c['model']} {c['img_size']}x{c['img_size']} on {c['chip']} "
                      f"({c['parts']:,} parts): cold {_fig(c['cold'])}, cached "
                      f"{_fig(c['cached'])}  (load {c['load_avg_start']} -> "
                      f"{c['load_avg_end']})"]
            continue
        share = ", ".join(f"{k} scatter {100 * c[k]['scatter_share']:.0f}% of node-steps"
                          for k in ("sync", "async") if "scatter_share" in c.get(k, {}))
        lines += [f"{name}  {c['model']} B={c['B']}: torch {_fig(c['torch'])} | sync "
                  f"{_fig(c['sync'])} | async {_fig(c.get('async'))}",
                  f"    sync/torch {c['sync_over_torch']:.3g}"
                  + (f", async/sync {c['async_over_sync']:.3g}" if "async_over_sync" in c
                     else "") + (f"; {share}" if share else "")
                  + f"  (load {c['load_avg_start']} -> {c['load_avg_end']})"]
    if res.get("acceptance"):
        lines.append("acceptance:")
        lines += [f"  {k}: {v['value']:.3g} (target <= {v['target']:g}) "
                  f"{'met' if v['met'] else 'MISSED'}" for k, v in res["acceptance"].items()]
    return lines


def cmd_bench(args) -> int:
    from neurosim.run import bench
    if args.what == "kernels":
        res = bench.bench_kernels(repeat=args.repeat or 15)
        res["path_model"] = _path_model(args)
        emit(args, res, _flat(res))
        return 0
    cases = tuple(c.strip() for c in args.cases.split(",")) if args.cases else bench.model.CASES
    bad = [c for c in cases if c not in bench.model.CASES]
    if bad:
        raise UsageError(f"unknown case(s) {bad}; cases: {', '.join(bench.model.CASES)}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    if args.fifo_depth is not None and args.fifo_depth < 1:
        raise UsageError(f"--fifo-depth must be an integer >= 1 event, got {args.fifo_depth}")
    res = bench.bench_model(repeat=args.repeat or 5, batch=args.batch, cases=cases,
                            async_engine=not args.no_async, fifo_depth=args.fifo_depth)
    emit(args, res, model_lines(res))
    return 0


def _path_model(args) -> dict:
    """Measure the path cost model, save it as this machine's cost file (unless --no-save),
    and time the 4096 x 4096 linear layer at 10% density inside the engine."""
    import sys

    from chips.engines.paths import PathModel, save_path_model
    from neurosim.run.bench import linear_in_engine, measure_path_model
    if chatty(args):
        print("measuring the scatter / dense path costs ...", file=sys.stderr)
    model, points = measure_path_model(repeat=max(3, (args.repeat or 15) // 3))
    saved = None if args.no_save else str(save_path_model(model, measured=points))
    used = PathModel(model.costs, f"measured: {saved}" if saved else model.source)
    return {"costs": model.costs, "saved_to": saved, "linear_in_engine": linear_in_engine(used)}
