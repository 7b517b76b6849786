"""The neurosim command line, run in-process as a user would: output, files, exit codes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import models
from neurosim.cli.main import build_parser, main
from tests.zoo_cases import small_model

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["models", "chips", "train", "lower", "simulate", "compare", "report", "bench", "demo"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    return models.save_checkpoint(small_model("meta-sdsa3"), d / "meta-small.safetensors")


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_help_lists_every_command_and_each_help_reads(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for c in COMMANDS:
        assert c in out
    for c in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([c, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "usage: neurosim " + c in text
        assert len(text.splitlines()) >= 4
    parser = build_parser()
    sim = parser.parse_args(["simulate", "--checkpoint", "x"])
    assert (sim.chip, sim.n, sim.async_mode, sim.workload) == ("tianjic-x16", 100, "windowed",
                                                               "digits")


def test_simulate_prints_and_writes_a_report_that_rerenders(capsys, ckpt, tmp_path):
    out_dir = tmp_path / "run"
    rc, out, _ = run(capsys, "simulate", "--checkpoint", ckpt, "--chip", "tianjic-x16",
                     "--n", 3, "--calib-n", 8, "--out", out_dir)
    assert rc == 0
    for s in ("meta-spikeformer-tiny on tianjic-x16/sync: digits test split, 3 inputs",
              "accuracy", "latency / inference", "energy / inference", "synaptic AC",
              "energy table tianjic)", "average power", "static power gating  none", "ticks at 300 MHz", "report written to"):
        assert s in out, s
    md = (out_dir / "report.md").read_bytes()
    rc, out, _ = run(capsys, "simulate", "--checkpoint", ckpt, "--n", 2, "--calib-n", 8,
                     "--energy-table", "45nm", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["n"] == 2 and d["mode"] == "sync" and d["chip"] == "tianjic-x16"
    assert d["energy"]["table"] == "45nm" and d["energy"]["static_j"] == 0.0
    assert d["energy"]["total_j"] == d["energy_per_inference_j"] > 0
    assert d["counts_per_inference"]["ac"] > 0 and d["latency_per_inference_s"] > 0
    rc, out, _ = run(capsys, "report", out_dir)
    assert rc == 0 and "re-rendered" in out and "report.md" in out
    assert (out_dir / "report.md").read_bytes() == md


def test_compare_with_fit_check(capsys, ckpt, tmp_path):
    rc, out, _ = run(capsys, "compare", "--checkpoint", ckpt, "--n", 2,
                     "--calib-n", 8, "--modes", "sync,async-windowed", "--check-fit", "tianjic",
                     "--json")
    assert rc == 0
    d = json.loads(out)
    assert [(r["mode"], r["n"]) for r in d["rows"]] == [("sync", 2), ("async-windowed", 2)]
    assert d["ratios"][0]["n"] == 2 and set(d["ratios"][0]["ratio_by_policy"]) == {
        "none", "unused", "idle"}
    assert all(r["agreement"] == 1.0 for r in d["rows"])
    assert not d["fit"]["tianjic"]["fits"] and d["fit"]["tianjic"]["violations"]


def test_demo_on_given_checkpoints_in_parallel(capsys, ckpt, tmp_path):
    import shutil
    cks = tmp_path / "cks"
    cks.mkdir()
    for name in ("alpha", "beta"):                 # the same model twice, one per process
        shutil.copy(ckpt, cks / f"{name}.safetensors")
    out_dir = tmp_path / "demo"
    rc, out, _ = run(capsys, "demo", "--checkpoints", cks, "--n", 2,
                     "--jobs", 2, "--out", out_dir)
    assert rc == 0
    for s in ("alpha", "beta", "tianjic-x16/sync", "speck-xl/async-windowed",
              "speck-xl/async-free", "alpha does not fit tianjic", "does not fit speck",
              "e.g. layer", "summary.md", "2 parallel job(s)", "the same first 2 test inputs",
              "sync vs async energy per inference", "dynamic only", "gating unused",
              "What drives the ratio"):
        assert s in out, s
    summary = (out_dir / "summary.md").read_text()
    assert "| alpha | digits | tianjic-x16/sync | 2 |" in summary
    assert (out_dir / "energy_vs_accuracy.png").is_file()
    a, b = (json.loads((out_dir / n / "result.json").read_text()) for n in ("alpha", "beta"))
    for rec in (a, b):
        rec.pop("model")                           # wall-clock times are in timing.json
    assert a == b                                  # processes do not change results


@pytest.mark.parametrize("argv,needles", [
    (["simulate", "--chip", "tianjik", "--n", "1"], ["unknown chip 'tianjik'", "tianjic-x16"]),
    (["simulate", "--n", "100000"], ["--n 100000", "359"]),
    (["simulate", "--n", "0"], ["at least 1"]),
    (["simulate", "--n", "1", "--energy-table", "7nm"], ["unknown energy table", "45nm"]),
    (["simulate", "--n", "1", "--chip", "tianjic"], ["does not fit chip 'tianjic'", "hint"]),
    (["compare", "--n", "1", "--chips", "speck-xl,nope"], ["unknown chip 'nope'"]),
    (["compare", "--n", "1", "--modes", "warp"], ["unknown mode"]),
    (["lower", "--calib-n", "0"], ["--calib-n must be >= 1", "got 0"]),       # issue 13
])
def test_bad_input_exits_2_with_a_clear_message(capsys, ckpt, argv, needles):
    rc, out, err = run(capsys, *argv[:1], "--checkpoint", ckpt, "--calib-n", 4, *argv[1:])
    assert rc == 2, err
    assert f"neurosim {argv[0]}: error:" in err
    for s in needles:
        assert s in err, (s, err)


def test_missing_checkpoint_and_run_dir(capsys, tmp_path):
    rc, _, err = run(capsys, "simulate", "--checkpoint", tmp_path / "none.safetensors")
    assert rc == 2 and "checkpoint not found" in err and "none.safetensors" in err
    rc, _, err = run(capsys, "report", tmp_path)
    assert rc == 2 and str(tmp_path / "result.json") in err
    rc, _, err = run(capsys, "demo", "--checkpoints", tmp_path)
    assert rc == 2 and "no *.safetensors" in err


def test_existing_commands_still_work(capsys, ckpt):
    rc, out, _ = run(capsys, "models", "--json")
    assert rc == 0 and "meta-spikeformer-tiny" in json.loads(out)
    rc, out, _ = run(capsys, "lower", "--checkpoint", ckpt, "--calib-n", 4, "--json")
    assert rc == 0 and json.loads(out)["totals"]["nodes"] > 10


def test_catalogue_and_registry_hold_the_same_models():
    """models.catalog (torch-free, what `neurosim models` prints) cannot drift from the zoo."""
    from models import catalog
    from models.checkpoint import list_shipped
    assert catalog.list_models() == models.list_models()
    assert {catalog.family_of(n) for n in catalog.list_models()} == set(models.list_families())
    for name in catalog.list_models():
        assert catalog.family_of(name) == models.model_defaults(name)[0]
        assert catalog.describe(name) and "\n" not in catalog.describe(name)
    assert catalog.list_shipped() == list_shipped()
    for ck, info in catalog.shipped().items():
        assert info["model"] == models.read_metadata(models.shipped_checkpoint(ck))["model"]["name"]


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["models", "--long"], ["chips"],
                                  ["chips", "--json"], ["simulate", "--help"]])
def test_light_commands_load_no_torch_or_numba(argv):
    code = ("import sys\nfrom neurosim.cli.main import main\ntry:\n    rc = main(%r)\n"
            "except SystemExit as e:\n    rc = e.code\nassert rc == 0, rc\n"
            "print(','.join(sorted({'torch', 'numba'} & set(sys.modules))), file=sys.stderr)"
            % argv)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", f"neurosim {' '.join(argv)} loaded {r.stderr.strip()}"


def test_chips_lists_every_shipped_chip(capsys):
    from chips.spec import list_chips, load_chip
    from neurosim.cli.info import _fmt_hz
    rc, out, _ = run(capsys, "chips")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["chip", "kind", "cores", "clock"]
    rows = {ln.split()[0]: ln.split() for ln in lines[2:]}
    assert sorted(rows) == list_chips()
    for name in list_chips():
        chip = load_chip(name)
        kind, cores, clock = rows[name][1], int(rows[name][2]), rows[name][3:5]
        assert (kind, cores) == (chip.kind, chip.n_cores)
        hz = chip.timing.clock_hz if chip.kind == "sync" else None    # e.g. "300 MHz", "1 GHz"
        assert (clock[0] == "-" if hz is None else " ".join(clock) == _fmt_hz(hz))
        assert chip.energy().name in rows[name] and chip.description in out
    rc, out, _ = run(capsys, "chips", "--json")
    assert rc == 0
    got = {c["name"]: c for c in json.loads(out)}
    assert sorted(got) == list_chips()
    for name, c in got.items():
        chip = load_chip(name)
        assert c["n_cores"] == chip.n_cores and c["kind"] == chip.kind
        table_w = chip.energy().static_power_w
        assert c["static_power_w"] == (table_w if table_w is not None else
                                       chip.static_power_w())
        assert c["power_gating"] == chip.power.power_gating
        assert (c["clock_hz"] is None) == (chip.kind == "async")
    assert got["tianjic-x16"]["clock_hz"] == 300e6 and got["speck-xl"]["n_cores"] == 64


def test_models_long_names_families_and_shipped_checkpoints(capsys):
    from models import catalog
    rc, out, _ = run(capsys, "models")
    assert rc == 0
    table = out.split("\n\n")[0].splitlines()[2:]            # below the header and rule
    assert [ln.split()[0] for ln in table] == models.list_models()
    for ln in table:                                         # name, family, parameters, ...
        name, _, params = ln.split()[:3]
        assert int(params.replace(",", "")) == catalog.parameters(name)
    rc, out, _ = run(capsys, "models", "--json")
    assert rc == 0 and json.loads(out) == models.list_models()
    rc, out, _ = run(capsys, "models", "--long", "--json")
    assert rc == 0
    d = json.loads(out)
    assert [m["name"] for m in d["models"]] == models.list_models()
    assert sorted(d["shipped_checkpoints"]) == models.list_shipped()
    tiny = next(m for m in d["models"] if m["name"] == "meta-spikeformer-tiny")
    assert "meta-spikeformer-tiny" in tiny["shipped_checkpoints"] and tiny["description"]
    assert tiny["parameters"] == 82_858
    assert d["shipped_checkpoints"]["meta-spikeformer-tiny"]["parameters"] == 82_858
    rc, out, _ = run(capsys, "models", "-l")
    assert rc == 0 and "e-spikeformer-tiny" in out
    assert "--checkpoint and models.load_checkpoint take these names" in out
    assert catalog.describe("e-spikeformer-tiny") in out


def test_catalogue_parameter_counts_are_the_models_counts():
    """`neurosim models` prints precomputed counts (no torch); they equal the real models'."""
    import torch
    from models import catalog
    assert sorted(catalog.PARAMETERS) == models.list_models()
    for name in models.list_models():
        with torch.device("meta"):                           # shapes only, no memory
            m = models.create(name)
        assert sum(p.numel() for p in m.parameters()) == catalog.parameters(name), name


@pytest.mark.parametrize("argv,name", [(["chips"], "cli_chips.txt"),
                                       (["models"], "cli_models.txt"),
                                       (["models", "--long"], "cli_models_long.txt")])
def test_listing_output_is_golden(capsys, golden, argv, name):
    """What `neurosim chips` / `neurosim models` print, byte for byte (pytest --update-golden
    after an intended change to a chip file, the zoo or the table layout)."""
    rc, out, _ = run(capsys, *argv)
    assert rc == 0
    golden.check_text(name, out)


def test_shipped_names_work_where_paths_do_and_typos_list_them(capsys):
    m = models.load_checkpoint("meta-spikeformer-tiny")
    assert m.neurosim_config["name"] == "meta-spikeformer-tiny"
    assert models.read_metadata("e-spikeformer-tiny")["model"]["name"] == "e-spikeformer-tiny"
    with pytest.raises(FileNotFoundError) as e:
        models.load_checkpoint("meta-spikeformer-tiyn")
    msg = str(e.value)
    assert "meta-spikeformer-tiyn" in msg and "did you mean 'meta-spikeformer-tiny'" in msg
    for shipped in models.list_shipped():
        assert shipped in msg
    rc, _, err = run(capsys, "lower", "--checkpoint", "e-spikeformer-tinny")
    assert rc == 2 and "e-spikeformer-tinny" in err and "meta-spikeformer-tiny-motion" in err


def test_simulate_from_a_run_configuration_equals_the_flags(capsys, ckpt, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'checkpoint = "{ckpt}"\nchip = "tianjic-x16"\nn = 2\ncalib_n = 4\n'
                   'energy_table = "45nm"\njson = true\n')
    rc, from_file, _ = run(capsys, "simulate", "--config", cfg)
    assert rc == 0
    rc, from_flags, _ = run(capsys, "simulate", "--checkpoint", ckpt, "--chip", "tianjic-x16",
                            "--n", 2, "--calib-n", 4, "--energy-table", "45nm", "--json")
    assert rc == 0
    a, b = json.loads(from_file), json.loads(from_flags)
    assert a == b and a["n"] == 2 and a["energy"]["table"] == "45nm"
    rc, out, _ = run(capsys, "simulate", "--config", cfg, "--n", 1)   # the flag wins
    assert rc == 0 and json.loads(out)["n"] == 1


def test_simulate_progress_counts_inputs_with_an_eta(capsys, ckpt, monkeypatch):
    import argparse
    from neurosim.cli.simulate import progress_chunk
    chatty, quiet = argparse.Namespace(quiet=False, json=False), argparse.Namespace(quiet=True)
    assert progress_chunk(chatty, 100, 128) == 5              # ~20 updates per run
    assert progress_chunk(chatty, 10, 128) == 4 and progress_chunk(chatty, 5000, 64) == 64
    assert progress_chunk(quiet, 100, 128) == 128             # no bar: whole engine batches
    from neurosim.cli import simulate as sim_cmd
    real = sim_cmd.progress_bar

    def eager(*a, **k):                                       # draw every update
        bar = real(*a, **k)
        bar.mininterval, bar.miniters, bar.dynamic_miniters = 0, 0, False
        return bar
    monkeypatch.setattr(sim_cmd, "progress_bar", eager)
    rc, _, err = run(capsys, "simulate", "--checkpoint", ckpt, "--n", 8, "--calib-n", 4)
    assert rc == 0
    for s in ("simulating tianjic-x16/sync", "4/8", "8/8", "<"):  # inputs done, ETA (a<b)
        assert s in err, (s, err)


def test_demo_runs_free_mode_on_event_workloads_only_when_asked():
    """Free-running mode integrates every event in time order (seconds per input on the
    event workloads): the demo leaves it out there unless --free-on-events, and says so."""
    import models
    from neurosim.cli.demo import ALL_MODES, EVENT_MODES, FREE_SKIPPED, _demo_plan
    paths = {n: models.shipped_checkpoint(n)
             for n in ("meta-spikeformer-tiny", "meta-spikeformer-tiny-ndigits")}
    plan = _demo_plan(paths, 2)
    assert plan["meta-spikeformer-tiny"]["modes"] == ALL_MODES
    assert plan["meta-spikeformer-tiny-ndigits"]["modes"] == EVENT_MODES
    assert "async-free" not in EVENT_MODES
    assert _demo_plan(paths, 2, free_on_events=True)["meta-spikeformer-tiny-ndigits"]["modes"] \
        == ALL_MODES
    assert "--free-on-events" in FREE_SKIPPED
    assert build_parser().parse_args(["demo", "--free-on-events"]).free_on_events
