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
    cmp = compare(g, ["tianjic-x16", "speck-xl"], x, y, limits={"async-free": 1})
    paper = paper_estimate(m, x, graph=g)
    reports = {c: map_graph(g, c, strict=False) for c in ("tianjic", "speck")}
    out = tmp_path_factory.mktemp("run")
    write_report(out, cmp, graph=g, model_name="e-small", workload="random", chips=cmp.chips,
                 paper=paper, mapping_reports=reports)
    return out


def _snapshot(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != "result.json"}


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
        if p.is_file() and p.name != "result.json":
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
    assert set(rec["wall_s"]) == {r["label"] for r in rec["runs"]}
    assert rec["paper"]["repconv"] == "fused"
    assert set(rec["paper_vs_event"]) == {"tianjic-x16/sync", "speck-xl/async-windowed"}
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
              "## Sync vs async", "![comparison](plots/comparison.png)", "async-free"):
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
