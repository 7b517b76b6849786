"""The ``neurosim sweep`` configuration file and the points it spans.

    models = ["meta-spikeformer-tiny",                           # shipped checkpoint names,
              "runs/my.safetensors",                             # checkpoint files, or
              {zoo = "autost-tiny", set = {in_channels = 1}, seed = 0}]  # untrained zoo configs
    chips = ["tianjic-x16", "speck-xl", "chips/my-chip.toml"]
    modes = ["sync", "async-windowed"]          # sync, async-windowed, async-free
    workloads = ["digits"]
    n = 20                                      # inputs per point (the first n of the split)
    split = "test"                              # optional: calib_n (32), weight_bits (8),
                                                # repconv ("fused"), ssc (false), name
    [overrides]                                 # chip parameters (chip-file key paths)
    "timing.fifo_depth" = [8, 64]
    "timing.clock_hz" = [1.0e8, 3.0e8]

A point is one (model, workload, chip, mode, override values). The product is taken per chip
over what applies to it: a sync chip runs ``sync``, an async chip ``async-windowed`` and
``async-free`` (those of them in ``modes``); an override key applies to the chips whose files
have that key (``timing.fifo_depth``: async chips), and on other chips its values collapse to
one point with the column left empty. Every combination left out is listed with its reason
(``skipped``), never dropped silently. A chip that runs none of the modes, or an override that
applies to no chip of the sweep, is a contradiction and an error.

Relative paths (checkpoints, chip files) are taken from the config file's directory. Errors
name the file and the key, and unknown keys get the closest known one.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RUN_MODES = ("sync", "async-windowed", "async-free")
CHIP_MODES = {"sync": ("sync",), "async": ("async-windowed", "async-free")}
TOP_KEYS = ("name", "models", "chips", "modes", "workloads", "n", "split", "calib_n",
            "weight_bits", "repconv", "ssc", "overrides")
MODEL_KEYS = ("checkpoint", "zoo", "set", "seed", "label")
DEFAULTS = {"n": 20, "split": "test", "calib_n": 32, "weight_bits": 8, "repconv": "fused",
            "ssc": False}


class SweepConfigError(ValueError):
    """A sweep file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class ModelRef:
    """A sweep's model: a checkpoint (file path or shipped name) or an untrained zoo config
    (``zoo`` name, ``set`` overrides, weights seeded by ``seed``)."""

    kind: str
    ref: str
    overrides: tuple = ()
    seed: int = 0
    label: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "ref": self.ref, "set": dict(self.overrides),
                "seed": self.seed, "label": self.label}


@dataclass(frozen=True)
class Point:
    """One evaluation of the sweep; ``key`` identifies it across runs (resume)."""

    index: int
    model: int
    workload: str
    chip: str
    mode: str
    overrides: tuple          # ((keypath, value or None when it does not apply), ...)

    @property
    def key(self) -> str:
        return json.dumps([self.model, self.workload, self.chip, self.mode,
                           [list(o) for o in self.overrides]], sort_keys=True)

    def applied(self) -> dict:
        return {k: v for k, v in self.overrides if v is not None}


@dataclass(frozen=True)
class SweepConfig:
    path: Path
    models: tuple
    chips: tuple
    modes: tuple
    workloads: tuple
    overrides: tuple          # ((keypath, (values...)), ...)
    settings: dict = field(default_factory=dict)
    name: str = ""

    def digest(self) -> str:
        """Hash of everything that determines the results (not the file's path)."""
        d = {"models": [m.to_dict() for m in self.models], "chips": list(self.chips),
             "modes": list(self.modes), "workloads": list(self.workloads),
             "overrides": [[k, list(v)] for k, v in self.overrides], "settings": self.settings}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def points(self) -> tuple[list[Point], list[str]]:
        """(points in a fixed order, the combinations left out and why) -- module doc."""
        from neurosim.run.chip_overrides import applies
        from chips.spec import load_chip
        specs = {c: load_chip(c) for c in self.chips}
        keys = [k for k, _ in self.overrides]
        used = dict.fromkeys(keys, False)
        per_chip, skipped = {}, []
        for c, spec in specs.items():
            modes = [m for m in self.modes if m in CHIP_MODES[spec.kind]]
            if not modes:
                raise SweepConfigError(
                    f"{self.path}: chips: {spec.name} is a {spec.kind} chip and runs "
                    f"{' or '.join(CHIP_MODES[spec.kind])}, but modes = {list(self.modes)}; "
                    f"add one of its modes or remove the chip")
            skipped += [f"{spec.name} / {m}: {spec.kind} chips do not run {m}"
                        for m in self.modes if m not in modes]
            values = []
            for k, vals in self.overrides:
                if applies(spec, k):
                    used[k] = True
                    values.append([(k, v) for v in vals])
                else:
                    values.append([(k, None)])
                    if len(vals) > 1:
                        skipped.append(f"{spec.name}: {k} is not a parameter of this chip; its "
                                       f"{len(vals)} values collapse to one point")
            per_chip[c] = (modes, list(itertools.product(*values)))
        unused = [k for k, u in used.items() if not u]
        if unused:
            raise SweepConfigError(f"{self.path}: overrides: {', '.join(unused)} is a "
                                   f"parameter of none of the chips {list(self.chips)}")
        pts = []
        for mi, wl, c in itertools.product(range(len(self.models)), self.workloads, self.chips):
            modes, combos = per_chip[c]
            for mode, combo in itertools.product(modes, combos):
                pts.append(Point(len(pts), mi, wl, c, mode, tuple(combo)))
        return pts, skipped


def _err(path, key, msg):
    return SweepConfigError(f"{path}: {key}: {msg}")


def _unknown(path, where: str, key: str, allowed) -> SweepConfigError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return _err(path, f"{where}{key}", f"unknown key{hint}; allowed: {', '.join(allowed)}")


def _strings(path, data, key) -> tuple:
    v = data.get(key)
    if v is None:
        raise _err(path, key, "missing (a non-empty list)")
    if not isinstance(v, list) or not v:
        raise _err(path, key, f"must be a non-empty list, got {v!r}")
    return tuple(v)


def _model(path: Path, i: int, m) -> ModelRef:
    from models import catalog
    where = f"models[{i}]"
    if isinstance(m, str):
        m = {"checkpoint": m}
    if not isinstance(m, dict):
        raise _err(path, where, f"must be a checkpoint (string) or a table, got {m!r}")
    for k in m:
        if k not in MODEL_KEYS:
            raise _unknown(path, f"{where}.", k, MODEL_KEYS)
    if ("checkpoint" in m) == ("zoo" in m):
        raise _err(path, where, "give exactly one of checkpoint = ... or zoo = ...")
    seed, label = m.get("seed", 0), m.get("label", "")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _err(path, f"{where}.seed", f"must be an integer, got {seed!r}")
    if "checkpoint" in m:
        ref = str(m["checkpoint"])
        p = (path.parent / ref) if not Path(ref).is_absolute() else Path(ref)
        if p.is_file():
            ref = str(p.resolve())
        elif ref not in catalog.list_shipped():
            shipped = ", ".join(catalog.list_shipped())
            raise _err(path, where, f"checkpoint {ref!r} is neither a file (looked for {p}) "
                                    f"nor a shipped checkpoint ({shipped})")
        if "set" in m:
            raise _err(path, f"{where}.set", "only zoo models take set = {...}")
        return ModelRef("checkpoint", ref, (), seed, str(label or Path(ref).stem))
    name = str(m["zoo"])
    if name not in catalog.MODELS:
        close = difflib.get_close_matches(name, list(catalog.MODELS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise _err(path, f"{where}.zoo", f"unknown zoo model {name!r}{hint}")
    sets = m.get("set", {})
    if not isinstance(sets, dict):
        raise _err(path, f"{where}.set", f"must be a table of model arguments, got {sets!r}")
    return ModelRef("zoo", name, tuple(sorted(sets.items())), seed, str(label or name))


def _chip(path: Path, c) -> str:
    from chips.spec import SpecError, load_chip
    if not isinstance(c, str):
        raise _err(path, "chips", f"entries must be chip names or TOML paths, got {c!r}")
    p = path.parent / c
    ref = str(p.resolve()) if (c.endswith(".toml") and p.is_file()) else c
    try:
        load_chip(ref)
    except SpecError as e:
        raise _err(path, "chips", str(e)) from None
    return ref


def _settings(path: Path, data: dict) -> dict:
    s = {k: data.get(k, v) for k, v in DEFAULTS.items()}
    for k in ("n", "calib_n", "weight_bits"):
        if isinstance(s[k], bool) or not isinstance(s[k], int) or s[k] < 1:
            raise _err(path, k, f"must be an integer >= 1, got {s[k]!r}")
    if s["split"] not in ("test", "train"):
        raise _err(path, "split", f"must be test or train, got {s['split']!r}")
    if s["repconv"] not in ("fused", "unfused"):
        raise _err(path, "repconv", f"must be fused or unfused, got {s['repconv']!r}")
    if not isinstance(s["ssc"], bool):
        raise _err(path, "ssc", f"must be true or false, got {s['ssc']!r}")
    return s


def _overrides(path: Path, data) -> tuple:
    from neurosim.run.chip_overrides import check_keypath
    if not isinstance(data, dict):
        raise _err(path, "overrides", "must be a table of chip parameter = [values]")
    out = []
    for k, v in data.items():
        try:
            check_keypath(k)
        except KeyError as e:
            raise _err(path, f"overrides.{k}", e.args[0]) from None
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise _err(path, f"overrides.{k}", "empty list of values")
        if len(set(map(json.dumps, vals))) != len(vals):
            raise _err(path, f"overrides.{k}", f"repeated values in {vals}")
        out.append((k, tuple(vals)))
    return tuple(out)


def load_sweep_config(path, flag_keys=()) -> SweepConfig:
    """Read and check a sweep file (module doc); chips and models are resolved here, chip
    overrides are validated when the points are built. ``flag_keys``: keys the file may also
    hold, the ``neurosim sweep`` flags the command line applies (``neurosim.cli.config``);
    they do not change the points."""
    import workloads
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep config not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepConfigError(f"{path}: malformed TOML: {e}") from None
    for k in data:
        if k not in TOP_KEYS and k not in flag_keys:
            raise _unknown(path, "", k, TOP_KEYS + tuple(f for f in flag_keys if "-" not in f))
    models_ = tuple(_model(path, i, m) for i, m in enumerate(_strings(path, data, "models")))
    chips_ = tuple(dict.fromkeys(_chip(path, c) for c in _strings(path, data, "chips")))
    modes = _strings(path, data, "modes")
    bad = [m for m in modes if m not in RUN_MODES]
    if bad:
        close = difflib.get_close_matches(str(bad[0]), RUN_MODES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _err(path, "modes", f"unknown mode {bad[0]!r}{hint}; modes are "
                                  f"{', '.join(RUN_MODES)}")
    wls = _strings(path, data, "workloads")
    for w in wls:
        if w not in workloads.list_workloads():
            close = difflib.get_close_matches(str(w), workloads.list_workloads(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(path, "workloads", f"unknown workload {w!r}{hint}; available: "
                                          f"{', '.join(workloads.list_workloads())}")
    return SweepConfig(path=path, models=models_, chips=chips_, modes=tuple(dict.fromkeys(modes)),
                       workloads=tuple(dict.fromkeys(wls)),
                       overrides=_overrides(path, data.get("overrides", {})),
                       settings=_settings(path, data), name=str(data.get("name", path.stem)))


__all__ = ["CHIP_MODES", "ModelRef", "Point", "RUN_MODES", "SweepConfig", "SweepConfigError",
           "load_sweep_config"]
