"""NSGA-II parent order: non-dominated fronts against the definition (property test),
crowding distances, and the evolution loop taking its parents in that order."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.search.autospikformer import AutoSpikformerSpace, Feasibility, aeb_fitness
from models.search.evolution import evolve
from models.search.nsga import ParetoParents, crowding_distances, nondominated_fronts
from models.search.space import InputSpec


def _dominates(p, q) -> bool:
    return p[0] <= q[0] and p[1] >= q[1] and (p[0] < q[0] or p[1] > q[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25))
def test_fronts_follow_the_definition(pts):
    e, a = [p[0] for p in pts], [p[1] for p in pts]
    front = nondominated_fronts(e, a)
    for i, p in enumerate(pts):
        # front k: dominated by none of fronts >= k, and (k > 0) by one of front k - 1
        assert not any(_dominates(q, p) for j, q in enumerate(pts) if front[j] >= front[i])
        if front[i] > 0:
            assert any(_dominates(q, p) for j, q in enumerate(pts)
                       if front[j] == front[i] - 1)
    assert set(front) == set(range(max(front) + 1))


def test_fronts_of_a_small_set():
    #            A    B    C    D (= B)  E
    e = [1.0, 2.0, 3.0, 2.0, 2.5]
    a = [0.5, 0.8, 0.9, 0.8, 0.7]
    assert nondominated_fronts(e, a) == [0, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="every energy must be finite"):
        nondominated_fronts([1.0, math.nan], [0.1, 0.2])


def test_crowding_distance_keeps_the_ends_and_measures_gaps():
    e = [0.0, 1.0, 3.0, 4.0]
    a = [0.0, 0.5, 0.6, 1.0]
    d = crowding_distances(e, a, [0, 1, 2, 3])
    assert d[0] == d[3] == math.inf
    assert d[1] == pytest.approx(3 / 4 + 0.6 / 1.0)
    assert d[2] == pytest.approx(3 / 4 + 0.5 / 1.0)
    assert crowding_distances(e, a, [1, 2]) == {1: math.inf, 2: math.inf}


def test_parent_key_orders_by_front_then_crowding():
    raws = [{"accuracy": a, "energy_j": e} for e, a in
            [(1.0, 0.5), (2.0, 0.8), (3.0, 0.9), (2.5, 0.7), (1.5, 0.6), (4.0, 0.95)]]
    keys = ParetoParents()(raws)
    assert [k[0] for k in keys] == [0, 0, 0, 1, 0, 0]
    assert keys[0][1] == keys[5][1] == -math.inf            # the front's two ends first


TINY = InputSpec(img_size=8, in_channels=1, num_classes=10, T=2, pool_stages=())


def _space():
    return AutoSpikformerSpace("t", (8, 16, 24), (2, 3), (1, 2), (1, 2), (0.6, 1.0, 1.4),
                               (1.25, 2, 10), (2, 3, 4), TINY)


def _eval(c):
    """Deterministic stand-in: accuracy rises with width, depth and T; energy with all three."""
    acc = 0.5 + 0.01 * c.embed_dim / 8 + 0.02 * c.depth + 0.01 * c.T - 0.03 * abs(c.v_th[0] - 1)
    return {"accuracy": acc, "energy_j": c.embed_dim * c.depth * c.T * 1e-6 / sum(c.tau)}


def test_evolution_takes_parents_in_nsga2_order():
    sp = _space()
    feas = Feasibility(sp, ())
    kw = dict(population=8, generations=3, parents=4, mutations=5, crossovers=2, m_prob=0.4,
              s_prob=0.4, seed=1, fitness=aeb_fitness(0.5))
    seen = []

    def score(cs):
        seen.append([c.key for c in cs])
        return [_eval(c) for c in cs]
    pk = ParetoParents()
    res = evolve(feas, score, parent_key=pk, **kw)
    again = evolve(Feasibility(sp, ()), lambda cs: [_eval(c) for c in cs], parent_key=pk, **kw)
    assert [c.key for c, _ in res.scored] == [c.key for c, _ in again.scored]
    assert res.settings["parents_by"] == "nsga2"
    # generation 1's parents: the first 4 of everything scored in generation 0, by the key
    gen0 = [c for c, _ in res.scored[:len(seen[0])]]
    keys = pk([res.raw[c.key] for c in gen0])
    want = [c.key for _, c in sorted(zip(keys, gen0), key=lambda t: (t[0], t[1].key))][:4]
    fit = aeb_fitness(0.5)([res.raw[c.key] for c in gen0])
    by_key = dict(zip([c.key for c in gen0], fit))
    assert res.history[0]["parent_scores"] == [by_key[k] for k in want]
    # the result is still ranked by F_AEB
    assert res.best_score == max(f for _, f in res.scored)
    plain = evolve(Feasibility(sp, ()), lambda cs: [_eval(c) for c in cs], **kw)
    assert [c.key for c, _ in plain.scored] != [c.key for c, _ in res.scored]
    with pytest.raises(ValueError, match="give fitness too"):
        evolve(feas, score, parent_key=pk, population=4, generations=1)
