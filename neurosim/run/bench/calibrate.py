"""Firing calibration of untrained benchmark models: thresholds set so that every layer fires
at a chosen rate on the benchmark's inputs (untrained weights leave most layers silent or
saturated)."""
from __future__ import annotations

import numpy as np


def calibrate_firing(model, x, rate: float = 0.15, seed: int = 0) -> dict[str, float]:
    """Calibrate an untrained model so that every layer fires at about ``rate`` (untrained
    weights leave most layers silent or saturated). BN statistics come from one train-mode pass
    over ``x`` (weight 1, bias 0); then, in one eval pass in topological order, each LIF
    population's threshold is set to the (1 - rate) quantile of its first-step membrane
    H_1 = X_1 / tau, so on ``x`` it fires a fraction ``rate`` at step 1. Returns each neuron
    module's firing rate on ``x`` after calibration."""
    import torch
    from models.neurons import LIFNode

    torch.manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.weight.fill_(1.0)
            m.bias.zero_()
        model.train()
        model(x)
        for m in bns:
            m.momentum = 0.1
        model.eval()

        def set_threshold(mod, inp):
            c = mod.cfg
            h1 = inp[0][0] / c.tau if (c.kind != "if" and c.decay_input) else inp[0][0]
            c.v_th = max(float(torch.quantile(h1.flatten().double(), 1.0 - rate)), 1e-3)

        pre = [m.register_forward_pre_hook(set_threshold) for m in model.modules()
               if isinstance(m, LIFNode)]
        model(x)
        for h in pre:
            h.remove()
    return calibrate_firing_rates(model, x)


def calibrate_firing_rates(model, x) -> dict[str, float]:
    """Mean firing rate of every neuron module of ``model`` on ``x`` (eval mode)."""
    import torch
    from models.neurons import NEURON_MODULES

    rates: dict[str, float] = {}
    hooks = [mod.register_forward_hook(
        lambda mod, inp, out, name=name: rates.__setitem__(name, float(out.mean())))
        for name, mod in model.named_modules() if isinstance(mod, NEURON_MODULES)]
    with torch.no_grad():
        model(torch.from_numpy(np.asarray(x)))
    for h in hooks:
        h.remove()
    return rates
