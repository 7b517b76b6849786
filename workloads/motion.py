"""Motion: event clips whose class is *how* the scene moves, not what it shows.

Each clip shows 1-3 bright shapes (bar, dot, square; random size, orientation, brightness) on a
dark background, 3..10 px around a scene centre within 6 px of the middle of a 32x32 pixel
sensor. The whole scene then moves according to the class (image coordinates, x right, y down):

=====  =====================  ===================================================
label  name                   motion over the clip
=====  =====================  ===================================================
0      right                  translation +x, 20..35 px/s
1      left                   translation -x, 20..35 px/s
2      down                   translation +y, 20..35 px/s
3      up                     translation -y, 20..35 px/s
4      clockwise              rotation about the scene centre, 2.5..5 rad/s (as seen on screen)
5      counterclockwise       rotation about the scene centre, 2.5..5 rad/s
=====  =====================  ===================================================

Static frames carry no class information by construction: the shapes are drawn from the same
distribution for every class and describe the scene at the clip's *midpoint*, with shape
angles around the centre uniform, so the mid-clip frame has exactly the same distribution in
all classes; any other frame differs from it by at most 3.5 px of shift or 0.5 rad of
rotation. (A linear probe on single frames scores at chance on the test split; see the tests.)

Clips last 200 ms (``duration_us = 200_000``), rendered at 41 frames (anti-aliased by a
signed-distance ramp) and converted by :class:`workloads.dvs.DVSEmulator`; sensor size
(32, 32, 2). Default sizes: 1,200 train and 300 test clips, classes balanced (200 / 50 each),
each block of 6 consecutive clips holds every class once in a seeded order. Clip ``i`` of a
split (scene, motion and label) depends only on ``(seed, split, i)``, so ``n=m`` gives the first
``m`` clips of any larger ``n``.
"""
from __future__ import annotations

import functools

import numpy as np

from .dvs import DVSConfig, DVSEmulator
from .event_dataset import EventDataset
from .static import check_split

MOTION_CLASSES = ["right", "left", "down", "up", "clockwise", "counterclockwise"]
SENSOR_PX = 32
DURATION_US = 200_000
N_FRAMES = 41
BACKGROUND = 0.1
MAX_SHAPES = 3
SHAPES = ("bar", "dot", "square")
SPEED_PX_S = (20.0, 35.0)
ANGULAR_SPEED_RAD_S = (2.5, 5.0)
DEFAULT_SIZES = {"train": 1200, "test": 300}
MOTION_DVS = DVSConfig(pos_threshold=0.2, neg_threshold=0.2, threshold_sigma=0.03,
                       refractory_us=500, shot_noise_rate_hz=0.2, eps=1e-3, seed=0)
_SPLIT_CODE = {"train": 0, "test": 1}
_DIRECTIONS = np.array([(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)])
_CHUNK = 128


def frame_times_us() -> np.ndarray:
    """Frame timestamps (us): ``N_FRAMES`` points evenly spread over ``[0, DURATION_US - 1]``."""
    k = np.arange(N_FRAMES, dtype=np.int64)
    return (k * (DURATION_US - 1)) // (N_FRAMES - 1)


def _labels(n: int, seed: int, split: str) -> np.ndarray:
    # Blocks of 6 consecutive clips hold each class once, in a seeded order per block, so a
    # clip's label depends only on (seed, split, index) and every prefix is nearly balanced.
    k = len(MOTION_CLASSES)
    blocks = [np.random.default_rng([seed, _SPLIT_CODE[split], 1_000_000_007, b]).permutation(k)
              for b in range(-(-n // k))]
    return np.concatenate(blocks)[:n].astype(np.int64) if blocks else np.zeros(0, np.int64)


def clip_params(n: int, seed: int, split: str) -> dict[str, np.ndarray]:
    """Scene and motion parameters of the first ``n`` clips (arrays over clips / shape slots).

    Per clip ``i`` drawn from ``default_rng([seed, split_code, i])``; shape slots beyond
    ``n_shapes`` are inactive. Positions in pixels, angles in radians, speeds per second.
    """
    label = _labels(n, seed, split)
    p = {
        "label": label,
        "center": np.zeros((n, 2)),
        "speed": np.zeros(n),
        "active": np.zeros((n, MAX_SHAPES), dtype=bool),
        "kind": np.zeros((n, MAX_SHAPES), dtype=np.int64),
        "pos": np.zeros((n, MAX_SHAPES, 2)),
        "angle": np.zeros((n, MAX_SHAPES)),
        "half": np.zeros((n, MAX_SHAPES, 2)),
        "brightness": np.zeros((n, MAX_SHAPES)),
    }
    code = _SPLIT_CODE[split]
    for i in range(n):
        rng = np.random.default_rng([seed, code, i])
        center = SENSOR_PX / 2 + rng.uniform(-6.0, 6.0, size=2)
        p["center"][i] = center
        if label[i] < 4:
            p["speed"][i] = rng.uniform(*SPEED_PX_S)
        else:
            p["speed"][i] = rng.uniform(*ANGULAR_SPEED_RAD_S)
        k = int(rng.integers(1, MAX_SHAPES + 1))
        p["active"][i, :k] = True
        p["kind"][i, :k] = rng.integers(0, len(SHAPES), size=k)
        radius = rng.uniform(3.0, 10.0, size=k)
        phi = rng.uniform(0.0, 2 * np.pi, size=k)
        p["pos"][i, :k, 0] = center[0] + radius * np.cos(phi)
        p["pos"][i, :k, 1] = center[1] + radius * np.sin(phi)
        p["angle"][i, :k] = rng.uniform(0.0, np.pi, size=k)
        p["brightness"][i, :k] = rng.uniform(0.6, 1.0, size=k)
        for s in range(k):
            kind = SHAPES[p["kind"][i, s]]
            if kind == "bar":
                p["half"][i, s] = (rng.uniform(3.0, 6.0), rng.uniform(0.8, 1.5))
            elif kind == "dot":
                r = rng.uniform(1.5, 3.0)
                p["half"][i, s] = (r, r)
            else:
                a = rng.uniform(2.0, 3.5)
                p["half"][i, s] = (a, a)
    return p


def render_clips(params: dict[str, np.ndarray], t_us: np.ndarray) -> np.ndarray:
    """Render clips at times ``t_us`` (us): float32 ``[B, F, 32, 32]`` intensities in [0, 1]."""
    label = params["label"]
    b = label.shape[0]
    f = t_us.shape[0]
    grid = np.arange(SENSOR_PX) + 0.5
    gx = grid[None, None, :]
    gy = grid[None, :, None]
    rot = label >= 4
    sense = np.where(label == 4, 1.0, -1.0)
    dirs = _DIRECTIONS[np.minimum(label, 3)]
    out = np.empty((b, f, SENSOR_PX, SENSOR_PX), dtype=np.float32)
    for k in range(f):
        s = (float(t_us[k]) - (DURATION_US - 1) / 2) * 1e-6  # seconds from the clip midpoint
        alpha = np.where(rot, sense * params["speed"] * s, 0.0)  # clockwise on screen for > 0
        shift = np.where(rot[:, None], 0.0, dirs * (params["speed"] * s)[:, None])
        ca, sa = np.cos(alpha), np.sin(alpha)
        img = np.full((b, SENSOR_PX, SENSOR_PX), BACKGROUND)
        for j in range(MAX_SHAPES):
            act = params["active"][:, j]
            rel = params["pos"][:, j] - params["center"]
            cx = params["center"][:, 0] + ca * rel[:, 0] - sa * rel[:, 1] + shift[:, 0]
            cy = params["center"][:, 1] + sa * rel[:, 0] + ca * rel[:, 1] + shift[:, 1]
            th = params["angle"][:, j] + alpha
            dx = gx - cx[:, None, None]
            dy = gy - cy[:, None, None]
            c, sn = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
            u = c * dx + sn * dy
            v = -sn * dx + c * dy
            hu = params["half"][:, j, 0][:, None, None]
            hv = params["half"][:, j, 1][:, None, None]
            box = np.maximum(np.abs(u) - hu, np.abs(v) - hv)
            disc = np.sqrt(dx * dx + dy * dy) - hu
            is_dot = (params["kind"][:, j] == SHAPES.index("dot"))[:, None, None]
            sdf = np.where(is_dot, disc, box)
            cover = np.clip(0.5 - sdf, 0.0, 1.0) * act[:, None, None]
            level = BACKGROUND + cover * (params["brightness"][:, j, None, None] - BACKGROUND)
            np.maximum(img, level, out=img)
        out[:, k] = img
    return out


@functools.lru_cache(maxsize=4)
def _generate(split: str, n: int, seed: int, dvs: DVSConfig) -> tuple[tuple, np.ndarray]:
    params = clip_params(n, seed, split)
    times = frame_times_us()
    emu = DVSEmulator(SENSOR_PX, SENSOR_PX, dvs)
    events = []
    for s in range(0, n, _CHUNK):
        part = {k: v[s:s + _CHUNK] for k, v in params.items()}
        frames = render_clips(part, times)
        events.extend(emu.batch(frames, times, stream_ids=range(s, s + frames.shape[0])))
    for ev in events:
        ev.flags.writeable = False
    y = params["label"]
    y.flags.writeable = False
    return tuple(events), y


def load_motion(split: str = "test", *, n: int | None = None, seed: int = 0,
                dvs: DVSConfig | None = None, transform=None,
                target_transform=None) -> EventDataset:
    """Motion clips for ``split`` (see module doc): ``n`` clips (default 1,200 train / 300
    test), ``seed`` for the scenes, ``dvs`` overrides the emulator (default :data:`MOTION_DVS`).
    The first ``m`` clips of a larger ``n`` equal the clips of ``n = m``. ``transform`` /
    ``target_transform`` apply to ``ds[i]``'s events / label (tonic's convention)."""
    check_split(split)
    n = DEFAULT_SIZES[split] if n is None else n
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"motion: n must be a positive int, got {n!r}")
    dvs = MOTION_DVS if dvs is None else dvs
    if not isinstance(dvs, DVSConfig):
        raise TypeError(f"dvs must be a DVSConfig, got {type(dvs).__name__}")
    events, y = _generate(split, int(n), int(seed), dvs)
    meta = {"n_frames": N_FRAMES, "background": BACKGROUND, "shapes": SHAPES,
            "speed_px_s": SPEED_PX_S, "angular_speed_rad_s": ANGULAR_SPEED_RAD_S, "dvs": dvs,
            "seed": int(seed)}
    return EventDataset(list(events), y.copy(), "motion", list(MOTION_CLASSES), split,
                        (SENSOR_PX, SENSOR_PX, 2), DURATION_US, meta, transform, target_transform)
