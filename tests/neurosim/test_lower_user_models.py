"""Users' own models (issue 15): spikingjelly and snntorch networks built from standard torch.nn
layers lower to graphs that equal the framework's own forward pass, spike for spike at 8 bits on
dyadic weights, and simulate on tianjic-x16, speck-xl and (a Speck-style CNN) speck."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import snntorch as snn
import torch
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn

import neurosim
from chips.mapping import MappingError
from neurosim.frontends import lower as lower_mod
from neurosim.frontends.lower import LOWERINGS, LoweringError
from neurosim.frontends.stepwise import stepwise
from neurosim.ir import graph as G
from neurosim.reference import interp
from tests.zoo_cases import inputs_for, small_model

T, B = 4, 3
M = dict(step_mode="m")


# ----------------------------------------------------------------------------- models
def dyadic_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights k * 2^-6 (|k| <= 127, one 127 per output channel: exactly representable at 8
    bits) and BN statistics that fold exactly (eps 0, variance a power of 4, gamma a power of
    2, so the folded per-channel scale and threshold stay powers of 2; dyadic shifts)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = torch.randint(-127, 128, m.weight.shape, generator=g).double()
                w.view(w.shape[0], -1)[:, 0] = 127.0
                m.weight.copy_(w * 2.0 ** -6)
                if m.bias is not None:
                    m.bias.copy_(torch.randint(-16, 17, m.bias.shape, generator=g) * 2.0 ** -6)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                C = m.num_features
                m.eps = 0.0
                m.running_var.copy_(4.0 ** torch.randint(-1, 2, (C,), generator=g))
                m.running_mean.copy_(torch.randint(-8, 9, (C,), generator=g) * 2.0 ** -4)
                m.weight.copy_(2.0 ** torch.randint(-1, 2, (C,), generator=g))
                m.bias.copy_(torch.randint(-8, 9, (C,), generator=g) * 2.0 ** -4)
    return model.eval()


def sj_cnn() -> nn.Sequential:
    """A spikingjelly spiking CNN in multi-step mode (all three neuron types, max and average
    pooling, BN folded into the convolutions)."""
    return dyadic_(nn.Sequential(
        layer.Conv2d(2, 8, 3, padding=1, bias=False, **M), layer.BatchNorm2d(8, **M),
        neuron.LIFNode(tau=2.0, **M), layer.MaxPool2d(2, **M),
        layer.Conv2d(8, 16, 3, padding=1, **M), layer.BatchNorm2d(16, **M),
        neuron.IFNode(v_reset=None, **M), layer.AvgPool2d(2, **M),
        layer.Flatten(**M), layer.Linear(16 * 4 * 4, 10, **M),
        neuron.ParametricLIFNode(init_tau=2.0, **M)))


def sj_seq_to_ann_cnn() -> nn.Sequential:
    """The same kind of CNN written with plain torch.nn layers inside SeqToANNContainer."""
    return dyadic_(nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8)),
        neuron.LIFNode(tau=2.0, v_reset=None, **M),
        layer.SeqToANNContainer(nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                                nn.BatchNorm2d(8), nn.Dropout(0.5)),
        neuron.LIFNode(tau=2.0, decay_input=False, **M),
        layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Identity(),
                                nn.Linear(8, 10)),
        neuron.IFNode(**M)), seed=1)


def speck_cnn() -> nn.Sequential:
    """Strided convolutions and IF neurons only: what Speck's cores run."""
    return dyadic_(nn.Sequential(
        layer.Conv2d(2, 8, 3, padding=1, stride=2, bias=False, **M), layer.BatchNorm2d(8, **M),
        neuron.IFNode(**M), layer.Conv2d(8, 16, 3, padding=1, stride=2, **M),
        layer.BatchNorm2d(16, **M), neuron.IFNode(v_reset=None, **M),
        layer.Flatten(**M), layer.Linear(16 * 4 * 4, 10, **M), neuron.IFNode(**M)), seed=2)


def sj_kit():
    return dict(conv=lambda *a, **k: layer.Conv2d(*a, **k, **M),
                bn2d=lambda c: layer.BatchNorm2d(c, **M), bn1d=lambda c: layer.BatchNorm1d(c, **M),
                pool=lambda k: layer.MaxPool2d(k, **M),
                lif=lambda v_th=1.0: neuron.LIFNode(tau=2.0, v_threshold=v_th, **M))


def snn_kit():
    return dict(conv=nn.Conv2d, bn2d=nn.BatchNorm2d, bn1d=nn.BatchNorm1d, pool=nn.MaxPool2d,
                lif=lambda v_th=1.0: snn.Leaky(beta=0.5, threshold=v_th, init_hidden=True,
                                               reset_mechanism="zero"))


class Branch(nn.Module):
    """Token-wise Linear + BatchNorm1d (over channels) + LIF, on [..., N, C] (Spikformer)."""

    def __init__(self, kit, c_in, c_out, v_th=1.0):
        super().__init__()
        self.lin, self.bn, self.lif = nn.Linear(c_in, c_out), kit["bn1d"](c_out), kit["lif"](v_th)

    def forward(self, x):
        return self.lif(self.bn(self.lin(x).transpose(-1, -2)).transpose(-1, -2))


class SpikingBlock(nn.Module):
    """A spiking transformer block: Q/K/V Linear + LIF, per-head (Q K^T) V * 0.125 with spikes,
    attention LIF, projection, residual adds, two-layer MLP; then a token mean and a head."""

    def __init__(self, kit, dim=16, heads=2, classes=10):
        super().__init__()
        self.heads = heads
        self.embed = nn.Sequential(kit["conv"](2, dim, 3, padding=1), kit["bn2d"](dim),
                                   kit["lif"](), kit["pool"](2))
        self.q, self.k, self.v = (Branch(kit, dim, dim) for _ in range(3))
        self.attn_lif = kit["lif"](0.5)
        self.proj = Branch(kit, dim, dim)
        self.mlp = nn.Sequential(Branch(kit, dim, 2 * dim), Branch(kit, 2 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def attention(self, x):
        q, k, v = (b(x).unflatten(-1, (self.heads, -1)).transpose(-2, -3)
                   for b in (self.q, self.k, self.v))
        a = (q @ k.transpose(-2, -1)) * 0.125
        return self.proj(self.attn_lif((a @ v).transpose(-2, -3).flatten(-2)))

    def forward(self, x):
        x = self.embed(x).flatten(-2).transpose(-1, -2)            # [..., N, C] tokens
        x = x + self.attention(x)
        x = x + self.mlp(x)
        return self.head(x.mean(-2))


def snn_cnn() -> nn.Sequential:
    """An snntorch CNN (single-step; lowered through stepwise)."""
    return dyadic_(nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8),
        snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero"), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        snn.Leaky(beta=1.0, init_hidden=True, reset_mechanism="subtract",
                  graded_spikes_factor=0.5),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 16, 10),
        snn.Leaky(beta=0.75, init_hidden=True, output=True, reset_mechanism="zero")), seed=3)


def events(shape=(2, 16, 16), seed=0, p=0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, B) + shape) < p).astype(np.float32)


# ----------------------------------------------------------------------------- comparison
def own_forward(model, x, kinds):
    """The framework's own forward: logits (time mean of the output) and every spiking
    neuron's output [T, B, ...] by module path."""
    rec, hooks = {}, []
    for path, m in model.named_modules():
        if isinstance(m, kinds):
            def hook(m, i, o, path=path):
                rec.setdefault(path, []).append((o[0] if isinstance(o, tuple) else o).numpy())
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    spikes = {p.removeprefix("model."): v[0] if len(v) == 1 else np.stack(v)
              for p, v in rec.items()}
    return out.mean(0).numpy(), spikes


def to_ir_layout(a: np.ndarray, shape: tuple) -> np.ndarray:
    """[T, B, N, C] tokens -> [T, B, C, H, W] of the IR node; other layouts are the IR's."""
    if a.ndim == 4 and len(shape) == 3:
        a = np.swapaxes(a, -1, -2)
    return a.reshape(a.shape[:2] + shape)


def assert_matches_own_forward(model, graph, x, kinds, exact_logits=True):
    logits, spikes = own_forward(model, x, kinds)
    res = interp.run(graph, x, record="spikes")
    assert spikes and set(spikes) <= set(res.outputs)
    for path, a in spikes.items():
        ir = res.outputs[path]
        np.testing.assert_array_equal(to_ir_layout(a != 0, ir.shape[2:]), ir != 0,
                                      err_msg=f"spikes of {path}")
    rates = [float((a != 0).mean()) for a in spikes.values()]
    assert min(rates) > 0.02 and max(rates) < 0.98, f"vacuous comparison: rates {rates}"
    if exact_logits:
        np.testing.assert_array_equal(res.logits, logits)
    else:
        np.testing.assert_allclose(res.logits, logits, rtol=1e-6, atol=1e-6)
    return res


SJ_NEURONS = (neuron.BaseNode,)
SNN_NEURONS = (snn.SpikingNeuron,)


# ----------------------------------------------------------------------------- equality
@pytest.mark.parametrize("build", [sj_cnn, sj_seq_to_ann_cnn, speck_cnn])
def test_spikingjelly_cnn_equals_its_own_forward(build):
    model = build()
    x = events()
    graph = neurosim.lower(model, x)
    assert_matches_own_forward(model, graph, x, SJ_NEURONS)
    convs = [op for op in graph.nodes.values() if isinstance(op, G.Conv)]
    assert convs and all(op.form != "batchnorm" for op in convs), "BN folds into the conv"


def test_spikingjelly_transformer_block_equals_its_own_forward():
    model = dyadic_(SpikingBlock(sj_kit()))
    x = events((2, 8, 8))
    graph = neurosim.lower(model, x)
    assert_matches_own_forward(model, graph, x, SJ_NEURONS, exact_logits=False)
    (mm,) = [op for op in graph.nodes.values() if isinstance(op, G.SpikeMatmul)]
    assert (mm.heads, mm.order, mm.name) == (2, "(qk)v", "matmul_1")
    assert ["q.lif", "k.lif", "v.lif"] == graph.inputs("matmul_1")
    assert graph.op("attn_lif").v_th[0] == 0.5 / 0.125        # the 0.125 folded into V_th
    assert sum(isinstance(op, G.Add) for op in graph.nodes.values()) == 2


def test_snntorch_models_equal_their_own_forward_through_stepwise():
    x = events()
    cnn = stepwise(snn_cnn(), T)
    assert_matches_own_forward(cnn, neurosim.lower(cnn, x), x, SNN_NEURONS)
    block = stepwise(dyadic_(SpikingBlock(snn_kit()), seed=4), T)
    xb = events((2, 8, 8), seed=1)
    g = neurosim.lower(block, xb)
    assert_matches_own_forward(block, g, xb, SNN_NEURONS, exact_logits=False)
    lif = g.op("embed.2")       # Leaky(beta=0.5, reset_mechanism="zero"): tau 2, hard reset
    assert (lif.model, lif.tau, lif.reset, lif.decay_input) == ("lif", 2.0, "hard", False)


def test_non_dyadic_weights_agree_closely():
    """Ordinary (float) weights are quantized: the agreement is a figure, not equality
    (fraction of equal spike decisions over all neurons and ticks; torch's default init x 3)."""
    torch.manual_seed(0)
    model = sj_cnn()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
            with torch.no_grad():
                m.weight.mul_(3.0)
    x = events(seed=5)
    _, spikes = own_forward(model, x, SJ_NEURONS)
    agree = {}
    for bits in (8, 16):
        res = interp.run(neurosim.lower(model, x, weight_bits=bits), x)
        agree[bits] = np.mean([np.mean(to_ir_layout(a != 0, res.outputs[p].shape[2:]) ==
                                       (res.outputs[p] != 0)) for p, a in spikes.items()])
    assert 0.99 <= agree[8] < 1.0 and agree[16] >= 0.999, agree    # measured: 0.9964, 1.0


class Rearranged(nn.Module):
    """Spike maps [T, B, C, H, W] permuted per sample, flattened, then Linear + LIF."""

    def __init__(self, perm, c=3, hw=4):
        super().__init__()
        self.perm = perm
        self.conv, self.lif0 = layer.Conv2d(2, c, 3, padding=1, **M), neuron.IFNode(**M)
        self.fc, self.lif = nn.Linear(c * hw * hw, 6), neuron.IFNode(**M)

    def forward(self, x):
        s = self.lif0(self.conv(x)).permute(0, 1, *(2 + p for p in self.perm))
        return self.lif(self.fc(s.reshape(s.shape[0], s.shape[1], -1)))


@settings(max_examples=6, deadline=None)
@given(st.permutations([0, 1, 2]))
def test_any_rearrangement_before_a_linear_lowers_exactly(perm):
    """Views are lowered by replaying them on element indices: a Linear reading a permuted,
    flattened map gets its columns permuted to match, so spikes stay equal."""
    model = dyadic_(Rearranged(tuple(perm)), seed=5)
    x = events((2, 4, 4), seed=2)
    assert_matches_own_forward(model, neurosim.lower(model, x), x, SJ_NEURONS)


# ----------------------------------------------------------------------------- chips
@pytest.mark.parametrize("build,chips", [
    (sj_cnn, [("tianjic-x16", "sync"), ("speck-xl", "async")]),
    (speck_cnn, [("speck", "async")]),
    (lambda: dyadic_(SpikingBlock(sj_kit())), [("tianjic-x16", "sync"), ("speck-xl", "async")]),
], ids=["cnn", "speck-cnn", "transformer"])
def test_lowered_models_simulate_on_chips_exactly(build, chips):
    model = build()
    x = events((2, 8, 8) if isinstance(model, SpikingBlock) else (2, 16, 16))
    graph = neurosim.lower(model, x)
    ref = interp.run(graph, x, record="none").logits
    for chip, mode in chips:
        res = neurosim.simulate(graph, chip, x, mode=mode)
        np.testing.assert_array_equal(res.logits, ref, err_msg=chip)


def test_speck_names_the_spike_products_it_lacks():
    model = dyadic_(SpikingBlock(sj_kit()))
    x = events((2, 8, 8))
    with pytest.raises(MappingError, match=r"matmul_1.*spike x spike products are not "
                                           r"supported on speck"):
        neurosim.simulate(neurosim.lower(model, x), "speck", x, mode="async")


# ----------------------------------------------------------------------------- the zoo, API
def test_zoo_models_lower_the_same_through_the_facade(monkeypatch):
    """The user-model lowerings (registered globally) leave the zoo's graphs unchanged: compare
    with the zoo path alone (lower.py's own Linear, no fx-node handlers)."""
    model = small_model("meta-sdsa3")
    x = inputs_for(model, 4)
    a = neurosim.lower(model, x)
    monkeypatch.setattr(lower_mod, "FX_NODES", {})
    monkeypatch.setitem(LOWERINGS, nn.Linear, lower_mod._lower_linear)
    b = lower_mod.lower(model, x)
    assert list(a.nodes) == list(b.nodes) and a.edges() == b.edges()
    assert all(a.op(n).equals(b.op(n)) for n in a.nodes)


class Probe(nn.Module):
    """A user's pass-through module (e.g. for monitoring) that no lowering knows."""

    def forward(self, x):
        return x


def test_register_lowering_adds_a_module_type():
    model = nn.Sequential(layer.Conv2d(2, 4, 3, **M), Probe(), neuron.IFNode(**M))
    x = events((2, 6, 6))
    with pytest.raises(LoweringError, match=r"no lowering for module '1' of type "
                                            r"[\w.]*test_lower_user_models\.Probe; lowerable "
                                            r"types: .*spikingjelly\.LIFNode.*torch\.Conv2d"):
        neurosim.lower(model, x)
    neurosim.register_lowering(Probe, lambda ctx, node, mod, inputs: inputs[0])
    try:
        graph = neurosim.lower(model, x)
        assert graph.inputs("2") == ["0"]
    finally:
        LOWERINGS.pop(Probe)
    with pytest.raises(TypeError, match="module_type must be a torch.nn.Module subclass"):
        neurosim.register_lowering("Probe", lambda *a: None)


# ----------------------------------------------------------------------------- bad input
def _lif(**kw):
    return neuron.LIFNode(tau=2.0, **{**M, **kw})


@pytest.mark.parametrize("model,match", [
    (lambda: nn.Sequential(layer.Conv2d(2, 4, 3, **M), nn.GELU(), _lif()),
     r"no lowering for module '1' of type torch\.nn\.modules\.activation\.GELU; lowerable "
     r"types: .*torch\.AvgPool2d.*torch\.Conv2d"),
    (lambda: nn.Sequential(layer.Conv2d(2, 4, 3, **M), neuron.QIFNode(**M)),
     r"no lowering for neuron '1' of type spikingjelly\..*QIFNode; supported spikingjelly "
     r"modules: .*IFNode.*LIFNode.*ParametricLIFNode"),
    (lambda: nn.Sequential(layer.Conv2d(2, 4, 3, **M),
                           _lif(surrogate_function=surrogate.Sigmoid(spiking=False))),
     r"module '1' \(LIFNode\): surrogate_function\.spiking=False"),
    (lambda: nn.Sequential(layer.Conv2d(2, 4, 3, **M), _lif(step_mode="s")),
     r"module '1' \(LIFNode\) is a single-step neuron in a multi-step model: wrap the model "
     r"with neurosim\.frontends\.stepwise"),
    (lambda: stepwise(nn.Sequential(nn.Conv2d(2, 4, 3), snn.Leaky(beta=0.5, init_hidden=True)),
                      T),
     r"module '1' \(Leaky\): reset_mechanism='subtract' with beta=0\.5 is not modelled"),
    (lambda: nn.Sequential(layer.SeqToANNContainer(nn.Conv2d(2, 4, 3)),
                           snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero")),
     r"module '1' \(Leaky\) is a single-step neuron in a multi-step model: wrap"),
    (lambda: stepwise(nn.Sequential(nn.Conv2d(2, 4, 3),
                                    snn.Synaptic(alpha=0.9, beta=0.5, init_hidden=True)), T),
     r"module '1' \(Synaptic\): alpha=0\.9: the synaptic current is a second state"),
    (lambda: nn.Sequential(layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, dilation=2)), _lif()),
     r"module '0\.0' \(Conv2d\): padding_mode='zeros', dilation=\(2, 2\)"),
], ids=["gelu", "qif", "surrogate", "step-mode", "subtract", "unwrapped", "synaptic",
        "dilation"])
def test_bad_models_name_the_module_and_option(model, match):
    with pytest.raises(LoweringError, match=match):
        neurosim.lower(model(), events((2, 8, 8)))


class ScoreLIF(SpikingBlock):
    """Attention scores through a LIF before V (not a single spike product)."""

    def attention(self, x):
        q, k, v = (b(x) for b in (self.q, self.k, self.v))
        a = self.attn_lif(q @ k.transpose(-2, -1))
        return a @ v


def test_attention_scores_used_before_v_are_named():
    with pytest.raises(LoweringError, match=r"uses the spike product 'matmul' before it is "
                                            r"multiplied by v"):
        neurosim.lower(dyadic_(ScoreLIF(sj_kit())), events((2, 8, 8)))


def test_time_and_batch_mixing_views_are_named():
    class Mix(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.lif = layer.Conv2d(2, 4, 3, **M), _lif()

        def forward(self, x):
            return self.lif(self.conv(x).transpose(0, 1).reshape(T, B, 4, 6, 6))

    with pytest.raises(LoweringError, match=r"call_method 'transpose' .* does not keep time "
                                            r"and batch apart"):
        neurosim.lower(Mix(), events((2, 8, 8)))
