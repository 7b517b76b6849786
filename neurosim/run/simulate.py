"""``neurosim.run.simulate``: run a Graph on a chip model and return a ``RunResult``."""
from __future__ import annotations

from chips.spec import ChipSpec, load_chip
from neurosim.ir import graph as G
from chips.mapping import Mapping, map_graph

MODES = ("sync", "async")
ASYNC_MODES = ("windowed", "free")


def resolve_chip(chip) -> ChipSpec:
    return chip if isinstance(chip, ChipSpec) else load_chip(chip)


def build_engine(graph: G.Graph, chip, mode: str = "sync", *, async_mode: str = "windowed",
                 mapping: Mapping | None = None, strict: bool | None = None, **kw):
    """Construct the engine for ``mode`` (objects fully built here; ``run`` only executes)."""
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
    return AsyncEngine(graph, chip, mapping, async_mode=async_mode, **kw)


def simulate(graph: G.Graph, chip, inputs, mode: str = "sync", *, labels=None,
             async_mode: str = "windowed", mapping: Mapping | None = None,
             strict: bool | None = None, **kw):
    """Simulate ``inputs`` ([B, *in] static or [T, B, *in] event frames) on ``chip``.

    chip: a ``ChipSpec``, a name (``tianjic``, ``speck``, ...) or a TOML path. mode: "sync"
    (global clock) or "async" (event-driven; ``async_mode`` "windowed" = exact, "free" =
    greedy). Extra keywords go to the engine (``record``, ``dense_threshold``, FIFO settings).
    """
    engine = build_engine(graph, chip, mode, async_mode=async_mode, mapping=mapping,
                          strict=strict, **kw)
    return engine.run(inputs, labels=labels)
