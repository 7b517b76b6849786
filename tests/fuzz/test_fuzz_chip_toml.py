"""Fuzzing the chip and energy TOML files: mutated copies of every shipped file load, or fail
with a ``SpecError`` naming the file; a chip that loads prices its energy and runs a tiny graph
(or its mapper refuses it with a ``MappingError``). No other exception may escape."""
import json
import tomllib

import numpy as np
import pytest
from hypothesis import strategies as st

from chips.mapping import MappingError
from chips.spec import CHIPS_DIR, ENERGY_DIR, SpecError, load_chip, load_energy_table
from neurosim.run.simulate import simulate
from tests.fuzz.bases import tiny_graph, tiny_inputs
from tests.fuzz.mutate import (Outcomes, fuzz_cases, mutate_bytes, mutate_doc, to_toml)

CHIP_FILES = sorted(CHIPS_DIR.glob("*.toml"))
ENERGY_FILES = sorted(ENERGY_DIR.glob("*.toml"))
# values the mutator may also write (names and modes the schema knows, a typo'd extends)
EXTRA = ("speck-xl", "tianjic-x16", "45nm", "all-to-all", "dynapcnn", "nope.toml",
         {"value": 1e300, "estimate": "x"}, {"value": 1e-300, "source": "x"},
         {"value": 2 ** 63 - 1, "estimate": "x"}, {"value": -1, "estimate": "x"})


GRAPH = tiny_graph()
X = tiny_inputs(1)


def snapshot(paths) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the files to mutate, read once: data generation must not depend
    on files that may change during a run."""
    return [(p.name, p.read_bytes()) for p in paths]


def _mutant(data, raw: bytes) -> bytes:
    if data.draw(st.integers(0, 3)) == 0:                  # raw bytes: encoding, syntax
        return mutate_bytes(data, raw)
    doc = mutate_doc(data, tomllib.loads(raw.decode()), extra_values=EXTRA)
    return to_toml(doc).encode()


def check_chip_case(data, sources, tmp, outcomes: Outcomes, simulate_share: int = 4):
    name, raw = data.draw(st.sampled_from(sources), label="chip file")
    p = tmp / name                                         # a user's copy beside nothing else
    p.write_bytes(_mutant(data, raw))
    run_it = data.draw(st.integers(0, simulate_share - 1)) == 0

    def case():
        chip = load_chip(p)
        json.dumps(chip.to_dict())
        chip.energy().costs()
        chip.capacities()
        assert chip.hop_latency_s >= 0
        if run_it:
            r = simulate(GRAPH, chip, X, mode=chip.kind)
            assert np.all(np.isfinite(r.logits))
    outcomes.run(case, (SpecError, MappingError))


def check_energy_case(data, sources, tmp, outcomes: Outcomes):
    name, raw = data.draw(st.sampled_from(sources), label="energy file")
    p = tmp / name
    p.write_bytes(_mutant(data, raw))

    def case():
        t = load_energy_table(p)
        json.dumps(t.to_dict())
        assert all(v >= 0 for v in t.costs().values())
    outcomes.run(case, (SpecError,))


def test_fuzz_chip_tomls(tmp_path_factory):
    out = fuzz_cases(check_chip_case, snapshot(CHIP_FILES), tmp_path_factory.mktemp("fz"), n=60)
    assert out.counts["ok"] and out.counts["SpecError"], str(out)


def test_fuzz_energy_tomls(tmp_path_factory):
    out = fuzz_cases(check_energy_case, snapshot(ENERGY_FILES), tmp_path_factory.mktemp("fz"),
                     n=40)
    assert out.counts["ok"] and out.counts["SpecError"], str(out)


@pytest.mark.soak
def test_soak_chip_and_energy_tomls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fz")
    chips = fuzz_cases(check_chip_case, snapshot(CHIP_FILES), tmp, simulate_share=8)
    energy = fuzz_cases(check_energy_case, snapshot(ENERGY_FILES), tmp)
    print(f"\nsoak chip TOML: {chips}\nsoak energy TOML: {energy}")
    assert chips.total >= 1000 and energy.total >= 1000
