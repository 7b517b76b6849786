"""``neurosim models`` and ``neurosim chips``: what the zoo and the chip shelf hold.

Both read plain data only (``models.catalog``, the chips' TOML files): neither loads torch nor
numba, so they answer in well under a second.
"""
from __future__ import annotations

import json

from neurosim.cli.common import emit


def _shipped_rows(shipped: dict) -> list[dict]:
    return [{"checkpoint": c, "model": s["model"] or "?", "trained on": s["workload"] or "?",
             "parameters": s["parameters"] if s["parameters"] is not None else "?",
             "test accuracy": "?" if s["test_accuracy"] is None
             else f"{100 * s['test_accuracy']:.1f}%"} for c, s in shipped.items()]


def _suffix(checkpoint: str, name: str) -> str:
    """``meta-spikeformer-tiny-motion`` under ``meta-spikeformer-tiny`` reads ``-motion``."""
    return checkpoint[len(name):] if checkpoint.startswith(name + "-") else checkpoint


def cmd_models(args) -> int:
    """The zoo: every name with its family and parameter count (the name's defaults) and the
    shipped checkpoints built from it; then the shipped checkpoints (the names --checkpoint and
    ``models.load_checkpoint`` take) with what they were trained on. ``--json`` alone prints
    the names (a list); with ``--long`` everything."""
    from models import catalog
    from neurosim.ir.units import format_table
    names = catalog.list_models()
    if args.json and not args.long:
        print(json.dumps(names))
        return 0
    shipped = catalog.shipped()
    own = {n: [c for c, s in shipped.items() if s["model"] == n] for n in names}
    rows = [{"model": n, "family": catalog.family_of(n), "parameters": catalog.parameters(n),
             "shipped checkpoints": ", ".join(_suffix(c, n) for c in own[n]) or "-",
             **({"description": catalog.describe(n)} if args.long else {})} for n in names]
    payload = {"models": [{"name": n, "family": catalog.family_of(n),
                           "parameters": catalog.parameters(n),
                           "description": catalog.describe(n),
                           "shipped_checkpoints": own[n]} for n in names],
               "shipped_checkpoints": shipped}
    lines = [format_table(rows), "",
             "shipped checkpoints (--checkpoint and models.load_checkpoint take these names):",
             *("  " + ln for ln in format_table(_shipped_rows(shipped)).splitlines())]
    if not args.long:
        lines += ["", "parameters: at each name's defaults; `neurosim models --long` describes "
                      "every model"]
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
    table the chip is priced with (its overrides applied), static power with every core on,
    the default power-gating policy and description."""
    from chips.spec import list_chips, load_chip
    out = []
    for name in list_chips():
        chip = load_chip(name)
        table = chip.energy()
        out.append({"name": chip.name, "kind": chip.kind, "n_cores": chip.n_cores,
                    "clock_hz": chip.timing.clock_hz if chip.kind == "sync" else None,
                    "energy_table": table.name,
                    "static_power_w": (table.static_power_w if table.static_power_w is not None
                                       else chip.static_power_w()),
                    "power_gating": chip.power.power_gating,
                    "description": chip.description, "path": str(chip.path)})
    return out


def cmd_chips(args) -> int:
    from neurosim.ir.units import format_table
    chips = chip_rows()
    rows = [{"chip": c["name"], "kind": c["kind"], "cores": c["n_cores"],
             "clock": _fmt_hz(c["clock_hz"]), "energy table": c["energy_table"],
             "static power": _fmt_watts(c["static_power_w"]),
             "gating": c["power_gating"] or "-", "description": c["description"]}
            for c in chips]
    if args.json:
        print(json.dumps(chips, indent=2, sort_keys=True))
    else:
        print(format_table(rows))
    return 0
