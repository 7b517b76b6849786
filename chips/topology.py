"""Network geometry of a chip (``chips.spec.ChipSpec.mesh``): core coordinates, hop distances,
XY routes and the serpentine core order. Pure functions of the spec, shared by the mapping and
the engines.

Mesh chips: a 2-D mesh with XY routing, core id = y * mesh_x + x, hops = |dx| + |dy|.
All-to-all chips (a shared event router): core c sits at (c, 0) and distinct cores are one hop
apart. Core -1 stands for off-chip (the Input): 0 hops, an empty route.
"""
from __future__ import annotations

import numpy as np

from chips.spec import ChipSpec


def is_mesh(chip: ChipSpec) -> bool:
    """True for a 2-D mesh with XY routing, False for an all-to-all chip."""
    return chip.mesh.topology == "mesh"


def coords(chip: ChipSpec, core: int) -> tuple[int, int]:
    """(x, y) of a core on the mesh (all-to-all chips: (core, 0))."""
    if chip.mesh.topology == "mesh":
        return core % chip.mesh.mesh_x, core // chip.mesh.mesh_x
    return core, 0


def core_xy(chip: ChipSpec) -> np.ndarray:
    """``coords`` of every core as an (n_cores, 2) integer array, indexed by core id."""
    return np.array([coords(chip, c) for c in range(chip.n_cores)])


def hops(chip: ChipSpec, a: int, b: int) -> int:
    """Router hops from core a to core b: XY routing on a mesh (|dx| + |dy|); 1 between
    distinct cores of an all-to-all chip; 0 when a == b or either is off-chip (-1)."""
    if a < 0 or b < 0 or a == b:
        return 0
    if chip.mesh.topology == "mesh":
        (xa, ya), (xb, yb) = coords(chip, a), coords(chip, b)
        return abs(xa - xb) + abs(ya - yb)
    return 1


def path(chip: ChipSpec, a: int, b: int) -> list[int]:
    """Cores a packet visits after leaving core ``a`` on its way to core ``b`` (XY: x first,
    then y); ``len(path(chip, a, b)) == hops(chip, a, b)``."""
    if a < 0 or a == b:
        return []
    if chip.mesh.topology != "mesh":
        return [b]
    X = chip.mesh.mesh_x
    (x, y), (xb, yb) = coords(chip, a), coords(chip, b)
    out = []
    while x != xb:
        x += 1 if xb > x else -1
        out.append(y * X + x)
    while y != yb:
        y += 1 if yb > y else -1
        out.append(y * X + x)
    return out


def serpentine(chip: ChipSpec) -> list[int]:
    """Core ids along a boustrophedon path over the mesh (row 0 left to right, row 1 right to
    left, ...): consecutive cores are one hop apart. All-to-all chips: 0..n_cores-1."""
    if chip.mesh.topology != "mesh":
        return list(range(chip.n_cores))
    X, Y = chip.mesh.mesh_x, chip.mesh.mesh_y
    return [y * X + (x if y % 2 == 0 else X - 1 - x) for y in range(Y) for x in range(X)]


__all__ = ["is_mesh", "coords", "core_xy", "hops", "path", "serpentine"]
