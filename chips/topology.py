"""Network geometry of a chip (``chips.spec.ChipSpec.mesh``): core coordinates, hop distances,
XY routes and the serpentine core order. Pure functions of the spec, shared by the mapping and
the engines.

Mesh chips: a 2-D mesh of routers with XY routing. Each router serves a *tile* of
``cores_per_tile`` cores (1 unless the chip says otherwise, e.g. Loihi's 4): tile t sits at
(t % mesh_x, t // mesh_x) and holds cores t * cores_per_tile ... (t + 1) * cores_per_tile - 1,
so core c is in tile c // cores_per_tile and with one core per tile core id = y * mesh_x + x.
Hops between cores = |dx| + |dy| of their tiles (0 inside a tile); x is east-west, y is
north-south (``hops_ns`` counts the y part, priced apart where N-S links cost more).
All-to-all chips (a shared event router): core c sits at (c, 0) and distinct cores are one hop
apart. Core -1 stands for off-chip (the Input): 0 hops, an empty route.
"""
from __future__ import annotations

import numpy as np

from chips.spec import ChipSpec


def is_mesh(chip: ChipSpec) -> bool:
    """True for a 2-D mesh with XY routing, False for an all-to-all chip."""
    return chip.mesh.topology == "mesh"


def cores_per_tile(chip: ChipSpec) -> int:
    """Cores sharing one router (1 on all-to-all chips)."""
    return (chip.mesh.cores_per_tile or 1) if chip.mesh.topology == "mesh" else 1


def tile(chip: ChipSpec, core: int) -> int:
    """Tile (router) of a core; all-to-all chips: the core itself."""
    return core // cores_per_tile(chip)


def coords(chip: ChipSpec, core: int) -> tuple[int, int]:
    """(x, y) of a core's tile on the mesh (all-to-all chips: (core, 0))."""
    if chip.mesh.topology == "mesh":
        t = tile(chip, core)
        return t % chip.mesh.mesh_x, t // chip.mesh.mesh_x
    return core, 0


def core_xy(chip: ChipSpec) -> np.ndarray:
    """``coords`` of every core as an (n_cores, 2) integer array, indexed by core id."""
    return np.array([coords(chip, c) for c in range(chip.n_cores)])


def hops(chip: ChipSpec, a: int, b: int) -> int:
    """Router hops from core a to core b: XY routing on a mesh (|dx| + |dy| between their
    tiles, 0 inside a tile); 1 between distinct cores of an all-to-all chip; 0 when a == b or
    either is off-chip (-1)."""
    if a < 0 or b < 0 or a == b:
        return 0
    if chip.mesh.topology == "mesh":
        (xa, ya), (xb, yb) = coords(chip, a), coords(chip, b)
        return abs(xa - xb) + abs(ya - yb)
    return 1


def hops_ns(chip: ChipSpec, a: int, b: int) -> int:
    """The north-south (y) part of ``hops(chip, a, b)``: |dy| between the tiles on a mesh, 0 on
    an all-to-all chip or when either core is off-chip."""
    if a < 0 or b < 0 or a == b or chip.mesh.topology != "mesh":
        return 0
    return abs(coords(chip, a)[1] - coords(chip, b)[1])


def path(chip: ChipSpec, a: int, b: int) -> list[int]:
    """Routers a packet visits after leaving core ``a`` on its way to core ``b`` (XY: x first,
    then y), each named by the core of that tile at ``b``'s offset in its tile, so the last is
    ``b``; ``len(path(chip, a, b)) == hops(chip, a, b)`` (a hop inside a tile is no hop)."""
    if a < 0 or a == b:
        return []
    if chip.mesh.topology != "mesh":
        return [b]
    X, k = chip.mesh.mesh_x, cores_per_tile(chip)
    off = b % k
    (x, y), (xb, yb) = coords(chip, a), coords(chip, b)
    out = []
    while x != xb:
        x += 1 if xb > x else -1
        out.append((y * X + x) * k + off)
    while y != yb:
        y += 1 if yb > y else -1
        out.append((y * X + x) * k + off)
    return out


def serpentine(chip: ChipSpec) -> list[int]:
    """Core ids along a boustrophedon path over the mesh's tiles (row 0 left to right, row 1
    right to left, ...), the cores of a tile in order: consecutive cores are at most one hop
    apart. All-to-all chips: 0..n_cores-1."""
    if chip.mesh.topology != "mesh":
        return list(range(chip.n_cores))
    X, Y, k = chip.mesh.mesh_x, chip.mesh.mesh_y, cores_per_tile(chip)
    tiles = [y * X + (x if y % 2 == 0 else X - 1 - x) for y in range(Y) for x in range(X)]
    return [t * k + j for t in tiles for j in range(k)]


__all__ = ["is_mesh", "cores_per_tile", "tile", "coords", "core_xy", "hops", "hops_ns",
           "path", "serpentine"]
