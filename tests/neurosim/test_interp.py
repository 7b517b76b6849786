"""Reference interpreter semantics on hand-computed cases."""
import numpy as np
import pytest

from neurosim.ir import graph as G
from neurosim.ir import semantics
from neurosim.reference import interp
from neurosim.ir.addressing import conv_fan_out, pack_address, unpack_address


def test_conv_int_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 4, 6, 5)).astype(float)
    w = rng.integers(-5, 6, (6, 2, 3, 3))
    out = semantics.conv_int(x, w, stride=2, padding=1, groups=2)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(out)
    for o in range(6):
        g = o // 3
        for yy in range(out.shape[2]):
            for xx in range(out.shape[3]):
                patch = xp[:, 2 * g:2 * g + 2, 2 * yy:2 * yy + 3, 2 * xx:2 * xx + 3]
                ref[:, o, yy, xx] = (patch * w[o]).sum(axis=(1, 2, 3))
    np.testing.assert_array_equal(out, ref)


def test_fan_out_counts_border_and_stride():
    fo = conv_fan_out((1, 4, 4), c_out=2, k=3, s=1, p=1, groups=1)
    assert fo[0, 0, 0] == 2 * 4 and fo[0, 1, 1] == 2 * 9 and fo[0, 0, 1] == 2 * 6
    # brute force: count (o, ky, kx) reaching a valid output, stride 2, no padding
    fo2 = conv_fan_out((1, 5, 5), 1, 3, 2, 0, 1)
    for y in range(5):
        for x in range(5):
            n = sum(1 for ky in range(3) for kx in range(3)
                    if (y - ky) % 2 == 0 and (x - kx) % 2 == 0 and 0 <= (y - ky) // 2 < 2
                    and 0 <= (x - kx) // 2 < 2)
            assert fo2[0, y, x] == n


def test_address_pack_round_trip_and_range():
    c, y, x = np.array([0, 3, 5]), np.array([0, 6, 2]), np.array([1, 4, 6])
    a = pack_address(c, y, x, (6, 7, 7))
    for u, v in zip(unpack_address(a, (6, 7, 7)), (c, y, x)):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="outside the population"):
        unpack_address(np.array([pack_address(6, 0, 0, (6, 7, 7))]), (6, 7, 7))


def _single_population(model="lif", reset="hard", T=4, D=4, v_th=1.0):
    g = G.Graph()
    g.add(G.Input("input", (1,), kind="graded", T=T))
    g.add(G.Neurons("n", (1,), model=model, v_th=np.array([v_th]), reset=reset, D=D), ["input"])
    g.add(G.Linear("fc", (1,), in_shape=(1,), weight=np.array([[1]])), ["n"])
    g.add(G.Readout("readout", (1,)), ["fc"])
    return g.validate()


def test_lif_trace_through_graph():
    g = _single_population()
    x = np.array([[[0.8]], [[0.8]], [[2.0]], [[0.0]]])       # [T, B, C]
    out = interp.run(g, x).outputs["n"][:, 0, 0]
    np.testing.assert_array_equal(out, [0, 0, 1, 0])


def test_sfa_burst_counts():
    g = _single_population(model="sfa", T=1, D=4)
    x = np.array([[-1.0], [0.49], [0.5], [1.6], [3.5], [9.0]])
    out = interp.run(g, x).outputs["n"][0, :, 0]
    np.testing.assert_array_equal(out, [0, 0, 1, 2, 4, 4])


def test_membrane_saturation_is_counted():
    g = G.Graph()
    g.add(G.Input("input", (1,), kind="graded", T=3))
    g.add(G.Neurons("n", (1,), model="if", v_th=np.array([1e9]), reset="none", state_bits=8,
                    v_lsb=1.0), ["input"])
    g.add(G.Linear("fc", (1,), in_shape=(1,), weight=np.array([[1]])), ["n"])
    g.add(G.Readout("readout", (1,)), ["fc"])
    res = interp.run(g, np.array([[100.0]]))
    assert res.saturations["n"] == 2                      # 200 and 300 exceed 127


def test_graded_input_quantization_saturates_and_counts():
    q, n = semantics.quantize(np.array([0.0, 1.0, 5.0, -5.0]), step=0.01, bits=8)
    np.testing.assert_array_equal(q, [0, 100, 127, -128])
    assert n == 2


@pytest.mark.parametrize("x,match", [
    (np.zeros((2, 2)), "does not fit the graph's input"),
    (np.full((2, 1), np.nan), "NaN"),
    (np.array([["a"]]), "not numeric"),
])
def test_bad_input_is_rejected(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        interp.run(_single_population(), x)


def test_spike_input_must_be_counts():
    g = G.Graph()
    g.add(G.Input("input", (1,), kind="spike", T=1))
    g.add(G.Linear("fc", (1,), in_shape=(1,), weight=np.array([[1]])), ["input"])
    g.add(G.Readout("readout", (1,)), ["fc"])
    with pytest.raises(ValueError, match="non-negative counts"):
        interp.run(g, np.array([[0.5]]))


def test_map_readout_gives_the_flattened_time_mean_in_chw_order():
    """A Readout fed a (C, H, W) map: K = C*H*W logits, the mean over T of the map flattened
    in (C, H, W) order, one prediction per input."""
    from tests.chips.async_graphs import map_readout
    g = map_readout(seed=1, T=3)
    x = np.random.default_rng(1).integers(0, 2, (3, 4, 2, 6, 6)).astype(float)   # [T, B, ...]
    r = interp.run(g, x, record="all")
    assert r.logits.shape == (4, 3 * 4 * 4) and r.predictions.shape == (4,)
    ticks = r.outputs["c2"]                                   # [T, B, 3, 4, 4]
    acc = ticks[0] + ticks[1] + ticks[2]                      # summed in tick order
    np.testing.assert_array_equal(r.logits, (acc / 3).reshape(4, -1))
    assert np.ptp(r.logits) > 0
