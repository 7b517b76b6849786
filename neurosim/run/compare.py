"""``neurosim.run.compare``: the same inputs on several chips (and execution modes), side by side.

Synchronous chips run in sync mode; asynchronous chips run event-driven in both ``windowed``
(exact) and ``free`` (greedy) modes. Every run gets its energy breakdown (the chip's energy
table) and is compared with the exact predictions: those of a sync or windowed run (bit-exact
with the reference interpreter by DESIGN invariant 1), or the reference interpreter's when every
run is free-running.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chips.spec import load_chip
from neurosim.ir import graph as G
from neurosim.costing.energy import attach_energy
from neurosim.ir.result import check_labels
from neurosim.ir.units import fmt_energy, fmt_time
from chips.mapping import map_graph
from neurosim.run.simulate import simulate

RUN_MODES = ("sync", "async-windowed", "async-free")
EXACT_MODES = ("sync", "async-windowed")


def run_label(result) -> str:
    return f"{result.chip}/{result.mode}"


@dataclass
class Comparison:
    """Runs of one graph on several chips. ``results``: RunResults in run order; ``mappings``:
    chip name -> Mapping; ``reference``: exact predictions [B] and logits [B, K]."""

    graph: G.Graph
    results: list
    mappings: dict
    reference_predictions: np.ndarray
    reference_logits: np.ndarray
    reference_source: str
    labels: np.ndarray | None = None
    chips: list = field(default_factory=list)

    @classmethod
    def from_results(cls, graph: G.Graph, results: list, mappings: dict | None = None
                     ) -> "Comparison":
        """A Comparison of runs made elsewhere (same graph and inputs). Missing mappings are
        rebuilt (deterministic, so equal to the engines' default mapping)."""
        results = list(results)
        if not results:
            raise ValueError("no runs to compare")
        mappings = dict(mappings or {})
        for r in results:
            if r.chip not in mappings:
                mappings[r.chip] = map_graph(graph, r.chip, strict=False)
        ref, source = _reference(results)
        if ref is None:
            raise ValueError("no exact run (sync or async-windowed) covering every input among "
                             "the runs to serve as the reference; use neurosim.run.compare, which "
                             "runs the interpreter")
        labels = results[0].labels
        return cls(graph=graph, results=results, mappings=mappings,
                   reference_predictions=ref.argmax(axis=1), reference_logits=np.asarray(ref),
                   reference_source=source, labels=labels,
                   chips=list(dict.fromkeys(r.chip for r in results)))

    def result(self, chip: str, mode: str):
        for r in self.results:
            if r.chip == chip and r.mode == mode:
                return r
        have = ", ".join(run_label(r) for r in self.results)
        raise KeyError(f"no run {chip}/{mode}; runs: {have}")

    def table(self) -> list[dict]:
        """One row per run: accuracy, agreement with the exact predictions, per-inference
        energy (J), latency (s), spikes, ACs, NoC hops, stalls and drops."""
        rows = []
        for r in self.results:
            per = r.per_inference()
            rows.append({
                "chip": r.chip, "mode": r.mode, "n": r.n,
                "accuracy": r.accuracy,
                "agreement": float((r.predictions == self.reference_predictions[:r.n]).mean()),
                "max_logit_diff": float(np.abs(r.logits - self.reference_logits[:r.n]).max()),
                "energy_per_inference_j": r.energy["per_inference"]["total_j"],
                "dynamic_per_inference_j": r.energy["per_inference"]["dynamic_j"],
                "static_per_inference_j": r.energy["per_inference"]["static_j"],
                "latency_per_inference_s": float(np.mean(r.latency_s)),
                "spikes_per_inference": per["spikes"], "ac_per_inference": per["ac"],
                "noc_hops_per_inference": per["noc_hops"] + per["graded_hops"],
                "stalls": int(r.stats.get("stalls", 0)), "drops": int(r.stats.get("drops", 0)),
            })
        return rows

    def format(self) -> str:
        """The table with pretty units, for a terminal."""
        from neurosim.ir.units import format_table
        rows = [{"chip": r["chip"], "mode": r["mode"],
                 "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
                 "agree": f"{r['agreement']:.3f}",
                 "energy/inf": fmt_energy(r["energy_per_inference_j"]),
                 "latency/inf": fmt_time(r["latency_per_inference_s"]),
                 "spikes/inf": round(r["spikes_per_inference"]),
                 "ACs/inf": round(r["ac_per_inference"]),
                 "hops/inf": round(r["noc_hops_per_inference"]),
                 "stalls": r["stalls"], "drops": r["drops"]} for r in self.table()]
        return format_table(rows)

    def to_dict(self) -> dict:
        return {"chips": list(self.chips), "rows": self.table(),
                "reference_source": self.reference_source,
                "reference_predictions": self.reference_predictions.tolist(),
                "runs": [r.to_dict() for r in self.results],
                "mappings": {c: m.to_dict() for c, m in self.mappings.items()}}


def _reference(results) -> tuple[np.ndarray | None, str]:
    """Logits of the first exact run covering the most inputs, if it covers every run's."""
    exact = [r for r in results if r.mode in EXACT_MODES]
    if not exact:
        return None, ""
    best = max(exact, key=lambda r: r.n)             # first among equals
    if best.n < max(r.n for r in results):
        return None, ""
    return best.logits, run_label(best)


def _modes_for(chip, modes) -> list[tuple[str, str | None]]:
    own = [("sync", None)] if chip.kind == "sync" else [("async", "windowed"), ("async", "free")]
    if modes is None:
        return own
    bad = [m for m in modes if m not in RUN_MODES]
    if bad:
        raise ValueError(f"unknown mode(s) {bad}; modes are {', '.join(RUN_MODES)}")
    return [(m, a) for m, a in own if (m if a is None else f"{m}-{a}") in modes]


def compare(graph: G.Graph, chips, inputs, labels=None, *, modes=None, strict: bool = True,
            limits: dict | None = None, progress=None, on_chunk=None, chunk: int = 10,
            **engine_kw) -> Comparison:
    """Simulate ``inputs`` on every chip of ``chips`` (names, TOML paths or ChipSpecs; a
    comma-separated string works too). ``modes`` restricts the runs to some of "sync",
    "async-windowed", "async-free". ``strict``: a graph that does not fit a chip raises
    ``MappingError`` naming every violation (False: run the best-effort mapping anyway).
    ``limits`` maps a mode ("async-free", ...) to the number of inputs its runs use (the first
    ones; agreement is then measured on those). ``progress(label, n)`` is called before each
    run of n inputs and ``on_chunk(k)`` after every ``chunk`` inputs of it (progress bars).
    Extra keywords go to the engines."""
    if isinstance(chips, str):
        chips = [c.strip() for c in chips.split(",") if c.strip()]
    if not chips:
        raise ValueError("compare needs at least one chip")
    specs = [load_chip(c) for c in chips]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"chip listed twice: {names}")
    plan = []
    for spec in specs:
        for mode, amode in _modes_for(spec, modes):
            plan.append((spec, mode, amode))
    if not plan:
        raise ValueError(f"modes {modes} select no run on chips {names} (sync chips run "
                         "'sync', async chips 'async-windowed' and 'async-free')")
    limits = dict(limits or {})
    bad = [m for m in limits if m not in RUN_MODES]
    if bad:
        raise ValueError(f"limits for unknown mode(s) {bad}; modes are {', '.join(RUN_MODES)}")
    x = np.asarray(inputs)
    op = graph.op(graph.input_node())
    bdim = 1 if x.ndim == len(op.shape) + 2 else 0
    B = x.shape[bdim]
    y = check_labels(labels, B, graph.op(graph.output_node()).shape[0])
    mappings = {s.name: map_graph(graph, s, strict=strict) for s in specs}
    results = []
    for spec, mode, amode in plan:
        label = mode if amode is None else f"{mode}-{amode}"
        k = min(B, int(limits.get(label, B)))
        if k < 1:
            raise ValueError(f"limit for {label} must be >= 1 input, got {limits[label]}")
        if progress is not None:
            progress(f"{spec.name}/{label}", k)
        kw = dict(engine_kw)
        if mode == "async":
            kw["async_mode"] = amode
        xk = x[:, :k] if bdim else x[:k]
        r = simulate_batched(graph, spec, xk, mode, labels=None if y is None else y[:k],
                             mapping=mappings[spec.name], chunk=chunk, on_chunk=on_chunk, **kw)
        attach_energy(r, spec, mapping=mappings[spec.name])
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
                   "overflow", "async_mode"}


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
    """``neurosim.run.simulate`` over consecutive chunks of ``chunk`` inputs, merged into one
    RunResult (``merge_results``); ``on_chunk(k)`` is called after each chunk of k inputs
    (progress bars). Inputs are [B, ...] static or [T, B, ...] event frames."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    x = np.asarray(inputs)
    op = graph.op(graph.input_node())
    bdim = 1 if x.ndim == len(op.shape) + 2 else 0
    B = x.shape[bdim]
    y = check_labels(labels, B, graph.op(graph.output_node()).shape[0])
    if "mapping" not in kw or kw["mapping"] is None:
        kw["mapping"] = map_graph(graph, chip, strict=kw.pop("strict", None) is not False)
    parts = []
    for i in range(0, B, chunk):
        sl = slice(i, min(i + chunk, B))
        xb = x[:, sl] if bdim else x[sl]
        parts.append(simulate(graph, chip, xb, mode, labels=None if y is None else y[sl], **kw))
        if on_chunk is not None:
            on_chunk(sl.stop - sl.start)
    return merge_results(parts)


__all__ = ["Comparison", "compare", "run_label", "RUN_MODES", "merge_results",
           "simulate_batched"]
