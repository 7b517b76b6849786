"""The SSC training layer computes what the chip engines' SSC computes (same weights, inputs)."""
import numpy as np
import pytest
import torch
from torch import nn

from chips.engines import kernels as K
from models.layers import ConvBN
from models.mim.ssc import SSCConvBN, to_ssc, to_vsc
from neurosim.frontends.lower import lower
from neurosim.ir import graph as G
from neurosim.run.simulate import simulate
from tests.zoo_cases import inputs_for, small_model


def _layer(w: np.ndarray, groups: int, scale=None, bias=None) -> SSCConvBN:
    """SSC layer holding integer weights ``w``; BN (eval, eps 0, mean 0, var 1) computing
    acc * scale + bias, the chip's affine."""
    co, cig, k, _ = w.shape
    conv = nn.Conv2d(cig * groups, co, k, 1, k // 2, groups=groups, bias=False).double()
    conv.weight.data = torch.from_numpy(w.astype(np.float64))
    bn = None
    if scale is not None:
        bn = nn.BatchNorm2d(co, eps=0.0).double().eval()
        bn.weight.data, bn.bias.data = torch.from_numpy(scale), torch.from_numpy(bias)
    return SSCConvBN(conv, bn).eval().requires_grad_(False)


@pytest.mark.parametrize("k,groups", [(3, 1), (1, 1), (7, 6)], ids=["3x3", "1x1", "dw7x7"])
def test_ssc_layer_equals_chip_kernel(k, groups):
    rng = np.random.default_rng(k)
    B, C, H, W, Co = 3, 6, 9, 9, 6
    x = rng.integers(0, 5, (B, C, H, W)) * (rng.random((B, 1, H, W)) < 0.4)     # sparse sites
    w = rng.integers(-8, 9, (Co, C // groups, k, k))
    scale, bias = rng.uniform(0.01, 0.2, Co), rng.uniform(-1, 1, Co)
    # chip: event-driven SSC scatter, then where(mask, acc * scale + bias, 0)
    q = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).astype(np.int32)
    acc = np.zeros((B, H, W, Co), np.int64)
    mask = np.zeros((B, H, W), np.uint8)
    ev = np.zeros(B, np.int64)
    K.conv_scatter_ssc_batch(*K.maps_to_events(q), K.conv_weight_cl(w.astype(np.int64)), acc,
                             k // 2, groups, mask, ev)
    chip = np.stack([K.affine_out(acc[b], scale, bias, mask[b]) for b in range(B)])
    xt = torch.from_numpy(x.astype(np.float64))[None]                           # [T=1, B, ...]
    raw = _layer(w, groups)(xt)[0].numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(raw, np.where(mask[..., None] != 0, acc, 0))   # integers
    out = _layer(w, groups, scale, bias)(xt)[0].numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(out == 0, chip == 0)                           # same silence
    np.testing.assert_allclose(out, chip, rtol=1e-15, atol=1e-15)


def test_ssc_layer_equals_sync_engine_on_a_lowered_model():
    """Lower a (perturbed, untrained) E-SpikeFormer with ssc=True, run the sync engine, and feed
    each SSC conv's recorded input spikes through the training layer holding that node's
    weights: the outputs agree with the engine's, site for site."""
    model = small_model("e-spikeformer")
    x = inputs_for(model, 1)
    graph = lower(model, x, ssc=True)
    res = simulate(graph, "tianjic-x16", x, record="all")
    checked = 0
    for name in graph.order():
        op = graph.op(name)
        if not (isinstance(op, G.Conv) and op.ssc):
            continue
        src = graph.inputs(name)[0]
        if graph.edge(src, name)["kind"] != "spike":
            continue
        layer = _layer(op.weight, op.groups, op.scale.astype(np.float64),
                       op.bias.astype(np.float64))
        out = layer(torch.from_numpy(res.spikes[src].astype(np.float64))).numpy()
        chip = res.spikes[name]
        np.testing.assert_array_equal(out == 0, chip == 0, err_msg=name)
        np.testing.assert_allclose(out, chip, rtol=1e-14, atol=1e-12, err_msg=name)
        checked += 1
    assert checked >= 10


def test_masked_sites_produce_nothing_and_bn_uses_active_sites_only():
    torch.manual_seed(0)
    m = SSCConvBN.from_convbn(ConvBN(4, 5, 3, 1, 1))
    m.train()
    x = torch.zeros(1, 8, 4, 6, 6)
    x[..., :3] = torch.rand(1, 8, 4, 6, 3) + 0.1                 # left half active
    y = m(x)
    assert torch.all(y[..., 3:] == 0)                                 # silent half stays silent
    z = m.conv(x[0])[:, :, :, :3]                                     # active sites only
    np.testing.assert_allclose(m.bn.running_mean.numpy(), 0.1 * z.mean((0, 2, 3)).detach().numpy(),
                               rtol=1e-5, atol=1e-7)
    act = y[0, :, :, :, :3]                                           # normalised over them
    np.testing.assert_allclose(act.mean((0, 2, 3)).detach().numpy(), m.bn.bias.detach().numpy(),
                               atol=1e-5)


def test_strided_ssc_keeps_masked_cells_silent_and_conversion_keeps_weights():
    torch.manual_seed(0)
    m = SSCConvBN.from_convbn(ConvBN(2, 3, 3, 2, 1, bias=True)).eval()
    x = torch.zeros(1, 1, 2, 8, 8)
    x[..., :4, :] = 1.0
    y = m(x)
    assert y.shape == (1, 1, 3, 4, 4)
    assert torch.all(y[..., 2:, :] == 0) and torch.any(y[..., :2, :] != 0)
    net = nn.Sequential(ConvBN(2, 3, 3, 1, 1), nn.Sequential(ConvBN(3, 3, 1)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    to_ssc(net)
    assert isinstance(net[0], SSCConvBN) and isinstance(net[1][0], SSCConvBN)
    assert set(net.state_dict()) == set(before)
    to_vsc(net)
    assert type(net[0]) is ConvBN
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_ssc_rejects_non_same_padding_and_empty_models():
    with pytest.raises(ValueError, match="'same' padding"):
        SSCConvBN(nn.Conv2d(2, 2, 3, 1, 0), None)
    with pytest.raises(ValueError, match="no ConvBN"):
        to_ssc(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not match"):
        SSCConvBN(nn.Conv2d(2, 2, 3, 2, 1), None)(torch.ones(1, 1, 2, 5, 5),
                                                  active=torch.ones(1, 1, 4, 4))
