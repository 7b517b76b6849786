import numpy as np
import pytest

from workloads import load, load_digits, ndigits
from workloads.dvs import DVSConfig, DVSEmulator
from workloads.static import digits_images, resize_images


@pytest.fixture(scope="module")
def test_set():
    return load("ndigits", "test")


def test_sizes_labels_and_split_consistent_with_digits(test_set):
    ds = test_set
    assert len(ds) == 359 and ds.sensor_size == (34, 34, 2) and ds.duration_us == 300_000
    assert ds.classes == [str(i) for i in range(10)] and ds.split == "test"
    assert np.array_equal(ds.y, load_digits("test").y)
    train = load("ndigits", "train")
    assert len(train) == 1438 and np.array_equal(train.y, load_digits("train").y)


def test_event_counts_a_few_thousand_and_both_polarities(test_set):
    counts = test_set.event_counts()
    assert counts.min() > 1000 and counts.max() < 5000
    assert 1800 < counts.mean() < 3200
    allp = np.concatenate([e["p"] for e in test_set.events])
    assert 0.4 < allp.mean() < 0.6
    # every saccade (third of the clip) produces events
    fr = test_set.to_frames(3)
    assert np.all(fr.sum(axis=(2, 3, 4)) > 100)


def test_to_frames_shape_conservation_and_cache(test_set):
    fr = test_set.to_frames(8)
    assert fr.shape == (359, 8, 2, 34, 34) and fr.dtype == np.float32
    assert np.array_equal(fr.sum(axis=(1, 2, 3, 4)), test_set.event_counts())
    assert 8 in test_set._frames
    assert np.array_equal(test_set.to_frames(8), fr)


def test_events_reproduce_from_the_documented_pipeline(test_set):
    # Same images, path, frame times, emulator and stream ids -> the same bytes, one by one.
    img8, _ = digits_images("test")
    img = resize_images(img8[:5, None], 32, 1)[:, 0].astype(np.float64)
    times = ndigits.frame_times_us()
    frames = ndigits.render_frames(img, ndigits.saccade_offsets_px(times))
    emu = DVSEmulator(34, 34, ndigits.NDIGITS_DVS)
    for i in (0, 3):
        assert emu(frames[i], times, stream_id=i).tobytes() == test_set.events[i].tobytes()


def test_saccade_path_and_rendering():
    times = ndigits.frame_times_us()
    assert times[0] == 0 and times[-1] == 299_999 and len(times) == 61
    off = ndigits.saccade_offsets_px(times)
    assert np.allclose(off[[0, 20, 40, 60]], ndigits.SACCADE_PATH_PX)
    img = np.zeros((1, 32, 32))
    img[0, 0, 0] = 1.0
    fr = ndigits.render_frames(img, np.array([[0.0, 2.0], [1.5, 0.0]]))
    assert fr.shape == (1, 2, 34, 34)
    assert fr[0, 0, 2, 0] == 1.0
    assert np.isclose(fr[0, 1, 0, 1], ndigits.BACKGROUND + (1 - ndigits.BACKGROUND) * 0.5)
    assert np.isclose(fr[0, 1].sum(), 34 * 34 * ndigits.BACKGROUND + (1 - ndigits.BACKGROUND))
    with pytest.raises(ValueError, match="offsets"):
        ndigits.render_frames(img, np.array([[3.0, 0.0]]))


def test_options_and_errors(test_set):
    assert load("ndigits", "test").events[0] is test_set.events[0]  # cached per process
    with pytest.raises(TypeError, match="DVSConfig"):
        load("ndigits", "test", dvs={"pos_threshold": 0.1})
    with pytest.raises(ValueError, match="split"):
        load("ndigits", "val")
    with pytest.raises(ValueError, match=r"subset\(360\).*only 359"):
        test_set.subset(360)
    assert test_set.events[0].flags.writeable is False
    quiet = ndigits.load_ndigits("test", dvs=DVSConfig(pos_threshold=0.6, neg_threshold=0.6,
                                                       seed=0)).subset(20)
    assert quiet.event_counts().sum() < test_set.subset(20).event_counts().sum()


def test_indexing_gives_events_and_label_like_tonic(test_set):
    ev, label = test_set[0]
    assert ev is test_set.events[0] and label == int(test_set.y[0]) and type(label) is int
    assert ev.dtype.names == ("x", "y", "p", "t") and ev.size > 1000
    framed = load("ndigits", "test", transform=lambda e: e["p"].sum(),
                  target_transform=lambda y: test_set.classes[y])
    assert framed[3] == (int(test_set.events[3]["p"].sum()), test_set.classes[test_set.y[3]])
    assert sum(1 for _ in framed.subset(5)) == 5
