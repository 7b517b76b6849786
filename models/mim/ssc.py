"""Spike sparse convolution (SSC) as a PyTorch training layer (seed sdt-v3 §3.4 eq. 13, §6.2).

SSC differs from vanilla spike convolution (VSC) by one check: the kernel is applied at an
output site only when its centre position is *active*; every other site produces nothing (0,
not the conv bias or BN shift), so a silent region stays silent layer after layer.

Active sites (``SSCConvBN``):

- stride 1, 'same' padding, spike input: a site is active when any input channel there is
  nonzero, ``semantics.ssc_mask``. This is exactly what the chip engines execute for a graph
  lowered with ``ssc=True`` (``chips.engines.kernels.scatter.conv_scatter_ssc``: the active set
  from the input events, ``out = where(mask, acc * scale + bias, 0)``); tests/models/mim checks
  the two agree number for number.
- stride s > 1 (the downsampling convs): an output site is active when any site of its s x s
  input cell is active (max-pool of the input's active set). For patch-aligned masks this is
  SparK's mask layout at the coarser resolution. The IR holds SSC for stride-1 'same' convs
  only, so a chip runs these convs as VSC (``neurosim.lower(..., ssc=True)``): on a chip, a
  masked cell after a downsampling computes BN(bias) instead of 0.
- an explicit ``active`` map [N, 1, H, W] (the MIM stem: the graded image has no spikes, a
  black pixel is a value, so the stem is told the patch mask instead).

BatchNorm statistics are taken over the active sites only (SparK's ``SparseBatchNorm2d``);
running statistics are updated from them; with fewer than two active sites in a batch there is
nothing to normalise, the output is all 0 and the running statistics are left as they are.

Where the authors' code differs: the SDT-v3 MIM encoder follows SparK (keyu-tian/SparK
``pretrain/encoder.py``): every conv is computed densely and its output multiplied by the
*patch-mask layout* upsampled to that resolution (``x *= _get_active_ex_or_ii(...)``), one
global mask for all layers. Here the active set is the spike pattern itself (the chip rule), so
an unmasked site with no input spike also stays silent, and the layer needs no global state.
Both give 0 at masked sites; they differ at unmasked sites without spikes.

``to_ssc(model)`` swaps every ``layers.ConvBN`` of a model for an ``SSCConvBN`` sharing the same
conv and BN modules (state-dict keys unchanged); ``to_vsc`` swaps back (fine-tuning: "the
weights are converted back to VSC").
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.layers import ConvBN


def spike_active(x: torch.Tensor) -> torch.Tensor:
    """Active sites of a map [N, C, H, W]: any channel nonzero, bool [N, 1, H, W]."""
    return (x != 0).any(dim=1, keepdim=True)


def strided_active(active: torch.Tensor, stride: int, out_hw: tuple[int, int]) -> torch.Tensor:
    """Active set after a stride-``stride`` conv: a site is active when any site of its
    stride x stride input cell is (bool [N, 1, Ho, Wo])."""
    a = active if stride == 1 else F.max_pool2d(active.float(), stride, stride, ceil_mode=True) > 0
    if tuple(a.shape[-2:]) != tuple(out_hw):
        raise ValueError(f"SSC: active map {tuple(a.shape[-2:])} does not match the conv output "
                         f"{tuple(out_hw)} (stride {stride}); SSC needs 'same'-padded convs")
    return a


def masked_batch_norm(z: torch.Tensor, active: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """BatchNorm of z [N, C, H, W] with statistics over the active sites only; inactive sites
    are 0. Training: batch statistics of the active sites, running statistics updated from
    them (momentum of ``bn``); eval: running statistics."""
    sites = active[:, 0]                                        # [N, H, W]
    zc = z.permute(0, 2, 3, 1)[sites]                           # [n_active, C]
    out = torch.zeros_like(z.permute(0, 2, 3, 1))
    if zc.shape[0] < (2 if bn.training else 1):
        return out.permute(0, 3, 1, 2)                          # nothing to normalise (doc)
    y = F.batch_norm(zc, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     bn.training or not bn.track_running_stats, bn.momentum, bn.eps)
    return out.index_put((sites,), y).permute(0, 3, 1, 2)


class SSCConvBN(nn.Module):
    """Spike sparse conv + BN over [T, B, C, H, W] (module doc). Shares ``conv`` and ``bn`` with
    the ``ConvBN`` it was made from; ``forward(x, active=None)``: ``active`` [T*B, 1, H, W]
    overrides the input's own active set."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None):
        super().__init__()
        k, s = conv.kernel_size[0], conv.stride[0]
        if conv.padding != (k // 2, k // 2) or k % 2 == 0 or conv.dilation != (1, 1):
            raise ValueError(f"SSC needs an odd, undilated kernel with 'same' padding k//2; got "
                             f"kernel {conv.kernel_size}, padding {conv.padding}, stride {s}")
        self.conv, self.bn = conv, bn

    @classmethod
    def from_convbn(cls, m: ConvBN) -> "SSCConvBN":
        return cls(m.conv, m.bn)

    def to_convbn(self) -> ConvBN:
        m = ConvBN.__new__(ConvBN)          # no fresh init: it would draw from torch's RNG
        nn.Module.__init__(m)
        m.conv, m.bn = self.conv, self.bn
        return m

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        T, B = x.shape[:2]
        z_in = x.flatten(0, 1)
        z = self.conv(z_in)
        a = spike_active(z_in) if active is None else active.bool()
        a = strided_active(a, self.conv.stride[0], z.shape[-2:])
        if self.bn is not None:
            y = masked_batch_norm(z, a, self.bn)
        else:
            y = z * a
        return y.reshape(T, B, *y.shape[1:])


def _swap(model: nn.Module, old: type, make) -> int:
    n = 0
    for name, child in list(model.named_children()):
        if type(child) is old:
            setattr(model, name, make(child))
            n += 1
        else:
            n += _swap(child, old, make)
    return n


def to_ssc(model: nn.Module) -> nn.Module:
    """Swap every ``ConvBN`` of ``model`` (in place) for an ``SSCConvBN`` on the same weights;
    returns the model. Raises when it holds none (nothing would be sparse)."""
    if _swap(model, ConvBN, SSCConvBN.from_convbn) == 0:
        raise ValueError(f"{type(model).__name__} holds no ConvBN layer to make spike-sparse")
    return model


def to_vsc(model: nn.Module) -> nn.Module:
    """Swap every ``SSCConvBN`` back to a dense ``ConvBN`` (same weights); returns the model."""
    _swap(model, SSCConvBN, SSCConvBN.to_convbn)
    return model


def is_ssc(model: nn.Module) -> bool:
    """Whether ``model`` holds any SSC layer."""
    return any(isinstance(m, SSCConvBN) for m in model.modules())
