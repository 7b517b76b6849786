"""Spikformer, Spike-driven Transformer v1 and AutoST: published parameter counts, forward and
backward passes on small variants, configuration handling, and the fx leaf-module contract."""
import json
import operator

import pytest
import torch
from torch import fx, nn

from models import autost, layers, neurons, sdt, spikformer  # noqa: F401  (registers families)
from models.neurons import LIFNode
from models.registry import create, list_models, model_defaults

# (name, overrides, published parameter count). Sources: seed-facts §2 (Spikformer paper
# Tables 1/2, SDT v1 paper Tables 1/2) and the AutoST paper Table 3.
# - Spikformer CIFAR counts are for CIFAR-10 heads (num_classes=10): 4-384 gives 9.32M with 10
#   classes and 9.35M with 100.
# - SDT CIFAR 2-512's 10.28M is for a CIFAR-100 head (num_classes=100); with 10 classes 10.23M.
# - AutoST names are reconstructions (see models/autost.py): counts are compared at
#   num_classes=100, the class count of the repo's search; the tiny space has no member within
#   0.5% of the table's 4.20M, so its row carries its own tolerance.
PUBLISHED = [
    ("spikformer-8-384", {}, 16.81e6, 1e-3),
    ("spikformer-6-512", {}, 23.37e6, 1e-3),
    ("spikformer-8-512", {}, 29.68e6, 1e-3),
    ("spikformer-10-512", {}, 36.01e6, 1e-3),
    ("spikformer-8-768", {}, 66.34e6, 1e-3),
    ("spikformer-cifar-4-256", {"num_classes": 10}, 4.15e6, 1e-3),
    ("spikformer-cifar-2-384", {"num_classes": 10}, 5.76e6, 1e-3),
    ("spikformer-cifar-4-384", {"num_classes": 10}, 9.32e6, 1e-3),
    ("sdt-8-384", {}, 16.82e6, 1e-3),
    ("sdt-6-512", {}, 23.37e6, 1e-3),
    ("sdt-8-512", {}, 29.69e6, 1e-3),
    ("sdt-10-512", {}, 36.01e6, 1e-3),
    ("sdt-8-768", {}, 66.34e6, 1e-3),
    ("sdt-cifar-2-512", {"num_classes": 100}, 10.28e6, 1e-3),
    ("autost-tiny", {"num_classes": 100}, 4.20e6, 6e-3),
    ("autost-small", {"num_classes": 100}, 11.52e6, 1e-3),
    ("autost-base", {"num_classes": 100}, 29.64e6, 1e-3),
]

FAMILY_NAMES = [n for n in list_models()
                if n.startswith(("spikformer-", "sdt-", "autost-"))]

SMALL = {
    "spikformer-8-384": dict(img_size=32, dims=32, depths=1, heads=2, T=2, num_classes=10),
    "spikformer-cifar-4-384": dict(img_size=16, dims=32, depths=2, heads=4, T=2),
    "sdt-8-512": dict(img_size=32, dims=32, depths=1, heads=2, T=2, num_classes=10),
    "sdt-cifar-2-512": dict(img_size=16, dims=64, depths=1, T=2),
    "autost-small": dict(img_size=16, dims=32, depths=2, heads=[2, 4], mlp_ratio=[3.0, 4.0],
                         T=2),
}

LEAVES = tuple(layers.LEAF_MODULES) + tuple(neurons.NEURON_MODULES) + (nn.Linear,)


class LeafTracer(fx.Tracer):
    """Trace through containers; stop at the lowering's vocabulary of leaf modules."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES)


def trace(model: nn.Module) -> fx.GraphModule:
    return fx.GraphModule(model, LeafTracer().trace(model))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lif_nodes(model: nn.Module) -> list[LIFNode]:
    return [m for m in model.modules() if isinstance(m, LIFNode)]


def test_all_names_registered():
    expected = {f"spikformer-{d}-{c}" for d, c in
                [(8, 384), (6, 512), (8, 512), (10, 512), (8, 768)]}
    expected |= {f"spikformer-cifar-{d}-{c}" for d, c in [(4, 256), (2, 384), (4, 384)]}
    expected |= {f"sdt-{d}-{c}" for d, c in [(8, 384), (6, 512), (8, 512), (10, 512), (8, 768)]}
    expected |= {"sdt-cifar-2-512", "autost-tiny", "autost-small", "autost-base"}
    assert expected == set(FAMILY_NAMES)
    assert {row[0] for row in PUBLISHED} == expected


def test_meta_device_counts_like_cpu():
    """Parameter counting on the meta device (no memory) agrees with a real build."""
    kw = dict(dims=64, depths=2, heads=4, num_classes=10)
    with torch.device("meta"):
        meta = create("spikformer-cifar-4-384", **kw)
    real = create("spikformer-cifar-4-384", **kw)
    assert all(p.is_meta for p in meta.parameters())
    assert n_params(meta) == n_params(real) > 0


@pytest.mark.parametrize("name,overrides,published,rel", PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_published_parameter_count(name, overrides, published, rel):
    with torch.device("meta"):
        model = create(name, **overrides)
    count = n_params(model)
    assert abs(count / published - 1) <= rel, f"{name}: {count:,} vs published {published:,.0f}"


def test_layernorms_and_unused_modules_are_not_built():
    with torch.device("meta"):
        for name in ("spikformer-8-512", "sdt-8-512", "autost-small"):
            model = create(name)
            assert not any(isinstance(m, (nn.LayerNorm, nn.Conv1d)) for m in model.modules())


def test_default_shapes_and_token_grid():
    with torch.device("meta"):
        assert create("spikformer-8-512").token_grid == 14
        assert create("sdt-8-512").token_grid == 14
        assert create("spikformer-cifar-4-384").token_grid == 8
        assert create("sdt-cifar-2-512").token_grid == 8
        assert create("autost-base").token_grid == 8


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward_small(name):
    torch.manual_seed(0)
    kw = SMALL[name]
    model = create(name, **kw)
    num_classes = kw.get("num_classes", model_defaults(name)[1]["num_classes"])
    x = torch.rand(3, 3, kw["img_size"], kw["img_size"])
    y = model(x)
    assert y.shape == (3, num_classes)
    assert torch.isfinite(y).all()
    y.square().sum().backward()
    first = model.stem.convs[0].conv.weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    # event input [T, B, C, H, W] with matching T is accepted too
    ev = (torch.rand(kw["T"], 2, 3, kw["img_size"], kw["img_size"]) < 0.3).float()
    assert model(ev).shape == (2, num_classes)


@pytest.mark.parametrize("name,grid", [("spikformer-8-384", 4), ("sdt-8-512", 4),
                                       ("spikformer-cifar-4-384", 16), ("autost-tiny", 16)])
def test_stem_output_grid(name, grid):
    """ImageNet stems pool in all four stages (H/16), CIFAR stems in the last two (H/4)."""
    model = create(name, img_size=64, dims=32, depths=1, heads=2, mlp_ratio=4.0, T=2)
    out = model.stem(model.encoder(torch.rand(1, 3, 64, 64)))
    assert out.shape == (2, 1, 32, grid, grid) and model.token_grid == grid


def test_spikformer_stem_emits_spike_sums_sdt_stem_is_graded():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    m = create("spikformer-cifar-4-256", dims=32, depths=1, heads=2, T=2)
    s = m.stem(m.encoder(x))
    assert set(s.unique().tolist()) <= {0.0, 1.0, 2.0}
    m = create("sdt-cifar-2-512", dims=32, depths=1, T=2)
    u = m.stem(m.encoder(x))
    assert not set(u.unique().tolist()) <= {0.0, 1.0, 2.0}


def test_sdsa1_matches_repo_head_split_formula():
    """SDSA-1 per channel equals the repo's per-head computation (heads are nominal)."""
    torch.manual_seed(2)
    model = create("sdt-cifar-2-512", dims=32, depths=1, heads=4, T=3).eval()
    attn = model.blocks[0].attn
    x = torch.randn(3, 2, 32, 4, 4) * 2
    T, B, C, H, W = x.shape
    heads, N = 4, H * W
    s = attn.pre(x)
    q, k, v = (n(conv(s)) for n, conv in [(attn.q_neuron, attn.q), (attn.k_neuron, attn.k),
                                          (attn.v_neuron, attn.v)])

    def split(z):  # [T, B, C, H, W] -> [T, B, heads, N, C/heads], as in ms_conv.py
        return z.flatten(3).transpose(-1, -2).reshape(T, B, N, heads, C // heads) \
            .permute(0, 1, 3, 2, 4)

    kv = (split(k) * split(v)).sum(dim=-2, keepdim=True)
    kv = LIFNode(v_th=0.5)(kv)
    ref = (split(q) * kv).transpose(3, 4).reshape(T, B, C, H, W)
    ours = attn.mask(q, attn.kv_neuron(attn.kv(k, v)))
    assert torch.equal(ours, ref)
    assert torch.equal(attn(x), attn.proj(ref))


def test_neuron_settings_are_configuration():
    m = create("spikformer-cifar-4-256", dims=32, depths=2, heads=2, T=2,
               neuron={"v_th": 0.75, "tau": 3.0})
    nodes = lif_nodes(m)
    attn = {id(b.attn.attn_neuron) for b in m.blocks}
    assert len(nodes) == 5 + 2 * 7  # SPS 4 + RPE 1; per block q, k, v, attn, proj, fc1, fc2
    for n in nodes:
        assert n.cfg.tau == 3.0 and n.cfg.kind == "lif"
        assert n.cfg.v_th == (0.5 if id(n) in attn else 0.75)
    m = create("sdt-cifar-2-512", dims=32, depths=1, T=2, attn_v_th=0.25)
    assert m.blocks[0].attn.kv_neuron.cfg.v_th == 0.25
    assert sum(n.cfg.v_th == 1.0 for n in lif_nodes(m)) == len(lif_nodes(m)) - 1


def test_autost_uses_plif_per_block_lists():
    m = create("autost-small", dims=48, depths=3, heads=[2, 4, 8], mlp_ratio=[3.0, 4.0, 5.0],
               neuron={"tau": 3.0})
    nodes = lif_nodes(m)
    assert nodes and all(n.cfg.kind == "plif" for n in nodes)
    assert abs(nodes[0].tau_value() - 3.0) < 1e-5
    assert [b.attn.matmul.heads for b in m.blocks] == [2, 4, 8]
    assert [b.mlp.fc1.conv.out_channels for b in m.blocks] == [144, 192, 240]
    assert all(b.attn.attn_neuron.cfg.v_th == 0.5 for b in m.blocks)
    # PLIF: one learnable w per neuron layer
    assert sum(1 for name, _ in m.named_parameters() if name.endswith(".w")) == len(nodes)


def test_registered_configs_are_json():
    for name in FAMILY_NAMES:
        fam, cfg = model_defaults(name)
        assert json.loads(json.dumps(cfg)) == cfg
        with torch.device("meta"):
            model = create(name)
        assert model.neurosim_config["config"] == cfg and model.neurosim_config["family"] == fam


@pytest.mark.parametrize("name,kw,match", [
    ("spikformer-8-384", dict(dims=100), "multiple of 8"),
    ("spikformer-8-384", dict(dims=64, heads=5), "heads"),
    ("sdt-8-512", dict(pool_stages=[0, 4]), "pool_stages"),
    ("sdt-8-512", dict(depths=0), "depths"),
    ("autost-tiny", dict(depths=3), "heads has 4 entries"),
    ("autost-tiny", dict(mlp_ratio=[4.0, 4.0, 4.0, 0.0]), "mlp_ratio"),
    ("spikformer-cifar-4-256", dict(neuron={"kind": "bogus"}), "bogus"),
])
def test_bad_arguments_raise(name, kw, match):
    with torch.device("meta"), pytest.raises(ValueError, match=match):
        create(name, **kw)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fx_trace_uses_only_leaf_modules_and_add(name):
    torch.manual_seed(3)
    kw = SMALL[name]
    model = create(name, **kw).eval()
    gm = trace(model)
    seen_targets = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(gm.get_submodule(node.target), LEAVES), node.format_node()
            seen_targets.append(node.target)
        elif node.op == "call_function":
            assert node.target is operator.add, node.format_node()
        else:
            assert node.op in ("placeholder", "output"), node.format_node()
    # one call site per module instance; the first op is the encoder
    assert len(seen_targets) == len(set(seen_targets))
    first = next(n for n in gm.graph.nodes if n.op == "call_module")
    assert isinstance(gm.get_submodule(first.target), layers.Encoder)
    x = torch.rand(2, 3, kw["img_size"], kw["img_size"])
    assert torch.equal(gm(x), model(x))


def test_sdt_mlp_hidden_shortcut_matches_repo():
    """With mlp_ratio 1 the SDT MLP adds its input to the hidden membrane (MS_MLP_Conv.res)."""
    torch.manual_seed(4)
    model = create("sdt-cifar-2-512", dims=32, depths=1, mlp_ratio=1.0, T=2).eval()
    mlp = model.blocks[0].mlp
    assert mlp.inner
    x = torch.randn(2, 2, 32, 4, 4) * 2
    h = x + mlp.fc1(mlp.neuron1(x))
    ref = mlp.fc2(mlp.neuron2(h)) + h
    torch.testing.assert_close(x + mlp(x), ref, rtol=0, atol=1e-6)
    assert not create("sdt-cifar-2-512", dims=32, depths=1, T=2).blocks[0].mlp.inner


@pytest.mark.parametrize("name,kw", [
    ("spikformer-cifar-4-256", dict(dims=32, depths=1, heads=2)),
    ("sdt-cifar-2-512", dict(dims=32, depths=1, heads=2)),
    ("autost-tiny", dict(dims=32, depths=1, heads=2, mlp_ratio=4.0)),
])
def test_small_models_fit_a_fixed_batch(name, kw):
    """A few Adam steps drive the loss down on a learnable batch (trainability through spikes)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(20) % 4
    x = 0.1 * torch.rand(20, 1, 16, 16, generator=g)
    for i, c in enumerate(y.tolist()):      # class c: a bright 8x8 quadrant
        r, col = divmod(c, 2)
        x[i, 0, 8 * r: 8 * r + 8, 8 * col: 8 * col + 8] += 1.0
    torch.manual_seed(0)
    model = create(name, img_size=16, in_channels=1, num_classes=4, T=2, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
