"""The asynchronous engine's settings on the command line: ``--fifo-depth``, ``--overflow``,
``--link-events-per-s``, ``--settle-ns``, ``--async-realisation`` on simulate and compare,
with clear errors for bad values."""
import json

import pytest

import models
from neurosim.cli.main import build_parser, main
from neurosim.cli.simulate import async_options
from tests.zoo_cases import small_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    return models.save_checkpoint(small_model("meta-sdsa3"), d / "meta-small.safetensors")


@pytest.mark.parametrize("command", ["simulate", "compare"])
@pytest.mark.parametrize("flags,message", [
    (["--fifo-depth", "0"], "--fifo-depth: must be an integer >= 1 event, got '0'"),
    (["--fifo-depth", "-3"], "--fifo-depth: must be an integer >= 1 event, got '-3'"),
    (["--fifo-depth", "2.5"], "--fifo-depth: must be an integer >= 1 event, got '2.5'"),
    (["--overflow", "explode"], "--overflow: invalid choice: 'explode'"),
    (["--link-events-per-s", "0"], "--link-events-per-s: must be a rate > 0 events/s"),
    (["--link-events-per-s", "inf"], "--link-events-per-s: must be a rate > 0 events/s"),
    (["--settle-ns", "-1"], "--settle-ns: must be a time >= 0 ns, got '-1'"),
    (["--async-realisation", "psychic"], "--async-realisation: invalid choice"),
])
def test_bad_async_settings_are_rejected_by_name(capsys, command, flags, message):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--checkpoint", "x", *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_async_flags_become_engine_settings():
    args = build_parser().parse_args(
        ["compare", "--checkpoint", "x", "--fifo-depth", "16", "--overflow", "drop",
         "--link-events-per-s", "2e7", "--settle-ns", "250", "--async-realisation", "timeout"])
    assert async_options(args) == {"fifo_depth": 16, "overflow": "drop",
                                   "link_events_per_s": 2e7, "settle_ns": 250.0,
                                   "realisation": "timeout"}
    assert async_options(build_parser().parse_args(["simulate", "--checkpoint", "x"])) == {}


def test_simulate_applies_them_and_a_sync_chip_refuses_them(capsys, ckpt):
    rc = main(["simulate", "--checkpoint", str(ckpt), "--chip", "speck-xl", "--n", "1",
               "--calib-n", "8", "--fifo-depth", "16", "--overflow", "drop",
               "--link-events-per-s", "1e7", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    st = out["stats"]
    assert st["fifo_depth"] == 16 and st["overflow"] == "drop"
    assert st["link_events_per_s"] == 1e7 and st["max_fifo_occupancy"] <= 16
    rc = main(["simulate", "--checkpoint", str(ckpt), "--chip", "tianjic-x16", "--n", "1",
               "--calib-n", "8", "--fifo-depth", "16"])
    err = capsys.readouterr().err
    assert rc != 0 and "--fifo-depth apply to asynchronous chips" in err


def test_compare_gives_them_to_the_async_runs_only(capsys, ckpt):
    rc = main(["compare", "--checkpoint", str(ckpt), "--chips", "tianjic-x16,speck-xl",
               "--n", "1", "--calib-n", "8", "--modes", "sync,async-windowed",
               "--check-fit", "", "--fifo-depth", "8", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [r["mode"] for r in out["rows"]] == ["sync", "async-windowed"]
