"""Calibration of graded-input steps during plain-parameter NIR import (``from_nir`` with
``example_input``): a fine-grained import (32-bit inputs, step 2^-16) runs on the example, and
each projection reading a graded value gets the step 2 x max |value| / (2^(in_bits-1) - 1),
as lowering calibrates its inputs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurosim.reference.interp import run

CALIB_HEADROOM = 2.0         # same as neurosim.frontends.lower.CALIB_HEADROOM


def calibrated_steps(build: Callable, in_bits: int, example_input) -> dict[str, float]:
    """Per-projection input steps {projection name: step} from one run of ``example_input``.
    ``build(steps, bits, step)`` returns a fresh ``_Importer`` of the NIR graph."""
    fine = build({}, 32, 2.0 ** -16)
    res = run(fine.run(), example_input, record="all")
    qmax = 2 ** (in_bits - 1) - 1
    steps = {}
    for proj, src in fine.graded_src.items():
        m = float(np.abs(res.outputs[src]).max()) * CALIB_HEADROOM
        steps[proj] = (m if m > 0 else 1.0) / qmax
    return steps
