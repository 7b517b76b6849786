"""The PyTorch training stack: spiking neurons, leaf layers, the model zoo, training, checkpoints.

    models.list_models() -> list[str]
    models.create(name, **overrides) -> nn.Module
    models.save_checkpoint(model, path); models.load_checkpoint(path) -> nn.Module

A lazy package (PEP 562): each name, and each submodule, is imported on first use, so
``import models`` and ``import models.catalog`` (the torch-free list of names, descriptions and
shipped checkpoints) load no torch. The zoo registers itself when first used.
"""
from importlib import import_module

_API = {  # public name -> (module, attribute)
    "create": ("models.registry", "create"),
    "build": ("models.registry", "build"),
    "list_models": ("models.registry", "list_models"),
    "list_families": ("models.registry", "list_families"),
    "model_defaults": ("models.registry", "model_defaults"),
    "CheckpointError": ("models.checkpoint", "CheckpointError"),
    "save_checkpoint": ("models.checkpoint", "save_checkpoint"),
    "load_checkpoint": ("models.checkpoint", "load_checkpoint"),
    "read_metadata": ("models.checkpoint", "read_metadata"),
    "shipped_checkpoint": ("models.checkpoint", "shipped_checkpoint"),
    "list_shipped": ("models.checkpoint", "list_shipped"),
}
_SUBMODULES = ("catalog", "registry", "checkpoint", "neurons", "layers", "train", "spikformer",
               "sdt", "autost", "meta_spikeformer", "e_spikeformer", "vit", "search", "convert",
               "mim")

__all__ = sorted(_API) + ["neurons", "layers"]


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        value = getattr(import_module(module), attr)
    elif name in _SUBMODULES:
        value = import_module(f"models.{name}")
    else:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API) | set(_SUBMODULES))
