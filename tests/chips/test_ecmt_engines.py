"""ECMT-converted ViT on the chip engines: sync (tianjic-x16) and async windowed (speck-xl)
equal the reference interpreter bit for bit, and count the EC operations."""
import numpy as np
import pytest
import torch
from torch import nn

import models
import neurosim
from models.convert import ecmt
from neurosim.frontends.ecmt import lower_ecmt, run_twin
from neurosim.ir import graph as G
from neurosim.reference import interp


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(3)
    ann = models.create("vit-tiny", dims=12, heads=2, depths=1).eval()
    with torch.no_grad():
        for m in ann.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.4)
                m.bias.normal_(0, 0.1)
    x = np.random.default_rng(3).random((40, 1, 16, 16), dtype=np.float32)
    snn = ecmt.convert(ann, x, n=3, T=3)
    graph = lower_ecmt(snn, x[:8], weight_bits=8)          # the chips store 8-bit weights
    return snn, graph, x[:5], interp.run(graph, x[:5], record="all")


@pytest.mark.parametrize("chip,mode", [("tianjic-x16", "sync"), ("speck-xl", "async")])
def test_engines_equal_interpreter_and_twin(case, chip, mode):
    snn, graph, x, ref = case
    res = neurosim.simulate(graph, chip, x, mode=mode, async_mode="windowed",
                            batch_size=2) if mode == "async" else \
        neurosim.simulate(graph, chip, x, mode=mode, batch_size=2)
    np.testing.assert_array_equal(res.logits, ref.logits)
    np.testing.assert_array_equal(res.logits, run_twin(snn, graph, x))
    for n, op in graph.nodes.items():
        if isinstance(op, G.MTSpikes):                     # spikes fired = interpreter's
            assert res.counts[n]["spikes"] == int(ref.outputs[n].sum()), n
            assert res.counts[n]["neuron_updates"] == 3 * 5 * int(np.prod(op.in_shape)), n
        if isinstance(op, G.ExpectationEC):                # F on every element, every step
            assert res.counts[n]["mac"] == 3 * 5 * op.size, n
        if isinstance(op, G.MatMulEC):
            assert res.counts[n]["aux_ops"] > 0 and res.counts[n]["membrane_writes"] > 0, n
    e = res.energy
    assert e is not None and res.energy_j > 0
    assert sum(e["by_category_j"].values()) == pytest.approx(res.energy_j, rel=1e-12)
