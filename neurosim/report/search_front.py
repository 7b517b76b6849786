"""Energy-accuracy fronts of architecture searches: 2-D hypervolume and one plot comparing
candidate sets (e.g. an evolutionary search and random sampling of as many candidates).

Hypervolume (minimise energy, maximise accuracy): the area dominated by a set's Pareto front
and bounded by the reference point (``ref_energy``, ``ref_accuracy``), by default the worst
energy and the worst accuracy over every set compared, so all sets share one reference. It is
also given normalised by the reference box (the product of the two ranges over all sets).

Coverage (Zitzler & Thiele 1999, "C metric"): C(A, B) is the share of B's front points that
some point of A weakly dominates (at most the energy and at least the accuracy). C(A, B) = 1
and C(B, A) < 1 means A's front dominates B's: every point B found, A matched or beat, and A
found a point B did not reach. Hypervolume says by how much; coverage says whether.
"""
from __future__ import annotations

from pathlib import Path

from .pareto import pareto_front


def hypervolume(energies, accuracies, ref_energy: float, ref_accuracy: float) -> float:
    """Area (J x accuracy) dominated by the points and bounded by the reference point; points
    that do not improve on it in both coordinates add nothing."""
    if len(energies) != len(accuracies):
        raise ValueError(f"hypervolume: {len(energies)} energies but {len(accuracies)} "
                         f"accuracies")
    pts = sorted((e, a) for e, a in zip(energies, accuracies)
                 if e < ref_energy and a > ref_accuracy)
    area, best = 0.0, ref_accuracy
    for i, (e, a) in enumerate(pts):           # sweep in increasing energy
        if a <= best:
            continue
        e_next = ref_energy
        for e2, a2 in pts[i + 1:]:
            if a2 > a:
                e_next = e2
                break
        area += (e_next - e) * (a - ref_accuracy)
        best = a
    return area


def coverage(a: tuple, b: tuple) -> float:
    """C(A, B): the share of B's Pareto-front points weakly dominated by a point of A; ``a``
    and ``b`` are (energies, accuracies). 1.0 when B is empty."""
    (ea, aa), (eb, ab) = a, b
    if len(ea) != len(aa) or len(eb) != len(ab):
        raise ValueError("coverage: every set needs as many energies as accuracies")
    front = pareto_front(eb, ab)
    if not front:
        return 1.0
    covered = sum(any(e <= eb[i] and x >= ab[i] for e, x in zip(ea, aa)) for i in front)
    return covered / len(front)


def compare_fronts(sets: dict) -> dict:
    """``sets``: name -> (energies, accuracies). Per set: its front's indices, hypervolume and
    normalised hypervolume against the shared reference point (module doc)."""
    all_e = [e for es, _ in sets.values() for e in es]
    all_a = [a for _, accs in sets.values() for a in accs]
    if not all_e:
        raise ValueError("compare_fronts needs at least one point")
    ref_e, ref_a = max(all_e), min(all_a)
    box = (ref_e - min(all_e)) * (max(all_a) - ref_a)
    out = {"reference": {"energy_j": ref_e, "accuracy": ref_a}}
    for name, (es, accs) in sets.items():
        hv = hypervolume(es, accs, ref_e, ref_a)
        out[name] = {"n": len(es), "front": pareto_front(es, accs),
                     "hypervolume": hv, "hypervolume_normalised": hv / box if box else 0.0}
    return out


def plot_fronts(sets: dict, path, *, title: str, xlabel: str = "energy per inference (uJ)",
                x_scale: float = 1e6) -> Path:
    """Scatter every set (energy x ``x_scale`` against accuracy in %), draw each front as a
    step line (solid and wide for the first set, then dashed and narrower, so fronts that
    coincide stay visible) and name each set's hypervolume in the legend."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    stats = compare_fronts(sets)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = (("tab:purple", "-", 3.5), ("tab:orange", "--", 2.0), ("tab:green", ":", 2.0),
              ("tab:blue", "-.", 1.5))
    for (name, (es, accs)), (color, ls, lw) in zip(sets.items(), styles):
        xs = [e * x_scale for e in es]
        ys = [100 * a for a in accs]
        s = stats[name]
        ax.scatter(xs, ys, s=18, alpha=0.45, color=color)
        fr = sorted(s["front"], key=lambda i: xs[i])
        ax.step([xs[i] for i in fr], [ys[i] for i in fr], where="post", color=color, lw=lw,
                ls=ls,
                label=f"{name}: {s['n']} candidates, hypervolume "
                      f"{s['hypervolume_normalised']:.3f} (normalised)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["compare_fronts", "coverage", "hypervolume", "plot_fronts"]
