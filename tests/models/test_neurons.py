import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from models.neurons import (LIFNode, MultiThresholdNode, NeuronConfig, SFANode, if_soft_burst,
                            lif_step, make_neuron, multi_threshold_step, sfa_forward)


def reference_lif(x: np.ndarray, tau, v_th, v_reset, reset, decay_input=True, leak=True):
    """seed-facts §1 written out elementwise in float64, independent of the torch code."""
    T = x.shape[0]
    v = np.full(x.shape[1:], v_reset, dtype=np.float64)
    spikes, volts = np.zeros_like(x), np.zeros_like(x)
    for t in range(T):
        if not leak:
            h = v + x[t]
        elif decay_input:
            h = v + (x[t] - (v - v_reset)) / tau
        else:
            h = v - (v - v_reset) / tau + x[t]
        s = (h - v_th >= 0).astype(np.float64)
        if reset == "hard":
            v = h * (1 - s) + v_reset * s
        elif reset == "soft":
            v = h - s * v_th
        else:
            v = h
        spikes[t], volts[t] = s, v
    return spikes, volts


CASES = [  # kind, tau, v_th, v_reset, reset, decay_input
    ("lif", 2.0, 1.0, 0.0, "hard", True),     # Spikformer / SDT / Meta-SpikeFormer default
    ("lif", 2.0, 0.5, 0.0, "hard", True),     # attention neurons
    ("lif", 3.0, 1.0, -0.2, "soft", False),
    ("if", 2.0, 1.0, 0.0, "soft", True),      # SFA inference neuron
    ("if", 2.0, 1.0, 0.0, "none", True),
]


@pytest.mark.parametrize("case", CASES)
def test_lif_matches_equations_golden(case, golden):
    kind, tau, v_th, v_reset, reset, decay = case
    rng = np.random.default_rng(7)
    x = rng.normal(0.6, 0.8, size=(16, 3, 50))
    node = LIFNode(kind=kind, tau=tau, v_th=v_th, v_reset=v_reset, reset=reset, decay_input=decay)
    s = node(torch.tensor(x)).numpy()
    ref_s, _ = reference_lif(x, tau, v_th, v_reset, reset, decay, leak=kind != "if")
    np.testing.assert_array_equal(s, ref_s)
    assert 0.05 < s.mean() < 0.95, "inputs should exercise both firing and silence"
    golden.check_arrays(f"neuron_{kind}_{reset}_{v_th}_{decay}", {"x": x, "spikes": s})


def test_lif_membrane_trace_hard_reset():
    x = torch.tensor([[0.8], [0.8], [2.0], [0.0]], dtype=torch.float64)
    v = torch.zeros(1, dtype=torch.float64)
    trace = []
    for t in range(4):
        s, v = lif_step(v, x[t], tau=2.0, v_th=1.0, v_reset=0.0, reset="hard")
        trace.append((float(s), float(v)))
    # H1 = 0.4; H2 = 0.4 + (0.8-0.4)/2 = 0.6; H3 = 0.6 + (2-0.6)/2 = 1.3 -> spike, reset 0; H4 = 0
    expected = [(0.0, 0.4), (0.0, 0.6), (1.0, 0.0), (0.0, 0.0)]
    np.testing.assert_allclose(np.array(trace), np.array(expected), atol=1e-12)


def test_heaviside_at_zero_fires():
    s, _ = lif_step(torch.zeros(1), torch.ones(1) * 2.0, tau=2.0, v_th=1.0, v_reset=0.0,
                    reset="hard")
    assert float(s) == 1.0


@pytest.mark.parametrize("surrogate,alpha", [("sigmoid", 4.0), ("rect", 1.0)])
def test_surrogate_gradients(surrogate, alpha):
    x = torch.tensor([[0.0, 0.9, 1.0, 1.1, 5.0]], requires_grad=True)
    node = LIFNode(tau=2.0, v_th=1.0, surrogate=surrogate, alpha=alpha, decay_input=False)
    node(x).sum().backward()  # one step: H = x, spike = heaviside(x - 1)
    g = x.grad[0]
    if surrogate == "sigmoid":
        sg = torch.sigmoid(alpha * (x.detach()[0] - 1))
        np.testing.assert_allclose(g, alpha * sg * (1 - sg), rtol=1e-6)
    else:
        np.testing.assert_allclose(g, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_plif_learns_tau():
    node = LIFNode(kind="plif", tau=2.0)
    assert abs(node.tau_value() - 2.0) < 1e-6
    x = torch.rand(4, 2, 8) * 2
    node(x).sum().backward()
    assert node.w.grad is not None and node.w.grad.abs() > 0


@settings(max_examples=300, deadline=None)
@given(u=st.floats(-3, 9, allow_nan=False, width=32, allow_subnormal=False), D=st.integers(1, 8),
       norm=st.sampled_from([1.0, 2.0, 4.0]))
def test_sfa_forward_and_proposition_1(u, D, norm):
    ut = torch.tensor([u], dtype=torch.float32)
    s = sfa_forward(ut, D, norm)
    expected = np.floor(np.clip(np.float32(u), 0, D) + np.float32(0.5))
    assert float(s) == pytest.approx(expected / norm, abs=0)
    assert abs(float(s) * norm - np.clip(u, 0, D)) <= 0.5
    # Proposition 1: the IF soft-reset burst fires exactly the integer activation's count.
    burst = if_soft_burst(ut, D)
    assert burst.shape == (D, 1)
    assert float(burst.sum()) == float(sfa_forward(ut, D, 1.0))


def test_sfa_gradient_window():
    u = torch.tensor([-1.0, 0.0, 1.3, 4.0, 4.5, 9.0], requires_grad=True)
    sfa_forward(u, 4, 4.0).sum().backward()
    np.testing.assert_array_equal(u.grad.numpy(), [0, 0.25, 0.25, 0.25, 0, 0])


def test_sfa_node_is_time_free():
    node = SFANode(D=4, norm=4.0)
    x = torch.tensor([[0.2, 0.6, 2.5, 7.0]])
    np.testing.assert_array_equal(node(x).numpy(), [[0.0, 0.25, 0.75, 1.0]])


def test_multi_threshold_levels_and_soft_reset():
    v = torch.zeros(4)
    x = torch.tensor([0.4, 0.6, 3.0, -1.6])
    out, v2 = multi_threshold_step(v, x, theta_pos=1.0, theta_neg=0.5, levels=3)
    # pos thresholds 1,2,4 fire at >= 0.5,1.5,3.5; neg 0.5,1,2 at <= -0.25,-0.75,-1.75
    np.testing.assert_allclose(out.numpy(), [0.0, 1.0, 2.0, -1.0])
    np.testing.assert_allclose(v2.numpy(), (x - out).numpy())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-2, 2, width=32, allow_subnormal=False), min_size=1, max_size=20))
def test_multi_threshold_conserves_charge(xs):
    """Outputs are 0 or +-theta*2^k; input charge = emitted charge + final membrane, exactly;
    a step that emits nothing leaves |V| < theta/2."""
    theta, levels = 0.25, 8
    allowed = {0.0} | {s * theta * 2.0 ** k for k in range(levels) for s in (1, -1)}
    v = torch.zeros(1, dtype=torch.float64)
    emitted = 0.0
    for x in xs:
        h = v + x
        out, v = multi_threshold_step(v, torch.tensor([x], dtype=torch.float64), theta_pos=theta,
                                      theta_neg=theta, levels=levels)
        assert float(out) in allowed
        if float(out) == 0.0:
            assert abs(float(h)) < theta / 2
        emitted += float(out)
    assert sum(xs) == pytest.approx(emitted + float(v), abs=1e-9)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="reset"):
        NeuronConfig(reset="sideways")
    with pytest.raises(ValueError, match="D must be"):
        NeuronConfig(kind="sfa", D=0)
    with pytest.raises(ValueError, match="v_th"):
        NeuronConfig(v_th=-1.0)
    with pytest.raises(ValueError, match=r"unknown neuron parameter\(s\) \['vth'\]"):
        make_neuron({"vth": 1.0})


def test_make_neuron_dispatch():
    assert isinstance(make_neuron({"kind": "sfa", "D": 3}), SFANode)
    assert isinstance(make_neuron(kind="mt"), MultiThresholdNode)
    n = make_neuron({"kind": "lif", "v_th": 1.0}, v_th=0.5)
    assert isinstance(n, LIFNode) and n.cfg.v_th == 0.5
