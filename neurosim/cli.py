"""The ``neurosim`` command line. Each subcommand is one function ``cmd_NAME(args)``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parse_sets(items: list[str]) -> dict:
    """``key=value`` overrides; values parse as JSON when they can (numbers, lists, dicts)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _emit(args, payload: dict, lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, sort_keys=True))
    elif not getattr(args, "quiet", False):
        print("\n".join(lines))


# ----------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    import models
    names = models.list_models()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names))
    return 0


def cmd_train(args) -> int:
    import models
    from models.train import TrainConfig, fit
    from neurosim.data import model_arrays

    overrides = _parse_sets(args.set)
    model = models.create(args.model, **overrides)
    (x_tr, y_tr), (x_te, y_te), ds_name = model_arrays(model, args.workload)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      shift_px=args.shift_px, max_minutes=args.max_minutes, threads=args.threads)
    n_params = sum(p.numel() for p in model.parameters())
    if not (args.quiet or args.json):
        print(f"training {args.model} ({n_params:,} parameters) on {ds_name}: "
              f"{len(x_tr)} train / {len(x_te)} test samples, input {tuple(x_tr.shape[1:])}")
    res = fit(model, x_tr, y_tr, x_te, y_te, cfg, progress=not (args.quiet or args.json))
    meta = {"workload": args.workload, "command": " ".join(sys.argv[1:]) or "train",
            "config": cfg.__dict__, "parameters": n_params, **res.to_dict()}
    out = models.save_checkpoint(model, args.out, training=meta)
    _emit(args, {"checkpoint": str(out), **meta},
          [f"test accuracy {res.final_test_accuracy:.4f} (best {res.best_test_accuracy:.4f}) "
           f"after {res.epochs_run} epochs in {res.train_seconds:.1f} s",
           f"checkpoint written to {out}"])
    return 0


def _load_model(args):
    import models
    try:
        return models.load_checkpoint(args.checkpoint)
    except FileNotFoundError:
        shipped = models.list_shipped()
        if args.checkpoint in shipped:
            return models.load_checkpoint(models.shipped_checkpoint(args.checkpoint))
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint} (shipped checkpoints, "
                                f"usable by name: {', '.join(shipped) or 'none'})") from None


def _lower_from_args(model, args):
    from neurosim.data import load_for_model
    from neurosim.lower import lower

    x_cal, _, _ = load_for_model(model, args.workload, "train", n=args.calib_n)
    return lower(model, x_cal, weight_bits=args.weight_bits, repconv=args.repconv, ssc=args.ssc)


def cmd_lower(args) -> int:
    from neurosim.summary import COLUMNS, graph_rows, totals
    from neurosim.tables import format_table

    model = _load_model(args)
    graph = _lower_from_args(model, args)
    out = graph.save(args.out) if args.out else None
    rows, tot = graph_rows(graph), totals(graph)
    _emit(args, {"graph_dir": str(out) if out else None, "totals": tot, "nodes": rows},
          [format_table(rows, COLUMNS), "",
           f"{tot['nodes']} nodes, {tot['neurons']:,} neurons, {tot['weights']:,} weights "
           f"({graph.meta['weight_bits']}-bit), {tot['spike_edges']} spike / "
           f"{tot['graded_edges']} graded edges, T={tot['T']}, RepConv {graph.meta['repconv']}, "
           f"SSC {'on' if graph.meta['ssc'] else 'off'}"]
          + ([f"graph written to {out}"] if out else []))
    return 0


def cmd_demo(args) -> int:
    import models
    from models.train import accuracy
    from neurosim.data import model_arrays

    rows, payload = [], {}
    for name in models.list_shipped():
        model = models.load_checkpoint(models.shipped_checkpoint(name))
        _, (x_te, y_te), ds_name = model_arrays(model, "digits")
        acc = accuracy(model, x_te, y_te)
        n = sum(p.numel() for p in model.parameters())
        payload[name] = {"accuracy": acc, "parameters": n, "test_samples": len(y_te)}
        rows.append(f"{name:<32} {n:>9,} params   {ds_name} test accuracy {acc:.4f} "
                    f"({len(y_te)} images)")
    if not rows:
        print("no shipped checkpoints found under models/checkpoints/", file=sys.stderr)
        return 1
    _emit(args, payload, ["shipped checkpoints, evaluated with PyTorch:", *rows])
    return 0


# ----------------------------------------------------------------------------- parser
def _lowering_args(sp) -> None:
    sp.add_argument("--checkpoint", required=True,
                    help="a .safetensors checkpoint, or the name of a shipped one")
    sp.add_argument("--workload", default="digits", help="calibration data (default: digits)")
    sp.add_argument("--calib-n", type=int, default=64,
                    help="training samples used to calibrate graded-value steps")
    sp.add_argument("--weight-bits", type=int, default=8)
    sp.add_argument("--repconv", choices=["fused", "unfused"], default="fused",
                    help="lower RepConv as one fused 3x3 conv or as its three stages")
    sp.add_argument("--ssc", action="store_true",
                    help="spike sparse convolution on stride-1 convs (default: vanilla)")



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Simulate trained spiking transformers on virtual neuromorphic chips and "
                    "account their energy and latency.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("models", cmd_models, "list the model zoo's registered names")
    sp.add_argument("--json", action="store_true", help="print a JSON list")

    sp = add("train", cmd_train, "train a zoo model on a workload and write a checkpoint")
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
    sp.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add("lower", cmd_lower, "lower a checkpoint to the event-level graph and print its nodes")
    _lowering_args(sp)
    sp.add_argument("--out", help="directory to write the graph to (graph.json + arrays.npz)")
    sp.add_argument("--json", action="store_true", help="print the node table as JSON")
    sp.add_argument("--quiet", action="store_true")

    sp = add("demo", cmd_demo, "evaluate the shipped checkpoints (the full chip demo grows here)")
    sp.add_argument("--quiet", action="store_true")
    sp.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"neurosim {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
