"""A chip's per-action prices on the operation counts of an ECMT-converted SNN and of its ANN
(issue #18; seed ecmt §5.5): the dynamic energy per inference, beside the paper's eq. 30.

The counts come from the PyTorch simulation of the converted network
(``models.convert.ecmt.evaluate``: per input, summed over steps 1..T), not from a chip engine:
there is no placement, routing or static power here, and the chip's own fixed-point formats are
not applied. What it adds to eq. 30 is the part the paper leaves out, priced by the chip's
table (:class:`chips.energy_table.EnergyTable`):

    SNN = (ac_linear + ac_matmul) (ac_pj + weight_read_pj)     adds, each with its operand read
        + ec_elements mac_pj                                   F of a general EC, per element
        + ec_state (membrane_read_pj + membrane_write_pj)      EC accumulators (S, T F(S/T),
                                                               S_A, S_B, S_K), every step
        + mt_updates (neuron_update_pj + membrane_read_pj + membrane_write_pj)
        + spikes neuron_spike_pj
    ANN = (mac_linear + mac_matmul) (mac_pj + weight_read_pj) + nonlinear mac_pj

All energies in pJ per input; every part is returned, and the parts sum to the totals.
"""
from __future__ import annotations

import numpy as np

SNN_PARTS = ("synaptic", "ec_nonlinear", "ec_accumulators", "mt_neurons", "spikes")
ANN_PARTS = ("mac", "nonlinear")


def ecmt_chip_energy(snn_ops: dict, ann_ops: dict, table) -> dict:
    """{"snn_pj": {part: [T]}, "ann_pj": {part: float}, "snn_total_pj": [T], "ann_total_pj",
    "ratio": [T]} for ``table`` (an ``EnergyTable``; module doc for the formulas)."""
    c = table.costs()
    missing = sorted({"ac_pj", "mac_pj", "weight_read_pj", "membrane_read_pj",
                      "membrane_write_pj", "neuron_update_pj", "neuron_spike_pj"} - set(c))
    if missing:
        raise ValueError(f"energy table {table.name!r} lacks {missing}")
    a = {k: np.asarray(snn_ops[k], np.float64) for k in
         ("ac_linear", "ac_matmul", "ec_elements", "ec_state", "mt_updates", "spikes")}
    mem = c["membrane_read_pj"] + c["membrane_write_pj"]
    snn = {"synaptic": (a["ac_linear"] + a["ac_matmul"]) * (c["ac_pj"] + c["weight_read_pj"]),
           "ec_nonlinear": a["ec_elements"] * c["mac_pj"],
           "ec_accumulators": a["ec_state"] * mem,
           "mt_neurons": a["mt_updates"] * (c["neuron_update_pj"] + mem),
           "spikes": a["spikes"] * c["neuron_spike_pj"]}
    ann = {"mac": (ann_ops["mac_linear"] + ann_ops["mac_matmul"]) * (c["mac_pj"]
                                                                    + c["weight_read_pj"]),
           "nonlinear": ann_ops["nonlinear"] * c["mac_pj"]}
    snn_total = sum(snn.values())
    ann_total = float(sum(ann.values()))
    return {"snn_pj": snn, "ann_pj": ann, "snn_total_pj": snn_total, "ann_total_pj": ann_total,
            "ratio": snn_total / ann_total}
