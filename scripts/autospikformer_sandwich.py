"""Auto-Spikformer supernet with sandwich sampling against the study's uniform one (issue #17).

Reruns only the study's (scripts/autospikformer_study.py) supernet and ``inherit`` steps with
``train_supernet(..., sampling="sandwich")`` (largest + smallest + ``--n-random`` uniform
subnets per step, gradients summed, one optimizer step; models/search/supernet.py): the same
data split, seed, lr (5e-3, the search CLI's), epochs and the same ``--n-subnets`` random
subnets as the study (``random.Random(seed + 7)``). A subnet's from-scratch accuracy is reused
from ``--scratch-from``'s inherit.json when that study trained the same subnet for the same
epochs (same key, same epochs in its search/supernet.json), else trained here as the study does.
``--sampling uniform --supernet-epochs 40 --scratch-epochs 20`` is the equal-training-time
control (a sandwich step with ``--n-random 2`` runs four subnets, but the smallest is cheap:
20 sandwich epochs took 2.05x the time of 20 uniform ones).

    nice -n 10 python scripts/autospikformer_sandwich.py --out /work/runs/autospikformer-sandwich \
        --scratch-from /work/runs/autospikformer --supernet-epochs 20
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--scratch-from", default=None,
                   help="a study out dir whose inherit.json from-scratch runs are reused")
    p.add_argument("--space", default="digits")
    p.add_argument("--supernet-epochs", type=int, default=20)
    p.add_argument("--sampling", default="sandwich", choices=["sandwich", "uniform"],
                   help="supernet sampling rule (uniform: the study's, e.g. as an "
                        "equal-compute control with more epochs)")
    p.add_argument("--scratch-epochs", type=int, default=None,
                   help="from-scratch epochs (default --supernet-epochs)")
    p.add_argument("--n-random", type=int, default=2, help="uniform subnets per step")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--val-n", type=int, default=287)
    p.add_argument("--n-subnets", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.scratch_epochs = a.scratch_epochs or a.supernet_epochs
    return a


def _reusable(a) -> dict:
    """key -> from-scratch row of --scratch-from, when its epochs are ours."""
    if not a.scratch_from:
        return {}
    d = Path(a.scratch_from)
    rec = json.loads((d / "search" / "supernet.json").read_text())
    if rec["settings"]["epochs"] != a.scratch_epochs or rec["settings"]["seed"] != a.seed:
        raise SystemExit(f"{d}: trained {rec['settings']['epochs']} epochs with seed "
                         f"{rec['settings']['seed']}, not {a.scratch_epochs} / {a.seed}")
    return {r["key"]: r for r in json.loads((d / "inherit.json").read_text())}


def main(argv=None) -> int:
    import torch

    from models.registry import build
    from models.search.autospikformer import get_space
    from models.search.supernet import Supernet, recalibrate_bn, train_supernet
    from models.train import TrainConfig, accuracy, fit
    from neurosim.run.autospikformer_eval import search_data
    a = parse_args(argv)
    out = Path(a.out)
    (out / "search").mkdir(parents=True, exist_ok=True)
    space = get_space(a.space)
    data = search_data("digits", space.inputs, a.val_n, a.seed, None)
    sn = out / "search" / "supernet.safetensors"
    if not sn.exists():
        net, rec = train_supernet(space, data["x_train"], data["y_train"], data["x_val"],
                                  data["y_val"], epochs=a.supernet_epochs, seed=a.seed,
                                  lr=a.lr, sampling=a.sampling, n_random=a.n_random,
                                  progress=True)
        net.save(sn, {"supernet": rec})
        (out / "search" / "supernet.json").write_text(json.dumps(
            {"settings": {"space": space.to_dict(), "epochs": a.supernet_epochs,
                          "seed": a.seed, "lr": a.lr, "val_n": a.val_n, "train_n": None,
                          "workload": "digits", "sampling": a.sampling,
                          "n_random": a.n_random}, "training": rec}, indent=2) + "\n")
    old = _reusable(a)
    net = Supernet.load(sn, space)
    rng = random.Random(a.seed + 7)                      # the study's _inherit subnets
    rows = []
    for c in [space.sample(rng) for _ in range(a.n_subnets)]:
        m = recalibrate_bn(net.extract(c), data["x_train"][:256])
        row = {"key": c.key, "inherited": accuracy(m, data["x_val"], data["y_val"])}
        if c.key in old:
            row.update(scratch=old[c.key]["scratch"], scratch_from=str(a.scratch_from))
        else:
            torch.manual_seed(a.seed)
            scratch = build("spikformer", c.model_config(space.inputs))
            t0 = time.perf_counter()
            fit(scratch, data["x_train"], data["y_train"], data["x_val"], data["y_val"],
                TrainConfig(epochs=a.scratch_epochs, lr=a.lr, shift_px=0, seed=a.seed,
                            threads=1), progress=False)
            row.update(scratch=accuracy(scratch, data["x_val"], data["y_val"]),
                       scratch_train_s=time.perf_counter() - t0)
        row["gap_points"] = 100 * (row["scratch"] - row["inherited"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "inherit.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
