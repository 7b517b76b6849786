"""AutoST search: spaces, exact parameter counts, the paper's FLOPs, the released code's syops
rules, the seeded evolution (acceptance: best >= 95th percentile of 500 random legal samples),
rank correlation, the `neurosim search` command and the rank-study script in small."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from models.search import (Arch, InputSpec, Legality, SearchSpace, SearchSpaceError, batch,
                           evolve, flops_paper, get_space, list_spaces, load_space,
                           param_count, parse_window)
from models.search.rank import rank_correlation
from models.search.syops import arch_syops
from neurosim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _torch_params(arch: Arch, inputs: InputSpec) -> int:
    m = models.build("autost", arch.model_config(inputs))
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- spaces
def test_shipped_spaces_follow_the_paper_and_repo():
    tiny, small, base = get_space("tiny"), get_space("small"), get_space("base")
    assert tiny.embed_dims == (192, 256, 320, 384) and tiny.depths == tuple(range(1, 11))
    assert small.embed_dims == (256, 320, 384, 448, 512) and small.depths == tuple(range(2, 13))
    assert base.mlp_ratios == (3, 4, 5, 6) and base.depths == tuple(range(4, 16))
    assert tiny.window == (4e6, 5e6) and small.window == (11e6, 15e6)
    assert base.window == (25e6, 35e6)
    assert all(get_space(s).heads == (4, 8) for s in list_spaces())
    assert get_space("micro-tiny").embed_dims == (24, 32, 40, 48)
    assert tiny.inputs == InputSpec(32, 3, 100, 4, (2, 3)) and tiny.inputs.tokens == 64


@settings(max_examples=12, deadline=None)
@given(space=st.sampled_from(["micro-tiny", "micro-small", "micro-base"]),
       seed=st.integers(0, 10_000))
def test_param_count_is_exact(space, seed):
    s = get_space(space)
    a = s.sample(random.Random(seed))
    assert param_count(a, s.inputs) == _torch_params(a, s.inputs)


def test_param_count_of_the_registered_autost_models():
    # models/autost.py: counts at num_classes=100 (the class count evolution.py checks)
    inputs = get_space("tiny").inputs
    assert param_count(Arch(256, (4,) * 4, (8,) * 4), inputs) == 4_178_339
    assert param_count(Arch(448, (3, 3, 3, 4), (8,) * 4), inputs) == 11_514_683
    assert param_count(Arch(576, (5, 5, 5, 6, 6), (8,) * 5), inputs) == 29_649_810


def test_param_counts_enumeration_is_exact():
    s = SearchSpace("t", (16, 24), (2, 3), (2, 4), (1, 2), InputSpec(16, 1, 10, 2, (2, 3)))
    every = set()
    for D in s.embed_dims:
        for L in s.depths:
            for rs in np.ndindex(*([2] * L)):
                ratios = tuple(s.mlp_ratios[i] for i in rs)
                every.add(param_count(Arch(D, ratios, (2,) * L), s.inputs))
    assert s.param_counts() == sorted(every)
    assert s.size() == 2 * (4 + 16)


def test_flops_follow_eq_4_5_times_t():
    i = InputSpec(32, 3, 10, 4, (2, 3))
    n, d, L = 64, 256, 3
    uniform = Arch(d, (4,) * L, (8,) * L)
    eq4 = L * n * d * (2 * d + n)
    eq5 = L * n * (d * 4 * d + 4 * d * d)
    assert flops_paper(uniform, i) == 4 * (eq4 + eq5)
    mixed = Arch(d, (3, 4, 5), (4, 8, 4))
    assert flops_paper(mixed, i) == 4 * (eq4 + sum(2 * n * d * int(d * r) for r in (3, 4, 5)))
    assert flops_paper(Arch(d, (3, 4, 5), (8, 8, 8)), i) == flops_paper(mixed, i)  # heads: no


@pytest.mark.parametrize("text,expected", [("0.1M:0.15M", (1e5, 1.5e5)),
                                           ("100k:150k", (1e5, 1.5e5)),
                                           ("4M:5M", (4e6, 5e6)), (":5M", (None, 5e6)),
                                           ("2e5:", (2e5, None)), ("100:200", (100.0, 200.0))])
def test_parse_window(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize("text,msg", [("5M:4M", "low > high"), ("4M", "LOW:HIGH"),
                                      ("4X:5M", "cannot read the low bound"),
                                      ("1:2:3", "LOW:HIGH")])
def test_parse_window_errors(text, msg):
    with pytest.raises(SearchSpaceError, match=msg):
        parse_window(text)


def test_window_no_architecture_meets_names_ranges_and_spaces():
    with pytest.raises(SearchSpaceError) as e:
        Legality(get_space("tiny"), parse_window("0.1M:0.15M"))
    msg = str(e.value)
    assert "no architecture of search space 'tiny'" in msg and "943.8k to 23M" in msg
    assert "micro-tiny" in msg
    s = get_space("micro-tiny")
    counts = s.param_counts()
    gap = next(i for i in range(len(counts) - 1) if counts[i + 1] - counts[i] > 2)
    with pytest.raises(SearchSpaceError, match="largest below is"):
        Legality(s, (counts[gap] + 1, counts[gap + 1] - 1))


@pytest.mark.parametrize("kw,msg", [
    (dict(embed_dims=()), "empty choice list"),
    (dict(heads=(3,)), "contradictory: every head count must divide"),
    (dict(embed_dims=(20,)), "not a multiple of 8"),
    (dict(depths=(0, 1)), "positive integers"),
    (dict(mlp_ratios=(0.01,)), "gives no hidden unit"),
    (dict(depths=(2, 2)), "repeated values")])
def test_bad_spaces(kw, msg):
    base = dict(name="x", embed_dims=(16, 32), mlp_ratios=(2, 3), heads=(2, 4), depths=(1, 2))
    with pytest.raises(SearchSpaceError, match=msg):
        SearchSpace(**{**base, **kw})


def test_space_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('embed_dim = {min = 16, max = 32, step = 8}\nmlp_ratio = [2, 3]\n'
                 'num_heads = [2, 4]\ndepth = {min = 1, max = 3}\nwindow = "10k:40k"\n'
                 '[inputs]\nimg_size = 16\nin_channels = 1\nnum_classes = 10\nT = 2\n')
    s = load_space(p)
    assert s.embed_dims == (16, 24, 32) and s.depths == (1, 2, 3) and s.window == (1e4, 4e4)
    assert get_space(str(p)) == s
    p.write_text('embed_dim = {min = 64, max = 32, step = 8}\nmlp_ratio = [2]\n'
                 'num_heads = [2]\ndepth = [1]\n')
    with pytest.raises(SearchSpaceError, match="min 64 > max 32"):
        load_space(p)
    p.write_text('embed_dims = [16]\nmlp_ratio = [2]\nnum_heads = [2]\ndepth = [1]\n')
    with pytest.raises(SearchSpaceError, match="did you mean 'embed_dim'"):
        load_space(p)
    with pytest.raises(SearchSpaceError, match="did you mean micro-tiny"):
        get_space("micro-tine")


# ----------------------------------------------------------------------------- evolution
def _flops_search(space="micro-tiny", window="0.1M:0.15M", seed=0, **kw):
    s = get_space(space)
    legal = Legality(s, parse_window(window))
    return legal, evolve(legal, batch(lambda a: flops_paper(a, s.inputs)), seed=seed, **kw)


def test_evolution_beats_the_95th_percentile_of_random_legal_samples():
    legal, res = _flops_search()
    s = legal.space
    rng = random.Random(123)
    samples = [flops_paper(legal.sample(rng), s.inputs) for _ in range(500)]
    assert res.best_score >= np.percentile(samples, 95)
    assert legal.reason(res.best) is None
    assert res.best_score == flops_paper(res.best, s.inputs)
    assert res.settings == dict(population=50, generations=20, parents=10, mutations=25,
                                crossovers=25, m_prob=0.2, s_prob=0.4, seed=0)


def test_evolution_is_seeded_and_scores_legal_new_candidates_only():
    legal, a = _flops_search(generations=4)
    _, b = _flops_search(generations=4)
    _, c = _flops_search(generations=4, seed=1)
    assert [x.key for x, _ in a.scored] == [x.key for x, _ in b.scored]
    assert [x.key for x, _ in a.scored] != [x.key for x, _ in c.scored]
    keys = [x.key for x, _ in a.scored]
    assert len(keys) == len(set(keys))
    assert all(legal.reason(x) is None for x, _ in a.scored)
    assert len(a.history) == 4 and all(h["mutations"] + h["crossovers"] + h["random"] == 50
                                       for h in a.history)


def test_evolution_on_a_paper_space():
    legal, res = _flops_search("tiny", "4M:5M", generations=3)
    assert 4e6 <= legal.params(res.best) <= 5e6


def test_evolution_rejects_bad_settings_and_scores():
    legal = Legality(get_space("micro-tiny"))
    with pytest.raises(SearchSpaceError, match="m_prob"):
        evolve(legal, batch(lambda a: 1.0), m_prob=1.5)
    with pytest.raises(ValueError, match="scores must be finite"):
        evolve(legal, batch(lambda a: float("nan")))


# ----------------------------------------------------------------------------- syops
def _expected_dense_ops(a: Arch, i: InputSpec) -> int:
    """The syops-counter rules written out for the AutoST model (module doc of
    models.search.syops), one image."""
    T, D, C, K = i.T, a.embed_dim, i.in_channels, i.num_classes
    w, hw = [C, D // 8, D // 4, D // 2, D], [i.img_size ** 2] * 3
    hw.append((i.img_size // 2) ** 2 if 2 in i.pool_stages else i.img_size ** 2)
    ops = 0
    for k in range(4):
        ops += 9 * w[k] * w[k + 1] * T * hw[k] + 2 * T * w[k + 1] * hw[k]   # conv + BN
        ops += T * w[k + 1] * hw[k] if k < 3 else 0                           # neurons
    ops += T * (D // 2) * hw[2] + T * D * hw[3]                               # two max pools
    n = i.tokens
    ops += 9 * D * D * T * n + 2 * T * D * n                                  # RPE conv + BN
    for b in range(a.depth):
        h = a.hidden(b)
        lin = 4 * (T * n * D * D + D * T + 2 * T * D * n)                     # q, k, v, proj
        neur = 5 * T * D * n                                                  # pre, q, k, v, attn
        mlp = (T * D * n + T * n * D * h + h * T + 2 * T * h * n + T * h * n
               + T * n * h * D + D * T + 2 * T * D * n)
        ops += lin + neur + mlp
    return ops + D * K + K


def test_syops_follows_the_library_rules_and_ignores_weights():
    i = get_space("micro-tiny").inputs
    a = Arch(24, (3, 4), (4, 8))
    s0, s1 = arch_syops(a, i, seed=0), arch_syops(a, i, seed=1)
    assert s0["ops"] == s1["ops"] == _expected_dense_ops(a, i)
    assert s0["acs"] > 0 and s0["acs"] + s0["macs"] <= s0["ops"]


# ----------------------------------------------------------------------------- rank
def test_rank_correlation():
    x = np.arange(10.0)
    up = rank_correlation(x, x ** 2, n_boot=200)
    assert up["kendall"] == pytest.approx(1.0) and up["spearman"] == pytest.approx(1.0)
    assert up["kendall_ci"] == pytest.approx([1.0, 1.0])
    down = rank_correlation(x, -x, n_boot=50)
    assert down["spearman"] == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    y = x + rng.normal(0, 3, 10)
    r = rank_correlation(x, y, n_boot=300, seed=1)
    assert r["kendall_ci"][0] <= r["kendall"] <= r["kendall_ci"][1]
    assert r == rank_correlation(x, y, n_boot=300, seed=1)
    flat = rank_correlation(x, np.ones(10), n_boot=20)
    assert np.isnan(flat["kendall"]) and flat["n_boot_undefined"] == 20
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlation([1, 2], [1, 2])


# ----------------------------------------------------------------------------- CLI
def test_search_cli_flops(capsys):
    rc = main(["search", "autost", "--space", "micro-tiny", "--budget-params", "0.1M:0.15M",
               "--score", "flops", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert 1e5 <= out["best"]["params"] <= 1.5e5
    assert out["score"] == "flops" and out["n_scored"] > 500


@pytest.mark.parametrize("argv,msg", [
    (["--space", "tiny", "--budget-params", "0.1M:0.15M"], "no architecture of search space"),
    (["--space", "micro-tine"], "did you mean micro-tiny"),
    (["--budget-params", "9M:1M"], "low > high"),
    (["--workers", "0", "--ray-address", "localhost:1"], "give one or the other")])
def test_search_cli_errors(capsys, argv, msg):
    assert main(["search", "autost", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_search_cli_model_score_resumes(tmp_path, capsys):
    argv = ["search", "autost", "--space", "micro-tiny", "--score", "syops-ac", "--workers",
            "0", "--population", "4", "--generations", "1", "--parents", "2", "--mutations",
            "2", "--crossovers", "2", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    lines = (tmp_path / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 8
    first = json.loads((tmp_path / "search.json").read_text())
    assert main(argv) == 0                                   # every score comes from the log
    assert (tmp_path / "evaluations.jsonl").read_text().splitlines() == lines
    assert json.loads((tmp_path / "search.json").read_text()) == first


# ----------------------------------------------------------------------------- study script
def test_rank_study_script_small(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("autost_rank_study",
                                                  ROOT / "scripts" / "autost_rank_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    argv = ["--n-archs", "3", "--epochs", "1", "--train-n", "24", "--test-n", "12", "--T",
            "2", "--energy-n", "2", "--n-boot", "20", "--workers", "0", "--out", str(tmp_path)]
    assert study.main(argv) == 0
    rows = list(__import__("csv").DictReader(open(tmp_path / "architectures.csv")))
    assert len(rows) == 3 and len({r["arch"] for r in rows}) == 3
    space = get_space("micro-tiny")
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0 and float(r["energy"]) > 0
        assert 1e5 <= int(r["params"]) <= 1.5e5
    table = (tmp_path / "rank_table.md").read_text()
    assert table.count("\n") == 2 + 5 and "FLOPs (eq. 4-5 x T)" in table
    assert (tmp_path / "rank_scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert space.inputs.tokens == 64
    capsys.readouterr()
    assert study.main(argv) == 0                              # resumes: nothing to run
    assert "0 tasks to run (9 done earlier)" in capsys.readouterr().err
