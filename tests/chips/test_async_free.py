"""Free-running asynchronous mode: neurons fire the moment they cross threshold, events in time
order, token / timeout realisation of complete operands, graded inputs charged only when
nonzero."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurosim.frontends.lower import lower
from neurosim.run.simulate import build_engine, simulate
from tests.chips.async_graphs import early_spike, order_free
from tests.zoo_cases import inputs_for, small_model

ASYNC = "speck-xl"
SETTINGS = settings(max_examples=12, deadline=None)


def _same(a, b):
    for n in a.spikes:
        np.testing.assert_array_equal(a.spikes[n], b.spikes[n], err_msg=n)
    np.testing.assert_array_equal(a.logits, b.logits)


def _input(graph, seed, n=2):
    op = graph.op(graph.input_node())
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + op.shape) * (rng.random((n,) + op.shape) < 0.7)
    return np.rint(x * 3) if op.kind == "spike" else x


@SETTINGS
@given(seed=st.integers(0, 2 ** 16), T=st.integers(1, 3), spike_input=st.booleans(),
       shortcut=st.booleans(), realisation=st.sampled_from(["token", "timeout"]))
def test_free_equals_windowed_where_order_cannot_matter(seed, T, spike_input, shortcut,
                                                        realisation):
    """IF neurons, soft reset, no leak, weights and inputs >= 0, time steps 1 ms apart (so
    they do not overlap): every event only raises a membrane, so firing the moment a neuron
    crosses threshold gives the window's spikes and end state exactly (and the readout,
    closed by token or by a settle time longer than any gap, sees every event)."""
    graph = order_free(seed, T=T, spike_input=spike_input, shortcut=shortcut)
    x = _input(graph, seed)
    win = simulate(graph, ASYNC, x, mode="async", record="spikes", input_window_s=1e-3)
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes",
                    realisation=realisation, settle_ns=1e7, input_window_s=1e-3)
    _same(win, free)
    assert free.stats["late_events"] == 0


def test_free_differs_where_order_matters_a_spike_fired_is_not_taken_back():
    """Weights +4 and -4 on two inputs of one neuron: the positive event is served first and
    the neuron fires; the negative one comes after, too late to undo it. The clocked
    window sees only the total, 0, and stays silent."""
    graph = early_spike()
    x = np.array([[1.0, 1.0]])
    win = simulate(graph, ASYNC, x, mode="async", record="spikes")
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes")
    assert win.spikes["n"].sum() == 0 and free.spikes["n"].sum() == 1
    np.testing.assert_array_equal(win.logits, [[0.0, 0.0]])
    np.testing.assert_array_equal(free.logits, [[1.0, 0.0]])
    # with the negative input first (saliency order puts it first when it is larger) the
    # membrane never reaches threshold: the spike is a matter of order, not of totals
    late = simulate(graph, ASYNC, np.array([[1.0, 1.5]]), mode="async", async_mode="free",
                    record="spikes", input_order="saliency")
    assert late.spikes["n"].sum() == 0


def test_signed_weights_change_free_running_spikes():
    graph = order_free(0, T=2, signed=True)
    x = _input(graph, 0, n=3)
    win = simulate(graph, ASYNC, x, mode="async", record="spikes")
    free = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes")
    assert free.spikes["n1"].sum() > win.spikes["n1"].sum()


@pytest.mark.parametrize("mode", ["windowed", "free"])
def test_zero_graded_inputs_are_not_charged(mode):
    """An event-driven chip receives no event for a zero pixel: the first layer's MACs are
    the fan-out of the nonzero (quantized) inputs only; the clocked chip pays for all."""
    graph = order_free(5, T=2)
    x = _input(graph, 5, n=2)
    x[:, :, :3] = 0.0                                           # half of every image is zero
    res = simulate(graph, ASYNC, x, mode="async", async_mode=mode)
    op = graph.op("c1")
    nonzero = np.rint(x / op.in_scale) != 0
    expected = int((nonzero * op.fan_out()).sum()) * graph.T
    assert res.counts["c1"]["mac"] == expected
    sync = simulate(graph, "tianjic-x16", x)
    assert sync.counts["c1"]["mac"] == int(op.fan_out().sum()) * graph.T * len(x)


def test_timeout_realisation_fires_early_and_loses_late_events():
    """A settle time shorter than the gaps between a window's events closes spike products
    before their operands are complete: late events are counted, and lost."""
    model = small_model("meta-sdsa3")
    x = inputs_for(model, 1)
    graph = lower(model, x)
    token = simulate(graph, ASYNC, x, mode="async", async_mode="free", realisation="token")
    quick = simulate(graph, ASYNC, x, mode="async", async_mode="free", realisation="timeout",
                     settle_ns=1.0)
    assert token.stats["realisation"] == "token" and token.stats["timeouts"] == 0
    assert quick.stats["timeouts"] > 0 and quick.stats["late_events"] > 0
    for st_ in (token.stats, quick.stats):
        assert st_["events_in"] == st_["events_served"] + st_["events_dropped"] + \
            st_["events_in_flight"]
        assert st_["events_in_flight"] == 0


def test_free_running_on_a_transformer_is_deterministic_and_accounted():
    model = small_model("e-spikeformer")
    x = inputs_for(model, 1)
    graph = lower(model, x)
    a = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes")
    b = simulate(graph, ASYNC, x, mode="async", async_mode="free", record="spikes")
    _same(a, b)
    assert a.counts == b.counts and a.latency_s[0] == b.latency_s[0] > 0
    assert a.totals()["spikes"] == sum(int(c.sum()) for c in a.spike_counts.values())


def test_free_mode_rejects_what_it_cannot_model():
    model = small_model("meta-sdsa3")
    x = inputs_for(model, 1)
    graph = lower(model, x, ssc=True)
    with pytest.raises(ValueError, match="spike sparse convolution"):
        simulate(graph, ASYNC, x, mode="async", async_mode="free")


def test_lost_event_breaks_conservation(monkeypatch):
    """Conservation compares independent counts: an event that vanishes between the sender
    and the queues (neither served nor dropped) is caught."""
    from chips.engines.kernels import queues as Q
    graph = order_free(1, T=1)
    x = _input(graph, 1, n=1)
    real = Q.links_multi

    def lossy(t_emit, *a):
        real(t_emit, *a)
        a[-2][-1] = -1.0                         # the last event never arrives, uncounted
    monkeypatch.setattr(Q, "links_multi", lossy)
    with pytest.raises(RuntimeError, match="lost events"):
        simulate(graph, ASYNC, x, mode="async", async_mode="free")
    engine = build_engine(graph, ASYNC, "async", async_mode="free")
    assert engine.net is not None
