"""``neurosim sweep``: models x workloads x chips x chip parameters x modes, one row per point,
evaluated as tasks on an executor (Ray, or in process) and resumable.

Two task kinds, both plain functions of plain data (so any executor runs them the same way):

* :func:`lower_model`: load a checkpoint (or build a seeded zoo config), take the first ``n``
  inputs of the workload split, calibrate on ``calib_n`` training samples and lower it; one task
  per (model, workload), its result shared by that pair's points.
* :func:`run_point`: build the chip variant (``neurosim.run.chip_overrides``), map (a model that
  does not fit gives a row with status ``no-fit`` and the first violation), simulate, price.

Tasks pin torch to one thread, so the lowering, and with it every number of the table, does
not depend on the executor. Rows go to ``points.jsonl`` (``neurosim.run.resultlog``) as they
finish; a rerun with the same config and output directory runs only the points not there (a
half-written last row is detected and redone). When all points are done the table
``results.csv`` is written in point order. ``wall_s`` (the seconds a point took) is the only
column that differs between runs.
"""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurosim.ir.counts import CATEGORIES
from neurosim.run.resultlog import ResultLog
from neurosim.run.sweep_config import ModelRef, Point, SweepConfig

TIMING_COLUMNS = ("wall_s",)
RESULT_COLUMNS = ("status", "message", "n", "params", "accuracy", "energy_per_inference_j",
                  "dynamic_per_inference_j", "static_per_inference_j", "power_w",
                  "latency_per_inference_s", "cores_used", "stalls", "drops")
COUNT_COLUMNS = tuple(f"{c}_per_inference" for c in CATEGORIES)
LOG_NAME, TABLE_NAME = "points.jsonl", "results.csv"


@dataclass
class LoweredModel:
    """What a point needs of its model: the graph, the inputs and labels, engine keywords
    (the event streams' real-time window), the model's name, label and parameter count."""

    graph: object
    x: np.ndarray
    y: np.ndarray
    engine_kw: dict
    name: str
    label: str
    params: int


def _load(model: ModelRef):
    import torch

    import models
    if model.kind == "zoo":
        torch.manual_seed(model.seed)
        return models.create(model.ref, **dict(model.overrides))
    path = Path(model.ref)
    if not path.is_file():
        path = models.shipped_checkpoint(model.ref)
    return models.load_checkpoint(path)


def lower_model(model: ModelRef, workload: str, settings: dict) -> LoweredModel:
    """Task: the model of ``model`` lowered for ``workload`` (module doc)."""
    import torch

    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import engine_inputs, load_for_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = _load(model)
        x, y, window = engine_inputs(m, workload, settings["split"], settings["n"])
        x_cal, _, _ = load_for_model(m, workload, "train", n=settings["calib_n"])
        if x_cal.ndim == 5:                              # event frames [N, T, ...] -> [T, N, ...]
            x_cal = np.moveaxis(x_cal, 1, 0)
        graph = lower(m, x_cal, weight_bits=settings["weight_bits"],
                      repconv=settings["repconv"], ssc=settings["ssc"])
    except (ValueError, KeyError, TypeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise ValueError(f"model {model.label!r} on workload {workload!r}: {msg}") from None
    finally:
        torch.set_num_threads(threads)
    name = getattr(m, "neurosim_config", {}).get("name", model.label)
    params = int(sum(p.numel() for p in m.parameters()))
    return LoweredModel(graph, x, y, {} if window is None else {"input_window_s": window},
                        name, model.label, params)


def _engine_mode(mode: str) -> tuple[str, dict]:
    return ("sync", {}) if mode == "sync" else ("async", {"async_mode": mode.split("-", 1)[1]})


def run_point(lowered: LoweredModel, chip_ref: str, overrides: dict, mode: str) -> dict:
    """Task: one point's row (``RESULT_COLUMNS`` + counts + ``wall_s``)."""
    from chips.mapping import map_graph
    from neurosim.costing.energy import attach_energy
    from neurosim.run.chip_overrides import chip_variant
    from neurosim.run.compare import simulate_batched

    t0 = time.perf_counter()
    chip = chip_variant(chip_ref, overrides)
    mapping = map_graph(lowered.graph, chip, strict=False)
    row = dict.fromkeys(RESULT_COLUMNS + COUNT_COLUMNS)
    row.update(n=int(len(lowered.y)), params=lowered.params, cores_used=len(mapping.cores))
    if mapping.violations:
        v = mapping.violations
        row.update(status="no-fit", message=f"{len(v)} violation(s), e.g. {v[0].message}")
    else:
        eng, kw = _engine_mode(mode)
        res = simulate_batched(lowered.graph, chip, lowered.x, eng, labels=lowered.y,
                               mapping=mapping, chunk=10, **kw, **lowered.engine_kw)
        per_e = attach_energy(res, chip, mapping=mapping)["per_inference"]
        lat = float(np.mean(res.latency_s))
        row.update(status="ok", message="", accuracy=res.accuracy,
                   energy_per_inference_j=per_e["total_j"],
                   dynamic_per_inference_j=per_e["dynamic_j"],
                   static_per_inference_j=per_e["static_j"],
                   power_w=per_e["total_j"] / lat if lat > 0 else None,
                   latency_per_inference_s=lat, stalls=int(res.stats.get("stalls", 0)),
                   drops=int(res.stats.get("drops", 0)))
        row.update({f"{k}_per_inference": float(v) for k, v in res.per_inference().items()})
    row["wall_s"] = time.perf_counter() - t0
    return row


# ----------------------------------------------------------------------------- the driver
@dataclass
class SweepOutcome:
    """A finished sweep: rows in point order, the table written, what ran now and what was
    taken from an earlier run, half-written rows redone and combinations left out."""

    rows: list
    columns: list
    table: Path
    ran: int
    resumed: int
    discarded: int
    skipped: list = field(default_factory=list)


def columns(cfg: SweepConfig) -> list[str]:
    return (["point", "model", "workload", "chip", "mode"] + [k for k, _ in cfg.overrides]
            + list(RESULT_COLUMNS) + list(COUNT_COLUMNS) + list(TIMING_COLUMNS))


def _row(cfg: SweepConfig, p: Point, chip_name: str, result: dict) -> dict:
    row = {"point": p.index, "model": cfg.models[p.model].label, "workload": p.workload,
           "chip": chip_name, "mode": p.mode}
    row.update({k: v for k, v in p.overrides})
    row.update({k: result.get(k) for k in RESULT_COLUMNS + COUNT_COLUMNS + TIMING_COLUMNS})
    return row


def format_table(rows: list[dict], cols: list[str]) -> str:
    """CSV text: one row per point, floats written with ``repr`` (exact), empty for None."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float)
                    else r[c] for c in cols])
    return buf.getvalue()


def check_variants(cfg: SweepConfig, points: list[Point]) -> None:
    """Build every chip variant once, so a bad override fails before any work starts."""
    from chips.spec import SpecError
    from neurosim.run.chip_overrides import chip_variant
    from neurosim.run.sweep_config import SweepConfigError
    for chip, ov in dict.fromkeys((p.chip, tuple(p.applied().items())) for p in points):
        try:
            chip_variant(chip, dict(ov))
        except SpecError as e:
            raise SweepConfigError(f"{cfg.path}: overrides: {e}") from None


def run_sweep(cfg: SweepConfig, out_dir, executor, *, restart: bool = False,
              on_point=None) -> SweepOutcome:
    """Run the points of ``cfg`` not yet in ``out_dir``'s log on ``executor``; write
    ``results.csv``. ``on_point(row)`` is called as each point finishes (progress)."""
    out = Path(out_dir)
    points, skipped = cfg.points()
    check_variants(cfg, points)
    log = ResultLog(out / LOG_NAME, {"config": cfg.digest(), "points": len(points)},
                    restart=restart)
    todo = [p for p in points if p.key not in log.done]
    resumed = len(points) - len(todo)
    lowered = {}
    for p in todo:
        if (p.model, p.workload) not in lowered:
            lowered[(p.model, p.workload)] = executor.submit(
                lower_model, cfg.models[p.model], p.workload, cfg.settings)
    futs = {executor.submit(run_point, lowered[(p.model, p.workload)], p.chip, p.applied(),
                            p.mode): p for p in todo}
    from chips.spec import load_chip
    names = {c: load_chip(c).name for c in cfg.chips}
    for fut, result in executor.as_completed(list(futs)):
        p = futs[fut]
        rec = log.append(p.key, _row(cfg, p, names[p.chip], result))
        if on_point is not None:
            on_point(rec)
    rows = [{k: v for k, v in log.done[p.key].items() if k != "key"} for p in points]
    cols = columns(cfg)
    table = out / TABLE_NAME
    tmp = table.with_name(table.name + ".tmp")
    tmp.write_text(format_table(rows, cols))
    os.replace(tmp, table)
    return SweepOutcome(rows=rows, columns=cols, table=table, ran=len(todo), resumed=resumed,
                        discarded=log.discarded, skipped=skipped)


__all__ = ["COUNT_COLUMNS", "LoweredModel", "RESULT_COLUMNS", "SweepOutcome", "TIMING_COLUMNS",
           "columns", "format_table", "lower_model", "run_point", "run_sweep"]
