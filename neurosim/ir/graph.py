"""The event-level graph IR: the contract between lowering, the interpreter and the chip engines.

A ``Graph`` is a DAG of operations (``neurosim.ir.ops``) on a networkx ``DiGraph``; edges carry
``kind`` ("spike" or "graded") and ``port`` (the consumer's input slot). The numeric semantics
every executor implements are in ``neurosim.ir.ops`` (module doc) and ``neurosim.ir.semantics``.
"""
from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from neurosim.ir.checks import check_node
from neurosim.ir.ops import (  # noqa: F401  (re-exported: ``G.Conv`` etc. with ``G`` this module)
    EDGE_KINDS, NEURON_MODELS, NEURON_TYPES, NODE_TYPES, WEIGHTED_TYPES, Add, Conv, GraphError,
    Input, Linear, Mask, Neurons, Node, Pool, Readout, SpikeMatmul, TokenMean, TokenSum,
    AddConst, ECMT_TYPES, ExpectationEC, MatMulEC, MTSpikes)


# ----------------------------------------------------------------------------- graph
class Graph:
    """A DAG of operations. ``g.nodes[name]`` -> op; edges carry kind and port."""

    def __init__(self, meta: dict | None = None):
        self.g = nx.DiGraph()
        self.meta: dict = dict(meta or {})

    # construction -----------------------------------------------------------------------
    def add(self, op: Node, inputs: list[str] = ()) -> str:
        if op.name in self.g:
            raise GraphError(f"node {op.name!r} already in the graph")
        lo, hi = op.n_inputs
        if not lo <= len(inputs) <= hi:
            op.fail(f"takes {lo}..{hi} inputs, got {len(inputs)}")
        dup = sorted({u for u in inputs if list(inputs).count(u) > 1})
        if dup:
            op.fail(f"input {dup[0]!r} is used on more than one port; an edge joins two nodes "
                    "once (route it through a copy, e.g. a 1x1 identity pool)")
        self.g.add_node(op.name, op=op)
        for port, src in enumerate(inputs):
            if src not in self.g:
                op.fail(f"input {src!r} is not in the graph")
            self.g.add_edge(src, op.name, port=port, kind=self.out_kind(src))
        return op.name

    def replace(self, op: Node) -> None:
        """Put ``op`` in place of the node of the same name, keeping its edges (e.g. folded
        thresholds). The output kind must not change: consumers' edges are typed by it."""
        old = self.op(op.name)
        if type(op) is not type(old) or op.shape != old.shape:
            op.fail(f"can only replace a {type(old).__name__} of shape {old.shape} by one of "
                    f"the same type and shape")
        self.g.nodes[op.name]["op"] = op

    def out_kind(self, name: str) -> str:
        op = self.op(name)
        if isinstance(op, Input):
            return op.kind
        kind = op.out_kind
        if kind is not None:
            return kind
        kinds = {self.g.edges[u, name]["kind"] for u in self.g.predecessors(name)}
        return "spike" if kinds == {"spike"} else "graded"

    # access -------------------------------------------------------------------------------
    @property
    def nodes(self) -> dict[str, Node]:
        return {n: d["op"] for n, d in self.g.nodes(data=True)}

    def op(self, name: str) -> Node:
        try:
            return self.g.nodes[name]["op"]
        except KeyError:
            raise GraphError(f"no node named {name!r}") from None

    def inputs(self, name: str) -> list[str]:
        """Predecessors of ``name`` in port order."""
        preds = sorted(self.g.predecessors(name), key=lambda u: self.g.edges[u, name]["port"])
        return preds

    def edges(self) -> list[tuple[str, str]]:
        """All edges (producer, consumer), in insertion order."""
        return list(self.g.edges)

    def edge_kinds(self) -> list[str]:
        return [d["kind"] for *_, d in self.g.edges(data=True)]

    def edge(self, u: str, v: str) -> dict:
        return self.g.edges[u, v]

    def order(self) -> list[str]:
        """Deterministic topological order (ties broken by insertion order)."""
        index = {n: i for i, n in enumerate(self.g.nodes)}
        return list(nx.lexicographical_topological_sort(self.g, key=lambda n: index[n]))

    def input_node(self) -> str:
        ins = [n for n, op in self.nodes.items() if isinstance(op, Input)]
        if len(ins) != 1:
            raise GraphError(f"graph must have exactly one Input node, has {ins}")
        return ins[0]

    def output_node(self) -> str:
        outs = [n for n, op in self.nodes.items() if isinstance(op, Readout)]
        if len(outs) != 1:
            raise GraphError(f"graph must have exactly one Readout node, has {outs}")
        return outs[0]

    @property
    def T(self) -> int:  # noqa: N802  (the papers' name for time steps)
        return self.op(self.input_node()).T

    def consumers(self, name: str) -> list[str]:
        return list(self.g.successors(name))

    # checks and pipeline ------------------------------------------------------------------
    def validate(self) -> "Graph":
        """Check acyclicity, port completeness, shapes and edge kinds; name the node at fault."""
        if not nx.is_directed_acyclic_graph(self.g):
            raise GraphError(f"graph has a cycle: {nx.find_cycle(self.g)}")
        for n in self.order():
            op = self.op(n)
            ins = self.inputs(n)
            lo, hi = op.n_inputs
            if not lo <= len(ins) <= hi:
                op.fail(f"takes {lo}..{hi} inputs, has {len(ins)}")
            ports = [self.g.edges[u, n]["port"] for u in ins]
            if ports != list(range(len(ins))):
                op.fail(f"input ports must be 0..{len(ins) - 1}, got {ports}")
            for u in ins:
                if self.g.edges[u, n]["kind"] != self.out_kind(u):
                    op.fail(f"edge from {u!r} is marked {self.g.edges[u, n]['kind']} but carries "
                            f"{self.out_kind(u)}")
            check_node(op, [self.op(u) for u in ins], [self.out_kind(u) for u in ins])
        self.input_node()
        out = self.output_node()
        dead = [n for n in self.g.nodes if n != out and self.g.out_degree(n) == 0]
        if dead:
            raise GraphError(f"nodes {dead} feed nothing: every node must lead to the readout "
                             f"{out!r}")
        return self

    def pipeline_stages(self) -> dict[str, int]:
        """Stage of each node on a pipelined chip: spike hops from the input (a population's
        output crosses one tick). A node whose inputs come from different stages holds the
        earlier ones until the latest arrives (residual paths wait for the long branch)."""
        st: dict[str, int] = {}
        for n in self.order():
            st[n] = max((st[p] + isinstance(self.op(p), Neurons) for p in self.inputs(n)),
                        default=0)
        return st

    # serialisation --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``graph.json`` (structure and parameters) and ``arrays.npz`` to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        nodes, arrays = [], {}
        for n in self.g.nodes:
            op = self.op(n)
            nodes.append({"type": type(op).__name__, "params": op.params(),
                          "arrays": sorted(op.arrays())})
            for k, a in op.arrays().items():
                arrays[f"{n}/{k}"] = a
        edges = [{"src": u, "dst": v, **{k: d[k] for k in ("port", "kind")}}
                 for u, v, d in self.g.edges(data=True)]
        doc = {"format": FORMAT, "meta": self.meta, "nodes": nodes, "edges": edges}
        (directory / "graph.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
        np.savez(directory / "arrays.npz", **arrays)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Graph":
        """Read a graph written by ``save``; errors name the file and the node or key."""
        return load_graph(directory)

    def equals(self, other: "Graph") -> bool:
        if list(self.g.nodes) != list(other.g.nodes) or self.meta != other.meta:
            return False
        if any(not self.op(n).equals(other.op(n)) for n in self.g.nodes):
            return False
        ea = sorted((u, v, tuple(sorted(d.items()))) for u, v, d in self.g.edges(data=True))
        eb = sorted((u, v, tuple(sorted(d.items()))) for u, v, d in other.g.edges(data=True))
        return ea == eb

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def __repr__(self) -> str:
        return f"Graph({len(self)} nodes, T={self.T if self.g else '?'})"


# ----------------------------------------------------------------------------- files
FORMAT = "neurosim-graph/2"
OLD_FORMATS = ("neurosim-graph/1",)   # same, plus edge "delay" values no engine executed


def _doc_error(path: Path, where: str, msg: str) -> GraphError:
    return GraphError(f"{path}: {where}: {msg}")


def _need(path: Path, obj, key: str, typ, where: str):
    if not isinstance(obj, dict):
        raise _doc_error(path, where, f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise _doc_error(path, where, f"missing key {key!r}")
    v = obj[key]
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise _doc_error(path, f"{where}.{key}", f"expected {name}, got {type(v).__name__}")
    return v


# Plausibility bounds of a graph file (beyond them a file is an error unless its meta says
# "allow_extreme": true): the zoo uses T <= 16 and maps of at most ~2.4M values per tick.
MAX_T = 1024
MAX_NODE_SIZE = 2 ** 24
_META_TYPES = {"model": str, "family": (str, type(None)), "config": dict, "weight_bits": int,
               "in_bits": int, "state_bits": int, "repconv": str, "ssc": bool, "fx_map": dict,
               "folded": list, "source": str, "dt_s": (int, float), "allow_extreme": bool}


def _check_meta(path: Path, meta: dict) -> None:
    """Types of the meta keys neurosim reads (other keys are the user's)."""
    for k, typ in _META_TYPES.items():
        if k in meta and (not isinstance(meta[k], typ) or isinstance(meta[k], bool)
                          and typ is not bool):
            raise _doc_error(path, f"meta.{k}", f"unexpected {type(meta[k]).__name__} "
                             f"{meta[k]!r}")
    if "weight_bits" in meta and not 2 <= meta["weight_bits"] <= 32:
        raise _doc_error(path, "meta.weight_bits", f"must be in 2..32, got {meta['weight_bits']}")
    fx = meta.get("fx_map", {})
    if not all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in fx.values()):
        raise _doc_error(path, "meta.fx_map", "must map names to lists of node names")


def _check_plausible(path: Path, meta: dict, ops: dict[str, Node]) -> None:
    """Cross-checks of the nodes against ``meta`` and the plausibility bounds ``MAX_T`` and
    ``MAX_NODE_SIZE`` (lifted by ``"allow_extreme": true`` in meta)."""
    allow = meta.get("allow_extreme", False)
    hint = 'set "allow_extreme": true in the graph\'s meta to accept it'
    cfg_T = meta.get("config", {}).get("T")
    for name, op in ops.items():
        where = f"node {name!r}"
        if isinstance(op, WEIGHTED_TYPES) and "weight_bits" in meta \
                and op.weight_bits != meta["weight_bits"]:
            raise _doc_error(path, where, f"weight_bits {op.weight_bits} contradicts "
                             f"meta.weight_bits {meta['weight_bits']}")
        if isinstance(op, Input):
            if isinstance(cfg_T, int) and not isinstance(cfg_T, bool) and op.T != cfg_T:
                raise _doc_error(path, where, f"T = {op.T} contradicts meta.config.T = {cfg_T} "
                                 "(the model the graph was lowered from)")
            if op.T > MAX_T and not allow:
                raise _doc_error(path, where, f"T = {op.T} time steps is outside the plausible "
                                 f"range 1..{MAX_T}; {hint}")
        if op.size > MAX_NODE_SIZE and not allow:
            raise _doc_error(path, where, f"shape {op.shape} holds {op.size:,} values per tick, "
                             f"more than the plausible {MAX_NODE_SIZE:,}; {hint}")


def load_graph(directory: str | Path) -> Graph:
    """Read a graph written by ``Graph.save`` / ``neurosim lower --out``. Every node goes
    through ``Graph.add`` (duplicate names, unknown inputs and arity are errors) and the whole
    graph through ``validate``; errors name the file and the node or key at fault."""
    directory = Path(directory)
    jpath, apath = directory / "graph.json", directory / "arrays.npz"
    for p in (jpath, apath):
        if not p.is_file():
            raise FileNotFoundError(f"graph file missing: {p}")
    doc = _read_doc(jpath)
    ops = _read_ops(jpath, apath, doc["nodes"])
    _check_plausible(jpath, doc["meta"], ops)
    inputs = _read_edges(jpath, doc["edges"], ops, doc["format"])
    g = _assemble(jpath, doc["meta"], ops, inputs)
    for i, e in enumerate(doc["edges"]):
        if e.get("kind") != g.edge(e["src"], e["dst"])["kind"]:
            raise _doc_error(jpath, f"edges[{i}]", f"kind {e.get('kind')!r} but {e['src']!r} "
                             f"carries {g.out_kind(e['src'])!r}")
    try:
        return g.validate()
    except GraphError as e:
        raise GraphError(f"{jpath}: {e}") from None


def _read_doc(jpath: Path) -> dict:
    """graph.json's top level: format, meta, nodes, edges (checked for type)."""
    try:
        doc = json.loads(jpath.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GraphError(f"{jpath}: not valid JSON in UTF-8 ({e})") from None
    except RecursionError:
        raise GraphError(f"{jpath}: JSON nested too deeply") from None
    fmt = _need(jpath, doc, "format", str, "document")
    if fmt != FORMAT and fmt not in OLD_FORMATS:
        raise GraphError(f"{jpath}: 'format' is {fmt!r}, expected {FORMAT!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise _doc_error(jpath, "meta", f"expected an object, got {type(meta).__name__}")
    _check_meta(jpath, meta)
    return {"format": fmt, "meta": meta, "nodes": _need(jpath, doc, "nodes", list, "document"),
            "edges": _need(jpath, doc, "edges", list, "document")}


def _read_ops(jpath: Path, apath: Path, nodes: list) -> dict[str, Node]:
    """Each node entry -> its op (arrays from ``apath``), in file order; names are unique."""
    try:
        arrs = np.load(apath, allow_pickle=False)
    except Exception as e:            # zip / npy format errors come in many types
        raise GraphError(f"{apath}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    ops: dict[str, Node] = {}
    with arrs:
        files = set(arrs.files)
        for i, nd in enumerate(nodes):
            params = _need(jpath, nd, "params", dict, f"nodes[{i}]")
            name = params.get("name")
            if not isinstance(name, str):
                raise _doc_error(jpath, f"nodes[{i}].params.name", "missing or not a string")
            where = f"node {name!r}"
            typ = NODE_TYPES.get(_need(jpath, nd, "type", str, where))
            if typ is None:
                raise _doc_error(jpath, where, f"unknown type {nd['type']!r}; types: "
                                 f"{', '.join(sorted(NODE_TYPES))}")
            kw = dict(params)
            for k in _need(jpath, nd, "arrays", list, where):
                key = f"{name}/{k}"
                if not isinstance(k, str) or key not in files:
                    raise GraphError(f"{apath}: array {key!r} missing (listed by {where})")
                try:
                    kw[k] = arrs[key]
                except Exception as e:
                    raise GraphError(f"{apath}: array {key!r} unreadable ({e})") from None
            if name in ops:
                raise _doc_error(jpath, where, "defined twice (node names must be unique)")
            try:
                ops[name] = typ(**kw)
            except GraphError as e:
                raise GraphError(f"{jpath}: {e}") from None
            except (TypeError, ValueError) as e:
                raise _doc_error(jpath, where, str(e)) from None
    return ops


def _read_edges(jpath: Path, edges: list, ops: dict, fmt: str) -> dict[str, dict[int, str]]:
    """Edge entries -> {consumer: {port: producer}}; unknown nodes, keys and doubly fed ports
    are errors."""
    keys = {"src", "dst", "port", "kind"} | ({"delay"} if fmt in OLD_FORMATS else set())
    inputs: dict[str, dict[int, str]] = {n: {} for n in ops}
    for i, e in enumerate(edges):
        where = f"edges[{i}]"
        src, dst = _need(jpath, e, "src", str, where), _need(jpath, e, "dst", str, where)
        port = _need(jpath, e, "port", int, where)
        for end in (src, dst):
            if end not in ops:
                raise _doc_error(jpath, where, f"refers to unknown node {end!r}")
        if port in inputs[dst]:
            raise _doc_error(jpath, where, f"port {port} of {dst!r} is fed twice")
        if set(e) - keys:
            raise _doc_error(jpath, where, f"unknown keys {sorted(set(e) - keys)}")
        inputs[dst][port] = src
    return inputs


def _assemble(jpath: Path, meta: dict, ops: dict, inputs: dict) -> Graph:
    """Add the ops through ``Graph.add`` in dependency order, keeping the file's node order."""
    g = Graph(meta)
    pending = dict(ops)
    while pending:
        ready = [n for n in pending if all(u in g.g for u in inputs[n].values())]
        if not ready:
            raise GraphError(f"{jpath}: the edges form a cycle through {sorted(pending)[:5]}")
        for n in ready:
            ports = inputs[n]
            if sorted(ports) != list(range(len(ports))):
                raise _doc_error(jpath, f"node {n!r}", f"input ports must be 0..{len(ports) - 1}, "
                                 f"got {sorted(ports)}")
            try:
                g.add(pending.pop(n), [ports[k] for k in range(len(ports))])
            except GraphError as e:
                raise GraphError(f"{jpath}: {e}") from None
    order = {n: i for i, n in enumerate(ops)}
    out = Graph(meta)
    out.g.add_nodes_from(sorted(g.g.nodes(data=True), key=lambda nd: order[nd[0]]))
    out.g.add_edges_from(g.g.edges(data=True))
    return out
