"""Spike-driven Transformer v1 (Yao et al., NeurIPS 2023; repo BICLab/Spike-Driven-Transformer,
``module/sps.py``, ``module/ms_conv.py``, ``model/spikeformer.py``).

Membrane shortcuts everywhere: the residual stream x carries graded (membrane-like) values and
every branch begins with a neuron, so all convolutions after the first read binary spikes.

    x0 = SPS_sdt(Encoder_T(image))       u = [pool](BN(W_3 s)); x0 = BN(W_rpe LIF(u)) + u
    SDSA-1(x): s = LIF(x); q, k, v = LIF(BN(W_{q,k,v} s))             (no bias)
               kv = LIF_{v_th=0.5}( sum over tokens (k * v) )          [T, B, C, 1, 1]
               y = BN(W_o (q * kv) + b_o)                              channel mask, no scale
    MLP(x):    y = BN(W_2 LIF(BN(W_1 LIF(x) + b_1)) + b_2)
    block:     x = x + SDSA-1(x);  x = x + MLP(x)
    logits = mean_T Linear( LIF( mean_tokens x_L ) )

SDSA-1 is channel-wise: the repo splits channels into heads, but sum-over-tokens and the mask act
per channel, so ``heads`` does not change the computation. The repo builds a ``talking_heads``
Conv1d (heads^2 weights per block) and an ``attn_lif`` that its forward never uses; neither is
built here (64 parameters per block at 8 heads; the published counts agree either way).
"""
from __future__ import annotations

from torch import nn

from .layers import ConvBN, Encoder, HadamardMask, TimeMean, TokenMean, TokenSumProduct
from .neurons import NeuronConfig, make_neuron
from .registry import family, register
from .spikformer import (MLP, SPS, Block, check_transformer_args, init_trunc_normal,
                         neuron_config, token_grid)


class SDSA1(nn.Module):
    """Spike-driven self-attention, SDSA-1 (see module doc), with its leading shortcut neuron."""

    def __init__(self, dims: int, cfg: NeuronConfig, *, attn_v_th: float = 0.5):
        super().__init__()
        self.pre = make_neuron(cfg)
        self.q = ConvBN(dims, dims, 1)
        self.k = ConvBN(dims, dims, 1)
        self.v = ConvBN(dims, dims, 1)
        self.q_neuron, self.k_neuron, self.v_neuron = (make_neuron(cfg) for _ in range(3))
        self.kv = TokenSumProduct()
        self.kv_neuron = make_neuron(cfg, v_th=attn_v_th)
        self.mask = HadamardMask()
        self.proj = ConvBN(dims, dims, 1, bias=True)

    def forward(self, x):
        s = self.pre(x)
        q = self.q_neuron(self.q(s))
        k = self.k_neuron(self.k(s))
        v = self.v_neuron(self.v(s))
        kv = self.kv_neuron(self.kv(k, v))
        return self.proj(self.mask(q, kv))


@family("sdt")
class SpikeDrivenTransformer(nn.Module):
    """Spike-driven Transformer v1 (see module doc).

    Args as ``Spikformer``: ``img_size``, ``in_channels``, ``num_classes``, ``T``, ``dims``,
    ``depths``, ``heads`` (nominal, see module doc), ``mlp_ratio``, ``pool_stages`` (the repo's
    ``pooling_stat``: ImageNet "1111" = [0, 1, 2, 3], CIFAR "0011" = [2, 3]), ``attn_v_th``
    (the kv neuron's threshold, 0.5) and ``neuron`` (NeuronConfig fields).
    Output: logits [B, num_classes].
    """

    def __init__(self, img_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                 T: int = 4, dims: int = 512, depths: int = 8, heads: int = 8,
                 mlp_ratio: float = 4.0, pool_stages=(0, 1, 2, 3), attn_v_th: float = 0.5,
                 neuron: dict | None = None):
        super().__init__()
        pool_stages = [int(s) for s in pool_stages]
        check_transformer_args(img_size=img_size, in_channels=in_channels,
                               num_classes=num_classes, dims=dims, depths=depths,
                               heads=[int(heads)], mlp_ratio=[float(mlp_ratio)],
                               pool_stages=pool_stages)
        cfg = neuron_config(neuron)
        self.img_size, self.num_classes = int(img_size), int(num_classes)
        self.token_grid = token_grid(img_size, pool_stages)
        self.encoder = Encoder(T)
        self.stem = SPS(in_channels, dims, pool_stages, cfg, style="sdt")
        self.blocks = nn.ModuleList(
            Block(SDSA1(dims, cfg, attn_v_th=attn_v_th),
                  MLP(dims, float(mlp_ratio), cfg, pre_activation=True, hidden_shortcut=True))
            for _ in range(int(depths)))
        self.token_mean = TokenMean()
        self.head_neuron = make_neuron(cfg)
        self.head = nn.Linear(dims, num_classes)
        self.time_mean = TimeMean()
        init_trunc_normal(self, (nn.Conv2d,))

    def forward(self, x):
        x = self.stem(self.encoder(x))
        for blk in self.blocks:
            x = blk(x)
        return self.time_mean(self.head(self.head_neuron(self.token_mean(x))))


# ImageNet (conf/imagenet/*.yml): 224x224, 1000 classes, T=4, 8 heads, pooling_stat "1111".
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, T=4, heads=8, mlp_ratio=4.0,
                 pool_stages=[0, 1, 2, 3])
for _d, _c in [(8, 384), (6, 512), (8, 512), (10, 512), (8, 768)]:
    register(f"sdt-{_d}-{_c}", "sdt", dims=_c, depths=_d, **_IMAGENET)

# CIFAR (conf/cifar10/2_512_300E_t4.yml): 32x32, T=4, 8 heads, pooling_stat "0011" (8x8 tokens).
register("sdt-cifar-2-512", "sdt", img_size=32, in_channels=3, num_classes=10, T=4, dims=512,
         depths=2, heads=8, mlp_ratio=4.0, pool_stages=[2, 3])
