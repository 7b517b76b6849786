"""``neurosim train``: train a zoo model on a workload and write a checkpoint."""
from __future__ import annotations

import sys

from neurosim.cli.common import UsageError, chatty, emit
from neurosim.cli.parser import parse_sets


def cmd_train(args) -> int:
    import models
    from models.train import TrainConfig, fit
    from neurosim.run.inputs import model_arrays

    overrides = parse_sets(args.set)
    if args.pretrain is None and (args.mask_ratio is not None or args.patch_size is not None):
        raise UsageError("--mask-ratio and --patch-size set up MIM pre-training; add "
                         "--pretrain mim")
    if args.pretrain == "mim":
        return cmd_pretrain_mim(args, overrides)
    if args.finetune is not None:
        from models.mim.pretrain import load_encoder
        model = load_encoder(args.finetune, args.model, **overrides)
    else:
        import torch
        torch.manual_seed(args.seed)             # --seed also sets the initial weights
        model = models.create(args.model, **overrides)
    (x_tr, y_tr), (x_te, y_te), ds_name = model_arrays(model, args.workload)
    shift = TrainConfig.shift_px if args.shift_px is None else args.shift_px
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      shift_px=shift, max_minutes=args.max_minutes, threads=args.threads,
                      label_smoothing=args.label_smoothing)
    n_params = sum(p.numel() for p in model.parameters())
    if chatty(args):
        print(f"training {args.model} ({n_params:,} parameters) on {ds_name}: "
              f"{len(x_tr)} train / {len(x_te)} test samples, input {tuple(x_tr.shape[1:])}")
    res = fit(model, x_tr, y_tr, x_te, y_te, cfg, progress=chatty(args))
    meta = {"workload": args.workload, "command": " ".join(sys.argv[1:]) or "train",
            "config": cfg.__dict__, "parameters": n_params, **res.to_dict()}
    if args.finetune is not None:
        meta["finetuned_from"] = str(args.finetune)
    out = models.save_checkpoint(model, args.out, training=meta)
    emit(args, {"checkpoint": str(out), **meta},
         [f"test accuracy {res.final_test_accuracy:.4f} (best {res.best_test_accuracy:.4f}) "
          f"after {res.epochs_run} epochs in {res.train_seconds:.1f} s",
          f"checkpoint written to {out}"])
    return 0


def cmd_pretrain_mim(args, overrides: dict) -> int:
    """``--pretrain mim``: masked image modelling with an SSC encoder (models.mim); writes the
    encoder (decoder dropped) with training metadata ``pretrain: "mim"``."""
    import torch

    import models
    from models.mim.pretrain import MIMConfig, pretrain, save_encoder
    from neurosim.run.inputs import model_arrays

    if getattr(args, "label_smoothing", 0.0):
        raise UsageError("--label-smoothing applies to classification; --pretrain mim uses no "
                         "labels")
    if getattr(args, "shift_px", None) is not None:
        raise UsageError("--shift-px augments classification training; --pretrain mim does "
                         "not shift its images")
    ratio = 0.5 if args.mask_ratio is None else args.mask_ratio
    cfg = MIMConfig(mask_ratio=ratio, patch_size=args.patch_size, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    threads=args.threads, max_minutes=args.max_minutes)
    torch.manual_seed(args.seed)                 # the encoder's initial weights
    model = models.create(args.model, **overrides)
    (x_tr, _), _, ds_name = model_arrays(model, args.workload)
    if x_tr.ndim != 4:
        raise ValueError(f"--pretrain mim masks static images; workload {args.workload!r} gives "
                         f"event frames {tuple(x_tr.shape[1:])}")
    if chatty(args):
        print(f"MIM pre-training {args.model} on {ds_name} ({len(x_tr)} images, labels unused), "
              f"mask ratio {cfg.mask_ratio}")
    _, res = pretrain(model, x_tr, cfg, progress=chatty(args))
    extra = {"workload": args.workload, "command": " ".join(sys.argv[1:]) or "train"}
    out = save_encoder(model, args.out, cfg, res, extra)
    emit(args, {"checkpoint": str(out), **res.to_dict(), **extra},
         [f"masked-patch loss {res.history[-1]['loss']:.4f} after {res.epochs_run} epochs in "
          f"{res.train_seconds:.1f} s (patch {res.patch_size} px)",
          f"encoder written to {out} (fine-tune with --finetune {out})"])
    return 0
