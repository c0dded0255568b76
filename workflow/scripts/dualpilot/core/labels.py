"""The two output languages and the one label file of the workflow (resources/labels/terms.csv).

The label file maps every term, panel column, model id and programme key to a Chinese and an English label;
tables and figures (`dualpilot.render.tables.Labels`) and the .dta variable labels
(`dualpilot.data.panel.stata_label`) read it through `read_label_entries`.
"""

from __future__ import annotations

import csv
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
