"""The AutoST evolutionary search (seed ``autost`` §3.3; repo ``evolution.py``
``EvolutionSearcher``), seeded and deterministic.

Settings are the paper's and the released code's defaults: population 50, 20 generations, the
top 10 candidates as parents, 25 mutations and 25 crossovers per generation, per-block mutation
probability 0.2 (``m_prob``) and, for depth and width, 0.4 (``s_prob``, released code only).

    population 0    = random legal candidates
    each generation: parents = best ``parents`` candidates scored so far
                     children = ``mutations`` mutants + ``crossovers`` crossovers of parents,
                                topped up with random legal candidates to ``population``
    result          = the best candidate ever scored

A mutant re-draws its depth with probability ``s_prob`` (new blocks get random ratio and heads,
removed blocks are cut from the end), each block's MLP ratio and head count with probability
``m_prob``, and the width with probability ``s_prob``. A crossover takes two parents of the same
depth (up to 50 re-draws, as the released code) and picks each entry of the candidate tuple
from either. Every candidate is legal and new (never scored before); mutation and crossover
give up after 10x their quota of tries, as the released code does. Ties in score are broken by
the candidate's key, so the result depends only on the seed and the scores.

Scores are maximised (the paper ranks by FLOPs, larger predicting higher accuracy). Candidates
of one generation are scored together (``score(list of Arch) -> list of float``), so a caller
can spread expensive scores over workers; the search itself is a single thread of
``random.Random(seed)`` draws.

Population-relative fitness (Auto-Spikformer's F_AEB min-max scales energy and accuracy over
the candidates): with ``fitness``, ``score`` returns one raw evaluation per candidate (any
JSON-able value) and ``fitness(raw values of every candidate scored so far, in scoring order)
-> list of float`` is recomputed after every generation; parents are the best under the
fitness of that moment, and the result ranks every candidate by the fitness over all of them.

Parent selection other than by fitness (multi-objective search): with ``parent_key``,
``parent_key(raw values of every candidate scored so far) -> list of sort keys`` (lower is
better, ties by candidate key) orders the parents instead of the fitness, e.g. NSGA-II's
(non-domination front, -crowding distance) from
:func:`models.search.autospikformer.pareto_parent_key`; the result is still ranked by fitness.

The search only asks the space for ``sample(rng)``, ``mutate(parent, rng, m_prob, s_prob)``
and ``crossover(p1, p2, rng)`` and the candidates for ``key`` and ``depth``, so other spaces
(``models.search.autospikformer``) run through the same loop.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

from .space import Arch, Legality, SearchSpaceError

CROSSOVER_REDRAWS = 50      # released code: max_iters_tmp = 50
TRY_FACTOR = 10             # released code: max_iters = 10 * quota
RANDOM_DRAWS_PER_SLOT = 2000


@dataclass
class SearchResult:
    """The best candidate, every scored candidate in scoring order, and per generation the
    parents' scores and how many candidates each operator produced."""

    best: Arch
    best_score: float
    scored: list = field(default_factory=list)        # [(Arch, score)] in scoring order
    history: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)           # key -> raw evaluation (with fitness)

    def ranked(self) -> list:
        """[(Arch, score)] best first (ties by key)."""
        return sorted(self.scored, key=lambda t: (-t[1], t[0].key))

    def to_dict(self, params: Callable[[Arch], int] | None = None) -> dict:
        def row(a, s):
            d = {"arch": a.to_dict(), "key": a.key, "score": s}
            if params is not None:
                d["params"] = params(a)
            return d
        return {"best": row(self.best, self.best_score), "settings": dict(self.settings),
                "history": list(self.history), "n_scored": len(self.scored),
                "top": [row(a, s) for a, s in self.ranked()[:10]]}


class _Search:
    def __init__(self, legality: Legality, score, rng: random.Random, m_prob: float,
                 s_prob: float, fitness=None, parent_key=None):
        self.legal, self.space, self.score_fn, self.fitness = (legality, legality.space, score,
                                                               fitness)
        self.parent_key = parent_key
        self.parent_order: list[Arch] = []
        self.raw: dict = {}
        self.rng, self.m_prob, self.s_prob = rng, m_prob, s_prob
        self.scores: dict[str, float] = {}
        self.order: list[Arch] = []
        self.seen: set[str] = set()

    def fresh(self, a: Arch) -> bool:
        """Legal and never proposed before (then it is reserved)."""
        if a.key in self.seen or self.legal.reason(a) is not None:
            return False
        self.seen.add(a.key)
        return True

    def evaluate(self, cands: list[Arch]) -> None:
        if not cands:
            return
        vals = list(self.score_fn(list(cands)))
        if len(vals) != len(cands):
            raise ValueError(f"score returned {len(vals)} values for {len(cands)} candidates")
        for a, v in zip(cands, vals):
            self.order.append(a)
            if self.fitness is not None:
                self.raw[a.key] = v
            else:
                self.scores[a.key] = self._finite(a, v)
        if self.fitness is not None:
            fit = list(self.fitness([self.raw[a.key] for a in self.order]))
            if len(fit) != len(self.order):
                raise ValueError(f"fitness returned {len(fit)} values for {len(self.order)} "
                                 f"candidates")
            self.scores = {a.key: self._finite(a, f) for a, f in zip(self.order, fit)}
        if self.parent_key is not None:
            keys = list(self.parent_key([self.raw[a.key] for a in self.order]))
            if len(keys) != len(self.order):
                raise ValueError(f"parent_key returned {len(keys)} keys for {len(self.order)} "
                                 f"candidates")
            self.parent_order = [a for _, a in sorted(zip(keys, self.order),
                                                      key=lambda t: (t[0], t[1].key))]

    @staticmethod
    def _finite(a, v) -> float:
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"score of {a.key} is {v}; scores must be finite")
        return v

    def top(self, k: int) -> list[Arch]:
        return sorted(self.order, key=lambda a: (-self.scores[a.key], a.key))[:k]

    def parents(self, k: int) -> list[Arch]:
        return self.parent_order[:k] if self.parent_key is not None else self.top(k)

    def random_fill(self, have: int, target: int) -> list[Arch]:
        out, draws = [], 0
        budget = RANDOM_DRAWS_PER_SLOT * max(target - have, 0)
        while have + len(out) < target and draws < budget:
            draws += 1
            a = self.space.sample(self.rng)
            if self.fresh(a):
                out.append(a)
        return out

    def mutate(self, parents: list[Arch], quota: int) -> list[Arch]:
        rng, out = self.rng, []
        for _ in range(TRY_FACTOR * quota):
            if len(out) >= quota:
                break
            a = self.space.mutate(rng.choice(parents), rng, self.m_prob, self.s_prob)
            if self.fresh(a):
                out.append(a)
        return out

    def crossover(self, parents: list[Arch], quota: int) -> list[Arch]:
        rng, out = self.rng, []
        for _ in range(TRY_FACTOR * quota):
            if len(out) >= quota:
                break
            p1, p2 = rng.choice(parents), rng.choice(parents)
            for _ in range(CROSSOVER_REDRAWS):
                if p1.depth == p2.depth:
                    break
                p1, p2 = rng.choice(parents), rng.choice(parents)
            if p1.depth != p2.depth:
                continue
            a = self.space.crossover(p1, p2, rng)
            if self.fresh(a):
                out.append(a)
        return out


def _check_settings(population, generations, parents, mutations, crossovers, m_prob, s_prob):
    for k, v in (("population", population), ("parents", parents)):
        if int(v) != v or v < 1:
            raise SearchSpaceError(f"{k} must be an integer >= 1, got {v}")
    for k, v in (("generations", generations), ("mutations", mutations),
                 ("crossovers", crossovers)):
        if int(v) != v or v < 0:
            raise SearchSpaceError(f"{k} must be an integer >= 0, got {v}")
    for k, v in (("m_prob", m_prob), ("s_prob", s_prob)):
        if not 0.0 <= v <= 1.0:
            raise SearchSpaceError(f"{k} must be a probability in [0, 1], got {v}")


def evolve(legality: Legality, score: Callable[[list], list], *, population: int = 50,
           generations: int = 20, parents: int = 10, mutations: int = 25, crossovers: int = 25,
           m_prob: float = 0.2, s_prob: float = 0.4, seed: int = 0,
           on_generation: Callable[[dict], None] | None = None,
           fitness: Callable[[list], list] | None = None,
           parent_key: Callable[[list], list] | None = None) -> SearchResult:
    """Search ``legality.space`` for the legal architecture with the highest ``score`` (see
    module doc). ``score`` takes a list of candidates and returns one finite number each (or,
    with ``fitness``, one raw evaluation each, ranked by the population-relative fitness;
    ``parent_key`` needs ``fitness``: it orders the parents, see the module doc).
    ``on_generation(record)`` is called after every generation (progress)."""
    _check_settings(population, generations, parents, mutations, crossovers, m_prob, s_prob)
    if parent_key is not None and fitness is None:
        raise ValueError("parent_key orders raw evaluations: give fitness too")
    s = _Search(legality, score, random.Random(seed), m_prob, s_prob, fitness, parent_key)
    cands = s.random_fill(0, population)
    if not cands:
        raise SearchSpaceError(f"found no legal architecture in space {legality.space.name!r} "
                               f"in {RANDOM_DRAWS_PER_SLOT * population} random draws")
    s.evaluate(cands)
    history = []
    for g in range(generations):
        top = s.parents(parents)
        mut = s.mutate(top, mutations)
        cross = s.crossover(top, crossovers)
        rand = s.random_fill(len(mut) + len(cross), population)
        new = mut + cross + rand
        s.evaluate(new)
        rec = {"generation": g + 1, "parent_scores": [s.scores[a.key] for a in top],
               "mutations": len(mut), "crossovers": len(cross), "random": len(rand),
               "best": s.top(1)[0].key, "best_score": s.scores[s.top(1)[0].key]}
        history.append(rec)
        if on_generation is not None:
            on_generation(rec)
    best = s.top(1)[0]
    settings = {"population": population, "generations": generations, "parents": parents,
                "mutations": mutations, "crossovers": crossovers, "m_prob": m_prob,
                "s_prob": s_prob, "seed": seed}
    if parent_key is not None:
        settings["parents_by"] = getattr(parent_key, "name", "parent_key")
    return SearchResult(best=best, best_score=s.scores[best.key],
                        scored=[(a, s.scores[a.key]) for a in s.order], history=history,
                        settings=settings, raw=dict(s.raw))


def batch(fn: Callable[[Arch], float]) -> Callable[[list], list]:
    """Turn a one-candidate score into the batch form :func:`evolve` takes."""
    return lambda cands: [fn(a) for a in cands]


__all__ = ["SearchResult", "batch", "evolve"]
