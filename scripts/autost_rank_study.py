"""AutoST's central evidence at this machine's scale: do training-free scores rank architectures
the way trained accuracy does? (seed ``autost`` §3.1, Table 1: Kendall / Spearman tau of FLOPs
vs CIFAR-10 accuracy 0.70 / 0.91 over 100 architectures trained 100 epochs.)

Samples ``--n-archs`` distinct legal architectures of a search space (seeded), trains each with
the same budget on a workload, computes every training-free score (FLOPs eq. 4-5 x T, parameter
count, the released code's syops ``ops[0]``, its activity-weighted part, the simulated dynamic
energy of the untrained model) and reports Kendall's tau-b and Spearman's rho of each score
against the final test accuracy, with percentile bootstrap 95% intervals over architectures.

Trainings and scores are tasks on Ray (``--workers``, ``--ray-address``) or in process
(``--workers 0``); every finished task is logged to ``OUT/study.jsonl`` and a rerun with the
same settings resumes. Writes ``OUT/rank_table.md``, ``OUT/rank_table.csv``,
``OUT/architectures.csv``, ``OUT/rank_scatter.png`` and ``OUT/study.json``.

    python scripts/autost_rank_study.py --out runs/autost-rank            # the full study
    python scripts/autost_rank_study.py --n-archs 3 --epochs 1 --train-n 24 --test-n 12 \\
        --workers 0 --out /tmp/rank-smoke                                 # a smoke test
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.search.analytic import flops_paper, param_count  # noqa: E402
from models.search.budget_train import study_arrays, train_arch  # noqa: E402
from models.search.rank import rank_correlation  # noqa: E402
from models.search.space import Legality, get_space, parse_window  # noqa: E402
from neurosim.run.executor import make_executor  # noqa: E402
from neurosim.run.resultlog import ResultLog  # noqa: E402
from neurosim.run.search_eval import SCORES, energy_arrays_task, syops_task  # noqa: E402

SCORE_LABELS = {"flops": "FLOPs (eq. 4-5 x T)", "params": "parameters",
                "syops": "syops ops[0] (released code)", "syops-ac": "syops ACs+MACs, all-ones",
                "energy": "simulated dynamic energy (J)"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="micro-tiny")
    p.add_argument("--budget-params", default=None, help="LOW:HIGH (default: the space's)")
    p.add_argument("--n-archs", type=int, default=24)
    p.add_argument("--workload", default="motion")
    p.add_argument("--img-size", type=int, default=16,
                   help="build the models for this image side (pools dropped from the front "
                        "so the token grid stays the space's); default 16")
    p.add_argument("--T", type=int, default=None, help="time steps (default: the space's)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-n", type=int, default=None, help="training samples (default all)")
    p.add_argument("--test-n", type=int, default=None, help="test samples (default all)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    p.add_argument("--weights-seed", type=int, default=0, help="initial weights and batches")
    p.add_argument("--scores", default=",".join(SCORES))
    p.add_argument("--energy-n", type=int, default=8, help="test inputs for the energy score")
    p.add_argument("--energy-chip", default="tianjic-x16")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--out", default="runs/autost-rank")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--ray-address", default=None)
    p.add_argument("--restart", action="store_true")
    return p.parse_args(argv)


def study_inputs(space, img_size: int, T: int | None):
    """The space's input spec at ``img_size`` with the same token grid (module doc of
    ``models.search.budget_train``)."""
    i = space.inputs
    k, pools = i.img_size // img_size, list(i.pool_stages)
    if img_size < 1 or i.img_size % img_size or (k & (k - 1)) or 2 ** len(pools) < k:
        raise ValueError(f"--img-size {img_size}: must be the space's {i.img_size} divided by "
                         f"a power of two at most 2^{len(pools)}")
    drop = k.bit_length() - 1
    spec = dataclasses.replace(i, img_size=img_size, pool_stages=tuple(pools[drop:]),
                               T=T or i.T)
    if spec.tokens != i.tokens:
        raise ValueError(f"--img-size {img_size} changes the token count {i.tokens} -> "
                         f"{spec.tokens}")
    return spec


def sample_archs(legal: Legality, n: int, seed: int) -> list:
    rng, out, seen = random.Random(seed), [], set()
    for _ in range(1000 * n):
        a = legal.sample(rng)
        if a.key not in seen:
            seen.add(a.key)
            out.append(a)
            if len(out) == n:
                return out
    raise ValueError(f"found only {len(out)} distinct legal architectures of {n}")


def _submit_all(args, ex, archs, spec, data_ref, scores, log):
    d_in = {**vars(spec), "pool_stages": tuple(spec.pool_stages)}
    futs = {}
    for a in archs:
        jobs = {"train": (train_arch, (a.to_dict(), d_in, data_ref),
                          dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                               seed=args.weights_seed))}
        if "syops" in scores or "syops-ac" in scores:
            jobs["syops"] = (syops_task, (a.to_dict(), d_in, args.weights_seed), {})
        if "energy" in scores:
            jobs["energy"] = (energy_arrays_task, (a.to_dict(), d_in, data_ref, args.energy_n,
                                            args.energy_chip, args.weights_seed), {})
        for kind, (fn, fargs, kw) in jobs.items():
            key = f"{kind}:{a.key}"
            if key not in log.done:
                futs[ex.submit(fn, *fargs, **kw)] = key
    return futs


def run_tasks(args, archs, spec, data, scores, log) -> None:
    with make_executor(args.workers, args.ray_address) as ex:
        futs = _submit_all(args, ex, archs, spec, ex.put(data), scores, log)
        print(f"{len(futs)} tasks to run ({len(log.done)} done earlier) on {ex.name}",
              file=sys.stderr, flush=True)
        for fut, value in ex.as_completed(list(futs)):
            key = futs[fut]
            log.append(key, {"value": value})
            print(f"  done {key}", file=sys.stderr, flush=True)


def collect(archs, spec, scores, log) -> list[dict]:
    rows = []
    for a in archs:
        tr = log.done[f"train:{a.key}"]["value"]
        row = {"arch": a.key, "embed_dim": a.embed_dim, "depth": a.depth,
               "accuracy": tr["accuracy"], "best_accuracy": tr["best_accuracy"],
               "train_s": tr["train_s"], "flops": flops_paper(a, spec),
               "params": param_count(a, spec)}
        if f"syops:{a.key}" in log.done:
            s = log.done[f"syops:{a.key}"]["value"]
            row["syops"], row["syops-ac"] = s["ops"], s["acs"] + s["macs"]
        if f"energy:{a.key}" in log.done:
            row["energy"] = log.done[f"energy:{a.key}"]["value"]
        rows.append(row)
    return rows


def correlations(rows, scores, n_boot: int, seed: int) -> dict:
    acc = [r["accuracy"] for r in rows]
    return {s: rank_correlation([r[s] for r in rows], acc, n_boot=n_boot, seed=seed)
            for s in scores}


def _f(v: float) -> str:
    return "n/a" if v != v else f"{v:+.2f}"          # NaN: a constant score or accuracy


def _ci(c, k):
    lo, hi = c[f"{k}_ci"]
    return "n/a" if lo != lo else f"[{lo:+.2f}, {hi:+.2f}]"


def table_md(corr: dict, n: int) -> str:
    """The rank table (markdown); n/a where a coefficient is undefined (a constant column)."""
    lines = [f"| score ({n} architectures) | Kendall tau | 95% CI | Spearman rho | 95% CI |",
             "|---|---:|---|---:|---|"]
    for s, c in corr.items():
        lines.append(f"| {SCORE_LABELS[s]} | {_f(c['kendall'])} | {_ci(c, 'kendall')} | "
                     f"{_f(c['spearman'])} | {_ci(c, 'spearman')} |")
    return "\n".join(lines) + "\n"


def scatter(rows, corr, path: Path, title: str) -> None:
    """One panel per score: score (x) vs trained accuracy (y), three panels a row."""
    import math

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scores = list(corr)
    ncols = min(3, len(scores))
    nrows = math.ceil(len(scores) / ncols)
    with plt.rc_context({"font.size": 10, "axes.spines.top": False,
                         "axes.spines.right": False}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.7 * nrows),
                                 sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(scores):
                ax.set_visible(False)
                continue
            s = scores[k]
            x = [r[s] for r in rows]
            ax.scatter(x, [r["accuracy"] for r in rows], s=32, color="#1f77b4",
                       edgecolor="k", linewidth=0.5)
            if min(x) > 0 and max(x) / min(x) > 5:
                ax.set_xscale("log")
            c = corr[s]
            ax.set_title(f"Kendall {_f(c['kendall'])} {_ci(c, 'kendall')}\n"
                         f"Spearman {_f(c['spearman'])} {_ci(c, 'spearman')}", fontsize=9)
            ax.set_xlabel(SCORE_LABELS[s])
            ax.grid(alpha=0.3)
            if k % ncols == 0:
                ax.set_ylabel("test accuracy after training")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        fig.savefig(path, dpi=120, metadata={"Software": None})
        plt.close(fig)


def write_outputs(out: Path, args, spec, rows, corr, seconds: float) -> None:
    with open(out / "architectures.csv", "w", newline="") as f:
        cols = list(rows[0])
        w = csv.DictWriter(f, cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (out / "rank_table.md").write_text(table_md(corr, len(rows)))
    with open(out / "rank_table.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["score", "kendall", "kendall_lo", "kendall_hi", "spearman", "spearman_lo",
                    "spearman_hi", "n", "n_boot_undefined"])
        for s, c in corr.items():
            w.writerow([s, c["kendall"], *c["kendall_ci"], c["spearman"], *c["spearman_ci"],
                        c["n"], c["n_boot_undefined"]])
    title = (f"AutoST {args.space}: {len(rows)} architectures, {args.workload} "
             f"{spec.img_size}x{spec.img_size}, {args.epochs} epochs")
    scatter(rows, corr, out / "rank_scatter.png", title)
    (out / "study.json").write_text(json.dumps(
        {"args": vars(args), "inputs": dataclasses.asdict(spec), "correlations": corr,
         "architectures": rows, "seconds": seconds}, indent=2, default=str) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    scores = [s.strip() for s in args.scores.split(",") if s.strip()]
    bad = [s for s in scores if s not in SCORES]
    if bad or not scores:
        raise SystemExit(f"unknown score(s) {bad}; scores: {', '.join(SCORES)}")
    space = get_space(args.space)
    spec = study_inputs(space, args.img_size, args.T)
    window = parse_window(args.budget_params) if args.budget_params else None
    archs = sample_archs(Legality(space, window), args.n_archs, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = {k: v for k, v in vars(args).items()
              if k not in ("out", "workers", "ray_address", "restart", "n_boot", "scores")}
    log = ResultLog(out / "study.jsonl", header, restart=args.restart)
    data = study_arrays(args.workload, spec, args.train_n, args.test_n)
    run_tasks(args, archs, spec, data, scores, log)
    rows = collect(archs, spec, scores, log)
    corr = correlations(rows, scores, args.n_boot, args.seed)
    write_outputs(out, args, spec, rows, corr, time.perf_counter() - t0)
    print(table_md(corr, len(rows)))
    print(f"written to {out}/ (rank_table.md, rank_table.csv, architectures.csv, "
          f"rank_scatter.png, study.json) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
