"""The argument parser of ``neurosim`` and its argument helpers.

Imports only the standard library and ``neurosim.cli.common`` (itself standard library only):
each subcommand's ``fn`` names its command module and function as strings and imports them when
the command runs, so ``neurosim --help`` (and every ``COMMAND --help``) loads nothing heavy.
"""
from __future__ import annotations

import argparse
import json
from importlib import import_module

from neurosim.cli.common import DEFAULT_CHIPS, DEMO_N_ASYNC, DEMO_OUT, REAL_CHIPS, UsageError


class Command:
    """A command function ``neurosim.cli.<module>.<name>(args) -> int``, imported on call."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, args) -> int:
        return getattr(import_module(f"neurosim.cli.{self.module}"), self.name)(args)

    def __repr__(self) -> str:
        return f"Command({self.module!r}, {self.name!r})"


def parse_sets(items: list[str]) -> dict:
    """``key=value`` overrides; values parse as JSON when they can (numbers, lists, dicts)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def lowering_args(sp, checkpoint_help="a .safetensors checkpoint, or the name of a shipped "
                                      "one (see models/checkpoints/)") -> None:
    sp.add_argument("--checkpoint", required=True, help=checkpoint_help)
    sp.add_argument("--workload", default="digits",
                    help="data set: calibration (train split) and inputs (default: digits)")
    sp.add_argument("--calib-n", type=int, default=64,
                    help="training samples used to calibrate graded-value steps (default 64)")
    sp.add_argument("--weight-bits", type=int, default=8, help="weight precision (default 8)")
    sp.add_argument("--repconv", choices=["fused", "unfused"], default="fused",
                    help="lower RepConv as one fused 3x3 conv or as its three stages")
    sp.add_argument("--ssc", action="store_true",
                    help="spike sparse convolution on stride-1 convs (default: vanilla)")


def run_args(sp, n_default: int = 100) -> None:
    sp.add_argument("--n", type=int, default=n_default,
                    help=f"number of inputs, the first n of the split (default {n_default})")
    sp.add_argument("--split", default="test", choices=["test", "train"],
                    help="which split supplies the inputs (default: test)")


def output_args(sp, json_help: str | None = None, quiet_help: str | None = None) -> None:
    sp.add_argument("--quiet", action="store_true", help=quiet_help)
    sp.add_argument("--json", action="store_true", help=json_help)


def _add(sub, name: str, command: Command, help_: str, desc: str | None = None,
         epilog: str | None = None):
    sp = sub.add_parser(name, help=help_, description=desc or help_, epilog=epilog,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.set_defaults(fn=command)
    return sp


# ----------------------------------------------------------------------------- commands
def _add_info(sub) -> None:
    sp = _add(sub, "models", Command("info", "cmd_models"), "list the model zoo's registered "
              "names", desc="List the model zoo's registered names (with --long: family, "
              "description and shipped checkpoints, which --checkpoint takes by name).")
    sp.add_argument("--long", "-l", action="store_true",
                    help="also each model's family, description and shipped checkpoints")
    sp.add_argument("--json", action="store_true", help="print a JSON list")
    sp = _add(sub, "chips", Command("info", "cmd_chips"), "list the shipped chips: kind, "
              "cores, clock, energy table, static power",
              desc="List the chips shipped in chips/*.toml (the names --chip and --chips "
                   "take): kind (sync/async), cores, clock ('-' for clockless chips), energy "
                   "table, static power and a one-line description.")
    sp.add_argument("--json", action="store_true", help="print the chips as a JSON list")


def _add_train(sub) -> None:
    sp = _add(sub, "train", Command("train", "cmd_train"),
              "train a zoo model on a workload and write a checkpoint")
    sp.add_argument("--model", required=True, help="zoo name, e.g. meta-spikeformer-tiny "
                    "(see `neurosim models`)")
    sp.add_argument("--workload", default="digits", help="training data (default: digits)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a model argument, e.g. --set T=2 --set dims=[16,32,64,64]")
    sp.add_argument("--epochs", type=int, default=20)
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--lr", type=float, default=2e-3)
    sp.add_argument("--shift-px", type=int, default=2, help="random-shift augmentation, pixels")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    sp.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    sp.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    output_args(sp, "print the result as JSON", "no progress bar or summary")


def _add_lower(sub) -> None:
    sp = _add(sub, "lower", Command("lower", "cmd_lower"),
              "lower a checkpoint to the event-level graph and print its nodes")
    lowering_args(sp)
    sp.add_argument("--out", help="directory to write the graph to (graph.json + arrays.npz)")
    sp.add_argument("--json", action="store_true", help="print the node table as JSON")
    sp.add_argument("--quiet", action="store_true")


def _add_simulate(sub) -> None:
    sp = _add(sub, "simulate", Command("simulate", "cmd_simulate"), "run a checkpoint on one "
              "chip: accuracy, counts, energy, latency",
              desc="Lower a checkpoint, run the first --n inputs of a workload on one chip and "
                   "print accuracy, operation counts, energy and latency per inference.",
              epilog="examples:\n"
                     "  neurosim simulate --checkpoint meta-spikeformer-tiny --chip tianjic-x16 "
                     "--n 100\n"
                     "  neurosim simulate --checkpoint e-spikeformer-tiny --chip speck-xl "
                     "--async-mode free --out runs/free")
    lowering_args(sp)
    sp.add_argument("--chip", default="tianjic-x16",
                    help="chip name or TOML path (default tianjic-x16; chips/*.toml lists them)")
    run_args(sp)
    sp.add_argument("--mode", choices=["sync", "async"], default=None,
                    help="execution mode (default: the chip's own kind)")
    sp.add_argument("--async-mode", choices=["windowed", "free"], default="windowed",
                    help="async execution: windowed (exact) or free-running (default windowed)")
    sp.add_argument("--energy-table", default=None,
                    help="price the run with this energy table instead of the chip's "
                         "(e.g. 45nm; chips/energy/*.toml)")
    sp.add_argument("--out", metavar="RUN_DIR",
                    help="also write a report directory (result.json, report.md, CSVs, plots)")
    output_args(sp, "print the result as JSON", "no progress bar or summary")


def _add_compare(sub) -> None:
    sp = _add(sub, "compare", Command("simulate", "cmd_compare"),
              "run a checkpoint on several chips and modes, side by side",
              desc="Run the same inputs on every chip (sync chips in sync mode, async chips in "
                   "windowed and free-running modes), print the comparison and, with --out, "
                   "write the report, CSV tables and plots.",
              epilog="example:\n  neurosim compare --checkpoint meta-spikeformer-tiny "
                     "--chips tianjic-x16,speck-xl --n 100 --out runs/cmp")
    lowering_args(sp)
    sp.add_argument("--chips", default=DEFAULT_CHIPS,
                    help=f"comma-separated chip names (default {DEFAULT_CHIPS})")
    run_args(sp)
    sp.add_argument("--n-async", type=int, default=None, metavar="N",
                    help="run the async modes on only the first N inputs (the event-driven "
                         "engine is slower; agreement is measured on those N)")
    sp.add_argument("--modes", default=None,
                    help="only these runs: comma-separated sync, async-windowed, async-free")
    sp.add_argument("--check-fit", default=REAL_CHIPS, metavar="CHIPS",
                    help=f"also map onto these chips and list why the model does not fit "
                         f"(default {REAL_CHIPS}; '' to skip)")
    sp.add_argument("--out", metavar="RUN_DIR", help="write report.md, result.json, CSVs, plots")
    output_args(sp, "print the comparison as JSON", "no progress bar or summary")


def _add_report(sub) -> None:
    sp = _add(sub, "report", Command("report", "cmd_report"),
              "re-render a run directory's report from its result.json",
              desc="Re-draw report.md, the CSV tables and the plots of RUN_DIR from its "
                   "result.json (byte-identical to the original rendering).")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="directory written by simulate/compare "
                    "--out or by demo")
    output_args(sp, "print the written files as JSON")


def _add_bench(sub) -> None:
    sp = _add(sub, "bench", Command("bench", "cmd_bench"),
              "benchmark the simulator on this machine",
              desc="kernels: the Numba inner loops vs dense PyTorch (synaptic events per "
                   "second); model: whole-model simulation speed.")
    sp.add_argument("what", choices=["kernels", "model"], help="what to benchmark")
    sp.add_argument("--repeat", type=int, default=15, help="timed samples per kernel (kernels)")
    sp.add_argument("--json", action="store_true", help="print the full result as JSON")
    sp.add_argument("--quiet", action="store_true")


def _add_demo(sub) -> None:
    sp = _add(sub, "demo", Command("demo", "cmd_demo"), "run the shipped checkpoints on the "
              "scaled chips and write reports (what `make demo` runs)",
              desc="Lower every shipped checkpoint, run the first --n digits test images on "
                   "tianjic-x16 (sync) and speck-xl (async, windowed and free-running), compare, "
                   "and write reports and plots to runs/demo/<model>/ plus runs/demo/summary.md; "
                   "also explain why each model does not fit the real tianjic / speck.")
    sp.add_argument("--n", type=int, default=100,
                    help="test images per model on the sync chip (default 100)")
    sp.add_argument("--n-async", type=int, default=DEMO_N_ASYNC, metavar="N",
                    help="test images per model in each async mode, the first N of --n "
                         f"(default {DEMO_N_ASYNC}: the event-driven engine is slower)")
    sp.add_argument("--out", default=str(DEMO_OUT), help=f"output directory (default {DEMO_OUT})")
    sp.add_argument("--jobs", type=int, default=None,
                    help="models simulated in parallel processes (default: one per CPU core)")
    sp.add_argument("--checkpoints", metavar="DIR", default=None,
                    help="use the *.safetensors checkpoints in DIR instead of the shipped ones")
    output_args(sp, "print the summary as JSON", "no progress bars or summary")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Simulate trained spiking transformers on virtual neuromorphic chips and "
                    "account their energy and latency.",
        epilog="Start with `neurosim demo`; every command has --help.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_info, _add_train, _add_lower, _add_simulate, _add_compare, _add_report,
                _add_bench, _add_demo):
        add(sub)
    return p
