"""Chip specifications, loaded from ``chips/<name>.toml`` files kept beside this module.

Two kinds of file, kept apart as in Accelergy (architecture / per-action costs / workload counts):

* ``chips/<name>.toml`` -> :class:`ChipSpec` (this module): what the chip *is* (mesh, cores,
  memories, limits, timing, published power figures).
* ``chips/energy/<name>.toml`` -> :class:`EnergyTable` (:mod:`chips.energy_table`): what each
  action *costs* (pJ per accumulate, per weight read, per hop, ...). A chip names its table in
  ``energy_table`` and may override single entries in ``[energy_overrides]``.

Provenance rule (DESIGN.md invariant 3): every number (and every capability flag) is written as
``{value = ..., source = "paper, table/section"}`` or ``{value = ..., estimate = "why"}`` (both
keys may be given). Identifiers (``name``, ``kind``, ``energy_table``, ``topology``,
``memory_model``, ``arithmetic``, ``description``) are plain strings. Validation errors name the
file, the key path (``core.neurons_per_core``) and the problem; unknown keys are errors. The
reading, ``extends`` merging and validation machinery is :mod:`chips.toml_schema`.

A scaled variant is a small file with ``extends = "tianjic"`` and only the changed keys; tables
are deep-merged, a ``{value, source|estimate}`` entry replaces the inherited one whole, cycles in
``extends`` are errors.

Units are in the names: ``*_hz``, ``*_ns``, ``*_w``, ``*_pj``, ``*_bytes``, ``*_entries``
(memory words of the stated bit width), ``*_cycles`` (clock periods; not seconds), ``*_nm``.

The energy-table names (``EnergyTable``, ``ACTIONS``, ``ENERGY_DIR``, ``load_energy_table``,
``list_energy_tables``) and ``SpecError`` are re-exported here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from chips.energy_table import (ACTIONS, ENERGY_DIR, ENERGY_KEYPATH, ActionsSection,
                                EnergyTable, PrimitivesSection, energy_table_path,
                                list_energy_tables, load_energy_table)
from chips.toml_schema import (NUMBER, PLAIN, Ctx, SpecError, available, check_top_keys,
                               load_raw, mode_value, resolve, section, spec_fields, top_value)
from chips.toml_schema import spec_field as _q

CHIPS_DIR = Path(__file__).resolve().parent

KINDS = ("sync", "async")
TOPOLOGIES = ("mesh", "all-to-all")
MEMORY_MODELS = ("flat", "dynapcnn")


# ----------------------------------------------------------------------------- chip sections
@dataclass(frozen=True)
class MeshSpec:
    """Cores and the network between them. ``mesh``: a 2-D mesh with XY routing, core id =
    y * mesh_x + x; ``all-to-all``: every pair of cores one hop apart (a shared event router)."""

    topology: str = _q("str", "mesh or all-to-all", choices=TOPOLOGIES, plain=True)
    mesh_x: int | None = _q("int", "cores along x", when="mesh", positive=True)
    mesh_y: int | None = _q("int", "cores along y", when="mesh", positive=True)
    n_cores: int | None = _q("int", "number of cores (mesh: must equal mesh_x * mesh_y)",
                             required=False, positive=True)
    hop_cycles: float | None = _q("float", "router latency per hop, clock periods", when="sync")
    hop_latency_ns: float | None = _q("float", "router latency per hop, ns", when="async")


@dataclass(frozen=True)
class CoreSpec:
    """One core's resources. ``flat`` memory: byte budgets for weights and neuron state plus a
    neuron count. ``dynapcnn`` memory: kernel / neuron / bias memories in entries, needs given by
    the DYNAP-CNN power-of-two formulas. Capacities are one value for all cores or a list with
    one value per core (Speck)."""

    memory_model: str = _q("str", "flat or dynapcnn", choices=MEMORY_MODELS, plain=True)
    neurons_per_core: int | tuple | None = _q("int|ints", "neurons per core", when="flat",
                                              positive=True)
    weight_memory_bytes: int | tuple | None = _q("int|ints", "synaptic weight memory per core, "
                                                 "bytes", when="flat", positive=True)
    state_memory_bytes: int | tuple | None = _q("int|ints", "neuron state memory per core "
                                                "(membranes, accumulators, products), bytes",
                                                when="flat", positive=True)
    sram_bytes: int | None = _q("int", "total SRAM per core, bytes (reference)", required=False,
                                positive=True)
    kernel_memory_entries: int | tuple | None = _q("int|ints", "kernel memory per core, weight "
                                                   "entries", when="dynapcnn", positive=True)
    neuron_memory_entries: int | tuple | None = _q("int|ints", "neuron memory per core, state "
                                                   "entries", when="dynapcnn", positive=True)
    bias_memory_entries: int | tuple | None = _q("int|ints", "bias memory per core, entries",
                                                 when="dynapcnn", positive=True)
    fan_in_max: int | None = _q("int", "synaptic inputs per neuron", required=False,
                                positive=True)
    fan_out_max: int | None = _q("int", "synaptic targets per neuron (reference)",
                                 required=False, positive=True)
    weight_bits: int = _q("int", "weight width, bits", positive=True)
    state_bits: int = _q("int", "membrane / accumulator width, bits", positive=True)
    membrane_rmw_per_synop: bool = _q("bool", "each synaptic op reads and writes the target "
                                      "membrane in memory (else once per neuron per tick)")


@dataclass(frozen=True)
class LimitsSpec:
    """Per-layer limits of the core's layer engine (absent = no limit)."""

    kernel_max: int | None = _q("int", "largest square kernel side", required=False,
                                positive=True)
    strides: tuple | None = _q("ints", "allowed strides", required=False)
    padding_max: int | None = _q("int", "largest padding", required=False)
    channels_max: int | None = _q("int", "most input or output channels of a layer",
                                  required=False, positive=True)
    input_hw_max: int | None = _q("int", "largest input height / width", required=False,
                                  positive=True)
    destinations_max: int | None = _q("int", "most destination layers per layer",
                                      required=False, positive=True)
    pool_sizes: tuple | None = _q("ints", "supported (sum) pooling sizes", required=False)


@dataclass(frozen=True)
class FeatureSpec:
    """What the cores can compute and carry."""

    split_layers: bool = _q("bool", "a layer may be split over several cores by output channel")
    graded_edges: bool = _q("bool", "multi-bit values (and graded input) may travel between "
                            "cores")
    spike_products: bool = _q("bool", "spike x spike products (SpikeMatmul, TokenSum, Mask)")
    max_pool: bool = _q("bool", "max pooling")
    grouped_conv: bool = _q("bool", "grouped / depthwise kernels stored compactly (else "
                            "expanded to dense kernels with zeros)")


@dataclass(frozen=True)
class TimingSpec:
    """Sync chips: a global clock and a fixed time step of ``tick_cycles`` periods made of a
    compute phase and a communication phase (an engine takes the longer of the published tick
    and what the busiest core needs). Async chips: per-event service and latency."""

    clock_hz: float | None = _q("float", "global clock", when="sync", positive=True)
    tick_cycles: float | None = _q("float", "clock periods per time step", when="sync",
                                   positive=True)
    cycles_per_ac: float | None = _q("float", "core cycles per accumulate (SNN mode)",
                                     when="sync", positive=True)
    cycles_per_mac: float | None = _q("float", "core cycles per multiply-accumulate (ANN mode)",
                                      when="sync", positive=True)
    cycles_per_neuron_update: float | None = _q("float", "core cycles per neuron update",
                                                when="sync", positive=True)
    comm_phase_cycles: float | None = _q("float", "communication phase of a time step, cycles",
                                         when="sync")
    synop_service_ns: float | None = _q("float", "core service time per synaptic op, ns",
                                        when="async", positive=True)
    event_latency_ns: float | None = _q("float", "latency of one event through one layer, ns",
                                        when="async")
    fifo_depth: int | None = _q("int", "input event FIFO depth per core, events", when="async",
                                positive=True)
    burst_isi_ns: float | None = _q("float", "spacing of spikes in an SFA burst, ns",
                                    when="async")


@dataclass(frozen=True)
class PowerSpec:
    """Published whole-chip power figures, for reference and validation (the accounting uses
    the energy table's ``static_power_w``)."""

    resting_power_w: float | None = _q("float", "idle power", required=False)
    average_power_w: float | None = _q("float", "average power on published applications",
                                       required=False)
    operating_power_min_w: float | None = _q("float", "lowest operating power", required=False)
    operating_power_max_w: float | None = _q("float", "highest operating power", required=False)


@dataclass(frozen=True)
class CoreCapacity:
    """Resources of one core, normalized from the spec (None where the memory model has none)."""

    neurons: int | None = None
    weight_bytes: int | None = None
    state_bytes: int | None = None
    kernel_entries: int | None = None
    neuron_entries: int | None = None
    bias_entries: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ChipSpec:
    """A chip: identity, mesh, core resources, limits, features, timing, published power.

    ``provenance`` maps every key path to "source: ..." / "estimate: ..."; ``files`` lists the
    files merged to build it (base first)."""

    name: str
    kind: str
    energy_table: str
    description: str
    process_nm: float
    mesh: MeshSpec
    core: CoreSpec
    limits: LimitsSpec
    features: FeatureSpec
    timing: TimingSpec
    power: PowerSpec
    energy_overrides: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict, compare=False)
    files: tuple = ()

    @property
    def n_cores(self) -> int:
        return self.mesh.n_cores

    @property
    def path(self) -> Path:
        return Path(self.files[-1])

    @property
    def tick_s(self) -> float | None:
        """Published time-step length in seconds (sync chips), ``tick_cycles / clock_hz``."""
        t = self.timing
        return t.tick_cycles / t.clock_hz if self.kind == "sync" else None

    @property
    def cycle_s(self) -> float | None:
        return 1.0 / self.timing.clock_hz if self.kind == "sync" else None

    @property
    def hop_latency_s(self) -> float:
        """Router latency per hop in seconds (sync: hop_cycles / clock_hz)."""
        if self.kind == "sync":
            return self.mesh.hop_cycles / self.timing.clock_hz
        return self.mesh.hop_latency_ns * 1e-9

    def _per_core(self, value, core: int):
        if value is None:
            return None
        return int(value[core]) if isinstance(value, tuple) else int(value)

    def capacity(self, core: int) -> CoreCapacity:
        """Resources of core ``core`` (0 <= core < n_cores)."""
        if not 0 <= core < self.n_cores:
            raise IndexError(f"chip {self.name!r} has cores 0..{self.n_cores - 1}, not {core}")
        c = self.core
        if c.memory_model == "flat":
            return CoreCapacity(neurons=self._per_core(c.neurons_per_core, core),
                                weight_bytes=self._per_core(c.weight_memory_bytes, core),
                                state_bytes=self._per_core(c.state_memory_bytes, core))
        return CoreCapacity(kernel_entries=self._per_core(c.kernel_memory_entries, core),
                            neuron_entries=self._per_core(c.neuron_memory_entries, core),
                            bias_entries=self._per_core(c.bias_memory_entries, core))

    def capacities(self) -> list[CoreCapacity]:
        return [self.capacity(i) for i in range(self.n_cores)]

    @property
    def homogeneous(self) -> bool:
        """True when every core has the same resources."""
        caps = self.capacities()
        return all(c == caps[0] for c in caps)

    def energy(self) -> EnergyTable:
        """The chip's energy table with ``[energy_overrides]`` applied."""
        base = energy_table_path(self.energy_table, self.path.parent)
        table = load_energy_table(base)
        if not self.energy_overrides:
            return table
        prov = dict(table.provenance)
        for k in self.energy_overrides:
            prov[ENERGY_KEYPATH[k]] = self.provenance[f"energy_overrides.{k}"]
        return dataclasses.replace(table, **self.energy_overrides,
                                   name=f"{table.name}+{self.name}", provenance=prov)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["files"] = [str(f) for f in self.files]
        d["n_cores"] = self.n_cores
        return d


# ----------------------------------------------------------------------------- loading
_CHIP_TOP = ("name", "kind", "energy_table", "description", "process_nm", "mesh", "core",
             "limits", "features", "timing", "power", "energy_overrides")


def list_chips() -> list[str]:
    """Names of the chip files shipped in ``chips/``."""
    return available(CHIPS_DIR)


def load_chip(name_or_path: str | Path | ChipSpec) -> ChipSpec:
    """Load ``chips/<name>.toml`` (or the TOML file at a path) into a validated ChipSpec; a
    ChipSpec is returned as is."""
    if isinstance(name_or_path, ChipSpec):
        return name_or_path
    path = resolve(name_or_path, CHIPS_DIR, "chip")
    data, origins, files = load_raw(path)
    ctx = Ctx(origins, path, set())
    check_top_keys(ctx, data, _CHIP_TOP)
    name = top_value(ctx, data, "name", PLAIN)
    kind = top_value(ctx, data, "kind", PLAIN, choices=KINDS)
    topology = mode_value(ctx, data, "mesh", "topology", TOPOLOGIES)
    memory_model = mode_value(ctx, data, "core", "memory_model", MEMORY_MODELS)
    ctx.modes = {kind, topology, memory_model}
    energy_table = top_value(ctx, data, "energy_table", PLAIN)
    description = top_value(ctx, data, "description", PLAIN)
    process_nm = top_value(ctx, data, "process_nm", NUMBER)
    mesh = MeshSpec(**section(ctx, MeshSpec, data.get("mesh"), "mesh."))
    core = CoreSpec(**section(ctx, CoreSpec, data.get("core"), "core."))
    limits = LimitsSpec(**section(ctx, LimitsSpec, data.get("limits"), "limits."))
    features = FeatureSpec(**section(ctx, FeatureSpec, data.get("features"), "features."))
    timing = TimingSpec(**section(ctx, TimingSpec, data.get("timing"), "timing."))
    power = PowerSpec(**section(ctx, PowerSpec, data.get("power"), "power."))
    overrides = section(ctx, ActionsSection, data.get("energy_overrides"), "energy_overrides.",
                        all_optional=True)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    mesh = _cross_check(ctx, kind, mesh, core, timing)
    try:
        energy_table_path(energy_table, path.parent)
    except SpecError as e:
        ctx.fail("energy_table", str(e))
    return ChipSpec(name=name, kind=kind, energy_table=energy_table, description=description,
                    process_nm=process_nm, mesh=mesh, core=core, limits=limits,
                    features=features, timing=timing, power=power, energy_overrides=overrides,
                    provenance=dict(ctx.provenance), files=tuple(files))


def _cross_check(ctx: Ctx, kind: str, mesh: MeshSpec, core: CoreSpec,
                 timing: TimingSpec) -> MeshSpec:
    """Checks across sections (core counts, per-core lists, memory budgets, tick phases);
    returns ``mesh`` with ``n_cores`` filled in for a mesh topology."""
    if mesh.topology == "mesh":
        prod = mesh.mesh_x * mesh.mesh_y
        if mesh.n_cores is not None and mesh.n_cores != prod:
            ctx.fail("mesh.n_cores", f"{mesh.n_cores} != mesh_x * mesh_y = {prod}")
        mesh = dataclasses.replace(mesh, n_cores=prod)
    elif mesh.n_cores is None:
        ctx.fail("mesh.n_cores", "missing (required for all-to-all chips)")
    for f in dataclasses.fields(CoreSpec):
        v = getattr(core, f.name)
        if isinstance(v, tuple) and f.metadata.get("typ") == "int|ints" \
                and len(v) != mesh.n_cores:
            ctx.fail(f"core.{f.name}", f"has {len(v)} per-core values, the chip has "
                                       f"{mesh.n_cores} cores")
    if (core.memory_model == "flat" and core.sram_bytes is not None
            and not isinstance(core.weight_memory_bytes, tuple)
            and not isinstance(core.state_memory_bytes, tuple)
            and core.weight_memory_bytes + core.state_memory_bytes > core.sram_bytes):
        ctx.fail("core.weight_memory_bytes", f"weight ({core.weight_memory_bytes}) + state "
                 f"({core.state_memory_bytes}) memory exceed sram_bytes ({core.sram_bytes})")
    if kind == "sync" and timing.comm_phase_cycles > timing.tick_cycles:
        ctx.fail("timing.comm_phase_cycles", f"{timing.comm_phase_cycles} exceeds "
                                             f"tick_cycles {timing.tick_cycles}")
    return mesh


def schema() -> dict[str, list[tuple[str, str, str]]]:
    """Documented keys per section: {section: [(key, type, doc)]} (for docs and the CLI)."""
    secs = {"mesh": MeshSpec, "core": CoreSpec, "limits": LimitsSpec, "features": FeatureSpec,
            "timing": TimingSpec, "power": PowerSpec, "actions": ActionsSection,
            "primitives": PrimitivesSection}
    return {s: [(k, f.metadata["typ"], f.metadata["doc"] + (f" [{f.metadata['when']}]"
                                                             if f.metadata["when"] else ""))
                for k, f in spec_fields(c).items()] for s, c in secs.items()}


__all__ = ["ChipSpec", "CoreCapacity", "CoreSpec", "EnergyTable", "FeatureSpec", "LimitsSpec",
           "MeshSpec", "PowerSpec", "SpecError", "TimingSpec", "ACTIONS", "CHIPS_DIR",
           "ENERGY_DIR", "list_chips", "list_energy_tables", "load_chip", "load_energy_table",
           "schema"]
