"""``neurosim.run.compare``: the same inputs on several chips (and execution modes), side by side.

Synchronous chips run in sync mode; asynchronous chips run event-driven in both ``windowed``
(exact) and ``free`` (greedy) modes. Every run uses the *same* inputs (accuracy, agreement and
energy per inference all come from the same n), gets its energy breakdown (the chip's energy
table and static power model) and is compared with the exact predictions: those of a sync or
windowed run (bit-exact with the reference interpreter by DESIGN invariant 1), or the reference
interpreter's when every run is free-running. ``Comparison.ratios`` gives the sync/async energy
ratio of every (sync run, async run) pair, its dynamic and static parts, and the ratio with both
chips under each power-gating policy (the sensitivity of the answer to the static assumption).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chips.mapping import map_graph
from chips.spec import load_chip
from neurosim.costing.energy import attach_energy
from neurosim.costing.static import POLICIES
from neurosim.ir import graph as G
from neurosim.ir.result import check_labels
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
from neurosim.run.simulate import run_engine

RUN_MODES = ("sync", "async-windowed", "async-free")
EXACT_MODES = ("sync", "async-windowed")


def run_label(result) -> str:
    return f"{result.chip}/{result.mode}"


def _same_n(results) -> int:
    ns = {r.n for r in results}
    if len(ns) != 1:
        have = ", ".join(f"{run_label(r)}: {r.n}" for r in results)
        raise ValueError(f"runs cover different numbers of inputs ({have}); sync and async "
                         "runs are compared on the same inputs only")
    return ns.pop()


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


@dataclass(repr=False)
class Comparison:
    """Runs of one graph on several chips, all on the same ``n`` inputs. ``results``:
    RunResults in run order; ``mappings``: chip name -> Mapping; ``reference``: exact
    predictions [n] and logits [n, K]."""

    graph: G.Graph
    results: list
    mappings: dict
    reference_predictions: np.ndarray
    reference_logits: np.ndarray
    reference_source: str
    labels: np.ndarray | None = None
    chips: list = field(default_factory=list)

    def __post_init__(self):
        self.n = _same_n(self.results) if self.results else 0

    @classmethod
    def from_results(cls, graph: G.Graph, results: list, mappings: dict | None = None
                     ) -> "Comparison":
        """A Comparison of runs made elsewhere (same graph and the same inputs). Missing
        mappings are rebuilt (deterministic, so equal to the engines' default mapping)."""
        results = list(results)
        if not results:
            raise ValueError("no runs to compare")
        _same_n(results)
        mappings = dict(mappings or {})
        for r in results:
            if r.chip not in mappings:
                mappings[r.chip] = map_graph(graph, r.chip, strict=False)
        ref, source = _reference(results)
        if ref is None:
            raise ValueError("no exact run (sync or async-windowed) among the runs to serve as "
                             "the reference; use neurosim.run.compare, which runs the "
                             "interpreter")
        return cls(graph=graph, results=results, mappings=mappings,
                   reference_predictions=ref.argmax(axis=1), reference_logits=np.asarray(ref),
                   reference_source=source, labels=results[0].labels,
                   chips=list(dict.fromkeys(r.chip for r in results)))

    def result(self, chip: str, mode: str):
        for r in self.results:
            if r.chip == chip and r.mode == mode:
                return r
        have = ", ".join(run_label(r) for r in self.results)
        raise KeyError(f"no run {chip}/{mode}; runs: {have}")

    def table(self) -> list[dict]:
        """One row per run, all on the same n inputs: accuracy, agreement with the exact
        predictions, per-inference energy (J; dynamic and static, and static under every
        power-gating policy), average power (W), latency (s), spikes, ACs, NoC hops, stalls and
        drops."""
        rows = []
        for r in self.results:
            per, e = r.per_inference(), r.energy
            pe, st = e["per_inference"], e["static"]
            by_pol = st.get("by_policy_per_inference_j") or {}
            rows.append({
                "chip": r.chip, "mode": r.mode, "n": r.n,
                "accuracy": r.accuracy,
                "agreement": float((r.predictions == self.reference_predictions).mean()),
                "max_logit_diff": float(np.abs(r.logits - self.reference_logits).max()),
                "energy_per_inference_j": pe["total_j"],
                "dynamic_per_inference_j": pe["dynamic_j"],
                "static_per_inference_j": pe["static_j"],
                "power_gating": st.get("policy"),
                **{f"static_{p}_per_inference_j": by_pol.get(p) for p in POLICIES},
                "average_power_w": e["power_w"]["total"],
                "dynamic_power_w": e["power_w"]["dynamic"],
                "static_power_w": e["power_w"]["static"],
                "latency_per_inference_s": float(np.mean(r.latency_s)),
                "spikes_per_inference": per["spikes"], "ac_per_inference": per["ac"],
                "noc_hops_per_inference": per["noc_hops"] + per["graded_hops"],
                "stalls": int(r.stats.get("stalls", 0)), "drops": int(r.stats.get("drops", 0)),
            })
        return rows

    def ratios(self) -> list[dict]:
        """For every (sync run, async run) pair: the sync/async energy ratio per inference,
        its dynamic and static parts, and the ratio with both chips under each power-gating
        policy (None where a policy cannot be computed). Both runs cover the same inputs."""
        rows = {(r["chip"], r["mode"]): r for r in self.table()}
        out = []
        for s in (r for r in rows.values() if r["mode"] == "sync"):
            for a in (r for r in rows.values() if r["mode"].startswith("async")):
                by_pol = {}
                for p in POLICIES:
                    ss, sa = s[f"static_{p}_per_inference_j"], a[f"static_{p}_per_inference_j"]
                    by_pol[p] = None if ss is None or sa is None else _ratio(
                        s["dynamic_per_inference_j"] + ss, a["dynamic_per_inference_j"] + sa)
                out.append({
                    "sync": f"{s['chip']}/{s['mode']}", "async": f"{a['chip']}/{a['mode']}",
                    "n": s["n"], "sync_policy": s["power_gating"],
                    "async_policy": a["power_gating"],
                    "sync_dynamic_j": s["dynamic_per_inference_j"],
                    "sync_static_j": s["static_per_inference_j"],
                    "async_dynamic_j": a["dynamic_per_inference_j"],
                    "async_static_j": a["static_per_inference_j"],
                    "ratio": _ratio(s["energy_per_inference_j"], a["energy_per_inference_j"]),
                    "dynamic_ratio": _ratio(s["dynamic_per_inference_j"],
                                            a["dynamic_per_inference_j"]),
                    "static_ratio": _ratio(s["static_per_inference_j"],
                                           a["static_per_inference_j"]),
                    "ratio_by_policy": by_pol})
        return out

    def format(self) -> str:
        """The table with pretty units, for a terminal."""
        from neurosim.ir.units import format_table
        rows = [{"chip": r["chip"], "mode": r["mode"], "n": r["n"],
                 "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
                 "agree": f"{r['agreement']:.3f}",
                 "energy/inf": fmt_energy(r["energy_per_inference_j"]),
                 "dynamic": fmt_energy(r["dynamic_per_inference_j"]),
                 "static": fmt_energy(r["static_per_inference_j"]),
                 "gating": r["power_gating"] or "-",
                 "power": fmt_power(r["average_power_w"]),
                 "latency/inf": fmt_time(r["latency_per_inference_s"]),
                 "spikes/inf": round(r["spikes_per_inference"]),
                 "ACs/inf": round(r["ac_per_inference"]),
                 "hops/inf": round(r["noc_hops_per_inference"]),
                 "stalls": r["stalls"], "drops": r["drops"]} for r in self.table()]
        return format_table(rows)

    def format_ratios(self) -> list[str]:
        """One line per (sync, async) pair: the ratio, its parts and the policy sensitivity."""
        return [ratio_line(r) for r in self.ratios()]

    def __str__(self) -> str:
        """The runs side by side and the sync/async ratios (full data: ``to_dict()``)."""
        head = (f"{self.graph.meta.get('model') or 'graph'} on {', '.join(self.chips)}: "
                f"{self.n} inputs, the same in every run (exact reference: "
                f"{self.reference_source})")
        ratios = self.format_ratios()
        return "\n".join([head, "", self.format()]
                         + (["", "sync/async energy per inference:"] if ratios else [])
                         + [f"  {ln}" for ln in ratios])

    def __repr__(self) -> str:
        runs = ", ".join(run_label(r) for r in self.results)
        return f"<Comparison of {len(self.results)} runs on {self.n} inputs: {runs}>"

    def to_dict(self) -> dict:
        return {"chips": list(self.chips), "n": self.n, "rows": self.table(),
                "ratios": self.ratios(), "reference_source": self.reference_source,
                "reference_predictions": self.reference_predictions.tolist(),
                "runs": [r.to_dict() for r in self.results],
                "mappings": {c: m.to_dict() for c, m in self.mappings.items()}}


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}x"


def ratio_line(r: dict) -> str:
    """``Comparison.ratios`` row -> one readable line (n, parts, policy sensitivity)."""
    pol = ", ".join(f"{p} {_x(v)}" for p, v in r["ratio_by_policy"].items())
    return (f"{r['sync']} / {r['async']} (same {r['n']} inputs): energy {_x(r['ratio'])} = "
            f"{fmt_energy(r['sync_dynamic_j'] + r['sync_static_j'])} (dynamic "
            f"{fmt_energy(r['sync_dynamic_j'])} + static {fmt_energy(r['sync_static_j'])}, "
            f"gating {r['sync_policy']}) / {fmt_energy(r['async_dynamic_j'] + r['async_static_j'])}"
            f" (dynamic {fmt_energy(r['async_dynamic_j'])} + static "
            f"{fmt_energy(r['async_static_j'])}, gating {r['async_policy']}); dynamic alone "
            f"{_x(r['dynamic_ratio'])}; both chips gated {pol}")


def _reference(results) -> tuple[np.ndarray | None, str]:
    """Logits of the first exact run (every run covers the same inputs)."""
    exact = [r for r in results if r.mode in EXACT_MODES]
    if not exact:
        return None, ""
    return exact[0].logits, run_label(exact[0])


def _modes_for(chip, modes) -> list[tuple[str, str | None]]:
    own = [("sync", None)] if chip.kind == "sync" else [("async", "windowed"), ("async", "free")]
    if modes is None:
        return own
    bad = [m for m in modes if m not in RUN_MODES]
    if bad:
        raise ValueError(f"unknown mode(s) {bad}; modes are {', '.join(RUN_MODES)}")
    return [(m, a) for m, a in own if (m if a is None else f"{m}-{a}") in modes]


def compare(graph: G.Graph, chips, inputs, labels=None, *, modes=None, strict: bool = True,
            power_gating: str | None = None, progress=None, on_chunk=None, chunk: int = 10,
            mappings: dict | None = None, **engine_kw) -> Comparison:
    """Simulate ``inputs`` on every chip of ``chips`` (names, TOML paths or ChipSpecs; a
    comma-separated string works too); every run uses all the inputs. ``modes`` restricts the
    runs to some of "sync", "async-windowed", "async-free". ``strict``: a graph that does not
    fit a chip raises ``MappingError`` naming every violation (False: run the best-effort
    mapping anyway). ``power_gating`` prices every run's static power under that policy (default:
    each chip's own). ``progress(label, n)`` is called before each run of n inputs and
    ``on_chunk(k)`` after every ``chunk`` inputs of it (progress bars). ``mappings``: chip name
    -> a Mapping of ``graph`` made elsewhere (e.g. the set-up cache); missing ones are mapped
    here. Extra keywords go to the engines (``batch_size``, ``path``, ...)."""
    if isinstance(chips, str):
        chips = [c.strip() for c in chips.split(",") if c.strip()]
    if not chips:
        raise ValueError("compare needs at least one chip")
    if "limits" in engine_kw:
        raise TypeError("compare() no longer takes 'limits': every run uses the same inputs "
                        "(pass fewer inputs to compare fewer)")
    specs = [load_chip(c) for c in chips]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"chip listed twice: {names}")
    plan = [(spec, mode, amode) for spec in specs for mode, amode in _modes_for(spec, modes)]
    if not plan:
        raise ValueError(f"modes {modes} select no run on chips {names} (sync chips run "
                         "'sync', async chips 'async-windowed' and 'async-free')")
    x = np.asarray(inputs)
    op = graph.op(graph.input_node())
    B = x.shape[1 if x.ndim == len(op.shape) + 2 else 0]
    y = check_labels(labels, B, graph.op(graph.output_node()).size)    # K logits
    given = dict(mappings or {})
    mappings = {s.name: given.get(s.name) or map_graph(graph, s, strict=strict) for s in specs}
    results = []
    for spec, mode, amode in plan:
        label = mode if amode is None else f"{mode}-{amode}"
        if progress is not None:
            progress(f"{spec.name}/{label}", B)
        kw = dict(engine_kw)
        if mode == "async":
            kw["async_mode"] = amode
        r = simulate_batched(graph, spec, x, mode, labels=y, mapping=mappings[spec.name],
                             chunk=chunk, on_chunk=on_chunk, **kw)
        attach_energy(r, spec, power_gating=power_gating, mapping=mappings[spec.name])
        results.append(r)
    ref_logits, source = _reference(results)
    if ref_logits is None:
        from neurosim.reference.interp import run as interpret
        ref_logits, source = interpret(graph, x, record="none").logits, "interpreter"
    return Comparison(graph=graph, results=results, mappings=mappings,
                      reference_predictions=ref_logits.argmax(axis=1),
                      reference_logits=np.asarray(ref_logits), reference_source=source,
                      labels=y, chips=names)


# ----------------------------------------------------------------------------- batched runs
_CONSTANT_STATS = {"fifo_depth", "ticks_per_inference", "clock_hz", "input_window_s",
                   "overflow", "async_mode", "batch_size"}


def _merge_stats(stats: list[dict]) -> dict:
    """Engine statistics of consecutive input chunks: counters and times add up, ``max_*``
    take the maximum, dicts of counters add per key, configuration values and per-first-input
    records (traces) come from the first chunk."""
    out = dict(stats[0])
    for k, v in stats[0].items():
        vals = [s.get(k) for s in stats]
        if k in _CONSTANT_STATS or isinstance(v, (str, bool)) or v is None:
            continue
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = max(vals) if k.startswith("max_") else type(v)(sum(vals))
        elif isinstance(v, dict) and all(isinstance(x, (int, float, np.integer, np.floating))
                                         for x in v.values()):
            acc: dict = {}
            for d in vals:
                for kk, x in (d or {}).items():
                    acc[kk] = acc.get(kk, 0) + x
            out[k] = acc
    return out


def merge_results(parts: list):
    """One RunResult from runs of consecutive chunks of the inputs (engines reset their state
    between inputs, so counts, logits and latencies equal a single run's exactly; ``timeline``
    and per-first-input traces come from the first chunk)."""
    from neurosim.ir.result import RunResult

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    counts = {n: {c: sum(int(p.counts[n][c]) for p in parts) for c in first.counts[n]}
              for n in first.counts}
    cores = sorted({int(k) for p in parts for k in p.core_counts})
    core_counts = {k: {c: sum(int(p.core_counts.get(k, {}).get(c, 0)) for p in parts)
                       for c in next(iter(first.core_counts.values()), {})} for k in cores}
    labels = None if first.labels is None else np.concatenate([p.labels for p in parts])
    return RunResult(
        mode=first.mode, chip=first.chip, model=first.model,
        logits=np.concatenate([p.logits for p in parts]),
        spike_counts={n: np.concatenate([p.spike_counts[n] for p in parts])
                      for n in first.spike_counts},
        counts=counts, core_counts=core_counts,
        latency_s=np.concatenate([p.latency_s for p in parts]),
        ticks=np.concatenate([p.ticks for p in parts]), timeline=first.timeline,
        stats=_merge_stats([p.stats for p in parts]), labels=labels,
        spikes={n: np.concatenate([p.spikes[n] for p in parts], axis=1) for n in first.spikes})


def simulate_batched(graph: G.Graph, chip, inputs, mode: str = "sync", *, labels=None,
                     chunk: int = 10, on_chunk=None, **kw):
    """``neurosim.run.simulate.run_engine`` over consecutive chunks of ``chunk`` inputs, merged
    into one unpriced RunResult (``merge_results``; price it with
    ``neurosim.costing.energy.attach_energy``); ``on_chunk(k)`` is called after each chunk of
    k inputs (progress bars). Inputs are [B, ...] static or [T, B, ...] event frames."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    x = np.asarray(inputs)
    op = graph.op(graph.input_node())
    bdim = 1 if x.ndim == len(op.shape) + 2 else 0
    B = x.shape[bdim]
    y = check_labels(labels, B, graph.op(graph.output_node()).size)    # K logits
    if "mapping" not in kw or kw["mapping"] is None:
        kw["mapping"] = map_graph(graph, chip, strict=kw.pop("strict", None) is not False)
    parts = []
    for i in range(0, B, chunk):
        sl = slice(i, min(i + chunk, B))
        xb = x[:, sl] if bdim else x[sl]
        parts.append(run_engine(graph, chip, xb, mode, labels=None if y is None else y[sl],
                                **kw))
        if on_chunk is not None:
            on_chunk(sl.stop - sl.start)
    return merge_results(parts)


__all__ = ["Comparison", "compare", "ratio_line", "run_label", "RUN_MODES", "merge_results",
           "simulate_batched"]
