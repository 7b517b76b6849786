"""AutoST (Wang et al., ICASSP 2024, arXiv 2307.00293; repo AlexandreWANG915/AutoST ``model.py``):
a Spikformer-CIFAR-style network with PLIF neurons, one embedding width and per-block heads and
MLP ratios, found by training-free evolutionary search ranked by FLOPs.

The authors' model (which this family follows) uses membrane shortcuts, unlike Spikformer:

    x0 = SPS_autost(Encoder_T(image))    u = [pool](BN(W_3 s)); x0 = BN(W_rpe u) + u   (graded)
    SSA(x):  s = PLIF(x); q, k, v = PLIF(BN(W_{q,k,v} s + b))             (Linear with bias)
             y = BN(W_o PLIF_{v_th=0.5}( q (k^T v) * 0.125 ) + b_o)        graded output
    MLP(x):  y = BN(W_2 PLIF(BN(W_1 PLIF(x) + b_1)) + b_2)                 hidden = int(D * r_l)
    block l: x = x + SSA_l(x);  x = x + MLP_l(x)
    logits = Linear( mean_T mean_tokens x_L )                              no head neuron

PLIF: tau = 1 / sigmoid(w), w learned per neuron layer, initialised at tau = 2 (spikingjelly
``MultiStepParametricLIFNode`` defaults: v_th 1, hard reset to 0, detach_reset).

Registered names are RECONSTRUCTIONS. The paper (Tables 2-4) gives the search spaces and the
parameter counts of the found models (CIFAR: tiny 4.20M, small 11.52M, base 29.64M) but not the
architectures, and the repo's ``train.py`` reads them from yaml files that were not released.
Parameter counts depend only on (dims, depths, sum of MLP ratios); each name binds the member
of the repo's search space whose count at num_classes=100 (the class count the repo's
``evolution.py`` uses when it checks the parameter window) is closest to the table, with the
most uniform MLP ratios and 8 heads per block (heads change neither parameters nor FLOPs):

    autost-tiny   D=256, 4 blocks, r = 4,4,4,4      4,178,339 (table 4.20M, -0.52%; no member
                                                    of the tiny space is within 0.5%)
    autost-small  D=448, 4 blocks, r = 3,3,3,4     11,514,683 (table 11.52M, -0.05%)
    autost-base   D=576, 5 blocks, r = 5,5,5,6,6   29,649,810 (table 29.64M, +0.03%)

All are shallow and wide, as the paper reports its searches prefer (Sec. 4.4).
"""
from __future__ import annotations

from torch import nn

from .layers import Encoder, TimeMean, TokenMean
from .registry import family, register
from .spikformer import (MLP, SPS, SSA, Block, check_transformer_args, init_trunc_normal,
                         neuron_config, per_block, token_grid)


@family("autost")
class AutoST(nn.Module):
    """AutoST network (see module doc).

    Args: ``img_size``, ``in_channels``, ``num_classes``, ``T``, ``dims`` (one embedding width),
    ``depths``, ``heads`` and ``mlp_ratio`` (a scalar or one entry per block), ``pool_stages``
    (CIFAR [2, 3]: 32 -> 8x8 tokens), ``qkv_bias`` (True: the repo's q/k/v are biased Linear
    layers whatever its ``qkv_bias`` argument says), ``attn_scale``, ``attn_v_th`` and ``neuron``
    (NeuronConfig fields over the family default ``kind="plif"``).
    Output: logits [B, num_classes].
    """

    def __init__(self, img_size: int = 32, in_channels: int = 3, num_classes: int = 10,
                 T: int = 4, dims: int = 256, depths: int = 4, heads=8, mlp_ratio=4.0,
                 pool_stages=(2, 3), qkv_bias: bool = True, attn_scale: float = 0.125,
                 attn_v_th: float = 0.5, neuron: dict | None = None):
        super().__init__()
        depths = int(depths)
        pool_stages = [int(s) for s in pool_stages]
        heads = per_block(heads, depths, "heads", int)
        mlp_ratio = per_block(mlp_ratio, depths, "mlp_ratio", float)
        check_transformer_args(img_size=img_size, in_channels=in_channels,
                               num_classes=num_classes, dims=dims, depths=depths, heads=heads,
                               mlp_ratio=mlp_ratio, pool_stages=pool_stages)
        cfg = neuron_config(neuron, kind="plif")
        self.img_size, self.num_classes = int(img_size), int(num_classes)
        self.token_grid = token_grid(img_size, pool_stages)
        self.encoder = Encoder(T)
        self.stem = SPS(in_channels, dims, pool_stages, cfg, style="autost")
        self.blocks = nn.ModuleList(
            Block(SSA(dims, h, cfg, scale=attn_scale, attn_v_th=attn_v_th, qkv_bias=qkv_bias,
                      pre_neuron=True),
                  MLP(dims, r, cfg, pre_activation=True))
            for h, r in zip(heads, mlp_ratio))
        self.token_mean = TokenMean()
        self.time_mean = TimeMean()
        self.head = nn.Linear(dims, num_classes)
        # The repo initialises its Linear layers (here: the 1x1 token-wise convs and the head).
        init_trunc_normal(self.blocks, (nn.Conv2d,))
        init_trunc_normal(self, (nn.Linear,))

    def forward(self, x):
        x = self.stem(self.encoder(x))
        for blk in self.blocks:
            x = blk(x)
        # Linear commutes with the mean over T: classifying each step and averaging the logits
        # equals the repo's Linear(mean_T(x)) and keeps the readout inside the time loop.
        return self.time_mean(self.head(self.token_mean(x)))


_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, T=4, pool_stages=[2, 3])
register("autost-tiny", "autost", dims=256, depths=4, heads=[8] * 4,
         mlp_ratio=[4.0, 4.0, 4.0, 4.0], **_CIFAR)
register("autost-small", "autost", dims=448, depths=4, heads=[8] * 4,
         mlp_ratio=[3.0, 3.0, 3.0, 4.0], **_CIFAR)
register("autost-base", "autost", dims=576, depths=5, heads=[8] * 5,
         mlp_ratio=[5.0, 5.0, 5.0, 6.0, 6.0], **_CIFAR)
