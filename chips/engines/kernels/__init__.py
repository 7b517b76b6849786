"""Numba compute kernels shared by the chip engines: event scatter, neuron updates, dense paths.

The package namespace exposes every kernel and helper
(``from chips.engines import kernels as K``); they live in

* :mod:`~chips.engines.kernels.layout`: model / reset codes, weight layout, exactness bounds;
* :mod:`~chips.engines.kernels.scatter`: event lists, conv / linear scatter, SSC;
* :mod:`~chips.engines.kernels.neuron`: IF / LIF / SFA population updates;
* :mod:`~chips.engines.kernels.dense`: exact dense conv / linear through torch.

Conventions (seed-facts §7: channels-last maps and row-slice inner loops are ~5x faster):

* Maps are channels-last ``[H, W, C]``; a flat index into such a map is ``(y * W + x) * C + c``.
* Conv weights are re-laid by :func:`conv_weight_cl` from the graph's ``[C_out, C_in/g, k, k]``
  to ``[k, k, C_in/g, C_out]`` so that one (event, tap) pair adds one contiguous row of its
  group's output channels.
* Spike inputs are event lists: int32 ``ys, xs, cs`` (or flat ``idx`` for vectors) and int32
  ``counts`` (> 1 for SFA bursts / event frames; for a graded input, the quantized integer
  value, which may be negative). Events with count 0 are skipped.
* Accumulators are exact integers: int32 when :func:`acc_dtype` says the bound
  ``max|w| * max|count| * fan_in`` stays below 2^31, else int64 (the same kernels compile for
  both). Scatter kernels *add* into ``acc``; the caller zeroes it.
* Neuron kernels repeat ``neurosim.ir.semantics.neuron_step`` element by element in float64,
  operation for operation (no fastmath), so their results are bit-identical to the reference
  interpreter.

No bounds checks: the caller guarantees event coordinates inside the input map and C-contiguous
``acc`` / weight arrays (the kernels take flat views of them).

The scatter kernels return the number of synaptic events they delivered,
``sum over events of count * targets`` (the AC count of spike inputs; seed-facts' accounting
of a burst of n spikes as n ACs per synapse).
"""
from __future__ import annotations

from chips.engines.kernels.dense import dense_conv_exact, dense_dtype, dense_linear_exact
from chips.engines.kernels.layout import (F32_EXACT, F64_EXACT, MODEL_CODES, MODEL_IF, MODEL_LIF,
                                          RESET_CODES, RESET_HARD, RESET_NONE, RESET_SOFT,
                                          acc_dtype, choose_dense, conv_out_hw, conv_weight_cl,
                                          exact_bound)
from chips.engines.kernels.neuron import lif_update, neuron_codes, sfa_burst
from chips.engines.kernels.scatter import (affine_out, conv_scatter, conv_scatter_depthwise,
                                           conv_scatter_ssc, count_fanout_acs, linear_scatter,
                                           map_to_events, ssc_mask_events, vector_to_events)

__all__ = ["F32_EXACT", "F64_EXACT", "MODEL_CODES", "MODEL_IF", "MODEL_LIF", "RESET_CODES",
           "RESET_HARD", "RESET_NONE", "RESET_SOFT", "acc_dtype", "affine_out", "choose_dense",
           "conv_out_hw", "conv_scatter", "conv_scatter_depthwise", "conv_scatter_ssc",
           "conv_weight_cl", "count_fanout_acs", "dense_conv_exact", "dense_dtype",
           "dense_linear_exact", "exact_bound", "lif_update", "linear_scatter", "map_to_events",
           "neuron_codes", "sfa_burst", "ssc_mask_events", "vector_to_events"]
