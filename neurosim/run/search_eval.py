"""Training-free scores and legality checks that need more than a formula, as executor tasks.

Scores (larger predicts higher accuracy; the search maximises the one chosen):

    flops     the paper's eq. 4-5 x T (``models.search.analytic``)             closed form
    params    the exact parameter count                                      closed form
    syops     the released code's indicator: syops-counter ``ops[0]`` on an all-ones input
              (``models.search.syops``; a dense count, independent of weights and input)
    syops-ac  the activity-weighted part of the same count (ACs + MACs) of the untrained
              model on the all-ones input
    energy    dynamic energy per inference (J) that neurosim's simulator measures for the
              untrained model (weights seeded) on ``n`` workload inputs, on ``chip`` (sync)

"Fits chip X" (:func:`fits_reason`) lowers the untrained model and maps it onto the chip; a
candidate with mapping violations is illegal, the first violation says why.

Task functions take plain data (``Arch.to_dict()``, ``InputSpec`` fields) and pin torch to one
thread, so their results do not depend on the executor that ran them.
"""
from __future__ import annotations

import numpy as np

from models.search.analytic import flops_paper, param_count
from models.search.space import Arch, InputSpec

SCORES = ("flops", "params", "syops", "syops-ac", "energy")
ANALYTIC = ("flops", "params")
ENERGY_CHIP = "tianjic-x16"


def _one_thread():
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    return n


def syops_task(arch: dict, inputs: dict, seed: int) -> dict:
    """Task: ``models.search.syops.arch_syops`` of one candidate."""
    import torch

    from models.search.syops import arch_syops
    n = _one_thread()
    try:
        return arch_syops(Arch.from_dict(arch), InputSpec(**inputs), seed)
    finally:
        torch.set_num_threads(n)


def _lowered(arch: Arch, inputs: InputSpec, seed: int, x_cal: np.ndarray):
    from models.search.syops import build_untrained
    from neurosim.frontends.lower import lower
    model = build_untrained(arch, inputs, seed)
    return lower(model, x_cal)


def model_arrays(inputs: InputSpec, workload: str, n: int, calib_n: int):
    """(x_cal, x, y, engine keywords) of ``workload`` shaped for models built for ``inputs``
    (calibration from the train split, inputs from the test split); a workload whose samples
    do not match the input spec raises, naming both."""
    from models.search.syops import build_untrained
    from neurosim.run.inputs import engine_inputs, load_for_model
    probe = build_untrained(Arch(8, (1,), (1,)), inputs)
    x, y, window = engine_inputs(probe, workload, "test", n)
    x_cal = load_for_model(probe, workload, "train", n=calib_n)[0]
    if x_cal.ndim == 5:
        x_cal = np.moveaxis(x_cal, 1, 0)
    return x_cal, x, y, ({} if window is None else {"input_window_s": window})


def arch_energy(arch: Arch, inputs: InputSpec, x_cal, x, y, *, chip: str = ENERGY_CHIP,
                seed: int = 0, engine_kw: dict | None = None) -> float:
    """Dynamic energy per inference (J) of the untrained model of ``arch`` on ``chip``."""
    import torch

    from neurosim.costing.energy import attach_energy
    from neurosim.run.compare import simulate_batched
    n = _one_thread()
    try:
        graph = _lowered(arch, inputs, seed, x_cal)
    finally:
        torch.set_num_threads(n)
    res = simulate_batched(graph, chip, x, "sync", labels=y, chunk=10, **(engine_kw or {}))
    return float(attach_energy(res, chip)["per_inference"]["dynamic_j"])


def energy_task(arch: dict, inputs: dict, workload: str, n: int, calib_n: int, chip: str,
                seed: int) -> float:
    """Task: :func:`arch_energy` on the first ``n`` test inputs of ``workload``."""
    spec = InputSpec(**inputs)
    x_cal, x, y, kw = model_arrays(spec, workload, n, calib_n)
    return arch_energy(Arch.from_dict(arch), spec, x_cal, x, y, chip=chip, seed=seed,
                       engine_kw=kw)


def energy_arrays_task(arch: dict, inputs: dict, data: dict, n: int, chip: str,
                       seed: int) -> float:
    """Task: :func:`arch_energy` on given arrays (``models.search.budget_train.study_arrays``):
    calibration on the first 16 training samples, the first ``n`` test inputs."""
    x_cal, x, y = data["x_train"][:16], data["x_test"][:n], data["y_test"][:n]
    if x_cal.ndim == 5:                                  # [N, T, ...] -> [T, N, ...]
        x_cal = np.moveaxis(x_cal, 1, 0)
        x = np.ascontiguousarray(np.moveaxis(x, 1, 0))
    return arch_energy(Arch.from_dict(arch), InputSpec(**inputs), x_cal, x, y, chip=chip,
                       seed=seed)


def fits_reason(arch: Arch, inputs: InputSpec, chip: str, x_cal, seed: int = 0) -> str | None:
    """None when the untrained model of ``arch`` maps onto ``chip``, else the first of its
    mapping violations (and how many there are)."""
    import torch

    n = _one_thread()
    try:
        graph = _lowered(arch, inputs, seed, x_cal)
    finally:
        torch.set_num_threads(n)
    return mapping_reason(graph, chip)


def mapping_reason(graph, chip) -> str | None:
    """None when ``graph`` maps onto ``chip``, else the first of the mapper's violations (and
    how many there are)."""
    from chips.mapping import map_graph
    v = map_graph(graph, chip, strict=False).violations
    return None if not v else f"does not fit {chip}: {len(v)} violation(s), e.g. {v[0].message}"


def _inputs_dict(inputs: InputSpec) -> dict:
    d = dict(vars(inputs))
    d["pool_stages"] = tuple(inputs.pool_stages)
    return d


def make_scorer(name: str, inputs: InputSpec, executor, *, seed: int = 0,
                workload: str = "motion", n: int = 8, calib_n: int = 16,
                chip: str = ENERGY_CHIP, cache: dict | None = None, on_score=None):
    """``score(list of Arch) -> list of float`` for score ``name``. Expensive scores run as
    tasks on ``executor``; ``cache`` (arch key -> score) is consulted first and ``on_score(arch,
    value)`` is called for each new value (e.g. to log it for resuming)."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; scores: {', '.join(SCORES)}")
    cache = {} if cache is None else cache
    d_in = _inputs_dict(inputs)

    def task(a: Arch):
        if name == "energy":
            return executor.submit(energy_task, a.to_dict(), d_in, workload, n, calib_n,
                                   chip, seed)
        return executor.submit(syops_task, a.to_dict(), d_in, seed)

    def value(a: Arch, raw) -> float:
        if name == "syops":
            return float(raw["ops"])
        if name == "syops-ac":
            return float(raw["acs"] + raw["macs"])
        return float(raw)

    def score(cands: list) -> list:
        if name == "flops":
            return [float(flops_paper(a, inputs)) for a in cands]
        if name == "params":
            return [float(param_count(a, inputs)) for a in cands]
        todo = {}
        for a in cands:
            if a.key not in cache and a.key not in {b.key for b in todo.values()}:
                todo[task(a)] = a
        for fut, raw in executor.as_completed(list(todo)):
            a = todo[fut]
            cache[a.key] = value(a, raw)
            if on_score is not None:
                on_score(a, cache[a.key])
        return [cache[a.key] for a in cands]

    return score


__all__ = ["ANALYTIC", "ENERGY_CHIP", "SCORES", "arch_energy", "energy_arrays_task",
           "energy_task", "fits_reason", "make_scorer", "mapping_reason", "model_arrays",
           "syops_task"]
