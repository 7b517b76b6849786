"""SI quantities for people: energies and times with scaled units, and plain-text tables (one
formatter for every table neurosim prints). Inside, everything is in joules and seconds.
"""
from __future__ import annotations

import math


def _cell(v) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.3e}"
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def format_table(rows: list[dict], columns: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> str:
    """Left-aligned text for strings, right-aligned for numbers; ``columns`` picks and orders."""
    if not rows:
        return "(empty)"
    columns = columns or list(rows[0])
    headers = headers or {}
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    heads = [headers.get(c, c) for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                   for r in rows if r.get(c, "") != "") for c in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(vals, widths, numeric)).rstrip()

    out = [line(heads), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


_E_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ"), (1e-12, "pJ"))
_T_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))
_P_UNITS = ((1.0, "W"), (1e-3, "mW"), (1e-6, "uW"), (1e-9, "nW"))


def _fmt(x: float, units, digits: int) -> str:
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return f"0 {units[0][1]}"
    a = abs(x)
    for scale, name in units:
        if a >= scale * 0.9995:
            break
    v = x / scale
    s = f"{v:.{digits}g}"
    if "e" in s:                       # >= 1000 J or s: plain digits
        s = f"{v:.0f}"
    return f"{s} {name}"


def fmt_energy(j: float, digits: int = 3) -> str:
    """``1.23e-5`` -> ``"12.3 uJ"`` (J, mJ, uJ, nJ, pJ; ``digits`` significant digits)."""
    return _fmt(j, _E_UNITS, digits)


def fmt_time(s: float, digits: int = 3) -> str:
    """``4.2e-5`` -> ``"42 us"`` (s, ms, us, ns)."""
    return _fmt(s, _T_UNITS, digits)


def fmt_power(w: float, digits: int = 3) -> str:
    """``0.0123`` -> ``"12.3 mW"`` (W, mW, uW, nW)."""
    return _fmt(w, _P_UNITS, digits)
