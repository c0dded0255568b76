"""Errors a user can act on.

`InputError` collects every problem found in the user's input before anything is estimated. Each problem
names the file, the line (numbered as a spreadsheet numbers it: the first line of the file is line 1) and
the column, so the message can be followed without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class SpecificationError(ValueError):
    """An analysis that cannot run as configured (e.g. a collinear regressor, a control that is not in the
    panel); the message says why and which setting to change. Scripts report it without a traceback."""
