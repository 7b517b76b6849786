"""Run configuration files (``neurosim simulate --config run.toml``): every flag of simulate,
compare and sweep is expressible, the command line overrides the file, bad keys and values are
named with the closest key."""
import argparse

import pytest

from neurosim.cli.config import ConfigError, apply_config, flag_keys
from neurosim.cli.main import build_parser, main
from neurosim.cli.parser import parse_sets

COMMANDS = ("simulate", "compare", "sweep")


def _flag_actions(command):
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction)).choices[command]
    return [a for a in sub._actions if a.option_strings and a.dest not in ("help", "config")]


def _example(action):
    """A value for the flag other than its default: (TOML text, command-line tokens)."""
    flag = next(o for o in action.option_strings if o.startswith("--"))
    if action.nargs == 0:
        return "true", [flag]
    if isinstance(action, argparse._AppendAction):
        return "{T = 2, dims = [8, 16]}", [flag, "T=2", flag, "dims=[8, 16]"]
    if action.choices:
        v = list(action.choices)[-1]
        return f'"{v}"', [flag, str(v)]
    for toml_value, text in (("7", "7"), ("0.25", "0.25"), ('"some-value"', "some-value")):
        try:                                     # the first value the flag's type accepts
            if action.type is not None:
                action.type(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            continue
        return toml_value, [flag, text]
    raise AssertionError(f"no example value for {flag}")


def _base(command, tmp_path, dest):
    """The rest of a valid command line (--checkpoint is required, unless under test)."""
    if command == "sweep" or dest == "checkpoint":
        return ["--config", str(tmp_path / "run.toml")]
    return ["--checkpoint", "ck", "--config", str(tmp_path / "run.toml")]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_is_expressible_and_means_the_same(command, tmp_path):
    parser = build_parser()
    actions = _flag_actions(command)
    assert len(actions) >= 6
    for a in actions:
        toml_value, cli = _example(a)
        key = a.dest
        (tmp_path / "run.toml").write_text(f"{key} = {toml_value}\n")
        from_file = parser.parse_args(apply_config(parser, [command, *_base(command, tmp_path, a.dest)]))
        from_cli = parser.parse_args([command, *_base(command, tmp_path, a.dest), *cli])
        assert getattr(from_file, a.dest) == getattr(from_cli, a.dest), key
        assert getattr(from_file, a.dest) != a.default, key       # the file did something
        # the flag's own spelling works too (calib-n as well as calib_n)
        spelt = next(o for o in a.option_strings if o.startswith("--"))[2:]
        (tmp_path / "run.toml").write_text(f'"{spelt}" = {toml_value}\n')
        again = parser.parse_args(apply_config(parser, [command, *_base(command, tmp_path, a.dest)]))
        assert getattr(again, a.dest) == getattr(from_cli, a.dest), spelt


def test_command_line_overrides_the_file(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('checkpoint = "meta-spikeformer-tiny"\nchips = ["tianjic-x16", "speck-xl"]\n'
                 'n = 3\nquiet = true\nmodes = "sync"\n')
    parser = build_parser()
    a = parser.parse_args(apply_config(parser, ["compare", "--config", str(f), "--n", "5"]))
    assert (a.checkpoint, a.chips, a.n, a.quiet, a.modes) == (
        "meta-spikeformer-tiny", "tianjic-x16,speck-xl", 5, True, "sync")
    f.write_text('model = "meta-spikeformer-tiny"\n')     # train has no --config: untouched
    assert apply_config(parser, ["train", "--config", str(f)]) == ["train", "--config", str(f)]
    f.write_text('checkpoint = "x"\nchip = "speck-xl"\nquiet = false\n')
    assert apply_config(parser, ["simulate", "--config", str(f), "--chip", "tianjic"]) == [
        "simulate", "--checkpoint=x", "--chip=speck-xl", "--config", str(f), "--chip", "tianjic"]


def test_repeated_flags_from_the_file_and_the_command_line_merge_per_key(tmp_path):
    from neurosim.cli.config import tokens
    action = argparse.ArgumentParser().add_argument("--set", action="append")
    toks = tokens(tmp_path / "f.toml", "set", action, {"T": 2, "D": 1})
    p = argparse.ArgumentParser()
    p.add_argument("--set", action="append")
    args = p.parse_args(toks + ["--set", "T=4"])
    assert parse_sets(args.set) == {"T": 4, "D": 1}


@pytest.mark.parametrize("text,needles", [
    ('checkpoint = "x"\nchp = "speck-xl"\n', ["run.toml", "unknown key 'chp'",
                                             "did you mean 'chip'?"]),
    ('checkpoint = "x"\ncalib = 3\n', ["unknown key 'calib'", "did you mean 'calib_n'?"]),
    ('checkpoint = "x"\nn = "three"\n', ["run.toml", "n = 'three'", "not a valid int"]),
    ('checkpoint = "x"\nfifo_depth = 0\n', ["fifo_depth = '0'", "must be an integer >= 1"]),
    ('checkpoint = "x"\nasync_mode = "fre"\n', ["not one of windowed, free",
                                               "did you mean 'free'?"]),
    ('checkpoint = "x"\nquiet = "yes"\n', ["quiet", "a switch takes true or false"]),
    ('checkpoint = "x"\nchip = {name = "a"}\n', ["chip", "expected a single value"]),
    ('checkpoint = "x"\nconfig = "other.toml"\n', ["cannot name another"]),
    ('checkpoint = "x"\nn = [1,\n', ["run.toml", "malformed TOML"]),
])
def test_bad_config_files_exit_2_naming_file_and_key(capsys, tmp_path, text, needles):
    f = tmp_path / "run.toml"
    f.write_text(text)
    rc = main(["simulate", "--config", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("neurosim simulate: error: "), err
    assert "Traceback" not in err
    for s in needles:
        assert s in err, (s, err)


def test_missing_config_file(capsys, tmp_path):
    rc = main(["compare", "--config", str(tmp_path / "none.toml")])
    err = capsys.readouterr().err
    assert rc == 2 and "run configuration not found" in err and "none.toml" in err


def test_sweep_file_holds_the_sweep_flags_too(tmp_path):
    from neurosim.run.sweep_config import SweepConfigError, load_sweep_config
    f = tmp_path / "s.toml"
    body = ('models = [{zoo = "meta-spikeformer-tiny"}]\nchips = ["tianjic-x16"]\n'
            'modes = ["sync"]\nworkloads = ["digits"]\nn = 2\n')
    f.write_text(body + f'out = "{tmp_path / "o"}"\nworkers = 0\nrestart = true\n')
    parser = build_parser()
    a = parser.parse_args(apply_config(parser, ["sweep", "--config", str(f), "--workers", "1"]))
    assert (a.out, a.workers, a.restart, a.config) == (str(tmp_path / "o"), 1, True, str(f))
    cfg = load_sweep_config(f, flag_keys=flag_keys("sweep"))
    assert cfg.settings["n"] == 2 and cfg.chips == ("tianjic-x16",)
    f.write_text(body + "wrkers = 0\n")
    with pytest.raises(SweepConfigError, match="did you mean 'workers'"):
        load_sweep_config(f, flag_keys=flag_keys("sweep"))
    f.write_text(body + "workers = 0\n")
    with pytest.raises(SweepConfigError, match="unknown key"):
        load_sweep_config(f)                                 # outside the command: not a key


def test_config_error_is_a_usage_error():
    from neurosim.cli.common import UsageError
    assert issubclass(ConfigError, UsageError)
    assert "calib_n" in flag_keys("simulate") and "calib-n" in flag_keys("simulate")
    assert "config" not in flag_keys("simulate")
