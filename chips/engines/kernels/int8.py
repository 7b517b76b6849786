"""Exact integer convolutions in int8 through oneDNN (torch's ``onednn.qconv2d_pointwise``):
uint8 inputs x int8 weights, int32 accumulators, float32 output at scale 1.

Exactness. With VNNI / AMX instructions every product is an exact integer and the int32
accumulator holds every partial sum (the plans below keep them under 2^24, where the float32
output is exact too): the result is the integer conv bit for bit, whatever the summation order.
oneDNN's kernels for CPUs without VNNI sum pairs of products in saturating int16 or halve the
weights, which is not exact; so the path is used only on a CPU that reports VNNI or AMX-INT8
and after a self-test (:func:`int8_available`) of adversarial values (inputs 255, weights -128 /
127, odd weights, padding, strides, groups, both zero points) against float64 convs.

Inputs are integer maps (spike counts, quantized graded values). A plan (:func:`int8_plan`)
writes them in p base-2^s digits (s <= 8), the top one signed, the others in [0, 2^s): one
uint8 conv per digit, the signed top digit shifted by a zero point of 128 (oneDNN subtracts it
exactly, padding included), the digit products recombined exactly in float64. Spike counts
in [0, 255] take one pass at zero point 0.
``NEUROSIM_INT8=0`` in the environment turns the path off.
"""
from __future__ import annotations

import os
import platform

import numpy as np
from numba import njit

from chips.engines.kernels.layout import F32_EXACT, F64_EXACT

ZP_SIGNED = 128          # zero point of a signed digit in [-128, 127] stored as uint8
_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
_STATE: dict = {}


def _cpu_has_vnni() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(f in flags for f in _FLAGS)
    except OSError:
        pass
    return False


def int8_weights(w: np.ndarray) -> bool:
    """True when every weight is an integer in [-128, 127] (int8)."""
    w = np.asarray(w)
    if w.size == 0:
        return False
    if not np.issubdtype(w.dtype, np.integer) and not np.array_equal(w, np.rint(w)):
        return False
    return int(w.min()) >= -128 and int(w.max()) <= 127


def int8_plan(max_w: int, max_x: int, fan_in: int, signed: bool) -> tuple[str, int, int] | None:
    """``("int8", p, s)``: inputs of magnitude <= ``max_x`` in p base-2^s digits (s <= 8; p = 1
    with s = 0 for one pass of the values themselves), each digit's conv exact in float32
    (max|w| x max|digit| x fan_in < 2^24); ``signed`` when inputs may be negative (the top
    digit then lies in [-128, 127]), else counts in [0, 255] take one pass. None when no digit
    width fits or the combined sum could reach 2^53."""
    max_w, max_x, fan_in = int(max_w), int(max_x), int(fan_in)
    if (max_w < 1 or fan_in < 1 or max_w > 128 or max_w * max_x * fan_in >= F64_EXACT
            or 255 * max_w * fan_in >= 2 ** 31):          # int32 sum of uint8 x int8 products
        return None
    lim = (F32_EXACT - 1) // (max_w * fan_in)          # largest |digit| of an exact conv
    top_lim = min(lim, 128 if signed else 255)
    if (max_x + (1 if signed else 0)) <= top_lim:
        return "int8", 1, 0
    s = min(8, (lim + 1).bit_length() - 1)              # low digits in [0, 2^s), 2^s - 1 <= lim
    if s < 1:
        return None
    p = 1
    while (max_x >> (s * p)) + 1 > min(lim, 128):       # top digit floor(x / 2^(s p)) signed
        p += 1
    return "int8", p + 1, s


@njit(cache=True)
def int8_digits_into(q, s, signed, out):
    """Integer-valued ``q`` (flat, float64 or float32) as uint8 digits ``out`` [p, n]: p = 1,
    s = 0: the values themselves (+128 when ``signed``); else base-2^s digits, most
    significant first, the top one (floor of q / 2^(s (p-1))) + 128, the others in [0, 2^s).
    Returns the index of the first value whose digit leaves [0, 255] or is not an integer
    (nothing is wrapped; the caller raises), else -1."""
    p = out.shape[0]
    zp = 128.0 if (signed or p > 1) else 0.0
    if p == 1:                          # one pass: a branch-free loop, checked afterwards
        bad = False
        o = out[0]
        for i in range(q.shape[0]):
            v = np.float64(q[i]) + zp
            c = min(max(v, 0.0), 255.0)
            u = np.uint8(c)
            bad |= (c != v) | (np.float64(u) != c)
            o[i] = u
        if not bad:
            return -1
    base = 2.0 ** s
    top = base ** (p - 1)
    inv_base = 1.0 / base               # powers of two: products by them are exact divisions
    inv_top = 1.0 / top
    if p == 2:                          # the common split (16-bit values), vectorisable
        bad = False
        o0 = out[0]
        o1 = out[1]
        for i in range(q.shape[0]):
            v = np.float64(q[i])
            d = np.floor(v * inv_top)
            u = d + zp
            c = min(max(u, 0.0), 255.0)
            rest = v - d * top                  # in [0, 2^s) for an integer v
            bad |= (c != u) | (np.floor(rest) != rest)
            o0[i] = np.uint8(c)
            o1[i] = np.uint8(rest)
        if not bad:
            return -1
    elif p > 2:
        bad = False
        for i in range(q.shape[0]):
            v = np.float64(q[i])
            d = np.floor(v * inv_top)
            u = d + zp
            c = min(max(u, 0.0), 255.0)
            bad |= c != u
            out[0, i] = np.uint8(c)
            rest = v - d * top
            scale = top
            inv = inv_top
            for j in range(1, p):
                scale = scale * inv_base
                inv = inv * base
                d = np.floor(rest * inv)
                out[j, i] = np.uint8(d)
                rest = rest - d * scale
            bad |= rest != 0.0
        if not bad:
            return -1
    for i in range(q.shape[0]):         # locate the first value that does not fit
        v = np.float64(q[i])
        d = np.floor(v * inv_top)
        u = d + zp
        if u < 0.0 or u > 255.0 or (p == 1 and d != v):
            return i
        rest = v - d * top
        scale = top
        for j in range(1, p):
            scale = scale * inv_base
            rest = rest - np.floor(rest / scale) * scale
        if rest != 0.0:
            return i
    return -1


def pack_conv(w: np.ndarray, zero_point: int, stride: int, padding: int, groups: int,
              in_shape: tuple[int, int, int, int]):
    """The graph conv weight [C_out, C_in/g, k, k] packed by oneDNN for channels-last inputs
    of shape ``in_shape`` [B, H, W, C] and zero point ``zero_point`` (scales 1), with its scale
    and zero-point tensors. Packed for the input shape, the layout is the one the conv uses:
    packed without it, some shapes reorder the weight on every call (20x slower)."""
    import torch
    co = w.shape[0]
    B, H, W, C = in_shape
    wt = torch.from_numpy(np.ascontiguousarray(w, np.int8))
    scales = torch.ones(co, dtype=torch.float32)
    zps = torch.zeros(co, dtype=torch.int64)
    packed = torch.ops.onednn.qconv_prepack(wt, scales, 1.0, int(zero_point), [stride, stride],
                                            [padding, padding], [1, 1], groups,
                                            [int(B), int(C), int(H), int(W)])
    return packed, scales, zps


def qconv_nhwc(u8: np.ndarray, packed, zero_point: int, stride: int, padding: int,
               groups: int) -> np.ndarray:
    """oneDNN's int8 conv of channels-last uint8 ``u8`` [B, H, W, C] with ``packed``
    (:func:`pack_conv`) at input zero point ``zero_point``: float32 [B, H_out, W_out, C_out]
    channels-last (the int32 accumulators, exact below 2^24)."""
    import torch
    w, scales, zps = packed
    xt = torch.from_numpy(u8).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = torch.ops.onednn.qconv2d_pointwise(
            xt, 1.0, int(zero_point), w, scales, zps, None, [stride, stride],
            [padding, padding], [1, 1], groups, 1.0, 0, torch.float32, "none", [], "")
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).numpy())


def conv_int8_nhwc(q: np.ndarray, weights, stride: int, padding: int, groups: int,
                   plan: tuple[str, int, int], signed: bool) -> np.ndarray:
    """Exact integer conv of integer-valued ``q`` [B, H, W, C] by the int8 ``plan``
    (:func:`int8_plan`); ``weights(("int8", zero_point, q.shape))`` returns the packed weight
    (:func:`pack_conv`, cached by the caller). Returns float32 (one pass) or float64 (digits)
    channels-last accumulators, every value an exact integer. A value outside the plan raises
    ValueError (never wraps)."""
    _, p, s = plan
    digits = np.empty((p,) + q.shape, np.uint8)
    bad = int8_digits_into(np.ascontiguousarray(q).reshape(-1), s, signed, digits.reshape(p, -1))
    if bad >= 0:
        raise ValueError(f"input value {q.reshape(-1)[bad]!r} does not fit the int8 plan "
                         f"{plan} ({'signed' if signed else 'unsigned'} integers)")
    zp0 = ZP_SIGNED if (signed or p > 1) else 0
    parts = [qconv_nhwc(d, weights(("int8", zp, q.shape)), zp, stride, padding, groups)
             for d, zp in zip(digits, [zp0] + [0] * (p - 1))]
    if p == 1:
        return parts[0]
    acc = parts[0].astype(np.float64)            # (P_0 2^s + P_1) 2^s + ...: exact below 2^53
    for part in parts[1:]:
        acc *= float(2 ** s)
        acc += part
    return acc


def _self_test() -> str:
    """'' when oneDNN's int8 convs are exact on adversarial values, else why not."""
    import torch
    import torch.nn.functional as F
    if not hasattr(torch.ops.onednn, "qconv2d_pointwise"):
        return "torch has no onednn.qconv2d_pointwise"
    rng = np.random.default_rng(0)
    for ci, co, hw, k, stride, g in ((8, 16, 9, 3, 1, 1), (64, 32, 6, 1, 1, 1),
                                     (16, 24, 11, 3, 2, 1), (16, 16, 10, 7, 1, 16),
                                     (12, 12, 7, 3, 1, 3)):
        w = rng.choice(np.array([-128, 127, -127, 1, -1, 63]), (co, ci // g, k, k))
        for zp in (0, ZP_SIGNED):
            u = rng.choice(np.array([0, 255, 254, 1, 129]), (2, hw, hw, ci)).astype(np.uint8)
            pad = k // 2
            got = qconv_nhwc(u, pack_conv(w, zp, stride, pad, g, u.shape), zp, stride, pad, g)
            x = torch.from_numpy(u.astype(np.float64) - zp).permute(0, 3, 1, 2)
            ref = F.conv2d(x, torch.from_numpy(w.astype(np.float64)), stride=stride,
                           padding=pad, groups=g).permute(0, 2, 3, 1).numpy()
            if got.shape != ref.shape or not np.array_equal(got.astype(np.float64), ref):
                return (f"self-test mismatch (C_in {ci}, C_out {co}, k {k}, stride {stride}, "
                        f"groups {g}, zero point {zp})")
    return ""


def int8_available() -> bool:
    """True when the exact int8 conv path may be used here (module doc); decided once per
    process (``int8_status`` says why not)."""
    if "ok" not in _STATE:
        if os.environ.get("NEUROSIM_INT8", "1") == "0":
            why = "NEUROSIM_INT8=0"
        elif not _cpu_has_vnni():
            why = "CPU reports no VNNI / AMX-INT8"
        else:
            try:
                why = _self_test()
            except Exception as e:          # an op missing or refusing: the float paths apply
                why = f"self-test failed: {type(e).__name__}: {e}"
        _STATE.update(ok=not why, why=why or "available")
    return _STATE["ok"]


def int8_status() -> str:
    int8_available()
    return _STATE["why"]
