"""AutoST search spaces, architectures, parameter windows and legality (seed ``autost`` §3.3).

An architecture (the released ``evolution.py``'s candidate tuple ``(depth, mlp_ratio x depth,
num_heads x depth, embed_dim)``) is one embedding width, a depth and a per-block MLP ratio and
head count. A search space is the product of four choice lists plus the input the models are
built for; parameter counts (and so legality) depend on that input.

Spaces shipped (paper Table 2; repo ``experiments/search_space/Spikformer_space_*.yaml``, which
is what the published searches ran, so depth follows the yaml where the two differ):

    name    embed dims          MLP ratio   heads   depth   window (paper "# Params")
    tiny    192..384 step 64    3, 4, 5     4, 8    1..10   4M..5M   (paper Table 2: depth 1..8)
    small   256..512 step 64    3, 4, 5     4, 8    2..12   11M..15M
    base    384..768 step 64    3..6        4, 8    4..15   25M..35M

with the input ``evolution.py`` checks the window at: 32x32x3 images, 100 classes, T = 4, 8x8
tokens. The ``micro-*`` spaces have the same structure with every embedding width divided by
8 (so the models train in minutes on a CPU) and are built for the ``motion`` workload (32x32
event frames, 2 polarities, 6 classes, T = 4). Their default windows are this project's choice.

Bad input raises :class:`SearchSpaceError` naming the key and value: empty choice lists,
non-positive values, widths that are not multiples of 8 (the SPS stem uses D/8), head counts
that do not divide every width (the product would hold models that cannot be built), windows
with low > high, and windows that no architecture of the space meets (with the nearest counts
that exist).
"""
from __future__ import annotations

import difflib
import math
import random
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path


class SearchSpaceError(ValueError):
    """A search space, architecture or parameter window that cannot be used; the message names
    the key and the value."""


@dataclass(frozen=True)
class InputSpec:
    """What the searched models are built for: image side (pixels), input channels, classes,
    time steps and the SPS stages followed by a max pool (CIFAR: (2, 3) -> 8x8 tokens)."""

    img_size: int = 32
    in_channels: int = 3
    num_classes: int = 100
    T: int = 4
    pool_stages: tuple = (2, 3)

    def __post_init__(self):
        for k in ("img_size", "in_channels", "num_classes", "T"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SearchSpaceError(f"inputs.{k} must be an integer >= 1, got {v!r}")
        ps = tuple(self.pool_stages)
        if len(set(ps)) != len(ps) or not set(ps) <= {0, 1, 2, 3}:
            raise SearchSpaceError(f"inputs.pool_stages must list distinct SPS stages among "
                                   f"0..3, got {list(ps)}")
        object.__setattr__(self, "pool_stages", tuple(sorted(ps)))

    @property
    def tokens(self) -> int:
        """Sequence length n: (token grid side)^2, each pool mapping H to ceil(H / 2)."""
        h = self.img_size
        for _ in self.pool_stages:
            h = (h + 1) // 2
        return h * h


@dataclass(frozen=True)
class Arch:
    """One candidate: embedding width, and per block the MLP ratio and the head count."""

    embed_dim: int
    mlp_ratios: tuple
    heads: tuple

    def __post_init__(self):
        object.__setattr__(self, "mlp_ratios", tuple(self.mlp_ratios))
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        if len(self.mlp_ratios) != len(self.heads) or not self.heads:
            raise SearchSpaceError(f"architecture needs one MLP ratio and one head count per "
                                   f"block (>= 1 block), got {len(self.mlp_ratios)} ratios and "
                                   f"{len(self.heads)} head counts")

    @property
    def depth(self) -> int:
        return len(self.heads)

    def hidden(self, block: int) -> int:
        """MLP hidden width of block ``block``: int(embed_dim * ratio), as the model builds it."""
        return int(self.embed_dim * self.mlp_ratios[block])

    @property
    def key(self) -> str:
        """Canonical text of the candidate, e.g. ``D48-L2-r3,4-h8,4`` (unique per candidate)."""
        r = ",".join(f"{x:g}" for x in self.mlp_ratios)
        return f"D{self.embed_dim}-L{self.depth}-r{r}-h{','.join(map(str, self.heads))}"

    def to_dict(self) -> dict:
        return {"embed_dim": self.embed_dim, "depth": self.depth,
                "mlp_ratios": list(self.mlp_ratios), "heads": list(self.heads)}

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        return cls(int(d["embed_dim"]), tuple(d["mlp_ratios"]), tuple(d["heads"]))

    def model_config(self, inputs: InputSpec) -> dict:
        """Keyword arguments of the zoo's ``autost`` family (``models.build("autost", cfg)``)."""
        return {"img_size": inputs.img_size, "in_channels": inputs.in_channels,
                "num_classes": inputs.num_classes, "T": inputs.T, "dims": self.embed_dim,
                "depths": self.depth, "heads": list(self.heads),
                "mlp_ratio": [float(r) for r in self.mlp_ratios],
                "pool_stages": list(inputs.pool_stages)}


def _choices(name: str, values, *, multiple_of: int = 1, number=int) -> tuple:
    vals = list(values) if isinstance(values, (list, tuple)) else None
    if not vals:
        raise SearchSpaceError(f"search space {name}: empty choice list ({values!r}); give at "
                               f"least one value")
    out = []
    for v in vals:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v)
        if not ok or (number is int and int(v) != v):
            kind = "positive integers" if number is int else "positive numbers"
            raise SearchSpaceError(f"search space {name}: values must be {kind}, got {v!r}")
        if int(v) == v and int(v) % multiple_of:
            raise SearchSpaceError(f"search space {name}: {v} is not a multiple of {multiple_of}")
        out.append(int(v) if int(v) == v else float(v))
    if len(set(out)) != len(out):
        raise SearchSpaceError(f"search space {name}: repeated values in {vals}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class SearchSpace:
    """The product of embedding widths x depths x (per block) MLP ratios x head counts, for
    models built for ``inputs``. ``window``: the default parameter window (low, high)."""

    name: str
    embed_dims: tuple
    mlp_ratios: tuple
    heads: tuple
    depths: tuple
    inputs: InputSpec = field(default_factory=InputSpec)
    window: tuple | None = None
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "embed_dims", _choices("embed_dim", self.embed_dims,
                                                        multiple_of=8))
        object.__setattr__(self, "mlp_ratios", _choices("mlp_ratio", self.mlp_ratios,
                                                        number=float))
        object.__setattr__(self, "heads", _choices("num_heads", self.heads))
        object.__setattr__(self, "depths", _choices("depth", self.depths))
        bad = [(h, d) for h in self.heads for d in self.embed_dims if d % h]
        if bad:
            pairs = ", ".join(f"{h} heads / width {d}" for h, d in bad[:4])
            raise SearchSpaceError(f"search space {self.name!r} is contradictory: every head "
                                   f"count must divide every embedding width, but {pairs}"
                                   f"{' ...' if len(bad) > 4 else ''} do not")
        small = [(r, d) for r in self.mlp_ratios for d in self.embed_dims if int(d * r) < 1]
        if small:
            raise SearchSpaceError(f"search space {self.name!r}: MLP ratio {small[0][0]} gives "
                                   f"no hidden unit at width {small[0][1]}")
        if self.window is not None:
            object.__setattr__(self, "window", check_window(self.window))

    def sample(self, rng: random.Random) -> Arch:
        """A random member, drawn as the released code's ``get_random_cand``: depth, then each
        block's MLP ratio, then each block's head count, then the width, all uniform."""
        depth = rng.choice(self.depths)
        ratios = tuple(rng.choice(self.mlp_ratios) for _ in range(depth))
        heads = tuple(rng.choice(self.heads) for _ in range(depth))
        return Arch(rng.choice(self.embed_dims), ratios, heads)

    def mutate(self, p: Arch, rng: random.Random, m_prob: float, s_prob: float) -> Arch:
        """A mutant of ``p`` (released ``get_mutation``): the depth re-drawn with probability
        ``s_prob`` (new blocks random, removed blocks cut from the end), each block's MLP ratio
        and head count with ``m_prob``, the width with ``s_prob``."""
        ratios, heads, depth = list(p.mlp_ratios), list(p.heads), p.depth
        if rng.random() < s_prob:
            new = rng.choice(self.depths)
            if new > depth:
                ratios += [rng.choice(self.mlp_ratios) for _ in range(new - depth)]
                heads += [rng.choice(self.heads) for _ in range(new - depth)]
            ratios, heads, depth = ratios[:new], heads[:new], new
        ratios = [rng.choice(self.mlp_ratios) if rng.random() < m_prob else r for r in ratios]
        heads = [rng.choice(self.heads) if rng.random() < m_prob else h for h in heads]
        width = rng.choice(self.embed_dims) if rng.random() < s_prob else p.embed_dim
        return Arch(width, tuple(ratios), tuple(heads))

    def crossover(self, p1: Arch, p2: Arch, rng: random.Random) -> Arch:
        """A child of two parents of the same depth: every entry of the candidate tuple from
        either parent (released ``get_crossover``)."""
        ratios = tuple(rng.choice([x, y]) for x, y in zip(p1.mlp_ratios, p2.mlp_ratios))
        heads = tuple(rng.choice([x, y]) for x, y in zip(p1.heads, p2.heads))
        return Arch(rng.choice([p1.embed_dim, p2.embed_dim]), ratios, heads)

    def contains(self, arch: Arch) -> str | None:
        """None when ``arch`` is a member, else why not."""
        if arch.embed_dim not in self.embed_dims:
            return f"embed_dim {arch.embed_dim} not in {list(self.embed_dims)}"
        if arch.depth not in self.depths:
            return f"depth {arch.depth} not in {list(self.depths)}"
        for i, (r, h) in enumerate(zip(arch.mlp_ratios, arch.heads)):
            if r not in self.mlp_ratios:
                return f"block {i} MLP ratio {r:g} not in {list(self.mlp_ratios)}"
            if h not in self.heads:
                return f"block {i} heads {h} not in {list(self.heads)}"
        return None

    def size(self) -> int:
        """Number of distinct architectures in the space."""
        per_block = len(self.mlp_ratios) * len(self.heads)
        return len(self.embed_dims) * sum(per_block ** d for d in self.depths)

    def param_counts(self) -> list[int]:
        """Every parameter count a member can have, sorted (exact: a count depends only on the
        width, the depth and the sum of hidden widths, enumerated here)."""
        from .analytic import param_count_from
        out = set()
        for D in self.embed_dims:
            widths = sorted({int(D * r) for r in self.mlp_ratios})
            sums = {0}
            for L in range(1, max(self.depths) + 1):
                sums = {s + w for s in sums for w in widths}
                if L in self.depths:
                    out.update(param_count_from(D, L, s, self.inputs) for s in sums)
        return sorted(out)

    def param_range(self) -> tuple[int, int]:
        counts = self.param_counts()
        return counts[0], counts[-1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["inputs"]["pool_stages"] = list(self.inputs.pool_stages)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ----------------------------------------------------------------------------- windows
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "m": 1e6, "G": 1e9}


def _count(text: str, what: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMG]?)", t)
    if not m:
        raise SearchSpaceError(f"parameter window: cannot read the {what} bound {text!r}; write "
                               f"a count such as 100000, 100k, 0.1M or 4M")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def parse_window(text: str) -> tuple[float | None, float | None]:
    """``"0.1M:0.15M"`` -> (100000.0, 150000.0). Either bound may be left out (``":5M"``);
    suffixes k, M, G."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise SearchSpaceError(f"parameter window must be LOW:HIGH (e.g. 0.1M:0.15M or 4M:5M), "
                               f"got {text!r}")
    lo, hi = text.split(":")
    return check_window((_count(lo, "low"), _count(hi, "high")))


def check_window(window) -> tuple[float | None, float | None]:
    lo, hi = window
    if lo is not None and hi is not None and lo > hi:
        raise SearchSpaceError(f"parameter window {fmt_count(lo)}:{fmt_count(hi)} has low > "
                               f"high")
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def fmt_count(n: float | None) -> str:
    """Parameter counts for people: 4.18M, 120.5k, 950."""
    if n is None:
        return ""
    for scale, s in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{s}"
    return f"{n:g}"


def fmt_window(window) -> str:
    return f"{fmt_count(window[0]) or '0'}:{fmt_count(window[1]) or 'inf'}"


class Legality:
    """Which architectures the search may return: members of ``space`` whose parameter count
    lies in ``window`` (inclusive), and that pass every extra check (``checks``: callables
    ``arch -> None | reason``, e.g. "fits chip X"). The constructor raises when no member of
    the space meets the window, naming the nearest counts that exist and the shipped spaces
    whose range covers it."""

    def __init__(self, space: SearchSpace, window=None, checks: tuple = ()):
        from .analytic import param_count
        self.space, self._count = space, param_count
        self.window = check_window(window if window is not None else
                                   (space.window or (None, None)))
        self.checks = tuple(checks)
        lo, hi = self.window
        counts = space.param_counts()
        inside = [c for c in counts if (lo is None or c >= lo) and (hi is None or c <= hi)]
        if not inside:
            below = max((c for c in counts if lo is not None and c < lo), default=None)
            above = min((c for c in counts if hi is not None and c > hi), default=None)
            near = " and ".join(f"{w} {fmt_count(c)}" for w, c in
                                (("the largest below is", below), ("the smallest above is",
                                                                   above)) if c is not None)
            fits = [s for s in list_spaces() if s != space.name and _covers(get_space(s),
                                                                             self.window)]
            hint = f"; spaces with members in the window: {', '.join(fits)}" if fits else ""
            raise SearchSpaceError(
                f"no architecture of search space {space.name!r} has {fmt_window(self.window)} "
                f"parameters (its members have {fmt_count(counts[0])} to "
                f"{fmt_count(counts[-1])}; {near}){hint}")
        self.n_counts_inside = len(inside)

    def params(self, arch: Arch) -> int:
        return self._count(arch, self.space.inputs)

    def reason(self, arch: Arch) -> str | None:
        """None when ``arch`` is legal, else why not."""
        why = self.space.contains(arch)
        if why:
            return why
        p, (lo, hi) = self.params(arch), self.window
        if lo is not None and p < lo:
            return f"{fmt_count(p)} parameters, below the window {fmt_window(self.window)}"
        if hi is not None and p > hi:
            return f"{fmt_count(p)} parameters, above the window {fmt_window(self.window)}"
        for check in self.checks:
            why = check(arch)
            if why:
                return why
        return None

    def sample(self, rng: random.Random, max_draws: int = 100_000) -> Arch:
        """A random legal member (rejection sampling from :meth:`SearchSpace.sample`)."""
        for _ in range(max_draws):
            a = self.space.sample(rng)
            if self.reason(a) is None:
                return a
        raise SearchSpaceError(f"no legal architecture in {max_draws} random draws from space "
                               f"{self.space.name!r} with window {fmt_window(self.window)}; "
                               f"widen the window")


def _covers(space: SearchSpace, window) -> bool:
    lo, hi = window
    return any((lo is None or c >= lo) and (hi is None or c <= hi) for c in space.param_counts())


# ----------------------------------------------------------------------------- shipped spaces
_CIFAR100 = InputSpec(img_size=32, in_channels=3, num_classes=100, T=4, pool_stages=(2, 3))
_MOTION = InputSpec(img_size=32, in_channels=2, num_classes=6, T=4, pool_stages=(2, 3))
_PAPER = "AutoST paper Table 2 / repo experiments/search_space/Spikformer_space_{}.yaml"


def _paper_spaces() -> dict[str, SearchSpace]:
    rows = {  # name: (embed lo, hi), mlp ratios, depth lo, hi, paper window
        "tiny": ((192, 384), (3, 4, 5), (1, 10), (4e6, 5e6)),
        "small": ((256, 512), (3, 4, 5), (2, 12), (11e6, 15e6)),
        "base": ((384, 768), (3, 4, 5, 6), (4, 15), (25e6, 35e6)),
    }
    # micro windows: this project's choice, about the middle of each micro space's range
    micro_windows = {"tiny": (1e5, 1.5e5), "small": (2e5, 3e5), "base": (6e5, 9e5)}
    out = {}
    for name, ((lo, hi), ratios, (d0, d1), win) in rows.items():
        out[name] = SearchSpace(name, tuple(range(lo, hi + 1, 64)), ratios, (4, 8),
                                tuple(range(d0, d1 + 1)), _CIFAR100, win,
                                f"AutoST-{name} ({_PAPER.format(name)}), CIFAR-100 input")
        out[f"micro-{name}"] = SearchSpace(
            f"micro-{name}", tuple(range(lo // 8, hi // 8 + 1, 8)), ratios, (4, 8),
            tuple(range(d0, d1 + 1)), _MOTION, micro_windows[name],
            f"AutoST-{name} with widths / 8, for the motion workload (32x32x2, 6 classes)")
    return out


SPACES: dict[str, SearchSpace] = _paper_spaces()


def list_spaces() -> list[str]:
    return list(SPACES)


def get_space(name: str) -> SearchSpace:
    """A shipped space by name, or a TOML file (see :func:`load_space`)."""
    if name in SPACES:
        return SPACES[name]
    if str(name).endswith(".toml") or Path(str(name)).is_file():
        return load_space(name)
    close = difflib.get_close_matches(str(name), list(SPACES), n=2)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise SearchSpaceError(f"unknown search space {name!r}{hint}; shipped: "
                           f"{', '.join(SPACES)}, or a .toml file")


_SPACE_KEYS = ("name", "description", "embed_dim", "mlp_ratio", "num_heads", "depth",
               "window", "inputs")


def _range(key: str, v):
    """A list of values, or a table {min, max, step} (the paper's "(lowest, highest, step)")."""
    if isinstance(v, dict):
        extra = set(v) - {"min", "max", "step"}
        if extra or not {"min", "max"} <= set(v):
            raise SearchSpaceError(f"{key}: a range table needs min, max and optionally step; "
                                   f"got keys {sorted(v)}")
        lo, hi, step = v["min"], v["max"], v.get("step", 1)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                   for x in (lo, hi, step)):
            raise SearchSpaceError(f"{key}: min, max and step must be numbers, got {v}")
        if step <= 0:
            raise SearchSpaceError(f"{key}: step must be > 0, got {step}")
        if lo > hi:
            raise SearchSpaceError(f"{key}: min {lo} > max {hi} (an empty range)")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return [lo + i * step for i in range(n)]
    return v


def read_space_toml(p: Path) -> dict:
    """The TOML table of a search space file; unreadable or malformed files raise
    :class:`SearchSpaceError` naming the file."""
    try:
        return tomllib.loads(p.read_text())
    except OSError as e:
        raise SearchSpaceError(f"search space file {p}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise SearchSpaceError(f"search space file {p}: malformed TOML: {e}") from None


def load_space(path) -> SearchSpace:
    """A search space from a TOML file with keys ``embed_dim``, ``mlp_ratio``, ``num_heads``,
    ``depth`` (each a list or a ``{min, max, step}`` table), optional ``name``,
    ``description``, ``window = "4M:5M"`` and ``[inputs]`` (InputSpec fields)."""
    p = Path(path)
    data = read_space_toml(p)
    for k in data:
        if k not in _SPACE_KEYS:
            close = difflib.get_close_matches(k, _SPACE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SearchSpaceError(f"{p}: unknown key {k!r}{hint}; allowed: "
                                   f"{', '.join(_SPACE_KEYS)}")
    missing = [k for k in ("embed_dim", "mlp_ratio", "num_heads", "depth") if k not in data]
    if missing:
        raise SearchSpaceError(f"{p}: missing {', '.join(missing)}")
    inputs = data.get("inputs", {})
    known = {"img_size", "in_channels", "num_classes", "T", "pool_stages"}
    if not isinstance(inputs, dict) or set(inputs) - known:
        raise SearchSpaceError(f"{p}: [inputs] takes {', '.join(sorted(known))}; got "
                               f"{sorted(inputs) if isinstance(inputs, dict) else inputs!r}")
    try:
        return SearchSpace(
            str(data.get("name", p.stem)), _range("embed_dim", data["embed_dim"]),
            _range("mlp_ratio", data["mlp_ratio"]), _range("num_heads", data["num_heads"]),
            _range("depth", data["depth"]), InputSpec(**inputs),
            parse_window(data["window"]) if "window" in data else None,
            str(data.get("description", "")))
    except SearchSpaceError as e:
        raise SearchSpaceError(f"{p}: {e}") from None


__all__ = ["SPACES", "Arch", "InputSpec", "Legality", "SearchSpace", "SearchSpaceError",
           "check_window", "fmt_count", "fmt_window", "get_space", "list_spaces", "load_space",
           "parse_window"]
