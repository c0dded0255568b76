"""What the render rules share: writing one formatted table in every format, and the three-line table of
an analysis whose presentation is a row of resources/labels/tables.csv.

Estimation rules write tidy estimates only (results/estimates/*.csv and what later steps need); one render
rule per stage (render_<stage>) draws every table and figure of that stage from those files, so a change
of the `tables:` or `figures:` settings re-runs render jobs only (docs/tables-and-figures.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dualpilot import tables
from dualpilot.errors import InputError, Problem


def write_table(table: tables.Table, outputs: Any, name: str) -> None:
    """Write `table` to the outputs `<name>_tex` (booktabs, labelled tab:<name>), `<name>_md` and
    `<name>_html` (a self-contained page) of a render rule (`table_outputs` in workflow/rules/common.smk
    names them so)."""
    for key, body in (
        ("tex", tables.to_latex(table, label=f"tab:{name}")),
        ("md", tables.to_markdown(table)),
        ("html", tables.to_html(table)),
    ):
        path = Path(outputs[f"{name}_{key}"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def analysis_table(
    tidy: pd.DataFrame,
    analysis: str,
    *,
    specs_path: str,
    labels: tables.Labels,
    settings: Mapping[str, Any],
) -> tables.Table:
    """The regression table of `analysis`: title, note and terms from its row of `specs_path`
    (resources/labels/tables.csv), in the language, stars and digits of `settings` (the `tables:` block)."""
    specs = tables.load_table_specs(specs_path)
    if analysis not in specs:
        raise InputError(
            Problem(str(specs_path), f"no row for analysis {analysis!r}", column="analysis"),
            "a table has no presentation",
        )
    spec = specs[analysis]
    language = settings["language"]
    return tables.regression_table(
        tidy,
        terms=spec.terms,
        language=language,
        title=spec.title[language],
        note=spec.note[language],
        stars=settings["stars"],
        digits=settings["digits"],
        labels=labels,
    )


def write_analysis_table(
    inputs: Any, outputs: Any, analysis: str, *, labels: tables.Labels, settings: Mapping[str, Any]
) -> pd.DataFrame:
    """Read the tidy estimates `inputs[analysis]`, render `analysis_table` (with `inputs.specs`) and
    write it with `write_table`; return the estimates (a render rule may draw a figure from them)."""
    tidy = pd.read_csv(inputs[analysis])
    table = analysis_table(
        tidy, analysis, specs_path=inputs.specs, labels=labels, settings=settings
    )
    write_table(table, outputs, analysis)
    return tidy
