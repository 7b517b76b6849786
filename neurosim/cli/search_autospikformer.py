"""``neurosim search autospikformer``: Auto-Spikformer's one-shot search with the chip in the
loop: train (or load) a weight-entanglement supernet, evolve subnets by F_AEB with the energy
simulated on a chip, optionally evaluate as many random candidates for comparison, and write
the front plot, the chosen subnet's checkpoint and every evaluation (resumable)."""
from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from neurosim.cli.common import UsageError, chatty, emit

EVAL_LOG = "evaluations.jsonl"
SUPERNET_FILE = "supernet.safetensors"
SUPERNET_RECORD = "supernet.json"
CHOSEN_FILE = "chosen.safetensors"
PLOT_FILE = "front_search_vs_random.png"
PARENTS_BY = {"faeb": "F_AEB", "nsga2": "NSGA-II parents"}     # --parents-by: front label


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _supernet(args, space, data, out: Path) -> Path:
    """The supernet checkpoint: --supernet, else ``out/supernet.safetensors`` when it was
    trained with the same settings, else trained now."""
    from models.search.supernet import Supernet, train_supernet
    if args.supernet:
        p = Path(args.supernet)
        Supernet.load(p, space)                         # the right space, or a clear error
        return p
    p, rec_path = out / SUPERNET_FILE, out / SUPERNET_RECORD
    want = {"space": space.to_dict(), "epochs": args.supernet_epochs, "seed": args.seed,
            "lr": args.lr, "val_n": args.val_n, "train_n": args.train_n,
            "workload": args.workload, "sampling": args.sampling}
    if args.sampling == "sandwich":
        want["n_random"] = args.n_random
    if p.exists() and rec_path.exists() and not args.restart:
        rec = json.loads(rec_path.read_text())
        if rec.get("settings") == want:
            return p
    if chatty(args):
        rule = ("one uniformly sampled subnet per step" if args.sampling == "uniform" else
                f"sandwich: largest + smallest + {args.n_random} random subnets per step")
        print(f"training the supernet: {args.supernet_epochs} epoch(s) on "
              f"{len(data['y_train'])} rows, {rule}", file=sys.stderr, flush=True)
    net, rec = train_supernet(space, data["x_train"], data["y_train"], data["x_val"],
                              data["y_val"], epochs=args.supernet_epochs, seed=args.seed,
                              lr=args.lr, sampling=args.sampling, n_random=args.n_random)
    net.save(p, {"supernet": rec})
    rec_path.write_text(json.dumps({"settings": want, "training": rec}, indent=2) + "\n")
    return p


def _checks(args, space, data):
    """Feasibility checks: the search chip and every --also-fit chip (memo by structure)."""
    from chips.spec import load_chip
    from neurosim.run.autospikformer_eval import structure_reason
    chips = [args.chip] + list(args.also_fit or [])
    for c in chips:
        load_chip(c)
    x_cal = data["x_train"][:args.calib_n]
    memo: dict = {}

    def fits(c):
        k = c.structure_key
        if k not in memo:
            memo[k] = structure_reason(c, space.inputs, chips, x_cal, args.seed)
        return memo[k]
    return (fits,)


class _Evaluator:
    """``score(list of Candidate) -> list of raw evaluations`` on the executor, consulting and
    appending to the resumable log."""

    def __init__(self, ex, log, supernet: Path, space, data_ref, args):
        self.ex, self.log, self.path, self.space = ex, log, str(supernet), space
        self.data_ref, self.args = data_ref, args

    def __call__(self, cands: list) -> list:
        from neurosim.run.autospikformer_eval import evaluate_candidate
        a = self.args
        todo = {}
        for c in cands:
            if c.key not in self.log.done and c.key not in {d.key for d in todo.values()}:
                fut = self.ex.submit(evaluate_candidate, c.to_dict(), self.path,
                                     self.space.to_dict(), self.data_ref, chip=a.chip,
                                     mode=a.mode, n=a.n, calib_n=a.calib_n, recal_n=a.recal_n)
                todo[fut] = c
        for fut, raw in self.ex.as_completed(list(todo)):
            c = todo[fut]
            if "infeasible" in raw:
                raise ValueError(f"candidate {c.key} passed the structure check but its "
                                 f"trained graph does not fit {a.chip}: {raw['infeasible']}")
            self.log.append(c.key, {"candidate": c.to_dict(), **raw})
        return [self.log.done[c.key] for c in cands]


def _random_candidates(feas, n: int, seed: int, exclude=()) -> list:
    """``n`` distinct feasible random candidates (``random.Random(seed)``)."""
    rng, out, seen = random.Random(seed), [], set(exclude)
    for _ in range(2000 * max(n, 1)):
        if len(out) >= n:
            break
        c = feas.space.sample(rng)
        if c.key not in seen and feas.reason(c) is None:
            seen.add(c.key)
            out.append(c)
    return out


def _search_seed(args) -> int:
    return args.seed if args.search_seed is None else args.search_seed


def _settings(args) -> dict:
    return dict(population=args.population, generations=args.generations,
                parents=args.parents, mutations=args.mutations, crossovers=args.crossovers,
                m_prob=args.m_prob, s_prob=args.s_prob, seed=_search_seed(args))


def _reuse(log, paths) -> int:
    """Copy into ``log`` the evaluations of other logs with the same header (an evaluation
    depends only on the candidate and the header); returns how many were copied."""
    from neurosim.run.resultlog import ResultLog, ResultLogError
    n = 0
    for path in paths:
        if not Path(path).is_file():
            raise UsageError(f"--evaluations-from {path}: no such file")
        if Path(path).resolve() == log.path.resolve():
            continue
        try:
            other = ResultLog(path, log.header)
        except ResultLogError as e:
            raise UsageError(f"--evaluations-from {path}: its evaluations were made with "
                             f"another supernet, chip, mode or data ({e})") from None
        for key, rec in other.done.items():
            if key not in log.done:
                log.append(key, {k: v for k, v in rec.items() if k != "key"})
                n += 1
    return n


def _row(raw: dict, fitness: float | None = None) -> dict:
    keep = ("accuracy", "energy_j", "dynamic_j", "static_j", "paper_j", "formula_j",
            "firing_rate", "chip_accuracy", "latency_s")
    row = {"key": raw["key"], **{k: raw[k] for k in keep}}
    if fitness is not None:
        row["fitness"] = fitness
    return row


def _chosen(args, space, supernet: Path, data, best, out: Path) -> Path:
    from models.checkpoint import save_checkpoint
    from models.search.supernet import Supernet, recalibrate_bn
    model = Supernet.load(supernet, space).extract(best)
    recalibrate_bn(model, data["x_train"][:args.recal_n])
    return save_checkpoint(model, out / CHOSEN_FILE, {"auto_spikformer": {
        "candidate": best.to_dict(), "supernet": str(supernet),
        "supernet_sha256_16": _digest(supernet)}})


def _check_args(args):
    from models.search.autospikformer import check_alpha
    if args.workers == 0 and args.ray_address:
        raise UsageError("--workers 0 runs in this process and --ray-address joins a cluster: "
                         "give one or the other")
    check_alpha(args.alpha)
    for k in ("n", "calib_n", "recal_n", "val_n", "supernet_epochs", "train_n"):
        if getattr(args, k) is not None and getattr(args, k) < 1:
            raise UsageError(f"--{k.replace('_', '-')} must be >= 1, got {getattr(args, k)}")
    if args.random < 0:
        raise UsageError(f"--random must be >= 0, got {args.random}")
    if args.n_random < 0:
        raise UsageError(f"--n-random must be >= 0, got {args.n_random}")


def cmd_autospikformer(args) -> int:
    from chips.spec import load_chip
    from models.search.autospikformer import Feasibility, aeb_fitness, get_space
    from models.search.evolution import evolve
    from models.search.nsga import ParetoParents
    from neurosim.run.autospikformer_eval import ENERGY_KEYS, search_data, warm_up
    from neurosim.run.executor import make_executor
    from neurosim.run.resultlog import ResultLog
    _check_args(args)
    space = get_space(args.space)
    kind = load_chip(args.chip).kind
    if kind != args.mode:
        raise UsageError(f"chip {args.chip!r} is {kind}: search it with --mode {kind}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    energy = ENERGY_KEYS[args.energy]

    def on_gen(rec):
        if chatty(args):
            print(f"  generation {rec['generation']}: best F_AEB {rec['best_score']:.4f} "
                  f"({rec['mutations']} mutations, {rec['crossovers']} crossovers, "
                  f"{rec['random']} random)", file=sys.stderr, flush=True)

    with make_executor(args.workers, args.ray_address) as ex:
        # workers import torch and the simulator while this process trains the supernet
        ex.submit(warm_up)
        data = search_data(args.workload, space.inputs, args.val_n, args.seed, args.train_n)
        supernet = _supernet(args, space, data, out)
        feas = Feasibility(space, _checks(args, space, data))
        header = {"space": space.to_dict(), "supernet_sha256_16": _digest(supernet),
                  "chip": args.chip, "mode": args.mode, "n": args.n, "calib_n": args.calib_n,
                  "recal_n": args.recal_n, "val_n": args.val_n, "train_n": args.train_n,
                  "seed": args.seed, "workload": args.workload}
        log = ResultLog(out / EVAL_LOG, header, restart=args.restart)
        reused = _reuse(log, args.evaluations_from)
        if reused and chatty(args):
            print(f"reused {reused} evaluation(s) from {len(args.evaluations_from)} log(s)",
                  file=sys.stderr, flush=True)
        score = _Evaluator(ex, log, supernet, space, ex.put(data), args)
        res = evolve(feas, score, fitness=aeb_fitness(args.alpha, energy), on_generation=on_gen,
                     parent_key=ParetoParents(energy) if args.parents_by == "nsga2" else None,
                     **_settings(args))
        rand = _random_candidates(feas, args.random, _search_seed(args) + 1)
        rand_raw = score(rand) if rand else []
    search_rows = [_row(res.raw[c.key], f) for c, f in res.ranked()]
    evolved = f"evolved ({PARENTS_BY[args.parents_by]})"
    payload = {"space": space.to_dict(), "chip": args.chip, "mode": args.mode,
               "alpha": args.alpha, "energy": args.energy, "settings": res.settings,
               "parents_by": args.parents_by,
               "best": {"candidate": res.best.to_dict(), **_row(res.raw[res.best.key],
                                                                res.best_score)},
               "search": search_rows, "history": res.history,
               "scoring_order": [c.key for c, _ in res.scored],
               "infeasible": dict(sorted(feas.rejected.items())),
               "random": [_row(r) for r in rand_raw], "supernet": str(supernet),
               "evaluations_log": str(log.path)}
    lines = [f"Auto-Spikformer search: space {space.name}, chip {args.chip} ({args.mode}), "
             f"F_AEB alpha {args.alpha} on {args.energy} energy, parents by "
             f"{PARENTS_BY[args.parents_by]}",
             f"  {len(res.scored)} candidates evaluated ({len(feas.rejected)} rejected as "
             f"infeasible, with the mapper's reason in search.json)",
             f"best: {res.best.key}",
             f"  validation accuracy {100 * res.raw[res.best.key]['accuracy']:.2f}%, energy "
             f"{1e6 * res.raw[res.best.key][energy]:.4g} uJ per inference ({args.energy})"]
    if rand_raw:
        from neurosim.report.search_front import compare_fronts, plot_fronts
        sets = {evolved: ([r[energy] for r in search_rows],
                                    [r["accuracy"] for r in search_rows]),
                "random": ([r[energy] for r in rand_raw], [r["accuracy"] for r in rand_raw])}
        fronts = compare_fronts(sets)
        from chips.spec import load_chip
        plot_fronts(sets, out / PLOT_FILE, title=f"Auto-Spikformer, space {space.name}, on "
                    f"{load_chip(args.chip).name} ({args.mode}):\nevolved vs random, "
                    f"{args.energy} energy")
        payload["fronts"] = {k: {kk: vv for kk, vv in v.items() if kk != "front"}
                             for k, v in fronts.items()}
        lines.append("hypervolume (normalised): " + ", ".join(
            f"{k} {fronts[k]['hypervolume_normalised']:.4f}" for k in sets))
        lines.append(f"plot: {out / PLOT_FILE}")
    chosen = _chosen(args, space, supernet, data, res.best, out)
    payload["chosen_checkpoint"] = str(chosen)
    (out / "search.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    lines += [f"chosen subnet: {chosen}", "  report it on both chips: neurosim compare "
              f"--checkpoint {chosen} --chips tianjic-x16 speck-xl --workload {args.workload} "
              f"--out RUN_DIR", f"written: {out / 'search.json'}"]
    emit(args, payload, lines)
    return 0
