"""The year-over-year jump check of the raw yearbook values, its exceptions file, and quality.csv.

A value of a city that is more than `jump_factor` times (or less than 1 / `jump_factor` times) its value in
the city's previous observed year (same variable, both values positive) is almost always a typo or one
edition in another unit (亿元 for 万元, 人 for 万人). Such a jump stops the build with an `InputError` naming
the file, line, column, city, both years and both values, unless the user lists the city-year and variable
as known in `<raw_dir>/quality_exceptions.csv` (`EXCEPTIONS_FILE`; columns `EXCEPTION_COLUMNS`): a real
change, e.g. the area of a city that absorbed another. An accepted jump is kept and becomes a warning row
of results/panel/quality.csv (`QUALITY_COLUMNS`), the list of everything accepted with a warning.

Conventions: an exception (city_code, year, variable) accepts the jump between `year` and the previous
observed year of that city and variable, nothing else (a one-year spike is two jumps, so two rows); zeros
and missing values are skipped (neither checked nor used as the previous value); only city-years inside
the city's life in the city master are compared; patents.csv is not checked (its counts are small and jump
by more than 10 in real data). docs/raw-data.md explains this to a user.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dualpilot.core.errors import Problem
from dualpilot.data.yearbook import MAX_LISTED, TableStats, UnreadableFile, read_rows, squeeze

log = logging.getLogger(__name__)

#: Columns of results/panel/quality.csv: one row per value accepted with a warning. `file` is relative to
#: raw_dir, `line` its spreadsheet line, `city` the 6-digit city code, `year` the data year, `check` what
#: was flagged and why it was accepted.
QUALITY_COLUMNS: tuple[str, ...] = ("file", "line", "city", "year", "variable", "value", "check")
#: The exceptions file, in raw_dir beside the extracts it describes.
EXCEPTIONS_FILE = "quality_exceptions.csv"
EXCEPTION_COLUMNS: tuple[str, ...] = ("city_code", "year", "variable", "reason")


@dataclass(frozen=True)
class KnownJump:
    """One row of the exceptions file: the jump of `variable` of `city_code` into `year` is real."""

    city_code: str
    year: int
    variable: str
    reason: str
    line: int


def empty_quality() -> pd.DataFrame:
    """quality.csv without rows (nothing was accepted with a warning)."""
    return pd.DataFrame(columns=list(QUALITY_COLUMNS)).astype(
        {"line": "int64", "year": "int64", "value": "float64"}
    )


def read_exceptions(
    path: str | Path,
    *,
    codes: Collection[str],
    variables: Collection[str],
    years: tuple[int, int],
) -> tuple[dict[tuple[str, int, str], KnownJump], list[Problem]]:
    """Read and validate an exceptions file (CSV, UTF-8 or GB18030).

    Columns `EXCEPTION_COLUMNS` (others are ignored, e.g. a city name for the reader). Every row needs a
    city_code of the city master, a 4-digit data year, a raw variable of the yearbook tables (`variables`)
    and a non-empty reason; a (city_code, year, variable) may appear once. Rows of years outside `years`
    are ignored (logged). Returns the known jumps by (city_code, year, variable) and the problems, each
    naming the file, line and column."""
    file = str(path)
    try:
        rows, _ = read_rows(path)
    except UnreadableFile as exc:
        return {}, [exc.problem]
    header = [squeeze("" if c is None else str(c)) for c in rows[0]] if rows else []
    missing = [c for c in EXCEPTION_COLUMNS if c not in header]
    if missing:
        expected = ",".join(EXCEPTION_COLUMNS)
        return {}, [Problem(file, f"missing column(s) {', '.join(missing)}; header: {expected}", 1)]
    at = {c: header.index(c) for c in EXCEPTION_COLUMNS}
    codes, variables = set(codes), set(variables)
    known: dict[tuple[str, int, str], KnownJump] = {}
    problems: list[Problem] = []
    outside = 0
    for line, row in enumerate(rows[1:], start=2):
        if all(squeeze("" if c is None else str(c)) == "" for c in row):
            continue
        cell = {
            c: "" if j >= len(row) or row[j] is None else str(row[j]).strip() for c, j in at.items()
        }
        bad = len(problems)
        code, year, variable = squeeze(cell["city_code"]), squeeze(cell["year"]), cell["variable"]
        if not re.fullmatch(r"\d{6}", code):
            problems.append(
                Problem(file, f"{code!r} is not a 6-digit city code", line, "city_code")
            )
        elif code not in codes:
            problems.append(Problem(file, f"{code} is not in the city master", line, "city_code"))
        if not re.fullmatch(r"\d{4}", year):
            problems.append(Problem(file, f"{year!r} is not a year (the data year)", line, "year"))
        if variable not in variables:
            problems.append(
                Problem(
                    file, f"{variable!r} is not a variable of the yearbook tables", line, "variable"
                )
            )
        if not cell["reason"]:
            problems.append(Problem(file, "empty: say why the jump is real", line, "reason"))
        if len(problems) > bad:
            continue
        key = (code, int(year), variable)
        if key in known:
            first = known[key].line
            problems.append(
                Problem(file, f"repeats line {first} ({code} {year} {variable})", line, "city_code")
            )
            continue
        if not years[0] <= key[1] <= years[1]:
            outside += 1
            continue
        known[key] = KnownJump(code, key[1], variable, cell["reason"], line)
    if outside:
        log.info("%s: %d rows outside the window %d-%d ignored", file, outside, *years)
    return known, problems


def table_values(df: pd.DataFrame, stats: TableStats, raw_dir: str | Path) -> pd.DataFrame:
    """The values of one table read by `yearbook.read_table`, long: file (relative to `raw_dir`), line,
    column (as messages name it), city_code, year (the data year), variable, value; missing values left
    out."""
    variables = list(stats.columns)
    long = df.melt(id_vars=["city_code", "line"], value_vars=variables, var_name="variable")
    long = long.dropna(subset=["value"])
    return long.assign(
        file=Path(stats.file).relative_to(raw_dir).as_posix(),
        column=long["variable"].map(stats.columns),
        year=stats.edition - 1,
    )


def check_jumps(
    values: pd.DataFrame,
    grid: pd.DataFrame,
    *,
    factor: float,
    known: Mapping[tuple[str, int, str], KnownJump],
    names: Mapping[str, str],
    raw_dir: str | Path,
) -> tuple[list[Problem], pd.DataFrame]:
    """The year-over-year jumps of `values` (rows of `table_values`) beyond `factor`.

    Only city-years of `grid` (city_code, year: inside the city's life) are compared. A jump listed in
    `known` becomes a row of quality.csv (`QUALITY_COLUMNS`); any other is a Problem naming the file,
    line, column, city (`names`: code -> name), both years and values, and the exceptions file to use;
    past `MAX_LISTED` jumps in one column of one file, one more problem counts the rest. Returns the
    problems (by file and line) and the quality rows. Exceptions that match no jump are logged."""
    raw_dir = Path(raw_dir)
    keys = pd.MultiIndex.from_frame(grid[["city_code", "year"]])
    inside = pd.MultiIndex.from_frame(values[["city_code", "year"]]).isin(keys)
    v = values.loc[inside & (values["value"] > 0).to_numpy()]
    v = v.sort_values(["variable", "city_code", "year"], ignore_index=True)
    previous = v.groupby(["variable", "city_code"], sort=False)[["year", "value", "file", "line"]]
    previous = previous.shift()
    ratio = (v["value"] / previous["value"]).to_numpy(dtype=float)
    jumps = np.flatnonzero((ratio > factor) | (ratio < 1.0 / factor))  # NaN (no previous) is False
    by_column: dict[tuple[str, str], list[Problem]] = defaultdict(list)  # (file, column) -> jumps
    rows = []
    used = set()
    exceptions = raw_dir / EXCEPTIONS_FILE
    for i in jumps:
        row, prev = v.iloc[i], previous.iloc[i]
        code, year, variable = row["city_code"], int(row["year"]), row["variable"]
        change = (
            f"{variable} of {names.get(code, code)} ({code}) goes from {prev['value']:,g} in "
            f"{int(prev['year'])} ({prev['file']}, line {int(prev['line'])}) to {row['value']:,g} in "
            f"{year}, a factor of {ratio[i]:.3g}"
        )
        if (code, year, variable) in known:
            exception = known[(code, year, variable)]
            used.add((code, year, variable))
            check = (
                f"jump x{ratio[i]:.3g} from {prev['value']:,g} in {int(prev['year'])}; accepted by "
                f"{EXCEPTIONS_FILE} line {exception.line}: {exception.reason}"
            )
            rows.append([row["file"], int(row["line"]), code, year, variable, row["value"], check])
            log.warning(
                "accepted with a warning (%s line %d): %s", EXCEPTIONS_FILE, exception.line, change
            )
            continue
        by_column[(str(raw_dir / row["file"]), row["column"])].append(
            Problem(
                str(raw_dir / row["file"]),
                f"year-over-year jump: {change}, beyond the factor {factor:g} of config `ingestion: "
                f"jump_factor`. A wrong unit or a typo? If the change is real (e.g. a boundary change), "
                f"add the row {code},{year},{variable},<reason> to {exceptions}",
                int(row["line"]),
                row["column"],
            )
        )
    problems: list[Problem] = []
    for (file, column), found in sorted(by_column.items()):
        found.sort(key=lambda p: p.line or 0)
        problems += found[:MAX_LISTED]
        if (
            len(found) > MAX_LISTED
        ):  # a column of one edition in another unit: one problem for the rest
            rest = [str(p.line) for p in found[MAX_LISTED:]]
            more = ", ..." if len(rest) > MAX_LISTED else ""
            problems.append(
                Problem(
                    file,
                    f"and {len(rest)} more year-over-year jumps in this column (lines "
                    f"{', '.join(rest[:MAX_LISTED])}{more}): is the column of this edition in another "
                    "unit?",
                    found[MAX_LISTED].line,
                    column,
                )
            )
    for key in sorted(set(known) - used):
        log.warning(
            "%s line %d: no jump of %s of %s in %d beyond the factor %g; the exception is not needed",
            exceptions,
            known[key].line,
            key[2],
            key[0],
            key[1],
            factor,
        )
    quality = pd.DataFrame(rows, columns=list(QUALITY_COLUMNS)) if rows else empty_quality()
    return problems, quality.astype({"line": "int64", "year": "int64", "value": "float64"})
