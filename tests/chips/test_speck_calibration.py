"""Speck's per-SynOp energy, calibrated on its own silicon (Yao et al. 2024 Table 1) by
``scripts/calibrate_speck.py``: the held-out rows within 25% of the measured power, and the
shipped energy table holding the fitted value."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from chips.energy_table import load_energy_table
from chips.mapping import map_graph
from neurosim.ir import graph as G

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_speck.py"


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location("calibrate_speck", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_speck"] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cal(cs):
    return cs.calibrate()          # the script's defaults: 135 ticks, vanilla rows fitted


def test_table1_network_maps_on_five_speck_cores_with_the_pool_on_its_core(cs):
    g = cs.build_network(11, 4)
    m = map_graph(g, "speck")
    assert m.fits and len(m.cores) == 5 and len(m.layers) == 5
    assert m.layer_of["pool2"] == m.layer_of["iaf2"] == "conv2"


def test_streams_carry_the_published_spike_counts(cs, cal):
    for r in cs.TABLE1:
        c = cal["counts"][r.key]
        assert c["published_count"] == pytest.approx(r.spikes, rel=0.02), r.key
        assert c["cores"] == 5
        assert 0 < c["input_events"] < c["published_count"]
        layers = c["by_layer"]
        assert sum(v["synops"] for v in layers.values()) == c["synops"]
        # every input event of the first conv reaches at most C_out x 3 x 3 targets
        assert layers["conv0"]["synops"] <= 32 * 9 * c["input_events"]


def test_held_out_rows_within_25_percent_of_measured_power(cs, cal):
    held = [r for r in cal["rows"] if not r["fit"]]
    assert [r["row"] for r in held] == [r.key for r in cs.TABLE1 if r.model == "attention"]
    for r in held:
        assert abs(r["error"]) <= 0.25, r
    assert 20 < cal["e_synop_pj"] < 60
    text = cs.report(cal)
    assert "held out: worst" in text and "fitted E_synop" in text


def test_energy_table_holds_the_fitted_synop(cal):
    tab = load_energy_table("speck")
    e = tab.ac_pj + tab.weight_read_pj + tab.membrane_read_pj + tab.membrane_write_pj
    assert e == pytest.approx(cal["e_synop_pj"], abs=0.06)
    src = tab.provenance["actions.ac_pj"]
    assert "DVS Gesture/vanilla, Gait-day/vanilla, Gait-night/vanilla" in str(src)


def test_fit_is_exact_on_a_row_that_it_alone_defines(cs, cal):
    """The closed-form least squares: fitted on one row, that row is reproduced exactly."""
    tab = load_energy_table("speck")
    r = cs.TABLE1[0]
    e = cs.fit_e_synop([r], cal["counts"], tab)
    assert cs.predict_w(e, cal["counts"][r.key], tab) == pytest.approx(r.power_w, rel=1e-12)
    with pytest.raises(SystemExit, match="three rows"):
        cs.select("DVS Gesture/vanilla")


def test_event_stream_is_seeded_and_per_sample(cs):
    a = cs.event_stream([100.0, 1000.0], 5, seed=3)
    assert a.shape == (5, 2, 2, 32, 32)
    np.testing.assert_array_equal(a, cs.event_stream([100.0, 1000.0], 5, seed=3))
    assert a[:, 0].sum() < a[:, 1].sum()
    assert isinstance(cs.build_network(20, 2).op("fc4"), G.Linear)
