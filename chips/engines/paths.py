"""Scatter or dense: the cost model behind the synaptic executors' path choice.

Each synaptic node step of B inputs runs either event-driven (Numba scatter of the nonzero
inputs) or densely (an exact integer conv / matmul through torch or BLAS). Results and counts
are the same either way; only the time differs. The model predicts both times (seconds):

    scatter = scatter_fixed_s + scatter_scan_s x elements + scatter_event_s x events
    dense   = dense_fixed_s + dense_weight_s x weights + dense_mac_s x MACs x passes

with ``elements`` the input values of the batch, ``events`` the synaptic events the scatter
delivers (sum over nonzero inputs of |value| x fan-out; for graded inputs, per nonzero value),
``weights`` the weight elements streamed once per call, ``MACs`` the dense multiply-accumulates
of the whole batch and ``passes`` the exact passes (1 in float32 or one-pass int8, p for a
p-digit float32 or int8 split, ``dense_f64_factor`` in float64, relative to the plan spike
inputs take: ``kernels.int8`` convs where the machine allows them). The dense constants are
those of that plan: a float32 pass on a machine measured with int8 convs (weights wider than
8 bits) is costed as one int8 pass, which only ever affects speed, never results. The
constants are per layer kind (``KINDS``): ``conv`` (k x k, k > 1), ``conv1x1``,
``depthwise``, ``linear``, ``matmul`` (spike products).

Where the constants come from: ``neurosim bench kernels`` times each kind on this machine and
writes them to ``kernel-costs-<machine>.json`` in the cache directory (``$NEUROSIM_CACHE_DIR``,
else ``$XDG_CACHE_HOME/neurosim``, else ``~/.cache/neurosim``); the file names a fingerprint of
the machine (CPU model, usable cores, numba and torch versions) and a SHA-256 of its contents.
A missing, foreign or corrupt file (bad JSON, wrong fingerprint or checksum, a missing kind or
a non-finite or non-positive constant) is never trusted: the built-in ``DEFAULTS`` apply and
``PathModel.source`` says why; the next ``neurosim bench kernels`` rewrites it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

KINDS = ("conv", "conv1x1", "depthwise", "linear", "matmul")
FIELDS = ("scatter_fixed_s", "scatter_scan_s", "scatter_event_s", "dense_fixed_s",
          "dense_weight_s", "dense_mac_s", "dense_f64_factor")
FORMAT = "neurosim-kernel-costs/1"
CACHE_ENV = "NEUROSIM_CACHE_DIR"
PATHS = ("auto", "scatter", "dense")

# Built-in constants: ``neurosim bench kernels`` on the development machine (AMD EPYC, 2 cores
# shared by other jobs at load ~8, one thread; numba 0.68, torch 2.13 CPU), rounded to two
# digits. A machine's own measured cost file supersedes them.
DEFAULTS: dict[str, dict[str, float]] = {
    "conv": dict(scatter_fixed_s=2.3e-05, scatter_scan_s=3.9e-09, scatter_event_s=2.6e-10,
                 dense_fixed_s=8.1e-05, dense_weight_s=0.0, dense_mac_s=4.6e-11,
                 dense_f64_factor=10.0),
    "conv1x1": dict(scatter_fixed_s=1.9e-05, scatter_scan_s=2.0e-09, scatter_event_s=3.1e-10,
                    dense_fixed_s=4.6e-05, dense_weight_s=0.0, dense_mac_s=6.8e-11,
                    dense_f64_factor=4.9),
    "depthwise": dict(scatter_fixed_s=1.8e-05, scatter_scan_s=1.0e-08, scatter_event_s=6.1e-10,
                      dense_fixed_s=1.8e-04, dense_weight_s=0.0, dense_mac_s=2.5e-10,
                      dense_f64_factor=280.0),
    "linear": dict(scatter_fixed_s=3.5e-05, scatter_scan_s=1.5e-09, scatter_event_s=9.1e-11,
                   dense_fixed_s=2.6e-05, dense_weight_s=6.6e-12, dense_mac_s=6.7e-11,
                   dense_f64_factor=1.6),
    "matmul": dict(scatter_fixed_s=7.0e-05, scatter_scan_s=6.0e-09, scatter_event_s=3.8e-09,
                   dense_fixed_s=3.6e-05, dense_weight_s=0.0, dense_mac_s=3.9e-10,
                   dense_f64_factor=5.1),
}
DEFAULTS_SOURCE = "built-in defaults (chips.engines.paths.DEFAULTS)"


def cache_dir() -> Path:
    """Where neurosim keeps per-machine caches: $NEUROSIM_CACHE_DIR, else
    $XDG_CACHE_HOME/neurosim, else ~/.cache/neurosim."""
    d = os.environ.get(CACHE_ENV)
    if d:
        return Path(d).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "neurosim"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_fingerprint() -> dict:
    """What the measured constants depend on: CPU model, usable cores, numba and torch."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {"cpu_model": cpu_model(), "cores_usable": cores, "machine": platform.machine(),
            "numba": _version("numba"), "torch": _version("torch")}


def _digest(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def cost_file(fingerprint: dict | None = None) -> Path:
    """This machine's cost file in :func:`cache_dir`."""
    fp = fingerprint or machine_fingerprint()
    h = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"kernel-costs-{h}.json"


def check_costs(costs) -> dict[str, dict[str, float]]:
    """Validated constants (every kind, every field, finite, > 0; ``dense_weight_s`` >= 0);
    raises ValueError naming the kind and field."""
    if not isinstance(costs, dict):
        raise ValueError("costs must be a table of kinds")
    out = {}
    for kind in KINDS:
        row = costs.get(kind)
        if not isinstance(row, dict):
            raise ValueError(f"kind {kind!r} missing")
        out[kind] = {}
        for f in FIELDS:
            v = row.get(f)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (v == 0 and f != "dense_weight_s"):
                raise ValueError(f"{kind}.{f} = {v!r} is not a finite positive number")
            out[kind][f] = float(v)
    return out


@dataclass(frozen=True)
class PathModel:
    """Per-kind time constants (module doc) and where they came from."""

    costs: dict
    source: str

    @classmethod
    def defaults(cls, why: str = "") -> "PathModel":
        return cls(check_costs(DEFAULTS), DEFAULTS_SOURCE + (f"; {why}" if why else ""))

    def scatter_s(self, kind: str, events: float, elements: float) -> float:
        c = self.costs[kind]
        return c["scatter_fixed_s"] + c["scatter_scan_s"] * elements + c["scatter_event_s"] * events

    def dense_s(self, kind: str, macs: float, weights: float, passes: float = 1.0) -> float:
        c = self.costs[kind]
        return c["dense_fixed_s"] + c["dense_weight_s"] * weights + c["dense_mac_s"] * macs * passes

    def dense_faster(self, kind: str, *, events: float, elements: float, macs: float,
                     weights: float, passes: float = 1.0) -> bool:
        """True when the dense path is predicted faster than scatter for this node step."""
        return self.dense_s(kind, macs, weights, passes) < self.scatter_s(kind, events, elements)

    def to_doc(self, fingerprint: dict | None = None, measured: dict | None = None) -> dict:
        doc = {"format": FORMAT, "machine": fingerprint or machine_fingerprint(),
               "costs": self.costs, "measured": measured or {}}
        doc["sha256"] = _digest(doc)
        return doc


def save_path_model(model: PathModel, path: Path | None = None, measured: dict | None = None
                    ) -> Path:
    """Write ``model`` as this machine's cost file (atomically: a reader never sees half)."""
    path = Path(path) if path else cost_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(model.to_doc(measured=measured), indent=1, sort_keys=True))
    os.replace(tmp, path)
    _LOADED.clear()
    return path


def read_path_model(path: Path | None = None) -> PathModel:
    """The measured model of this machine, or the defaults (with the reason in ``source``)
    when the file is missing, from another machine, or corrupt in any way."""
    path = Path(path) if path else cost_file()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return PathModel.defaults(f"no measured costs at {path} (run `neurosim bench kernels`)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return PathModel.defaults(f"ignored corrupt {path}: {e}")
    try:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        if doc.get("sha256") != _digest(doc):
            raise ValueError("checksum mismatch")
        if doc.get("machine") != machine_fingerprint():
            raise ValueError("measured on another machine or software versions")
        costs = check_costs(doc.get("costs"))
    except ValueError as e:
        return PathModel.defaults(f"ignored {path}: {e}")
    return PathModel(costs, f"measured: {path}")


_LOADED: dict = {}


def load_path_model(path: Path | None = None) -> PathModel:
    """:func:`read_path_model`, memoised per file and modification time."""
    p = Path(path) if path else cost_file()
    try:
        stamp = p.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(p), stamp)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = read_path_model(p)
    return _LOADED[key]
