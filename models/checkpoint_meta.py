"""Schema of a checkpoint's ``model`` metadata: the zoo name and family it claims, and
plausibility ranges for the configuration values that size the model or its runs.

Checked by :func:`models.checkpoint.read_metadata` before anything is built, so a file claiming
``T = 10**9`` or ``dims = [10**7]`` fails with a message naming the file and the key instead of
dying in torch's allocator. A value outside its range is an error unless the caller passes
``allow_extreme=True`` (the message says so); a name or family the zoo does not know is always
an error. Ranges are generous bounds around the zoo (T <= 16, dims <= 960, 224 px inputs).
"""
from __future__ import annotations

import math

from . import catalog

# config key -> (low, high) for it or for each entry of a list; numbers only
RANGES: dict[str, tuple[float, float]] = {
    "T": (1, 1024),                  # time steps
    "D": (1, 64),                    # SFA burst length (spikes per neuron per step)
    "img_size": (1, 4096),           # pixels
    "in_channels": (1, 1024),
    "num_classes": (1, 100_000),
    "dims": (1, 8192),               # channels
    "depths": (1, 256),              # blocks
    "heads": (1, 256),
    "mlp_ratio": (0.25, 64),
    "attn_expansion": (1, 64),
}
INTEGER_KEYS = ("T", "D", "img_size", "in_channels", "num_classes", "dims", "depths", "heads")


class MetadataError(ValueError):
    """Invalid checkpoint metadata; ``key`` is its path (``model.config.T``)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"metadata {key}: {problem}")
        self.key = key


def _number(key: str, v, integer: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise MetadataError(key, f"expected a number, got {type(v).__name__} {v!r}")
    if integer and not isinstance(v, int):
        raise MetadataError(key, f"expected an integer, got {v!r}")
    if not math.isfinite(v):
        raise MetadataError(key, f"must be finite, got {v}")
    return v


def check_model_meta(m: dict, allow_extreme: bool = False) -> None:
    """Validate the ``model`` metadata ``{"family", "name", "config"}`` (raises
    :class:`MetadataError` naming the key path)."""
    fam, name, cfg = m["family"], m["name"], m["config"]
    if not isinstance(fam, str) or fam not in catalog.FAMILIES:
        raise MetadataError("model.family", f"unknown model family {fam!r}; known: "
                            f"{', '.join(catalog.list_families())}")
    if not isinstance(name, str) or (name != fam and catalog.MODELS.get(name, (None,))[0] != fam):
        known = [n for n, (f, _) in catalog.MODELS.items() if f == fam]
        raise MetadataError("model.name", f"{name!r} is not a {fam} model of the zoo "
                            f"({', '.join(sorted(known))}, or {fam!r} itself)")
    if not isinstance(cfg, dict):
        raise MetadataError("model.config", f"expected an object, got {type(cfg).__name__}")
    for k, (lo, hi) in RANGES.items():
        if k not in cfg:
            continue
        values = cfg[k] if isinstance(cfg[k], list) else [cfg[k]]
        for i, v in enumerate(values):
            key = f"model.config.{k}" + (f"[{i}]" if isinstance(cfg[k], list) else "")
            v = _number(key, v, k in INTEGER_KEYS)
            if not lo <= v <= hi and not allow_extreme:
                raise MetadataError(key, f"{v} is outside the plausible range {lo}..{hi}; "
                                    "pass allow_extreme=True to load it anyway")


__all__ = ["INTEGER_KEYS", "RANGES", "MetadataError", "check_model_meta"]
