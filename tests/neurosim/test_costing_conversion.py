"""Chip prices on ECMT operation counts (neurosim.costing.conversion)."""
import dataclasses

import numpy as np
import pytest

from chips.energy_table import load_energy_table
from neurosim.costing.conversion import ecmt_chip_energy


def test_parts_follow_the_formulas_and_sum_to_the_totals():
    t = load_energy_table("tianjic")
    snn = {"ac_linear": [100, 300], "ac_matmul": [10, 30], "ec_elements": [5, 10],
           "ec_state": [20, 40], "mt_updates": [7, 14], "spikes": [3, 9]}
    ann = {"mac_linear": 50.0, "mac_matmul": 5.0, "nonlinear": 5.0}
    r = ecmt_chip_energy(snn, ann, t)
    mem = t.membrane_read_pj + t.membrane_write_pj
    want_snn = (np.array([110, 330]) * (t.ac_pj + t.weight_read_pj)
                + np.array([5, 10]) * t.mac_pj + np.array([20, 40]) * mem
                + np.array([7, 14]) * (t.neuron_update_pj + mem) + np.array([3, 9])
                * t.neuron_spike_pj)
    want_ann = 55 * (t.mac_pj + t.weight_read_pj) + 5 * t.mac_pj
    np.testing.assert_allclose(r["snn_total_pj"], want_snn, rtol=1e-12)
    assert r["ann_total_pj"] == pytest.approx(want_ann, rel=1e-12)
    np.testing.assert_allclose(sum(r["snn_pj"].values()), r["snn_total_pj"], rtol=1e-12)
    np.testing.assert_allclose(r["ratio"], want_snn / want_ann, rtol=1e-12)


def test_a_table_without_a_needed_price_is_named():
    t = dataclasses.replace(load_energy_table("speck"), neuron_spike_pj=None)
    ops = dict.fromkeys(("ac_linear", "ac_matmul", "ec_elements", "ec_state", "mt_updates",
                         "spikes"), [1])
    with pytest.raises(ValueError, match=r"'speck' lacks \['neuron_spike_pj'\]"):
        ecmt_chip_energy(ops, {"mac_linear": 1, "mac_matmul": 1, "nonlinear": 1}, t)
