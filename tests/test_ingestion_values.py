"""Ingestion integrity of the values (issue 11, item 4): units, plausibility bounds, year-over-year jumps,
the exceptions file and results/panel/quality.csv.

Every end-to-end case damages a copy of the demo extracts (`demo_mutations`) and runs rule build_panel's
own main in-process: an error must name the file (and line and column where there is one) and leave no
output; an accepted value must appear as its exact row in quality.csv.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from demo_mutations import REPO, build_fails, build_panel_outputs, mutable_copy
from dualpilot.core.errors import InputError
from dualpilot.data import quality
from dualpilot.data.reference import load_name_crosswalk
from dualpilot.data.yearbook import (
    BOUNDS_COLUMNS,
    MAX_LISTED,
    SHIPPED_BOUNDS,
    header_units,
    load_aliases,
    load_bounds,
    read_rows,
    read_table,
)
from fixtures_raw import ECONOMY_HEADER, data_row, economy_header, load_reference, write_table

ALIASES = load_aliases(REPO / "resources/yearbook/header_aliases.csv")
CROSSWALK = load_name_crosswalk(REPO / "resources/cities/name_crosswalk.csv")
BOUNDS = load_bounds(SHIPPED_BOUNDS, ALIASES)
JINAN, SHIJIAZHUANG = "370100", "130100"


# --- mutations of one cell of a demo extract (CSV in any encoding, or XLSX) ----------------------------


def table_file(raw: Path, table: str, edition: int) -> Path:
    (path,) = (raw / table).glob(f"ccsy_{edition}.*")
    return path


def locate(
    path: Path, table: str, edition: int, code: str, variable: str
) -> tuple[int, str, float]:
    """Line, column (as messages name it) and value of one city's cell, as the reader sees it."""
    df, _, stats = read_table(path, table, edition, ALIASES, CROSSWALK)  # type: ignore[arg-type]
    row = df.loc[df["city_code"] == code].iloc[0]
    return int(row["line"]), stats.columns[variable], float(row[variable])


def column_index(column: str) -> int:
    """0-based index of a column named like '地区生产总值 [C]'."""
    index = 0
    for letter in re.search(r"\[([A-Z]+)\]$", column).group(1):
        index = index * 26 + ord(letter) - 64
    return index - 1


def set_cells(path: Path, cells: dict[tuple[int, int], object]) -> None:
    """Overwrite cells {(line, 0-based column): value} of a CSV (same encoding and line ends) or XLSX."""
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path)
        ws = wb.worksheets[0]
        for (line, j), value in cells.items():
            ws.cell(row=line, column=j + 1).value = value
        wb.save(path)
        return
    data = path.read_bytes()
    _, encoding = read_rows(path)
    text = data.decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for (line, j), value in cells.items():
        row = rows[line - 1]
        row.extend([""] * (j + 1 - len(row)))
        row[j] = value if isinstance(value, str) else f"{value:.12g}"
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    path.write_bytes(out.getvalue().encode("utf-8" if encoding == "utf-8-sig" else encoding))


def scale_column(path: Path, table: str, edition: int, variable: str, factor: float) -> None:
    """Multiply every value of one column by `factor` (a table in another unit, without a marker)."""
    df, _, stats = read_table(path, table, edition, ALIASES, CROSSWALK)  # type: ignore[arg-type]
    j = column_index(stats.columns[variable])
    kept = df.dropna(subset=[variable])
    set_cells(
        path, {(int(ln), j): v * factor for ln, v in zip(kept["line"], kept[variable], strict=True)}
    )


def problems_of(err: InputError, text: str) -> list:
    hits = [p for p in err.problems if text in p.message]
    assert hits, [str(p) for p in err.problems[:5]]
    return hits


# --- the shipped bounds and the pristine demo ----------------------------------------------------------


def test_pristine_demo_passes_and_writes_an_empty_quality_table(pristine_demo_raw, tmp_path):
    paths = build_panel_outputs(pristine_demo_raw, tmp_path / "results")
    data = paths["quality"].read_bytes()
    assert (
        data == "\ufeff".encode() + ",".join(quality.QUALITY_COLUMNS).encode() + b"\n"
    )  # UTF-8, BOM


def test_bounds_cover_every_raw_variable_on_both_sides():
    for table in ("employment", "economy"):
        for variable in ALIASES.variables(table):
            bound = BOUNDS[variable]
            assert 0 <= bound.lower < bound.upper and bound.unit == ALIASES.unit(table, variable)
            assert bound.why


def test_documented_bounds_are_the_shipped_ones():
    """docs/raw-data.md's table of bounds shows exactly resources/yearbook/plausibility.csv."""
    doc = (REPO / "docs/raw-data.md").read_text(encoding="utf-8")
    section = doc.split("### Plausibility bounds", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_*]+)` \| ([^|]+) \| ([\d,.]+) \| ([\d,.]+) \|", section, re.M)
    shipped = pd.read_csv(SHIPPED_BOUNDS, dtype=str, keep_default_na=False)
    assert [
        (v, u.strip(), float(lo.replace(",", "")), float(hi.replace(",", "")))
        for v, u, lo, hi in rows
    ] == [
        (v, u, float(lo), float(hi))
        for v, u, lo, hi in shipped[["variable", "unit", "lower", "upper"]].itertuples(index=False)
    ]


@pytest.mark.parametrize(
    ("column", "cell", "text"),
    [
        ("lower", "abc", "'abc' is not a number"),
        ("lower", "-1", "need 0 <= lower < upper"),
        ("lower", "1e12", "need 0 <= lower < upper"),
        ("why", "", "empty: say why"),
        ("unit", "亿元", "gdp is in 万元 (header_aliases.csv)"),
        ("variable", "gpd", "'gpd' is not a raw variable"),
    ],
)
def test_malformed_bounds_name_file_line_and_column(tmp_path, column, cell, text):
    rows = list(csv.reader(io.StringIO(SHIPPED_BOUNDS.read_text(encoding="utf-8"))))
    i = next(i for i, row in enumerate(rows) if row[0] == "gdp")
    rows[i][BOUNDS_COLUMNS.index(column)] = cell
    path = tmp_path / "plausibility.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(InputError) as err:
        load_bounds(path, ALIASES)
    (p,) = [p for p in err.value.problems if text in p.message]
    assert (p.file, p.line, p.column) == (str(path), i + 1, column)


def test_bounds_need_every_variable_once(tmp_path):
    text = SHIPPED_BOUNDS.read_text(encoding="utf-8").splitlines(keepends=True)
    gdp = next(i for i, t in enumerate(text) if t.startswith("gdp,"))
    path = tmp_path / "plausibility.csv"
    path.write_text("".join(text[:gdp] + text[gdp + 1 :] + [text[2]]), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_bounds(path, ALIASES)
    got = {(p.line, p.message) for p in err.value.problems}
    assert (None, "no bounds for gdp") in got
    assert (len(text), "bounds repeated (line 3)") in got  # it_emp twice, named on its second line


# --- units: title lines and brackets in both tables ----------------------------------------------------


def test_economy_title_line_in_yi_yuan_is_rejected(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    path = table_file(raw, "economy", 2010)
    for variable in ("gdp", "fiscal_exp", "loans"):
        scale_column(path, "economy", 2010, variable, 1e-4)
    set_cells(path, {(1, 0): "单位：亿元"})
    err = build_fails(raw, tmp_path / "results")
    (p,) = problems_of(err, "the table says its unit is 亿元")
    assert (p.file, p.line, p.column) == (str(path), 1, "A")
    # every column without a unit in brackets is named, with the unit it must have
    _, _, stats = read_table(path, "economy", 2010, ALIASES, CROSSWALK)
    plain = [v for v, c in stats.columns.items() if not header_units(c)]
    assert plain and ALIASES.unit("economy", plain[0]) != "亿元"
    for v in plain:
        assert f"{stats.columns[v]} ({v}) must be in {ALIASES.unit('economy', v)}" in p.message
    # and the values themselves are below the lower bounds
    line, column, value = locate(
        table_file(pristine_demo_raw, "economy", 2010), "economy", 2010, SHIJIAZHUANG, "gdp"
    )
    (q,) = [q for q in problems_of(err, "implausible gdp") if q.line == line]
    assert (q.file, q.column) == (str(path), column) and "below 100,000 万元" in q.message


def test_title_unit_holds_for_columns_without_brackets_only(tmp_path):
    """A bracket overrides the title line for its column; a column without one takes the title's unit."""
    _, crosswalk, _, aliases = load_reference(tmp_path / "ref")
    rows = [data_row("economy", c, 2013) for c in ("110000", "130100")]
    ok = write_table(tmp_path / "ok.csv", economy_header(), rows, titles=["2-1", "单位：万元"])
    _, problems, _ = read_table(ok, "economy", 2014, aliases, crosswalk)
    assert problems == []
    header = economy_header()
    header[2] = "年末户籍人口"  # population, no bracket: takes 万元 from the title
    bad = write_table(tmp_path / "bad.csv", header, rows, titles=["2-1", "单位：万元"])
    _, problems, _ = read_table(bad, "economy", 2014, aliases, crosswalk)
    (p,) = problems
    assert (p.file, p.line, p.column) == (str(bad), 2, "A")
    assert "年末户籍人口 [C] (population) must be in 万人" in p.message


def test_economy_bracket_in_yi_yuan_is_rejected(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    path = table_file(raw, "economy", 2012)
    df, _, stats = read_table(path, "economy", 2012, ALIASES, CROSSWALK)
    scale_column(path, "economy", 2012, "gdp", 1e-4)
    j = column_index(stats.columns["gdp"])
    set_cells(path, {(stats.header_line, j): "地区生产总值(亿元)"})
    err = build_fails(raw, tmp_path / "results")
    (p,) = problems_of(err, "the header says the unit is 亿元; gdp must be in 万元")
    column = stats.columns["gdp"].rsplit(" [", 1)[1]
    assert (p.file, p.line, p.column) == (
        str(path),
        stats.header_line,
        f"地区生产总值(亿元) [{column}",
    )


def test_economy_in_yi_yuan_without_a_marker_is_rejected(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    path = table_file(raw, "economy", 2015)  # a CSV
    line, column, value = locate(path, "economy", 2015, SHIJIAZHUANG, "gdp")
    scale_column(path, "economy", 2015, "gdp", 1e-4)
    err = build_fails(raw, tmp_path / "results")
    hits = problems_of(err, "implausible gdp")
    assert len(hits) == MAX_LISTED  # listed one by one, then counted in one more problem
    assert all(p.file == str(path) and p.column == column for p in hits)
    (p,) = [p for p in hits if p.line == line]
    assert f"implausible gdp {value * 1e-4:,.15g} (below 100,000 万元 for one city" in p.message
    assert "is the unit 万元 as required?" in p.message
    observed = read_table(path, "economy", 2015, ALIASES, CROSSWALK)[0]["gdp"].notna().sum()
    (rest,) = problems_of(err, "more values of gdp")
    assert (rest.file, rest.column) == (str(path), column) and rest.line > hits[-1].line
    assert rest.message.startswith(
        f"and {observed - MAX_LISTED} more values of gdp outside [100,000, 1,000,000,000] 万元 (lines "
    )
    assert rest.message.endswith(", ...): is the whole column in another unit?")


# --- plausibility bounds: every variable, both sides ---------------------------------------------------

# (table, edition, variable, value, side): each violates one bound in a different cell of the demo.
VIOLATIONS = [
    ("employment", 2009, "total_emp", 3000.0, "above 2,000 万人"),
    ("employment", 2009, "it_emp", 2500.0, "above 2,000 万人"),
    ("economy", 2009, "gdp", 2e9, "above 1,000,000,000 万元"),
    ("economy", 2010, "gdp", 5e4, "below 100,000 万元"),
    ("economy", 2009, "population", 6000.0, "above 5,000 万人"),
    ("economy", 2010, "population", 0.05, "below 0.1 万人"),
    ("economy", 2009, "area", 7e5, "above 600,000 平方公里"),
    ("economy", 2010, "area", 5.0, "below 10 平方公里"),
    ("economy", 2011, "secondary_share", 150.0, "above 100 %"),
    ("economy", 2012, "secondary_share", 0.5, "below 1 %"),
    ("economy", 2011, "fiscal_exp", 2e9, "above 1,000,000,000 万元"),
    ("economy", 2012, "fiscal_exp", 5000.0, "below 10,000 万元"),
    ("economy", 2011, "fdi", 2e7, "above 10,000,000 万美元"),
    ("economy", 2014, "loans", 2e10, "above 10,000,000,000 万元"),
    ("economy", 2015, "loans", 5e4, "below 100,000 万元"),
    ("economy", 2014, "students", 2e7, "above 10,000,000 人"),
    ("economy", 2014, "so2", 2e7, "above 10,000,000 吨"),
    ("economy", 2015, "green_cover", 120.0, "above 100 %"),
]


def test_every_plausibility_bound_names_file_line_and_column(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    expected = []
    for table, edition, variable, value, side in VIOLATIONS:
        path = table_file(raw, table, edition)
        line, column, _ = locate(path, table, edition, SHIJIAZHUANG, variable)
        set_cells(path, {(line, column_index(column)): value})
        expected.append(
            (str(path), line, column, f"implausible {variable} {value:,.15g} ({side} for one city")
        )
    # an optional industry column (emp_*) of the employment table, and negatives where the lower bound is 0
    path = table_file(raw, "employment", 2012)
    df, _, stats = read_table(path, "employment", 2012, ALIASES, CROSSWALK)
    industry = next(v for v in stats.columns if v.startswith("emp_"))
    line, column, _ = locate(path, "employment", 2012, SHIJIAZHUANG, industry)
    set_cells(path, {(line, column_index(column)): 2100.0})
    expected.append((str(path), line, column, f"implausible {industry} 2,100 (above 2,000 万人"))
    path = table_file(raw, "economy", 2016)
    line, column, _ = locate(path, "economy", 2016, SHIJIAZHUANG, "fdi")
    set_cells(path, {(line, column_index(column)): -1.0})
    expected.append((str(path), line, column, "negative value -1"))
    err = build_fails(raw, tmp_path / "results")
    got = [(p.file, p.line, p.column, p.message) for p in err.problems]
    for file, line, column, text in expected:
        assert any(g[:3] == (file, line, column) and text in g[3] for g in got), (
            file,
            line,
            text,
            got,
        )


# --- year-over-year jumps and the exceptions file ------------------------------------------------------


def shift_area(
    raw: Path, code: str, from_year: int, factor: float
) -> list[tuple[Path, int, str, float]]:
    """Multiply a city's area by `factor` in every edition from data year `from_year` (a level shift, as
    after a merger); return (file, line, column, old value) of each changed cell."""
    changed = []
    for edition in range(from_year + 1, 2025):
        path = table_file(raw, "economy", edition)
        line, column, value = locate(path, "economy", edition, code, "area")
        set_cells(path, {(line, column_index(column)): value * factor})
        changed.append((path, line, column, value))
    return changed


def test_a_jump_fails_the_build_naming_file_line_city_years_and_values(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    (path, line, column, old), *_ = shift_area(raw, JINAN, 2019, 12.0)
    previous = locate(table_file(raw, "economy", 2019), "economy", 2019, JINAN, "area")
    err = build_fails(raw, tmp_path / "results")
    (p,) = err.problems
    assert (p.file, p.line, p.column) == (str(path), line, column)
    assert (
        f"area of 济南市 ({JINAN}) goes from {old:,g} in 2018 (economy/ccsy_2019.csv, line {previous[0]}) "
        f"to {old * 12:,g} in 2019, a factor of 12"
    ) in p.message
    assert (
        f"add the row {JINAN},2019,area,<reason> to {raw / 'quality_exceptions.csv'}" in p.message
    )
    assert "failed the year-over-year check" in str(err)


def test_a_listed_jump_is_accepted_and_written_to_quality_csv(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    (path, line, _, old), *_ = shift_area(raw, JINAN, 2019, 12.0)
    (raw / "quality_exceptions.csv").write_text(
        "city_code,year,variable,reason\n370100,2019,area,莱芜 merged into 济南 (国函〔2018〕163号)\n",
        encoding="utf-8",
    )
    # patents.csv is not checked for jumps: a count 100 times its previous year's passes
    patents = raw / "patents.csv"
    lines = patents.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(i for i, t in enumerate(lines) if t.startswith(f"{SHIJIAZHUANG},2015,"))
    code, year, digital, green = lines[i].strip().split(",")
    lines[i] = f"{code},{year},{int(digital) * 100},{green}\n"
    patents.write_text("".join(lines), encoding="utf-8")
    paths = build_panel_outputs(raw, tmp_path / "results")
    rows = list(csv.reader(paths["quality"].read_text(encoding="utf-8-sig").splitlines()))
    assert rows == [
        list(quality.QUALITY_COLUMNS),
        [
            "economy/ccsy_2020.csv",
            str(line),
            JINAN,
            "2019",
            "area",
            f"{old * 12}",
            f"jump x12 from {old:,g} in 2018; accepted by quality_exceptions.csv line 2: "
            "莱芜 merged into 济南 (国函〔2018〕163号)",
        ],
    ]
    assert path.name == "ccsy_2020.csv"
    panel = pd.read_parquet(paths["parquet"]).set_index(["city_code", "year"])
    assert panel.loc[(JINAN, 2019), "area"] == old * 12  # the value is kept


def test_an_exception_accepts_its_own_jump_only(pristine_demo_raw, tmp_path):
    """A one-year spike is two jumps: listing the spike year leaves the jump back down an error."""
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    path = table_file(raw, "economy", 2016)
    line, column, value = locate(path, "economy", 2016, SHIJIAZHUANG, "area")
    set_cells(path, {(line, column_index(column)): value * 20})
    (raw / "quality_exceptions.csv").write_text(
        "city_code,year,variable,reason\n130100,2015,area,checked against the printed yearbook\n",
        encoding="utf-8",
    )
    err = build_fails(raw, tmp_path / "results")
    (p,) = err.problems
    after = locate(table_file(raw, "economy", 2017), "economy", 2017, SHIJIAZHUANG, "area")
    assert (p.file, p.line, p.column) == (str(table_file(raw, "economy", 2017)), after[0], after[1])
    assert "in 2016, a factor of 0.05" in p.message


def test_a_malformed_exceptions_file_names_file_line_and_column(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    exceptions = raw / "quality_exceptions.csv"
    exceptions.write_text(
        "city_code,year,variable,reason\n"
        "37010,2019,area,a typo in the code\n"  # line 2
        "999999,2019,area,no such city\n"  # line 3
        "370100,2019年,area,not a year\n"  # line 4
        "370100,2019,面积,not a variable\n"  # line 5
        "370100,2019,area,\n"  # line 6: no reason
        "370100,2018,area,fine\n"  # line 7
        "370100,2018,area,twice\n",  # line 8: repeats line 7
        encoding="utf-8",
    )
    err = build_fails(raw, tmp_path / "results")
    got = [(p.file, p.line, p.column) for p in err.problems]
    file = str(exceptions)
    assert got == [
        (file, 2, "city_code"),
        (file, 3, "city_code"),
        (file, 4, "year"),
        (file, 5, "variable"),
        (file, 6, "reason"),
        (file, 8, "city_code"),
    ]
    assert "repeats line 7" in err.problems[-1].message


def test_an_exceptions_file_without_its_columns(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    (raw / "quality_exceptions.csv").write_text(
        "city,year,variable\n370100,2019,area\n", encoding="utf-8"
    )
    err = build_fails(raw, tmp_path / "results")
    (p,) = err.problems
    assert (p.file, p.line) == (str(raw / "quality_exceptions.csv"), 1)
    assert "missing column(s) city_code, reason" in p.message


# --- the jump check and the exceptions file on their own -----------------------------------------------


def _values(series: dict[int, float], variable: str = "gdp") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city_code": SHIJIAZHUANG,
            "line": range(5, 5 + len(series)),
            "variable": variable,
            "value": list(series.values()),
            "file": [f"economy/ccsy_{y + 1}.csv" for y in series],
            "column": "地区生产总值 [B]",
            "year": list(series),
        }
    )


def _jumps(values: pd.DataFrame, known=None, years=(2006, 2023)):
    grid = pd.DataFrame({"city_code": SHIJIAZHUANG, "year": range(years[0], years[1] + 1)})
    return quality.check_jumps(values, grid, factor=10, known=known or {}, names={}, raw_dir="/raw")


def test_zeros_are_skipped_and_the_next_value_compared_with_the_last_positive_one():
    problems, rows = _jumps(_values({2010: 100.0, 2011: 0.0, 2012: 1001.0, 2013: 1100.0}))
    (p,) = problems
    assert (p.file, p.line) == ("/raw/economy/ccsy_2013.csv", 7)
    assert "goes from 100 in 2010 (economy/ccsy_2011.csv, line 5) to 1,001 in 2012" in p.message
    assert rows.empty and list(rows.columns) == list(quality.QUALITY_COLUMNS)
    # exactly the factor is accepted; only years inside the city's life are compared
    assert _jumps(_values({2010: 100.0, 2011: 1000.0, 2012: 100.0}))[0] == []
    assert _jumps(_values({2005: 1.0, 2010: 100.0}))[0] == []


def test_an_exception_that_matches_no_jump_is_logged(caplog):
    known = {(SHIJIAZHUANG, 2011, "gdp"): quality.KnownJump(SHIJIAZHUANG, 2011, "gdp", "why", 2)}
    with caplog.at_level("WARNING", logger="dualpilot.data.quality"):
        problems, rows = _jumps(_values({2010: 100.0, 2011: 120.0}), known)
    assert problems == [] and rows.empty
    assert "line 2: no jump of gdp of 130100 in 2011 beyond the factor 10" in caplog.text


def test_exceptions_in_gb18030_and_rows_outside_the_window(tmp_path):
    path = tmp_path / "quality_exceptions.csv"
    path.write_bytes(
        "city_code,year,variable,reason,city_name\n"
        "130100,2012,gdp,核对过印刷版,石家庄\n"
        "130100,2030,gdp,outside the window,石家庄\n".encode("gb18030")
    )
    known, problems = quality.read_exceptions(
        path, codes=[SHIJIAZHUANG], variables=["gdp"], years=(2006, 2023)
    )
    assert problems == []
    assert known == {
        (SHIJIAZHUANG, 2012, "gdp"): quality.KnownJump(SHIJIAZHUANG, 2012, "gdp", "核对过印刷版", 2)
    }


@pytest.mark.parametrize(
    ("variable", "wrong"),
    [
        ("gdp", "亿元"),
        ("population", "人"),
        ("area", "公顷"),
        ("secondary_share", "‰"),
        ("fiscal_exp", "元"),
        ("fdi", "亿美元"),
        ("loans", "千元"),
        ("students", "万人"),
        ("so2", "万吨"),
        ("green_cover", "平方米"),
    ],
)
def test_a_bracketed_unit_is_checked_for_every_economy_variable(tmp_path, variable, wrong):
    _, crosswalk, _, aliases = load_reference(tmp_path / "ref")
    header = economy_header()
    j = list(ECONOMY_HEADER).index(variable) + 1
    header[j] = f"{header[j].split('(')[0]}（{wrong}）"
    rows = [data_row("economy", c, 2013) for c in ("110000", "130100")]
    path = write_table(tmp_path / "e.csv", header, rows)
    _, problems, _ = read_table(path, "economy", 2014, aliases, crosswalk)
    hits = [p for p in problems if p.message.startswith("the header says the unit is")]
    (p,) = hits
    assert (p.file, p.line) == (str(path), 1)
    assert p.message == (
        f"the header says the unit is {wrong}; {variable} must be in {aliases.unit('economy', variable)}"
    )


def test_an_exceptions_file_that_is_a_broken_link_is_named(pristine_demo_raw, tmp_path):
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    (raw / "quality_exceptions.csv").symlink_to(tmp_path / "nowhere.csv")
    err = build_fails(raw, tmp_path / "results")
    (p,) = err.problems
    assert p.file == str(raw / "quality_exceptions.csv") and "broken" in p.message


def test_one_edition_in_another_unit_is_listed_five_times_then_counted(pristine_demo_raw, tmp_path):
    """so2 of one edition in 万吨 (lower bound 0, so only the jumps catch it): a jump down into that
    year and back up the next, for every city; each file's column lists 5 and counts the rest."""
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    path = table_file(raw, "economy", 2015)
    scale_column(path, "economy", 2015, "so2", 1e-4)
    err = build_fails(raw, tmp_path / "results")
    after = table_file(raw, "economy", 2016)
    columns = {
        str(f): read_table(f, "economy", e, ALIASES, CROSSWALK)[2].columns["so2"]
        for f, e in ((path, 2015), (after, 2016))
    }
    for file, column in columns.items():
        mine = [p for p in err.problems if p.file == file]
        assert all(p.column == column for p in mine)
        assert [p.message.startswith("year-over-year jump: so2 of ") for p in mine] == [
            True
        ] * 5 + [False]
        assert mine[-1].message.startswith(
            "and "
        ) and "more year-over-year jumps in this column" in (mine[-1].message)
        assert [p.line for p in mine[:5]] == sorted(p.line for p in mine[:5])
    assert len(err.problems) == 12
