"""Report helpers: the HTML page of a results table and the gri composite."""

import numpy as np

from sdssclr.results.pages import markdown_page
from sdssclr.results.plotting import stamp_rgb


def test_a_markdown_table_becomes_an_html_table(tmp_path):
    md = tmp_path / "t.md"
    md.write_text("# Table 1\n\n> **SYNTHETIC SURVEY, NOT SDSS DATA.** Demo.\n\n| Exp | Model | Acc |\n|---|---|---|\n"
                  "| exp1 | MargNet <ours> | 97.3 |\n| exp2 | SimCLR | 91.6 |\n\nnote *\n")
    markdown_page(md, tmp_path / "t.html", "t")
    html = (tmp_path / "t.html").read_text()
    assert "<h2>Table 1</h2>" in html and "<b>SYNTHETIC SURVEY, NOT SDSS DATA.</b>" in html
    assert html.count("<tr>") == 3 and "<th>Model</th>" in html and "<td>97.3</td>" in html
    assert "MargNet &lt;ours&gt;" in html  # escaped, never raw markup
    assert "|---|" not in html


def test_the_composite_shows_a_faint_source_above_a_dark_sky():
    rng = np.random.default_rng(0)
    stamp = rng.normal(0.0, 1.0, (5, 32, 32))
    yy, xx = np.mgrid[:32, :32]
    stamp[1:4] += 6.0 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / (2 * 1.5**2))  # ~6 sigma peak in g, r, i
    rgb = stamp_rgb(stamp)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    centre = rgb[15:18, 15:18].mean()
    sky = np.r_[rgb[:8].ravel(), rgb[-8:].ravel()].mean()
    assert centre > 2.5 * sky and sky < 60
