"""`neurosim sweep`: the acceptance sweep (2 checkpoints x 3 chips x 2 modes x 2 FIFO depths)
on a real local Ray started by the command, the same table with --workers 0, resuming after a
kill or a half-written row, Pareto fronts, chip overrides, the result log, the executors and
bad input."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from neurosim.cli.main import main
from neurosim.report.pareto import pareto_front
from neurosim.run.chip_overrides import applies, chip_variant
from neurosim.run.executor import ExecutorError, InProcess, make_executor
from neurosim.run.resultlog import ResultLog, ResultLogError
from neurosim.run.sweep_config import SweepConfigError, load_sweep_config
from tests.zoo_cases import small_model

ROOT = Path(__file__).resolve().parents[2]
N_POINTS = 10   # per checkpoint: tianjic-x16/sync + 2 async chips x async-windowed x 2 depths

SLOW_CHIP = """extends = "{base}"
name = "speck-xl-slow"
description = "speck-xl with a 4x slower synaptic service (test chip)"
[timing]
synop_service_ns = {{value = 18.0, estimate = "test chip: 4x speck-xl"}}
"""
SWEEP = """models = [{models}]
chips = ["tianjic-x16", "speck-xl", "speck-xl-slow.toml"]
modes = ["sync", "async-windowed"]
workloads = ["digits"]
n = 1
calib_n = 4
[overrides]
"timing.fifo_depth" = [4, 64]
"""


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep")
    for case in ("autost", "spikformer"):
        models.save_checkpoint(small_model(case), d / f"{case}.safetensors")
    (d / "speck-xl-slow.toml").write_text(
        SLOW_CHIP.format(base=ROOT / "chips" / "speck-xl.toml"))
    (d / "sweep.toml").write_text(
        SWEEP.format(models='"autost.safetensors", "spikformer.safetensors"'))
    (d / "one.toml").write_text(SWEEP.format(models='"autost.safetensors"'))
    return d


def _sweep(cfg: Path, out: Path, *extra) -> dict:
    buf = io.StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        rc = main(["sweep", "--config", str(cfg), "--out", str(out), "--json", *extra])
    finally:
        sys.stdout = old
    assert rc == 0
    return json.loads(buf.getvalue())


def _table(path: Path) -> bytes:
    """results.csv without the timing column."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    k = rows[0].index("wall_s")
    return "\n".join(",".join(r[:k] + r[k + 1:]) for r in rows).encode()


@pytest.fixture(scope="session")
def ray_sweep(sweep_dir) -> dict:
    """The acceptance sweep on a local Ray instance that the command starts and stops."""
    return _sweep(sweep_dir / "sweep.toml", sweep_dir / "out-ray", "--workers", "2")


@pytest.fixture(scope="session")
def inproc_sweep(sweep_dir) -> dict:
    return _sweep(sweep_dir / "sweep.toml", sweep_dir / "out-0", "--workers", "0")


def test_sweep_on_local_ray_writes_table_and_pareto_plots(ray_sweep, sweep_dir):
    import ray
    assert not ray.is_initialized()                      # the command stopped its instance
    assert ray_sweep["points"] == N_POINTS and ray_sweep["ran"] == N_POINTS
    rows = list(csv.DictReader(open(sweep_dir / "out-ray" / "results.csv")))
    assert len(rows) == N_POINTS and [int(r["point"]) for r in rows] == list(range(N_POINTS))
    assert {(r["chip"], r["mode"]) for r in rows} == {
        ("tianjic-x16", "sync"), ("speck-xl", "async-windowed"),
        ("speck-xl-slow", "async-windowed")}
    assert {r["timing.fifo_depth"] for r in rows if r["chip"] != "tianjic-x16"} == {"4", "64"}
    assert {r["timing.fifo_depth"] for r in rows if r["chip"] == "tianjic-x16"} == {""}
    for r in rows:
        assert r["status"] == "ok", r["message"]
        tot = float(r["energy_per_inference_j"])
        parts = float(r["dynamic_per_inference_j"]) + float(r["static_per_inference_j"])
        assert tot == pytest.approx(parts, rel=1e-12) and tot > 0
        assert float(r["power_w"]) == pytest.approx(tot / float(r["latency_per_inference_s"]))
        assert float(r["spikes_per_inference"]) >= 0 and int(r["cores_used"]) > 0
    slow = {(r["model"], r["timing.fifo_depth"]): float(r["latency_per_inference_s"])
            for r in rows if r["chip"] == "speck-xl-slow"}
    fast = {(r["model"], r["timing.fifo_depth"]): float(r["latency_per_inference_s"])
            for r in rows if r["chip"] == "speck-xl"}
    assert all(slow[k] > fast[k] for k in fast)          # the chip parameter took effect
    for name in ("pareto_energy_accuracy.png", "pareto_latency_energy.png"):
        assert (sweep_dir / "out-ray" / name).read_bytes()[:4] == b"\x89PNG"
    assert ray_sweep["pareto_energy_accuracy"] and ray_sweep["pareto_latency_energy"]
    assert len(ray_sweep["skipped"]) == 4


def test_same_table_in_process_and_on_ray(ray_sweep, inproc_sweep, sweep_dir):
    assert inproc_sweep["ran"] == N_POINTS
    assert _table(sweep_dir / "out-0" / "results.csv") == \
        _table(sweep_dir / "out-ray" / "results.csv")


def test_half_written_row_is_redone_and_only_missing_points_run(inproc_sweep, sweep_dir,
                                                                tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(sweep_dir / "out-0", out)
    (out / "results.csv").unlink()
    lines = (out / "points.jsonl").read_text().splitlines(keepends=True)
    kept = lines[:1 + 7]
    (out / "points.jsonl").write_text("".join(kept) + lines[8][:len(lines[8]) // 2])
    res = _sweep(sweep_dir / "sweep.toml", out, "--workers", "0")
    assert (res["ran"], res["resumed"], res["discarded"]) == (3, 7, 1)
    assert (out / "points.jsonl").read_text().splitlines(keepends=True)[:8] == kept
    assert _table(out / "results.csv") == _table(sweep_dir / "out-0" / "results.csv")


def test_killed_sweep_resumes_from_completed_points(sweep_dir, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "neurosim.cli.main", "sweep", "--config",
           str(sweep_dir / "one.toml"), "--out", str(out), "--workers", "0", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "points.jsonl"
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 2:      # header + one row
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    done = sum(1 for line in log.read_text().split("\n")[1:-1]
               if line.startswith("{") and line.endswith("}"))
    res = _sweep(sweep_dir / "one.toml", out, "--workers", "0")
    assert res["points"] == 5 and res["resumed"] == done and res["ran"] == 5 - done
    assert [r["status"] for r in res["rows"]] == ["ok"] * 5


# ----------------------------------------------------------------------------- bad input
def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


BASE = 'models = ["meta-spikeformer-tiny"]\nchips = ["speck-xl"]\nmodes = ["async-windowed"]\n' \
       'workloads = ["digits"]\n'


@pytest.mark.parametrize("text,msg", [
    (BASE + 'chip = ["x"]\n', "unknown key (did you mean 'chips'?)"),
    (BASE + '[overides]\n', "unknown key (did you mean 'overrides'?)"),
    (BASE + '[overrides]\n"timing.fifo_dept" = [4]\n', "did you mean 'timing.fifo_depth'"),
    (BASE + 'n = 0\n', "n: must be an integer >= 1"),
    (BASE.replace('"async-windowed"', '"async-windwed"'), "did you mean 'async-windowed'"),
    (BASE.replace('"speck-xl"', '"tianjic-x16"'), "is a sync chip and runs sync"),
    (BASE.replace('"speck-xl"', '"tianjic-x16"').replace('"async-windowed"', '"sync"')
     + '[overrides]\n"timing.fifo_depth" = [4]\n', "is a parameter of none of the chips"),
    (BASE + '[overrides]\n"timing.fifo_depth" = [0, 4]\n', "must be positive, got 0"),
    (BASE.replace('"digits"', '"digit"'), "did you mean 'digits'"),
    (BASE.replace('["meta-spikeformer-tiny"]', '[{zoo = "autost-tine"}]'),
     "did you mean autost-tiny"),
    (BASE.replace('["meta-spikeformer-tiny"]', '["nope.safetensors"]'),
     "neither a file"),
])
def test_bad_sweep_files(tmp_path, capsys, text, msg):
    assert main(["sweep", "--config", str(_write(tmp_path, text)), "--out",
                 str(tmp_path / "o"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "bad.toml" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address(tmp_path, capsys):
    p = _write(tmp_path, BASE)
    assert main(["sweep", "--config", str(p), "--ray-address", f"127.0.0.1:{_free_port()}"]) == 2
    assert "cannot reach a Ray cluster at 127.0.0.1:" in capsys.readouterr().err
    assert main(["sweep", "--config", str(p), "--workers", "0", "--ray-address", "x:1"]) == 2
    assert "give one or the other" in capsys.readouterr().err


def test_other_sweeps_results_are_not_mixed_in(inproc_sweep, sweep_dir, tmp_path, capsys):
    out = tmp_path / "mixed"
    shutil.copytree(sweep_dir / "out-0", out)
    assert main(["sweep", "--config", str(sweep_dir / "one.toml"), "--out", str(out),
                 "--workers", "0"]) == 2
    assert "holds the results of another run" in capsys.readouterr().err


def test_points_and_skips(sweep_dir):
    cfg = load_sweep_config(sweep_dir / "sweep.toml")
    pts, skipped = cfg.points()
    assert len(pts) == N_POINTS and len({p.key for p in pts}) == N_POINTS
    assert any("collapse to one point" in s for s in skipped)
    assert load_sweep_config(sweep_dir / "sweep.toml").digest() == cfg.digest()
    with pytest.raises(SweepConfigError):
        load_sweep_config(_write(sweep_dir, BASE + "modes2 = 1\n"))


# ----------------------------------------------------------------------------- parts
def test_chip_variant_goes_through_the_chip_files():
    c = chip_variant("speck-xl", {"timing.fifo_depth": 8})
    assert c.timing.fifo_depth == 8 and c.name == "speck-xl[fifo_depth=8]"
    assert "neurosim sweep override" in c.provenance["timing.fifo_depth"]
    t = chip_variant("tianjic-x16")
    assert applies(c, "timing.fifo_depth") and not applies(t, "timing.fifo_depth")
    assert applies(t, "timing.clock_hz") and applies(t, "energy_overrides.static_power_w")
    with pytest.raises(ValueError, match="only used by async chips"):
        chip_variant("tianjic-x16", {"timing.fifo_depth": 8})
    with pytest.raises(KeyError, match="did you mean 'mesh.hop_latency_ns'"):
        chip_variant("speck-xl", {"mesh.hop_latency_n": 8})


def test_result_log(tmp_path):
    p = tmp_path / "log.jsonl"
    log = ResultLog(p, {"run": 1})
    log.append("a", {"v": 1})
    log.append("b", {"v": 2})
    with open(p, "a") as f:
        f.write('{"key": "c", "v"')                        # killed while writing
    again = ResultLog(p, {"run": 1})
    assert sorted(again.done) == ["a", "b"] and again.discarded == 1
    assert p.read_text().endswith('"v": 2}\n')
    with pytest.raises(ResultLogError, match="another run"):
        ResultLog(p, {"run": 2})
    assert ResultLog(p, {"run": 2}, restart=True).done == {}
    p.write_text('{"head')                                  # even the header cut short
    assert ResultLog(p, {"run": 3}).done == {}


def test_in_process_executor_is_lazy_and_in_order():
    calls = []

    def f(x, y=0):
        calls.append(x)
        return x + y

    ex = InProcess()
    a = ex.submit(f, 1)
    b = ex.submit(f, 2, y=a)
    assert calls == []
    got = list(ex.as_completed([a, b]))
    assert [v for _, v in got] == [1, 3] and calls == [1, 2]
    with pytest.raises(ExecutorError, match=">= 0"):
        with make_executor(-1):
            pass


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10, allow_subnormal=False),
                          st.floats(0, 1, allow_subnormal=False)), min_size=1, max_size=12))
def test_pareto_front_property(pts):
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    front = pareto_front(xs, ys)

    def dominates(j, i):
        return xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j] < xs[i] or ys[j] > ys[i])
    assert front
    for i in range(len(pts)):
        if i in front:
            assert not any(dominates(j, i) for j in range(len(pts)))
        else:
            assert any(dominates(j, i) for j in front)


def test_pareto_front_examples():
    assert pareto_front([1, 2, 3], [0.5, 0.9, 0.7]) == [0, 1]
    assert pareto_front([1, 2, 3], [1, 2, 0.5], maximize_y=False) == [0, 2]


def test_fits_chip_check():
    import numpy as np

    from models.search import Arch, get_space
    from neurosim.run.search_eval import fits_reason
    i = get_space("micro-tiny").inputs
    x = np.random.default_rng(0).random((4, i.in_channels, i.img_size, i.img_size),
                                        dtype=np.float32)
    a = Arch(24, (3,), (4,))
    assert fits_reason(a, i, "speck-xl", x) is None
    assert "does not fit speck" in fits_reason(a, i, "speck", x)


def test_pareto_labels_group_points_that_would_overprint():
    """Points within one cell of the label grid (log x) share a label; distant ones do not."""
    from neurosim.report.pareto import CELLS, _cells
    xs = [1e-3, 1.001e-3, 1.0, 0.5]
    ys = [0.9, 0.9, 0.9, 1.0]
    cells = _cells(xs, ys, ylog=False)
    assert cells[0] == cells[1] and len(set(cells)) == 3
    assert all(0 <= c <= CELLS for cell in cells for c in cell)
    assert _cells([2.0, 2.0], [1.0, 1.0], ylog=True) == [(0, 0), (0, 0)]   # no range: one cell
