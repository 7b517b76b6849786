"""Mapping graphs onto chip cores: exact splits, limits, XY hops, errors, Speck's report."""
import importlib
import json

import numpy as np
import pytest
import torch

import models
from chips.spec import load_chip
from neurosim.ir import graph as G
from neurosim.frontends.lower import lower
from chips.mapping import MappingError, map_graph

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- graph builders
def conv(name, cin, cout, hw, k=3, s=1, p=1, groups=1, bias=False):
    ho = (hw + 2 * p - k) // s + 1
    w = RNG.integers(-3, 4, size=(cout, cin // groups, k, k))
    b = RNG.normal(size=cout) if bias else None
    return G.Conv(name, (cout, ho, ho), in_shape=(cin, hw, hw), weight=w, bias=b, stride=s,
                  padding=p, groups=groups)


def linear(name, in_shape, cout):
    return G.Linear(name, (cout,), in_shape=in_shape,
                    weight=RNG.integers(-3, 4, size=(cout, int(np.prod(in_shape)))))


def chain(in_shape, layers, kind="graded", readout=True):
    """Input -> layers (each (op, extra_inputs)) -> Readout; returns the graph."""
    g = G.Graph()
    prev = g.add(G.Input("input", in_shape, kind=kind, T=1))
    for op in layers:
        prev = g.add(op, [prev])
    if readout:
        g.add(G.Readout("readout", g.op(prev).shape), [prev])
    return g.validate()


def small_cnn():
    """conv1 (8 x 16x16: one channel per tianjic core) -> conv2 (16 x 8x8) -> depthwise ->
    token mean -> linear -> readout."""
    return chain((1, 16, 16), [
        conv("conv1", 1, 8, 16), G.Neurons("n1", (8, 16, 16)),
        conv("conv2", 8, 16, 16, s=2), G.Neurons("n2", (16, 8, 8)),
        conv("dw", 16, 16, 8, groups=16), G.Neurons("n3", (16, 8, 8)),
        G.TokenMean("tm", (16,)), linear("fc", (16,), 10)])


def brief_example():
    """Conv(1->8) on 16x16 -> Neurons -> Linear (fan-in 512) -> Neurons -> Readout."""
    return chain((1, 16, 16), [conv("conv", 1, 8, 16, s=2), G.Neurons("n1", (8, 8, 8)),
                               linear("fc", (8, 8, 8), 10), G.Neurons("n2", (10,))])


def check_exact_parts(m):
    """Every on-chip node: parts contiguous, non-overlapping, covering all its channels."""
    for n, op in m.graph.nodes.items():
        if isinstance(op, G.Input):
            assert n not in m.parts
            continue
        parts = m.parts[n]
        assert parts, n
        assert parts[0].c0 == 0 and parts[-1].c1 == op.channels, n
        for a, b in zip(parts, parts[1:]):
            assert a.c1 == b.c0, n
        assert sum(p.channels for p in parts) == op.channels
        assert all(p.channels > 0 and 0 <= p.core < m.n_cores for p in parts)


def check_capacity(m):
    for cu in m.cores.values():
        cap = cu.capacity.as_dict()
        for k, v in cu.usage.items():
            assert v <= cap[k], (cu.core, k, v, cap[k])
        for k in cu.usage:
            assert cu.usage[k] == sum(d[k] for d in cu.by_node.values())


# ----------------------------------------------------------------------------- hand-built graphs
def test_small_cnn_on_tianjic_splits_by_output_channel():
    m = map_graph(small_cnn(), "tianjic")
    assert m.fits and not m.violations
    check_exact_parts(m)
    check_capacity(m)
    # 16x16 maps: 256 neurons per channel = one channel per 256-neuron core
    assert [(p.c0, p.c1) for p in m.parts["conv1"]] == [(c, c + 1) for c in range(8)]
    assert m.parts["n1"] == m.parts["conv1"]                  # neurons fused with their conv
    assert m.layer_of["n1"] == "conv1" and m.layer_of["tm"] == "dw"
    assert m.layer_of["readout"] == "fc"
    # 8x8 maps: 64 neurons per channel -> 4 channels per core, balanced
    assert [p.channels for p in m.parts["conv2"]] == [4, 4, 4, 4]
    # the dw layer also holds the token-mean accumulators (graded output to fc): 64 + 1
    # neurons per channel -> 3 channels per core -> 6 cores
    assert m.cores[m.parts["tm"][0].core].by_node["tm"]["neurons"] == m.parts["tm"][0].channels
    assert len(m.parts["dw"]) == 6 and max(p.channels for p in m.parts["dw"]) == 3
    # each active layer has cores of its own
    active = [c for L in m.layers.values() if L.active for c in L.cores]
    assert len(active) == len(set(active)) == 8 + 4 + 6 + 1
    assert m.cores[m.parts["conv1"][0].core].usage["neurons"] == 256
    # weight sharing: a conv core stores only its kernel slice (4 ch x 8 x 3 x 3 bytes)
    assert m.cores[m.parts["conv2"][0].core].by_node["conv2"]["weight_bytes"] == 4 * 8 * 9
    # fan-in: conv2 8 x 3 x 3; the dw layer's largest is the token mean over 8 x 8 tokens
    assert m.layers["conv2"].fan_in == 72 and m.layers["dw"].fan_in == 64


def test_hops_per_spike_matches_brute_force():
    m = map_graph(small_cnn(), "tianjic")

    def brute(u, v, dependents):
        src = m.channel_cores(u)
        out = []
        for c in range(m.graph.op(u).channels):
            dest = {p.core for p in m.parts[v] if any(p.c0 <= o < p.c1 for o in dependents(c))}
            out.append(sum(m.hops(src[c], b) for b in dest))
        return np.array(out)

    # dense conv: every input channel reaches every output channel
    np.testing.assert_array_equal(m.hops_per_spike("n1", "conv2"),
                                  brute("n1", "conv2", lambda c: range(16)))
    np.testing.assert_array_equal(m.packets_per_spike("n1", "conv2"), np.full(8, 4))
    assert m.parts("n1") == m.parts["n1"] and m.parts("input") == []
    core, c0, c1 = m.parts["conv2"][1]
    assert (c0, c1) == (4, 8) and core == m.channel_cores("conv2")[4]
    # depthwise: input channel c goes only to output channel c
    np.testing.assert_array_equal(m.hops_per_spike("n2", "dw"), brute("n2", "dw", lambda c: [c]))
    np.testing.assert_array_equal(m.packets_per_spike("n2", "dw"), np.ones(16))
    expect = [m.hops(a, b) for a, b in zip(m.channel_cores("n2"), m.channel_cores("dw"))]
    np.testing.assert_array_equal(m.hops_per_spike("n2", "dw"), expect)
    # within a layer nothing travels; from the off-chip input nothing hops
    assert not m.hops_per_spike("conv1", "n1").any()
    assert not m.packets_per_spike("conv1", "n1").any()
    assert not m.hops_per_spike("input", "conv1").any()
    np.testing.assert_array_equal(m.packets_per_spike("input", "conv1"), [8])
    assert m.hops_per_spike("n1", "conv2").dtype == np.int64
    with pytest.raises(G.GraphError):
        m.hops_per_spike("n1", "fc")


def test_xy_hop_counts_and_routes():
    m = map_graph(small_cnn(), "tianjic")
    assert m.coords(0) == (0, 0) and m.coords(13) == (1, 1) and m.coords(155) == (11, 12)
    assert m.hops(0, 155) == 11 + 12 and m.hops(155, 0) == 23
    assert m.hops(5, 5) == 0 and m.hops(-1, 7) == 0
    for a, b in [(0, 155), (17, 3), (100, 101), (40, 40), (143, 12)]:
        r = m.path(a, b)
        assert len(r) == m.hops(a, b)
        steps = [a] + r
        assert all(m.hops(x, y) == 1 for x, y in zip(steps, steps[1:]))
        xs = [m.coords(c)[0] for c in steps]
        # X first, then Y: once the y coordinate changes, x stays put
        first_y = next((i for i, c in enumerate(steps) if m.coords(c)[1] != m.coords(a)[1]),
                       len(steps))
        assert all(x == m.coords(b)[0] for x in xs[first_y:])
        assert (r[-1] if r else a) == b
    speck = map_graph(speck_cnn(), "speck")
    assert speck.hops(0, 8) == speck.hops(3, 4) == 1 and speck.hops(2, 2) == 0


def test_placement_strategies_keep_hops_low():
    g = small_cnn()
    ser = map_graph(g, "tianjic", placement="serpentine")
    gre = map_graph(g, "tianjic", placement="greedy")
    auto = map_graph(g, "tianjic")
    assert auto.total_hops() == min(ser.total_hops(), gre.total_hops())
    # serpentine: conv1's 8 cores are the first 8 cores of the first mesh row
    assert ser.layers["conv1"].cores == list(range(8))
    # consecutive layers sit next to each other: the mean hop per spike copy is small
    t = auto.totals()
    assert t["hops_mean"] < 6 and t["cores_used"] == 19
    with pytest.raises(ValueError, match="placement"):
        map_graph(g, "tianjic", placement="random")


def test_too_big_layer_on_tianjic_names_layer_need_and_capacity():
    g = brief_example()
    with pytest.raises(MappingError) as e:
        map_graph(g, "tianjic")
    msg = str(e.value)
    assert "'fc'" in msg and "fan-in 512" in msg and "256" in msg and "tianjic" in msg
    assert [v.kind for v in e.value.violations] == ["fan_in"]
    v = e.value.violations[0]
    assert (v.layer, v.needed, v.available) == ("fc", 512, 256)
    # the scaled variant has a 1,024-wide crossbar
    m = map_graph(g, "tianjic-x16")
    assert m.fits and m.layers["fc"].fan_in == 512


def test_channel_too_large_for_a_core():
    g = chain((1, 32, 32), [conv("big", 1, 2, 32), G.Neurons("nb", (2, 32, 32))])
    with pytest.raises(MappingError) as e:
        map_graph(g, "tianjic")
    msg = str(e.value)
    assert "'big'" in msg and "1024 neurons" in msg and "256" in msg and "cannot be divided" in msg
    assert map_graph(g, "tianjic-x16").fits      # 1,024 neurons per core


def test_too_many_cores_strict_and_best_effort():
    g = chain((1, 16, 16), [conv("wide", 1, 200, 16), G.Neurons("nw", (200, 16, 16))])
    with pytest.raises(MappingError) as e:
        map_graph(g, "tianjic")
    assert "200 cores" in str(e.value) and "156" in str(e.value) and "'wide'" in str(e.value)
    m = map_graph(g, "tianjic", strict=False)
    assert [v.kind for v in m.violations] == ["cores"]
    assert not m.fits
    check_exact_parts(m)                         # every node still placed, oversubscribed
    assert len(m.cores) == 156


def test_weight_memory_limits_the_split():
    g = chain((1024,), [linear("fc", (1024,), 256), G.Neurons("n", (256,))], kind="spike")
    m = map_graph(g, "tianjic-x16")
    check_capacity(m)
    check_exact_parts(m)
    # 1,024 bytes per output neuron, 64 KiB per core -> 64 outputs per core
    assert [p.channels for p in m.parts["fc"]] == [64] * 4
    assert all(m.cores[c].usage["weight_bytes"] == 65536 for c in m.layers["fc"].cores)
    np.testing.assert_array_equal(m.packets_per_spike("input", "fc"), np.full(1024, 4))


def attention_graph(heads=2):
    """q, k, v 1x1 convs on 8 channels of 4x4 tokens -> SpikeMatmul -> neurons -> proj."""
    g = G.Graph()
    g.add(G.Input("input", (8, 4, 4), kind="spike"))
    for x in "qkv":
        g.add(conv(f"{x}_conv", 8, 8, 4, k=1, p=0), ["input"])
        g.add(G.Neurons(f"{x}n", (8, 4, 4)), [f"{x}_conv"])
    g.add(G.SpikeMatmul("mm", (8, 4, 4), heads=heads, scale=0.125), ["qn", "kn", "vn"])
    g.add(G.Neurons("an", (8, 4, 4)), ["mm"])
    g.add(conv("proj", 8, 8, 4, k=1, p=0), ["an"])
    g.add(G.Neurons("pn", (8, 4, 4)), ["proj"])
    g.add(G.Readout("readout", (8, 4, 4)), ["pn"])
    return g.validate()


def small_core_chip(tmp_path, neurons=64):
    p = tmp_path / "tiny-tianjic.toml"
    p.write_text(f'extends = "{load_chip("tianjic").path}"\nname = "tiny-tianjic"\n[core]\n'
                 f'neurons_per_core = {{value = {neurons}, estimate = "test"}}\n')
    return load_chip(p)


def test_spike_matmul_heads_multicast_and_product_storage(tmp_path):
    chip = small_core_chip(tmp_path)
    m = map_graph(attention_graph(), chip)
    check_exact_parts(m)
    check_capacity(m)
    # the v layer holds v_conv, its neurons, the product and the attention neurons
    assert m.layer_of["mm"] == "v_conv" and m.layer_of["an"] == "v_conv"
    # per channel 16 (vn) + 16 (an) neurons -> 2 channels per 64-neuron core
    assert [p.channels for p in m.parts["mm"]] == [2, 2, 2, 2]
    part = m.cores[m.parts["mm"][0].core]
    # q(kv) keeps d = 4 KV entries per output channel: 2 channels x 4 entries of 16 bits
    assert part.by_node["mm"]["state_bytes"] == 2 * 4 * 2
    assert part.by_node["mm"]["neurons"] == 0          # consumed by 'an' only
    # q channel c reaches the cores of its head's output channels (2 cores per head)
    np.testing.assert_array_equal(m.packets_per_spike("qn", "mm"), np.full(8, 2))
    mm_cores = m.channel_cores("mm")
    src = m.channel_cores("qn")
    expect = [sum(m.hops(src[c], b) for b in set(mm_cores[(c // 4) * 4:(c // 4) * 4 + 4]))
              for c in range(8)]
    np.testing.assert_array_equal(m.hops_per_spike("qn", "mm"), expect)
    # v channel c' feeds output channel c' only, on the same core: nothing on the network
    assert not m.packets_per_spike("vn", "mm").any() and not m.hops_per_spike("vn", "mm").any()
    msgs, hops = m.route("qn", "mm")
    np.testing.assert_array_equal(msgs, m.packets_per_spike("qn", "mm"))
    np.testing.assert_array_equal(hops, m.hops_per_spike("qn", "mm"))


# ----------------------------------------------------------------------------- Speck
def speck_cnn():
    """DVS-style spike input through three convs whose memories fit particular Speck cores."""
    return chain((2, 64, 64), [
        conv("c1", 2, 16, 64), G.Neurons("n1", (16, 64, 64)),           # 64Ki neuron entries
        conv("c2", 16, 64, 64, s=4), G.Neurons("n2", (64, 16, 16)),
        conv("c3", 64, 64, 16, s=2), G.Neurons("n3", (64, 8, 8))],      # 64Ki kernel entries
        kind="spike")


def test_speck_dynapcnn_memory_formulas_and_core_choice():
    m = map_graph(speck_cnn(), "speck")
    assert m.fits and m.placement == "memory-fit"
    check_exact_parts(m)
    check_capacity(m)
    use = {L: m.cores[m.layers[L].cores[0]].usage for L in ("c1", "c2", "c3")}
    # kernel = c_in * 2^(ceil log2(kx*ky) + ceil log2 c_out); neurons = c_out * 2^(...)
    assert use["c1"]["kernel_entries"] == 2 * 2 ** (4 + 4)
    assert use["c1"]["neuron_entries"] == 16 * 2 ** (6 + 6) == 65536
    assert use["c2"]["kernel_entries"] == 16 * 2 ** (4 + 6)
    assert use["c2"]["neuron_entries"] == 64 * 2 ** (4 + 4)
    assert use["c3"]["kernel_entries"] == 64 * 2 ** (4 + 6) == 65536
    assert use["c3"]["neuron_entries"] == 64 * 2 ** (3 + 3)
    assert m.layers["c1"].cores[0] in (0, 1, 2)        # only cores 0-2 have 64Ki neurons
    assert m.layers["c3"].cores[0] in (5, 6)           # only cores 5-6 have 64Ki kernels
    assert len({m.layers[L].cores[0] for L in ("c1", "c2", "c3")}) == 3
    # odd sizes round up to powers of two
    g = chain((3, 10, 10), [conv("c", 3, 5, 10, k=3, p=0), G.Neurons("n", (5, 8, 8))],
              kind="spike")
    u = map_graph(g, "speck").cores
    usage = next(iter(u.values())).usage
    assert usage["kernel_entries"] == 3 * 2 ** (4 + 3) and usage["neuron_entries"] == 5 * 64


def test_speck_layer_limits_are_reported():
    g = G.Graph()
    g.add(G.Input("input", (2, 40, 40), kind="graded"))
    g.add(conv("s3", 2, 4, 40, k=3, s=3, p=0), ["input"])              # stride 3
    g.add(G.Neurons("ns3", (4, 13, 13)), ["s3"])
    g.add(conv("k17", 4, 4, 13, k=17, p=8), ["ns3"])                   # kernel 17, padding 8
    g.add(G.Neurons("nk", (4, 13, 13)), ["k17"])
    g.add(G.Pool("pool", (4, 7, 7), in_shape=(4, 13, 13), kernel=3, stride=2, padding=1), ["nk"])
    for i in range(3):                                                  # 3 destinations
        g.add(conv(f"d{i}", 4, 4, 7, k=1, p=0), ["pool"])
        g.add(G.Neurons(f"nd{i}", (4, 7, 7)), [f"d{i}"])
    g.add(G.Add("sum", (4, 7, 7)), ["nd0", "nd1", "nd2"])
    g.add(G.Readout("readout", (4, 7, 7)), ["sum"])
    g.validate()
    m = map_graph(g, "speck", strict=False)
    kinds = {v.kind: v for v in m.violations}
    assert {"stride", "kernel_size", "padding", "max_pool", "graded_edge",
            "destinations"} <= set(kinds)
    assert kinds["stride"].node == "s3" and kinds["stride"].available == [1, 2, 4, 8]
    assert kinds["kernel_size"].needed == 17 and kinds["padding"].needed == 8
    assert kinds["destinations"].layer == "k17" and kinds["destinations"].needed == 3
    assert "'input' -> 's3'" in kinds["graded_edge"].message
    with pytest.raises(MappingError) as e:
        map_graph(g, "speck")
    for v in m.violations:
        assert v.message in str(e.value)


# ----------------------------------------------------------------------------- zoo models
def _zoo_graph(name, **kw):
    for mod in ("meta_spikeformer", "e_spikeformer"):       # register the zoo families
        importlib.import_module(f"models.{mod}")
    torch.manual_seed(0)
    model = models.create(name, **kw).eval()
    return lower(model, torch.rand(2, 1, 32, 32))


@pytest.fixture(scope="module")
def zoo():
    return {"meta-spikeformer-tiny": _zoo_graph("meta-spikeformer-tiny"),
            "meta-sdsa1": _zoo_graph("meta-spikeformer-tiny", attn="sdsa1"),
            "e-spikeformer-tiny": _zoo_graph("e-spikeformer-tiny")}


@pytest.mark.parametrize("chip", ["tianjic-x16", "speck-xl"])
def test_scaled_variants_fit_the_tiny_zoo_models(zoo, chip):
    for name, g in zoo.items():
        m = map_graph(g, chip)
        assert m.fits, name
        check_exact_parts(m)
        check_capacity(m)
        active = [c for L in m.layers.values() if L.active for c in L.cores]
        assert len(active) == len(set(active)), f"{name}: a core holds two layers"
        t = m.totals()
        assert 0 < t["cores_used"] <= m.n_cores and 0 < t["neuron_util"] <= 1
        json.dumps(m.to_dict())
        for u, v in m.cross_edges():
            h = m.hops_per_spike(u, v)
            assert h.shape == (g.op(u).channels,) and (h >= 0).all()
            p = m.packets_per_spike(u, v)
            assert (p >= 0).all() and (h[p == 0] == 0).all()
            if u != "input":
                assert (h >= p).all()            # every network copy travels >= 1 hop
            else:
                assert not h.any() and (p >= 1).all()


def test_real_tianjic_rejects_the_tiny_transformer_naming_layers(zoo):
    g = zoo["meta-spikeformer-tiny"]
    with pytest.raises(MappingError) as e:
        map_graph(g, "tianjic")
    msg = str(e.value)
    assert "blocks4.0.attn.q_conv" in msg and "fan-in 432" in msg and "accepts 256" in msg
    assert "'down1a.conv'" in msg and "512 neurons" in msg


def test_real_speck_reports_every_layer_that_does_not_fit(zoo):
    g = zoo["meta-spikeformer-tiny"]
    with pytest.raises(MappingError):
        map_graph(g, "speck")
    m = map_graph(g, "speck", strict=False)
    assert not m.fits
    check_exact_parts(m)
    kinds = {v.kind for v in m.violations}
    assert {"spike_product", "graded_edge", "destinations", "cores"} <= kinds
    products = {v.node for v in m.violations if v.kind == "spike_product"}
    assert products == {n for n, op in g.nodes.items() if isinstance(op, G.SpikeMatmul)}
    # one layer per core: every layer beyond the 9 cores is named
    no_core = [v.layer for v in m.violations if v.kind == "cores"]
    assert len(no_core) == len([L for L in m.layers.values() if L.active]) - 9
    # the first layers in topological order got the cores
    assert "down1a.conv" not in no_core and "head" in no_core
    sdsa1 = map_graph(zoo["meta-sdsa1"], "speck", strict=False)
    ops = {type(g2).__name__ for v in sdsa1.violations if v.kind == "spike_product"
           for g2 in [zoo["meta-sdsa1"].op(v.node)]}
    assert {"TokenSum", "Mask"} <= ops


def test_report_outputs_and_determinism(zoo):
    g = zoo["e-spikeformer-tiny"]
    m = map_graph(g, "tianjic-x16")
    rows = m.summary()
    assert [r["layer"] for r in rows] == list(m.layers)
    assert sum(r["cores"] for r in rows) == m.totals()["cores_used"]
    table = m.format_table()
    assert "tianjic-x16" in table and "blocks4.0.attn.v_conv" in table and "fits: yes" in table
    d = m.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert map_graph(g, "tianjic-x16").to_dict() == d
    report = map_graph(g, "speck", strict=False).format_table()
    assert "violation(s)" in report
