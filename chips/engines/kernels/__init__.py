"""Numba compute kernels shared by the chip engines: event scatter, neuron updates, dense paths.

The package namespace exposes every kernel and helper
(``from chips.engines import kernels as K``); they live in

* :mod:`~chips.engines.kernels.layout`: model / reset codes, weight layout, exactness bounds;
* :mod:`~chips.engines.kernels.scatter`: event lists, conv / linear scatter, SSC;
* :mod:`~chips.engines.kernels.neuron`: IF / LIF / SFA population updates;
* :mod:`~chips.engines.kernels.dense`: exact dense conv / linear through torch (float32, exact
  float32 digit splits of wide inputs, or float64: :func:`exact_plan`);
* :mod:`~chips.engines.kernels.int8`: exact integer convs in int8 through oneDNN (VNNI / AMX
  CPUs, self-tested), inputs in uint8 digits when wider;
* :mod:`~chips.engines.kernels.batch`: the same over a batch of inputs (event lists with
  offsets, batched scatter, fused quantize / affine / neuron passes);
* :mod:`~chips.engines.kernels.products`: event-driven spike products (SpikeMatmul);
* :mod:`~chips.engines.kernels.queues`: the asynchronous chip's network, computed service
  schedules of events through link queues and core FIFOs (stalls, drops, occupancy);
* :mod:`~chips.engines.kernels.free`: free-running integration, event by event (scatter with
  re-evaluated outputs, neurons that fire the moment they cross threshold).

Conventions (seed-facts §7: channels-last maps and row-slice inner loops are ~5x faster):

* Maps are channels-last ``[H, W, C]``; a flat index into such a map is ``(y * W + x) * C + c``.
* Conv weights are re-laid by :func:`conv_weight_cl` from the graph's ``[C_out, C_in/g, k, k]``
  to ``[k, k, C_in/g, C_out]`` so that one (event, tap) pair adds one contiguous row of its
  group's output channels.
* Spike inputs are event lists: int32 ``ys, xs, cs`` (or flat ``idx`` for vectors) and int32
  ``counts`` (> 1 for SFA bursts / event frames; for a graded input, the quantized integer
  value, which may be negative); :func:`events` switches to int64 counts when one address
  holds 2^31 or more events (never a wrap). Events with count 0 are skipped.
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

from chips.engines.kernels.batch import (affine_rows, conv_scatter_batch, conv_scatter_ssc_batch,
                                         lif_update_batch, lif_update_counted_batch,
                                         linear_scatter_batch, maps_to_events,
                                         quantize_batch, sfa_burst_batch, split_digits_into,
                                         vectors_to_events)
from chips.engines.kernels.dense import (combine_digits, conv_exact_nhwc, dense_conv_exact,
                                         dense_dtype, dense_linear_exact, exact_plan,
                                         matmul_exact, split_digits, torch_conv_nhwc)
from chips.engines.kernels.int8 import (conv_int8_nhwc, int8_available, int8_plan, int8_status,
                                        int8_weights, pack_conv)
from chips.engines.kernels.layout import (F32_EXACT, F64_EXACT, MODEL_CODES, MODEL_IF, MODEL_LIF,
                                          RESET_CODES, RESET_HARD, RESET_NONE, RESET_SOFT,
                                          acc_dtype, choose_dense, conv_out_hw, conv_weight_cl,
                                          exact_bound)
from chips.engines.kernels.neuron import lif_update, neuron_codes, sfa_burst
from chips.engines.kernels.products import spike_matmul_scatter
from chips.engines.kernels.free import (add_events, conv_events, lif_events, linear_events,
                                        requantize, sfa_events)
from chips.engines.kernels.queues import (core_list, links_multi, new_res, new_state, occupancy,
                                          route_dense, take_back)
from chips.engines.kernels.scatter import (affine_out, conv_scatter, conv_scatter_depthwise,
                                           conv_scatter_ssc, count_fanout_acs, events,
                                           events_wide, linear_scatter, map_to_events,
                                           ssc_mask_events, vector_to_events)
from chips.engines.kernels.scatter import INT32_COUNT

__all__ = ["F32_EXACT", "F64_EXACT", "MODEL_CODES", "MODEL_IF", "MODEL_LIF", "RESET_CODES",
           "RESET_HARD", "RESET_NONE", "RESET_SOFT", "acc_dtype", "affine_out", "choose_dense",
           "conv_out_hw", "conv_scatter", "conv_scatter_depthwise", "conv_scatter_ssc",
           "conv_weight_cl", "count_fanout_acs", "dense_conv_exact", "dense_dtype",
           "dense_linear_exact", "events", "events_wide", "exact_bound", "lif_update",
           "linear_scatter", "map_to_events",
           "neuron_codes", "sfa_burst", "ssc_mask_events", "vector_to_events",
           # batched kernels, exact float plans, spike products (batched executors)
           "INT32_COUNT", "affine_rows", "combine_digits", "conv_exact_nhwc",
           "conv_scatter_batch", "conv_scatter_ssc_batch", "exact_plan", "lif_update_batch",
           "lif_update_counted_batch",
           "linear_scatter_batch", "maps_to_events", "matmul_exact", "quantize_batch",
           "sfa_burst_batch", "spike_matmul_scatter", "split_digits", "split_digits_into",
           "torch_conv_nhwc",
           "conv_int8_nhwc", "int8_available", "int8_plan", "int8_status", "int8_weights",
           "pack_conv",
           "vectors_to_events",
           # the asynchronous engine: network queues and free-running integration
           "add_events", "conv_events", "core_list", "lif_events", "linear_events",
           "links_multi", "new_res", "new_state", "occupancy", "requantize", "route_dense",
           "sfa_events", "take_back"]
