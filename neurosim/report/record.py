"""Reading a run record (``result.json`` as a dict): node sizes and types, the mapping's
layers, firing rates and energy per layer, the runs and the primary (exact) run. Shared by the
markdown report, the CSV tables and the plots.
"""
from __future__ import annotations

import hashlib

import numpy as np


def node_sizes(rec) -> dict[str, int]:
    return {r["node"]: r["neurons"] for r in rec["graph"]["nodes"]}


def node_types(rec) -> dict[str, str]:
    return {r["node"]: r["type"] for r in rec["graph"]["nodes"]}


def layer_of_nodes(rec, chip: str) -> dict[str, str]:
    m = rec["mappings"].get(chip, {})
    return {n: L for L, nodes in m.get("layer_nodes", {}).items() for n in nodes}


def layer_order(rec, chip: str) -> list[str]:
    """Mapped layers in network order (first appearance of their nodes in graph order)."""
    lo = layer_of_nodes(rec, chip)
    return list(dict.fromkeys(lo[r["node"]] for r in rec["graph"]["nodes"] if r["node"] in lo))


def firing_rates(rec, run) -> list[tuple[str, float]]:
    """(population, spikes per neuron per time step) in network order."""
    sizes = node_sizes(rec)
    order = [r["node"] for r in rec["graph"]["nodes"]]
    out = []
    for n in order:
        sc = run["spike_counts"].get(n)
        if sc is None or not sizes.get(n):
            continue
        a = np.asarray(sc, dtype=float)                     # [B, T]
        out.append((n, float(a.sum() / (a.size * sizes[n]))))
    return out


def layer_energy(rec, run) -> list[tuple[str, dict]]:
    """Dynamic energy per inference by category, summed over each mapped layer's nodes."""
    n = run["n"]
    layer_of = layer_of_nodes(rec, run["chip"])
    acc: dict[str, dict] = {}
    for node, cats in run["energy"]["by_node_category_j"].items():
        L = layer_of.get(node, node)
        d = acc.setdefault(L, {})
        for c, v in cats.items():
            d[c] = d.get(c, 0.0) + v / n
    order = layer_order(rec, run["chip"]) or list(acc)
    return [(L, acc[L]) for L in order if L in acc and sum(acc[L].values()) > 0]


def runs_of(rec) -> list[dict]:
    return rec["runs"]


def primary_run(rec) -> dict | None:
    for r in rec["runs"]:
        if r["mode"] in ("sync", "async-windowed"):
            return r
    return rec["runs"][0] if rec["runs"] else None


SLUG_MAX = 120         # characters: a file name (plus suffixes) stays under 255 bytes


def slug(label: str) -> str:
    """A run label as a file-name part: "/" replaced; a label longer than ``SLUG_MAX`` (a chip
    variant with many overrides) is cut and ended with a hash of the whole label, so distinct
    labels keep distinct file names."""
    s = label.replace("/", "_")
    if len(s.encode()) <= SLUG_MAX:
        return s
    digest = hashlib.sha1(label.encode()).hexdigest()[:10]
    return s.encode()[:SLUG_MAX - 11].decode(errors="ignore") + "-" + digest


__all__ = ["firing_rates", "layer_energy", "layer_of_nodes", "layer_order", "node_sizes",
           "node_types", "primary_run", "runs_of", "slug"]
