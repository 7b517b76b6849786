"""neurosim.run.compare: the same inputs on sync and async chips, energy attached, agreement,
the sync/async energy ratio and its sensitivity to the static power policy."""
import json

import numpy as np
import pytest

import neurosim
from neurosim.frontends.lower import lower
from neurosim.run.compare import Comparison, compare, merge_results, simulate_batched
from neurosim.run.simulate import simulate
from tests.zoo_cases import inputs_for, small_model


@pytest.fixture(scope="module")
def case():
    m = small_model("e-spikeformer")
    x = inputs_for(m, 2, seed=7)
    return m, lower(m, x), x, np.array([0, 1])


@pytest.fixture(scope="module")
def cmp(case):
    _, g, x, y = case
    return compare(g, ["tianjic-x16", "speck-xl"], x, y)


def test_every_chip_runs_in_its_modes_with_energy(cmp):
    assert [(r.chip, r.mode) for r in cmp.results] == [
        ("tianjic-x16", "sync"), ("speck-xl", "async-windowed"), ("speck-xl", "async-free")]
    assert [r.n for r in cmp.results] == [2, 2, 2] and cmp.n == 2
    for r in cmp.results:
        assert r.energy is not None and r.energy["chip"] == r.chip
    assert cmp.reference_source == "tianjic-x16/sync"
    rows = cmp.table()
    assert [r["mode"] for r in rows] == ["sync", "async-windowed", "async-free"]
    sync, win, free = rows
    assert sync["agreement"] == 1.0 and win["agreement"] == 1.0      # exact modes agree
    assert win["max_logit_diff"] == 0.0
    assert sync["stalls"] == 0 and sync["drops"] == 0
    assert win["spikes_per_inference"] == sync["spikes_per_inference"]  # same spikes
    for r in rows:
        assert r["energy_per_inference_j"] == pytest.approx(
            r["dynamic_per_inference_j"] + r["static_per_inference_j"], rel=1e-12)
        assert r["latency_per_inference_s"] > 0 and r["ac_per_inference"] > 0
        assert r["average_power_w"] == pytest.approx(
            r["energy_per_inference_j"] / r["latency_per_inference_s"], rel=1e-12)
        assert r["power_gating"] == "none"                   # both chips' stated default
        assert r["static_none_per_inference_j"] == pytest.approx(r["static_per_inference_j"],
                                                                 rel=1e-12)
    json.dumps(cmp.to_dict())
    text = cmp.format()
    assert "async-windowed" in text and "J" in text and " W " in text + " "


def test_public_name_and_mode_filter(case):
    _, g, x, y = case
    assert neurosim.compare is compare
    only = neurosim.compare(g, "tianjic-x16, speck-xl", x[:1], y[:1],
                            modes=["sync", "async-windowed"])
    assert [r.mode for r in only.results] == ["sync", "async-windowed"]
    with pytest.raises(ValueError, match="unknown mode"):
        compare(g, ["tianjic-x16"], x, modes=["turbo"])
    with pytest.raises(ValueError, match="select no run"):
        compare(g, ["tianjic-x16"], x, modes=["async-free"])
    with pytest.raises(ValueError, match="Available"):
        compare(g, ["no-such-chip"], x)


def test_free_only_uses_the_interpreter_as_reference(case):
    _, g, x, y = case
    c = compare(g, ["speck-xl"], x[:1], y[:1], modes=["async-free"])
    assert c.reference_source == "interpreter"
    ref = neurosim.interpret(g, x[:1], record="none")
    np.testing.assert_array_equal(c.reference_logits, ref.logits)


def test_chunked_runs_merge_to_the_single_run(case):
    _, g, x, y = case
    one = simulate(g, "tianjic-x16", x, labels=y)
    parts = simulate_batched(g, "tianjic-x16", x, labels=y, chunk=2)
    assert parts.counts == one.counts and parts.core_counts == one.core_counts
    np.testing.assert_array_equal(parts.logits, one.logits)
    np.testing.assert_array_equal(parts.latency_s, one.latency_s)
    for n in one.spike_counts:
        np.testing.assert_array_equal(parts.spike_counts[n], one.spike_counts[n])
    assert merge_results([one]) is one
    with pytest.raises(ValueError, match="chunk"):
        simulate_batched(g, "tianjic-x16", x, chunk=0)


def test_from_results_needs_an_exact_reference(cmp, case):
    _, g, _, _ = case
    c = Comparison.from_results(g, cmp.results[:2])
    assert c.reference_source == "tianjic-x16/sync" and set(c.mappings) == {"tianjic-x16",
                                                                            "speck-xl"}
    with pytest.raises(ValueError, match="no exact run"):
        Comparison.from_results(g, cmp.results[2:])


def test_sync_and_async_accuracy_come_from_the_same_inputs(cmp, case):
    """Every row's accuracy and agreement are over the same n inputs and the same labels."""
    _, _, _, y = case
    rows = cmp.table()
    assert {r["n"] for r in rows} == {len(y)}
    for r, res in zip(rows, cmp.results):
        np.testing.assert_array_equal(res.labels, y)
        assert r["accuracy"] == float((res.predictions == y).mean())
    assert rows[0]["accuracy"] == rows[1]["accuracy"]          # windowed equals sync exactly
    with pytest.raises(ValueError, match="same inputs"):
        Comparison.from_results(case[1], [cmp.results[0], merge_results([cmp.results[1]])]
                                + [simulate(case[1], "speck-xl", case[2][:1], "async")])
    with pytest.raises(TypeError, match="limits"):
        compare(case[1], ["tianjic-x16"], case[2], limits={"async-free": 1})


def test_ratios_split_dynamic_and_static_and_cover_every_policy(cmp):
    rows = {r["mode"]: r for r in cmp.table()}
    rat = cmp.ratios()
    assert [(r["sync"], r["async"]) for r in rat] == [
        ("tianjic-x16/sync", "speck-xl/async-windowed"), ("tianjic-x16/sync", "speck-xl/async-free")]
    s, a = rows["sync"], rows["async-windowed"]
    r = rat[0]
    assert r["n"] == 2 and r["ratio"] == pytest.approx(
        s["energy_per_inference_j"] / a["energy_per_inference_j"], rel=1e-12)
    assert r["dynamic_ratio"] == pytest.approx(
        s["dynamic_per_inference_j"] / a["dynamic_per_inference_j"], rel=1e-12)
    assert set(r["ratio_by_policy"]) == {"none", "unused", "idle"}
    assert r["ratio_by_policy"]["none"] == pytest.approx(r["ratio"], rel=1e-12)
    for p in ("unused", "idle"):
        assert r["ratio_by_policy"][p] == pytest.approx(
            (s["dynamic_per_inference_j"] + s[f"static_{p}_per_inference_j"])
            / (a["dynamic_per_inference_j"] + a[f"static_{p}_per_inference_j"]), rel=1e-12)
    lines = cmp.format_ratios()
    assert len(lines) == 2 and "same 2 inputs" in lines[0] and "dynamic alone" in lines[0]
    assert all(p in lines[0] for p in ("none", "unused", "idle"))


def test_power_gating_override_prices_every_run(case):
    _, g, x, y = case
    c = compare(g, ["tianjic-x16", "speck-xl"], x[:1], y[:1], modes=["sync", "async-windowed"],
                power_gating="unused")
    assert [r["power_gating"] for r in c.table()] == ["unused", "unused"]
    for r in c.table():
        assert r["static_per_inference_j"] == pytest.approx(r["static_unused_per_inference_j"],
                                                            rel=1e-12)
