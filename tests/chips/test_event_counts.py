"""Event counts of 2^31 or more at one address stay exact (no int32 wrap); counts whose
reduction could leave the exact integer range (2^53) are refused, naming the node."""
import numpy as np
import pytest

from chips.engines import kernels as K
from neurosim.ir import graph as G
from neurosim.reference import interp
from neurosim.run.simulate import simulate

BIG = 2 ** 31 + 7          # wraps to a negative int32


def linear_graph():
    rng = np.random.default_rng(0)
    g = G.Graph()
    g.add(G.Input("input", (64,), kind="spike", T=1))
    g.add(G.Linear("fc", (3,), in_shape=(64,), weight=rng.integers(-127, 128, (3, 64))),
          ["input"])
    g.add(G.Readout("readout", (3,)), ["fc"])
    return g.validate()


def conv_graph():
    rng = np.random.default_rng(1)
    g = G.Graph()
    g.add(G.Input("input", (2, 8, 8), kind="spike", T=1))
    g.add(G.Conv("conv", (3, 8, 8), in_shape=(2, 8, 8), padding=1,
                 weight=rng.integers(-127, 128, (3, 2, 3, 3))), ["input"])
    # a coarse step keeps the accumulators (up to ~2^40) inside the mean's 32-bit grid
    g.add(G.TokenMean("mean", (3,), in_scale=2.0 ** 12, in_bits=32), ["conv"])
    g.add(G.Readout("readout", (3,)), ["mean"])
    return g.validate()


def test_event_lists_carry_counts_beyond_int32_exactly():
    m = np.zeros((4, 4, 3))
    m[1, 2, 0] = BIG
    with pytest.raises(OverflowError, match="outside int32"):      # the int32 lists never wrap
        K.map_to_events(m)
    ys, xs, cs, counts = K.events(m, BIG)
    assert (ys.tolist(), xs.tolist(), cs.tolist(), counts.tolist()) == ([1], [2], [0], [BIG])
    v = np.array([0.0, BIG, 0.0, 3.0])
    with pytest.raises(OverflowError, match="outside int32"):
        K.vector_to_events(v)
    idx, counts = K.events(v, BIG)
    assert idx.tolist() == [1, 3] and counts.tolist() == [BIG, 3]
    w_t = np.array([[5, -7]], np.int8)
    acc = np.zeros(2, np.int64)
    assert K.linear_scatter(np.array([0], np.int32), np.array([BIG]), w_t, acc) == 2 * BIG
    assert acc.tolist() == [5 * BIG, -7 * BIG]
    small = np.zeros((3, 3, 2))
    small[0, 1, 1], small[2, 2, 0] = 4, 1
    for a, b in zip(K.events(small, 4), K.events_wide(small)):     # same lists, either type
        assert a.tolist() == b.tolist()


@pytest.mark.parametrize("make,shape", [(linear_graph, (1, 64)), (conv_graph, (1, 2, 8, 8))],
                         ids=["linear", "conv"])
@pytest.mark.parametrize("threshold", [2.0, 0.0], ids=["scatter", "dense"])
def test_huge_count_at_one_address_matches_the_interpreter(make, shape, threshold):
    graph = make()
    x = np.zeros(shape)
    x.flat[5] = BIG
    x.flat[9] = 3
    ref = interp.run(graph, x)
    res = simulate(graph, "tianjic-x16", x, dense_threshold=threshold)
    np.testing.assert_array_equal(res.logits, ref.logits)
    assert np.abs(ref.logits).max() > 2 ** 31          # the wrapped run gave small values


@pytest.mark.parametrize("make,shape,node", [(linear_graph, (1, 64), "fc"),
                                             (conv_graph, (1, 2, 8, 8), "conv")],
                         ids=["linear", "conv"])
def test_counts_beyond_the_exact_range_are_refused(make, shape, node):
    x = np.zeros(shape)
    x.flat[5] = 2.0 ** 50
    with pytest.raises(G.GraphError, match=rf"node '{node}'.*exact integer range 2\^53"):
        simulate(make(), "tianjic-x16", x)
