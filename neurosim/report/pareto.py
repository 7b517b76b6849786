"""Pareto fronts and plots of a sweep's table (``neurosim sweep``): energy vs accuracy and
latency vs energy, one point per row with status ``ok``, coloured by chip and shaped by mode.

A point is on the front when no other point is at least as good in both coordinates and
better in one (energy and latency: lower is better; accuracy: higher). Front points are joined
by a step line and labelled with the row's model and chip parameters. Plots are deterministic
PNGs (matplotlib Agg; the styles of ``neurosim.report.plots``).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from neurosim.report.plots import _E, _S, _save, _unit  # noqa: E402

MARKERS = {"sync": "o", "async-windowed": "s", "async-free": "^"}
STYLE = {"svg.hashsalt": "neurosim", "font.size": 11, "axes.titlesize": 12,
         "axes.labelsize": 11, "legend.fontsize": 10, "xtick.labelsize": 10,
         "ytick.labelsize": 10, "axes.spines.top": False, "axes.spines.right": False,
         "path.simplify": False}


LABEL_ALL_MAX = 12      # label every point of a plot with at most this many points
CELLS = 50              # label grid: points in one cell of CELLS x CELLS share a label


def pareto_front(xs, ys, *, minimize_x: bool = True, maximize_y: bool = True) -> list[int]:
    """Indices of the non-dominated points, sorted by x (ties: input order)."""
    sx = 1.0 if minimize_x else -1.0
    sy = -1.0 if maximize_y else 1.0
    pts = [(sx * float(x), sy * float(y)) for x, y in zip(xs, ys)]
    front = []
    for i, (x, y) in enumerate(pts):
        dominated = any((x2 <= x and y2 <= y) and (x2 < x or y2 < y)
                        for j, (x2, y2) in enumerate(pts) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (pts[i][0], i))


def _label(row: dict, keys: list[str]) -> str:
    extra = ", ".join(f"{k.rpartition('.')[2]}={row[k]}" for k in keys
                      if row.get(k) not in (None, ""))
    return f"{row['model']}" + (f" ({extra})" if extra else "")


def _scatter(ax, rows, xs, ys, chips, colors):
    for r, x, y in zip(rows, xs, ys):
        ax.scatter(x, y, color=colors[r["chip"]], marker=MARKERS.get(r["mode"], "D"), s=70,
                   edgecolor="k", linewidth=0.6, zorder=3, alpha=0.9)


def _legends(ax, chips, colors, modes):
    h1 = [Line2D([], [], color=colors[c], marker="o", linestyle="", markersize=9,
                 markeredgecolor="k", label=c) for c in chips]
    h2 = [Line2D([], [], color="0.55", marker=MARKERS.get(m, "D"), linestyle="", markersize=9,
                 markeredgecolor="k", label=m) for m in modes]
    h3 = [Line2D([], [], color="k", linestyle="--", label="Pareto front")]
    leg = ax.legend(handles=h1, title="chip", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    frameon=False)
    ax.add_artist(leg)
    leg2 = ax.legend(handles=h2 + h3, title="mode", loc="upper left",
                     bbox_to_anchor=(1.02, 0.55), frameon=False)
    return leg, leg2


def _front_line(ax, xs, ys, front, rows, keys, step: str, ylog: bool = False):
    """The front as a step line; labels on the front's points, and on every point when there
    are at most ``LABEL_ALL_MAX`` (points at the same place share one label, one line each)."""
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where=step, color="k", linestyle="--", linewidth=1.2, zorder=2)
    at: dict = {}
    cells = _cells(xs, ys, ylog)
    for i, cell in enumerate(cells):
        at.setdefault(cell, []).append(i)
    on_front = set(front)
    for idx in at.values():
        best = any(i in on_front for i in idx)
        if not best and len(rows) > LABEL_ALL_MAX:
            continue
        text = "\n".join(dict.fromkeys(_label(rows[i], keys) for i in idx))
        right = cells[idx[0]][0] > 0.7 * CELLS       # near the legends: label to the left
        ax.annotate(text, (xs[idx[0]], ys[idx[0]]), textcoords="offset points",
                    xytext=(-6 if right else 6, 6), ha="right" if right else "left",
                    fontsize=9 if best else 8, color="0.15" if best else "0.45", zorder=4,
                    va="bottom")


def _plain_log_axis(axis, vals) -> None:
    """Log-axis tick labels as plain numbers (0.6, 2, 300; not 2 x 10^0); minor ticks are
    labelled over short ranges only (all of them up to 1.2 decades, 2 and 5 up to 2.5)."""
    v = np.asarray(vals, float)
    v = v[v > 0]
    decades = float(np.log10(v.max() / v.min())) if len(v) else 0.0
    keep = (range(1, 10) if decades <= 1.2 else (2, 5) if decades <= 2.5 else ())

    def minor(x, _):
        mant = round(x / 10 ** np.floor(np.log10(x)))
        return f"{x:g}" if mant in keep else ""
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def _cells(xs, ys, ylog: bool, bins: int = CELLS) -> list[tuple[int, int]]:
    """Each point's cell on a ``bins`` x ``bins`` grid over the plotted range (log x; log y
    when ``ylog``): points in one cell would print their labels over each other."""
    def scaled(v, log):
        v = np.log10(np.asarray(v, float)) if log else np.asarray(v, float)
        span = float(v.max() - v.min()) if len(v) else 0.0
        return np.zeros(len(v), int) if span == 0 else np.rint((v - v.min()) / span * bins)
    return list(zip(scaled(xs, True).astype(int).tolist(), scaled(ys, ylog).astype(int).tolist()))


def _plot(rows, keys, path, title, x_of, y_of, xlab, ylab, *, maximize_y, ylog, step):
    chips = list(dict.fromkeys(r["chip"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    cmap = plt.get_cmap("tab10")
    colors = {c: cmap(i % 10) for i, c in enumerate(chips)}
    xs, ys = [x_of(r) for r in rows], [y_of(r) for r in rows]
    front = pareto_front(xs, ys, minimize_x=True, maximize_y=maximize_y)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9.5, 5.8))
        _scatter(ax, rows, xs, ys, chips, colors)
        _front_line(ax, xs, ys, front, rows, keys, step, ylog)
        ax.set_xscale("log")
        axes = [ax.xaxis]
        if ylog:
            ax.set_yscale("log")
            axes.append(ax.yaxis)
        for axis, vals in zip(axes, (xs, ys)):
            _plain_log_axis(axis, vals)
        ax.margins(x=0.06, y=0.1)         # room for the labels of the outermost points
        ax.set_xlabel(xlab)
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3, which="both")
        ax.set_title(title)
        legs = _legends(ax, chips, colors, modes)
        return _save(fig, path, extra=legs), front


def pareto_plots(rows: list[dict], out_dir, *, title: str, override_keys=()) -> dict:
    """Write ``pareto_energy_accuracy.png`` and ``pareto_latency_energy.png`` for the ``ok``
    rows of a sweep table; returns {"files": [...], "energy_accuracy": front rows,
    "latency_energy": front rows} (empty when no row ran)."""
    ok = [r for r in rows if r.get("status") == "ok"
          and r.get("energy_per_inference_j") is not None]
    out = {"files": [], "energy_accuracy": [], "latency_energy": []}
    if not ok:
        return out
    keys = list(override_keys)
    out_dir = Path(out_dir)
    es, eu = _unit([r["energy_per_inference_j"] for r in ok], _E)
    ls, lu = _unit([r["latency_per_inference_s"] for r in ok], _S)
    n = sorted({r["n"] for r in ok})
    n_txt = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    p1, f1 = _plot(ok, keys, out_dir / "pareto_energy_accuracy.png",
                   f"{title}: energy vs accuracy ({n_txt} inputs per point)",
                   lambda r: r["energy_per_inference_j"] / es,
                   lambda r: r["accuracy"] if r["accuracy"] is not None else 0.0,
                   f"energy per inference ({eu}, log scale)", "accuracy",
                   maximize_y=True, ylog=False, step="post")
    p2, f2 = _plot(ok, keys, out_dir / "pareto_latency_energy.png",
                   f"{title}: latency vs energy",
                   lambda r: r["latency_per_inference_s"] / ls,
                   lambda r: r["energy_per_inference_j"] / es,
                   f"latency per inference ({lu}, log scale)",
                   f"energy per inference ({eu}, log scale)",
                   maximize_y=False, ylog=True, step="post")
    out.update(files=[p1, p2], energy_accuracy=[ok[i] for i in f1],
               latency_energy=[ok[i] for i in f2])
    return out


__all__ = ["pareto_front", "pareto_plots"]
