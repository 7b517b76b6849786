"""Asynchronous engine: windowed == sync exactly; free-running deviation measured; FIFO, stalls,
drops and event conservation."""
import numpy as np
import pytest

from neurosim.ir import graph as G
from neurosim.frontends.lower import lower
from neurosim.run.simulate import build_engine, simulate
from tests.zoo_cases import SMALL, inputs_for, small_model

SYNC, ASYNC = "tianjic-x16", "speck-xl"


def _case(case, n=2, **opts):
    model = small_model(case)
    x = inputs_for(model, n)
    return lower(model, x, **opts), x


def _same(a, b):
    for n in a.spikes:
        np.testing.assert_array_equal(a.spikes[n], b.spikes[n], err_msg=n)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert {n: c.tolist() for n, c in a.spike_counts.items()} == \
        {n: c.tolist() for n, c in b.spike_counts.items()}


@pytest.mark.parametrize("case", sorted(SMALL))
@pytest.mark.parametrize("ssc", [False, True], ids=["vsc", "ssc"])
def test_windowed_equals_sync(case, ssc):
    graph, x = _case(case, ssc=ssc)
    sync = simulate(graph, SYNC, x, record="spikes")
    win = simulate(graph, ASYNC, x, mode="async", record="spikes")
    _same(sync, win)
    st = win.stats
    assert st["events_in"] == st["events_served"] + st["events_dropped"] + st["events_in_flight"]
    assert st["events_in_flight"] == 0 and st["events_dropped"] == 0
    assert np.all(win.latency_s > 0)


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer"])
def test_record_all_gives_equal_tensors_for_every_node_in_both_engines(case):
    """One run scaffold: record="all" keeps every node's output, the input included, in the
    same layout ([T, B, *shape]) whichever engine ran it."""
    graph, x = _case(case)
    sync = simulate(graph, SYNC, x, record="all")
    win = simulate(graph, ASYNC, x, mode="async", record="all")
    assert set(sync.spikes) == set(win.spikes) == set(graph.order())
    inp = graph.input_node()
    xs = np.broadcast_to(x, (graph.T,) + x.shape) if x.ndim == len(graph.op(inp).shape) + 1 else x
    np.testing.assert_array_equal(sync.spikes[inp], xs)
    for n in graph.order():
        assert sync.spikes[n].shape == (graph.T, len(x)) + graph.op(n).shape, n
        np.testing.assert_array_equal(sync.spikes[n], win.spikes[n], err_msg=n)


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer"])
def test_free_running_deviates_on_trained_style_networks(case):
    """Neurons firing on partial input change the spike trains; the deviation is real and
    measured from the runs (free-running neurons with signed weights fire spikes they cannot
    take back). Exact agreement where order cannot matter: tests/chips/test_async_free.py."""
    graph, x = _case(case)
    win = simulate(graph, ASYNC, x, mode="async")
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free")
    diff = {n: int(free.spike_counts[n].sum()) - int(win.spike_counts[n].sum())
            for n in win.spike_counts}
    assert any(d != 0 for d in diff.values())
    assert free.mode == "async-free" and free.stats["async_mode"] == "free"


def test_sfa_bursts_are_spread_by_the_inter_spike_interval():
    graph, x = _case("e-spikeformer", n=1)
    fast = simulate(graph, ASYNC, x, mode="async")
    from chips.spec import load_chip
    chip = load_chip(ASYNC)
    assert chip.timing.burst_isi_ns > 0
    engine = build_engine(graph, chip, "async")
    engine.isi_s *= 100                      # slower bursts: later decisions, same results
    slow = engine.run(x)
    np.testing.assert_array_equal(fast.logits, slow.logits)
    assert slow.latency_s[0] > fast.latency_s[0]


def test_low_fifo_and_slow_service_provoke_stalls_counted_without_loss():
    graph, x = _case("meta-sdsa3", n=1)
    base = simulate(graph, ASYNC, x, mode="async")
    tight = simulate(graph, ASYNC, x, mode="async", fifo_depth=4, synop_service_ns=50.0)
    st = tight.stats
    assert st["stalls"] > base.stats["stalls"] and st["stall_s"] > 0
    assert st["max_fifo_occupancy"] <= 4
    assert st["events_in"] == st["events_served"] + st["events_dropped"] + st["events_in_flight"]
    assert st["events_dropped"] == 0
    np.testing.assert_array_equal(tight.logits, base.logits)     # stalls delay, never change
    assert tight.latency_s[0] > base.latency_s[0]


def test_burst_storm_with_drop_policy_drops_and_accounts_every_event():
    graph, x = _case("e-spikeformer", n=1)
    exact = simulate(graph, ASYNC, x, mode="async")
    storm = simulate(graph, ASYNC, x, mode="async", fifo_depth=8, overflow="drop")
    st = storm.stats
    assert st["drops"] > 0 and st["events_dropped"] == st["drops"]
    assert st["events_in"] == st["events_served"] + st["events_dropped"] + st["events_in_flight"]
    assert st["events_in_flight"] == 0
    assert storm.totals()["ac"] < exact.totals()["ac"]            # dropped events did no work
    assert storm.stats["max_fifo_occupancy"] <= 8


def test_windowed_drops_keep_each_core_s_own_input(tmp_path):
    """A layer split over two cores (a speck-xl variant that splits layers): with drops the
    two cores receive different events, each part computes from what its own core received,
    and every dropped event did no synaptic work."""
    from tests.chips.async_graphs import split_layer
    toml = tmp_path / "xl-split.toml"
    toml.write_text('extends = "speck-xl"\nname = "xl-split"\n[features]\n'
                    'split_layers = {value = true, estimate = "test: layers split by channel"}\n')
    graph = split_layer()
    x = (np.random.default_rng(0).random((1, 4, 32, 32)) < 0.3).astype(float)
    exact = simulate(graph, toml, x, mode="async")
    lossy = simulate(graph, toml, x, mode="async", fifo_depth=4, overflow="drop",
                     link_events_per_s=2e7)
    st = lossy.stats
    assert st["events_dropped"] > 0 and st["events_in_flight"] == 0
    assert st["events_in"] == st["events_served"] + st["events_dropped"]
    from chips.mapping import map_graph
    c0, c1 = (p.core for p in map_graph(graph, toml).parts("wide"))
    assert exact.core_counts[c0]["ac"] == exact.core_counts[c1]["ac"] > 0    # the same input
    a, b = (lossy.core_counts.get(c, {}).get("ac", 0) for c in (c0, c1))
    assert a != b and a <= exact.core_counts[c0]["ac"] and b <= exact.core_counts[c1]["ac"]
    assert lossy.totals()["ac"] < exact.totals()["ac"]


def test_neuron_updates_are_event_driven():
    graph, x = _case("spikformer", n=1)
    sync = simulate(graph, SYNC, x)
    win = simulate(graph, ASYNC, x, mode="async")
    pops = [n for n, op in graph.nodes.items() if isinstance(op, G.Neurons)]
    assert sum(win.counts[n]["neuron_updates"] for n in pops) < \
        sum(sync.counts[n]["neuron_updates"] for n in pops)
    for n in pops:
        assert win.counts[n]["neuron_updates"] <= sync.counts[n]["neuron_updates"]
    # Speck: every synaptic op reads and writes its target membrane
    syn = sum(win.counts[n]["ac"] + win.counts[n]["mac"] for n in win.counts)
    assert sum(win.counts[n]["membrane_reads"] for n in win.counts) == syn


def test_map_readout_logits_equal_the_interpreter_in_both_engines():
    """A Readout fed a conv map (C, H, W): the logits are the C*H*W map means in (C, H, W)
    order (the interpreter's), from the sync engine and the windowed async engine bit for bit,
    and a label may name any of the K = C*H*W logits."""
    from neurosim.reference import interp
    from tests.chips.async_graphs import map_readout
    graph = map_readout(seed=2)
    x = np.random.default_rng(2).integers(0, 2, (3, 2, 6, 6)).astype(float)
    ref = interp.run(graph, x)
    K = graph.op("readout").size
    assert ref.logits.shape == (3, K) and np.ptp(ref.logits) > 0
    y = np.array([K - 1, 0, 5])
    sync = simulate(graph, SYNC, x, labels=y, record="spikes")
    win = simulate(graph, ASYNC, x, mode="async", labels=y, record="spikes")
    for res in (sync, win):
        np.testing.assert_array_equal(res.logits, ref.logits)
        np.testing.assert_array_equal(res.predictions, ref.predictions)
        assert res.accuracy == float(np.mean(ref.predictions == y))
        for n, s in ref.spikes(graph).items():
            np.testing.assert_array_equal(res.spikes[n], s, err_msg=n)
    # free-running mode (signed weights: its spikes may differ) flattens the same way: its
    # logits are its own c2 map's time means in (C, H, W) order
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="all")
    np.testing.assert_allclose(free.logits, free.spikes["c2"].mean(axis=0).reshape(3, K),
                               rtol=1e-12, atol=1e-12)


def test_fifo_occupancy_trace_is_recorded():
    """The first input's FIFO occupancy: by default three points per batch (its first entry,
    its peak, its last departure); with ``trace_fifo`` every scheduled run of events."""
    graph, x = _case("meta-sdsa3", n=1)
    points = {}
    for trace_fifo in (False, True):
        res = simulate(graph, ASYNC, x, mode="async", fifo_depth=16, trace_fifo=trace_fifo)
        trace = res.stats["fifo_occupancy"]
        assert trace and all(0 <= occ <= 16 for pts in trace.values() for _, occ in pts)
        times = [t for pts in trace.values() for t, _ in pts]
        assert min(times) >= 0 and max(times) <= res.latency_s[0]
        assert res.timeline["items"]
        points[trace_fifo] = sum(len(p) for p in trace.values())
    assert points[False] % 3 == 0 and points[True] > points[False]


@pytest.mark.parametrize("kw,match", [
    (dict(fifo_depth=0), "fifo_depth must be an integer >= 1"),
    (dict(synop_service_ns=-1.0), "synop_service_ns must be a finite latency >= 0"),
    (dict(overflow="explode"), "overflow must be one of"),
    (dict(async_mode="chaotic"), "async_mode must be"),
    (dict(input_window_s=-1e-3), "input_window_s must be a finite latency >= 0"),
    (dict(fifo_depth=2.5), "fifo_depth must be an integer >= 1"),
    (dict(link_events_per_s=0.0), "link_events_per_s must be a finite rate > 0"),
    (dict(link_events_per_s=float("inf")), "link_events_per_s must be a finite rate > 0"),
    (dict(settle_ns=-1.0), "settle_ns must be a finite latency >= 0"),
    (dict(realisation="magic"), "realisation must be one of"),
    (dict(input_order="random"), "input_order must be one of"),
])
def test_bad_engine_settings_are_rejected(kw, match):
    graph, x = _case("spikformer", n=1)
    with pytest.raises(ValueError, match=match):
        simulate(graph, ASYNC, x, mode="async", **kw)


def test_model_needing_more_cores_than_real_speck_is_reported():
    from chips.mapping import MappingError, map_graph
    from chips.spec import load_chip
    graph, x = _case("meta-sdsa3", n=1)
    with pytest.raises(MappingError):
        simulate(graph, "speck", x, mode="async")
    report = map_graph(graph, load_chip("speck"), strict=False)
    assert not report.fits and report.violations
    assert any("SpikeMatmul" in str(v) or "spike" in str(v).lower() for v in report.violations)


def test_sync_chip_refuses_async_mode_and_vice_versa():
    graph, x = _case("spikformer", n=1)
    with pytest.raises(ValueError, match="mode='sync'"):
        simulate(graph, SYNC, x, mode="async")
    with pytest.raises(ValueError, match="mode='async'"):
        simulate(graph, ASYNC, x, mode="sync")
