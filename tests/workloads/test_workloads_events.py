import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads import events as E
from workloads.event_dataset import EventDataset
from workloads.events import EVENT_DTYPE, TONIC_DTYPE

SENSOR = (7, 5, 2)


@st.composite
def event_streams(draw, sensor=SENSOR, max_n=60):
    w, h, p = sensor
    n = draw(st.integers(0, max_n))
    xs = draw(st.lists(st.integers(0, w - 1), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, h - 1), min_size=n, max_size=n))
    ps = draw(st.lists(st.integers(0, p - 1), min_size=n, max_size=n))
    dts = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    t0 = draw(st.integers(0, 10 ** 6))
    return E.make_events(xs, ys, ps, t0 + np.cumsum(np.asarray(dts, dtype=np.int64)), sensor)


def test_dtype_is_tonic_layout():
    assert EVENT_DTYPE.names == ("x", "y", "p", "t")
    assert [EVENT_DTYPE[f].str for f in EVENT_DTYPE.names] == ["<i2", "<i2", "|i1", "<i8"]


def test_make_events_and_validation_errors_name_field():
    ev = E.make_events([0, 6], [1, 4], [1, 0], [10, 20], SENSOR)
    assert ev.dtype == EVENT_DTYPE and ev["t"].tolist() == [10, 20]
    with pytest.raises(ValueError, match="field 't' is not sorted.*t\\[0\\]=20"):
        E.make_events([0, 1], [0, 0], [0, 0], [20, 10], SENSOR)
    with pytest.raises(ValueError, match="field 't' has a negative timestamp -5"):
        E.make_events([0], [0], [0], [-5], SENSOR)
    with pytest.raises(ValueError, match="field 'x' value 7 .* < 7"):
        E.make_events([7], [0], [0], [0], SENSOR)
    with pytest.raises(ValueError, match="field 'y' value 5"):
        E.make_events([0], [5], [0], [0], SENSOR)
    with pytest.raises(ValueError, match="field 'p' value 2"):
        E.make_events([0], [0], [2], [0], SENSOR)
    with pytest.raises(ValueError, match="field 'x' has negative value -1"):
        E.make_events([-1], [0], [0], [0], SENSOR)
    with pytest.raises(ValueError, match="field 'y' has length 2"):
        E.make_events([0], [0, 1], [0], [0])
    with pytest.raises(TypeError, match="field 't' has dtype float64"):
        E.make_events([0], [0], [0], [0.5])
    with pytest.raises(ValueError, match="field 'x' value 40000 .*does not fit"):
        E.make_events([40000], [0], [0], [0])


def test_validate_rejects_wrong_dtype_and_missing_field():
    bad = np.zeros(3, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8")])
    with pytest.raises(TypeError, match=r"missing field\(s\) \['p'\]"):
        E.validate_events(bad)
    wide = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    with pytest.raises(TypeError, match="as_events"):
        E.validate_events(wide)
    with pytest.raises(TypeError, match="plain dtype"):
        E.validate_events(np.zeros(3))
    with pytest.raises(ValueError, match="sensor_size W must be positive"):
        E.check_sensor_size((0, 4, 2))
    with pytest.raises(ValueError, match="3 entries"):
        E.check_sensor_size((4, 4))


def test_sort_events_is_explicit_and_stable():
    arr = np.zeros(4, dtype=EVENT_DTYPE)
    arr["t"] = [5, 1, 5, 1]
    arr["x"] = [0, 1, 2, 3]
    s = E.sort_events(arr)
    assert s["t"].tolist() == [1, 1, 5, 5] and s["x"].tolist() == [1, 3, 0, 2]
    with pytest.raises(ValueError, match="not sorted"):
        E.as_events(arr, SENSOR)
    assert np.array_equal(E.as_events(arr, SENSOR, sort=True), s)


def test_as_events_converts_tonic_variants():
    t_int = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<u2"), ("p", "?")])
    t_int["t"] = [1, 2, 3]
    t_int["x"] = [0, 1, 6]
    t_int["p"] = [True, False, True]
    ev = E.as_events(t_int, SENSOR)
    assert ev.dtype == EVENT_DTYPE
    assert ev["p"].tolist() == [1, 0, 1] and ev["x"].tolist() == [0, 1, 6]
    extra = np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8"),
                               ("z", "<i8")])
    with pytest.raises(TypeError, match=r"unexpected field\(s\) \['z'\]"):
        E.as_events(extra)
    floats = np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<f8")])
    with pytest.raises(TypeError, match="field 't' has dtype float64"):
        E.as_events(floats)
    huge = np.zeros(1, dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<u8")])
    huge["t"] = 2 ** 63 + 5
    with pytest.raises(ValueError, match="field 't' value .* does not fit"):
        E.as_events(huge)


@settings(max_examples=40, deadline=None)
@given(event_streams(), st.sampled_from([".npy", ".npz"]))
def test_save_load_round_trip(tmp_path_factory, ev, suffix):
    path = tmp_path_factory.mktemp("ev") / f"e{suffix}"
    E.save_events(path, ev, SENSOR)
    back, size = E.load_events(path, SENSOR if suffix == ".npy" else None)
    assert size == SENSOR
    assert back.dtype == EVENT_DTYPE and back.tobytes() == ev.tobytes()


def test_save_is_byte_deterministic(tmp_path):
    ev = E.make_events([1, 2], [0, 3], [0, 1], [5, 9], SENSOR)
    for suffix in (".npy", ".npz"):
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        E.save_events(a, ev, SENSOR)
        E.save_events(b, ev, SENSOR)
        assert a.read_bytes() == b.read_bytes()


def test_load_events_foreign_npy_and_errors(tmp_path):
    tonic = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "?")])
    tonic["t"] = [3, 4, 5]
    tonic["p"] = [True, True, False]
    np.save(tmp_path / "tonic.npy", tonic)
    ev, size = E.load_events(tmp_path / "tonic.npy", (34, 34, 2))
    assert ev.dtype == EVENT_DTYPE and ev["p"].tolist() == [1, 1, 0] and size == (34, 34, 2)
    with pytest.raises(ValueError, match="tonic.npy: .npy event files carry no sensor size"):
        E.load_events(tmp_path / "tonic.npy")
    tonic["x"][1] = 40
    np.save(tmp_path / "out.npy", tonic)
    with pytest.raises(ValueError, match="out.npy: field 'x' value 40"):
        E.load_events(tmp_path / "out.npy", (34, 34, 2))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy: cannot read event file"):
        E.load_events(tmp_path / "obj.npy", (34, 34, 2))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        E.load_events(tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match="unsupported event file suffix"):
        E.load_events(tmp_path / "x.txt")
    ev2 = E.make_events([0], [0], [0], [0], SENSOR)
    E.save_events(tmp_path / "s.npz", ev2, SENSOR)
    with pytest.raises(ValueError, match="stored sensor_size"):
        E.load_events(tmp_path / "s.npz", (8, 8, 2))
    with pytest.raises(ValueError, match="pass sensor_size"):
        E.save_events(tmp_path / "t.npz", ev2)


@settings(max_examples=60, deadline=None)
@given(event_streams(), st.integers(1, 12))
def test_to_frames_time_bins_conserve_and_match_rule(ev, T):
    fr = E.to_frames(ev, SENSOR, n_time_bins=T)
    assert fr.shape == (T, 2, 5, 7) and fr.dtype == np.float32
    assert fr.sum() == ev.size
    if ev.size:
        t0, t1 = int(ev["t"][0]), int(ev["t"][-1]) + 1
        for e in ev[:10]:
            k = (int(e["t"]) - t0) * T // (t1 - t0)
            assert fr[k, e["p"], e["y"], e["x"]] >= 1
        # explicit reference: loop accumulation
        ref = np.zeros_like(fr)
        for e in ev:
            ref[(int(e["t"]) - t0) * T // (t1 - t0), e["p"], e["y"], e["x"]] += 1
        assert np.array_equal(fr, ref)


@settings(max_examples=40, deadline=None)
@given(event_streams(), st.integers(1, 20))
def test_to_frames_event_count_conserves(ev, K):
    fr = E.to_frames(ev, SENSOR, event_count=K)
    assert fr.shape[0] == -(-ev.size // K)
    assert fr.sum() == ev.size
    if ev.size:
        assert np.all(fr.reshape(fr.shape[0], -1).sum(1)[:-1] == K)


def test_to_frames_bin_edges_and_errors():
    ev = E.make_events([0, 0, 0], [0, 0, 0], [1, 1, 1], [0, 49, 50], (1, 1, 2))
    fr = E.to_frames(ev, (1, 1, 2), n_time_bins=2, t_start_us=0, t_stop_us=100)
    assert fr[:, 1, 0, 0].tolist() == [2, 1]  # t=50 is on the edge -> later bin
    with pytest.raises(ValueError, match="outside"):
        E.to_frames(ev, (1, 1, 2), n_time_bins=2, t_start_us=0, t_stop_us=50)
    with pytest.raises(ValueError, match="exactly one"):
        E.to_frames(ev, (1, 1, 2))
    with pytest.raises(ValueError, match="exactly one"):
        E.to_frames(ev, (1, 1, 2), n_time_bins=2, event_count=3)
    with pytest.raises(ValueError, match="n_time_bins must be a positive int"):
        E.to_frames(ev, (1, 1, 2), n_time_bins=0)
    empty = E.make_events([], [], [], [], (1, 1, 2))
    assert E.to_frames(empty, (1, 1, 2), n_time_bins=3).shape == (3, 2, 1, 1)


@settings(max_examples=60, deadline=None)
@given(event_streams(), st.integers(1, 3000))
def test_iter_windows_partition_exactly(ev, window):
    wins = list(E.iter_windows(ev, window))
    if ev.size == 0:
        assert wins == []
        return
    cat = np.concatenate([w.events for w in wins])
    assert cat.tobytes() == ev.tobytes()
    assert wins[0].t_start_us == ev["t"][0] and wins[-1].t_stop_us == ev["t"][-1] + 1
    for k, w in enumerate(wins):
        assert w.index == k
        assert np.all((w.events["t"] >= w.t_start_us) & (w.events["t"] < w.t_stop_us))
        if k:
            assert w.t_start_us == wins[k - 1].t_stop_us


def test_iter_windows_matches_to_frames_bins():
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 1000, 200))
    ev = E.make_events(rng.integers(0, 7, 200), rng.integers(0, 5, 200),
                       rng.integers(0, 2, 200), t, SENSOR)
    fr = E.to_frames(ev, SENSOR, n_time_bins=10, t_start_us=0, t_stop_us=1000)
    wins = list(E.iter_windows(ev, 100, t_start_us=0, t_stop_us=1000))
    assert len(wins) == 10
    for k, w in enumerate(wins):
        one = E.to_frames(w.events, SENSOR, n_time_bins=1, t_start_us=w.t_start_us,
                          t_stop_us=w.t_stop_us)
        assert np.array_equal(fr[k], one[0])


def _dataset(n=3):
    evs = [E.make_events([i], [0], [1], [i * 10], SENSOR) for i in range(n)]
    return EventDataset(evs, np.arange(n, dtype=np.int64) % 2, "toy", ["a", "b"], "test",
                        SENSOR, 100)


def test_event_dataset_frames_subset_and_validation():
    ds = _dataset()
    fr = ds.to_frames(4)
    assert fr.shape == (3, 4, 2, 5, 7) and fr.dtype == np.float32
    assert fr[2, 0, 1, 0, 2] == 1 and fr.sum() == 3
    fr[:] = 7  # the returned array is a copy: the cache is unaffected
    assert ds.to_frames(4).sum() == 3
    assert len(ds.subset(2)) == 2 and ds.subset(2).to_frames(1).sum() == 2
    with pytest.raises(ValueError, match=r"subset\(4\) but the split has only 3"):
        ds.subset(4)
    assert ds.event_counts().tolist() == [1, 1, 1]
    assert sum(w.events.size for w in ds.iter_windows(1, 30)) == 1
    late = [E.make_events([0], [0], [0], [100], SENSOR)]
    with pytest.raises(ValueError, match=r"toy\[0\]: field 't' value 100 us"):
        EventDataset(late, np.zeros(1, np.int64), "toy", ["a"], "test", SENSOR, 100)
    with pytest.raises(ValueError, match="2 labels"):
        EventDataset(late, np.zeros(2, np.int64), "toy", ["a"], "test", SENSOR, 1000)


# ----------------------------------------------------------------------------- tonic conventions
def test_event_dataset_indexes_iterates_and_transforms_like_tonic():
    ds = _dataset()
    ev, label = ds[1]
    assert ev is ds.events[1] and label == 1 and type(label) is int
    assert ds[-1][0] is ds.events[2] and ds[np.int64(0)][1] == 0
    assert [(e.size, y) for e, y in ds] == [(1, 0), (1, 1), (1, 0)]
    with pytest.raises(IndexError, match=r"toy \(test\): index 3 out of range for 3 samples"):
        ds[3]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[0:2]
    framed = ds.with_transform(lambda e: E.to_frames(e, SENSOR, n_time_bins=2,
                                                     t_start_us=0, t_stop_us=100),
                               target_transform=lambda y: ds.classes[y])
    fr, name = framed[2]
    assert fr.shape == (2, 2, 5, 7) and fr[0, 1, 0, 2] == 1 and name == "a"
    assert framed.subset(2)[1][1] == "b" and ds[2][1] == 0          # ds itself unchanged
    with pytest.raises(TypeError, match="transform must be callable"):
        ds.with_transform(transform="ToFrame")


@st.composite
def tonic_streams(draw):
    """An event stream as tonic gives it: fields x, y, t, p (int64), sorted by t."""
    ev = draw(event_streams())
    out = np.empty(ev.size, dtype=TONIC_DTYPE)
    for f in ("x", "y", "t", "p"):
        out[f] = ev[f]
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(tonic_streams(), min_size=1, max_size=4))
def test_tonic_format_arrays_round_trip(streams):
    labels = [i % 3 for i in range(len(streams))]
    ds = EventDataset.from_arrays(streams, labels, SENSOR, name="tonic")
    assert len(ds) == len(streams) and ds.classes == ["0", "1", "2"][:max(labels) + 1]
    for (ev, y), src, lab in zip(ds, streams, labels):
        back = E.to_tonic(ev)
        assert back.dtype == TONIC_DTYPE and y == lab
        assert back.tobytes() == src.tobytes()
    assert ds.duration_us == max((int(s["t"][-1]) + 1 for s in streams if s.size), default=1)


class _TonicLike:
    """Stands in for a tonic dataset on disk (tonic itself is not installed in the test
    environment: it pulls librosa and the audio stack): class attributes sensor_size and
    classes, ``train``, ``len`` and ``ds[i] -> (events, target)`` with tonic's dtype."""

    sensor_size = SENSOR
    classes = ["left", "right"]

    def __init__(self, streams, train=True, transform=None):
        self.streams, self.train, self.transform = streams, train, transform

    def __len__(self):
        return len(self.streams)

    def __getitem__(self, i):
        ev = self.streams[i]
        return (self.transform(ev) if self.transform else ev), i % 2


def _tonic_stream(ts, x=0):
    ev = np.zeros(len(ts), dtype=TONIC_DTYPE)
    ev["t"], ev["x"], ev["p"] = ts, x, 1
    return ev


def test_from_tonic_reads_a_tonic_dataset_and_names_bad_samples():
    src = _TonicLike([_tonic_stream([5, 9]), _tonic_stream([1], x=6)])
    ds = EventDataset.from_tonic(src, transform=lambda e: e.size)
    assert (ds.name, ds.split, ds.classes, ds.sensor_size) == ("_TonicLike", "train",
                                                                ["left", "right"], SENSOR)
    assert list(ds) == [(2, 0), (1, 1)] and ds.meta["source"] == "tonic:_TonicLike"
    assert E.to_tonic(ds.events[1]).tobytes() == src.streams[1].tobytes()
    assert EventDataset.from_tonic(_TonicLike(src.streams, train=False)).split == "test"
    with pytest.raises(ValueError, match=r"_TonicLike\[0\]: field 't' is not sorted"):
        EventDataset.from_tonic(_TonicLike([_tonic_stream([9, 5])]))
    assert EventDataset.from_tonic(_TonicLike([_tonic_stream([9, 5])]), sort=True)[0][0][
        "t"].tolist() == [5, 9]
    framed = _TonicLike(src.streams, transform=lambda e: np.zeros((2, 2, 5, 7)))
    with pytest.raises(TypeError, match=r"_TonicLike\[0\]: expected a structured array"):
        EventDataset.from_tonic(framed)
    off = _TonicLike([_tonic_stream([1], x=7)])
    with pytest.raises(ValueError, match=r"field 'x' value 7 .* outside the sensor"):
        EventDataset.from_tonic(off)


def test_bad_event_files_raise_event_file_error_naming_the_file(tmp_path):
    ev = E.make_events([0, 1], [0, 1], [0, 1], [0, 5], SENSOR)
    good = E.save_events(tmp_path / "good.npz", ev, SENSOR)
    raw = good.read_bytes()
    cases = {"cut.npz": raw[: len(raw) // 2], "junk.npz": b"PK\x03\x04 junk",
             "junk.npy": b"\x93NUMPY junk", "empty.npy": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(E.EventFileError, match=rf"{name}: cannot read event file"):
            E.load_events(tmp_path / name, SENSOR)
    np.savez(tmp_path / "size.npz", events=ev, sensor_size=np.array([7.5, 5, 2]))
    with pytest.raises(E.EventFileError, match="size.npz: 'sensor_size' must hold 3 integers"):
        E.load_events(tmp_path / "size.npz")
    np.savez(tmp_path / "plain.npz", events=np.zeros(3), sensor_size=np.array(SENSOR))
    with pytest.raises(E.EventFileError, match="plain.npz: expected a structured array"):
        E.load_events(tmp_path / "plain.npz")
    assert issubclass(E.EventFileError, ValueError)        # callers catching ValueError still do
