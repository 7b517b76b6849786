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
inherited one whole; cycles in ``extends`` are errors. A base named without a path is looked
up beside the file first, then among the shipped files (a user's ``extends = "speck-xl"``).

Plausibility: a field declared with ``range=(low, high)`` must lie in it (``clock_hz = 1e-300``
is a typo, not a chip); a file that means such a value sets ``allow_extreme = true`` at its top,
and the error says so. Errors name the file that set the key (in an ``extends`` chain, the
override that wrote it) and, for keys that a chip's kind / topology / memory model excludes,
where that mode was set.
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
               positive: bool = False, choices: tuple = (), plain: bool = False, default=None,
               range: tuple | None = None):
    """Declare a spec field. ``typ``: int, float, bool, str, ints (list of int), int|ints or
    float|floats (one value for every core, or a list with one value per core). ``when``: the
    field belongs only to chips of that kind / memory model / topology (required there, an error
    elsewhere).
    ``plain``: an identifier string written without provenance. ``range``: (low, high), the
    plausible values of a physical quantity (each entry of a list); a value outside is an
    error unless the file sets ``allow_extreme = true``."""
    return field(default=default, metadata=dict(typ=typ, doc=doc, required=required, when=when,
                                                positive=positive, choices=choices, plain=plain,
                                                range=range))


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
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise SpecError(f"{path}: not UTF-8 text (TOML files are UTF-8): byte "
                        f"{raw[e.start]:#04x} at line {line}") from None
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


def _find_base(ext: str, path: Path, search: tuple) -> Path:
    """The file ``extends = ext`` names: a path relative to ``path``'s directory, or a name
    looked up beside ``path`` first and then in the ``search`` directories (the shipped
    files), skipping ``path`` itself (a user's ``speck.toml`` may extend the shipped one)."""
    if ext.endswith(".toml") or "/" in ext or "\\" in ext:
        return resolve(path.parent / ext, path.parent, "base file")
    dirs = list(dict.fromkeys([path.parent.resolve()] + [Path(d).resolve() for d in search]))
    for d in dirs:
        p = (d / f"{ext}.toml").resolve()
        if p.is_file() and p != path.resolve():
            return p
    avail = sorted({n for d in dirs for n in available(d)})
    close = difflib.get_close_matches(ext, avail, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise SpecError(f"unknown base file {ext!r} (looked in {', '.join(map(str, dirs))}).{hint} "
                    f"Available: {', '.join(avail)}")


def _shadowed(p: str, own: dict) -> bool:
    """True when the inherited leaf ``p`` is replaced by one of the override's leaves ``own``:
    the same key, a key inside it, or a table written where ``p`` was a value."""
    return any(p == q or p.startswith(q + ".") or q.startswith(p + ".") for q in own)


def load_raw(path: Path, chain: tuple = (), search: tuple = ()) -> tuple[dict, dict, tuple]:
    """Read ``path`` and its ``extends`` chain. ``search``: directories where a base named
    without a path is looked up after ``path``'s own directory. Returns (merged dict, origin
    file of every leaf key path, files base-first)."""
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
        base_path = _find_base(ext, path, search)
    except SpecError as e:
        raise SpecError(f"{path}: extends: {e}") from None
    base, origins, files = load_raw(base_path, chain + (path,), search)
    merged = _merge(base, data)
    # leaves of the base replaced by the override now come from the override
    origins = {p: f for p, f in origins.items() if not _shadowed(p, own)}
    origins.update(own)
    return merged, origins, files + (path,)


# ----------------------------------------------------------------------------- validation
class Ctx:
    """Validation context: merged data, origin of each key, the top file, the chip's modes."""

    def __init__(self, origins: dict, top: Path, modes: set[str]):
        self.origins, self.top, self.modes = origins, top, modes
        self.provenance: dict[str, str] = {}
        self.mode_keys: dict[str, tuple] = {}     # key path -> (its value, the choices)
        self.allow_extreme = False                 # set by check_top_keys

    def mode_note(self, when: str) -> str:
        """Which mode key excludes ``when`` and where it was set (for "only used by" errors)."""
        for kp, (value, choices) in self.mode_keys.items():
            if when in choices and value != when:
                return f" (this chip has {kp} = {value!r}, set in {self.origin(kp)})"
        return ""

    def origin(self, keypath: str) -> Path:
        """The file that set ``keypath``: its own leaf, else the last file (in extends order)
        that set a key inside it, else the top file."""
        if keypath in self.origins:
            return self.origins[keypath]
        inside = [f for k, f in self.origins.items() if k.startswith(keypath + ".")]
        if not inside:
            return self.top
        order = {f: i for i, f in enumerate(dict.fromkeys(self.origins.values()))}
        return max(inside, key=lambda f: order[f])

    def fail(self, keypath: str, problem: str):
        raise SpecError(f"{self.origin(keypath)}: {keypath}: {problem}")


def _check_value(ctx: Ctx, keypath: str, v, meta: dict):
    typ = meta["typ"]

    def num(x, what="number"):
        if typ.startswith("int") and not (isinstance(x, int) and not isinstance(x, bool)):
            ctx.fail(keypath, f"expected an integer, got {type(x).__name__} {x!r}")
        if typ.startswith("float") and (isinstance(x, bool) or not isinstance(x, (int, float))):
            ctx.fail(keypath, f"expected a number, got {type(x).__name__} {x!r}")
        if isinstance(x, float) and not math.isfinite(x):
            ctx.fail(keypath, f"must be finite, got {x}")
        if x < 0:
            ctx.fail(keypath, f"must not be negative, got {x}")
        if meta["positive"] and x == 0:
            ctx.fail(keypath, "must be positive, got 0")
        rng = meta.get("range")
        if rng is not None and not rng[0] <= x <= rng[1] and not ctx.allow_extreme:
            ctx.fail(keypath, f"{x:g} is outside the plausible range {rng[0]:g}..{rng[1]:g}; "
                              "if it is meant, set allow_extreme = true at the top of the file")
        return float(x) if typ.startswith("float") else int(x)

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
    if typ == "ints" or (typ in ("int|ints", "float|floats") and isinstance(v, list)):
        if not isinstance(v, list) or not v:
            what = "numbers" if typ.startswith("float") else "integers"
            ctx.fail(keypath, f"expected a non-empty list of {what}, got {v!r}")
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
            ctx.fail(kp, f"only used by {when} chips{ctx.mode_note(when)}")
        out[k] = _field_value(ctx, kp, raw[k], meta)
    return out


PLAIN = dict(typ="str", required=True, when=None, positive=False, choices=(), plain=True)
NUMBER = dict(typ="float", required=True, when=None, positive=False, choices=(), plain=False)


def check_top_keys(ctx: Ctx, data: dict, allowed: tuple):
    """Fail on the first top-level key of ``data`` that is neither ``extends``,
    ``allow_extreme`` nor in ``allowed`` (``extends`` was consumed by :func:`load_raw`);
    ``allow_extreme = true`` lifts the plausibility ranges (``spec_field(range=...)``)."""
    if "allow_extreme" in data:
        if not isinstance(data["allow_extreme"], bool):
            ctx.fail("allow_extreme", f"expected true or false, got {data['allow_extreme']!r}")
        ctx.allow_extreme = data["allow_extreme"]
    for k in data:
        if k not in allowed and k != "allow_extreme":
            close = difflib.get_close_matches(k, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.fail(k, f"unknown key{hint}; allowed: extends, allow_extreme, "
                        f"{', '.join(allowed)}")


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
