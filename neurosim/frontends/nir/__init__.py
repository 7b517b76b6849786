"""NIR interchange: ``neurosim.Graph`` <-> ``nir.NIRGraph`` (Neuromorphic Intermediate Repr.).

NIR describes continuous-time dynamics; neurosim runs in ticks. One tick lasts ``dt`` seconds
(default 1 ms, norse's convention; snntorch's exporter assumes dt = 0.1 ms: import its files with
``dt=1e-4``). Neurons are stepped with forward Euler, one step per tick, which is the reading that
snntorch and norse use when they import NIR:

    LIF  v <- v + (dt / tau) * (v_leak - v + r * I)       then spike if v > v_threshold
    IF   v <- v + r * I  (r per tick; norse and snntorch write and read r = 1 this way)
    after a spike v <- v_reset; neurons start at v_reset.

Mapping (export ``to_nir`` / import ``from_nir``):

    neurosim                              NIR
    Input(shape, kind, T)                 Input(shape); kind and T only in metadata
    Conv(w, scale, bias, s, p, g)         Conv2d(weight = w * scale[c] / u (float64), bias,
                                          stride s, padding p, dilation 1, groups 1); u = 1
                                          for spike input, in_scale for graded input (the
                                          integer accumulator counts steps of in_scale);
                                          groups g > 1 is written as the equal dense weight
                                          with zero blocks (NIR 1.0.8 cannot read grouped
                                          Conv2d back: it takes C_in from weight.shape[1])
    Linear, in (N,)                       Affine(weight = w * scale[c] / u, bias)
    Linear, in (C, H, W)                  Flatten "<name>.flatten" -> Affine
    Neurons lif, hard reset               LIF(tau = tau_ticks * dt, r = 1 if decay_input else
                                          tau_ticks, v_leak = v_reset, v_reset,
                                          v_threshold = nextafter(v_th, -inf))
    Neurons if, hard reset                IF(r = 1, v_reset, v_threshold = nextafter(v_th, -inf))
    Add (2..8 inputs)                     Scale(ones) with one edge per input (NIR sums fan-in)
    TokenMean                             AvgPool2d(kernel = stride = (H, W)) -> Flatten
    Readout                               Output (neurosim reads it as the mean over the T ticks)

neurosim fires on ``v >= v_th``, NIR on ``v > v_threshold``: the float64 neighbour below
``v_th`` makes the two tests identical for every float64 membrane, in both directions.

On import, LIF with r = 1 and v_leak = v_reset gives ``decay_input=True``; r = tau/dt (snntorch)
gives ``decay_input=False``; any other r or v_leak is folded into the preceding projection
(input gain r and offset v_leak - v_reset per channel). NIR ``Threshold`` becomes a stateless
LIF (tau = 1 tick, decay_input=False, v_reset = 0), exact. ``SumPool2d``/``AvgPool2d`` become a
depthwise Conv with all-ones integer weights and scale 1 or 1/k^2 (AvgPool divides by k^2, zero
padding included); an AvgPool covering the whole map followed by a Flatten becomes TokenMean.
``Flatten`` is absorbed by the Affine/Linear it feeds. Several edges into one node are summed (as
nirtorch's interpreter does): an Add node.
Float weights are quantized per output channel to ``weight_bits`` (lowering's scheme); graded
inputs of projections are quantized with a step calibrated on ``example_input`` (2x headroom,
as in lowering) or a fixed ``in_scale``.

NIR has no fixed point: graded-input quantization (in_scale, in_bits) and membrane saturation
(state_bits, v_lsb) travel only as metadata; the NIR parameters are their real-valued meaning.
Exact round trips: every exported node also carries its neurosim fields in NIR metadata
(``neurosim_*`` keys: integer weights, scales, tau in ticks, quantization and register widths);
``from_nir`` rebuilds the graph from them, bit for bit, after checking that re-exporting the
rebuilt graph reproduces the file's NIR parameters exactly. ``use_metadata=False`` imports the
plain NIR parameters instead: thresholds, resets and leak modes come back exact, integer weights
too where every channel reaches +-(2^(b-1) - 1) (as lowering's do), tau and scales to ~1 ulp.

Not expressible in NIR 1.0 (``NIRExportError`` lists every such node): max Pool, SpikeMatmul,
TokenSum, Mask, SFA and multi-threshold neurons, soft or no reset, spike sparse convolution,
TokenMean of scaled spike counts. Not importable (``NIRImportError`` names key and type):
CubaLIF, CubaLI, LI, I, Delay, Conv1d, nested graphs (recurrence), cycles.

Modules: ``common`` (constants, errors, weight quantization), ``export`` (to_nir, write_nir),
``importer`` (from_nir, read_nir, the exact metadata path, nir_difference), ``builder`` (the
plain-parameter importer), ``calibrate`` (graded-input steps from an example input). This
package re-exports their public names. Needs nir >= 1.0.7 (``common.require_nir`` says so
otherwise).
"""
from neurosim.frontends.nir.calibrate import CALIB_HEADROOM
from neurosim.frontends.nir.common import (DEFAULT_DT, FORMAT, META, NIR_MIN, RTOL,
                                           NIRExportError, NIRImportError, quant_weight,
                                           require_nir)
from neurosim.frontends.nir.export import _dense as _dense
from neurosim.frontends.nir.export import to_nir, write_nir
from neurosim.frontends.nir.importer import from_nir, nir_difference, read_nir

__all__ = ["CALIB_HEADROOM", "DEFAULT_DT", "FORMAT", "META", "NIR_MIN", "RTOL", "NIRExportError",
           "NIRImportError", "from_nir", "nir_difference", "quant_weight", "read_nir",
           "require_nir", "to_nir", "write_nir"]
