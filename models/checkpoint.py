"""Checkpoints: safetensors files holding weights, the full model configuration and training
metadata. Loading parses JSON and raw tensors only; it never executes code from the file.

Layout: tensors = the model's ``state_dict`` (parameters and buffers); metadata (str -> str) =
``{"format": "neurosim-checkpoint/1", "model": json(neurosim_config), "training": json(meta),
"convolution": "vsc" | "ssc"}``.

``convolution`` records which convolution the weights were trained with: "vsc" (vanilla, dense:
every kernel position computes) or "ssc" (spike sparse convolution, seed sdt-v3: an output
site computes only where its centre input spiked). Lowering with ``ssc=True`` a model trained
with VSC warns (:class:`SSCMismatchWarning`): SSC silences sites that training saw active.
Checkpoints written before the field existed have no ``convolution`` key; they read as "vsc"
(``read_metadata(...)["convolution_recorded"]`` is False), which is what they were trained
with: ``models/`` has no SSC forward at all (``layers.ConvBN`` / ``RepConvBN`` are dense
``nn.Conv2d``), and every shipped checkpoint's recorded ``training.command`` is ``neurosim
train``, i.e. ``models.train.fit`` on those dense layers.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from . import registry
from .catalog import SHIPPED_DIR, list_shipped  # noqa: F401  (list_shipped: public here too)
from .checkpoint_meta import MetadataError, check_model_meta

FORMAT = "neurosim-checkpoint/1"
CONVOLUTIONS = ("vsc", "ssc")
MISSING_CONVOLUTION = "vsc"     # read for checkpoints without the field (module doc: why)
SSC_ON_VSC_COST = ("e-spikeformer-tiny trained with VSC on digits: 96.7% -> 93.3% test accuracy "
                   "with ssc=True (first 30 test inputs, reference interpreter)")


class SSCMismatchWarning(UserWarning):
    """A model trained with vanilla convolution (VSC) is lowered with spike sparse convolution
    (SSC): sites whose centre input is silent stop computing, which training never saw."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, corrupt, or does not match what was asked for."""


def save_checkpoint(model: nn.Module, path: str | Path, training: dict | None = None,
                    convolution: str | None = None) -> Path:
    """Write ``model`` (built by ``models.create``/``build``) and ``training`` metadata to ``path``.

    ``convolution``: what the weights were trained with, "vsc" or "ssc"; default: the model's
    ``neurosim_convolution`` (set by ``models.train.fit`` and ``load_checkpoint``), else "vsc",
    the only convolution the zoo's PyTorch layers compute."""
    cfg = getattr(model, "neurosim_config", None)
    if cfg is None:
        raise CheckpointError("model has no neurosim_config: build it with models.create(name) "
                              "so its configuration can be stored")
    conv = convolution or getattr(model, "neurosim_convolution", None) or MISSING_CONVOLUTION
    if conv not in CONVOLUTIONS:
        raise CheckpointError(f"convolution must be one of {CONVOLUTIONS}, got {conv!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "model": json.dumps(cfg, sort_keys=True),
            "training": json.dumps(training or {}, sort_keys=True), "convolution": conv}
    save_file(tensors, str(path), metadata=meta)
    return path


def resolve_checkpoint(ref: str | Path) -> Path:
    """The checkpoint file ``ref`` names: an existing file, else the shipped checkpoint of that
    name (``models/checkpoints/NAME.safetensors``). Neither: FileNotFoundError listing the
    shipped names (a file wins over a shipped name of the same spelling)."""
    path = Path(ref)
    if path.is_file():
        return path
    shipped = list_shipped()
    if str(ref) in shipped:
        return SHIPPED_DIR / f"{ref}.safetensors"
    close = difflib.get_close_matches(str(ref), shipped, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise FileNotFoundError(f"checkpoint not found: {ref} is neither a file nor a shipped "
                            f"checkpoint (shipped, usable by name: {', '.join(shipped) or 'none'})"
                            f"{hint}")


def read_metadata(path: str | Path, allow_extreme: bool = False) -> dict:
    """Return ``{"model": {...}, "training": {...}, "convolution": "vsc" | "ssc",
    "convolution_recorded": bool}`` of a checkpoint without building the model (a file
    without the ``convolution`` key reads as "vsc", recorded False: module doc). The model
    metadata is checked by :func:`models.checkpoint_meta.check_model_meta` (zoo name and
    family; configuration values outside plausible ranges unless ``allow_extreme``)."""
    path = resolve_checkpoint(path)
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
        except (json.JSONDecodeError, RecursionError) as e:
            raise CheckpointError(f"{path}: metadata key {key!r} is not valid JSON ({e})") from None
    m = out["model"]
    if not isinstance(m, dict) or not {"family", "name", "config"} <= set(m):
        raise CheckpointError(f"{path}: metadata 'model' must hold family, name and config")
    try:
        check_model_meta(m, allow_extreme)
    except MetadataError as e:
        raise CheckpointError(f"{path}: {e}") from None
    conv = meta.get("convolution")
    if conv is not None and conv not in CONVOLUTIONS:
        raise CheckpointError(f"{path}: metadata 'convolution' is {conv!r}, expected one of "
                              f"{CONVOLUTIONS}")
    out["convolution"] = conv or MISSING_CONVOLUTION
    out["convolution_recorded"] = conv is not None
    return out


def ssc_mismatch(model: nn.Module) -> str | None:
    """Why lowering ``model`` with ``ssc=True`` is a mismatch (a warning text), or None.

    Only models known to be trained (``neurosim_convolution`` set by ``models.train.fit`` or
    ``load_checkpoint``) with VSC get a text; SSC-trained and untrained models get None."""
    conv = getattr(model, "neurosim_convolution", None)
    if conv != "vsc":
        return None
    name = getattr(model, "neurosim_config", {}).get("name", type(model).__name__)
    return (f"lowering {name!r} with ssc=True, but it was trained with vanilla convolution "
            f"(VSC): spike sparse convolution silences every output site whose centre input did "
            f"not spike, activity the weights were trained on, so accuracy drops ({SSC_ON_VSC_COST})."
            f" Lower with ssc=False, or train with SSC and save with convolution='ssc'.")


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


def load_checkpoint(path: str | Path, name: str | None = None, *, allow_extreme: bool = False,
                    **overrides) -> nn.Module:
    """Rebuild the model stored in ``path`` and load its weights (eval mode).

    With ``name`` (and optional overrides), the stored configuration must equal that of
    ``models.create(name, **overrides)``; otherwise the error lists the fields that differ.
    ``allow_extreme``: accept configuration values outside the plausible ranges
    (:data:`models.checkpoint_meta.RANGES`). ``path`` may also be the name of a shipped
    checkpoint (``models.list_shipped()``), e.g. ``load_checkpoint("meta-spikeformer-tiny")``.
    """
    path = resolve_checkpoint(path)
    meta = read_metadata(path, allow_extreme)
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
    model.neurosim_convolution = meta["convolution"]
    return model.eval()


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped with neurosim (``models/checkpoints/NAME.safetensors``)."""
    p = SHIPPED_DIR / f"{name}.safetensors"
    if not p.is_file():
        have = list_shipped()
        raise FileNotFoundError(f"no shipped checkpoint {name!r} at {p}; shipped: {have}")
    return p
