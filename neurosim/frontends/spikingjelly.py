"""spikingjelly (``spikingjelly.activation_based``) models: neurons and layer wrappers.

Imported by ``neurosim.frontends.user_models`` when a model holds spikingjelly modules. Neurons
map to the IR's Neurons op (their equations are spikingjelly's; ``models/neurons.py``):

    LIFNode            -> lif: tau, decay_input, v_threshold, v_reset (None: soft reset)
    IFNode             -> if
    ParametricLIFNode  -> lif with tau = 1 / sigmoid(w) (the learned w)

``step_mode='m'`` neurons lower in a model taking [T, B, ...]; ``step_mode='s'`` ones in a model
wrapped with ``stepwise(model, T)``. ``detach_reset`` and the surrogate's shape only change
gradients and are ignored; options that change the forward pass are errors naming them: a
surrogate with ``spiking=False`` (its smooth primitive replaces the Heaviside step) and an
explicit neuron precision (reduced-precision membrane storage). The stateless layer wrappers
(``layer.Conv2d``, ``layer.Linear``, ``layer.BatchNorm2d``, ...) lower like their torch.nn
bases; ``layer.SeqToANNContainer`` is traced through (flatten T and B, apply, unflatten).
"""
from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron

from neurosim.frontends import torch_modules as tm
from neurosim.frontends.lower import LOWERINGS, TRACE_FORWARDS, LoweringError, lowering

NEURONS = (neuron.LIFNode, neuron.IFNode, neuron.ParametricLIFNode)


def _seq_to_ann(container, x):
    """Traceable ``SeqToANNContainer.forward``: [T, B, ...] -> [T*B, ...] -> children -> back."""
    y = x.flatten(0, 1)
    for m in container:
        y = m(y)
    return y.unflatten(0, (x.shape[0], x.shape[1]))


TRACE_FORWARDS[layer.SeqToANNContainer] = _seq_to_ann

for _sj, _base in ((layer.Conv2d, torch.nn.Conv2d), (layer.Linear, torch.nn.Linear),
                   (layer.BatchNorm1d, torch.nn.BatchNorm1d),
                   (layer.BatchNorm2d, torch.nn.BatchNorm2d),
                   (layer.MaxPool2d, torch.nn.MaxPool2d), (layer.AvgPool2d, torch.nn.AvgPool2d),
                   (layer.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d),
                   (layer.Flatten, torch.nn.Flatten)):
    LOWERINGS[_sj] = LOWERINGS[_base]
LOWERINGS[layer.Dropout] = tm.identity
LOWERINGS[layer.Dropout2d] = tm.identity


def _params(node, mod) -> dict:
    """Checks common to spikingjelly neurons; the parameters they share."""
    where = f"module {node.target!r} ({type(mod).__name__})"
    if not getattr(mod.surrogate_function, "spiking", True):
        raise LoweringError(f"{where}: surrogate_function.spiking=False makes the forward pass "
                            "use the surrogate's smooth primitive instead of spikes; neurosim "
                            "models spiking neurons only")
    if getattr(mod, "_neuron_precision", None) is not None:
        raise LoweringError(f"{where}: neuron precision {mod._neuron_precision} (reduced-precision "
                            "membrane) is not modelled; the IR's membrane is float64 saturating "
                            "at state_bits")
    if mod.step_mode not in ("s", "m"):
        raise LoweringError(f"{where}: unknown step_mode {mod.step_mode!r}")
    soft = mod.v_reset is None
    return dict(v_th=float(mod.v_threshold), v_reset=0.0 if soft else float(mod.v_reset),
                reset="soft" if soft else "hard", single_step=mod.step_mode == "s")


@lowering(neuron.LIFNode)
def _lif(ctx, node, mod, args):
    return tm.neurons(ctx, node, mod, model="lif", tau=float(mod.tau),
                      decay_input=bool(mod.decay_input), **_params(node, mod))


@lowering(neuron.IFNode)
def _if(ctx, node, mod, args):
    return tm.neurons(ctx, node, mod, model="if", **_params(node, mod))


@lowering(neuron.ParametricLIFNode)
def _plif(ctx, node, mod, args):
    tau = float(1.0 / torch.sigmoid(mod.w.detach().double()))
    return tm.neurons(ctx, node, mod, model="lif", tau=tau, decay_input=bool(mod.decay_input),
                      **_params(node, mod))


def is_neuron(m: torch.nn.Module) -> bool:
    """A spikingjelly spiking neuron (any kind, supported or not)."""
    return isinstance(m, (neuron.BaseNode, neuron.SimpleBaseNode))
