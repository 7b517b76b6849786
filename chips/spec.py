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

from chips.energy_table import (ACTIONS, ENERGY_DIR, ENERGY_KEYPATH, PROCESS_NM_RANGE,
                                ActionsSection, EnergyTable, PrimitivesSection,
                                energy_table_path, list_energy_tables, load_energy_table)
from chips.toml_schema import (NUMBER, PLAIN, Ctx, SpecError, available, check_top_keys,
                               load_raw, mode_value, resolve, section, spec_fields, top_value)
from chips.toml_schema import spec_field as _q

CHIPS_DIR = Path(__file__).resolve().parent

KINDS = ("sync", "async")
TOPOLOGIES = ("mesh", "all-to-all")
MEMORY_MODELS = ("flat", "dynapcnn")
GATING_POLICIES = ("none", "unused", "idle")
FREE_REALISATIONS = ("token", "timeout")


# ----------------------------------------------------------------------------- chip sections
@dataclass(frozen=True)
class MeshSpec:
    """Cores and the network between them. ``mesh``: a 2-D mesh of routers with XY routing;
    each router serves a *tile* of ``cores_per_tile`` cores (default 1); tile id =
    y * mesh_x + x, core id = tile id * cores_per_tile + offset in the tile (``chips.topology``);
    ``all-to-all``: every pair of cores one hop apart (a shared event router)."""

    topology: str = _q("str", "mesh or all-to-all", choices=TOPOLOGIES, plain=True)
    mesh_x: int | None = _q("int", "tiles (routers) along x, east-west", when="mesh",
                            positive=True, range=(1, 4096))
    mesh_y: int | None = _q("int", "tiles (routers) along y, north-south", when="mesh",
                            positive=True, range=(1, 4096))
    cores_per_tile: int | None = _q("int", "cores sharing one router (default 1)", when="mesh",
                                    required=False, positive=True, range=(1, 1024))
    n_cores: int | None = _q("int", "number of cores (mesh: must equal mesh_x * mesh_y * "
                             "cores_per_tile)", required=False, positive=True, range=(1, 2 ** 24))
    hop_cycles: float | None = _q("float", "router latency per hop, clock periods", when="sync",
                                  range=(0, 1e4))
    hop_latency_ns: float | None = _q("float", "router latency per hop, ns", when="async",
                                      range=(0, 1e6))
    link_events_per_s: float | None = _q("float", "events per second one link (mesh) or the "
                                         "shared event bus (all-to-all) carries", when="async",
                                         positive=True, range=(1e3, 1e13))


@dataclass(frozen=True)
class CoreSpec:
    """One core's resources. ``flat`` memory: byte budgets for weights and neuron state plus a
    neuron count. ``dynapcnn`` memory: kernel / neuron / bias memories in entries, needs given by
    the DYNAP-CNN power-of-two formulas. Capacities are one value for all cores or a list with
    one value per core (Speck)."""

    memory_model: str = _q("str", "flat or dynapcnn", choices=MEMORY_MODELS, plain=True)
    neurons_per_core: int | tuple | None = _q("int|ints", "neurons per core", when="flat",
                                              positive=True, range=(1, 2 ** 24))
    weight_memory_bytes: int | tuple | None = _q("int|ints", "synaptic weight memory per core, "
                                                 "bytes", when="flat", positive=True,
                                                 range=(1, 2 ** 34))
    state_memory_bytes: int | tuple | None = _q("int|ints", "neuron state memory per core "
                                                "(membranes, accumulators, products), bytes",
                                                when="flat", positive=True, range=(1, 2 ** 34))
    sram_bytes: int | None = _q("int", "total SRAM per core, bytes (reference)", required=False,
                                positive=True, range=(1, 2 ** 34))
    kernel_memory_entries: int | tuple | None = _q("int|ints", "kernel memory per core, weight "
                                                   "entries", when="dynapcnn", positive=True,
                                                   range=(1, 2 ** 32))
    neuron_memory_entries: int | tuple | None = _q("int|ints", "neuron memory per core, state "
                                                   "entries", when="dynapcnn", positive=True,
                                                   range=(1, 2 ** 32))
    bias_memory_entries: int | tuple | None = _q("int|ints", "bias memory per core, entries",
                                                 when="dynapcnn", positive=True, range=(1, 2 ** 32))
    fan_in_max: int | None = _q("int", "synaptic inputs per neuron", required=False,
                                positive=True, range=(1, 2 ** 24))
    fan_out_max: int | None = _q("int", "synaptic targets per neuron (reference)",
                                 required=False, positive=True, range=(1, 2 ** 24))
    weight_bits: int = _q("int", "weight width, bits", positive=True, range=(1, 64))
    state_bits: int = _q("int", "membrane / accumulator width, bits", positive=True, range=(1, 64))
    membrane_rmw_per_synop: bool = _q("bool", "each synaptic op reads and writes the target "
                                      "membrane in memory (else once per neuron per tick)")


@dataclass(frozen=True)
class LimitsSpec:
    """Per-layer limits of the core's layer engine (absent = no limit)."""

    kernel_max: int | None = _q("int", "largest square kernel side", required=False,
                                positive=True, range=(1, 1024))
    strides: tuple | None = _q("ints", "allowed strides", required=False, range=(1, 1024))
    padding_max: int | None = _q("int", "largest padding", required=False, range=(0, 1024))
    channels_max: int | None = _q("int", "most input or output channels of a layer",
                                  required=False, positive=True, range=(1, 2 ** 20))
    input_hw_max: int | None = _q("int", "largest input height / width", required=False,
                                  positive=True, range=(1, 2 ** 16))
    destinations_max: int | None = _q("int", "most destination layers per layer",
                                      required=False, positive=True, range=(1, 2 ** 16))
    pool_sizes: tuple | None = _q("ints", "supported (sum) pooling sizes", required=False,
                                  range=(1, 1024))


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

    clock_hz: float | None = _q("float", "global clock", when="sync", positive=True,
                                range=(1e3, 1e11))
    tick_cycles: float | None = _q("float", "clock periods per time step", when="sync",
                                   positive=True, range=(1, 1e10))
    cycles_per_ac: float | None = _q("float", "core cycles per accumulate (SNN mode)",
                                     when="sync", positive=True, range=(1e-6, 1e6))
    cycles_per_mac: float | None = _q("float", "core cycles per multiply-accumulate (ANN mode)",
                                      when="sync", positive=True, range=(1e-6, 1e6))
    cycles_per_neuron_update: float | None = _q("float", "core cycles per neuron update",
                                                when="sync", positive=True, range=(1e-6, 1e6))
    comm_phase_cycles: float | None = _q("float", "communication phase of a time step, cycles",
                                         when="sync", range=(0, 1e10))
    cycles_per_neuron_access: float | None = _q("float", "core cycles per mapped neuron visited "
                                                "in every tick, idle or not", when="sync",
                                                required=False, range=(0, 1e6))
    cycles_per_spike: float | None = _q("float", "core cycles per spike emitted", when="sync",
                                        required=False, range=(0, 1e6))
    cycles_per_message_out: float | None = _q("float", "core cycles per spike packet sent",
                                              when="sync", required=False, range=(0, 1e6))
    cycles_per_message_in: float | None = _q("float", "core cycles per spike packet received",
                                             when="sync", required=False, range=(0, 1e6))
    overlap_phases: bool | None = _q("bool", "a core updates its neurons and serves incoming "
                                     "packets concurrently: a tick lasts the longer of the "
                                     "busiest neuron phase and the busiest synapse phase "
                                     "(default false: one after the other)", when="sync",
                                     required=False)
    soma_next_tick: bool | None = _q("bool", "a core's neurons integrate the spikes that arrive "
                                     "in one tick during the next one (dendritic accumulators): "
                                     "a population's neuron phase runs one tick after its "
                                     "synapse phase (default false: the same tick)",
                                     when="sync", required=False)
    barrier_tiles: tuple | None = _q("ints", "tiles in use at which each barrier_cycles entry "
                                     "starts (increasing, first >= 1)", when="sync",
                                     required=False, range=(1, 2 ** 24))
    barrier_cycles: tuple | None = _q("ints", "end-of-tick barrier, cycles: the entry of the "
                                      "largest barrier_tiles <= the tiles in use", when="sync",
                                      required=False, range=(0, 1e10))
    synop_service_ns: float | None = _q("float", "core service time per synaptic op, ns",
                                        when="async", positive=True, range=(1e-3, 1e6))
    event_latency_ns: float | None = _q("float", "latency of one event through one layer, ns",
                                        when="async", range=(0, 1e9))
    fifo_depth: int | None = _q("int", "input event FIFO depth per core, events", when="async",
                                positive=True, range=(1, 2 ** 24))
    burst_isi_ns: float | None = _q("float", "spacing of spikes in an SFA burst, ns",
                                    when="async", range=(0, 1e9))
    settle_ns: float | None = _q("float", "free-running 'timeout' realisation: an operation "
                                 "that needs a complete operand fires after this long without "
                                 "input, ns", when="async", range=(0, 1e9))
    free_realisation: str | None = _q("str", "how free-running mode completes operations that "
                                      "need a complete operand: token (end-of-window handshake) "
                                      "or timeout (settle_ns); default token",
                                      choices=FREE_REALISATIONS, when="async", required=False)


@dataclass(frozen=True)
class PowerSpec:
    """Static power model and published whole-chip power figures.

    Static power while a chip is on = ``uncore_static_w`` (I/O, clock and router parts shared by
    all cores) + ``leakage_per_core_w`` of every powered core (leakage, plus the idle clock load
    on clocked chips). ``power_gating`` says which cores are powered: ``none``, every core for
    the whole run; ``unused``, the cores holding a mapped part; ``idle``, a core only while it
    has work (a sync tick with busy cycles, an async busy interval) and across idle gaps shorter
    than the break-even time, paying ``wake_energy_pj`` per power-up (``neurosim.costing.
    static``). The published figures (resting, average, operating power) are for reference and
    validation. A chip without the three static keys has no static power."""

    power_gating: str | None = _q("str", "default power-gating policy: none, unused or idle",
                                  choices=GATING_POLICIES, required=False)
    leakage_per_core_w: float | tuple | None = _q("float|floats", "static power of one powered "
                                                  "core, W (one value, or one per core)",
                                                  required=False, range=(0, 100))
    uncore_static_w: float | None = _q("float", "static power of the parts shared by all cores "
                                       "(I/O, clock, routers), W", required=False, range=(0, 1e4))
    wake_energy_pj: float | None = _q("float", "energy to power a gated core up, pJ",
                                      required=False, range=(0, 1e9))
    wake_latency_ns: float | None = _q("float", "time to power a gated core up, ns",
                                       required=False, range=(0, 1e9))
    resting_power_w: float | None = _q("float", "idle power", required=False, range=(0, 1e4))
    average_power_w: float | None = _q("float", "average power on published applications",
                                       required=False, range=(0, 1e4))
    operating_power_min_w: float | None = _q("float", "lowest operating power", required=False,
                                             range=(0, 1e4))
    operating_power_max_w: float | None = _q("float", "highest operating power", required=False,
                                             range=(0, 1e4))


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

    @property
    def has_static_model(self) -> bool:
        """True when ``[power]`` gives a static power model (policy, leakage, uncore)."""
        return self.power.power_gating is not None

    def leakage_w(self, core: int) -> float:
        """Static power of core ``core`` while powered, W (0 without a static model)."""
        if not 0 <= core < self.n_cores:
            raise IndexError(f"chip {self.name!r} has cores 0..{self.n_cores - 1}, not {core}")
        v = self.power.leakage_per_core_w
        if v is None:
            return 0.0
        return float(v[core]) if isinstance(v, tuple) else float(v)

    def static_power_w(self, cores=None) -> float:
        """Static power with ``cores`` powered (all cores when None) plus the uncore, W: what
        the chip draws doing nothing under ``power_gating = "none"``."""
        cores = range(self.n_cores) if cores is None else cores
        return (self.power.uncore_static_w or 0.0) + sum(self.leakage_w(int(c)) for c in cores)

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
    data, origins, files = load_raw(path, search=(CHIPS_DIR,))
    ctx = Ctx(origins, path, set())
    check_top_keys(ctx, data, _CHIP_TOP)
    name = top_value(ctx, data, "name", PLAIN)
    kind = top_value(ctx, data, "kind", PLAIN, choices=KINDS)
    topology = mode_value(ctx, data, "mesh", "topology", TOPOLOGIES)
    memory_model = mode_value(ctx, data, "core", "memory_model", MEMORY_MODELS)
    ctx.modes = {kind, topology, memory_model}
    ctx.mode_keys = {"kind": (kind, KINDS), "mesh.topology": (topology, TOPOLOGIES),
                     "core.memory_model": (memory_model, MEMORY_MODELS)}
    energy_table = top_value(ctx, data, "energy_table", PLAIN)
    description = top_value(ctx, data, "description", PLAIN)
    process_nm = top_value(ctx, data, "process_nm", {**NUMBER, "range": PROCESS_NM_RANGE})
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
    _check_power(ctx, power, mesh.n_cores)
    try:                              # the table must exist and be valid now, not at first use
        load_energy_table(energy_table_path(energy_table, path.parent))
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
        cpt = mesh.cores_per_tile or 1
        prod = mesh.mesh_x * mesh.mesh_y * cpt
        if mesh.n_cores is not None and mesh.n_cores != prod:
            ctx.fail("mesh.n_cores", f"{mesh.n_cores} != mesh_x * mesh_y = {prod}" if cpt == 1
                     else f"{mesh.n_cores} != mesh_x * mesh_y * cores_per_tile = {prod}")
        mesh = dataclasses.replace(mesh, n_cores=prod, cores_per_tile=cpt)
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
    _check_barrier(ctx, timing)
    return mesh


def _check_power(ctx: Ctx, power: PowerSpec, n_cores: int) -> None:
    """The static model: policy, per-core leakage and uncore all given or none of them; one
    leakage value per core; ``idle`` gating needs a positive wake-up energy and a latency."""
    model = ("power_gating", "leakage_per_core_w", "uncore_static_w")
    given = [k for k in model if getattr(power, k) is not None]
    if given and len(given) < len(model):
        missing = next(k for k in model if getattr(power, k) is None)
        ctx.fail(f"power.{missing}", f"missing: a static power model sets all of "
                                     f"{', '.join(model)} (power.{given[0]} is set)")
    leak = power.leakage_per_core_w
    if isinstance(leak, tuple) and len(leak) != n_cores:
        ctx.fail("power.leakage_per_core_w", f"has {len(leak)} per-core values, the chip has "
                                             f"{n_cores} cores")
    if power.power_gating == "idle":
        for k in ("wake_energy_pj", "wake_latency_ns"):
            if getattr(power, k) is None:
                ctx.fail("power.power_gating", f'is "idle" but power.{k} is missing: gating '
                         f"idle cores needs a wake-up cost (wake_energy_pj and wake_latency_ns)")
        if power.wake_energy_pj == 0:
            ctx.fail("power.wake_energy_pj", 'is 0 with power_gating = "idle": powering a '
                     "core up always costs energy")


def _check_barrier(ctx: Ctx, timing: TimingSpec) -> None:
    """``timing.barrier_tiles`` and ``barrier_cycles``: both or neither, equal lengths, tiles
    strictly increasing from >= 1."""
    tiles, cyc = timing.barrier_tiles, timing.barrier_cycles
    if tiles is None and cyc is None:
        return
    if tiles is None or cyc is None:
        missing = "timing.barrier_tiles" if tiles is None else "timing.barrier_cycles"
        other = "barrier_cycles" if tiles is None else "barrier_tiles"
        ctx.fail(missing, f"missing (required with timing.{other})")
    if len(tiles) != len(cyc):
        ctx.fail("timing.barrier_cycles", f"has {len(cyc)} entries, barrier_tiles has "
                                          f"{len(tiles)}")
    if tiles[0] < 1 or any(b <= a for a, b in zip(tiles, tiles[1:])):
        ctx.fail("timing.barrier_tiles", f"must increase strictly from >= 1, got {list(tiles)}")


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
           "GATING_POLICIES",
           "ENERGY_DIR", "list_chips", "list_energy_tables", "load_chip", "load_energy_table",
           "schema"]
