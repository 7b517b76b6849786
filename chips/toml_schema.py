"""Generic TOML reading, ``extends`` merging and validation for the chip and energy-table files.

Nothing here knows what a chip is: :mod:`chips.spec` and :mod:`chips.energy_table` declare their
sections as frozen dataclasses whose fields carry a schema (:func:`spec_field`), and the helpers
below read a file and its ``extends`` chain (:func:`load_raw`) and check each table against such
a dataclass (:func:`section`), raising :class:`SpecError` with the file, the key path and the
problem.

Provenance rule (DESIGN.md invariant 3): every number (and every capability flag) is written as
``{value = ..., source = "paper, table/section"}`` or ``{value = ..., estimate = "why"}`` (both
keys may be given); identifiers are plain strings. Unknown keys are errors. In a file with
``extends``, tables are deep-merged and a ``{value, source|estimate}`` entry replaces the
inherited one whole; cycles in ``extends`` are errors.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import field
from pathlib import Path


class SpecError(ValueError):
    """An invalid chip or energy file; the message names the file, the key path and the problem."""


# ----------------------------------------------------------------------------- schema fields
def spec_field(typ: str, doc: str, *, required: bool = True, when: str | None = None,
               positive: bool = False, choices: tuple = (), plain: bool = False, default=None):
    """Declare a spec field. ``typ``: int, float, bool, str, ints (list of int) or int|ints
    (one value for every core, or a list with one value per core). ``when``: the field belongs
    only to chips of that kind / memory model / topology (required there, an error elsewhere).
    ``plain``: an identifier string written without provenance."""
    return field(default=default, metadata=dict(typ=typ, doc=doc, required=required, when=when,
                                                positive=positive, choices=choices, plain=plain))


def spec_fields(cls) -> dict[str, dataclasses.Field]:
    """The schema fields (declared with :func:`spec_field`) of a section dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(cls) if "typ" in f.metadata}


# ----------------------------------------------------------------------------- raw loading
def is_quantity(v) -> bool:
    """True for a ``{value = ..., source|estimate = ...}`` table."""
    return isinstance(v, dict) and "value" in v


def _leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and not is_quantity(v):
            out.extend(_leaves(v, p + "."))
        else:
            out.append(p)
    return out


def _merge(base: dict, over: dict) -> dict:
    """Deep merge; a quantity table or a non-table value replaces the inherited one whole."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        if (isinstance(v, dict) and not is_quantity(v) and isinstance(b, dict)
                and not is_quantity(b)):
            out[k] = _merge(b, v)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: malformed TOML: {e}") from None


def available(directory: Path) -> list[str]:
    """Names (file stems) of the TOML files in ``directory``, sorted."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def resolve(name_or_path, directory: Path, what: str) -> Path:
    """A name -> ``directory/<name>.toml``; anything path-like is used as a path."""
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(name_or_path)
        if not p.is_file():
            raise SpecError(f"{what} file not found: {p}")
        return p.resolve()
    p = directory / f"{s}.toml"
    if not p.is_file():
        avail = available(directory)
        close = difflib.get_close_matches(s, avail, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"unknown {what} {s!r}.{hint} Available: {', '.join(avail)}")
    return p.resolve()


def load_raw(path: Path, chain: tuple = ()) -> tuple[dict, dict, tuple]:
    """Read ``path`` and its ``extends`` chain. Returns (merged dict, origin file of every leaf
    key path, files base-first)."""
    if path in chain:
        cyc = " -> ".join(str(p) for p in chain + (path,))
        raise SpecError(f"{path}: extends: cycle in extends chain: {cyc}")
    data = _read_toml(path)
    ext = data.pop("extends", None)
    own = {p: path for p in _leaves(data)}
    if ext is None:
        return data, own, (path,)
    if not isinstance(ext, str) or not ext:
        raise SpecError(f"{path}: extends: must be a file name or path string, got {ext!r}")
    if "name" not in data:
        raise SpecError(f"{path}: name: missing (a file that extends another sets its own "
                        f"name)")
    try:
        base_path = resolve(ext if not ext.endswith(".toml") else path.parent / ext,
                            path.parent, "base file")
    except SpecError as e:
        raise SpecError(f"{path}: extends: {e}") from None
    base, origins, files = load_raw(base_path, chain + (path,))
    merged = _merge(base, data)
    # leaves of the base replaced by the override now come from the override
    origins = {p: f for p, f in origins.items()
               if not any(p == q or p.startswith(q + ".") for q in own)}
    origins.update(own)
    return merged, origins, files + (path,)


# ----------------------------------------------------------------------------- validation
class Ctx:
    """Validation context: merged data, origin of each key, the top file, the chip's modes."""

    def __init__(self, origins: dict, top: Path, modes: set[str]):
        self.origins, self.top, self.modes = origins, top, modes
        self.provenance: dict[str, str] = {}

    def fail(self, keypath: str, problem: str):
        f = self.origins.get(keypath, self.top)
        raise SpecError(f"{f}: {keypath}: {problem}")


def _check_value(ctx: Ctx, keypath: str, v, meta: dict):
    typ = meta["typ"]

    def num(x, what="number"):
        if typ.startswith("int") and not (isinstance(x, int) and not isinstance(x, bool)):
            ctx.fail(keypath, f"expected an integer, got {type(x).__name__} {x!r}")
        if typ == "float" and (isinstance(x, bool) or not isinstance(x, (int, float))):
            ctx.fail(keypath, f"expected a number, got {type(x).__name__} {x!r}")
        if isinstance(x, float) and not math.isfinite(x):
            ctx.fail(keypath, f"must be finite, got {x}")
        if x < 0:
            ctx.fail(keypath, f"must not be negative, got {x}")
        if meta["positive"] and x == 0:
            ctx.fail(keypath, "must be positive, got 0")
        return float(x) if typ == "float" else int(x)

    if typ == "bool":
        if not isinstance(v, bool):
            ctx.fail(keypath, f"expected true or false, got {type(v).__name__} {v!r}")
        return v
    if typ == "str":
        if not isinstance(v, str) or not v:
            ctx.fail(keypath, f"expected a non-empty string, got {type(v).__name__} {v!r}")
        if meta["choices"] and v not in meta["choices"]:
            ctx.fail(keypath, f"must be one of {', '.join(meta['choices'])}, got {v!r}")
        return v
    if typ == "ints" or (typ == "int|ints" and isinstance(v, list)):
        if not isinstance(v, list) or not v:
            ctx.fail(keypath, f"expected a non-empty list of integers, got {v!r}")
        return tuple(num(x) for x in v)
    return num(v)


def _field_value(ctx: Ctx, kp: str, v, meta: dict):
    """Validate one value: a plain identifier, or a {value, source|estimate} table."""
    if meta["plain"]:
        if is_quantity(v):
            ctx.fail(kp, "is an identifier: write a plain string, not a table")
        return _check_value(ctx, kp, v, meta)
    if not is_quantity(v):
        ctx.fail(kp, "must be a table {value = ..., source = \"...\"} or "
                     "{value = ..., estimate = \"...\"}; a bare value has no provenance")
    extra = set(v) - {"value", "source", "estimate"}
    if extra:
        ctx.fail(kp, f"unknown key(s) {sorted(extra)} in value table; allowed: value, "
                     "source, estimate")
    if "source" not in v and "estimate" not in v:
        ctx.fail(kp, "missing source or estimate (every value says where it comes from)")
    for t in ("source", "estimate"):
        if t in v and (not isinstance(v[t], str) or not v[t].strip()):
            ctx.fail(f"{kp}.{t}", "must be a non-empty string")
    out = _check_value(ctx, kp, v["value"], meta)
    ctx.provenance[kp] = "; ".join(f"{t}: {v[t]}" for t in ("source", "estimate") if t in v)
    return out


def section(ctx: Ctx, cls, raw, prefix: str, all_optional: bool = False) -> dict:
    """Validate one TOML table against the spec dataclass ``cls``; return its kwargs (absent
    optional keys take their defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or is_quantity(raw):
        ctx.fail(prefix.rstrip("."), "expected a table")
    specs = spec_fields(cls)
    for k in raw:
        if k not in specs:
            close = difflib.get_close_matches(k, specs, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.fail(f"{prefix}{k}", f"unknown key{hint}; allowed: {', '.join(specs)}")
    out = {}
    for k, f in specs.items():
        meta, kp = f.metadata, f"{prefix}{k}"
        when = meta["when"]
        applies = when is None or when in ctx.modes
        if k not in raw:
            if meta["required"] and applies and not all_optional:
                ctx.fail(kp, "missing" + (f" (required for {when} chips)" if when else ""))
            out[k] = f.default
            continue
        if not applies:
            ctx.fail(kp, f"only used by {when} chips")
        out[k] = _field_value(ctx, kp, raw[k], meta)
    return out


PLAIN = dict(typ="str", required=True, when=None, positive=False, choices=(), plain=True)
NUMBER = dict(typ="float", required=True, when=None, positive=False, choices=(), plain=False)


def check_top_keys(ctx: Ctx, data: dict, allowed: tuple):
    """Fail on the first top-level key of ``data`` that is neither ``extends`` nor in
    ``allowed`` (``extends`` was consumed by :func:`load_raw`)."""
    for k in data:
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.fail(k, f"unknown key{hint}; allowed: extends, {', '.join(allowed)}")


def top_value(ctx: Ctx, data: dict, key: str, meta: dict, required: bool = True, choices=()):
    """A top-level key (``data`` is the whole file or a section for the mode keys)."""
    if key not in data:
        if required:
            ctx.fail(key, "missing")
        return None
    return _field_value(ctx, key, data[key], {**meta, "choices": choices})


def mode_value(ctx: Ctx, data: dict, table: str, key: str, choices: tuple) -> str:
    """The plain identifier ``[table] key`` (a mode such as ``mesh.topology``), one of
    ``choices``."""
    sec = data.get(table)
    if not isinstance(sec, dict):
        ctx.fail(table, "missing" if sec is None else "expected a table")
    if key not in sec:
        ctx.fail(f"{table}.{key}", "missing")
    return _field_value(ctx, f"{table}.{key}", sec[key], {**PLAIN, "choices": choices})


__all__ = ["NUMBER", "PLAIN", "Ctx", "SpecError", "available", "check_top_keys", "is_quantity",
           "load_raw", "mode_value", "resolve", "section", "spec_field", "spec_fields",
           "top_value"]
