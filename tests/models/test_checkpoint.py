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
