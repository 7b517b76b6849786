"""What goes into a chip: static image sets, event streams, DVS emulation, event data sets.

``load(name, split="test", **kw)`` is the entry point; ``list_workloads()`` names what it knows.

* ``digits`` / ``cifar10`` -> :class:`StaticDataset` (x float32 ``[N, C, H, W]`` in [0, 1]).
* ``ndigits`` / ``motion`` -> :class:`EventDataset` (event streams, tonic-style: ``ds[i]`` ->
  ``(events, label)``, ``transform=``; ``to_frames(T)`` gives float32 ``[N, T, P, H, W]``
  counts; ``EventDataset.from_tonic`` reads a tonic dataset).
"""
from __future__ import annotations

import difflib
from typing import Callable

from .aedat import read_aedat4, write_aedat4
from .dvs import DVSConfig, DVSEmulator, frames_to_events
from .event_dataset import EventDataset
from .events import (
    EVENT_DTYPE,
    TONIC_DTYPE,
    EventFileError,
    Window,
    as_events,
    check_sensor_size,
    iter_windows,
    load_events,
    make_events,
    save_events,
    sort_events,
    time_bins,
    to_frames,
    to_tonic,
    validate_events,
)
from .motion import MOTION_CLASSES, load_motion
from .ndigits import load_ndigits
from .static import (
    RestrictedUnpickler,
    StaticDataset,
    UnsafePickleError,
    check_split,
    digits_split_indices,
    load_cifar10,
    load_digits,
    safe_pickle_load,
)

_LOADERS: dict[str, Callable] = {
    "cifar10": load_cifar10,
    "digits": load_digits,
    "motion": load_motion,
    "ndigits": load_ndigits,
}
EVENT_WORKLOADS = ("motion", "ndigits")   # loaders returning EventDataset


def list_workloads() -> list[str]:
    """Names accepted by :func:`load`, sorted."""
    return sorted(_LOADERS)


def load(name: str, split: str = "test", **kw):
    """Load workload ``name`` ("digits", "cifar10", "ndigits", "motion") for ``split``
    ("train" or "test"); keyword arguments go to the workload's loader."""
    if not isinstance(name, str) or name not in _LOADERS:
        close = difflib.get_close_matches(str(name), list(_LOADERS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown workload {name!r}{hint}; available: {list_workloads()}")
    check_split(split)
    return _LOADERS[name](split, **kw)


__all__ = [
    "EVENT_DTYPE", "EVENT_WORKLOADS", "TONIC_DTYPE", "DVSConfig", "DVSEmulator", "EventDataset",
    "EventFileError", "MOTION_CLASSES",
    "RestrictedUnpickler", "StaticDataset", "UnsafePickleError", "Window", "as_events",
    "check_sensor_size", "check_split", "digits_split_indices", "frames_to_events",
    "iter_windows", "list_workloads", "load", "load_cifar10", "load_digits", "load_events",
    "load_motion", "load_ndigits", "make_events", "read_aedat4", "safe_pickle_load",
    "save_events", "sort_events", "time_bins", "to_frames", "to_tonic", "validate_events",
    "write_aedat4",
]
