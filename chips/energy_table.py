"""Energy tables: what each action costs, loaded from ``chips/energy/<name>.toml``.

Kept apart from the chip files as in Accelergy (architecture / per-action costs / workload
counts): a :class:`chips.spec.ChipSpec` names its table in ``energy_table`` and may override
single entries in ``[energy_overrides]`` (applied by ``ChipSpec.energy()``). Here live the
:class:`EnergyTable` dataclass, the action names (:data:`ACTIONS`), the ``[actions]`` /
``[primitives]`` schemas and :func:`load_energy_table`; file reading and validation are
:mod:`chips.toml_schema`'s. Every number carries a ``source`` or an ``estimate``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from chips.toml_schema import (NUMBER, PLAIN, Ctx, SpecError, available, check_top_keys,
                               load_raw, resolve, section, top_value)
from chips.toml_schema import spec_field as _q

ENERGY_DIR = Path(__file__).resolve().parent / "energy"
PROCESS_NM_RANGE = (1, 10_000)          # plausible process nodes, nm (spec_field ``range``)

ACTIONS = ("ac_pj", "mac_pj", "weight_read_pj", "membrane_read_pj", "membrane_write_pj",
           "neuron_update_pj", "neuron_spike_pj", "spike_route_pj", "hop_pj",
           "graded_transfer_pj", "graded_hop_pj", "static_power_w", "neuron_access_pj",
           "hop_ns_extra_pj")
# Actions a table may leave out: absent, they cost 0 with this provenance (tables written
# before the action existed price nothing for it; every shipped table keeps its meaning).
OPTIONAL_ACTIONS = {
    "neuron_access_pj": "default 0: this table charges neuron_update_pj per update and nothing "
                        "for visiting idle neurons",
    "hop_ns_extra_pj": "default 0: this table prices a hop the same in every direction",
}


@dataclass(frozen=True)
class EnergyTable:
    """Per-action costs (the ``[actions]`` table), reference primitives (``[primitives]``) and
    provenance. Per-action meanings, as engines count them:

    * ``ac_pj``: one accumulate of a synaptic op (spike x weight); ``mac_pj``: one
      multiply-accumulate (graded input x weight). ``arithmetic`` says which precision /
      convention these are (e.g. "fp32": the seed papers' E_AC / E_MAC).
    * ``weight_read_pj``: reading one weight (of the chip's ``weight_bits``) per synaptic op.
    * ``membrane_read_pj`` / ``membrane_write_pj``: one membrane (state word) access; per
      synaptic op on chips with ``core.membrane_rmw_per_synop``, else once per neuron per tick.
    * ``neuron_update_pj``: one neuron-dynamics update (leak / threshold), excluding the membrane
      accesses above; ``neuron_spike_pj``: extra cost of an update that fires.
    * ``spike_route_pj``: one spike packet sent over the network to another core (router
      injection and ejection; delivery inside the source core is part of the synaptic op);
      ``hop_pj``: one packet crossing one router hop.
    * ``graded_transfer_pj`` / ``graded_hop_pj``: the same for one multi-bit value.
    * ``static_power_w`` (optional, None when absent): a whole-chip static power (W) drawn for
      the whole run that *replaces* the chip's static model (the chip file's ``[power]``:
      per-core leakage, uncore, power gating) when this table prices a run; the 45 nm paper
      convention sets 0 (it ignores static power). Chip tables leave it out.
    * ``neuron_access_pj``: a clocked core visiting one mapped neuron in one tick, whether or
      not it has work (Loihi: every compartment every time step); optional, default 0.
    * ``hop_ns_extra_pj``: extra energy of a north-south (mesh y) hop over ``hop_pj``, so a
      N-S hop costs ``hop_pj + hop_ns_extra_pj`` (Loihi: 3.0 pJ E-W, 4.0-4.2 pJ N-S);
      optional, default 0.
    """

    name: str
    description: str
    arithmetic: str
    process_nm: float
    voltage_v: float | None
    ac_pj: float
    mac_pj: float
    weight_read_pj: float
    membrane_read_pj: float
    membrane_write_pj: float
    neuron_update_pj: float
    neuron_spike_pj: float
    spike_route_pj: float
    hop_pj: float
    graded_transfer_pj: float
    graded_hop_pj: float
    static_power_w: float | None = None
    neuron_access_pj: float = 0.0
    hop_ns_extra_pj: float = 0.0
    primitives: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict, compare=False)
    files: tuple = ()

    def costs(self) -> dict[str, float]:
        """The per-action costs as a plain dict (names carry units; ``static_power_w`` only
        when the table sets it)."""
        return {k: getattr(self, k) for k in ACTIONS if getattr(self, k) is not None}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["files"] = [str(f) for f in self.files]
        return d


@dataclass(frozen=True)
class ActionsSection:
    """Schema of the ``[actions]`` table (and of a chip's ``[energy_overrides]``)."""

    ac_pj: float = _q("float", "energy per accumulate, pJ", range=(0, 1e6))
    mac_pj: float = _q("float", "energy per multiply-accumulate, pJ", range=(0, 1e6))
    weight_read_pj: float = _q("float", "energy per weight read, pJ", range=(0, 1e6))
    membrane_read_pj: float = _q("float", "energy per membrane read, pJ", range=(0, 1e6))
    membrane_write_pj: float = _q("float", "energy per membrane write, pJ", range=(0, 1e6))
    neuron_update_pj: float = _q("float", "energy per neuron update, pJ", range=(0, 1e6))
    neuron_spike_pj: float = _q("float", "extra energy of a firing update, pJ", range=(0, 1e6))
    spike_route_pj: float = _q("float", "energy per spike packet delivered, pJ", range=(0, 1e6))
    hop_pj: float = _q("float", "energy per spike packet per hop, pJ", range=(0, 1e6))
    graded_transfer_pj: float = _q("float", "energy per graded value delivered, pJ", range=(0, 1e6))
    graded_hop_pj: float = _q("float", "energy per graded value per hop, pJ", range=(0, 1e6))
    static_power_w: float | None = _q("float", "whole-chip static power replacing the chip's "
                                      "static model, W (optional)", required=False, range=(0, 1e4))
    neuron_access_pj: float | None = _q("float", "energy per mapped neuron per tick, pJ "
                                        "(default 0)", required=False, range=(0, 1e6))
    hop_ns_extra_pj: float | None = _q("float", "extra energy of a north-south hop over "
                                       "hop_pj, pJ (default 0)", required=False, range=(0, 1e6))


@dataclass(frozen=True)
class PrimitivesSection:
    """Horowitz-style reference primitives (per operation, or per 64-bit memory access)."""

    ac_int8_pj: float | None = _q("float", "int8 add, pJ", required=False, range=(0, 1e6))
    ac_int32_pj: float | None = _q("float", "int32 add, pJ", required=False, range=(0, 1e6))
    mult_int8_pj: float | None = _q("float", "int8 multiply, pJ", required=False, range=(0, 1e6))
    mult_int32_pj: float | None = _q("float", "int32 multiply, pJ", required=False, range=(0, 1e6))
    mac_int8_pj: float | None = _q("float", "int8 multiply-add, pJ", required=False, range=(0, 1e6))
    ac_fp16_pj: float | None = _q("float", "fp16 add, pJ", required=False, range=(0, 1e6))
    mult_fp16_pj: float | None = _q("float", "fp16 multiply, pJ", required=False, range=(0, 1e6))
    mac_fp16_pj: float | None = _q("float", "fp16 multiply-add, pJ", required=False, range=(0, 1e6))
    ac_fp32_pj: float | None = _q("float", "fp32 add, pJ", required=False, range=(0, 1e6))
    mult_fp32_pj: float | None = _q("float", "fp32 multiply, pJ", required=False, range=(0, 1e6))
    mac_fp32_pj: float | None = _q("float", "fp32 multiply-add, pJ", required=False, range=(0, 1e6))
    sram_8kb_read_64bit_pj: float | None = _q("float", "8 KB SRAM 64-bit read, pJ",
                                              required=False, range=(0, 1e6))
    sram_32kb_read_64bit_pj: float | None = _q("float", "32 KB SRAM 64-bit read, pJ",
                                               required=False, range=(0, 1e6))
    sram_1mb_read_64bit_pj: float | None = _q("float", "1 MB SRAM 64-bit read, pJ",
                                              required=False, range=(0, 1e6))
    dram_access_64bit_min_pj: float | None = _q("float", "DRAM 64-bit access, low end, pJ",
                                                required=False, range=(0, 1e6))
    dram_access_64bit_max_pj: float | None = _q("float", "DRAM 64-bit access, high end, pJ",
                                                required=False, range=(0, 1e6))


ENERGY_KEYPATH = {k: f"actions.{k}" for k in ACTIONS}   # override key -> provenance key path
_ENERGY_TOP = ("name", "description", "arithmetic", "process_nm", "voltage_v", "actions",
               "primitives")


def list_energy_tables() -> list[str]:
    """Names of the energy tables shipped in ``chips/energy/``."""
    return available(ENERGY_DIR)


def energy_table_path(ref: str, chip_dir: Path) -> Path:
    """The file a chip's ``energy_table = ref`` names: a path (relative to the chip file's
    directory ``chip_dir``) or a table name in ``chips/energy/``."""
    if ref.endswith(".toml") or "/" in ref:
        p = Path(ref)
        p = (p if p.is_absolute() else chip_dir / p).resolve()
        if not p.is_file():
            raise SpecError(f"energy table file not found: {p}")
        return p
    return resolve(ref, ENERGY_DIR, "energy table")


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """Load ``chips/energy/<name>.toml`` (or the TOML file at a path) into an EnergyTable."""
    path = resolve(name_or_path, ENERGY_DIR, "energy table")
    data, origins, files = load_raw(path, search=(ENERGY_DIR,))
    ctx = Ctx(origins, path, set())
    check_top_keys(ctx, data, _ENERGY_TOP)
    name = top_value(ctx, data, "name", PLAIN)
    description = top_value(ctx, data, "description", PLAIN)
    arithmetic = top_value(ctx, data, "arithmetic", PLAIN)
    process_nm = top_value(ctx, data, "process_nm", {**NUMBER, "range": PROCESS_NM_RANGE})
    voltage_v = top_value(ctx, data, "voltage_v", {**NUMBER, "range": (0.05, 50)},
                          required=False)
    if "actions" not in data:
        ctx.fail("actions", "missing")
    actions = section(ctx, ActionsSection, data["actions"], "actions.")
    for k, why in OPTIONAL_ACTIONS.items():
        if actions[k] is None:
            actions[k] = 0.0
            ctx.provenance[f"actions.{k}"] = why
    prims = section(ctx, PrimitivesSection, data.get("primitives"), "primitives.")
    prims = {k: v for k, v in prims.items() if v is not None}
    return EnergyTable(name=name, description=description, arithmetic=arithmetic,
                       process_nm=process_nm, voltage_v=voltage_v, **actions, primitives=prims,
                       provenance=dict(ctx.provenance), files=tuple(files))


__all__ = ["ACTIONS", "OPTIONAL_ACTIONS", "ENERGY_DIR", "ActionsSection", "EnergyTable",
           "PrimitivesSection", "SpecError", "energy_table_path", "list_energy_tables",
           "load_energy_table"]
