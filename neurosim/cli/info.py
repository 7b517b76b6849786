"""``neurosim models`` and ``neurosim chips``: what the zoo and the chip shelf hold.

Both read plain data only (``models.catalog``, the chips' TOML files): neither loads torch nor
numba, so they answer in well under a second.
"""
from __future__ import annotations

import json

from neurosim.cli.common import emit


def cmd_models(args) -> int:
    from models import catalog
    names = catalog.list_models()
    if not args.long:
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    shipped = catalog.shipped()
    rows = [{"model": n, "family": catalog.family_of(n),
             "shipped checkpoints": ", ".join(c for c, s in shipped.items() if s["model"] == n)
             or "-", "description": catalog.describe(n)} for n in names]
    payload = {"models": [{"name": n, "family": catalog.family_of(n),
                           "description": catalog.describe(n),
                           "shipped_checkpoints": [c for c, s in shipped.items()
                                                   if s["model"] == n]} for n in names],
               "shipped_checkpoints": shipped}
    from neurosim.ir.units import format_table
    lines = [format_table(rows), "", "shipped checkpoints (--checkpoint takes these names): "
             + ", ".join(f"{c} ({s['model']}, {s['workload']})" for c, s in shipped.items())]
    emit(args, payload, lines)
    return 0


def _fmt_hz(hz: float | None) -> str:
    if hz is None:
        return "-"
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if hz >= scale:
            return f"{hz / scale:g} {unit}"
    return f"{hz:g} Hz"


def _fmt_watts(w: float) -> str:
    for scale, unit in ((1.0, "W"), (1e-3, "mW"), (1e-6, "uW")):
        if w >= scale:
            return f"{w / scale:.4g} {unit}"
    return f"{w:.4g} W"


def chip_rows() -> list[dict]:
    """One dict per shipped chip: name, kind, cores, clock (None when clockless), the energy
    table the chip is priced with (its overrides applied), static power and description."""
    from chips.spec import list_chips, load_chip
    out = []
    for name in list_chips():
        chip = load_chip(name)
        table = chip.energy()
        out.append({"name": chip.name, "kind": chip.kind, "n_cores": chip.n_cores,
                    "clock_hz": chip.timing.clock_hz if chip.kind == "sync" else None,
                    "energy_table": table.name, "static_power_w": table.static_power_w,
                    "description": chip.description, "path": str(chip.path)})
    return out


def cmd_chips(args) -> int:
    from neurosim.ir.units import format_table
    chips = chip_rows()
    rows = [{"chip": c["name"], "kind": c["kind"], "cores": c["n_cores"],
             "clock": _fmt_hz(c["clock_hz"]), "energy table": c["energy_table"],
             "static power": _fmt_watts(c["static_power_w"]), "description": c["description"]}
            for c in chips]
    if args.json:
        print(json.dumps(chips, indent=2, sort_keys=True))
    else:
        print(format_table(rows))
    return 0
