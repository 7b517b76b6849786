"""Energy accounting: exact additivity (property tests, with and without a static model), the
cost table, static power per core under each gating policy, units and formatting."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from chips.spec import ACTIONS, SpecError, load_chip, load_energy_table
from neurosim.ir.counts import CATEGORIES
from neurosim.costing.energy import (COSTS, ENERGY_CATEGORIES, UNPRICED, attach_energy,
                                     energy_breakdown)
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
from neurosim.ir.result import RunResult

BASE = load_energy_table("tianjic")


def _result(node_counts: dict, core_split: dict, latency, n=None) -> RunResult:
    """A RunResult holding the given counts; ``core_split[node]`` = core receiving them."""
    cores: dict = {}
    for node, c in node_counts.items():
        acc = cores.setdefault(core_split[node], dict.fromkeys(CATEGORIES, 0))
        for k, v in c.items():
            acc[k] += v
    B = len(latency) if n is None else n
    return RunResult(mode="sync", chip="test", model="m", logits=np.zeros((B, 2)),
                     spike_counts={}, counts=node_counts, core_counts=cores,
                     latency_s=np.asarray(latency, float), ticks=np.zeros(B, np.int64),
                     timeline={}, stats={})


counts_st = st.dictionaries(st.sampled_from(list(CATEGORIES)), st.integers(0, 10 ** 12),
                            min_size=1)
cost_st = st.floats(0, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@settings(max_examples=150, deadline=None)
@given(nodes=st.lists(st.tuples(counts_st, st.integers(0, 5)), min_size=1, max_size=8),
       costs=st.fixed_dictionaries({a: cost_st for a in ACTIONS if a != "static_power_w"}),
       power=st.floats(0, 10, allow_nan=False, allow_subnormal=False),
       latency=st.lists(st.floats(0, 1, allow_nan=False, allow_subnormal=False), min_size=1, max_size=5))
def test_breakdowns_sum_exactly_to_the_total(nodes, costs, power, latency):
    import dataclasses
    table = dataclasses.replace(BASE, **costs, static_power_w=power)
    node_counts = {f"n{i}": {k: c.get(k, 0) for k in CATEGORIES} for i, (c, _) in enumerate(nodes)}
    split = {f"n{i}": core for i, (_, core) in enumerate(nodes)}
    e = energy_breakdown(_result(node_counts, split, latency), table)
    _check_sums(e)
    # every float is within a few grid steps of the exact value
    pj = Fraction(1, 10 ** 12)
    exact = sum((Fraction(getattr(table, COSTS[k][0])) * pj * v
                 for c in node_counts.values() for k, v in c.items() if k in COSTS), Fraction(0))
    exact += Fraction(power) * sum(Fraction(t) for t in latency)
    assert abs(Fraction(e["total_j"]) - exact) <= 2 * Fraction(e["grid_j"])


def _check_sums(e):
    """Every breakdown of ``e`` sums exactly to its total (module doc of costing.energy)."""
    for part in (e, e["per_inference"]):
        total = part["total_j"]
        assert math.fsum(part["by_category_j"].values()) == total
        assert math.fsum(part["by_count_j"].values()) + part["static_j"] == total
        assert math.fsum(part["by_node_j"].values()) + part["static_j"] == total
        assert math.fsum(part["by_core_j"].values()) + part["static_shared_j"] == total
        assert math.fsum(part["static_by_core_j"].values()) == part["static_j"]
        assert part["dynamic_j"] + part["static_j"] == total
        assert part["by_category_j"]["static"] == part["static_j"]
    for n, row in e["by_node_category_j"].items():
        assert math.fsum(row.values()) == e["by_node_j"][n]
    for c, row in e["by_core_category_j"].items():
        assert math.fsum(row.values()) == e["by_core_j"][c]


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(st.tuples(counts_st, st.integers(0, 63)), min_size=1, max_size=6),
       latency=st.lists(st.floats(1e-9, 1, allow_nan=False, allow_subnormal=False), min_size=1,
                        max_size=4),
       policy=st.sampled_from(["none", "unused"]), chip=st.sampled_from(["speck-xl", "speck"]))
def test_breakdowns_with_per_core_static_sum_exactly(nodes, latency, policy, chip):
    """With the chip's static model, static energy sits in the cores that draw it (by_core
    includes it) and the uncore; every breakdown still sums exactly."""
    spec = load_chip(chip)
    node_counts = {f"n{i}": {k: c.get(k, 0) for k in CATEGORIES} for i, (c, _) in enumerate(nodes)}
    split = {f"n{i}": core % spec.n_cores for i, (_, core) in enumerate(nodes)}
    r = _result(node_counts, split, latency)
    e = energy_breakdown(r, spec.energy(), chip=spec, power_gating=policy)
    _check_sums(e)
    used = {str(c) for c, d in r.core_counts.items() if any(d.values())}
    expect = set(map(str, range(spec.n_cores))) if policy == "none" else used
    assert {k for k in e["static_by_core_j"] if k != "uncore"} == expect
    assert e["static_shared_j"] == e["static_by_core_j"]["uncore"]
    for c in expect:
        assert e["by_core_category_j"][c]["static"] == pytest.approx(
            e["static_by_core_j"][c], rel=1e-12)
    cores = range(spec.n_cores) if policy == "none" else sorted(int(c) for c in used)
    exact = Fraction(spec.static_power_w(cores)) * sum(Fraction(t) for t in latency)
    assert abs(Fraction(e["static_j"]) - exact) <= exact * Fraction(1, 10 ** 12) + 2 * Fraction(
        e["grid_j"])
    assert e["static"]["policy"] == policy and e["static"]["source"] == "chip [power] model"


@pytest.mark.parametrize("power", [2.2e-308, 5e-324, 1e-300])
def test_tiny_static_power_still_sums_within_the_grid(power):
    """Regression: a subnormal total once made the grid step 0 (floats cannot hold it)."""
    import dataclasses
    zero = {a: 0.0 for a in ACTIONS if a != "static_power_w"}
    table = dataclasses.replace(BASE, **zero, static_power_w=power)
    e = energy_breakdown(_result({"n0": {"ac": 5}}, {"n0": 0}, [0.3]), table)
    assert e["grid_j"] > 0
    exact = Fraction(power) * Fraction(0.3)
    assert abs(Fraction(e["total_j"]) - exact) <= 2 * Fraction(e["grid_j"])
    assert e["dynamic_j"] + e["static_j"] == e["total_j"]


def test_cost_table_covers_every_count_category_explicitly():
    assert set(COSTS) | set(UNPRICED) == set(CATEGORIES)
    assert not set(COSTS) & set(UNPRICED)
    assert {a for a, _ in COSTS.values()} == set(ACTIONS) - {"static_power_w"}
    assert {c for _, c in COSTS.values()} | {"static"} == set(ENERGY_CATEGORIES)
    assert COSTS["aux_ops"][0] == "ac_pj" and COSTS["spikes"][0] == "neuron_spike_pj"


def test_hand_computed_example_45nm():
    counts = {"a": dict(dict.fromkeys(CATEGORIES, 0), ac=1000, mac=10, aux_ops=5, noc_hops=7,
                        graded_values=99, saturations=3)}
    r = _result(counts, {"a": 0}, [1e-3, 3e-3])
    e = energy_breakdown(r, "45nm")
    assert e["total_j"] == pytest.approx((1005 * 0.9 + 10 * 4.6) * 1e-12, rel=1e-15)
    assert e["by_category_j"]["synaptic_ac"] == pytest.approx(900e-12, rel=1e-15)
    assert e["by_category_j"]["aux_adds"] == pytest.approx(4.5e-12, rel=1e-15)
    assert e["by_category_j"]["routing"] == 0.0 and e["static_j"] == 0.0
    assert e["per_inference"]["total_j"] == pytest.approx(e["total_j"] / 2, rel=1e-15)
    assert e["unpriced"] == {**dict.fromkeys(UNPRICED, 0), "graded_values": 99,
                             "saturations": 3}
    assert e["costs"]["mac_pj"] == 4.6 and e["table"] == "45nm"
    json.dumps(e)                                            # JSON-able
    # static: power x latency of every inference
    e2 = energy_breakdown(r, "45nm", static_power_w=2.0)
    assert e2["static_j"] == pytest.approx(2.0 * 4e-3, rel=1e-15)
    assert e2["per_inference"]["static_j"] == pytest.approx(4e-3, rel=1e-15)
    assert e2["static"]["source"] == "argument static_power_w"
    # average power = energy / total latency
    assert e2["power_w"]["static"] == pytest.approx(2.0, rel=1e-12)
    assert e2["power_w"]["total"] == pytest.approx(e2["total_j"] / 4e-3, rel=1e-12)
    assert e2["static_power_w"] == e2["power_w"]["static"]


def test_bad_inputs_raise_clear_errors():
    r = _result({"a": dict.fromkeys(CATEGORIES, 1)}, {"a": 0}, [1e-3])
    with pytest.raises(SpecError, match="Available: .*45nm"):
        energy_breakdown(r, "no-such-table")
    with pytest.raises(ValueError, match="static_power_w"):
        energy_breakdown(r, "45nm", static_power_w=-1.0)
    with pytest.raises(ValueError, match="unknown power-gating policy 'sometimes'"):
        energy_breakdown(r, "tianjic", chip=load_chip("tianjic"), power_gating="sometimes")
    import dataclasses
    with pytest.raises(ValueError, match="ac_pj"):
        energy_breakdown(r, dataclasses.replace(BASE, ac_pj=-0.5))
    r.core_counts[0]["ac"] += 1                     # engine inconsistency
    with pytest.raises(ValueError, match="core_counts"):
        energy_breakdown(r, "tianjic")


def test_golden_breakdown(golden):
    counts = {"conv": dict(dict.fromkeys(CATEGORIES, 0), ac=123456, weight_reads=123456,
                           noc_messages=321, noc_hops=999),
              "lif": dict(dict.fromkeys(CATEGORIES, 0), neuron_updates=4096, spikes=777,
                          membrane_reads=4096, membrane_writes=4096)}
    r = _result(counts, {"conv": 3, "lif": 4}, [1.5e-4, 2.5e-4])
    e = energy_breakdown(r, "tianjic", chip=load_chip("tianjic"), power_gating="unused")
    golden.check_text("energy_breakdown_tianjic.json", json.dumps(e, indent=1, sort_keys=True)
                      + "\n")


def test_attach_energy_on_a_real_run():
    from neurosim.frontends.lower import lower
    from neurosim.run.simulate import simulate
    from tests.zoo_cases import inputs_for, small_model
    m = small_model("meta-sdsa3")
    x = inputs_for(m, 2)
    res = simulate(lower(m, x), "tianjic-x16", x)
    e = attach_energy(res, "tianjic-x16")
    assert res.energy is e and res.energy_j == e["total_j"]
    chip = load_chip("tianjic-x16")
    assert e["table"] == "tianjic" and e["static"]["policy"] == chip.power.power_gating == "none"
    assert e["static_power_w"] == pytest.approx(chip.static_power_w(), rel=1e-12)
    assert e["static_j"] == pytest.approx(chip.static_power_w() * res.latency_s.sum(), rel=1e-12)
    assert len(e["static_by_core_j"]) == chip.n_cores + 1                 # every core + uncore
    assert set(e["by_node_j"]) == set(res.counts)
    assert e["by_category_j"]["synaptic_ac"] > 0 and e["by_category_j"]["mac"] > 0


@pytest.mark.parametrize("j,text", [(1.23e-5, "12.3 uJ"), (0.0, "0 J"), (4.6e-12, "4.6 pJ"),
                                    (2.5e-10, "250 pJ"), (1.0e-9, "1 nJ"), (0.0321, "32.1 mJ"),
                                    (3.0, "3 J"), (12345.0, "12345 J"), (5e-16, "0.0005 pJ"),
                                    (-2e-6, "-2 uJ"), (9.9996e-7, "1 uJ")])
def test_fmt_energy(j, text):
    assert fmt_energy(j) == text


@pytest.mark.parametrize("w,text", [(0.0123, "12.3 mW"), (1.48, "1.48 W"), (4.187e-4, "419 uW"),
                                    (0.0, "0 W")])
def test_fmt_power(w, text):
    assert fmt_power(w) == text


@pytest.mark.parametrize("s,text", [(4.2e-5, "42 us"), (0.488e-3, "488 us"), (3.38e-3, "3.38 ms"),
                                    (2.0, "2 s"), (1.5e-8, "15 ns"), (0, "0 s")])
def test_fmt_time(s, text):
    assert fmt_time(s) == text
