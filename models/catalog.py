"""The model zoo's catalogue: every registered name, its family and a one-line description, the
module that defines each family, and the shipped checkpoints. Plain data and the standard
library only, so ``neurosim models`` (and anything else that only needs names) loads no torch.

``models.registry`` accepts only names listed here (``register`` checks), imports the family
modules named here when the zoo is first used, and ``tests/test_cli.py`` checks that the
catalogue and the registry hold the same names, so the two cannot drift.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"

# family -> (module defining and registering it, one-line description)
FAMILIES: dict[str, tuple[str, str]] = {
    "spikformer": ("models.spikformer", "Spikformer (Zhou et al., ICLR 2023): spiking "
                   "self-attention, spike shortcuts"),
    "sdt": ("models.sdt", "Spike-driven Transformer v1 (Yao et al., NeurIPS 2023): SDSA-1, "
            "membrane shortcuts"),
    "autost": ("models.autost", "AutoST (Wang et al., ICASSP 2024): searched Spikformer-CIFAR "
               "variants with PLIF neurons"),
    "meta-spikeformer": ("models.meta_spikeformer", "Meta-SpikeFormer (Spike-driven "
                         "Transformer v2): conv stages then SDSA transformer stages"),
    "e-spikeformer": ("models.e_spikeformer", "E-SpikeFormer (Spike-driven Transformer v3): "
                      "SFA integer neurons, E-SDSA"),
    "vit": ("models.vit", "Vision Transformer (Dosovitskiy et al., ICLR 2021): the ANN that ECMT "
            "converts (models.convert.ecmt)"),
}

_IN1K = "ImageNet, 224x224, 1000 classes"
_C10 = "CIFAR-style, 32x32x3, 10 classes"
_TINY = "digits-sized (1x32x32, 10 classes), the configuration of the shipped checkpoints"

# name -> (family, one-line description)
MODELS: dict[str, tuple[str, str]] = {
    "spikformer-8-384": ("spikformer", f"Spikformer 8 blocks x 384 ch, {_IN1K}, T=4 "
                                       "(16.81M parameters published)"),
    "spikformer-6-512": ("spikformer", f"Spikformer 6 blocks x 512 ch, {_IN1K}, T=4 "
                                       "(23.37M parameters published)"),
    "spikformer-8-512": ("spikformer", f"Spikformer 8 blocks x 512 ch, {_IN1K}, T=4 "
                                       "(29.68M parameters published)"),
    "spikformer-10-512": ("spikformer", f"Spikformer 10 blocks x 512 ch, {_IN1K}, T=4 "
                                        "(36.01M parameters published)"),
    "spikformer-8-768": ("spikformer", f"Spikformer 8 blocks x 768 ch, {_IN1K}, T=4 "
                                       "(66.34M parameters published)"),
    "spikformer-cifar-4-256": ("spikformer", f"Spikformer 4 blocks x 256 ch, {_C10}, T=4"),
    "spikformer-cifar-2-384": ("spikformer", f"Spikformer 2 blocks x 384 ch, {_C10}, T=4"),
    "spikformer-cifar-4-384": ("spikformer", f"Spikformer 4 blocks x 384 ch, {_C10}, T=4"),
    "sdt-8-384": ("sdt", f"Spike-driven Transformer 8 blocks x 384 ch, {_IN1K}, T=4 "
                         "(16.82M parameters published)"),
    "sdt-6-512": ("sdt", f"Spike-driven Transformer 6 blocks x 512 ch, {_IN1K}, T=4 "
                         "(23.37M parameters published)"),
    "sdt-8-512": ("sdt", f"Spike-driven Transformer 8 blocks x 512 ch, {_IN1K}, T=4 "
                         "(29.69M parameters published)"),
    "sdt-10-512": ("sdt", f"Spike-driven Transformer 10 blocks x 512 ch, {_IN1K}, T=4 "
                          "(36.01M parameters published)"),
    "sdt-8-768": ("sdt", f"Spike-driven Transformer 8 blocks x 768 ch, {_IN1K}, T=4 "
                         "(66.34M parameters published)"),
    "sdt-cifar-2-512": ("sdt", f"Spike-driven Transformer 2 blocks x 512 ch, {_C10}, T=4"),
    "autost-tiny": ("autost", f"AutoST-tiny, 4 blocks x 256 ch, {_C10}, T=4"),
    "autost-small": ("autost", f"AutoST-small, 4 blocks x 448 ch, {_C10}, T=4"),
    "autost-base": ("autost", f"AutoST-base, 5 blocks x 576 ch, {_C10}, T=4"),
    "meta-spikeformer-8-384": ("meta-spikeformer", f"Meta-SpikeFormer 8-384, {_IN1K}, T=1 "
                                                   "(31.33M parameters published)"),
    "meta-spikeformer-8-512": ("meta-spikeformer", f"Meta-SpikeFormer 8-512, {_IN1K}, T=1 "
                                                   "(55.35M parameters published)"),
    "meta-spikeformer-8-768": ("meta-spikeformer", f"Meta-SpikeFormer 8-768, {_IN1K}, T=1 "
                                                   "(123.7M parameters published)"),
    "meta-spikeformer-tiny": ("meta-spikeformer", f"Meta-SpikeFormer, {_TINY}, T=4"),
    "e-spikeformer-t": ("e-spikeformer", f"E-SpikeFormer-T, {_IN1K}, T=1, D=4 "
                                         "(2.70M parameters published)"),
    "e-spikeformer-s": ("e-spikeformer", f"E-SpikeFormer-S, {_IN1K}, T=1, D=4 "
                                         "(5.106M parameters published)"),
    "e-spikeformer-m": ("e-spikeformer", f"E-SpikeFormer-M, {_IN1K}, T=1, D=4 "
                                         "(10.02M parameters published)"),
    "e-spikeformer-l": ("e-spikeformer", f"E-SpikeFormer-L, {_IN1K}, T=1, D=4 "
                                         "(18.99M parameters published)"),
    "e-spikeformer-tiny": ("e-spikeformer", f"E-SpikeFormer, {_TINY}, T=1, D=4"),
    "vit-tiny": ("vit", "ViT ANN, 2 blocks x 64 ch, 4 heads, 16x16x1 input (digits upsampled), "
                        "4x4 patches, mean pooling"),
}


# name -> trainable parameters of ``models.create(name)`` with the name's defaults, precomputed so
# that ``neurosim models`` needs no torch; tests/test_cli.py builds every model (on torch's meta
# device) and checks each count, so a change to a model that changes its count fails there.
PARAMETERS: dict[str, int] = {
    'autost-base': 29_597_880,
    'autost-small': 11_474_273,
    'autost-tiny': 4_155_209,
    'e-spikeformer-l': 18_987_504,
    'e-spikeformer-m': 10_023_112,
    'e-spikeformer-s': 5_105_608,
    'e-spikeformer-t': 2_702_048,
    'e-spikeformer-tiny': 86_010,
    'meta-spikeformer-8-384': 31_333_864,
    'meta-spikeformer-8-512': 55_350_248,
    'meta-spikeformer-8-768': 123_741_160,
    'meta-spikeformer-tiny': 82_858,
    'sdt-10-512': 36_005_416,
    'sdt-6-512': 23_373_352,
    'sdt-8-384': 16_816_024,
    'sdt-8-512': 29_689_384,
    'sdt-8-768': 66_338_632,
    'sdt-cifar-2-512': 10_233_418,
    'spikformer-10-512': 36_005_416,
    'spikformer-6-512': 23_373_352,
    'spikformer-8-384': 16_816_024,
    'spikformer-8-512': 29_689_384,
    'spikformer-8-768': 66_338_632,
    'spikformer-cifar-2-384': 5_762_746,
    'spikformer-cifar-4-256': 4_152_106,
    'spikformer-cifar-4-384': 9_320_122,
    'vit-tiny': 69_834,
}


def list_models() -> list[str]:
    """Every catalogued model name, sorted (equal to ``models.list_models()``)."""
    return sorted(MODELS)


def list_families() -> list[str]:
    return sorted(FAMILIES)


def family_of(name: str) -> str:
    return MODELS[name][0]


def describe(name: str) -> str:
    """The one-line description of a model name."""
    return MODELS[name][1]


def parameters(name: str) -> int:
    """Parameters of ``models.create(name)`` with its defaults (``PARAMETERS``)."""
    return PARAMETERS[name]


def family_modules() -> list[str]:
    """The modules that define (and, on import, register) the zoo's families."""
    return [mod for mod, _ in FAMILIES.values()]


def list_shipped() -> list[str]:
    """Names of the checkpoints shipped in ``models/checkpoints/`` (usable by name wherever the
    CLI takes ``--checkpoint``)."""
    return sorted(q.stem for q in SHIPPED_DIR.glob("*.safetensors"))


def checkpoint_header(path: str | Path) -> dict:
    """The ``model`` and ``training`` metadata of a safetensors checkpoint, read from the file's
    JSON header alone (no tensors, no torch). Unreadable files give ``{}``."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n)).get("__metadata__") or {}
        return {k: json.loads(meta[k]) for k in ("model", "training") if k in meta}
    except (OSError, ValueError, struct.error, TypeError):
        return {}


def shipped() -> dict[str, dict]:
    """Shipped checkpoint name -> {"model": zoo name, "workload": what it was trained on,
    "parameters": its parameter count, "test_accuracy": its final test accuracy} as its file
    records them (None where the file does not say)."""
    out = {}
    for name in list_shipped():
        head = checkpoint_header(SHIPPED_DIR / f"{name}.safetensors")
        training = head.get("training") or {}
        out[name] = {"model": (head.get("model") or {}).get("name"),
                     "workload": training.get("workload"),
                     "parameters": training.get("parameters"),
                     "test_accuracy": training.get("final_test_accuracy")}
    return out
