"""Single-step models over time: ``stepwise(model, T)``.

neurosim's graphs take [T, B, ...] inputs. spikingjelly models in multi-step mode
(``step_mode='m'``) take them too and lower as they are. A single-step model (snntorch's
neurons, spikingjelly's ``step_mode='s'``) is called once per time step and keeps its membrane
between calls; ``stepwise(model, T)`` wraps it as a multi-step module: it resets the model's
state, calls it on x[t] for t = 0..T-1 and stacks the outputs ([T, B, ...]; of a tuple output,
snntorch's (spikes, membrane), the first element). Lowering traces one call of the inner model
(the graph is per tick anyway) and records its activations over the T calls.
"""
from __future__ import annotations

import torch
from torch import nn

from neurosim.frontends.lower import LoweringError, _Recorder, trace


def reset_states(model: nn.Module) -> None:
    """Clear the membrane state of spikingjelly and snntorch neurons inside ``model``."""
    for m in model.modules():
        pkg = type(m).__module__.split(".")[0]
        if pkg == "snntorch" and callable(getattr(m, "reset_mem", None)):
            m.reset_mem()
        elif pkg == "spikingjelly" and hasattr(m, "_memories") and callable(
                getattr(m, "reset", None)):
            m.reset()


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


class Stepwise(nn.Module):
    """A single-step ``model`` run over T steps: input [T, B, ...] -> output [T, B, ...]."""

    def __init__(self, model: nn.Module, T: int):
        super().__init__()
        if isinstance(T, bool) or int(T) != T or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T!r}")
        self.model, self.T = model, int(T)
        self.neurosim_config = {"name": type(model).__name__,
                                "config": {"T": self.T, "time": "stepwise"}}

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() < 3 or x.shape[0] != self.T:
            raise ValueError(f"stepwise model expects [T={self.T}, B, ...] inputs, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        reset_states(self.model)
        out = torch.stack([_first(self.model(x[t])) for t in range(self.T)])
        reset_states(self.model)
        return out

    def neurosim_record(self, x: torch.Tensor) -> tuple:
        """(GraphModule of one step, {fx node: value stacked over T}) for ``lower``; values
        that are not tensors (shape arithmetic) are those of the first step."""
        self._check(x)
        gm = trace(self.model)
        reset_states(self.model)
        steps = []
        with torch.no_grad():
            for t in range(self.T):
                rec = _Recorder(gm)
                try:
                    rec.run(x[t])
                except Exception as e:
                    raise LoweringError(f"input step of shape {tuple(x[t].shape)} does not run "
                                        f"through {type(self.model).__name__}: {e}") from None
                steps.append(rec.values)
        reset_states(self.model)
        acts = {n: _stack([s[n] for s in steps]) for n in steps[0]}
        acts["__input__"] = x
        acts["__time__"] = "stepwise"
        return gm, acts

    def extra_repr(self) -> str:
        return f"T={self.T}"


def _stack(vals: list):
    v = vals[0]
    if isinstance(v, torch.Tensor):
        return torch.stack(vals)
    if isinstance(v, (tuple, list)) and v and all(isinstance(u, torch.Tensor) for u in v):
        return tuple(torch.stack([s[i] for s in vals]) for i in range(len(v)))
    return v


def stepwise(model: nn.Module, T: int) -> Stepwise:
    """Wrap a single-step spiking model so that it takes [T, B, ...] (see module doc)."""
    return Stepwise(model, T)
