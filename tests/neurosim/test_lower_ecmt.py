"""ECMT-converted ViTs as Graphs (neurosim.frontends.ecmt): the new IR nodes' semantics, the
lowering, and interpreter == quantized twin, bit for bit."""
import numpy as np
import pytest
import torch
from torch import nn

import models
from models.convert import ecmt
from models.neurons import multi_threshold_step
from neurosim.frontends.ecmt import lower_ecmt, run_twin
from neurosim.frontends.lower import LoweringError
from neurosim.ir import graph as G
from neurosim.ir.semantics import matmul_ec_step, mt_decode, mt_spikes_step
from neurosim.reference import interp


def _vit(seed=3, **kw):
    torch.manual_seed(seed)
    ann = models.create("vit-tiny", dims=12, heads=2, depths=1, **kw).eval()
    with torch.no_grad():                      # larger weights than the init: every site fires
        for m in ann.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.4)
                m.bias.normal_(0, 0.1)
    return ann


@pytest.fixture(scope="module")
def converted():
    x = np.random.default_rng(3).random((40, 1, 16, 16), dtype=np.float32)
    snn = ecmt.convert(_vit(), x, n=4, T=3)
    return snn, x


def test_mt_spikes_match_the_multi_threshold_neuron():
    op = G.MTSpikes(name="mt", shape=(3 * 6,), in_shape=(3,), levels=3,
                    theta_pos=np.array([0.3, 0.3, 0.3]), theta_neg=np.array([0.2, 0.2, 0.2]))
    rng = np.random.default_rng(0)
    v, ref_v = np.zeros((4, 3)), torch.zeros(4, 3, dtype=torch.float64)
    for _ in range(5):
        x = rng.normal(0, 1.5, (4, 3))
        s, v, sat = mt_spikes_step(op, v, x)
        ref, ref_v = multi_threshold_step(ref_v, torch.from_numpy(x), theta_pos=0.3,
                                          theta_neg=0.2, levels=3)
        p, q = mt_decode(s, 3)
        assert sat == 0 and s.shape == (4, 18) and (s.reshape(4, 3, 6).sum(-1) <= 1).all()
        np.testing.assert_array_equal(0.3 * p - 0.2 * q, ref.numpy())
        np.testing.assert_array_equal(v, ref_v.numpy())


def test_matmul_ec_node_gives_the_product_of_the_means():
    """S_K = S_A S_B exactly (unit thresholds: integer grids) and the sum of O over t =
    t scale mean_A mean_B (to float64 rounding of the divisions by t)."""
    op = G.MatMulEC(name="qk", shape=(1, 4, 4), form="qk", heads=1, levels=2, scale=0.5)
    rng = np.random.default_rng(1)
    state, total, sa, sb = None, 0.0, 0.0, 0.0
    for t in range(1, 6):
        a = np.zeros((1, 3, 4, 1, 4))             # (d = 3) x 2n one-hot, 1 x 4 tokens
        b = np.zeros((1, 3, 4, 1, 4))
        for arr in (a, b):
            idx = rng.integers(-1, 4, size=(3, 4))
            for c in range(3):
                for n in range(4):
                    if idx[c, n] >= 0:
                        arr[0, c, idx[c, n], 0, n] = 1
        out, state, adds = matmul_ec_step(op, state, a.reshape(1, 12, 1, 4), b.reshape(1, 12, 1, 4))
        pa, qa = mt_decode(a.reshape(1, 12, 1, 4), 2)
        pb, qb = mt_decode(b.reshape(1, 12, 1, 4), 2)
        sa, sb = sa + (pa - qa).reshape(3, 4), sb + (pb - qb).reshape(3, 4)
        total = total + out
        sk = state["sk"]                          # S_K = S_A S_B in exact integers (eq. 17)
        np.testing.assert_array_equal(((sk["pp"] - sk["pq"]) - sk["qp"] + sk["qq"])[0, 0],
                                      sa.T @ sb)
        np.testing.assert_allclose(total[0, 0], 0.5 * (sa.T / t) @ (sb / t) * t, rtol=1e-12,
                                   atol=1e-12)
        assert adds.shape == (1,) and adds[0] >= 0


def test_lowered_graph_interpreter_equals_twin_bit_for_bit(converted, tmp_path):
    snn, x = converted
    graph = lower_ecmt(snn, x[:8])
    types = {type(op).__name__ for op in graph.nodes.values()}
    assert {"MTSpikes", "MatMulEC", "ExpectationEC", "AddConst", "Conv", "Linear"} <= types
    r = interp.run(graph, x[:6], record="all")
    np.testing.assert_array_equal(r.logits, run_twin(snn, graph, x[:6]))
    assert not any(r.saturations.values())
    back = G.Graph.load(graph.save(tmp_path / "g"))                # generic serialization
    np.testing.assert_array_equal(interp.run(back, x[:6], record="none").logits, r.logits)


def test_lowering_is_the_converted_snn_up_to_weight_quantization(converted):
    """With 30-bit weights the graph reproduces the PyTorch SNN (float32) to 1e-5."""
    snn, x = converted
    graph = lower_ecmt(snn, x[:8], weight_bits=30)
    ref = snn(torch.from_numpy(x[:6])).double().numpy()
    np.testing.assert_allclose(interp.run(graph, x[:6], record="none").logits, ref, atol=1e-5)


def test_lowering_bad_input_is_named(converted):
    snn, x = converted
    with pytest.raises(LoweringError, match="pool='mean'"):
        lower_ecmt(ecmt.convert(_vit(pool="cls"), x, n=2, T=2), x[:4])
    with pytest.raises(LoweringError, match="ECMTNet converted from models.vit.ViT"):
        lower_ecmt(_vit(), x[:4])
    with pytest.raises(G.GraphError, match="levels must be >= 1"):
        G.MTSpikes(name="m", shape=(2,), in_shape=(1,), levels=0)
    with pytest.raises(G.GraphError, match="form must be one of"):
        G.MatMulEC(name="m", shape=(1, 4, 4), form="kq")
    with pytest.raises(G.GraphError, match="fn must be one of"):
        G.ExpectationEC(name="e", shape=(4,), fn="relu")
