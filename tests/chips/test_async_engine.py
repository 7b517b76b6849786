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


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer", "spikformer"])
def test_free_equals_windowed_when_order_is_irrelevant(case):
    """With one input slice per window every node sees its whole window at once: the greedy
    free-running rules reduce to the exact ones, bit for bit."""
    graph, x = _case(case)
    win = simulate(graph, ASYNC, x, mode="async", record="spikes", input_batches=1)
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes",
                    input_batches=1)
    _same(win, free)


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer"])
def test_free_deviates_when_input_arrives_in_pieces(case):
    """Neurons firing on partial input change the spike trains; the deviation is real and
    measured from the runs (more spikes, since a fired neuron cannot be un-fired)."""
    graph, x = _case(case)
    win = simulate(graph, ASYNC, x, mode="async", input_batches=4)
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", input_batches=4)
    diff = {n: int(free.spike_counts[n].sum()) - int(win.spike_counts[n].sum())
            for n in win.spike_counts}
    assert any(d != 0 for d in diff.values())
    assert free.totals()["spikes"] > win.totals()["spikes"]


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


def test_drop_tail_removes_exactly_the_last_events():
    from chips.engines.asynchronous import AsyncEngine
    x = np.array([[1, 0, 2], [3, 0, 1]])
    np.testing.assert_array_equal(AsyncEngine._drop_tail(x, 2), [[1, 0, 2], [2, 0, 0]])
    np.testing.assert_array_equal(AsyncEngine._drop_tail(x, 7), np.zeros_like(x))
    np.testing.assert_array_equal(AsyncEngine._drop_tail(x, 0), x)


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


def test_fifo_occupancy_trace_is_recorded():
    graph, x = _case("meta-sdsa3", n=1)
    res = simulate(graph, ASYNC, x, mode="async", fifo_depth=16)
    trace = res.stats["fifo_occupancy"]
    assert trace and all(0 <= occ <= 16 for pts in trace.values() for _, occ in pts)
    times = [t for pts in trace.values() for t, _ in pts]
    assert min(times) >= 0 and max(times) <= res.latency_s[0]
    assert res.timeline["items"]


@pytest.mark.parametrize("kw,match", [
    (dict(fifo_depth=0), "fifo_depth must be an integer >= 1"),
    (dict(synop_service_ns=-1.0), "synop_service_ns must be a finite latency >= 0"),
    (dict(overflow="explode"), "overflow must be one of"),
    (dict(async_mode="chaotic"), "async_mode must be"),
    (dict(input_window_s=-1e-3), "input_window_s must be a finite latency >= 0"),
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
