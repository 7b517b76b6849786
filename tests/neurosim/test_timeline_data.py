"""Readable timelines: busy time per bin when work items are thinner than a pixel, rows
labelled by the layers mapped to each core, energy titles in scaled units."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from matplotlib.axes import Axes

from neurosim.ir.units import fmt_energy, fmt_time
from neurosim.report import plots as P
from neurosim.report.timeline_data import (PIXELS, busy_fraction, core_layers, core_ticks,
                                           mostly_subpixel)

times = st.floats(0, 1.0, allow_nan=False, allow_subnormal=False)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, 3), times, times), min_size=1, max_size=40),
       bins=st.integers(1, 50))
def test_busy_fraction_conserves_busy_time(items, bins):
    its = [[c, min(a, b), max(a, b), "n", "synops"] for c, a, b in items]
    end = max(it[2] for it in its)
    if end <= 0:
        return
    cores = sorted({it[0] for it in its})
    grid = busy_fraction(its, cores, end, bins)
    w = end / bins
    for i, c in enumerate(cores):
        busy = sum(it[2] - it[1] for it in its if it[0] == c)
        assert grid[i].sum() * w == pytest.approx(busy, rel=1e-9, abs=1e-12)
    assert (grid >= -1e-12).all()


def test_untouched_bins_are_exactly_zero_and_partial_bins_split():
    its = [[7, 0.15, 0.25, "a", "synops"], [9, 0.0, 1.0, "b", "fire"]]
    g = busy_fraction(its, [7, 9], 1.0, 10)
    assert g[0, 1] == pytest.approx(0.5) and g[0, 2] == pytest.approx(0.5)
    assert (g[0, [0, 3, 4, 5, 6, 7, 8, 9]] == 0).all()
    assert g[1] == pytest.approx(np.ones(10))


def test_mostly_subpixel():
    short = [[0, i * 1e-3, i * 1e-3 + 1e-7, "n", "synops"] for i in range(100)]
    assert mostly_subpixel(short, 0.1) and not mostly_subpixel(short[:1], 1e-6)
    assert not mostly_subpixel([], 1.0)


def test_core_ticks_label_layers_and_group_runs():
    labels = {1: ["conv1"], 2: ["conv1"], 3: ["attn.q", "attn.k"], 5: ["head"]}
    pos, text = core_ticks([1, 2, 3, 5], labels)
    assert pos == [0.5, 2.0, 3.0]
    assert text == ["conv1 (cores 1-2)", "attn.q +1 (core 3)", "head (core 5)"]
    pos, text = core_ticks(list(range(200)), None)
    assert len(pos) <= 60 and text[0] == "0"
    many = {c: [f"layer{c}"] for c in range(200)}
    pos, text = core_ticks(list(range(200)), many)
    assert 30 <= len(pos) <= 60 and text[0] == "layer0 (core 0)"
    assert core_layers({"cores": [{"core": 4, "layers": ["a"]}]}) == {4: ["a"]}
    assert core_layers(None) == {}


@pytest.fixture
def titles(monkeypatch):
    seen = []
    real = Axes.set_title

    def record(self, label, *a, **k):
        seen.append(label)
        return real(self, label, *a, **k)
    monkeypatch.setattr(Axes, "set_title", record)
    return seen


def test_plots_use_scaled_units_and_layer_labels(tmp_path, titles, monkeypatch):
    P.energy_by_layer([("conv", {"synaptic_ac": 2e-9}), ("fc", {"mac": 1e-9})],
                      tmp_path / "e.png", title="t", static_j=3.99e-3)
    assert titles[-1] == ("t\nstatic energy, not attributable to layers: "
                          f"{fmt_energy(3.99e-3)} per inference") and "3.99 mJ" in titles[-1]
    items = [[c, i * 1e-4, i * 1e-4 + 2e-8, "n", "synops"] for i in range(2000) for c in (3, 8)]
    path = P.async_timeline(items, tmp_path / "a.png", title="async",
                            core_labels={3: ["stem.conv"], 8: ["head"]})
    assert path.read_bytes()[:8] == bytes.fromhex("89504e470d0a1a0a")
    assert "4,000 work items, most shorter than a pixel: busy fraction per " in titles[-1]
    assert titles[-1].endswith(f"{fmt_time(items[-1][2] / PIXELS)} bin")
    ticks = []
    real = Axes.set_yticks

    def grab(self, pos, labels=None, **k):
        ticks.append(list(labels or []))
        return real(self, pos, labels, **k)
    monkeypatch.setattr(Axes, "set_yticks", grab)
    wide = [[3, 0.0, 1e-4, "n", "synops"], [8, 5e-5, 1e-4, "m", "fire"]]
    P.async_timeline(wide, tmp_path / "b.png", title="few",
                     core_labels={3: ["stem.conv"], 8: ["head"]})
    assert titles[-1] == "few"                                  # wide items: bars, as before
    P.sync_timeline([1e-6] * 3, {"3": [5, 0, 1], "8": [0, 2, 2]}, [("n", [0.1, 0.2])],
                    tmp_path / "s.png", title="sync", core_labels={3: ["stem.conv"]})
    assert ticks[0] == ["stem.conv (core 3)", "head (core 8)"]
    assert ticks[1] == ["stem.conv (core 3)", "? (core 8)"]
