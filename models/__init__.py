"""The PyTorch training stack: spiking neurons, leaf layers, the model zoo, training, checkpoints.

    models.list_models() -> list[str]
    models.create(name, **overrides) -> nn.Module
    models.save_checkpoint(model, path); models.load_checkpoint(path) -> nn.Module
"""
from .registry import create, build, list_models, list_families, model_defaults
from .checkpoint import (CheckpointError, save_checkpoint, load_checkpoint, read_metadata,
                         shipped_checkpoint, list_shipped)
from . import neurons, layers
from . import spikformer, sdt, autost, meta_spikeformer, e_spikeformer  # register the zoo

__all__ = ["create", "build", "list_models", "list_families", "model_defaults",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "read_metadata",
           "shipped_checkpoint", "list_shipped", "neurons", "layers"]
