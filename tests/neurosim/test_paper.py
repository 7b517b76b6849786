"""Paper mode (the seeds' SOP convention) and its exact comparison with event-level counts."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

import models
from models.layers import ConvBN, Encoder, TimeMean, TokenMean
from models.neurons import make_neuron
from neurosim.frontends.lower import lower
from neurosim.costing.energy import attach_energy
from neurosim.costing.paper import DELTAS, compare_paper_event, paper_estimate
from neurosim.run.simulate import simulate
from tests.zoo_cases import inputs_for, perturb, small_model


class _Uniform(nn.Module):
    """Synaptic layers whose spike inputs all have uniform fan-out (no padding; the only
    strided conv has kernel = stride), so the paper's mean fan-out is exact per spike."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder(2)
        self.conv0 = ConvBN(1, 4, kernel_size=2, stride=2, padding=0)     # image -> MAC
        self.n0 = make_neuron({"v_th": 0.5})
        self.conv1 = ConvBN(4, 8, kernel_size=2, stride=2, padding=0)     # patchify
        self.n1 = make_neuron({"v_th": 0.5})
        self.conv2 = ConvBN(8, 8, kernel_size=1)
        self.n2 = make_neuron({"v_th": 0.5})
        self.mean = TokenMean()
        self.n3 = make_neuron({"v_th": 0.2})
        self.fc = nn.Linear(8, 10)
        self.tmean = TimeMean()

    def forward(self, x):
        x = self.n0(self.conv0(self.encoder(x)))
        x = self.n2(self.conv2(self.n1(self.conv1(x))))
        return self.tmean(self.fc(self.n3(self.mean(x))))


def _uniform_model():
    torch.manual_seed(0)
    m = _Uniform()
    m.neurosim_config = {"name": "uniform", "family": None,
                         "config": {"in_channels": 1, "img_size": 8}}
    return perturb(m, seed=3)


def test_event_acs_equal_paper_sops_when_fan_out_is_uniform():
    m = _uniform_model()
    x = inputs_for(m, 6, seed=5)
    g = lower(m, x)
    res = simulate(g, "tianjic-x16", x)
    p = paper_estimate(m, x, graph=g)
    spiking = [lay for lay in p.layers if not lay.is_mac]
    assert [lay.name for lay in spiking] == ["conv1", "conv2", "fc"]
    for lay in spiking:
        ev = res.counts[lay.name]["ac"]
        assert ev > 0
        assert lay.quantized["ops_total"] == Fraction(ev), lay.name      # exact, not approximate
        assert lay.quantized["exact_event_ops_total"] == ev
    cmp = compare_paper_event(p, res, g)
    for row in cmp.rows:
        assert row["d_border_stride"] == 0 or row["op_type"] == "MAC"
        assert row["d_other"] == 0
        if row["op_type"] == "SOP":
            assert row["paper"] + row["d_quantization"] == pytest.approx(row["event"], rel=1e-12)
    # the image layer: paper counts its dense MACs once per inference, the chip every step
    first = p.layer("conv0")
    assert first.is_mac and first.mac_passes == 1 and first.flops == 4 * 4 * 4 * 1 * 4
    assert res.counts["conv0"]["mac"] == first.flops * 2 * 6


@pytest.fixture(scope="module")
def meta():
    m = small_model("meta-sdsa3")
    x = inputs_for(m, 3)
    g = lower(m, x)
    res = simulate(g, "tianjic-x16", x)
    attach_energy(res, "tianjic-x16")
    return m, x, g, res, paper_estimate(m, x, graph=g)


def test_difference_decomposes_exactly_on_a_meta_spikeformer(meta):
    m, x, g, res, p = meta
    cmp = compare_paper_event(p, res, g)
    kinds = {r["kind"] for r in cmp.rows}
    assert kinds == {"conv", "linear", "spike_matmul"}
    for r in cmp.rows:
        total = r["paper"] + sum(r[k] for k in DELTAS)
        assert total == pytest.approx(r["event"], rel=1e-12, abs=1e-9), r["layer"]
        assert r["d_other"] == pytest.approx(0, abs=1e-9)       # sync engine counts exactly
    assert any(r["d_border_stride"] < 0 for r in cmp.rows)        # padded convs lose taps
    assert cmp.rows[0]["d_first_layer"] == p.layers[0].flops * (p.T - 1)
    e = cmp.energy
    assert e["paper_j"] == pytest.approx(p.energy_j)
    assert e["chip_j"] == res.energy["per_inference"]["total_j"]
    assert e["chip_ignored_by_paper_total_j"] > 0
    json.dumps(cmp.to_dict())
    json.dumps(p.to_dict())


def test_border_term_is_the_true_fan_out_minus_the_papers_mean(meta):
    """The border term of a padded 3x3 conv = sum over the quantized spikes of (true fan-out
    - the paper's FLOPs / input size), computed here independently from the twin's spikes."""
    m, x, g, res, p = meta
    cmp = compare_paper_event(p, res, g)
    row = next(r for r in cmp.rows if r["layer"] == "blocks1a.0.channel_conv.conv1")
    op = g.op(row["layer"])
    (src,) = g.inputs(row["layer"])
    from neurosim.frontends.twin import run_twin
    spikes = run_twin(m, g, x).outputs[src]                      # [T, B, C, H, W] counts
    paper_q = Fraction(int(spikes.sum()) * row["flops"], int(np.prod(op.in_shape))) / 3
    true = int((spikes * op.fan_out()).sum())
    assert row["d_border_stride"] == pytest.approx(float(Fraction(true, 3) - paper_q), rel=1e-12)
    assert row["d_border_stride"] < 0


def test_unfused_repconv_counts_three_stages_named_like_the_graph(meta):
    m, x, _, _, _ = meta
    g = lower(m, x, repconv="unfused")
    p = paper_estimate(m, x, graph=g)
    assert p.repconv == "unfused"
    names = [lay.name for lay in p.layers]
    stages = [n for n in names if n.startswith("blocks3.0.attn.q_conv")]
    assert stages == ["blocks3.0.attn.q_conv.pw1", "blocks3.0.attn.q_conv.dw",
                      "blocks3.0.attn.q_conv.pw2"]
    assert all(n in g.g for n in names)
    kinds = [p.layer(n).inputs for n in stages]
    assert kinds == ["spike", "graded", "graded"]
    fused = paper_estimate(m, x, repconv="fused")
    assert fused.layer("blocks3.0.attn.q_conv").flops == 32 * 4 * 32 * 9


def test_sfa_rates_count_bursts():
    m = small_model("e-spikeformer")
    x = inputs_for(m, 2)
    g = lower(m, x)
    p = paper_estimate(m, x, graph=g)
    assert p.D == 4 and p.T == 1
    assert any(lay.rates.get("x", 0) > 1 for lay in p.layers)       # bursts of up to D spikes
    res = simulate(g, "tianjic-x16", x)
    for r in compare_paper_event(p, res, g).rows:
        assert r["paper"] + sum(r[k] for k in DELTAS) == pytest.approx(r["event"], rel=1e-12)


def test_mismatched_inputs_are_rejected(meta):
    m, x, g, _, p = meta
    res = simulate(g, "tianjic-x16", x[:2])
    with pytest.raises(ValueError, match="same inputs"):
        compare_paper_event(p, res, g)
    with pytest.raises(ValueError, match="quantized pass"):
        compare_paper_event(paper_estimate(m, x[:2]), res, g)


# ----------------------------------------------------------------------------- golden
# Meta-SpikeFormer "tiny" (img 32, 1 channel, T = 4, dims [8, 16, 32, 48], depths [1, 1, 1, 1],
# 4 heads, MLP ratio 2, SDSA-3, RepConv fused): dense MACs per sample and time step, written out
# from the architecture's shapes (out_channels x H_out x W_out x in_channels/groups x k^2).
HAND_FLOPS = {
    "down1a.conv": 4 * 16 * 16 * 1 * 49,                 # 7x7/2, 32 -> 16, image input
    "blocks1a.0.sepconv.pw1": 8 * 256 * 4,               # 1x1 4 -> 8 at 16x16
    "blocks1a.0.sepconv.dw": 8 * 256 * 49,               # depthwise 7x7
    "blocks1a.0.sepconv.pw2": 4 * 256 * 8,               # 1x1 8 -> 4, graded input (no SN)
    "blocks1a.0.channel_conv.conv1": 8 * 256 * 4 * 9,
    "blocks1a.0.channel_conv.conv2": 4 * 256 * 8 * 9,
    "down1b.conv": 8 * 64 * 4 * 9,                       # 3x3/2, 16 -> 8
    "blocks1b.0.sepconv.pw1": 16 * 64 * 8,
    "blocks1b.0.sepconv.dw": 16 * 64 * 49,
    "blocks1b.0.sepconv.pw2": 8 * 64 * 16,
    "blocks1b.0.channel_conv.conv1": 16 * 64 * 8 * 9,
    "blocks1b.0.channel_conv.conv2": 8 * 64 * 16 * 9,
    "down2.conv": 16 * 16 * 8 * 9,                       # 3x3/2, 8 -> 4
    "blocks2.0.sepconv.pw1": 32 * 16 * 16,
    "blocks2.0.sepconv.dw": 32 * 16 * 49,
    "blocks2.0.sepconv.pw2": 16 * 16 * 32,
    "blocks2.0.channel_conv.conv1": 32 * 16 * 16 * 9,
    "blocks2.0.channel_conv.conv2": 16 * 16 * 32 * 9,
    "down3.conv": 32 * 4 * 16 * 9,                       # 3x3/2, 4 -> 2
    "blocks3.0.attn.q_conv": 32 * 4 * 32 * 9,            # RepConv fused: one 3x3
    "blocks3.0.attn.k_conv": 32 * 4 * 32 * 9,
    "blocks3.0.attn.v_conv": 32 * 4 * 32 * 9,
    "blocks3.0.attn.matmul": 2 * 4 * 8 * 4 * 8,          # K^T V and Q (KV): heads d N d_v
    "blocks3.0.attn.proj": 32 * 4 * 32 * 9,
    "blocks3.0.mlp.fc1": 64 * 4 * 32,
    "blocks3.0.mlp.fc2": 32 * 4 * 64,
    "down4.conv": 48 * 4 * 32 * 9,                       # 3x3/1 at 2x2
    "blocks4.0.attn.q_conv": 48 * 4 * 48 * 9,
    "blocks4.0.attn.k_conv": 48 * 4 * 48 * 9,
    "blocks4.0.attn.v_conv": 48 * 4 * 48 * 9,
    "blocks4.0.attn.matmul": 2 * 4 * 12 * 4 * 12,
    "blocks4.0.attn.proj": 48 * 4 * 48 * 9,
    "blocks4.0.mlp.fc1": 96 * 4 * 48,
    "blocks4.0.mlp.fc2": 48 * 4 * 96,
    "head": 48 * 10,
}
GRADED = {"down1a.conv", "blocks1a.0.sepconv.pw2", "blocks1b.0.sepconv.pw2",
          "blocks2.0.sepconv.pw2"}


def test_golden_paper_energy_of_the_shipped_meta_spikeformer(golden):
    from neurosim.run.inputs import load_for_model
    model = models.load_checkpoint(models.shipped_checkpoint("meta-spikeformer-tiny"))
    x, _, _ = load_for_model(model, "digits", "test", n=16)
    p = paper_estimate(model, x)
    assert p.T == 4 and p.repconv == "fused" and p.first_layer == "down1a.conv"
    assert {lay.name: lay.flops for lay in p.layers} == HAND_FLOPS
    assert {lay.name for lay in p.layers if lay.is_mac} == GRADED
    T, e_ac, e_mac = 4, 0.9e-12, 4.6e-12
    hand = e_mac * HAND_FLOPS["down1a.conv"]                       # first layer, once
    hand += sum(e_mac * T * HAND_FLOPS[n] for n in GRADED - {"down1a.conv"})
    for lay in p.layers:                                             # recorded rates x T x FLOPs
        if lay.is_mac:
            continue
        if lay.kind == "spike_matmul":
            r = lay.rates
            sops = (r["k"] * r["v"] + r["q"]) * T * HAND_FLOPS[lay.name] / 2
        else:
            sops = lay.rates["x"] * T * HAND_FLOPS[lay.name]
        hand += e_ac * sops
    assert p.energy_j == pytest.approx(hand, rel=1e-9)
    golden.check_text("paper_meta_spikeformer_tiny_16.json", json.dumps(
        {"energy_per_inference_j": p.energy_j, "sops_per_inference": p.sops,
         "macs_per_inference": p.macs,
         "rates": {lay.name: lay.rates for lay in p.layers}}, indent=1, sort_keys=True) + "\n")
    assert math.isfinite(p.energy_j) and p.energy_j > 0


# ----------------------------------------------------------------------------- conventions
def test_golden_spikformer_published_energies_under_the_spikformer_convention(golden):
    """Given the published SOPs, the spikformer convention reproduces Zhou et al.'s ImageNet
    energies (7.734 / 11.577 / 21.477 mJ) within 1% (in fact within 0.01%)."""
    from neurosim.costing.paper import spikformer_published_energies
    rows = spikformer_published_energies("spikformer")
    assert set(rows) == {"spikformer-8-384", "spikformer-8-512", "spikformer-8-768"}
    for name, r in rows.items():
        assert abs(r["rel_error"]) < 0.01, name
        assert abs(r["rel_error"]) < 1e-4, name
    # the literal reading (first layer once, own channels) misses the smallest model by > 10%
    assert spikformer_published_energies("neurosim")["spikformer-8-384"]["rel_error"] < -0.1
    golden.check_text("paper_spikformer_published.json",
                      json.dumps(rows, indent=1, sort_keys=True) + "\n")


def test_published_mj_minus_sops_is_the_64_channel_stem_every_step():
    from neurosim.costing.paper.conventions import SPIKFORMER_PUBLISHED, conv_macs
    stem_mj = 4.6e-9 * 4 * conv_macs((3, 224, 224), 64, 3, 1, 1)
    assert conv_macs((3, 224, 224), 64, 3, 1, 1) == 64 * 224 * 224 * 3 * 9
    for name, p in SPIKFORMER_PUBLISHED.items():
        rest = p["energy_mj"] - 0.9e-9 * p["sops"]
        assert rest == pytest.approx(1.596, abs=5e-4), name
        assert rest == pytest.approx(stem_mj, abs=1e-3), name


def test_spikformer_convention_counts_the_stem_every_step_with_64_channels():
    m = small_model("spikformer")
    x = inputs_for(m, 3)
    g = lower(m, x)
    base = paper_estimate(m, x, graph=g)
    sp = paper_estimate(m, x, graph=g, convention="spikformer")
    assert sp.convention.name == "spikformer" and base.convention.name == "neurosim"
    first, first0 = sp.layer(sp.first_layer), base.layer(base.first_layer)
    out_ch = g.op(sp.first_layer).channels
    assert first.flops == first0.flops and first.priced == "MAC"
    assert first0.mac_passes == 1 and first.mac_passes == sp.T == 3
    assert first.ops_total == Fraction(first.flops * 64, out_ch) * sp.T * 3
    for a, b in zip(sp.layers, base.layers):
        if a.name != sp.first_layer:
            assert a.ops_total == b.ops_total and a.priced == b.priced, a.name
    assert sp.energy_j - base.energy_j == pytest.approx(
        4.6e-12 * float(first.ops_total - first0.ops_total) / 3, rel=1e-12)
    assert any("convention 'spikformer'" in s for s in sp.notes)
    res = simulate(g, "tianjic-x16", x)
    for r in compare_paper_event(sp, res, g).rows:                   # still exact
        assert r["paper"] + sum(r[k] for k in DELTAS) == pytest.approx(r["event"], rel=1e-12)


def test_meta_spikeformer_convention_and_graded_pointwise_choice(meta):
    from neurosim.costing.paper import get_convention
    m, x, g, res, base = meta
    ms = paper_estimate(m, x, graph=g, convention="meta-spikeformer")
    assert ms.repconv == "fused" and ms.layer(ms.first_layer).mac_passes == ms.T
    pw2 = [lay for lay in ms.layers if lay.name.endswith("sepconv.pw2")]
    assert pw2 and all(lay.priced == "MAC" and lay.mac_passes == ms.T for lay in pw2)
    ac = paper_estimate(m, x, graph=g, convention=get_convention("meta-spikeformer",
                                                                  graded="ac"))
    moved = sum(float(ac.layer(lay.name).ops_total) for lay in pw2) / ms.n
    assert all(ac.layer(lay.name).priced == "AC" for lay in pw2)
    assert ac.layer(ac.first_layer).priced == "MAC"                     # the image layer stays
    assert ms.energy_j - ac.energy_j == pytest.approx((4.6 - 0.9) * 1e-12 * moved, rel=1e-9)
    assert ac.sops - ms.sops == pytest.approx(moved, rel=1e-12)
    unfused = lower(m, x, repconv="unfused")
    with pytest.raises(ValueError, match="counts RepConv fused, but the graph was lowered with "
                                         "repconv='unfused'"):
        paper_estimate(m, x, graph=unfused, convention="meta-spikeformer")
    with pytest.raises(ValueError, match="unknown paper convention 'sdt-v9'; known: neurosim"):
        paper_estimate(m, x, convention="sdt-v9")
    with pytest.raises(ValueError, match="graded must be one of"):
        get_convention("neurosim", graded="flop")
    assert json.dumps(ms.to_dict())
