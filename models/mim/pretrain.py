"""MIM-SNN pre-training of an E-SpikeFormer encoder and fine-tuning from it (seed sdt-v3 §3.4).

    x --mask--> x * visible --SSC encoder--> features [B, C, h, w] --decoder(+mask tokens)-->
    prediction of every patch; loss = MSE on the normalised pixels of the masked patches.

The encoder is the zoo model itself (stages 1-4 of ``staged_forward``, no head) with its
``ConvBN`` layers swapped for ``SSCConvBN`` (``models.mim.ssc``); its stem is told the patch
mask (the graded image has no spikes to define active sites). ``conv="vsc"`` pre-trains the
same encoder with dense convolutions instead (the seed's leaking baseline). After pre-training
the encoder is saved as an ordinary checkpoint of the zoo model (SSC weights = VSC weights;
``convolution="ssc"``; training metadata ``pretrain: "mim"``); the decoder and its mask
token are dropped. ``finetune`` loads such a checkpoint, keeps the weights in VSC form and
trains the whole network, head included, with ``models.train.fit``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from models.mim.decoder import MIMDecoder
from models.mim.masking import (check_mask_args, masked_mse, normalised_patches,
                                random_patch_mask, upsample_mask)
from models.mim.ssc import SSCConvBN, is_ssc, to_ssc, to_vsc
from models.train import TrainConfig, TrainResult, fit

PRETRAIN_TAG = "mim"
FAMILIES = ("e-spikeformer",)
STAGES = ("1a", "1b", "2", "3", "4")


@dataclass
class MIMConfig:
    """Pre-training settings. ``patch_size`` None: the encoder's total stride (16 for the
    zoo's E-SpikeFormers), the smallest patch whose deepest-layer sites each lie in one patch.
    ``conv``: "ssc" (seed) or "vsc" (dense baseline)."""

    mask_ratio: float = 0.5
    patch_size: int | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0
    threads: int = 1
    conv: str = "ssc"
    decoder_width: int = 64
    decoder_depth: int = 2
    decoder_heads: int = 4
    max_minutes: float | None = None

    def __post_init__(self):
        if self.conv not in ("ssc", "vsc"):
            raise ValueError(f"MIM conv must be 'ssc' or 'vsc', got {self.conv!r}")
        for k in ("epochs", "batch_size", "threads"):
            if getattr(self, k) < 1:
                raise ValueError(f"MIM {k} must be >= 1, got {getattr(self, k)}")
        if not self.lr > 0:
            raise ValueError(f"MIM lr must be > 0, got {self.lr}")
        if isinstance(self.mask_ratio, bool) or not 0.0 < float(self.mask_ratio) < 1.0:
            raise ValueError(f"mask ratio must lie in (0, 1), got {self.mask_ratio!r}")


@dataclass
class PretrainResult:
    epochs_run: int
    train_seconds: float
    patch_size: int
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_encoder(model: nn.Module) -> None:
    fam = getattr(model, "neurosim_config", {}).get("family")
    if fam not in FAMILIES:
        raise ValueError(f"MIM pre-training supports the {', '.join(FAMILIES)} family; "
                         f"got {fam or type(model).__name__!r}")


def encode(model: nn.Module, x: torch.Tensor, visible_px: torch.Tensor | None = None):
    """Encoder features [B, C, h, w] (stage-4 output averaged over T). ``visible_px``
    [B, 1, H, W]: the stem of an SSC encoder computes only at visible pixels (None: at all)."""
    z = model.encoder(x)
    T = z.shape[0]
    for stage in STAGES:
        down = getattr(model, f"down{stage}")
        if stage == "1a" and isinstance(down.conv, SSCConvBN):
            vis = visible_px if visible_px is not None else \
                torch.ones(z.shape[1], 1, *z.shape[-2:], dtype=torch.bool)
            z = down.conv(z, active=vis.repeat(T, 1, 1, 1))
        else:
            z = down(z)
        for blk in getattr(model, f"blocks{stage}"):
            z = blk(z)
    return z.mean(0)


def encoder_stride(model: nn.Module) -> int:
    """Total downsampling of the encoder (input side / feature side), from one dry run."""
    s = model.img_size
    with torch.no_grad():
        was = model.training
        model.eval()
        h = encode(model, torch.zeros(1, model.in_channels, s, s)).shape[-1]
        model.train(was)
    return s // h


def pretrain(model: nn.Module, x_train, cfg: MIMConfig | None = None, progress: bool = True,
             on_epoch=None) -> tuple[MIMDecoder, PretrainResult]:
    """Pre-train ``model`` (an E-SpikeFormer, modified in place: SSC layers when
    ``cfg.conv == "ssc"``) on images ``x_train`` [N, C, H, W]. ``on_epoch(epoch, model)`` is
    called after each epoch (and with epoch 0 before training). Returns (decoder, result)."""
    cfg = cfg or MIMConfig()
    check_encoder(model)
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)
    if x.dim() != 4 or tuple(x.shape[1:]) != (model.in_channels, model.img_size, model.img_size):
        raise ValueError(f"MIM pre-training takes images [N, {model.in_channels}, "
                         f"{model.img_size}, {model.img_size}], got {tuple(x.shape)}")
    stride = encoder_stride(model)
    p = cfg.patch_size or stride
    g = check_mask_args(model.img_size, p, cfg.mask_ratio, stride)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.conv == "ssc" and not is_ssc(model):
        to_ssc(model)
    dims = model.neurosim_config["config"]["dims"]
    dec = MIMDecoder(dims[3], g, p * p * model.in_channels, cfg.decoder_width,
                     cfg.decoder_depth, cfg.decoder_heads)
    params = list(model.parameters()) + list(dec.parameters())
    steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    if on_epoch is not None:
        on_epoch(0, model)
    history, t0 = [], time.perf_counter()
    bar = tqdm(total=steps, desc="mim", unit="batch", disable=not progress, dynamic_ncols=True)
    for epoch in range(cfg.epochs):
        model.train()
        dec.train()
        perm = torch.randperm(len(x), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(x), cfg.batch_size):
            xb = x[perm[i:i + cfg.batch_size]]
            visible = random_patch_mask(len(xb), g, cfg.mask_ratio, gen)
            vis_px = upsample_mask(visible, model.img_size)
            feats = encode(model, xb * vis_px, vis_px)
            loss = masked_mse(dec(feats, visible), normalised_patches(xb, p), visible)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(xb)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
            bar.update(1)
        rec = {"epoch": epoch + 1, "loss": loss_sum / len(x),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
        if cfg.max_minutes is not None and rec["seconds"] > 60 * cfg.max_minutes:
            break
    bar.close()
    model.eval()
    return dec, PretrainResult(len(history), time.perf_counter() - t0, p, history)


def save_encoder(model: nn.Module, path: str | Path, cfg: MIMConfig, result: PretrainResult,
                 extra: dict | None = None) -> Path:
    """Write the pre-trained encoder (the zoo model's weights; decoder dropped) with
    ``training.pretrain = "mim"``."""
    meta = {"pretrain": PRETRAIN_TAG, "mim": {**asdict(cfg), "patch_size": result.patch_size},
            **result.to_dict(), **(extra or {})}
    return save_checkpoint(model, path, training=meta, convolution=cfg.conv)


def load_encoder(path: str | Path, name: str | None = None, **overrides) -> nn.Module:
    """A MIM-pre-trained encoder in VSC form, ready to fine-tune. A checkpoint that was not
    written by :func:`save_encoder` is an error naming the file."""
    meta = read_metadata(path)
    tag = meta["training"].get("pretrain") if isinstance(meta["training"], dict) else None
    if tag != PRETRAIN_TAG:
        raise CheckpointError(
            f"{path}: not a MIM-pre-trained encoder (training metadata 'pretrain' is {tag!r}, "
            f"expected {PRETRAIN_TAG!r}); write one with `neurosim train --pretrain mim`")
    return to_vsc(load_checkpoint(path, name, **overrides))


def finetune(path: str | Path, x_train, y_train, x_test, y_test, cfg: TrainConfig | None = None,
             name: str | None = None, progress: bool = True, **overrides
             ) -> tuple[nn.Module, TrainResult]:
    """Fine-tune the encoder in ``path`` (SSC converted to VSC) with labels; returns
    (model, result)."""
    model = load_encoder(path, name, **overrides)
    return model, fit(model, x_train, y_train, x_test, y_test, cfg, progress=progress)


__all__ = ["MIMConfig", "PretrainResult", "encode", "encoder_stride", "finetune",
           "load_encoder", "pretrain", "save_encoder"]
