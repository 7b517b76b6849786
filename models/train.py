"""CPU training and evaluation of zoo models (BPTT over T steps; SFA models train at T = 1).

Inputs: static images [N, C, H, W] in [0, 1] (the model's ``Encoder`` repeats them over T) or
event frames [N, T, P, H, W] (fed as [T, B, P, H, W]). Loss: cross-entropy on the logits.

Convolution: the zoo's layers (``layers.ConvBN``, ``RepConvBN``) compute dense ``nn.Conv2d``,
vanilla convolution (VSC), and ``fit`` trains them so (the spike-sparse (SSC) training layer
is ``models.mim.ssc``, used by MIM pre-training, whose encoders are fine-tuned as VSC). ``fit``
records this as ``model.neurosim_convolution = "vsc"`` and in ``TrainResult.convolution``;
``models.save_checkpoint`` stores it, and lowering with ``ssc=True`` warns about it
(``models.checkpoint.SSCMismatchWarning``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, asdict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

TRAINED_CONVOLUTION = "vsc"    # what fit() trains with: the zoo's convs are dense (module doc)


@dataclass
class TrainConfig:
    """Optimiser settings: AdamW with a cosine schedule; ``shift_px`` random-translation
    augmentation (pixels, zero fill); ``max_minutes`` stops early on a wall-clock budget."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    shift_px: int = 2
    seed: int = 0
    threads: int = 2
    max_minutes: float | None = None
    label_smoothing: float = 0.0

    def __post_init__(self):
        for k in ("epochs", "batch_size", "threads"):
            if getattr(self, k) < 1:
                raise ValueError(f"train {k} must be >= 1, got {getattr(self, k)}")
        if not self.lr > 0:
            raise ValueError(f"train lr must be > 0, got {self.lr}")
        if self.shift_px < 0:
            raise ValueError(f"train shift_px must be >= 0, got {self.shift_px}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"train label_smoothing must be in [0, 1), got "
                             f"{self.label_smoothing}")


@dataclass
class TrainResult:
    epochs_run: int
    train_seconds: float
    final_test_accuracy: float
    best_test_accuracy: float
    history: list[dict] = field(default_factory=list)
    convolution: str = TRAINED_CONVOLUTION

    def to_dict(self) -> dict:
        return asdict(self)


def to_batch(x: torch.Tensor) -> torch.Tensor:
    """Dataset rows -> model input: [B, C, H, W] stays; [B, T, P, H, W] -> [T, B, P, H, W]."""
    if x.dim() == 5:
        return x.transpose(0, 1).contiguous()
    if x.dim() == 4:
        return x
    raise ValueError(f"inputs must be [N, C, H, W] images or [N, T, P, H, W] frames, "
                     f"got shape {tuple(x.shape)}")


def _shift(x: torch.Tensor, px: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each sample by a random integer offset in [-px, px] (zero fill)."""
    if px == 0:
        return x
    H, W = x.shape[-2:]
    pad = F.pad(x, [px, px, px, px])
    out = torch.empty_like(x)
    offs = torch.randint(0, 2 * px + 1, (x.shape[0], 2), generator=gen)
    for i, (dy, dx) in enumerate(offs.tolist()):
        out[i] = pad[i, ..., dy:dy + H, dx:dx + W]
    return out


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Logits of ``model`` (eval mode) on dataset rows ``x``; float32 [N, K]."""
    model.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    outs = [model(to_batch(xt[i:i + batch_size])) for i in range(0, len(xt), batch_size)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def accuracy(model: nn.Module, x, y, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1]."""
    logits = predict(model, x, batch_size)
    return float((logits.argmax(1) == np.asarray(y)).mean())


def plain_step(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor,
               cfg: TrainConfig) -> list[tuple[torch.Tensor, float]]:
    """One forward and backward of a batch (``fit``'s default step): cross-entropy with the
    configured label smoothing; returns ``[(logits, loss)]``."""
    logits = model(xb)
    loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
    loss.backward()
    return [(logits, float(loss.detach()))]


def fit(model: nn.Module, x_train, y_train, x_test, y_test, cfg: TrainConfig | None = None,
        progress: bool = True, step=plain_step) -> TrainResult:
    """Train ``model`` in place; evaluates on the test rows after every epoch. ``step(model,
    xb, yb, cfg)`` computes and back-propagates a batch's loss (gradients accumulate; one
    optimizer step follows) and returns ``[(logits, loss)]`` per forward it made: loss and
    train accuracy in the history are their means (e.g. a supernet's sandwich rule)."""
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    xtr = torch.as_tensor(x_train, dtype=torch.float32)
    ytr = torch.as_tensor(y_train, dtype=torch.long)
    if len(xtr) != len(ytr):
        raise ValueError(f"train inputs ({len(xtr)}) and labels ({len(ytr)}) differ in length")
    steps_per_epoch = math.ceil(len(xtr) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    history, best = [], 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="train", unit="batch", disable=not progress, dynamic_ncols=True)
    for epoch in range(cfg.epochs):
        bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(0, len(xtr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = xtr[idx]
            if xb.dim() == 4:
                xb = _shift(xb, cfg.shift_px, gen)
            opt.zero_grad(set_to_none=True)
            outs = step(model, to_batch(xb), ytr[idx], cfg)
            opt.step()
            sched.step()
            for logits, loss in outs:
                loss_sum += loss * len(idx) / len(outs)
                correct += int((logits.argmax(1) == ytr[idx]).sum())
                seen += len(idx)
            bar.set_postfix(batch=f"{i // cfg.batch_size + 1}/{steps_per_epoch}",
                            loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            refresh=False)
            bar.update(1)                # running loss and accuracy of the epoch so far
        test_acc = accuracy(model, x_test, y_test)
        best = max(best, test_acc)
        rec = {"epoch": epoch + 1, "loss": loss_sum / len(xtr), "train_acc": correct / seen,
               "test_acc": test_acc, "seconds": time.perf_counter() - t0}
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['train_acc']:.3f}",
                        test=f"{test_acc:.3f}")
        if cfg.max_minutes is not None and rec["seconds"] > 60 * cfg.max_minutes:
            break
    bar.close()
    model.eval()
    model.neurosim_convolution = TRAINED_CONVOLUTION
    return TrainResult(epochs_run=len(history), train_seconds=time.perf_counter() - t0,
                       final_test_accuracy=history[-1]["test_acc"], best_test_accuracy=best,
                       history=history)
