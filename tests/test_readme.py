"""The README's Python snippet (the fenced block under "## Python API") runs verbatim and prints
the accuracy, energy, power and latency of the shipped checkpoint."""
import re
from pathlib import Path

import numpy as np

from chips.spec import load_chip
from neurosim.ir.units import fmt_energy, fmt_power, fmt_time

ROOT = Path(__file__).resolve().parents[1]


def python_api_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Python API' section"
    blocks = re.findall(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert len(blocks) == 1, f"expected one python block under ## Python API, got {len(blocks)}"
    return blocks[0]


def test_readme_python_snippet_runs_verbatim(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # whatever it writes stays out of the tree
    ns: dict = {}
    exec(compile(python_api_snippet(), str(ROOT / "README.md"), "exec"), ns)
    out = capsys.readouterr().out
    res, cmp = ns["res"], ns["cmp"]
    per, e = res.energy["per_inference"], res.energy
    assert res.model == "meta-spikeformer-tiny" and res.chip == "tianjic-x16" and res.n == 20
    assert e["table"] == load_chip("tianjic-x16").energy().name
    assert res.accuracy >= 0.8                   # trained (98.3% on the whole test split)
    for s in ("meta-spikeformer-tiny on tianjic-x16 (sync): 20 inputs",
              f"accuracy             {res.accuracy:.4f}",
              f"energy / inference   {fmt_energy(per['total_j'])}",
              f"average power        {fmt_power(e['power_w']['total'])}",
              f"latency / inference  {fmt_time(float(np.mean(res.latency_s)))}",
              "energy consumers"):
        assert s in out, s
    assert [(r.chip, r.mode) for r in cmp.results] == [("tianjic-x16", "sync"),
                                                       ("speck-xl", "async-windowed")]
    assert str(cmp) in out and "sync/async energy per inference" in out
    assert len(out) < 6000                       # a summary, not a dump
