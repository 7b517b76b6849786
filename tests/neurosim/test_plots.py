"""Plots: every function writes a readable, deterministic PNG from plain data."""
import matplotlib.image as mpimg
import numpy as np
import pytest

from neurosim.report import plots as P
from neurosim.costing.energy import ENERGY_CATEGORIES

RNG = np.random.default_rng(0)
LAYERS = [(f"blocks{i}.0.channel_conv.conv{i % 3}", {c: float(RNG.random()) * 1e-7
                                                   for c in ENERGY_CATEGORIES if c != "static"})
          for i in range(12)]
ROWS = [{"chip": "tianjic-x16", "mode": "sync", "accuracy": 0.9, "agreement": 1.0,
         "energy_per_inference_j": 8e-4, "dynamic_per_inference_j": 2e-5,
         "latency_per_inference_s": 4.9e-4},
        {"chip": "speck-xl", "mode": "async-free", "accuracy": None, "agreement": 0.8,
         "energy_per_inference_j": 3e-5, "dynamic_per_inference_j": 2e-5,
         "latency_per_inference_s": 3.4e-3}]
CASES = {
    "energy_by_layer": lambda p: P.energy_by_layer(LAYERS, p, title="t", static_j=1e-6),
    "energy_by_category": lambda p: P.energy_by_category(
        [("a/sync", {c: 1e-6 * (i + 1) for i, c in enumerate(ENERGY_CATEGORIES)}),
         ("b/async-free", {c: 0.0 if c == "mac" else 2e-7 for c in ENERGY_CATEGORIES})],
        p, title="t"),
    "firing_rates": lambda p: P.firing_rates([(n, 0.1 * i) for i, (n, _) in enumerate(LAYERS)],
                                             p, title="t"),
    "sync_timeline": lambda p: P.sync_timeline(
        [1.68e-5] * 9, {"3": [0, 10, 200, 5000, 0, 0, 3, 0, 1], "17": [1] * 9},
        [("n1", [0.1, 0.2]), ("n2", [0.3, 0.0])], p, title="t", ticks_per_step=4),
    "async_timeline": lambda p: P.async_timeline(
        [[0, 0.0, 1e-4, "a", "synops"], [5, 1e-4, 3e-4, "b", "fire"],
         [0, 2e-4, 2.5e-4, "a", "synops"]], p, title="t"),
    "fifo_occupancy": lambda p: P.fifo_occupancy(
        {"1": [[0.0, 5], [1e-4, 0], [2e-4, 512]], "9": [[5e-5, 10], [6e-5, 0]]}, p, title="t",
        depth=512),
    "run_comparison": lambda p: P.run_comparison(ROWS, p, title="t"),
    "paper_vs_event": lambda p: P.paper_vs_event(
        [{"layer": "conv1", "op_type": "SOP", "paper": 2e6, "event": 1.5e6},
         {"layer": "first", "op_type": "MAC", "paper": 5e4, "event": 9e4}], p, title="t"),
    "energy_vs_accuracy": lambda p: P.energy_vs_accuracy(
        [{"model": "m1", "run": "a/sync", "energy_j": 8e-4, "dynamic_j": 2e-6, "accuracy": 0.9},
         {"model": "m1", "run": "b/async-free", "energy_j": 3e-5, "dynamic_j": 1e-5,
          "accuracy": 0.85},
         {"model": "m2", "run": "a/sync", "energy_j": 4e-3, "dynamic_j": 5e-6, "accuracy": 0.95}],
        p, title="t"),
    "energy_vs_accuracy_total_only": lambda p: P.energy_vs_accuracy(
        [{"model": "m1", "run": "a/sync", "energy_j": 8e-4, "accuracy": 0.9},
         {"model": "m2", "run": "a/sync", "energy_j": 4e-3, "accuracy": 0.95}], p, title="t"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_is_written_and_deterministic(name, tmp_path):
    a = CASES[name](tmp_path / "a.png")
    b = CASES[name](tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    img = mpimg.imread(a)
    h, w = img.shape[:2]
    assert 250 <= h <= 4000 and 500 <= w <= 2400, (h, w)
    assert img[..., :3].std() > 0.05                      # not blank
    assert b"matplotlib" not in a.read_bytes()            # no software stamp


def test_units_pick_a_readable_scale():
    assert P._unit([3e-5, 8e-4], P._E) == (1e-6, "uJ")
    assert P._unit([0.0], P._S) == (1e-9, "ns")
    assert P._unit([2.0], P._S) == (1.0, "s")


def test_long_layer_names_are_shortened_from_the_left():
    name = "blocks4.0.attn.very_long_projection_name.pw2"
    assert P._short(name).startswith("...") and P._short(name).endswith("pw2")
    assert len(P._short(name)) == 34 and P._short("conv1") == "conv1"
