"""Checkpoints: round trip, safe loading, clear errors."""
import json
import struct

import pytest
import torch

import models
from models.checkpoint import CheckpointError


def _tiny():
    torch.manual_seed(0)
    return models.create("meta-spikeformer-tiny", T=2)


def test_round_trip_rebuilds_without_the_name(tmp_path):
    m = _tiny()
    p = models.save_checkpoint(m, tmp_path / "m.safetensors", training={"epochs": 3})
    m2 = models.load_checkpoint(p)
    assert m2.neurosim_config == m.neurosim_config
    assert m2.neurosim_training == {"epochs": 3}
    for (k, a), (k2, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(m.eval()(x), m2(x), rtol=0, atol=0)


def test_mismatching_configuration_names_the_fields(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match=r"T: checkpoint 2 != requested 4") as e:
        models.load_checkpoint(p, "meta-spikeformer-tiny")
    assert "dims" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"family: checkpoint 'meta-spikeformer' != requested 'e-spikeformer'"):
        models.load_checkpoint(p, "e-spikeformer-tiny")
    models.load_checkpoint(p, "meta-spikeformer-tiny", T=2)            # matches


def test_truncated_and_corrupt_files_give_clear_errors(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    data = p.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        models.load_checkpoint(cut)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        models.load_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        models.load_checkpoint(tmp_path / "nowhere.safetensors")


def test_pickle_payload_is_never_executed(tmp_path):
    """A torch pickle (which could run code) renamed to .safetensors is refused unread."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.safetensors"
    torch.save({"x": Evil()}, p)
    with pytest.raises(CheckpointError):
        models.load_checkpoint(p)
    assert not marker.exists()


def _rewrite_metadata(src, dst, fn):
    """Write a copy of a safetensors file with its JSON header changed by ``fn``."""
    data = src.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    fn(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    dst.write_bytes(struct.pack("<Q", len(h)) + h + data[8 + n:])


def test_bad_metadata_is_named(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    q = tmp_path / "q.safetensors"
    _rewrite_metadata(p, q, lambda h: h["__metadata__"].__setitem__("model", "{oops"))
    with pytest.raises(CheckpointError, match="'model' is not valid JSON"):
        models.load_checkpoint(q)
    _rewrite_metadata(p, q, lambda h: h["__metadata__"].pop("training"))
    with pytest.raises(CheckpointError, match="'training' missing"):
        models.load_checkpoint(q)
    _rewrite_metadata(p, q, lambda h: h["__metadata__"].__setitem__("format", "other/9"))
    with pytest.raises(CheckpointError, match="'format' is 'other/9'"):
        models.load_checkpoint(q)


def test_weights_that_do_not_fit_the_configuration(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    q = tmp_path / "q.safetensors"

    def shrink(h):
        cfg = json.loads(h["__metadata__"]["model"])
        cfg["config"]["dims"] = [16, 32, 64, 96]
        h["__metadata__"]["model"] = json.dumps(cfg)
    _rewrite_metadata(p, q, shrink)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        models.load_checkpoint(q)


def test_unknown_model_name_lists_the_zoo():
    with pytest.raises(KeyError, match="Available models: .*meta-spikeformer-8-384"):
        models.create("meta-spikeformer-9-999")
    with pytest.raises(KeyError, match="Did you mean meta-spikeformer-8-384"):
        models.create("meta-spikeformer-8-348")


def test_unknown_override_names_what_is_accepted():
    with pytest.raises(TypeError, match=r"does not take \['depth'\].*accepts: .*depths"):
        models.create("meta-spikeformer-tiny", depth=3)


# ----------------------------------------------------------------------------- convolution
def test_checkpoint_records_the_training_convolution(tmp_path):
    from models.train import TRAINED_CONVOLUTION, TrainConfig, fit
    m = _tiny()
    x, y = torch.rand(8, 1, 32, 32), torch.arange(8) % 10
    res = fit(m, x, y, x, y, TrainConfig(epochs=1, batch_size=8, shift_px=0), progress=False)
    assert res.convolution == TRAINED_CONVOLUTION == "vsc" == m.neurosim_convolution
    p = models.save_checkpoint(m, tmp_path / "m.safetensors", training=res.to_dict())
    meta = models.read_metadata(p)
    assert meta["convolution"] == "vsc" and meta["convolution_recorded"]
    assert meta["training"]["convolution"] == "vsc"
    assert models.load_checkpoint(p).neurosim_convolution == "vsc"
    q = models.save_checkpoint(_tiny(), tmp_path / "s.safetensors", convolution="ssc")
    assert models.read_metadata(q)["convolution"] == "ssc"
    assert models.load_checkpoint(q).neurosim_convolution == "ssc"
    with pytest.raises(CheckpointError, match="convolution must be one of"):
        models.save_checkpoint(_tiny(), tmp_path / "x.safetensors", convolution="dense")


def test_checkpoint_without_the_field_reads_as_vsc_and_bad_values_are_named(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    q = tmp_path / "q.safetensors"
    _rewrite_metadata(p, q, lambda h: h["__metadata__"].pop("convolution"))
    meta = models.read_metadata(q)
    assert meta["convolution"] == "vsc" and not meta["convolution_recorded"]
    assert models.load_checkpoint(q).neurosim_convolution == "vsc"
    _rewrite_metadata(p, q, lambda h: h["__metadata__"].__setitem__("convolution", "fft"))
    with pytest.raises(CheckpointError, match="'convolution' is 'fft'"):
        models.load_checkpoint(q)


def test_shipped_checkpoints_read_as_vsc():
    for name in models.list_shipped():
        meta = models.read_metadata(models.shipped_checkpoint(name))
        assert meta["convolution"] == "vsc", name
        assert meta["training"]["command"].startswith("train "), name   # models.train.fit


def test_lowering_a_vsc_checkpoint_with_ssc_warns_with_the_measured_cost():
    import warnings

    from models.checkpoint import SSCMismatchWarning
    from neurosim.frontends.lower import lower
    m = models.load_checkpoint(models.shipped_checkpoint("e-spikeformer-tiny"))
    x = torch.rand(2, 1, 32, 32)
    with pytest.warns(SSCMismatchWarning, match=r"trained with vanilla convolution.*96\.7% -> "
                                                r"93\.3%.*30 test inputs"):
        g = lower(m, x, ssc=True)
    assert g.meta["ssc"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SSCMismatchWarning)
        lower(m, x)                                    # VSC lowering: no warning
        m.neurosim_convolution = "ssc"
        lower(m, x, ssc=True)                          # trained with SSC: no warning
        lower(_tiny(), torch.rand(2, 1, 32, 32), ssc=True)   # untrained: nothing to protect


# ----------------------------------------------------------------------------- metadata schema
def _with_model_meta(src, dst, fn):
    def edit(h):
        cfg = json.loads(h["__metadata__"]["model"])
        fn(cfg)
        h["__metadata__"]["model"] = json.dumps(cfg)
    _rewrite_metadata(src, dst, edit)
    return dst


def test_implausible_configuration_is_refused_before_building(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    q = _with_model_meta(p, tmp_path / "q.safetensors",
                         lambda c: c["config"].__setitem__("T", 10 ** 9))
    with pytest.raises(CheckpointError, match=r"q.safetensors: metadata model.config.T: "
                                              r"1000000000 is outside the plausible range "
                                              r"1..1024; pass allow_extreme=True"):
        models.load_checkpoint(q)
    meta = models.read_metadata(q, allow_extreme=True)           # the stated escape
    assert meta["model"]["config"]["T"] == 10 ** 9
    q = _with_model_meta(p, tmp_path / "d.safetensors",
                         lambda c: c["config"].__setitem__("dims", [8, 16, 10 ** 7, 48]))
    with pytest.raises(CheckpointError, match=r"model.config.dims\[2\]: 10000000 is outside"):
        models.load_checkpoint(q)
    q = _with_model_meta(p, tmp_path / "f.safetensors",
                         lambda c: c["config"].__setitem__("T", 2.5))
    with pytest.raises(CheckpointError, match=r"model.config.T: expected an integer, got 2.5"):
        models.load_checkpoint(q)


def test_model_name_or_family_outside_the_zoo_is_refused(tmp_path):
    p = models.save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    q = _with_model_meta(p, tmp_path / "n.safetensors",
                         lambda c: c.__setitem__("name", "meta-spikeformer-9000"))
    with pytest.raises(CheckpointError, match=r"model.name: 'meta-spikeformer-9000' is not a "
                                              r"meta-spikeformer model of the zoo \(.*"
                                              r"meta-spikeformer-tiny"):
        models.load_checkpoint(q)
    q = _with_model_meta(p, tmp_path / "e.safetensors",          # a real name, other family
                         lambda c: c.__setitem__("name", "e-spikeformer-tiny"))
    with pytest.raises(CheckpointError, match=r"model.name: 'e-spikeformer-tiny' is not a "
                                              r"meta-spikeformer model"):
        models.load_checkpoint(q)
    q = _with_model_meta(p, tmp_path / "g.safetensors",
                         lambda c: c.__setitem__("family", "gpt"))
    with pytest.raises(CheckpointError, match=r"model.family: unknown model family 'gpt'"):
        models.load_checkpoint(q)
    q = _with_model_meta(p, tmp_path / "b.safetensors",         # built as models.build(family)
                         lambda c: c.__setitem__("name", "meta-spikeformer"))
    assert models.load_checkpoint(q).neurosim_config["name"] == "meta-spikeformer"
