"""Auto-Spikformer acceptance study at this machine's scale (issue #17; seed auto-spikformer).

Steps (each resumable: a rerun with the same --out skips what is done):

1. ``search``: ``neurosim search autospikformer`` on the sync chip with the paper's evolution
   settings, ``--random`` as many random candidates as the search evaluated, every candidate
   required to fit the async chip too (``--also-fit``), so the chosen one runs on both: the
   supernet, the evolved-vs-random front with hypervolumes, the chosen subnet's checkpoint.
2. ``inherit``: for ``--n-subnets`` random subnets, validation accuracy with inherited supernet
   weights (BN re-estimated) against the same subnet trained from scratch for the same epochs.
3. ``neurons``: neuron-only search (thresholds and taus per block; with ``--neuron-T`` also
   the time steps, the paper's S_S) on one fixed architecture (``--fixed``), inherited
   weights, on ``--neuron-chip`` (default speck-xl, async), against Spikformer's default
   neurons (v_th 1, tau 2, the --fixed T): the lowest simulated energy at <= 1 point
   validation accuracy loss, then both on the test split and both on the other chip.
4. ``ranks``: Kendall tau between formula / paper-mode energy and simulated energy over the
   search's random candidates on the sync chip and the same candidates on the async chip,
   with the candidates whose ranks differ most and their static share and T.
5. ``report``: ``neurosim compare`` of the chosen subnet on both chips (test split) and
   ``neurosim report`` of that run.

    nice -n 10 python scripts/autospikformer_study.py --out /work/runs/autospikformer \
        --supernet-epochs 20 --population 20 --generations 5 --n 64 \
        --neuron-population 12 --neuron-generations 2 --workers 1   # see the README section
    python scripts/autospikformer_study.py --smoke --out /tmp/as-smoke       # ~1 minute
    # on another supernet, one step (its supernet in <out>/search/supernet.safetensors):
    nice -n 10 python scripts/autospikformer_study.py --out runs/autospikformer-sandwich40 \
        --steps neurons --neuron-T 2,3,4,5,6 --neuron-population 20 --neuron-generations 5
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.search.autospikformer import Candidate, get_space  # noqa: E402
from models.search.rank import rank_correlation  # noqa: E402
from neurosim.cli.main import main as neurosim  # noqa: E402
from neurosim.run.autospikformer_eval import evaluate_candidate, search_data  # noqa: E402
from neurosim.run.executor import make_executor  # noqa: E402

SYNC, ASYNC = "tianjic-x16", "speck-xl"
STEPS = ("search", "inherit", "neurons", "ranks", "report")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--space", default="digits")
    p.add_argument("--supernet-epochs", type=int, default=20)
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--n", type=int, default=64, help="validation inputs simulated")
    p.add_argument("--val-n", type=int, default=287)
    p.add_argument("--n-subnets", type=int, default=5)
    p.add_argument("--neuron-population", type=int, default=20)
    p.add_argument("--neuron-generations", type=int, default=5)
    p.add_argument("--fixed", default="64,4,4,4",
                   help="neuron study architecture: width,MLP ratio,heads,T (depth 1)")
    p.add_argument("--neuron-T", default=None, metavar="T,T,...",
                   help="neuron study: also search the time steps (the paper's S_S: threshold, "
                        "tau and time step), e.g. 2,3,4,5,6; the default neurons keep the "
                        "--fixed T (default: T fixed)")
    p.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS),
                   help="steps to run (default all; each needs the search step's supernet)")
    p.add_argument("--neuron-chip", default=ASYNC,
                   help=f"chip of the neuron-only search ({ASYNC}: async; or {SYNC}: sync)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true",
                   help="tiny settings for a quick end-to-end check")
    a = p.parse_args(argv)
    if a.smoke:
        a.supernet_epochs, a.population, a.generations, a.n = 1, 6, 1, 8
        a.n_subnets, a.neuron_population, a.neuron_generations = 2, 4, 1
        a.train_n = 64
    else:
        a.train_n = None
    return a


def _common(a) -> list[str]:
    out = ["--n", str(a.n), "--val-n", str(a.val_n), "--seed", str(a.seed), "--workers",
           str(a.workers), "--quiet"]
    return out + (["--train-n", str(a.train_n), "--recal-n", "32", "--calib-n", "8"]
                  if a.train_n else [])


def _mode(chip: str) -> str:
    from chips.spec import load_chip
    return load_chip(chip).kind


def _search(a, out: Path) -> dict:
    d = out / "search"
    if not (d / "search.json").exists():
        s = a.population
        argv = ["search", "autospikformer", "--space", a.space, "--out", str(d),
                "--supernet-epochs", str(a.supernet_epochs), "--population", str(s),
                "--generations", str(a.generations), "--parents", str(max(2, 2 * s // 5)),
                "--crossovers", str(round(0.3 * s)), "--mutations", str(s - round(0.3 * s)),
                "--random", str(s * (a.generations + 1)), "--also-fit", ASYNC, *_common(a)]
        if neurosim(argv) != 0:
            raise SystemExit("search failed")
    return json.loads((d / "search.json").read_text())


def _inherit(a, out: Path, space, data) -> list:
    import torch

    from models.registry import build
    from models.search.supernet import Supernet, recalibrate_bn
    from models.train import TrainConfig, accuracy, fit
    path = out / "inherit.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rng = random.Random(a.seed + 7)
    net = Supernet.load(out / "search" / "supernet.safetensors", space)
    cands = [space.sample(rng) for _ in range(a.n_subnets)]
    for c in cands[len(rows):]:
        m = recalibrate_bn(net.extract(c), data["x_train"][:256])
        inh = accuracy(m, data["x_val"], data["y_val"])
        torch.manual_seed(a.seed)
        scratch = build("spikformer", c.model_config(space.inputs))
        t0 = time.perf_counter()
        fit(scratch, data["x_train"], data["y_train"], data["x_val"], data["y_val"],
            TrainConfig(epochs=a.supernet_epochs, lr=5e-3, shift_px=0, seed=a.seed, threads=1),
            progress=False)
        rows.append({"key": c.key, "inherited": inh,
                     "scratch": accuracy(scratch, data["x_val"], data["y_val"]),
                     "scratch_train_s": time.perf_counter() - t0})
        path.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _neurons(a, out: Path, space, data) -> dict:
    D, r, h, T = (float(v) for v in a.fixed.split(","))
    Ts = [int(T)] if a.neuron_T is None else [int(v) for v in a.neuron_T.split(",")]
    d = out / ("neurons" if a.neuron_T is None else "neurons-T")
    toml = d / "space.toml"
    d.mkdir(parents=True, exist_ok=True)
    toml.write_text(
        f'name = "neurons-D{int(D)}"\nembed_dim = [{int(D)}]\nmlp_ratio = [{r:g}]\n'
        f"num_heads = [{int(h)}]\ndepth = [1]\nthreshold = {list(space.thresholds)}\n"
        f"tau = {list(space.taus)}\nT = {Ts}\n[inputs]\nimg_size = "
        f"{space.inputs.img_size}\nin_channels = {space.inputs.in_channels}\nnum_classes = "
        f"{space.inputs.num_classes}\npool_stages = {list(space.inputs.pool_stages)}\n")
    if not (d / "search.json").exists():
        s = a.neuron_population
        argv = ["search", "autospikformer", "--space", str(toml), "--out", str(d),
                "--supernet", str(out / "search" / "supernet.safetensors"), "--population",
                str(s), "--generations", str(a.neuron_generations), "--parents",
                str(max(2, 2 * s // 5)), "--crossovers", str(round(0.3 * s)), "--mutations",
                str(s - round(0.3 * s)), "--chip", a.neuron_chip, "--mode", _mode(a.neuron_chip),
                *_common(a)]
        if neurosim(argv) != 0:
            raise SystemExit("neuron search failed")
    res = json.loads((d / "search.json").read_text())
    default = Candidate(int(D), (r,), (int(h),), (1.0,), (2.0,), int(T))
    sn = str(out / "search" / "supernet.safetensors")
    kw = dict(chip=a.neuron_chip, mode=_mode(a.neuron_chip), n=a.n,
              **({"calib_n": 8, "recal_n": 32} if a.train_n else {}))
    base = evaluate_candidate(default.to_dict(), sn, space.to_dict(), data, **kw)
    ok = [r_ for r_ in res["search"] if r_["accuracy"] >= base["accuracy"] - 0.01]
    best = min(ok, key=lambda r_: r_["energy_j"]) if ok else None
    test = {k: data[k] for k in ("x_train", "y_train")}
    test.update(x_val=data["x_test"], y_val=data["y_test"])
    out_d = {"default": {"key": default.key, **base}, "best_within_1pt": best}
    if best:
        c = next(Candidate.from_dict(r_["candidate"]) for r_ in
                 [json.loads(line) for line in (d / "evaluations.jsonl").read_text()
                  .splitlines()[1:]] if r_["key"] == best["key"])
        out_d["test_split"] = {
            "default": evaluate_candidate(default.to_dict(), sn, space.to_dict(), test, **kw),
            "best": evaluate_candidate(c.to_dict(), sn, space.to_dict(), test, **kw)}
        out_d["energy_saving"] = 1 - best["energy_j"] / base["energy_j"]
        other = SYNC if a.neuron_chip != SYNC else ASYNC       # the same two on the other chip
        kw_o = {**kw, "chip": other, "mode": _mode(other)}
        o_def = evaluate_candidate(default.to_dict(), sn, space.to_dict(), data, **kw_o)
        o_best = evaluate_candidate(c.to_dict(), sn, space.to_dict(), data, **kw_o)
        out_d["other_chip"] = {"chip": other, "default": o_def, "best": o_best,
                               "energy_saving": 1 - o_best["energy_j"] / o_def["energy_j"]}
    (d / "neuron_study.json").write_text(json.dumps(out_d, indent=2) + "\n")
    return out_d


def _ranks(a, out: Path, space, data, search: dict) -> dict:
    path = out / "ranks.json"
    if path.exists():
        return json.loads(path.read_text())
    log = [json.loads(line) for line in
           (out / "search" / "evaluations.jsonl").read_text().splitlines()[1:]]
    by_key = {r["key"]: r for r in log}
    rows = [by_key[r["key"]] for r in search["random"]]
    sn = str(out / "search" / "supernet.safetensors")
    kw = dict(n=a.n, **({"calib_n": 8, "recal_n": 32} if a.train_n else {}))
    with make_executor(a.workers) as ex:
        ref = ex.put(data)
        futs = [ex.submit(evaluate_candidate, r["candidate"], sn, space.to_dict(), ref,
                          chip=ASYNC, mode="async", **kw) for r in rows]
        asy = {f: v for f, v in ex.as_completed(futs)}
        asy = [asy[f] for f in futs]
    result = {"n": len(rows)}
    for chip, evals in ((SYNC, rows), (ASYNC, asy)):
        sim = [e["energy_j"] for e in evals]
        res = {}
        for other in ("formula_j", "paper_j", "dynamic_j"):
            if len(sim) >= 3:
                res[other] = rank_correlation([e[other] for e in evals], sim, n_boot=500)
        rs = np.argsort(np.argsort(sim))
        rf = np.argsort(np.argsort([e["formula_j"] for e in evals]))
        order = np.argsort(-np.abs(rs - rf))[:5]
        res["most_differing"] = [
            {"key": rows[i]["key"], "rank_simulated": int(rs[i]), "rank_formula": int(rf[i]),
             "energy_j": evals[i]["energy_j"], "formula_j": evals[i]["formula_j"],
             "static_share": evals[i]["static_j"] / evals[i]["energy_j"],
             "T": rows[i]["candidate"]["T"], "firing_rate": evals[i]["firing_rate"]}
            for i in order]
        result[chip] = res
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _report(a, out: Path, search: dict) -> Path:
    d = out / "report"
    if not (d / "result.json").exists():
        argv = ["compare", "--checkpoint", search["chosen_checkpoint"], "--chips",
                f"{SYNC},{ASYNC}", "--workload", "digits", "--n", str(a.n), "--out", str(d),
                "--quiet"]
        if neurosim(argv) != 0:
            raise SystemExit("compare failed")
    if neurosim(["report", str(d), "--quiet"]) != 0:
        raise SystemExit("report failed")
    return d


def main(argv=None) -> int:
    a = parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(a.space)
    data = search_data("digits", space.inputs, a.val_n, a.seed, a.train_n)
    summary = {}
    if {"search", "ranks", "report"} & set(a.steps):
        search = _search(a, out)
        summary = {"search": {k: search[k] for k in ("best", "fronts", "settings")
                              if k in search},
                   "n_infeasible": len(search["infeasible"])}
    if "inherit" in a.steps:
        summary["inherit"] = _inherit(a, out, space, data)
    if "neurons" in a.steps:
        summary["neurons"] = _neurons(a, out, space, data)
    if "ranks" in a.steps:
        summary["ranks"] = _ranks(a, out, space, data, search)
    if "report" in a.steps:
        summary["report_dir"] = str(_report(a, out, search))
    name = "study.json" if set(a.steps) == set(STEPS) else f"study-{'-'.join(a.steps)}.json"
    (out / name).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
