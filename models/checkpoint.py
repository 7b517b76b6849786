"""Checkpoints: safetensors files holding weights, the full model configuration and training
metadata. Loading parses JSON and raw tensors only; it never executes code from the file.

Layout: tensors = the model's ``state_dict`` (parameters and buffers); metadata (str -> str) =
``{"format": "neurosim-checkpoint/1", "model": json(neurosim_config), "training": json(meta)}``.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from . import registry
from .catalog import SHIPPED_DIR, list_shipped  # noqa: F401  (list_shipped: public here too)

FORMAT = "neurosim-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, corrupt, or does not match what was asked for."""


def save_checkpoint(model: nn.Module, path: str | Path, training: dict | None = None) -> Path:
    """Write ``model`` (built by ``models.create``/``build``) and ``training`` metadata to ``path``."""
    cfg = getattr(model, "neurosim_config", None)
    if cfg is None:
        raise CheckpointError("model has no neurosim_config: build it with models.create(name) "
                              "so its configuration can be stored")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "model": json.dumps(cfg, sort_keys=True),
            "training": json.dumps(training or {}, sort_keys=True)}
    save_file(tensors, str(path), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict:
    """Return ``{"model": {...}, "training": {...}}`` of a checkpoint without building the model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: metadata 'format' is {meta.get('format')!r}, "
                              f"expected {FORMAT!r}")
    out = {}
    for key in ("model", "training"):
        try:
            out[key] = json.loads(meta[key])
        except KeyError:
            raise CheckpointError(f"{path}: metadata key {key!r} missing") from None
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: metadata key {key!r} is not valid JSON ({e})") from None
    m = out["model"]
    if not isinstance(m, dict) or not {"family", "name", "config"} <= set(m):
        raise CheckpointError(f"{path}: metadata 'model' must hold family, name and config")
    return out


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Fields that differ between two configuration dicts, as 'key: a != b' lines."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r} != requested {vb!r}")
    return out


def load_checkpoint(path: str | Path, name: str | None = None, **overrides) -> nn.Module:
    """Rebuild the model stored in ``path`` and load its weights (eval mode).

    With ``name`` (and optional overrides), the stored configuration must equal that of
    ``models.create(name, **overrides)``; otherwise the error lists the fields that differ.
    """
    path = Path(path)
    meta = read_metadata(path)
    m = meta["model"]
    if name is not None:
        fam, _ = registry.model_defaults(name)
        expected = registry.create(name, **overrides).neurosim_config
        diff = ([f"family: checkpoint {m['family']!r} != requested {fam!r}"]
                if m["family"] != fam else []) + config_diff(m["config"], expected["config"])
        if diff:
            raise CheckpointError(f"{path}: configuration does not match model {name!r}:\n  "
                                  + "\n  ".join(diff))
    try:
        model = registry.build(m["family"], m["config"], name=m["name"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: stored configuration cannot be built: {e}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: tensor data unreadable ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected tensors {extra[:5]}{'...' if len(extra) > 5 else ''}")
        if bad:
            parts.append("shape mismatch " + ", ".join(
                f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in bad[:5]))
        raise CheckpointError(f"{path}: weights do not fit the stored configuration: "
                              + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    model.neurosim_training = meta["training"]
    return model.eval()


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped with neurosim (``models/checkpoints/NAME.safetensors``)."""
    p = SHIPPED_DIR / f"{name}.safetensors"
    if not p.is_file():
        have = list_shipped()
        raise FileNotFoundError(f"no shipped checkpoint {name!r} at {p}; shipped: {have}")
    return p
