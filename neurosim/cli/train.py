"""``neurosim train``: train a zoo model on a workload and write a checkpoint."""
from __future__ import annotations

import sys

from neurosim.cli.common import chatty, emit
from neurosim.cli.parser import parse_sets


def cmd_train(args) -> int:
    import models
    from models.train import TrainConfig, fit
    from neurosim.run.inputs import model_arrays

    overrides = parse_sets(args.set)
    model = models.create(args.model, **overrides)
    (x_tr, y_tr), (x_te, y_te), ds_name = model_arrays(model, args.workload)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      shift_px=args.shift_px, max_minutes=args.max_minutes, threads=args.threads)
    n_params = sum(p.numel() for p in model.parameters())
    if chatty(args):
        print(f"training {args.model} ({n_params:,} parameters) on {ds_name}: "
              f"{len(x_tr)} train / {len(x_te)} test samples, input {tuple(x_tr.shape[1:])}")
    res = fit(model, x_tr, y_tr, x_te, y_te, cfg, progress=chatty(args))
    meta = {"workload": args.workload, "command": " ".join(sys.argv[1:]) or "train",
            "config": cfg.__dict__, "parameters": n_params, **res.to_dict()}
    out = models.save_checkpoint(model, args.out, training=meta)
    emit(args, {"checkpoint": str(out), **meta},
         [f"test accuracy {res.final_test_accuracy:.4f} (best {res.best_test_accuracy:.4f}) "
          f"after {res.epochs_run} epochs in {res.train_seconds:.1f} s",
          f"checkpoint written to {out}"])
    return 0
