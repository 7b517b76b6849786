"""Model zoo registry: families (builder classes) and named configurations.

A *family* is a model class whose ``__init__`` takes only JSON-serialisable keyword arguments.
A *name* binds a family to default arguments (``meta-spikeformer-8-384``). ``create`` merges
overrides into those defaults, builds the model and records the full configuration on it as
``model.neurosim_config = {"family": ..., "name": ..., "config": {...}}`` so a checkpoint can
rebuild the model without being told its name.

Every name must be listed in ``models.catalog`` (the torch-free list of names, descriptions and
family modules; ``register`` refuses others). The family modules named there are imported the
first time the zoo is used (``list_models``, ``create``, ``build``, ...), so
``from models.registry import list_models`` sees the whole zoo without ``import models``
having loaded it.
"""
from __future__ import annotations

import copy
import difflib
import inspect
from importlib import import_module
from typing import Callable

from torch import nn

from . import catalog

_FAMILIES: dict[str, Callable[..., nn.Module]] = {}
_NAMES: dict[str, tuple[str, dict]] = {}
_ZOO_LOADED = False


def _zoo() -> None:
    """Import the family modules listed in the catalogue (each registers its names). They are
    named as strings: they import this module, so a static import here would be a cycle."""
    global _ZOO_LOADED
    if not _ZOO_LOADED:
        for module in catalog.family_modules():
            import_module(module)
        _ZOO_LOADED = True


def family(name: str):
    """Class decorator registering a model family under ``name`` (listed, with its module, in
    ``models.catalog.FAMILIES``)."""
    if name not in catalog.FAMILIES:
        raise ValueError(f"model family {name!r} is not listed in models/catalog.py FAMILIES; "
                         f"add it there (with its module and a description) as well")

    def deco(cls):
        if name in _FAMILIES and _FAMILIES[name] is not cls:
            raise ValueError(f"model family {name!r} registered twice")
        _FAMILIES[name] = cls
        return cls

    return deco


def register(name: str, family_name: str, **defaults) -> None:
    """Bind the model name ``name`` to ``family_name`` with default keyword arguments. The name
    must be in ``models.catalog.MODELS`` with the same family."""
    if catalog.MODELS.get(name, (None,))[0] != family_name:
        raise ValueError(f"model name {name!r} (family {family_name!r}) is not listed in "
                         f"models/catalog.py with that family; add it there (with a one-line "
                         f"description) as well")
    if name in _NAMES and _NAMES[name] != (family_name, defaults):
        raise ValueError(f"model name {name!r} registered twice with different settings")
    _NAMES[name] = (family_name, defaults)


def list_models() -> list[str]:
    """All registered model names, sorted."""
    _zoo()
    return sorted(_NAMES)


def list_families() -> list[str]:
    _zoo()
    return sorted(_FAMILIES)


def model_defaults(name: str) -> tuple[str, dict]:
    """(family, default config) of a registered name; unknown names list the available ones."""
    _zoo()
    if name not in _NAMES:
        close = difflib.get_close_matches(name, _NAMES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Available models: {', '.join(list_models())}")
    fam, defaults = _NAMES[name]
    return fam, copy.deepcopy(defaults)


def _accepted(cls) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {p for p in sig.parameters if p != "self"}


def build(family_name: str, config: dict, name: str | None = None) -> nn.Module:
    """Build a model of ``family_name`` from a full configuration dict."""
    _zoo()
    if family_name not in _FAMILIES:
        raise KeyError(f"unknown model family {family_name!r}; known: {', '.join(list_families())}")
    cls = _FAMILIES[family_name]
    unknown = sorted(set(config) - _accepted(cls))
    if unknown:
        raise TypeError(f"model {name or family_name!r} does not take {unknown}; "
                        f"it accepts: {', '.join(sorted(_accepted(cls)))}")
    model = cls(**copy.deepcopy(config))
    model.neurosim_config = {"family": family_name, "name": name or family_name,
                             "config": copy.deepcopy(config)}
    return model


def create(name: str, **overrides) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its default arguments.

    A ``neuron`` override is merged into the default neuron settings rather than replacing them.
    """
    fam, config = model_defaults(name)
    for k, v in overrides.items():
        if k == "neuron" and isinstance(v, dict) and isinstance(config.get("neuron"), dict):
            config["neuron"] = {**config["neuron"], **v}
        else:
            config[k] = v
    return build(fam, config, name=name)
