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
DEMO_N_ASYNC = 10


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


def lower_from_args(model, args):
    """Lower ``model`` with the lowering flags, calibrated on --calib-n training samples."""
    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import load_for_model

    x_cal, _, _ = load_for_model(model, args.workload, "train", n=args.calib_n)
    if x_cal.ndim == 5:                                    # event frames [N, T, ...] -> [T, N, ...]
        import numpy as np
        x_cal = np.moveaxis(x_cal, 1, 0)
    return lower(model, x_cal, weight_bits=args.weight_bits, repconv=args.repconv, ssc=args.ssc)


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


def fit_reports(graph, chips: list[str]) -> dict:
    """chip -> its (non-strict) Mapping of ``graph``."""
    from chips.mapping import map_graph
    return {c: map_graph(graph, c, strict=False) for c in chips}


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
