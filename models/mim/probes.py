"""Measurements on MIM encoders: per-layer firing rates under a mask, and the effective rank of
encoder features (seed sdt-v3 §5.4 eq. 29).

Effective rank (Roy & Vetterli 2007, the seed's eq. 29): with sigma_i the singular values of
the feature matrix Z [N samples, F features] and p_i = sigma_i / sum_j sigma_j,
erank(Z) = exp(-sum_i p_i log p_i), between 1 and min(N, F). Z is taken as is (not centred),
as the equation is written.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.mim.pretrain import encode
from models.neurons import LIFNode, SFANode


def effective_rank(z: np.ndarray | torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of a [N, F] matrix (module doc)."""
    z = torch.as_tensor(z, dtype=torch.float64)
    if z.dim() != 2 or min(z.shape) < 1:
        raise ValueError(f"effective rank needs a 2-D [samples, features] matrix, got "
                         f"{tuple(z.shape)}")
    s = torch.linalg.svdvals(z)
    if float(s.sum()) == 0.0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def encoder_spikes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The encoder's output spikes on unmasked images: the head's neuron applied to every site
    of the stage-4 map, flattened per sample, float [N, C*h*w]."""
    model.eval()
    z = encode(model, x)
    return model.head_neuron(z.unsqueeze(0))[0].flatten(1)


def _neurons(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (SFANode, LIFNode))
            and n != "head_neuron"]


@torch.no_grad()
def firing_rates(model: nn.Module, x: torch.Tensor, visible_px: torch.Tensor | None = None
                 ) -> list[dict]:
    """Spikes per neuron per time step of every encoder neuron layer, in forward order, on
    inputs ``x`` (already masked) with the pixel map ``visible_px`` [B, 1, H, W] (None: no
    mask). Each row: layer, rate (all sites), rate_visible / rate_masked (sites whose patch is
    visible / masked at that layer's resolution; absent without a mask). SFA outputs count
    round(clamp(u, 0, D)) spikes (value x Norm); LIF outputs count 0 or 1."""
    model.eval()
    rows, order = {}, []
    hooks = []
    for name, m in _neurons(model):
        norm = m.cfg.norm if isinstance(m, SFANode) else 1.0

        def hook(mod, inp, out, name=name, norm=norm):
            s = out.detach().double() * norm                       # [T, B, C, H, W]
            rec = {"layer": name, "rate": float(s.mean())}
            if visible_px is not None and s.dim() == 5:
                v = F.adaptive_max_pool2d(visible_px.double(), s.shape[-2:]) > 0   # [B,1,h,w]
                v = v.unsqueeze(0).expand(s.shape[0], -1, s.shape[2], -1, -1)
                rec["rate_visible"] = float(s[v].mean()) if v.any() else 0.0
                rec["rate_masked"] = float(s[~v].mean()) if (~v).any() else 0.0
            rows[name] = rec
            order.append(name)
        hooks.append(m.register_forward_hook(hook))
    try:
        encode(model, x, visible_px)
    finally:
        for h in hooks:
            h.remove()
    return [rows[n] for n in dict.fromkeys(order)]
