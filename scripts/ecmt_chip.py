"""ECMT on the virtual chips (issue #18): the converted vit-tiny lowered to the Graph IR
(``neurosim.frontends.ecmt``) and run on tianjic-x16 (sync) and speck-xl (async, windowed),
energy per inference beside the paper convention, for T in {1, 2, 4, 6, 8, 10, 12}.

    nice -n 10 .venv/bin/python scripts/ecmt_chip.py --n-inputs 60 --out ecmt_chip

The graph stores the chips' 8-bit weights (``--weight-bits``; the parallel-normalized weights
span 2^(n-1) theta, so the smallest levels keep few bits). Per T and chip: accuracy on the
first ``--n-inputs`` digits test images, the run's dynamic and static energy per inference
(``neurosim.simulate``: the chip's energy table and power model), and the ratio to the ANN's
energy on the same chip's prices (``neurosim.costing.conversion``: MACs x (mac_pj +
weight_read_pj) + non-linear elements x mac_pj; dynamic only: the ANN is not run on the chip);
plus the paper convention (eq. 30) of the same counts from the PyTorch SNN. The SNN's energy
by category at T = 8 shows where it goes. Writes OUT.md and OUT.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import models
import neurosim
from models.convert import ecmt
from neurosim.costing.conversion import ecmt_chip_energy
from neurosim.frontends.ecmt import lower_ecmt
from neurosim.run.inputs import load_for_model

CHIPS = (("tianjic-x16", "sync"), ("speck-xl", "async"))


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="vit-tiny")
    ap.add_argument("--n", type=int, default=8, help="levels per sign")
    ap.add_argument("--Ts", type=_ints, default=[1, 2, 4, 6, 8, 10, 12])
    ap.add_argument("--n-inputs", type=int, default=60, help="test images simulated")
    ap.add_argument("--weight-bits", type=int, default=8)
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--out", default="ecmt_chip")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ann = models.load_checkpoint(ecmt.resolve_ann(args.checkpoint))
    x_cal, _, _ = load_for_model(ann, "digits", "train", n=args.calib)
    x, y, _ = load_for_model(ann, "digits", "test", n=args.n_inputs)
    ann_ops = ecmt.ann_ops(ann, x[:1])
    snn = ecmt.convert(ann, x_cal, n=args.n, T=max(args.Ts))
    acc_float, ops = ecmt.evaluate(snn, x, y, max(args.Ts))
    paper = ecmt.paper_energy_ratio(ops, ann_ops)
    rows, by_cat = [], {}
    for T in args.Ts:
        snn.T = T
        graph = lower_ecmt(snn, x_cal[:64], weight_bits=args.weight_bits)
        for chip, mode in CHIPS:
            t0 = time.perf_counter()
            res = neurosim.simulate(graph, chip, x, mode=mode, labels=y, batch_size=20,
                                    **({"async_mode": "windowed"} if mode == "async" else {}))
            e = res.energy
            total = res.energy_j / res.n
            static = e["by_category_j"]["static"] / res.n
            ann_pj = ecmt_chip_energy(ops, ann_ops, neurosim.load_chip(chip).energy())[
                "ann_total_pj"]
            rows.append({"T": T, "chip": chip, "accuracy": res.accuracy,
                         "accuracy_float_snn": float(acc_float[T - 1]),
                         "snn_dynamic_uj": (total - static) * 1e6, "snn_static_uj": static * 1e6,
                         "ann_dynamic_uj": ann_pj * 1e-6,
                         "ratio_dynamic": (total - static) / (ann_pj * 1e-12),
                         "ratio_paper": float(paper[T - 1]),
                         "latency_us": float(np.mean(res.latency_s)) * 1e6,
                         "seconds": time.perf_counter() - t0})
            if T == 8:
                by_cat[chip] = {k: v / res.n * 1e6 for k, v in e["by_category_j"].items()}
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "by_category_uj_T8": by_cat,
                                                    "args": vars(args)}, indent=1))
    lines = [f"ECMT vit-tiny (n = {args.n}, {args.weight_bits}-bit weights) on the chips, "
             f"first {len(x)} digits test images; energies per inference (uJ).", "",
             "| T | chip | accuracy (chip) | accuracy (float SNN) | SNN dynamic | SNN static | "
             "ANN dynamic (chip prices) | ratio dynamic | ratio paper | latency (us) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['T']} | {r['chip']} | {100 * r['accuracy']:.1f} | "
                     f"{100 * r['accuracy_float_snn']:.1f} | {r['snn_dynamic_uj']:.3f} | "
                     f"{r['snn_static_uj']:.3f} | {r['ann_dynamic_uj']:.3f} | "
                     f"{r['ratio_dynamic']:.2f} | {r['ratio_paper']:.3f} | "
                     f"{r['latency_us']:.1f} |")
    lines += ["", "SNN energy by category at T = 8 (uJ per inference):", ""]
    for chip, cats in by_cat.items():
        lines.append(f"- {chip}: " + ", ".join(f"{k} {v:.3f}" for k, v in cats.items() if v))
    md = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
