"""MIM pre-training: masks, loss target, one epoch of pre-training then fine-tuning from the
encoder, determinism, and clear errors on bad input."""
import numpy as np
import pytest
import torch

import models
from models.checkpoint import CheckpointError
from models.mim.masking import (check_mask_args, masked_mse, normalised_patches, patchify,
                                random_patch_mask, upsample_mask)
from models.mim.pretrain import MIMConfig, encode, finetune, load_encoder, pretrain, save_encoder
from models.mim.probes import effective_rank, firing_rates
from models.mim.ssc import SSCConvBN
from models.train import TrainConfig
from neurosim.run.inputs import model_arrays

N_TRAIN = 128


@pytest.fixture(scope="module")
def digits():
    torch.manual_seed(0)
    m = models.create("e-spikeformer-tiny")
    (x_tr, y_tr), (x_te, y_te), _ = model_arrays(m, "digits")
    return x_tr[:N_TRAIN], y_tr[:N_TRAIN], x_te[:64], y_te[:64]


def _pretrained(x_tr, seed=0):
    torch.manual_seed(seed)
    m = models.create("e-spikeformer-tiny")
    dec, res = pretrain(m, x_tr, MIMConfig(epochs=1, seed=seed), progress=False)
    return m, dec, res


def test_masks_hit_the_ratio_and_the_loss_counts_masked_patches_only():
    vis = random_patch_mask(5, 4, 0.5, torch.Generator().manual_seed(0))
    assert vis.shape == (5, 1, 4, 4) and torch.all((~vis).flatten(1).sum(1) == 8)
    px = upsample_mask(vis, 32)
    assert px.shape == (5, 1, 32, 32) and torch.equal(px[:, :, ::8, ::8], vis)
    x = torch.rand(5, 1, 32, 32)
    t = normalised_patches(x, 8)
    np.testing.assert_allclose(t.mean(-1).numpy(), 0, atol=1e-5)
    assert torch.equal(patchify(x, 8)[0, 1], x[0, 0, :8, 8:16].reshape(-1))
    pred = t.clone()
    pred[vis.flatten(1)] += 3.0                     # errors on visible patches do not count
    assert float(masked_mse(pred, t, vis)) == 0.0


def test_one_epoch_pretrain_then_finetune(digits, tmp_path):
    x_tr, y_tr, x_te, y_te = digits
    m, dec, res = _pretrained(x_tr)
    assert res.epochs_run == 1 and res.patch_size == 16 and np.isfinite(res.history[0]["loss"])
    assert any(isinstance(mod, SSCConvBN) for mod in m.modules())
    # masked regions stay silent in every encoder layer (SSC), visible ones fire
    vis = random_patch_mask(16, 2, 0.5, torch.Generator().manual_seed(3))
    vp = upsample_mask(vis, 32)
    rates = firing_rates(m, torch.as_tensor(x_te[:16]) * vp, vp)
    assert len(rates) > 20
    assert all(r["rate_masked"] == 0.0 for r in rates)
    assert rates[0]["rate_visible"] > 0
    path = save_encoder(m, tmp_path / "enc.safetensors", MIMConfig(epochs=1), res)
    meta = models.read_metadata(path)
    assert meta["training"]["pretrain"] == "mim" and meta["convolution"] == "ssc"
    ft, fres = finetune(path, x_tr, y_tr, x_te, y_te, TrainConfig(epochs=1, threads=1),
                        progress=False)
    assert not any(isinstance(mod, SSCConvBN) for mod in ft.modules())
    assert fres.epochs_run == 1 and 0.0 <= fres.final_test_accuracy <= 1.0
    # the fine-tuning started from the pre-trained weights (converted back to VSC)
    enc = load_encoder(path)
    w_pre = dict(m.named_parameters())["blocks1a.0.channel_conv.conv1.conv.weight"]
    assert torch.equal(dict(enc.named_parameters())["blocks1a.0.channel_conv.conv1.conv.weight"],
                       w_pre)


def test_pretraining_is_deterministic(digits):
    x_tr = digits[0][:64]
    a, _, ra = _pretrained(x_tr, seed=5)
    b, _, rb = _pretrained(x_tr, seed=5)
    assert ra.history[0]["loss"] == rb.history[0]["loss"]
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k


def test_effective_rank():
    assert effective_rank(np.eye(6)) == pytest.approx(6.0)
    assert effective_rank(np.ones((5, 3))) == pytest.approx(1.0)
    z = np.diag([1.0, 1.0, 0.0])
    assert effective_rank(z) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="2-D"):
        effective_rank(np.ones(4))


def test_bad_input_errors(digits, tmp_path):
    with pytest.raises(ValueError, match=r"mask ratio must lie in \(0, 1\), got 1.0"):
        MIMConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match=r"mask ratio must lie in \(0, 1\), got 0"):
        check_mask_args(32, 16, 0)
    with pytest.raises(ValueError, match="patch size 12 does not divide the image size 32"):
        check_mask_args(32, 12, 0.5)
    with pytest.raises(ValueError, match="not a multiple of the encoder's total stride 16"):
        pretrain(models.create("e-spikeformer-tiny"), digits[0][:8],
                 MIMConfig(patch_size=8, epochs=1), progress=False)
    with pytest.raises(ValueError, match="masks 0 of 4 patches"):
        check_mask_args(32, 16, 0.1)
    with pytest.raises(ValueError, match="supports the e-spikeformer family"):
        pretrain(models.create("meta-spikeformer-tiny"), digits[0][:8], progress=False)
    plain = models.save_checkpoint(models.create("e-spikeformer-tiny"), tmp_path / "plain.st")
    with pytest.raises(CheckpointError, match="plain.st: not a MIM-pre-trained encoder"):
        load_encoder(plain)


def test_encode_without_mask_equals_vsc_where_everything_is_active(digits):
    """Sanity of the SSC encoder: on an all-active input the SSC stem equals the dense stem."""
    torch.manual_seed(0)
    m = models.create("e-spikeformer-tiny").eval()
    x = torch.as_tensor(digits[0][:4]) + 0.05                   # no zero pixel anywhere
    dense = m.down1a(m.encoder(x))
    from models.mim.ssc import to_ssc
    to_ssc(m)
    sparse = m.down1a.conv(m.encoder(x))
    torch.testing.assert_close(sparse, dense)
    assert encode(m, x).shape == (4, 40, 2, 2)
