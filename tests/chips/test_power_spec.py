"""The chips' static power model ([power]) and per-op energies: shipped values, their
derivations, and clear errors naming the file and key for bad input."""
import tomllib

import pytest

from chips.spec import CHIPS_DIR, ENERGY_DIR, GATING_POLICIES, load_chip, load_energy_table
from tests.chips.test_spec import MINIMAL, expect_error, write

POWER = """
[power]
power_gating = {value = "unused", estimate = "test"}
leakage_per_core_w = {value = 0.001, estimate = "test"}
uncore_static_w = {value = 0.01, estimate = "test"}
wake_energy_pj = {value = 100, estimate = "test"}
wake_latency_ns = {value = 50, estimate = "test"}
"""


def _chip(tmp_path, power: str, name="p.toml"):
    return write(tmp_path, name, MINIMAL + power)


def test_a_valid_power_model_loads(tmp_path):
    chip = load_chip(_chip(tmp_path, POWER))
    assert chip.power.power_gating == "unused" and chip.has_static_model
    assert chip.static_power_w() == pytest.approx(0.01 + 6 * 0.001)
    assert chip.static_power_w([0, 5]) == pytest.approx(0.012)
    assert chip.provenance["power.power_gating"] == "estimate: test"
    assert not load_chip(write(tmp_path, "bare.toml", MINIMAL)).has_static_model


def test_unknown_policy_names_file_and_key(tmp_path):
    p = _chip(tmp_path, POWER.replace('"unused"', '"sometimes"'))
    expect_error(p, "p.toml", "power.power_gating", "must be one of none, unused, idle",
                 "'sometimes'")


def test_negative_leakage_names_file_and_key(tmp_path):
    p = _chip(tmp_path, POWER.replace("value = 0.001", "value = -0.001"))
    expect_error(p, "p.toml", "power.leakage_per_core_w", "must not be negative")
    p = _chip(tmp_path, POWER.replace("value = 0.001", "value = [0.001, 0.001, -1, 0, 0, 0]"),
              "q.toml")
    expect_error(p, "q.toml", "power.leakage_per_core_w", "must not be negative")
    p = _chip(tmp_path, POWER.replace("value = 0.001", "value = [0.001, 0.002]"), "r.toml")
    expect_error(p, "r.toml", "power.leakage_per_core_w", "2 per-core values", "6 cores")


def test_idle_without_a_wake_up_cost_is_an_error(tmp_path):
    idle = POWER.replace('"unused"', '"idle"')
    p = _chip(tmp_path, "\n".join(ln for ln in idle.splitlines()
                                  if not ln.startswith("wake_energy_pj")))
    expect_error(p, "p.toml", "power.power_gating", '"idle"', "wake_energy_pj is missing")
    p = _chip(tmp_path, "\n".join(ln for ln in idle.splitlines()
                                  if not ln.startswith("wake_latency_ns")), "q.toml")
    expect_error(p, "q.toml", "power.power_gating", "wake_latency_ns is missing")
    p = _chip(tmp_path, idle.replace("value = 100,", "value = 0,"), "r.toml")
    expect_error(p, "r.toml", "power.wake_energy_pj", "is 0")
    assert load_chip(_chip(tmp_path, idle, "ok.toml")).power.power_gating == "idle"


def test_idle_set_by_an_override_names_the_override_file(tmp_path):
    write(tmp_path, "base.toml", MINIMAL + "\n".join(
        ln for ln in POWER.splitlines() if not ln.startswith("wake_")))
    p = write(tmp_path, "child.toml", 'extends = "base"\nname = "child"\n[power]\n'
              'power_gating = {value = "idle", estimate = "x"}\n')
    expect_error(p, "child.toml", "power.power_gating", "wake_energy_pj is missing")


def test_a_partial_static_model_is_an_error(tmp_path):
    p = _chip(tmp_path, "\n".join(ln for ln in POWER.splitlines()
                                  if not ln.startswith("uncore_static_w")))
    expect_error(p, "p.toml", "power.uncore_static_w", "missing", "power_gating")


def test_shipped_chips_state_their_default_policy_with_provenance():
    for name in ("tianjic", "tianjic-x16", "speck", "speck-xl"):
        chip = load_chip(name)
        assert chip.power.power_gating in GATING_POLICIES
        for k in ("power_gating", "leakage_per_core_w", "uncore_static_w", "wake_energy_pj",
                  "wake_latency_ns"):
            assert chip.provenance[f"power.{k}"], (name, k)
        assert chip.energy().static_power_w is None         # static power is the chip's
    from neurosim.cli.common import GATING_POLICIES as CLI_POLICIES
    assert CLI_POLICIES == GATING_POLICIES


def test_speck_static_model_reproduces_its_measured_resting_power():
    """RAM 51.7 uW + logic 367.0 uW (the rails of the 0.42 mW resting power), every core on."""
    s = load_chip("speck")
    assert s.static_power_w() == pytest.approx(51.7e-6 + 367.0e-6, rel=1e-4)
    assert s.static_power_w() == pytest.approx(s.power.resting_power_w, rel=0.01)
    assert s.leakage_w(0) > s.leakage_w(3) > s.leakage_w(8)          # memory bits 1168/784/400


def test_tianjic_per_op_energy_reproduces_its_published_peak_efficiency():
    """A synaptic op (accumulate + weight read) at 608 GSOPS plus 0.1 W static is the peak
    power of 649 GSOPS/W, Deng et al. JSSC 2020 (seed-facts 5)."""
    t, chip = load_energy_table("tianjic"), load_chip("tianjic")
    synop_pj = t.ac_pj + t.weight_read_pj
    peak_w = synop_pj * 1e-12 * 608e9 + chip.static_power_w()
    assert peak_w == pytest.approx(608 / 649, rel=1e-3)
    assert (synop_pj * 1e-12 * 608e9 + chip.static_power_w()) / 608e9 * 1e12 == pytest.approx(
        1.54, rel=0.01)
    assert chip.power.operating_power_max_w == pytest.approx(608 / 649, rel=1e-3)
    # the published peak is every core's full crossbar once per 5,050-cycle step
    assert 156 * 256 * 256 * chip.timing.clock_hz / chip.timing.tick_cycles == pytest.approx(
        608e9, rel=2e-3)


@pytest.mark.parametrize("table", ["tianjic", "speck"])
def test_no_chip_borrows_another_chips_per_op_energy_silently(table):
    """Values from another chip's publication say 'borrowed'; none is Loihi's any more."""
    raw = tomllib.loads((ENERGY_DIR / f"{table}.toml").read_text())["actions"]
    for k, v in raw.items():
        text = f"{v.get('source', '')} {v.get('estimate', '')}"
        if any(other in text for other in ("TrueNorth", "Loihi", "Davies")):
            assert "borrowed" in text, (table, k)
        assert "Loihi" not in text and "Davies" not in text, (table, k)


def test_power_sections_of_scaled_chips_are_their_own():
    for name in ("tianjic-x16", "speck-xl"):
        raw = tomllib.loads((CHIPS_DIR / f"{name}.toml").read_text())
        assert "static_power_w" not in raw.get("energy_overrides", {})
        assert {"power_gating", "leakage_per_core_w", "uncore_static_w"} <= set(raw["power"])
