"""``neurosim.run.simulate``: run a Graph on a chip model and return a priced ``RunResult``."""
from __future__ import annotations

from chips.mapping import Mapping, map_graph
from chips.spec import ChipSpec, load_chip
from neurosim.costing.energy import attach_energy
from neurosim.ir import graph as G

MODES = ("sync", "async")
ASYNC_MODES = ("windowed", "free")


def resolve_chip(chip) -> ChipSpec:
    return chip if isinstance(chip, ChipSpec) else load_chip(chip)


def build_engine(graph: G.Graph, chip, mode: str = "sync", *, async_mode: str = "windowed",
                 mapping: Mapping | None = None, strict: bool | None = None,
                 async_opts: dict | None = None, **kw):
    """Construct the engine for ``mode`` (objects fully built here; ``run`` only executes).
    ``async_opts``: options of the asynchronous engine only (``fifo_depth``, ``overflow``,
    ``link_events_per_s``, ``settle_ns``, ``realisation``, ...), applied to async runs and not
    passed to a sync one, so one set can go to every run of a comparison."""
    chip = resolve_chip(chip)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mapping is None:
        mapping = map_graph(graph, chip, strict=True if strict is None else strict)
    if mode == "sync":
        from chips.engines.sync import SyncEngine
        if chip.kind != "sync":
            raise ValueError(f"chip {chip.name!r} is {chip.kind}: simulate it with mode='async'")
        return SyncEngine(graph, chip, mapping, **kw)
    if async_mode not in ASYNC_MODES:
        raise ValueError(f"async_mode must be one of {ASYNC_MODES}, got {async_mode!r}")
    from chips.engines.asynchronous import AsyncEngine
    if chip.kind != "async":
        raise ValueError(f"chip {chip.name!r} is {chip.kind}: simulate it with mode='sync'")
    return AsyncEngine(graph, chip, mapping, async_mode=async_mode, **kw, **(async_opts or {}))


def run_engine(graph: G.Graph, chip, inputs, mode: str = "sync", *, labels=None,
               async_mode: str = "windowed", mapping: Mapping | None = None,
               strict: bool | None = None, **kw):
    """``simulate`` without the pricing: the engine's ``RunResult``, ``energy`` None (for
    callers that run several chunks and price the merged result once)."""
    engine = build_engine(graph, chip, mode, async_mode=async_mode, mapping=mapping,
                          strict=strict, **kw)
    return engine.run(inputs, labels=labels)


def simulate(graph: G.Graph, chip, inputs, mode: str | None = None, *, labels=None,
             async_mode: str = "windowed", mapping: Mapping | None = None,
             strict: bool | None = None, energy_table=None, power_gating: str | None = None,
             **kw):
    """Simulate ``inputs`` ([B, *in] static or [T, B, *in] event frames) on ``chip`` and price
    the run.

    chip: a ``ChipSpec``, a name (``tianjic``, ``speck``, ...) or a TOML path. mode: "sync"
    (global clock) or "async" (event-driven; ``async_mode`` "windowed" = exact, "free" =
    greedy); default: the chip's own kind. The result comes with ``result.energy`` (joules,
    ``neurosim.costing.energy.energy_breakdown``): the chip's own energy table (overrides
    applied) and static power model, or ``energy_table`` (a name such as "45nm", a TOML path
    or an ``EnergyTable``); ``power_gating`` prices static power under another policy. Extra
    keywords go to the engine (``record``; ``batch_size``: inputs run together, default
    memory-bounded; ``path``: "auto" (cost model, ``chips.engines.paths``), "scatter" or
    "dense"; ``dense_threshold``: the older density rule instead of the cost model; FIFO
    settings).
    """
    spec = resolve_chip(chip)
    if mapping is None:
        mapping = map_graph(graph, spec, strict=True if strict is None else strict)
    res = run_engine(graph, spec, inputs, mode or spec.kind, labels=labels,
                     async_mode=async_mode, mapping=mapping, **kw)
    attach_energy(res, spec, table=energy_table, power_gating=power_gating, mapping=mapping)
    return res
