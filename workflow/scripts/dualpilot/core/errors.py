"""Errors a user can act on.

`InputError` collects every problem found in the user's input before anything is estimated. Each problem
names the file, the line (numbered as a spreadsheet numbers it: the first line of the file is line 1) and
the column, so the message can be followed without reading code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One defect in an input file."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class InputError(Exception):
    """Raised when input files fail validation; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem, headline: str = "invalid input"):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        self.headline = headline
        super().__init__(self.render())

    def render(self, limit: int = 50) -> str:
        lines = [f"{self.headline} ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def raise_if(problems: list[Problem], headline: str) -> None:
    """Raise one InputError carrying all `problems`, if there are any."""
    if problems:
        raise InputError(problems, headline)


def unreadable_reason(path: str | Path, exc: OSError | None = None) -> str:
    """Why `path` cannot be read, in the user's terms: a broken symbolic link, a directory where a file is
    expected, permission denied, a file that is missing or vanished, or the operating system's reason.
    With `exc` (the OSError a read raised) it explains that error; without, it inspects the path."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (it points to {os.readlink(path)}, which does not exist)"
    if isinstance(exc, IsADirectoryError) or (exc is None and path.is_dir()):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied: this user cannot read it (check its permissions and owner)"
    if isinstance(exc, FileNotFoundError) or (exc is None and not path.exists()):
        return "file not found (missing, or removed while the workflow was reading it)"
    if exc is not None:
        return f"cannot be read: {exc.strerror or exc}"
    return "not a regular file"


def io_problem(path: str | Path, exc: OSError | None = None) -> Problem:
    """The Problem for a file that cannot be read (see `unreadable_reason`); every I/O failure on an input
    becomes one, so it reaches the user as an InputError naming the file, never as a bare traceback."""
    return Problem(str(path), unreadable_reason(path, exc))


class SpecificationError(ValueError):
    """An analysis that cannot run as configured (e.g. a collinear regressor, a control that is not in the
    panel); the message says why and which setting to change. Scripts report it without a traceback."""


def require_columns(frame: Any, columns: Iterable[str], what: str) -> None:
    """Raise SpecificationError naming (once each, in order) every column of `columns` that `frame`
    (a DataFrame: the panel, a tidy frame, a pilot list) lacks: "<what> lacks column(s) [...]"."""
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise SpecificationError(f"{what} lacks column(s) {missing}")
