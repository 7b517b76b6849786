"""Spikformer (Zhou et al., ICLR 2023; repo ZK-Zhou/spikformer) and the blocks it shares with the
Spike-driven Transformer (``models.sdt``) and AutoST (``models.autost``).

Tensors between leaves are [T, B, C, H, W]; tokens are the H x W positions, and 1x1 ``ConvBN``
layers are the token-wise linear layers (the repos' Linear / Conv1d + BatchNorm1d, same
parameter count). Spikformer at a glance (repo ``imagenet/model.py``, root ``model.py``):

    x0 = SPS(Encoder_T(image))                                spikes + spikes (values 0..2)
    SSA(x):  q, k, v = LIF(BN(W_{q,k,v} x))                    (no bias)
             a = LIF_{v_th=0.5}( q (k^T v) * 0.125 )           per head, integer product
             y = LIF(BN(W_o a + b_o))
    MLP(x):  y = LIF(BN(W_2 LIF(BN(W_1 x + b_1)) + b_2))       hidden = int(D * mlp_ratio)
    block:   x = x + SSA(x);  x = x + MLP(x)                   spike shortcuts: x holds spike counts
    logits = Linear( mean_T mean_tokens x_L )

The repos' unused LayerNorms are not built (the published parameter counts exclude them).
"""
from __future__ import annotations

from torch import nn

from .layers import ConvBN, Encoder, MaxPool, SpikeMatmul, TimeMean, TokenMean
from .neurons import NeuronConfig, make_neuron
from .registry import family, register

SPS_STYLES = ("spikformer", "sdt", "autost")


def neuron_config(neuron: dict | None, **family_defaults) -> NeuronConfig:
    """A family's neuron settings: ``family_defaults`` (e.g. ``kind="plif"``) overridden by the
    user's ``neuron`` dict, on top of the ``NeuronConfig`` defaults (LIF, tau 2, v_th 1, hard
    reset to 0, detach_reset)."""
    if neuron is not None and not isinstance(neuron, dict):
        raise TypeError(f"neuron must be a dict of NeuronConfig fields, "
                        f"got {type(neuron).__name__}")
    return NeuronConfig.from_dict({**family_defaults, **(neuron or {})})


def per_block(value, depths: int, name: str, kind=int) -> list:
    """Broadcast a scalar to ``depths`` blocks or check a per-block list's length."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * depths
    if len(values) != depths:
        raise ValueError(f"{name} has {len(values)} entries but depths={depths}")
    return [kind(v) for v in values]


def check_transformer_args(*, img_size: int, in_channels: int, num_classes: int, dims: int,
                           depths: int, heads: list[int], mlp_ratio: list[float],
                           pool_stages: list[int]) -> None:
    """Validate the arguments shared by the SPS-stem families; errors name the argument."""
    if int(depths) != depths or depths < 1:
        raise ValueError(f"depths must be an integer >= 1, got {depths}")
    if int(dims) != dims or dims < 8 or dims % 8:
        raise ValueError(f"dims must be a positive multiple of 8 (SPS widths D/8, D/4, D/2, D), "
                         f"got {dims}")
    for i, h in enumerate(heads):
        if h < 1 or dims % h:
            raise ValueError(f"heads[{i}]={h} must be >= 1 and divide dims={dims}")
    for i, r in enumerate(mlp_ratio):
        if not r > 0 or int(dims * r) < 1:
            raise ValueError(f"mlp_ratio[{i}]={r} must give a hidden width >= 1 at dims={dims}")
    if sorted(set(pool_stages)) != sorted(pool_stages) or not set(pool_stages) <= {0, 1, 2, 3}:
        raise ValueError(f"pool_stages must list distinct SPS stages among 0..3, got {pool_stages}")
    if int(img_size) != img_size or img_size < 1:
        raise ValueError(f"img_size must be an integer >= 1, got {img_size}")
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"in_channels and num_classes must be >= 1, got {in_channels}, "
                         f"{num_classes}")


def token_grid(img_size: int, pool_stages: list[int]) -> int:
    """Token grid side after the SPS pools: each MaxPool(3, 2, 1) maps H to ceil(H / 2)."""
    h = int(img_size)
    for _ in pool_stages:
        h = (h + 1) // 2
    return h


class SPS(nn.Module):
    """Spiking patch splitting stem: four 3x3 conv stages (widths D/8, D/4, D/2, D; no bias; BN),
    MaxPool(3, 2, 1) after the stages in ``pool_stages``, and a 3x3 relative position embedding
    (RPE) conv. Stages 0-2 are ConvBN -> neuron -> [pool] in every style; they differ after:

    - ``spikformer``: s = [pool](LIF(ConvBN_3 x)); out = LIF(ConvBN_rpe s) + s (spike counts 0..2).
    - ``sdt`` (SDT v1 ``MS_SPS``): u = [pool](ConvBN_3 x) (pool on graded BN outputs);
      out = ConvBN_rpe(LIF(u)) + u (membrane shortcut, graded output).
    - ``autost`` (AutoST ``SPS``): u = [pool](ConvBN_3 x); out = ConvBN_rpe(u) + u. The RPE conv
      reads the graded u, not spikes (as in the authors' code).
    """

    def __init__(self, in_channels: int, dims: int, pool_stages: list[int], cfg: NeuronConfig,
                 style: str = "spikformer"):
        super().__init__()
        if style not in SPS_STYLES:
            raise ValueError(f"SPS style {style!r} unknown; expected one of {SPS_STYLES}")
        self.style = style
        widths = [in_channels, dims // 8, dims // 4, dims // 2, dims]
        self.convs = nn.ModuleList(ConvBN(widths[i], widths[i + 1], 3, 1, 1) for i in range(4))
        n_neurons = 3 if style == "autost" else 4
        self.neurons = nn.ModuleList(make_neuron(cfg) for _ in range(n_neurons))
        self.pools = nn.ModuleDict({str(i): MaxPool(3, 2, 1) for i in sorted(pool_stages)})
        self.rpe = ConvBN(dims, dims, 3, 1, 1)
        self.rpe_neuron = make_neuron(cfg) if style == "spikformer" else None

    def forward(self, x):
        for i in range(3):
            x = self.neurons[i](self.convs[i](x))
            if str(i) in self.pools:
                x = self.pools[str(i)](x)
        x = self.convs[3](x)
        if self.style == "spikformer":
            x = self.neurons[3](x)
            if "3" in self.pools:
                x = self.pools["3"](x)
            return self.rpe_neuron(self.rpe(x)) + x
        if "3" in self.pools:
            x = self.pools["3"](x)
        if self.style == "sdt":
            return self.rpe(self.neurons[3](x)) + x
        return self.rpe(x) + x


class SSA(nn.Module):
    """Spiking self-attention, q (k^T v) * scale per head (Spikformer SSA, AutoST SSA).

    ``pre_neuron=False`` (Spikformer): the input is spikes; q, k, v = LIF(BN(W x)) and the output
    is LIF(BN(W_o a + b_o)). ``pre_neuron=True`` (AutoST, membrane shortcut): the graded input
    first passes a neuron and the output BN(W_o a + b_o) is graded. In both,
    a = LIF_{v_th=attn_v_th}(q (k^T v) * scale) with integer-valued products of binary spikes.
    """

    def __init__(self, dims: int, heads: int, cfg: NeuronConfig, *, scale: float = 0.125,
                 attn_v_th: float = 0.5, qkv_bias: bool = False, pre_neuron: bool = False):
        super().__init__()
        self.pre = make_neuron(cfg) if pre_neuron else None
        self.q = ConvBN(dims, dims, 1, bias=qkv_bias)
        self.k = ConvBN(dims, dims, 1, bias=qkv_bias)
        self.v = ConvBN(dims, dims, 1, bias=qkv_bias)
        self.q_neuron, self.k_neuron, self.v_neuron = (make_neuron(cfg) for _ in range(3))
        self.matmul = SpikeMatmul(heads, scale)
        self.attn_neuron = make_neuron(cfg, v_th=attn_v_th)
        self.proj = ConvBN(dims, dims, 1, bias=True)
        self.proj_neuron = None if pre_neuron else make_neuron(cfg)

    def forward(self, x):
        if self.pre is not None:
            x = self.pre(x)
        q = self.q_neuron(self.q(x))
        k = self.k_neuron(self.k(x))
        v = self.v_neuron(self.v(x))
        y = self.proj(self.attn_neuron(self.matmul(q, k, v)))
        if self.proj_neuron is not None:
            y = self.proj_neuron(y)
        return y


class MLP(nn.Module):
    """Token-wise two-layer MLP of 1x1 ConvBN layers with bias, hidden = int(dims * mlp_ratio).

    ``pre_activation=False`` (Spikformer): y = LIF(BN(W_2 LIF(BN(W_1 x)))). ``pre_activation=True``
    (SDT v1, AutoST): y = BN(W_2 LIF(h)), h = BN(W_1 LIF(x)), graded output. With
    ``hidden_shortcut`` (SDT v1 ``MS_MLP_Conv``) and hidden == dims, h is replaced by x + h and
    the output becomes BN(W_2 LIF(x + h)) + h, so that x + MLP(x) equals the repo's result.
    """

    def __init__(self, dims: int, mlp_ratio: float, cfg: NeuronConfig, *,
                 pre_activation: bool = False, hidden_shortcut: bool = False):
        super().__init__()
        hidden = int(dims * mlp_ratio)
        self.pre_activation = pre_activation
        self.inner = hidden_shortcut and pre_activation and hidden == dims
        self.fc1 = ConvBN(dims, hidden, 1, bias=True)
        self.fc2 = ConvBN(hidden, dims, 1, bias=True)
        self.neuron1 = make_neuron(cfg)
        self.neuron2 = make_neuron(cfg)

    def forward(self, x):
        if not self.pre_activation:
            return self.neuron2(self.fc2(self.neuron1(self.fc1(x))))
        h = self.fc1(self.neuron1(x))
        if self.inner:
            h2 = x + h
            return self.fc2(self.neuron2(h2)) + h
        return self.fc2(self.neuron2(h))


class Block(nn.Module):
    """Transformer block with additive shortcuts: x = x + attn(x); x = x + mlp(x)."""

    def __init__(self, attn: nn.Module, mlp: nn.Module):
        super().__init__()
        self.attn = attn
        self.mlp = mlp

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


def _block_neuron(neuron: dict | None, block: dict) -> NeuronConfig:
    """One block's neuron settings: the model's ``neuron`` dict with ``block`` laid over it."""
    if not isinstance(block, dict):
        raise TypeError(f"block_neurons entries must be dicts of NeuronConfig fields, got "
                        f"{type(block).__name__}")
    return neuron_config({**(neuron or {}), **block})


def init_trunc_normal(model: nn.Module, types: tuple, std: float = 0.02) -> None:
    """The repos' ``_init_weights``: truncated-normal weights (std 0.02), zero biases."""
    for m in model.modules():
        if isinstance(m, types):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@family("spikformer")
class Spikformer(nn.Module):
    """Spikformer (see module doc). ImageNet and CIFAR variants differ only in arguments.

    Args: ``img_size`` input side in pixels; ``dims`` embedding width D; ``depths`` blocks;
    ``heads`` SSA heads; ``mlp_ratio`` MLP expansion; ``pool_stages`` SPS stages followed by
    MaxPool(3, 2, 1) (ImageNet [0, 1, 2, 3]: 224 -> 14x14 tokens; CIFAR [2, 3]: 32 -> 8x8);
    ``qkv_bias`` bias on the q/k/v layers (False in ``imagenet/model.py`` and the root
    ``model.py``; the older ``cifar10/model.py`` used biased Linear layers); ``attn_scale`` and
    ``attn_v_th`` the SSA scale and attention-neuron threshold; ``neuron`` NeuronConfig fields.
    ``heads`` and ``mlp_ratio`` may also be one entry per block, and ``block_neurons`` one dict
    of NeuronConfig fields per block laid over ``neuron`` for that block's neurons (the
    attention neuron keeps ``attn_v_th``): the per-block searches of Auto-Spikformer.
    Output: logits [B, num_classes] = Linear(mean over T of the token mean).
    """

    def __init__(self, img_size: int = 224, in_channels: int = 3, num_classes: int = 1000,
                 T: int = 4, dims: int = 512, depths: int = 8, heads=8,
                 mlp_ratio=4.0, pool_stages=(0, 1, 2, 3), qkv_bias: bool = False,
                 attn_scale: float = 0.125, attn_v_th: float = 0.5, neuron: dict | None = None,
                 block_neurons: list | None = None):
        super().__init__()
        pool_stages = [int(s) for s in pool_stages]
        heads = per_block(heads, int(depths), "heads", int)
        mlp_ratio = per_block(mlp_ratio, int(depths), "mlp_ratio", float)
        check_transformer_args(img_size=img_size, in_channels=in_channels,
                               num_classes=num_classes, dims=dims, depths=depths,
                               heads=heads, mlp_ratio=mlp_ratio, pool_stages=pool_stages)
        cfg = neuron_config(neuron)
        blocks = per_block(block_neurons if block_neurons is not None else {}, int(depths),
                           "block_neurons", lambda d: _block_neuron(neuron, d))
        self.img_size, self.num_classes = int(img_size), int(num_classes)
        self.token_grid = token_grid(img_size, pool_stages)
        self.encoder = Encoder(T)
        self.stem = SPS(in_channels, dims, pool_stages, cfg, style="spikformer")
        self.blocks = nn.ModuleList(
            Block(SSA(dims, h, c, scale=attn_scale, attn_v_th=attn_v_th, qkv_bias=qkv_bias),
                  MLP(dims, r, c))
            for h, r, c in zip(heads, mlp_ratio, blocks))
        self.token_mean = TokenMean()
        self.time_mean = TimeMean()
        self.head = nn.Linear(dims, num_classes)
        init_trunc_normal(self, (nn.Linear,))

    def forward(self, x):
        x = self.stem(self.encoder(x))
        for blk in self.blocks:
            x = blk(x)
        # Linear commutes with the mean over T: classifying each step and averaging the logits
        # equals the repo's Linear(mean_T(x)) and keeps the readout inside the time loop.
        return self.time_mean(self.head(self.token_mean(x)))


# ImageNet (224x224, 1000 classes, T=4; imagenet/model.py). Heads: 512 -> 8 (repo default),
# 384 -> 12 and 768 -> 12 (head width 32 / 64 as in the repo's CIFAR config and 768 template).
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, T=4, mlp_ratio=4.0,
                 pool_stages=[0, 1, 2, 3])
for _d, _c, _h in [(8, 384, 12), (6, 512, 8), (8, 512, 8), (10, 512, 8), (8, 768, 12)]:
    register(f"spikformer-{_d}-{_c}", "spikformer", dims=_c, depths=_d, heads=_h, **_IMAGENET)

# CIFAR (32x32, T=4, 8x8 tokens; root model.py, cifar10/cifar10.yml: 4-384 with 12 heads).
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, T=4, mlp_ratio=4.0, pool_stages=[2, 3])
for _d, _c, _h in [(4, 256, 8), (2, 384, 12), (4, 384, 12)]:
    register(f"spikformer-cifar-{_d}-{_c}", "spikformer", dims=_c, depths=_d, heads=_h, **_CIFAR)
