"""Shared test fixtures: golden files under tests/golden/ with an ``--update-golden`` flag."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# Never red by chance, never by the clock: every property test draws the same examples on
# every run (derandomize: a fixed seed per test) and has no per-example deadline (wall-clock
# time depends on the machine's load). `pytest --hypothesis-profile=explore` draws new random
# examples (for soak sessions); a failure there prints the example to make into a test.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, database=None, deadline=None)
settings.load_profile("deterministic")

# One torch thread in tests: OpenMP workers spinning against other processes (or pytest-xdist
# workers) slow small ops by orders of magnitude; results do not depend on the thread count.
torch.set_num_threads(1)

# Set-up and kernel-cost caches go to a fresh directory per test session, never the user's
# ~/.cache/neurosim (and never a cost model measured on another day).
os.environ["NEUROSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="neurosim-test-cache-")

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files under tests/golden/ from the current code")


class Golden:
    def __init__(self, update: bool):
        self.update = update

    def check_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Compare ``arrays`` to tests/golden/NAME.npz exactly (or rewrite it with the flag)."""
        path = GOLDEN / f"{name}.npz"
        if self.update or not path.exists():
            if not self.update:
                pytest.fail(f"golden file {path} missing; run pytest --update-golden")
            GOLDEN.mkdir(exist_ok=True)
            np.savez(path, **arrays)
            return
        with np.load(path) as ref:
            assert sorted(ref.files) == sorted(arrays), f"{path}: array names differ"
            for k in ref.files:
                np.testing.assert_array_equal(arrays[k], ref[k], err_msg=f"{path}:{k}")

    def check_text(self, name: str, text: str) -> None:
        """Compare ``text`` to tests/golden/NAME byte for byte (or rewrite it with the flag)."""
        path = GOLDEN / name
        if self.update:
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} missing; run pytest --update-golden")
        assert text == path.read_text(), f"{path} differs; inspect, then --update-golden"


@pytest.fixture
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-golden"))
