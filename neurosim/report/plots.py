"""Plots of simulation results (matplotlib, Agg backend, PNG). Every function takes plain data
(the dicts written to ``result.json``), writes one PNG and returns its path, so a report can be
re-drawn from ``result.json`` alone. Output is deterministic: fixed styles, no dates, no
software stamp, ``svg.hashsalt`` fixed.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from neurosim.costing.energy import CATEGORY_LABELS, ENERGY_CATEGORIES  # noqa: E402
from neurosim.ir.units import fmt_energy, fmt_time  # noqa: E402
from neurosim.report.timeline_data import (PIXELS, busy_fraction, core_ticks,  # noqa: E402
                                           mostly_subpixel)

DPI = 120
STYLE = {"svg.hashsalt": "neurosim", "font.size": 9, "axes.titlesize": 10,
         "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
         "path.simplify": False}
COLORS = dict(zip(ENERGY_CATEGORIES, ["#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a",
                                      "#d62728", "#9467bd", "#c5b0d5", "#7f7f7f"]))
_E = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ"), (1e-12, "pJ"))
_S = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))


def _unit(values, table) -> tuple[float, str]:
    """Scale and unit name so the largest |value| reads between 1 and 1000."""
    m = max((abs(float(v)) for v in values if v is not None), default=0.0)
    for scale, name in table:
        if m >= scale:
            return scale, name
    return table[-1]


def _save(fig, path, extra=()) -> Path:
    """PNG at ``DPI``; ``extra``: artists outside the axes that the tight box must include
    (a second legend added with ``add_artist``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None},
                bbox_extra_artists=list(extra) or None)
    plt.close(fig)
    return path


def _log_axis(ax, axis: str, values) -> bool:
    """A log scale on ``axis`` ("x" or "y") when some value is positive; otherwise (a zero
    energy table, an empty run) a linear axis that says so, since a log axis holding no
    positive value cannot be drawn. Returns whether the axis is logarithmic."""
    if any(v is not None and np.isfinite(v) and v > 0 for v in np.ravel(values)):
        getattr(ax, f"set_{axis}scale")("log")
        return True
    getattr(ax, f"set_{axis}lim")(0.0, 1.0)
    ax.text(0.5, 0.6, "all values are zero", transform=ax.transAxes, ha="center",
            va="center", fontsize=9, color="#555555")
    return False


def _style():
    return plt.rc_context(STYLE)


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


# ----------------------------------------------------------------------------- energy
def energy_by_layer(layers: list[tuple[str, dict]], path, *, title: str,
                    static_j: float | None = None) -> Path:
    """Stacked horizontal bars: dynamic energy per layer (J per inference) by category.
    ``layers``: [(layer name, {category: J})] in network order."""
    cats = [c for c in ENERGY_CATEGORIES if c != "static"
            and any(d.get(c, 0) > 0 for _, d in layers)]
    totals = [sum(d.values()) for _, d in layers]
    scale, unit = _unit(totals, _E)
    n = len(layers)
    with _style():
        fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.24 * n + 1.3)))
        y = np.arange(n)
        left = np.zeros(n)
        for c in cats:
            vals = np.array([d.get(c, 0.0) for _, d in layers]) / scale
            ax.barh(y, vals, left=left, color=COLORS[c], label=CATEGORY_LABELS[c], height=0.75)
            left += vals
        ax.set_yticks(y, [_short(name) for name, _ in layers])
        ax.invert_yaxis()
        ax.set_ylim(max(n, 1) - 0.5, -0.5)
        ax.set_xlabel(f"dynamic energy per inference ({unit})")
        ax.set_ylabel("layer (network order)")
        sub = "" if not static_j else f"\nstatic energy, not attributable to layers: " \
                                      f"{fmt_energy(static_j)} per inference"
        ax.set_title(title + sub)
        ax.grid(axis="x", alpha=0.3)
        if cats:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="category",
                      frameon=False)
        else:                            # a zero energy table: nothing to stack
            ax.text(0.5, 0.6, "no dynamic energy", transform=ax.transAxes, ha="center",
                    va="center", fontsize=9, color="#555555")
        return _save(fig, path)


def energy_by_category(runs: list[tuple[str, dict]], path, *, title: str) -> Path:
    """Grouped horizontal bars (log scale): energy per inference by category, one bar per run.
    ``runs``: [(run label, {category: J per inference})]."""
    cats = [c for c in ENERGY_CATEGORIES if any(d.get(c, 0) > 0 for _, d in runs)]
    k = len(runs)
    with _style():
        fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.3 * len(cats) * max(k, 1) + 1.2)))
        h = 0.8 / max(k, 1)
        cmap = plt.get_cmap("tab10")
        vals_all = [d.get(c, 0) for _, d in runs for c in cats if d.get(c, 0) > 0]
        scale, unit = _unit(vals_all, _E)
        for i, (label, d) in enumerate(runs):
            ys = np.arange(len(cats)) + (i - (k - 1) / 2) * h
            vals = np.array([d.get(c, 0.0) for c in cats]) / scale
            ax.barh(ys, np.where(vals > 0, vals, np.nan), height=h * 0.92, color=cmap(i % 10),
                    label=label)
        ax.set_yticks(np.arange(len(cats)), [CATEGORY_LABELS[c] for c in cats])
        ax.invert_yaxis()
        log = _log_axis(ax, "x", vals_all)
        ax.set_xlabel(f"energy per inference ({unit}{', log scale' if log else ''})")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3, which="both")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="run", frameon=False)
        return _save(fig, path)


# ----------------------------------------------------------------------------- activity
def firing_rates(rates: list[tuple[str, float]], path, *, title: str,
                 ylabel: str = "spikes per neuron per time step") -> Path:
    """Bars: firing rate of every neuron population, in network order."""
    n = len(rates)
    with _style():
        fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.22 * n + 1.3)))
        y = np.arange(n)
        ax.barh(y, [r for _, r in rates], color="#1f77b4", height=0.75)
        ax.set_yticks(y, [_short(name) for name, _ in rates])
        ax.invert_yaxis()
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(ylabel)
        ax.set_ylabel("neuron population (network order)")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        return _save(fig, path)


def sync_timeline(tick_s: list[float], core_busy: dict, spikes: list[tuple[str, list]], path,
                  *, title: str, ticks_per_step: int = 1,
                  core_labels: dict[int, list[str]] | None = None) -> Path:
    """Two panels for a synchronous run (first input): busy cycles of every used core per tick
    (heatmap; rows labelled by the layers mapped to them, ``core_labels``: core -> layers), and
    spikes per time step of every population (mean over the inputs)."""
    cores = sorted(core_busy, key=int)
    busy = np.array([core_busy[c] for c in cores], dtype=float)
    sp = np.array([s for _, s in spikes], dtype=float) if spikes else np.zeros((0, 1))
    pos, text = core_ticks([int(c) for c in cores], core_labels)
    hb = max(2.2, 0.05 * len(cores) + 1.5, 0.16 * len(pos) + 1.2)
    hs = max(2.2, 0.16 * len(spikes) + 1.2)
    with _style():
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, hb + hs), height_ratios=[hb, hs],
                                     layout="constrained")
        masked = np.ma.masked_less_equal(busy, 0)
        vmax = max(float(busy.max()) if busy.size else 1.0, 1.0)
        im = a1.imshow(masked, aspect="auto", interpolation="nearest", cmap="viridis",
                       norm=LogNorm(vmin=max(1.0, float(masked.min()) if masked.count() else 1.0),
                                    vmax=vmax))
        ts, tu = _unit([sum(tick_s)], _S)
        a1.set_xlabel(f"tick ({len(tick_s)} ticks lasting {sum(tick_s) / ts:.3g} {tu} in all"
                      + (f"; {ticks_per_step} ticks per time step" if ticks_per_step > 1 else "")
                      + ")")
        a1.set_ylabel(f"core ({len(cores)} used)"
                      + (", labelled by the layers mapped to it" if core_labels else ""))
        a1.set_yticks(pos, text)
        a1.set_title(title)
        fig.colorbar(im, ax=a1, label="busy cycles per tick (log)")
        if len(spikes) and sp.shape[1] > 1:
            im2 = a2.imshow(sp, aspect="auto", interpolation="nearest", cmap="magma")
            a2.set_yticks(range(len(spikes)), [_short(n, 30) for n, _ in spikes])
            a2.set_xticks(range(sp.shape[1]))
            a2.set_xlabel("time step")
            a2.set_title("firing rate per time step of every population (mean over inputs)")
            fig.colorbar(im2, ax=a2, label="spikes per neuron per time step")
        elif len(spikes):                          # one time step: bars read better
            a2.barh(range(len(spikes)), sp[:, 0], color="#b5367a", height=0.75)
            a2.set_yticks(range(len(spikes)), [_short(n, 30) for n, _ in spikes])
            a2.set_ylim(len(spikes) - 0.5, -0.5)
            a2.set_xlabel("spikes per neuron in the time step (mean over inputs; an SFA burst "
                          "of n spikes counts n)")
            a2.set_title("firing rate of every population (one time step)")
            a2.grid(axis="x", alpha=0.3)
        else:
            a2.set_axis_off()
        return _save(fig, path)


def async_timeline(items: list, path, *, title: str,
                   core_labels: dict[int, list[str]] | None = None) -> Path:
    """Work items per core over time (first input): one row per core (labelled by the layers
    mapped to it, ``core_labels``: core -> layers), one bar per batch served, coloured by kind.
    When most items are shorter than a pixel (long event streams), the row shows instead the
    fraction of each time bin the core was busy (``timeline_data.busy_fraction``), so short
    work stays visible rather than vanishing between pixels."""
    cores = sorted({int(it[0]) for it in items})
    end = max((float(it[2]) for it in items), default=0.0)
    scale, unit = _unit([end], _S)
    pos, text = core_ticks(cores, core_labels)
    with _style():
        fig, ax = plt.subplots(figsize=(9, max(2.5, 0.2 * len(cores) + 1.4)))
        if mostly_subpixel(items, end):
            grid = np.ma.masked_less_equal(busy_fraction(items, cores, end, PIXELS), 0)
            im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                           norm=LogNorm(vmin=max(float(grid.min()), 1e-4), vmax=max(
                               float(grid.max()), 1.0)),
                           extent=(0, end / scale, len(cores) - 0.5, -0.5))
            fig.colorbar(im, ax=ax, pad=0.02, label="fraction of the bin the core is busy (log)")
            ax.set_facecolor("#f4f4f4")
            title += (f"\n{len(items):,} work items, most shorter than a pixel: busy fraction "
                      f"per {fmt_time(end / PIXELS)} bin")
        else:
            _work_bars(ax, items, cores, scale)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="work item",
                      frameon=False)
        ax.set_yticks(pos, text)
        ax.set_ylim(len(cores) - 0.5, -0.5)
        ax.set_xlim(0, end / scale * 1.01 if end else 1)
        ax.set_xlabel(f"time since the input's first event ({unit})")
        ax.set_ylabel("core" + (", labelled by the layers mapped to it" if core_labels else ""))
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        return _save(fig, path)


def _work_bars(ax, items: list, cores: list[int], scale: float) -> None:
    """One bar per work item, coloured by kind (the readable case of ``async_timeline``)."""
    kinds = sorted({str(it[4]) for it in items})
    cmap = plt.get_cmap("tab10")
    row = {c: i for i, c in enumerate(cores)}
    for i, k in enumerate(kinds):
        segs: dict = {}
        for c, s, e, _, kk in items:
            if str(kk) == k:
                segs.setdefault(int(c), []).append((float(s) / scale,
                                                    max((float(e) - float(s)) / scale, 0.0)))
        for c, bars in segs.items():
            ax.broken_barh(bars, (row[c] - 0.4, 0.8), facecolors=cmap(i % 10),
                           label=k if c == min(segs) else None)


def _binned_max(trace: list, edges: np.ndarray) -> np.ndarray:
    """Max of a step function (sorted [time, value] points, 0 before the first) per bin."""
    t = np.array([float(a) for a, _ in trace])
    v = np.array([float(b) for _, b in trace])
    out = np.zeros(len(edges) - 1)
    for i in range(len(edges) - 1):
        before = np.searchsorted(t, edges[i], side="right") - 1
        start = v[before] if before >= 0 else 0.0
        inside = v[(t >= edges[i]) & (t < edges[i + 1])]
        out[i] = max(start, inside.max() if inside.size else 0.0)
    return out


def fifo_occupancy(traces: dict, path, *, title: str, depth: int | None = None,
                   bins: int = 240) -> Path:
    """Input-FIFO occupancy of every core over time (first input): a heatmap of the highest
    occupancy (events) per time bin, one row per core that queued anything."""
    cores = sorted((c for c in traces if traces[c]), key=int)
    end = max((float(t) for c in cores for t, _ in traces[c]), default=0.0) or 1e-9
    scale, unit = _unit([end], _S)
    edges = np.linspace(0.0, end * (1 + 1e-9), bins + 1)
    grid = np.array([_binned_max(traces[c], edges) for c in cores]) if cores \
        else np.zeros((1, bins))
    with _style():
        fig, ax = plt.subplots(figsize=(9, max(2.6, 0.17 * len(cores) + 1.4)))
        im = ax.imshow(np.ma.masked_equal(grid, 0), aspect="auto", interpolation="nearest",
                       cmap="viridis", vmin=0, vmax=depth or max(float(grid.max()), 1.0),
                       extent=(0, end / scale, len(cores) - 0.5, -0.5))
        step = max(1, len(cores) // 30)
        ticks = range(0, len(cores), step)
        ax.set_yticks(ticks, [str(cores[i]) for i in ticks])
        ax.set_xlabel(f"time since the input's first event ({unit})")
        ax.set_ylabel(f"core ({len(cores)} with queued events)")
        ax.set_title(title)
        ax.set_facecolor("#f4f4f4")
        cb = fig.colorbar(im, ax=ax, pad=0.02)
        cb.set_label("peak FIFO occupancy in the bin (events)"
                     + (f"; depth {depth}" if depth else ""))
        return _save(fig, path)


# ----------------------------------------------------------------------------- comparisons
def _label_bars(ax, x, heights, texts) -> None:
    for xi, h, t in zip(x, heights, texts):
        ax.annotate(t, (xi, h), xytext=(0, 2), textcoords="offset points", ha="center",
                    va="bottom", fontsize=7.5)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, max(hi, float(np.nanmax(heights)) * 1.12 if len(heights) else hi))


def run_comparison(rows: list[dict], path, *, title: str) -> Path:
    """Energy (dynamic and static, log scale; total and average power written above), latency
    and accuracy per inference of every run, side by side."""
    from neurosim.ir.units import fmt_energy, fmt_power, fmt_time
    ns = {r.get("n") for r in rows}
    labels = [f"{r['chip']}\n{r['mode']}" + (f"\n(n={r['n']})" if len(ns) > 1 else "")
              for r in rows]
    e = np.array([r["energy_per_inference_j"] for r in rows])
    dyn = np.array([r.get("dynamic_per_inference_j", r["energy_per_inference_j"]) for r in rows])
    sta = e - dyn
    lat = [r["latency_per_inference_s"] for r in rows]
    acc = [r["accuracy"] if r["accuracy"] is not None else np.nan for r in rows]
    agr = [r["agreement"] for r in rows]
    es, eu = _unit(e, _E)
    ls, lu = _unit(lat, _S)
    x = np.arange(len(rows))
    w = 0.38
    with _style():
        fig, axs = plt.subplots(1, 3, figsize=(max(10.0, 2.6 * len(rows) + 3), 4.0),
                                layout="constrained")
        axs[0].bar(x - w / 2, np.where(dyn > 0, dyn / es, np.nan), width=w, color="#1f77b4",
                   label="dynamic")
        axs[0].bar(x + w / 2, np.where(sta > 0, sta / es, np.nan), width=w, color="#9edae5",
                   label="static")
        log = _log_axis(axs[0], "y", np.concatenate([dyn, sta]))
        top = np.maximum(dyn, sta) / es
        for xi, t, tot, r in zip(x, top, e, rows):
            pw = r.get("average_power_w")
            axs[0].annotate(f"total {fmt_energy(tot)}" + (f"\n{fmt_power(pw)}" if pw else ""),
                            (xi, t), xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize=7.5)
        lo, hi = axs[0].get_ylim()
        axs[0].set_ylim(lo, hi * 8 if log else hi * 1.2)
        axs[0].set_ylabel(f"energy per inference ({eu}{', log scale' if log else ''})")
        axs[0].set_title("energy")
        axs[0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, frameon=False)
        axs[1].bar(x, np.array(lat) / ls, color="#ff7f0e")
        _label_bars(axs[1], x, np.array(lat) / ls, [fmt_time(v) for v in lat])
        axs[1].set_ylabel(f"latency per inference ({lu})")
        axs[1].set_title("latency")
        axs[2].bar(x - w / 2, acc, width=w, color="#2ca02c", label="accuracy")
        axs[2].bar(x + w / 2, agr, width=w, color="#98df8a", label="agreement with exact")
        _label_bars(axs[2], x - w / 2, np.nan_to_num(acc), [f"{v:.2f}" for v in acc])
        _label_bars(axs[2], x + w / 2, agr, [f"{v:.2f}" for v in agr])
        axs[2].set_ylim(0, 1.12)
        axs[2].set_ylabel("fraction of inputs")
        axs[2].set_title("accuracy")
        axs[2].legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=1, frameon=False)
        for a in axs:
            a.set_xticks(x, labels)
            a.grid(axis="y", alpha=0.3)
        fig.suptitle(title)
        return _save(fig, path)


def paper_vs_event(rows: list[dict], path, *, title: str) -> Path:
    """Per layer: the paper's SOPs / MACs beside the event-level count (per inference)."""
    n = len(rows)
    vals = [max(r["paper"], r["event"]) for r in rows]
    scale = 1e6 if max(vals, default=0) >= 1e6 else 1e3 if max(vals, default=0) >= 1e3 else 1
    uname = {1e6: "millions", 1e3: "thousands", 1: ""}[scale]
    with _style():
        fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.26 * n + 1.3)))
        y = np.arange(n)
        h = 0.38
        ax.barh(y - h / 2, [r["paper"] / scale for r in rows], height=h, color="#7f7f7f",
                label="paper convention (float model)")
        ax.barh(y + h / 2, [r["event"] / scale for r in rows], height=h, color="#1f77b4",
                label="event level (chip run)")
        ax.set_yticks(y, [f"{_short(r['layer'], 30)} [{r['op_type']}]" for r in rows])
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(f"operations per inference ({uname + ', ' if uname else ''}"
                      "SOPs or MACs)")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _save(fig, path)


def energy_vs_accuracy(points: list[dict], path, *, title: str) -> Path:
    """Two scatter panels sharing the accuracy axis: energy per inference (log), total on the
    left, dynamic alone on the right (static excluded), one point per (model, run).
    ``points``: dicts with model, run, energy_j, dynamic_j (optional: total only), accuracy."""
    models = sorted({p["model"] for p in points})
    runs = sorted({p["run"] for p in points})
    markers = dict(zip(runs, "osD^vP*X"))
    cmap = plt.get_cmap("tab10")
    panels = [("energy_j", "total energy per inference (dynamic + static,\neach chip's "
                           "default power gating)")]
    if all(p.get("dynamic_j") is not None for p in points):
        panels.append(("dynamic_j", "dynamic energy per inference\n(static excluded)"))
    vals = [p[k] for p in points for k, _ in panels if p[k] > 0]
    scale, unit = _unit(vals, _E)
    with _style():
        fig, axs = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2.2, 4.8),
                                sharey=True, squeeze=False)
        fig.subplots_adjust(top=0.84, wspace=0.06)
        for ax, (key, label) in zip(axs[0], panels):
            for i, m in enumerate(models):
                for p in points:
                    if p["model"] == m and p[key] > 0:
                        ax.scatter(p[key] / scale, p["accuracy"], color=cmap(i % 10),
                                   marker=markers[p["run"]], s=55, edgecolor="k",
                                   linewidth=0.5)
            ax.set_xscale("log")
            ax.set_xlabel(f"{unit}, log scale")
            ax.set_title(label)
            ax.grid(alpha=0.3, which="both")
        lo, hi = min(vals) / scale, max(vals) / scale
        for ax in axs[0]:
            ax.set_xlim(lo / 2, hi * 2)                # the same x range: panels compare
        accs = [p["accuracy"] for p in points]
        axs[0][0].set_ylim(max(0.0, min(accs, default=0.0) - 0.1), 1.02)
        axs[0][0].set_ylabel("accuracy")
        sup = fig.suptitle(title, y=0.97)
        from matplotlib.lines import Line2D
        h1 = [Line2D([], [], color=cmap(i % 10), marker="o", linestyle="", label=m)
              for i, m in enumerate(models)]
        h2 = [Line2D([], [], color="0.4", marker=markers[r], linestyle="", label=r)
              for r in runs]
        last = axs[0][-1]
        leg = last.legend(handles=h1, title="model", loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), frameon=False)
        last.add_artist(leg)
        leg2 = last.legend(handles=h2, title="chip / mode", loc="upper left",
                           bbox_to_anchor=(1.02, 0.45), frameon=False)
        return _save(fig, path, extra=(leg, leg2, sup))


__all__ = ["energy_by_layer", "energy_by_category", "firing_rates", "sync_timeline",
           "async_timeline", "fifo_occupancy", "run_comparison", "paper_vs_event",
           "energy_vs_accuracy"]
