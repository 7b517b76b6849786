"""NIR import: ``from_nir`` (``nir.NIRGraph`` -> neurosim ``Graph``) and ``read_nir`` (from HDF5).

Files written by ``to_nir`` are rebuilt exactly from their ``neurosim_*`` metadata
(``_from_metadata``, checked with ``nir_difference`` against a re-export); other graphs are
imported from their NIR parameters by ``builder._Importer``, with graded-input steps calibrated
by ``calibrate`` when an example input is given."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nir
import numpy as np

from neurosim.frontends.nir.builder import _Importer
from neurosim.frontends.nir.calibrate import calibrated_steps
from neurosim.frontends.nir.common import DEFAULT_DT, FORMAT, META, NIRImportError, require_nir
from neurosim.frontends.nir.export import to_nir
from neurosim.ir import graph as G


def _fields(node: nir.NIRNode) -> dict:
    out = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)
           if f.name not in ("input_type", "output_type", "metadata")}
    if isinstance(node, (nir.Input, nir.Flatten)):
        out["input_type"] = node.input_type.get("input")
    if isinstance(node, nir.Output):
        out["output_type"] = node.output_type.get("output")
    return out


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return (a is None and b is None) or (isinstance(a, str) and a == b)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def nir_difference(a: nir.NIRGraph, b: nir.NIRGraph) -> str | None:
    """The first difference between two NIR graphs (nodes, parameters, edges), or None.
    Metadata is ignored; parameters must be equal value for value."""
    if set(a.nodes) != set(b.nodes):
        return f"node keys differ: {sorted(set(a.nodes) ^ set(b.nodes))}"
    for k in a.nodes:
        na, nb = a.nodes[k], b.nodes[k]
        if type(na) is not type(nb):
            return f"node {k!r} is {type(na).__name__} vs {type(nb).__name__}"
        fa, fb = _fields(na), _fields(nb)
        for f in fa:
            if f not in fb or not _same(fa[f], fb[f]):
                return f"node {k!r} ({type(na).__name__}) field {f!r} differs"
    ea = {tuple(e) for e in a.edges}
    eb = {tuple(e) for e in b.edges}
    if ea != eb:
        return f"edges differ: {sorted(ea ^ eb)}"
    return None


def _from_metadata(ng: nir.NIRGraph, T: int, kind: str | None, dt: float | None) -> G.Graph:
    md = ng.metadata
    file_dt = float(md[f"{META}dt_s"])
    if dt is not None and dt != file_dt:
        raise NIRImportError(f"the file was written by neurosim with dt = {file_dt} s per tick, "
                             f"got dt = {dt}")
    info = json.loads(md[f"{META}graph"])
    g = G.Graph(info["meta"])
    for name in info["order"]:
        node = ng.nodes.get(name)
        if node is None or f"{META}type" not in (node.metadata or {}):
            raise NIRImportError(f"node {name!r} or its neurosim metadata is missing from the "
                                 "NIR graph; pass use_metadata=False to import the NIR "
                                 "parameters alone")
        nmd = node.metadata
        typ = G.NODE_TYPES.get(str(nmd[f"{META}type"]))
        if typ is None:
            raise NIRImportError(f"NIR node {name!r}: unknown neurosim type "
                                 f"{nmd[f'{META}type']!r}")
        kw = json.loads(nmd[f"{META}params"])
        kw.update({k[len(META):]: np.asarray(v) for k, v in nmd.items()
                   if k.startswith(META) and k not in (f"{META}type", f"{META}params")})
        if typ is G.Input:
            kw["T"] = T
            kw["kind"] = kind or kw["kind"]
        try:
            g.add(typ(**kw), info["inputs"][name])
        except (TypeError, G.GraphError) as e:
            raise NIRImportError(f"NIR node {name!r}: neurosim metadata is invalid: {e}") from None
    g.validate()
    diff = nir_difference(to_nir(g, file_dt), ng)
    if diff is not None:
        raise NIRImportError(f"neurosim metadata disagrees with the NIR parameters ({diff}); "
                             "was the file edited after export? pass use_metadata=False to "
                             "import the NIR parameters alone")
    return g


def from_nir(nir_graph: nir.NIRGraph, T: int, input_kind: str | None = None, *,
             dt: float | None = None, weight_bits: int = 8, in_bits: int = 16,
             in_scale: float | None = None, example_input=None, state_bits: int = 16,
             use_metadata: bool = True) -> G.Graph:
    """Import a NIR graph as a neurosim ``Graph`` that runs for ``T`` ticks per sample.

    input_kind: "graded" (real values, quantized by the first projection) or "spike" (event
    counts); default: the file's (neurosim export) or "graded". dt: seconds per tick (default:
    the file's, else 1e-3; snntorch files need 1e-4). weight_bits: per-channel weight
    quantization. in_bits / in_scale / example_input: graded inputs of projections are
    quantized to ``in_bits`` with step ``in_scale``, or with a step calibrated per projection on
    ``example_input`` ([B, *in] or [T, B, *in]; 2 x max |x| / (2^(in_bits-1) - 1)), else
    2^-(in_bits // 2). state_bits: membrane register width (v_lsb = 2^-(state_bits // 2)).
    Files written by ``to_nir`` are rebuilt exactly from their metadata unless
    ``use_metadata=False``; then the other options apply to them too.
    """
    require_nir()
    if not isinstance(nir_graph, nir.NIRGraph):
        raise TypeError(f"expected a nir.NIRGraph, got {type(nir_graph).__name__}")
    if int(T) != T or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T}")
    T = int(T)
    if input_kind not in (None, *G.EDGE_KINDS):
        raise ValueError(f"input_kind must be one of {G.EDGE_KINDS}, got {input_kind!r}")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    if not 2 <= int(weight_bits) <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {weight_bits}")
    if in_scale is not None and not in_scale > 0:
        raise ValueError(f"in_scale must be > 0, got {in_scale}")
    md = nir_graph.metadata if isinstance(nir_graph.metadata, dict) else {}
    fmt = md.get(f"{META}format")
    if use_metadata and fmt is not None:
        if fmt != FORMAT:
            raise NIRImportError(f"neurosim metadata format {fmt!r} is not {FORMAT!r}")
        return _from_metadata(nir_graph, T, input_kind, dt)
    if dt is None:
        dt = float(md.get(f"{META}dt_s", DEFAULT_DT))
    kind = input_kind or "graded"
    default = in_scale if in_scale is not None else 2.0 ** -(in_bits // 2)

    def build(steps, bits, step):
        return _Importer(nir_graph, T, kind, dt, int(weight_bits), bits, state_bits,
                         steps, step)

    imp = build({}, in_bits, default)
    graph = imp.run()
    if example_input is None or in_scale is not None or not imp.graded_src:
        return graph
    steps = calibrated_steps(build, in_bits, example_input)
    graph = build(steps, in_bits, default).run()
    graph.meta["in_steps"] = steps
    return graph


def read_nir(path: str | Path, T: int, **kw) -> G.Graph:
    """``nir.read`` the HDF5 file at ``path`` and ``from_nir`` it (keywords as there)."""
    require_nir()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIR file not found: {path}")
    try:   # neurosim checks every shape itself, naming the node (NIR's check cannot read
        ng = nir.read(path, type_check=False)   # grouped Conv2d, see _dense)
    except Exception as e:  # h5py and nir raise many types; report them uniformly
        raise NIRImportError(f"{path}: cannot read NIR file: {type(e).__name__}: {e}") from None
    return from_nir(ng, T, **kw)
