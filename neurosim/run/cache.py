"""Cached set-up: lowered graphs and chip mappings kept on disk between runs.

Lowering a checkpoint and mapping its graph onto a chip cost seconds to tens of seconds for
large models; the result depends only on the inputs named in the key, so it is kept:

* a lowered graph under ``lower/<key>/``, key = SHA-256 of the checkpoint file's bytes, the
  lowering options (weight bits, RepConv form, SSC, calibration workload and sample count, ...)
  and the source code of the lowering (``neurosim.frontends``, ``neurosim.ir``, ``models``);
* a mapping under ``map/<key>/``, key = the graph's content digest (every node's parameters
  and arrays), the chip (its specification and the bytes of its TOML files), the mapping
  options (strict, placement) and the source of ``chips.mapping`` / ``chips.topology`` /
  ``chips.spec``.

Any change of an input gives a new key, so a stale entry is never found. An entry is a
directory written under a temporary name and renamed into place (a reader never sees half of
it) with ``manifest.json`` holding the size and CRC-32 of every file; on reading, a missing or
truncated file, a wrong checksum or an unreadable payload makes the entry *corrupt*: it is
deleted and rebuilt, never trusted. A graph is stored as its JSON document plus one aligned
binary blob of its arrays, so a large model's entry loads in one read. The cache lives in
``$NEUROSIM_CACHE_DIR/setup`` (default ``~/.cache/neurosim/setup``, see
``chips.engines.paths.cache_dir``) unless a directory is given.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chips.engines.paths import cache_dir
from chips.mapping import Layer, Mapping, Part, Violation, map_graph
from chips.spec import ChipSpec, load_chip
from neurosim.ir import graph as G

FORMAT = "neurosim-setup-cache/1"
_ROOT = Path(__file__).resolve().parents[2]
LOWER_CODE = ("neurosim/frontends", "neurosim/ir", "models")
MAP_CODE = ("chips/mapping", "chips/topology.py", "chips/spec.py", "neurosim/ir")


class CorruptEntryError(ValueError):
    """A cache entry failed its checks (the message says which file and why)."""


# ----------------------------------------------------------------------------- digests
def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (read through a memory map: no large allocation)."""
    return hashlib.sha256(_read(Path(path))).hexdigest()


def _read(p: Path) -> np.ndarray:
    """A file's bytes as a read-only uint8 array mapped from the page cache (fresh large
    allocations are slow; an empty file gives an empty array)."""
    if p.stat().st_size == 0:
        return np.zeros(0, np.uint8)
    return np.memmap(p, np.uint8, mode="r")


def crc32(data) -> str:
    """CRC-32 of a buffer (detects truncation and accidental corruption; ~5x faster than
    SHA-256 on the hundreds of MB of a large model's weights)."""
    return f"{zlib.crc32(data):08x}"


@functools.lru_cache(maxsize=None)
def code_digest(paths: tuple[str, ...]) -> str:
    """SHA-256 of the Python sources under ``paths`` (relative to the repository root), so an
    edit of the code that produces an entry invalidates it. Computed once per process: the
    code that runs is the code imported when the process started."""
    h = hashlib.sha256()
    for rel in paths:
        p = _ROOT / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(_ROOT)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def key_of(*parts) -> str:
    """SHA-256 of a JSON rendering of ``parts`` (sorted keys; non-JSON values as strings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# arrays the mapping never reads (the float reference weights: 4 bytes per weight)
NOT_MAPPED = ("weight_float",)


def graph_digest(graph: G.Graph, skip: tuple = NOT_MAPPED) -> str:
    """Content digest of a graph: meta, every node's type, parameters and arrays (but
    ``skip``), the edges with their ports."""
    h = hashlib.sha256(json.dumps(graph.meta, sort_keys=True, default=str).encode())
    for n in graph.order():
        op = graph.op(n)
        h.update(json.dumps([type(op).__name__, op.params(), graph.inputs(n)], sort_keys=True,
                            default=str).encode())
        for k, a in sorted(op.arrays().items()):
            if k in skip:
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def chip_digest(chip: ChipSpec) -> str:
    """Digest of a chip: its specification and the bytes of the TOML files it was read from
    (not where they lie: a copy elsewhere is the same chip)."""
    spec = {k: v for k, v in chip.to_dict().items() if k != "files"}
    return key_of(spec, [file_digest(f) for f in chip.files if Path(f).is_file()])


# ----------------------------------------------------------------------------- entries
@dataclass
class Lookup:
    """How an entry was obtained: "hit", "miss" (built and stored) or "rebuilt" (a corrupt
    entry was deleted and rebuilt; ``note`` says why)."""

    status: str
    key: str
    note: str = ""


class SetupCache:
    """Lowered graphs and mappings on disk (module doc). ``root``: the cache directory."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "setup"

    def entry(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    # -------------------------------------------------------------------- storage
    def _write(self, kind: str, key: str, write) -> None:
        """Run ``write(tmp_dir)``, add the manifest, rename the directory into place."""
        final = self.entry(kind, key)
        tmp = final.parent / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        try:
            write(tmp)
            files = {p.name: {"crc32": crc32(p.read_bytes()), "bytes": p.stat().st_size}
                     for p in sorted(tmp.iterdir())}
            (tmp / "manifest.json").write_text(json.dumps(
                {"format": FORMAT, "kind": kind, "key": key, "files": files}, indent=1))
            try:
                os.replace(tmp, final)
            except OSError:                # another process stored the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _verify(self, kind: str, key: str) -> tuple[Path, dict]:
        """The entry's directory and its files' contents after checking the manifest, the
        sizes and the checksums; raises FileNotFoundError when absent, CorruptEntryError
        when anything is off."""
        d = self.entry(kind, key)
        mpath = d / "manifest.json"
        if not d.is_dir():
            raise FileNotFoundError(d)
        try:
            man = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptEntryError(f"{mpath}: unreadable manifest ({e})") from None
        if not isinstance(man, dict) or man.get("format") != FORMAT or man.get("key") != key \
                or not isinstance(man.get("files"), dict) or not man["files"]:
            raise CorruptEntryError(f"{mpath}: not a {FORMAT} manifest of key {key}")
        data = {}
        for name, info in man["files"].items():
            p = d / name
            if not p.is_file():
                raise CorruptEntryError(f"{p}: missing")
            buf = _read(p)
            if not isinstance(info, dict) or buf.size != info.get("bytes"):
                raise CorruptEntryError(f"{p}: {buf.size} bytes, the manifest says "
                                        f"{info.get('bytes') if isinstance(info, dict) else '?'}")
            if crc32(buf) != info.get("crc32"):
                raise CorruptEntryError(f"{p}: checksum mismatch")
            data[name] = buf
        return d, data

    def _get(self, kind: str, key: str, build, save, load):
        """(object, Lookup): the stored object if its entry is sound, else ``build()``d and
        stored (a corrupt entry is deleted first)."""
        note = ""
        try:
            d, data = self._verify(kind, key)
            return load(d, data), Lookup("hit", key)
        except FileNotFoundError:
            status = "miss"
        except Exception as e:            # any failure to read back: never trust the entry
            note = f"{type(e).__name__}: {e}"
            status = "rebuilt"
            shutil.rmtree(self.entry(kind, key), ignore_errors=True)
        obj = build()
        self._write(kind, key, lambda tmp: save(obj, tmp))
        return obj, Lookup(status, key, note)

    # -------------------------------------------------------------------- lowering
    def lowered(self, checkpoint: str | Path, options: dict, build):
        """The graph lowered from ``checkpoint`` with ``options`` (JSON-able: everything the
        lowering depends on besides the checkpoint), built by ``build()`` on a miss.
        Returns (Graph, Lookup)."""
        key = key_of("lower", file_digest(checkpoint), options, code_digest(LOWER_CODE))
        return self._get("lower", key, build, save_graph, lambda d, data: load_graph(data))

    # -------------------------------------------------------------------- mapping
    def mapped(self, graph: G.Graph, chip, *, strict: bool = True, placement: str = "auto",
               graph_key: str | None = None, build=None):
        """The mapping of ``graph`` onto ``chip`` (``map_graph(graph, chip, strict=...,
        placement=...)`` on a miss, or ``build()``). A strict mapping that does not fit raises
        ``MappingError`` and is not stored. ``graph_key``: the ``Lookup.key`` of the
        :meth:`lowered` entry the graph came from, when it is unchanged since (saves hashing
        its content, :func:`graph_digest`). Returns (Mapping, Lookup)."""
        chip = load_chip(chip)
        ident = f"lowered:{graph_key}" if graph_key else graph_digest(graph)
        key = key_of("map", ident, chip_digest(chip), bool(strict), placement,
                     code_digest(MAP_CODE))
        build = build or (lambda: map_graph(graph, chip, strict=strict, placement=placement))
        return self._get("map", key, build, save_mapping,
                         lambda d, data: load_mapping(d, data, graph, chip))


# ----------------------------------------------------------------------------- graph files
ALIGN = 64
SHARED_BYTES = 1 << 20


def save_graph(graph: G.Graph, d: Path) -> None:
    """``graph.json`` (Graph.save's document plus the place of every array in the blob) and
    ``arrays.bin`` (the arrays back to back, 64-byte aligned, read in one call)."""
    nodes, index, offset = [], {}, 0
    with open(d / "arrays.bin", "wb") as f:
        for n in graph.g.nodes:
            op = graph.op(n)
            arrays = op.arrays()
            nodes.append({"type": type(op).__name__, "params": op.params(),
                          "arrays": sorted(arrays)})
            for k, a in sorted(arrays.items()):
                a = np.ascontiguousarray(a)
                pad = -offset % ALIGN
                f.write(b"\0" * pad)
                offset += pad
                index[f"{n}/{k}"] = [a.dtype.str, list(a.shape), offset]
                f.write(memoryview(a).cast("B"))
                offset += a.nbytes
    edges = [{"src": u, "dst": v, "port": e["port"], "kind": e["kind"]}
             for u, v, e in graph.g.edges(data=True)]
    (d / "graph.json").write_text(json.dumps({"format": G.FORMAT, "meta": graph.meta,
                                              "nodes": nodes, "edges": edges,
                                              "blob": index}, default=_plain))


def load_graph(data: dict) -> G.Graph:
    """Inverse of :func:`save_graph` from the verified file contents. The entry is
    byte-identical (checksums) to what a validated graph of the same code wrote (the key
    holds the code digest), so the ops are rebuilt from their fields without re-running the
    per-weight checks of their constructors (seconds for a large model); the graph's
    structure is validated again. Arrays of 1 MiB or more are read-only views of the mapped
    blob (the engines copy weights into their own layouts)."""
    doc = json.loads(data["graph.json"].tobytes())
    if doc.get("format") != G.FORMAT:
        raise CorruptEntryError(f"graph format {doc.get('format')!r}, not {G.FORMAT!r}")
    blob, index = data["arrays.bin"], doc["blob"]
    g = G.Graph(doc["meta"])
    for nd in doc["nodes"]:
        cls = G.NODE_TYPES[nd["type"]]
        name = nd["params"]["name"]
        fields = {}
        for f in dataclasses.fields(cls):
            if f.name in nd["arrays"]:
                dt, shape, off = index[f"{name}/{f.name}"]
                a = np.frombuffer(blob, np.dtype(dt), int(np.prod(shape)), off).reshape(shape)
                # large arrays stay read-only views of the mapped file; small ones are copied
                # (writable, as the constructors leave them)
                fields[f.name] = a if a.nbytes >= SHARED_BYTES else a.copy()
            else:
                v = nd["params"][f.name]
                fields[f.name] = tuple(v) if f.type == "tuple" and v is not None else v
        op = cls.__new__(cls)
        op.__dict__.update(fields)
        g.g.add_node(name, op=op)
    for e in doc["edges"]:
        g.g.add_edge(e["src"], e["dst"], port=e["port"], kind=e["kind"])
    return g.validate()


# ----------------------------------------------------------------------------- mapping files
def save_mapping(m: Mapping, d: Path) -> None:
    """``mapping.json``: the layers (parts as [core, c0, c1], resource needs per part and per
    node), the layer of each node, the violations and the placement."""
    doc = {"chip": m.chip.name, "placement": m.placement, "layer_of": m.layer_of,
           "layers": [{"name": L.name, "nodes": L.nodes, "channels": L.channels,
                       "fan_in": L.fan_in, "parts": [list(p) for p in L.parts],
                       "needs": L.needs, "by_node": L.by_node} for L in m.layers.values()],
           "violations": [v.to_dict() for v in m.violations]}
    (d / "mapping.json").write_text(json.dumps(doc, default=_plain))


def _plain(v):
    """JSON for numpy scalars in violations."""
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON: {type(v).__name__}")


def load_mapping(d: Path, data: dict, graph: G.Graph, chip: ChipSpec) -> Mapping:
    """Inverse of :func:`save_mapping` from the verified file contents; raises on any
    mismatch with ``graph`` / ``chip``."""
    doc = json.loads(data["mapping.json"].tobytes())
    if doc["chip"] != chip.name:
        raise CorruptEntryError(f"{d}: mapping of chip {doc['chip']!r}, not {chip.name!r}")
    layers = {Ld["name"]: Layer(Ld["name"], list(Ld["nodes"]), int(Ld["channels"]),
                                int(Ld["fan_in"]), [Part(*p) for p in Ld["parts"]],
                                Ld["needs"], Ld["by_node"]) for Ld in doc["layers"]}
    layer_of = doc["layer_of"]
    missing = [n for n in graph.order() if n != graph.input_node() and n not in layer_of]
    if missing:
        raise CorruptEntryError(f"{d}: no layer for nodes {missing[:3]}")
    violations = [Violation(**v) for v in doc["violations"]]
    return Mapping(graph, chip, layers, layer_of, violations, doc["placement"])
