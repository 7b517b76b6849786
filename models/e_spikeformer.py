"""E-SpikeFormer (Efficient Spiking Transformer, SDT v3; seed sdt-v3 §3.3, repo
BICLab/Spike-Driven-Transformer-V3 ``SDT_V3/Classification/Model_Base/models.py``,
``Spiking_vit_MetaFormer_Spike_SepConv``; read from its public copy
prdvanderwal/Spike-Driven-Transformer-V3).

Same four-stage layout as Meta-SpikeFormer (``models.meta_spikeformer``: stem conv7x7/2 without a
neuron, [SN] conv3x3 + BN downsamplings, ``depths = [d1, d2, d3, d4] = [1, 2, 6, 2]``), with

- every SN an SFA integer neuron (seed sdt-v3 eq. 5): s = round(clamp(u, 0, D)) / Norm, D = 4,
  Norm = D; time-free, trained at T = 1 (``Encoder(T)`` with T = 1 by default);
- ConvBlock:  U' = U + SpikeSepConv_7(U);  U'' = U' + ChannelConv(U')
    SpikeSepConv_k = SN -> pw1x1 (C -> 2C) + BN -> SN -> dw kxk + BN -> SN -> pw1x1 (2C -> C) + BN
    ChannelConv    = SN -> conv3x3 (C -> 4C) + BN -> SN -> conv3x3 (4C -> C) + BN
- TransformerBlock:  U' = U + SpikeSepConv_3(U);  U'' = U' + E-SDSA(U');  U''' = U'' + MLP(U'')
    E-SDSA: X = SN(U);  Q = SN(BN(W_q X)), K = SN(BN(W_k X))  (1x1, C -> C, no conv bias)
            V = SN(BN(W_v X))  (1x1, C -> 4C: the expansion of iRMB)
            A = SN(Q K^T V * 2 (C/H)^-0.5)  per head (H heads; Q, K have C/H channels per head,
            V and A have 4C/H);  out = BN(W_p A)  (1x1, 4C -> C)
    MLP = SN -> 1x1 (C -> 4C, bias) + BN -> SN -> 1x1 (4C -> C, bias) + BN
- head: mean over tokens -> SN with Norm = 1 (integer 0..D) -> Linear -> mean over T.

The repository evaluates the attention product as (Q K^T) V; ``SpikeMatmul`` evaluates Q (K^T V).
Q, K, V are multiples of 1/Norm, so both orders give the same value exactly in float32 (every
partial sum is a small multiple of 1/Norm^3), and the scale is applied once to that value.
"""
from __future__ import annotations

from torch import nn

from .layers import ConvBN, Encoder, SpikeMatmul, TimeMean, TokenMean, head_scale
from .meta_spikeformer import (ChannelConv, ConvMLP, Downsample, check_arch, init_linear,
                               staged_forward)
from .neurons import NeuronConfig, make_neuron
from .registry import family, register

HEAD_NORM = 1.0     # repo: MultiSpike(Norm=1) before the classifier (integer input to the head)


class SpikeSepConv(nn.Module):
    """SN -> pw1x1 (C -> 2C) + BN -> SN -> dw kxk + BN -> SN -> pw1x1 (2C -> C) + BN
    (repo ``SepConv_Spike``; every conv sees SFA integers, no conv bias)."""

    def __init__(self, dim: int, cfg: NeuronConfig, kernel: int, expansion: int = 2):
        super().__init__()
        med = expansion * dim
        self.n1 = make_neuron(cfg)
        self.pw1 = ConvBN(dim, med, 1)
        self.n2 = make_neuron(cfg)
        self.dw = ConvBN(med, med, kernel, 1, kernel // 2, groups=med)
        self.n3 = make_neuron(cfg)
        self.pw2 = ConvBN(med, dim, 1)

    def forward(self, x):
        return self.pw2(self.n3(self.dw(self.n2(self.pw1(self.n1(x))))))


class ESDSA(nn.Module):
    """Efficient spike-driven self-attention (seed sdt-v3 §3.3; repo ``MS_Attention_linear``)."""

    def __init__(self, dim: int, heads: int, expansion: int, cfg: NeuronConfig):
        super().__init__()
        self.head_neuron = make_neuron(cfg)
        self.q_conv, self.q_neuron = ConvBN(dim, dim, 1), make_neuron(cfg)
        self.k_conv, self.k_neuron = ConvBN(dim, dim, 1), make_neuron(cfg)
        self.v_conv, self.v_neuron = ConvBN(dim, expansion * dim, 1), make_neuron(cfg)
        self.matmul = SpikeMatmul(heads, 2.0 * head_scale(dim, heads))
        self.attn_neuron = make_neuron(cfg)
        self.proj = ConvBN(expansion * dim, dim, 1)

    def forward(self, x):
        x = self.head_neuron(x)
        q = self.q_neuron(self.q_conv(x))
        k = self.k_neuron(self.k_conv(x))
        v = self.v_neuron(self.v_conv(x))
        return self.proj(self.attn_neuron(self.matmul(q, k, v)))


class ConvBlock(nn.Module):
    """U' = U + SpikeSepConv_7(U); U'' = U' + ChannelConv(U')
    (repo ``MS_ConvBlock_spike_SepConv``)."""

    def __init__(self, dim: int, ratio: int, cfg: NeuronConfig):
        super().__init__()
        self.sepconv = SpikeSepConv(dim, cfg, kernel=7)
        self.channel_conv = ChannelConv(dim, ratio, cfg)

    def forward(self, x):
        x = x + self.sepconv(x)
        return x + self.channel_conv(x)


class TransformerBlock(nn.Module):
    """U += SpikeSepConv_3(U); U += E-SDSA(U); U += MLP(U) (repo ``MS_Block_Spike_SepConv``)."""

    def __init__(self, dim: int, heads: int, ratio: int, expansion: int, cfg: NeuronConfig):
        super().__init__()
        self.sepconv = SpikeSepConv(dim, cfg, kernel=3)
        self.attn = ESDSA(dim, heads, expansion, cfg)
        self.mlp = ConvMLP(dim, ratio, cfg)

    def forward(self, x):
        x = x + self.sepconv(x)
        x = x + self.attn(x)
        return x + self.mlp(x)


@family("e-spikeformer")
class ESpikeFormer(nn.Module):
    """E-SpikeFormer (module doc). Input [B, C, H, W] or [T, B, C, H, W]; logits [B, num_classes].

    ``D`` is the SFA window (the neuron fires up to D spikes per timestep; Norm defaults to D);
    ``neuron`` is merged over {kind: sfa, D, norm: D} and may set ``norm`` but not a different D.
    ``attn_expansion`` is the V/proj channel expansion of E-SDSA (4 in the repo).
    Other arguments as in ``MetaSpikeFormer``.
    """

    def __init__(self, img_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                 T: int = 1, D: int = 4, dims=(32, 64, 128, 192), depths=(1, 2, 6, 2),
                 heads=8, mlp_ratio: int = 4, attn_expansion: int = 4,
                 neuron: dict | None = None):
        super().__init__()
        dims, depths, hs = check_arch("e-spikeformer", img_size, in_channels, num_classes, T,
                                      dims, depths, heads, mlp_ratio)
        if isinstance(D, bool) or not isinstance(D, int) or D < 1:
            raise ValueError(f"e-spikeformer: D must be an integer >= 1, got {D!r}")
        if isinstance(attn_expansion, bool) or not isinstance(attn_expansion, int) \
                or attn_expansion < 1:
            raise ValueError(f"e-spikeformer: attn_expansion must be an integer >= 1, "
                             f"got {attn_expansion!r}")
        neuron = dict(neuron or {})
        if "D" in neuron and neuron["D"] != D:
            raise ValueError(f"e-spikeformer: neuron D={neuron['D']!r} contradicts D={D}; "
                             f"set the SFA window with the D argument")
        cfg = NeuronConfig.from_dict({"kind": "sfa", "D": D, "norm": float(D), **neuron})
        self.neuron_config = cfg
        self.img_size, self.in_channels, self.num_classes = img_size, in_channels, num_classes
        e0, e1, e2, e3 = dims
        d1, d2, d3, d4 = depths
        r, x = mlp_ratio, attn_expansion

        self.encoder = Encoder(T)
        self.down1a = Downsample(in_channels, e0 // 2, 7, 2, 3, cfg, first=True)
        self.blocks1a = nn.ModuleList(ConvBlock(e0 // 2, r, cfg) for _ in range(d1))
        self.down1b = Downsample(e0 // 2, e0, 3, 2, 1, cfg)
        self.blocks1b = nn.ModuleList(ConvBlock(e0, r, cfg) for _ in range(d1))
        self.down2 = Downsample(e0, e1, 3, 2, 1, cfg)
        self.blocks2 = nn.ModuleList(ConvBlock(e1, r, cfg) for _ in range(d2))
        self.down3 = Downsample(e1, e2, 3, 2, 1, cfg)
        self.blocks3 = nn.ModuleList(TransformerBlock(e2, hs[0], r, x, cfg) for _ in range(d3))
        self.down4 = Downsample(e2, e3, 3, 1, 1, cfg)
        self.blocks4 = nn.ModuleList(TransformerBlock(e3, hs[1], r, x, cfg) for _ in range(d4))
        self.token_mean = TokenMean()
        self.head_neuron = make_neuron(cfg, norm=HEAD_NORM)
        self.head = nn.Linear(e3, num_classes)
        self.time_mean = TimeMean()
        init_linear(self)

    def forward(self, x):
        return staged_forward(self, x)


def _imagenet(dims: list[int]) -> dict:
    return dict(img_size=224, in_channels=3, num_classes=1000, T=1, D=4, dims=dims,
                depths=[1, 2, 6, 2], heads=8, mlp_ratio=4, attn_expansion=4, neuron={})


# Repository Efficient_Spiking_Transformer_{t,s,m,l}; published 2.70M, 5.106M, 10.02M, 18.99M.
register("e-spikeformer-t", "e-spikeformer", **_imagenet([24, 48, 96, 128]))
register("e-spikeformer-s", "e-spikeformer", **_imagenet([32, 64, 128, 192]))
register("e-spikeformer-m", "e-spikeformer", **_imagenet([48, 96, 192, 240]))
register("e-spikeformer-l", "e-spikeformer", **_imagenet([64, 128, 256, 360]))
# Digits-sized configuration for the shipped checkpoint (1x32x32 input, 10 classes). With
# 2x2 = 4 tokens and 8-10-channel heads, Q K^T V at Norm = 4 stays below 0.5 and the attention
# neuron never fires at init; Norm = 1 (integer activations 0..D; every other SFA output feeds a
# conv followed by BN, so only the attention product changes) keeps E-SDSA alive.
register("e-spikeformer-tiny", "e-spikeformer",
         img_size=32, in_channels=1, num_classes=10, T=1, D=4, dims=[8, 16, 32, 40],
         depths=[1, 1, 1, 1], heads=4, mlp_ratio=2, attn_expansion=4, neuron={"norm": 1.0})
