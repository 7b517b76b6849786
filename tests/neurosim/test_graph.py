"""Graph IR: validation names the node, save/load round trips are exact."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurosim.ir import graph as G
from neurosim.reference import interp
from neurosim.frontends.lower import lower
from tests.zoo_cases import inputs_for, small_model


def conv_net(rng, C=2, H=8, K=4, k=3, stride=1, pad=1, T=2, model="lif", classes=3):
    g = G.Graph(meta={"test": True})
    g.add(G.Input("input", (C, H, H), kind="graded", T=T))
    Ho = (H + 2 * pad - k) // stride + 1
    g.add(G.Conv("conv", (K, Ho, Ho), in_shape=(C, H, H), weight=rng.integers(-127, 128, (K, C, k, k)),
                 scale=rng.uniform(0.01, 0.1, K), bias=rng.uniform(-0.5, 0.5, K), stride=stride,
                 padding=pad, in_scale=1 / 255), ["input"])
    g.add(G.Neurons("lif", (K, Ho, Ho), model=model, v_th=rng.uniform(0.5, 2, K), D=4), ["conv"])
    g.add(G.TokenMean("mean", (K,)), ["lif"])
    g.add(G.Linear("fc", (classes,), in_shape=(K,), weight=rng.integers(-127, 128, (classes, K)),
                   scale=np.full(classes, 0.05)), ["mean"])
    g.add(G.Readout("readout", (classes,)), ["fc"])
    return g.validate()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), C=st.integers(1, 3), H=st.integers(3, 9), K=st.integers(1, 5),
       k=st.sampled_from([1, 3]), stride=st.sampled_from([1, 2]), model=st.sampled_from(["lif", "if", "sfa"]))
def test_save_load_round_trip_is_exact(tmp_path_factory, seed, C, H, K, k, stride, model):
    rng = np.random.default_rng(seed)
    g = conv_net(rng, C, H, K, k, stride, k // 2, model=model)
    d = g.save(tmp_path_factory.mktemp("g"))
    g2 = G.Graph.load(d)
    assert g.equals(g2)
    x = rng.random((3, C, H, H))
    a, b = interp.run(g, x, record="all"), interp.run(g2, x, record="all")
    for n in a.outputs:
        np.testing.assert_array_equal(a.outputs[n], b.outputs[n])
    np.testing.assert_array_equal(a.logits, b.logits)


def test_lowered_zoo_graph_round_trip(tmp_path):
    model = small_model("meta-sdsa3")
    x = inputs_for(model, 4)
    g = lower(model, x)
    g2 = G.Graph.load(g.save(tmp_path / "g"))
    assert g.equals(g2) and g2.meta["fx_map"] == g.meta["fx_map"]
    np.testing.assert_array_equal(interp.run(g, x).logits, interp.run(g2, x).logits)


def test_save_is_deterministic(tmp_path):
    g = conv_net(np.random.default_rng(0))
    g.save(tmp_path / "a")
    g.save(tmp_path / "b")
    assert (tmp_path / "a/graph.json").read_bytes() == (tmp_path / "b/graph.json").read_bytes()


@pytest.mark.parametrize("kwargs,match", [
    (dict(v_th=np.array([-1.0, 1.0])), "threshold must be positive"),
    (dict(model="sfa", D=0), "SFA D must be an integer >= 1"),
    (dict(model="quantum"), "model must be one of"),
    (dict(reset="sideways"), "reset must be"),
    (dict(v_th=np.ones(3)), r"v_th must have one value per channel \(2\)"),
])
def test_invalid_neuron_parameters_name_the_node(kwargs, match):
    with pytest.raises(G.GraphError, match=rf"node 'pop' \(Neurons\): {match}"):
        G.Neurons("pop", (2, 4, 4), **kwargs)


def test_kernel_larger_than_input_names_the_node():
    with pytest.raises(G.GraphError, match=r"node 'big' \(Conv\): kernel 7x7 is larger"):
        G.Conv("big", (1, 1, 1), in_shape=(1, 3, 3), weight=np.ones((1, 1, 7, 7)))


def test_non_integer_or_out_of_range_weights_rejected():
    with pytest.raises(G.GraphError, match="integers"):
        G.Linear("fc", (2,), in_shape=(3,), weight=np.full((2, 3), 0.5))
    with pytest.raises(G.GraphError, match="8-bit range"):
        G.Linear("fc", (2,), in_shape=(3,), weight=np.full((2, 3), 300))


def test_shape_mismatch_between_nodes_names_the_consumer():
    rng = np.random.default_rng(0)
    g = G.Graph()
    g.add(G.Input("input", (2, 8, 8), T=1))
    g.add(G.Conv("conv", (4, 8, 8), in_shape=(3, 8, 8), weight=rng.integers(-3, 3, (4, 3, 3, 3)),
                 padding=1), ["input"])
    with pytest.raises(G.GraphError, match=r"node 'conv' \(Conv\): expects input shape \(3, 8, 8\)"):
        g.validate()


def test_spike_product_requires_spikes():
    g = G.Graph()
    g.add(G.Input("input", (4, 2, 2), kind="graded", T=1))
    g.add(G.Pool("q", (4, 2, 2), in_shape=(4, 2, 2), kernel=1, stride=1, padding=0), ["input"])
    g.add(G.Pool("k", (4, 2, 2), in_shape=(4, 2, 2), kernel=1, stride=1, padding=0), ["input"])
    g.add(G.SpikeMatmul("mm", (4, 2, 2), heads=2), ["q", "k", "input"])
    with pytest.raises(G.GraphError, match=r"'mm'.*needs spike inputs"):
        g.validate()


def test_same_source_on_two_ports_is_refused():
    g = G.Graph()
    g.add(G.Input("input", (4, 2, 2), kind="spike", T=1))
    with pytest.raises(G.GraphError, match=r"node 'sum' \(Add\): input 'input' is used on more than one port"):
        g.add(G.Add("sum", (4, 2, 2)), ["input", "input"])


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph.json"):
        G.Graph.load(tmp_path)
    d = conv_net(np.random.default_rng(0)).save(tmp_path / "g")
    doc = json.loads((d / "graph.json").read_text())
    doc["nodes"][1]["type"] = "Teleporter"
    (d / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(G.GraphError, match="unknown type 'Teleporter'"):
        G.Graph.load(d)
    (d / "graph.json").write_text("{not json")
    with pytest.raises(G.GraphError, match="not valid JSON"):
        G.Graph.load(d)


# ----------------------------------------------------------------------------- issue 13 reproducers
def _edited(tmp_path, name, fn=None, text=None, arrays=None):
    """A saved conv_net directory with graph.json edited by ``fn`` (or replaced by ``text``)
    and arrays.npz by ``arrays`` (a dict, or raw bytes)."""
    d = conv_net(np.random.default_rng(0)).save(tmp_path / name)
    doc = json.loads((d / "graph.json").read_text())
    if fn is not None:
        fn(doc)
    (d / "graph.json").write_text(text if text is not None else json.dumps(doc))
    if isinstance(arrays, bytes):
        (d / "arrays.npz").write_bytes(arrays)
    elif arrays is not None:
        with np.load(d / "arrays.npz") as z:
            arrs = dict(z)
        arrays(arrs)
        np.savez(d / "arrays.npz", **arrs)
    return d


@pytest.mark.parametrize("case,fn,text,arrays,match", [
    ("list", None, "[1, 2]", None, r"graph.json: document: expected an object, got list"),
    ("nodes", lambda d: d.pop("nodes"), None, None, r"document: missing key 'nodes'"),
    ("params", lambda d: d["nodes"][1].pop("params"), None, None,
     r"nodes\[1\]: missing key 'params'"),
    ("port", lambda d: d["edges"][0].pop("port"), None, None, r"edges\[0\]: missing key 'port'"),
    ("npz", None, None, b"PK\x03\x04 not a zip", r"arrays.npz: not a readable .npz archive"),
    ("deep", None, "[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
    ("T-float", lambda d: d["nodes"][0]["params"].__setitem__("T", 1.5), None, None,
     r"node 'input' \(Input\): T must be an integer, got 1.5"),
    ("shape", lambda d: d["nodes"][0]["params"].__setitem__("shape", "2x8x8"), None, None,
     "shape must be a list of integers"),
    ("complex", None, None, lambda a: a.__setitem__("conv/scale", a["conv/scale"] * (1 + 1j)),
     r"node 'conv' \(Conv\): scale must hold real numbers, got dtype complex128"),
    ("string", None, None, lambda a: a.__setitem__("lif/v_th", a["lif/v_th"].astype(str)),
     r"node 'lif' \(Neurons\): v_th must hold real numbers"),
    ("bits", lambda d: d["meta"].__setitem__("weight_bits", 4), None, None,
     r"node 'conv': weight_bits 8 contradicts meta.weight_bits 4"),
    ("bits-range", lambda d: d["nodes"][1]["params"].__setitem__("weight_bits", 99), None, None,
     "weight_bits must be in 2..32"),
])
def test_malformed_graph_files_name_file_and_place(tmp_path, case, fn, text, arrays, match):
    d = _edited(tmp_path, case, fn, text, arrays)
    with pytest.raises(G.GraphError, match=match) as e:
        G.load_graph(d)
    assert str(d) in str(e.value)


def test_time_steps_and_sizes_have_plausible_bounds(tmp_path):
    def huge_t(doc):
        doc["nodes"][0]["params"]["T"] = 10 ** 6
    d = _edited(tmp_path, "T", huge_t)
    with pytest.raises(G.GraphError, match=r"node 'input': T = 1000000 time steps is outside "
                                           r"the plausible range 1..1024; set \"allow_extreme\""):
        G.load_graph(d)

    def allowed(doc):
        huge_t(doc)
        doc["meta"]["allow_extreme"] = True
    assert G.load_graph(_edited(tmp_path, "T-ok", allowed)).T == 10 ** 6   # the stated escape

    def lowered_with_4(doc):                   # the model's configuration says T = 4
        huge_t(doc)
        doc["meta"].update(config={"T": 4}, allow_extreme=True)
    with pytest.raises(G.GraphError, match=r"T = 1000000 contradicts meta.config.T = 4"):
        G.load_graph(_edited(tmp_path, "T-cfg", lowered_with_4))
    g = G.Graph()
    g.add(G.Input("input", (1, 8192, 4096), kind="spike", T=1))
    g.add(G.Readout("readout", (1, 8192, 4096)), ["input"])
    d = g.save(tmp_path / "huge")
    with pytest.raises(G.GraphError, match=r"node 'input': shape \(1, 8192, 4096\) holds "
                                           r"33,554,432 values per tick"):
        G.load_graph(d)


def test_scalar_parameters_are_type_checked():
    with pytest.raises(G.GraphError, match=r"node 'p' \(Pool\): kernel must be an integer"):
        G.Pool("p", (1, 2, 2), in_shape=(1, 4, 4), kernel=2.0, stride=2, padding=0)
    with pytest.raises(G.GraphError, match=r"node 'n' \(Neurons\): tau must be finite"):
        G.Neurons("n", (2,), tau=float("inf"))
    with pytest.raises(G.GraphError, match=r"node 's' \(TokenSum\): scale must be a number"):
        G.TokenSum("s", (2, 1, 1), scale="1")
    with pytest.raises(G.GraphError, match=r"node 'c' \(Conv\): ssc must be true or false"):
        G.Conv("c", (1, 2, 2), in_shape=(1, 2, 2), weight=np.ones((1, 1, 1, 1)), ssc=1)
    with pytest.raises(G.GraphError, match=r"node 'm' \(TokenMean\): in_bits must be in 2..32"):
        G.TokenMean("m", (2,), in_bits=0)
