"""Chip parameter overrides for sweeps, through the chip files' own mechanism.

A variant of chip ``tianjic-x16`` with ``timing.fifo_depth = 8`` is a small TOML file that
``extends`` the base chip's file and sets only that key, as
``{value = 8, estimate = "neurosim sweep override"}``; ``chips.spec.load_chip`` reads it, so
every override is validated exactly like a chip file (types, ranges, the chip kind a key
belongs to) and new keys added to the chip schema are sweepable without changes here.

Key paths are ``section.key`` (``timing.clock_hz``, ``mesh.hop_latency_ns``,
``energy_overrides.static_power_w``) or a top-level key (``process_nm``). Which keys exist, and
for which chips (``timing.fifo_depth``: async chips only), comes from the schema declared in
``chips.spec`` (each field's ``when``); :func:`applies` answers it for one chip.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tempfile
from pathlib import Path

from chips import spec as S
from chips.energy_table import ActionsSection, energy_table_path
from chips.toml_schema import spec_fields

OVERRIDE_NOTE = "neurosim sweep override"


def sections() -> dict[str, dict[str, dataclasses.Field]]:
    """Overridable keys: {section: {key: schema field}}, the top level under ``""``; read
    from ``chips.spec.ChipSpec``'s section dataclasses."""
    out: dict[str, dict] = {"": {}, "energy_overrides": spec_fields(ActionsSection)}
    for f in dataclasses.fields(S.ChipSpec):
        cls = getattr(S, f.type, None) if isinstance(f.type, str) else f.type
        if dataclasses.is_dataclass(cls) and spec_fields(cls):
            out[f.name] = spec_fields(cls)
    out[""] = {"process_nm": None}
    return out


def _field(keypath: str):
    """(section, key, schema field or None for top-level numbers); unknown paths raise,
    suggesting the closest known path."""
    secs = sections()
    sec, _, key = keypath.rpartition(".")
    if sec in secs and key in secs[sec]:
        return sec, key, secs[sec][key]
    known = [f"{s}.{k}" if s else k for s, ks in secs.items() for k in ks]
    close = difflib.get_close_matches(keypath, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise KeyError(f"unknown chip parameter {keypath!r}{hint}; chip parameters are "
                   f"section.key paths of the chip files, e.g. timing.fifo_depth, "
                   f"timing.clock_hz, mesh.hop_latency_ns, energy_overrides.static_power_w")


def check_keypath(keypath: str) -> str:
    _field(keypath)
    return keypath


def applies(chip: S.ChipSpec, keypath: str) -> bool:
    """Whether ``keypath`` is a parameter of ``chip`` (its kind, topology and memory model)."""
    _, _, f = _field(keypath)
    when = None if f is None else f.metadata.get("when")
    return when is None or when in {chip.kind, chip.mesh.topology, chip.core.memory_model}


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"chip parameter values must be finite, got {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise ValueError(f"chip parameter value {v!r} ({type(v).__name__}) is not a number, "
                     f"bool, string or list")


def variant_name(base: str, overrides: dict) -> str:
    if not overrides:
        return base
    return base + "[" + ",".join(f"{k.rpartition('.')[2]}={v}" for k, v in
                                 overrides.items()) + "]"


def variant_toml(base: S.ChipSpec, overrides: dict) -> str:
    """The text of a chip file extending ``base`` with ``overrides`` ({keypath: value})."""
    lines = [f"extends = {json.dumps(str(base.path))}",
             f"name = {json.dumps(variant_name(base.name, overrides))}"]
    table = base.energy_table
    if table.endswith(".toml") or "/" in table:       # a path relative to the base file
        lines.append(f"energy_table = "
                     f"{json.dumps(str(energy_table_path(table, base.path.parent)))}")
    by_sec: dict[str, list[str]] = {}
    for kp, v in overrides.items():
        sec, key, f = _field(kp)
        plain = f is not None and f.metadata.get("plain")
        val = _toml(v) if plain else (f"{{value = {_toml(v)}, "
                                      f"estimate = {json.dumps(OVERRIDE_NOTE)}}}")
        by_sec.setdefault(sec, []).append(f"{key} = {val}")
    lines += by_sec.pop("", [])
    for sec, items in by_sec.items():
        lines += ["", f"[{sec}]"] + items
    return "\n".join(lines) + "\n"


def chip_variant(chip, overrides: dict | None = None) -> S.ChipSpec:
    """``chip`` (a name, TOML path or ChipSpec) with ``overrides`` applied and validated by
    ``chips.spec.load_chip``; errors name the override, not the temporary file."""
    base = S.load_chip(chip)
    if not overrides:
        return base
    text = variant_toml(base, overrides)
    with tempfile.TemporaryDirectory(prefix="neurosim-chip-") as d:
        p = Path(d) / "variant.toml"
        p.write_text(text)
        try:
            return S.load_chip(p)
        except S.SpecError as e:
            msg = str(e).replace(f"{p}: ", "")
            raise S.SpecError(f"chip {base.name!r} with {overrides}: {msg}") from None


__all__ = ["OVERRIDE_NOTE", "applies", "check_keypath", "chip_variant", "sections",
           "variant_name", "variant_toml"]
