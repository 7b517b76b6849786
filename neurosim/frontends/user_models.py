"""Lowering of any model: the zoo's, a user's own ``nn.Module`` / ``nn.Sequential`` of standard
layers, spikingjelly and snntorch networks (``neurosim.lower`` is ``lower`` here).

Importing this module registers the standard torch.nn layers (``torch_modules``) and tensor
operations (``tensor_ops``) into ``lower.LOWERINGS`` / ``lower.FX_NODES``; spikingjelly and
snntorch lowerings are registered on first use, when a model holds their modules (both are
optional). Time: models take [T, B, ...]. A spikingjelly model in multi-step mode lowers as it
is; a single-step model (snntorch, spikingjelly ``step_mode='s'``) is wrapped with
``stepwise(model, T)`` (``neurosim.frontends.stepwise``). Neuron state is reset before and after
lowering. ``register_lowering(type, fn)`` adds a lowering for any other module type.
"""
from __future__ import annotations

from torch import nn

from neurosim.frontends import lower as _lower
from neurosim.frontends import tensor_ops, torch_modules  # noqa: F401  (register lowerings)
from neurosim.frontends.lower import LOWERINGS, LoweringError
from neurosim.frontends.stepwise import Stepwise, reset_states, stepwise  # noqa: F401
from neurosim.ir import graph as G


def _frameworks(model: nn.Module) -> set[str]:
    return {type(m).__module__.split(".")[0] for m in model.modules()}


def _neuron_checks(model: nn.Module) -> list:
    """Loads the spikingjelly / snntorch lowerings a model needs; returns their is_neuron tests."""
    found, tests = _frameworks(model), []
    if "spikingjelly" in found:
        from neurosim.frontends import spikingjelly as sj
        tests.append(sj.is_neuron)
    if "snntorch" in found:
        from neurosim.frontends import snntorch as snt
        tests.append(snt.is_neuron)
    return tests


def supported() -> list[str]:
    """Names of the module types that lower (registered now)."""
    return sorted(f"{t.__module__.split('.')[0]}.{t.__name__}" for t in LOWERINGS)


def _check_neurons(model: nn.Module, tests: list) -> None:
    """A spiking neuron type without a lowering is named with its path before tracing (fx would
    otherwise trace into it and fail obscurely)."""
    for path, m in model.named_modules():
        if type(m) not in LOWERINGS and any(t(m) for t in tests):
            pkg = type(m).__module__.split(".")[0]
            kinds = sorted(t.__name__ for t in LOWERINGS if t.__module__.split(".")[0] == pkg)
            raise LoweringError(f"no lowering for neuron {path!r} of type "
                                f"{type(m).__module__}.{type(m).__name__}; supported {pkg} "
                                f"modules: {', '.join(kinds)} (add others with "
                                "neurosim.register_lowering)")


def lower(model: nn.Module, example_input, weight_bits: int = 8, **kw) -> G.Graph:
    """Lower ``model`` to a Graph (see ``neurosim.frontends.lower.lower`` for the options).

    example_input: [T, B, C, H, W] or [T, B, C] (spike counts or graded values; a zoo model
    also takes [B, C, H, W] images). The graph's logits are the time mean of the model's
    [T, B, K] output (or the model's own ``x.mean(0)``).
    """
    _check_neurons(model, _neuron_checks(model))
    reset_states(model)
    try:
        return _lower.lower(model, example_input, weight_bits, **kw)
    finally:
        reset_states(model)


def register_lowering(module_type: type, fn) -> None:
    """Lower modules of exactly ``module_type`` with ``fn(ctx, node, module, inputs) -> str``.

    ``inputs`` are the IR node names of the module's tensor arguments; ``fn`` adds IR ops with
    ``ctx.add(op, inputs, node.name)`` and returns the IR node holding the output (a module that
    changes nothing returns ``inputs[0]``). Helpers: ``neurosim.frontends.torch_modules``
    (``project``, ``neurons``) and ``neurosim.frontends.tensor_ops`` (views). A registered type
    is a leaf of tracing; registering a type again replaces its lowering.
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"module_type must be a torch.nn.Module subclass, got {module_type!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable (ctx, node, module, inputs) -> str, got {fn!r}")
    LOWERINGS[module_type] = fn
