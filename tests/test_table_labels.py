"""Every table the workflow makes, in both languages, carries labels only (issue 12, item 2).

One run of the whole study on the demo data (few draws, so it is quick) writes every formatted table in
Chinese; a second run with `tables: language: en` re-renders them in English. Then, for every table:

- no model id, term, test row or category of the tidy files (results/estimates/*.csv and the frames the
  tables are drawn from) is printed as it is written there, e.g. ``joint``, ``sc_alone``, ``bins``,
  ``full_sample``, ``development: high``, ``high - low``, ``none``, ``original``, ``RM``;
- no ASCII snake_case identifier is left in any table, and a Chinese table holds no other Latin word than
  the proper names and abbreviations of `ALLOWED_LATIN` (estimator and test names, units);
- no render job logged "no label for ..." (the label files' fallback that prints the id);
- no p-value reads 0 ("0.000" in a p-value column or in the brackets of a test);
- where xelatex with xeCJK is installed, every .tex table compiles with the preamble of
  docs/tables-and-figures.md without an overfull box (wide tables are shrunk to the line width).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dualpilot.render.tables import _TEXT as FIXED_TEXTS
from dualpilot.render.tables import load_labels
from latex_helpers import SKIP_REASON, compile_documented, xelatex_ready
from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

FAST = {
    "placebo": {"draws": 49, "shards": 1},
    "heterogeneity": {"draws": 49},
    "mechanisms": {"bootstrap": {"reps": 49}},
    "spatial": {"permutations": 99},
    "robustness": {
        "honestdid": {"n_draws": 200},
        "grid": {"bootstrap": {"reps": 99, "seed": 1, "weights_type": "webb"}},
    },
}
#: Latin words a Chinese table may print: names of estimators, tests and methods, and abbreviations.
ALLOWED_LATIN = {
    "Wald", "Romano-Wolf", "TWFE", "PSM-DID", "PSM", "DID", "HonestDiD", "GMM", "Butts-Gardner",
    "SO2", "FLCI", "C-LF", "CRV1", "WCR", "fixest", "reghdfe", "webb", "rademacher", "bdiff", "p",
    "R", "M", "M̄", "IT", "GDP", "FDI", "Callaway-Sant'Anna", "Sun-Abraham", "BJS", "LF", "t",
}  # fmt: skip
#: Columns that print variable names on purpose (the descriptive table's 变量名 next to each label).
NAME_COLUMNS = {"变量名", "Symbol"}
SNAKE_CASE = re.compile(r"\b[A-Za-z]+(?:_[A-Za-z0-9]+)+\b")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9̄'\-]*")
TABLES = "results/tables"


def _overlay(work: Path, name: str, content: dict) -> str:
    (work / name).write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The study run once in Chinese, then its tables re-rendered in English (copies of both)."""
    work = copy_workflow(tmp_path_factory.mktemp("labels_run"))
    fast = _overlay(work, "fast.yaml", FAST)
    snakemake(work, "--cores", "2", "--configfile", fast)
    out = {"zh": tmp_path_factory.mktemp("tables_zh")}
    shutil.copytree(work / TABLES, out["zh"], dirs_exist_ok=True)
    shutil.copytree(work / "logs", out["zh"] / "_logs", dirs_exist_ok=True)
    english = _overlay(work, "en.yaml", {"tables": {"language": "en"}})
    snakemake(work, "--cores", "2", "--configfile", fast, english)
    out["en"] = tmp_path_factory.mktemp("tables_en")
    shutil.copytree(work / TABLES, out["en"], dirs_exist_ok=True)
    shutil.copytree(work / "logs", out["en"] / "_logs", dirs_exist_ok=True)
    out["work"] = work
    return out


def raw_ids(work: Path) -> set[str]:
    """Every id the tidy files and the frames behind the tables hold (models, terms, categories)."""
    ids: set[str] = set()
    columns = ("model", "term", "restriction", "method", "target", "design", "sample", "comparison")
    for path in [
        *(work / "results/estimates").glob("*.csv"),
        *(work / "results/psm").glob("*.csv"),
    ]:
        frame = pd.read_csv(path, dtype=str)
        for column in columns:
            if column in frame.columns:
                ids.update(frame[column].dropna().str.strip())
    # numbered columns (1), (2) are headings as they are; free text of the sample column is not an id
    return {i for i in ids if i and not re.fullmatch(r"\(\d+\)", i) and len(i) < 40}


def cells(markdown: str) -> list[str]:
    """The unescaped cells of a Markdown table (header and body, without the columns of
    `NAME_COLUMNS`) and its title and notes lines."""
    out: list[str] = []
    skip: set[int] = set()
    for line in markdown.splitlines():
        text = re.sub(r"\\(.)", r"\1", line).strip()
        if text.startswith("|"):
            row = [c.strip().strip("*") for c in text.strip("|").split("|")]
            if not out or not skip and any(c in NAME_COLUMNS for c in row):
                skip = {i for i, c in enumerate(row) if c in NAME_COLUMNS}
            out += [c for i, c in enumerate(row) if i not in skip]
        elif text and not set(text) <= set("|:- "):
            out.append(text.strip("*"))
    return [c for c in out if c]


def formatted_tables(folder: Path) -> dict[str, str]:
    """The formatted three-line tables (Markdown with a LaTeX sibling) of a results/tables copy."""
    found = {
        p.stem: p.read_text("utf-8")
        for p in sorted(folder.glob("*.md"))
        if p.with_suffix(".tex").exists()
    }
    assert found, f"no formatted table in {folder}"
    return found


def label_texts(language: str) -> set[str]:
    """Every display text of `language`: the label file's and the tables' fixed texts (an id such as
    ``SD`` may also be a legitimate heading, the English "SD" of a standard deviation)."""
    column = 0 if language == "zh" else 1
    return {pair[column] for pair in load_labels().entries.values()} | set(
        FIXED_TEXTS[language].values()
    )


@pytest.mark.parametrize("language", ["zh", "en"])
def test_no_table_prints_a_raw_id(runs: dict[str, Path], language: str) -> None:
    found = raw_ids(runs["work"])
    assert {"joint", "sc_alone", "bins", "full_sample", "development: high"} <= found  # the run has them
    ids = found - label_texts(language)
    problems = []
    for name, markdown in formatted_tables(runs[language]).items():
        for cell in cells(markdown):
            if cell in ids:
                problems.append(f"{name}: raw id {cell!r}")
            for word in SNAKE_CASE.findall(cell):
                problems.append(f"{name}: identifier {word!r} in {cell!r}")
            if language == "zh":
                for word in LATIN_WORD.findall(cell):
                    if word not in ALLOWED_LATIN:
                        problems.append(f"{name}: Latin word {word!r} in {cell!r}")
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_render_jobs_find_a_label_for_everything(runs: dict[str, Path], language: str) -> None:
    logs = [p for p in (runs[language] / "_logs").rglob("*.log") if "render" in str(p)]
    assert logs, "no log of a render job"
    missing = [
        f"{p.name}: {line.strip()}"
        for p in logs
        for line in p.read_text("utf-8", errors="replace").splitlines()
        if "no label for" in line
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_no_p_value_reads_zero(runs: dict[str, Path], language: str) -> None:
    problems = []
    for name, markdown in formatted_tables(runs[language]).items():
        plain = re.sub(r"\\(.)", r"\1", markdown)
        problems += [f"{name}: {m}" for m in re.findall(r"\[0\.0+\]", plain)]  # test rows
        rows = [r.strip().strip("|").split("|") for r in plain.splitlines() if r.startswith("|")]
        if not rows:
            continue
        header = [h.strip() for h in rows[0]]
        p_columns = [i for i, h in enumerate(header) if re.search(r"\bp\b|p 值|p-value", h)]
        for row in rows[2:]:
            for i in p_columns:
                if i < len(row) and re.fullmatch(r"0\.0+", row[i].strip()):
                    problems.append(f"{name}: p-value column {header[i]!r} reads {row[i].strip()}")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not xelatex_ready(), reason=SKIP_REASON)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_table_compiles_and_fits_the_page(
    runs: dict[str, Path], language: str, tmp_path: Path
) -> None:
    names = sorted(p.name for p in runs[language].glob("*.tex"))
    assert "heterogeneity.tex" in names  # the widest table (nine split samples)
    for name in names:
        shutil.copy(runs[language] / name, tmp_path / name)
    log_text = compile_documented(
        "\n\\clearpage\n".join(f"\\input{{{name}}}" for name in names), tmp_path
    )
    overfull = [line for line in log_text.splitlines() if line.startswith("Overfull \\hbox")]
    assert not overfull, "\n".join(overfull)
