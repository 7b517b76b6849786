"""DVS (event camera) emulator: intensity frames -> polarity events (the ESIM / v2e principle).

Model, per pixel, on ``L = log(I + eps)`` with ``I`` in [0, 1]:

* The pixel remembers a reference level ``ref`` (initialised to the first frame's ``L``).
* Between two frames ``L`` is interpolated linearly in time. Each time it crosses
  ``ref + theta_on`` (resp. ``ref - theta_off``) the pixel emits an ON (p=1) (resp. OFF, p=0)
  event and ``ref`` moves by one threshold: a change of ``n`` thresholds gives ``n`` events
  (``n = floor((L - ref) / theta)``, a change of exactly one threshold fires).
* Event timestamps are the interpolated crossing times, floored to whole microseconds.
* Refractory period ``refractory_us``: a crossing less than that after the pixel's previous
  emitted event is not emitted, but ``ref`` still moves (the brightness change is consumed).
* Per-pixel threshold mismatch: ``theta * exp(threshold_sigma * N(0, 1))``, drawn once per
  emulator from the seed (a fixed property of the simulated sensor).
* Shot noise: a Poisson process of ``shot_noise_rate_hz`` per pixel over the stream's time span,
  random polarity, uniform integer timestamps; independent of ``ref`` and of the refractory
  period. Seeded per stream id.

Output: :data:`workloads.events.EVENT_DTYPE` arrays sorted by ``t`` (ties ordered by frame
interval, then pixel index ``y * W + x``, then crossing; noise after signal events), sensor size
``(W, H, 2)``.
The same frames, timestamps, config and stream id give the same bytes.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .events import EVENT_DTYPE

_NEVER = np.int64(-(2 ** 62))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class DVSConfig:
    """Emulator settings. Thresholds are in natural-log intensity units; times in us."""

    pos_threshold: float = 0.2
    neg_threshold: float = 0.2
    threshold_sigma: float = 0.0
    refractory_us: int = 0
    shot_noise_rate_hz: float = 0.0
    eps: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("pos_threshold", "neg_threshold", "eps"):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"DVSConfig.{name} must be a positive finite number, got {v!r}")
        for name in ("threshold_sigma", "shot_noise_rate_hz"):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(v) or v < 0:
                raise ValueError(f"DVSConfig.{name} must be a finite number >= 0, got {v!r}")
        for name in ("refractory_us", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"DVSConfig.{name} must be an int >= 0, got {v!r}")


def _check_timestamps(timestamps_us, n_frames: int) -> np.ndarray:
    t = np.asarray(timestamps_us)
    if t.ndim != 1 or t.shape[0] != n_frames:
        raise ValueError(f"timestamps_us must be 1-D with one entry per frame ({n_frames}), got "
                         f"shape {t.shape}")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        if not np.issubdtype(t.dtype, np.floating) or not np.all(np.isfinite(t)) \
                or not np.all(t == np.round(t)):
            raise ValueError("timestamps_us must be integer microseconds")
    t = t.astype(np.int64)
    if t.size and t.min() < 0:
        raise ValueError(f"timestamps_us must be >= 0, got {int(t.min())}")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"timestamps_us must be strictly increasing: t[{i}]={int(t[i])} us, "
                         f"t[{i + 1}]={int(t[i + 1])} us")
    return t


def _check_frames(frames, ndim: int, what: str) -> np.ndarray:
    f = np.asarray(frames)
    if f.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dims, got shape {f.shape}")
    if not (np.issubdtype(f.dtype, np.floating) or np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"{what} must be real numbers in [0, 1], got dtype {f.dtype}")
    if f.size:
        if not np.all(np.isfinite(f)):
            raise ValueError(f"{what} contain NaN or infinite values")
        lo, hi = float(f.min()), float(f.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"{what} must be intensities in [0, 1], got {lo}..{hi}")
    return f


def _check_map(m, shape, name: str) -> np.ndarray:
    a = np.asarray(m, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (H, W), got {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() <= 0:
        raise ValueError(f"{name} must be positive and finite everywhere")
    return a


def _emulate(log_frame, n_frames: int, t_us: np.ndarray, th_on: np.ndarray,
             th_off: np.ndarray, refractory_us: int):
    """Core loop over frame intervals. ``log_frame(k)`` returns the flat log intensity of frame
    ``k`` for all M pixels. Returns flat pixel index, t (us) and polarity, per-interval sorted."""
    ref = log_frame(0).copy()
    prev = ref.copy()
    last = np.full(ref.shape, _NEVER, dtype=np.int64) if refractory_us > 0 else None
    out_pix, out_t, out_p = [], [], []
    for k in range(n_frames - 1):
        cur = log_frame(k + 1)
        d = cur - ref
        n_on = np.floor(d / th_on)
        n_off = np.floor(-d / th_off)
        pix_on = np.flatnonzero(n_on >= 1)
        pix_off = np.flatnonzero(n_off >= 1)
        if pix_on.size + pix_off.size == 0:
            prev = cur
            continue
        pix = np.concatenate([pix_on, pix_off])
        n = np.concatenate([n_on[pix_on], n_off[pix_off]]).astype(np.int64)
        sign = np.concatenate([np.ones(pix_on.size), -np.ones(pix_off.size)])
        th = np.concatenate([th_on[pix_on], th_off[pix_off]])
        rep = np.repeat(np.arange(pix.size), n)
        starts = np.cumsum(n) - n
        j = np.arange(rep.size, dtype=np.int64) - starts[rep] + 1
        p_idx = pix[rep]
        level = ref[p_idx] + sign[rep] * j * th[rep]
        l0, l1 = prev[p_idx], cur[p_idx]
        denom = l1 - l0
        ok = denom != 0
        frac = np.where(ok, (level - l0) / np.where(ok, denom, 1.0), 1.0)
        np.clip(frac, 0.0, 1.0, out=frac)
        t0, t1 = int(t_us[k]), int(t_us[k + 1])
        t = t0 + np.floor(frac * (t1 - t0)).astype(np.int64)
        pol = (sign[rep] > 0).astype(np.int8)
        if last is not None:
            keep = np.zeros(rep.size, dtype=bool)
            for jj in range(1, int(n.max()) + 1):
                sel = np.flatnonzero(j == jj)
                px, tt = p_idx[sel], t[sel]
                fire = tt - last[px] >= refractory_us
                keep[sel[fire]] = True
                last[px[fire]] = tt[fire]
            p_idx, t, pol = p_idx[keep], t[keep], pol[keep]
        ref[pix] += sign * n * th
        prev = cur
        order = np.lexsort((p_idx, t))
        out_pix.append(p_idx[order])
        out_t.append(t[order])
        out_p.append(pol[order])
    if not out_pix:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), np.zeros(0, dtype=np.int8)
    return np.concatenate(out_pix), np.concatenate(out_t), np.concatenate(out_p)


class DVSEmulator:
    """A simulated ``width`` x ``height`` pixel event sensor with fixed per-pixel thresholds.

    ``pos_threshold_map`` / ``neg_threshold_map`` (float ``[H, W]``, log units) replace the
    config thresholds when given (then ``threshold_sigma`` must be 0).
    """

    def __init__(self, height: int, width: int, config: DVSConfig | None = None, *,
                 pos_threshold_map=None, neg_threshold_map=None):
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"DVSEmulator {name} must be a positive int (pixels), got {v!r}")
        if height > 32768 or width > 32768:
            raise ValueError(f"DVSEmulator sensor {width}x{height} exceeds the int16 x/y range")
        self.height, self.width = int(height), int(width)
        self.config = config if config is not None else DVSConfig()
        if not isinstance(self.config, DVSConfig):
            raise TypeError(f"config must be a DVSConfig, got {type(self.config).__name__}")
        cfg = self.config
        shape = (self.height, self.width)
        given = (pos_threshold_map is not None, neg_threshold_map is not None)
        if any(given) and cfg.threshold_sigma > 0:
            raise ValueError("give either explicit threshold maps or threshold_sigma > 0, not both")
        rng = np.random.default_rng([cfg.seed, 0])
        if pos_threshold_map is not None:
            self.pos_threshold_map = _check_map(pos_threshold_map, shape, "pos_threshold_map")
        else:
            self.pos_threshold_map = np.full(shape, float(cfg.pos_threshold))
            if cfg.threshold_sigma > 0:
                self.pos_threshold_map *= np.exp(cfg.threshold_sigma * rng.standard_normal(shape))
        if neg_threshold_map is not None:
            self.neg_threshold_map = _check_map(neg_threshold_map, shape, "neg_threshold_map")
        else:
            self.neg_threshold_map = np.full(shape, float(cfg.neg_threshold))
            if cfg.threshold_sigma > 0:
                self.neg_threshold_map *= np.exp(cfg.threshold_sigma * rng.standard_normal(shape))
        self.pos_threshold_map.flags.writeable = False
        self.neg_threshold_map.flags.writeable = False

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, P)`` with P = 2 polarities."""
        return (self.width, self.height, 2)

    def __call__(self, frames, timestamps_us, *, stream_id: int = 0) -> np.ndarray:
        """Events of one stream from ``frames`` ``[F, H, W]`` (intensity in [0, 1]) taken at
        ``timestamps_us`` ``[F]`` (strictly increasing, us). ``stream_id`` seeds the noise."""
        f = _check_frames(frames, 3, "frames")
        return self.batch(f[None], timestamps_us, stream_ids=[stream_id])[0]

    def batch(self, frames, timestamps_us, *, stream_ids=None) -> list[np.ndarray]:
        """Events of B streams from ``frames`` ``[B, F, H, W]`` sharing ``timestamps_us`` ``[F]``.

        Each stream's events are identical to emulating it alone with the same stream id
        (default ids ``0..B-1``).
        """
        f = _check_frames(frames, 4, "frames")
        b, n_frames, h, w = f.shape
        if (h, w) != (self.height, self.width):
            raise ValueError(f"frames are {h}x{w} (HxW) but the sensor is "
                             f"{self.height}x{self.width}")
        if n_frames < 1:
            raise ValueError("frames must contain at least one frame")
        t_us = _check_timestamps(timestamps_us, n_frames)
        ids = list(range(b)) if stream_ids is None else [int(s) for s in stream_ids]
        if len(ids) != b:
            raise ValueError(f"stream_ids has {len(ids)} entries for {b} streams")
        cfg = self.config
        hw = h * w
        eps = float(cfg.eps)

        def log_frame(k: int) -> np.ndarray:
            return np.log(f[:, k].reshape(-1).astype(np.float64) + eps)

        th_on = np.tile(self.pos_threshold_map.reshape(-1), b)
        th_off = np.tile(self.neg_threshold_map.reshape(-1), b)
        pix, t, pol = _emulate(log_frame, n_frames, t_us, th_on, th_off, int(cfg.refractory_us))
        sample = pix // hw
        order = np.argsort(sample, kind="stable")
        pix, t, pol, sample = pix[order], t[order], pol[order], sample[order]
        bounds = np.searchsorted(sample, np.arange(b + 1))
        out = []
        for i in range(b):
            s, e = bounds[i], bounds[i + 1]
            local = pix[s:e] - i * hw
            ev = np.empty(e - s, dtype=EVENT_DTYPE)
            ev["x"] = local % w
            ev["y"] = local // w
            ev["p"] = pol[s:e]
            ev["t"] = t[s:e]
            if cfg.shot_noise_rate_hz > 0 and n_frames > 1:
                ev = _merge(ev, self._noise(t_us[0], t_us[-1], ids[i]))
            out.append(ev)
        return out

    def _noise(self, t_first: int, t_last: int, stream_id: int) -> np.ndarray:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 1, stream_id])
        hw = self.height * self.width
        lam = cfg.shot_noise_rate_hz * (int(t_last) - int(t_first)) * 1e-6
        counts = rng.poisson(lam, size=hw)
        pix = np.repeat(np.arange(hw, dtype=np.int64), counts)
        t = rng.integers(int(t_first), int(t_last), size=pix.size, endpoint=True)
        p = rng.integers(0, 2, size=pix.size)
        order = np.lexsort((pix, t))
        ev = np.empty(pix.size, dtype=EVENT_DTYPE)
        ev["x"] = pix[order] % self.width
        ev["y"] = pix[order] // self.width
        ev["p"] = p[order]
        ev["t"] = t[order]
        return ev


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = np.concatenate([a, b])
    return both[np.argsort(both["t"], kind="stable")]


def frames_to_events(frames, timestamps_us, config: DVSConfig | None = None, *,
                     stream_id: int = 0) -> np.ndarray:
    """Convenience: events from ``frames`` ``[F, H, W]`` in [0, 1] at ``timestamps_us`` ``[F]``
    with a :class:`DVSEmulator` built for the frame size; sensor size is ``(W, H, 2)``."""
    f = _check_frames(frames, 3, "frames")
    return DVSEmulator(f.shape[1], f.shape[2], config)(f, timestamps_us, stream_id=stream_id)
