"""scripts/free_running_accuracy.py: the README's free-running table, on two inputs."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "free_running_accuracy.py"


def _script():
    spec = importlib.util.spec_from_file_location("free_running_accuracy", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_token_realisation_on_one_time_step_loses_no_event():
    """The README's claim: e-spikeformer-tiny (T=1) with the token realisation has no late
    event, so whatever accuracy free mode loses there is lost to firing on partial input;
    the windowed run is the exact one (its accuracy is the sync engine's)."""
    from neurosim.run.simulate import simulate
    import models
    from neurosim.frontends.lower import lower
    from neurosim.run.inputs import load_for_model
    mod = _script()
    out = mod.measure("e-spikeformer-tiny", 2, [("token", 0.0, 0.0)], "speck-xl")
    free = out["token:0:0"]
    assert free["late_events"] == 0 and 0.0 <= free["agreement"] <= 1.0
    model = models.load_checkpoint("e-spikeformer-tiny")
    x_cal, _, _ = load_for_model(model, "digits", "train", n=64)
    x, y, _ = load_for_model(model, "digits", "test", n=2)
    assert out["windowed"]["accuracy"] == simulate(lower(model, x_cal), "tianjic-x16", x,
                                                   labels=y).accuracy


def test_bad_config_is_named():
    with pytest.raises(SystemExit, match="REALISATION:SETTLE_NS:INPUT_WINDOW_S"):
        _script().main(["--configs", "token:0"])
