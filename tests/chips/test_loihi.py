"""The loihi chip: tiles of four cores on an 8 x 4 mesh, hops split east-west / north-south,
the per-tick neuron visits and packet arrivals its costs need, the barrier by tiles in use, and
energy tables that carry SANA-FE's and Davies et al.'s numbers."""
from importlib.resources import files

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chips import topology
from chips.engines.sync import barrier_cycles, tiles_in_use
from chips.mapping import map_graph
from chips.spec import SpecError, load_chip, load_energy_table
from neurosim.costing.energy import energy_breakdown
from neurosim.ir import graph as G
from neurosim.run.simulate import simulate

LOIHI = load_chip("loihi")


def _sanafe_arch() -> dict:
    return yaml.safe_load(files("sanafe.examples").joinpath("loihi.yaml").read_text())


def _net(sizes, T=3, seed=0, rate=0.3):
    """Input -> (Linear -> IF) per layer -> Readout, and Bernoulli input spikes [T, 1, n]."""
    rng = np.random.default_rng(seed)
    g = G.Graph()
    g.add(G.Input("input", (sizes[0],), kind="spike", T=T))
    prev = "input"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        g.add(G.Linear(f"fc{i}", (b,), in_shape=(a,), weight=rng.integers(-4, 9, (b, a))),
              [prev])
        g.add(G.Neurons(f"lif{i}", (b,), model="if", v_th=np.full(b, 6.0), state_bits=24),
              [f"fc{i}"])
        prev = f"lif{i}"
    g.add(G.Readout("readout", (sizes[-1],)), [prev])
    x = (rng.random((T, 1, sizes[0])) < rate).astype(float)
    return g.validate(), x


# ----------------------------------------------------------------------------- the chip file
def test_loihi_has_128_cores_in_32_tiles_of_four():
    m = LOIHI.mesh
    assert (m.mesh_x, m.mesh_y, m.cores_per_tile, LOIHI.n_cores) == (8, 4, 4, 128)
    assert LOIHI.kind == "sync" and LOIHI.energy_table == "loihi-sanafe"
    assert LOIHI.core.neurons_per_core == 1024 and LOIHI.timing.overlap_phases
    assert not LOIHI.features.graded_edges and not LOIHI.features.spike_products
    assert load_chip("tianjic").mesh.cores_per_tile == 1      # one core per router elsewhere


def test_sanafe_table_and_timing_are_the_numbers_of_sanafe_loihi_yaml():
    arch = _sanafe_arch()["architecture"]
    tile, core = arch["tile"][0]["attributes"], arch["tile"][0]["core"][0]
    soma = core["soma"][0]["attributes"]
    syn = next(s["attributes"] for s in core["synapse"] if s["name"] == "loihi_dense_synapse")
    out, inp = core["axon_out"][0]["attributes"], core["axon_in"][0]["attributes"]
    e = LOIHI.energy()
    pj = {"ac_pj": syn["energy_process_spike"], "neuron_access_pj": soma["energy_access_neuron"],
          "neuron_update_pj": soma["energy_update_neuron"],
          "neuron_spike_pj": soma["energy_spike_out"], "spike_route_pj": out["energy_message_out"],
          "hop_pj": tile["energy_east_hop"],
          "hop_ns_extra_pj": tile["energy_north_hop"] - tile["energy_east_hop"]}
    for k, joules in pj.items():
        assert getattr(e, k) == pytest.approx(joules * 1e12, abs=1e-9), k
    assert tile["energy_west_hop"] == tile["energy_east_hop"]
    assert tile["energy_south_hop"] == tile["energy_north_hop"]
    assert inp["energy_message_in"] == 0.0             # noc_messages_in is rightly unpriced
    tm, ns = LOIHI.timing, 1e9                          # nominal 1 GHz: one cycle = one ns
    assert tm.clock_hz == ns
    ns_of = {"cycles_per_ac": syn["latency_process_spike"],
             "cycles_per_neuron_access": soma["latency_access_neuron"],
             "cycles_per_neuron_update": soma["latency_update_neuron"],
             "cycles_per_spike": soma["latency_spike_out"],
             "cycles_per_message_out": out["latency_message_out"],
             "cycles_per_message_in": inp["latency_message_in"]}
    for k, s in ns_of.items():
        assert getattr(tm, k) == pytest.approx(s * ns), k
    assert LOIHI.mesh.hop_cycles == pytest.approx(tile["latency_east_hop"] * ns)
    sync = arch["attributes"]["latency_sync"]
    assert list(tm.barrier_tiles) == sorted(sync)
    assert [c * 1e-9 for c in tm.barrier_cycles] == pytest.approx([sync[k] for k in sorted(sync)])
    assert (arch["attributes"]["width"], arch["attributes"]["height"]) == (8, 4)


def test_table2_carries_davies_2018_table_2():
    t = load_energy_table("loihi-table2")
    assert (t.ac_pj, t.neuron_access_pj, t.neuron_access_pj + t.neuron_update_pj) == (23.6, 52, 81)
    assert (t.spike_route_pj, t.hop_pj, t.hop_pj + t.hop_ns_extra_pj) == (1.7, 3.0, 4.0)
    assert "Table 2" in t.provenance["actions.ac_pj"]


def test_older_tables_price_the_new_actions_at_zero_and_say_so():
    for name in ("45nm", "tianjic", "speck"):
        t = load_energy_table(name)
        assert t.neuron_access_pj == 0 and t.hop_ns_extra_pj == 0
        assert "default 0" in t.provenance["actions.neuron_access_pj"]


# ----------------------------------------------------------------------------- geometry
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 127), st.integers(0, 127))
def test_hops_follow_the_tiles(a, b):
    (xa, ya), (xb, yb) = topology.coords(LOIHI, a), topology.coords(LOIHI, b)
    assert topology.tile(LOIHI, a) == a // 4 and (xa, ya) == ((a // 4) % 8, (a // 4) // 8)
    h, ns = topology.hops(LOIHI, a, b), topology.hops_ns(LOIHI, a, b)
    assert h == abs(xa - xb) + abs(ya - yb) == topology.hops(LOIHI, b, a)
    assert ns == abs(ya - yb) and 0 <= ns <= h
    p = topology.path(LOIHI, a, b)
    assert len(p) == h and (not p or p[-1] == b)
    assert all(topology.hops(LOIHI, u, v) == 1 for u, v in zip([a] + p, p))


def test_serpentine_fills_a_tile_before_the_next_one_hop_away():
    order = topology.serpentine(LOIHI)
    assert sorted(order) == list(range(128)) and order[:5] == [0, 1, 2, 3, 4]
    assert all(topology.hops(LOIHI, u, v) <= 1 for u, v in zip(order, order[1:]))


# ----------------------------------------------------------------------------- engine counts
def test_every_mapped_neuron_is_visited_every_tick_and_arrivals_are_counted():
    g, x = _net([40, 300, 20], T=4)
    res = simulate(g, LOIHI, x)
    ticks = int(res.ticks[0])
    assert ticks == 4 + 2                              # two spiking layers, then the readout
    for n in ("lif1", "lif2"):
        assert res.counts[n]["neuron_accesses"] == g.op(n).size * ticks
        assert res.counts[n]["neuron_updates"] == g.op(n).size * 4
    m = map_graph(g, LOIHI)
    in_cores = len(m.cores_of("fc1"))
    assert res.counts["fc1"]["noc_messages_in"] == int(x.sum()) * in_cores
    tot = res.totals()
    assert tot["noc_messages_in"] == int(x.sum()) * in_cores + tot["noc_messages"]


def test_north_south_hops_cost_the_extra_and_the_barrier_follows_the_tiles():
    g, x = _net([8, 20000, 8], T=2, rate=0.6)          # 20 cores: rows y = 0 and 1
    m = map_graph(g, LOIHI)
    assert tiles_in_use(LOIHI, m) >= 5 and barrier_cycles(LOIHI, m) == 1400
    res = simulate(g, LOIHI, x, mapping=m)
    tot = res.totals()
    assert 0 < tot["noc_hops_ns"] < tot["noc_hops"]
    e = energy_breakdown(res, LOIHI.energy(), static_power_w=0.0)
    assert e["by_count_j"]["noc_hops_ns"] == pytest.approx(tot["noc_hops_ns"] * 1.2e-12)
    assert e["by_count_j"]["noc_hops"] == pytest.approx(tot["noc_hops"] * 3.0e-12)
    one = map_graph(_net([8, 64, 8])[0], LOIHI)
    assert tiles_in_use(LOIHI, one) == 1 and barrier_cycles(LOIHI, one) == 600


def test_a_tick_is_the_longer_phase_plus_the_barrier():
    """One core, T = 1. Tick 0 serves the input packets (synapse phase) while every neuron is
    visited; the neurons integrate them in tick 1 (``soma_next_tick``), with the readout's adds.
    Each tick lasts the busier phase plus the one-tile barrier."""
    g, x = _net([16, 32], T=1, rate=0.5)
    res = simulate(g, LOIHI, x)
    c, tm = res.counts, LOIHI.timing
    visits = g.op("lif1").size * tm.cycles_per_neuron_access
    syn0 = (c["fc1"]["noc_messages_in"] * tm.cycles_per_message_in
            + c["fc1"]["ac"] * tm.cycles_per_ac)
    syn1 = c["readout"]["aux_ops"] * tm.cycles_per_ac
    neu1 = (visits + c["lif1"]["spikes"] * tm.cycles_per_spike
            + c["lif1"]["neuron_updates"] * tm.cycles_per_neuron_update)
    ticks_ns = np.array(res.timeline["tick_s"]) * 1e9
    np.testing.assert_allclose(ticks_ns, [max(syn0, visits) + 600, max(syn1, neu1) + 600])
    phases = res.timeline["core_phase_cycles"][0]
    np.testing.assert_allclose(phases["neuron"], [visits, neu1])
    np.testing.assert_allclose(phases["synapse"], [syn0, syn1])


# ----------------------------------------------------------------------------- bad input
def _edit(text: str, key: str, line: str) -> str:
    """Replace the line setting ``key`` (an empty ``line`` removes it)."""
    old = next(ln for ln in text.splitlines() if ln.startswith(f"{key} = "))
    return text.replace(old, line)


@pytest.mark.parametrize("key, line, where, problem", [
    ("barrier_cycles", "", "timing.barrier_cycles",
     "missing (required with timing.barrier_tiles)"),
    ("barrier_tiles", 'barrier_tiles = {value = [1, 4, 2, 29], source = "x"}',
     "timing.barrier_tiles", "must increase strictly"),
    ("barrier_tiles", 'barrier_tiles = {value = [1, 2, 4], source = "x"}',
     "timing.barrier_cycles", "has 4 entries, barrier_tiles has 3"),
    ("cores_per_tile", 'cores_per_tile = {value = 2, source = "x"}', "mesh.n_cores",
     "128 != mesh_x * mesh_y * cores_per_tile = 64"),
])
def test_bad_loihi_files_name_the_file_and_key(tmp_path, key, line, where, problem):
    p = tmp_path / "loihi-bad.toml"
    p.write_text(_edit(LOIHI.path.read_text(), key, line))
    with pytest.raises(SpecError) as e:
        load_chip(p)
    msg = str(e.value)
    assert "loihi-bad.toml" in msg and where in msg and problem in msg, msg
