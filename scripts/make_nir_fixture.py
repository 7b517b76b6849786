"""Regenerate the snntorch NIR fixtures in tests/fixtures/nir/ (the tests never import snntorch).

    .venv/bin/pip install snntorch==1.0.0 nirtorch==2.6      # neither touches torch 2.13.0+cpu
    .venv/bin/python scripts/make_nir_fixture.py

Two seeded snntorch networks, Conv2d(1->4, 3x3) -> Leaky -> Flatten -> Linear(144->10) -> Leaky,
on 1x8x8 spike frames, exported with snntorch's own ``export_to_nir`` (which writes LIF with
tau = dt / (1 - beta), r = tau / dt, v_leak = v_reset = 0 for dt = 1e-4 s):

* ``snntorch_small``: PyTorch's default (Kaiming-uniform) weights, beta 0.8 / 0.9. neurosim
  quantizes the float weights, so agreement is approximate.
* ``snntorch_dyadic``: the same architecture with every weight on a per-channel grid (2^-7 for
  the conv, 2^-9 for the linear layer) whose channel maximum is 127 steps, dyadic biases, beta
  0.5, and thresholds half-way between membrane grid points. 8-bit per-channel quantization is
  then lossless and snntorch's float32 arithmetic exact, so neurosim must agree spike for spike.

The Leaky layers use reset_mechanism="zero", reset_delay=False: the semantics snntorch writes into
NIR (reset to v_reset = 0 in the tick of the spike) and assumes in its own ``import_nir``.
Each ``.npz`` holds the input ``x`` [T, B, 1, 8, 8] (uint8 spikes), the NIR keys of the Leaky
layers (``lif_keys``) and snntorch's spikes for each (``spikes_<key>``, uint8 [T, B, ...]).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nir"
DT = 1e-4   # snntorch's export convention (seconds per step)


def _grid(w: torch.Tensor, step: float) -> torch.Tensor:
    """Per-output-channel rounding onto k * step with max |k| = 127 in every channel."""
    m = w.abs().reshape(w.shape[0], -1).amax(dim=1).view(-1, *[1] * (w.dim() - 1))
    return torch.round(w / m * 127) * step


def build(dyadic: bool, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    conv, fc = nn.Conv2d(1, 4, 3), nn.Linear(144, 10)
    if dyadic:
        with torch.no_grad():
            conv.weight.copy_(_grid(conv.weight, 2.0 ** -7))
            conv.bias.copy_(torch.round(conv.bias / 2.0 ** -7) * 2.0 ** -7)
            fc.weight.copy_(_grid(fc.weight, 2.0 ** -9))
            fc.bias.copy_(torch.round(fc.bias / 2.0 ** -9) * 2.0 ** -9)
        beta1 = beta2 = 0.5
        thr1 = torch.tensor([1.0, 1.25, 1.5, 1.75]) + 2.0 ** -16   # membranes: grid 2^-14
        thr2 = torch.full((10,), 0.75 + 2.0 ** -17)                # membranes: grid 2^-16
    else:
        beta1, beta2 = 0.8, 0.9
        thr1 = torch.tensor([0.3, 0.4, 0.5, 0.6])
        thr2 = torch.full((10,), 0.35)
    # per-neuron tensors: snntorch's exporter writes 0-d arrays for scalars, which NIR rejects
    lif1 = snn.Leaky(beta=torch.full((4, 6, 6), beta1), threshold=thr1.view(4, 1, 1).expand(
        4, 6, 6).clone(), init_hidden=True, reset_mechanism="zero", reset_delay=False)
    lif2 = snn.Leaky(beta=torch.full((10,), beta2), threshold=thr2, init_hidden=True,
                     reset_mechanism="zero", reset_delay=False)
    return nn.Sequential(conv, lif1, nn.Flatten(), fc, lif2).eval()


def simulate(net: nn.Sequential, x: torch.Tensor) -> tuple[list, list, list]:
    """snntorch's own run over x [T, B, 1, 8, 8]: spikes of both Leaky layers per step, and
    their input currents (to re-check the discretisation independently)."""
    lifs = [net[1], net[4]]
    for m in lifs:
        m.reset_mem()
    spikes, currents = [[], []], [[], []]
    with torch.no_grad():
        for t in range(x.shape[0]):
            z1 = net[0](x[t])
            s1 = net[1](z1)
            z2 = net[3](net[2](s1))
            s2 = net[4](z2)
            for i, (z, s) in enumerate(((z1, s1), (z2, s2))):
                currents[i].append(z.double().numpy())
                spikes[i].append(s.numpy().astype(np.uint8))
    return [np.stack(s) for s in spikes], [np.stack(c) for c in currents], lifs


def reference_lif(currents: np.ndarray, beta: np.ndarray, thr: np.ndarray):
    """float64 re-implementation of the exported semantics: h = beta v + I, spike if h > thr,
    then v = 0. Returns (spikes, min |h - thr| over all neurons and steps)."""
    v = np.zeros(currents.shape[1:])
    out, margin = [], np.inf
    for z in currents:
        h = beta * v + z
        margin = min(margin, float(np.abs(h - thr).min()))
        s = h > thr
        out.append(s.astype(np.uint8))
        v = np.where(s, 0.0, h)
    return np.stack(out), margin


def make(name: str, dyadic: bool, seed: int, T: int, B: int) -> None:
    net = build(dyadic, seed)
    graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    path = OUT / f"{name}.nir"
    nir.write(path, graph)
    ng = nir.read(path)
    keys = [k for k, n in ng.nodes.items() if isinstance(n, nir.LIF)]
    keys.sort(key=int)
    rng = np.random.default_rng(seed)
    x = (rng.random((T, B, 1, 8, 8)) < 0.3).astype(np.uint8)
    spikes, currents, lifs = simulate(net, torch.from_numpy(x.astype(np.float32)))
    for i, m in enumerate(lifs):
        ref, margin = reference_lif(currents[i], m.beta.double().numpy(),
                                    m.threshold.double().numpy())
        same = np.array_equal(ref, spikes[i])
        print(f"{name} {keys[i]}: rate {spikes[i].mean():.3f}, float64 re-run "
              f"{'identical' if same else 'DIFFERENT'}, min |h - thr| = {margin:.3g}")
        if dyadic and (not same or margin < 2.0 ** -18):
            sys.exit(f"{name}: the dyadic fixture is not tie-free; change the seed")
        if not 0.02 < spikes[i].mean() < 0.6:
            sys.exit(f"{name}: layer {keys[i]} rate {spikes[i].mean():.3f} out of range")
    np.savez_compressed(OUT / f"{name}.npz", x=x, lif_keys=np.array(keys), dt=DT,
                        framework=np.array(f"snntorch {snn.__version__}"),
                        **{f"spikes_{k}": s for k, s in zip(keys, spikes)})
    print(f"wrote {path} ({path.stat().st_size} B) and {name}.npz "
          f"({(OUT / f'{name}.npz').stat().st_size} B)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make("snntorch_small", dyadic=False, seed=0, T=12, B=32)
    make("snntorch_dyadic", dyadic=True, seed=1, T=8, B=32)


if __name__ == "__main__":
    main()
