"""Static energy of a run: per-core leakage and the uncore, under a power-gating policy.

The chip file's ``[power]`` gives the model (``chips.spec.PowerSpec``): ``leakage_per_core_w``
(W per powered core), ``uncore_static_w`` (W, shared parts: I/O, clock, routers; on whenever
the chip is), ``wake_energy_pj`` / ``wake_latency_ns`` and the default ``power_gating``. For one
inference of latency L (first input to decision):

    E_static = uncore_w x L + sum over powered cores c of E_c

    none     E_c = leak_c x L                        for every core of the chip
    unused   E_c = leak_c x L                        for the cores holding a mapped part
    idle     E_c = leak_c x (busy_c + kept_c) + wake_j x wakes_c    for the cores with work

Under ``idle`` a core is on while it has work (a sync tick in which it has busy cycles; an async
busy interval) and off otherwise; an idle gap between two busy stretches is bridged (the core
kept on, ``kept_c``) when it is no longer than the break-even time ``max(wake_j / leak_c,
wake_latency)``, else the core is gated and pays one wake-up; every inference starts with the
core off (one wake-up before its first work). The controller is an oracle that knows each gap's
length, so ``idle`` is a lower bound on static energy. Wake-up latency only decides which gaps
can be gated; the engines do not delay work by it (a clocked chip knows its schedule and can
wake a core one tick ahead; on an asynchronous chip a cold core would add up to
``wake_latency`` to its first event, not modelled).

Only the first input's timeline records busy windows (``RunResult.timeline``), so ``idle`` is
computed exactly for input 0 and extrapolated: each core's static energy of input 0 is scaled
by (total latency of all inputs) / (latency of input 0). ``basis`` says so. ``none`` and
``unused`` are exact for every input. A table with ``static_power_w`` (the 45 nm paper
convention: 0) replaces the model by that constant whole-chip power.

Energies are exact ``Fraction`` joules (``neurosim.costing.energy`` rounds them once); which
gaps are gated is decided on the float times of the timeline.
"""
from __future__ import annotations

import math
from fractions import Fraction

from chips.spec import GATING_POLICIES, ChipSpec

POLICIES = GATING_POLICIES
UNCORE = "uncore"                  # key of the shared parts in per-core breakdowns


def _f(x) -> Fraction:
    return Fraction(float(x))


def _check_policy(policy: str, where: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"{where}: unknown power-gating policy {policy!r}; policies are "
                         f"{', '.join(POLICIES)}")
    return policy


def used_cores(result, mapping=None) -> list[int]:
    """Cores that are powered under ``unused``: those holding a mapped part of the graph
    (``mapping.cores``) or, without a mapping, those that counted any operation."""
    if mapping is not None:
        return sorted(int(c) for c in mapping.cores)
    return sorted(int(c) for c, d in result.core_counts.items() if any(int(v) for v in d.values()))


# ----------------------------------------------------------------------------- busy windows
def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, merged (start, end) intervals (float comparisons are exact)."""
    out: list = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def busy_windows(timeline: dict | None) -> dict[int, list[tuple[float, float]]]:
    """Per core, the merged (start, end) seconds of the first input during which it had work:
    sync timelines (``tick_start_s``, ``tick_s``, ``core_busy_cycles``): the ticks with busy
    cycles; async timelines (``items``: [core, start, end, node, kind]): the busy intervals."""
    if not timeline:
        raise ValueError("power_gating 'idle' needs the run's timeline (per-core busy windows "
                         "of the first input); this result has none")
    per: dict[int, list] = {}
    if "core_busy_cycles" in timeline:
        starts, lens = timeline["tick_start_s"], timeline["tick_s"]
        for c, busy in timeline["core_busy_cycles"].items():
            iv = [(float(starts[g]), float(starts[g]) + float(lens[g]))
                  for g, b in enumerate(busy) if b > 0]
            if iv:
                per[int(c)] = iv
    elif "items" in timeline:
        for c, s, e, *_ in timeline["items"]:
            per.setdefault(int(c), []).append((float(s), float(e)))
    else:
        raise ValueError(f"timeline has neither 'core_busy_cycles' (sync) nor 'items' (async): "
                         f"keys {sorted(timeline)}")
    return {c: _merge(iv) for c, iv in per.items()}


def _exact_sum(xs) -> Fraction:
    """The exact sum of floats (integer arithmetic on their binary fractions; fast)."""
    parts = [float(x).as_integer_ratio() for x in xs]
    if not parts:
        return Fraction(0)
    den = max(d for _, d in parts)                  # every denominator is a power of two
    return Fraction(sum(n * (den // d) for n, d in parts), den)


def gated_core(windows: list, leak_w: Fraction, wake_j: Fraction,
               wake_s: Fraction) -> tuple[Fraction, Fraction, int]:
    """(energy J, seconds on, wake-ups) of one core under ``idle`` for one inference: on during
    its busy ``windows`` (sorted, disjoint (start, end) pairs of float seconds), gaps up to the
    break-even time bridged, one wake-up per gated gap and one before the first window (module
    doc). Exact: seconds on = last end - first start - the gated gaps."""
    if not windows:
        return Fraction(0), Fraction(0), 0
    even = float(max(wake_j / leak_w, wake_s)) if leak_w > 0 else None
    starts, ends = [], []
    for (_, e0), (s1, _) in zip(windows, windows[1:]):
        if even is not None and s1 - e0 > even:
            starts.append(s1)
            ends.append(e0)
    on = _f(windows[-1][1]) - _f(windows[0][0]) - (_exact_sum(starts) - _exact_sum(ends))
    wakes = 1 + len(starts)
    return leak_w * on + wake_j * wakes, on, wakes


# ----------------------------------------------------------------------------- static energy
def static_energy(result, chip: ChipSpec, policy: str | None = None, mapping=None) -> dict:
    """Static energy of ``result`` on ``chip`` under ``policy`` (default: the chip's own).

    Returns ``policy``, ``per_core`` {core: Fraction J} (powered cores only), ``uncore``
    (Fraction J), ``total`` (Fraction J), ``cores_on`` (cores drawing static power),
    ``wakeups`` (idle: over all inputs, extrapolated) and ``basis`` (how it was computed)."""
    if not chip.has_static_model:
        return {"policy": None, "per_core": {}, "uncore": Fraction(0), "total": Fraction(0),
                "cores_on": 0, "wakeups": 0,
                "basis": f"chip {chip.name!r} has no static power model ([power] without "
                         "power_gating, leakage_per_core_w, uncore_static_w)"}
    policy = _check_policy(policy or chip.power.power_gating, f"chip {chip.name!r}")
    lat = [_f(t) for t in result.latency_s]
    total_s = sum(lat, Fraction(0))
    uncore = _f(chip.power.uncore_static_w) * total_s
    if policy in ("none", "unused"):
        cores = range(chip.n_cores) if policy == "none" else used_cores(result, mapping)
        per = {c: _f(chip.leakage_w(c)) * total_s for c in cores}
        basis = ("every core for every inference's latency" if policy == "none" else
                 "the cores holding a mapped part, for every inference's latency"
                 if mapping is not None else
                 "the cores that counted any operation, for every inference's latency")
        return {"policy": policy, "per_core": per, "uncore": uncore,
                "total": uncore + sum(per.values(), Fraction(0)), "cores_on": len(per),
                "wakeups": 0, "basis": basis}
    return _idle(result, chip, lat, total_s, uncore, mapping)


def _idle(result, chip: ChipSpec, lat: list, total_s: Fraction, uncore: Fraction,
          mapping) -> dict:
    p = chip.power
    if p.wake_energy_pj is None or p.wake_latency_ns is None:
        raise ValueError(f"chip {chip.name!r}: power_gating 'idle' needs power.wake_energy_pj "
                         f"and power.wake_latency_ns in {chip.path}")
    wake_j = _f(p.wake_energy_pj) / 10 ** 12
    wake_s = _f(p.wake_latency_ns) / 10 ** 9
    windows = busy_windows(result.timeline)
    allowed = set(used_cores(result, mapping)) if mapping is not None else None
    scale = total_s / lat[0] if lat[0] > 0 else Fraction(len(lat))
    per, wakes = {}, Fraction(0)
    for c, win in sorted(windows.items()):
        if allowed is not None and c not in allowed:
            raise ValueError(f"timeline shows work on core {c}, which holds no mapped part")
        e, _, w = gated_core(win, _f(chip.leakage_w(c)), wake_j, wake_s)
        per[c] = e * scale
        wakes += w * scale
    return {"policy": "idle", "per_core": per, "uncore": uncore,
            "total": uncore + sum(per.values(), Fraction(0)), "cores_on": len(per),
            "wakeups": float(wakes),
            "basis": "busy windows of the first input (gaps up to the break-even time "
                     "bridged), each core's energy scaled by total latency / first latency "
                     f"({float(scale):.4g})"}


def idle_unavailable(result, chip: ChipSpec) -> str | None:
    """Why ``idle`` cannot be computed for ``result`` on ``chip`` (None when it can)."""
    if not chip.has_static_model:
        return f"chip {chip.name!r} has no static power model"
    if chip.power.wake_energy_pj is None or chip.power.wake_latency_ns is None:
        return f"chip {chip.name!r} gives no wake-up cost (power.wake_energy_pj, wake_latency_ns)"
    tl = result.timeline or {}
    if "core_busy_cycles" not in tl and "items" not in tl:
        return "the run recorded no per-core busy windows (timeline)"
    return None


def static_by_policy(result, chip: ChipSpec, mapping=None) -> dict[str, float | None]:
    """Static energy per inference (J) under every policy; None where a policy cannot be
    computed (no static model; ``idle`` without a timeline or a wake-up cost)."""
    n = int(result.n)
    out: dict[str, float | None] = {}
    for pol in POLICIES:
        ok = chip.has_static_model and (pol != "idle" or idle_unavailable(result, chip) is None)
        out[pol] = float(static_energy(result, chip, pol, mapping)["total"] / n) if ok else None
    return out


def static_cells(result, *, chip: ChipSpec | None, table_power_w: float | None,
                 power_gating: str | None, static_power_w: float | None,
                 mapping=None) -> tuple[dict, dict]:
    """The static energy of a run as exact cells {core | "uncore" | "chip": Fraction J} and a
    JSON-ready description. Precedence: the ``static_power_w`` argument, then the energy
    table's ``static_power_w`` (both whole-chip constants, key "chip"), then the chip's
    ``[power]`` model under ``power_gating`` (default: the chip's own policy), else none."""
    const = static_power_w if static_power_w is not None else table_power_w
    if power_gating is not None:
        _check_policy(power_gating, "power_gating")
    if const is not None:
        e = constant_static(result, const)
        src = "argument static_power_w" if static_power_w is not None else \
            "energy table static_power_w"
        info = {"source": src, "policy": None, "basis": f"{const:g} W whole-chip constant for "
                "every inference's latency", "cores_on": None, "wakeups": 0,
                "by_policy_per_inference_j": None}
        return ({"chip": e} if e else {}), info
    if chip is None or not chip.has_static_model:
        why = "no chip given" if chip is None else f"chip {chip.name!r} has no [power] model"
        return {}, {"source": "none", "policy": None, "basis": why, "cores_on": None,
                    "wakeups": 0, "by_policy_per_inference_j": None}
    st = static_energy(result, chip, power_gating, mapping)
    cells = {c: v for c, v in st["per_core"].items() if v}
    if st["uncore"]:
        cells[UNCORE] = st["uncore"]
    info = {"source": "chip [power] model", "policy": st["policy"],
            "default_policy": chip.power.power_gating, "basis": st["basis"],
            "cores_on": st["cores_on"], "wakeups": st["wakeups"],
            "uncore_w": float(chip.power.uncore_static_w),
            "by_policy_per_inference_j": static_by_policy(result, chip, mapping)}
    return cells, info


def constant_static(result, power_w: float) -> Fraction:
    """Static energy of a whole-chip constant power (W) over every inference's latency."""
    if not (math.isfinite(power_w) and power_w >= 0):
        raise ValueError(f"static_power_w must be finite and >= 0, got {power_w!r}")
    return _f(power_w) * sum((_f(t) for t in result.latency_s), Fraction(0))


__all__ = ["POLICIES", "UNCORE", "busy_windows", "constant_static", "gated_core",
           "idle_unavailable", "static_by_policy", "static_cells", "static_energy",
           "used_cores"]
