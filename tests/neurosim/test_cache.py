"""Cached set-up (neurosim.run.cache): entries are found again only for the same checkpoint,
options, graph and chip file; a truncated or corrupt entry is rebuilt, never trusted; what comes
back equals what was built."""
import argparse
import json
import shutil

import numpy as np
import pytest

import models
from chips.mapping import MappingError, map_graph
from neurosim.frontends.lower import lower
from neurosim.run.cache import SetupCache, graph_digest
from neurosim.run.simulate import simulate
from tests.zoo_cases import inputs_for, small_model

CHIP = "tianjic-x16"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    model = small_model("meta-sdsa3")
    x = inputs_for(model, 3)
    ckpt = models.save_checkpoint(model, d / "a.safetensors")
    return model, x, ckpt, lower(model, x)


def _same_mapping(a, b):
    dump = lambda m: json.dumps(m.to_dict(), sort_keys=True, default=str)  # noqa: E731
    assert dump(a) == dump(b)


def test_lowered_graph_comes_back_equal_and_is_keyed_by_checkpoint_and_options(setup, tmp_path):
    model, x, ckpt, graph = setup
    cache = SetupCache(tmp_path)
    built = []

    def build():
        built.append(1)
        return graph
    g1, k1 = cache.lowered(ckpt, {"weight_bits": 8}, build)
    g2, k2 = cache.lowered(ckpt, {"weight_bits": 8}, build)
    assert (k1.status, k2.status, len(built)) == ("miss", "hit", 1)
    assert g2.equals(graph) and graph_digest(g2) == graph_digest(graph)
    np.testing.assert_array_equal(simulate(g2, CHIP, x).logits, simulate(graph, CHIP, x).logits)
    _, k3 = cache.lowered(ckpt, {"weight_bits": 4}, build)           # another option
    assert k3.status == "miss" and k3.key != k1.key
    other = ckpt.with_name("b.safetensors")                          # another checkpoint
    shutil.copy(ckpt, other)
    assert cache.lowered(other, {"weight_bits": 8}, build)[1].status == "hit"   # same bytes
    m2 = small_model("meta-sdsa3", seed=5)
    models.save_checkpoint(m2, other)
    _, k4 = cache.lowered(other, {"weight_bits": 8}, build)
    assert k4.status == "miss" and k4.key != k1.key


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "remove"])
def test_a_damaged_entry_is_rebuilt_not_trusted(setup, tmp_path, damage):
    _, _, ckpt, graph = setup
    cache = SetupCache(tmp_path)
    _, k = cache.lowered(ckpt, {}, lambda: graph)
    entry = cache.entry("lower", k.key)
    blob = entry / "arrays.bin"
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:blob.stat().st_size // 2])
    elif damage == "flip":                                   # same size, one byte changed
        b = bytearray(blob.read_bytes())
        b[len(b) // 3] ^= 0xFF
        blob.write_bytes(bytes(b))
    elif damage == "manifest":
        (entry / "manifest.json").write_text("{not json")
    else:
        (entry / "graph.json").unlink()
    rebuilt = []
    g, k2 = cache.lowered(ckpt, {}, lambda: rebuilt.append(1) or graph)
    assert k2.status == "rebuilt" and rebuilt and k2.note
    assert g.equals(graph)
    assert cache.lowered(ckpt, {}, lambda: graph)[1].status == "hit"   # stored afresh


def test_mapping_comes_back_equal_and_is_keyed_by_graph_chip_file_and_options(setup,
                                                                             tmp_path):
    _, x, _, graph = setup
    cache = SetupCache(tmp_path / "cache")
    m1, k1 = cache.mapped(graph, CHIP)
    m2, k2 = cache.mapped(graph, CHIP)
    assert (k1.status, k2.status) == ("miss", "hit")
    _same_mapping(m2, map_graph(graph, CHIP))
    r1, r2 = simulate(graph, CHIP, x, mapping=m1), simulate(graph, CHIP, x, mapping=m2)
    np.testing.assert_array_equal(r1.logits, r2.logits)
    assert r1.counts == r2.counts and r1.core_counts == r2.core_counts
    assert cache.mapped(graph, CHIP, strict=False)[1].status == "miss"    # another option
    assert cache.mapped(graph, CHIP, placement="greedy")[1].status == "miss"
    # a copy of the chip file with one changed number (same name) is another chip
    from chips.spec import load_chip
    text = open(load_chip(CHIP).files[-1]).read()
    assert "value = 0.002308" in text
    mine = tmp_path / "tianjic-x16.toml"
    mine.write_text(text)
    assert cache.mapped(graph, load_chip(mine))[1].status == "hit"       # same content
    mine.write_text(text.replace("value = 0.002308", "value = 0.003"))
    _, k3 = cache.mapped(graph, load_chip(mine))
    assert k3.status == "miss" and k3.key != k1.key
    # a changed graph (one bias) is another graph
    g2 = lower(small_model("meta-sdsa3", seed=3), x)
    assert cache.mapped(g2, CHIP)[1].status == "miss"
    # a mapping file cut short is rebuilt
    (cache.entry("map", k1.key) / "mapping.json").write_text('{"chip": ')
    m4, k4 = cache.mapped(graph, CHIP)
    assert k4.status == "rebuilt"
    _same_mapping(m4, m1)


def test_mapping_that_does_not_fit_is_not_stored(setup, tmp_path):
    _, _, _, graph = setup
    cache = SetupCache(tmp_path)
    with pytest.raises(MappingError):
        cache.mapped(graph, "tianjic", strict=True)
    assert not (tmp_path / "map").exists() or not any((tmp_path / "map").iterdir())
    assert cache.mapped(graph, "tianjic", strict=False)[1].status == "miss"   # stored
    assert any((tmp_path / "map").iterdir())


def test_lowered_key_stands_for_the_graph(setup, tmp_path):
    _, _, ckpt, graph = setup
    cache = SetupCache(tmp_path)
    g, k = cache.lowered(ckpt, {}, lambda: graph)
    a, ka = cache.mapped(g, CHIP, graph_key=k.key)
    b, kb = cache.mapped(g, CHIP)
    assert ka.key != kb.key and (ka.status, kb.status) == ("miss", "miss")
    _same_mapping(a, b)
    assert cache.mapped(g, CHIP, graph_key=k.key)[1].status == "hit"


def test_cli_lowering_uses_the_cache(tmp_path, monkeypatch):
    """``neurosim simulate/compare/lower`` lower through the cache: the second time the same
    shipped checkpoint with the same flags comes from disk; --no-setup-cache bypasses it."""
    from neurosim.cli.common import load_model, lower_from_args, map_from_args
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path))
    args = argparse.Namespace(checkpoint="meta-spikeformer-tiny", workload="digits", calib_n=8,
                              weight_bits=8, repconv="fused", ssc=False, no_setup_cache=False)
    model = load_model(args)
    g1 = lower_from_args(model, args)
    entries = list((tmp_path / "setup" / "lower").iterdir())
    assert len(entries) == 1
    g2 = lower_from_args(model, args)
    assert g2.equals(g1)
    map_from_args(g2, CHIP, args)
    assert len(list((tmp_path / "setup" / "map").iterdir())) == 1
    args.no_setup_cache = True
    assert lower_from_args(model, args).equals(g1)
    assert len(list((tmp_path / "setup" / "lower").iterdir())) == 1
