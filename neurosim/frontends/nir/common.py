"""Shared pieces of the NIR interchange: format constants, the two error types, float64
neighbours used for NIR's strict threshold test, per-channel weight quantization and the JSON
writer for metadata, and ``require_nir`` (the installed nir must be new enough). Imported by
every other module of ``neurosim.frontends.nir``."""
from __future__ import annotations

import dataclasses
import inspect
import json

import nir
import numpy as np

DEFAULT_DT = 1e-3            # seconds per tick
FORMAT = "neurosim-nir/1"
META = "neurosim_"           # prefix of the metadata keys written by to_nir
RTOL = 1e-6                  # NIR files are often float32: relative tolerance for r vs tau/dt
NIR_MIN = "1.0.7"            # keep equal to the nir lower bound in pyproject.toml


class NIRExportError(ValueError):
    """The graph holds nodes NIR cannot express; the message lists all of them."""


class NIRImportError(ValueError):
    """The NIR graph cannot be imported; the message names the NIR node key and type."""


def require_nir() -> None:
    """Raise ``ImportError`` naming the nir version needed when the installed nir lacks what this
    package uses: ``metadata`` on every node (nir 1.0.5), ``v_reset`` on LIF/IF (1.0.6) and
    ``nir.read(type_check=...)`` (1.0.7). nir 1.0.4 (pinned by sinabs) has none of them; it cannot
    carry the metadata of exact round trips nor a reset potential, so no shim is attempted."""
    missing = [what for what, ok in (
        ("metadata on Input nodes", "metadata" in {f.name for f in dataclasses.fields(nir.Input)}),
        ("LIF.v_reset", "v_reset" in {f.name for f in dataclasses.fields(nir.LIF)}),
        ("IF.v_reset", "v_reset" in {f.name for f in dataclasses.fields(nir.IF)}),
        ("nir.read(type_check=...)", "type_check" in inspect.signature(nir.read).parameters),
    ) if not ok]
    if missing:
        raise ImportError(f"neurosim's NIR interchange needs nir>={NIR_MIN}; the installed nir "
                          f"{getattr(nir, '__version__', '(unknown version)')} lacks "
                          f"{', '.join(missing)} (pip install 'nir>={NIR_MIN}')")


def _prev(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float64), -np.inf)


def _next(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float64), np.inf)


def quant_weight(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization in float64: (integer weights, scales).
    The numpy twin of ``neurosim.frontends.lower._quant_weight`` (same operations, same results)."""
    w = np.asarray(w, np.float64)
    qmax = 2 ** (bits - 1) - 1
    m = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(m > 0, m / qmax, 1.0)
    wq = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax)
    return wq, scale


def _json(x) -> str:
    def plain(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")
    return json.dumps(x, sort_keys=True, default=plain)

