"""Closed-form scores of an AutoST architecture (no torch): the exact parameter count of the
zoo's ``autost`` family and the paper's FLOPs.

Parameter count (``models.autost.AutoST`` with PLIF neurons, one learnable scalar each; BN
running statistics are buffers, not parameters), for width D, input channels C, classes K and
per-block hidden widths h_l = int(D r_l):

    stem  = 9 (C D/8 + D/8 D/4 + D/4 D/2 + D/2 D) + 2 (D/8 + D/4 + D/2 + D)   4 conv3x3 + BN
          + 9 D^2 + 2 D                                                     RPE conv3x3 + BN
          + 3                                                               3 PLIF
    block = 4 D^2 + 15 D + 7 + h_l (2 D + 3)     q, k, v, proj (1x1 + bias + BN), MLP, 7 PLIF
    head  = D K + K

so it depends only on (D, depth, sum of h_l); ``tests/models/test_search.py`` checks it
against ``sum(p.numel())`` of built models.

FLOPs (seed ``autost`` eq. 4-5, and FLOPs_SNN = T x FLOPs_ANN), per block with its own hidden
width, n = tokens, d = D:

    FLOPs = T x sum_l [ n d (2 d + n)  +  n (d h_l + h_l d) ]
"""
from __future__ import annotations

# Arch and InputSpec (models.search.space) are used by attribute only: space imports this
# module to enumerate parameter counts, so importing it back would be a cycle.


def _stem_params(D: int, C: int) -> int:
    w = [C, D // 8, D // 4, D // 2, D]
    convs = sum(9 * w[i] * w[i + 1] + 2 * w[i + 1] for i in range(4))
    return convs + 9 * D * D + 2 * D + 3


def param_count_from(D: int, depth: int, hidden_sum: int, inputs) -> int:
    """Parameters of an AutoST model of width ``D``, ``depth`` blocks whose MLP hidden widths
    sum to ``hidden_sum``, built for ``inputs``."""
    blocks = depth * (4 * D * D + 15 * D + 7) + hidden_sum * (2 * D + 3)
    head = D * inputs.num_classes + inputs.num_classes
    return _stem_params(D, inputs.in_channels) + blocks + head


def param_count(arch, inputs) -> int:
    """Exact trainable parameter count of ``arch`` (an ``Arch``) built for ``inputs`` (an
    ``InputSpec``)."""
    hidden = sum(arch.hidden(i) for i in range(arch.depth))
    return param_count_from(arch.embed_dim, arch.depth, hidden, inputs)


def flops_paper(arch, inputs) -> int:
    """The paper's training-free score: T x (eq. 4 + eq. 5) summed over blocks."""
    n, d = inputs.tokens, arch.embed_dim
    per_block = [n * d * (2 * d + n) + n * (d * arch.hidden(i) + arch.hidden(i) * d)
                 for i in range(arch.depth)]
    return inputs.T * sum(per_block)


__all__ = ["flops_paper", "param_count", "param_count_from"]
