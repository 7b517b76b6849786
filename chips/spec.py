"""Chip specifications and energy tables, loaded from TOML files kept beside this module.

Two kinds of file, kept apart as in Accelergy (architecture / per-action costs / workload counts):

* ``chips/<name>.toml`` -> :class:`ChipSpec`: what the chip *is* (mesh, cores, memories, limits,
  timing, published power figures).
* ``chips/energy/<name>.toml`` -> :class:`EnergyTable`: what each action *costs* (pJ per
  accumulate, per weight read, per hop, ...). A chip names its table in ``energy_table`` and may
  override single entries in ``[energy_overrides]``.

Provenance rule (DESIGN.md invariant 3): every number (and every capability flag) is written as
``{value = ..., source = "paper, table/section"}`` or ``{value = ..., estimate = "why"}`` (both
keys may be given). Identifiers (``name``, ``kind``, ``energy_table``, ``topology``,
``memory_model``, ``arithmetic``, ``description``) are plain strings. Validation errors name the
file, the key path (``core.neurons_per_core``) and the problem; unknown keys are errors.

A scaled variant is a small file with ``extends = "tianjic"`` and only the changed keys; tables
are deep-merged, a ``{value, source|estimate}`` entry replaces the inherited one whole, cycles in
``extends`` are errors.

Units are in the names: ``*_hz``, ``*_ns``, ``*_w``, ``*_pj``, ``*_bytes``, ``*_entries``
(memory words of the stated bit width), ``*_cycles`` (clock periods; not seconds), ``*_nm``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CHIPS_DIR = Path(__file__).resolve().parent
ENERGY_DIR = CHIPS_DIR / "energy"

KINDS = ("sync", "async")
TOPOLOGIES = ("mesh", "all-to-all")
MEMORY_MODELS = ("flat", "dynapcnn")


class SpecError(ValueError):
    """An invalid chip or energy file; the message names the file, the key path and the problem."""


# ----------------------------------------------------------------------------- schema helpers
def _q(typ: str, doc: str, *, required: bool = True, when: str | None = None,
       positive: bool = False, choices: tuple = (), plain: bool = False, default=None):
    """Declare a spec field. ``typ``: int, float, bool, str, ints (list of int) or int|ints
    (one value for every core, or a list with one value per core). ``when``: the field belongs
    only to chips of that kind / memory model / topology (required there, an error elsewhere).
    ``plain``: an identifier string written without provenance."""
    return field(default=default, metadata=dict(typ=typ, doc=doc, required=required, when=when,
                                                positive=positive, choices=choices, plain=plain))


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if "typ" in f.metadata}


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

    def energy(self) -> "EnergyTable":
        """The chip's energy table with ``[energy_overrides]`` applied."""
        base = _resolve_energy_for_chip(self.energy_table, self.path.parent)
        table = load_energy_table(base)
        if not self.energy_overrides:
            return table
        prov = dict(table.provenance)
        for k in self.energy_overrides:
            prov[_ENERGY_KEYPATH[k]] = self.provenance[f"energy_overrides.{k}"]
        return dataclasses.replace(table, **self.energy_overrides,
                                   name=f"{table.name}+{self.name}", provenance=prov)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["files"] = [str(f) for f in self.files]
        d["n_cores"] = self.n_cores
        return d


# ----------------------------------------------------------------------------- energy table
ACTIONS = ("ac_pj", "mac_pj", "weight_read_pj", "membrane_read_pj", "membrane_write_pj",
           "neuron_update_pj", "neuron_spike_pj", "spike_route_pj", "hop_pj",
           "graded_transfer_pj", "graded_hop_pj", "static_power_w")


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
    * ``static_power_w``: power drawn for the whole duration of a run (W).
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
    static_power_w: float
    primitives: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict, compare=False)
    files: tuple = ()

    def costs(self) -> dict[str, float]:
        """The per-action costs as a plain dict (names carry units)."""
        return {k: getattr(self, k) for k in ACTIONS}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["files"] = [str(f) for f in self.files]
        return d


@dataclass(frozen=True)
class _ActionsSection:
    ac_pj: float = _q("float", "energy per accumulate, pJ")
    mac_pj: float = _q("float", "energy per multiply-accumulate, pJ")
    weight_read_pj: float = _q("float", "energy per weight read, pJ")
    membrane_read_pj: float = _q("float", "energy per membrane read, pJ")
    membrane_write_pj: float = _q("float", "energy per membrane write, pJ")
    neuron_update_pj: float = _q("float", "energy per neuron update, pJ")
    neuron_spike_pj: float = _q("float", "extra energy of a firing update, pJ")
    spike_route_pj: float = _q("float", "energy per spike packet delivered, pJ")
    hop_pj: float = _q("float", "energy per spike packet per hop, pJ")
    graded_transfer_pj: float = _q("float", "energy per graded value delivered, pJ")
    graded_hop_pj: float = _q("float", "energy per graded value per hop, pJ")
    static_power_w: float = _q("float", "static power, W")


@dataclass(frozen=True)
class _PrimitivesSection:
    """Horowitz-style reference primitives (per operation, or per 64-bit memory access)."""

    ac_int8_pj: float | None = _q("float", "int8 add, pJ", required=False)
    ac_int32_pj: float | None = _q("float", "int32 add, pJ", required=False)
    mult_int8_pj: float | None = _q("float", "int8 multiply, pJ", required=False)
    mult_int32_pj: float | None = _q("float", "int32 multiply, pJ", required=False)
    mac_int8_pj: float | None = _q("float", "int8 multiply-add, pJ", required=False)
    ac_fp16_pj: float | None = _q("float", "fp16 add, pJ", required=False)
    mult_fp16_pj: float | None = _q("float", "fp16 multiply, pJ", required=False)
    mac_fp16_pj: float | None = _q("float", "fp16 multiply-add, pJ", required=False)
    ac_fp32_pj: float | None = _q("float", "fp32 add, pJ", required=False)
    mult_fp32_pj: float | None = _q("float", "fp32 multiply, pJ", required=False)
    mac_fp32_pj: float | None = _q("float", "fp32 multiply-add, pJ", required=False)
    sram_8kb_read_64bit_pj: float | None = _q("float", "8 KB SRAM 64-bit read, pJ",
                                              required=False)
    sram_32kb_read_64bit_pj: float | None = _q("float", "32 KB SRAM 64-bit read, pJ",
                                               required=False)
    sram_1mb_read_64bit_pj: float | None = _q("float", "1 MB SRAM 64-bit read, pJ",
                                              required=False)
    dram_access_64bit_min_pj: float | None = _q("float", "DRAM 64-bit access, low end, pJ",
                                                required=False)
    dram_access_64bit_max_pj: float | None = _q("float", "DRAM 64-bit access, high end, pJ",
                                                required=False)


_ENERGY_KEYPATH = {k: f"actions.{k}" for k in ACTIONS}


# ----------------------------------------------------------------------------- raw loading
def _is_quantity(v) -> bool:
    return isinstance(v, dict) and "value" in v


def _leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and not _is_quantity(v):
            out.extend(_leaves(v, p + "."))
        else:
            out.append(p)
    return out


def _merge(base: dict, over: dict) -> dict:
    """Deep merge; a quantity table or a non-table value replaces the inherited one whole."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        if (isinstance(v, dict) and not _is_quantity(v) and isinstance(b, dict)
                and not _is_quantity(b)):
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


def _available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def _resolve(name_or_path, directory: Path, what: str) -> Path:
    """A name -> ``directory/<name>.toml``; anything path-like is used as a path."""
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(name_or_path)
        if not p.is_file():
            raise SpecError(f"{what} file not found: {p}")
        return p.resolve()
    p = directory / f"{s}.toml"
    if not p.is_file():
        avail = _available(directory)
        close = difflib.get_close_matches(s, avail, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"unknown {what} {s!r}.{hint} Available: {', '.join(avail)}")
    return p.resolve()


def _load_raw(path: Path, chain: tuple = ()) -> tuple[dict, dict, tuple]:
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
        base_path = _resolve(ext if not ext.endswith(".toml") else path.parent / ext,
                             path.parent, "base file")
    except SpecError as e:
        raise SpecError(f"{path}: extends: {e}") from None
    base, origins, files = _load_raw(base_path, chain + (path,))
    merged = _merge(base, data)
    # leaves of the base replaced by the override now come from the override
    origins = {p: f for p, f in origins.items()
               if not any(p == q or p.startswith(q + ".") for q in own)}
    origins.update(own)
    return merged, origins, files + (path,)


class _Ctx:
    """Validation context: merged data, origin of each key, the top file, the chip's modes."""

    def __init__(self, origins: dict, top: Path, modes: set[str]):
        self.origins, self.top, self.modes = origins, top, modes
        self.provenance: dict[str, str] = {}

    def fail(self, keypath: str, problem: str):
        f = self.origins.get(keypath, self.top)
        raise SpecError(f"{f}: {keypath}: {problem}")


def _check_value(ctx: _Ctx, keypath: str, v, meta: dict):
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


def _field_value(ctx: _Ctx, kp: str, v, meta: dict):
    """Validate one value: a plain identifier, or a {value, source|estimate} table."""
    if meta["plain"]:
        if _is_quantity(v):
            ctx.fail(kp, "is an identifier: write a plain string, not a table")
        return _check_value(ctx, kp, v, meta)
    if not _is_quantity(v):
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


def _section(ctx: _Ctx, cls, raw, prefix: str, all_optional: bool = False) -> dict:
    """Validate one TOML table against the spec dataclass ``cls``; return its kwargs (absent
    optional keys take their defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or _is_quantity(raw):
        ctx.fail(prefix.rstrip("."), "expected a table")
    specs = _fields(cls)
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


_PLAIN = dict(typ="str", required=True, when=None, positive=False, choices=(), plain=True)
_NUMBER = dict(typ="float", required=True, when=None, positive=False, choices=(), plain=False)


def _top(ctx: _Ctx, data: dict, key: str, meta: dict, required: bool = True, choices=()):
    """A top-level key (``data`` is the whole file or a section for the mode keys)."""
    if key not in data:
        if required:
            ctx.fail(key, "missing")
        return None
    return _field_value(ctx, key, data[key], {**meta, "choices": choices})


def _mode(ctx: _Ctx, data: dict, section: str, key: str, choices: tuple) -> str:
    sec = data.get(section)
    if not isinstance(sec, dict):
        ctx.fail(section, "missing" if sec is None else "expected a table")
    if key not in sec:
        ctx.fail(f"{section}.{key}", "missing")
    return _field_value(ctx, f"{section}.{key}", sec[key], {**_PLAIN, "choices": choices})


# ----------------------------------------------------------------------------- public loaders
_CHIP_TOP = ("name", "kind", "energy_table", "description", "process_nm", "mesh", "core",
             "limits", "features", "timing", "power", "energy_overrides")


def list_chips() -> list[str]:
    """Names of the chip files shipped in ``chips/``."""
    return _available(CHIPS_DIR)


def list_energy_tables() -> list[str]:
    """Names of the energy tables shipped in ``chips/energy/``."""
    return _available(ENERGY_DIR)


def _resolve_energy_for_chip(ref: str, chip_dir: Path) -> Path:
    if ref.endswith(".toml") or "/" in ref:
        p = Path(ref)
        return (p if p.is_absolute() else chip_dir / p).resolve()
    return _resolve(ref, ENERGY_DIR, "energy table")


def load_chip(name_or_path: str | Path | ChipSpec) -> ChipSpec:
    """Load ``chips/<name>.toml`` (or the TOML file at a path) into a validated ChipSpec; a
    ChipSpec is returned as is."""
    if isinstance(name_or_path, ChipSpec):
        return name_or_path
    path = _resolve(name_or_path, CHIPS_DIR, "chip")
    data, origins, files = _load_raw(path)
    ctx = _Ctx(origins, path, set())
    for k in data:
        if k not in _CHIP_TOP:
            close = difflib.get_close_matches(k, _CHIP_TOP, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.fail(k, f"unknown key{hint}; allowed: extends, {', '.join(_CHIP_TOP)}")
    name = _top(ctx, data, "name", _PLAIN)
    kind = _top(ctx, data, "kind", _PLAIN, choices=KINDS)
    topology = _mode(ctx, data, "mesh", "topology", TOPOLOGIES)
    memory_model = _mode(ctx, data, "core", "memory_model", MEMORY_MODELS)
    ctx.modes = {kind, topology, memory_model}
    energy_table = _top(ctx, data, "energy_table", _PLAIN)
    description = _top(ctx, data, "description", _PLAIN)
    process_nm = _top(ctx, data, "process_nm", _NUMBER)
    mesh = MeshSpec(**_section(ctx, MeshSpec, data.get("mesh"), "mesh."))
    core = CoreSpec(**_section(ctx, CoreSpec, data.get("core"), "core."))
    limits = LimitsSpec(**_section(ctx, LimitsSpec, data.get("limits"), "limits."))
    features = FeatureSpec(**_section(ctx, FeatureSpec, data.get("features"), "features."))
    timing = TimingSpec(**_section(ctx, TimingSpec, data.get("timing"), "timing."))
    power = PowerSpec(**_section(ctx, PowerSpec, data.get("power"), "power."))
    overrides = _section(ctx, _ActionsSection, data.get("energy_overrides"), "energy_overrides.",
                         all_optional=True)
    overrides = {k: v for k, v in overrides.items() if v is not None}

    # cross-field checks
    if topology == "mesh":
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
    if (memory_model == "flat" and core.sram_bytes is not None
            and not isinstance(core.weight_memory_bytes, tuple)
            and not isinstance(core.state_memory_bytes, tuple)
            and core.weight_memory_bytes + core.state_memory_bytes > core.sram_bytes):
        ctx.fail("core.weight_memory_bytes", f"weight ({core.weight_memory_bytes}) + state "
                 f"({core.state_memory_bytes}) memory exceed sram_bytes ({core.sram_bytes})")
    if kind == "sync" and timing.comm_phase_cycles > timing.tick_cycles:
        ctx.fail("timing.comm_phase_cycles", f"{timing.comm_phase_cycles} exceeds "
                                             f"tick_cycles {timing.tick_cycles}")
    try:
        _resolve_energy_for_chip(energy_table, path.parent)
    except SpecError as e:
        ctx.fail("energy_table", str(e))
    return ChipSpec(name=name, kind=kind, energy_table=energy_table, description=description,
                    process_nm=process_nm, mesh=mesh, core=core, limits=limits,
                    features=features, timing=timing, power=power, energy_overrides=overrides,
                    provenance=dict(ctx.provenance), files=tuple(files))


_ENERGY_TOP = ("name", "description", "arithmetic", "process_nm", "voltage_v", "actions",
               "primitives")


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """Load ``chips/energy/<name>.toml`` (or the TOML file at a path) into an EnergyTable."""
    path = _resolve(name_or_path, ENERGY_DIR, "energy table")
    data, origins, files = _load_raw(path)
    ctx = _Ctx(origins, path, set())
    for k in data:
        if k not in _ENERGY_TOP:
            close = difflib.get_close_matches(k, _ENERGY_TOP, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.fail(k, f"unknown key{hint}; allowed: extends, {', '.join(_ENERGY_TOP)}")
    name = _top(ctx, data, "name", _PLAIN)
    description = _top(ctx, data, "description", _PLAIN)
    arithmetic = _top(ctx, data, "arithmetic", _PLAIN)
    process_nm = _top(ctx, data, "process_nm", _NUMBER)
    voltage_v = _top(ctx, data, "voltage_v", _NUMBER, required=False)
    if "actions" not in data:
        ctx.fail("actions", "missing")
    actions = _section(ctx, _ActionsSection, data["actions"], "actions.")
    prims = _section(ctx, _PrimitivesSection, data.get("primitives"), "primitives.")
    prims = {k: v for k, v in prims.items() if v is not None}
    return EnergyTable(name=name, description=description, arithmetic=arithmetic,
                       process_nm=process_nm, voltage_v=voltage_v, **actions, primitives=prims,
                       provenance=dict(ctx.provenance), files=tuple(files))


def schema() -> dict[str, list[tuple[str, str, str]]]:
    """Documented keys per section: {section: [(key, type, doc)]} (for docs and the CLI)."""
    secs = {"mesh": MeshSpec, "core": CoreSpec, "limits": LimitsSpec, "features": FeatureSpec,
            "timing": TimingSpec, "power": PowerSpec, "actions": _ActionsSection,
            "primitives": _PrimitivesSection}
    return {s: [(k, f.metadata["typ"], f.metadata["doc"] + (f" [{f.metadata['when']}]"
                                                             if f.metadata["when"] else ""))
                for k, f in _fields(c).items()] for s, c in secs.items()}


__all__ = ["ChipSpec", "CoreCapacity", "CoreSpec", "EnergyTable", "FeatureSpec", "LimitsSpec",
           "MeshSpec", "PowerSpec", "SpecError", "TimingSpec", "ACTIONS", "list_chips",
           "list_energy_tables", "load_chip", "load_energy_table", "schema"]
