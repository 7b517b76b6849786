"""Exact int8 convs (chips.engines.kernels.int8): the digit plans keep every conv exact, the int8
conv equals the integer conv bit for bit, a value outside its plan raises instead of wrapping,
and the engines give the same results with the int8 path on and off. On a CPU without VNNI /
AMX (or with NEUROSIM_INT8=0) the path is off and the tests check that the float plans apply."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from chips.engines import kernels as K
from chips.engines.kernels import int8 as I
from chips.mapping import map_graph
from neurosim.frontends.lower import lower
from neurosim.run.simulate import build_engine
from tests.zoo_cases import inputs_for, small_model

REASONS = ("NEUROSIM_INT8=0", "CPU reports no VNNI", "self-test", "torch has no")


def _int_conv(x, w, stride, pad, groups):
    """Reference integer conv in float64 (exact below 2^53), channels-last in and out."""
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float64)).permute(0, 3, 1, 2)
    out = F.conv2d(xt, torch.from_numpy(w.astype(np.float64)), stride=stride, padding=pad,
                   groups=groups)
    return out.permute(0, 2, 3, 1).numpy()


@settings(max_examples=300, deadline=None)
@given(max_w=st.integers(1, 200), max_x=st.integers(0, 2 ** 20), fan_in=st.integers(1, 5000),
       signed=st.booleans())
def test_int8_plan_keeps_every_digit_conv_exact(max_w, max_x, fan_in, signed):
    plan = I.int8_plan(max_w, max_x, fan_in, signed)
    lim = (K.F32_EXACT - 1) // (max_w * fan_in)
    if plan is None:
        assert max_w > 128 or lim < 1 or 255 * max_w * fan_in >= 2 ** 31
        return
    kind, p, s = plan
    assert kind == "int8" and 0 <= s <= 8 and p >= 1
    if p == 1:
        assert max_x + signed <= min(lim, 128 if signed else 255)
    else:
        assert 1 <= s and 2 ** s - 1 <= lim                       # low digits in [0, 2^s)
        assert (max_x >> (s * (p - 1))) + 1 <= min(lim, 128)      # signed top digit
        assert p == 2 or (max_x >> (s * (p - 2))) + 1 > min(lim, 128)   # no fewer digits
    assert 255 * max_w * fan_in < 2 ** 31                           # int32 sums of products


def test_values_outside_the_plan_raise_instead_of_wrapping():
    w = lambda key: pytest.fail("no conv may run on a value outside the plan")  # noqa: E731
    for q, plan, signed in ((np.full((1, 2, 2, 1), 256.0), ("int8", 1, 0), False),
                            (np.full((1, 2, 2, 1), -1.0), ("int8", 1, 0), False),
                            (np.full((1, 2, 2, 1), 128.0), ("int8", 1, 0), True),
                            (np.full((1, 2, 2, 1), 0.5), ("int8", 1, 0), False),
                            (np.full((1, 2, 2, 1), np.nan), ("int8", 2, 8), True),
                            (np.full((1, 2, 2, 1), 2.0 ** 15), ("int8", 2, 8), True),
                            (np.full((1, 2, 2, 1), 3.25), ("int8", 2, 8), True)):
        with pytest.raises(ValueError, match="does not fit the int8 plan"):
            I.conv_int8_nhwc(q, w, 1, 0, 1, plan, signed)


def test_digits_rebuild_every_value():
    """The digit split itself (no oneDNN): sum_j (d_j - zp_j) 2^(s (p-1-j)) == q."""
    rng = np.random.default_rng(3)
    for p, s, signed, q in ((1, 0, False, rng.integers(0, 256, 999)),
                            (1, 0, True, rng.integers(-128, 128, 999)),
                            (2, 8, True, np.r_[rng.integers(-32768, 32768, 999), -32768, 32767]),
                            (3, 5, True, rng.integers(-16384, 16384, 999))):
        out = np.empty((p, q.size), np.uint8)
        assert I.int8_digits_into(q.astype(np.float64), s, signed, out) == -1
        zp = 128 if (signed or p > 1) else 0
        rebuilt = out[0].astype(np.int64) - zp
        for j in range(1, p):
            rebuilt = rebuilt * 2 ** s + out[j]
        np.testing.assert_array_equal(rebuilt, q)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), ci=st.sampled_from([3, 16, 48]),
       co=st.sampled_from([8, 24]), k=st.sampled_from([1, 3]), stride=st.sampled_from([1, 2]),
       graded=st.booleans())
def test_int8_conv_equals_the_integer_conv(seed, ci, co, k, stride, graded):
    """Spike counts (one uint8 pass) and 16-bit graded values (digits): the engine's dense plan
    equals the float64 integer conv exactly; int8 is the plan wherever this machine allows."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (co, ci, k, k))
    w.flat[0], w.flat[-1] = -128, 127
    if graded:
        x = rng.integers(-32768, 32768, (2, 9, 9, ci)).astype(np.float64)
    else:
        x = (rng.random((2, 9, 9, ci)) < 0.3) * rng.integers(1, 5, (2, 9, 9, ci)) * 1.0
    mx = int(np.abs(x).max())
    plan = I.int8_plan(128, mx, ci * k * k, graded)
    if not K.int8_available():
        assert any(r in K.int8_status() for r in REASONS)
        plan = K.exact_plan(128, mx, ci * k * k)
    cache = {}

    def weights(key):
        if key not in cache:
            cache[key] = (I.pack_conv(w, key[1], stride, k // 2, 1, key[2])
                          if isinstance(key, tuple) else
                          torch.from_numpy(np.ascontiguousarray(w, key)))
        return cache[key]
    got = K.conv_exact_nhwc(x, weights, stride, k // 2, 1, plan, signed=graded)
    np.testing.assert_array_equal(got.astype(np.float64), _int_conv(x, w, stride, k // 2, 1))


def test_engines_give_the_same_results_with_int8_on_and_off(monkeypatch):
    """Forced dense on Meta-SpikeFormer (spike convs, 16-bit graded pointwise convs) and
    E-SpikeFormer (SFA burst counts): int8 on == int8 off, bit for bit; with int8 on (where
    available) every conv step runs through oneDNN's int8 conv, graded ones in digits (the
    signed top digit at zero point 128)."""
    from chips.engines.exec_synaptic import ConvExec
    calls = []
    real = I.qconv_nhwc
    monkeypatch.setattr(I, "qconv_nhwc",
                        lambda u8, packed, zp, *a: calls.append(zp) or real(u8, packed, zp, *a))
    available = K.int8_available()
    for case in ("meta-sdsa3", "e-spikeformer"):
        m = small_model(case)
        x = inputs_for(m, 2)
        g = lower(m, x)
        mp = map_graph(g, "tianjic-x16")
        res = {}
        for on in (True, False):
            monkeypatch.setitem(I._STATE, "ok", on and available)
            calls.clear()
            eng = build_engine(g, "tianjic-x16", mapping=mp, path="dense", batch_size=2)
            res[on] = eng.run(x)
            convs = sum(type(e) is ConvExec for e in eng.execs.values())
            if on and available:
                assert len(calls) >= convs * g.T and 0 in calls
                assert case != "meta-sdsa3" or 128 in calls       # graded pw convs: digits
            else:
                assert not calls
        a, b = res[True], res[False]
        np.testing.assert_array_equal(a.logits, b.logits)
        assert a.counts == b.counts and a.core_counts == b.core_counts
        for n in a.spike_counts:
            np.testing.assert_array_equal(a.spike_counts[n], b.spike_counts[n])
        np.testing.assert_array_equal(a.latency_s, b.latency_s)
        assert a.timeline == b.timeline


def test_environment_switch_turns_the_path_off(monkeypatch):
    monkeypatch.setenv("NEUROSIM_INT8", "0")
    monkeypatch.setattr(I, "_STATE", {})
    assert not K.int8_available() and K.int8_status() == "NEUROSIM_INT8=0"
