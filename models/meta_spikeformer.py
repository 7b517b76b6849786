"""Meta-SpikeFormer (Spike-driven Transformer v2; seed sdt-v2 §3.3, repo
BICLab/Spike-Driven-Transformer-V2 ``classification/models.py``).

Layout (channels ``dims = [e0, e1, e2, e3]``, blocks ``depths = [d1, d2, d3, d4]``; maps at 224):

    Encoder(T)                                              [T, B, C_in, 224, 224]
    stage 1: conv7x7/2 + BN (no neuron; the only MAC layer) -> d1 x ConvBlock(e0/2)     112
             [SN] conv3x3/2 + BN                            -> d1 x ConvBlock(e0)        56
    stage 2: [SN] conv3x3/2 + BN                            -> d2 x ConvBlock(e1)        28
    stage 3: [SN] conv3x3/2 + BN                            -> d3 x TransformerBlock(e2) 14
    stage 4: [SN] conv3x3/1 + BN                            -> d4 x TransformerBlock(e3) 14
    head:    mean over tokens -> SN -> Linear -> mean over T                       [B, classes]

The repository builds one ConvBlock at each of the two stage-1 resolutions, two in stage 2,
six and two TransformerBlocks in stages 3 and 4: ``depths = [1, 2, 6, 2]`` ("8" = 6 + 2).
All shortcuts are membrane shortcuts: ``U' = U + f(U)`` where every ``f`` starts with a neuron.

    ConvBlock (eqs. 7-10):   U' = U + SepConv(U),   U'' = U' + ChannelConv(U')
      SepConv     = SN -> pw1x1 (C -> 2C) + BN -> SN -> dw7x7 -> pw1x1 (2C -> C) + BN
      ChannelConv = SN -> conv3x3 (C -> rC) + BN -> SN -> conv3x3 (rC -> C) + BN
    TransformerBlock (eqs. 11-14):  U' = U + SDSA(U),  U'' = U' + MLP(U')
      Q_S, K_S, V_S = SN(RepConv(SN(U)) + BN);  out = RepConv(SDSA(Q_S, K_S, V_S)) + BN
      MLP = SN -> 1x1 (C -> rC, bias) + BN -> SN -> 1x1 (rC -> C, bias) + BN

SDSA operators (``attn``; seed sdt-v2 Fig. 3, Table 5; SN_a = SN with v_th = ``attn_v_th``):
    sdsa1  Q_S * SN_a(SUM_tokens(K_S * V_S))   (SDT v1 operator, Hadamard masks; no scale)
    sdsa2  Q_S * SN_a(SUM_tokens(K_S))         (no V branch: one RepConv fewer per block)
    sdsa3  SN_a((Q_S @ (K_S^T @ V_S)) * 0.125) per head (eq. 15; the default)
    sdsa4  as sdsa3, the threshold of SN_a learned (one scalar per block, initialised to attn_v_th)
The repository implements only SDSA-3. SDSA-1 follows the SDT v1 code (BICLab/
Spike-Driven-Transformer ``module/ms_conv.py``: sum over tokens of k*v, LIF v_th 0.5, mask q).
SDSA-2 follows the paper's Fig. 3, which the extracted seed text does not reproduce; its V-free
form gives 28.59M parameters at 8-384, Table 5's 28.6M (SDSA-1 and SDSA-4: 31.3M, as printed).

Neurons: every SN is ``make_neuron(neuron)`` (spikingjelly MultiStepLIFNode: tau 2, v_th 1, hard
reset to 0, detach_reset, sigmoid surrogate alpha 4) except the attention neuron (v_th =
``attn_v_th``, 0.5 in the repo).

Head note: the repository computes ``x_lif = lif(mean)`` but feeds the non-spiking ``mean`` to the
head (x_lif reaches only the distillation head); the paper (Fig. 2) and the maintainers
(issue #11: "the SN before the classification head is necessary") put SN before the Linear, which
is what this implementation does. Parameter counts are unaffected.
"""
from __future__ import annotations

from torch import nn

from .layers import (ConvBN, Encoder, HadamardMask, RepConvBN, SpikeMatmul, TimeMean, TokenMean,
                     TokenSum, TokenSumProduct)
from .neurons import LearnableThresholdLIF, NeuronConfig, make_neuron
from .registry import family, register

DEFAULT_NEURON = {"kind": "lif", "tau": 2.0, "v_th": 1.0, "v_reset": 0.0, "reset": "hard",
                  "decay_input": True, "detach_reset": True, "surrogate": "sigmoid", "alpha": 4.0}
ATTN_VARIANTS = ("sdsa1", "sdsa2", "sdsa3", "sdsa4")
SDSA_SCALE = 0.125          # s of eq. 15: SN_s(x) = SN(x * s), i.e. threshold v_th / s on Q K^T V




# ----------------------------------------------------------------------------- blocks
class Downsample(nn.Module):
    """[SN] -> conv (bias) + BN. ``first`` omits the neuron: the image enters the conv directly."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 cfg: NeuronConfig, first: bool = False):
        super().__init__()
        self.neuron = None if first else make_neuron(cfg)
        self.conv = ConvBN(c_in, c_out, kernel, stride, padding, bias=True)

    def forward(self, x):
        if self.neuron is not None:
            x = self.neuron(x)
        return self.conv(x)


class SepConv(nn.Module):
    """SN -> pw1x1 (C -> 2C) + BN -> SN -> dw kxk -> pw1x1 (2C -> C) + BN (eq. 9; no neuron
    and no BN between the depthwise and the second pointwise conv, as in the repository)."""

    def __init__(self, dim: int, cfg: NeuronConfig, kernel: int = 7, expansion: int = 2):
        super().__init__()
        med = expansion * dim
        self.n1 = make_neuron(cfg)
        self.pw1 = ConvBN(dim, med, 1)
        self.n2 = make_neuron(cfg)
        self.dw = ConvBN(med, med, kernel, 1, kernel // 2, groups=med, bn=False)
        self.pw2 = ConvBN(med, dim, 1)

    def forward(self, x):
        return self.pw2(self.dw(self.n2(self.pw1(self.n1(x)))))


class ChannelConv(nn.Module):
    """SN -> conv3x3 (C -> rC) + BN -> SN -> conv3x3 (rC -> C) + BN (eq. 10; no conv bias)."""

    def __init__(self, dim: int, ratio: int, cfg: NeuronConfig):
        super().__init__()
        self.n1 = make_neuron(cfg)
        self.conv1 = ConvBN(dim, ratio * dim, 3, 1, 1)
        self.n2 = make_neuron(cfg)
        self.conv2 = ConvBN(ratio * dim, dim, 3, 1, 1)

    def forward(self, x):
        return self.conv2(self.n2(self.conv1(self.n1(x))))


class ConvMLP(nn.Module):
    """Channel MLP: SN -> 1x1 (C -> rC, bias) + BN -> SN -> 1x1 (rC -> C, bias) + BN (eq. 14)."""

    def __init__(self, dim: int, ratio: int, cfg: NeuronConfig):
        super().__init__()
        self.n1 = make_neuron(cfg)
        self.fc1 = ConvBN(dim, ratio * dim, 1, bias=True)
        self.n2 = make_neuron(cfg)
        self.fc2 = ConvBN(ratio * dim, dim, 1, bias=True)

    def forward(self, x):
        return self.fc2(self.n2(self.fc1(self.n1(x))))


class ConvBlock(nn.Module):
    """Conv-based SNN block: U' = U + SepConv(U); U'' = U' + ChannelConv(U') (eqs. 7-8)."""

    def __init__(self, dim: int, ratio: int, cfg: NeuronConfig):
        super().__init__()
        self.sepconv = SepConv(dim, cfg)
        self.channel_conv = ChannelConv(dim, ratio, cfg)

    def forward(self, x):
        x = x + self.sepconv(x)
        return x + self.channel_conv(x)


class SDSA(nn.Module):
    """Spike-driven self-attention with RepConv projections (eqs. 11-12, 15; module doc)."""

    def __init__(self, dim: int, heads: int, variant: str, cfg: NeuronConfig, attn_v_th: float):
        super().__init__()
        self.variant = variant
        self.head_neuron = make_neuron(cfg)
        self.q_conv, self.q_neuron = RepConvBN(dim, dim), make_neuron(cfg)
        self.k_conv, self.k_neuron = RepConvBN(dim, dim), make_neuron(cfg)
        if variant != "sdsa2":
            self.v_conv, self.v_neuron = RepConvBN(dim, dim), make_neuron(cfg)
        if variant == "sdsa1":
            self.token_sum = TokenSumProduct()
            self.mask = HadamardMask()
        elif variant == "sdsa2":
            self.token_sum = TokenSum()
            self.mask = HadamardMask()
        else:
            self.matmul = SpikeMatmul(heads, SDSA_SCALE)
        if variant == "sdsa4":
            self.attn_neuron = LearnableThresholdLIF(cfg, attn_v_th)
        else:
            self.attn_neuron = make_neuron(cfg, v_th=attn_v_th)
        self.proj = RepConvBN(dim, dim)

    def forward(self, x):
        x = self.head_neuron(x)
        q = self.q_neuron(self.q_conv(x))
        k = self.k_neuron(self.k_conv(x))
        if self.variant == "sdsa1":
            v = self.v_neuron(self.v_conv(x))
            y = self.mask(q, self.attn_neuron(self.token_sum(k, v)))
        elif self.variant == "sdsa2":
            y = self.mask(q, self.attn_neuron(self.token_sum(k)))
        else:
            v = self.v_neuron(self.v_conv(x))
            y = self.attn_neuron(self.matmul(q, k, v))
        return self.proj(y)

    def extra_repr(self) -> str:
        return f"variant={self.variant}"


class TransformerBlock(nn.Module):
    """Transformer-based SNN block: U' = U + SDSA(U); U'' = U' + MLP(U') (eqs. 12-13)."""

    def __init__(self, dim: int, heads: int, ratio: int, variant: str, cfg: NeuronConfig,
                 attn_v_th: float):
        super().__init__()
        self.attn = SDSA(dim, heads, variant, cfg, attn_v_th)
        self.mlp = ConvMLP(dim, ratio, cfg)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


# ----------------------------------------------------------------------------- validation
def check_arch(name: str, img_size, in_channels, num_classes, T, dims, depths, heads,
               mlp_ratio) -> tuple[list[int], list[int], list[int]]:
    """Validate the shared architecture arguments; returns (dims, depths, [heads3, heads4])."""

    def pos_int(key, v, minimum=1):
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"{name}: {key} must be an integer >= {minimum}, got {v!r}")
        return v

    pos_int("img_size", img_size)
    pos_int("in_channels", in_channels)
    pos_int("num_classes", num_classes)
    pos_int("T", T)
    pos_int("mlp_ratio", mlp_ratio)
    if not isinstance(dims, (list, tuple)) or len(dims) != 4:
        raise ValueError(f"{name}: dims must be a list of 4 channel counts, got {dims!r}")
    dims = [pos_int(f"dims[{i}]", d) for i, d in enumerate(dims)]
    if dims[0] % 2:
        raise ValueError(f"{name}: dims[0] must be even (stage 1 starts at dims[0] / 2), "
                         f"got {dims[0]}")
    if not isinstance(depths, (list, tuple)) or len(depths) != 4:
        raise ValueError(f"{name}: depths must be a list of 4 block counts, got {depths!r}")
    depths = [pos_int(f"depths[{i}]", d) for i, d in enumerate(depths)]
    hs = list(heads) if isinstance(heads, (list, tuple)) else [heads, heads]
    if len(hs) != 2:
        raise ValueError(f"{name}: heads must be an int or [heads_stage3, heads_stage4], "
                         f"got {heads!r}")
    hs = [pos_int("heads", h) for h in hs]
    for dim, h, stage in ((dims[2], hs[0], 3), (dims[3], hs[1], 4)):
        if dim % h:
            raise ValueError(f"{name}: stage-{stage} channels {dim} not divisible by {h} heads")
    return dims, depths, hs


# ----------------------------------------------------------------------------- family
@family("meta-spikeformer")
class MetaSpikeFormer(nn.Module):
    """Meta-SpikeFormer (module doc). Input [B, C, H, W] (repeated over T) or [T, B, C, H, W];
    output logits [B, num_classes].

    ``dims`` = [e0, e1, e2, e3] channels; ``depths`` = [d1, d2, d3, d4] blocks (d1 ConvBlocks at
    each stage-1 resolution); ``heads`` int or [stage 3, stage 4]; ``mlp_ratio`` r of the
    ChannelConv and MLP; ``attn`` in sdsa1..sdsa4; ``neuron`` merged into ``DEFAULT_NEURON``;
    ``attn_v_th`` the threshold of the neuron after the attention product (0.5 in the repo).
    ``img_size`` (pixels) only documents the intended input: the network is fully convolutional.
    """

    def __init__(self, img_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                 T: int = 1, dims=(96, 192, 384, 480), depths=(1, 2, 6, 2), heads=8,
                 mlp_ratio: int = 4, attn: str = "sdsa3", neuron: dict | None = None,
                 attn_v_th: float = 0.5):
        super().__init__()
        dims, depths, hs = check_arch("meta-spikeformer", img_size, in_channels, num_classes, T,
                                      dims, depths, heads, mlp_ratio)
        if attn not in ATTN_VARIANTS:
            raise ValueError(f"meta-spikeformer: attn must be one of {ATTN_VARIANTS}, got {attn!r}")
        if not attn_v_th > 0:
            raise ValueError(f"meta-spikeformer: attn_v_th must be > 0, got {attn_v_th}")
        cfg = NeuronConfig.from_dict({**DEFAULT_NEURON, **(neuron or {})})
        self.neuron_config = cfg
        self.img_size, self.in_channels, self.num_classes = img_size, in_channels, num_classes
        e0, e1, e2, e3 = dims
        d1, d2, d3, d4 = depths
        r = mlp_ratio

        self.encoder = Encoder(T)
        self.down1a = Downsample(in_channels, e0 // 2, 7, 2, 3, cfg, first=True)
        self.blocks1a = nn.ModuleList(ConvBlock(e0 // 2, r, cfg) for _ in range(d1))
        self.down1b = Downsample(e0 // 2, e0, 3, 2, 1, cfg)
        self.blocks1b = nn.ModuleList(ConvBlock(e0, r, cfg) for _ in range(d1))
        self.down2 = Downsample(e0, e1, 3, 2, 1, cfg)
        self.blocks2 = nn.ModuleList(ConvBlock(e1, r, cfg) for _ in range(d2))
        self.down3 = Downsample(e1, e2, 3, 2, 1, cfg)
        self.blocks3 = nn.ModuleList(TransformerBlock(e2, hs[0], r, attn, cfg, attn_v_th)
                                     for _ in range(d3))
        self.down4 = Downsample(e2, e3, 3, 1, 1, cfg)
        self.blocks4 = nn.ModuleList(TransformerBlock(e3, hs[1], r, attn, cfg, attn_v_th)
                                     for _ in range(d4))
        self.token_mean = TokenMean()
        self.head_neuron = make_neuron(cfg)
        self.head = nn.Linear(e3, num_classes)
        self.time_mean = TimeMean()
        init_linear(self)

    def forward(self, x):
        return staged_forward(self, x)


def staged_forward(model: nn.Module, x):
    """The 4-stage layout shared by Meta-SpikeFormer and E-SpikeFormer: encoder, then
    downsample + blocks for stages 1a, 1b, 2, 3, 4, then token mean -> SN -> Linear -> mean
    over T."""
    x = model.encoder(x)
    for stage in ("1a", "1b", "2", "3", "4"):
        x = getattr(model, f"down{stage}")(x)
        for blk in getattr(model, f"blocks{stage}"):
            x = blk(x)
    return model.time_mean(model.head(model.head_neuron(model.token_mean(x))))


def init_linear(model: nn.Module) -> None:
    """Repository init: Linear weights truncated normal (std 0.02, cut at +-2), biases 0."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- names
def _imagenet(dims: list[int]) -> dict:
    return dict(img_size=224, in_channels=3, num_classes=1000, T=1, dims=dims,
                depths=[1, 2, 6, 2], heads=8, mlp_ratio=4, attn="sdsa3",
                neuron=dict(DEFAULT_NEURON), attn_v_th=0.5)


# Repository names metaspikformer_8_{384,512,768}; published 31.33M, 55.35M, 123.7M (T is
# not part of the count: the repo trains at time_steps=1 and fine-tunes at 4).
register("meta-spikeformer-8-384", "meta-spikeformer", **_imagenet([96, 192, 384, 480]))
register("meta-spikeformer-8-512", "meta-spikeformer", **_imagenet([128, 256, 512, 640]))
register("meta-spikeformer-8-768", "meta-spikeformer", **_imagenet([192, 384, 768, 960]))
# Digits-sized configuration for the shipped checkpoint (1x32x32 input, 10 classes). Its
# stage-3/4 maps hold 2x2 = 4 tokens and heads have 8 channels. With the ImageNet thresholds the
# SDSA-3 neuron then never fires at init (even at 224x224 it fires at ~1e-4), the BNs of the
# projection RepConvBN see a constant, and their backward pass (1/sqrt(eps) each, three in a row)
# swamps the gradient (Adam stalls near chance for epochs). Lower thresholds (v_th 0.5, attention
# 0.125, i.e. an integer threshold of 1 on Q K^T V) keep it firing: ~87% test accuracy on
# digits after 4 epochs.
register("meta-spikeformer-tiny", "meta-spikeformer",
         img_size=32, in_channels=1, num_classes=10, T=4, dims=[8, 16, 32, 48],
         depths=[1, 1, 1, 1], heads=4, mlp_ratio=2, attn="sdsa3",
         neuron={**DEFAULT_NEURON, "v_th": 0.5}, attn_v_th=0.125)
