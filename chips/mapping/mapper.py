"""The entry point ``map_graph``: build the layers of a graph, split them to fit the cores,
check them against the chip, place them, and return the ``Mapping`` (or raise
``MappingError``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from chips.mapping.capacity import (MappingError, Violation, _check_cores, _check_graph,
                                    _check_layer, _max_capacity, _split)
from chips.mapping.layers import Layer, Part, _build_layers, _Needs
from chips.mapping.model import Mapping
from chips.mapping.placement import _place_heterogeneous, _place_homogeneous, _place_passive
from chips.spec import ChipSpec, load_chip
from neurosim.ir import graph as G


def map_graph(graph: G.Graph, chip: ChipSpec | str | Path, *, strict: bool = True,
              placement: str = "auto") -> Mapping:
    """Place every node of ``graph`` on the cores of ``chip`` (a ChipSpec, a chip name or a
    TOML path). ``placement``: "auto" (fewer total hops of serpentine / greedy), "serpentine"
    or "greedy" (homogeneous chips; heterogeneous chips always use the memory-fit assignment).
    ``strict``: raise ``MappingError`` naming every violation; otherwise return the
    best-effort mapping with ``violations`` listed."""
    chip = load_chip(chip)
    if placement not in ("auto", "serpentine", "greedy"):
        raise ValueError(f"placement must be auto, serpentine or greedy, got {placement!r}")
    graph.validate()
    layers, layer_of, anchor = _build_layers(graph, chip)
    needs = _Needs(graph, chip, layer_of)
    cap = _max_capacity(chip)
    violations: list[Violation] = []
    for L in layers.values():
        L.fan_in = needs.fan_in(L)
        ranges = _split(L, needs, cap, chip.features.split_layers)
        L.parts = [Part(-1, a, b) for a, b in ranges]
        L.needs, L.by_node = map(list, zip(*(needs.part(L, a, b) for a, b in ranges)))
        _check_layer(graph, chip, L, needs, cap, violations)
    _check_graph(graph, chip, layers, layer_of, violations)

    active = [n for n, L in layers.items() if L.active]
    if chip.homogeneous:
        _check_cores(chip, layers, active, violations)
        mapping = _map_homogeneous(graph, chip, layers, layer_of, anchor, active, placement,
                                   violations)
    else:
        _place_heterogeneous(chip, layers, active, needs, violations)
        _place_passive(graph, layers, layer_of, anchor, active)
        mapping = Mapping(graph, chip, layers, layer_of, violations, "memory-fit")
    if strict and mapping.violations:
        vs = mapping.violations
        raise MappingError(f"graph does not fit chip {chip.name!r} ({len(vs)} problem(s)):"
                           + "".join(f"\n  - {v.message}" for v in vs), vs)
    return mapping


def _map_homogeneous(graph: G.Graph, chip: ChipSpec, layers: dict[str, Layer],
                     layer_of: dict[str, str], anchor: dict[str, str], active: list[str],
                     placement: str, violations: list[Violation]) -> Mapping:
    """Try the placement strategies on copies of ``layers`` and keep the mapping with the
    fewest total hops ("auto": serpentine, then greedy; oversubscribed chips: serpentine,
    wrapping around)."""
    total = sum(len(layers[n].parts) for n in active)
    strategies = (["serpentine"] if total > chip.n_cores    # oversubscribed: wrap around
                  else ["serpentine", "greedy"] if placement == "auto" else [placement])
    best = None
    for s in strategies:
        trial = {n: dataclasses.replace(L, parts=list(L.parts)) for n, L in layers.items()}
        _place_homogeneous(graph, chip, trial, layer_of, active, s)
        _place_passive(graph, trial, layer_of, anchor, active)
        m = Mapping(graph, chip, trial, layer_of, violations, s)
        if best is None or m.total_hops() < best.total_hops():
            best = m
    return best
