"""The shipped checkpoints: accuracy on their workloads and fidelity of their 8-bit graphs."""
import numpy as np
import pytest

import models
from models.train import predict
from neurosim.reference import interp
from neurosim.run.inputs import load_for_model
from neurosim.frontends.lower import lower

# workload -> minimum float test accuracy (digits 95%, N-Digits 90%: the issues' floors)
FLOORS = {"digits": 0.95, "ndigits": 0.90}
SHIPPED = models.list_shipped()


def test_the_two_digits_checkpoints_are_shipped():
    assert {"meta-spikeformer-tiny", "e-spikeformer-tiny"} <= set(SHIPPED)
    meta = models.read_metadata(models.shipped_checkpoint("e-spikeformer-tiny"))
    assert meta["model"]["config"]["T"] == 1 and meta["model"]["config"]["D"] == 4
    meta = models.read_metadata(models.shipped_checkpoint("meta-spikeformer-tiny"))
    assert meta["model"]["config"]["T"] == 4


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_accuracy(name):
    model = models.load_checkpoint(models.shipped_checkpoint(name))
    workload = model.neurosim_training["workload"]
    x, y, _ = load_for_model(model, workload, "test")
    acc = float((predict(model, x).argmax(1) == y).mean())
    assert acc >= FLOORS.get(workload, 0.5), f"{name} on {workload}: {acc:.4f}"
    assert acc == pytest.approx(model.neurosim_training["final_test_accuracy"], abs=1e-9)


@pytest.mark.parametrize("name", ["meta-spikeformer-tiny", "e-spikeformer-tiny"])
def test_8bit_graph_agrees_with_float_model(name):
    """Issue floor: >= 98% of digits test predictions agree between the float model and its
    8-bit graph (measured: 98.6% Meta-SpikeFormer, 98.3% E-SpikeFormer)."""
    model = models.load_checkpoint(models.shipped_checkpoint(name))
    x_cal, _, _ = load_for_model(model, "digits", "train", n=64)
    x, y, _ = load_for_model(model, "digits", "test")
    graph = lower(model, x_cal)
    fl = predict(model, x).argmax(1)
    q = np.concatenate([interp.run(graph, x[i:i + 60], record="none").predictions
                        for i in range(0, len(x), 60)])
    assert (q == fl).mean() >= 0.98
    assert (q == y).mean() >= 0.95
