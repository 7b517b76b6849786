"""Training progress: the bar counts batches (across epochs, so its ETA covers the whole run),
names the epoch, and shows the running loss and accuracy and the test accuracy."""
import numpy as np
import torch

import models
from models.train import TrainConfig, fit


def test_progress_moves_by_batch_with_loss_and_accuracy(capsys):
    torch.manual_seed(0)
    model = models.create("meta-spikeformer-tiny", T=1)
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    res = fit(model, x, y, x[:8], y[:8], TrainConfig(epochs=2, batch_size=8, threads=1),
              progress=True)
    err = capsys.readouterr().err
    assert res.epochs_run == 2 and len(res.history) == 2
    for s in ("epoch 1/2", "epoch 2/2", "4/4", "batch", "loss=", "acc=", "test="):
        assert s in err, (s, err[-500:])
    last = res.history[-1]
    assert f"test={last['test_acc']:.3f}" in err and f"loss={last['loss']:.3f}" in err
    fit(model, x, y, x[:8], y[:8], TrainConfig(epochs=1, batch_size=8, threads=1),
        progress=False)
    assert capsys.readouterr().err == ""
