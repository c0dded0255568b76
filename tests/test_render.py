"""What the render rules share (dualpilot.render.documents, tables.to_html) and the one log line per fitted model.

The workflow side (render jobs are the only jobs a change of `tables:` or `figures:` re-runs; the result
map of the README equals what `rule all` builds) is in tests/test_workflow_render.py.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from dualpilot.core.errors import InputError
from dualpilot.engines import estimation
from dualpilot.render import documents as render
from dualpilot.render import tables


@pytest.fixture(scope="module")
def tidy() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    data = pd.DataFrame(
        {
            "city_code": np.repeat(np.arange(40), 10),
            "year": np.tile(np.arange(2010, 2020), 40),
            "x": rng.normal(size=n),
            "dual_post": rng.integers(0, 2, size=n).astype(float),
        }
    )
    data["lq"] = 0.3 * data["dual_post"] + 0.5 * data["x"] + rng.normal(size=n)
    fits = {
        "(1)": estimation.fit(data, outcome="lq", terms=["dual_post"]),
        "(2)": estimation.fit(data, outcome="lq", terms=["dual_post"], controls=["x"]),
    }
    return pd.concat([estimation.tidy(f, model=m) for m, f in fits.items()], ignore_index=True)


class _Cells(HTMLParser):
    """The text of every th/td cell by row, the caption, and the classes of the tables."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self.table_classes: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self._in = "cell"
        elif tag == "caption":
            self._in = "caption"
        elif tag == "table":
            self.table_classes.append(dict(attrs).get("class", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th", "caption"):
            self._in = None

    def handle_data(self, data):
        if self._in == "cell":
            self.rows[-1][-1] += data
        elif self._in == "caption":
            self.caption += data


@pytest.mark.parametrize("language", ["zh", "en"])
def test_html_table_has_the_cells_of_the_markdown_table(tidy: pd.DataFrame, language: str):
    table = tables.regression_table(tidy, language=language, title="A & <B>")
    page = tables.to_html(table)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    parsed = _Cells()
    parsed.feed(page)
    assert parsed.table_classes == ["three-line"]
    assert parsed.caption == "A & <B>"  # escaped in the page, read back as text
    assert "A &amp; &lt;B&gt;" in page
    # every row of the Markdown rendering, cell by cell (Markdown escapes undone), in the same order
    md_rows = [
        [re.sub(r"\\(.)", r"\1", c).strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in tables.to_markdown(table).splitlines()
        if line.startswith("|") and ":--" not in line
    ]
    html_rows = [row for row in parsed.rows if len(row) == len(table.header)]
    assert html_rows == [[c.strip() for c in row] for row in md_rows]
    notes = tables.text("note_prefix", language)
    assert f'<p class="notes">{notes}' in page


def test_write_table_writes_each_format(tidy: pd.DataFrame, tmp_path):
    table = tables.regression_table(tidy, language="en", title="Baseline")
    outputs = {
        f"baseline_{ext}": str(tmp_path / "sub" / f"baseline.{ext}")
        for ext in ("tex", "md", "html")
    }
    render.write_table(table, outputs, "baseline")
    tex = (tmp_path / "sub/baseline.tex").read_text(encoding="utf-8")
    assert "\\label{tab:baseline}" in tex and "\\toprule" in tex
    assert (tmp_path / "sub/baseline.md").read_text(encoding="utf-8") == tables.to_markdown(table)
    assert (tmp_path / "sub/baseline.html").read_text(encoding="utf-8") == tables.to_html(table)


def test_analysis_table_takes_title_and_note_from_the_specs(tidy: pd.DataFrame, tmp_path):
    specs = tmp_path / "tables.csv"
    specs.write_text(
        "analysis,title_zh,title_en,terms,note_zh,note_en\n"
        "baseline,基准回归结果,Baseline results,dual_post,,A planted note.\n",
        encoding="utf-8",
    )
    settings = {"language": "en", "stars": [0.1, 0.05, 0.01], "digits": 3}
    labels = tables.load_labels()
    table = render.analysis_table(
        tidy, "baseline", specs_path=str(specs), labels=labels, settings=settings
    )
    assert table.title == "Baseline results" and "A planted note." in " ".join(table.notes)
    with pytest.raises(InputError, match="no row for analysis 'mechanisms'"):
        render.analysis_table(
            tidy, "mechanisms", specs_path=str(specs), labels=labels, settings=settings
        )
    # write_analysis_table reads the estimates named after the analysis and writes its three files
    (tmp_path / "baseline.csv").write_text(tidy.to_csv(index=False), encoding="utf-8")
    inputs = {"baseline": str(tmp_path / "baseline.csv")}
    outputs = {f"baseline_{ext}": str(tmp_path / f"out.{ext}") for ext in ("tex", "md", "html")}

    named = type("Inputs", (dict,), {"specs": str(specs)})(
        inputs
    )  # items and .specs, as Snakemake's
    back = render.write_analysis_table(named, outputs, "baseline", labels=labels, settings=settings)
    assert len(back) == len(tidy)
    assert (tmp_path / "out.md").read_text(encoding="utf-8") == tables.to_markdown(table)


def test_fit_logs_one_line_with_the_sample_size_in_user_names(caplog):
    data = pd.DataFrame(
        {
            "city_code": [1, 1, 2, 2, 3, 3, 4, 4, 5],
            "year": [1, 2, 1, 2, 1, 2, 1, 2, 1],
            "rel_-2": [0, 1, 0, 0, 1, 0, 0, 1, 0],
            "ctrl": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.7, np.nan],
            "lq": [1.0, 2.0, 1.5, 1.7, 2.2, 1.1, 0.9, 2.5, 1.0],
        }
    )
    with caplog.at_level(logging.DEBUG, logger="dualpilot"):
        fit = estimation.fit(data, outcome="lq", terms=["rel_-2"], controls=["ctrl"])
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert info == [
        f"lq ~ rel_-2 + 1 control | city_code + year: N = {fit.n_obs}, 4 clusters "
        "(dropped 1 missing, 0 singletons)"
    ]
    # no alias of the design frame (_y, _x0, _f0, ...) reaches the log at any level
    assert not any(re.search(r"\b_(?:y|x\d|f\d|c|w)\b", r.getMessage()) for r in caplog.records)
    assert fit.n_obs == 8
