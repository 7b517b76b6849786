"""Kernel benchmark on a tiny workload: every kernel runs, checks its own synaptic-event count
against the fan-out sums (asserted inside), and reports positive rates and the workload."""
from neurosim.run.bench import bench_kernels


def test_bench_kernels_tiny_workload_reports_every_figure():
    r = bench_kernels(repeat=2, sample_s=0.0, conv_hw=8, conv_channels=8, linear_size=64,
                      copy_mib=1, n_sets=2)
    for k in ("conv3x3_events_per_s", "conv3x3_depthwise_events_per_s", "linear_events_per_s",
              "conv3x3_torch_dense_events_per_s", "linear_torch_dense_events_per_s",
              "lif_updates_per_s", "sfa_updates_per_s", "memcpy_GB_per_s"):
        assert r[k] > 0, k
    w = r["workload"]
    assert w["conv3x3"]["H"] == 8 and w["linear"]["C_in"] == 64 and w["lif"]["neurons"] == 512
    # the linear layer's synaptic events are its input events times the fan-out (64)
    assert w["linear"]["synaptic_events_per_frame"] == w["linear"]["events_per_frame"] * 64
    assert set(r["ratios"]) >= {"conv3x3_scatter_over_torch_dense",
                                "linear_scatter_over_torch_dense"}
