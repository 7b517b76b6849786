"""Fuzzing ``result.json``: mutated copies of real run records go through what
``render_report`` does (load and validate, CSV tables, plots, markdown, HTML); the only acceptable
outcomes are a report or a ``RecordError`` naming the file and key path. No other exception
may escape.

Building matplotlib figures dominates rendering (0.5 to 4 s a report on a loaded machine), so
every case that passes validation writes the CSVs and the markdown, one in ``plot_share`` also
builds the plots, and of those one in ``draw_share`` draws them (``canvas.draw``: layout, norms
and limits run as for a PNG); PNG files are never written (``_save`` closes each figure)."""
import json
import shutil

import matplotlib.pyplot as plt
import pytest
from hypothesis import strategies as st

from neurosim.report import plots
from neurosim.report.html import write_html
from neurosim.report.markdown import load_record, render_markdown, render_plots, write_csvs
from neurosim.report.record_schema import RecordError
from tests.fuzz.bases import tiny_record, zoo_record
from tests.fuzz.mutate import Outcomes, fuzz_cases, mutate_bytes, mutate_doc

EXTRA = ("sync", "async-windowed", "async-free", "tianjic-x16/sync", "speck-xl/async-windowed",
         {"0": [1.0, 2.0]}, [[0, 1e-6, 2e-6, "n", "synops"]], [[1e-6, 3]], "uncore")


@pytest.fixture(scope="module")
def tiny():
    """The tiny graph's record: sync, windowed and free-running runs, timelines, FIFO traces."""
    return tiny_record()


@pytest.fixture(scope="module")
def zoo():
    """A zoo model's record: paper mode, mapping reports, attention and SFA nodes."""
    return zoo_record()


@pytest.fixture
def no_png(monkeypatch):
    """Figures are built and closed, not written (module doc)."""
    state = {"draw": False}

    def save(fig, path, extra=()):
        if state["draw"]:
            fig.canvas.draw()
        plt.close(fig)
        return path
    monkeypatch.setattr(plots, "_save", save)
    return state


def check_record_case(data, records, tmp, outcomes: Outcomes, no_png, plot_share: int = 4,
                      draw_share: int = 4):
    rec = records[data.draw(st.sampled_from([0, 0, 0, 1]), label="record") % len(records)]
    d = tmp / "run"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    if data.draw(st.integers(0, 5)) == 0:
        text = mutate_bytes(data, json.dumps(rec).encode())
    else:
        text = json.dumps(mutate_doc(data, rec, max_edits=2, extra_values=EXTRA)).encode()
    (d / "result.json").write_bytes(text)
    plot = data.draw(st.integers(0, plot_share - 1)) == 0
    no_png["draw"] = data.draw(st.integers(0, draw_share - 1)) == 0

    def case():                                  # render_report, step by step
        r = load_record(d)
        write_csvs(r, d)
        made = render_plots(r, d) if plot else []
        md = render_markdown(r, made, d)
        if not made:                             # the HTML embeds PNGs, none written here
            write_html(d, md)
    outcomes.run(case, (RecordError,))


def test_fuzz_result_json(tiny, tmp_path_factory, no_png):
    out = fuzz_cases(check_record_case, [tiny], tmp_path_factory.mktemp("fz"), n=40,
                     no_png=no_png)
    assert out.counts["ok"] and out.counts["RecordError"], str(out)


@pytest.mark.soak
def test_soak_result_json(tiny, zoo, tmp_path_factory, no_png):
    out = fuzz_cases(check_record_case, [tiny, zoo], tmp_path_factory.mktemp("fz"),
                     no_png=no_png, plot_share=8)
    print(f"\nsoak result.json: {out}")
    assert out.total >= 1000
