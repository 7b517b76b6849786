"""Run configuration files: ``neurosim simulate --config run.toml``.

A run configuration is a TOML file whose top-level keys are the command's flags, spelt without
the dashes, with ``_`` or ``-`` between words::

    checkpoint = "meta-spikeformer-tiny"
    chip = "speck-xl"
    n = 50
    async_mode = "free"          # --async-mode free
    power_gating = "idle"
    quiet = true                 # a switch: true gives it, false leaves it out
    chips = ["tianjic-x16", "speck-xl"]   # comma-separated flags take a list (or the string)
    set = {T = 2}                # repeated KEY=VALUE flags take a table

The file is read before the command line is parsed: each key becomes its flag, placed before
the command line's own flags, so a flag given on the command line overrides the file (for
repeated flags such as ``--set``, the command line's come last and win per key). Values are
taken as if typed (paths relative to the working directory). The keys are derived from the
command's argparse parser, so every flag is expressible, including flags added later. An
unknown key is an error naming the file and the key, with the closest known key.

A command whose own ``--config`` names a file of its own format (``sweep``: the sweep file)
shares that file: keys naming the command's flags (``out``, ``workers``, ``restart``, ...) are
applied as above, the others belong to the sweep file, which checks them (``flag_keys``).

Standard library only: ``neurosim --help`` stays light.
"""
from __future__ import annotations

import argparse
import difflib
import json
import tomllib
from pathlib import Path

from neurosim.cli.common import UsageError

OPTION = "--config"
OWN_FORMAT = {"sweep"}          # commands whose --config file has a format of its own


class ConfigError(UsageError):
    """A run configuration that cannot be applied; the message names the file and the key."""


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _norm(key: str) -> str:
    return key.lstrip("-").replace("-", "_")


def _flags(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Key -> action for every optional flag of a command but help and --config (a flag is
    reachable by its dest and by each of its long option names)."""
    out = {}
    for a in sub._actions:
        if not a.option_strings or isinstance(a, argparse._HelpAction) or a.dest == "config":
            continue
        out[_norm(a.dest)] = a
        for o in a.option_strings:
            if o.startswith("--"):
                out[_norm(o)] = a
    return out


def flag_keys(command: str, parser: argparse.ArgumentParser | None = None) -> tuple[str, ...]:
    """The keys a run configuration of ``command`` may hold (sorted; both spellings)."""
    from neurosim.cli.parser import build_parser
    sub = _commands(parser or build_parser())[command]
    keys = set(_flags(sub))
    return tuple(sorted(keys | {k.replace("_", "-") for k in keys}))


def _unknown(path: Path, command: str, key: str, known) -> ConfigError:
    close = difflib.get_close_matches(_norm(key), sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{path}: unknown key {key!r}{hint}; the keys are the flags of "
                       f"`neurosim {command}`: {', '.join(sorted(known))}")


def _scalar(path: Path, key: str, v) -> str:
    if isinstance(v, (dict, list)) or isinstance(v, bool):
        raise ConfigError(f"{path}: {key} = {v!r}: expected a single value")
    return str(v)


def _check(path: Path, key: str, action: argparse.Action, token: str) -> None:
    """Convert and check a value as argparse would, so the error names the file and key."""
    value = token
    if callable(action.type):
        try:
            value = action.type(token)
        except argparse.ArgumentTypeError as e:        # the flag's own rule, e.g. ">= 1"
            raise ConfigError(f"{path}: {key} = {token!r}: {e}") from None
        except (ValueError, TypeError):
            name = getattr(action.type, "__name__", "value")
            raise ConfigError(f"{path}: {key} = {token!r}: not a valid {name}") from None
    if action.choices is not None and value not in action.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: {key} = {token!r}: not one of "
                          f"{', '.join(map(str, action.choices))}{hint}")


def _values(path: Path, key: str, action: argparse.Action, v) -> list[str]:
    """The value tokens a key stands for (module doc: lists, tables, scalars)."""
    if isinstance(action, argparse._AppendAction):
        if isinstance(v, dict):
            return [f"{k}={json.dumps(x)}" for k, x in v.items()]
        return [_scalar(path, key, x) for x in (v if isinstance(v, list) else [v])]
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        return [_scalar(path, key, x) for x in (v if isinstance(v, list) else [v])]
    if isinstance(v, list):
        return [",".join(_scalar(path, key, x) for x in v)]
    return [_scalar(path, key, v)]


def tokens(path: Path, key: str, action: argparse.Action, v) -> list[str]:
    """Command-line tokens for ``key = v`` (``--flag=value`` so values may start with -)."""
    flag = next((o for o in action.option_strings if o.startswith("--")),
                action.option_strings[0])
    if action.nargs == 0:                                   # switches
        if not isinstance(v, bool):
            raise ConfigError(f"{path}: {key} = {v!r}: a switch takes true or false")
        return [flag] if v else []
    vals = _values(path, key, action, v)
    for t in vals:
        _check(path, key, action, t)
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        return [flag, *vals]
    return [f"{flag}={t}" for t in vals]


def _config_path(rest: list[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(OPTION)
    try:
        known, _ = pre.parse_known_args(rest)
    except SystemExit:                       # "--config" without a value: argparse says so
        return None
    return known.config


def read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"run configuration not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None


def config_tokens(command: str, sub: argparse.ArgumentParser, path: Path) -> list[str]:
    """The flags a configuration file stands for (module doc)."""
    data = read(path)
    flags = _flags(sub)
    out = []
    for key, v in data.items():
        action = flags.get(_norm(key))
        if action is None:
            if command in OWN_FORMAT:
                continue                     # the command's own file format checks it
            if _norm(key) == "config":
                raise ConfigError(f"{path}: config: a run configuration cannot name another")
            raise _unknown(path, command, key, flags)
        out += tokens(path, key, action, v)
    return out


def apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the flags of its ``--config`` file inserted right after the command name
    (before the command line's own flags, which therefore override them); unchanged when the
    command has no ``--config`` option or none is given."""
    argv = list(argv)
    commands = _commands(parser)
    i = next((k for k, t in enumerate(argv) if t in commands), None)
    if i is None or any(not t.startswith("-") for t in argv[:i]):
        return argv
    command, sub = argv[i], commands[argv[i]]
    if not any(a.dest == "config" for a in sub._actions):
        return argv
    path = _config_path(argv[i + 1:])
    if path is None:
        return argv
    return argv[:i + 1] + config_tokens(command, sub, Path(path)) + argv[i + 1:]


__all__ = ["ConfigError", "apply_config", "config_tokens", "flag_keys", "tokens"]
