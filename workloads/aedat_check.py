"""Structural check of an AEDAT4 file before the ``aedat`` decoder sees it.

The decoder (Rust, flatbuffers read without bounds checks) panics on corrupt offsets, and a
panic during its cleanup aborts the whole Python process. So :func:`check_aedat4` walks the
container in Python first and rejects, with an :class:`EventFileError` naming the file and the
byte offset, anything the decoder would read out of bounds:

* the ``IOHeader`` flatbuffer (root, vtable, compression, data-table position, the XML
  description: UTF-8, well-formed, one ``outInfo`` node per stream with an integer name and a
  type; event streams with integer ``sizeX`` / ``sizeY``);
* every packet's frame (stream id declared in the header, size inside the file) and, for
  uncompressed packets, the size-prefixed flatbuffer (prefix, root table, vtable, file
  identifier matching the stream's type) and, for event packets, the element vector.

Compressed packets (LZ4 / Zstandard) are checked for their frame only: their content is parsed
by the decoder after decompression (a corrupt payload almost always fails decompression, which
the decoder reports as an error).
"""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

from .events import EventFileError

COMPRESSIONS = (0, 1, 2, 3, 4)         # none, LZ4, LZ4 high, Zstandard, Zstandard high
EVENT_STRUCT_BYTES = 16


class _Buf:
    """Bounds-checked little-endian reads of ``data[lo:hi]`` (offsets relative to ``lo``)."""

    def __init__(self, data: bytes, lo: int, hi: int, where: str):
        self.data, self.lo, self.hi, self.where = data, lo, min(hi, len(data)), where

    def need(self, off: int, n: int, what: str) -> int:
        if off < 0 or n < 0 or self.lo + off + n > self.hi:
            raise EventFileError(f"{self.where}: {what} at byte {self.lo + off} runs past its "
                                 f"buffer (ends at byte {self.hi})")
        return self.lo + off

    def u16(self, off, what):
        return struct.unpack_from("<H", self.data, self.need(off, 2, what))[0]

    def u32(self, off, what):
        return struct.unpack_from("<I", self.data, self.need(off, 4, what))[0]

    def i32(self, off, what):
        return struct.unpack_from("<i", self.data, self.need(off, 4, what))[0]

    def i64(self, off, what):
        return struct.unpack_from("<q", self.data, self.need(off, 8, what))[0]


def _table(b: _Buf, root: int, what: str) -> tuple[int, list[int]]:
    """Check the flatbuffer table at ``root``: returns (root, field offsets; 0 = absent)."""
    vt = root - b.i32(root, f"{what} table")
    vlen, tlen = b.u16(vt, f"{what} vtable"), b.u16(vt + 2, f"{what} vtable")
    if vlen < 4 or vlen % 2:
        raise EventFileError(f"{b.where}: {what} vtable size {vlen} is invalid")
    b.need(vt, vlen, f"{what} vtable")
    b.need(root, max(tlen, 4), f"{what} table")
    fields = [b.u16(vt + 4 + 2 * i, f"{what} vtable") for i in range((vlen - 4) // 2)]
    if any(f and f >= tlen for f in fields):
        raise EventFileError(f"{b.where}: {what} field offset outside its table")
    return root, fields


def _field(fields: list[int], i: int) -> int:
    return fields[i] if i < len(fields) else 0


def _streams(where: str, xml: bytes) -> dict[int, dict]:
    """{stream id: {"type": identifier, "width", "height"}} of the header's XML description."""
    try:
        root = ET.fromstring(xml.decode("utf-8"))
    except (UnicodeDecodeError, ET.ParseError) as e:
        raise EventFileError(f"{where}: header description is not well-formed XML ({e})") \
            from None
    out = {}
    info = next((n for n in root if n.get("name") == "outInfo"), None)
    for node in (info if info is not None else []):
        name = node.get("name", "")
        attrs = {a.get("key"): a.text for a in node.iter("attr")}
        if not name.isdigit() or not attrs.get("typeIdentifier"):
            raise EventFileError(f"{where}: header stream {name!r} needs an integer name and "
                                 "a typeIdentifier")
        s = {"type": attrs["typeIdentifier"]}
        if s["type"] == "EVTS":
            for key in ("sizeX", "sizeY"):
                v = (attrs.get(key) or "").strip()
                if not v.isdigit() or not 0 < int(v) <= 32768:
                    raise EventFileError(f"{where}: event stream {name} has no valid {key} "
                                         f"({v!r})")
        out[int(name)] = s
    if not out:
        raise EventFileError(f"{where}: header declares no stream")
    return out


def _header(where: str, data: bytes, start: int) -> tuple[int, int, int, dict]:
    """(compression, data-table position, end of header, streams)."""
    n = _Buf(data, 0, len(data), where).u32(start, "header length")
    b = _Buf(data, start + 4, start + 4 + n, where)
    b.need(0, n, "header")
    if b.data[b.lo + 4:b.lo + 8] != b"IOHE":
        raise EventFileError(f"{where}: header is not an IOHeader (identifier "
                             f"{b.data[b.lo + 4:b.lo + 8]!r})")
    root, fields = _table(b, b.u32(0, "header root"), "header")
    comp = b.i32(root + _field(fields, 0), "compression") if _field(fields, 0) else 0
    table = b.i64(root + _field(fields, 1), "data table position") if _field(fields, 1) else -1
    if comp not in COMPRESSIONS:
        raise EventFileError(f"{where}: unknown compression {comp}")
    if not _field(fields, 2):
        raise EventFileError(f"{where}: header has no stream description")
    s = root + _field(fields, 2)
    s += b.u32(s, "description offset")
    length = b.u32(s, "description")
    b.need(s + 4, length + 1, "description")
    xml = data[b.lo + s + 4:b.lo + s + 4 + length]
    end = start + 4 + n
    if table != -1 and not end <= table <= len(data):
        raise EventFileError(f"{where}: data table position {table} outside the file")
    return comp, table, end, _streams(where, xml)


def _packet(where: str, data: bytes, lo: int, size: int, kind: str) -> None:
    """An uncompressed packet: size-prefixed flatbuffer with ``kind``'s identifier."""
    b = _Buf(data, lo, lo + size, where)
    prefix = b.u32(0, "packet size prefix")
    b.need(4, prefix, "packet")
    if size < 12 or data[lo + 8:lo + 12] != kind.encode("ascii", "replace"):
        raise EventFileError(f"{where}: packet at byte {lo} is not a {kind} packet")
    inner = _Buf(data, lo + 4, lo + 4 + prefix, where)
    root, fields = _table(inner, inner.u32(0, "packet root"), "packet")
    if kind != "EVTS" or not _field(fields, 0):
        return
    v = root + _field(fields, 0)
    v += inner.u32(v, "event vector offset")
    count = inner.u32(v, "event vector")
    inner.need(v + 4, count * EVENT_STRUCT_BYTES, "event vector")


def check_aedat4(path, data: bytes, magic: bytes) -> None:
    """Raise :class:`EventFileError` unless ``data`` (the file's bytes) is a structurally sound
    AEDAT4 container the decoder can read without going out of bounds."""
    where = str(path)
    comp, table, pos, streams = _header(where, data, len(magic))
    end = table if table != -1 else len(data)
    while pos < end:
        if pos + 8 > end:
            raise EventFileError(f"{where}: truncated packet header at byte {pos}")
        sid, size = struct.unpack_from("<iI", data, pos)
        if sid not in streams:
            raise EventFileError(f"{where}: packet at byte {pos} has undeclared stream id {sid}")
        if pos + 8 + size > end:
            raise EventFileError(f"{where}: packet at byte {pos} ({size} bytes) runs past the "
                                 "end of the data")
        if comp == 0:
            _packet(where, data, pos + 8, size, streams[sid]["type"])
        pos += 8 + size
