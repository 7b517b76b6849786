import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads import aedat as A
from workloads.events import EVENT_DTYPE, make_events

# Written by iniVation's dv-processing 2.0.4 (MonoCameraWriter, EventOnlyConfig "DVXplorer_sample",
# resolution 8x6, compression NONE) with events (t=1000, x=1, y=2, ON), (1500, 7, 5, OFF),
# (2000, 0, 0, ON). It ends with dv's packet index table (FTAB).
REFERENCE = Path(__file__).parent / "data" / "dv_processing_reference.aedat4"
REFERENCE_EVENTS = make_events([1, 7, 0], [2, 5, 0], [1, 0, 1], [1000, 1500, 2000])


def test_event_packet_bytes_match_dv_processing():
    ref = REFERENCE.read_bytes()
    packet = A._event_packet(REFERENCE_EVENTS)
    start = ref.index(b"\x10\x00\x00\x00EVTS") - 4
    assert ref[start - 8:start] == struct.pack("<iI", 0, len(packet))
    assert ref[start:start + len(packet)] == packet


def test_written_file_layout(tmp_path):
    ev = make_events([0, 3], [1, 2], [1, 0], [5, 9], (4, 3, 2))
    path = A.write_aedat4(tmp_path / "a.aedat4", ev, (4, 3, 2), packet_events=1)
    raw = path.read_bytes()
    assert raw.startswith(b"#!AER-DAT4.0\r\n")
    (hlen,) = struct.unpack_from("<I", raw, 14)
    header = raw[18:18 + hlen]
    assert header[4:8] == b"IOHE"
    (root,) = struct.unpack_from("<I", header, 0)
    (fdp,) = struct.unpack_from("<q", header, root + 4)
    assert fdp == -1
    assert b'<attr key="sizeX" type="int">4</attr>' in header
    assert b'<attr key="typeIdentifier" type="string">EVTS</attr>' in header
    pos = 18 + hlen
    packets = []
    while pos < len(raw):
        sid, size = struct.unpack_from("<iI", raw, pos)
        packets.append(raw[pos + 8:pos + 8 + size])
        pos += 8 + size
    assert pos == len(raw) and len(packets) == 2
    assert packets[0] == A._event_packet(ev[:1]) and packets[1] == A._event_packet(ev[1:])
    again = A.write_aedat4(tmp_path / "b.aedat4", ev, (4, 3, 2), packet_events=1)
    assert again.read_bytes() == raw


def test_write_rejects_bad_input(tmp_path):
    ev = make_events([5], [0], [0], [0])
    with pytest.raises(ValueError, match="field 'x' value 5"):
        A.write_aedat4(tmp_path / "x.aedat4", ev, (4, 4, 2))
    with pytest.raises(ValueError, match="P=3"):
        A.write_aedat4(tmp_path / "x.aedat4", make_events([0], [0], [2], [0]), (4, 4, 3))


def test_missing_reader_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "aedat", None)
    with pytest.raises(ImportError, match="pip install aedat"):
        A.read_aedat4(REFERENCE)


def test_read_dv_processing_reference():
    ev, size = A.read_aedat4(REFERENCE)
    assert size == (8, 6, 2)
    assert ev.dtype == EVENT_DTYPE and ev.tobytes() == REFERENCE_EVENTS.tobytes()
    shifted, _ = A.read_aedat4(REFERENCE, zero_time=True)
    assert shifted["t"].tolist() == [0, 500, 1000]


@st.composite
def streams(draw):
    w = draw(st.integers(1, 600))
    h = draw(st.integers(1, 500))
    n = draw(st.integers(0, 50))
    x = draw(st.lists(st.integers(0, w - 1), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, h - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    t0 = draw(st.integers(0, 2 ** 52))
    dt = draw(st.lists(st.integers(0, 10 ** 6), min_size=n, max_size=n))
    return make_events(x, y, p, t0 + np.cumsum(np.array(dt, dtype=np.int64)), (w, h, 2)), (w, h, 2)


@settings(max_examples=40, deadline=None)
@given(streams(), st.integers(1, 20))
def test_round_trip_through_independent_reader(tmp_path_factory, stream, packet):
    ev, size = stream
    path = tmp_path_factory.mktemp("a") / "e.aedat4"
    A.write_aedat4(path, ev, size, packet_events=packet)
    back, back_size = A.read_aedat4(path)
    assert back_size == size and back.tobytes() == ev.tobytes()


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.aedat4"):
        A.read_aedat4(tmp_path / "nope.aedat4")
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 40)
    with pytest.raises(ValueError, match="bad.aedat4: not an AEDAT4 file"):
        A.read_aedat4(bad)
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(REFERENCE.read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.aedat4"):
        A.read_aedat4(cut)
    with pytest.raises(ValueError, match="stream_id 3 is not an event stream"):
        A.read_aedat4(REFERENCE, stream_id=3)


def test_corrupt_containers_are_refused_before_the_decoder(tmp_path):
    """Offsets the Rust decoder would follow out of bounds (it panics, and a panic during its
    cleanup aborts Python) are caught by workloads.aedat_check with the file and byte named."""
    ref = bytearray(REFERENCE.read_bytes())
    (hlen,) = struct.unpack_from("<I", ref, 14)
    packet = 18 + hlen + 8                              # the first packet's flatbuffer
    cases = {
        "root": (18 + 4, struct.pack("<I", 10 ** 6)),              # header root past its end
        "size": (18 + hlen + 4, struct.pack("<I", 10 ** 6)),       # packet runs past the file
        "vector": (packet + 28, struct.pack("<I", 2 ** 31)),       # event vector length
        "stream": (18 + hlen, struct.pack("<i", 7)),               # undeclared stream id
    }
    for name, (at, patch) in cases.items():
        bad = bytearray(ref)
        bad[at:at + len(patch)] = patch
        p = tmp_path / f"{name}.aedat4"
        p.write_bytes(bytes(bad))
        with pytest.raises(A.EventFileError, match=rf"{name}.aedat4: "):
            A.read_aedat4(p)
    xml = bytes(ref).replace(b'<attr key="sizeX" type="int">8</attr>',
                             b'<attr key="sizeX" type="int">x8</attr>')
    (tmp_path / "xml.aedat4").write_bytes(xml)
    with pytest.raises(A.EventFileError, match="event stream 0 has no valid sizeX"):
        A.read_aedat4(tmp_path / "xml.aedat4")
