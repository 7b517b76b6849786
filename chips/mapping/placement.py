"""Placement: which core holds each part of each layer (``Part.core``), set in place on the
``Layer`` objects.

Homogeneous cores: layers in topological order either along a serpentine (boustrophedon) path
over the mesh (``_place_homogeneous(..., "serpentine")``), or greedily on the free cores
nearest (Manhattan) to the cores of their producers (``"greedy"``); ``map_graph`` with
``placement="auto"`` keeps whichever gives fewer total spike hops. Heterogeneous cores (Speck):
a minimum-waste assignment of layers to cores that fit (``_place_heterogeneous``,
``scipy.optimize.linear_sum_assignment``). Layers that need no memory take no core of their own
(``_place_passive``).
"""
from __future__ import annotations

import numpy as np

from chips import topology
from chips.mapping.capacity import _LABEL, Violation, _exceeds
from chips.mapping.layers import Layer, Part, _Needs
from chips.spec import ChipSpec
from neurosim.ir import graph as G


def _producers(graph: G.Graph, L: Layer, layer_of: dict[str, str]) -> list[str]:
    """Layers (other than ``L``, not the Input) feeding a node of ``L``, in order."""
    inp = graph.input_node()
    return list(dict.fromkeys(layer_of[u] for n in L.nodes for u in graph.inputs(n)
                              if u != inp and layer_of[u] != L.name))


def _place_homogeneous(graph: G.Graph, chip: ChipSpec, layers: dict[str, Layer],
                       layer_of: dict[str, str], active: list[str], strategy: str) -> None:
    """Assign cores to the parts of active layers (in place): "serpentine" (also whenever the
    parts outnumber the cores, wrapping around) or "greedy"."""
    order = topology.serpentine(chip)
    rank = {c: i for i, c in enumerate(order)}
    total = sum(len(layers[n].parts) for n in active)
    if strategy == "serpentine" or total > chip.n_cores:
        i = 0
        for n in active:
            L = layers[n]
            L.parts = [p._replace(core=order[(i + j) % chip.n_cores])
                       for j, p in enumerate(L.parts)]
            i += len(L.parts)
        return
    xy = topology.core_xy(chip)
    free = np.ones(chip.n_cores, bool)
    ranks = np.array([rank[c] for c in range(chip.n_cores)])
    for n in active:
        L = layers[n]
        k = len(L.parts)
        prod = [c for m in _producers(graph, L, layer_of) if m in active
                for c in layers[m].cores]
        cand = np.flatnonzero(free)
        if prod and topology.is_mesh(chip):
            d = np.abs(xy[cand][:, None, :] - xy[np.array(prod)][None, :, :]).sum(-1).sum(-1)
            pick = cand[np.lexsort((ranks[cand], d))[:k]]
        else:
            pick = cand[np.argsort(ranks[cand], kind="stable")[:k]]
        pick = sorted(pick.tolist(), key=lambda c: rank[c])
        free[pick] = False
        L.parts = [p._replace(core=c) for p, c in zip(L.parts, pick)]


def _place_heterogeneous(chip: ChipSpec, layers: dict[str, Layer], active: list[str],
                         needs: _Needs, out: list[Violation]) -> None:
    """Minimum-waste assignment of parts to cores that fit them; the rest oversubscribe."""
    from scipy.optimize import linear_sum_assignment

    items = [(n, i) for n in active for i in range(len(layers[n].parts))]
    caps = chip.capacities()
    big = 1e12
    cost = np.full((len(items), chip.n_cores), big)
    for r, (n, i) in enumerate(items):
        need = layers[n].needs[i]
        for c, cap in enumerate(caps):
            if not _exceeds(need, cap):
                # waste (< 3) plus 4 per topological rank: earlier layers win the cores
                cost[r, c] = 4 * r + sum(1 - need[k] / getattr(cap, k) for k in need
                                         if getattr(cap, k))
    rows, cols = linear_sum_assignment(cost)
    assigned = {items[r]: int(c) for r, c in zip(rows, cols) if cost[r, c] < big}
    load = np.zeros(chip.n_cores, int)
    for c in assigned.values():
        load[c] += 1
    for n, i in items:
        L = layers[n]
        if (n, i) in assigned:
            core = assigned[(n, i)]
        else:
            need = L.needs[i]
            fitting = [c for c, cap in enumerate(caps) if not _exceeds(need, cap)]
            pool = fitting or list(range(chip.n_cores))
            core = min(pool, key=lambda c: (load[c], c))
            load[core] += 1
            if fitting:
                msg = (f"layer {n!r}: no free core left ({len(items)} layers, {chip.name} has "
                       f"{chip.n_cores} cores, one layer per core); placed on core {core} "
                       f"with another layer")
                out.append(Violation(n, n, "cores", len(items), chip.n_cores, msg))
            else:
                need_s = ", ".join(f"{v} {_LABEL[k]}" for k, v in need.items() if v)
                msg = (f"layer {n!r}: no {chip.name} core holds its {need_s} at once; placed "
                       f"on core {core}")
                out.append(Violation(n, n, "no_core", need_s, "see chip core memories", msg))
        L.parts[i] = L.parts[i]._replace(core=core)


def _place_passive(graph: G.Graph, layers: dict[str, Layer], layer_of: dict[str, str],
                   anchor: dict[str, str], active: list[str]) -> None:
    """Layers that need no memory sit on the first core of their producer's layer (after the
    Input: of their first consumer's layer)."""
    inp = graph.input_node()
    pending = [n for n in layers if n not in active]
    for _ in range(len(pending) + 1):
        left = []
        for n in pending:
            L = layers[n]
            src = anchor.get(n)
            if src is not None and src != inp:
                host = layers[layer_of[src]]
            else:
                cons = [layer_of[v] for m in L.nodes for v in graph.consumers(m)
                        if layer_of[v] != n]
                host = layers[cons[0]] if cons else None
            if host is None or not host.parts or host.parts[0].core < 0:
                left.append(n)
                continue
            L.parts = [Part(host.parts[0].core, 0, L.channels)]
        if not left:
            return
        pending = left
    for n in pending:    # nothing on-chip to sit next to (e.g. Input -> Readout)
        layers[n].parts = [Part(0, 0, layers[n].channels)]
