"""Assemble the city-year panel from a raw-data directory laid out as the raw-data contract says.

`build_panel` reads every edition E = Y + 1 of the employment and economy tables for the data years Y of the
window and patents.csv, validates everything (every problem of every file is collected and raised as one
`InputError` before anything is returned), merges, applies the sample rule and derives the variables exactly
as the contract defines them. `write_panel` writes the panel as Parquet, CSV (UTF-8 with BOM) and Stata .dta
(version 118) so that a failure leaves no partial file behind. Treatment columns are added later by another
module. docs/raw-data.md explains all of this for a user.

Conventions:
- a city-year exists only inside the city's life in the city master (first_year..last_year); table rows
  for other years (e.g. 巢湖 after 2010, or a 地区 before it became a 地级市) are dropped and logged;
- missing patent city-years are NaN (so are ln_digital_pat and ln_green_pat there), never 0;
- lq uses, for year t, the sums of the outcome industry's employment and total_emp over the city-years kept
  in the sample in year t, so the sample is chosen first and lq computed afterwards. The outcome industry is
  the IT sector (it_emp) unless `build_panel` is given another (config `outcome_industry`, an employment
  variable of the alias table such as emp_jinrong); its employment column then joins the panel after
  total_emp, and every edition must print it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dualpilot.core.errors import InputError, Problem, io_problem, raise_if
from dualpilot.core.labels import (
    DEFAULT_LABELS_PATH,
    DEFAULT_OUTCOME_INDUSTRY,
    outcome_industry_entries,
    read_label_entries,
)
from dualpilot.data import quality
from dualpilot.data.yearbook import (
    REQUIRED_VARIABLES,
    TABLES,
    HeaderAliases,
    PlausibilityBounds,
    read_patents,
    read_table,
)

log = logging.getLogger(__name__)

SAMPLE_RULES: tuple[str, ...] = ("balanced_outcome", "all")
ID_COLUMNS: tuple[str, ...] = (
    "city_code",
    "city_name",
    "province",
    "region",
    "region4",
    "is_municipality",
    "is_provincial_capital",
    "year",
)
RAW_VARIABLES: tuple[str, ...] = (
    *REQUIRED_VARIABLES["employment"],
    *REQUIRED_VARIABLES["economy"],
    "digital_patents",
    "green_patents",
)
DERIVED_VARIABLES: tuple[str, ...] = (
    "lq",
    "ln_gdp_pc",
    "ln_density",
    "industry",
    "gov",
    "open",
    "finance",
    "ln_digital_pat",
    "ln_green_pat",
    "human_capital",
)
PANEL_COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *RAW_VARIABLES, *DERIVED_VARIABLES)


def panel_columns(outcome_industry: str = DEFAULT_OUTCOME_INDUSTRY) -> tuple[str, ...]:
    """The panel's columns: `PANEL_COLUMNS`, with the outcome industry's employment column after total_emp
    when it is not it_emp (which the panel always holds)."""
    if outcome_industry in PANEL_COLUMNS:
        return PANEL_COLUMNS
    at = PANEL_COLUMNS.index("total_emp") + 1
    return (*PANEL_COLUMNS[:at], outcome_industry, *PANEL_COLUMNS[at:])


MANIFEST_COLUMNS: tuple[str, ...] = (
    "file",
    "table",
    "edition",
    "data_year",
    "sha256",
    "read_as",
    "rows_read",
    "rows_kept",
)


def stata_label(
    column: str, labels: str | Path | Mapping[str, tuple[str, str]] | None = None
) -> str:
    """The .dta variable label of `column`: "zh / en" from the one label file of the workflow,
    resources/labels/terms.csv (or `labels`: another file, or entries already read, e.g. those of
    `outcome_industry_entries`), which tables and figures read too (ValueError if the column has no
    entry there or the label is over 80 characters, Stata's limit)."""
    if isinstance(labels, Mapping):
        entries, source = labels, "the label entries"
    else:
        source = str(labels or DEFAULT_LABELS_PATH)
        entries = read_label_entries(labels if labels is not None else DEFAULT_LABELS_PATH)
    if column not in entries:
        raise ValueError(f"no label for column {column!r}: add it to {source}")
    zh, en = entries[column]
    label = f"{zh} / {en}"
    if len(label) > 80:
        raise ValueError(f"label of {column} has {len(label)} characters; Stata allows 80")
    return label


@dataclass(frozen=True)
class PanelBuild:
    """What `build_panel` returns.

    panel: one row per kept city-year, columns `PANEL_COLUMNS`; manifest: one row per file read
    (`MANIFEST_COLUMNS`); sample: one row per master city (city_code, city_name, kept, n_years, reason);
    industries_long: optional industry columns of the kept city-years (city_code, year, variable,
    industry, value in 万人); quality: the values accepted with a warning (`quality.QUALITY_COLUMNS`).
    """

    panel: pd.DataFrame
    manifest: pd.DataFrame
    sample: pd.DataFrame
    industries_long: pd.DataFrame
    quality: pd.DataFrame = dataclasses.field(default_factory=quality.empty_quality)


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

_FILE = re.compile(r"ccsy_(\d{4})\.(csv|xlsx)", re.IGNORECASE)


def editions(years: tuple[int, int]) -> range:
    """Editions covering the data years of the window (edition E reports data year E - 1)."""
    return range(years[0] + 1, years[1] + 2)


def find_raw_files(
    raw_dir: str | Path, years: tuple[int, int]
) -> tuple[dict[tuple[str, int], Path], list[Problem]]:
    """The yearbook table of each (table, edition) of the window, and the problems of the layout.

    Problems: a missing table folder, a missing edition, an edition present as both .csv and .xlsx.
    Files of editions outside the window and files not named ccsy_<edition>.csv/.xlsx are ignored and
    logged (hidden files and Excel lock files ~$... silently).
    """
    raw_dir = Path(raw_dir)
    wanted = editions(years)
    found: dict[tuple[str, int], Path] = {}
    problems: list[Problem] = []
    for table in TABLES:
        folder = raw_dir / table
        if not folder.is_dir():
            problems.append(
                Problem(
                    f"{folder}/",
                    f"folder missing: it must hold ccsy_<edition>.csv or .xlsx for editions "
                    f"{wanted[0]}-{wanted[-1]}",
                )
            )
            continue
        by_edition: dict[int, list[Path]] = {}
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:  # e.g. a folder this user may not list
            problems.append(io_problem(folder, exc))
            continue
        for path in entries:
            if path.name.startswith((".", "~$")):
                continue
            match = _FILE.fullmatch(path.name)
            # a directory or broken link named like an edition is kept: reading it reports what it is
            if match is None:
                log.warning("ignored %s: not named ccsy_<edition>.csv or .xlsx", path)
                continue
            edition = int(match.group(1))
            if edition not in wanted:
                log.info(
                    "ignored %s: edition %d is outside the window %d-%d", path, edition, *years
                )
                continue
            by_edition.setdefault(edition, []).append(path)
        for edition in wanted:
            paths = by_edition.get(edition, [])
            if not paths:
                problems.append(
                    Problem(
                        str(folder / f"ccsy_{edition}.csv"),
                        f"missing edition {edition} of the {table} table (data year {edition - 1}, "
                        f"inside the window {years[0]}-{years[1]}): expected {table}/ccsy_{edition}.csv "
                        "or .xlsx",
                    )
                )
            elif len(paths) > 1:
                problems.append(
                    Problem(
                        str(paths[0]),
                        f"edition {edition} is present more than once ({', '.join(p.name for p in paths)}): "
                        "keep one file per edition",
                    )
                )
            else:
                found[(table, edition)] = paths[0]
    return found, problems


def truncation_problems(
    counts: Mapping[tuple[str, int], tuple[str, int]], ratio: float
) -> list[Problem]:
    """Editions with far fewer cities than their neighbours: a file cut short.

    `counts` maps (table, edition) to (file, number of distinct cities) for every table read (distinct,
    so that a file with a row pasted many times does not make its neighbours look short); an edition is
    compared with the nearest editions read of the same table before and after it (only one at the ends of
    the window) and is an error when its count is below `ratio` times the larger of theirs, so that two
    truncated editions in a row are both caught. `ratio` 0 turns the check off."""
    problems: list[Problem] = []
    if ratio <= 0:
        return problems
    for table in TABLES:
        found = sorted((e, f, n) for (t, e), (f, n) in counts.items() if t == table)
        for k, (_, file, n) in enumerate(found):
            neighbours = [found[i] for i in (k - 1, k + 1) if 0 <= i < len(found)]
            if not neighbours:
                continue
            ref_edition, _, ref = max(neighbours, key=lambda x: x[2])
            if n < ratio * ref:
                problems.append(
                    Problem(
                        file,
                        f"only {n} cities, against {ref} in edition {ref_edition} of the {table} "
                        "table: was the file cut short (a partial download or copy)? Compare its end with "
                        "the printed table. If this edition really lists fewer cities, lower ingestion: "
                        f"truncation_ratio (now {ratio:g}: an edition needs at least that share of the "
                        "cities of its larger neighbouring edition) in an overlay file",
                    )
                )
    return problems


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (OSError if it cannot be read)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _digest(path: Path, problems: list[Problem]) -> str:
    """`sha256` of a raw file for the manifest; a file that cannot be read gets '' and a Problem naming
    it (once: reading it may already have reported it)."""
    try:
        return sha256(path)
    except OSError as exc:
        if not any(p.file == str(path) for p in problems):
            problems.append(io_problem(path, exc))
        return ""


# ---------------------------------------------------------------------------------------------------------
# Sample and derived variables
# ---------------------------------------------------------------------------------------------------------


def _year_list(years: Sequence[int]) -> str:
    """2006, 2007, 2008, 2010 -> "2006-2008, 2010" (runs of three or more as ranges)."""
    years = sorted(years)
    parts: list[str] = []
    i = 0
    while i < len(years):
        j = i
        while j + 1 < len(years) and years[j + 1] == years[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{years[i]}-{years[j]}")
        else:
            parts.extend(str(y) for y in years[i : j + 1])
        i = j + 1
    return ", ".join(parts)


def city_years(master: pd.DataFrame, years: tuple[int, int]) -> pd.DataFrame:
    """Every (city_code, year) of the window inside the city's life (first_year..last_year)."""
    lo = np.maximum(master["first_year"].to_numpy(dtype=int), years[0])
    hi = np.minimum(master["last_year"].to_numpy(dtype=int), years[1])
    n = np.clip(hi - lo + 1, 0, None)
    codes = np.repeat(master["city_code"].to_numpy(dtype=object), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return pd.DataFrame({"city_code": codes, "year": np.repeat(lo, n) + offsets}).astype(
        {"city_code": "str", "year": "int64"}
    )


def select_sample(
    grid: pd.DataFrame,
    master: pd.DataFrame,
    years: tuple[int, int],
    rule: str,
    in_tables: set[str],
    outcome_industry: str = DEFAULT_OUTCOME_INDUSTRY,
) -> tuple[pd.Series, pd.DataFrame]:
    """Apply a sample rule to the city-years of `grid` (city_code, year, `outcome_industry` (default
    it_emp), total_emp).

    `balanced_outcome`: keep the cities that are prefecture-level cities in every year of the window and
    whose outcome industry's employment and total_emp are observed in every year; `all`: keep every
    city-year whose outcome industry's employment and total_emp are observed. Returns the boolean mask
    of kept rows of `grid` and the sample table: one row
    per master city with city_code, city_name, kept, n_years (kept years) and reason (why it is out, or
    which years are missing; empty when the city is kept in every year of the window).
    """
    if rule not in SAMPLE_RULES:
        raise ValueError(f"sample_rule must be one of {SAMPLE_RULES}, not {rule!r}")
    observed = grid[outcome_industry].notna() & grid["total_emp"].notna()
    missing = grid.loc[~observed].groupby("city_code")["year"].agg(list).to_dict()
    n_observed = grid.loc[observed].groupby("city_code").size().to_dict()
    rows = []
    complete: set[str] = set()
    for code, name, first, last in master[
        ["city_code", "city_name", "first_year", "last_year"]
    ].itertuples(index=False):
        parts = []
        if last < years[0] or first > years[1]:
            parts.append(
                f"not a prefecture-level city in {years[0]}-{years[1]} "
                f"(first_year {first}, last_year {last})"
            )
        else:
            if first > years[0]:
                span = _year_list(range(years[0], first))
                parts.append(f"not a prefecture-level city in {span} (first_year {first})")
            if last < years[1]:
                span = _year_list(range(last + 1, years[1] + 1))
                parts.append(f"not a prefecture-level city in {span} (last_year {last})")
            if code not in in_tables:
                parts.append("not in any table")
            elif code in missing:
                parts.append(f"outcome missing in {_year_list(missing[code])}")
        whole = not parts
        if whole:
            complete.add(code)
        kept = whole if rule == "balanced_outcome" else n_observed.get(code, 0) > 0
        rows.append(
            {
                "city_code": code,
                "city_name": name,
                "kept": kept,
                "n_years": (n_observed.get(code, 0) if kept else 0),
                "reason": "; ".join(parts),
            }
        )
    sample = pd.DataFrame(rows, columns=["city_code", "city_name", "kept", "n_years", "reason"])
    sample = sample.astype({"kept": "bool", "n_years": "int64"})
    if rule == "balanced_outcome":
        mask = grid["city_code"].isin(complete)
    else:
        mask = observed
    return mask.to_numpy(dtype=bool), sample


def location_quotient(
    it_emp: pd.Series, total_emp: pd.Series, year: pd.Series, name: str = "it_emp"
) -> pd.Series:
    """lq_it = (it_emp_it / total_emp_it) / (sum_j it_emp_jt / sum_j total_emp_jt), sums over the rows
    given with the same year; `it_emp` is the employment of the outcome industry (`name` in messages).
    Pass exactly the kept city-years; NaN, a non-positive total_emp or a year whose industry employment
    sums to 0 raise ValueError."""
    frame = pd.DataFrame({"it": it_emp, "total": total_emp, "year": year})
    if frame[["it", "total"]].isna().any().any():
        raise ValueError(f"location_quotient: {name} and total_emp must be observed in every row")
    if (frame["total"] <= 0).any():
        raise ValueError("location_quotient: total_emp must be positive")
    by_year = frame.groupby("year")
    it_sum = by_year["it"].transform("sum")
    if (it_sum <= 0).any():
        zero = sorted(frame.loc[it_sum <= 0, "year"].unique())
        raise ValueError(f"location_quotient: {name} sums to 0 in {zero}, so lq is undefined")
    national = it_sum / by_year["total"].transform("sum")
    return (frame["it"] / frame["total"]) / national


def derive_variables(panel: pd.DataFrame, usd_cny: pd.Series) -> pd.DataFrame:
    """Add the contract's derived variables (lq excluded: see `location_quotient`) to a copy of `panel`.

    ln_gdp_pc = ln(gdp / population), ln_density = ln(population / area), industry = secondary_share / 100,
    gov = fiscal_exp / gdp, open = fdi * usd_cny[year] / gdp (万美元 -> 万元), finance = loans / gdp,
    ln_digital_pat = ln(1 + digital_patents), ln_green_pat = ln(1 + green_patents),
    human_capital = students / population (students per 10,000 residents). Missing inputs give NaN.
    """
    missing_years = sorted(set(panel["year"]) - set(usd_cny.index))
    if missing_years:
        raise KeyError(f"usd_cny has no rate for {_year_list(missing_years)}")
    out = panel.copy()
    rate = panel["year"].map(usd_cny).astype(float)
    out["ln_gdp_pc"] = np.log(panel["gdp"] / panel["population"])
    out["ln_density"] = np.log(panel["population"] / panel["area"])
    out["industry"] = panel["secondary_share"] / 100.0
    out["gov"] = panel["fiscal_exp"] / panel["gdp"]
    out["open"] = panel["fdi"] * rate / panel["gdp"]
    out["finance"] = panel["loans"] / panel["gdp"]
    out["ln_digital_pat"] = np.log1p(panel["digital_patents"])
    out["ln_green_pat"] = np.log1p(panel["green_patents"])
    out["human_capital"] = panel["students"] / panel["population"]
    return out


# ---------------------------------------------------------------------------------------------------------
# The panel
# ---------------------------------------------------------------------------------------------------------


def _check_inputs(
    years: tuple[int, int], sample_rule: str, master: pd.DataFrame, usd_cny: pd.Series
) -> None:
    if not (isinstance(years, tuple | list) and len(years) == 2 and years[0] <= years[1]):
        raise ValueError(f"years must be (start, end) with start <= end, not {years!r}")
    if sample_rule not in SAMPLE_RULES:
        raise ValueError(f"sample_rule must be one of {SAMPLE_RULES}, not {sample_rule!r}")
    needed = {"city_code", "city_name", "province", "region3", "region4", "is_municipality"}
    needed |= {"is_provincial_capital", "first_year", "last_year"}
    if missing := needed - set(master.columns):
        raise ValueError(f"master lacks columns {sorted(missing)}")
    if absent := [y for y in range(years[0], years[1] + 1) if y not in usd_cny.index]:
        raise InputError(
            Problem("usd_cny (exchange-rate table)", f"no exchange rate for {_year_list(absent)}"),
            "the exchange-rate table does not cover the window",
        )


def _stack(frames: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Tables by edition -> one frame with the data year, without the name and line columns."""
    parts = [df.drop(columns=["name", "line"]).assign(year=e - 1) for e, df in frames.items()]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["city_code", "year"]).astype({"year": "int64"})
    return pd.concat(parts, ignore_index=True)


def _within_life(data: pd.DataFrame, grid: pd.DataFrame, what: str) -> pd.DataFrame:
    keys = grid.set_index(["city_code", "year"]).index
    inside = pd.MultiIndex.from_frame(data[["city_code", "year"]]).isin(keys)
    if not inside.all():
        dropped = data.loc[~inside, ["city_code", "year"]]
        log.warning(
            "%s rows outside the life of their city in the city master were dropped: %s",
            what,
            ", ".join(f"{c} {y}" for c, y in dropped.itertuples(index=False)),
        )
    return data.loc[inside]


def build_panel(
    raw_dir: str | Path,
    *,
    years: tuple[int, int],
    sample_rule: str,
    master: pd.DataFrame,
    crosswalk: Mapping[str, str],
    aliases: HeaderAliases,
    usd_cny: pd.Series,
    bounds: PlausibilityBounds,
    jump_factor: float,
    truncation_ratio: float,
    outcome_industry: str = DEFAULT_OUTCOME_INDUSTRY,
) -> PanelBuild:
    """Read, validate, merge and derive the panel of `raw_dir` (see the module docstring).

    `years` = (first, last) data year; `sample_rule` one of `SAMPLE_RULES`; `master` from
    `reference.load_city_master`; `crosswalk` from `reference.load_name_crosswalk`; `aliases` from
    `yearbook.load_aliases`; `usd_cny` from `reference.load_usd_cny` (CNY per USD by year); `bounds`
    from `yearbook.load_bounds`; `jump_factor` the year-over-year factor of `quality.check_jumps`, with
    the exceptions of `<raw_dir>/quality_exceptions.csv` if present; `truncation_ratio` the threshold of
    `truncation_problems` (config `ingestion: truncation_ratio`); `outcome_industry` the employment
    variable whose location quotient is lq (config `outcome_industry`; ValueError if `aliases` has no such
    employment variable). Raises one `InputError` listing every
    problem of every file, then one for the year-over-year jumps once the files are valid, or if no
    city-year is left in the sample.
    """
    years = (int(years[0]), int(years[1]))
    _check_inputs(years, sample_rule, master, usd_cny)
    industries = [v for v in aliases.variables("employment") if v != "total_emp"]
    if outcome_industry not in industries:
        raise ValueError(
            f"outcome_industry {outcome_industry!r} is not an employment variable of {aliases.source}; "
            f"known: {', '.join(industries)}"
        )
    required = () if outcome_industry == DEFAULT_OUTCOME_INDUSTRY else (outcome_industry,)
    raw_dir = Path(raw_dir)
    files, problems = find_raw_files(raw_dir, years)

    tables: dict[str, dict[int, pd.DataFrame]] = {t: {} for t in TABLES}
    manifest = []
    counts: dict[tuple[str, int], tuple[str, int]] = {}  # cities of each table read
    observed = []  # every value read, long, for the year-over-year check
    for (table, edition), path in sorted(files.items()):
        df, found, stats = read_table(
            path,
            table,  # type: ignore[arg-type]
            edition,
            aliases,
            crosswalk,
            bounds,
            required=required if table == "employment" else (),
        )
        problems += found
        tables[table][edition] = df
        if stats.header_line is not None:
            counts[(table, edition)] = (str(path), int(df["city_code"].nunique()))
        observed.append(quality.table_values(df, stats, raw_dir))
        manifest.append(
            {
                "file": path.relative_to(raw_dir).as_posix(),
                "table": table,
                "edition": edition,
                "data_year": edition - 1,
                "sha256": _digest(path, problems),
                "read_as": stats.read_as,
                "rows_read": stats.rows_read,
                "rows_kept": stats.rows_kept,
            }
        )
        log.info(
            "%s: header on line %s, %d rows read, %d cities, skipped %s",
            path,
            stats.header_line,
            stats.rows_read,
            stats.rows_kept,
            stats.skipped,
        )
    patents_path = raw_dir / "patents.csv"
    if patents_path.exists() or patents_path.is_symlink():  # not a file: reading it says what it is
        patents, found, pstats = read_patents(patents_path, master["city_code"], years)
        problems += found
        manifest.append(
            {
                "file": "patents.csv",
                "table": "patents",
                "edition": pd.NA,
                "data_year": pd.NA,
                "sha256": _digest(patents_path, problems),
                "read_as": pstats.read_as,
                "rows_read": pstats.rows_read,
                "rows_kept": pstats.rows_kept,
            }
        )
    else:
        problems.append(
            Problem(
                str(patents_path),
                "missing: a CSV with columns city_code, year, digital_patents, green_patents",
            )
        )
    known: dict = {}
    exceptions = raw_dir / quality.EXCEPTIONS_FILE
    if exceptions.exists() or exceptions.is_symlink():  # a broken link is reported, not skipped
        known, found = quality.read_exceptions(
            exceptions,
            codes=master["city_code"],
            variables=[v for t in TABLES for v in aliases.variables(t)],
            years=years,
        )
        problems += found
    problems += truncation_problems(counts, truncation_ratio)
    raise_if(problems, f"the raw data in {raw_dir} failed validation")

    grid = city_years(master, years)
    jumps, quality_rows = quality.check_jumps(
        pd.concat(observed, ignore_index=True),
        grid,
        factor=jump_factor,
        known=known,
        names=dict(zip(master["city_code"], master["city_name"], strict=True)),
        raw_dir=raw_dir,
    )
    raise_if(jumps, f"the raw data in {raw_dir} failed the year-over-year check")
    employment = _within_life(_stack(tables["employment"]), grid, "employment")
    economy = _within_life(_stack(tables["economy"]), grid, "economy")
    patents = _within_life(patents, grid, "patents.csv")
    in_tables = set(employment["city_code"]) | set(economy["city_code"])
    merged = (
        grid.merge(employment, on=["city_code", "year"], how="left")
        .merge(economy, on=["city_code", "year"], how="left")
        .merge(patents, on=["city_code", "year"], how="left")
    )
    mask, sample = select_sample(
        merged, master, years, sample_rule, in_tables, outcome_industry=outcome_industry
    )
    kept = merged.loc[mask].reset_index(drop=True)
    if kept.empty:
        raise InputError(
            Problem(str(raw_dir), f"no city-year is left under sample_rule {sample_rule!r}"),
            "empty sample",
        )
    kept["lq"] = location_quotient(
        kept[outcome_industry], kept["total_emp"], kept["year"], name=outcome_industry
    )
    kept = derive_variables(kept, usd_cny)

    info = master.set_index("city_code")
    for column, source in (
        ("city_name", "city_name"),
        ("province", "province"),
        ("region", "region3"),
        ("region4", "region4"),
        ("is_municipality", "is_municipality"),
        ("is_provincial_capital", "is_provincial_capital"),
    ):
        kept[column] = kept["city_code"].map(info[source])
    for column in RAW_VARIABLES:
        if column not in kept:
            kept[column] = np.nan
    panel = kept[list(panel_columns(outcome_industry))].astype(
        {v: "float64" for v in (*RAW_VARIABLES, outcome_industry)}
    )
    panel = panel.sort_values(["city_code", "year"], ignore_index=True)

    industry_columns = [c for c in kept.columns if c.startswith("emp_")]
    long = kept.melt(
        id_vars=["city_code", "year"],
        value_vars=industry_columns,
        var_name="variable",
        value_name="value",
    ).dropna(subset=["value"])
    long["industry"] = long["variable"].map(lambda v: aliases.label("employment", v))
    industries_long = long[["city_code", "year", "variable", "industry", "value"]].sort_values(
        ["city_code", "year", "variable"], ignore_index=True
    )
    manifest_df = pd.DataFrame(manifest, columns=list(MANIFEST_COLUMNS)).astype(
        {"edition": "Int64", "data_year": "Int64"}
    )
    log.info(
        "panel: %d cities, %d city-years, sample rule %s (%d master cities left out); lq of %s",
        panel["city_code"].nunique(),
        len(panel),
        sample_rule,
        int((~sample["kept"]).sum()),
        outcome_industry,
    )
    return PanelBuild(panel, manifest_df, sample, industries_long, quality_rows)


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Yield a temporary path beside each target; on success rename them all onto the targets, on any
    error delete them, so no partial output is left behind."""
    targets = [Path(p) for p in paths]
    temps = [t.with_name(f".{t.name}.{os.getpid()}.tmp") for t in targets]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in zip(temps, targets, strict=True):
        os.replace(tmp, target)


def to_stata_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with types Stata accepts: text as object str, booleans as 0/1 int8."""
    out = panel.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[column] = out[column].astype("int8")
        elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            out[column] = out[column].astype(object).where(out[column].notna(), "")
    return out


def write_panel(
    build: PanelBuild,
    out_parquet: str | Path,
    out_csv: str | Path,
    out_dta: str | Path,
    *,
    out_manifest: str | Path | None = None,
    out_sample: str | Path | None = None,
    out_industries: str | Path | None = None,
    out_quality: str | Path | None = None,
    outcome_industry: str = DEFAULT_OUTCOME_INDUSTRY,
    labels: str | Path | None = None,
) -> None:
    """Write the panel as Parquet, CSV (UTF-8 with BOM, so Excel shows Chinese) and Stata .dta version 118
    (Stata 14+, Unicode; labels "zh / en" from resources/labels/terms.csv, or the label file `labels`, by
    `stata_label`; city_code
    as text), plus, when paths are given, the manifest, sample and quality tables (CSV, UTF-8 with BOM)
    and the industry long table (Parquet). When `outcome_industry` is not it_emp, the .dta says whose
    location quotient lq is: lq's variable label is that of ``lq:<industry>`` and the data label names
    the industry's id.
    Everything is written to temporary files first and renamed at the end."""
    extra = [
        (p, w)
        for p, w in (
            (out_manifest, lambda f: build.manifest.to_csv(f, index=False, encoding="utf-8-sig")),
            (out_sample, lambda f: build.sample.to_csv(f, index=False, encoding="utf-8-sig")),
            (out_industries, lambda f: build.industries_long.to_parquet(f, index=False)),
            (out_quality, lambda f: build.quality.to_csv(f, index=False, encoding="utf-8-sig")),
        )
        if p is not None
    ]
    panel = build.panel
    label_file = Path(labels) if labels is not None else DEFAULT_LABELS_PATH
    entries = outcome_industry_entries(read_label_entries(label_file), outcome_industry, str(label_file))
    data_label = "Dual pilot panel / 双试点城市面板"
    if outcome_industry != DEFAULT_OUTCOME_INDUSTRY:
        data_label += f"; lq of {outcome_industry}"  # Stata allows 80 characters
    with atomic_paths(out_parquet, out_csv, out_dta, *(p for p, _ in extra)) as tmp:
        panel.to_parquet(tmp[0], index=False)
        panel.to_csv(tmp[1], index=False, encoding="utf-8-sig")
        to_stata_frame(panel).to_stata(
            tmp[2],
            write_index=False,
            version=118,
            variable_labels={c: stata_label(c, entries) for c in panel.columns},
            data_label=data_label,
        )
        for path, (_, write) in zip(tmp[3:], extra, strict=True):
            write(path)


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read the panel written by `write_panel` (Parquet), checking the columns analyses rely on."""
    panel = pd.read_parquet(path)
    missing = [c for c in ("city_code", "year") if c not in panel.columns]
    if missing:
        raise ValueError(f"{path}: not a panel of this workflow (missing columns {missing})")
    return panel
