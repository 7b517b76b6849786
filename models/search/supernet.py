"""One-shot supernet with weight entanglement for Auto-Spikformer (seed ``auto-spikformer`` §4.2,
Figure 4; AutoFormer's weight entanglement).

The supernet's weights are those of the space's largest member (``space.largest()``: widest,
deepest, widest MLP), held in an ordinary zoo ``spikformer`` model. A subnet (a
:class:`~models.search.autospikformer.Candidate`) uses, for every tensor of its own model, the
leading slice of the supernet's tensor along every axis:

    conv / linear weight [out, in, k, k]  ->  [:out_sub, :in_sub, :, :]
    bias, BN weight / bias / statistics   ->  [:c_sub]
    blocks                                ->  the first ``depth`` blocks

so narrower subnets share the leading channels, and blocks the leading blocks. Head counts,
thresholds, taus and T have no weights: every subnet runs them as its own (Figure 4's
"alternate choice" for the SNN parameters). A subnet's forward is the zoo model's own forward
(``torch.func.functional_call`` on a model of the subnet's shape with the sliced tensors), so
the supernet needs no forward code of its own and an extracted subnet computes exactly what the
supernet computed for it.

One-shot training (:func:`train_supernet`) has two sampling rules, both drawing with
``random.Random(seed)`` and both with AdamW and a cosine schedule:

- ``uniform`` (default; AutoFormer's rule): one subnet per step, every gene drawn uniformly
  (``space.sample``), trained with ``models.train.fit``.
- ``sandwich`` (BigNAS / slimmable networks' "sandwich rule"): per step the largest subnet
  (:meth:`Supernet.largest_candidate`), the smallest (:meth:`Supernet.smallest_candidate`) and
  ``n_random`` uniformly drawn ones, in that order, each on the same batch; their cross-entropy
  gradients are summed (accumulated) and the optimizer takes one step. A step costs
  ``2 + n_random`` forward/backward passes.

Validation accuracy after each epoch is the largest subnet's.

BatchNorm statistics are shared leading slices too, but subnets of different widths, depths,
thresholds and T see different activations, so the supernet's running statistics fit none of
them. :func:`recalibrate_bn` re-estimates a subnet's statistics on training inputs (the usual
one-shot NAS practice, e.g. OFA and BigNAS) after extraction; it changes no trained weight.
"""
from __future__ import annotations

import random
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .autospikformer import AutoSpikformerSpace, Candidate

SUPERNET_NAME = "spikformer"     # checkpoints name the family (read_metadata checks)


def _leading(t: torch.Tensor, shape) -> torch.Tensor:
    if t.dim() != len(shape) or any(s > n for s, n in zip(shape, t.shape)):
        raise ValueError(f"subnet tensor of shape {tuple(shape)} is not a leading slice of the "
                         f"supernet's {tuple(t.shape)}")
    return t[tuple(slice(0, s) for s in shape)]


def _build(config: dict, name: str) -> nn.Module:
    """A zoo Spikformer, built without disturbing torch's global random stream."""
    from ..registry import build
    with torch.random.fork_rng(devices=[]):
        return build("spikformer", config, name=name)


class Supernet(nn.Module):
    """The supernet of ``space``: ``self.model`` is its largest member (module doc)."""

    def __init__(self, space: AutoSpikformerSpace, seed: int = 0, *,
                 sample_seed: int | None = None):
        super().__init__()
        self.space = space
        torch.manual_seed(seed)
        from ..registry import build
        self.model = build("spikformer", space.largest(), name=SUPERNET_NAME)
        self.rng = random.Random(seed if sample_seed is None else sample_seed)
        self.eval_candidate = self.largest_candidate()

    def largest_candidate(self) -> Candidate:
        sp = self.space
        L = max(sp.depths)
        return Candidate(max(sp.embed_dims), (max(sp.mlp_ratios),) * L, (min(sp.heads),) * L,
                         (1.0,) * L, (2.0,) * L, max(sp.time_steps))

    def smallest_candidate(self) -> Candidate:
        """The narrowest, shallowest member with the narrowest MLP and the fewest time steps
        (neurons v_th 1, tau 2 and heads as in :meth:`largest_candidate`)."""
        sp = self.space
        L = min(sp.depths)
        return Candidate(min(sp.embed_dims), (min(sp.mlp_ratios),) * L, (min(sp.heads),) * L,
                         (1.0,) * L, (2.0,) * L, min(sp.time_steps))

    def sandwich(self, n_random: int) -> list[Candidate]:
        """One sandwich step's subnets: largest, smallest, then ``n_random`` drawn uniformly
        from ``self.rng`` (module doc)."""
        if n_random < 0:
            raise ValueError(f"sandwich n_random must be >= 0, got {n_random}")
        return ([self.largest_candidate(), self.smallest_candidate()]
                + [self.space.sample(self.rng) for _ in range(n_random)])

    def check(self, c: Candidate) -> None:
        why = self.space.contains(c)
        if why:
            raise ValueError(f"candidate {c.key} is not in the supernet's space "
                             f"{self.space.name!r}: {why}")

    def sliced(self, skeleton: nn.Module) -> dict:
        """The supernet's tensors (views, gradients flow back) shaped like ``skeleton``'s."""
        full = dict(self.model.named_parameters())
        full.update(self.model.named_buffers())
        out = {}
        for name, t in list(skeleton.named_parameters()) + list(skeleton.named_buffers()):
            if name not in full:
                raise ValueError(f"subnet tensor {name!r} has no counterpart in the supernet")
            out[name] = _leading(full[name], t.shape)
        return out

    def skeleton(self, c: Candidate) -> nn.Module:
        """The zoo model of ``c`` (its own, unused, initial weights)."""
        self.check(c)
        return _build(c.model_config(self.space.inputs), "spikformer")

    def forward_subnet(self, c: Candidate, x: torch.Tensor) -> torch.Tensor:
        sk = self.skeleton(c)
        sk.train(self.training)
        return torch.func.functional_call(sk, self.sliced(sk), (x,), strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training: a uniformly sampled subnet per call; eval: ``eval_candidate``."""
        c = self.space.sample(self.rng) if self.training else self.eval_candidate
        return self.forward_subnet(c, x)

    @torch.no_grad()
    def extract(self, c: Candidate) -> nn.Module:
        """``c`` as an ordinary zoo ``spikformer`` model holding copies of its slices (eval
        mode); it lowers, simulates and checkpoints like any zoo model."""
        sk = self.skeleton(c)
        sk.load_state_dict({k: v.clone() for k, v in self.sliced(sk).items()}, strict=True)
        return sk.eval()

    def save(self, path, training: dict | None = None):
        """An ordinary checkpoint of the largest member, with the space in its metadata."""
        from ..checkpoint import save_checkpoint
        return save_checkpoint(self.model, path, {**(training or {}),
                                                  "supernet_space": self.space.to_dict()})

    @classmethod
    def load(cls, path, space: AutoSpikformerSpace | None = None) -> "Supernet":
        """The supernet stored at ``path`` (written by :meth:`save`). With ``space``, that
        space must be a subspace of the stored one (same inputs, every choice list a subset,
        e.g. a neuron-only search on one architecture); otherwise the error names the key."""
        from ..checkpoint import load_checkpoint, read_metadata
        from .autospikformer import space_from_dict
        stored = read_metadata(path).get("training", {}).get("supernet_space")
        if not isinstance(stored, dict):
            raise ValueError(f"{path}: not an Auto-Spikformer supernet checkpoint (no "
                             f"supernet_space in its training metadata)")
        full = space_from_dict(stored)
        why = None if space is None else subspace_reason(space, full)
        if why:
            raise ValueError(f"{path}: the supernet of space {full.name!r} cannot serve space "
                             f"{space.name!r}: {why}")
        net = cls(full)
        net.model.load_state_dict(load_checkpoint(path).state_dict(), strict=True)
        return net.eval()


def subspace_reason(small: AutoSpikformerSpace, big: AutoSpikformerSpace) -> str | None:
    """None when every member of ``small`` is a member of ``big``, else why not."""
    if small.inputs != big.inputs:
        return f"inputs differ ({small.inputs} vs {big.inputs})"
    for k in ("embed_dims", "mlp_ratios", "heads", "depths", "thresholds", "taus",
              "time_steps"):
        extra = sorted(set(getattr(small, k)) - set(getattr(big, k)))
        if extra:
            return f"{k} {extra} not in the supernet's {list(getattr(big, k))}"
    return None


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: np.ndarray, batch_size: int = 128) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics as the plain average over the inputs
    ``x`` (train-mode passes, no gradient); weights are unchanged. Returns ``model`` in eval
    mode."""
    from ..train import to_batch
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    for i in range(0, len(xt), batch_size):
        model(to_batch(xt[i:i + batch_size]))
    for m, mom in zip(bns, moms):
        m.momentum = mom
    return model.eval()


SAMPLING_RULES = ("uniform", "sandwich")


def _sandwich_step(n_random: int):
    """A ``models.train.fit`` step with the sandwich rule: per batch the gradients of
    ``net.sandwich(n_random)`` (largest, smallest, ``n_random`` uniform) summed."""
    def step(net: Supernet, xb, yb, cfg):
        out = []
        for c in net.sandwich(n_random):
            logits = net.forward_subnet(c, xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            loss.backward()                        # gradients accumulate over the subnets
            out.append((logits, float(loss.detach())))
        return out
    return step


def train_supernet(space: AutoSpikformerSpace, x_train, y_train, x_val, y_val, *,
                   epochs: int, seed: int = 0, lr: float = 2e-3, batch_size: int = 64,
                   shift_px: int = 0, progress: bool = False, sampling: str = "uniform",
                   n_random: int = 2) -> tuple[Supernet, dict]:
    """One-shot training (module doc) with ``sampling`` "uniform" (one subnet per step) or
    "sandwich" (largest + smallest + ``n_random`` per step), ``epochs`` passes over the
    training rows, one torch thread; returns the supernet and the training record (per epoch
    loss, train accuracy of the sampled subnets, validation accuracy of the largest subnet)."""
    from ..train import TrainConfig, fit, plain_step
    if sampling not in SAMPLING_RULES:
        raise ValueError(f"supernet sampling must be one of {list(SAMPLING_RULES)}, got "
                         f"{sampling!r}")
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        net = Supernet(space, seed)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, shift_px=shift_px,
                          seed=seed, threads=1)
        if sampling == "uniform":
            step, rule = plain_step, "uniform, one subnet per step"
        else:
            step = _sandwich_step(n_random)
            rule = f"sandwich: largest + smallest + {n_random} uniform per step, summed"
        history = fit(net, x_train, y_train, x_val, y_val, cfg, progress=progress,
                      step=step).history
    finally:
        torch.set_num_threads(threads)
    return net.eval(), {"epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
                        "sampling": rule, "train_s": time.perf_counter() - t0,
                        "history": [{k: h[k] for k in ("epoch", "loss", "train_acc",
                                                       "test_acc")} for h in history]}


__all__ = ["SAMPLING_RULES", "Supernet", "recalibrate_bn", "subspace_reason", "train_supernet"]
