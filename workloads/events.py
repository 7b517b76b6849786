"""Event streams as tonic-compatible numpy structured arrays.

An event stream is a 1-D structured array of dtype :data:`EVENT_DTYPE`
``[("x", "<i2"), ("y", "<i2"), ("p", "<i1"), ("t", "<i8")]``: ``x``/``y`` are pixel
coordinates, ``p`` the polarity (0 = OFF, 1 = ON), ``t`` the timestamp in microseconds.
The sensor size travels beside the array as ``(W, H, P)`` (width and height in pixels, number
of polarities), the tonic convention.

Rules every helper here enforces (errors name the field and the offending value):

* ``t`` is non-negative and **sorted** (non-decreasing). Unsorted input is *rejected*, never
  reordered behind the caller's back: call :func:`sort_events` (a stable sort, deterministic)
  to fix a stream explicitly, or pass ``sort=True`` to :func:`load_events` / :func:`as_events`.
* ``0 <= x < W``, ``0 <= y < H``, ``0 <= p < P``. Nothing is clipped or dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "<i1"), ("t", "<i8")])


class EventFileError(ValueError):
    """An event file that cannot be read or holds invalid events; the message starts with the
    file's path (:func:`load_events`, :func:`workloads.read_aedat4`)."""
EVENT_FIELDS = ("x", "y", "p", "t")
# the dtype tonic's datasets give (``np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])``)
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

SensorSize = tuple[int, int, int]


def check_sensor_size(sensor_size) -> SensorSize:
    """Return ``sensor_size`` as a ``(W, H, P)`` tuple of positive ints, or raise ValueError."""
    try:
        values = tuple(sensor_size)
    except TypeError:
        raise ValueError(f"sensor_size must be a (W, H, P) tuple, got {sensor_size!r}") from None
    if len(values) != 3:
        raise ValueError(f"sensor_size must have 3 entries (W, H, P), got {sensor_size!r}")
    out = []
    for name, v in zip(("W", "H", "P"), values, strict=True):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"sensor_size {name} must be an int, got {v!r} in {sensor_size!r}")
        if v <= 0:
            raise ValueError(f"sensor_size {name} must be positive, got {v} in {sensor_size!r}")
        out.append(int(v))
    w, h, p = out
    if w > np.iinfo(np.int16).max + 1 or h > np.iinfo(np.int16).max + 1:
        raise ValueError(f"sensor_size {sensor_size!r} exceeds the int16 x/y range of EVENT_DTYPE")
    if p > np.iinfo(np.int8).max + 1:
        raise ValueError(f"sensor_size P={p} exceeds the int8 p range of EVENT_DTYPE")
    return (w, h, p)


def _first_unsorted(t: np.ndarray) -> int | None:
    bad = np.flatnonzero(np.diff(t) < 0)
    return int(bad[0]) + 1 if bad.size else None


def validate_events(ev: np.ndarray, sensor_size=None, *, where: str = "events") -> np.ndarray:
    """Check ``ev`` is a valid event stream and return it unchanged.

    Requires dtype exactly :data:`EVENT_DTYPE`, 1-D, ``t >= 0`` and non-decreasing, and (when
    ``sensor_size=(W, H, P)`` is given) every coordinate inside the sensor. ``where`` names the
    stream in error messages (e.g. a file path). Raises TypeError for a wrong dtype/type and
    ValueError for wrong values.
    """
    if not isinstance(ev, np.ndarray):
        raise TypeError(f"{where}: expected a numpy structured array, got {type(ev).__name__}")
    if ev.dtype.names is None:
        raise TypeError(f"{where}: expected a structured array with fields {EVENT_FIELDS}, "
                        f"got plain dtype {ev.dtype}")
    missing = [f for f in EVENT_FIELDS if f not in ev.dtype.names]
    if missing:
        raise TypeError(f"{where}: missing field(s) {missing}; has {list(ev.dtype.names)}")
    if ev.dtype != EVENT_DTYPE:
        raise TypeError(f"{where}: dtype {ev.dtype} is not EVENT_DTYPE {EVENT_DTYPE}; "
                        "convert with workloads.as_events()")
    if ev.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D event array, got shape {ev.shape}")
    if ev.size == 0:
        if sensor_size is not None:
            check_sensor_size(sensor_size)
        return ev
    t = ev["t"]
    if t.min() < 0:
        i = int(np.argmin(t))
        raise ValueError(f"{where}: field 't' has a negative timestamp {int(t[i])} us at index {i}")
    i = _first_unsorted(t)
    if i is not None:
        raise ValueError(f"{where}: field 't' is not sorted: t[{i - 1}]={int(t[i - 1])} us > "
                         f"t[{i}]={int(t[i])} us (use workloads.sort_events to sort explicitly)")
    for f in ("x", "y", "p"):
        v = ev[f]
        if v.min() < 0:
            i = int(np.argmin(v))
            raise ValueError(f"{where}: field '{f}' has negative value {int(v[i])} at index {i}")
    if sensor_size is not None:
        w, h, p = check_sensor_size(sensor_size)
        for f, lim in (("x", w), ("y", h), ("p", p)):
            v = ev[f]
            if v.max() >= lim:
                i = int(np.argmax(v))
                raise ValueError(f"{where}: field '{f}' value {int(v[i])} at index {i} is outside "
                                 f"the sensor (must be < {lim} for sensor_size {(w, h, p)})")
    return ev


def sort_events(ev: np.ndarray) -> np.ndarray:
    """Return a copy of ``ev`` stably sorted by ``t`` (ties keep their original order)."""
    order = np.argsort(ev["t"], kind="stable")
    return ev[order]


def _convert_field(values: np.ndarray, name: str, target: np.dtype, where: str) -> np.ndarray:
    if values.dtype == np.bool_:
        values = values.astype(np.int8)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{where}: field '{name}' has dtype {values.dtype}; only integer or bool "
                        "fields are accepted (timestamps must be integer microseconds)")
    if values.size:
        info = np.iinfo(target)
        lo, hi = values.min(), values.max()
        if int(lo) < info.min or int(hi) > info.max:
            bad = lo if int(lo) < info.min else hi
            i = int(np.flatnonzero(values == bad)[0])
            raise ValueError(f"{where}: field '{name}' value {int(bad)} at index {i} does not fit "
                             f"{target} ({info.min}..{info.max})")
    return values.astype(target)


def as_events(arr: np.ndarray, sensor_size=None, *, sort: bool = False,
              where: str = "events") -> np.ndarray:
    """Convert a tonic-style structured array (fields x, y, p, t in any order, any integer
    dtypes or bool ``p``) to :data:`EVENT_DTYPE` and validate it.

    Extra fields, float fields and values that do not fit are rejected with an error naming the
    field. ``sort=True`` stably sorts by ``t`` first; otherwise unsorted ``t`` is an error.
    """
    if not isinstance(arr, np.ndarray) or arr.dtype.names is None:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise TypeError(f"{where}: expected a structured array with fields {EVENT_FIELDS}, "
                        f"got {got}")
    names = list(arr.dtype.names)
    missing = [f for f in EVENT_FIELDS if f not in names]
    if missing:
        raise TypeError(f"{where}: missing field(s) {missing}; has {names}")
    extra = [f for f in names if f not in EVENT_FIELDS]
    if extra:
        raise TypeError(f"{where}: unexpected field(s) {extra}; only {list(EVENT_FIELDS)} are "
                        "supported (drop them explicitly if they are not needed)")
    if arr.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D event array, got shape {arr.shape}")
    out = np.empty(arr.shape[0], dtype=EVENT_DTYPE)
    for f in EVENT_FIELDS:
        out[f] = _convert_field(np.asarray(arr[f]), f, EVENT_DTYPE[f], where)
    if sort:
        out = sort_events(out)
    return validate_events(out, sensor_size, where=where)


def to_tonic(ev: np.ndarray, dtype=TONIC_DTYPE) -> np.ndarray:
    """Events in tonic's layout (fields x, y, t, p as int64 by default; ``dtype`` may name
    another integer structured dtype with those four fields): the inverse of :func:`as_events`."""
    validate_events(ev, where="to_tonic")
    dtype = np.dtype(dtype)
    if dtype.names is None or sorted(dtype.names) != sorted(EVENT_FIELDS):
        raise TypeError(f"to_tonic: dtype {dtype} must have exactly the fields {EVENT_FIELDS}")
    out = np.empty(ev.shape[0], dtype=dtype)
    for f in EVENT_FIELDS:
        out[f] = _convert_field(ev[f], f, dtype[f], "to_tonic")
    return out


def make_events(x, y, p, t, sensor_size=None) -> np.ndarray:
    """Build an event array from 1-D integer sequences ``x``, ``y`` (pixels), ``p`` (polarity)
    and ``t`` (microseconds, sorted). Validates against ``sensor_size=(W, H, P)`` if given."""
    cols = {}
    n = None
    for name, v in (("x", x), ("y", y), ("p", p), ("t", t)):
        a = np.asarray(v)
        if a.ndim != 1:
            raise ValueError(f"make_events: field '{name}' must be 1-D, got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise ValueError(f"make_events: field '{name}' has length {a.shape[0]}, expected {n}")
        if a.size == 0:
            a = a.astype(EVENT_DTYPE[name])
        cols[name] = _convert_field(a, name, EVENT_DTYPE[name], "make_events")
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name, a in cols.items():
        out[name] = a
    return validate_events(out, sensor_size, where="make_events")


def save_events(path, ev: np.ndarray, sensor_size=None) -> Path:
    """Save events to ``.npy`` (the bare array, as tonic users keep them) or ``.npz`` (arrays
    ``events`` and ``sensor_size``; ``sensor_size`` is required). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{path}: unsupported event file suffix {path.suffix!r} "
                         "(use .npy or .npz)")
    validate_events(ev, sensor_size, where=str(path))
    if suffix == ".npy":
        np.save(path, ev, allow_pickle=False)
    else:
        if sensor_size is None:
            raise ValueError(f"{path}: .npz event files store the sensor size; pass sensor_size")
        size = np.asarray(check_sensor_size(sensor_size), dtype=np.int64)
        with open(path, "wb") as f:
            np.savez(f, events=ev, sensor_size=size)
    return path


def load_events(path, sensor_size=None, *, sort: bool = False) -> tuple[np.ndarray, SensorSize]:
    """Load events from ``.npy`` or ``.npz`` and return ``(events, sensor_size)``.

    ``.npy`` files carry no sensor size, so ``sensor_size=(W, H, P)`` is required for them;
    for ``.npz`` it is read from the file (a given ``sensor_size`` must match). Foreign integer
    dtypes / bool polarity are converted (see :func:`as_events`). Never unpickles objects.
    Every problem with the file raises :class:`EventFileError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"event file not found: {path}")
    where = str(path)
    arr, stored = _read_event_arrays(path, where)
    try:
        if stored is not None:
            if sensor_size is not None and check_sensor_size(sensor_size) != stored:
                raise ValueError(f"{where}: stored sensor_size {stored} differs from the given "
                                 f"{tuple(sensor_size)}")
            size = stored
        else:
            if sensor_size is None:
                raise ValueError(f"{where}: .npy event files carry no sensor size; pass "
                                 "sensor_size=(W, H, P)")
            size = check_sensor_size(sensor_size)
        return as_events(arr, size, sort=sort, where=where), size
    except (TypeError, ValueError) as e:
        msg = str(e)
        raise EventFileError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _read_event_arrays(path: Path, where: str) -> tuple[np.ndarray, SensorSize | None]:
    """The event array of a .npy / .npz file and the stored sensor size (.npz)."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise EventFileError(f"{where}: unsupported event file suffix {path.suffix!r} "
                             "(use .npy or .npz)")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as z:
            for key in ("events", "sensor_size"):
                if key not in z.files:
                    raise EventFileError(f"{where}: missing array '{key}' (has {z.files})")
            size = z["sensor_size"]
            if size.dtype.kind not in "iu" or size.shape != (3,):
                raise EventFileError(f"{where}: 'sensor_size' must hold 3 integers (W, H, P), "
                                     f"got {size.dtype} {size.shape}")
            stored = check_sensor_size(size.tolist())
            return z["events"], stored
    except EventFileError:
        raise
    except ValueError as e:
        if str(e).startswith(where):
            raise EventFileError(str(e)) from None
        raise EventFileError(f"{where}: cannot read event file: {e}") from None
    except Exception as e:                # zip / npy format errors come in many types
        raise EventFileError(f"{where}: cannot read event file ({type(e).__name__}: {e})") \
            from None


def _time_range(t: np.ndarray, t_start_us, t_stop_us, where: str) -> tuple[int, int]:
    start = int(t[0]) if t_start_us is None else int(t_start_us)
    stop = int(t[-1]) + 1 if t_stop_us is None else int(t_stop_us)
    if stop <= start:
        raise ValueError(f"{where}: empty time range [t_start_us={start}, t_stop_us={stop})")
    if t.size and (int(t[0]) < start or int(t[-1]) >= stop):
        raise ValueError(f"{where}: events span t={int(t[0])}..{int(t[-1])} us, outside "
                         f"[t_start_us={start}, t_stop_us={stop}); nothing is dropped silently")
    return start, stop


def time_bins(t: np.ndarray, n_time_bins: int, t_start_us: int, t_stop_us: int) -> np.ndarray:
    """Bin index of each timestamp: ``floor((t - t_start) * T / (t_stop - t_start))``.

    Bins are half-open, ``[t_start + k*span/T, t_start + (k+1)*span/T)``: an event exactly on an
    edge goes to the later bin. Exact integer arithmetic (no float rounding).
    """
    span = t_stop_us - t_start_us
    if span > (np.iinfo(np.int64).max // max(n_time_bins, 1)):
        raise ValueError(f"time span {span} us x {n_time_bins} bins overflows int64")
    return ((t.astype(np.int64) - t_start_us) * n_time_bins) // span


def to_frames(ev: np.ndarray, sensor_size, n_time_bins: int | None = None,
              event_count: int | None = None, *, t_start_us: int | None = None,
              t_stop_us: int | None = None) -> np.ndarray:
    """Accumulate events into count frames, float32 ``[T, P, H, W]``.

    Exactly one of:

    * ``n_time_bins=T``: time bins over ``[t_start_us, t_stop_us)`` (default: first event t to
      last event t + 1); bin rule of :func:`time_bins`. Events outside the range raise.
      With no events and no range given, returns T zero frames.
    * ``event_count=K``: consecutive slices of K events; ``ceil(N/K)`` frames, the last one may
      hold fewer than K events (none is dropped).

    The frames always sum to ``len(ev)``.
    """
    w, h, p = check_sensor_size(sensor_size)
    validate_events(ev, (w, h, p), where="to_frames")
    if (n_time_bins is None) == (event_count is None):
        raise ValueError("to_frames: give exactly one of n_time_bins or event_count")
    if n_time_bins is not None:
        if int(n_time_bins) != n_time_bins or n_time_bins < 1:
            raise ValueError(f"to_frames: n_time_bins must be a positive int, got {n_time_bins!r}")
        n_time_bins = int(n_time_bins)
        if ev.size == 0 and t_start_us is None and t_stop_us is None:
            return np.zeros((n_time_bins, p, h, w), dtype=np.float32)
        if ev.size == 0:
            if t_start_us is None or t_stop_us is None:
                raise ValueError("to_frames: an empty stream needs both t_start_us and t_stop_us")
        start, stop = _time_range(ev["t"], t_start_us, t_stop_us, "to_frames")
        b = time_bins(ev["t"], n_time_bins, start, stop)
        n_frames = n_time_bins
    else:
        if int(event_count) != event_count or event_count < 1:
            raise ValueError(f"to_frames: event_count must be a positive int, got {event_count!r}")
        event_count = int(event_count)
        n_frames = -(-ev.size // event_count)
        b = np.arange(ev.size, dtype=np.int64) // event_count
    flat = ((b * p + ev["p"]) * h + ev["y"]) * w + ev["x"]
    counts = np.bincount(flat, minlength=n_frames * p * h * w)
    return counts.astype(np.float32).reshape(n_frames, p, h, w)


class Window(NamedTuple):
    """One time window of a stream: ``events`` lie in ``[t_start_us, t_stop_us)``."""

    index: int
    t_start_us: int
    t_stop_us: int
    events: np.ndarray


def iter_windows(ev: np.ndarray, window_us: int, *, t_start_us: int | None = None,
                 t_stop_us: int | None = None) -> Iterator[Window]:
    """Yield consecutive half-open windows ``[t_start + k*window_us, t_start + (k+1)*window_us)``
    covering ``[t_start_us, t_stop_us)`` (defaults: first event t, last event t + 1), empty
    windows included, each with a view of its events. Every event appears in exactly one window.
    """
    validate_events(ev, where="iter_windows")
    if int(window_us) != window_us or window_us < 1:
        raise ValueError(f"iter_windows: window_us must be a positive int, got {window_us!r}")
    window_us = int(window_us)
    if ev.size == 0 and (t_start_us is None or t_stop_us is None):
        return
    start, stop = _time_range(ev["t"], t_start_us, t_stop_us, "iter_windows")
    n = -(-(stop - start) // window_us)
    edges = start + window_us * np.arange(n + 1, dtype=np.int64)
    idx = np.searchsorted(ev["t"], edges, side="left")
    for k in range(n):
        yield Window(k, int(edges[k]), int(min(edges[k + 1], stop)), ev[idx[k]:idx[k + 1]])
