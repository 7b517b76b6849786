"""``neurosim convert``: ANN-to-SNN conversion of a trained checkpoint (``--method ecmt``: seed
ecmt, Algorithm 1, ``models.convert.ecmt``); writes the converted SNN and reports its test
accuracy at T beside the ANN's; ``--graph-out`` also writes its Graph
(``neurosim.frontends.ecmt``)."""
from __future__ import annotations

from neurosim.cli.common import UsageError, emit

METHODS = ("ecmt",)


def cmd_convert(args) -> int:
    import torch

    import models
    from models.convert import ecmt
    from models.train import accuracy
    from neurosim.run.inputs import load_for_model

    if args.method not in METHODS:
        raise UsageError(f"--method must be one of {METHODS}, got {args.method!r}")
    if args.calib_n < 1:
        raise UsageError(f"--calib-n must be >= 1, got {args.calib_n}")
    ecmt.check_settings(args.n, args.p, args.T)
    torch.set_num_threads(args.threads)
    ann = models.load_checkpoint(ecmt.resolve_ann(args.checkpoint))
    x_cal, _, _ = load_for_model(ann, args.workload, "train", n=args.calib_n)
    snn = ecmt.convert(ann, x_cal, n=args.n, p=args.p, T=args.T)
    payload = {"checkpoint": str(args.checkpoint), "method": args.method, "n": args.n,
               "p": args.p, "T": args.T, "calibration_inputs": len(x_cal),
               "mt_sites": len(snn.thresholds)}
    lines = [f"converted {args.checkpoint} with ECMT: {len(snn.thresholds)} multi-threshold "
             f"sites (n = {args.n}, p = {args.p}, {len(x_cal)} calibration inputs), T = {args.T}"]
    if args.eval_n != 0:
        x, y, _ = load_for_model(ann, args.workload, "test",
                                 n=None if args.eval_n < 0 else args.eval_n)
        acc, ops = ecmt.evaluate(snn, x, y, args.T)
        ann_acc = accuracy(ann, x, y)
        ratio = float(ecmt.paper_energy_ratio(ops, ecmt.ann_ops(ann, x[:1]))[-1])
        payload.update(test_inputs=len(x), ann_accuracy=ann_acc, snn_accuracy=float(acc[-1]),
                       snn_accuracy_per_T=[float(a) for a in acc],
                       energy_ratio_paper=ratio)
        lines.append(f"test accuracy on {len(x)} {args.workload} inputs: ANN {ann_acc:.4f}, "
                     f"SNN at T={args.T} {acc[-1]:.4f}; energy ratio SNN/ANN (paper "
                     f"convention, eq. 30) {ratio:.3f}")
    out = ecmt.save_snn(snn, args.out, extra={"ann_checkpoint": str(args.checkpoint),
                                              "workload": args.workload,
                                              "calibration_inputs": len(x_cal)})
    payload["out"] = str(out)
    lines.append(f"SNN written to {out}")
    if args.graph_out:
        from neurosim.frontends.ecmt import lower_ecmt
        graph = lower_ecmt(snn, x_cal[:64], weight_bits=args.weight_bits)
        gdir = graph.save(args.graph_out)
        payload["graph_dir"] = str(gdir)
        lines.append(f"graph ({len(graph.nodes)} nodes, {args.weight_bits}-bit weights) written "
                     f"to {gdir}")
    emit(args, payload, lines)
    return 0
