"""Plain-text tables for the CLI and reports (one formatter for every table neurosim prints)."""
from __future__ import annotations


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
