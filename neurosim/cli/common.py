"""What the commands share: defaults, the usage error, output, and the steps every run takes
(load a checkpoint, lower it, pick its inputs, check the fit on chips).

Module level imports only the standard library; everything heavy is imported inside the
function that needs it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_CHIPS = "tianjic-x16,speck-xl"
REAL_CHIPS = "tianjic,speck"
DEMO_OUT = Path("runs/demo")
DEMO_N = 20                    # inputs per model in every demo run (sync and async alike)
GATING_POLICIES = ("none", "unused", "idle")    # = chips.spec.GATING_POLICIES (stdlib only here)


class UsageError(ValueError):
    """Bad command-line input (reported without a traceback, exit status 2)."""


# ----------------------------------------------------------------------------- output
def emit(args, payload: dict, lines: list[str]) -> None:
    """Print ``payload`` as JSON with --json, else ``lines`` (nothing with --quiet)."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, sort_keys=True))
    elif not getattr(args, "quiet", False):
        print("\n".join(lines))


def chatty(args) -> bool:
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))


def progress_bar(args, total: int, desc: str):
    """A tqdm progress bar on stderr (disabled by --quiet / --json)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not chatty(args), leave=False,
                file=sys.stderr, dynamic_ncols=True)


def clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


# ----------------------------------------------------------------------------- shared steps
def chip_list(text: str) -> list[str]:
    """Comma-separated chip names, each checked (unknown names: SpecError listing the chips)."""
    from chips.spec import load_chip
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    if not names:
        raise UsageError("no chip given (e.g. --chips tianjic-x16,speck-xl)")
    for c in names:
        load_chip(c)
    return names


def load_model(args):
    """The model of ``--checkpoint``: a file, or the name of a shipped checkpoint."""
    import models
    try:
        return models.load_checkpoint(args.checkpoint)
    except FileNotFoundError:
        shipped = models.list_shipped()
        if args.checkpoint in shipped:
            return models.load_checkpoint(models.shipped_checkpoint(args.checkpoint))
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint} (shipped checkpoints, "
                                f"usable by name: {', '.join(shipped) or 'none'})") from None


def checkpoint_path(args) -> Path | None:
    """The file ``--checkpoint`` names (a path, or a shipped checkpoint's), None if neither."""
    import models
    p = Path(args.checkpoint)
    if p.is_file():
        return p
    return models.shipped_checkpoint(args.checkpoint) \
        if args.checkpoint in models.list_shipped() else None


def setup_cache(args):
    """The set-up cache (``neurosim.run.cache``) unless --no-setup-cache."""
    if getattr(args, "no_setup_cache", False):
        return None
    from neurosim.run.cache import SetupCache
    return SetupCache()


def lower_from_args(model, args):
    """Lower ``model`` with the lowering flags, calibrated on --calib-n training samples; the
    graph comes from the set-up cache when the same checkpoint file was lowered with the same
    options before (``neurosim.run.cache``)."""
    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import load_for_model

    if args.calib_n < 1:
        raise UsageError(f"--calib-n must be >= 1 (training samples to calibrate on), got "
                         f"{args.calib_n}")

    def build():
        x_cal, _, _ = load_for_model(model, args.workload, "train", n=args.calib_n)
        if x_cal.ndim == 5:                                # event frames [N, T, ...] -> [T, N, ...]
            import numpy as np
            x_cal = np.moveaxis(x_cal, 1, 0)
        return lower(model, x_cal, weight_bits=args.weight_bits, repconv=args.repconv,
                     ssc=args.ssc)

    cache, path = setup_cache(args), checkpoint_path(args)
    if cache is None or path is None:
        return build()
    options = {"workload": args.workload, "calib_n": args.calib_n, "split": "train",
               "weight_bits": args.weight_bits, "repconv": args.repconv, "ssc": args.ssc}
    return cache.lowered(path, options, build)[0]


def map_from_args(graph, chip, args, strict: bool = True):
    """``chips.mapping.map_graph(graph, chip, strict=strict)``, through the set-up cache."""
    cache = setup_cache(args)
    if cache is None:
        from chips.mapping import map_graph
        return map_graph(graph, chip, strict=strict)
    return cache.mapped(graph, chip, strict=strict)[0]


def batch_size(graph, args) -> int:
    """Inputs per engine batch: --batch-size, else the engines' memory-bounded default."""
    bs = getattr(args, "batch_size", None)
    if bs is not None and bs < 1:
        raise UsageError(f"--batch-size must be >= 1, got {bs}")
    from chips.engines.base import default_batch_size
    return bs or default_batch_size(graph)


def run_inputs(model, workload: str, n: int, split: str = "test"):
    """The first ``n`` samples of ``workload``'s ``split`` (names both numbers when too few),
    and the engine keywords: event streams run on the chips' clocks in real time (one time bin
    lasts ``input_window_s``)."""
    from neurosim.run.inputs import engine_inputs

    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    have = split_size(model, workload, split)
    if n > have:
        raise UsageError(f"--n {n} is more than the {have} samples of the {workload!r} "
                         f"{split} split; use --n {have} or fewer")
    x, y, window = engine_inputs(model, workload, split, n)
    return x, y, ({} if window is None else {"input_window_s": window})


def split_size(model, workload: str, split: str = "test") -> int:
    from neurosim.run.inputs import load_for_model
    return int(len(load_for_model(model, workload, split)[1]))


def model_name(model, fallback: str) -> str:
    return getattr(model, "neurosim_config", {}).get("name", fallback)


def fit_reports(graph, chips: list[str], args=None) -> dict:
    """chip -> its (non-strict) Mapping of ``graph`` (through the set-up cache with ``args``)."""
    if args is None:
        from chips.mapping import map_graph
        return {c: map_graph(graph, c, strict=False) for c in chips}
    return {c: map_from_args(graph, c, args, strict=False) for c in chips}


def fit_lines(name: str, reports: dict) -> list[str]:
    """Console lines: per chip, "fits" or the violations counted by kind plus the first
    example of the commonest kind (``reports``: chip -> Mapping or its ``to_dict()``)."""
    from collections import Counter
    out = []
    for chip, m in reports.items():
        d = m if isinstance(m, dict) else m.to_dict()
        vs = d["violations"]
        if not vs:
            out.append(f"  {name} fits {chip} ({d['totals']['cores_used']} cores)")
            continue
        kinds = Counter(v["kind"] for v in vs).most_common()
        out.append(f"  {name} does not fit {chip}: {len(vs)} violations ("
                   + ", ".join(f"{k} {c}" for k, c in kinds) + ")")
        first = next(v for v in vs if v["kind"] == kinds[0][0])
        out.append(f"      e.g. {clip(first['message'], 150)}")
    return out
