"""The MIM decoder: a plain (non-spiking) transformer with learnable mask tokens
(seed sdt-v3 §3.4 "Decoder"; MC-MAE's plain decoder). Used only in pre-training and dropped
afterwards, so it never reaches a chip.

Input: the encoder's deepest feature map [B, C, h, w] and the visible-patch map [B, 1, g, g]
(h = g * r: r x r feature sites per patch are average-pooled into one token). Each visible
patch's token is Linear(C -> width) of its pooled feature; each masked patch's token is the
learnable mask token. A learned position embedding is added, ``depth`` pre-norm transformer
layers follow, and Linear(width -> p*p*C_img) predicts the patch's normalised pixels.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MIMDecoder(nn.Module):
    def __init__(self, in_dim: int, grid: int, patch_pixels: int, width: int = 64,
                 depth: int = 2, heads: int = 4, mlp_ratio: int = 2):
        super().__init__()
        if width % heads:
            raise ValueError(f"decoder width {width} is not divisible by {heads} heads")
        self.grid = grid
        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, width))
        layer = nn.TransformerEncoderLayer(width, heads, mlp_ratio * width, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.pred = nn.Linear(width, patch_pixels)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, feats: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """feats [B, C, h, w], visible [B, 1, g, g] -> prediction [B, g*g, patch_pixels]."""
        g = self.grid
        if feats.shape[-1] % g or feats.shape[-2] % g:
            raise ValueError(f"decoder: feature map {tuple(feats.shape[-2:])} is not a multiple "
                             f"of the {g}x{g} patch grid")
        pooled = F.adaptive_avg_pool2d(feats, g).flatten(2).transpose(1, 2)    # [B, N, C]
        tok = self.embed(pooled)
        vis = visible.flatten(1).unsqueeze(-1)                                  # [B, N, 1]
        tok = torch.where(vis, tok, self.mask_token.expand_as(tok)) + self.pos
        return self.pred(self.norm(self.blocks(tok)))
