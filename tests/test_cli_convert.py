"""``neurosim convert``: ECMT conversion of a checkpoint from the command line."""
import json

import numpy as np
import torch

import models
from models.convert import ecmt
from neurosim.cli.main import main
from tests.zoo_cases import small_model


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_convert_writes_an_snn_that_loads(capsys, tmp_path):
    torch.manual_seed(0)
    ckpt = models.save_checkpoint(models.create("vit-tiny", dims=16, heads=2, depths=1),
                                  tmp_path / "vit.safetensors")
    out = tmp_path / "snn.safetensors"
    rc, text, _ = _run(capsys, "convert", "--checkpoint", ckpt, "--method", "ecmt", "--T", 3,
                       "--n", 4, "--calib-n", 8, "--eval-n", 6, "--out", out, "--json",
                       "--graph-out", tmp_path / "graph")
    assert rc == 0
    res = json.loads(text)
    assert (res["n"], res["T"], res["test_inputs"], res["calibration_inputs"]) == (4, 3, 6, 8)
    assert len(res["snn_accuracy_per_T"]) == 3 and res["energy_ratio_paper"] > 0
    snn = ecmt.load_snn(out)
    assert (snn.n, snn.T, len(snn.thresholds)) == (4, 3, res["mt_sites"])
    x = np.random.default_rng(0).random((2, 1, 16, 16), dtype=np.float32)
    assert snn(torch.from_numpy(x)).shape == (2, 10)
    from neurosim.ir.graph import load_graph
    from neurosim.reference import interp
    graph = load_graph(res["graph_dir"])
    assert graph.T == 3 and interp.run(graph, x, record="none").logits.shape == (2, 10)


def test_convert_bad_input_is_one_message(capsys, tmp_path):
    torch.manual_seed(0)
    vit = models.save_checkpoint(models.create("vit-tiny", dims=16, heads=2, depths=1),
                                 tmp_path / "vit.safetensors")
    rc, _, err = _run(capsys, "convert", "--checkpoint", vit, "--n", 0, "--out", tmp_path / "s")
    assert rc == 2 and "n >= 1" in err
    rc, _, err = _run(capsys, "convert", "--checkpoint", vit, "--calib-n", 1, "--eval-n", 0,
                      "--out", tmp_path / "s")
    assert rc == 2 and "fewer than 1/(1 - p) = 100" in err
    spiking = models.save_checkpoint(small_model("meta-sdsa3"), tmp_path / "meta.safetensors")
    rc, _, err = _run(capsys, "convert", "--checkpoint", spiking, "--calib-n", 8,
                      "--out", tmp_path / "s")
    assert rc == 2 and "has no ECMT mapping" in err and "module '" in err


def test_convert_help_names_the_method_and_settings(capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        main(["convert", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for s in ("usage: neurosim convert", "--method", "--T", "--n", "--p", "ecmt"):
        assert s in text
