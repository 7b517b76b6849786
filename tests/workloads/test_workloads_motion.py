import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.preprocessing import StandardScaler

from workloads import MOTION_CLASSES, load, motion

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sets():
    return load("motion", "train"), load("motion", "test")


def test_sizes_classes_balance(sets):
    train, test = sets
    assert MOTION_CLASSES == ["right", "left", "down", "up", "clockwise", "counterclockwise"]
    assert len(train) == 1200 and len(test) == 300
    assert np.all(np.bincount(train.y) == 200) and np.all(np.bincount(test.y) == 50)
    assert train.sensor_size == (32, 32, 2) and train.duration_us == 200_000
    counts = np.concatenate([train.event_counts(), test.event_counts()])
    assert counts.min() > 50 and 800 < counts.mean() < 2500
    fr = test.to_frames(5)
    assert fr.shape == (300, 5, 2, 32, 32) and fr.sum() == counts[1200:].sum()


def test_prefix_is_stable_and_scenes_differ_between_splits(sets):
    _, test = sets
    small = load("motion", "test", n=13)
    assert np.array_equal(small.y, test.y[:13])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(small.events, test.events[:13],
                                                          strict=True))
    tr = motion.clip_params(6, 0, "train")
    te = motion.clip_params(6, 0, "test")
    assert not np.allclose(tr["pos"], te["pos"])


def _digest(ds) -> str:
    h = hashlib.sha256()
    for ev in ds.events:
        h.update(ev.tobytes())
    h.update(ds.y.tobytes())
    return h.hexdigest()


def test_same_seed_same_bytes_across_processes():
    ds = load("motion", "train", n=8, seed=5)
    code = ("import hashlib, workloads; ds = workloads.load('motion', 'train', n=8, seed=5); "
            "h = hashlib.sha256(); [h.update(e.tobytes()) for e in ds.events]; "
            "h.update(ds.y.tobytes()); print(h.hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == _digest(ds)
    assert _digest(load("motion", "train", n=8, seed=6)) != _digest(ds)


def _single_frames(n, split, k):
    params = motion.clip_params(n, 0, split)
    frames = motion.render_clips(params, motion.frame_times_us()[[k]])
    return frames[:, 0].reshape(n, -1), params["label"]


@pytest.mark.parametrize("k", [0, 20, 40])
def test_single_frames_carry_no_class_information(k):
    xtr, ytr = _single_frames(1200, "train", k)
    xte, yte = _single_frames(300, "test", k)
    clf = RidgeClassifier(alpha=1.0).fit(xtr, ytr)
    assert clf.score(xtr, ytr) > 0.6  # a linear probe memorises the training frames ...
    assert clf.score(xte, yte) < 0.27  # ... but nothing generalises (chance = 1/6)


def _motion_features(ds, T=4):
    fr = ds.to_frames(T)
    yy, xx = np.mgrid[0:32, 0:32] + 0.5

    def centroid(a):
        s = a.sum(axis=(-1, -2))
        return np.stack([(a * xx).sum(axis=(-1, -2)), (a * yy).sum(axis=(-1, -2))], -1) / \
            np.maximum(s, 1)[..., None]

    on, off = centroid(fr[:, :, 1]), centroid(fr[:, :, 0])
    g = centroid(fr.sum(axis=(1, 2)))[:, None, :]
    d = on - off
    spin = (on - g)[..., 0] * d[..., 1] - (on - g)[..., 1] * d[..., 0]
    return np.concatenate([d.reshape(len(ds), -1), spin], axis=1)


def test_motion_is_recoverable_from_events(sets):
    train, test = sets
    xtr, xte = _motion_features(train), _motion_features(test)
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000).fit(sc.transform(xtr), train.y)
    assert clf.score(sc.transform(xte), test.y) > 0.75
    # bright shapes: ON events lead, so ON-minus-OFF centroid points along the translation
    d = _motion_features(test, T=1)[:, :2]
    dirs = np.array([(1, 0), (-1, 0), (0, 1), (0, -1)])
    trans = test.y < 4
    agree = (d[trans] * dirs[test.y[trans]]).sum(1) > 0
    assert agree.mean() > 0.95


def test_rotation_sense_on_screen():
    params = motion.clip_params(12, 0, "test")
    i = int(np.flatnonzero(params["label"] == MOTION_CLASSES.index("clockwise"))[0])
    one = {k: v[i:i + 1].copy() for k, v in params.items()}
    one["active"][:] = [True, False, False]
    one["kind"][:] = motion.SHAPES.index("dot")
    one["center"][:] = (16.0, 16.0)
    one["pos"][0, 0] = (24.0, 16.0)  # right of the centre
    frames = motion.render_clips(one, np.array([0, motion.DURATION_US - 1]))
    yy = np.arange(32) + 0.5
    before = (frames[0, 0].sum(1) * yy).sum() / frames[0, 0].sum()
    after = (frames[0, 1].sum(1) * yy).sum() / frames[0, 1].sum()
    assert after > before + 0.5  # clockwise on screen (y down): the right-hand dot moves down


def test_errors():
    with pytest.raises(ValueError, match="n must be a positive int"):
        load("motion", "test", n=0)
    with pytest.raises(TypeError, match="DVSConfig"):
        load("motion", "test", dvs=0.3)
