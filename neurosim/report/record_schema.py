"""Schema of ``result.json`` (format ``neurosim-report/1``): what ``neurosim report`` reads.

``validate_record(rec, path)`` checks a loaded record before anything is rendered: every key the
report, the CSVs and the plots read, its type, its range (counts, energies and latencies are
finite and non-negative, accuracies in [0, 1]) and the agreements between keys (one row of
logits, latency, prediction and label per input; per-node energies for the same nodes in the
breakdown and per inference; one busy-cycle value per tick). The first problem found raises
:class:`RecordError` naming the file and the key path, e.g.
``run/result.json: runs[0].energy.per_inference.total_j: expected a number, got null``.
Keys the renderer does not read are free (a record may carry more than it shows).

The checks are small composable functions (``num``, ``text``, ``seq``, ``obj``, ``table`` ...)
declared next to the record's layout below; cross-key rules live in ``_check_run``.
"""
from __future__ import annotations

import math
from typing import Callable

FORMAT = "neurosim-report/1"
RUN_MODES = ("sync", "async-windowed", "async-free")


class RecordError(ValueError):
    """An invalid ``result.json``; the message names the file and the key path."""


class _Ctx:
    def __init__(self, path):
        self.path = path

    def fail(self, key: str, problem: str):
        raise RecordError(f"{self.path}: {key or '(top level)'}: {problem}")


Check = Callable[[_Ctx, str, object], None]


def _show(v) -> str:
    s = "null" if v is None else repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _kind(v) -> str:
    return {type(None): "null", bool: "boolean", str: "string", list: "list",
            dict: "object"}.get(type(v), "number" if isinstance(v, (int, float)) else
                                 type(v).__name__)


# ----------------------------------------------------------------------------- checks
def num(lo: float | None = 0.0, hi: float | None = None, *, integer: bool = False,
        null: bool = False) -> Check:
    """A finite number (an integer with ``integer``) in [lo, hi]; ``null`` allows null."""
    def check(c: _Ctx, key: str, v):
        if v is None and null:
            return
        if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
            c.fail(key, f"expected {'an integer' if integer else 'a number'}, got {_kind(v)} "
                        f"{_show(v)}")
        if not math.isfinite(v):
            c.fail(key, f"must be finite, got {v}")
        if lo is not None and v < lo:
            c.fail(key, f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            c.fail(key, f"must be <= {hi}, got {v}")
    return check


def anynum(null: bool = False) -> Check:
    """A finite number of either sign."""
    return num(None, None, null=null)


def text(choices: tuple = (), null: bool = False) -> Check:
    def check(c: _Ctx, key: str, v):
        if v is None and null:
            return
        if not isinstance(v, str):
            c.fail(key, f"expected a string, got {_kind(v)} {_show(v)}")
        if choices and v not in choices:
            c.fail(key, f"must be one of {', '.join(choices)}, got {v!r}")
    return check


def maybe(check: Check) -> Check:
    """``check``, or null."""
    def wrapped(c: _Ctx, key: str, v):
        if v is not None:
            check(c, key, v)
    return wrapped


def flag(c: _Ctx, key: str, v):
    if not isinstance(v, bool):
        c.fail(key, f"expected true or false, got {_kind(v)} {_show(v)}")


def anything(c: _Ctx, key: str, v):
    """Any JSON value (read as text only)."""


def seq(item: Check, min_len: int = 0, length: int | None = None) -> Check:
    def check(c: _Ctx, key: str, v):
        if not isinstance(v, list):
            c.fail(key, f"expected a list, got {_kind(v)} {_show(v)}")
        if len(v) < min_len:
            c.fail(key, f"must hold at least {min_len} entr{'y' if min_len == 1 else 'ies'}, "
                        f"got {len(v)}")
        if length is not None and len(v) != length:
            c.fail(key, f"must hold {length} entries, got {len(v)}")
        for i, x in enumerate(v):
            item(c, f"{key}[{i}]", x)
    return check


def obj(fields: dict[str, Check], optional: dict[str, Check] | None = None,
        null: bool = False) -> Check:
    """An object with the ``fields`` (required) and ``optional`` keys; other keys are free."""
    def check(c: _Ctx, key: str, v):
        if v is None and null:
            return
        if not isinstance(v, dict):
            c.fail(key, f"expected an object, got {_kind(v)} {_show(v)}")
        for k, f in fields.items():
            if k not in v:
                c.fail(_join(key, k), "missing")
            f(c, _join(key, k), v[k])
        for k, f in (optional or {}).items():
            if k in v:
                f(c, _join(key, k), v[k])
    return check


def table(value: Check, keys: Callable[[str], bool] | None = None,
          what: str = "key") -> Check:
    """An object mapping free keys (each passing ``keys``, if given) to ``value``."""
    def check(c: _Ctx, key: str, v):
        if not isinstance(v, dict):
            c.fail(key, f"expected an object, got {_kind(v)} {_show(v)}")
        for k, x in v.items():
            if keys is not None and not keys(k):
                c.fail(f"{key}[{k!r}]", f"is not a valid {what}")
            value(c, f"{key}[{k!r}]", x)
    return check


def _join(key: str, k: str) -> str:
    return f"{key}.{k}" if key else k


def _core_key(k: str) -> bool:
    return k.isdigit()


SHARED_PARTS = ("uncore", "chip")     # energy cells that belong to no core (costing.static)


def _energy_core_key(k: str) -> bool:
    return k.isdigit() or k in SHARED_PARTS


# ----------------------------------------------------------------------------- layout
# Upper bounds of energies (J) and times (s): far beyond anything physical, they only keep the
# report's arithmetic finite (a chip loaded with allow_extreme may produce huge values; its
# record still renders). Physical plausibility is checked where the numbers come in: the chip
# and energy files (chips.toml_schema ranges).
MAX_ENERGY_J = 1e300
MAX_TIME_S = 1e300
COUNT = num(integer=True)
ENERGY = num(0, MAX_ENERGY_J)
TIME = num(0, MAX_TIME_S)
CATEGORY_ENERGIES = table(ENERGY)

MAPPING = obj({
    "totals": obj({"placement": text(), "cores_used": COUNT, "n_cores": COUNT, "layers": COUNT,
                   "neuron_util": num(), "memory_util": num(), "hops_mean": num(),
                   "hops_max": num(), "fits": flag, "violations": COUNT}),
    "violations": seq(obj({"kind": text(), "message": text()})),
}, {"layer_nodes": table(seq(text()))})

STATIC = maybe(obj({}, {"policy": text(null=True), "cores_on": num(integer=True, null=True),
                       "by_policy_per_inference_j": maybe(table(num(0, MAX_ENERGY_J, null=True))),
                       "basis": text()}))

ENERGY_BREAKDOWN = obj({
    "table": text(), "total_j": ENERGY, "by_category_j": CATEGORY_ENERGIES,
    "by_node_category_j": table(CATEGORY_ENERGIES),
    "by_core_category_j": table(CATEGORY_ENERGIES, _core_key, "core number"),
    "per_inference": obj({"total_j": ENERGY, "static_j": ENERGY,
                          "by_category_j": CATEGORY_ENERGIES, "by_node_j": table(ENERGY),
                          "by_core_j": table(ENERGY, _core_key, "core number")},
                         {"static_by_core_j": table(ENERGY, _energy_core_key,
                                                    "core number or shared part")}),
}, {"static": STATIC})

SYNC_TIMELINE = obj({}, {"tick_s": seq(TIME), "core_busy_cycles": table(seq(num()), _core_key,
                                                                           "core number"),
                         "ticks_per_step": num(1, integer=True)})
ASYNC_ITEM = seq(anything, length=5)       # [core, start_s, end_s, node, kind], checked below
ASYNC_TIMELINE = obj({}, {"items": seq(ASYNC_ITEM)})

STATS = obj({}, {
    "events_in": COUNT, "stalls": COUNT, "stall_s": TIME, "drops": COUNT,
    "max_fifo_occupancy": COUNT, "fifo_depth": num(1, integer=True, null=True),
    "fifo_occupancy": table(seq(seq(num(0, MAX_TIME_S), length=2)), _core_key,
                            "core number"),
    "ticks_per_inference": COUNT, "clock_hz": num(), "saturations": COUNT,
})

RUN = obj({
    "label": text(), "chip": text(), "mode": text(RUN_MODES), "n": num(1, integer=True),
    "logits": seq(seq(anynum(), min_len=1), min_len=1),
    "predictions": seq(COUNT), "labels": maybe(seq(COUNT)),
    "accuracy": num(0, 1, null=True), "latency_s": seq(TIME, min_len=1),
    "mean_latency_s": TIME, "ticks": seq(COUNT),
    "spike_counts": table(seq(seq(COUNT))), "counts": table(table(COUNT)),
    "core_counts": table(table(COUNT)), "totals": table(COUNT),
    "stats": STATS, "energy": ENERGY_BREAKDOWN,
}, {"timeline": anything})

COMPARISON_ROW = obj({
    "chip": text(), "mode": text(), "n": num(1, integer=True), "accuracy": num(0, 1, null=True),
    "agreement": num(0, 1), "energy_per_inference_j": ENERGY, "dynamic_per_inference_j": ENERGY,
    "static_per_inference_j": ENERGY, "latency_per_inference_s": TIME,
    "spikes_per_inference": num(), "ac_per_inference": num(), "noc_hops_per_inference": num(),
    "stalls": COUNT, "drops": COUNT, "max_logit_diff": num(),
}, {"power_gating": text(null=True), "average_power_w": num(null=True)})

RATIO = obj({"sync": text(), "async": text(), "n": num(1, integer=True),
             "sync_dynamic_j": ENERGY, "sync_static_j": ENERGY, "async_dynamic_j": ENERGY,
             "async_static_j": ENERGY, "ratio": num(null=True), "dynamic_ratio": num(null=True),
             "ratio_by_policy": table(num(null=True))})

PAPER = obj({
    "table": text(), "arithmetic": text(), "e_ac_pj": num(), "e_mac_pj": num(),
    "energy_per_inference_j": ENERGY, "sops_per_inference": num(), "macs_per_inference": num(),
    "notes": seq(text()),
}, null=True)

DELTAS = ("d_quantization", "d_border_stride", "d_products", "d_first_layer", "d_other")
PAPER_VS_EVENT = obj({
    "energy": obj({"event_at_paper_costs_j": ENERGY},
                  {"chip_table": anything, "chip_j": ENERGY,
                   "chip_ignored_by_paper_total_j": ENERGY,
                   "chip_ignored_by_paper_j": CATEGORY_ENERGIES}),
    "totals": obj({"paper": num(), "event": num(), **{d: anynum() for d in DELTAS}}),
    "rows": seq(obj({"layer": text(), "op_type": text(), "rate_float": num(null=True),
                     "paper": num(), "event": num(), **{d: anynum() for d in DELTAS}})),
})

RECORD = obj({
    "format": text((FORMAT,)), "model": text(), "workload": text(), "n": num(1, integer=True),
    "chips": seq(text()),
    "graph": obj({"meta": obj({}, {"family": text(null=True), "ssc": anything}),
                  "totals": obj({"nodes": COUNT, "neurons": COUNT, "weights": COUNT,
                                 "T": num(1, integer=True)}),
                  "nodes": seq(obj({"node": text(), "neurons": COUNT, "type": text()}))}),
    "runs": seq(RUN, min_len=1),
    "comparison": obj({"rows": seq(COMPARISON_ROW), "reference_source": text(null=True)},
                      {"ratios": maybe(seq(RATIO))}),
    "mappings": table(MAPPING), "mapping_reports": table(MAPPING),
    "paper": PAPER, "paper_vs_event": table(PAPER_VS_EVENT),
    "versions": table(text()),
})


# ----------------------------------------------------------------------------- cross-checks
def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-300)


def _same_keys(c: _Ctx, key_a: str, a: dict, key_b: str, b: dict):
    if set(a) != set(b):
        odd = sorted(set(a) ^ set(b))[:3]
        c.fail(key_b, f"must have the same keys as {key_a}; differ in {odd}")


def _check_sums(c: _Ctx, key: str, e: dict, n: int):
    """Categories present, parts summing to the totals, per-inference = total / n."""
    from neurosim.costing.energy import ENERGY_CATEGORIES
    pi = e["per_inference"]
    for k, d in (("by_category_j", e["by_category_j"]),
                 ("per_inference.by_category_j", pi["by_category_j"])):
        missing = [x for x in ENERGY_CATEGORIES if x not in d]
        if missing:
            c.fail(f"{key}.{k}", f"missing categories {missing}")
        total = e["total_j"] if k == "by_category_j" else pi["total_j"]
        if not _close(math.fsum(d[x] for x in ENERGY_CATEGORIES), total):
            c.fail(f"{key}.{k}", f"sums to {math.fsum(d.values())!r}, not the total {total!r}")
    if not _close(e["total_j"] / n, pi["total_j"]):
        c.fail(f"{key}.per_inference.total_j", f"{pi['total_j']!r} is not total_j / n = "
                                               f"{e['total_j'] / n!r}")
    _same_keys(c, f"{key}.by_node_category_j", e["by_node_category_j"],
               f"{key}.per_inference.by_node_j", pi["by_node_j"])
    _same_keys(c, f"{key}.by_core_category_j", e["by_core_category_j"],
               f"{key}.per_inference.by_core_j", pi["by_core_j"])


def _check_timeline(c: _Ctx, key: str, run: dict):
    tl = run.get("timeline")
    if tl is None:
        return
    if run["mode"] == "sync":
        SYNC_TIMELINE(c, key, tl)
        ticks = len(tl.get("tick_s", []))
        for core, busy in tl.get("core_busy_cycles", {}).items():
            if len(busy) != ticks:
                c.fail(f"{key}.core_busy_cycles[{core!r}]", f"holds {len(busy)} values, one per "
                                                            f"tick expected ({ticks})")
        return
    ASYNC_TIMELINE(c, key, tl)
    for i, it in enumerate(tl.get("items", [])):
        k = f"{key}.items[{i}]"
        num(integer=True)(c, f"{k}[0]", it[0])
        TIME(c, f"{k}[1]", it[1])
        num(it[1], MAX_TIME_S)(c, f"{k}[2]", it[2])
        text()(c, f"{k}[4]", it[4])


def _check_run(c: _Ctx, key: str, run: dict, nodes: set):
    n, logits = run["n"], run["logits"]
    K = len(logits[0]) if logits else 0
    for k in ("logits", "predictions", "latency_s", "ticks"):
        if len(run[k]) != n:
            c.fail(f"{key}.{k}", f"holds {len(run[k])} entries for n = {n} inputs")
    for i, row in enumerate(logits):
        if len(row) != K:
            c.fail(f"{key}.logits[{i}]", f"holds {len(row)} classes, logits[0] {K}")
    labels = run["labels"]
    if labels is not None and len(labels) != n:
        c.fail(f"{key}.labels", f"holds {len(labels)} entries for n = {n} inputs")
    for k in ("predictions", "labels"):
        for i, v in enumerate(run[k] or []):
            if v >= K:
                c.fail(f"{key}.{k}[{i}]", f"class {v} outside the logits' 0..{K - 1}")
    if (labels is None) != (run["accuracy"] is None):
        c.fail(f"{key}.accuracy", "must be null exactly when there are no labels")
    if labels is not None:
        acc = sum(p == y for p, y in zip(run["predictions"], labels)) / n
        if not _close(acc, run["accuracy"]):
            c.fail(f"{key}.accuracy", f"{run['accuracy']!r} disagrees with predictions and "
                                      f"labels ({acc!r})")
    if not _close(math.fsum(run["latency_s"]) / n, run["mean_latency_s"]):
        c.fail(f"{key}.mean_latency_s", "is not the mean of latency_s")
    for node, rows in run["spike_counts"].items():
        k = f"{key}.spike_counts[{node!r}]"
        if node not in nodes:
            c.fail(k, "is not a node of graph.nodes")
        if len(rows) != n or any(len(r) != len(rows[0]) or not r for r in rows):
            c.fail(k, f"must be a [n = {n}, time steps] table")
    for k in ("counts", "energy.by_node_category_j"):
        d = run["counts"] if k == "counts" else run["energy"]["by_node_category_j"]
        for node in d:
            if node not in nodes:
                c.fail(f"{key}.{k}[{node!r}]", "is not a node of graph.nodes")
    if run["label"] != f"{run['chip']}/{run['mode']}":
        c.fail(f"{key}.label", f"{run['label']!r} is not chip/mode "
                               f"{run['chip']}/{run['mode']!r}")
    _check_sums(c, f"{key}.energy", run["energy"], n)
    _check_timeline(c, f"{key}.timeline", run)


def _uniform_rows(c: _Ctx, key: str, rows: list):
    """Rows written as one CSV table: every row has the keys of the first."""
    for i, r in enumerate(rows[1:], 1):
        if set(r) != set(rows[0]):
            c.fail(f"{key}[{i}]", f"has keys {sorted(r)[:4]}..., not those of {key}[0]")


def validate_record(rec, path="result.json") -> dict:
    """Check a loaded ``result.json`` (see the module doc); returns it unchanged."""
    from neurosim.costing.energy import CATEGORY_LABELS
    c = _Ctx(path)
    RECORD(c, "", rec)
    nodes = [r["node"] for r in rec["graph"]["nodes"]]
    if len(set(nodes)) != len(nodes):
        dup = next(x for x in nodes if nodes.count(x) > 1)
        c.fail("graph.nodes", f"node {dup!r} listed twice")
    labels = [r["label"] for r in rec["runs"]]
    for i, run in enumerate(rec["runs"]):
        if labels.index(run["label"]) != i:
            c.fail(f"runs[{i}].label", f"{run['label']!r} appears twice")
        _check_run(c, f"runs[{i}]", run, set(nodes))
    if rec["n"] != max(r["n"] for r in rec["runs"]):
        c.fail("n", f"{rec['n']} is not the largest run's n")
    rows = rec["comparison"]["rows"]
    if [f"{r['chip']}/{r['mode']}" for r in rows] != labels:
        c.fail("comparison.rows", "must hold one row per run, in the order of runs")
    _uniform_rows(c, "comparison.rows", rows)
    for label, pe in rec["paper_vs_event"].items():
        k = f"paper_vs_event[{label!r}]"
        _uniform_rows(c, f"{k}.rows", pe["rows"])
        for cat in pe["energy"].get("chip_ignored_by_paper_j", {}):
            if cat not in CATEGORY_LABELS:
                c.fail(f"{k}.energy.chip_ignored_by_paper_j[{cat!r}]", "unknown category")
    return rec


__all__ = ["FORMAT", "MAX_ENERGY_J", "MAX_TIME_S", "RUN_MODES", "RecordError",
           "validate_record"]
