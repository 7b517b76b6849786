"""Chip specifications and energy tables: shipped files, provenance, validation errors, extends."""
import json
import math
import tomllib
from pathlib import Path

import pytest

from chips.spec import (ACTIONS, CHIPS_DIR, ENERGY_DIR, ChipSpec, SpecError, list_chips,
                        list_energy_tables, load_chip, load_energy_table)

MINIMAL = """\
name = "mini"
kind = "sync"
energy_table = "45nm"
description = "a minimal test chip"
process_nm = {value = 28, source = "test"}

[mesh]
topology = "mesh"
mesh_x = {value = 2, source = "test"}
mesh_y = {value = 3, source = "test"}
hop_cycles = {value = 1, estimate = "test"}

[core]
memory_model = "flat"
neurons_per_core = {value = 256, source = "test"}
weight_memory_bytes = {value = 1024, source = "test"}
state_memory_bytes = {value = 512, source = "test"}
weight_bits = {value = 8, source = "test"}
state_bits = {value = 16, source = "test"}
membrane_rmw_per_synop = {value = false, estimate = "test"}

[features]
split_layers = {value = true, estimate = "test"}
graded_edges = {value = true, estimate = "test"}
spike_products = {value = true, estimate = "test"}
max_pool = {value = true, estimate = "test"}
grouped_conv = {value = true, estimate = "test"}

[timing]
clock_hz = {value = 1e8, source = "test"}
tick_cycles = {value = 1000, source = "test"}
cycles_per_ac = {value = 1, estimate = "test"}
cycles_per_mac = {value = 1, estimate = "test"}
cycles_per_neuron_update = {value = 1, estimate = "test"}
comm_phase_cycles = {value = 100, estimate = "test"}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def expect_error(path: Path, *fragments: str, loader=load_chip):
    with pytest.raises(SpecError) as e:
        loader(path)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in error: {msg}"
    return msg


# ----------------------------------------------------------------------------- shipped files
def test_shipped_chips_and_tables_are_listed_and_load():
    assert {"tianjic", "tianjic-x16", "speck", "speck-xl"} <= set(list_chips())
    assert {"45nm", "tianjic", "speck"} <= set(list_energy_tables())
    for name in list_chips():
        chip = load_chip(name)
        assert isinstance(chip, ChipSpec) and chip.name == name
        assert chip.energy().name.startswith(chip.energy_table)
    for name in list_energy_tables():
        assert load_energy_table(name).name == name


def _numeric_leaves(d, prefix=""):
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and "value" not in v:
            yield from _numeric_leaves(v, p + ".")
        elif not isinstance(v, str):
            yield p, v


SHIPPED = sorted(CHIPS_DIR.glob("*.toml")) + sorted(ENERGY_DIR.glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED,
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_number_in_shipped_files_has_source_or_estimate(path):
    raw = tomllib.loads(path.read_text())
    leaves = list(_numeric_leaves(raw))
    assert leaves
    for key, v in leaves:
        assert isinstance(v, dict), f"{path.name}: {key} is a bare value"
        assert v.get("source") or v.get("estimate"), f"{path.name}: {key} lacks provenance"


def test_tianjic_published_figures():
    t = load_chip("tianjic")
    assert t.kind == "sync" and t.n_cores == 156 == t.mesh.mesh_x * t.mesh.mesh_y
    assert (t.mesh.mesh_x, t.mesh.mesh_y) == (12, 13)
    assert t.core.neurons_per_core == 256 and t.core.fan_in_max == 256
    assert t.core.sram_bytes == 22528
    assert t.core.weight_memory_bytes + t.core.state_memory_bytes <= t.core.sram_bytes
    assert t.timing.clock_hz == 300e6 and t.timing.tick_cycles == 5050
    assert t.tick_s == pytest.approx(16.83e-6, rel=1e-3)          # 5,050 periods at 300 MHz
    assert t.hop_latency_s == pytest.approx(t.mesh.hop_cycles / 300e6)
    assert t.process_nm == 28
    assert "source" in t.provenance["timing.clock_hz"]
    assert t.provenance["timing.cycles_per_ac"].startswith("estimate")
    cap = t.capacity(155)
    assert (cap.neurons, cap.weight_bytes, cap.state_bytes) == (256, 16384, 6144)
    with pytest.raises(IndexError):
        t.capacity(156)


def test_speck_dynapcnn_memories_and_limits():
    s = load_chip("speck")
    assert s.kind == "async" and s.n_cores == 9 and s.mesh.topology == "all-to-all"
    assert s.core.memory_model == "dynapcnn"
    Ki = 1024
    assert s.core.kernel_memory_entries == ((16 * Ki,) * 3 + (32 * Ki,) * 2 + (64 * Ki,) * 2
                                            + (16 * Ki,) * 2)
    assert s.core.neuron_memory_entries == (64 * Ki,) * 3 + (32 * Ki,) * 2 + (16 * Ki,) * 4
    assert sum(s.core.neuron_memory_entries) == 327_680
    assert s.capacity(5).kernel_entries == 64 * Ki and s.capacity(0).neuron_entries == 64 * Ki
    assert s.capacity(8).bias_entries == Ki
    assert (s.core.weight_bits, s.core.state_bits) == (8, 16)
    assert s.limits.kernel_max == 16 and s.limits.strides == (1, 2, 4, 8)
    assert s.limits.padding_max == 7 and s.limits.channels_max == 1024
    assert s.limits.input_hw_max == 128 and s.limits.destinations_max == 2
    assert s.timing.event_latency_ns == pytest.approx(3360 / 9, rel=1e-3)
    assert s.power.resting_power_w == pytest.approx(0.42e-3)
    assert not s.homogeneous and s.tick_s is None
    assert s.static_power_w() == pytest.approx(0.42e-3, rel=0.01)     # [power]: 418.7 uW


def test_energy_45nm_records_the_seed_convention_and_int8_values():
    e = load_energy_table("45nm")
    assert e.arithmetic == "fp32"
    assert e.ac_pj == e.primitives["ac_fp32_pj"] == 0.9
    assert e.mac_pj == e.primitives["mac_fp32_pj"] == 4.6
    assert e.primitives["ac_int8_pj"] == 0.03 and e.primitives["mult_int8_pj"] == 0.2
    assert e.primitives["mac_int8_pj"] == pytest.approx(0.2 + 0.03)
    assert e.primitives["sram_8kb_read_64bit_pj"] == 10
    # the convention ignores memory, routing, neuron updates and static power
    assert all(e.costs()[k] == 0 for k in ACTIONS if k not in ("ac_pj", "mac_pj"))
    assert set(e.costs()) == set(ACTIONS)
    assert "Horowitz" in e.provenance["actions.ac_pj"]


def test_chip_energy_tables_price_a_synaptic_op_their_own_way():
    """Each chip table prices a synaptic op from its own chip (Tianjic: 1.376 pJ from 649
    GSOPS/W net of static; Speck: fitted on Yao et al. 2024 Table 1), split differently (Speck
    reads and writes the membrane per synaptic op, Tianjic once per tick)."""
    t, s = load_energy_table("tianjic"), load_energy_table("speck")
    assert t.ac_pj + t.weight_read_pj == pytest.approx(1.376, rel=1e-3)
    assert "649 GSOPS/W" in t.provenance["actions.ac_pj"]
    assert "Table 1" in s.provenance["actions.ac_pj"]
    assert load_chip("speck").core.membrane_rmw_per_synop
    assert not load_chip("tianjic").core.membrane_rmw_per_synop
    assert "estimate" in t.provenance["actions.ac_pj"]


def test_scaled_variants_extend_their_base():
    base, x16 = load_chip("tianjic"), load_chip("tianjic-x16")
    assert x16.n_cores == 624 and x16.core.neurons_per_core == 1024
    assert x16.timing == base.timing and x16.kind == "sync"
    assert [p.name for p in x16.files] == ["tianjic.toml", "tianjic-x16.toml"]
    assert "hypothetical" in x16.provenance["core.neurons_per_core"]
    assert x16.provenance["timing.clock_hz"] == base.provenance["timing.clock_hz"]
    assert x16.static_power_w() == pytest.approx(624 * 2.308e-3 + 0.04)   # [power], estimates
    assert base.static_power_w() == pytest.approx(156 * 0.577e-3 + 0.01)
    xl = load_chip("speck-xl")
    assert xl.n_cores == 64 and xl.mesh.topology == "mesh" and xl.homogeneous
    assert xl.features.spike_products and not load_chip("speck").features.spike_products
    assert xl.core.weight_bits == 8 and xl.limits.kernel_max == 16      # inherited


def test_to_dict_is_json_serialisable():
    for name in list_chips():
        json.dumps(load_chip(name).to_dict())
    json.dumps(load_energy_table("45nm").to_dict())


# ----------------------------------------------------------------------------- by name / path
def test_unknown_name_lists_available_chips():
    msg = str(pytest.raises(SpecError, load_chip, "tianjik").value)
    assert "tianjik" in msg and "tianjic" in msg and "speck" in msg
    msg = str(pytest.raises(SpecError, load_energy_table, "7nm").value)
    assert "45nm" in msg


def test_load_by_path(tmp_path):
    p = write(tmp_path, "mini.toml", MINIMAL)
    chip = load_chip(p)
    assert chip.name == "mini" and chip.n_cores == 6 and chip.path == p.resolve()
    assert load_chip(str(p)).n_cores == 6
    assert chip.energy().ac_pj == 0.9
    with pytest.raises(SpecError, match="not found"):
        load_chip(tmp_path / "nothere.toml")


# ----------------------------------------------------------------------------- validation errors
def test_missing_source_names_file_and_key(tmp_path):
    p = write(tmp_path, "bad.toml", MINIMAL.replace(
        'neurons_per_core = {value = 256, source = "test"}', "neurons_per_core = {value = 256}"))
    expect_error(p, "bad.toml", "core.neurons_per_core", "source or estimate")


def test_bare_value_is_rejected(tmp_path):
    p = write(tmp_path, "bare.toml", MINIMAL.replace(
        'neurons_per_core = {value = 256, source = "test"}', "neurons_per_core = 256"))
    expect_error(p, "bare.toml", "core.neurons_per_core", "provenance")


def test_negative_value(tmp_path):
    p = write(tmp_path, "neg.toml", MINIMAL.replace("{value = 1e8,", "{value = -1e8,"))
    expect_error(p, "neg.toml", "timing.clock_hz", "negative")


def test_zero_where_positive_required(tmp_path):
    p = write(tmp_path, "zero.toml", MINIMAL.replace("{value = 256,", "{value = 0,"))
    expect_error(p, "zero.toml", "core.neurons_per_core", "positive")


def test_unknown_key_is_an_error(tmp_path):
    p = write(tmp_path, "unk.toml", MINIMAL.replace(
        "[core]\n", '[core]\nneurons_per_cor = {value = 1, source = "x"}\n'))
    expect_error(p, "unk.toml", "core.neurons_per_cor", "unknown key", "neurons_per_core")
    p = write(tmp_path, "unk2.toml", MINIMAL + '\n[turbo]\nboost = {value = 1, source = "x"}\n')
    expect_error(p, "unk2.toml", "turbo", "unknown key")
    p = write(tmp_path, "unk3.toml", MINIMAL.replace(
        '{value = 256, source = "test"}', '{value = 256, source = "test", unit = "n"}'))
    expect_error(p, "unk3.toml", "core.neurons_per_core", "unit")


def test_wrong_type(tmp_path):
    p = write(tmp_path, "type.toml", MINIMAL.replace("{value = 256,", '{value = "many",'))
    expect_error(p, "type.toml", "core.neurons_per_core", "integer")
    p = write(tmp_path, "type2.toml", MINIMAL.replace("{value = 256,", "{value = 25.6,"))
    expect_error(p, "type2.toml", "core.neurons_per_core", "integer")
    p = write(tmp_path, "type3.toml", MINIMAL.replace(
        'split_layers = {value = true,', 'split_layers = {value = 1,'))
    expect_error(p, "type3.toml", "features.split_layers", "true or false")
    p = write(tmp_path, "type4.toml", MINIMAL.replace('kind = "sync"', 'kind = "quantum"'))
    expect_error(p, "type4.toml", "kind", "sync, async")


def test_missing_key(tmp_path):
    p = write(tmp_path, "miss.toml", MINIMAL.replace(
        'tick_cycles = {value = 1000, source = "test"}\n', ""))
    expect_error(p, "miss.toml", "timing.tick_cycles", "missing", "sync")


def test_key_of_the_other_chip_kind_is_rejected(tmp_path):
    p = write(tmp_path, "kind.toml", MINIMAL.replace(
        "[timing]\n", '[timing]\nfifo_depth = {value = 8, estimate = "x"}\n'))
    expect_error(p, "kind.toml", "timing.fifo_depth", "async")


def test_malformed_toml_reports_line_and_column(tmp_path):
    p = write(tmp_path, "broken.toml",
              MINIMAL.replace('mesh_x = {value = 2,', "mesh_x = {value = 2"))
    msg = expect_error(p, "broken.toml", "malformed TOML", "line")
    assert "column" in msg


def test_cross_checks(tmp_path):
    p = write(tmp_path, "n.toml", MINIMAL.replace(
        "[mesh]\n", '[mesh]\nn_cores = {value = 7, source = "x"}\n'))
    expect_error(p, "n.toml", "mesh.n_cores", "mesh_x * mesh_y")
    p = write(tmp_path, "c.toml", MINIMAL.replace("{value = 100,", "{value = 2000,"))
    expect_error(p, "c.toml", "timing.comm_phase_cycles", "tick_cycles")
    p = write(tmp_path, "e.toml", MINIMAL.replace('energy_table = "45nm"', 'energy_table = "3nm"'))
    expect_error(p, "e.toml", "energy_table", "3nm")
    p = write(tmp_path, "l.toml", MINIMAL.replace(
        "{value = 256, source", "{value = [256, 256], source"))
    expect_error(p, "l.toml", "core.neurons_per_core", "6 cores")


def test_energy_table_validation(tmp_path):
    text = (ENERGY_DIR / "45nm.toml").read_text()
    p = write(tmp_path, "e1.toml", text.replace("hop_pj = {value = 0.0,", "hop_pj = {value = -1,"))
    expect_error(p, "e1.toml", "actions.hop_pj", "negative", loader=load_energy_table)
    lines = [ln for ln in text.splitlines() if not ln.startswith("hop_pj")]
    p = write(tmp_path, "e2.toml", "\n".join(lines))
    expect_error(p, "e2.toml", "actions.hop_pj", "missing", loader=load_energy_table)
    extra = '\n[primitives]\nac_int4_pj = {value = 0.01, estimate = "x"}\n'
    p = write(tmp_path, "e3.toml", text.replace("\n[primitives]\n", extra))
    expect_error(p, "e3.toml", "primitives.ac_int4_pj", "unknown key", loader=load_energy_table)


# ----------------------------------------------------------------------------- extends
def test_extends_deep_merges_and_names_the_override_file(tmp_path):
    write(tmp_path, "mini.toml", MINIMAL)
    p = write(tmp_path, "big.toml", 'extends = "mini"\nname = "big"\n[core]\n'
              'neurons_per_core = {value = 1024, estimate = "scaled"}\n')
    big, mini = load_chip(p), load_chip(tmp_path / "mini.toml")
    assert big.name == "big" and big.core.neurons_per_core == 1024
    assert big.core.weight_memory_bytes == mini.core.weight_memory_bytes
    assert big.timing == mini.timing and big.mesh == mini.mesh
    assert big.provenance["core.neurons_per_core"] == "estimate: scaled"
    assert big.provenance["core.weight_bits"] == "source: test"
    assert [f.name for f in big.files] == ["mini.toml", "big.toml"]
    # an error in a key set by the override names the override file
    p2 = write(tmp_path, "bad.toml", 'extends = "mini"\nname = "bad"\n[core]\n'
               'neurons_per_core = {value = -4, estimate = "x"}\n')
    expect_error(p2, "bad.toml", "core.neurons_per_core", "negative")
    # an error in an inherited key names the base file
    write(tmp_path, "badbase.toml", MINIMAL.replace("{value = 8, source", "{value = -8, source"))
    p3 = write(tmp_path, "child.toml", 'extends = "badbase"\nname = "child"\n')
    msg = expect_error(p3, "core.weight_bits", "negative")
    assert "badbase.toml" in msg


def test_extends_by_relative_path_and_missing_base(tmp_path):
    write(tmp_path, "mini.toml", MINIMAL)
    p = write(tmp_path, "v.toml", 'extends = "mini.toml"\nname = "v"\n')
    assert load_chip(p).n_cores == 6
    p = write(tmp_path, "w.toml", 'extends = "nope"\nname = "w"\n')
    expect_error(p, "w.toml", "extends", "nope")
    p = write(tmp_path, "noname.toml", 'extends = "mini"\n')
    expect_error(p, "noname.toml", "name", "missing")


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b"\nname = "a"\n')
    write(tmp_path, "b.toml", 'extends = "a"\nname = "b"\n')
    msg = expect_error(tmp_path / "a.toml", "cycle", "a.toml", "b.toml")
    assert msg.count("->") >= 2
    write(tmp_path, "self.toml", 'extends = "self"\nname = "self"\n')
    expect_error(tmp_path / "self.toml", "cycle")


def test_chip_overrides_of_energy_are_validated(tmp_path):
    p = write(tmp_path, "o.toml",
              MINIMAL + '\n[energy_overrides]\nac_pj = {value = 0.5, estimate = "x"}\n')
    e = load_chip(p).energy()
    assert e.ac_pj == 0.5 and e.mac_pj == 4.6
    assert e.provenance["actions.ac_pj"] == "estimate: x"
    p = write(tmp_path, "o2.toml",
              MINIMAL + '\n[energy_overrides]\nac_fj = {value = 0.5, estimate = "x"}\n')
    expect_error(p, "o2.toml", "energy_overrides.ac_fj", "unknown key")


def test_values_are_finite(tmp_path):
    p = write(tmp_path, "inf.toml", MINIMAL.replace("{value = 1e8,", "{value = inf,"))
    expect_error(p, "inf.toml", "timing.clock_hz", "finite")
    assert math.isfinite(load_chip("tianjic").timing.clock_hz)


# ----------------------------------------------------------------------------- issue 13 reproducers
def test_non_utf8_file_names_the_file(tmp_path):
    p = tmp_path / "latin.toml"
    p.write_bytes(MINIMAL.replace('"a minimal test chip"', '"caf\xe9"').encode("latin-1"))
    expect_error(p, "latin.toml", "not UTF-8", "line 4")
    p = tmp_path / "latin-energy.toml"
    p.write_bytes(b'name = "\xff"\n')
    expect_error(p, "latin-energy.toml", "not UTF-8", loader=load_energy_table)


def test_energy_table_is_checked_when_the_chip_loads(tmp_path):
    p = write(tmp_path, "e.toml", MINIMAL.replace('energy_table = "45nm"',
                                                  'energy_table = "tables/none.toml"'))
    msg = expect_error(p, "e.toml: energy_table:", "energy table file not found")
    assert str(tmp_path / "tables" / "none.toml") in msg
    bad = (ENERGY_DIR / "45nm.toml").read_text().replace("hop_pj = {value = 0.0,",
                                                         "hop_pj = {value = -2,")
    write(tmp_path, "bad-table.toml", bad)
    p = write(tmp_path, "f.toml", MINIMAL.replace('energy_table = "45nm"',
                                                  'energy_table = "bad-table.toml"'))
    expect_error(p, "f.toml: energy_table:", "bad-table.toml: actions.hop_pj", "negative")


def test_override_errors_blame_the_override_file(tmp_path):
    write(tmp_path, "mini.toml", MINIMAL)
    # a table written where the base has a value: the override's key, the override's file
    p = write(tmp_path, "o1.toml", 'extends = "mini"\nname = "o1"\n[mesh.mesh_x]\nfoo = 1\n')
    expect_error(p, "o1.toml: mesh.mesh_x")
    # a mode switched by the override: the inherited key is named with where the mode was set
    p = write(tmp_path, "o2.toml", 'extends = "mini"\nname = "o2"\nkind = "async"\n')
    msg = expect_error(p, "mini.toml: mesh.hop_cycles", "only used by sync chips",
                       "kind = 'async', set in")
    assert msg.endswith("o2.toml)")
    p = write(tmp_path, "o3.toml", 'extends = "mini"\nname = "o3"\n[timing]\n'
              'fifo_depth = {value = 8, estimate = "x"}\n')
    expect_error(p, "o3.toml: timing.fifo_depth", "only used by async chips")


def test_user_file_extends_a_shipped_chip(tmp_path):
    p = write(tmp_path, "my-xl.toml", 'extends = "speck-xl"\nname = "my-xl"\n[limits]\n'
              'destinations_max = {value = 4, estimate = "mine"}\n')
    chip = load_chip(p)
    assert [f.name for f in chip.files] == ["speck.toml", "speck-xl.toml", "my-xl.toml"]
    assert chip.limits.destinations_max == 4 and chip.n_cores == 64
    # a user's copy named like a shipped chip extends the shipped one, not itself
    p = write(tmp_path, "speck.toml", 'extends = "speck"\nname = "my-speck"\n')
    assert load_chip(p).files[0] == CHIPS_DIR / "speck.toml"
    p = write(tmp_path, "lost.toml", 'extends = "speck-xxl"\nname = "lost"\n')
    msg = expect_error(p, "lost.toml: extends", "speck-xxl", "speck-xl")
    assert str(CHIPS_DIR) in msg


SPECK_TEXT = (CHIPS_DIR / "speck.toml").read_text()


@pytest.mark.parametrize("text,name,key,value", [
    (MINIMAL, "clock", "timing.clock_hz", "1e-300"),
    (MINIMAL, "hops", "mesh.hop_cycles", "1e18"),
    (SPECK_TEXT, "service", "timing.synop_service_ns", "1e300"),
    (SPECK_TEXT, "fifo", "timing.fifo_depth", str(2 ** 63 - 1)),
])
def test_values_far_outside_physics_are_refused_unless_allowed(tmp_path, text, name, key,
                                                               value):
    section, k = key.split(".")
    lines = text.splitlines()
    i = next(j for j, ln in enumerate(lines) if ln.startswith(f"{k} = {{value = "))
    lines[i] = f'{k} = {{value = {value}, estimate = "typo"}}'
    p = write(tmp_path, f"{name}.toml", "\n".join(lines) + "\n")
    msg = expect_error(p, f"{name}.toml: {key}:", "outside the plausible range",
                       "set allow_extreme = true")
    assert f"{float(value):g}" in msg
    allowed = write(tmp_path, f"{name}-ok.toml", "allow_extreme = true\n" + p.read_text())
    got = getattr(getattr(load_chip(allowed), section), k)           # the stated escape
    assert got == (int(value) if value.isdigit() else float(value))


def test_energy_values_far_outside_physics_are_refused_unless_allowed(tmp_path):
    text = (ENERGY_DIR / "45nm.toml").read_text().replace(
        "static_power_w = {value = 0.0,", "static_power_w = {value = 1e300,")
    assert "1e300" in text
    p = write(tmp_path, "hot.toml", text)
    expect_error(p, "hot.toml: actions.static_power_w: 1e+300 is outside the plausible range "
                 "0..10000", "allow_extreme = true", loader=load_energy_table)
    p = write(tmp_path, "hot-ok.toml", "allow_extreme = true\n" + text)
    assert load_energy_table(p).static_power_w == 1e300
    p = write(tmp_path, "flag.toml", 'allow_extreme = "yes"\n' + text)
    expect_error(p, "flag.toml: allow_extreme: expected true or false", loader=load_energy_table)
