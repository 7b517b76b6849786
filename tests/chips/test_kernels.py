"""Exactness of the chip kernels against the reference interpreter (bit for bit)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from chips.engines import kernels as K
from neurosim.ir import graph as G
from neurosim.ir import semantics as interp
from neurosim.reference import interp as reference
from neurosim.ir.ops import _int_dtype as int_dtype
from neurosim.ir.addressing import conv_fan_out

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


# ----------------------------------------------------------------------------- helpers
def _to_cl(a):           # [C, H, W] -> [H, W, C]
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


def _random_counts(rng, shape, density, max_count, signed=False):
    x = (rng.random(shape) < density) * rng.integers(1, max_count + 1, shape)
    if signed:
        x = x * rng.choice([-1, 1], shape)
    return x.astype(np.int64)


def _conv_case(rng, Ci, Co, H, W, k, s, p, g, density=0.3, max_count=1, signed=False,
               wbits=8):
    lim = 2 ** (wbits - 1)
    w = rng.integers(-lim, lim, (Co, Ci // g, k, k)).astype(int_dtype(wbits))
    x = _random_counts(rng, (Ci, H, W), density, max_count, signed)
    ref = interp.conv_int(x[None].astype(np.float64), w, s, p, g)[0]
    return w, x, _to_cl(ref)


def _scatter(w, x, s, p, g, dtype=np.int32, shuffle=None):
    Ci, H, W = x.shape
    Co, _, k, _ = w.shape
    ys, xs, cs, cn = K.map_to_events(_to_cl(x))
    if shuffle is not None:
        perm = shuffle.permutation(len(ys))
        ys, xs, cs, cn = ys[perm], xs[perm], cs[perm], cn[perm]
    Ho, Wo = K.conv_out_hw(H, W, k, s, p)
    acc = np.zeros((Ho, Wo, Co), dtype)
    syn = K.conv_scatter(ys, xs, cs, cn, K.conv_weight_cl(w), acc, s, p, g)
    return acc, syn


def _expected_syn(x, Co, k, s, p, g):
    fan = conv_fan_out(x.shape, Co, k, s, p, g)
    return int((x * fan).sum())


# ----------------------------------------------------------------------------- event lists
def test_map_to_events_roundtrip():
    rng = np.random.default_rng(0)
    x = _random_counts(rng, (5, 6, 7), 0.3, 4).astype(np.uint8)
    ys, xs, cs, cn = K.map_to_events(x)
    assert ys.dtype == np.int32 and cn.dtype == np.int32
    back = np.zeros_like(x)
    back[ys, xs, cs] = cn
    np.testing.assert_array_equal(back, x)
    order = (ys.astype(np.int64) * 7 + xs) * 7 + cs
    assert np.all(np.diff(order) > 0)
    idx, c = K.vector_to_events(x.ravel())
    np.testing.assert_array_equal(idx, np.flatnonzero(x.ravel()))
    np.testing.assert_array_equal(c, x.ravel()[idx])


def test_count_fanout_acs():
    rng = np.random.default_rng(1)
    x = _random_counts(rng, (4, 9, 9), 0.3, 3)
    fan = conv_fan_out(x.shape, 8, 3, 2, 1, 2)
    idx, cn = K.vector_to_events(_to_cl(x).ravel())
    assert K.count_fanout_acs(idx, cn, _to_cl(fan).ravel()) == int((x * fan).sum())


# ----------------------------------------------------------------------------- conv scatter
CONV_CASES = [  # Ci, Co, H, W, k, s, p, g
    (3, 5, 7, 9, 3, 1, 1, 1),
    (4, 6, 8, 8, 3, 2, 0, 2),
    (4, 8, 9, 7, 3, 2, 1, 1),
    (6, 6, 10, 10, 5, 1, 2, 3),
    (6, 6, 10, 11, 5, 2, 1, 1),
    (8, 16, 6, 6, 1, 1, 0, 1),
    (8, 16, 7, 7, 1, 2, 0, 4),
    (2, 3, 5, 5, 2, 2, 1, 1),
    (3, 4, 4, 4, 4, 1, 2, 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("max_count", [1, 3])
def test_conv_scatter_matches_interp(case, max_count):
    Ci, Co, H, W, k, s, p, g = case
    rng = np.random.default_rng(hash((case, max_count)) % 2 ** 32)
    w, x, ref = _conv_case(rng, Ci, Co, H, W, k, s, p, g, max_count=max_count)
    acc, syn = _scatter(w, x, s, p, g)
    np.testing.assert_array_equal(acc, ref)
    assert syn == _expected_syn(x, Co, k, s, p, g)


@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), k=st.sampled_from([1, 2, 3, 5]),
       s=st.sampled_from([1, 2]), gsel=st.sampled_from(["one", "two", "dw", "dw2"]),
       max_count=st.integers(1, 4), signed=st.booleans())
def test_conv_scatter_property(seed, k, s, gsel, max_count, signed):
    rng = np.random.default_rng(seed)
    p = int(rng.integers(0, k // 2 + 1))
    H, W = (int(v) for v in rng.integers(max(k - 2 * p, 1), 10, 2))
    Ci = int(rng.integers(1, 4)) * 2
    g = {"one": 1, "two": 2, "dw": Ci, "dw2": Ci}[gsel]
    Co = {"one": int(rng.integers(1, 9)), "two": 2 * int(rng.integers(1, 5)), "dw": Ci,
          "dw2": 2 * Ci}[gsel]
    w, x, ref = _conv_case(rng, Ci, Co, H, W, k, s, p, g, density=float(rng.random()),
                           max_count=max_count, signed=signed)
    acc, syn = _scatter(w, x, s, p, g, shuffle=rng if rng.random() < 0.5 else None)
    np.testing.assert_array_equal(acc, ref)
    assert syn == _expected_syn(x, Co, k, s, p, g)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("s,p", [(1, 1), (2, 1), (1, 0)])
def test_conv_scatter_depthwise(shuffle, s, p):
    rng = np.random.default_rng(3)
    C = 24
    for density in (0.02, 0.3, 0.9):     # sparse runs (scalar) and dense runs (row)
        w, x, ref = _conv_case(rng, C, C, 9, 8, 3, s, p, C, density=density, max_count=3)
        acc, syn = _scatter(w, x, s, p, C, shuffle=rng if shuffle else None)
        np.testing.assert_array_equal(acc, ref)
        assert syn == _expected_syn(x, C, 3, s, p, C)


def test_conv_scatter_int64_accumulators():
    """Fan-in x count x |w| beyond 2^31: acc_dtype picks int64 and the scatter stays exact."""
    rng = np.random.default_rng(4)
    Ci, Co, k = 32, 4, 3
    w = rng.integers(20000, 2 ** 15, (Co, Ci, k, k)).astype(np.int16)
    x = rng.integers(900, 1000, (Ci, 6, 6))            # graded-like large positive values
    dt = K.acc_dtype(np.abs(w).max(), x.max(), Ci * k * k)
    assert dt is np.int64
    ref = _to_cl(interp.conv_int(x[None].astype(np.float64), w, 1, 1, 1)[0])
    assert ref.max() > 2 ** 31
    acc, _ = _scatter(w, x, 1, 1, 1, dtype=dt)
    np.testing.assert_array_equal(acc, ref)


def test_acc_dtype():
    assert K.acc_dtype(127, 1, 4096) is np.int32
    assert K.acc_dtype(127, 15, 2 ** 20) is np.int32
    assert K.acc_dtype(2 ** 15, 2 ** 15, 2) is np.int64
    with pytest.raises(OverflowError):
        K.acc_dtype(2 ** 31, 2 ** 31, 2)


# ----------------------------------------------------------------------------- SSC
def _conv_op(rng, C, Co, H, k, p, g, ssc):
    w = rng.integers(-128, 128, (Co, C // g, k, k))
    return G.Conv(name="c", shape=(Co, H, H), in_shape=(C, H, H), weight=w,
                  scale=rng.uniform(0.01, 0.1, Co), bias=rng.normal(0, 1, Co),
                  stride=1, padding=p, groups=g, ssc=ssc)


@pytest.mark.parametrize("k,g", [(3, 1), (3, 2), (5, 1), (1, 1), (3, 4)])
@pytest.mark.parametrize("density", [0.03, 0.3])
def test_conv_scatter_ssc_matches_interp(k, g, density):
    rng = np.random.default_rng(int(density * 100) + k + g)
    C, Co, H = 4, 8, 9
    op = _conv_op(rng, C, Co, H, k, k // 2, g, ssc=True)
    x = _random_counts(rng, (C, H, H), density, 2)
    ref = reference._conv(op, [x[None].astype(np.float64)], ["spike"], reference._State())[0]
    ys, xs, cs, cn = K.map_to_events(_to_cl(x))
    acc = np.zeros((H, H, Co), np.int32)
    mask = np.empty((H, H), np.uint8)
    syn = K.conv_scatter_ssc(ys, xs, cs, cn, K.conv_weight_cl(op.weight), acc, op.padding,
                             g, mask)
    np.testing.assert_array_equal(mask != 0, interp.ssc_mask(x[None])[0, 0])
    out = K.affine_out(acc, op.scale, op.bias, mask)
    np.testing.assert_array_equal(out.view(np.uint64), _to_cl(ref).view(np.uint64))
    # synaptic events: only targets at active sites
    fan_full = conv_fan_out(x.shape, Co, k, 1, k // 2, g)
    assert syn <= int((x * fan_full).sum())
    dense = _scatter(op.weight, x, 1, k // 2, g)[0]
    np.testing.assert_array_equal(acc[mask != 0], dense[mask != 0])


def test_affine_out_matches_interp_plain_conv():
    rng = np.random.default_rng(8)
    op = _conv_op(rng, 4, 6, 7, 3, 1, 1, ssc=False)
    x = _random_counts(rng, (4, 7, 7), 0.4, 3)
    ref = reference._conv(op, [x[None].astype(np.float64)], ["spike"], reference._State())[0]
    acc, _ = _scatter(op.weight, x, 1, 1, 1)
    out = K.affine_out(acc, op.scale, op.bias)
    np.testing.assert_array_equal(out.view(np.uint64), _to_cl(ref).view(np.uint64))


# ----------------------------------------------------------------------------- linear
@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), max_count=st.integers(1, 5), signed=st.booleans())
def test_linear_scatter_matches_numpy(seed, max_count, signed):
    rng = np.random.default_rng(seed)
    Ci, Co = (int(v) for v in rng.integers(1, 70, 2))
    w = rng.integers(-128, 128, (Co, Ci)).astype(np.int8)
    x = _random_counts(rng, Ci, float(rng.random()), max_count, signed)
    idx, cn = K.vector_to_events(x)
    acc = np.zeros(Co, np.int32)
    syn = K.linear_scatter(idx, cn, np.ascontiguousarray(w.T), acc)
    np.testing.assert_array_equal(acc, w.astype(np.int64) @ x)
    assert syn == int(x.sum()) * Co


# ----------------------------------------------------------------------------- neurons
def _neuron_input(rng, shape, vth_scale):
    """Mix of continuous values and a coarse grid, so H == v_th ties occur."""
    cont = rng.normal(0.4, 1.5, shape) * vth_scale
    grid = rng.integers(-6, 12, shape) * 0.25 * vth_scale
    return np.where(rng.random(shape) < 0.5, cont, grid)


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), model=st.sampled_from(["lif", "if"]),
       reset=st.sampled_from(["hard", "soft", "none"]), decay=st.booleans(),
       tau=st.sampled_from([1.0, 1.5, 2.0, 3.0, 7.3]), state_bits=st.sampled_from([4, 6, 16]),
       layout=st.sampled_from(["cl", "cf", "vec"]))
def test_lif_update_bit_identical(seed, model, reset, decay, tau, state_bits, layout):
    rng = np.random.default_rng(seed)
    C, H, W = (int(v) for v in rng.integers(1, 7, 3))
    shape = (C,) if layout == "vec" else (C, H, W)
    vth = rng.choice([1.0, 0.5, 0.25]) if rng.random() < 0.5 else rng.uniform(0.2, 2.0)
    v_th = np.full(C, vth) if rng.random() < 0.3 else rng.uniform(0.2, 2.0, C)
    v_reset = np.zeros(C) if rng.random() < 0.5 else rng.uniform(-0.5, 0.3, C)
    op = G.Neurons(name="n", shape=shape, model=model, v_th=v_th, v_reset=v_reset, tau=tau,
                   reset=reset, decay_input=decay, state_bits=state_bits,
                   v_lsb=float(rng.choice([1.0, 0.125])))
    codes = K.neuron_codes(op)
    v_ref = np.broadcast_to(interp._ch(op.v_reset, len(shape) + 1), (1,) + shape).astype(float)
    if layout == "cl":
        to_k = lambda a: _to_cl(a).ravel()                      # noqa: E731
        inner = 1
    else:
        to_k = lambda a: np.ascontiguousarray(a).ravel()        # noqa: E731
        inner = 1 if layout == "vec" else H * W
    v = to_k(v_ref[0]).copy()
    spikes = np.zeros(v.size, np.uint8)
    for _ in range(4):
        x = _neuron_input(rng, shape, float(op.v_th.mean()))
        s_ref, v_ref, sat_ref = interp.neuron_step(op, v_ref, x[None])
        sat = K.lif_update(to_k(x), v, spikes, op.v_th, op.v_reset, inner, **codes)
        np.testing.assert_array_equal(_bits(v), _bits(to_k(v_ref[0])))
        np.testing.assert_array_equal(spikes, to_k(s_ref[0]))
        assert sat == sat_ref


@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), D=st.integers(1, 9),
       state_bits=st.sampled_from([4, 8, 16]),
       layout=st.sampled_from(["cl", "cf", "vec"]))
def test_sfa_burst_bit_identical(seed, D, state_bits, layout):
    rng = np.random.default_rng(seed)
    C, H, W = (int(v) for v in rng.integers(1, 7, 3))
    shape = (C,) if layout == "vec" else (C, H, W)
    v_th = rng.uniform(0.1, 2.0, C) if rng.random() < 0.6 else np.full(C, 0.5)
    op = G.Neurons(name="n", shape=shape, model="sfa", v_th=v_th, D=D, state_bits=state_bits,
                   v_lsb=float(rng.choice([1.0, 0.25])))
    lo, hi = op.v_range
    x = _neuron_input(rng, shape, float(op.v_th.mean())) * D * 0.5
    ref, _, sat_ref = interp.neuron_step(op, np.zeros((1,) + shape), x[None])
    if layout == "cl":
        xk, rk, inner = _to_cl(x).ravel(), _to_cl(ref[0]).ravel(), 1
    else:
        xk, rk = x.ravel(), ref[0].ravel()
        inner = 1 if layout == "vec" else H * W
    counts = np.full(xk.size, -1, np.int32)
    sat = K.sfa_burst(xk, counts, op.v_th, inner, D, lo, hi)
    np.testing.assert_array_equal(counts, rk)
    assert sat == sat_ref
    assert counts.min() >= 0 and counts.max() <= D


# ----------------------------------------------------------------------------- dense paths
@pytest.mark.parametrize("case", CONV_CASES + [(6, 6, 9, 9, 3, 1, 1, 6), (6, 12, 9, 9, 3, 2, 1, 6)])
def test_dense_conv_equals_scatter(case):
    Ci, Co, H, W, k, s, p, g = case
    rng = np.random.default_rng(11)
    w, x, ref = _conv_case(rng, Ci, Co, H, W, k, s, p, g, density=0.5, max_count=3)
    assert K.dense_dtype(np.abs(w).max(), 3, Ci // g * k * k) == "float32"
    dense = K.dense_conv_exact(_to_cl(x), w, s, p, g)
    acc, _ = _scatter(w, x, s, p, g)
    assert dense.dtype == np.int32
    np.testing.assert_array_equal(dense, acc)
    np.testing.assert_array_equal(dense, ref)
    batch = K.dense_conv_exact(np.stack([_to_cl(x), _to_cl(2 * x)]), w, s, p, g)
    np.testing.assert_array_equal(batch[1], 2 * ref)


def test_dense_conv_float64_above_2_24():
    """max|w| x max_count x fan_in >= 2^24: float32 could not hold the sums; float64 is used."""
    rng = np.random.default_rng(12)
    Ci, Co, k = 64, 8, 3
    w = rng.integers(2 ** 14, 2 ** 15, (Co, Ci, k, k)).astype(np.int16)   # 16-bit weights
    x = rng.integers(10, 16, (Ci, 8, 8))                                  # bursts up to 15
    assert K.dense_dtype(np.abs(w).max(), x.max(), Ci * k * k) == "float64"
    ref = _to_cl(interp.conv_int(x[None].astype(np.float64), w, 1, 1, 1)[0])
    assert np.any(ref.astype(np.float32).astype(np.float64) != ref)   # float32 would round
    dense = K.dense_conv_exact(_to_cl(x), w, 1, 1, 1)
    np.testing.assert_array_equal(dense, ref)
    acc, _ = _scatter(w, x, 1, 1, 1, dtype=K.acc_dtype(np.abs(w).max(), x.max(), Ci * 9))
    np.testing.assert_array_equal(acc, dense)


def test_dense_linear_exact():
    rng = np.random.default_rng(13)
    w = rng.integers(-128, 128, (37, 300)).astype(np.int8)
    x = _random_counts(rng, (5, 300), 0.3, 3)
    np.testing.assert_array_equal(K.dense_linear_exact(x, w), x @ w.T.astype(np.int64))
    assert K.dense_dtype(127, 3, 300) == "float32"
    idx, cn = K.vector_to_events(x[2])
    acc = np.zeros(37, np.int32)
    K.linear_scatter(idx, cn, np.ascontiguousarray(w.T), acc)
    np.testing.assert_array_equal(K.dense_linear_exact(x[2], w), acc)
    # above the float32 bound: 16-bit weights, large counts, 4096 inputs
    w16 = rng.integers(2 ** 14, 2 ** 15, (3, 4096)).astype(np.int16)
    xb = rng.integers(100, 200, 4096)
    assert K.dense_dtype(2 ** 15, 200, 4096) == "float64"
    ref = w16.astype(np.int64) @ xb
    assert np.any(ref.astype(np.float32).astype(np.int64) != ref)
    out = K.dense_linear_exact(xb, w16)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, ref)


def test_choose_dense():
    assert not K.choose_dense(40, 1000)
    assert K.choose_dense(60, 1000)
    assert K.choose_dense(20, 100, threshold=0.1)
    assert not K.choose_dense(0, 0)


def test_neuron_kernels_reject_bad_layout():
    v = np.zeros(10)
    with pytest.raises(ValueError):
        K.lif_update(np.zeros(10), v, np.zeros(10, np.uint8), np.ones(3), np.zeros(3), 1,
                     K.MODEL_LIF, 2.0, K.RESET_HARD, True, -8.0, 7.0)
    with pytest.raises(ValueError):
        K.sfa_burst(np.zeros(10), np.zeros(10, np.int32), np.ones(2), 3, 2, -8.0, 7.0)


# ----------------------------------------------------------------------------- exact float plans
@SETTINGS
@given(seed=st.integers(0, 2 ** 16), mx=st.sampled_from([3, 300, 2 ** 12, 2 ** 15 - 1]),
       ci=st.sampled_from([1, 8, 64]), k=st.sampled_from([1, 3]))
def test_split_digits_conv_is_exact(seed, mx, ci, k):
    """16-bit graded inputs: the float32 digit split (or float32 / float64 plan) equals the
    float64 reference conv exactly, whatever the plan."""
    import torch
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (4, ci, k, k)).astype(np.int8)
    x = rng.integers(-mx - 1, mx + 1, (2, 5, 5, ci)).astype(np.float64)
    plan = K.exact_plan(int(np.abs(w.astype(np.int64)).max()), mx + 1, ci * k * k)
    ref = np.stack([_to_cl(interp.conv_int(np.moveaxis(a, -1, 0)[None], w, 1, k // 2, 1)[0])
                    for a in x])
    wts = {dt: torch.from_numpy(np.ascontiguousarray(w, dt)) for dt in (np.float32, np.float64)}
    got = K.conv_exact_nhwc(x, wts.__getitem__, 1, k // 2, 1, plan)
    np.testing.assert_array_equal(got.astype(np.float64), ref)
    lin = K.matmul_exact(x.reshape(2, -1), lambda dt: np.ascontiguousarray(
        np.resize(w.reshape(-1), (x[0].size, 3)), dt), K.exact_plan(128, mx + 1, x[0].size))
    ref_lin = x.reshape(2, -1) @ np.resize(w.reshape(-1), (x[0].size, 3)).astype(np.float64)
    np.testing.assert_array_equal(lin.astype(np.float64), ref_lin)


def test_exact_plan_digits():
    assert K.exact_plan(127, 1, 9) == ("float32", 1, 0)
    kind, p, s = K.exact_plan(127, 2 ** 15, 8)            # pw conv of a 16-bit graded input
    assert kind == "split" and p == 2
    lim = (2 ** 24 - 1) // (127 * 8)
    assert 2 ** s - 1 <= lim and (2 ** 15 >> s) + 1 <= lim
    assert K.exact_plan(127, 2 ** 15, 3456)[0:2] == ("split", 3)     # 3x3 x 384 channels
    assert K.exact_plan(2 ** 15, 2 ** 15, 4096)[0] == "float64"   # no digit fits float32
    with pytest.raises(OverflowError):
        K.exact_plan(2 ** 31, 2 ** 31, 2 ** 10)
    q = np.array([-32768.0, -1.0, 0.0, 1.0, 255.0, 256.0, 32767.0])
    d = K.split_digits(q, 3, 6)
    assert all(a.dtype == np.float32 for a in d) and np.all((d[1] >= 0) & (d[1] < 64))
    np.testing.assert_array_equal((d[0] * 64.0 + d[1]) * 64.0 + d[2], q)


# ----------------------------------------------------------------------------- batched kernels
def test_batched_event_lists_and_scatter_equal_single_inputs():
    rng = np.random.default_rng(21)
    Ci, Co, H, k = 6, 8, 9, 3
    w = rng.integers(-128, 128, (Co, Ci, k, k)).astype(np.int8)
    x = np.stack([_to_cl(_random_counts(rng, (Ci, H, H), d, 3)) for d in (0.0, 0.3, 0.1)])
    ys, xs, cs, cn, off = K.maps_to_events(x.astype(np.float64))
    assert off.tolist()[0] == 0 and off[-1] == len(ys) and off[1] == 0
    acc = np.zeros((3, H, H, Co), np.int32)
    ev = np.zeros(3, np.int64)
    K.conv_scatter_batch(ys, xs, cs, cn, off, K.conv_weight_cl(w), acc, 1, 1, 1, ev)
    for b in range(3):
        e1 = K.map_to_events(x[b])
        sl = slice(off[b], off[b + 1])
        for got, want in zip((ys[sl], xs[sl], cs[sl], cn[sl]), e1):
            np.testing.assert_array_equal(got, want)
        one = np.zeros((H, H, Co), np.int32)
        assert ev[b] == K.conv_scatter(*e1, K.conv_weight_cl(w), one, 1, 1, 1)
        np.testing.assert_array_equal(acc[b], one)
    v = x.reshape(3, -1)
    idx, c2, off2 = K.vectors_to_events(v)
    wt = np.ascontiguousarray(rng.integers(-128, 128, (v.shape[1], 5)).astype(np.int8))
    accl = np.zeros((3, 5), np.int64)
    K.linear_scatter_batch(idx, c2, off2, wt, accl, ev)
    np.testing.assert_array_equal(accl, v @ wt.astype(np.int64))
    with pytest.raises(OverflowError):
        K.vectors_to_events(np.array([[2.0 ** 31]]))


def test_quantize_and_affine_passes_equal_numpy():
    rng = np.random.default_rng(22)
    x = rng.normal(0, 3000, (4, 50)) * (rng.random((4, 50)) < 0.7)
    x[0, :3] = [1e9, -1e9, 0.5]                      # saturations and a tie (round to even)
    q = np.empty_like(x)
    sat, nnz, mx = (np.zeros(4, np.int64) for _ in range(3))
    K.quantize_batch(x, 0.37, -32768.0, 32767.0, q, sat, nnz, mx)
    for b in range(4):
        ref, s = interp.quantize(x[b], 0.37, 16)
        np.testing.assert_array_equal(q[b], ref)
        assert sat[b] == s and nnz[b] == np.count_nonzero(ref)
        assert mx[b] == int(np.abs(ref).max())
    scale, bias = rng.normal(0, 1e-3, 5), rng.normal(0, 1, 5)
    acc = rng.integers(-2 ** 20, 2 ** 20, (3, 4, 5)).astype(np.float32)
    out = np.empty(acc.shape)
    K.affine_rows(acc.reshape(-1), scale, bias, out.reshape(-1))
    np.testing.assert_array_equal(out, K.affine_out(acc, scale, bias))


def test_batched_neuron_kernels_equal_single_inputs():
    rng = np.random.default_rng(23)
    C, n, B = 4, 24, 3
    x = rng.normal(0.5, 1.5, (B, n))
    vth, vr = rng.uniform(0.5, 1.5, C), np.zeros(C)
    args = dict(model=K.MODEL_LIF, tau=2.0, reset=K.RESET_SOFT, decay_input=True, lo=-4.0,
                hi=4.0)
    v, out, sat = np.zeros((B, n)), np.zeros((B, n)), np.zeros(B, np.int64)
    K.lif_update_batch(x * 3, v, out, vth, vr, sat=sat, **args)
    for b in range(B):
        v1, o1 = np.zeros(n), np.zeros(n)
        s1 = K.lif_update(x[b] * 3, v1, o1, vth, vr, 1, **args)
        np.testing.assert_array_equal(v[b], v1)
        np.testing.assert_array_equal(out[b], o1)
        assert sat[b] == s1
    cnt = np.zeros((B, n))
    K.sfa_burst_batch(x, cnt, vth, 4, -4.0, 4.0, sat)
    for b in range(B):
        c1 = np.zeros(n, np.int64)
        assert sat[b] == K.sfa_burst(x[b], c1, vth, 1, 4, -4.0, 4.0)
        np.testing.assert_array_equal(cnt[b], c1)


def test_lif_update_counted_equals_update_then_channel_sums():
    """The fused LIF update + per-channel spike count (several cache blocks, every reset):
    membranes, spikes and saturations of ``lif_update_batch``, counts of summing its spikes."""
    rng = np.random.default_rng(29)
    C, B = 6, 2
    n = C * 1500                                     # > one 4096-element block
    x = rng.normal(0.5, 1.5, (B, n)) * 3
    vth, vr = rng.uniform(0.5, 1.5, C), rng.uniform(-0.3, 0.0, C)
    for reset in (K.RESET_HARD, K.RESET_SOFT, K.RESET_NONE):
        args = dict(model=K.MODEL_LIF, tau=2.0, reset=reset, decay_input=True, lo=-4.0, hi=4.0)
        v0 = rng.normal(0, 1, (B, n))
        v, out, sat = v0.copy(), np.zeros((B, n)), np.zeros(B, np.int64)
        K.lif_update_batch(x, v, out, vth, vr, sat=sat, **args)
        v2, out2, sat2 = v0.copy(), np.zeros((B, n)), np.zeros(B, np.int64)
        per_c = np.full((B, C), 99, np.int64)
        K.lif_update_counted_batch(x, v2, out2, vth, vr, sat=sat2, per_c=per_c, **args)
        np.testing.assert_array_equal(v2, v)
        np.testing.assert_array_equal(out2, out)
        np.testing.assert_array_equal(sat2, sat)
        np.testing.assert_array_equal(per_c, out.reshape(B, -1, C).sum(axis=1))


@pytest.mark.parametrize("order", ["q(kv)", "(qk)v"])
def test_spike_matmul_scatter_equals_dense(order):
    """Event-driven spike products equal the dense integer product, q / k and v with
    different channel counts (E-SpikeFormer's attention) and bursts up to 4."""
    rng = np.random.default_rng(24)
    B, N, h = 2, 7, 2
    q, k = (_random_counts(rng, (B, N, 6), 0.4, 4).astype(np.float64) for _ in range(2))
    v = _random_counts(rng, (B, N, 10), 0.4, 4).astype(np.float64)
    out = np.zeros((B, N, 10), np.int64)
    K.spike_matmul_scatter(q, k, v, h, order == "q(kv)", out)

    def heads(a):
        return a.reshape(B, N, h, -1).transpose(0, 2, 1, 3)
    qh, kh, vh = heads(q), heads(k), heads(v)
    kt = kh.transpose(0, 1, 3, 2)
    ref = qh @ (kt @ vh) if order == "q(kv)" else (qh @ kt) @ vh
    np.testing.assert_array_equal(out, ref.transpose(0, 2, 1, 3).reshape(B, N, 10))
