"""report.html: one self-contained file beside report.md, saying the same, plots embedded."""
import base64
import re

import numpy as np
import pytest

from neurosim.frontends.lower import lower
from neurosim.report.html import inline, markdown_to_html
from neurosim.report.markdown import write_report
from neurosim.run.compare import compare
from tests.zoo_cases import inputs_for, small_model

PNG = bytes.fromhex("89504e470d0a1a0a") + b"not really a png, bytes are bytes"


def test_markdown_subset_converts(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(PNG)
    md = ("# Title <b>\n\n- **Model**: m, `x|y`\n- second *item*\n  continued\n\n## Results\n\n"
          "| run | energy |\n|---|---:|\n| a\\|b | 1.5 uJ |\n\nA paragraph with *gating* and "
          "2 * 3 = 6.\n\n![a](plots/a.png)\n")
    out = markdown_to_html(md, tmp_path)
    assert out.startswith("<!DOCTYPE html>") and "<title>Title &lt;b&gt;</title>" in out
    assert "<h1>Title &lt;b&gt;</h1>" in out and "<h2>Results</h2>" in out
    assert "<li><strong>Model</strong>: m, <code>x|y</code></li>" in out
    assert "<li>second <em>item</em> continued</li>" in out
    assert '<tr><th>run</th><th class="num">energy</th></tr>' in out
    assert '<tr><td>a|b</td><td class="num">1.5 uJ</td></tr>' in out
    assert "<p>A paragraph with <em>gating</em> and 2 * 3 = 6.</p>" in out
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in out
    assert markdown_to_html(md, tmp_path) == out                       # deterministic


def test_inline_escapes_html():
    assert inline("<script>alert(1)</script> & **b**") == \
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <strong>b</strong>"


def test_missing_image_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="plots/gone.png"):
        markdown_to_html("![gone](plots/gone.png)\n", tmp_path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    m = small_model("meta-sdsa3")
    x = inputs_for(m, 2, seed=5)
    g = lower(m, x)
    cmp = compare(g, ["tianjic-x16"], x, np.array([3, 4]))
    out = tmp_path_factory.mktemp("html")
    write_report(out, cmp, graph=g, model_name="meta-small", workload="random",
                 chips=cmp.chips)
    return out


def test_report_html_is_self_contained_and_matches_report_md(run_dir):
    page = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert pngs
    for p in pngs:                                      # every plot embedded, byte for byte
        assert base64.b64encode(p.read_bytes()).decode() in page, p.name
    assert not re.search(r'(src|href)="(?!data:)', page)     # nothing outside the file
    headings = re.findall(r"^#{1,6} (.*)$", md, re.M)
    assert re.findall(r"<h[1-6]>(.*?)</h[1-6]>", page) == [inline(h) for h in headings]
    n_tables = len(re.findall(r"^\|[-:|]+\|$", md, re.M))
    assert page.count("<table>") == n_tables > 0
