"""A small Vision Transformer (Dosovitskiy et al., ICLR 2021), the ANN baseline that ECMT
converts (seed ecmt §3.2, eq. 10; ``models.convert.ecmt``).

    tokens = Linear_patch(patches(x)) ; [cls; tokens] + pos         x [B, C, H, W] in [0, 1]
    block:  x = x + proj( softmax( (q k^T) * d^-1/2 ) v ),  q, k, v = split(qkv(LN1(x)))
            x = x + fc2( GELU( fc1( LN2(x) ) ) )
    logits = head( LN(x)[:, 0] )         (pool="cls")   or   head( mean_tokens LN(x) )  ("mean")

Every operation that ECMT treats differently is its own module, so the conversion walks modules
(Algorithm 1): ``nn.Linear`` (linear), ``MatMul`` (matrix product of two activations),
``nn.Softmax`` / ``nn.GELU`` / ``nn.LayerNorm`` (non-linear). The patch embedding is a reshape
and an ``nn.Linear`` (a Conv2d with stride = kernel computes the same); the class token, the
position embedding, the 1/sqrt(d) scale, the residual adds and mean pooling are linear in the
activations (constant, scalar or additive), so they need no compensation.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import family, register

POOLS = ("cls", "mean")


class MatMul(nn.Module):
    """Matrix product of two activations ``a @ b`` (a leaf, so ECMT can replace it by two MT
    neurons and a Matrix-Product EC, Algorithm 1 line 11)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` patches, flattened in (C, py, px) order, then a
    Linear to ``dims``: [B, C, H, W] -> [B, N, dims], N = (H / patch)^2 in row-major order."""

    def __init__(self, img_size: int, patch: int, in_channels: int, dims: int):
        super().__init__()
        self.patch, self.grid = patch, img_size // patch
        self.proj = nn.Linear(in_channels * patch * patch, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C = x.shape[:2]
        g, p = self.grid, self.patch
        x = x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)
        return self.proj(x)


class Attention(nn.Module):
    """Multi-head softmax self-attention (eq. 10): heads of d = dims / heads channels."""

    def __init__(self, dims: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dims // heads) ** -0.5
        self.qkv = nn.Linear(dims, 3 * dims)
        self.qk = MatMul()
        self.softmax = nn.Softmax(dim=-1)
        self.av = MatMul()
        self.proj = nn.Linear(dims, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                         # [B, h, N, d]
        attn = self.softmax(self.qk(q, k.transpose(-2, -1)) * self.scale)
        out = self.av(attn, v).transpose(1, 2).reshape(B, N, C)
        return self.proj(out)


class MLP(nn.Module):
    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN1 x), then x + MLP(LN2 x)."""

    def __init__(self, dims: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims)
        self.attn = Attention(dims, heads)
        self.norm2 = nn.LayerNorm(dims)
        self.mlp = MLP(dims, int(round(dims * mlp_ratio)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def check_vit_args(*, img_size, patch, in_channels, num_classes, dims, depths, heads,
                   mlp_ratio, pool) -> None:
    """Bad configurations fail here, naming the argument and its value."""
    for k, v in dict(img_size=img_size, patch=patch, in_channels=in_channels,
                     num_classes=num_classes, dims=dims, depths=depths, heads=heads).items():
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"vit: {k} must be an integer >= 1, got {v!r}")
    if img_size % patch:
        raise ValueError(f"vit: patch {patch} must divide img_size {img_size}")
    if dims % heads:
        raise ValueError(f"vit: heads {heads} must divide dims {dims}")
    if not mlp_ratio > 0:
        raise ValueError(f"vit: mlp_ratio must be > 0, got {mlp_ratio}")
    if pool not in POOLS:
        raise ValueError(f"vit: pool must be one of {POOLS}, got {pool!r}")


@family("vit")
class ViT(nn.Module):
    """Vision Transformer (module doc). Args: ``img_size``, ``patch`` (pixels), ``in_channels``,
    ``num_classes``, ``dims``, ``depths`` (blocks), ``heads``, ``mlp_ratio``, ``pool`` ("cls"
    token or "mean" over tokens). Input [B, C, H, W]; output logits [B, num_classes]."""

    def __init__(self, img_size: int = 16, patch: int = 4, in_channels: int = 1,
                 num_classes: int = 10, dims: int = 64, depths: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, pool: str = "mean"):
        super().__init__()
        check_vit_args(img_size=img_size, patch=patch, in_channels=in_channels,
                       num_classes=num_classes, dims=dims, depths=depths, heads=heads,
                       mlp_ratio=mlp_ratio, pool=pool)
        self.img_size, self.num_classes, self.pool = int(img_size), int(num_classes), pool
        self.patch_embed = PatchEmbed(img_size, patch, in_channels, dims)
        n_tok = (img_size // patch) ** 2 + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dims)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tok, dims))
        self.blocks = nn.ModuleList(Block(dims, heads, float(mlp_ratio))
                                    for _ in range(int(depths)))
        self.norm = nn.LayerNorm(dims)
        self.head = nn.Linear(dims, num_classes)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.pos_embed.normal_(0, 0.02, generator=g)
            if self.cls_token is not None:
                self.cls_token.normal_(0, 0.02, generator=g)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02, generator=g)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))


# digits-sized: 16x16 input (the 8x8 digits upsampled), 4x4 patches -> 16 tokens, mean pooling
register("vit-tiny", "vit", img_size=16, patch=4, in_channels=1, num_classes=10, dims=64,
         depths=2, heads=4, mlp_ratio=2.0, pool="mean")
