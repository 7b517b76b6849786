"""The batched windowed path (``async_windowed_batch``, ``kernels.schedule``) against the SimPy
reference (``windowed_schedule="simpy"``): every field of the RunResult identical (spikes,
counts, logits, latency, timeline, FIFO statistics and traces), on every zoo family, on event
input, on SFA bursts, on a mesh and on an all-to-all chip, with FIFOs small enough to stall;
drops fall back to SimPy and say so."""
import numpy as np
import pytest

from chips.engines.kernels import schedule as S
from neurosim.frontends.lower import lower
from neurosim.run.simulate import build_engine, simulate
from tests.chips.async_graphs import burst_storm, order_free
from tests.zoo_cases import SMALL, inputs_for, small_model

ASYNC = "speck-xl"
PATH_KEYS = {"wall_s", "windowed_schedule", "simpy_reason"}   # which path ran, and how fast


def assert_same(a, b, where="result"):
    """Equal values of the same types, recursively (dicts, lists, arrays, floats bit for bit)."""
    if isinstance(a, dict):
        assert set(a) - PATH_KEYS == set(b) - PATH_KEYS, where
        for k in set(a) - PATH_KEYS:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def run_both(graph, x, chip=ASYNC, **kw):
    ref = simulate(graph, chip, x, mode="async", windowed_schedule="simpy", **kw)
    fast = simulate(graph, chip, x, mode="async", **kw)
    for f in ("mode", "chip", "model", "logits", "spike_counts", "counts", "core_counts",
              "latency_s", "ticks", "timeline", "stats", "labels", "spikes", "energy"):
        assert_same(getattr(ref, f), getattr(fast, f), f)
    return ref, fast


@pytest.fixture(scope="module")
def lowered():
    out = {}
    for case in sorted(SMALL):
        model = small_model(case)
        x = inputs_for(model, 2)
        out[case] = (lower(model, x, ssc=case == "spikformer"), x)
    return out


@pytest.mark.parametrize("case", sorted(SMALL))
def test_batched_schedule_equals_simpy_on_every_family(case, lowered):
    graph, x = lowered[case]
    ref, fast = run_both(graph, x, record="spikes")
    assert fast.stats["windowed_schedule"] == {"batched": 2, "simpy": 0}
    assert ref.stats["windowed_schedule"] == {"batched": 0, "simpy": 2}
    assert fast.stats["events_in"] > 0 and fast.timeline["items"]


@pytest.mark.parametrize("case,kw", [
    ("meta-sdsa3", dict(fifo_depth=4, synop_service_ns=50.0)),
    ("e-spikeformer", dict(fifo_depth=8, input_order="saliency", trace_fifo=True)),
    ("autost", dict(fifo_depth=2, link_events_per_s=2e7, input_window_s=1e-6)),
])
def test_batched_schedule_equals_simpy_when_fifos_stall(case, kw, lowered):
    graph, x = lowered[case]
    base = simulate(graph, ASYNC, x, mode="async")
    _, fast = run_both(graph, x, **kw)
    assert fast.stats["stalls"] > base.stats["stalls"] and fast.stats["stall_s"] > 0
    assert fast.stats["max_fifo_occupancy"] <= kw["fifo_depth"]


def test_batched_schedule_on_event_input_bursts_and_an_all_to_all_chip():
    rng = np.random.default_rng(3)
    events = rng.integers(0, 3, (3, 3, 2, 6, 6)).astype(float)        # [T, B, ...] frames
    graph = order_free(4, T=3, spike_input=True, shortcut=True)
    _, fast = run_both(graph, events, input_window_s=2e-6, fifo_depth=4)
    assert fast.stats["input_window_s"] == 2e-6 and fast.stats["stalls"] > 0
    run_both(order_free(4, T=3, spike_input=True), events, chip="speck")   # one event bus
    storm = burst_storm()
    _, fast = run_both(storm, np.ones((2, 8)), fifo_depth=16, link_events_per_s=1e6)  # SFA
    assert fast.stats["stalls"] > 0


def test_batches_and_the_recorded_input_follow_the_run():
    """Several batches: each input's figures are its own; the timeline and FIFO trace are
    the first input's, as on SimPy."""
    graph = order_free(5, T=2, spike_input=True)
    x = np.random.default_rng(4).integers(0, 3, (5, 2, 6, 6)).astype(float)
    ref, fast = run_both(graph, x, batch_size=2, fifo_depth=4)
    assert len(set(fast.latency_s.tolist())) > 1


def test_drops_fall_back_to_simpy_and_say_so():
    graph = burst_storm(n_out=64)
    x = np.ones((2, 8))
    ref, fast = run_both(graph, x, fifo_depth=64, overflow="drop", link_events_per_s=1e12)
    st = fast.stats
    assert st["events_dropped"] > 0
    assert st["windowed_schedule"] == {"batched": 0, "simpy": 2} and "drop" in st["simpy_reason"]
    _, calm = run_both(graph, x, fifo_depth=4096, overflow="drop", link_events_per_s=1e12)
    assert calm.stats["events_dropped"] == 0
    assert calm.stats["windowed_schedule"] == {"batched": 2, "simpy": 0}


def test_a_lost_event_in_the_batched_schedule_is_caught(monkeypatch):
    """Conservation is checked from the schedule's own counters: a kernel that loses an
    event in service breaks it."""
    real = S.windowed_schedule

    def lossy(*a):
        real(*a)
        stats = a[-7]
        stats[0, S.ST_SERVED] -= 1
    monkeypatch.setattr(S, "windowed_schedule", lossy)
    with pytest.raises(RuntimeError, match="lost events"):
        simulate(order_free(1), ASYNC, np.ones((1, 2, 6, 6)), mode="async")


def test_schedule_option_is_checked():
    with pytest.raises(ValueError, match="windowed_schedule must be one of"):
        build_engine(order_free(1), ASYNC, "async", windowed_schedule="fast")
