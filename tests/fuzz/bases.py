"""Small valid inputs the fuzz tests mutate and the schema tests start from."""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G


def tiny_graph() -> G.Graph:
    """Spike input -> conv -> IF -> conv to a vector -> mean -> readout: maps on every chip."""
    rng = np.random.default_rng(0)
    g = G.Graph(meta={"model": "tiny"})
    g.add(G.Input("input", (2, 8, 8), kind="spike", T=2))
    g.add(G.Conv("conv1", (4, 8, 8), in_shape=(2, 8, 8), padding=1,
                 weight=rng.integers(-20, 60, (4, 2, 3, 3))), ["input"])
    g.add(G.Neurons("n1", (4, 8, 8), model="if", v_th=np.full(4, 40.0)), ["conv1"])
    g.add(G.Conv("conv2", (3, 1, 1), in_shape=(4, 8, 8),
                 weight=rng.integers(-5, 20, (3, 4, 8, 8))), ["n1"])
    g.add(G.TokenMean("mean", (3,)), ["conv2"])
    g.add(G.Readout("readout", (3,)), ["mean"])
    return g.validate()


def tiny_inputs(n: int = 2, seed: int = 1) -> np.ndarray:
    """``n`` spike inputs for :func:`tiny_graph` (about 30% of addresses active)."""
    return (np.random.default_rng(seed).random((n, 2, 8, 8)) < 0.3).astype(np.float64)


def write_run_dir(out, seed: int = 1, modes=None):
    """A report directory (result.json, timing.json, report) of the tiny graph on a sync and an
    async chip (``modes``: all by default); returns its path."""
    from neurosim.report.markdown import write_report
    from neurosim.run.compare import compare

    g = tiny_graph()
    x = tiny_inputs(2, seed)
    cmp = compare(g, ["tianjic-x16", "speck-xl"], x, np.array([0, 2]), modes=modes)
    return write_report(out, cmp, graph=g, model_name="tiny", workload="random",
                        chips=cmp.chips)


def tiny_record(modes=None) -> dict:
    """The ``result.json`` content of :func:`write_run_dir`, built without rendering."""
    from neurosim.report.markdown import build_record
    from neurosim.run.compare import compare

    g = tiny_graph()
    cmp = compare(g, ["tianjic-x16", "speck-xl"], tiny_inputs(2), np.array([0, 2]), modes=modes)
    return build_record(cmp, graph=g, model_name="tiny", workload="random", chips=cmp.chips)


def zoo_record(modes=("sync", "async-windowed")) -> dict:
    """A record with every section: a small zoo model (E-SpikeFormer, SFA neurons) on a sync
    and an async chip, its paper-mode estimate and comparison, and the mapping report of a
    chip it does not fit. (Free-running mode, minutes on this model, is in ``tiny_record``.)"""
    from chips.mapping import map_graph
    from neurosim.costing.paper import paper_estimate
    from neurosim.frontends.lower import lower
    from neurosim.report.markdown import build_record
    from neurosim.run.compare import compare
    from tests.zoo_cases import inputs_for, small_model

    m = small_model("e-spikeformer")
    x = inputs_for(m, 2, seed=3)
    g = lower(m, x)
    cmp = compare(g, ["tianjic-x16", "speck-xl"], x, np.array([1, 7]), modes=list(modes))
    return build_record(cmp, graph=g, model_name="e-small", workload="random", chips=cmp.chips,
                        paper=paper_estimate(m, x, graph=g),
                        mapping_reports={"speck": map_graph(g, "speck", strict=False)})
