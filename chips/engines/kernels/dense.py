"""Dense paths: exact integer conv / linear through torch in float32 or float64, chosen so that
every partial sum is an exactly representable integer (torch is imported only when called).
"""
from __future__ import annotations

import numpy as np

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
