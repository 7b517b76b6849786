"""Speck mapping as the part does it: a DYNAP-CNN core pools its own output (conv -> IAF -> sum
pool on one core), and kernel / neuron / bias memory and placement agree with sinabs'
``DynapcnnNetwork.memory_summary()`` and its core constraints.

sinabs is a test-only dependency installed with ``--no-deps`` (pyproject ``test`` extra note):
it pins nir<=1.0.4 and needs SynSense's ``samna`` (hardware I/O, not on PyPI for every
platform); neither is used by the parts checked here, so ``samna`` is a stand-in module tree.
"""
import importlib.abc
import importlib.machinery
import sys
import types

import numpy as np
import pytest

from chips.mapping import MappingError, map_graph
from chips.spec import load_chip
from neurosim.ir import graph as G


# ----------------------------------------------------------------------------- samna stand-in
class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Meta(name, (_Any,), {})


class _Any(metaclass=_Meta):
    """Any attribute of the stand-in, at import time: a class whose attributes are classes."""

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return sys.modules.get(f"{self.__name__}.{name}") or _Meta(name, (_Any,), {})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates ``samna`` / ``samnagui`` and any submodule on import (sinabs imports them at
    module level for hardware I/O, which these tests never use)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("samna", "samnagui"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StandIn(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


@pytest.fixture(scope="module")
def sinabs_backend():
    finder = _Finder()
    sys.meta_path.insert(0, finder)
    try:
        import sinabs.layers as sl
        from sinabs.backend.dynapcnn import DynapcnnNetwork
        from sinabs.backend.dynapcnn.chip_factory import ChipFactory
        yield sl, DynapcnnNetwork, ChipFactory("speck2fdevkit").get_config_builder()
    finally:
        sys.meta_path.remove(finder)


# ----------------------------------------------------------------------------- networks
# (input (C, H, W), layers): ("conv", C_out, k, stride, padding, pool) | ("fc", N_out)
NETWORKS = {
    "conv-iaf-sumpool x3": ((2, 16, 16), [("conv", 8, 3, 1, 1, 2), ("conv", 16, 3, 1, 1, 2),
                                          ("conv", 10, 4, 1, 0, 1)]),
    "speck-table1 (32C3S1-32C3S2-32C3S1-AP4-32FC-11)": (
        (2, 32, 32), [("conv", 32, 3, 1, 1, 1), ("conv", 32, 3, 2, 1, 1),
                      ("conv", 32, 3, 1, 1, 4), ("fc", 32), ("fc", 11)]),
    "dvs 64x64, pool 4 then 2": ((2, 64, 64), [("conv", 16, 5, 2, 2, 4), ("conv", 32, 3, 1, 1, 2),
                                               ("fc", 64), ("fc", 10)]),
    "wide, strided, no pooling": ((1, 28, 28), [("conv", 64, 3, 2, 1, 1), ("conv", 128, 3, 2, 1, 1),
                                                ("conv", 10, 7, 1, 0, 1)]),
    "odd sizes": ((3, 30, 20), [("conv", 12, 5, 1, 2, 2), ("conv", 24, 3, 1, 1, 1),
                                ("conv", 7, 5, 4, 0, 1)]),
    "too big for any core": ((2, 128, 128), [("conv", 32, 3, 1, 1, 2), ("fc", 10)]),
}


def _shape_after(shape, k, s, p):
    c, h, w = shape
    return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


def build_graph(in_shape, layers, seed=0) -> G.Graph:
    """The network as a neurosim Graph: Conv -> IF -> [sum pool] ..., Linear -> IF, Readout."""
    rng = np.random.default_rng(seed)
    g = G.Graph()
    prev = g.add(G.Input("in", in_shape, kind="spike", T=1))
    shape = tuple(in_shape)
    for i, spec in enumerate(layers):
        if spec[0] == "conv":
            _, co, k, s, p, pool = spec
            h, w = _shape_after(shape, k, s, p)
            wgt = rng.integers(-3, 4, (co, shape[0], k, k))
            prev = g.add(G.Conv(f"conv{i}", (co, h, w), in_shape=shape, weight=wgt, stride=s,
                                padding=p), [prev])
            prev = g.add(G.Neurons(f"iaf{i}", (co, h, w), model="if", reset="soft"), [prev])
            shape = (co, h, w)
            if pool > 1:
                ph, pw = h // pool, w // pool
                prev = g.add(G.Conv(f"pool{i}", (co, ph, pw), in_shape=shape,
                                    weight=np.ones((co, 1, pool, pool)), stride=pool, groups=co,
                                    form="sumpool"), [prev])
                shape = (co, ph, pw)
        else:
            n = spec[1]
            wgt = rng.integers(-3, 4, (n, int(np.prod(shape))))
            prev = g.add(G.Linear(f"fc{i}", (n,), in_shape=shape, weight=wgt), [prev])
            prev = g.add(G.Neurons(f"iaf{i}", (n,), model="if", reset="soft"), [prev])
            shape = (n,)
    g.add(G.Readout("out", shape), [prev])
    return g.validate()


def build_sinabs(sl, in_shape, layers):
    from torch import nn
    mods, shape = [], tuple(in_shape)
    for spec in layers:
        if spec[0] == "conv":
            _, co, k, s, p, pool = spec
            mods += [nn.Conv2d(shape[0], co, k, s, p, bias=False), sl.IAFSqueeze(batch_size=1)]
            h, w = _shape_after(shape, k, s, p)
            shape = (co, h, w)
            if pool > 1:
                mods.append(sl.SumPool2d(pool))
                shape = (co, h // pool, w // pool)
        else:
            if len(shape) == 3:
                mods.append(nn.Flatten())
            mods += [nn.Linear(int(np.prod(shape)), spec[1], bias=False),
                     sl.IAFSqueeze(batch_size=1)]
            shape = (spec[1],)
    return nn.Sequential(*mods)


# ----------------------------------------------------------------------------- tests
def test_sum_pool_folds_into_the_producing_core():
    g = build_graph(*NETWORKS["conv-iaf-sumpool x3"])
    m = map_graph(g, "speck")
    assert m.fits and len(m.layers) == 3 and len(m.cores) == 3
    assert m.layer_of["pool0"] == m.layer_of["iaf0"] == m.layer_of["conv0"] == "conv0"
    assert m.layer_of["pool1"] == "conv1"
    for core in m.cores.values():                       # the pool needs no memory of its own
        assert all(not any(v.values()) for n, v in core.by_node.items() if n.startswith("pool"))
    # a chip without output pooling still refuses the graded pooled sums between cores
    tianjic_like = load_chip("speck")
    import dataclasses
    no_pool = dataclasses.replace(tianjic_like, limits=dataclasses.replace(
        tianjic_like.limits, pool_sizes=None))
    with pytest.raises(MappingError, match="carries graded values between cores"):
        map_graph(g, no_pool)


def test_linear_over_a_non_square_map_is_refused_like_sinabs():
    g = G.Graph()
    g.add(G.Input("in", (2, 6, 4), kind="spike"))
    g.add(G.Linear("fc", (3,), in_shape=(2, 6, 4), weight=np.ones((3, 48))), ["in"])
    g.add(G.Neurons("o", (3,), model="if"), ["fc"])
    g.add(G.Readout("out", (3,)), ["o"])
    with pytest.raises(MappingError, match="linear layer over a 6x4 map .* kernels are square"):
        map_graph(g.validate(), "speck")


def test_pool_sizes_the_core_cannot_apply_stay_separate():
    """Sum pool 3 is not a DYNAP-CNN pooling size: it stays its own layer (and its graded
    output between cores is reported)."""
    g = G.Graph()
    g.add(G.Input("in", (2, 12, 12), kind="spike"))
    g.add(G.Conv("c", (4, 12, 12), in_shape=(2, 12, 12), weight=np.ones((4, 2, 3, 3)),
                 padding=1), ["in"])
    g.add(G.Neurons("n", (4, 12, 12), model="if"), ["c"])
    g.add(G.Conv("p", (4, 4, 4), in_shape=(4, 12, 12), weight=np.ones((4, 1, 3, 3)), stride=3,
                 groups=4, form="sumpool"), ["n"])
    g.add(G.Linear("fc", (3,), in_shape=(4, 4, 4), weight=np.ones((3, 64))), ["p"])
    g.add(G.Neurons("o", (3,), model="if"), ["fc"])
    g.add(G.Readout("out", (3,)), ["o"])
    m = map_graph(g.validate(), "speck", strict=False)
    assert m.layer_of["p"] == "p"
    assert any(v.kind == "graded_edge" and v.node == "fc" for v in m.violations)


def _pooled_net(seed=3) -> G.Graph:
    """Spike input -> conv -> IF -> sum pool 2 -> linear -> readout (signed weights)."""
    rng = np.random.default_rng(seed)
    g = G.Graph()
    g.add(G.Input("input", (2, 8, 8), kind="spike", T=3))
    g.add(G.Conv("conv", (4, 8, 8), in_shape=(2, 8, 8), padding=1,
                 weight=rng.integers(-1, 4, (4, 2, 3, 3)), scale=np.full(4, 0.5)), ["input"])
    g.add(G.Neurons("n", (4, 8, 8), model="if", reset="soft", v_th=np.ones(4)), ["conv"])
    g.add(G.Conv("pool", (4, 4, 4), in_shape=(4, 8, 8), weight=np.ones((4, 1, 2, 2)), stride=2,
                 groups=4, form="sumpool"), ["n"])
    g.add(G.Linear("fc", (5,), in_shape=(4, 4, 4), weight=rng.integers(-3, 4, (5, 64)),
                   scale=np.full(5, 0.1)), ["pool"])
    g.add(G.Readout("out", (5,)), ["fc"])
    return g.validate()


def _with_pooling(chip_name, sizes):
    import dataclasses
    chip = load_chip(chip_name)
    return dataclasses.replace(chip, limits=dataclasses.replace(chip.limits, pool_sizes=sizes))


def test_folded_sum_pool_is_counted_as_the_cores_output_pooling():
    """On speck-xl the pool is the conv core's output pooling: no synaptic op or weight read;
    its pooled counts leave as spike events (one packet per pooled spike and destination
    core), which the linear layer takes as ACs; logits equal the interpreter's."""
    from neurosim.reference import interp
    from neurosim.run.simulate import simulate
    g = _pooled_net()
    x = (np.random.default_rng(4).random((3, 2, 8, 8)) < 0.4).astype(float)
    ref = interp.run(g, x, record="all")
    pooled = ref.outputs["pool"]                                  # [T, B, C, H, W] counts
    per_c = pooled.sum(axis=(0, 1, 3, 4)).astype(np.int64)
    m = map_graph(g, "speck-xl")
    assert m.layer_of["pool"] == "conv" and m.layer_of["fc"] == "fc"
    packets = m.packets_per_spike("pool", "fc")
    assert packets.min() > 0
    res = simulate(g, "speck-xl", x, mode="async", mapping=m)
    np.testing.assert_array_equal(res.logits, ref.logits)
    pool, fc = res.counts["pool"], res.counts["fc"]
    assert pool["ac"] == pool["mac"] == pool["weight_reads"] == 0
    assert pool["membrane_reads"] == pool["membrane_writes"] == pool["graded_values"] == 0
    assert pool["graded_messages"] == pool["graded_hops"] == 0
    assert pool["noc_messages"] == int(per_c @ packets) > 0
    assert per_c.sum() == res.counts["n"]["spikes"]     # pooling remaps addresses, merges none
    assert fc["mac"] == 0 and fc["ac"] == fc["weight_reads"] == int(per_c.sum()) * 5
    assert fc["noc_messages_in"] == pool["noc_messages"]
    # the sync engine on a clocked chip with the same output pooling counts the same
    sync = simulate(g, _with_pooling("tianjic-x16", (2,)), x)
    np.testing.assert_array_equal(sync.logits, ref.logits)
    for cat in ("ac", "mac", "weight_reads", "graded_values", "graded_messages", "noc_messages",
                "noc_messages_in"):
        assert sync.counts["pool"][cat] == pool[cat], cat
        assert sync.counts["fc"][cat] == fc[cat], cat


def test_sum_pool_stays_a_conv_on_chips_without_output_pooling():
    from neurosim.reference import interp
    from neurosim.run.simulate import simulate
    g = _pooled_net()
    x = (np.random.default_rng(4).random((3, 2, 8, 8)) < 0.4).astype(float)
    ref = interp.run(g, x, record="all")
    res = simulate(g, "tianjic-x16", x)
    np.testing.assert_array_equal(res.logits, ref.logits)
    pool = res.counts["pool"]
    spikes_in = int(ref.outputs["n"].sum())                 # k = stride: each spike, one target
    assert pool["ac"] == pool["weight_reads"] == spikes_in > 0
    assert pool["graded_values"] == 4 * 4 * 4 * 3 * 3      # every pooled value, every step
    assert pool["noc_messages"] == 0 and pool["graded_messages"] > 0
    assert res.counts["fc"]["mac"] == 64 * 5 * 3 * 3 and res.counts["fc"]["ac"] == 0


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_memory_and_placement_agree_with_sinabs(sinabs_backend, name):
    from sinabs.backend.dynapcnn.mapping import find_chip_layers
    sl, DynapcnnNetwork, builder = sinabs_backend
    in_shape, layers = NETWORKS[name]
    ours = map_graph(build_graph(in_shape, layers), "speck", strict=False)
    theirs = DynapcnnNetwork(build_sinabs(sl, in_shape, layers), input_shape=in_shape,
                             discretize=True)
    summary = theirs.memory_summary()
    idx = sorted(theirs.dynapcnn_layers)
    assert len(ours.layers) == len(idx), name                  # one core per sinabs layer
    for L, i in zip(ours.layers.values(), idx):
        need = L.needs[0]
        got = {"kernel_entries": int(summary["kernel"][i]),
               "neuron_entries": int(summary["neuron"][i]), "bias_entries": int(summary["bias"][i])}
        assert need == got, (name, L.name)
    constraints = builder.get_constraints()
    chip = load_chip("speck")
    for L, i in zip(ours.layers.values(), idx):
        fits_sinabs = find_chip_layers(theirs.dynapcnn_layers[i], constraints)
        fits_ours = [c for c in range(chip.n_cores)
                     if all(L.needs[0][k] <= getattr(chip.capacity(c), k) for k in L.needs[0])]
        assert fits_ours == fits_sinabs, (name, L.name)
    try:
        placed = builder.map_layers_to_cores(theirs.dynapcnn_layers)
    except ValueError:
        placed = None
    memory = {"kernel_entries", "neuron_entries", "bias_entries", "cores", "no_core"}
    placeable = not any(v.kind in memory for v in ours.violations)   # sinabs checks memory only
    assert placeable == (placed is not None), (name, [v.message for v in ours.violations])
    assert ours.fits == placeable, (name, [v.message for v in ours.violations])
    if ours.fits:
        cores = [L.parts[0].core for L in ours.layers.values()]
        assert len(set(cores)) == len(cores)
        for L, i, c in zip(ours.layers.values(), idx, cores):   # a core sinabs also accepts
            assert c in find_chip_layers(theirs.dynapcnn_layers[i], constraints), (name, L.name)


def test_folded_sum_pool_in_free_running_mode():
    """Free-running mode applies the same output pooling: each spike leaves at once as a
    pooled event at no cost to the pool; the pool's record is the sum pool of the neurons'
    spikes, and the linear layer pays one AC per pooled spike and output."""
    from neurosim.run.simulate import simulate
    g = _pooled_net()
    x = (np.random.default_rng(4).random((3, 2, 8, 8)) < 0.4).astype(float)
    res = simulate(g, "speck-xl", x, mode="async", async_mode="free", record="all")
    n, pool = res.spikes["n"], res.spikes["pool"]                 # [T, B, C, H, W]
    T, B, C, H, W = n.shape
    np.testing.assert_array_equal(pool, n.reshape(T, B, C, H // 2, 2, W // 2, 2).sum(axis=(4, 6)))
    counts = res.counts["pool"]
    assert counts["ac"] == counts["mac"] == counts["weight_reads"] == 0
    assert counts["graded_messages"] == counts["graded_values"] == 0
    spikes = int(n.sum())
    assert spikes > 0 and res.counts["fc"]["ac"] == spikes * 5
    assert res.counts["fc"]["mac"] == 0
