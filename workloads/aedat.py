"""AEDAT4 (iniVation DV) event files.

Reading uses the optional ``aedat`` package (a maintained Rust decoder from the International
Centre for Neuromorphic Systems; ``pip install aedat``, extra ``neurosim[aedat]``), imported
lazily. Writing is done here in pure Python, uncompressed, following the format as written by
iniVation's dv-processing:

* ``#!AER-DAT4.0\\r\\n``, then a little-endian u32 length and an ``IOHeader`` flatbuffer
  (identifier ``IOHE``; compression, file_data_position = -1 (no data table), and the XML
  stream description with ``typeIdentifier`` EVTS and ``sizeX``/``sizeY``);
* packets: i32 stream id, i32 byte size, then a size-prefixed ``EventPacket`` flatbuffer
  (identifier ``EVTS``; vector of 16-byte structs ``{t: int64 us, x: int16, y: int16, on: bool}``).
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .aedat_check import check_aedat4
from .events import (EVENT_DTYPE, EventFileError, SensorSize, check_sensor_size,
                     validate_events)

MAGIC = b"#!AER-DAT4.0\r\n"
_STRUCT_DTYPE = np.dtype({"names": ["t", "x", "y", "on"],
                          "formats": ["<i8", "<i2", "<i2", "u1"],
                          "offsets": [0, 8, 10, 12], "itemsize": 16})


def _require_aedat():
    try:
        import aedat
    except ImportError:
        raise ImportError("read_aedat4 needs the optional package 'aedat' "
                          "(pip install aedat, or pip install 'neurosim[aedat]')") from None
    return aedat


def read_aedat4(path, *, stream_id: int | None = None,
                zero_time: bool = False) -> tuple[np.ndarray, SensorSize]:
    """Read the polarity events of an AEDAT4 file: ``(events, (W, H, 2))``.

    ``stream_id`` picks an event stream when the file has several (otherwise the only one is
    used); packets of other streams (frames, IMU, triggers) are not events and are skipped.
    Timestamps stay in the file's microseconds (DV writes Unix time) unless ``zero_time`` is
    set, which subtracts the first event's timestamp. Every problem with the file raises
    :class:`~workloads.events.EventFileError` naming it.
    """
    aedat = _require_aedat()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AEDAT4 file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if head != MAGIC:
        raise EventFileError(f"{path}: not an AEDAT4 file (header {head!r}, expected {MAGIC!r})")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        check_aedat4(path, data, MAGIC)          # bounds the decoder relies on (aedat_check)
    decoder = _decode(path, lambda: aedat.Decoder(str(path)), "header")
    streams = _decode(path, decoder.id_to_stream, "header")
    event_ids = sorted(k for k, v in streams.items() if isinstance(v, dict)
                       and v.get("type") == "events")
    if stream_id is None:
        if len(event_ids) != 1:
            raise EventFileError(f"{path}: {len(event_ids)} event streams {event_ids}; pass "
                                 "stream_id to pick one")
        stream_id = event_ids[0]
    elif stream_id not in event_ids:
        raise EventFileError(f"{path}: stream_id {stream_id} is not an event stream (event "
                             f"streams: {event_ids})")
    info = streams[stream_id]
    try:
        size = check_sensor_size((int(info["width"]), int(info["height"]), 2))
    except (KeyError, TypeError, ValueError) as e:
        raise EventFileError(f"{path}: stream {stream_id} has no valid sensor size ({e})") \
            from None
    chunks = _decode(path, lambda: [p["events"] for p in decoder
                                    if p["stream_id"] == stream_id and "events" in p], "packet")
    try:
        out = _to_events(path, chunks, size, zero_time)
        return validate_events(out, size, where=str(path)), size
    except (TypeError, ValueError) as e:
        raise EventFileError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") \
            from None


def _decode(path: Path, fn, what: str):
    """Run a call into the ``aedat`` decoder; whatever it raises on a corrupt file (a Rust
    panic is a BaseException) becomes an EventFileError naming ``path``."""
    try:
        return fn()
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as e:            # pyo3 panics are BaseExceptions
        raise EventFileError(f"{path}: corrupt AEDAT4 {what}: {type(e).__name__}: {e}") \
            from None


def _to_events(path: Path, chunks: list, size: SensorSize, zero_time: bool) -> np.ndarray:
    """Concatenate decoded packets into an EVENT_DTYPE array (coordinates checked)."""
    n = sum(c.size for c in chunks)
    out = np.empty(n, dtype=EVENT_DTYPE)
    if n:
        raw = np.concatenate(chunks)
        names = raw.dtype.names
        t = raw["t"]
        if int(t.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{path}: field 't' value {int(t.max())} exceeds int64")
        for f in ("x", "y"):
            lim = size[0] if f == "x" else size[1]
            if int(raw[f].max()) >= lim or int(raw[f].min()) < 0:
                i = int(np.argmax(raw[f]) if int(raw[f].max()) >= lim else np.argmin(raw[f]))
                raise ValueError(f"{path}: field '{f}' value {int(raw[f][i])} at index {i} is "
                                 f"outside the sensor {size}")
        out["x"] = raw["x"]
        out["y"] = raw["y"]
        out["p"] = raw["on" if "on" in names else "p"]
        out["t"] = t.astype(np.int64)
        if zero_time:
            out["t"] -= out["t"][0]
    return out


def _description_xml(width: int, height: int, source: str) -> bytes:
    src = escape(source)
    return (
        '<dv version="2.0">\n'
        '    <node name="outInfo" path="/outInfo/">\n'
        '        <node name="0" path="/outInfo/0/">\n'
        '            <attr key="compression" type="string">NONE</attr>\n'
        '            <attr key="originalModuleName" type="string">neurosim</attr>\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeDescription" type="string">Array of events (polarity ON/OFF).'
        '</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        '            <node name="info" path="/outInfo/0/info/">\n'
        f'                <attr key="sizeX" type="int">{width}</attr>\n'
        f'                <attr key="sizeY" type="int">{height}</attr>\n'
        f'                <attr key="source" type="string">{src}</attr>\n'
        '            </node>\n'
        '        </node>\n'
        '    </node>\n'
        '</dv>\n'
    ).encode("utf-8")


def _ioheader(description: bytes) -> bytes:
    # Flatbuffer, offsets from buffer start: root u32 | "IOHE" | vtable@8 | table@20:
    # soffset, i64 file_data_position@24, i32 compression@32, u32 -> description@36 | string@40.
    vtable = struct.pack("<5H", 10, 20, 12, 4, 16)
    head = struct.pack("<I", 20) + b"IOHE" + vtable + b"\0\0"
    table = struct.pack("<iqiI", 20 - 8, -1, 0, 4)
    string = struct.pack("<I", len(description)) + description + b"\0"
    string += b"\0" * (-len(string) % 4)
    return head + table + string


def _event_packet(ev: np.ndarray) -> bytes:
    # Size-prefixed flatbuffer, byte for byte the layout dv-processing writes: size u32 |
    # root u32 (=16, from byte 4) | "EVTS" | 2 pad | vtable@14 | table@20: soffset (=6),
    # u32 -> vector@28 | vector length | 16-byte structs from byte 32 (8-byte aligned).
    body = np.zeros(ev.size, dtype=_STRUCT_DTYPE)
    body["t"] = ev["t"]
    body["x"] = ev["x"]
    body["y"] = ev["y"]
    body["on"] = ev["p"]
    payload = (struct.pack("<I", 16) + b"EVTS" + b"\0\0" + struct.pack("<3H", 6, 8, 4)
               + struct.pack("<iII", 20 - 14, 4, ev.size) + body.tobytes())
    return struct.pack("<I", len(payload)) + payload


def write_aedat4(path, ev: np.ndarray, sensor_size, *, source: str = "neurosim",
                 packet_events: int = 4096) -> Path:
    """Write ``ev`` (:data:`EVENT_DTYPE`, t in us) as an uncompressed AEDAT4 file with one
    event stream (id 0) of size ``(W, H)``; polarity must be 0/1 (``sensor_size`` P <= 2).
    Events go into packets of at most ``packet_events``. Returns the path."""
    w, h, p = check_sensor_size(sensor_size)
    if p > 2:
        raise ValueError(f"AEDAT4 polarity is ON/OFF; sensor_size P={p} > 2 cannot be written")
    path = Path(path)
    validate_events(ev, (w, h, p), where=str(path))
    if isinstance(packet_events, bool) or not isinstance(packet_events, int) or packet_events < 1:
        raise ValueError(f"packet_events must be a positive int, got {packet_events!r}")
    header = _ioheader(_description_xml(w, h, source))
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(header)))
        f.write(header)
        for s in range(0, ev.size, packet_events):
            packet = _event_packet(ev[s:s + packet_events])
            f.write(struct.pack("<iI", 0, len(packet)))
            f.write(packet)
    return path
