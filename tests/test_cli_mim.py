"""`neurosim train --pretrain mim` and `--finetune`: one epoch each, and clear errors."""
import json

import pytest

import models
from neurosim.cli.main import main


@pytest.fixture
def small_digits(monkeypatch):
    """The CLI's data loader cut to 128 training and 64 test images (test time)."""
    from neurosim.run import inputs
    full = inputs.model_arrays

    def cut(model, workload):
        (x_tr, y_tr), (x_te, y_te), name = full(model, workload)
        return (x_tr[:128], y_tr[:128]), (x_te[:64], y_te[:64]), name

    monkeypatch.setattr(inputs, "model_arrays", cut)


def test_cli_pretrain_then_finetune(tmp_path, capsys, small_digits):
    enc = tmp_path / "enc.safetensors"
    assert main(["train", "--model", "e-spikeformer-tiny", "--pretrain", "mim", "--mask-ratio",
                 "0.5", "--epochs", "1", "--threads", "1", "--out", str(enc), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs_run"] == 1 and out["patch_size"] == 16
    assert models.read_metadata(enc)["training"]["mim"]["mask_ratio"] == 0.5
    ft = tmp_path / "ft.safetensors"
    assert main(["train", "--model", "e-spikeformer-tiny", "--finetune", str(enc), "--epochs",
                 "1", "--threads", "1", "--out", str(ft), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finetuned_from"] == str(enc) and out["epochs_run"] == 1
    assert models.read_metadata(ft)["convolution"] == "vsc"


@pytest.mark.parametrize("args,msg", [
    (["--pretrain", "mim", "--mask-ratio", "0"], "mask ratio must lie in (0, 1), got 0.0"),
    (["--pretrain", "mim", "--patch-size", "12"], "patch size 12 does not divide"),
    (["--finetune", "e-spikeformer-tiny"], "not a MIM-pre-trained encoder"),
    (["--pretrain", "mim", "--shift-px", "1"], "--shift-px augments classification"),
], ids=["ratio", "patch", "not-mim", "shift"])
def test_cli_bad_input(tmp_path, capsys, args, msg):
    rc = main(["train", "--model", "e-spikeformer-tiny", "--epochs", "1",
               "--out", str(tmp_path / "x.safetensors"), *args])
    assert rc == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_cli_mask_options_without_pretrain_are_an_error(tmp_path, capsys):
    rc = main(["train", "--model", "e-spikeformer-tiny", "--mask-ratio", "0.3",
               "--out", str(tmp_path / "x.safetensors")])
    assert rc == 2 and "add --pretrain mim" in capsys.readouterr().err
