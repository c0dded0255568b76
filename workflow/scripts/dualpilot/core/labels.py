"""The two output languages and the one label file of the workflow (resources/labels/terms.csv).

The label file maps every term, panel column, model id and programme key to a Chinese and an English label;
tables and figures (`dualpilot.render.tables.Labels`) and the .dta variable labels
(`dualpilot.data.panel.stata_label`) read it through `read_label_entries`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dualpilot.core.errors import Problem, raise_if

Language = Literal["zh", "en"]
LANGUAGES: tuple[str, ...] = ("zh", "en")

LABEL_COLUMNS: tuple[str, ...] = ("term", "label_zh", "label_en")
#: The shipped label file (a rule should still pass it as an input so edits trigger reruns).
DEFAULT_LABELS_PATH = Path(__file__).resolve().parents[4] / "resources" / "labels" / "terms.csv"


def check_language(language: str) -> Language:
    """Return `language` if it is 'zh' or 'en', else raise ValueError."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return language  # type: ignore[return-value]


def read_label_entries(path: str | Path = DEFAULT_LABELS_PATH) -> dict[str, tuple[str, str]]:
    """Read a label file (UTF-8 CSV with columns term, label_zh, label_en): term -> (zh, en).

    Raises `InputError` naming the file, line and column of every problem: a missing file or column, an
    empty cell, or a term listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise_if([Problem(str(path), "label file not found")], "cannot read labels")
    problems: list[Problem] = []
    entries: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in LABEL_COLUMNS if c not in header]
        if missing:
            raise_if(
                [Problem(str(path), f"missing column(s) {missing}; found {header}", line=1)],
                "invalid label file",
            )
        for line, row in enumerate(reader, start=2):
            values = {c: (row.get(c) or "").strip() for c in LABEL_COLUMNS}
            for col, value in values.items():
                if not value:
                    problems.append(Problem(str(path), "empty cell", line=line, column=col))
            term = values["term"]
            if term in entries:
                problems.append(Problem(str(path), f"term {term!r} listed twice", line, "term"))
            elif term:
                entries[term] = (values["label_zh"], values["label_en"])
    raise_if(problems, "invalid label file")
    return entries


#: The outcome industry of the study: `lq` is the location quotient of IT employment unless config
#: `outcome_industry` names another industry of the employment tables.
DEFAULT_OUTCOME_INDUSTRY = "it_emp"
#: The key under which `outcome_industry_entries` keeps the note naming the outcome industry (never a term
#: of the label file: a tidy file's term cannot hold a space).
OUTCOME_NOTE = "note: outcome industry"


def outcome_industry_entries(
    entries: dict[str, tuple[str, str]], industry: str, source: str = "the label file"
) -> dict[str, tuple[str, str]]:
    """Label entries with `lq` meaning the location quotient of `industry` (config outcome_industry):
    `entries` itself for the IT sector (it_emp), the study's; otherwise a copy in which `lq` takes the
    labels of the entry ``lq:<industry>`` and `OUTCOME_NOTE` holds the template ``note:outcome_industry``
    filled with them (the note regression tables add). Raises `InputError` naming `source` when either
    entry is missing."""
    if industry == DEFAULT_OUTCOME_INDUSTRY:
        return entries
    raise_if(
        [
            Problem(source, f"no entry {t!r} for outcome_industry {industry!r}", column="term")
            for t in (f"lq:{industry}", "note:outcome_industry")
            if t not in entries
        ],
        "the outcome industry has no label",
    )
    zh, en = entries[f"lq:{industry}"]
    note_zh, note_en = entries["note:outcome_industry"]
    return {
        **entries,
        "lq": (zh, en),
        OUTCOME_NOTE: (note_zh.format(label=zh), note_en.format(label=en)),
    }


def write_label_entries(entries: Mapping[str, tuple[str, str]], path: str | Path) -> None:
    """Write label `entries` ({term: (zh, en)}) as a label file that `read_label_entries` reads (UTF-8 CSV)."""
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        for term, (zh, en) in entries.items():
            writer.writerow([term, zh, en])
