"""Auto-Spikformer's search space and fitness (seed ``auto-spikformer`` §4, Table 1, eq. 6).

A candidate is a Spikformer (``models.spikformer``, spike shortcuts) with one embedding width,
per block an MLP ratio, a head count, a neuron threshold ``v_th`` and a membrane time constant
``tau`` (steps), and one number of time steps ``T``: the paper's transformer space S_T joined
with its SNN space S_S (threshold x d, tau x d, time step). The attention neuron of every block
keeps its threshold 0.5 (Spikformer's ``attn_v_th``) and takes the block's tau.

Shipped space (scaled for a 2-core CPU; the paper's S_Ts is embed 336..384, MLP 3..4, heads
6 / 12, depth 2..4 on CIFAR-100):

    name    embed dims   MLP ratio    heads   depth   threshold            tau          T
    digits  32, 48, 64   3, 3.5, 4    2, 4    1, 2    0.6..2.0 step 0.2    1.25, 2, 10  2..6
    digits-d2  the same at depth 2 only (311,040 members; served by the digits supernet)

built for the ``digits`` workload upsampled to 16x16 (1 channel, 10 classes) with max pools
after SPS stages 1 and 2 (16x16 -> 8x8 -> 4x4 = 16 tokens). Why not the native 8x8: the SPS
stem's first stages are D/8 and D/4 channels wide, and a stem of 2-4 binary channels at 8x8
loses most of the image (a fixed width-32 Spikformer reached 47% validation after 8 epochs at
8x8; the width-64 member of this space 83% after 6 epochs at 16x16, its stem 8 channels wide,
and the one-shot supernet's largest member 97% after 20 epochs). The pools keep the token
count, and so the blocks' cost on a chip, small. ``load_space`` reads the same keys from a
TOML file.

Evolution (``models.search.evolution.evolve``, the same loop as AutoST) with the paper's
settings (§5.1): 50 random candidates, the 20 best as parents, 20 generations, crossover
probability Pd = 0.3 and mutation probability Pm = 0.4. Pd is read as the share of each
generation's children made by crossover (15 of 50; the other 35 are mutants) and Pm as the
probability that a mutant re-draws each gene (depth, width and T included), the usual
meanings of a crossover rate and a per-gene mutation rate; the paper does not say more.

Fitness (eq. 6): F_AEB = alpha E' + (1 - alpha) A', both min-max scaled to [0, 1] over the
candidates evaluated so far; E' = (E_max - E) / (E_max - E_min), so that lower energy scores
higher (the paper's text leaves the sign open, seed-facts), A' = (A - A_min) / (A_max - A_min).
A term whose values are all equal scales to 0 (it does not rank anyone).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from .space import InputSpec, SearchSpaceError, _choices, _range, read_space_toml

PAPER_SETTINGS = {"population": 50, "parents": 20, "generations": 20, "crossovers": 15,
                  "mutations": 35, "m_prob": 0.4, "s_prob": 0.4}
DEFAULT_ALPHA = 0.5


def _fmt(values) -> str:
    return ",".join(f"{v:g}" for v in values)


@dataclass(frozen=True)
class Candidate:
    """One Spikformer: width, per-block MLP ratio / heads / threshold / tau, and T."""

    embed_dim: int
    mlp_ratios: tuple
    heads: tuple
    v_th: tuple
    tau: tuple
    T: int

    def __post_init__(self):
        for k in ("mlp_ratios", "heads", "v_th", "tau"):
            object.__setattr__(self, k, tuple(getattr(self, k)))
        n = {len(self.mlp_ratios), len(self.heads), len(self.v_th), len(self.tau)}
        if len(n) != 1 or not self.heads:
            raise SearchSpaceError(f"candidate needs one MLP ratio, head count, threshold and "
                                   f"tau per block (>= 1 block), got {len(self.mlp_ratios)}, "
                                   f"{len(self.heads)}, {len(self.v_th)}, {len(self.tau)}")
        for i, v in enumerate(self.v_th):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SearchSpaceError(f"candidate block {i}: threshold v_th must be > 0, "
                                       f"got {v!r}")
        for i, t in enumerate(self.tau):
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 1):
                raise SearchSpaceError(f"candidate block {i}: tau must be >= 1 (time steps), "
                                       f"got {t!r}")
        if isinstance(self.T, bool) or int(self.T) != self.T or self.T < 1:
            raise SearchSpaceError(f"candidate T must be an integer >= 1, got {self.T!r}")
        object.__setattr__(self, "T", int(self.T))

    @property
    def depth(self) -> int:
        return len(self.heads)

    @property
    def structure_key(self) -> str:
        """The part that decides the graph's shape (what a chip must fit): width, depth, MLP
        widths and heads; thresholds, taus and T change activity, not the mapping."""
        return (f"D{self.embed_dim}-L{self.depth}-r{_fmt(self.mlp_ratios)}-h"
                f"{_fmt(self.heads)}")

    @property
    def key(self) -> str:
        """Canonical text, e.g. ``D24-L2-r3,4-h2,4-th1,1.4-tau2,10-T4``."""
        return (f"{self.structure_key}-th{_fmt(self.v_th)}-tau{_fmt(self.tau)}-T{self.T}")

    def to_dict(self) -> dict:
        return {"embed_dim": self.embed_dim, "depth": self.depth,
                "mlp_ratios": list(self.mlp_ratios), "heads": list(self.heads),
                "v_th": list(self.v_th), "tau": list(self.tau), "T": self.T}

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        return cls(int(d["embed_dim"]), tuple(d["mlp_ratios"]), tuple(d["heads"]),
                   tuple(d["v_th"]), tuple(d["tau"]), int(d["T"]))

    def model_config(self, inputs: InputSpec) -> dict:
        """Keyword arguments of the zoo's ``spikformer`` family (``models.build``)."""
        return {"img_size": inputs.img_size, "in_channels": inputs.in_channels,
                "num_classes": inputs.num_classes, "T": self.T, "dims": self.embed_dim,
                "depths": self.depth, "heads": list(self.heads),
                "mlp_ratio": [float(r) for r in self.mlp_ratios],
                "pool_stages": list(inputs.pool_stages),
                "block_neurons": [{"v_th": float(v), "tau": float(t)}
                                  for v, t in zip(self.v_th, self.tau)]}


def _positive(name: str, values, *, low: float, strict: bool, integer: bool = False) -> tuple:
    """A choice list whose values must be > low (strict) or >= low: the model's range."""
    vals = list(values) if isinstance(values, (list, tuple)) else None
    if not vals:
        raise SearchSpaceError(f"search space {name}: empty choice list ({values!r})")
    out = []
    for v in vals:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v > low if strict else v >= low) and (not integer or int(v) == v)
        if not ok:
            rule = f"{'>' if strict else '>='} {low:g}"
            kind = "integers" if integer else "numbers"
            raise SearchSpaceError(f"search space {name}: values must be {kind} {rule}, "
                                   f"got {v!r}")
        out.append(int(v) if integer or int(v) == v else round(float(v), 10))
    if len(set(out)) != len(out):
        raise SearchSpaceError(f"search space {name}: repeated values in {vals}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class AutoSpikformerSpace:
    """Transformer choices x per-block neuron choices x T, for models built for ``inputs``
    (its ``T`` is unused: T is searched). Bad values raise :class:`SearchSpaceError` naming the
    key: thresholds must be > 0, taus >= 1, T integers >= 1 (the neurons' valid range)."""

    name: str
    embed_dims: tuple
    mlp_ratios: tuple
    heads: tuple
    depths: tuple
    thresholds: tuple
    taus: tuple
    time_steps: tuple
    inputs: InputSpec = field(default_factory=InputSpec)
    description: str = ""

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "embed_dims", _choices("embed_dim", self.embed_dims, multiple_of=8))
        set_(self, "mlp_ratios", _choices("mlp_ratio", self.mlp_ratios, number=float))
        set_(self, "heads", _choices("num_heads", self.heads))
        set_(self, "depths", _choices("depth", self.depths))
        set_(self, "thresholds", _positive("threshold", self.thresholds, low=0, strict=True))
        set_(self, "taus", _positive("tau", self.taus, low=1, strict=False))
        set_(self, "time_steps", _positive("T", self.time_steps, low=1, strict=False,
                                           integer=True))
        bad = [(h, d) for h in self.heads for d in self.embed_dims if d % h]
        if bad:
            raise SearchSpaceError(f"search space {self.name!r}: every head count must divide "
                                   f"every embedding width, but {bad[0][0]} heads / width "
                                   f"{bad[0][1]} do not")

    # ------------------------------------------------------------------ evolution protocol
    def _block(self, rng: random.Random) -> tuple:
        return (rng.choice(self.mlp_ratios), rng.choice(self.heads), rng.choice(self.thresholds),
                rng.choice(self.taus))

    @staticmethod
    def _make(width: int, blocks: list, T: int) -> Candidate:
        r, h, v, t = zip(*blocks)
        return Candidate(width, r, h, v, t, T)

    def sample(self, rng: random.Random) -> Candidate:
        """Uniform member: depth, each block's genes, width, T."""
        depth = rng.choice(self.depths)
        blocks = [self._block(rng) for _ in range(depth)]
        return self._make(rng.choice(self.embed_dims), blocks, rng.choice(self.time_steps))

    def mutate(self, p: Candidate, rng: random.Random, m_prob: float,
               s_prob: float) -> Candidate:
        """Depth re-drawn with ``s_prob`` (new blocks random, removed ones cut from the end),
        every block gene (MLP ratio, heads, threshold, tau) with ``m_prob``, width and T with
        ``s_prob``."""
        blocks = list(zip(p.mlp_ratios, p.heads, p.v_th, p.tau))
        if rng.random() < s_prob:
            new = rng.choice(self.depths)
            blocks = (blocks + [self._block(rng) for _ in range(new - len(blocks))])[:new]
        choices = (self.mlp_ratios, self.heads, self.thresholds, self.taus)
        blocks = [tuple(rng.choice(c) if rng.random() < m_prob else g
                        for g, c in zip(b, choices)) for b in blocks]
        width = rng.choice(self.embed_dims) if rng.random() < s_prob else p.embed_dim
        T = rng.choice(self.time_steps) if rng.random() < s_prob else p.T
        return self._make(width, blocks, T)

    def crossover(self, p1: Candidate, p2: Candidate, rng: random.Random) -> Candidate:
        """Every gene from either parent (parents of the same depth)."""
        b1 = zip(p1.mlp_ratios, p1.heads, p1.v_th, p1.tau)
        b2 = zip(p2.mlp_ratios, p2.heads, p2.v_th, p2.tau)
        blocks = [tuple(rng.choice([x, y]) for x, y in zip(a, b)) for a, b in zip(b1, b2)]
        return self._make(rng.choice([p1.embed_dim, p2.embed_dim]), blocks,
                          rng.choice([p1.T, p2.T]))

    def contains(self, c: Candidate) -> str | None:
        """None when ``c`` is a member, else why not."""
        if c.embed_dim not in self.embed_dims:
            return f"embed_dim {c.embed_dim} not in {list(self.embed_dims)}"
        if c.depth not in self.depths:
            return f"depth {c.depth} not in {list(self.depths)}"
        if c.T not in self.time_steps:
            return f"T {c.T} not in {list(self.time_steps)}"
        for i, (r, h, v, t) in enumerate(zip(c.mlp_ratios, c.heads, c.v_th, c.tau)):
            for what, val, allowed in (("MLP ratio", r, self.mlp_ratios),
                                       ("heads", h, self.heads), ("threshold", v,
                                                                  self.thresholds),
                                       ("tau", t, self.taus)):
                if val not in allowed:
                    return f"block {i} {what} {val:g} not in {list(allowed)}"
        return None

    def largest(self) -> dict:
        """The supernet's configuration (``spikformer`` family keywords): the widest, deepest
        member with the widest MLP; every subnet's weights are leading slices of its weights."""
        D, L = max(self.embed_dims), max(self.depths)
        return {"img_size": self.inputs.img_size, "in_channels": self.inputs.in_channels,
                "num_classes": self.inputs.num_classes, "T": max(self.time_steps), "dims": D,
                "depths": L, "heads": [min(self.heads)] * L,
                "mlp_ratio": [float(max(self.mlp_ratios))] * L,
                "pool_stages": list(self.inputs.pool_stages)}

    def default_neurons(self, c: Candidate, v_th: float = 1.0, tau: float = 2.0) -> Candidate:
        """``c`` with Spikformer's default neurons (v_th 1, tau 2) in every block."""
        return Candidate(c.embed_dim, c.mlp_ratios, c.heads, (v_th,) * c.depth,
                         (tau,) * c.depth, c.T)

    def to_dict(self) -> dict:
        d = {k: list(getattr(self, k)) for k in ("embed_dims", "mlp_ratios", "heads", "depths",
                                                 "thresholds", "taus", "time_steps")}
        inp = dict(vars(self.inputs))
        inp["pool_stages"] = list(self.inputs.pool_stages)
        return {"name": self.name, "description": self.description, **d, "inputs": inp}


def space_from_dict(d: dict) -> AutoSpikformerSpace:
    """Inverse of :meth:`AutoSpikformerSpace.to_dict` (plain data travels to workers)."""
    inp = dict(d["inputs"])
    inp["pool_stages"] = tuple(inp["pool_stages"])
    return AutoSpikformerSpace(d["name"], d["embed_dims"], d["mlp_ratios"], d["heads"],
                               d["depths"], d["thresholds"], d["taus"], d["time_steps"],
                               InputSpec(**inp), d.get("description", ""))


class Feasibility:
    """Which candidates the search may evaluate: members of ``space`` that pass every check
    (``checks``: callables ``candidate -> None | reason``, e.g. "fits chip X"). Rejected
    candidates are remembered with their reason (``rejected``: key -> reason), so a search
    reports them instead of silently dropping them."""

    def __init__(self, space: AutoSpikformerSpace, checks: tuple = ()):
        self.space, self.checks = space, tuple(checks)
        self.rejected: dict[str, str] = {}

    def reason(self, c: Candidate) -> str | None:
        why = self.space.contains(c)
        if why:
            return why
        for check in self.checks:
            why = check(c)
            if why:
                self.rejected[c.key] = why
                return why
        return None


# ----------------------------------------------------------------------------- fitness
def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise SearchSpaceError(f"alpha (the energy weight of F_AEB) must be in [0, 1], "
                               f"got {alpha!r}")
    return float(alpha)


def minmax(values, *, lower_is_better: bool = False) -> list[float]:
    """Min-max scaling to [0, 1] (1 = best); all-equal values scale to 0."""
    lo, hi = min(values), max(values)
    if hi == lo:
        return [0.0] * len(values)
    return [((hi - v) if lower_is_better else (v - lo)) / (hi - lo) for v in values]


def f_aeb(accuracies, energies, alpha: float = DEFAULT_ALPHA) -> list[float]:
    """F_AEB = alpha E' + (1 - alpha) A' (eq. 6; module doc), one value per candidate."""
    alpha = check_alpha(alpha)
    if len(accuracies) != len(energies) or not accuracies:
        raise ValueError(f"F_AEB needs equal, non-empty lists, got {len(accuracies)} "
                         f"accuracies and {len(energies)} energies")
    for what, vals in (("accuracy", accuracies), ("energy", energies)):
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"F_AEB: every {what} must be finite")
    e = minmax(energies, lower_is_better=True)
    a = minmax(accuracies)
    return [alpha * ei + (1 - alpha) * ai for ei, ai in zip(e, a)]


def aeb_fitness(alpha: float = DEFAULT_ALPHA, energy: str = "energy_j"):
    """``fitness`` for :func:`models.search.evolution.evolve`: raw evaluations are dicts with
    ``accuracy`` and the energy under the key ``energy``."""
    alpha = check_alpha(alpha)

    def fitness(raws: list) -> list:
        return f_aeb([r["accuracy"] for r in raws], [r[energy] for r in raws], alpha)
    return fitness


# ----------------------------------------------------------------------------- spaces
DIGITS = InputSpec(img_size=16, in_channels=1, num_classes=10, T=4, pool_stages=(1, 2))

SPACES: dict[str, AutoSpikformerSpace] = {
    "digits": AutoSpikformerSpace(
        "digits", (32, 48, 64), (3, 3.5, 4), (2, 4), (1, 2),
        tuple(round(0.6 + 0.2 * i, 1) for i in range(8)), (1.25, 2, 10), (2, 3, 4, 5, 6),
        DIGITS, "Auto-Spikformer S_T x S_S scaled for digits at 16x16 (1 channel, 10 "
                "classes, pools after SPS stages 1 and 2: 4x4 tokens)"),
}
# the digits space at depth 2 only: two blocks' genes (MLP ratio, heads, threshold, tau) decide
# a member's energy, so the front is a combination of choices that random draws rarely make;
# the digits supernet serves it (a subspace). The fronts study's harder case (README).
SPACES["digits-d2"] = replace(SPACES["digits"], name="digits-d2", depths=(2,),
                              description="the digits space at depth 2 only")

_KEYS = {"name", "description", "embed_dim", "mlp_ratio", "num_heads", "depth", "threshold",
         "tau", "T", "inputs"}


def get_space(name) -> AutoSpikformerSpace:
    """A shipped space by name, or a TOML file (:func:`load_space`)."""
    if name in SPACES:
        return SPACES[name]
    if str(name).endswith(".toml") or Path(str(name)).is_file():
        return load_space(name)
    raise SearchSpaceError(f"unknown Auto-Spikformer search space {name!r}; shipped: "
                           f"{', '.join(SPACES)}, or a .toml file")


def load_space(path) -> AutoSpikformerSpace:
    """A space from TOML: ``embed_dim``, ``mlp_ratio``, ``num_heads``, ``depth``,
    ``threshold``, ``tau``, ``T`` (each a list or a ``{min, max, step}`` table), optional
    ``name``, ``description`` and ``[inputs]`` (InputSpec fields)."""
    p = Path(path)
    data = read_space_toml(p)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SearchSpaceError(f"{p}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    missing = [k for k in ("embed_dim", "mlp_ratio", "num_heads", "depth", "threshold", "tau",
                           "T") if k not in data]
    if missing:
        raise SearchSpaceError(f"{p}: missing {', '.join(missing)}")
    try:
        inputs = InputSpec(**data.get("inputs", {}))
        ranges = [_range(k, data[k]) for k in ("embed_dim", "mlp_ratio", "num_heads", "depth",
                                                "threshold", "tau", "T")]
        return AutoSpikformerSpace(str(data.get("name", p.stem)), *ranges, inputs=inputs,
                                   description=str(data.get("description", "")))
    except (SearchSpaceError, TypeError) as e:
        raise SearchSpaceError(f"{p}: {e}") from None


__all__ = ["DEFAULT_ALPHA", "PAPER_SETTINGS", "SPACES", "AutoSpikformerSpace", "Candidate",
           "Feasibility", "aeb_fitness", "check_alpha", "f_aeb", "get_space", "load_space",
           "minmax", "space_from_dict"]
