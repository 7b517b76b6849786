"""Fuzzing graph directories (``graph.json`` + ``arrays.npz``): mutated copies of saved graphs
load, or fail with a ``GraphError`` naming the file; a graph that loads runs through the
reference interpreter. No other exception may escape."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import strategies as st

from neurosim.frontends.lower import lower
from neurosim.ir import graph as G
from neurosim.reference import interp
from tests.fuzz.mutate import Outcomes, fuzz_cases, mutate_bytes, mutate_doc
from tests.neurosim.test_graph import conv_net
from tests.zoo_cases import inputs_for, small_model

EXTRA = ("graded", "spike", "Conv", "Neurons", "Readout", "sfa", "mt", "soft", [2, 8, 8],
         [1], "neurosim-graph/1")


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Saved graphs to mutate: a small conv net and a lowered zoo model (attention, SFA)."""
    root = tmp_path_factory.mktemp("bases")
    conv_net(np.random.default_rng(0), T=2).save(root / "conv")
    m = small_model("e-spikeformer")
    lower(m, inputs_for(m, 2)).save(root / "zoo")
    return [root / "conv", root / "zoo"]


def _mutate_array(data, a: np.ndarray) -> np.ndarray:
    op = data.draw(st.sampled_from(["complex", "bool", "frac", "str", "huge", "nan", "inf",
                                    "empty", "reshape", "drop", "uint"]))
    if op == "complex":
        return a.astype(np.complex128) * (1 + 1j)
    if op == "bool":
        return a.astype(bool)
    if op == "frac":
        return a.astype(np.float64) + 0.5
    if op == "str":
        return a.astype(str)
    if op == "huge":
        return a.astype(np.float64) * 1e300
    if op in ("nan", "inf") and a.size:
        b = a.astype(np.float64).copy()
        b.flat[data.draw(st.integers(0, a.size - 1))] = np.nan if op == "nan" else np.inf
        return b
    if op == "empty":
        return a.reshape(-1)[:0]
    if op == "reshape":
        return a.reshape(-1)
    if op == "uint":
        return (a.astype(np.int64) % 256).astype(np.uint64) + np.uint64(2 ** 63)
    return a.reshape(-1)[: max(a.size - 1, 0)]


def write_mutant(data, src, dst) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    kind = data.draw(st.sampled_from(["json", "json", "json-bytes", "arrays", "npz-bytes"]))
    j, a = dst / "graph.json", dst / "arrays.npz"
    if kind == "json":
        doc = mutate_doc(data, json.loads(j.read_text()), extra_values=EXTRA)
        j.write_text(json.dumps(doc))
    elif kind == "json-bytes":
        j.write_bytes(mutate_bytes(data, j.read_bytes()))
    elif kind == "npz-bytes":
        a.write_bytes(mutate_bytes(data, a.read_bytes()))
    else:
        with np.load(a) as z:
            arrs = dict(z)
        key = data.draw(st.sampled_from(sorted(arrs)))
        if data.draw(st.integers(0, 4)) == 0:
            del arrs[key]
        else:
            arrs[key] = _mutate_array(data, arrs[key])
        np.savez(a, **arrs)


def _inputs(g: G.Graph, seed: int) -> np.ndarray:
    op = g.op(g.input_node())
    rng = np.random.default_rng(seed)
    x = rng.random((1,) + op.shape)
    return (x < 0.3).astype(np.float64) if op.kind == "spike" else x


def check_graph_case(data, bases, tmp, outcomes: Outcomes):
    src = data.draw(st.sampled_from(bases), label="graph")
    d = tmp / "case"
    write_mutant(data, src, d)

    def case():
        g = G.load_graph(d)
        if g.T <= 8 and sum(op.size for op in g.nodes.values()) < 10 ** 6:
            res = interp.run(g, _inputs(g, 0))
            assert res.logits.shape[0] == 1
    outcomes.run(case, (G.GraphError,))


def test_fuzz_graph_directories(bases, tmp_path_factory):
    out = fuzz_cases(check_graph_case, bases, tmp_path_factory.mktemp("fz"), n=60)
    assert out.counts["ok"] and out.counts["GraphError"], str(out)


@pytest.mark.soak
def test_soak_graph_directories(bases, tmp_path_factory):
    out = fuzz_cases(check_graph_case, bases, tmp_path_factory.mktemp("fz"))
    print(f"\nsoak graph directories: {out}")
    assert out.total >= 1000
