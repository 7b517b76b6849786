"""The model benchmark and the path-cost measurement on tiny workloads: every figure is a
median with min and max, the load is recorded, the fitted constants are valid (no timing is
asserted)."""
import numpy as np

from chips.engines.paths import KINDS, PathModel, check_costs
from neurosim.run.bench import costs, model


def test_bench_model_reports_figures_ratios_paths_and_load():
    r = model.bench_model(repeat=2, batch=2, cases=("tiny",), async_engine=False)
    assert set(r["cases"]) == {"tiny-B1", "tiny-B2"}
    for c in r["cases"].values():
        for k in ("torch", "sync"):
            f = c[k]
            assert f["repeat"] == 2 and f["min_s"] <= f["median_s"] <= f["max_s"]
        assert c["sync_over_torch"] == c["sync"]["median_s"] / c["torch"]["median_s"]
        assert 0.0 <= c["sync"]["scatter_share"] <= 1.0
        assert len(c["load_avg_start"]) == 3 and len(c["load_avg_end"]) == 3
    assert r["machine"]["load_avg_1_5_15min"] is not None
    assert model.acceptance({"tiny-B100": {"sync_over_torch": 1.5, "async_over_sync": 2.0}}) == {
        "tiny-B100.sync_over_torch": {"value": 1.5, "target": 2.0, "met": True},
        "tiny-B100.async_over_sync": {"value": 2.0, "target": 1.5, "met": False}}


def test_path_cost_measurement_gives_a_valid_model(monkeypatch):
    small = {"conv": [dict(ci=4, co=4, hw=6, k=3), dict(ci=2, co=2, hw=4, k=3)],
             "conv1x1": [dict(ci=4, co=4, hw=6, k=1), dict(ci=2, co=2, hw=4, k=1)],
             "depthwise": [dict(ci=4, co=4, hw=6, k=3, g=4), dict(ci=2, co=2, hw=4, k=3, g=2)],
             "linear": [dict(ci=32, co=16), dict(ci=8, co=8)],
             "matmul": [dict(c=8, hw=3, heads=2), dict(c=4, hw=2, heads=2)]}
    monkeypatch.setattr(costs, "LAYERS", small)
    m, points = costs.measure_path_model(repeat=1, sample_s=0.0)
    assert isinstance(m, PathModel) and set(m.costs) == set(KINDS)
    assert check_costs(m.costs) == m.costs
    for kind in KINDS:
        assert len(points[kind]["scatter"]) == len(costs.SCATTER_POINTS)
        assert all(p["s"] > 0 for p in points[kind]["scatter"] + points[kind]["dense"])
    fig = costs.linear_in_engine(m, size=64, density=0.1, repeat=1, sample_s=0.0)
    assert fig["path"] in ("scatter", "dense") and fig["events_per_s"] > 0
    assert np.isclose(fig["synaptic_events"], fig["events_per_s"] * fig["s_per_step"])
