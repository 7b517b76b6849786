"""Free-running accuracy of shipped checkpoints on the asynchronous chip (README, "Free-running
accuracy"): for each realisation of the complete-operand operations, settle time and input
window, the accuracy, the agreement with the windowed run's predictions and the late events.

    .venv/bin/python scripts/free_running_accuracy.py --models meta-spikeformer-tiny,e-spikeformer-tiny \\
        --n 20 --configs token:0:0,timeout:1000:0,timeout:100000:0,token:0:0.001,timeout:1000:0.001,timeout:100000:0.001

A config is REALISATION:SETTLE_NS:INPUT_WINDOW_S. The graph is lowered as ``neurosim demo``
lowers it (64 training inputs for calibration); inputs are the first ``--n`` of the test split.
One JSON line per model on stdout. About 3-10 s per input and config on this machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_config(text: str) -> tuple[str, float, float]:
    try:
        real, settle, window = text.split(":")
        return real, float(settle), float(window)
    except ValueError:
        raise SystemExit(f"--configs: {text!r} is not REALISATION:SETTLE_NS:INPUT_WINDOW_S "
                         "(e.g. token:0:0.001)") from None


def measure(name: str, n: int, configs: list, chip: str) -> dict:
    import models
    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import load_for_model
    from neurosim.run.simulate import simulate

    model = models.load_checkpoint(name)
    workload = getattr(model, "neurosim_training", {}).get("workload") or "digits"
    x_cal, _, _ = load_for_model(model, workload, "train", n=64)
    x, y, _ = load_for_model(model, workload, "test", n=n)
    graph = lower(model, x_cal)
    t0 = time.perf_counter()
    win = simulate(graph, chip, x, labels=y, mode="async")
    out = {"model": name, "workload": workload, "chip": chip, "n": int(len(y)),
           "windowed": {"accuracy": win.accuracy, "s": round(time.perf_counter() - t0, 1)}}
    pred = win.logits.argmax(1)
    for real, settle, window in configs:
        t0 = time.perf_counter()
        r = simulate(graph, chip, x, labels=y, mode="async", async_mode="free",
                     realisation=real, settle_ns=settle, input_window_s=window)
        out[f"{real}:{settle:g}:{window:g}"] = {
            "accuracy": r.accuracy, "agreement": float((r.logits.argmax(1) == pred).mean()),
            "late_events": int(r.stats.get("late_events", 0)),
            "s": round(time.perf_counter() - t0, 1)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="meta-spikeformer-tiny,e-spikeformer-tiny")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--chip", default="speck-xl")
    ap.add_argument("--configs", default="token:0:0,timeout:1000:0,timeout:100000:0,"
                                         "token:0:0.001,timeout:1000:0.001,timeout:100000:0.001")
    args = ap.parse_args(argv)
    if args.n < 1:
        raise SystemExit(f"--n must be >= 1, got {args.n}")
    configs = [parse_config(c) for c in args.configs.split(",")]
    for name in args.models.split(","):
        print(json.dumps(measure(name, args.n, configs, args.chip)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
