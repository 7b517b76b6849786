"""neurosim.costing.static: static energy per core under the power-gating policies."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from chips.mapping import map_graph
from chips.spec import load_chip
from neurosim.costing.energy import attach_energy
from neurosim.costing.static import (POLICIES, busy_windows, gated_core, idle_unavailable,
                                     static_by_policy, static_energy, used_cores)
from neurosim.frontends.lower import lower
from neurosim.ir.counts import CATEGORIES
from neurosim.ir.result import RunResult
from neurosim.run.simulate import simulate
from tests.zoo_cases import inputs_for, small_model

F = Fraction                      # exact seconds and joules below
US = F(1, 10 ** 6)


def _result(core_counts: dict, latency, timeline=None) -> RunResult:
    B = len(latency)
    counts = {"n": {k: sum(int(c.get(k, 0)) for c in core_counts.values()) for k in CATEGORIES}}
    return RunResult(mode="sync", chip="t", model="m", logits=np.zeros((B, 2)), spike_counts={},
                     counts=counts, core_counts=core_counts, latency_s=np.asarray(latency, float),
                     ticks=np.zeros(B, np.int64), timeline=timeline or {}, stats={})


@pytest.fixture(scope="module")
def runs():
    m = small_model("meta-sdsa3")
    x = inputs_for(m, 2, seed=5)
    g = lower(m, x)
    out = {}
    for chip, mode in (("tianjic-x16", "sync"), ("speck-xl", "async")):
        mp = map_graph(g, chip)
        out[chip] = (simulate(g, chip, x, mode, mapping=mp), load_chip(chip), mp)
    return out


def test_gated_core_hand_computed():
    """Gaps up to the break-even time max(wake / leak, wake latency) are bridged, longer ones
    gated with one wake-up each, plus the wake-up before the first work."""
    leak, wake_j, wake_s = F(1, 1000), F(577, 10 ** 12), F(1, 10 ** 7)   # 1 mW, 577 pJ, 100 ns
    us = 1e-6
    win = [(0.0, 1 * us), (1.5 * us, 2 * us), (10 * us, 11 * us)]
    e, on, wakes = gated_core(win, leak, wake_j, wake_s)
    gated = F(10 * us) - F(2 * us)                       # 0.5 us <= 0.577 us bridged; 8 us not
    assert on == F(11 * us) - gated and wakes == 2
    assert e == leak * on + 2 * wake_j
    # a wake-up latency longer than the gap keeps the core on even when energy says gate
    e2, on2, w2 = gated_core(win, leak, F(1, 10 ** 15), 20 * US)
    assert (on2, w2) == (F(11 * us), 1)
    assert gated_core([], leak, wake_j, wake_s) == (0, 0, 0)
    # no leakage: nothing is worth gating, energy is the first wake-up only
    assert gated_core(win, F(0), wake_j, wake_s) == (wake_j, F(11 * us), 1)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 10 ** 5)), min_size=1,
                max_size=12), st.integers(1, 10 ** 4), st.integers(1, 10 ** 4),
       st.integers(0, 10 ** 4))
def test_idle_never_costs_more_than_staying_on(spans, leak_uw, wake_pj, wake_ns):
    """Against keeping the core on from its first to its last work (one wake-up), gating
    only gaps longer than the break-even time can only save energy."""
    win = [(s * 1e-9, (s + d) * 1e-9) for s, d in spans]
    merged = busy_windows({"items": [[0, a, b, "n", "k"] for a, b in win]})[0]
    leak, wake_j, wake_s = F(leak_uw, 10 ** 6), F(wake_pj, 10 ** 12), F(wake_ns, 10 ** 9)
    e, on, wakes = gated_core(merged, leak, wake_j, wake_s)
    span = F(merged[-1][1]) - F(merged[0][0])
    busy = sum(F(b) - F(a) for a, b in merged)
    assert busy <= on <= span and 1 <= wakes <= len(merged)
    assert e <= leak * span + wake_j


def test_busy_windows_from_sync_ticks_and_async_items():
    sync = {"tick_s": [1.0, 2.0, 1.0, 1.0], "tick_start_s": [0.0, 1.0, 5.0, 6.0],
            "core_busy_cycles": {"3": [5, 1, 0, 2], 7: [0, 0, 0, 0]}}
    assert busy_windows(sync) == {3: [(0.0, 3.0), (6.0, 7.0)]}
    items = {"items": [[1, 0.0, 1.0, "a", "x"], [1, 0.5, 2.0, "b", "y"], [2, 3.0, 4.0, "a", "x"],
                       [1, 2.0, 2.5, "a", "x"]]}
    assert busy_windows(items) == {1: [(0.0, 2.5)], 2: [(3.0, 4.0)]}
    with pytest.raises(ValueError, match="needs the run's timeline"):
        busy_windows(None)
    with pytest.raises(ValueError, match="neither 'core_busy_cycles'"):
        busy_windows({"other": 1})


def test_none_and_unused_hand_computed():
    chip = load_chip("speck")
    c = dict.fromkeys(CATEGORIES, 0)
    r = _result({0: dict(c, ac=5), 4: dict(c, spikes=1)}, [1e-3, 3e-3])
    T = F(1e-3) + F(3e-3)
    none = static_energy(r, chip, "none")
    assert none["cores_on"] == 9 and none["uncore"] == F(chip.power.uncore_static_w) * T
    assert none["per_core"][8] == F(chip.leakage_w(8)) * T
    unused = static_energy(r, chip, "unused")
    assert sorted(unused["per_core"]) == [0, 4] == used_cores(r)
    assert unused["total"] == F(chip.power.uncore_static_w) * T + (
        F(chip.leakage_w(0)) + F(chip.leakage_w(4))) * T
    assert static_energy(r, chip)["policy"] == chip.power.power_gating == "none"
    with pytest.raises(ValueError, match="unknown power-gating policy 'off'"):
        static_energy(r, chip, "off")


def test_idle_extrapolates_the_first_input_by_latency():
    chip = load_chip("speck")
    c = dict.fromkeys(CATEGORIES, 0)
    tl = {"items": [[2, 0.0, 1e-6, "a", "x"], [2, 5e-6, 6e-6, "a", "x"]]}
    r = _result({2: dict(c, ac=3)}, [1e-5, 3e-5], timeline=tl)
    st_ = static_energy(r, chip, "idle")
    leak = F(chip.leakage_w(2))
    wake_j, wake_s = F(chip.power.wake_energy_pj) / 10 ** 12, F(chip.power.wake_latency_ns) / 10 ** 9
    e0, _, w0 = gated_core(busy_windows(tl)[2], leak, wake_j, wake_s)
    scale = (F(1e-5) + F(3e-5)) / F(1e-5)
    assert st_["per_core"] == {2: e0 * scale} and st_["wakeups"] == pytest.approx(w0 * 4)
    assert "first input" in st_["basis"]
    assert idle_unavailable(_result({2: dict(c, ac=3)}, [1e-5]), chip) is not None


@pytest.mark.parametrize("chip", ["tianjic-x16", "speck-xl"])
def test_policies_order_on_a_real_run(runs, chip):
    """idle <= unused <= none, on a sync and an async chip; unused powers the mapped cores;
    static per core is in the energy breakdown by core."""
    res, spec, mp = runs[chip]
    by = static_by_policy(res, spec, mp)
    assert set(by) == set(POLICIES) and all(v is not None and v > 0 for v in by.values())
    assert by["idle"] < by["unused"] < by["none"]
    assert by["none"] == pytest.approx(spec.static_power_w() * res.latency_s.mean(), rel=1e-12)
    assert static_energy(res, spec, "unused", mp)["cores_on"] == len(mp.cores)
    idle = static_energy(res, spec, "idle", mp)
    assert set(idle["per_core"]) <= set(mp.cores) and idle["wakeups"] >= len(idle["per_core"])
    for pol in POLICIES:
        e = attach_energy(res, spec, power_gating=pol, mapping=mp)
        assert e["static"]["policy"] == pol
        assert e["per_inference"]["static_j"] == pytest.approx(by[pol], rel=1e-12)
        cores = {k for k in e["static_by_core_j"] if k != "uncore"}
        assert all(e["by_core_category_j"][k]["static"] > 0 for k in cores)
        # dynamic energy does not depend on the static policy (up to the grid of the total)
        assert e["dynamic_j"] == pytest.approx(attach_energy(res, spec, mapping=mp)["dynamic_j"],
                                               rel=1e-14)


def test_a_table_constant_replaces_the_chip_model(runs):
    res, spec, mp = runs["tianjic-x16"]
    e = attach_energy(res, spec, table="45nm", mapping=mp)
    assert e["static_j"] == 0.0 and e["static"]["source"] == "energy table static_power_w"
    e = attach_energy(res, spec, static_power_w=0.5, mapping=mp)
    assert e["static_j"] == pytest.approx(0.5 * res.latency_s.sum(), rel=1e-12)
    assert e["static_by_core_j"] == {"chip": e["static_j"]} and e["static_shared_j"] == e[
        "static_j"]
