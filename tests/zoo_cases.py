"""Small configurations of every zoo family, with BN statistics perturbed so that neurons fire
(untrained weights alone leave most layers silent). Shared by lowering and engine tests."""
from __future__ import annotations

import numpy as np
import torch

import models

SMALL = {  # family case -> (registered name, overrides)
    "spikformer": ("spikformer-cifar-4-256",
                   dict(img_size=16, in_channels=1, dims=32, depths=1, heads=2, T=3)),
    "sdt": ("sdt-cifar-2-512", dict(img_size=16, in_channels=1, dims=32, depths=1, heads=2, T=3)),
    "meta-sdsa3": ("meta-spikeformer-tiny", dict(T=2)),
    "meta-sdsa1": ("meta-spikeformer-tiny", dict(T=2, attn="sdsa1")),
    "meta-sdsa2": ("meta-spikeformer-tiny", dict(T=2, attn="sdsa2")),
    "meta-sdsa4": ("meta-spikeformer-tiny", dict(T=2, attn="sdsa4")),
    "e-spikeformer": ("e-spikeformer-tiny", dict(D=4)),
    "autost": ("autost-tiny", dict(img_size=16, in_channels=1, dims=32, depths=2, heads=[2, 4],
                                   mlp_ratio=[2.0, 3.0], T=2)),
}


def perturb(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Data-driven BN init: running statistics from one train-mode pass over seeded inputs,
    then seeded affine parameters, so every layer sees normalised inputs and fires."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d))]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None                      # cumulative average over the pass
            if m.affine:
                m.weight.uniform_(0.8, 1.8, generator=g)
                m.bias.uniform_(0.2, 0.9, generator=g)
        model.train()
        model(torch.from_numpy(inputs_for(model, 32, seed=seed + 100)))
        for m in bns:
            m.momentum = 0.1
    return model.eval()


def small_model(case: str, seed: int = 0) -> torch.nn.Module:
    name, overrides = SMALL[case]
    torch.manual_seed(seed)
    return perturb(models.create(name, **overrides), seed + 1)


def inputs_for(model, n: int = 20, seed: int = 0) -> np.ndarray:
    c = model.neurosim_config["config"]
    rng = np.random.default_rng(seed)
    return rng.random((n, c["in_channels"], c["img_size"], c["img_size"]), dtype=np.float32)
