"""Small hand-built graphs for the asynchronous engine's tests: order-free networks (IF neurons,
soft reset, non-negative weights and inputs), a two-input neuron that a signed weight can
fire too early, and an SFA burst storm into a dense layer."""
from __future__ import annotations

import numpy as np

from neurosim.ir import graph as G


def order_free(seed: int, T: int = 2, spike_input: bool = False, shortcut: bool = False,
               signed: bool = False) -> G.Graph:
    """Input -> conv -> IF (soft reset) -> strided conv -> IF -> linear -> readout, weights
    and inputs >= 0 unless ``signed``; ``shortcut``: a second conv of the input added to the
    first one's output before the neurons (a graded edge between cores)."""
    rng = np.random.default_rng(seed)
    lo = -3 if signed else 0
    g = G.Graph()
    g.add(G.Input("input", (2, 6, 6), kind="spike" if spike_input else "graded", T=T))
    conv = dict(in_shape=(2, 6, 6), padding=1, in_scale=0.05, in_bits=8)
    g.add(G.Conv("c1", (4, 6, 6), weight=rng.integers(lo, 7, (4, 2, 3, 3)),
                 scale=np.full(4, 0.0012 if not spike_input else 0.03),
                 bias=rng.uniform(0.0, 0.2, 4), **conv), ["input"])
    src = "c1"
    if shortcut:
        g.add(G.Conv("c1b", (4, 6, 6), weight=rng.integers(lo, 7, (4, 2, 3, 3)),
                     scale=np.full(4, 0.0008 if not spike_input else 0.02),
                     bias=np.zeros(4), **conv), ["input"])
        g.add(G.Add("sum", (4, 6, 6)), ["c1", "c1b"])
        src = "sum"
    g.add(G.Neurons("n1", (4, 6, 6), model="if", reset="soft", v_th=np.full(4, 1.0)), [src])
    g.add(G.Conv("c2", (6, 3, 3), in_shape=(4, 6, 6), weight=rng.integers(lo, 7, (6, 4, 3, 3)),
                 stride=2, padding=1, scale=np.full(6, 0.012), bias=np.zeros(6)), ["n1"])
    g.add(G.Neurons("n2", (6, 3, 3), model="if", reset="soft", v_th=np.full(6, 1.0)), ["c2"])
    g.add(G.Linear("fc", (5,), in_shape=(6, 3, 3), weight=rng.integers(0, 5, (5, 54)),
                   scale=np.full(5, 0.1)), ["n2"])
    g.add(G.Readout("readout", (5,)), ["fc"])
    return g.validate()


def early_spike() -> G.Graph:
    """Two graded inputs into one IF neuron, weights +4 and -4: in address order the
    positive event arrives first and pushes the neuron over threshold; the window's total
    (0) never would."""
    g = G.Graph()
    g.add(G.Input("input", (2,), kind="graded", T=1))
    g.add(G.Linear("fc1", (1,), in_shape=(2,), weight=np.array([[4, -4]]), scale=np.ones(1),
                   in_scale=1.0, in_bits=8), ["input"])
    g.add(G.Neurons("n", (1,), model="if", reset="soft", v_th=np.ones(1)), ["fc1"])
    g.add(G.Linear("fc2", (2,), in_shape=(1,), weight=np.array([[1], [0]])), ["n"])
    g.add(G.Readout("readout", (2,)), ["fc2"])
    return g.validate()


def burst_storm(n_burst: int = 64, n_sfa: int = 512, n_out: int = 8, D: int = 8) -> G.Graph:
    """Spike input -> linear -> SFA (D) -> dense linear -> readout: the first ``n_burst``
    SFA neurons get a large input and fire full bursts of D spikes at once, the others none."""
    g = G.Graph()
    g.add(G.Input("input", (8,), kind="spike", T=1))
    w = np.where(np.arange(n_sfa)[:, None] < n_burst, 100, -100) * np.ones((1, 8), int)
    g.add(G.Linear("fc1", (n_sfa,), in_shape=(8,), weight=w), ["input"])
    g.add(G.Neurons("sfa", (n_sfa,), model="sfa", reset="soft", D=D, v_th=np.ones(n_sfa)),
          ["fc1"])
    g.add(G.Linear("dense", (n_out,), in_shape=(n_sfa,), weight=np.ones((n_out, n_sfa), int)),
          ["sfa"])
    g.add(G.Readout("readout", (n_out,)), ["dense"])
    return g.validate()


def split_layer(seed: int = 0) -> G.Graph:
    """Spike input -> conv of 96 x 32 x 32 neurons (more than one speck-xl core holds, so it
    is split over two cores by output channel) -> IF -> strided conv -> IF -> linear."""
    rng = np.random.default_rng(seed)
    g = G.Graph()
    g.add(G.Input("input", (4, 32, 32), kind="spike", T=1))
    g.add(G.Conv("wide", (96, 32, 32), in_shape=(4, 32, 32), weight=rng.integers(0, 4, (96, 4, 3, 3)),
                 padding=1, scale=np.full(96, 0.05)), ["input"])
    g.add(G.Neurons("n1", (96, 32, 32), model="if", reset="soft", v_th=np.ones(96)), ["wide"])
    g.add(G.Conv("c2", (8, 8, 8), in_shape=(96, 32, 32), weight=rng.integers(0, 3, (8, 96, 3, 3)),
                 stride=4, padding=1, scale=np.full(8, 0.01)), ["n1"])
    g.add(G.Neurons("n2", (8, 8, 8), model="if", reset="soft", v_th=np.ones(8)), ["c2"])
    g.add(G.Linear("fc", (4,), in_shape=(8, 8, 8), weight=rng.integers(0, 3, (4, 512))), ["n2"])
    g.add(G.Readout("readout", (4,)), ["fc"])
    return g.validate()


def map_readout(seed: int = 0, T: int = 2) -> G.Graph:
    """Spike input -> conv -> IF -> conv (3 x 4 x 4) -> readout of the whole map: the logits
    are the 48 map values, flattened in (C, H, W) order."""
    rng = np.random.default_rng(seed)
    g = G.Graph()
    g.add(G.Input("input", (2, 6, 6), kind="spike", T=T))
    g.add(G.Conv("c1", (4, 6, 6), in_shape=(2, 6, 6), padding=1,
                 weight=rng.integers(-3, 4, (4, 2, 3, 3)), scale=np.full(4, 0.5)), ["input"])
    g.add(G.Neurons("n1", (4, 6, 6), model="if", reset="soft", v_th=np.ones(4)), ["c1"])
    g.add(G.Conv("c2", (3, 4, 4), in_shape=(4, 6, 6), weight=rng.integers(-2, 5, (3, 4, 3, 3)),
                 scale=np.full(3, 0.1), bias=rng.uniform(-0.5, 0.5, 3)), ["n1"])
    g.add(G.Readout("readout", (3, 4, 4)), ["c2"])
    return g.validate()
