"""Leaf layers every zoo model is built from: the vocabulary the lowering understands.

Contract (relied on by ``neurosim.frontends.lower``): a model's ``forward`` calls only the modules below,
the neuron modules of ``models.neurons``, ``torch.nn.Linear`` and ``+`` (residual adds), so that
``torch.fx`` sees a dataflow graph of known leaf modules. Every activation between leaves is shaped
[T, B, C, H, W] (tokens are the H x W positions of the feature map; 1x1 convolutions act as the
token-wise linear layers), except after ``TokenMean`` ([T, B, C]) and ``TimeMean`` ([B, K]).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _seq(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a batch-wise function to [T, B, ...] by merging T and B."""
    T, B = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape(T, B, *y.shape[1:])


class Encoder(nn.Module):
    """Direct encoding: a static image [B, C, H, W] is repeated over T steps; an event tensor
    [T, B, C, H, W] with matching T passes through."""

    def __init__(self, T: int):
        super().__init__()
        if int(T) != T or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T}")
        self.T = int(T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x.unsqueeze(0).expand(self.T, *x.shape).contiguous()
        if x.dim() == 5:
            if x.shape[0] != self.T:
                raise ValueError(f"input has {x.shape[0]} time steps, model expects T={self.T}")
            return x
        raise ValueError(f"input must be [B, C, H, W] or [T, B, C, H, W], got {tuple(x.shape)}")


class ConvBN(nn.Module):
    """Conv2d (optionally depthwise / grouped) followed by BatchNorm2d, over [T, B, C, H, W]."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = False, bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(c_out) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def f(z):
            z = self.conv(z)
            return self.bn(z) if self.bn is not None else z

        return _seq(f, x)


class BNAndPad(nn.Module):
    """BatchNorm whose output is padded with BN(0) (Meta-SpikeFormer ``BNAndPadLayer``)."""

    def __init__(self, channels: int, pad: int = 1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.pad = pad

    def pad_values(self) -> torch.Tensor:
        """BN applied to zero, per channel: the value written into the padding ring."""
        bn = self.bn
        w = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
        b = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        return b - bn.running_mean * w / torch.sqrt(bn.running_var + bn.eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.bn(z)
        if self.pad == 0:
            return y
        y = F.pad(y, [self.pad] * 4)
        pv = self.pad_values().view(1, -1, 1, 1)
        p = self.pad
        y[:, :, :p, :] = pv
        y[:, :, -p:, :] = pv
        y[:, :, :, :p] = pv
        y[:, :, :, -p:] = pv
        return y


class RepConvBN(nn.Module):
    """Meta-SpikeFormer RepConv followed by BN: 1x1 -> BN(pad 1) -> dw3x3 -> 1x1 -> BN, then BN.

    Mathematically one 3x3 convolution with padding 1 plus a bias; the lowering fuses it (or
    keeps the three stages) and records which form it counted.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pw1 = nn.Conv2d(c_in, c_in, 1, bias=False)
        self.bn_pad = BNAndPad(c_in, pad=1)
        self.dw = nn.Conv2d(c_in, c_in, 3, 1, 0, groups=c_in, bias=False)
        self.pw2 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _seq(lambda z: self.bn2(self.bn1(self.pw2(self.dw(self.bn_pad(self.pw1(z)))))), x)


class MaxPool(nn.Module):
    """2-D max pooling over [T, B, C, H, W] (on spikes: OR pooling)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2, padding: int = 1):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _seq(lambda z: F.max_pool2d(z, self.kernel_size, self.stride, self.padding), x)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[T, B, C, H, W] -> [T, B, heads, N, C/heads]."""
    T, B, C, H, W = x.shape
    return x.reshape(T, B, heads, C // heads, H * W).transpose(-1, -2)


class SpikeMatmul(nn.Module):
    """Per-head spike x spike product q @ (k^T @ v) * scale (SSA, SDSA-3/4, E-SDSA).

    Inputs [T, B, C, H, W] (spikes or SFA integers); output [T, B, C_v, H, W], integer-valued
    before the scale. ``scale`` is folded into the next neuron's threshold by the lowering.
    """

    def __init__(self, heads: int, scale: float):
        super().__init__()
        self.heads, self.scale = int(heads), float(scale)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        T, B, _, H, W = q.shape
        qh, kh, vh = _heads(q, self.heads), _heads(k, self.heads), _heads(v, self.heads)
        out = qh @ (kh.transpose(-1, -2) @ vh) * self.scale          # [T, B, h, N, dv]
        return out.transpose(-1, -2).reshape(T, B, -1, H, W)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, scale={self.scale}"


class TokenSumProduct(nn.Module):
    """Sum over tokens of the Hadamard product k * v (SDSA-1): [T, B, C, H, W] -> [T, B, C, 1, 1]."""

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (k * v).sum(dim=(-2, -1), keepdim=True)


class TokenSum(nn.Module):
    """Sum over the token positions, SUM_tokens(K_S) of SDSA-2: [T, B, C, H, W] -> [T, B, C, 1, 1].

    On binary spikes each output is the number of tokens at which channel c fired (an integer in
    [0, H*W]); it costs one addition per input spike.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(-2, -1), keepdim=True)


class HadamardMask(nn.Module):
    """Elementwise mask a * b with broadcasting over tokens (SDSA-1/2 masks)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class TokenMean(nn.Module):
    """Mean over the token positions: [T, B, C, H, W] -> [T, B, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(3).mean(-1)


class TimeMean(nn.Module):
    """Mean over time steps: [T, B, ...] -> [B, ...] (readout)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(0)


LEAF_MODULES = (Encoder, ConvBN, RepConvBN, MaxPool, SpikeMatmul, TokenSumProduct, TokenSum,
                HadamardMask, TokenMean, TimeMean)


def head_scale(dim: int, heads: int) -> float:
    """(C / heads) ** -0.5, the attention scale of E-SDSA."""
    return math.pow(dim / heads, -0.5)
