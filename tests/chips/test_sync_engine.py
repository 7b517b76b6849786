"""Synchronous engine: bit-exact against the reference interpreter; exact operation counts."""
import numpy as np
import pytest

from neurosim.ir import graph as G
from neurosim.reference import interp
from neurosim.frontends.lower import lower
from chips.mapping import MappingError, map_graph
from neurosim.run.simulate import build_engine, simulate
from tests.zoo_cases import SMALL, inputs_for, small_model

CHIP = "tianjic-x16"


def _case(case, n=4, **opts):
    model = small_model(case)
    x = inputs_for(model, n)
    return lower(model, x, **opts), x


@pytest.mark.parametrize("case", sorted(SMALL))
@pytest.mark.parametrize("ssc", [False, True], ids=["vsc", "ssc"])
def test_sync_engine_equals_interpreter(case, ssc):
    graph, x = _case(case, ssc=ssc)
    ref = interp.run(graph, x, record="all")
    res = simulate(graph, CHIP, x, record="all")
    for n, a in ref.outputs.items():
        np.testing.assert_array_equal(res.spikes[n], a, err_msg=f"{case}: node {n}")
    np.testing.assert_array_equal(res.logits, ref.logits)
    for n in res.spike_counts:                       # per-node, per-time-step spike counts
        np.testing.assert_array_equal(
            res.spike_counts[n], ref.outputs[n].reshape(*ref.outputs[n].shape[:2], -1)
            .sum(axis=-1).T.astype(np.int64))


@pytest.mark.parametrize("threshold", [0.0, 2.0], ids=["all-dense", "all-scatter"])
def test_dense_and_scatter_paths_agree_in_results_and_counts(threshold):
    graph, x = _case("meta-sdsa3")
    base = simulate(graph, CHIP, x, dense_threshold=0.05)
    other = simulate(graph, CHIP, x, dense_threshold=threshold)
    np.testing.assert_array_equal(base.logits, other.logits)
    assert base.counts == other.counts
    if threshold == 0.0:
        assert other.stats["dense_steps"], "dense path not exercised"


def _fan_out_acs(graph, outputs):
    """AC count of every spike-driven projection: sum over input spikes of their fan-out,
    computed from the interpreter's spike tensors (independently of the engines)."""
    acs = {}
    for n, op in graph.nodes.items():
        if isinstance(op, (G.Conv, G.Linear)):
            (u,) = graph.inputs(n)
            if graph.out_kind(u) != "spike":
                continue
            spikes = outputs[u]                                  # [T, B, *in_shape]
            fo = op.fan_out()
            if getattr(op, "ssc", False):
                continue                                         # SSC fan-out is data-dependent
            acs[n] = int((spikes.reshape(spikes.shape[:2] + (-1,)) * fo.reshape(-1)).sum())
    return acs


@pytest.mark.parametrize("case", ["meta-sdsa3", "e-spikeformer", "spikformer", "sdt"])
def test_ac_counts_equal_sum_of_fan_out(case):
    graph, x = _case(case)
    ref = interp.run(graph, x, record="all")
    expected = _fan_out_acs(graph, ref.outputs)
    assert expected
    for dense in (0.0, 2.0):
        res = simulate(graph, CHIP, x, dense_threshold=dense)
        for n, acs in expected.items():
            assert res.counts[n]["ac"] == acs, n
            assert res.counts[n]["weight_reads"] == acs + res.counts[n]["mac"]


@pytest.mark.parametrize("ssc", [False, True], ids=["vsc", "ssc"])
def test_scatter_kernel_events_match_accounting(ssc):
    """The kernels' own delivered-event counts equal the accounting (incl. SSC's
    data-dependent fan-out): one input, T = 1, every layer on the scatter path."""
    graph, x = _case("e-spikeformer", n=1, ssc=ssc)
    engine = build_engine(graph, CHIP, dense_threshold=2.0)
    res = engine.run(x)
    checked = 0
    for n, e in engine.execs.items():
        if isinstance(e.op, (G.Conv, G.Linear)) and not e.graded:
            assert e.last_events == res.counts[n]["ac"], n
            checked += 1
    assert checked > 10


def test_counts_split_over_cores_sum_to_node_totals():
    graph, x = _case("meta-sdsa3")
    res = simulate(graph, CHIP, x)
    for cat in ("ac", "mac", "neuron_updates", "spikes", "noc_messages"):
        assert sum(c[cat] for c in res.core_counts.values()) == res.totals()[cat]
    assert res.totals()["noc_messages"] > 0 and res.totals()["noc_hops"] >= res.totals()["noc_messages"]


def test_sfa_steps_expand_to_d_ticks():
    graph, x = _case("e-spikeformer", n=1)
    res = simulate(graph, CHIP, x)
    D = max(op.D for op in graph.nodes.values() if isinstance(op, G.Neurons))
    assert D == 4 and res.stats["ticks_per_inference"] % D == 0
    assert res.timeline["ticks_per_step"] == D
    assert len(res.timeline["tick_s"]) == res.stats["ticks_per_inference"]
    pops = [n for n, op in graph.nodes.items() if isinstance(op, G.Neurons)]
    for n in pops:
        assert res.counts[n]["neuron_updates"] == graph.op(n).size * D


def test_latency_follows_the_global_clock():
    graph, x = _case("meta-sdsa3", n=2)
    res = simulate(graph, CHIP, x)
    from chips.spec import load_chip
    tick = load_chip(CHIP).tick_s
    assert np.all(res.latency_s >= res.ticks * tick - 1e-12)
    assert res.latency_s[0] == pytest.approx(sum(res.timeline["tick_s"]))


def test_membrane_overflow_saturates_and_is_counted():
    g = G.Graph()
    g.add(G.Input("input", (2, 4, 4), kind="spike", T=3))
    g.add(G.Conv("conv", (2, 4, 4), in_shape=(2, 4, 4), weight=np.full((2, 2, 3, 3), 100),
                 padding=1), ["input"])
    g.add(G.Neurons("pop", (2, 4, 4), model="if", v_th=np.full(2, 1e6), reset="none",
                    state_bits=12, v_lsb=1.0), ["conv"])
    g.add(G.TokenMean("mean", (2,)), ["pop"])
    g.add(G.Linear("fc", (2,), in_shape=(2,), weight=np.eye(2, dtype=int)), ["mean"])
    g.add(G.Readout("readout", (2,)), ["fc"])
    g.validate()
    x = np.ones((3, 1, 2, 4, 4))
    ref = interp.run(g, x)
    res = simulate(g, CHIP, x)
    assert ref.saturations["pop"] > 0
    assert res.counts["pop"]["saturations"] == ref.saturations["pop"]
    assert res.stats["saturations"] >= ref.saturations["pop"]


def test_bad_inputs_are_rejected():
    graph, x = _case("meta-sdsa3", n=1)
    with pytest.raises(ValueError, match="does not fit the graph's input"):
        simulate(graph, CHIP, x[:, :, :16])
    with pytest.raises(TypeError, match="not numeric"):
        simulate(graph, CHIP, np.array([["a"]]))
    with pytest.raises(ValueError, match="mode"):
        simulate(graph, CHIP, x, mode="quantum")


def test_model_that_does_not_fit_real_tianjic_names_the_layer():
    graph, x = _case("meta-sdsa3", n=1)
    with pytest.raises(MappingError, match=r"fan-in|neurons"):
        simulate(graph, "tianjic", x)
    from chips.spec import load_chip
    assert map_graph(graph, load_chip("tianjic-x16"), strict=True).fits


def test_event_stream_input_waits_for_real_time_frames():
    """Event frames are spike input (no MACs in the first layer); with a real-time window the
    sync chip cannot decide before the last frame is complete."""
    import models
    import torch
    from neurosim.run.inputs import engine_inputs
    torch.manual_seed(0)
    model = models.create("meta-spikeformer-tiny", img_size=34, in_channels=2, T=2).eval()
    x, y, window = engine_inputs(model, "ndigits", "test", n=1)
    assert x.shape == (2, 1, 2, 34, 34) and window == pytest.approx(0.15)
    graph = lower(model, x)
    assert graph.op("input").kind == "spike"
    first = graph.consumers("input")[0]
    fast = simulate(graph, CHIP, x)
    timed = simulate(graph, CHIP, x, input_window_s=window)
    assert fast.counts[first]["mac"] == 0 and fast.counts[first]["ac"] > 0
    np.testing.assert_array_equal(fast.logits, timed.logits)
    assert timed.latency_s[0] > 2 * window > fast.latency_s[0]


@pytest.mark.parametrize("labels, match", [
    ([0], r"one label per input \(4\)"),                  # once broadcast to every input
    ([0, 1, 0, 1, 0], r"one label per input \(4\)"),      # once failed only at .accuracy
    ([0, 1, 0, 99], "outside the model's classes"),
    ([0, 1, 0, -1], "outside the model's classes"),
    ([0.5, 1, 0, 1], "integer class indices"),
])
def test_labels_that_do_not_fit_are_rejected_before_running(labels, match):
    m = small_model("meta-sdsa3")
    x = inputs_for(m, 4)
    g = lower(m, x)
    with pytest.raises(ValueError, match=match):
        simulate(g, "tianjic-x16", x, labels=np.asarray(labels))
    with pytest.raises(ValueError, match="batch is empty"):
        simulate(g, "tianjic-x16", x[:0])


@pytest.mark.parametrize("chip", ["tianjic-x16", "tianjic", "speck-xl"])
def test_vectorised_routes_equal_the_per_channel_definition(chip):
    """Mapping routes (hops, packets, north-south hops, deliveries per source channel), which
    the engines count from, equal the definition channel by channel (chips.mapping.model
    module doc), on mesh and all-to-all chips, fitting and oversubscribed."""
    from chips import topology
    for case in ("meta-sdsa3", "e-spikeformer"):
        graph, _ = _case(case, n=1)
        m = map_graph(graph, chip, strict=False)
        for u, v in graph.edges():
            lo, hi = m._dependents(u, v)
            src, vparts = m.channel_cores(u), m.parts(v)
            first = {}
            for j, p in enumerate(vparts):
                first.setdefault(p.core, j)
            got = m._edge(u, v)
            for c in range(len(src)):
                a = int(src[c])
                dest = list(dict.fromkeys(p.core for p in vparts if p.c0 < hi[c] and p.c1 > lo[c]))
                sent = [b for b in dest if b != a]
                assert got[0][c] == sum(topology.hops(m.chip, a, b) for b in dest)
                assert got[1][c] == len(sent)
                assert got[2][c] == sum(topology.hops_ns(m.chip, a, b) for b in dest)
                row = np.zeros(len(vparts), np.int64)
                row[[first[b] for b in sent]] = 1
                np.testing.assert_array_equal(got[3][c], row)
