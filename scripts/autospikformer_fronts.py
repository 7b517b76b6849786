"""Evolved vs random fronts of the Auto-Spikformer search over several search seeds (issue #17):
does the evolution find a better energy-accuracy front than random sampling of as many
candidates?

For each search seed, three sets of the same size on one supernet, chip and data:
``faeb`` (parents by F_AEB, alpha 0.5: the paper), ``nsga2`` (parents by non-dominated front
and crowding distance; ``--parents-by nsga2``) and ``random`` (that many distinct feasible
random candidates). Every run reuses the evaluations of the runs before it
(``--evaluations-from``: an evaluation depends only on the candidate, the supernet, the chip
and the data), so a candidate is simulated once. Hypervolumes are recomputed here against ONE
reference point shared by every set of every seed (the worst energy and accuracy seen), so
they compare across seeds; the table gives each set per seed, the mean and the seeds where the
evolved set's hypervolume exceeds random's, and the coverage both ways (the share of one set's
front that the other matches or beats; C(evolved, random) = 1 > C(random, evolved) is "the
evolved front dominates"). Each set's validation front is re-measured on the test split, which
no search saw (``--test-all``: every candidate, and each set's front by test accuracy).

    nice -n 10 python scripts/autospikformer_fronts.py --out runs/autospikformer-fronts \\
        --supernet runs/autospikformer-sandwich40/search/supernet.safetensors \\
        --chip speck-xl --seeds 0 1 2 --population 20 --generations 9 --workers 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from neurosim.cli.main import main as neurosim  # noqa: E402
from neurosim.report.search_front import (compare_fronts, coverage, hypervolume,  # noqa: E402
                                           plot_fronts)

SETS = ("faeb", "nsga2", "random")
NAMES = {"nsga2": "evolved, NSGA-II parents", "faeb": "evolved, F_AEB parents (paper)",
         "random": "random"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--supernet", required=True, help="trained supernet checkpoint")
    p.add_argument("--space", default="digits")
    p.add_argument("--chip", default="speck-xl")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--generations", type=int, default=9)
    p.add_argument("--n", type=int, default=64, help="validation inputs simulated")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--evaluations-from", nargs="+", default=[], metavar="LOG", type=Path,
                   help="evaluations.jsonl of earlier runs to reuse (same supernet, chip, mode, "
                        "space and data; another study's logs, e.g. at a smaller budget)")
    p.add_argument("--test-all", action="store_true",
                   help="measure every candidate on the test split, not only each set's "
                        "validation front (~0.5 s each on one core)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="further `neurosim search autospikformer` flags (e.g. --train-n 64)")
    return p.parse_args(argv)


def _mode(chip: str) -> str:
    from chips.spec import load_chip
    return load_chip(chip).kind


def _chip_name(chip: str) -> str:
    from chips.spec import load_chip
    return load_chip(chip).name


def _space_name(space: str) -> str:
    from models.search.autospikformer import get_space
    return get_space(space).name


def _per_set(sets: dict, a) -> dict:
    """``compare_fronts`` over ``{(seed, set): (energies, accuracies)}`` with one shared
    reference: each set's normalised hypervolume per seed, mean, sd over seeds and the number of
    seeds where each evolved set's exceeds random's."""
    st = compare_fronts({f"{s}/{n}": v for (s, n), v in sets.items()})
    table = {n: {s: st[f"{s}/{n}"]["hypervolume_normalised"] for s in a.seeds} for n in SETS}
    return {"reference": st["reference"], "hypervolume_normalised": table,
            "mean": {n: statistics.mean(table[n].values()) for n in SETS},
            "stdev": {n: statistics.stdev(table[n].values()) if len(a.seeds) > 1 else 0.0
                      for n in SETS},
            "evolved_beats_random": {n: sum(table[n][s] > table["random"][s] for s in a.seeds)
                                     for n in ("faeb", "nsga2")}}


def _print_per_set(title: str, t: dict, a) -> None:
    print(title)
    for n in SETS:
        vals = " ".join(f"{t['hypervolume_normalised'][n][s]:.4f}" for s in a.seeds)
        print(f"  {n:7s} {vals}   mean {t['mean'][n]:.4f} +- {t['stdev'][n]:.4f}")
    print(f"  evolved > random in {t['evolved_beats_random']} of {len(a.seeds)} seeds")


def _run(a, seed: int, parents_by: str, out: Path, logs: list) -> dict:
    d = out / f"seed{seed}-{parents_by}"
    if not (d / "search.json").exists():
        s = a.population
        n_eval = s * (a.generations + 1)
        argv = ["search", "autospikformer", "--space", a.space, "--out", str(d),
                "--supernet", a.supernet, "--chip", a.chip, "--mode", _mode(a.chip),
                "--population", str(s), "--generations", str(a.generations),
                "--parents", str(max(2, 2 * s // 5)), "--crossovers", str(round(0.3 * s)),
                "--mutations", str(s - round(0.3 * s)), "--random", str(n_eval),
                "--parents-by", parents_by, "--search-seed", str(seed), "--n", str(a.n),
                "--workers", str(a.workers), "--quiet", *a.extra]
        have = [str(p) for p in [*a.evaluations_from, *logs] if p.exists()]
        if have:
            argv += ["--evaluations-from", *have]
        t0 = time.perf_counter()
        if neurosim(argv) != 0:
            raise SystemExit(f"search seed {seed} {parents_by} failed")
        (d / "wall_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    logs.append(d / "evaluations.jsonl")
    return json.loads((d / "search.json").read_text())


def _by_budget(sets: dict, ref: dict, a) -> dict:
    """Normalised hypervolume of each set's first k evaluations (evolved: scoring order;
    random: draw order), k = population, 2 x population, ..., against the shared reference."""
    all_e = [e for es, _ in sets.values() for e in es]
    all_a = [x for _, xs in sets.values() for x in xs]
    box = (ref["energy_j"] - min(all_e)) * (max(all_a) - ref["accuracy"])
    n = min(len(v[0]) for v in sets.values())
    ks = list(range(a.population, n + 1, a.population))
    out = {"evaluations": ks}
    for name in SETS:
        out[name] = {s: [hypervolume(sets[(s, name)][0][:k], sets[(s, name)][1][:k],
                                     ref["energy_j"], ref["accuracy"]) / box for k in ks]
                     for s in a.seeds}
    return out


def _test_check(a, out: Path, sets: dict, keys: dict, logs: list) -> dict:
    """Each set's validation front (the candidates a search would offer) re-measured on the
    test split, which no search saw: same energies, test accuracy of the same inherited-weight
    subnets (``accuracy_on_test_split``), hypervolumes against one shared reference. A search
    that won only by finding lucky validation rows loses its lead here. With ``--test-all``
    every candidate of every set is measured too, and each set's front *by test accuracy* is
    reported ("explored"): whether the search reached better candidates at all, apart from
    which ones its validation split let it pick. Test accuracies are cached in
    ``out/test_accuracy.json`` (keyed by the supernet's digest and the data split), written
    after every chunk, so a killed run resumes."""
    from neurosim.report.pareto import pareto_front
    header, cands = None, {}
    for p in logs:
        lines = p.read_text().splitlines()
        header = header or json.loads(lines[0])["header"]
        for line in lines[1:]:
            r = json.loads(line)
            cands.setdefault(r["key"], r["candidate"])
    digest = __import__("hashlib").sha256(Path(a.supernet).read_bytes()).hexdigest()[:16]
    if digest != header["supernet_sha256_16"]:
        raise SystemExit(f"{a.supernet}: not the supernet the searches in {out} used (digest "
                         f"{digest} vs {header['supernet_sha256_16']})")
    split = {k: header[k] for k in ("workload", "val_n", "seed", "train_n", "recal_n")}
    settings = {"supernet_sha256_16": digest, **split}
    cache_p = out / "test_accuracy.json"
    cache = json.loads(cache_p.read_text()) if cache_p.exists() else {}
    acc = cache.get("accuracy", {}) if cache.get("settings") == settings else {}
    front_idx = {sk: pareto_front(es, xs) for sk, (es, xs) in sets.items()}
    need = {keys[sk][i] for sk, idx in front_idx.items() for i in idx}
    if a.test_all:
        need |= {k for ks in keys.values() for k in ks}
    _measure_test(a, sorted(need - set(acc)), cands, header["space"], split, acc,
                  lambda: cache_p.write_text(json.dumps({"settings": settings, "accuracy": acc},
                                                        indent=1, sort_keys=True) + "\n"))
    fronts = {sk: ([sets[sk][0][i] for i in idx], [acc[keys[sk][i]] for i in idx])
              for sk, idx in front_idx.items()}
    res = {"test_rows": _test_rows(split, header["space"]),
           "front_sizes": {f"{s}/{n}": len(v[0]) for (s, n), v in fronts.items()},
           **_per_set(fronts, a)}
    if a.test_all:
        res["explored"] = _per_set({sk: (es, [acc[k] for k in keys[sk]])
                                    for sk, (es, _) in sets.items()}, a)
    return res


def _test_rows(split: dict, space: dict) -> int:
    from models.search.autospikformer import space_from_dict
    from neurosim.run.autospikformer_eval import search_data
    return int(len(search_data(split["workload"], space_from_dict(space).inputs,
                               split["val_n"], split["seed"], split["train_n"])["y_test"]))


def _measure_test(a, missing: list, cands: dict, space: dict, split: dict, acc: dict,
                  save) -> None:
    """Test accuracies of ``missing`` into ``acc``, chunks of 64 as executor tasks
    (``--workers``; in this process when one chunk will do), ``save()`` after each."""
    from neurosim.run.autospikformer_eval import accuracies_on_test_split
    from neurosim.run.executor import make_executor
    chunks = [missing[i:i + 64] for i in range(0, len(missing), 64)]
    if not chunks:
        return
    with make_executor(a.workers if len(chunks) > 1 else 0) as ex:
        futs = [ex.submit(accuracies_on_test_split, {k: cands[k] for k in c}, a.supernet, space,
                          split) for c in chunks]
        for i, (_, got) in enumerate(ex.as_completed(futs), 1):
            acc.update(got)
            save()
            if len(chunks) > 1:
                print(f"test split: {i}/{len(chunks)} chunks of candidates measured", flush=True)


def _plot_budget(bb: dict, path: Path, a) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ks = bb["evaluations"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name, style in (("nsga2", "-"), ("faeb", "--"), ("random", ":")):
        per_seed = [bb[name][s] for s in a.seeds]
        mean = [statistics.mean(v) for v in zip(*per_seed)]
        line, = ax.plot(ks, mean, style, lw=2.2, marker="o", ms=4,
                        label=f"{NAMES[name]} (mean)")
        ax.fill_between(ks, [min(v) for v in zip(*per_seed)], [max(v) for v in zip(*per_seed)],
                        alpha=0.15, color=line.get_color())
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("normalised hypervolume")
    ax.set_title(f"Auto-Spikformer, space {_space_name(a.space)}, on {_chip_name(a.chip)}: "
                 f"front quality by budget\n"
                 f"(mean of {len(a.seeds)} search seeds, band = min-max)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    a = parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logs: list[Path] = []
    sets: dict = {}
    keys: dict = {}
    for seed in a.seeds:
        runs = {pb: _run(a, seed, pb, out, logs) for pb in ("faeb", "nsga2")}
        if runs["faeb"]["random"] != runs["nsga2"]["random"]:
            raise SystemExit(f"seed {seed}: the two runs drew different random candidates")
        for name, run, rows in (("faeb", runs["faeb"], runs["faeb"]["search"]),
                                ("nsga2", runs["nsga2"], runs["nsga2"]["search"]),
                                ("random", runs["faeb"], runs["faeb"]["random"])):
            if name != "random":                  # evaluation order, for the budget curve
                by_key = {r["key"]: r for r in rows}
                rows = [by_key[k] for k in run["scoring_order"]]
            sets[(seed, name)] = ([r["energy_j"] for r in rows], [r["accuracy"] for r in rows])
            keys[(seed, name)] = [r["key"] for r in rows]
    summary = {**_per_set(sets, a), "seeds": a.seeds,
               "n_per_set": {f"{s}/{n}": len(v[0]) for (s, n), v in sets.items()},
               "coverage": {n: {s: {"evolved_covers_random": coverage(sets[(s, n)],
                                                                      sets[(s, "random")]),
                                    "random_covers_evolved": coverage(sets[(s, "random")],
                                                                      sets[(s, n)])}
                                for s in a.seeds} for n in ("faeb", "nsga2")},
               "unique_evaluations": len({json.loads(line)["key"] for p in logs
                                          for line in p.read_text().splitlines()[1:]})}
    union = ([e for es, _ in sets.values() for e in es], [x for _, xs in sets.values() for x in xs])
    summary["union_hypervolume_normalised"] = compare_fronts({
        "union": union, **{f"{s}/{n}": v for (s, n), v in sets.items()}})["union"][
        "hypervolume_normalised"]
    summary["by_budget"] = _by_budget(sets, summary["reference"], a)
    summary["test_check"] = _test_check(a, out, sets, keys, logs)
    _plot_budget(summary["by_budget"], out / "by_budget.png", a)
    s0 = a.seeds[0]
    plot_fronts({f"{NAMES[n]}": sets[(s0, n)] for n in ("nsga2", "faeb", "random")},
                out / "fronts.png", title=f"Auto-Spikformer, space {_space_name(a.space)}, on "
                f"{_chip_name(a.chip)}:\n{len(sets[(s0, 'random')][0])} evaluations per set (search seed {s0})")
    summary["plot"] = str(out / "fronts.png")
    (out / "fronts.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_per_set(f"normalised hypervolume (shared reference), {_chip_name(a.chip)}, seeds "
                   f"{a.seeds}:", summary, a)
    bb = summary["by_budget"]
    print("by budget (mean over seeds): " + "; ".join(
        f"{k}: " + " ".join(f"{n} {statistics.mean(bb[n][s][i] for s in a.seeds):.4f}"
                            for n in SETS) for i, k in enumerate(bb["evaluations"])))
    for n in ("faeb", "nsga2"):
        c = summary["coverage"][n]
        print(f"  coverage C({n}, random) / C(random, {n}): " + "; ".join(
            f"seed {s} {c[s]['evolved_covers_random']:.2f} / {c[s]['random_covers_evolved']:.2f}"
            for s in a.seeds))
    tc = summary["test_check"]
    _print_per_set(f"each set's validation front on the test split ({tc['test_rows']} rows), "
                   f"normalised hypervolume:", tc, a)
    if "explored" in tc:
        _print_per_set("each set's front of ALL its candidates by test accuracy (what it "
                       "reached), normalised hypervolume:", tc["explored"], a)
    print(f"every candidate of every set together (the best front found): "
          f"{summary['union_hypervolume_normalised']:.4f}")
    print(f"{summary['unique_evaluations']} candidates simulated in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
