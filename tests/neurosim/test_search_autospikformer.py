"""Auto-Spikformer with the chip in the loop: an extracted subnet with per-block neurons is
exact across the interpreter, the quantized twin and both engines; candidate evaluation
(validation accuracy, simulated / paper / formula energy, infeasibility with the mapper's
reason); a tiny end-to-end search on a local Ray instance, resumed in process; bad input."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.search.autospikformer import AutoSpikformerSpace, Candidate
from models.search.space import InputSpec
from models.search.supernet import Supernet, recalibrate_bn
from neurosim.cli.main import main
from neurosim.frontends.lower import lower
from neurosim.frontends.twin import run_twin
from neurosim.reference import interp
from neurosim.report.search_front import compare_fronts, coverage, hypervolume
from neurosim.run.autospikformer_eval import (accuracies_on_test_split, accuracy_on_test_split,
                                              evaluate_candidate, formula_energy_j, search_data)
from neurosim.run.simulate import simulate

TINY = InputSpec(img_size=8, in_channels=1, num_classes=10, T=2, pool_stages=())
# the end-to-end search's space: the smallest that still has depth-2 candidates (which speck-xl
# cannot take: recorded infeasible) and a pool (8x8 digits -> 4x4 tokens, cheap to simulate)
SPACE_TOML = """name = "tiny"
embed_dim = [8, 16]
mlp_ratio = [2]
num_heads = [1, 2]
depth = [1, 2]
threshold = [0.6, 1.0, 1.4]
tau = [1.25, 2, 10]
T = [1, 2]
[inputs]
img_size = 8
in_channels = 1
num_classes = 10
pool_stages = [0]
"""


def _space():
    return AutoSpikformerSpace("tiny", (8, 16), (2, 3), (1, 2), (1, 2), (0.6, 1.0, 1.4),
                               (1.25, 2, 10), (2, 3), TINY)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Supernet(_space(), seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in n.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.8, 1.8, generator=g)
                m.bias.uniform_(0.2, 0.9, generator=g)
    path = tmp_path_factory.mktemp("sn") / "supernet.safetensors"
    n.save(path)
    return n.eval(), path


def _x(n, seed=0):
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


def test_extracted_subnet_with_per_block_neurons_is_exact_everywhere(net):
    c = Candidate(16, (3,), (2,), (1.4,), (1.25,), 3)
    model = recalibrate_bn(net[0].extract(c), _x(32, 1))
    for mod in model.modules():                    # recalibration zeroes the BN bias; refire
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.bias.data.fill_(0.5)
    x = _x(4)
    graph = lower(model, x)
    ref = interp.run(graph, x, record="all")
    tw = run_twin(model, graph, x)
    for n, a in ref.outputs.items():
        np.testing.assert_array_equal(a, tw.outputs[n], err_msg=n)
    sync = simulate(graph, "tianjic-x16", x, record="spikes")
    win = simulate(graph, "speck-xl", x, mode="async", record="spikes")
    for r in (sync, win):
        np.testing.assert_array_equal(r.logits, ref.logits)
        for n in r.spikes:
            np.testing.assert_array_equal(r.spikes[n], ref.outputs[n], err_msg=n)
    taus = {graph.op(n).tau for n in graph.nodes if getattr(graph.op(n), "tau", None)}
    assert 1.25 in taus
    rates = [ref.outputs[n].mean() for n in sync.spikes if n.startswith("blocks.")]
    assert max(rates) > 0.02, "silent blocks: the test would be vacuous"


def test_candidate_evaluation_and_infeasibility(net):
    _, path = net
    rng = np.random.default_rng(2)
    data = {"x_train": _x(40, 3), "y_train": rng.integers(0, 10, 40),
            "x_val": _x(20, 4), "y_val": rng.integers(0, 10, 20)}
    sp = _space().to_dict()
    one = Candidate(8, (2,), (1,), (1.0,), (2,), 2).to_dict()
    r = evaluate_candidate(one, str(path), sp, data, chip="tianjic-x16", n=8, calib_n=8,
                           recal_n=16)
    assert r["energy_j"] == pytest.approx(r["dynamic_j"] + r["static_j"])
    assert 0 <= r["accuracy"] <= 1 and r["n_energy"] == 8 and r["n_val"] == 20
    assert r["formula_j"] > 0 and r["paper_j"] > 0 and 0 <= r["firing_rate"] <= 1
    a = evaluate_candidate(one, str(path), sp, data, chip="speck-xl", mode="async", n=8,
                           calib_n=8, recal_n=16)
    assert a["accuracy"] == r["accuracy"] and a["energy_j"] != r["energy_j"]
    deep = Candidate(8, (2, 2), (1, 1), (1.0, 1.0), (2, 2), 2).to_dict()
    bad = evaluate_candidate(deep, str(path), sp, data, chip="speck-xl", mode="async", n=8,
                             calib_n=8, recal_n=16)
    assert set(bad) == {"infeasible", "accuracy"}
    assert "does not fit speck-xl" in bad["infeasible"] and "destinations" in bad["infeasible"]
    # the fronts study's variant with 16 destinations per core takes depth 2
    from pathlib import Path
    fan16 = Path(__file__).resolve().parents[2] / "scripts" / "chips" / "speck-xl-fanout16.toml"
    ok = evaluate_candidate(deep, str(path), sp, data, chip=str(fan16), mode="async", n=8,
                            calib_n=8, recal_n=16)
    assert "infeasible" not in ok and ok["energy_j"] > 0
    # the test-split accuracy is the same inherited model's: equal on a copy of the validation
    # split, and shifted labels cannot both be right
    data.update(x_test=data["x_val"], y_test=data["y_val"])
    assert accuracy_on_test_split(one, str(path), sp, data, recal_n=16) == r["accuracy"]
    data["y_test"] = (data["y_val"] + 1) % 10
    assert accuracy_on_test_split(one, str(path), sp, data, recal_n=16) + r["accuracy"] <= 1
    # the executor task rebuilds the data from a search log header's split fields
    split = {"workload": "digits", "val_n": 20, "seed": 3, "train_n": 40, "recal_n": 16}
    real = search_data("digits", TINY, 20, 3, 40)
    assert accuracies_on_test_split({"one": one, "deep": deep}, str(path), sp, split) == {
        k: accuracy_on_test_split(c, str(path), sp, real, recal_n=16)
        for k, c in (("one", one), ("deep", deep))}


def test_formula_energy_is_eq_3_with_one_rate():
    class L:
        def __init__(self, name, flops, passes=1):
            self.name, self.flops, self.mac_passes = name, flops, passes

    class E:
        e_mac_pj, e_ac_pj, T, first_layer = 4.6, 0.9, 4, "stem"
        layers = [L("stem", 1000), L("q", 2000), L("fc", 500)]
    assert formula_energy_j(E, 0.25) == pytest.approx((4.6 * 1000 + 0.9 * 0.25 * 4 * 2500)
                                                      * 1e-12)


def test_hypervolume():
    assert hypervolume([1, 2], [0.5, 0.8], 3, 0.0) == pytest.approx(2 * 0.5 + 1 * 0.3)
    assert hypervolume([1, 2], [0.8, 0.5], 3, 0.0) == pytest.approx(2 * 0.8)   # dominated
    st = compare_fronts({"a": ([1, 2], [0.5, 0.8]), "b": ([3], [0.4])})
    assert st["reference"] == {"energy_j": 3, "accuracy": 0.4}
    assert st["b"]["hypervolume"] == 0 and 0 < st["a"]["hypervolume_normalised"] <= 1


def test_coverage_by_hand():
    a = ([1.0, 2.0], [0.5, 0.9])
    b = ([1.5, 3.0, 4.0], [0.5, 0.9, 0.1])          # front of b: (1.5, 0.5), (3.0, 0.9)
    assert coverage(a, b) == 1.0                    # a beats both front points
    assert coverage(b, a) == 0.0                    # b reaches neither of a's
    assert coverage(a, a) == 1.0 and coverage(a, ([], [])) == 1.0
    assert coverage(([2.0], [0.9]), b) == 0.5       # ties count as covered (weak dominance)
    with pytest.raises(ValueError, match="as many energies"):
        coverage(([1.0], []), b)


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=15),
       st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=15))
@settings(max_examples=200, deadline=None)
def test_coverage_properties(pa, pb):
    """C lies in [0, 1]; a union covers each part; C(A, B) = 1 iff every front point of B is
    matched or beaten by A, so a set's hypervolume then is at least B's."""
    a = ([p[0] for p in pa], [p[1] for p in pa])
    b = ([p[0] for p in pb], [p[1] for p in pb])
    u = (a[0] + b[0], a[1] + b[1])
    assert 0.0 <= coverage(a, b) <= 1.0
    assert coverage(u, a) == coverage(u, b) == 1.0
    if coverage(a, b) == 1.0:
        assert hypervolume(*a, 10, -1) >= hypervolume(*b, 10, -1)


def _argv(space, out, *extra):
    return ["search", "autospikformer", "--space", str(space), "--supernet-epochs", "1",
            "--val-n", "32", "--train-n", "32", "--population", "6", "--generations", "2",
            "--parents", "3", "--mutations", "3", "--crossovers", "2", "--n", "4",
            "--calib-n", "4", "--recal-n", "16", "--out", str(out), "--quiet", *extra]


def test_tiny_search_on_local_ray_then_resumed_in_process(tmp_path):
    import ray
    space = tmp_path / "tiny.toml"
    space.write_text(SPACE_TOML)
    out = tmp_path / "run"
    assert main(_argv(space, out, "--workers", "1", "--random", "2", "--also-fit",
                      "speck-xl")) == 0
    assert not ray.is_initialized()
    res = json.loads((out / "search.json").read_text())
    n_eval = len({r["key"] for r in res["search"] + res["random"]})
    assert len(res["search"]) >= 6 and len(res["random"]) == 2
    assert all(k["key"].split("-L")[1].startswith("1-") for k in res["search"] + res["random"])
    assert res["infeasible"] and all("does not fit speck-xl" in v and "destinations" in v
                                     for v in res["infeasible"].values())
    assert res["best"]["fitness"] == max(r["fitness"] for r in res["search"])
    assert (out / "front_search_vs_random.png").read_bytes()[:4] == b"\x89PNG"
    assert {"evolved (F_AEB)", "random", "reference"} <= set(res["fronts"])
    log_lines = (out / "evaluations.jsonl").read_text().count("\n")
    assert log_lines == 1 + n_eval
    assert main(_argv(space, out, "--workers", "0", "--random", "2", "--also-fit",
                      "speck-xl")) == 0
    again = json.loads((out / "search.json").read_text())
    assert again["search"] == res["search"] and again["best"] == res["best"]
    assert (out / "evaluations.jsonl").read_text().count("\n") == log_lines


def test_nsga2_parents_and_reused_evaluations(tmp_path, monkeypatch, capsys):
    """A second search on the same supernet and data, another search seed and NSGA-II parents,
    reuses the first one's evaluations: only candidates never evaluated are simulated."""
    import neurosim.run.autospikformer_eval as ev
    space = tmp_path / "tiny.toml"
    space.write_text(SPACE_TOML)
    first = tmp_path / "first"
    assert main(_argv(space, first, "--workers", "0", "--random", "2")) == 0
    done = {json.loads(line)["key"] for line in
            (first / "evaluations.jsonl").read_text().splitlines()[1:]}
    calls = []
    real = ev.evaluate_candidate
    monkeypatch.setattr(ev, "evaluate_candidate",
                        lambda cand, *a, **k: calls.append(cand) or real(cand, *a, **k))
    second = tmp_path / "second"
    assert main(_argv(space, second, "--workers", "0", "--random", "2", "--parents-by",
                      "nsga2", "--search-seed", "3", "--supernet",
                      str(first / "supernet.safetensors"), "--evaluations-from",
                      str(first / "evaluations.jsonl"))) == 0
    res = json.loads((second / "search.json").read_text())
    assert res["parents_by"] == "nsga2" and res["settings"]["parents_by"] == "nsga2"
    assert res["settings"]["seed"] == 3
    assert sorted(res["scoring_order"]) == sorted(r["key"] for r in res["search"])
    assert {"evolved (NSGA-II parents)", "random"} <= set(res["fronts"])
    evaluated = {r["key"] for r in res["search"] + res["random"]}
    new = {Candidate.from_dict(c).key for c in calls}
    assert new == evaluated - done and len(calls) == len(new)
    assert evaluated & done                                   # some were reused
    # a log of another run (other simulated inputs) is refused, naming the file
    other = tmp_path / "other"
    assert main(_argv(space, other, "--workers", "0", "--n", "3", "--supernet",
                      str(first / "supernet.safetensors"), "--generations", "0",
                      "--evaluations-from", str(first / "evaluations.jsonl"))) == 2
    err = capsys.readouterr().err
    assert f"--evaluations-from {first / 'evaluations.jsonl'}" in err and "another" in err


@pytest.mark.parametrize("extra, toml, msg", [
    (["--alpha", "1.5"], SPACE_TOML, r"alpha .* must be in \[0, 1\], got 1.5"),
    ([], SPACE_TOML.replace("threshold = [0.6", "threshold = [0.0"),
     "threshold: values must be numbers > 0"),
    ([], SPACE_TOML.replace("T = [1, 2]", "T = [0, 2]"), "T: values must be integers >= 1"),
    (["--chip", "speck-xl"], SPACE_TOML, "chip 'speck-xl' is async: search it with --mode "
                                         "async"),
    (["--workers", "0", "--ray-address", "x:1"], SPACE_TOML, "give one or the other"),
    (["--sampling", "sandwich", "--n-random", "-1"], SPACE_TOML, "--n-random must be >= 0"),
])
def test_bad_input(tmp_path, capsys, extra, toml, msg):
    assert extra or toml != SPACE_TOML, "the bad value was not substituted"
    space = tmp_path / "s.toml"
    space.write_text(toml)
    assert main(_argv(space, tmp_path / "o", *extra)) == 2
    assert __import__("re").search(msg, capsys.readouterr().err)


def test_cli_sandwich_sampling_reaches_the_supernet_training(tmp_path, monkeypatch):
    import models.search.supernet as sn

    class _Stop(BaseException):
        pass

    def fake(*args, **kw):
        raise _Stop(kw)
    monkeypatch.setattr(sn, "train_supernet", fake)
    space = tmp_path / "s.toml"
    space.write_text(SPACE_TOML)
    with pytest.raises(_Stop) as e:
        main(_argv(space, tmp_path / "o", "--workers", "0", "--sampling", "sandwich",
                   "--n-random", "1"))
    kw = e.value.args[0]
    assert (kw["sampling"], kw["n_random"], kw["epochs"]) == ("sandwich", 1, 1)


@pytest.mark.soak
def test_study_smoke_covers_every_acceptance_step(tmp_path):
    """scripts/autospikformer_study.py --smoke (about 1-2 minutes): every step writes its
    figures (the acceptance study itself runs at full size outside the test suite)."""
    import importlib.util
    from pathlib import Path
    script = Path(__file__).resolve().parents[2] / "scripts" / "autospikformer_study.py"
    spec = importlib.util.spec_from_file_location("autospikformer_study", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "study"
    assert mod.main(["--smoke", "--workers", "0", "--out", str(out)]) == 0
    study = json.loads((out / "study.json").read_text())
    assert len(study["inherit"]) == 2
    assert all(0 <= r[k] <= 1 for r in study["inherit"] for k in ("inherited", "scratch"))
    neu = study["neurons"]
    assert neu["default"]["key"].endswith("-th1-tau2-T4") and "energy_saving" in neu
    assert neu["other_chip"]["chip"] == "tianjic-x16"
    ranks = study["ranks"]
    assert ranks["n"] >= 3
    for chip in ("tianjic-x16", "speck-xl"):
        assert -1 <= ranks[chip]["formula_j"]["kendall"] <= 1
        assert ranks[chip]["most_differing"]
    fr = study["search"]["fronts"]
    assert {"evolved (F_AEB)", "random"} <= set(fr)
    assert (out / "report" / "report.md").exists()


@pytest.mark.soak
def test_fronts_study_in_small(tmp_path):
    """scripts/autospikformer_fronts.py on the tiny space, 2 search seeds: the three sets share
    one reference; every hypervolume lies in [0, 1]; the budget curve never falls."""
    import importlib.util
    from pathlib import Path
    space = tmp_path / "tiny.toml"
    space.write_text(SPACE_TOML)
    first = tmp_path / "first"
    assert main(_argv(space, first, "--workers", "0", "--generations", "0")) == 0
    script = Path(__file__).resolve().parents[2] / "scripts" / "autospikformer_fronts.py"
    spec = importlib.util.spec_from_file_location("autospikformer_fronts", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "fronts"
    assert mod.main(["--out", str(out), "--supernet", str(first / "supernet.safetensors"),
                     "--space", str(space), "--chip", "tianjic-x16", "--seeds", "0", "1",
                     "--population", "4", "--generations", "1", "--n", "4", "--workers", "0",
                     "--test-all", "--extra", "--val-n", "32", "--train-n", "32",
                     "--calib-n", "4", "--recal-n", "16"]) == 0
    fr = json.loads((out / "fronts.json").read_text())
    assert fr["n_per_set"] == {f"{s}/{n}": 8 for s in (0, 1) for n in ("faeb", "nsga2",
                                                                       "random")}
    hv = fr["hypervolume_normalised"]
    assert all(0 <= hv[n][str(s)] <= fr["union_hypervolume_normalised"] <= 1
               for n in hv for s in (0, 1))
    bb = fr["by_budget"]
    assert bb["evaluations"] == [4, 8]
    for n in ("faeb", "nsga2", "random"):
        for s in ("0", "1"):
            assert bb[n][s][0] <= bb[n][s][1] == pytest.approx(hv[n][s])
    tc = fr["test_check"]
    assert tc["test_rows"] > 0 and all(0 <= tc["hypervolume_normalised"][n][str(s)] <= 1
                                       for n in hv for s in (0, 1))
    cached = json.loads((out / "test_accuracy.json").read_text())["accuracy"]
    assert len(cached) == fr["unique_evaluations"]          # --test-all: every candidate
    ex = fr["test_check"]["explored"]["hypervolume_normalised"]
    assert all(0 <= ex[n][str(s)] <= 1 for n in hv for s in (0, 1))
    for n in ("faeb", "nsga2"):
        for s in ("0", "1"):
            c = fr["coverage"][n][s]
            assert 0 <= c["evolved_covers_random"] <= 1 and 0 <= c["random_covers_evolved"] <= 1
            assert c["evolved_covers_random"] < 1 or hv[n][s] >= hv["random"][s]
    assert (out / "fronts.png").exists() and (out / "by_budget.png").exists()
