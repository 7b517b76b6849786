"""Fuzzing event files (.npy, .npz, AEDAT4): mutated copies load as valid event streams, or
fail with an ``EventFileError`` naming the file. No other exception may escape."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from workloads import (EventFileError, load_events, make_events, read_aedat4, save_events,
                       validate_events, write_aedat4)
from tests.fuzz.mutate import Outcomes, fuzz_cases, mutate_bytes

SENSOR = (34, 34, 2)
DATA = Path(__file__).resolve().parents[1] / "workloads" / "data"
REFERENCE_AEDAT = DATA / "dv_processing_reference.aedat4"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """One file of each format: tonic-style .npy, .npz with its sensor size, AEDAT4 written
    here (several packets) and the dv-processing reference file."""
    root = tmp_path_factory.mktemp("ev")
    rng = np.random.default_rng(0)
    n = 300
    ev = make_events(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 50_000, n)), SENSOR)
    tonic = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "?")])
    for f in ("x", "y", "t"):
        tonic[f] = ev[f]
    tonic["p"] = ev["p"].astype(bool)
    np.save(root / "tonic.npy", tonic)
    save_events(root / "ev.npz", ev, SENSOR)
    write_aedat4(root / "ev.aedat4", ev, SENSOR, packet_events=64)
    files = [root / "tonic.npy", root / "ev.npz", root / "ev.aedat4"]
    return files + ([REFERENCE_AEDAT] if REFERENCE_AEDAT.is_file() else [])


def _mutate_fields(data, arr: np.ndarray) -> np.ndarray:
    """Structured edits of an event array: values out of range, unsorted time, wrong types."""
    names = list(arr.dtype.names)
    op = data.draw(st.sampled_from(["value", "unsort", "dtype", "drop", "extra", "shape",
                                    "subset", "shift"]))
    if op == "subset":                                    # still a valid stream
        return arr[:data.draw(st.integers(0, arr.size))].copy()
    if op == "shift":                                     # later timestamps: valid, or too big
        a = arr.astype([(n, "<i8") for n in names])
        a["t"] += data.draw(st.sampled_from([1, 10 ** 6, 2 ** 62]))
        return a
    if op == "value" and arr.size:
        a = arr.astype([(n, "<i8") for n in names])        # room for out-of-range values
        f = data.draw(st.sampled_from(names))
        a[f][data.draw(st.integers(0, a.size - 1))] = data.draw(
            st.sampled_from([-1, 34, 35, 2, 127, 10 ** 6, -(2 ** 40), 0]))
        return a
    if op == "unsort" and arr.size > 1:
        return arr[::-1].copy()
    if op == "dtype":
        f = data.draw(st.sampled_from(names))
        dt = data.draw(st.sampled_from(["<f8", "<u8", "<i1", "U3", "<c8"]))
        new = [(n, dt if n == f else arr.dtype[n].str) for n in names]
        out = np.zeros(arr.size, dtype=new)
        for n in names:
            out[n] = arr[n].astype(dt) if n == f and dt != "U3" else \
                (arr[n].astype(str) if n == f else arr[n])
        return out
    if op == "drop":
        keep = [n for n in names if n != data.draw(st.sampled_from(names))]
        return arr[keep].copy() if keep else np.zeros(3)
    if op == "extra":
        out = np.zeros(arr.size, dtype=arr.dtype.descr + [("z", "<i4")])
        for n in names:
            out[n] = arr[n]
        return out
    return arr.reshape(-1, 1) if arr.size else np.zeros((2, 2))


def write_mutant(data, src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    structured = src.suffix in (".npy", ".npz") and data.draw(st.integers(0, 2)) > 0
    if not structured:
        dst.write_bytes(mutate_bytes(data, src.read_bytes(), max_edits=4))
    elif src.suffix == ".npy":
        np.save(dst, _mutate_fields(data, np.load(src)))
    else:
        with np.load(src) as z:
            ev, size = z["events"], z["sensor_size"]
        part = data.draw(st.sampled_from(["events", "size", "missing"]))
        if part == "events":
            np.savez(dst, events=_mutate_fields(data, ev), sensor_size=size)
        elif part == "size":
            bad = data.draw(st.sampled_from([[0, 34, 2], [34, 34], [1e3, 34, 2], [-1, 2, 2],
                                             [2 ** 40, 2, 2], "34x34"]))
            np.savez(dst, events=ev, sensor_size=np.asarray(bad))
        else:
            np.savez(dst, events=ev)
    return dst


def _load(path: Path):
    if path.suffix == ".aedat4":
        return read_aedat4(path)
    return load_events(path, SENSOR if path.suffix == ".npy" else None)


def check_event_case(data, bases, tmp, outcomes: Outcomes):
    src = data.draw(st.sampled_from(bases), label="event file")
    p = write_mutant(data, src, tmp)

    def case():
        ev, size = _load(p)
        validate_events(ev, size)
    outcomes.run(case, (EventFileError,))


def test_fuzz_event_files(bases, tmp_path_factory):
    out = fuzz_cases(check_event_case, bases, tmp_path_factory.mktemp("fz"), n=80)
    assert out.counts["ok"] and out.counts["EventFileError"], str(out)


@pytest.mark.soak
def test_soak_event_files(bases, tmp_path_factory):
    out = fuzz_cases(check_event_case, bases, tmp_path_factory.mktemp("fz"))
    print(f"\nsoak event files: {out}")
    assert out.total >= 1000
