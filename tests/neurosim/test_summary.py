"""Three lines to an answer: ``neurosim.simulate`` prices the run with the chip's own energy
table (``energy_table=`` chooses another), ``print(result)`` is a short table with the figures a
user came for, ``to_rows`` / ``to_frame`` hold the per-node data, ``print(comparison)`` is short."""
import re
import sys
import types

import numpy as np
import pytest

import neurosim
from chips.spec import load_chip
from chips.mapping import map_graph
from neurosim.costing.energy import attach_energy
from neurosim.ir.counts import CATEGORIES
from neurosim.ir.summary import TOP, node_rows, top_consumers
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
from neurosim.run.simulate import run_engine
from tests.zoo_cases import inputs_for, small_model


@pytest.fixture(scope="module")
def case():
    m = small_model("e-spikeformer")
    x = inputs_for(m, 3, seed=11)
    return neurosim.lower(m, x), x, np.array([0, 1, 2])


@pytest.fixture(scope="module")
def res(case):
    g, x, y = case
    return neurosim.simulate(g, "tianjic-x16", x, labels=y)


def test_simulate_prices_with_the_chips_own_table(case, res):
    g, x, y = case
    chip = load_chip("tianjic-x16")
    assert res.energy is not None and res.energy["table"] == chip.energy().name
    bare = run_engine(g, chip, x, "sync", labels=y)
    assert bare.energy is None
    mapping = map_graph(g, chip)
    assert attach_energy(bare, chip, mapping=mapping) == res.energy      # the same pricing
    assert res.energy_j == res.energy["total_j"] > 0


def test_energy_table_argument_and_the_chips_own_mode(case):
    g, x, y = case
    r45 = neurosim.simulate(g, "tianjic-x16", x, labels=y, energy_table="45nm")
    assert r45.energy["table"] == "45nm" and r45.energy["static_j"] == 0.0
    ra = neurosim.simulate(g, "speck-xl", x[:, :1] if x.ndim == 5 else x[:1])
    assert ra.mode == "async-windowed"                   # the chip's kind by default
    assert ra.energy["table"] == load_chip("speck-xl").energy().name


def test_print_result_is_a_short_table_with_the_headline_figures(res):
    text = str(res)
    e = res.energy
    per = e["per_inference"]
    assert text.splitlines()[0] == f"{res.model} on tianjic-x16 (sync): 3 inputs"
    assert f"{res.accuracy:.4f}" in text and f"of {res.n} correct" in text
    for s in (fmt_energy(per["total_j"]), fmt_energy(per["dynamic_j"]),
              fmt_energy(per["static_j"]), fmt_power(e["power_w"]["total"]),
              fmt_time(float(np.mean(res.latency_s))), e["table"], "to_dict()"):
        assert s in text, s
    top = top_consumers(res)
    assert len(top) == TOP
    assert [t["energy_j"] for t in top] == sorted((t["energy_j"] for t in top), reverse=True)
    assert top[0]["energy_j"] == max(per["by_node_j"].values())
    for t in top:
        assert t["node"] in text and f"{100 * t['share']:.1f}%" in text
    assert len(text) < 2000 and len(text.splitlines()) < 25
    line = repr(res)
    assert "\n" not in line and len(line) < 200 and fmt_energy(per["total_j"]) in line
    assert str(res) == str(res)                              # deterministic


def test_unpriced_result_says_so(case):
    g, x, y = case
    bare = run_engine(g, "tianjic-x16", x, "sync", labels=y)
    text = str(bare)
    assert "not priced" in text and "attach_energy" in text
    assert "energy/inference=None" in repr(bare)


def test_rows_hold_every_node_per_inference(res):
    rows = node_rows(res)
    assert [r["node"] for r in rows] == list(res.counts)
    for cat in CATEGORIES:
        assert sum(r[f"{cat}_per_inference"] for r in rows) * res.n == pytest.approx(
            res.totals()[cat], rel=1e-12)
    assert sum(r["energy_per_inference_j"] for r in rows) == pytest.approx(
        res.energy["per_inference"]["dynamic_j"], rel=1e-9)
    spikes = {r["node"]: r["spikes_per_inference"] for r in rows}
    for node, sc in res.spike_counts.items():
        assert spikes[node] == pytest.approx(float(np.sum(sc)) / res.n)


def test_to_frame_uses_pandas_when_present_and_says_so_when_absent(res, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)            # import pandas fails
    with pytest.raises(ImportError, match="pandas.*to_rows"):
        res.to_frame()

    class Frame:                                               # records how it was built
        def __init__(self, rows):
            self.rows = rows

        def set_index(self, key):
            self.index = key
            return self

    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(DataFrame=Frame))
    f = res.to_frame()
    assert f.rows == res.to_rows() and f.index == "node"


def test_print_comparison_is_short(case):
    g, x, y = case
    cmp = neurosim.compare(g, ["tianjic-x16", "speck-xl"], x, y, modes=["sync", "async-windowed"])
    text = str(cmp)
    assert "3 inputs, the same in every run" in text
    for r in cmp.table():
        assert fmt_energy(r["energy_per_inference_j"]) in text
    assert "sync/async energy per inference" in text and "tianjic-x16/sync / speck-xl" in text
    assert len(text) < 3000
    assert repr(cmp) == ("<Comparison of 2 runs on 3 inputs: tianjic-x16/sync, "
                         "speck-xl/async-windowed>")


def test_zero_dynamic_energy_prints_values_and_no_shares(tmp_path):
    """A zero energy table: the top consumers keep their absolute energy (0 J), the share is
    None and prints "n/a", never nan, inf or a division by zero."""
    from tests.chips.async_graphs import order_free
    from tests.neurosim.test_report import zero_energy_chip
    chip = zero_energy_chip(tmp_path)
    g = order_free(0, T=2)
    res = neurosim.simulate(g, chip, np.random.default_rng(0).uniform(0.0, 1.0, (2, 2, 6, 6)))
    assert res.energy["per_inference"]["dynamic_j"] == 0.0
    top = top_consumers(res)
    assert len(top) == TOP
    assert all(t["energy_j"] == 0.0 and t["share"] is None and t["largest_part"] == ""
               for t in top)
    text = str(res)
    table = text[text.index("top 5 energy consumers"):].splitlines()[3:3 + TOP]
    assert all(ln.split()[1:4] == ["0", "J", "n/a"] for ln in table), table
    assert not any("%" in ln for ln in table)
    assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE)
