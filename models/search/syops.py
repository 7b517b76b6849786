"""The released AutoST code's score: a syops-counter count on an all-ones input.

The repo's ``evolution.py`` builds each candidate (num_classes = 100, T = 4, fresh weights),
runs ``syops.get_model_complexity_info`` on a batch of 32 all-ones 3x32x32 images and ranks by
``ops[0]``. The syops-counter library (iCGY96/syops-counter) keeps, per hooked module, four
numbers; this module applies its rules to the zoo's ``autost`` model, module by module:

    rule (input x, output y; "spike" = x holds at most 2 distinct values, all in [0, 1];
          rate = mean(x) if spike else 1)
    Conv2d k x k    dense = k^2 C_in C_out / groups * (batch * H_out W_out) (+ C_out per position
                    with bias)
    1x1 Conv2d      the repo's nn.Linear on [T*B, N, C]: dense = numel(x) C_out (+ C_out per
                    row of the T*B batch with bias: the library's per-row bias rule)
    BatchNorm       dense = 2 numel(x) (affine)
    max pool        dense = numel(x)
    neuron          dense = numel(x), and numel(x) counted as ACs whatever the input
    head Linear     the repo applies it once to the time mean: dense = B D K + K B
    then            ops = sum of dense;  ACs += dense * rate where the input is spike;
                    MACs += dense where it is not

All sums are divided by the batch size (per image). The attention products (``q @ k^T @ v``)
are functional in the repo's model and so are not counted by the library; they are not counted
here either. An all-ones image passes the library's spike test (one distinct value, 1), so the
first conv counts as ACs at rate 1.

``ops`` (the released code's indicator) is the dense count: it does not depend on the weights
or the input. The activity-dependent part is ``acs + macs`` (``syops-ac`` in the search CLI),
which depends on the untrained network's firing on the all-ones input, so on the seed of the
initial weights.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import layers as L
from .. import neurons as N
from .space import Arch, InputSpec

NEURON_TYPES = (N.LIFNode, N.SFANode, N.MultiThresholdNode, N.LearnableThresholdLIF)
REPO_BATCH = 32      # evolution.py: OnesDataset(32, (3, 32, 32)), batch_size 32


def _spike_rate(x: torch.Tensor) -> tuple[bool, float]:
    """The library's spike test and rate (iCGY96 ``spike_rate``)."""
    if x.numel() and len(torch.unique(x)) <= 2 and float(x.max()) <= 1 and float(x.min()) >= 0:
        return True, float(x.sum() / x.numel())
    return False, 1.0


def _dense(mod: nn.Module, x: torch.Tensor, y: torch.Tensor, head: nn.Module | None,
           batch: int) -> int:
    if isinstance(mod, nn.Conv2d):
        if mod.kernel_size == (1, 1) and mod.groups == 1:         # the repo's token Linear
            bias = mod.out_channels * x.shape[0] if mod.bias is not None else 0
            return x.numel() * mod.out_channels + bias
        per_pos = int(np.prod(mod.kernel_size)) * mod.in_channels * mod.out_channels // mod.groups
        positions = x.shape[0] * int(np.prod(y.shape[2:]))
        return per_pos * positions + (mod.out_channels * positions if mod.bias is not None else 0)
    if isinstance(mod, nn.BatchNorm2d):
        return x.numel() * (2 if mod.affine else 1)
    if isinstance(mod, L.MaxPool):
        return x.numel()
    if isinstance(mod, nn.Linear):
        rows = batch if mod is head else int(np.prod(x.shape[:-1]))
        return rows * mod.in_features * mod.out_features + (
            mod.out_features * rows if mod.bias is not None else 0)
    return x.numel()                                                # neurons


@torch.no_grad()
def syops_count(model: nn.Module, inputs: InputSpec, batch: int = 1) -> dict:
    """{"ops", "acs", "macs"} per image of ``model`` (eval mode) on ``batch`` all-ones images
    (the repo uses 32 identical images; in eval mode every image gives the same counts, so one
    suffices and is the default)."""
    head = getattr(model, "head", None)
    acc = {"ops": 0.0, "acs": 0.0, "macs": 0.0}

    def hook(mod, args, out):
        x = args[0]
        dense = _dense(mod, x, out, head, batch)
        acc["ops"] += dense
        if isinstance(mod, NEURON_TYPES):
            acc["acs"] += x.numel()
            return
        spike, rate = _spike_rate(x)
        if spike:
            acc["acs"] += dense * rate
        else:
            acc["macs"] += dense

    types = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, L.MaxPool) + NEURON_TYPES
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, types)]
    was_training = model.training
    try:
        model.eval()
        model(torch.ones(batch, inputs.in_channels, inputs.img_size, inputs.img_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {k: v / batch for k, v in acc.items()}


def build_untrained(arch: Arch, inputs: InputSpec, seed: int = 0) -> nn.Module:
    """The zoo ``autost`` model of ``arch`` with weights drawn from ``torch`` seeded ``seed``."""
    from ..registry import build
    torch.manual_seed(seed)
    return build("autost", arch.model_config(inputs), name="autost-search")


def arch_syops(arch: Arch, inputs: InputSpec, seed: int = 0) -> dict:
    """:func:`syops_count` of the untrained model of ``arch`` (weights seeded by ``seed``)."""
    return syops_count(build_untrained(arch, inputs, seed), inputs)


__all__ = ["REPO_BATCH", "arch_syops", "build_untrained", "syops_count"]
