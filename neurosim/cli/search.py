"""``neurosim search autost``: the AutoST evolutionary search over a search space under a
parameter window, ranked by a training-free score."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from neurosim.cli.common import UsageError, chatty, emit

EVAL_LOG = "evaluations.jsonl"
MAX_MISFITS = 30     # --fits: give up when this many candidates fail and none fits


def _spaces_lines() -> list[str]:
    from models.search.space import fmt_count, fmt_window, get_space, list_spaces
    lines = []
    for name in list_spaces():
        s = get_space(name)
        lo, hi = s.param_range()
        lines.append(f"  {name:12s} embed {', '.join(map(str, s.embed_dims))}; MLP ratio "
                     f"{', '.join(f'{r:g}' for r in s.mlp_ratios)}; heads "
                     f"{', '.join(map(str, s.heads))}; depth "
                     f"{s.depths[0]}..{s.depths[-1]}; {fmt_count(lo)}..{fmt_count(hi)} "
                     f"parameters; default window {fmt_window(s.window)}")
        lines.append(f"  {'':12s} {s.description}")
    return lines


def _train_command(arch, inputs) -> str:
    cfg = arch.model_config(inputs)
    sets = " ".join(f"--set {k}={json.dumps(v, separators=(',', ':'))}"
                    for k, v in cfg.items())
    return f"neurosim train --model autost-tiny {sets} --workload WORKLOAD --out OUT.safetensors"


def _legality(args, space):
    from models.search.space import Legality, SearchSpaceError, parse_window
    window = parse_window(args.budget_params) if args.budget_params else None
    checks = ()
    if args.fits:
        import numpy as np

        from chips.spec import load_chip
        from neurosim.run.search_eval import fits_reason
        load_chip(args.fits)
        i = space.inputs
        x_cal = np.random.default_rng(0).random((8, i.in_channels, i.img_size, i.img_size),
                                                dtype=np.float32)
        memo, state = {}, {"fit": 0, "misfits": 0}

        def fits(a):
            if a.key not in memo:
                memo[a.key] = fits_reason(a, i, args.fits, x_cal, args.weights_seed)
                state["fit" if memo[a.key] is None else "misfits"] += 1
                if not state["fit"] and state["misfits"] >= MAX_MISFITS:
                    raise SearchSpaceError(
                        f"the first {MAX_MISFITS} candidates in the window all fail --fits "
                        f"{args.fits}, e.g. {a.key}: {memo[a.key]}; choose a larger chip or a "
                        f"smaller window")
            return memo[a.key]
        checks = (fits,)
    return Legality(space, window, checks)


def _eval_log(args, space):
    """The resumable log of scores (only for the scores that need a model)."""
    from neurosim.run.resultlog import ResultLog
    header = {"space": space.to_dict(), "score": args.score, "weights_seed": args.weights_seed,
              "workload": args.workload, "n": args.n, "calib_n": args.calib_n,
              "chip": args.energy_chip}
    return ResultLog(Path(args.out) / EVAL_LOG, header, restart=args.restart)


def _run(args, space, legal, on_gen):
    from models.search.evolution import evolve
    from neurosim.run.executor import make_executor
    from neurosim.run.search_eval import ANALYTIC, make_scorer
    settings = dict(population=args.population, generations=args.generations,
                    parents=args.parents, mutations=args.mutations,
                    crossovers=args.crossovers, m_prob=args.m_prob, s_prob=args.s_prob,
                    seed=args.seed, on_generation=on_gen)
    if args.score in ANALYTIC:
        return evolve(legal, make_scorer(args.score, space.inputs, None), **settings), None
    log = _eval_log(args, space) if args.out else None
    cache = {k: r["score"] for k, r in log.done.items()} if log else {}
    on_score = (lambda a, v: log.append(a.key, {"score": v})) if log else None
    with make_executor(args.workers, args.ray_address) as ex:
        scorer = make_scorer(args.score, space.inputs, ex, seed=args.weights_seed,
                             workload=args.workload, n=args.n, calib_n=args.calib_n,
                             chip=args.energy_chip, cache=cache, on_score=on_score)
        return evolve(legal, scorer, **settings), log


def _lines(args, space, legal, res, log) -> list[str]:
    from models.search.analytic import flops_paper
    from models.search.space import fmt_count, fmt_window
    s, b = res.settings, res.best
    lines = [f"AutoST search: space {space.name} ({space.description})",
             f"  window {fmt_window(legal.window)} parameters, score {args.score}; population "
             f"{s['population']}, {s['generations']} generations, {s['parents']} parents, "
             f"{s['mutations']} mutations + {s['crossovers']} crossovers, m_prob "
             f"{s['m_prob']}, s_prob {s['s_prob']}, seed {s['seed']}",
             f"  {len(res.scored)} candidates scored"
             + (f" ({len(log.done)} scores in {log.path}, {log.discarded} half-written "
                f"redone)" if log else ""),
             f"best: width {b.embed_dim}, {b.depth} blocks, MLP ratios "
             f"{','.join(f'{r:g}' for r in b.mlp_ratios)}, heads {','.join(map(str, b.heads))}",
             f"  parameters {legal.params(b):,}  FLOPs (eq. 4-5 x T) "
             f"{fmt_count(flops_paper(b, space.inputs))}  score {res.best_score:.6g}",
             "top 5:"]
    for a, v in res.ranked()[:5]:
        lines.append(f"  {a.key:48s} score {v:.6g}  params {fmt_count(legal.params(a))}")
    if args.score in ("flops", "params"):
        lines.append("  (head counts change neither FLOPs nor parameters: candidates that "
                     "differ only in heads tie)")
    lines += ["train it:", f"  {_train_command(b, space.inputs)}"]
    return lines


def cmd_search(args) -> int:
    from models.search.space import get_space
    if args.list_spaces:
        print("\n".join(["search spaces:"] + _spaces_lines()))
        return 0
    if args.workers == 0 and args.ray_address:
        raise UsageError("--workers 0 runs in this process and --ray-address joins a cluster: "
                         "give one or the other")
    space = get_space(args.space)
    legal = _legality(args, space)

    def on_gen(rec):
        if chatty(args):
            print(f"  generation {rec['generation']}: best {rec['best_score']:.6g} "
                  f"({rec['mutations']} mutations, {rec['crossovers']} crossovers, "
                  f"{rec['random']} random)", file=sys.stderr, flush=True)

    res, log = _run(args, space, legal, on_gen)
    payload = {"space": space.to_dict(), "window": list(legal.window), "score": args.score,
               **res.to_dict(params=legal.params)}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "search.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        payload["written"] = str(out / "search.json")
    lines = _lines(args, space, legal, res, log)
    if args.out:
        lines.append(f"written: {Path(args.out) / 'search.json'}")
    emit(args, payload, lines)
    return 0
