"""Codes, layouts and exactness bounds shared by the kernels (pure Python and NumPy, no Numba).

Neuron model / reset codes for the neuron kernels, the channels-last conv weight layout, conv
output sizes, the integer accumulator dtype (:func:`acc_dtype`) and the scatter-vs-dense
choice (:func:`choose_dense`).
"""
from __future__ import annotations

import numpy as np

MODEL_IF, MODEL_LIF = 0, 1
RESET_HARD, RESET_SOFT, RESET_NONE = 0, 1, 2
MODEL_CODES = {"if": MODEL_IF, "lif": MODEL_LIF}
RESET_CODES = {"hard": RESET_HARD, "soft": RESET_SOFT, "none": RESET_NONE}

F32_EXACT = 2 ** 24      # float32 holds every integer of magnitude <= 2^24
F64_EXACT = 2 ** 53


# ----------------------------------------------------------------------------- layouts and bounds
def conv_weight_cl(w: np.ndarray) -> np.ndarray:
    """Graph conv weight ``[C_out, C_in/g, k, k]`` -> contiguous ``[k, k, C_in/g, C_out]``."""
    return np.ascontiguousarray(np.transpose(np.asarray(w), (2, 3, 1, 0)))


def conv_out_hw(H: int, W: int, k: int, stride: int, padding: int) -> tuple[int, int]:
    return (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1


def exact_bound(max_w: int, max_count: int, fan_in: int) -> int:
    """Upper bound on |any partial sum| of an integer reduction (Python int, no overflow)."""
    return int(max_w) * int(max_count) * int(fan_in)


def acc_dtype(max_w: int, max_count: int, fan_in: int):
    """int32 if every partial sum fits (bound < 2^31), else int64 (bound must be < 2^63)."""
    b = exact_bound(max_w, max_count, fan_in)
    if b < 2 ** 31:
        return np.int32
    if b < 2 ** 63:
        return np.int64
    raise OverflowError(f"integer accumulation bound {b} exceeds int64")


def choose_dense(n_events: int, n_inputs: int, threshold: float = 0.05) -> bool:
    """True when the input is dense enough (events > threshold * inputs) that a dense kernel
    beats scatter (seed-facts §7: the crossover is near 5% on this machine class)."""
    return n_inputs > 0 and n_events > threshold * n_inputs
