"""Auto-Spikformer candidates evaluated as executor tasks: the inherited-weight accuracy on a
validation split, and the energy per inference three ways.

For one candidate (:func:`evaluate_candidate`): the subnet is extracted from the supernet
(``models.search.supernet``), its BatchNorm statistics re-estimated on ``recal_n`` training
rows, and then

    accuracy      top-1 of the float model on the whole validation split (carved out of the
                  training split: never the test split, which only the final reports use)
    energy_j      total energy per inference (dynamic + static, J) that ``neurosim`` simulates
                  on ``chip`` in ``mode`` (sync, or async windowed) for the first ``n`` validation
                  rows, batched; ``dynamic_j`` / ``static_j`` its parts
    paper_j       neurosim's paper mode (``neurosim.costing.paper``, convention "neurosim"):
                  E_MAC x first-layer MACs + E_AC x sum_l rate_l x T x FLOPs_l, per-layer rates
    formula_j     the Auto-Spikformer paper's use of eq. 2-3 (its Table 2 lists one firing rate
                  Fr per candidate): E_MAC x first-layer MACs + 0.9 pJ x Fr x T x sum_l FLOPs_l
                  with Fr the mean spikes per neuron per time step over all spiking neurons

A candidate whose lowered graph does not map onto ``chip`` is returned as ``{"infeasible":
reason}`` with the mapper's first violation, never scored.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from models.search.autospikformer import Candidate, space_from_dict
from models.search.space import InputSpec

ENERGY_KEYS = {"simulated": "energy_j", "dynamic": "dynamic_j", "paper": "paper_j",
               "formula": "formula_j"}
MODES = ("sync", "async")


def search_data(workload: str, inputs: InputSpec, val_n: int, seed: int = 0,
                train_n: int | None = None) -> dict:
    """{"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}: the workload's training
    split shuffled (numpy generator seeded ``seed``) with its last ``val_n`` rows held out as
    the validation split (and, with ``train_n``, only the first ``train_n`` of the rest kept
    for training); the test split untouched."""
    from models.search.budget_train import study_arrays
    d = study_arrays(workload, inputs)
    n = len(d["y_train"])
    if int(val_n) != val_n or not 1 <= val_n < n:
        raise ValueError(f"validation rows must be between 1 and {n - 1} (the {workload!r} "
                         f"training split has {n}), got {val_n}")
    perm = np.random.default_rng(seed).permutation(n)
    tr, va = perm[:n - val_n], perm[n - val_n:]
    if train_n is not None:
        if int(train_n) != train_n or train_n < 1:
            raise ValueError(f"training rows must be >= 1, got {train_n}")
        tr = tr[:train_n]
    return {"x_train": d["x_train"][tr], "y_train": d["y_train"][tr],
            "x_val": d["x_train"][va], "y_val": d["y_train"][va],
            "x_test": d["x_test"], "y_test": d["y_test"]}


def firing_rate(model, x: np.ndarray, batch_size: int = 128) -> float:
    """Mean spikes per neuron per time step over every spiking neuron of ``model`` on ``x``."""
    import torch

    from models.neurons import LIFNode
    from models.train import to_batch
    tot = [0.0, 0]

    def hook(_m, _i, out):
        tot[0] += float(out.sum())
        tot[1] += out.numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, LIFNode)]
    try:
        with torch.no_grad():
            model.eval()
            xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
            for i in range(0, len(xt), batch_size):
                model(to_batch(xt[i:i + batch_size]))
    finally:
        for h in hs:
            h.remove()
    return tot[0] / tot[1] if tot[1] else 0.0


def formula_energy_j(est, rate: float) -> float:
    """The paper's eq. 3 with one firing rate (module doc), from a paper-mode estimate's layer
    FLOPs (per sample and step) and pricing (J per inference)."""
    pj = Fraction(1, 10 ** 12)
    mac, ac = Fraction(est.e_mac_pj) * pj, Fraction(est.e_ac_pj) * pj
    total = Fraction(0)
    for lay in est.layers:
        if lay.name == est.first_layer:
            total += mac * lay.flops * lay.mac_passes
        else:
            total += ac * Fraction(rate) * est.T * lay.flops
    return float(total)


def structure_reason(c: Candidate, inputs: InputSpec, chips, x_cal: np.ndarray,
                     seed: int = 0) -> str | None:
    """None when the model of ``c``'s structure maps onto every chip of ``chips``, else the
    mapper's reason for the first that it does not fit (thresholds, taus and T do not change
    the mapping: untrained weights suffice)."""
    import torch

    from models.registry import build
    from neurosim.frontends.lower import lower
    from neurosim.run.search_eval import mapping_reason
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build("spikformer", c.model_config(inputs)).eval()
        graph = lower(model, x_cal)
    finally:
        torch.set_num_threads(threads)
    for chip in chips:
        why = mapping_reason(graph, chip)
        if why:
            return why
    return None


def warm_up() -> None:
    """Task: import what :func:`evaluate_candidate` needs (a fresh worker spends seconds on
    torch and the simulator; submitted first, it overlaps the caller's own preparation)."""
    import chips.mapping  # noqa: F401
    import models.search.supernet  # noqa: F401
    import neurosim.costing.energy  # noqa: F401
    import neurosim.costing.paper.estimate  # noqa: F401
    import neurosim.frontends.lower  # noqa: F401
    import neurosim.run.compare  # noqa: F401


def _inherited(cand: dict, supernet_path: str, space: dict, data: dict, recal_n: int):
    """The candidate's subnet with the supernet's weights, BatchNorm statistics re-estimated
    on the first ``recal_n`` training rows (what every figure of this module is measured on)."""
    from models.search.supernet import recalibrate_bn
    model = _supernet(supernet_path, space_from_dict(space)).extract(Candidate.from_dict(cand))
    recalibrate_bn(model, data["x_train"][:recal_n])
    return model


def accuracy_on_test_split(cand: dict, supernet_path: str, space: dict, data: dict, *,
                  recal_n: int = 256) -> float:
    """Top-1 accuracy of the inherited-weight subnet on the test split (the same model as
    :func:`evaluate_candidate`'s validation accuracy; for checking a search's front on data
    the search never saw)."""
    import torch

    from models.train import accuracy
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return accuracy(_inherited(cand, supernet_path, space, data, recal_n), data["x_test"],
                        data["y_test"])
    finally:
        torch.set_num_threads(threads)


def accuracies_on_test_split(cands: dict, supernet_path: str, space: dict,
                             split: dict) -> dict:
    """Task: ``{key: accuracy_on_test_split}`` for the candidates ``cands`` (``{key: candidate
    dict}``), the data rebuilt once from ``split`` (a search log header's ``workload``,
    ``val_n``, ``seed``, ``train_n``, ``recal_n``): plain data in and out, for an executor."""
    data = search_data(split["workload"], space_from_dict(space).inputs, split["val_n"],
                       split["seed"], split["train_n"])
    return {k: accuracy_on_test_split(c, supernet_path, space, data, recal_n=split["recal_n"])
            for k, c in cands.items()}


_SUPERNETS: dict = {}


def _supernet(path: str, space):
    """The supernet at ``path``, loaded once per process (a worker evaluates many candidates);
    keyed by the file's size and modification time, so a rewritten file is read again."""
    from pathlib import Path

    from models.search.supernet import Supernet
    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime_ns, space)
    if key not in _SUPERNETS:
        _SUPERNETS.clear()
        _SUPERNETS[key] = Supernet.load(path, space)
    return _SUPERNETS[key]


def evaluate_candidate(cand: dict, supernet_path: str, space: dict, data: dict, *, chip: str,
                       mode: str = "sync", n: int = 64, calib_n: int = 32,
                       recal_n: int = 256) -> dict:
    """Task: the module doc's figures for one candidate (plain data in and out; one torch
    thread)."""
    import torch

    from chips.mapping import map_graph
    from models.train import accuracy
    from neurosim.costing.energy import attach_energy
    from neurosim.costing.paper.estimate import paper_estimate
    from neurosim.frontends.lower import lower
    from neurosim.run.compare import simulate_batched
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _inherited(cand, supernet_path, space, data, recal_n)
        acc = accuracy(model, data["x_val"], data["y_val"])
        xe, ye = data["x_val"][:n], data["y_val"][:n]
        rate = firing_rate(model, xe)
        graph = lower(model, data["x_train"][:calib_n])
        mapping = map_graph(graph, chip, strict=False)          # mapped once, used thrice
        if mapping.violations:
            v = mapping.violations
            return {"infeasible": f"does not fit {chip}: {len(v)} violation(s), e.g. "
                                  f"{v[0].message}", "accuracy": acc}
        est = paper_estimate(model, xe)
        res = simulate_batched(graph, chip, xe, mode, labels=ye, chunk=32, mapping=mapping)
    finally:
        torch.set_num_threads(threads)
    e = attach_energy(res, chip, mapping=mapping)["per_inference"]
    return {"accuracy": acc, "energy_j": float(e["total_j"]), "dynamic_j": float(e["dynamic_j"]),
            "static_j": float(e["static_j"]), "paper_j": est.energy_j,
            "formula_j": formula_energy_j(est, rate), "firing_rate": rate,
            "latency_s": float(np.mean(res.latency_s)),
            "chip_accuracy": float(np.mean(res.predictions == ye)), "n_energy": int(len(ye)),
            "n_val": int(len(data["y_val"])), "chip": str(chip), "mode": mode}


__all__ = ["ENERGY_KEYS", "MODES", "accuracies_on_test_split", "accuracy_on_test_split",
           "evaluate_candidate", "firing_rate", "formula_energy_j", "search_data",
           "structure_reason", "warm_up"]
