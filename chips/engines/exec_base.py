"""What every executor shares: the count categories, per-part sums and splits, and ``Exec``,
the base of one node's batched time step (``executors`` module doc).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from neurosim.ir import graph as G
from neurosim.ir.counts import CATEGORIES

CAT = {c: i for i, c in enumerate(CATEGORIES)}


def add_counts(counts: np.ndarray, cat: str, per_part) -> None:
    """Add ``per_part`` ([parts], or [B, parts] per input) to category ``cat`` of ``counts``
    [B, parts, categories] (or one input's [parts, categories])."""
    counts[..., CAT[cat]] += per_part


def part_sums(per_channel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum a per-channel vector over contiguous parts starting at ``starts`` (int64); a
    [B, C] array gives [B, parts]."""
    a = np.asarray(per_channel, np.int64)
    return np.add.reduceat(a, starts, axis=a.ndim - 1)


def split_total(total, sizes: np.ndarray) -> np.ndarray:
    """Split an integer count over parts proportionally to ``sizes`` (exact: remainder to the
    first parts, so the parts sum to the total). ``total`` an int gives [parts]; an int64
    array [B] gives [B, parts], row b the split of total[b]."""
    sizes = np.asarray(sizes, np.int64)
    t = np.asarray(total, np.int64)
    base = t[..., None] * sizes // sizes.sum()
    rem = t - base.sum(axis=-1)
    base += np.arange(len(sizes)) < rem[..., None]
    return base


class Exec(ABC):
    """Base executor of one node: ``parts`` are (c0, c1) output-channel ranges, one per mapped
    core. ``step_batch(ins, counts)`` runs one time step of B inputs: ``ins`` the node's inputs
    with the input index first ([B, H, W, C] maps, [B, C] vectors, float64), ``counts`` [B,
    parts, categories] (int64) to add into; it returns the output [B, ...]. ``step(ins,
    counts)`` is the same for one input without the batch axis (counts [parts, categories]).
    State (membranes, readout sums) is per input and cleared by ``reset``."""

    def __init__(self, op: G.Node, kinds: list[str], parts: list[tuple[int, int]], engine_opts):
        self.op, self.kinds, self.parts = op, kinds, parts
        self.widths = np.array([c1 - c0 for c0, c1 in parts], np.int64)
        self.starts = np.array([c0 for c0, _ in parts], np.int64)
        self.inner = int(np.prod(op.shape[1:])) if len(op.shape) > 1 else 1
        self.sizes = self.widths * self.inner
        self.opts = engine_opts
        self.last_events = 0            # synaptic events delivered by the kernel (cross-check)
        self.dense_steps = 0            # input-steps executed on the dense path
        self.scatter_steps = 0          # input-steps executed on the scatter path
        self.out_sums = None            # (last output, its per-input channel sums) if kept

    def reset(self) -> None:
        pass

    def per_part_sizes(self) -> np.ndarray:
        return self.sizes

    def graded_out(self, counts, out=None) -> None:
        add_counts(counts, "graded_values", self.sizes)

    def step(self, ins: list[np.ndarray], counts: np.ndarray) -> np.ndarray:
        return self.step_batch([a[None] for a in ins], counts[None])[0]

    @abstractmethod
    def step_batch(self, ins: list[np.ndarray], counts: np.ndarray) -> np.ndarray:
        """One time step of B inputs (class doc)."""
