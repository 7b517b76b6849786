"""Data behind the timeline plots, kept apart from the drawing: which layers a core row stands
for (labels), and how busy each core was per time bin when work items are too short to draw
one by one. Plain numpy; no plotting here.
"""
from __future__ import annotations

import numpy as np

PIXELS = 800             # time bins of an aggregated timeline: about the axes' width in pixels
MAX_TICKS = 60           # row labels on one axis before they are thinned


def core_layers(mapping: dict | None) -> dict[int, list[str]]:
    """core -> the layers mapped onto it, from a mapping's ``to_dict()`` (``{}`` without)."""
    return {int(c["core"]): list(c.get("layers", [])) for c in (mapping or {}).get("cores", [])}


def _text(layers: list[str] | None, width: int = 40) -> str:
    if not layers:
        return "?"
    s = layers[0] if len(layers) == 1 else f"{layers[0]} +{len(layers) - 1}"
    return s if len(s) <= width else "..." + s[-(width - 3):]


def core_ticks(cores: list[int], labels: dict[int, list[str]] | None,
               max_ticks: int = MAX_TICKS) -> tuple[list[float], list[str]]:
    """Row positions and texts for a y axis with one row per core (in ``cores`` order): runs of
    consecutive rows holding the same layers become one label at their middle, "layer (cores
    a-b)"; without labels, the core numbers. More runs than ``max_ticks``: every k-th."""
    if not labels:
        step = max(1, -(-len(cores) // max_ticks))
        return [float(i) for i in range(0, len(cores), step)], [str(cores[i])
                                                                 for i in range(0, len(cores), step)]
    runs: list[list[int]] = []                  # [first row, last row]
    for i, c in enumerate(cores):
        if runs and labels.get(c) == labels.get(cores[runs[-1][0]]):
            runs[-1][1] = i
        else:
            runs.append([i, i])
    step = max(1, -(-len(runs) // max_ticks))
    pos, text = [], []
    for a, b in runs[::step]:
        where = f"core {cores[a]}" if a == b else f"cores {cores[a]}-{cores[b]}"
        pos.append((a + b) / 2)
        text.append(f"{_text(labels.get(cores[a]))} ({where})")
    return pos, text


def mostly_subpixel(items: list, end_s: float, pixels: int = PIXELS) -> bool:
    """True when most work items last less than one pixel of a ``pixels``-wide time axis
    spanning ``end_s`` (bars that thin vanish or alias: aggregate instead)."""
    if not items or end_s <= 0:
        return False
    d = np.array([float(it[2]) - float(it[1]) for it in items])
    return bool(np.mean(d < end_s / pixels) > 0.5)


def busy_fraction(items: list, cores: list[int], end_s: float,
                  bins: int = PIXELS) -> np.ndarray:
    """[len(cores), bins]: the time each core spent on work items in each of ``bins`` equal
    bins of [0, end_s], divided by the bin's width (1 = busy throughout; overlapping items on
    one core add up). Each item adds its overlap with the bins it touches: its first and last
    bin get the partial parts, the bins between the full width (a difference array), so a
    bin no item touches stays exactly 0."""
    grid = np.zeros((len(cores), bins))
    if not items or end_s <= 0:
        return grid
    w = end_s / bins
    index = {c: i for i, c in enumerate(cores)}
    row = np.array([index[int(it[0])] for it in items])
    s = np.array([float(it[1]) for it in items])
    e = np.array([float(it[2]) for it in items])
    i0 = np.clip((s / w).astype(np.int64), 0, bins - 1)
    i1 = np.clip((e / w).astype(np.int64), 0, bins - 1)
    same = i0 == i1
    np.add.at(grid, (row[same], i0[same]), (e - s)[same])
    span = ~same
    np.add.at(grid, (row[span], i0[span]), (i0[span] + 1) * w - s[span])
    np.add.at(grid, (row[span], i1[span]), e[span] - i1[span] * w)
    full = np.zeros((len(cores), bins + 1))                  # bins strictly between i0 and i1
    np.add.at(full, (row[span], i0[span] + 1), 1.0)
    np.add.at(full, (row[span], i1[span]), -1.0)
    grid += np.cumsum(full, axis=1)[:, :bins] * w
    return grid / w


__all__ = ["PIXELS", "core_layers", "core_ticks", "mostly_subpixel", "busy_fraction"]
