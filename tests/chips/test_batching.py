"""Batched execution and the path choice: a batch of inputs gives each input exactly what it
gets alone (results, counts, timing), and the scatter and dense paths never change results or
counts, on every family (tests/zoo_cases.py)."""
import json

import numpy as np
import pytest

from chips.engines import paths as P
from chips.engines.base import MAX_BATCH, default_batch_size, live_bytes_per_input
from chips.mapping import map_graph
from neurosim.frontends.lower import lower
from neurosim.ir import graph as G
from neurosim.run.simulate import build_engine, simulate
from tests.zoo_cases import SMALL, inputs_for, small_model

CHIP = "tianjic-x16"
SYNAPTIC = (G.Conv, G.Linear, G.SpikeMatmul)


@pytest.fixture(scope="module")
def lowered():
    cache = {}

    def get(case, n=3):
        if case not in cache:
            m = small_model(case)
            x = inputs_for(m, n)
            g = lower(m, x)
            cache[case] = (g, x, map_graph(g, CHIP))
        return cache[case]
    return get


def _same(a, b, what):
    np.testing.assert_array_equal(a.logits, b.logits, err_msg=what)
    assert a.counts == b.counts, what
    assert a.core_counts == b.core_counts, what
    for n in a.spike_counts:
        np.testing.assert_array_equal(a.spike_counts[n], b.spike_counts[n], err_msg=what)
    np.testing.assert_array_equal(a.latency_s, b.latency_s, err_msg=what)
    np.testing.assert_array_equal(a.ticks, b.ticks, err_msg=what)
    assert a.timeline == b.timeline, what
    assert sorted(a.spikes) == sorted(b.spikes), what
    for n in a.spikes:
        np.testing.assert_array_equal(a.spikes[n], b.spikes[n], err_msg=f"{what}: {n}")


@pytest.mark.parametrize("case", sorted(SMALL))
def test_batched_equals_one_input_at_a_time(case, lowered):
    """Batch of 3 == batch of 1 (B = 1 runs), bit for bit: logits, counts per node and core,
    spikes per step, latency, ticks, the first input's timeline, every recorded tensor."""
    g, x, m = lowered(case)
    one = simulate(g, CHIP, x, mapping=m, batch_size=1, record="all")
    batch = simulate(g, CHIP, x, mapping=m, batch_size=3, record="all")
    two = simulate(g, CHIP, x, mapping=m, batch_size=2, record="all")   # a ragged last batch
    _same(one, batch, f"{case}: batch 3 vs 1")
    _same(one, two, f"{case}: batch 2 vs 1")
    assert batch.stats["batch_size"] == 3


@pytest.mark.parametrize("case", sorted(SMALL))
def test_forced_scatter_and_dense_paths_agree(case, lowered):
    """Every synaptic node-step on the scatter path vs every one on the dense path: the same
    results and counts; the paths were really taken (today's automatic choice takes scatter
    on too few node-steps of Meta-SpikeFormer / E-SpikeFormer to test it)."""
    g, x, m = lowered(case)
    res = {}
    for path in ("scatter", "dense"):
        eng = build_engine(g, CHIP, mapping=m, path=path, batch_size=3)
        res[path] = eng.run(x)
        syn = [n for n, e in eng.execs.items() if isinstance(e.op, SYNAPTIC)]
        other = "dense_steps" if path == "scatter" else "scatter_steps"
        assert syn and all(getattr(eng.execs[n], other) == 0 for n in syn), case
        taken = res[path].stats[f"{path}_steps"]
        assert set(taken) == set(syn), case
        assert all(v == x.shape[0] * g.T for v in taken.values()), case
    _same(res["scatter"], res["dense"], f"{case}: scatter vs dense")


def test_automatic_path_is_exact_and_records_its_choice(lowered):
    g, x, m = lowered("meta-sdsa3")
    auto = simulate(g, CHIP, x, mapping=m)
    forced = simulate(g, CHIP, x, mapping=m, path="scatter")
    _same(auto, forced, "auto vs scatter")
    st = auto.stats
    assert sum(st["dense_steps"].values()) + sum(st["scatter_steps"].values()) > 0
    assert st["path_model"]


def test_path_and_batch_options_are_checked(lowered):
    g, x, m = lowered("meta-sdsa3")
    with pytest.raises(ValueError, match="path must be one of"):
        build_engine(g, CHIP, mapping=m, path="fast")
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            build_engine(g, CHIP, mapping=m, batch_size=bad)
    with pytest.raises(ValueError, match="dense_threshold"):
        build_engine(g, CHIP, mapping=m, dense_threshold=-1.0)


def test_default_batch_size_bounds_activation_memory(lowered):
    g, _, _ = lowered("meta-sdsa3")
    per = live_bytes_per_input(g)
    largest = max(8 * int(np.prod(op.shape)) for op in g.nodes.values())
    assert largest * 4 <= per <= 8 * sum(int(np.prod(op.shape)) for op in g.nodes.values()) \
        + 3 * largest
    assert default_batch_size(g) == min(MAX_BATCH, 512 * 2 ** 20 // per)
    assert default_batch_size(g, budget_bytes=per * 5 + 1) == 5
    assert default_batch_size(g, budget_bytes=1) == 1


# ----------------------------------------------------------------------------- cost model
def test_cost_model_prefers_the_cheaper_path():
    m = P.PathModel.defaults()
    kw = dict(elements=4096, macs=4096 * 4096, weights=4096 * 4096)
    # 4096 x 4096 linear, one input at 10% density: scatter (the 10x case)
    assert not m.dense_faster("linear", events=410 * 4096, **kw)
    # the same at full density and a batch of 100: dense
    assert m.dense_faster("linear", events=100 * 4096 * 4096, elements=409600,
                          macs=100 * 4096 * 4096, weights=4096 * 4096)
    # a float64 dense pass costs more than a float32 one
    assert m.dense_s("conv", 1e9, 0, passes=4.0) > m.dense_s("conv", 1e9, 0)


def test_cost_file_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path))
    assert "no measured costs" in P.read_path_model().source
    costs = {k: dict(v, scatter_event_s=v["scatter_event_s"] * 2) for k, v in P.DEFAULTS.items()}
    path = P.save_path_model(P.PathModel(P.check_costs(costs), "test"))
    assert path.parent == tmp_path and path == P.cost_file()
    got = P.load_path_model()
    assert got.source.startswith("measured") and got.costs == P.check_costs(costs)
    doc = json.loads(path.read_text())
    bad_cases = {
        "truncated": path.read_text()[:40],
        "checksum": json.dumps(dict(doc, costs=dict(doc["costs"], linear=doc["costs"]["conv"]))),
        "machine": None,
        "negative": None,
    }
    fp = dict(doc["machine"], cpu_model="another CPU")
    other = dict(doc, machine=fp)
    other["sha256"] = P._digest(other)
    bad_cases["machine"] = json.dumps(other)
    neg = json.loads(json.dumps(doc))
    neg["costs"]["conv"]["dense_mac_s"] = -1.0
    neg["sha256"] = P._digest(neg)
    bad_cases["negative"] = json.dumps(neg)
    for what, text in bad_cases.items():
        path.write_text(text)
        m = P.read_path_model()
        assert m.source.startswith(P.DEFAULTS_SOURCE) and "ignored" in m.source, what
        assert m.costs == P.check_costs(P.DEFAULTS), what


def test_engine_uses_the_cost_file(tmp_path, monkeypatch, lowered):
    """Costs that make dense absurdly slow send every step to scatter, and back."""
    g, x, m = lowered("meta-sdsa3")
    monkeypatch.setenv(P.CACHE_ENV, str(tmp_path))
    slow = {k: dict(v, dense_fixed_s=1.0) for k, v in P.DEFAULTS.items()}
    P.save_path_model(P.PathModel(P.check_costs(slow), "test"))
    r = simulate(g, CHIP, x, mapping=m)
    assert not r.stats["dense_steps"] and r.stats["path_model"].startswith("measured")
    fast = {k: dict(v, scatter_fixed_s=1.0) for k, v in P.DEFAULTS.items()}
    P.save_path_model(P.PathModel(P.check_costs(fast), "test"))
    r2 = simulate(g, CHIP, x, mapping=m)
    assert not r2.stats["scatter_steps"]
    np.testing.assert_array_equal(r.logits, r2.logits)
    assert r.counts == r2.counts


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer"])
def test_async_windowed_takes_either_path_exactly(case, lowered):
    """The async engine's steps go through the same executors: windowed mode with every
    synaptic step on the scatter path equals the sync engine with every step dense."""
    g, x, m = lowered(case)
    x = x[:2] if x.ndim == 4 else x[:, :2]
    sync = simulate(g, CHIP, x, mapping=m, path="dense", record="spikes")
    win = simulate(g, "speck-xl", x, mode="async", path="scatter", record="spikes")
    np.testing.assert_array_equal(win.logits, sync.logits)
    for n in sync.spikes:
        np.testing.assert_array_equal(win.spikes[n], sync.spikes[n], err_msg=n)
