"""Dense paths: exact integer conv / linear through torch in float32 or float64, chosen so that
every partial sum is an exactly representable integer (torch is imported only when called).
"""
from __future__ import annotations

import numpy as np

from chips.engines.kernels.batch import split_digits_into
from chips.engines.kernels.int8 import conv_int8_nhwc
from chips.engines.kernels.layout import F32_EXACT, F64_EXACT, acc_dtype, exact_bound

# ----------------------------------------------------------------------------- dense paths
def _exact_float_dtype(bound: int):
    import torch
    if bound < F32_EXACT:
        return torch.float32, np.float32
    if bound < F64_EXACT:
        return torch.float64, np.float64
    raise OverflowError(f"integer reduction bound {bound} exceeds float64's exact range 2^53")


def dense_dtype(max_w: int, max_count: int, fan_in: int) -> str:
    """'float32' when max|w| * max|count| * fan_in < 2^24 (every partial sum is an exactly
    representable integer, whatever the summation order), else 'float64' (< 2^53)."""
    return "float32" if exact_bound(max_w, max_count, fan_in) < F32_EXACT else "float64"


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64, copy=False)).max()) if a.size else 0


def dense_conv_exact(x_cl: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int,
                     out_dtype=None, *, max_w: int | None = None, max_x: int | None = None,
                     w_cache: dict | None = None, as_float: bool = False) -> np.ndarray:
    """Exact integer conv through torch: ``x_cl`` channels-last counts [H, W, C_in] (or
    [B, H, W, C_in]), ``w`` the graph weight [C_out, C_in/g, k, k]. Runs in float32 when the
    bound max|w| * max|x| * fan_in < 2^24, else float64 (NNPACK, which may use inexact fast
    algorithms, is disabled). Returns integer accumulators [(B,) H_out, W_out, C_out], int32 or
    int64 by :func:`acc_dtype` unless ``out_dtype`` is given; ``as_float=True`` returns them in
    the float type that computed them (every value an exact integer). Callers that know
    ``max_w`` / ``max_x`` pass them; ``w_cache`` (a dict) keeps the float weights per dtype."""
    import torch
    import torch.nn.functional as F
    x = np.asarray(x_cl)
    w = np.asarray(w)
    single = x.ndim == 3
    if single:
        x = x[None]
    Co, Cg, k, _ = w.shape
    mw = _max_abs(w) if max_w is None else int(max_w)
    mx = _max_abs(x) if max_x is None else int(max_x)
    tdt, ndt = _exact_float_dtype(exact_bound(mw, mx, Cg * k * k))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=ndt)).permute(0, 3, 1, 2)
    if w_cache is not None and ndt in w_cache:
        wt = w_cache[ndt]
    else:
        wt = torch.from_numpy(np.ascontiguousarray(w, dtype=ndt))
        if w_cache is not None:
            w_cache[ndt] = wt
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        out = F.conv2d(xt, wt, stride=stride, padding=padding, groups=groups)
    res = out.permute(0, 2, 3, 1).numpy()
    if not as_float:
        res = res.astype(out_dtype or acc_dtype(mw, mx, Cg * k * k))
    return res[0] if single else res


def dense_linear_exact(x: np.ndarray, w: np.ndarray, out_dtype=None) -> np.ndarray:
    """Exact integer ``x @ w.T`` through torch (float32 under the 2^24 bound, else float64):
    ``x`` counts [..., C_in], ``w`` the graph weight [C_out, C_in]. Returns [..., C_out]
    integers, int32 or int64 by :func:`acc_dtype` unless ``out_dtype`` is given."""
    import torch
    x = np.asarray(x)
    w = np.asarray(w)
    mw, mx = _max_abs(w), _max_abs(x)
    tdt, ndt = _exact_float_dtype(exact_bound(mw, mx, w.shape[1]))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=ndt))
    wt = torch.from_numpy(np.ascontiguousarray(w, dtype=ndt))
    with torch.no_grad():
        out = xt @ wt.T
    return out.numpy().astype(out_dtype or acc_dtype(mw, mx, w.shape[1]))


# ----------------------------------------------------------------------------- exact float plans
def exact_plan(max_w: int, max_x: int, fan_in: int) -> tuple[str, int, int]:
    """How to run an integer reduction exactly in floats: ``("float32", 1, 0)`` when
    max|w| * max|x| * fan_in < 2^24; else ``("split", p, s)``: x written in p base-2^s digits
    (the top one signed, the others in [0, 2^s)), each digit's product exact in float32
    (max|w| * max|digit| * fan_in < 2^24) and recombined exactly in float64; ``("float64", 1,
    0)`` when no digit width fits (max|w| * fan_in >= 2^24). Raises OverflowError beyond 2^53
    (the combined sum itself would round)."""
    bound = exact_bound(max_w, max_x, fan_in)
    if bound < F32_EXACT:
        return "float32", 1, 0
    if bound >= F64_EXACT:
        raise OverflowError(f"integer reduction bound {bound} exceeds float64's exact range 2^53")
    lim = (F32_EXACT - 1) // (int(max_w) * int(fan_in))     # largest |digit| allowed
    if lim < 1:
        return "float64", 1, 0
    s = (lim + 1).bit_length() - 1                          # 2^s - 1 <= lim
    p = 1
    while (int(max_x) >> (s * p)) + 1 > lim:                # top digit |floor(x / 2^(s p))|
        p += 1
    return "split", p + 1, s


def split_digits(q: np.ndarray, p: int, s: int) -> list[np.ndarray]:
    """Integer-valued float64 ``q`` as p float32 digits, most significant first:
    q = sum_j d_j 2^(s (p - 1 - j)), d_0 = floor(q / 2^(s (p-1))) signed, the others in
    [0, 2^s). Every operation is exact (powers of two, floors of exact quotients)."""
    out = []
    rest = q
    for j in range(p - 1, 0, -1):
        base = float(2 ** (s * j))
        top = np.floor(rest / base)
        out.append(top.astype(np.float32))
        rest = rest - top * base
    out.append(rest.astype(np.float32))
    return out


def combine_digits(parts: list[np.ndarray], s: int) -> np.ndarray:
    """Inverse of :func:`split_digits` on the digits' products (float32, exact integers):
    acc = (...(P_0 2^s + P_1) 2^s + ...) in float64, every step exact below 2^53."""
    acc = parts[0].astype(np.float64)
    for p in parts[1:]:
        acc *= float(2 ** s)
        acc += p
    return acc


def torch_conv_nhwc(x: np.ndarray, wt, stride: int, padding: int, groups: int) -> np.ndarray:
    """``F.conv2d`` of channels-last ``x`` [B, H, W, C] (float32 or float64, the dtype of the
    torch weight ``wt`` [C_out, C_in/g, k, k]) -> channels-last [B, H_out, W_out, C_out] numpy
    (torch keeps the channels-last layout, so no copy either way; NNPACK, which may use inexact
    fast algorithms, is disabled)."""
    import torch
    import torch.nn.functional as F
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        out = F.conv2d(xt, wt, stride=stride, padding=padding, groups=groups)
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).numpy())


def conv_exact_nhwc(q: np.ndarray, weights, stride: int, padding: int, groups: int,
                    plan: tuple[str, int, int], signed: bool = True) -> np.ndarray:
    """Exact integer conv of integer-valued ``q`` [B, H, W, C] (float64) by :func:`exact_plan`'s
    ``plan`` or an int8 plan (:func:`~chips.engines.kernels.int8.int8_plan`; ``signed``: q may
    be negative); ``weights(dtype)`` returns the torch weight in float32 / float64, or the
    packed int8 weight for ``("int8", zero_point, input shape)`` (cached by the caller).
    Returns the accumulators channels-last, float32 (plans float32, one-pass int8) or float64,
    every value an exact integer."""
    kind, p, s = plan
    if kind == "int8":
        return conv_int8_nhwc(q, weights, stride, padding, groups, plan, signed)
    if kind == "float32":
        x = q if q.dtype == np.float32 else q.astype(np.float32)
        return torch_conv_nhwc(x, weights(np.float32), stride, padding, groups)
    if kind == "float64":
        return torch_conv_nhwc(np.ascontiguousarray(q, np.float64), weights(np.float64), stride,
                               padding, groups)
    wt = weights(np.float32)
    digits = np.empty((p,) + q.shape, np.float32)
    split_digits_into(np.ascontiguousarray(q, np.float64).reshape(-1), s,
                      digits.reshape(p, -1))
    return combine_digits([torch_conv_nhwc(d, wt, stride, padding, groups) for d in digits], s)


def matmul_exact(q: np.ndarray, w_t, plan: tuple[str, int, int]) -> np.ndarray:
    """Exact integer ``q @ W^T`` of integer-valued ``q`` [B, C_in] (float64) by ``plan``;
    ``w_t(dtype)`` returns the transposed weight [C_in, C_out] in that numpy dtype. Returns
    [B, C_out] float32 or float64 exact integers (BLAS: any summation order is exact)."""
    kind, p, s = plan
    if kind == "float32":
        return q.astype(np.float32) @ w_t(np.float32)
    if kind == "float64":
        return q @ w_t(np.float64)
    wt = w_t(np.float32)
    return combine_digits([d @ wt for d in split_digits(q, p, s)], s)
