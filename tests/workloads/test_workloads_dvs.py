import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from workloads.dvs import DVSConfig, DVSEmulator, frames_to_events
from workloads.events import EVENT_DTYPE, validate_events

EPS = 1e-3
unit = st.floats(0.0, 1.0, allow_nan=False, width=64, allow_subnormal=False)
thresholds = st.floats(0.05, 1.0, allow_subnormal=False)


def level(base: float, log_change: float) -> float:
    """Intensity whose log(I + eps) differs from that of ``base`` by ``log_change``."""
    return (base + EPS) * np.exp(log_change) - EPS


def per_pixel_counts(ev, h, w, polarity):
    sel = ev[ev["p"] == polarity]
    return np.bincount(sel["y"].astype(int) * w + sel["x"], minlength=h * w).reshape(h, w)


@st.composite
def clips(draw, max_frames=6):
    f = draw(st.integers(1, max_frames))
    h = draw(st.integers(1, 4))
    w = draw(st.integers(1, 4))
    frames = draw(arrays(np.float64, (f, h, w), elements=unit))
    steps = draw(st.lists(st.integers(1, 20_000), min_size=f, max_size=f))
    return frames, np.cumsum(steps)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 4), st.integers(1, 4), unit, thresholds,
       st.integers(0, 5000))
def test_static_scene_without_noise_emits_nothing(n_frames, h, w, value, th, refractory):
    frames = np.full((n_frames, h, w), value)
    cfg = DVSConfig(pos_threshold=th, neg_threshold=th, refractory_us=refractory)
    ev = frames_to_events(frames, np.arange(n_frames) * 1000, cfg)
    assert ev.size == 0 and ev.dtype == EVENT_DTYPE


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 8), st.floats(0.0, 0.2, allow_subnormal=False), thresholds, st.integers(2, 4), st.integers(1, 3),
       st.integers(100, 100_000))
def test_brightness_step_of_n_thresholds_gives_n_on_events(n, base, th, h, w, dt):
    top = level(base, (n + 0.5) * th)
    assume(top <= 1.0)
    frames = np.stack([np.full((h, w), base), np.full((h, w), top)])
    ev = frames_to_events(frames, [0, dt], DVSConfig(pos_threshold=th, neg_threshold=th))
    assert np.all(per_pixel_counts(ev, h, w, 1) == n)
    assert np.all(per_pixel_counts(ev, h, w, 0) == 0)
    assert np.all((ev["t"] >= 0) & (ev["t"] <= dt))
    # and the reverse step gives n OFF events
    back = frames_to_events(frames[::-1].copy(), [0, dt], DVSConfig(pos_threshold=th,
                                                                    neg_threshold=th))
    assert np.all(per_pixel_counts(back, h, w, 0) == n) and np.all(back["p"] == 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.floats(0.01, 0.2, allow_subnormal=False), thresholds)
def test_up_then_down_is_polarity_balanced(n, base, th):
    top = level(base, (n + 0.5) * th)
    bottom = level(base, -0.25 * th)
    assume(top <= 1.0 and bottom >= 0.0)
    frames = np.array([base, top, bottom]).reshape(3, 1, 1) * np.ones((3, 2, 3))
    ev = frames_to_events(frames, [0, 1000, 2000], DVSConfig(pos_threshold=th, neg_threshold=th))
    on, off = per_pixel_counts(ev, 2, 3, 1), per_pixel_counts(ev, 2, 3, 0)
    assert np.all(on == n) and np.all(off == n)
    assert np.all(ev["t"][ev["p"] == 1] <= 1000) and np.all(ev["t"][ev["p"] == 0] >= 1000)


@settings(max_examples=60, deadline=None)
@given(clips(), thresholds, st.floats(1.0, 3.0, allow_subnormal=False))
def test_event_count_monotone_in_threshold_for_monotone_scenes(clip, th, factor):
    frames, t = clip
    frames = np.sort(frames, axis=0)  # each pixel brightens monotonically
    small = frames_to_events(frames, t, DVSConfig(pos_threshold=th, neg_threshold=th))
    big = frames_to_events(frames, t, DVSConfig(pos_threshold=th * factor,
                                                neg_threshold=th * factor))
    assert big.size <= small.size
    assert np.all(small["p"] == 1) and np.all(big["p"] == 1)
    # total count per pixel is floor(total log change / threshold) up to float rounding
    lg = np.log(frames + EPS)
    expect = np.floor((lg[-1] - lg[0]) / th)
    got = per_pixel_counts(small, *frames.shape[1:], 1)
    assert np.all(np.abs(got - expect) <= 1)


def test_non_monotone_paths_can_gain_events_with_a_larger_threshold():
    # A documented property of the delta-modulation principle (not a bug): the reference
    # memory makes counts non-monotone in the threshold for paths that turn back.
    lg = np.log(0.01 + EPS) + np.array([0.0, 1.0, 0.5, 1.0])
    frames = (np.exp(lg) - EPS).reshape(4, 1, 1)
    t = [0, 1000, 2000, 3000]
    small = frames_to_events(frames, t, DVSConfig(pos_threshold=0.4, neg_threshold=0.4))
    big = frames_to_events(frames, t, DVSConfig(pos_threshold=0.5, neg_threshold=0.5))
    assert small.size == 2 and big.size == 4


def test_timestamps_are_linearly_interpolated():
    th = 0.2
    frames = np.array([0.1, level(0.1, 3.5 * th)]).reshape(2, 1, 1)
    ev = frames_to_events(frames, [1000, 8000], DVSConfig(pos_threshold=th, neg_threshold=th))
    expect = [1000 + int(np.floor(j / 3.5 * 7000)) for j in (1, 2, 3)]
    assert np.all(np.abs(ev["t"] - np.array(expect)) <= 1)


@settings(max_examples=60, deadline=None)
@given(clips(), thresholds, st.integers(1, 20_000))
def test_refractory_spacing_and_fewer_events(clip, th, refractory):
    frames, t = clip
    cfg0 = DVSConfig(pos_threshold=th, neg_threshold=th)
    cfg = DVSConfig(pos_threshold=th, neg_threshold=th, refractory_us=refractory)
    free, ref = frames_to_events(frames, t, cfg0), frames_to_events(frames, t, cfg)
    assert ref.size <= free.size
    h, w = frames.shape[1:]
    for y in range(h):
        for x in range(w):
            ts = ref["t"][(ref["x"] == x) & (ref["y"] == y)]
            assert np.all(np.diff(ts) >= refractory)


@settings(max_examples=60, deadline=None)
@given(clips(), thresholds, thresholds, st.floats(0, 200, allow_subnormal=False), st.integers(0, 3))
def test_output_is_valid_sorted_and_deterministic(clip, th_on, th_off, rate, seed):
    frames, t = clip
    cfg = DVSConfig(pos_threshold=th_on, neg_threshold=th_off, shot_noise_rate_hz=rate,
                    seed=seed, threshold_sigma=0.1)
    a = frames_to_events(frames, t, cfg)
    b = frames_to_events(frames, t, cfg)
    assert a.tobytes() == b.tobytes()
    h, w = frames.shape[1:]
    validate_events(a, (w, h, 2))
    if a.size:
        assert a["t"][0] >= t[0] and a["t"][-1] <= t[-1]


def test_batch_equals_single_streams():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, size=(5, 7, 4, 6))
    t = np.arange(7) * 3000
    cfg = DVSConfig(threshold_sigma=0.05, refractory_us=500, shot_noise_rate_hz=30.0, seed=4)
    emu = DVSEmulator(4, 6, cfg)
    ids = [10, 11, 12, 13, 14]
    batch = emu.batch(frames, t, stream_ids=ids)
    for i in range(5):
        single = emu(frames[i], t, stream_id=ids[i])
        assert single.tobytes() == batch[i].tobytes()
    assert batch[0].tobytes() != emu(frames[0], t, stream_id=99).tobytes()


def test_shot_noise_rate_and_seed():
    frames = np.full((2, 20, 25), 0.5)
    cfg = DVSConfig(shot_noise_rate_hz=10.0, seed=1)
    ev = frames_to_events(frames, [0, 1_000_000], cfg)
    expected = 10.0 * 1.0 * 20 * 25
    assert abs(ev.size - expected) < 5 * np.sqrt(expected)
    assert 0.4 < ev["p"].mean() < 0.6
    other = frames_to_events(frames, [0, 1_000_000], DVSConfig(shot_noise_rate_hz=10.0, seed=2))
    assert other.tobytes() != ev.tobytes()
    validate_events(ev, (25, 20, 2))


def test_threshold_mismatch_maps():
    emu = DVSEmulator(30, 40, DVSConfig(pos_threshold=0.2, threshold_sigma=0.1, seed=3))
    m = emu.pos_threshold_map
    assert m.shape == (30, 40) and m.min() > 0
    assert abs(np.log(m / 0.2).std() - 0.1) < 0.01
    again = DVSEmulator(30, 40, DVSConfig(pos_threshold=0.2, threshold_sigma=0.1, seed=3))
    assert np.array_equal(m, again.pos_threshold_map)
    # explicit per-pixel maps: a pixel with a lower threshold fires more
    pos = np.full((1, 2), 0.4)
    pos[0, 0] = 0.1
    emu = DVSEmulator(1, 2, pos_threshold_map=pos, neg_threshold_map=np.full((1, 2), 0.4))
    ev = emu(np.stack([np.full((1, 2), 0.05), np.full((1, 2), level(0.05, 1.05))]), [0, 100])
    counts = per_pixel_counts(ev, 1, 2, 1)
    assert counts[0, 0] == 10 and counts[0, 1] == 2


@pytest.mark.parametrize("frames, t, match", [
    (np.full((2, 2, 2), 1.5), [0, 1], r"\[0, 1\], got 1.5"),
    (np.full((2, 2, 2), -0.1), [0, 1], r"\[0, 1\]"),
    (np.full((2, 2, 2), np.nan), [0, 1], "NaN"),
    (np.zeros((2, 2, 2)), [0, 0], "strictly increasing"),
    (np.zeros((2, 2, 2)), [0, 1, 2], "one entry per frame"),
    (np.zeros((2, 2, 2)), [-5, 1], ">= 0"),
    (np.zeros((2, 2, 2)), [0.5, 1.0], "integer microseconds"),
    (np.zeros((2, 2)), [0, 1], "3 dims"),
])
def test_bad_input_is_rejected(frames, t, match):
    with pytest.raises(ValueError, match=match):
        frames_to_events(frames, t)


def test_bad_config_and_shapes():
    with pytest.raises(ValueError, match="pos_threshold"):
        DVSConfig(pos_threshold=0)
    with pytest.raises(ValueError, match="refractory_us"):
        DVSConfig(refractory_us=-1)
    with pytest.raises(ValueError, match="shot_noise_rate_hz"):
        DVSConfig(shot_noise_rate_hz=float("nan"))
    with pytest.raises(ValueError, match="either"):
        DVSEmulator(2, 2, DVSConfig(threshold_sigma=0.1), pos_threshold_map=np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive"):
        DVSEmulator(2, 2, pos_threshold_map=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="sensor is 3x3"):
        DVSEmulator(3, 3)(np.zeros((2, 2, 2)), [0, 1])
