import os
import pickle
import pickletools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import workloads
from workloads import static
from workloads.static import UnsafePickleError, load_cifar10, load_digits

# ----------------------------------------------------------------------------- digits

def test_digits_split_sizes_disjoint_and_stratified():
    tr = static.digits_split_indices("train")
    te = static.digits_split_indices("test")
    assert len(tr) == 1438 and len(te) == 359
    assert len(np.intersect1d(tr, te)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(1797))
    _, target = static._digits_raw()
    counts_all = np.bincount(target, minlength=10)
    counts_te = np.bincount(target[te], minlength=10)
    assert np.array_equal(counts_te, np.round(0.2 * counts_all).astype(int))


def test_digits_shapes_dtypes_range():
    ds = load_digits("test")
    assert ds.x.shape == (359, 1, 32, 32) and ds.x.dtype == np.float32
    assert ds.y.shape == (359,) and ds.y.dtype == np.int64
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.split == "test" and ds.name == "digits" and len(ds) == 359
    assert ds.meta["img_size_px"] == 32


def test_digits_resize_matches_torch_bilinear_and_channels():
    img8, y = static.digits_images("train")
    ds = load_digits("train", img_size=16, in_channels=3)
    ref = F.interpolate(torch.from_numpy(img8[:, None]), size=(16, 16), mode="bilinear",
                        align_corners=False).numpy()
    assert ds.x.shape == (1438, 3, 16, 16)
    np.testing.assert_allclose(ds.x[:, :1], np.clip(ref, 0, 1), atol=0)
    assert np.array_equal(ds.x[:, 0], ds.x[:, 2])
    assert np.array_equal(ds.y, y)
    native = load_digits("train", img_size=8)
    assert np.array_equal(native.x[:, 0], img8)
    # original 0..16 integers scaled by 1/16
    assert np.allclose(native.x * 16, np.round(native.x * 16))


def test_digits_deterministic_bytes_and_seed_changes_split():
    a, b = load_digits("test"), load_digits("test")
    assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    c = load_digits("test", seed=1)
    assert not np.array_equal(static.digits_split_indices("test", 1),
                              static.digits_split_indices("test", 0))
    assert len(c) == len(a)


def test_subset_and_errors():
    ds = load_digits("test")
    s = ds.subset(5)
    assert len(s) == 5 and np.array_equal(s.x, ds.x[:5]) and s.meta["subset"] == 5
    with pytest.raises(ValueError, match=r"subset\(400\).*only 359"):
        ds.subset(400)
    with pytest.raises(ValueError, match="img_size"):
        load_digits("test", img_size=0)
    with pytest.raises(ValueError, match="in_channels"):
        load_digits("test", in_channels=-1)
    with pytest.raises(ValueError, match="split"):
        load_digits("valid")
    x, y = ds.as_tensors()
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (359, 1, 32, 32)


def test_static_dataset_validates():
    with pytest.raises(ValueError, match="labels"):
        static.StaticDataset(np.zeros((2, 1, 4, 4), np.float32), np.array([0, 5]), "t",
                             ["a", "b"], "test")
    with pytest.raises(ValueError, match="float32"):
        static.StaticDataset(np.zeros((2, 1, 4, 4)), np.array([0, 1]), "t", ["a", "b"], "test")
    with pytest.raises(ValueError, match="samples"):
        static.StaticDataset(np.zeros((3, 1, 4, 4), np.float32), np.array([0, 1]), "t",
                             ["a", "b"], "test")


# ----------------------------------------------------------------------------- CIFAR-10

@pytest.mark.parametrize("style", ["py2", "py3"])
def test_cifar10_reads_original_format(tmp_path, style, cifar_writer):
    arrays = cifar_writer(tmp_path, n_train_per_batch=3, n_test=4, style=style)
    te = load_cifar10("test", root=tmp_path)
    data, labels = arrays["test_batch"]
    assert te.x.shape == (4, 3, 32, 32) and te.x.dtype == np.float32
    np.testing.assert_allclose(te.x, data.reshape(4, 3, 32, 32) / np.float32(255), rtol=1e-7)
    assert te.y.tolist() == labels and te.y.dtype == np.int64
    assert te.classes[0] == "airplane" and len(te.classes) == 10
    tr = load_cifar10("train", root=tmp_path)
    assert len(tr) == 15
    expect = np.concatenate([arrays[f"data_batch_{i}"][1] for i in range(1, 6)])
    assert np.array_equal(tr.y, expect)


def test_cifar10_py2_file_really_uses_py2_opcodes(tmp_path, cifar_writer):
    cifar_writer(tmp_path, style="py2")
    ops = list(pickletools.genops((tmp_path / "test_batch").read_bytes()))
    names = {op.name for op, _, _ in ops}
    assert "SHORT_BINSTRING" in names and "BINUNICODE" not in names
    globals_ = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert "numpy.core.multiarray _reconstruct" in globals_


def test_cifar10_resize_and_luma(tmp_path, cifar_writer):
    arrays = cifar_writer(tmp_path)
    ds = load_cifar10("test", root=tmp_path, img_size=16, in_channels=1)
    assert ds.x.shape == (4, 1, 16, 16)
    rgb = arrays["test_batch"][0].reshape(4, 3, 32, 32).astype(np.float32) / 255
    luma = (rgb * np.array(static.LUMA_WEIGHTS, np.float32)[None, :, None, None]).sum(1)
    ref = F.interpolate(torch.from_numpy(luma[:, None]), size=(16, 16), mode="bilinear",
                        align_corners=False).numpy()
    np.testing.assert_allclose(ds.x, ref, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels"):
        load_cifar10("test", root=tmp_path, in_channels=2)


def test_cifar10_env_var_root(tmp_path, monkeypatch, cifar_writer):
    cifar_writer(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))
    assert static.cifar10_root() == tmp_path / "cifar-10-batches-py"
    assert len(workloads.load("cifar10", "test")) == 4


def test_cifar10_missing_paths_named(tmp_path, monkeypatch, cifar_writer):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_cifar10("test", root=missing)
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "envdir"))
    with pytest.raises(FileNotFoundError, match="envdir/cifar-10-batches-py"):
        load_cifar10("test")
    cifar_writer(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10("train", root=tmp_path / "c")


@pytest.mark.parametrize("obj, match", [
    ({b"labels": [1]}, r"missing key b'data'"),
    ({b"data": np.zeros((1, 3072), np.uint8)}, r"missing key b'labels'"),
    ({b"data": np.zeros((1, 3071), np.uint8), b"labels": [1]}, r"b'data'.*\[N, 3072\]"),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, r"b'data' must be uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, r"b'labels' has 1 entries"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"label 10 outside 0\.\.9"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [-1]}, r"label -1"),
    ([1, 2], "expected a dict"),
])
def test_cifar10_bad_batches_name_file_and_key(tmp_path, obj, match, cifar_writer, py2_dump):
    cifar_writer(tmp_path)
    py2_dump(obj, tmp_path / "test_batch")
    with pytest.raises(ValueError, match=match) as e:
        load_cifar10("test", root=tmp_path)
    assert "test_batch" in str(e.value)


def test_cifar10_truncated_pickle(tmp_path, cifar_writer):
    cifar_writer(tmp_path)
    p = tmp_path / "test_batch"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ValueError, match="test_batch.*not a readable pickle"):
        load_cifar10("test", root=tmp_path)


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_malicious_pickle_refused_without_executing(tmp_path, cifar_writer):
    cifar_writer(tmp_path)
    marker = tmp_path / "pwned"
    evil = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
            b"x": _Evil(f"touch {marker}")}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"test_batch.*'(posix|os|nt)\.system'"):
        load_cifar10("test", root=tmp_path)
    assert not marker.exists()
    # Hand-written classic exploit: GLOBAL os.system, REDUCE.
    raw = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    (tmp_path / "batches.meta").write_bytes(raw)
    with pytest.raises(UnsafePickleError, match=r"batches\.meta.*'os\.system'"):
        load_cifar10("test", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("builtins", "getattr"),
                                          ("numpy", "load"), ("subprocess", "Popen"),
                                          ("numpy.testing", "runstring")])
def test_restricted_unpickler_rejects_other_globals(tmp_path, module, name):
    p = tmp_path / "x.pkl"
    p.write_bytes(b"c" + module.encode() + b"\n" + name.encode() + b"\n)R.")
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        static.safe_pickle_load(p)


def test_codecs_encode_only_latin1(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(b"c_codecs\nencode\nX\x03\x00\x00\x00abcX\x0b\x00\x00\x00rot13_codecX"
                  b"\x06\x00\x00\x00strict\x87R.")
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        static.safe_pickle_load(p)
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps(b"\x00\xffabc", protocol=2))
    assert static.safe_pickle_load(ok) == b"\x00\xffabc"
