"""MIM-SNN study at this machine's scale (issue #19; seed sdt-v3 §3.4, §5.4, §6.2).

    nice -n 10 .venv/bin/python scripts/mim_study.py --out results/mim_study [--img-size 64]

Four measurements on e-spikeformer-tiny and the digits workload (1 torch thread):

1. pretrain: MIM pre-training (50% of the 16-pixel patches masked) of three encoders: SFA
   neurons with SSC (the seed's recipe), LIF (binary spikes, T = 1, v_th 0.5) with SSC, and SFA
   with dense VSC (the leaking baseline); the effective rank (seed eq. 29) of the encoder's
   output spikes on 256 unmasked test images after every epoch. Plot: rank_sfa_vs_lif.png
   (from epoch 1: at initialisation, in eval mode, the output spikes are all 0 and the rank 0).
2. firing: spikes per neuron per step of every encoder layer under one fixed 50% mask, for the
   SSC encoder run with SSC and (same weights) with VSC, for the VSC-pre-trained encoder and
   the LIF+SSC encoder; visible and masked sites apart; the same images unmasked as baseline.
   (An untrained encoder is not measured: with BN's initial running statistics its deep
   layers do not fire in eval mode at all.)
3. finetune: 10% of the training labels (a seeded, class-stratified subset per seed), fine-
   tuning from the SFA+SSC encoder (converted to VSC) vs training from scratch, seeds 0, 1, 2;
   final test accuracy on the whole test split (mean and sample standard deviation).
4. energy: the SFA+SSC encoder lowered with ssc=True and with ssc=False, one masked forward
   pass (8 test images, 50% masked) on tianjic-x16 (sync) and speck-xl (async, windowed):
   energy per inference, synaptic operations and spikes.

5. floor: the decoder alone on all-zero features (same masks and optimiser): the masked-patch
   loss reachable from patch positions only, against which the encoders' losses are read.

Resumable: every step writes OUT/<step>.json (and checkpoints) and is skipped when present;
``--redo STEP`` reruns one. Everything is seeded: a rerun reproduces the numbers.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "e-spikeformer-tiny"
LIF = {"kind": "lif", "tau": 2.0, "v_th": 0.5, "v_reset": 0.0, "reset": "hard"}
ENCODERS = {"sfa_ssc": ({}, "ssc"), "lif_ssc": (LIF, "ssc"), "sfa_vsc": ({}, "vsc")}
STEPS = ("pretrain", "floor", "firing", "finetune", "energy")


def _torch():
    import torch
    torch.set_num_threads(1)
    return torch


def _data(model):
    from neurosim.run.inputs import model_arrays
    return model_arrays(model, "digits")[:2]


IMG = {"size": 32}                      # --img-size (set once in main)


def _create(neuron: dict, seed: int = 0):
    import models
    _torch().manual_seed(seed)
    kw = {"img_size": IMG["size"]} if IMG["size"] != 32 else {}
    return models.create(MODEL, neuron=neuron, **kw) if neuron else models.create(MODEL, **kw)


def step_pretrain(out: Path, args) -> dict:
    from models.mim.pretrain import MIMConfig, pretrain, save_encoder
    from models.mim.probes import effective_rank, encoder_spikes
    torch = _torch()
    res = {}
    for key, (neuron, conv) in ENCODERS.items():
        model = _create(neuron)
        (x_tr, _), (x_te, _) = _data(model)
        probe = torch.as_tensor(x_te[:256])
        ranks, n_feat = [], []

        def on_epoch(epoch, m, ranks=ranks, probe=probe, n_feat=n_feat):
            z = encoder_spikes(m, probe)
            n_feat[:] = [z.shape[1]]
            ranks.append({"epoch": epoch, "effective_rank": effective_rank(z),
                          "firing": float(z.mean())})
            m.train()

        cfg = MIMConfig(mask_ratio=0.5, epochs=args.pretrain_epochs, conv=conv, seed=0)
        t0 = time.perf_counter()
        _, r = pretrain(model, x_tr, cfg, progress=False, on_epoch=on_epoch)
        save_encoder(model, out / f"{key}.safetensors", cfg, r, {"workload": "digits"})
        res[key] = {"neuron": neuron or "sfa", "conv": conv, "loss": r.history,
                    "features": n_feat[0],
                    "rank": ranks, "seconds": time.perf_counter() - t0}
        print(f"pretrain {key}: loss {r.history[-1]['loss']:.4f}, rank "
              f"{ranks[0]['effective_rank']:.2f} -> {ranks[-1]['effective_rank']:.2f}",
              flush=True)
    _plot_rank(res, out / "rank_sfa_vs_lif.png")
    return res


def _plot_rank(res: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for key, label, style in (("sfa_ssc", "SFA (integer spikes, D=4) + SSC", "-o"),
                              ("lif_ssc", "LIF (binary spikes) + SSC", "-s")):
        pts = [p for p in res[key]["rank"] if p["epoch"] >= 1]     # epoch 0: silent (doc)
        ax.plot([p["epoch"] for p in pts], [p["effective_rank"] for p in pts], style,
                label=label, markersize=4)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("MIM pre-training epoch")
    ax.set_ylabel(f"effective rank of encoder output spikes\n(256 test images x "
                  f"{res['sfa_ssc'].get('features', '?')} features)")
    ax.set_title(f"e-spikeformer-tiny, digits at {IMG['size']} px, 50% of 16-px patches "
                 f"masked", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def step_floor(out: Path, args) -> dict:
    """The decoder alone, fed all-zero encoder features, trained on the same masks, epochs and
    optimiser: the loss reachable from patch positions only. A pre-trained encoder whose loss
    is no lower than this floor has not given the decoder any information."""
    import math

    from models.mim.decoder import MIMDecoder
    from models.mim.masking import masked_mse, normalised_patches, random_patch_mask
    from models.mim.pretrain import MIMConfig
    torch = _torch()
    model = _create({})
    (x_tr, _), _ = _data(model)
    x = torch.as_tensor(x_tr)
    cfg = MIMConfig(epochs=args.pretrain_epochs)
    g, c = x.shape[-1] // 16, model.neurosim_config["config"]["dims"][3]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    dec = MIMDecoder(c, g, 16 * 16 * x.shape[1], cfg.decoder_width, cfg.decoder_depth,
                     cfg.decoder_heads)
    steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
    opt = torch.optim.AdamW(dec.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    hist = []
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            xb = x[perm[i:i + cfg.batch_size]]
            vis = random_patch_mask(len(xb), g, cfg.mask_ratio, gen)
            loss = masked_mse(dec(torch.zeros(len(xb), c, g, g), vis),
                              normalised_patches(xb, 16), vis)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(xb)
        hist.append({"epoch": epoch + 1, "loss": total / len(x)})
    print(f"floor (decoder on zero features): loss {hist[-1]['loss']:.4f}", flush=True)
    return {"loss": hist}


def _mask(n: int, img: int, seed: int = 1234):
    from models.mim.masking import random_patch_mask, upsample_mask
    torch = _torch()
    vis = random_patch_mask(n, img // 16, 0.5, torch.Generator().manual_seed(seed))
    return upsample_mask(vis, img)


def step_firing(out: Path, args) -> dict:
    import models
    from models.mim.probes import firing_rates
    from models.mim.ssc import to_ssc, to_vsc
    torch = _torch()
    base = _create({})
    (_, _), (x_te, _) = _data(base)
    x = torch.as_tensor(x_te[:256])
    vp = _mask(len(x), x.shape[-1])
    ssc = to_ssc(models.load_checkpoint(out / "sfa_ssc.safetensors"))
    runs = {"sfa_ssc encoder, SSC": ssc,
            "sfa_ssc encoder, VSC (same weights)": to_vsc(copy.deepcopy(ssc)),
            "sfa_vsc encoder, VSC": models.load_checkpoint(out / "sfa_vsc.safetensors"),
            "lif_ssc encoder, SSC": to_ssc(models.load_checkpoint(out / "lif_ssc.safetensors"))}
    res = {}
    for name, m in runs.items():
        masked = firing_rates(m, x * vp, vp)
        full = firing_rates(m, x, None)
        deep = masked[-1]
        res[name] = {"deepest_layer": deep["layer"], "deepest_rate_masked_input": deep["rate"],
                     "deepest_rate_visible_sites": deep["rate_visible"],
                     "deepest_rate_masked_sites": deep["rate_masked"],
                     "deepest_rate_unmasked_input": full[-1]["rate"],
                     "layers": masked, "layers_unmasked": full}
        print(f"firing {name}: deepest {deep['layer']} {deep['rate']:.4f} spikes/neuron/step "
              f"(visible {deep['rate_visible']:.4f}, masked {deep['rate_masked']:.4f}; "
              f"unmasked input {full[-1]['rate']:.4f})", flush=True)
    return res


def _label_subset(y, fraction: float, seed: int):
    import numpy as np
    rng = np.random.default_rng(seed)
    idx = []
    for c in np.unique(y):
        cls = np.flatnonzero(y == c)
        idx += list(rng.choice(cls, max(1, round(fraction * len(cls))), replace=False))
    return np.sort(np.asarray(idx))


def step_finetune(out: Path, args) -> dict:
    from models.mim.pretrain import finetune
    from models.train import TrainConfig, fit
    base = _create({})
    (x_tr, y_tr), (x_te, y_te) = _data(base)
    res = {"fraction": args.label_fraction, "epochs": args.finetune_epochs, "runs": []}
    for seed in args.seeds:
        idx = _label_subset(y_tr, args.label_fraction, seed)
        cfg = TrainConfig(epochs=args.finetune_epochs, batch_size=32, seed=seed, threads=1)
        _, r_mim = finetune(out / "sfa_ssc.safetensors", x_tr[idx], y_tr[idx], x_te, y_te, cfg,
                            progress=False)
        scratch = _create({}, seed)
        r_scr = fit(scratch, x_tr[idx], y_tr[idx], x_te, y_te, cfg, progress=False)
        row = {"seed": seed, "labels": len(idx), "mim": r_mim.final_test_accuracy,
               "mim_best": r_mim.best_test_accuracy, "scratch": r_scr.final_test_accuracy,
               "scratch_best": r_scr.best_test_accuracy}
        res["runs"].append(row)
        print(f"finetune seed {seed} ({len(idx)} labels): MIM {row['mim']:.4f}, scratch "
              f"{row['scratch']:.4f}", flush=True)
    for k in ("mim", "scratch"):
        v = [r[k] for r in res["runs"]]
        res[k] = {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                  "min": min(v), "max": max(v)}
    return res


def step_energy(out: Path, args) -> dict:
    import numpy as np

    import models
    from chips.mapping import MappingError
    from neurosim.frontends.lower import lower
    from neurosim.run.simulate import simulate
    torch = _torch()
    model = models.load_checkpoint(out / "sfa_ssc.safetensors")      # VSC modules, SSC weights
    (x_tr, _), (x_te, _) = _data(model)
    x = torch.as_tensor(x_te[:args.energy_n])
    xm = (x * _mask(len(x), x.shape[-1])).numpy()
    from models.mim.probes import firing_rates
    from models.mim.ssc import to_ssc
    ref = firing_rates(to_ssc(copy.deepcopy(model)), torch.as_tensor(xm), _mask(len(x),
                                                                               x.shape[-1]))
    calib = (torch.as_tensor(x_tr[:64]) * _mask(64, x.shape[-1], seed=99)).numpy()
    res = {"inputs": int(len(xm)), "mask_ratio": 0.5}
    vis = _mask(len(x), x.shape[-1])
    for ssc in (True, False):
        graph = lower(model, calib, ssc=ssc)
        for chip in ("tianjic-x16", "speck-xl"):
            key = f"{chip} {'SSC' if ssc else 'VSC'}"
            try:
                r = simulate(graph, chip, xm, record="all" if chip == "tianjic-x16" else "counts")
            except MappingError as err:              # e.g. 64-px maps on tianjic-x16's cores
                res[key] = {"does_not_fit": str(err)}
                print(f"energy {key}: does not fit ({str(err).splitlines()[-1].strip()})")
                continue
            tot = r.totals()
            e = r.energy["per_inference"]
            res[key] = {"energy_j_per_inference": e["total_j"], "dynamic_j": e["dynamic_j"],
                        "static_j": e["static_j"],
                        "synaptic_ops_per_inference": (tot["ac"] + tot["mac"]) / len(xm),
                        "ac_per_inference": tot["ac"] / len(xm),
                        "spikes_per_inference": tot["spikes"] / len(xm),
                        "mean_latency_s": float(np.mean(r.latency_s))}
            if r.spikes:
                res[key]["spikes_at_masked_sites"] = _masked_share(graph, r.spikes, vis)
            print(f"energy {key}: {e['total_j'] * 1e6:.3f} uJ/inference (dynamic "
                  f"{e['dynamic_j'] * 1e6:.3f}), {res[key]['synaptic_ops_per_inference']:.0f} "
                  f"synaptic ops, {res[key]['spikes_per_inference']:.0f} spikes", flush=True)
    res["torch_ssc_max_rate_at_masked_sites"] = max(
        r["rate_masked"] for r in ref)                        # 0: SSC keeps them silent
    return res


def _masked_share(graph, spikes: dict, vis) -> float:
    """Fraction of all spikes of the graph's spatial neuron populations that sit at sites
    whose patch is masked (the chip's activity leaking into the masked half)."""
    import numpy as np
    from torch.nn import functional as F

    from neurosim.ir import graph as G
    at_masked = total = 0.0
    for n, op in graph.nodes.items():
        s = spikes.get(n)
        if not isinstance(op, G.Neurons) or s is None or s.ndim != 5:
            continue
        v = (F.adaptive_max_pool2d(vis.double(), s.shape[-2:]) > 0).numpy()[None]  # 1,B,1,h,w
        total += float(s.sum())
        at_masked += float(np.where(v, 0, s).sum())
    return at_masked / total if total else 0.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/mim_study", help="output folder (resumable)")
    p.add_argument("--pretrain-epochs", type=int, default=20)
    p.add_argument("--finetune-epochs", type=int, default=40)
    p.add_argument("--label-fraction", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--energy-n", type=int, default=8)
    p.add_argument("--img-size", type=int, default=32,
                   help="digits upsampled to this side (32: 2x2 patches of 16 px; 64: 4x4)")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    p.add_argument("--redo", nargs="*", choices=STEPS, default=[])
    args = p.parse_args(argv)
    IMG["size"] = args.img_size
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fns = {"pretrain": step_pretrain, "floor": step_floor, "firing": step_firing,
           "finetune": step_finetune, "energy": step_energy}
    for step in args.steps:
        path = out / f"{step}.json"
        if path.exists() and step not in args.redo:
            print(f"{step}: done ({path})", flush=True)
            continue
        t0 = time.perf_counter()
        res = fns[step](out, args)
        res["_seconds"] = time.perf_counter() - t0
        res["_args"] = {k: v for k, v in vars(args).items() if k not in ("steps", "redo")}
        path.write_text(json.dumps(res, indent=1, sort_keys=True))
        print(f"{step}: {res['_seconds']:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
