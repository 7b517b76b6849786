"""Address mapping of spike events onto synapses (seed-facts §5, Speck's [c | y | x] scheme).

An event at input address (c, y, x) of a convolution with kernel k, stride s, padding p reaches
output row oy for every kernel row ky with y + p - ky = s * oy and 0 <= oy < H_out (likewise for
columns), and every output channel of c's group. The number of such targets is the event's
fan-out: its synaptic-operation (AC) count.
"""
from __future__ import annotations

import numpy as np


def axis_targets(n_in: int, n_out: int, k: int, s: int, p: int) -> np.ndarray:
    """Per input coordinate along one axis, how many kernel taps land on a valid output."""
    i = np.arange(n_in)[:, None]
    kk = np.arange(k)[None, :]
    num = i + p - kk
    ok = (num % s == 0) & (num >= 0) & (num // s < n_out)
    return ok.sum(axis=1).astype(np.int64)


def conv_fan_out(in_shape: tuple, c_out: int, k: int, s: int, p: int, groups: int) -> np.ndarray:
    """Fan-out of one event at each input address, shape (C_in, H, W)."""
    C, H, W = in_shape
    Ho = (H + 2 * p - k) // s + 1
    Wo = (W + 2 * p - k) // s + 1
    ny = axis_targets(H, Ho, k, s, p)
    nx = axis_targets(W, Wo, k, s, p)
    per_pos = np.outer(ny, nx) * (c_out // groups)
    return np.broadcast_to(per_pos, (C, H, W)).copy()


def pack_address(c: np.ndarray, y: np.ndarray, x: np.ndarray, shape: tuple) -> np.ndarray:
    """Bit-concatenated neuron address [c | y | x] (Speck): widths ceil(log2) of each extent."""
    C, H, W = shape
    by, bx = _bits(H), _bits(W)
    return (np.asarray(c, np.int64) << (by + bx)) | (np.asarray(y, np.int64) << bx) | \
        np.asarray(x, np.int64)


def unpack_address(addr: np.ndarray, shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``pack_address``; out-of-range addresses raise ValueError naming the value."""
    C, H, W = shape
    by, bx = _bits(H), _bits(W)
    addr = np.asarray(addr, np.int64)
    c, y, x = addr >> (by + bx), (addr >> bx) & ((1 << by) - 1), addr & ((1 << bx) - 1)
    bad = (addr < 0) | (c >= C) | (y >= H) | (x >= W)
    if bad.any():
        a = int(addr[bad][0]) if addr.ndim else int(addr)
        raise ValueError(f"spike address {a} outside the population of shape {shape}")
    return c, y, x


def _bits(n: int) -> int:
    return max(1, int(np.ceil(np.log2(n)))) if n > 1 else 1
