"""``EventDataset``: labelled event streams with tonic's dataset conventions.

``len(ds)``; ``ds[i] -> (events, label)`` (events an :data:`~workloads.events.EVENT_DTYPE` array,
label an int; ``transform`` / ``target_transform`` applied when set, as tonic does);
``for events, label in ds``; ``ds.sensor_size`` ``(W, H, P)`` and ``ds.classes``. Streams from
tonic (its structured x, y, t, p arrays, or a tonic dataset already on disk) come in through
:meth:`EventDataset.from_tonic` / :meth:`EventDataset.from_arrays`; ``workloads.events.to_tonic``
converts an array back. Whole-set count frames: :meth:`EventDataset.to_frames`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .events import (EVENT_DTYPE, Window, as_events, check_sensor_size, iter_windows,
                     time_bins, validate_events)


@dataclass(frozen=True, eq=False)
class EventDataset:
    """Labelled event streams sharing one sensor and one time window ``[0, duration_us)``.

    ``events[i]`` is an :data:`EVENT_DTYPE` array (read-only), ``y`` int64 ``[N]``,
    ``sensor_size`` ``(W, H, P)``. Validated on construction. ``ds[i]`` gives
    ``(transform(events[i]), target_transform(int(y[i])))`` (each only when set).
    """

    events: list
    y: np.ndarray
    name: str
    classes: list
    split: str
    sensor_size: tuple
    duration_us: int
    meta: dict = field(default_factory=dict)
    transform: Callable | None = None
    target_transform: Callable | None = None
    _frames: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", check_sensor_size(self.sensor_size))
        if isinstance(self.duration_us, bool) or not isinstance(self.duration_us,
                                                                (int, np.integer)) \
                or self.duration_us < 1:
            raise ValueError(f"{self.name}: duration_us must be a positive int, got "
                             f"{self.duration_us!r}")
        if not isinstance(self.y, np.ndarray) or self.y.dtype != np.int64 or self.y.ndim != 1:
            raise ValueError(f"{self.name}: y must be an int64 [N] array")
        if len(self.events) != self.y.shape[0]:
            raise ValueError(f"{self.name}: {len(self.events)} event streams but "
                             f"{self.y.shape[0]} labels")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(f"{self.name}: labels must be in 0..{len(self.classes) - 1}")
        if self.split not in ("train", "test"):
            raise ValueError(f"{self.name}: split must be 'train' or 'test', got {self.split!r}")
        for k in ("transform", "target_transform"):
            if getattr(self, k) is not None and not callable(getattr(self, k)):
                raise TypeError(f"{self.name}: {k} must be callable, got {getattr(self, k)!r}")
        for i, ev in enumerate(self.events):
            where = f"{self.name}[{i}]"
            validate_events(ev, self.sensor_size, where=where)
            if ev.size and int(ev["t"][-1]) >= self.duration_us:
                raise ValueError(f"{where}: field 't' value {int(ev['t'][-1])} us is not below "
                                 f"duration_us={self.duration_us}")

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index) -> tuple:
        """``(events, label)`` of sample ``index`` (negative counts from the end)."""
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self.name}: index must be an int, got {type(index).__name__} "
                            f"{index!r} (use subset() for the first n samples)")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{self.name} ({self.split}): index {int(index)} out of range for "
                             f"{n} samples")
        ev, label = self.events[index], int(self.y[index])
        if self.transform is not None:
            ev = self.transform(ev)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return ev, label

    def __iter__(self) -> Iterator[tuple]:
        return (self[i] for i in range(len(self)))

    def with_transform(self, transform: Callable | None = None,
                       target_transform: Callable | None = None) -> "EventDataset":
        """The same streams with other transforms (``None`` removes one)."""
        return dataclasses.replace(self, transform=transform, target_transform=target_transform)

    @classmethod
    def from_arrays(cls, events, labels, sensor_size, *, name: str = "events",
                    classes: list | None = None, split: str = "test",
                    duration_us: int | None = None, sort: bool = False,
                    transform: Callable | None = None,
                    target_transform: Callable | None = None,
                    meta: dict | None = None) -> "EventDataset":
        """Event streams in tonic's format (structured arrays with fields x, y, t, p, any
        integer dtypes; see ``as_events``) and integer labels. ``classes`` defaults to
        ``"0".."K-1"``; ``duration_us`` to the latest timestamp + 1; unsorted streams are an
        error unless ``sort=True``."""
        size = check_sensor_size(sensor_size)
        evs = [as_events(e, size, sort=sort, where=f"{name}[{i}]") for i, e in enumerate(events)]
        for e in evs:
            e.flags.writeable = False
        y = np.asarray(labels)
        if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)):
            raise ValueError(f"{name}: labels must be a 1-D sequence of ints, got {y.dtype} "
                             f"{y.shape}")
        y = y.astype(np.int64)
        if classes is None:
            classes = [str(k) for k in range(int(y.max()) + 1 if y.size else 0)]
        if duration_us is None:
            duration_us = max((int(e["t"][-1]) + 1 for e in evs if e.size), default=1)
        return cls(evs, y, name, list(classes), split, size, int(duration_us),
                   dict(meta or {"source": "arrays"}), transform, target_transform)

    @classmethod
    def from_tonic(cls, dataset, *, name: str | None = None, split: str | None = None,
                   duration_us: int | None = None, sort: bool = False,
                   transform: Callable | None = None,
                   target_transform: Callable | None = None) -> "EventDataset":
        """Read a tonic dataset (or any indexable of ``(events, label)`` with ``sensor_size``)
        already on disk: it must give raw event arrays (no tonic transform to frames). Nothing is
        downloaded here; ``classes`` and ``train`` are taken from the dataset when it has them."""
        size = getattr(dataset, "sensor_size", None)
        name = name or type(dataset).__name__
        if size is None:
            raise ValueError(f"{name}: the dataset has no sensor_size; use "
                             "EventDataset.from_arrays(events, labels, sensor_size)")
        pairs = [dataset[i] for i in range(len(dataset))]
        for i, p in enumerate(pairs):
            if not (isinstance(p, tuple) and len(p) == 2):
                raise ValueError(f"{name}[{i}]: expected (events, label), got "
                                 f"{type(p).__name__}")
        if split is None:
            train = getattr(dataset, "train", None)
            split = "test" if train is None else ("train" if train else "test")
        classes = getattr(dataset, "classes", None)
        return cls.from_arrays([p[0] for p in pairs], [int(p[1]) for p in pairs], tuple(size),
                             name=name, classes=list(classes) if classes else None, split=split,
                             duration_us=duration_us, sort=sort, transform=transform,
                             target_transform=target_transform,
                             meta={"source": f"tonic:{type(dataset).__name__}"})

    def event_counts(self) -> np.ndarray:
        """Number of events per sample, int64 ``[N]``."""
        return np.array([ev.size for ev in self.events], dtype=np.int64)

    def subset(self, n: int) -> "EventDataset":
        """The first ``n`` samples."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{self.name}: subset size must be a non-negative int, got {n!r}")
        if n > len(self):
            raise ValueError(f"{self.name} ({self.split}): asked for subset({int(n)}) but the "
                             f"split has only {len(self)} samples")
        n = int(n)
        return EventDataset(list(self.events[:n]), self.y[:n].copy(), self.name,
                            list(self.classes), self.split, self.sensor_size, self.duration_us,
                            dict(self.meta, subset=n), self.transform, self.target_transform)

    def to_frames(self, n_time_bins: int) -> np.ndarray:
        """Count frames float32 ``[N, T, P, H, W]``: ``T = n_time_bins`` equal time bins over
        ``[0, duration_us)`` (rule of :func:`time_bins`). Cached per T; returns a fresh copy."""
        if isinstance(n_time_bins, bool) or not isinstance(n_time_bins, (int, np.integer)) \
                or n_time_bins < 1:
            raise ValueError(f"to_frames: n_time_bins must be a positive int, got "
                             f"{n_time_bins!r}")
        T = int(n_time_bins)
        if T not in self._frames:
            w, h, p = self.sensor_size
            out = np.empty((len(self), T, p, h, w), dtype=np.float32)
            per = T * p * h * w
            chunk = 256
            for s in range(0, len(self), chunk):
                evs = self.events[s:s + chunk]
                sizes = np.array([e.size for e in evs], dtype=np.int64)
                cat = np.concatenate(evs) if evs else np.zeros(0, EVENT_DTYPE)
                sample = np.repeat(np.arange(len(evs), dtype=np.int64), sizes)
                b = time_bins(cat["t"], T, 0, self.duration_us)
                flat = (((sample * T + b) * p + cat["p"]) * h + cat["y"]) * w + cat["x"]
                counts = np.bincount(flat, minlength=len(evs) * per)
                out[s:s + len(evs)] = counts.reshape(len(evs), T, p, h, w)
            out.flags.writeable = False
            self._frames[T] = out
        return self._frames[T].copy()

    def iter_windows(self, index: int, window_us: int) -> Iterator[Window]:
        """Windows of sample ``index`` over ``[0, duration_us)``; see :func:`iter_windows`."""
        return iter_windows(self.events[index], window_us, t_start_us=0,
                            t_stop_us=self.duration_us)
