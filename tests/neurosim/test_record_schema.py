"""result.json: checked against its schema before anything is rendered (errors name the file and
the key path), and byte-identical across runs (wall-clock times live in timing.json)."""
import json

import pytest

from neurosim.cli.main import main
from neurosim.report import markdown
from neurosim.report.markdown import TIMING, load_record, render_report
from neurosim.report.record_schema import RecordError, validate_record
from tests.fuzz.bases import write_run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        no_plots(mp)
        return write_run_dir(tmp_path_factory.mktemp("run"))


def no_plots(mp):
    """Reports without PNGs (tests/neurosim/test_report.py covers them): result.json and the
    checks on it do not depend on the plots."""
    mp.setattr(markdown, "render_plots", lambda rec, out: [])


@pytest.fixture
def record(run_dir):
    return json.loads((run_dir / "result.json").read_text())


def _set(doc, path, value):
    *head, last = path
    for k in head:
        doc = doc[k]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


DELETE = object()

# the reproducers of issue 13 and their neighbours: (edit path, new value, key path in message)
BAD = [
    (["runs"], [], r"runs: must hold at least 1 entry, got 0"),
    (["runs", 0, "counts"], DELETE, r"runs\[0\]\.counts: missing"),
    (["runs", 0, "logits"], "zzz", r"runs\[0\]\.logits: expected a list, got string 'zzz'"),
    (["runs", 0, "logits", 0, 1], "zzz", r"runs\[0\]\.logits\[0\]\[1\]: expected a number"),
    (["runs", 0, "latency_s", 1], -1e-3, r"runs\[0\]\.latency_s\[1\]: must be >= 0"),
    (["runs", 1, "energy"], None, r"runs\[1\]\.energy: expected an object, got null"),
    (["runs", 0, "energy", "per_inference", "total_j"], None,
     r"runs\[0\]\.energy\.per_inference\.total_j: expected a number, got null"),
    (["runs", 0, "energy", "total_j"], 5.0, r"runs\[0\]\.energy\.by_category_j: sums to"),
    (["runs", 0, "accuracy"], 1.5, r"runs\[0\]\.accuracy: must be <= 1"),
    (["runs", 0, "labels"], [0], r"runs\[0\]\.labels: holds 1 entries for n = 2"),
    (["runs", 0, "predictions", 0], 7, r"runs\[0\]\.predictions\[0\]: class 7 outside"),
    (["runs", 0, "mode"], "warp", r"runs\[0\]\.mode: must be one of sync, async-windowed"),
    (["runs", 0, "spike_counts", "nope"], [[1, 2], [3, 4]],
     r"runs\[0\]\.spike_counts\['nope'\]: is not a node of graph\.nodes"),
    (["runs", 0, "timeline", "tick_s"], [1e-6],
     r"runs\[0\]\.timeline\.core_busy_cycles\['\d+'\]: holds \d+ values, one per tick"),
    (["comparison", "rows"], [], r"comparison\.rows: must hold one row per run"),
    (["graph", "nodes", 0, "neurons"], -3, r"graph\.nodes\[0\]\.neurons: must be >= 0"),
    (["n"], 1e300, r"n: expected an integer, got number 1e\+300"),
]


@pytest.mark.parametrize("path,value,match", BAD, ids=[" ".join(map(str, b[0])) for b in BAD])
def test_malformed_records_name_the_key_path(record, path, value, match):
    _set(record, path, value)
    with pytest.raises(RecordError, match=r"run/result\.json: " + match):
        validate_record(record, "run/result.json")


def test_the_written_record_is_valid_and_report_rejects_a_broken_one(run_dir, capsys):
    rec = load_record(run_dir)                       # validated on loading
    assert rec["runs"] and "wall_s" not in rec
    rec["runs"][0]["energy"] = None
    bad = run_dir.parent / "broken"
    bad.mkdir()
    (bad / "result.json").write_text(json.dumps(rec))
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "neurosim report: error:" in err and "runs[0].energy: expected an object, got null" \
        in err and str(bad / "result.json") in err
    (bad / "result.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(RecordError, match="not valid JSON in UTF-8"):
        render_report(bad)


def test_result_json_is_byte_identical_across_runs(run_dir, tmp_path, monkeypatch):
    """Determinism: the same inputs give the same result.json, byte for byte; the only
    wall-clock values are in timing.json."""
    no_plots(monkeypatch)
    again = write_run_dir(tmp_path / "again")
    assert (again / "result.json").read_bytes() == (run_dir / "result.json").read_bytes()
    timing = json.loads((run_dir / TIMING).read_text())
    labels = [r["label"] for r in load_record(run_dir)["runs"]]
    assert sorted(timing["wall_s"]) == sorted(labels)
    assert all(v >= 0 for v in timing["wall_s"].values())
