"""``RunResult``: what an engine returns. Engines emit records; reports and plots consume them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.ir.counts import CATEGORIES
from neurosim.ir.summary import node_rows, short_repr, summary


def _plain(v):
    """JSON-ready copy: numpy -> lists / Python scalars; dict keys -> str."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def check_labels(labels, n: int, n_classes: int | None = None) -> np.ndarray | None:
    """``labels`` as int64 [n], or None; an error names what is wrong (never broadcast)."""
    if labels is None:
        return None
    a = np.asarray(labels)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"labels: expected one label per input ({n}), got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or
                       (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)))):
        raise ValueError(f"labels: expected integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if n_classes is not None and a.size and (a.min() < 0 or a.max() >= n_classes):
        bad = a[(a < 0) | (a >= n_classes)][0]
        raise ValueError(f"labels: {bad} is outside the model's classes 0..{n_classes - 1}")
    return a


@dataclass(repr=False)
class RunResult:
    """One simulation of ``B`` inputs on a chip.

    logits [B, K] float64; ``spike_counts[node]`` [B, T] spikes per time step (summed over the
    population); ``counts[node][category]`` and ``core_counts[core][category]`` summed over the
    inputs; ``latency_s`` [B] first input to decision per inference; ``ticks`` [B] clock ticks
    (sync) per inference; ``timeline`` per-tick or per-event records of the first input;
    ``stats`` engine statistics (saturations, stalls, drops, FIFO occupancy, wall time);
    ``spikes`` full spike tensors [T, B, *shape] when recorded; ``energy`` the energy breakdown
    (``neurosim.simulate`` attaches it). ``print(result)`` shows a short table
    (:func:`neurosim.ir.summary.summary`); ``to_dict()`` / ``to_frame()`` hold everything.
    """

    mode: str
    chip: str
    model: str
    logits: np.ndarray
    spike_counts: dict[str, np.ndarray]
    counts: dict[str, dict[str, int]]
    core_counts: dict[int, dict[str, int]]
    latency_s: np.ndarray
    ticks: np.ndarray
    timeline: dict
    stats: dict
    labels: np.ndarray | None = None
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    energy: dict | None = None

    def __post_init__(self):
        self.labels = check_labels(self.labels, self.logits.shape[0],
                                   self.logits.shape[1] if self.logits.ndim == 2 else None)

    @property
    def n(self) -> int:
        return int(self.logits.shape[0])

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def accuracy(self) -> float | None:
        if self.labels is None:
            return None
        return float((self.predictions == self.labels).mean())

    def totals(self) -> dict[str, int]:
        """Counts summed over all nodes, by category."""
        out = dict.fromkeys(CATEGORIES, 0)
        for c in self.counts.values():
            for k, v in c.items():
                out[k] += int(v)
        return out

    def per_inference(self) -> dict[str, float]:
        return {k: v / self.n for k, v in self.totals().items()}

    @property
    def energy_j(self) -> float | None:
        return None if self.energy is None else self.energy["total_j"]

    def firing_rates(self, sizes: dict[str, int]) -> dict[str, float]:
        """Mean spikes per neuron per time step, per population."""
        return {n: float(c.sum() / (c.size * sizes[n])) for n, c in self.spike_counts.items()}

    def __str__(self) -> str:
        return summary(self)

    def __repr__(self) -> str:
        return short_repr(self)

    def to_rows(self) -> list[dict]:
        """One dict per graph node: spikes, operation counts and (when priced) energy per
        inference (:func:`neurosim.ir.summary.node_rows`)."""
        return node_rows(self)

    def to_frame(self):
        """``to_rows()`` as a pandas DataFrame indexed by node (pandas is optional: without it
        an ImportError says so; ``to_rows()`` / ``to_dict()`` need nothing)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("RunResult.to_frame needs pandas (pip install pandas); "
                              "to_rows() gives the same rows as dicts, to_dict() everything"
                              ) from None
        return pd.DataFrame(self.to_rows()).set_index("node")

    def to_dict(self) -> dict:
        d = {"mode": self.mode, "chip": self.chip, "model": self.model, "n": self.n,
             "accuracy": self.accuracy, "logits": self.logits, "predictions": self.predictions,
             "labels": self.labels, "spike_counts": self.spike_counts, "counts": self.counts,
             "core_counts": self.core_counts, "totals": self.totals(),
             "latency_s": self.latency_s, "mean_latency_s": float(np.mean(self.latency_s)),
             "ticks": self.ticks, "timeline": self.timeline, "stats": self.stats,
             "energy": self.energy}
        return _plain(d)
