"""``neurosim sweep``: run a sweep file's points on Ray (or in process), write the table and the
Pareto plots, print a summary."""
from __future__ import annotations

import sys
from pathlib import Path

from neurosim.cli.common import chatty, emit


def _summary(cfg, out, plots: dict) -> list[str]:
    from neurosim.ir.units import fmt_energy, fmt_time
    rows = out.rows
    status = {}
    for r in rows:
        status[r["status"]] = status.get(r["status"], 0) + 1
    counts = ", ".join(f"{v} {k}" for k, v in status.items())
    lines = [f"sweep {cfg.name}: {len(rows)} points ({counts}); "
             f"ran {out.ran} now, {out.resumed} from an earlier run"
             + (f", {out.discarded} half-written row(s) redone" if out.discarded else "")]
    if out.skipped:
        lines.append(f"left out ({len(out.skipped)}):")
        lines += [f"  {s}" for s in out.skipped]
    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad[:5]:
        lines.append(f"  point {r['point']} {r['model']} on {r['chip']}/{r['mode']}: "
                     f"{r['status']}: {r['message'][:140]}")
    keys = [k for k, _ in cfg.overrides]
    front = plots.get("energy_accuracy") or []
    if front:
        lines.append("Pareto front, energy vs accuracy:")
        for r in front:
            extra = "".join(f" {k.rpartition('.')[2]}={r[k]}" for k in keys
                            if r.get(k) is not None)
            lines.append(f"  {r['model']} on {r['chip']}/{r['mode']}{extra}: "
                         f"{fmt_energy(r['energy_per_inference_j'])}, accuracy "
                         f"{r['accuracy']:.3f}, {fmt_time(r['latency_per_inference_s'])}")
    lines.append(f"table: {out.table}")
    lines += [f"plot:  {p}" for p in plots.get("files", [])]
    return lines


def cmd_sweep(args) -> int:
    from neurosim.report.pareto import pareto_plots
    from neurosim.run.executor import make_executor
    from neurosim.run.sweep import run_sweep
    from neurosim.run.sweep_config import load_sweep_config

    from neurosim.cli.config import flag_keys
    cfg = load_sweep_config(args.config, flag_keys=flag_keys("sweep"))
    out_dir = Path(args.out or Path("runs/sweep") / Path(args.config).stem)
    done = {"n": 0}

    def on_point(rec):
        done["n"] += 1
        if chatty(args):
            print(f"  [{done['n']}] point {rec['point']}: {rec['model']} on {rec['chip']}/"
                  f"{rec['mode']}: {rec['status']}", file=sys.stderr, flush=True)

    with make_executor(args.workers, args.ray_address) as ex:
        if chatty(args):
            print(f"sweep {cfg.name}: executor {ex.name} ({ex.workers} workers), output "
                  f"{out_dir}", file=sys.stderr, flush=True)
        out = run_sweep(cfg, out_dir, ex, restart=args.restart, on_point=on_point)
    plots = pareto_plots(out.rows, out_dir, title=cfg.name,
                         override_keys=[k for k, _ in cfg.overrides])
    payload = {"name": cfg.name, "points": len(out.rows), "ran": out.ran,
               "resumed": out.resumed, "discarded": out.discarded, "skipped": out.skipped,
               "table": str(out.table), "plots": [str(p) for p in plots["files"]],
               "pareto_energy_accuracy": [r["point"] for r in plots["energy_accuracy"]],
               "pareto_latency_energy": [r["point"] for r in plots["latency_energy"]],
               "rows": out.rows}
    emit(args, payload, _summary(cfg, out, plots))
    return 0
