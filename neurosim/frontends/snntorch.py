"""snntorch neurons (single-step: lower a model wrapped with ``stepwise(model, T)``).

Imported by ``neurosim.frontends.user_models`` when a model holds snntorch modules.
snntorch's ``Leaky``: U[t] = beta U[t-1] + X[t] - R[t], S[t] = (U[t] > thr), with R the reset
of the previous step's spike. Mapped to the IR's Neurons op:

    reset_mechanism="zero"      -> lif, hard reset to 0, decay_input=False, tau = 1 / (1 - beta)
                                   (beta = 1: if); exactly snntorch's U[t] = beta (1 - S[t-1])
                                   U[t-1] + X[t]
    reset_mechanism="none"      -> lif / if without reset
    reset_mechanism="subtract"  -> if with soft reset when beta = 1; for beta < 1 snntorch
                                   subtracts thr undecayed one step late (U[t] = beta U[t-1] +
                                   X[t] - thr S[t-1]), which the IR's soft reset (subtract, then
                                   decay) does not equal: an error naming the option

snntorch fires on U > thr (strictly); the IR fires on H >= V_th, so V_th is the next float64
above thr. ``graded_spikes_factor`` is the value of one spike (the spike unit). ``Synaptic``
lowers only with alpha = 0 and no zero reset (then it is a Leaky); its synaptic current is a
second state the IR's Neurons op does not hold. ``inhibition``, ``state_quant`` and
``reset_delay=False`` change the forward pass and are errors naming them.
"""
from __future__ import annotations

import numpy as np
import snntorch as snn
import torch

from neurosim.frontends import torch_modules as tm
from neurosim.frontends.lower import LoweringError, lowering


def _scalar(node, mod, name: str) -> float:
    v = getattr(mod, name)
    v = torch.as_tensor(v).detach()
    if v.numel() != 1:
        raise LoweringError(f"module {node.target!r} ({type(mod).__name__}): {name} has "
                            f"{v.numel()} values; the IR holds one {name} per population")
    return float(v)


def _leaky(ctx, node, mod):
    where = f"module {node.target!r} ({type(mod).__name__})"
    for opt in ("inhibition", "state_quant"):
        if getattr(mod, opt, False):
            raise LoweringError(f"{where}: {opt}={getattr(mod, opt)!r} changes the forward pass "
                                "and is not modelled")
    if not getattr(mod, "reset_delay", True):
        raise LoweringError(f"{where}: reset_delay=False is not modelled (use the default "
                            "reset_delay=True)")
    beta = min(max(_scalar(node, mod, "beta"), 0.0), 1.0)       # snntorch clamps to [0, 1]
    thr = _scalar(node, mod, "threshold")
    unit = _scalar(node, mod, "graded_spikes_factor")
    mech = mod.reset_mechanism
    if mech == "subtract" and beta != 1.0:
        raise LoweringError(f"{where}: reset_mechanism='subtract' with beta={beta} is not "
                            "modelled: snntorch subtracts the threshold one step late and "
                            "undecayed; use reset_mechanism='zero' (hard reset) or beta=1")
    if mech not in ("subtract", "zero", "none"):
        raise LoweringError(f"{where}: unknown reset_mechanism {mech!r}")
    if thr <= 0 or unit <= 0:
        raise LoweringError(f"{where}: threshold ({thr}) and graded_spikes_factor ({unit}) must "
                            "be positive")
    reset = {"subtract": "soft", "zero": "hard", "none": "none"}[mech]
    model, tau = ("if", 1.0) if beta == 1.0 else ("lif", 1.0 / (1.0 - beta))
    return tm.neurons(ctx, node, mod, model=model, v_th=float(np.nextafter(thr, np.inf)),
                      v_reset=0.0, tau=tau, reset=reset, decay_input=False, unit=unit,
                      single_step=True)


@lowering(snn.Leaky)
def _lower_leaky(ctx, node, mod, args):
    return _leaky(ctx, node, mod)


@lowering(snn.Synaptic)
def _lower_synaptic(ctx, node, mod, args):
    alpha = _scalar(node, mod, "alpha")
    if alpha != 0.0:
        raise LoweringError(f"module {node.target!r} (Synaptic): alpha={alpha:.6g}: the synaptic "
                            "current is a second state variable the IR's Neurons op does not "
                            "hold; use snntorch.Leaky (or alpha=0)")
    if mod.reset_mechanism == "zero":
        raise LoweringError(f"module {node.target!r} (Synaptic): reset_mechanism='zero' also "
                            "drops the input of the step after a spike (Leaky's does not); it "
                            "is not modelled")
    return _leaky(ctx, node, mod)


def is_neuron(m: torch.nn.Module) -> bool:
    """An snntorch spiking neuron (any kind, supported or not)."""
    return isinstance(m, snn.SpikingNeuron)
