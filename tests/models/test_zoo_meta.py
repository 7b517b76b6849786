"""Meta-SpikeFormer (SDT v2) and E-SpikeFormer (SDT v3) families: published parameter counts,
forward/backward on small variants, configuration handling, and the leaf-only dataflow contract."""
import operator

import pytest
import torch
from torch import nn

import models
from models import e_spikeformer, layers, meta_spikeformer, neurons, registry
from models.layers import TokenSum
from models.neurons import LearnableThresholdLIF

# name, overrides, published count in millions as printed (seed-facts §2; sdt-v2 Table 5 for the
# SDSA ablation rows, which are printed to three significant figures)
PUBLISHED = [
    ("meta-spikeformer-8-384", {}, "31.33"),
    ("meta-spikeformer-8-512", {}, "55.35"),
    ("meta-spikeformer-8-768", {}, "123.7"),
    ("meta-spikeformer-8-384", {"attn": "sdsa1"}, "31.3"),
    ("meta-spikeformer-8-384", {"attn": "sdsa2"}, "28.6"),
    ("meta-spikeformer-8-384", {"attn": "sdsa4"}, "31.3"),
    ("e-spikeformer-t", {}, "2.70"),
    ("e-spikeformer-s", {}, "5.106"),
    ("e-spikeformer-m", {}, "10.02"),
    ("e-spikeformer-l", {}, "18.99"),
]

SMALL_META = dict(img_size=32, in_channels=3, num_classes=10, T=2, dims=[8, 16, 32, 32],
                  depths=[1, 1, 1, 1], heads=4, mlp_ratio=2)
SMALL_E = dict(img_size=32, in_channels=3, num_classes=10, dims=[8, 16, 32, 32],
               depths=[1, 1, 1, 1], heads=4, mlp_ratio=2)
SMALL = [("meta-spikeformer-8-384", {**SMALL_META, "attn": a})
         for a in meta_spikeformer.ATTN_VARIANTS]
SMALL += [("e-spikeformer-s", SMALL_E), ("e-spikeformer-s", {**SMALL_E, "T": 2, "D": 2})]

ALLOWED_LEAVES = (layers.LEAF_MODULES + neurons.NEURON_MODULES + (nn.Linear,))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,overrides,published", PUBLISHED)
def test_published_parameter_count(name, overrides, published):
    with torch.device("meta"):
        model = registry.create(name, **overrides)
    got = n_params(model)
    pub = float(published) * 1e6
    decimals = len(published.split(".")[1])
    tol = max(1e-3 * pub, 0.5 * 10 ** -decimals * 1e6)   # 0.1%, or the printed precision
    assert abs(got - pub) <= tol, f"{name} {overrides}: {got} parameters vs published {published}M"


def test_meta_device_count_matches_cpu():
    a = n_params(registry.create("meta-spikeformer-8-384", **SMALL_META))
    with torch.device("meta"):
        b = n_params(registry.create("meta-spikeformer-8-384", **SMALL_META))
    assert a == b > 0


@pytest.mark.parametrize("name", ["meta-spikeformer-tiny", "e-spikeformer-tiny"])
def test_tiny_digits_configs(name):
    torch.manual_seed(0)
    model = registry.create(name)
    assert n_params(model) < 100_000
    out = model(torch.rand(3, 1, 32, 32))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert model.neurosim_config["name"] == name


@pytest.mark.parametrize("name,overrides", SMALL, ids=lambda v: v if isinstance(v, str) else
                         f"{v.get('attn', 'sfa')}-T{v.get('T', 1)}")
def test_forward_backward_small(name, overrides):
    torch.manual_seed(0)
    model = registry.create(name, **overrides)
    x = torch.rand(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    g = model.down1a.conv.conv.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # a [T, B, C, H, W] input with the model's T is accepted as is
    T = overrides.get("T", 1)
    assert torch.equal(model.eval()(x.unsqueeze(0).expand(T, *x.shape)), model(x))


def test_sdsa4_threshold_is_learned():
    torch.manual_seed(0)
    model = registry.create("meta-spikeformer-8-384", **SMALL_META, attn="sdsa4")
    ths = [m for m in model.modules() if isinstance(m, LearnableThresholdLIF)]
    assert len(ths) == 2 and all(m.threshold() == 0.5 for m in ths)
    model(torch.rand(4, 3, 32, 32)).sum().backward()
    assert all(m.v_th.grad is not None and torch.isfinite(m.v_th.grad) for m in ths)


def test_learnable_threshold_lif_matches_fixed_lif():
    torch.manual_seed(1)
    x = torch.randn(4, 3, 5) * 2
    cfg = dict(meta_spikeformer.DEFAULT_NEURON)
    fixed = neurons.make_neuron(cfg, v_th=0.7)
    learned = LearnableThresholdLIF(cfg, 0.7)
    assert torch.equal(fixed(x), learned(x))
    with pytest.raises(ValueError, match="SDSA-4"):
        LearnableThresholdLIF({"kind": "sfa"}, 0.5)


def test_sdsa_variants_structure():
    """SDSA-2 drops the V branch; SDSA-1/2 use Hadamard masks, SDSA-3/4 the spike matmul."""
    blocks = {}
    for a in meta_spikeformer.ATTN_VARIANTS:
        m = registry.create("meta-spikeformer-8-384", **SMALL_META, attn=a)
        blocks[a] = m.blocks3[0].attn
    assert not hasattr(blocks["sdsa2"], "v_conv") and hasattr(blocks["sdsa1"], "v_conv")
    assert isinstance(blocks["sdsa1"].token_sum, layers.TokenSumProduct)
    assert isinstance(blocks["sdsa2"].token_sum, TokenSum)
    for a in ("sdsa3", "sdsa4"):
        assert blocks[a].matmul.scale == 0.125
    assert blocks["sdsa3"].attn_neuron.cfg.v_th == 0.5


def test_token_sum():
    x = torch.randint(0, 2, (2, 3, 4, 5, 6)).float()
    assert torch.equal(TokenSum()(x), x.sum(dim=(3, 4), keepdim=True))


def test_neuron_configuration_flows_everywhere():
    model = registry.create("meta-spikeformer-8-384", **SMALL_META, neuron={"tau": 3.0})
    lifs = [m for m in model.modules() if isinstance(m, neurons.LIFNode)]
    assert lifs and all(m.cfg.tau == 3.0 for m in lifs)
    attn = [m for m in lifs if m.cfg.v_th == 0.5]
    assert len(attn) == 2                                     # one per transformer block
    assert all(m.cfg.v_th == 1.0 for m in lifs if m not in attn)

    e = registry.create("e-spikeformer-s", **SMALL_E, D=2)
    sfa = [m for m in e.modules() if isinstance(m, neurons.SFANode)]
    assert sfa and all(m.cfg.D == 2 for m in sfa)
    assert e.head_neuron.cfg.norm == e_spikeformer.HEAD_NORM == 1.0
    assert all(m.cfg.norm == 2.0 for m in sfa if m is not e.head_neuron)
    assert not any(isinstance(m, neurons.LIFNode) for m in e.modules())


def test_e_spikeformer_attention_scale_and_expansion():
    e = registry.create("e-spikeformer-s", **SMALL_E)
    attn = e.blocks3[0].attn
    assert attn.matmul.heads == 4
    assert attn.matmul.scale == pytest.approx(2 * (32 / 4) ** -0.5)
    assert attn.v_conv.conv.out_channels == 4 * 32 and attn.proj.conv.in_channels == 4 * 32
    assert attn.q_conv.conv.kernel_size == (1, 1) and attn.q_conv.conv.bias is None


def test_esdsa_product_order_is_exact():
    """The repo's (Q K^T) V equals SpikeMatmul's Q (K^T V) bit for bit on SFA values."""
    torch.manual_seed(2)
    heads, C, Cv, H, W = 4, 32, 128, 7, 7
    sfa = neurons.make_neuron({"kind": "sfa", "D": 4, "norm": 4.0})
    q, k = sfa(torch.randn(1, 2, C, H, W) * 3), sfa(torch.randn(1, 2, C, H, W) * 3)
    v = sfa(torch.randn(1, 2, Cv, H, W) * 3)
    scale = 2 * layers.head_scale(C, heads)
    ours = layers.SpikeMatmul(heads, scale)(q, k, v)

    def split(t):
        return t.reshape(1, 2, heads, t.shape[2] // heads, H * W).transpose(-1, -2)

    ref = (split(q) @ split(k).transpose(-1, -2)) @ split(v) * scale
    ref = ref.transpose(-1, -2).reshape(1, 2, Cv, H, W)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("name,overrides,err", [
    ("meta-spikeformer-8-384", {"attn": "sdsa5"}, "attn must be one of"),
    ("meta-spikeformer-8-384", {"dims": [8, 16, 30, 32], "heads": 4}, "not divisible by 4 heads"),
    ("meta-spikeformer-8-384", {"dims": [8, 16, 32]}, "list of 4"),
    ("meta-spikeformer-8-384", {"depths": [1, 0, 1, 1]}, "depths"),
    ("meta-spikeformer-8-384", {"neuron": {"v_thresh": 1.0}}, "unknown neuron parameter"),
    ("meta-spikeformer-8-384", {"T": 0}, "T must be"),
    ("e-spikeformer-s", {"D": 4, "neuron": {"D": 8}}, "contradicts D=4"),
    ("e-spikeformer-s", {"D": 0}, "D must be"),
])
def test_bad_configuration_is_rejected(name, overrides, err):
    with pytest.raises(ValueError, match=err):
        registry.create(name, **overrides)


def test_wrong_time_steps_rejected():
    model = registry.create("meta-spikeformer-8-384", **SMALL_META)
    with pytest.raises(ValueError, match="model expects T=2"):
        model(torch.rand(3, 1, 3, 32, 32))


def test_registered_names_and_serialisable_config():
    import json
    names = registry.list_models()
    for n in ["meta-spikeformer-8-384", "meta-spikeformer-8-512", "meta-spikeformer-8-768",
              "meta-spikeformer-tiny", "e-spikeformer-t", "e-spikeformer-s", "e-spikeformer-m",
              "e-spikeformer-l", "e-spikeformer-tiny"]:
        assert n in names
        fam, cfg = registry.model_defaults(n)
        assert json.loads(json.dumps(cfg)) == cfg
    assert registry.model_defaults("meta-spikeformer-8-384")[1]["T"] == 1   # repo time_steps=1


@pytest.mark.parametrize("name,overrides", [
    ("meta-spikeformer-tiny", {}), ("e-spikeformer-tiny", {}),
    ("meta-spikeformer-8-384", {**SMALL_META, "attn": "sdsa4"}),
])
def test_checkpoint_round_trip(tmp_path, name, overrides):
    torch.manual_seed(0)
    model = registry.create(name, **overrides)
    model(torch.rand(8, model.in_channels, 32, 32))      # move BN running statistics
    model.eval()
    path = models.save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = models.load_checkpoint(path, name, **overrides)
    x = torch.rand(2, model.in_channels, 32, 32)
    assert torch.equal(loaded(x), model(x))


# ----------------------------------------------------------------------------- fx contract
class LeafTracer(torch.fx.Tracer):
    """Traces through everything except modules of the given leaf types."""

    def __init__(self, leaves):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.leaves)


def leaf_trace(model: nn.Module) -> torch.fx.GraphModule:
    graph = LeafTracer(ALLOWED_LEAVES).trace(model)
    return torch.fx.GraphModule(model, graph)


@pytest.mark.parametrize("name,overrides", SMALL, ids=lambda v: v if isinstance(v, str) else
                         f"{v.get('attn', 'sfa')}-T{v.get('T', 1)}")
def test_fx_trace_only_leaves_and_adds(name, overrides):
    torch.manual_seed(0)
    model = registry.create(name, **overrides).eval()
    gm = leaf_trace(model)
    kinds = set()
    for node in gm.graph.nodes:
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            assert isinstance(mod, ALLOWED_LEAVES), f"{node.target}: {type(mod).__name__}"
            kinds.add(type(mod))
        elif node.op == "call_function":
            assert node.target is operator.add, f"{node.name}: {node.target}"
        else:
            assert node.op in ("placeholder", "output"), f"{node.name}: {node.op}"
    first = next(n for n in gm.graph.nodes if n.op == "call_module")
    assert isinstance(gm.get_submodule(first.target), layers.Encoder)
    assert {layers.Encoder, layers.ConvBN, layers.TokenMean, layers.TimeMean, nn.Linear} <= kinds
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(gm(x), model(x))


def test_tiny_models_fit_a_small_batch():
    """Each tiny model drives the loss down on a fixed, learnable batch (trainability check)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(32) % 10
    x = torch.zeros(32, 1, 32, 32)
    for i, c in enumerate(y.tolist()):     # class c: a bright 8x8 patch at a class-specific spot
        r, col = divmod(c, 4)
        x[i, 0, 4 + 8 * r: 12 + 8 * r, 2 + 7 * col: 10 + 7 * col] = 1.0
    x += 0.1 * torch.rand(x.shape, generator=g)
    for name in ("meta-spikeformer-tiny", "e-spikeformer-tiny"):
        torch.manual_seed(0)
        model = registry.create(name)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(30):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
