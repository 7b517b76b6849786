"""Event-driven neuron updates behind a conv (``kernels.windowed.touched_parts``): per part,
the output neurons whose receptive window holds an input spike of their group, against the
definition walked neuron by neuron."""
import numpy as np

from chips.engines.kernels import windowed as KW


def _touched(X, groups, k, s, p, Ho, Wo, C_out, starts):
    B, H, W, C = X.shape
    cg, og = C // groups, C_out // groups
    per_c = np.zeros((B, C_out), np.int64)
    for b in range(B):
        for co in range(C_out):
            g = co // og
            for oy in range(Ho):
                for ox in range(Wo):
                    ys = [y for y in range(oy * s - p, oy * s - p + k) if 0 <= y < H]
                    xs = [x for x in range(ox * s - p, ox * s - p + k) if 0 <= x < W]
                    box = X[b][np.ix_(ys, xs)][..., g * cg:(g + 1) * cg] if ys and xs else []
                    per_c[b, co] += bool(np.any(box))
    ends = list(starts[1:]) + [C_out]
    return np.stack([per_c[:, a:e].sum(axis=1) for a, e in zip(starts, ends)], axis=1)


def test_touched_parts_counts_the_neurons_a_window_of_spikes_reaches():
    rng = np.random.default_rng(0)
    cases = 0
    while cases < 60:
        H, W = (int(v) for v in rng.integers(1, 8, 2))
        groups = int(rng.choice([1, 2, 3]))
        C, C_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k, s = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2]))
        p = int(rng.integers(0, k))
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        if Ho < 1 or Wo < 1:
            continue
        X = (rng.random((2, H, W, C)) < rng.choice([0.05, 0.3])).astype(np.float64)
        X *= rng.integers(1, 4, X.shape)                     # spike counts, not only 0 / 1
        cuts = rng.choice(np.arange(1, C_out), int(rng.integers(0, C_out)), replace=False) \
            if C_out > 1 else []
        starts = np.concatenate([[0], np.sort(cuts)]).astype(np.int64)
        out = np.empty((2, len(starts)), np.int64)
        KW.touched_parts(X, groups, k, s, p, Ho, Wo, starts, C_out, out)
        np.testing.assert_array_equal(out, _touched(X, groups, k, s, p, Ho, Wo, C_out, starts))
        cases += 1
