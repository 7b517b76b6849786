"""Run reports: result.json holds everything; report.md, CSVs and plots re-render identically."""
import csv
import json
import math

import numpy as np
import pytest

from neurosim.frontends.lower import lower
from neurosim.run.compare import compare
from chips.mapping import map_graph
from neurosim.costing.paper import paper_estimate
from neurosim.report.markdown import load_record, render_report, write_report
from tests.zoo_cases import inputs_for, small_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    m = small_model("e-spikeformer")
    x = inputs_for(m, 2, seed=3)
    y = np.array([1, 7])
    g = lower(m, x)
    cmp = compare(g, ["tianjic-x16", "speck-xl"], x, y)
    paper = paper_estimate(m, x, graph=g)
    reports = {c: map_graph(g, c, strict=False) for c in ("tianjic", "speck")}
    out = tmp_path_factory.mktemp("run")
    write_report(out, cmp, graph=g, model_name="e-small", workload="random", chips=cmp.chips,
                 paper=paper, mapping_reports=reports)
    return out


INPUTS = ("result.json", "timing.json")         # what write_report writes; the rest is rendered


def _snapshot(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in INPUTS}


def test_files_written(run_dir):
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    for f in ("result.json", "report.md", "energy_by_layer.csv", "energy_by_core.csv",
              "energy_by_category.csv", "spikes_by_layer.csv", "comparison.csv",
              "paper_vs_event.csv", "plots/energy_by_category.png", "plots/comparison.png",
              "plots/firing_rates.png", "plots/paper_vs_event.png",
              "plots/timeline_tianjic-x16_sync.png", "plots/timeline_speck-xl_async-windowed.png",
              "plots/fifo_speck-xl_async-windowed.png",
              "plots/energy_by_layer_speck-xl_async-free.png"):
        assert f in names, f


def test_rerender_is_byte_identical(run_dir):
    before = _snapshot(run_dir)
    for p in run_dir.rglob("*"):
        if p.is_file() and p.name not in INPUTS:
            p.unlink()
    render_report(run_dir)
    assert _snapshot(run_dir) == before


def test_result_json_is_complete_and_free_of_wall_times_outside_wall_s(run_dir):
    rec = load_record(run_dir)
    assert [r["label"] for r in rec["runs"]] == ["tianjic-x16/sync", "speck-xl/async-windowed",
                                                 "speck-xl/async-free"]
    for r in rec["runs"]:
        assert "wall_s" not in r["stats"]
        assert math.fsum(r["energy"]["by_category_j"].values()) == r["energy"]["total_j"]
    assert "wall_s" not in rec                     # wall-clock times live in timing.json
    timing = json.loads((run_dir / "timing.json").read_text())
    assert set(timing["wall_s"]) == {r["label"] for r in rec["runs"]}
    assert rec["paper"]["repconv"] == "fused"
    assert set(rec["paper_vs_event"]) == {r["label"] for r in rec["runs"]}   # same inputs
    assert not rec["mapping_reports"]["tianjic"]["totals"]["fits"]
    assert rec["versions"]["neurosim"]
    text = (run_dir / "result.json").read_text()
    assert json.loads(text) == rec and text == json.dumps(rec, indent=1, sort_keys=True) + "\n"


def test_report_md_reads_well(run_dir):
    md = (run_dir / "report.md").read_text()
    for s in ("# neurosim report: e-small", "## Results per run", "energy / inference",
              "## Energy per inference by category", "## Top-10 energy consumers",
              "## Paper convention vs event level", "border/stride", "## Mapping",
              "**tianjic: the model does not fit**", "fan_in", "**speck: the model does not fit**",
              "## Sync vs async", "![comparison](plots/comparison.png)", "async-free",
              "## Static power", "| gating |", "dynamic only", "gating idle", "power"):
        assert s in md, s
    assert "wall" not in md.lower()
    for png in run_dir.glob("plots/*.png"):
        assert f"(plots/{png.name})" in md


def test_csvs_agree_with_the_breakdown(run_dir):
    rec = load_record(run_dir)
    with open(run_dir / "energy_by_category.csv") as f:
        rows = list(csv.DictReader(f))
    for run in rec["runs"]:
        mine = {r["category"]: float(r["energy_j"]) for r in rows if r["run"] == run["label"]}
        assert mine == run["energy"]["by_category_j"]
    with open(run_dir / "energy_by_layer.csv") as f:
        layer = [r for r in csv.DictReader(f) if r["run"] == "tianjic-x16/sync"]
    total = math.fsum(float(r["energy_per_inference_j"]) for r in layer)
    e = rec["runs"][0]["energy"]["per_inference"]
    assert total == e["dynamic_j"]
    with open(run_dir / "comparison.csv") as f:
        assert [r["mode"] for r in csv.DictReader(f)] == ["sync", "async-windowed", "async-free"]


def test_missing_result_json_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "result.json")):
        render_report(tmp_path)
    (tmp_path / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        render_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        render_report(tmp_path / "nope")


def _md_tables(md: str) -> list[list[dict]]:
    """The pipe tables of a markdown text, as lists of row dicts."""
    tables, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append([c.strip() for c in line.strip("|").split("|")])
        elif cur:
            head, rows = cur[0], cur[2:]
            tables.append([dict(zip(head, r)) for r in rows])
            cur = []
    return tables


def test_every_run_table_shows_the_same_n(run_dir):
    """Sync and async accuracy come from the same inputs: every table with runs shows n, and
    it is the record's n everywhere."""
    rec = load_record(run_dir)
    md = (run_dir / "report.md").read_text()
    with_runs = [t for t in _md_tables(md) if t and ("run" in t[0] or "sync / async" in t[0])]
    assert len(with_runs) >= 4
    for t in with_runs:
        assert all(r["n"] == str(rec["n"]) for r in t), t
    assert {r["n"] for r in rec["comparison"]["rows"]} == {rec["n"]}
    assert {r["n"] for r in rec["comparison"]["ratios"]} == {rec["n"]}


def test_static_energy_per_core_is_in_the_csv(run_dir):
    rec = load_record(run_dir)
    with open(run_dir / "energy_by_core.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["run"] == "tianjic-x16/sync"]
    e = rec["runs"][0]["energy"]["per_inference"]
    assert math.fsum(float(r["static_j"]) for r in rows) == pytest.approx(e["static_j"],
                                                                         rel=1e-12)
    assert math.fsum(float(r["energy_per_inference_j"]) for r in rows) == pytest.approx(
        e["total_j"], rel=1e-12)
    assert [r["core"] for r in rows][-1] == "uncore"


def zero_energy_chip(directory):
    """tianjic-x16 with every per-action cost and the static power set to 0 (a chip file
    written to ``directory``, loaded as chip "zero-energy")."""
    import dataclasses
    from chips.energy_table import ActionsSection
    from chips.spec import load_chip
    from neurosim.run.chip_overrides import variant_toml
    text = variant_toml(load_chip("tianjic-x16"),
                        {f"energy_overrides.{f.name}": 0.0
                         for f in dataclasses.fields(ActionsSection)})
    lines = ['name = "zero-energy"' if ln.startswith("name = ") else ln
             for ln in text.splitlines()]
    path = directory / "zero-energy.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_chip(path)


def test_zero_total_energy_reports_values_and_no_shares(tmp_path):
    """A run whose energy is all zero (a zero energy table, no static power): the report
    renders, shows the absolute energies and "n/a" for every share, never nan or inf."""
    import re
    from tests.chips.async_graphs import order_free
    chip = zero_energy_chip(tmp_path)
    g = order_free(0, T=2)
    x = np.random.default_rng(0).uniform(0.0, 1.0, (2, 2, 6, 6))
    cmp = compare(g, [chip], x)
    assert cmp.results[0].energy["total_j"] == 0.0
    out = write_report(tmp_path / "run", cmp, graph=g, model_name="zero", workload="random",
                       chips=[chip])
    md = (out / "report.md").read_text()
    assert not re.search(r"\b(nan|inf)\b", md.replace("/ inf", ""), re.IGNORECASE)  # "/ inf": headers
    top = md[md.index("## Top-10 energy consumers"):]
    rows = _md_tables(top)[0]
    assert {r["node"] for r in rows} == set(g.order()) - {g.input_node()}
    assert all(r["energy / inf"] == "0 J" and r["share of total"] == "n/a" and
               r["largest part"] == "" for r in rows)
    cat = _md_tables(md[md.index("## Energy per inference by category"):])[0]
    assert all(r["zero-energy/sync"] in ("0 J (n/a)", "**0 J**") for r in cat)
    for png in ("energy_by_category.png", "comparison.png"):
        assert (out / "plots" / png).stat().st_size > 0


def test_long_run_labels_make_short_distinct_file_names():
    """A chip variant with many overrides has a long label; its file-name part stays short
    enough for any file system and two labels that differ only at the end stay distinct."""
    from neurosim.report.record import SLUG_MAX, slug
    a = "speck-xl[" + ",".join(f"param_{i}={i * 1.5e-9}" for i in range(40)) + "]/async-free"
    b = a.replace("param_39", "param_38")
    assert len(slug(a).encode()) <= SLUG_MAX and slug(a) != slug(b) and "/" not in slug(a)
    assert slug("tianjic-x16/sync") == "tianjic-x16_sync"
