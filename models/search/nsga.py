"""Multi-objective parent selection for the evolutionary search: NSGA-II's order (Deb et al.
2002, §III-A non-dominated sorting, §III-B crowding distance) over two objectives, energy
(lower is better) and accuracy (higher is better).

    front 0     = the candidates no other candidate dominates (at most the energy and at
                  least the accuracy, better in one); front k = those of the rest after
                  removing fronts 0..k-1
    crowding    = within a front sorted by energy, the sum over both objectives of the gap
                  between a candidate's two neighbours divided by the front's range; the
                  front's two ends get infinity (they are always kept)
    parent order: (front, -crowding), ties by candidate key (in ``evolve``)

Parents taken in this order are the front's ends and its best-spread members first, then the
next front: the evolution spreads along the whole energy-accuracy front instead of crowding at
one point of a scalarised fitness (F_AEB with one alpha), which is what a hypervolume counts.
"""
from __future__ import annotations

import math


def nondominated_fronts(energies, accuracies) -> list[int]:
    """Front index (0 = non-dominated) of every point; equal points share a front."""
    n = len(energies)
    if len(accuracies) != n:
        raise ValueError(f"{n} energies but {len(accuracies)} accuracies")
    for what, vals in (("energy", energies), ("accuracy", accuracies)):
        if not all(math.isfinite(float(v)) for v in vals):
            raise ValueError(f"non-dominated sorting: every {what} must be finite")
    rest = sorted(range(n), key=lambda i: (energies[i], -accuracies[i]))
    front = [0] * n
    k = 0
    while rest:
        keep, nxt = [], []
        best_lower = -math.inf           # best accuracy among points of strictly lower energy
        group_e, group_best = None, -math.inf
        for i in rest:                   # sweep in increasing energy, decreasing accuracy
            e, a = energies[i], accuracies[i]
            if e != group_e:
                best_lower = max(best_lower, group_best)
                group_e, group_best = e, -math.inf
            dominated = best_lower >= a or group_best > a
            (nxt if dominated else keep).append(i)
            if not dominated:
                group_best = max(group_best, a)
        for i in keep:
            front[i] = k
        rest, k = nxt, k + 1
    return front


def crowding_distances(energies, accuracies, members: list[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each index in ``members`` (one front)."""
    out = {i: 0.0 for i in members}
    if len(members) <= 2:
        return {i: math.inf for i in members}
    for vals in (energies, accuracies):
        order = sorted(members, key=lambda i: (vals[i], i))
        lo, hi = vals[order[0]], vals[order[-1]]
        out[order[0]] = out[order[-1]] = math.inf
        if hi == lo:
            continue
        for j in range(1, len(order) - 1):
            out[order[j]] += (vals[order[j + 1]] - vals[order[j - 1]]) / (hi - lo)
    return out


class ParetoParents:
    """``parent_key`` for :func:`models.search.evolution.evolve`: raw evaluations are dicts with
    ``accuracy`` and the energy under ``energy``; key = (front, -crowding distance)."""

    name = "nsga2"

    def __init__(self, energy: str = "energy_j"):
        self.energy = energy

    def __call__(self, raws: list) -> list:
        e = [float(r[self.energy]) for r in raws]
        a = [float(r["accuracy"]) for r in raws]
        front = nondominated_fronts(e, a)
        crowd: dict[int, float] = {}
        for k in set(front):
            crowd.update(crowding_distances(e, a, [i for i, f in enumerate(front) if f == k]))
        return [(front[i], -crowd[i]) for i in range(len(raws))]


__all__ = ["ParetoParents", "crowding_distances", "nondominated_fronts"]
