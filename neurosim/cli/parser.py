"""The argument parser of ``neurosim`` and its argument helpers.

Imports only the standard library and ``neurosim.cli.common`` (itself standard library only):
each subcommand's ``fn`` names its command module and function as strings and imports them when
the command runs, so ``neurosim --help`` (and every ``COMMAND --help``) loads nothing heavy.
"""
from __future__ import annotations

import argparse
import json
from importlib import import_module

from neurosim.cli.common import (DEFAULT_CHIPS, DEMO_N, DEMO_OUT, GATING_POLICIES,
                                 REAL_CHIPS, UsageError)


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
    sp.add_argument("--no-setup-cache", action="store_true",
                    help="lower and map afresh instead of reusing (and storing) the cached "
                         "results in $NEUROSIM_CACHE_DIR/setup (default ~/.cache/neurosim)")


def run_args(sp, n_default: int = 100) -> None:
    sp.add_argument("--n", type=int, default=n_default,
                    help=f"number of inputs, the first n of the split (default {n_default})")
    sp.add_argument("--split", default="test", choices=["test", "train"],
                    help="which split supplies the inputs (default: test)")
    sp.add_argument("--batch-size", type=int, default=None, metavar="B",
                    help="inputs the engines run together (default: as many as fit ~512 MiB "
                         "of activations, at most 128; results do not depend on it)")


def power_args(sp) -> None:
    sp.add_argument("--power-gating", choices=GATING_POLICIES, default=None,
                    help="price static power under this policy instead of each chip's own "
                         "(none: every core leaks for the whole run; unused: cores with no "
                         "mapped part are off; idle: a core leaks only while it has work, "
                         "paying a wake-up energy)")


def _checked(flag: str, conv, ok, what: str):
    """An argparse ``type`` that converts with ``conv`` and rejects values failing ``ok``,
    naming the flag, the rule and the value."""
    def parse(text: str):
        try:
            v = conv(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v
    parse.__name__ = flag
    return parse


def async_args(sp) -> None:
    """Settings of the asynchronous engine (async chips only; the chip's values by default)."""
    g = sp.add_argument_group("asynchronous chips (the chip's [timing] / [mesh] values by "
                              "default)")
    g.add_argument("--fifo-depth", type=_checked("--fifo-depth", int, lambda v: v >= 1,
                                                 "an integer >= 1 event"),
                   default=None, metavar="EVENTS",
                   help="input FIFO of each core and queue of each link, events")
    g.add_argument("--overflow", choices=["stall", "drop"], default=None,
                   help="a full queue stalls the event (and its sender) or the congestion "
                        "balancer drops it (default stall)")
    g.add_argument("--link-events-per-s", type=_checked(
        "--link-events-per-s", float, lambda v: 0 < v < float("inf"), "a rate > 0 events/s"),
        default=None, metavar="RATE", help="bandwidth of each link (mesh) or of the shared "
                                           "event bus (all-to-all), events per second")
    g.add_argument("--settle-ns", type=_checked(
        "--settle-ns", float, lambda v: 0 <= v < float("inf"), "a time >= 0 ns"),
        default=None, metavar="NS", help="free-running 'timeout' realisation: an operation "
                                         "that needs a complete operand fires after NS "
                                         "nanoseconds without input")
    g.add_argument("--async-realisation", choices=["token", "timeout"], default=None,
                   help="free-running mode: complete operands by an end-of-window token "
                        "(exact) or by a timeout of --settle-ns")


def output_args(sp, json_help: str | None = None, quiet_help: str | None = None) -> None:
    sp.add_argument("--quiet", action="store_true", help=quiet_help)
    sp.add_argument("--json", action="store_true", help=json_help)


def config_arg(sp) -> None:
    """``--config RUN.toml``: the command's flags from a TOML file (``neurosim.cli.config``)."""
    sp.add_argument("--config", metavar="RUN.toml",
                    help="take flags from this TOML file, one key per flag without the dashes "
                         "(chip = \"speck-xl\", calib_n = 32, quiet = true); flags on the "
                         "command line override it; unknown keys are errors")


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
    sp.add_argument("--shift-px", type=int, default=None,
                    help="random-shift augmentation, pixels (default 2; not with --pretrain mim)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    sp.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    sp.add_argument("--label-smoothing", type=float, default=0.0,
                    help="cross-entropy label smoothing in [0, 1) (default 0)")
    sp.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    mim = sp.add_mutually_exclusive_group()
    mim.add_argument("--pretrain", choices=["mim"], default=None,
                     help="self-supervised pre-training instead of classification: 'mim' = "
                          "masked image modelling with a spike-sparse-conv encoder (seed sdt-v3 "
                          "§3.4; e-spikeformer family); writes the encoder")
    mim.add_argument("--finetune", metavar="CKPT", default=None,
                     help="start from a MIM-pre-trained encoder (SSC weights used as VSC)")
    sp.add_argument("--mask-ratio", type=float, default=None,
                    help="--pretrain mim: fraction of patches masked, in (0, 1) (default 0.5)")
    sp.add_argument("--patch-size", type=int, default=None,
                    help="--pretrain mim: patch side in pixels (default: the encoder's stride)")
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
    power_args(sp)
    async_args(sp)
    sp.add_argument("--energy-table", default=None,
                    help="price the run with this energy table instead of the chip's "
                         "(e.g. 45nm; chips/energy/*.toml)")
    sp.add_argument("--out", metavar="RUN_DIR",
                    help="also write a report directory (result.json, report.md, CSVs, plots)")
    output_args(sp, "print the result as JSON", "no progress bar or summary")
    config_arg(sp)


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
    power_args(sp)
    async_args(sp)
    sp.add_argument("--modes", default=None,
                    help="only these runs: comma-separated sync, async-windowed, async-free")
    sp.add_argument("--check-fit", default=REAL_CHIPS, metavar="CHIPS",
                    help=f"also map onto these chips and list why the model does not fit "
                         f"(default {REAL_CHIPS}; '' to skip)")
    sp.add_argument("--out", metavar="RUN_DIR", help="write report.md, result.json, CSVs, plots")
    output_args(sp, "print the comparison as JSON", "no progress bar or summary")
    config_arg(sp)


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
                   "second), then the scatter / dense path costs the engines choose by, saved "
                   "for this machine in $NEUROSIM_CACHE_DIR (default ~/.cache/neurosim). "
                   "model: PyTorch (batched) vs the sync and async engines at B=1 and B=100 "
                   "on the shipped meta-spikeformer-tiny, meta-spikeformer-8-384 at 224x224 "
                   "(dense and sparse firing), and the set-up time cold and cached.")
    sp.add_argument("what", choices=["kernels", "model"], help="what to benchmark")
    sp.add_argument("--repeat", type=int, default=None,
                    help="timed samples per kernel (kernels, default 15) or runs per figure "
                         "(model, default 5; figures are medians with min and max)")
    sp.add_argument("--batch", type=int, default=100,
                    help="model: the larger batch of the meta-spikeformer-tiny case "
                         "(default 100)")
    sp.add_argument("--cases", default=None,
                    help="model: only these comma-separated cases of tiny, 8-384, sparse, "
                         "setup (default all)")
    sp.add_argument("--no-async", action="store_true",
                    help="model: skip the async engine")
    sp.add_argument("--fifo-depth", type=int, default=None, metavar="EVENTS",
                    help="model: the async engine's FIFO depth (default the chip's, 512)")
    sp.add_argument("--no-save", action="store_true",
                    help="kernels: measure the path costs but do not save them")
    sp.add_argument("--json", action="store_true", help="print the full result as JSON")
    sp.add_argument("--quiet", action="store_true")


def _add_demo(sub) -> None:
    sp = _add(sub, "demo", Command("demo", "cmd_demo"), "run the shipped checkpoints on the "
              "scaled chips and write reports (what `make demo` runs)",
              desc="Lower every shipped checkpoint, run the same first --n test inputs on "
                   "tianjic-x16 (sync) and speck-xl (async, windowed and free-running; free-running "
                   "on event workloads only with --free-on-events), compare, "
                   "and write reports and plots to runs/demo/<model>/ plus runs/demo/summary.md; "
                   "print the sync/async energy ratio with its dynamic and static parts and "
                   "under each power-gating policy; also explain why each model does not fit "
                   "the real tianjic / speck.")
    sp.add_argument("--n", type=int, default=DEMO_N,
                    help=f"test inputs per model, the same ones in every run (default {DEMO_N})")
    sp.add_argument("--out", default=str(DEMO_OUT), help=f"output directory (default {DEMO_OUT})")
    sp.add_argument("--jobs", type=int, default=None,
                    help="models simulated in parallel processes (default: one per CPU core)")
    sp.add_argument("--checkpoints", metavar="DIR", default=None,
                    help="use the *.safetensors checkpoints in DIR instead of the shipped ones")
    sp.add_argument("--free-on-events", action="store_true",
                    help="also run free-running mode on the event workloads (several seconds "
                         "per input: minutes more)")
    output_args(sp, "print the summary as JSON", "no progress bars or summary")


def executor_args(sp, what: str) -> None:
    sp.add_argument("--workers", type=int, default=None, metavar="N",
                    help=f"{what} run as Ray tasks on a local Ray instance with N CPUs, "
                         f"started and stopped with the command (default: one per core); "
                         f"0 runs them in this process, without Ray")
    sp.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="join the Ray cluster at ADDR (host:port, ray://host:port or auto) "
                         "instead of starting one; its workers must see the same files")


def resumable_run_args(sp, out_help: str, what_done: str, tasks: str, *,
                       required: bool = False) -> None:
    """--out (a resumable run directory), --restart, the executor's and the output flags."""
    sp.add_argument("--out", required=required, default=None, metavar="DIR", help=out_help)
    sp.add_argument("--restart", action="store_true",
                    help=f"discard {what_done} already in --out")
    executor_args(sp, tasks)
    output_args(sp, "print the result as JSON", "print nothing")


def evolution_args(sp, *, parents: int, mutations: int, crossovers: tuple, m_prob: tuple,
                   s_prob: tuple) -> None:
    """The evolutionary search's flags (population 50 and 20 generations by default)."""
    for flag, default, h in (("--population", 50, "candidates per generation"),
                             ("--generations", 20, "generations"),
                             ("--parents", parents, "top candidates kept as parents"),
                             ("--mutations", mutations, "mutants per generation"),
                             ("--crossovers", crossovers[0],
                              f"crossovers per generation{crossovers[1]}")):
        sp.add_argument(flag, type=int, default=default, help=f"{h} (default {default})")
    for flag, (default, h) in (("--m-prob", m_prob), ("--s-prob", s_prob)):
        sp.add_argument(flag, type=float, default=default, help=f"{h} (default {default})")


def _add_search(sub) -> None:
    top = _add(sub, "search", Command("search", "cmd_search"), "architecture search: "
               "training-free (autost) or one-shot with the chip in the loop (autospikformer)",
               desc="Evolutionary architecture search. autost: training-free, ranked by a "
                    "score in a parameter window. autospikformer: weight-entanglement "
                    "supernet, F_AEB fitness with the energy simulated on a chip.")
    methods = top.add_subparsers(dest="method", metavar="METHOD", required=True)
    _add_search_autospikformer(methods)
    sp = _add(methods, "autost", Command("search", "cmd_search"), "training-free architecture "
              "search (AutoST): evolve the best-scoring architecture in a parameter window",
              desc="AutoST (seed autost): evolutionary search over a search space of "
                   "spiking transformers under a parameter window, ranked by a training-free "
                   "score. Spaces: the paper's tiny / small / base and micro-* spaces of the "
                   "same structure with 1/8 the widths (--list-spaces), or a TOML file.",
              epilog="examples:\n"
                     "  neurosim search autost --space micro-tiny --budget-params 0.1M:0.15M "
                     "--score flops\n"
                     "  neurosim search autost --space tiny --score flops      (window 4M:5M)\n"
                     "  neurosim search autost --space micro-tiny --score energy "
                     "--generations 3 --out runs/search")
    sp.add_argument("--space", default="micro-tiny",
                    help="search space name or TOML file (default micro-tiny)")
    sp.add_argument("--list-spaces", action="store_true", help="list the search spaces")
    sp.add_argument("--budget-params", default=None, metavar="LOW:HIGH",
                    help="parameter window, e.g. 0.1M:0.15M or 4M:5M (default: the space's)")
    sp.add_argument("--score", default="flops",
                    choices=["flops", "params", "syops", "syops-ac", "energy"],
                    help="training-free score to maximise: flops (paper eq. 4-5 x T), params, "
                         "syops (the released code's indicator), syops-ac (its "
                         "activity-weighted part), energy (simulated dynamic energy of the "
                         "untrained model); default flops")
    sp.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    evolution_args(sp, parents=10, mutations=25, crossovers=(25, ""),
                   m_prob=(0.2, "per-block mutation probability"),
                   s_prob=(0.4, "depth / width mutation probability (released code)"))
    sp.add_argument("--fits", default=None, metavar="CHIP",
                    help="also require that the model maps onto CHIP (lowers every candidate)")
    sp.add_argument("--workload", default="motion",
                    help="inputs for --score energy (default motion)")
    sp.add_argument("--n", type=int, default=8, help="inputs for --score energy (default 8)")
    sp.add_argument("--calib-n", type=int, default=16,
                    help="calibration samples for --score energy (default 16)")
    sp.add_argument("--energy-chip", default="tianjic-x16",
                    help="chip for --score energy (default tianjic-x16)")
    sp.add_argument("--weights-seed", type=int, default=0,
                    help="seed of the untrained weights (syops-ac, energy, --fits)")
    resumable_run_args(sp, "write search.json and the scores (resumable) to DIR",
                       "the scores", "model-based scores (syops, syops-ac, energy)")


def _add_search_autospikformer(methods) -> None:
    sp = _add(methods, "autospikformer", Command("search_autospikformer",
                                                 "cmd_autospikformer"),
              "Auto-Spikformer: one-shot supernet, neuron search, chip energy in the fitness",
              desc="Auto-Spikformer (seed auto-spikformer): train a weight-entanglement "
                   "supernet over Spikformers (width, MLP ratios, heads, depth, per-block "
                   "threshold and tau, T), then evolve subnets by F_AEB = alpha E' + (1 - "
                   "alpha) A' with A the validation accuracy (inherited weights) and E the "
                   "energy per inference simulated on --chip (or the paper's formula / paper "
                   "mode). Writes search.json, evaluations.jsonl (resumable), the chosen "
                   "subnet's checkpoint and, with --random N, the evolved-vs-random front.",
              epilog="examples:\n"
                     "  neurosim search autospikformer --out runs/as --random 1000\n"
                     "  neurosim search autospikformer --chip speck-xl --mode async "
                     "--supernet runs/as/supernet.safetensors --out runs/as-speck\n"
                     "  neurosim search autospikformer --population 6 --generations 2 "
                     "--supernet-epochs 1 --out /tmp/tiny")
    sp.add_argument("--space", default="digits",
                    help="search space name or TOML file (default digits; see "
                         "models/search/autospikformer.py)")
    sp.add_argument("--workload", default="digits", help="data set (default digits)")
    sp.add_argument("--chip", default="tianjic-x16",
                    help="chip whose simulated energy enters the fitness (default tianjic-x16)")
    sp.add_argument("--mode", default="sync", choices=["sync", "async"],
                    help="execution mode on --chip: sync, or async (windowed, exact)")
    sp.add_argument("--also-fit", nargs="*", default=[], metavar="CHIP",
                    help="candidates must also map onto these chips (else infeasible)")
    sp.add_argument("--energy", default="simulated",
                    choices=["simulated", "dynamic", "paper", "formula"],
                    help="energy in the fitness: simulated total (default), its dynamic "
                         "part, neurosim's paper mode, or the paper's formula")
    sp.add_argument("--alpha", type=float, default=0.5,
                    help="energy weight of F_AEB, in [0, 1] (default 0.5)")
    sp.add_argument("--parents-by", choices=["faeb", "nsga2"], default="faeb",
                    help="parent selection: the best by F_AEB (default, the paper), or nsga2: "
                         "non-dominated front, then crowding distance over energy and "
                         "accuracy (spreads the search along the front; the chosen subnet is "
                         "still the best by F_AEB)")
    sp.add_argument("--supernet", default=None, metavar="CKPT",
                    help="use this trained supernet (of this space or a larger one) instead "
                         "of training one")
    sp.add_argument("--supernet-epochs", type=int, default=20,
                    help="one-shot training epochs (default 20)")
    sp.add_argument("--lr", type=float, default=5e-3, help="supernet learning rate (5e-3)")
    sp.add_argument("--sampling", choices=["uniform", "sandwich"], default="uniform",
                    help="supernet training: one uniform subnet per step (default), or "
                         "sandwich: largest + smallest + --n-random subnets per step")
    sp.add_argument("--n-random", type=int, default=2,
                    help="--sampling sandwich: random subnets per step besides the largest "
                         "and smallest (default 2)")
    sp.add_argument("--val-n", type=int, default=287,
                    help="training rows held out as the validation split (default 287)")
    sp.add_argument("--train-n", type=int, default=None,
                    help="train the supernet on only the first N remaining rows (default all)")
    sp.add_argument("--n", type=int, default=64,
                    help="validation inputs simulated per candidate (default 64)")
    sp.add_argument("--calib-n", type=int, default=32,
                    help="training rows that calibrate the lowering (default 32)")
    sp.add_argument("--recal-n", type=int, default=256,
                    help="training rows that re-estimate a subnet's BatchNorm (default 256)")
    sp.add_argument("--seed", type=int, default=0,
                    help="seed of the supernet, the data split and the search (default 0)")
    sp.add_argument("--search-seed", type=int, default=None,
                    help="seed of the evolution and the random candidates only (default "
                         "--seed): repeat a search on the same supernet and data")
    sp.add_argument("--evaluations-from", nargs="*", default=[], metavar="LOG",
                    help="reuse the candidates already evaluated in these evaluations.jsonl "
                         "files (same supernet, chip, mode and data, else an error)")
    evolution_args(sp, parents=20, mutations=35, crossovers=(15, " (Pd 0.3 of 50)"),
                   m_prob=(0.4, "per-gene mutation probability Pm"),
                   s_prob=(0.4, "depth / width / T mutation probability"))
    sp.add_argument("--random", type=int, default=0, metavar="N",
                    help="also evaluate N random feasible candidates and plot both fronts "
                         "with their hypervolumes (default 0)")
    resumable_run_args(sp, "write the supernet, evaluations (resumable) and search.json here",
                       "the supernet and evaluations", "candidate evaluations", required=True)


def _add_sweep(sub) -> None:
    sp = _add(sub, "sweep", Command("sweep", "cmd_sweep"), "run models x chips x chip "
              "parameters x modes x workloads on Ray: table and Pareto plots",
              desc="Evaluate every point of a sweep file (models or zoo configs, chips, chip "
                   "parameter overrides, modes, workloads) as Ray tasks; write results.csv "
                   "(one row per point: accuracy, energy static/dynamic, power, latency, "
                   "counts) and Pareto plots. Rerunning with the same --out runs only the "
                   "points not done yet.",
              epilog="example sweep.toml:\n"
                     '  models = ["meta-spikeformer-tiny", "e-spikeformer-tiny"]\n'
                     '  chips = ["tianjic-x16", "speck-xl"]\n'
                     '  modes = ["sync", "async-windowed"]\n'
                     '  workloads = ["digits"]\n'
                     "  n = 20\n"
                     "  [overrides]\n"
                     '  "timing.fifo_depth" = [8, 64]')
    sp.add_argument("--config", required=True,
                    help="sweep file (TOML); it may also hold this command's flags as keys "
                         "(out = \"runs/s\", workers = 0), which the command line overrides")
    resumable_run_args(sp, "output directory (default runs/sweep/<config name>)",
                       "the points", "points")


def _add_convert(sub) -> None:
    sp = _add(sub, "convert", Command("convert", "cmd_convert"),
              "convert a trained ANN checkpoint to an SNN (ECMT for vision transformers)",
              desc="ANN-to-SNN conversion. ecmt (seed ecmt, Algorithm 1): multi-threshold "
                   "neurons before every linear layer and matrix product, expectation "
                   "compensation around softmax / GELU / LayerNorm and matrix products; "
                   "thresholds from percentiles of calibration activations.")
    sp.add_argument("--checkpoint", required=True,
                    help="ANN checkpoint file or shipped name (e.g. vit-tiny)")
    sp.add_argument("--method", default="ecmt", choices=["ecmt"], help="conversion method")
    sp.add_argument("--T", type=int, default=8, help="time steps of the SNN (default 8)")
    sp.add_argument("--n", type=int, default=8, help="threshold levels per sign (default 8)")
    sp.add_argument("--p", type=float, default=0.99,
                    help="threshold percentile of calibration activations (default 0.99)")
    sp.add_argument("--workload", default="digits", help="calibration and test data")
    sp.add_argument("--calib-n", type=int, default=256,
                    help="training inputs that set the thresholds (default 256)")
    sp.add_argument("--eval-n", type=int, default=-1,
                    help="test inputs to evaluate the SNN on (default -1: all; 0: none)")
    sp.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    sp.add_argument("--out", required=True, help="converted SNN path (.safetensors)")
    sp.add_argument("--graph-out", metavar="DIR", default=None,
                    help="also lower the SNN to a Graph and write it here (neurosim.load_graph; "
                         "runs on the sync and async-windowed engines)")
    sp.add_argument("--weight-bits", type=int, default=8,
                    help="--graph-out: weight bits of the parallel-normalized weights "
                         "(default 8, what tianjic-x16 and speck-xl store)")
    output_args(sp, "print the result as JSON", "print nothing")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Simulate trained spiking transformers on virtual neuromorphic chips and "
                    "account their energy and latency.",
        epilog="Start with `neurosim demo`; every command has --help.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_info, _add_train, _add_lower, _add_simulate, _add_compare, _add_report,
                _add_bench, _add_demo, _add_search, _add_sweep, _add_convert):
        add(sub)
    return p
