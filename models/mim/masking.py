"""Patch-wise random masking and the MIM reconstruction target (seed sdt-v3 §3.4 eqs. 12, 14).

An image [B, C, H, W] is cut into non-overlapping p x p patches (a g x g grid, g = H / p); for
each image a random subset of round(ratio * g^2) patches is masked (at least one masked and one
visible). The encoder sees x * visible (masked pixels 0); the loss is the MSE between the
decoder's prediction and the *normalised* pixels of each masked patch (per-patch mean 0, var 1:
MAE's ``norm_pix_loss``, which the seed's "normalized pixel values of each masked patch" names).
"""
from __future__ import annotations

import torch


def check_mask_args(img_size: int, patch_size: int, mask_ratio: float,
                    stride: int | None = None) -> int:
    """Validate the masking arguments; returns the grid side g = img_size / patch_size.
    ``stride``: the encoder's total downsampling, which the patch size must be a multiple of
    (each deepest-layer site then lies in one patch, so masked patches stay silent)."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)) \
            or not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask ratio must lie in (0, 1), got {mask_ratio!r}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch size must be a positive integer, got {patch_size!r}")
    if img_size % patch_size:
        raise ValueError(f"patch size {patch_size} does not divide the image size {img_size} "
                         f"(use a divisor of {img_size})")
    if stride is not None and patch_size % stride:
        raise ValueError(f"patch size {patch_size} is not a multiple of the encoder's total "
                         f"stride {stride}: a deepest-layer site would straddle masked and "
                         f"visible patches")
    g = img_size // patch_size
    n = g * g
    k = round(mask_ratio * n)
    if not 0 < k < n:
        raise ValueError(f"mask ratio {mask_ratio} masks {k} of {n} patches ({g}x{g} grid of "
                         f"{patch_size}-pixel patches); at least one must be masked and one "
                         f"visible: use smaller patches or another ratio")
    return g


def random_patch_mask(batch: int, grid: int, mask_ratio: float,
                      gen: torch.Generator) -> torch.Tensor:
    """Visible-patch map, bool [B, 1, g, g] (True = visible): per image exactly
    round(ratio * g^2) masked patches, drawn from ``gen``."""
    n = grid * grid
    k = round(mask_ratio * n)
    order = torch.rand(batch, n, generator=gen).argsort(dim=1)
    visible = torch.ones(batch, n, dtype=torch.bool)
    visible.scatter_(1, order[:, :k], False)
    return visible.view(batch, 1, grid, grid)


def upsample_mask(visible: torch.Tensor, size: int) -> torch.Tensor:
    """[B, 1, g, g] patch map -> [B, 1, size, size] pixel (or feature-site) map."""
    r = size // visible.shape[-1]
    return visible.repeat_interleave(r, dim=2).repeat_interleave(r, dim=3)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, g*g, p*p*C] (row-major patches; pixels (py, px, c) in each)."""
    B, C, H, W = x.shape
    g = H // p
    return x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, p * p * C)


def normalised_patches(x: torch.Tensor, p: int, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch normalised pixels (mean 0, variance 1; ``eps`` keeps flat patches finite)."""
    t = patchify(x, p)
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, keepdim=True, unbiased=False)
    return (t - mean) / torch.sqrt(var + eps)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Eq. 14: mean squared error over the masked patches only. pred, target [B, N, P];
    visible [B, 1, g, g]."""
    masked = (~visible).flatten(1).to(pred.dtype)                # [B, N]
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * masked).sum() / masked.sum()
