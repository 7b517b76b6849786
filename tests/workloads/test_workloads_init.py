import pytest

import workloads


def test_list_and_load_dispatch():
    assert workloads.list_workloads() == ["cifar10", "digits", "motion", "ndigits"]
    ds = workloads.load("digits", "train", img_size=8)
    assert isinstance(ds, workloads.StaticDataset) and ds.x.shape == (1438, 1, 8, 8)
    assert workloads.load("digits").split == "test"
    ev = workloads.load("motion", "test", n=6)
    assert isinstance(ev, workloads.EventDataset) and len(ev) == 6


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"unknown workload 'digit'.*did you mean 'digits'.*"
                                         r"\['cifar10', 'digits', 'motion', 'ndigits'\]"):
        workloads.load("digit")
    with pytest.raises(ValueError, match="available"):
        workloads.load(None)


@pytest.mark.parametrize("split", ["val", "Train", "", None])
def test_bad_split(split):
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\]"):
        workloads.load("digits", split)


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="img_sz"):
        workloads.load("digits", "test", img_sz=16)


def test_public_names_exist():
    for name in workloads.__all__:
        assert hasattr(workloads, name), name
