"""N-Digits: the digits data set turned into event streams the way N-MNIST was recorded.

Each 8x8 digit is upscaled to 32x32 pixels (bilinear, exactly the ``digits`` images at
``img_size=32``) and shown on a 34x34 pixel sensor over a dim background. The image moves in
three straight saccades along a triangle (top-left corner offsets, pixels, y down):
(0, 2) -> (1, 0) -> (2, 2) -> (0, 2), 100 ms each, rendered with sub-pixel bilinear shifts at
61 frames over ``[0, 300 ms)`` and converted to events by :class:`workloads.dvs.DVSEmulator`.

Sensor size (34, 34, 2); ``duration_us = 300_000``; split identical to ``digits`` (same seed ->
same images in train/test). Generated in vectorised batches and cached per process.
"""
from __future__ import annotations

import functools

import numpy as np

from .dvs import DVSConfig, DVSEmulator
from .event_dataset import EventDataset
from .static import DIGITS_CLASSES, check_split, digits_images, resize_images

SENSOR_PX = 34
IMAGE_PX = 32
SACCADE_US = 100_000
DURATION_US = 3 * SACCADE_US
N_FRAMES = 61
BACKGROUND = 0.08  # intensity of the background (and of 0-valued digit pixels), in [0, 1]
# Offsets (x, y) of the image's top-left corner on the sensor at the triangle's corners.
SACCADE_PATH_PX = ((0.0, 2.0), (1.0, 0.0), (2.0, 2.0), (0.0, 2.0))
NDIGITS_DVS = DVSConfig(pos_threshold=0.3, neg_threshold=0.3, threshold_sigma=0.03,
                        refractory_us=1_000, shot_noise_rate_hz=0.2, eps=1e-3, seed=0)
_CHUNK = 128


def frame_times_us() -> np.ndarray:
    """Frame timestamps (us): ``N_FRAMES`` points evenly spread over ``[0, DURATION_US - 1]``."""
    k = np.arange(N_FRAMES, dtype=np.int64)
    return (k * (DURATION_US - 1)) // (N_FRAMES - 1)


def saccade_offsets_px(t_us: np.ndarray) -> np.ndarray:
    """Image offset ``(x, y)`` in pixels at times ``t_us``: piecewise linear along the path,
    corners at 0, 99_999, 199_999 and 299_999 us (frames 0, 20, 40, 60)."""
    path = np.asarray(SACCADE_PATH_PX, dtype=np.float64)
    knots = (np.arange(len(path), dtype=np.int64) * (DURATION_US - 1)) // (len(path) - 1)
    t = np.asarray(t_us, dtype=np.float64)
    return np.stack([np.interp(t, knots, path[:, 0]), np.interp(t, knots, path[:, 1])], axis=-1)


def render_frames(images: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
    """Place ``images`` ``[B, 32, 32]`` (values in [0, 1]) on the 34x34 sensor at each offset of
    ``offsets_px`` ``[F, 2]`` with bilinear sub-pixel shifts: float32 ``[B, F, 34, 34]``.
    Intensity = BACKGROUND + (1 - BACKGROUND) * image."""
    b = images.shape[0]
    f = offsets_px.shape[0]
    if np.any(offsets_px < 0) or np.any(offsets_px > SENSOR_PX - IMAGE_PX):
        raise ValueError(f"offsets must lie in [0, {SENSOR_PX - IMAGE_PX}] pixels")
    out = np.empty((b, f, SENSOR_PX, SENSOR_PX), dtype=np.float32)
    pad = SENSOR_PX + 1
    for k in range(f):
        ox, oy = offsets_px[k]
        ix, iy = int(np.floor(ox)), int(np.floor(oy))
        fx, fy = ox - ix, oy - iy
        canvas = np.zeros((b, pad + 1, pad + 1), dtype=np.float64)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if wx * wy == 0:
                    continue
                y0, x0 = iy + dy, ix + dx
                canvas[:, y0:y0 + IMAGE_PX, x0:x0 + IMAGE_PX] += wx * wy * images
        frame = canvas[:, :SENSOR_PX, :SENSOR_PX]
        out[:, k] = np.clip(BACKGROUND + (1 - BACKGROUND) * frame, 0.0, 1.0)
    return out


@functools.lru_cache(maxsize=4)
def _generate(split: str, seed: int, dvs: DVSConfig) -> tuple[tuple, np.ndarray]:
    img8, y = digits_images(split, seed)
    img = resize_images(img8[:, None], IMAGE_PX, 1)[:, 0].astype(np.float64)
    times = frame_times_us()
    offsets = saccade_offsets_px(times)
    emu = DVSEmulator(SENSOR_PX, SENSOR_PX, dvs)
    events = []
    for s in range(0, img.shape[0], _CHUNK):
        frames = render_frames(img[s:s + _CHUNK], offsets)
        ids = range(s, s + frames.shape[0])
        events.extend(emu.batch(frames, times, stream_ids=ids))
    for ev in events:
        ev.flags.writeable = False
    y.flags.writeable = False
    return tuple(events), y


def load_ndigits(split: str = "test", *, seed: int = 0, dvs: DVSConfig | None = None,
                 transform=None, target_transform=None) -> EventDataset:
    """N-Digits event streams for ``split`` (see module doc). ``seed`` is the digits split seed;
    ``dvs`` overrides the emulator settings (default :data:`NDIGITS_DVS`); ``transform`` /
    ``target_transform`` apply to ``ds[i]``'s events / label (tonic's convention)."""
    check_split(split)
    dvs = NDIGITS_DVS if dvs is None else dvs
    if not isinstance(dvs, DVSConfig):
        raise TypeError(f"dvs must be a DVSConfig, got {type(dvs).__name__}")
    events, y = _generate(split, int(seed), dvs)
    meta = {"image_px": IMAGE_PX, "saccade_us": SACCADE_US, "n_frames": N_FRAMES,
            "saccade_path_px": SACCADE_PATH_PX, "background": BACKGROUND, "dvs": dvs,
            "split_seed": int(seed)}
    return EventDataset(list(events), y.copy(), "ndigits", list(DIGITS_CLASSES), split,
                        (SENSOR_PX, SENSOR_PX, 2), DURATION_US, meta, transform, target_transform)
