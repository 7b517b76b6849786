"""Cross-check neurosim's ``loihi`` chip against SANA-FE's Loihi model, network by network.

    .venv/bin/pip install sanafe==2.2.9          # the test extra of pyproject.toml
    .venv/bin/python scripts/crosscheck_sanafe.py [--small] [--timing detailed|simple]

SANA-FE (Boyle et al., IEEE TCAD 2025; PyPI ``sanafe``) simulates a mapped spiking network on an
architecture description; its ``arch/loihi.yaml`` (shipped in the wheel) was calibrated against
Loihi silicon. ``chips/loihi.toml`` and ``chips/energy/loihi-sanafe.toml`` carry the same
per-event costs, so agreement tests neurosim's event counting and timing, not the price list.

Each network (random fully connected layers of IF neurons, integer weights) is built twice from
the same weights and input spikes: as a neurosim Graph (Input, Linear + Neurons per layer,
Readout; ``neurosim.ir`` ops) simulated with ``neurosim.simulate`` on ``loihi``, and as a SANA-FE
``Network`` of input neurons and ``loihi_lif`` groups with dense connections, every neuron placed
on the core neurosim's mapping gave it (same tile coordinates, so the same hops and tiles in
use). The dynamics agree spike for spike: neurosim fires on H >= v_th, SANA-FE on V > v_th - 0.5.

What is compared, per data time step (totals / T):

* energy: neurosim's dynamic energy without the Readout node (logit accumulation, neurosim's
  output convention; SANA-FE networks end at the last spiking layer) against SANA-FE's total
  energy without its input neurons' packets and hops (neurosim's Input is off-chip and injects
  events at the destination cores for free; SANA-FE's input neurons are on-chip and pay 111 pJ
  per packet, read from its message trace). Input neurons sit on a free core of a tile already
  in use, so both see the same tiles in use (barrier).
* latency: the whole run (T + layers time steps in both: SANA-FE's layers are one step apart,
  as neurosim's pipeline stages), the Readout's adds taken out of neurosim's ticks, / T.
  neurosim times a tick as SANA-FE's ``simple`` model times a step; SANA-FE's default
  ``detailed`` model adds NoC backpressure and send-before-receive waits (``--timing``).
* counts: synaptic events, spikes, packets and hops must agree exactly; neuron updates differ
  where SANA-FE skips neurons at rest (zero potential, no input) and neurosim does not, which
  is the whole of the energy difference.
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

import neurosim
from chips import topology
from chips.mapping import map_graph
from chips.spec import load_chip
from neurosim.costing.energy import energy_breakdown
from neurosim.ir import graph as G

CHIP = "loihi"
W_LO, W_HI = -4, 8          # integer weights drawn uniformly from [W_LO, W_HI]


@dataclass(frozen=True)
class Net:
    """A random fully connected network: ``sizes`` = (inputs, layer 1, ..., layer L) neurons,
    Bernoulli input spikes of probability ``rate`` per step, ``T`` data time steps, hidden
    thresholds set for an output rate near ``target`` (IF neurons, hard reset to 0)."""

    name: str
    sizes: tuple
    rate: float
    T: int
    seed: int
    target: float = 0.15


NETWORKS = (
    Net("fc 64-256", (64, 256), 0.20, 40, 1),
    Net("fc 256-1024", (256, 1024), 0.10, 40, 2),
    Net("fc 512-512", (512, 512), 0.30, 40, 3),
    Net("fc 1024-256 sparse", (1024, 256), 0.02, 40, 4),
    Net("fc 128-4096", (128, 4096), 0.05, 40, 5),
    Net("mlp 256-1024-1024-256", (256, 1024, 1024, 256), 0.10, 30, 6),
    Net("wide 8-40000-16", (8, 40000, 16), 0.50, 20, 7),
)
SMALL = (                   # the test suite's networks (tests/test_crosscheck_sanafe.py)
    Net("fc 32-128", (32, 128), 0.20, 12, 11),
    Net("fc 96-512", (96, 512), 0.10, 12, 12),
    Net("fc 256-256", (256, 256), 0.30, 12, 13),
    Net("fc 512-64 sparse", (512, 64), 0.03, 12, 14),
    Net("fc 64-2048", (64, 2048), 0.05, 12, 15),
    Net("mlp 128-384-384-64", (128, 384, 384, 64), 0.10, 10, 16),
    Net("wide 4-33792-8", (4, 33792, 8), 0.50, 8, 17),
)


# ----------------------------------------------------------------------------- the network
def make_weights(net: Net) -> tuple[list[np.ndarray], np.ndarray, list[float]]:
    """Integer weights [C_out, C_in] per layer, input spikes [T, 1, C_in] and per-layer
    thresholds (integers), all from ``net.seed``."""
    rng = np.random.default_rng(net.seed)
    weights = [rng.integers(W_LO, W_HI + 1, (b, a)) for a, b in zip(net.sizes, net.sizes[1:])]
    x = (rng.random((net.T, 1, net.sizes[0])) < net.rate).astype(np.float64)
    mean_w, rate, v_th = (W_LO + W_HI) / 2, net.rate, []
    for a in net.sizes[:-1]:
        v_th.append(float(max(1, round(a * rate * mean_w / net.target))))
        rate = net.target
    return weights, x, v_th


def build_graph(net: Net, weights: list[np.ndarray], v_th: list[float]) -> G.Graph:
    """Input -> (Linear -> IF Neurons) per layer -> Readout, with ``neurosim.ir`` ops."""
    g = G.Graph()
    g.add(G.Input("input", (net.sizes[0],), kind="spike", T=net.T))
    prev = "input"
    for i, (w, th) in enumerate(zip(weights, v_th), start=1):
        n_out, n_in = w.shape
        g.add(G.Linear(f"fc{i}", (n_out,), in_shape=(n_in,), weight=w, weight_bits=5), [prev])
        g.add(G.Neurons(f"lif{i}", (n_out,), model="if", v_th=np.full(n_out, th),
                        reset="hard", state_bits=24), [f"fc{i}"])
        prev = f"lif{i}"
    g.add(G.Readout("readout", (net.sizes[-1],)), [prev])
    return g.validate()


# ----------------------------------------------------------------------------- neurosim
def latency_without_readout(res, graph: G.Graph, mapping, chip) -> float:
    """The run's latency (s) with the Readout's adds taken out of the synapse phase of its
    cores, tick by tick (``timeline["core_phase_cycles"]``; a tick lasts its busiest phase over
    all cores plus what does not depend on the cores: barrier, hops)."""
    tl = res.timeline
    phase = tl["core_phase_cycles"]
    syn = {c: np.array(v["synapse"]) for c, v in phase.items()}
    neu = {c: np.array(v["neuron"]) for c, v in phase.items()}
    tick = np.array(tl["tick_s"]) * chip.timing.clock_hz
    work = np.maximum(np.max(list(syn.values()), axis=0), np.max(list(neu.values()), axis=0))
    s0 = graph.pipeline_stages()["readout"]
    for p in mapping.parts["readout"]:
        syn[p.core][s0:s0 + graph.T] -= p.channels * chip.timing.cycles_per_ac
    lean = np.maximum(np.max(list(syn.values()), axis=0), np.max(list(neu.values()), axis=0))
    return float((tick - work + lean).sum() / chip.timing.clock_hz)


def run_ours(net: Net, graph: G.Graph, x: np.ndarray, mapping) -> dict:
    """Simulate on ``loihi``; energy (J) and latency (s) without the Readout, event counts."""
    chip = load_chip(CHIP)
    res = neurosim.simulate(graph, chip, x, mapping=mapping)
    e = energy_breakdown(res, chip.energy(), static_power_w=0.0)
    tot = res.totals()
    if tot["saturations"]:
        raise RuntimeError(f"{net.name}: {tot['saturations']} membrane saturations")
    pops = [n for n in graph.order() if isinstance(graph.op(n), G.Neurons)]
    return {"energy_j": e["dynamic_j"] - e["by_node_j"]["readout"],
            "readout_j": e["by_node_j"]["readout"], "latency_with_readout_s":
            float(res.latency_s[0]), "latency_s": latency_without_readout(res, graph, mapping,
                                                                          chip),
            "steps": int(res.ticks[0]),
            "synaptic_events": tot["ac"], "spikes": sum(res.counts[n]["spikes"] for n in pops),
            "packets": tot["noc_messages"], "hops": tot["noc_hops"],
            "updates": tot["neuron_updates"], "by_count_j": e["by_count_j"]}


# ----------------------------------------------------------------------------- SANA-FE
def sanafe_costs() -> dict:
    """Per-event costs read from SANA-FE's own ``loihi.yaml`` (the wheel's copy)."""
    import yaml
    text = files("sanafe.examples").joinpath("loihi.yaml").read_text()
    arch = yaml.safe_load(text)["architecture"]
    tile = arch["tile"][0]["attributes"]
    core = arch["tile"][0]["core"][0]
    return {"tile": tile, "message_out_j": core["axon_out"][0]["attributes"]["energy_message_out"],
            "soma": core["soma"][0]["attributes"], "synapse": core["synapse"][0]["attributes"],
            "axon_in": core["axon_in"][0]["attributes"], "noc": arch["attributes"]}


def sanafe_core(chip, core: int) -> int:
    """SANA-FE's global core id of neurosim core ``core``: same tile (x, y) and offset; SANA-FE
    numbers tiles column-first (tile id = x * height + y)."""
    x, y = topology.coords(chip, core)
    k = topology.cores_per_tile(chip)
    return (x * chip.mesh.mesh_y + y) * k + core % k


def input_core(chip, mapping, n_in: int) -> int:
    """Where SANA-FE's input neurons go: a free core in a tile already in use (same barrier),
    else the least loaded core in use with room for them."""
    used = {c: 0 for c in mapping.cores}
    for n, parts in mapping.parts.items():
        if isinstance(mapping.graph.op(n), G.Neurons):
            for p in parts:
                used[p.core] += p.channels
    k = topology.cores_per_tile(chip)
    for t in sorted({topology.tile(chip, c) for c in used}):
        free = [c for c in range(t * k, (t + 1) * k) if c not in used]
        if free:
            return free[0]
    core = min(used, key=lambda c: (used[c], c))
    if used[core] + n_in > chip.core.neurons_per_core:
        raise ValueError(f"no room for {n_in} SANA-FE input neurons in the tiles in use")
    return core


def build_sanafe(net, weights, v_th, x, mapping):
    """The same network as a SANA-FE ``Network`` mapped as neurosim mapped it; returns
    (arch, network)."""
    import sanafe
    chip = mapping.chip
    arch = sanafe.load_loihi()
    cores = arch.cores()                         # in SANA-FE core id order (tile-major)
    if not all(f"id={i}" in repr(c) for i, c in enumerate(cores)):
        raise RuntimeError("SANA-FE's Architecture.cores() is not in core id order")
    snn = sanafe.Network()
    inp = snn.create_neuron_group("input", net.sizes[0])
    ic = cores[sanafe_core(chip, input_core(chip, mapping, net.sizes[0]))]
    for i in range(net.sizes[0]):
        inp[i].set_attributes(soma_hw_name=f"loihi_inputs[{i}]",
                              model_attributes={"spikes": [bool(s) for s in x[:, 0, i]]})
        inp[i].map_to_core(ic)
    prev = inp
    for li, (w, th) in enumerate(zip(weights, v_th), start=1):
        grp = snn.create_neuron_group(
            f"lif{li}", w.shape[0], soma_hw_name="loihi_lif",
            default_synapse_hw_name="loihi_dense_synapse",
            model_attributes={"threshold": th - 0.5, "reset": 0.0, "reset_mode": "hard",
                              "leak_decay": 1.0})
        prev.connect_neurons_dense(grp, {"weight": w.T.astype(np.float64).ravel().tolist()})
        for p in mapping.parts[f"lif{li}"]:
            core = cores[sanafe_core(chip, p.core)]
            for j in range(p.c0, p.c1):
                grp[j].map_to_core(core)
        prev = grp
    return arch, snn


def run_sanafe(net, weights, v_th, x, mapping, timing: str = "detailed") -> dict:
    """Simulate on SANA-FE for T + layers steps; energy without the input neurons' packets."""
    import sanafe
    arch, snn = build_sanafe(net, weights, v_th, x, mapping)
    hw = sanafe.SpikingChip(arch)
    hw.load(snn)
    L = len(net.sizes) - 1
    r = hw.sim(net.T + L, timing_model=timing, processing_threads=1, perf_trace=True,
               message_trace=True)
    c = sanafe_costs()
    ew, ns = c["tile"]["energy_east_hop"], c["tile"]["energy_north_hop"]
    inj_j, inj_msgs, inj_hops, msgs, hops = 0.0, 0, 0, 0, 0
    for step in r["message_trace"]:
        for m in step:
            if m["placeholder"]:
                continue
            msgs += 1
            hops += m["hops"]
            if m["src_neuron_group_id"] == "input":
                dx, dy = abs(m["src_x"] - m["dest_x"]), abs(m["src_y"] - m["dest_y"])
                inj_j += c["message_out_j"] + dx * ew + dy * ns
                inj_msgs += 1
                inj_hops += dx + dy
    pt = r["perf_trace"]
    in_spikes = int(x.sum())
    return {"energy_j": r["energy"]["total"] - inj_j, "injection_j": inj_j,
            "latency_s": r["sim_time"], "steps": r["timesteps_executed"],
            "synaptic_events": int(sum(pt["spikes"])),
            "spikes": int(sum(pt["fired"])) - in_spikes,
            "packets": msgs - inj_msgs, "hops": hops - inj_hops,
            "updates": int(sum(pt["updated"])) - in_spikes}


# ----------------------------------------------------------------------------- comparison
def fanout_cores(mapping) -> int:
    """The most cores one spike is sent to (from the Input or a population)."""
    g = mapping.graph
    return max(int(mapping.packets_per_spike(u, v).max()) for u, v in g.edges()
               if g.out_kind(u) == "spike")


def compare(net: Net, timings: tuple = ("detailed",)) -> dict:
    """One network on both simulators: per-step energy and latency (one SANA-FE run per timing
    model in ``timings``; energy and counts from the first), ratios, event counts."""
    weights, x, v_th = make_weights(net)
    graph = build_graph(net, weights, v_th)
    chip = load_chip(CHIP)
    mapping = map_graph(graph, chip)
    ours = run_ours(net, graph, x, mapping)
    runs = {t: run_sanafe(net, weights, v_th, x, mapping, t) for t in timings}
    sf = runs[timings[0]]
    cores = sorted(c for c in mapping.cores if c >= 0)
    return {"net": net.name, "T": net.T, "rate": net.rate, "cores": len(cores),
            "tiles": len({topology.tile(chip, c) for c in cores}),
            "fanout": fanout_cores(mapping), "ours": ours, "sanafe": sf,
            "energy_j_ratio": ours["energy_j"] / sf["energy_j"],
            "latency_s_ratio": ours["latency_s"] / sf["latency_s"],
            "latency": {t: (r["latency_s"], ours["latency_s"] / r["latency_s"])
                        for t, r in runs.items()}}


def _si(v: float, unit: str) -> str:
    for f, p in ((1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(v) >= f:
            return f"{v / f:.3g} {p}{unit}"
    return f"{v:.3g} {unit}"


def format_table(rows: list[dict]) -> str:
    """Markdown tables: per-step energy and latency (one SANA-FE column and ratio per timing
    model) with medians, then the event counts."""
    timings = list(rows[0]["latency"])
    head = ("| network | T | input rate | cores / tiles | energy / step: neurosim | SANA-FE | "
            "ratio | latency / step: neurosim | "
            + " | ".join(f"SANA-FE {t} | ratio" for t in timings) + " |")
    out = [head, "|" + "---|" * (8 + 2 * len(timings))]
    for r in rows:
        o, s, T = r["ours"], r["sanafe"], r["T"]
        lat = " | ".join(f"{_si(r['latency'][t][0] / T, 's')} | {r['latency'][t][1]:.3f}"
                         for t in timings)
        out.append(f"| {r['net']} | {T} | {r['rate']:g} | {r['cores']} / {r['tiles']} | "
                   f"{_si(o['energy_j'] / T, 'J')} | {_si(s['energy_j'] / T, 'J')} | "
                   f"{r['energy_j_ratio']:.3f} | {_si(o['latency_s'] / T, 's')} | {lat} |")
    med = [f"energy {statistics.median(r['energy_j_ratio'] for r in rows):.3f}"]
    med += [f"latency ({t}) {statistics.median(r['latency'][t][1] for r in rows):.3f}"
            for t in timings]
    out += ["", "median ratio neurosim / SANA-FE: " + ", ".join(med), "",
            "| network | synaptic events | spikes | packets | hops | neuron updates "
            "(neurosim / SANA-FE) |", "|---|---|---|---|---|---|"]
    for r in rows:
        o, s = r["ours"], r["sanafe"]
        cells = [f"{o[k]} / {s[k]}" for k in ("synaptic_events", "spikes", "packets", "hops",
                                                "updates")]
        out.append(f"| {r['net']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the small networks of the test suite")
    ap.add_argument("--timing", default="both", choices=("detailed", "simple", "both"),
                    help="SANA-FE timing model(s): detailed (SANA-FE's default), simple, or "
                         "both (default)")
    args = ap.parse_args(argv)
    timings = ("detailed", "simple") if args.timing == "both" else (args.timing,)
    rows = [compare(n, timings) for n in (SMALL if args.small else NETWORKS)]
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
