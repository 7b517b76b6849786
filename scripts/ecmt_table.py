"""ECMT table (issue #18; seed ecmt Table 1 and Fig. 5): accuracy and energy ratio SNN/ANN of the
converted ViT for T in {1, 2, 4, 6, 8, 10, 12} and n in {4, 6, 8}.

    nice -n 10 .venv/bin/python scripts/ecmt_table.py --checkpoint vit-tiny --out ecmt_table

Calibration: the first ``--calib`` digits train images (p = 0.99, Algorithm 1); evaluation: the
whole digits test split. One run of T_max steps per n gives every T (the logits at T are the mean
of steps 1..T). Energy ratio, paper convention (eq. 30): E_AC x (linear + matrix-product ACs) /
E_MAC x (ANN MACs incl. Table 3's non-linear counts), MACs_SNN = 0; the "+EC" column also
prices the general ECs' evaluation of softmax / GELU / LayerNorm every step at E_MAC.
The chip rows price the same counts with ``tianjic-x16`` / ``speck-xl``'s energy tables
(``neurosim.costing.conversion``: adds with their operand reads, EC non-linearities, EC
accumulator and MT membrane traffic; dynamic only, no routing or static power): an estimate on
the PyTorch counts, not a chip-engine run (the converted ViT is not lowered to the Graph IR).
Writes ``OUT.md`` and ``OUT.csv``; prints the markdown. Deterministic (no sampling).
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

import models
import neurosim
from models.convert import ecmt
from models.train import accuracy
from neurosim.costing.conversion import ecmt_chip_energy
from neurosim.run.inputs import load_for_model

CHIPS = ("tianjic-x16", "speck-xl")


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def study(checkpoint: str, ns: list[int], Ts: list[int], p: float, n_calib: int) -> dict:
    ann = models.load_checkpoint(ecmt.resolve_ann(checkpoint))
    x_cal, _, _ = load_for_model(ann, "digits", "train", n=n_calib)
    x, y, _ = load_for_model(ann, "digits", "test")
    ann_acc = accuracy(ann, x, y)
    ann_ops = ecmt.ann_ops(ann, x[:1])
    tables = {c: neurosim.load_chip(c).energy() for c in CHIPS}
    rows, parts = [], {}
    for n in ns:
        t0 = time.perf_counter()
        snn = ecmt.convert(ann, x_cal, n=n, p=p, T=max(Ts))
        acc, ops = ecmt.evaluate(snn, x, y, max(Ts))
        paper = ecmt.paper_energy_ratio(ops, ann_ops)
        with_ec = ecmt.paper_energy_ratio(ops, ann_ops, with_ec=True)
        chip = {c: ecmt_chip_energy(ops, ann_ops, t) for c, t in tables.items()}
        parts[n] = {c: {"snn_pj": {k: v.tolist() for k, v in e["snn_pj"].items()},
                        "ann_pj": e["ann_pj"]} for c, e in chip.items()}
        for T in Ts:
            rows.append({"n": n, "T": T, "accuracy": float(acc[T - 1]),
                         "ratio_paper": float(paper[T - 1]), "ratio_paper_ec": float(with_ec[T - 1]),
                         "spikes_per_input": float(ops["spikes"][T - 1]),
                         "ac_per_input": float(ops["ac_linear"][T - 1] + ops["ac_matmul"][T - 1]),
                         **{f"ratio_{c}": float(e["ratio"][T - 1]) for c, e in chip.items()}})
        print(f"n={n}: {time.perf_counter() - t0:.1f} s", flush=True)
    return {"checkpoint": checkpoint, "ann_accuracy": ann_acc, "ann_ops": ann_ops, "p": p,
            "n_calib": len(x_cal), "n_test": len(x), "rows": rows, "parts": parts}


def markdown(res: dict, Ts: list[int], ns: list[int]) -> str:
    ops = res["ann_ops"]
    head = "| n | metric | ANN | " + " | ".join(f"T={T}" for T in Ts) + " |"
    out = [f"ECMT on digits ({res['checkpoint']}: ANN test accuracy "
           f"{100 * res['ann_accuracy']:.2f}% on {res['n_test']} images; thresholds p = "
           f"{res['p']} from {res['n_calib']} train images). ANN per image: "
           f"{ops['mac_linear']:,.0f} linear MACs, {ops['mac_matmul']:,.0f} matrix-product MACs, "
           f"{ops['nonlinear']:,.0f} non-linear elements.", "", head,
           "|" + "---|" * (len(Ts) + 3)]
    for n in ns:
        by_t = {r["T"]: r for r in res["rows"] if r["n"] == n}
        for key, label, ann, fmt in (("accuracy", "accuracy (%)", 100 * res["ann_accuracy"],
                                      "{:.2f}"),
                                     ("ratio_paper", "energy ratio, paper", 1.0, "{:.3f}"),
                                     ("ratio_paper_ec", "energy ratio, paper + EC", 1.0,
                                      "{:.3f}"),
                                     *((f"ratio_{c}", f"energy ratio, {c} prices", 1.0, "{:.3f}")
                                       for c in CHIPS)):
            scale = 100 if key == "accuracy" else 1
            out.append(f"| {n} | {label} | {fmt.format(ann)} | "
                       + " | ".join(fmt.format(scale * by_t[T][key]) for T in Ts) + " |")
    out += ["", "Chip-priced parts per input (pJ) at T = 8, n = 8 (SNN) and per ANN inference:", ""]
    if 8 in res["parts"] and max(Ts) >= 8:
        for c, e in res["parts"][8].items():
            snn = ", ".join(f"{k} {v[7]:,.0f}" for k, v in e["snn_pj"].items())
            ann = ", ".join(f"{k} {v:,.0f}" for k, v in e["ann_pj"].items())
            out.append(f"- {c}: SNN {snn}; ANN {ann}")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="vit-tiny", help="shipped name or file")
    ap.add_argument("--ns", type=_ints, default=[4, 6, 8], help="levels per sign, e.g. 4,6,8")
    ap.add_argument("--Ts", type=_ints, default=[1, 2, 4, 6, 8, 10, 12])
    ap.add_argument("--p", type=float, default=0.99)
    ap.add_argument("--calib", type=int, default=256, help="calibration train images")
    ap.add_argument("--out", default="ecmt_table", help="output prefix (.md and .csv)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = study(args.checkpoint, args.ns, args.Ts, args.p, args.calib)
    md = markdown(res, args.Ts, args.ns)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(res["rows"][0]))
        w.writeheader()
        w.writerows(res["rows"])
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
