"""Structural integrity of every table read (issue 11, items 1-3 and the duplicate rows of item 6).

Each case damages one file of a copy of the demo extracts the way a real extract gets damaged (an unbalanced
quote, a missing cell, a cut-off file, a formula without a saved value, a footnote marker, a row pasted
thousands of times), runs rule build_panel's own `main`, and checks that the run stops with an InputError
naming the file (and the line or cell where there is one) and that nothing is written to results/panel/.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from demo_mutations import (
    CONFIG,
    build_fails,
    build_panel_outputs,
    mutable_copy,
)
from dualpilot.data.panel import truncation_problems
from dualpilot.data.yearbook import (
    SHOWN_AT_MOST,
    UnreadableFile,
    footnote_marker,
    parse_csv,
    parse_number,
)

EMPLOYMENT = "employment/ccsy_2014.csv"  # UTF-8 with BOM, CRLF; header on line 4, 石家庄 on line 7
SHIJIAZHUANG_LINE = 7
IT_COLUMN = "信息传输软件和信息技术服务业 [C]"


def _encoding(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def read_lines(path: Path) -> list[str]:
    """The lines of a CSV extract, with their line ends."""
    data = path.read_bytes()
    return data.decode(_encoding(data)).splitlines(keepends=True)


def rewrite(raw: Path, rel: str, change: Callable[[list[str]], list[str]]) -> Path:
    """Apply `change` to the lines (with their line ends) of a CSV extract, keeping its encoding."""
    path = raw / rel
    data = path.read_bytes()
    encoding = _encoding(data)
    lines = data.decode(encoding).splitlines(keepends=True)
    changed = change(lines)
    assert changed != lines, f"the mutation left {rel} unchanged: the test no longer damages anything"
    path.write_bytes("".join(changed).encode(encoding))
    return path


def city_index(lines: list[str], name: str) -> int:
    """The 0-based index of the line whose first cell is `name` (spaces of any width ignored)."""
    for i, line in enumerate(lines):
        if re.sub(r"[\s\u3000]", "", line.split(",")[0]) in (name, name + "市"):
            return i
    raise AssertionError(f"{name} not found")


def sjz(lines: list[str]) -> str:
    """The start of 石家庄's row up to its IT cell, e.g. `石家庄,142.98,5.93` (read from the file, so the
    tests follow the demo's values)."""
    return ",".join(lines[city_index(lines, "石家庄")].split(",")[:3])


def city_rows(lines: list[str]) -> list[int]:
    """The 0-based indices of the lines that are city rows ending in a number (not total rows)."""
    return [
        i
        for i, line in enumerate(lines)
        if re.search(r",\d+\.\d+\s*$", line)
        and re.sub(r"[\s\u3000]", "", line.split(",")[0]) not in ("合计", "全国", "全省")
    ]


@pytest.fixture
def raw(pristine_demo_raw, tmp_path) -> Path:
    return mutable_copy(pristine_demo_raw, tmp_path / "raw")


@pytest.fixture
def results(tmp_path) -> Path:
    return tmp_path / "results"


def test_the_pristine_demo_passes_every_structural_check(raw, results):
    paths = build_panel_outputs(raw, results)
    assert pd.read_parquet(paths["parquet"])["city_code"].nunique() == 283


# --- CSV syntax ------------------------------------------------------------------------------------------


def _open_quote(lines: list[str]) -> list[str]:
    i = city_index(lines, "石家庄")
    return [*lines[:i], '"' + lines[i], *lines[i + 1 :]]


def test_unclosed_quote_names_file_and_line(raw, results):
    path = rewrite(raw, EMPLOYMENT, _open_quote)
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert problem.line == SHIJIAZHUANG_LINE
    assert "unbalanced quote" in problem.message and "the file ends" in problem.message
    assert f"{path}, line {SHIJIAZHUANG_LINE}" in str(err)


def test_unclosed_quote_before_more_than_128_kib_is_named_not_a_csv_error(raw, results):
    note = "注：" + "很长的说明" * 30_000 + "\r\n"  # 150,000 characters after the quote
    path = rewrite(raw, EMPLOYMENT, lambda lines: [*_open_quote(lines), note])
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert problem.line == SHIJIAZHUANG_LINE
    assert "unbalanced quote" in problem.message and "131,072 characters" in problem.message


def test_over_long_cell_without_a_quote_is_not_blamed_on_a_quote():
    with pytest.raises(UnreadableFile) as caught:
        parse_csv("地区,a\r\n" + "x" * 140_000 + ",1\r\n", "t.csv")
    problem = caught.value.problem
    assert (problem.file, problem.line) == ("t.csv", 2)
    assert "longer than 131,072 characters" in problem.message and "quote" not in problem.message


def test_quote_closed_lines_later_swallows_rows_and_is_an_error(raw, results):
    def change(lines):
        i = city_index(lines, "石家庄")
        name, rest = lines[i + 1].split(",", 1)
        return [*lines[:i], '"' + lines[i], f'{name}",{rest}', *lines[i + 2 :]]

    path = rewrite(raw, EMPLOYMENT, change)
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if "line break" in p.message]
    assert (problem.file, problem.line) == (str(path), SHIJIAZHUANG_LINE)
    assert "lines 7-8 of the file" in problem.message


def test_quote_followed_by_text_is_malformed_quoting(raw, results):
    path = rewrite(raw, EMPLOYMENT, lambda ls: [x.replace("石家庄,", '"石家庄"x,', 1) for x in ls])
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert problem.line == SHIJIAZHUANG_LINE and "malformed quoting" in problem.message


def test_nul_byte_names_file_and_line(raw, results):
    path = rewrite(raw, EMPLOYMENT, lambda ls: [x.replace("石家庄,", "石家庄\x00,", 1) for x in ls])
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert problem.line == SHIJIAZHUANG_LINE and "NUL" in problem.message


def test_line_break_inside_a_header_cell_is_accepted(raw, results):
    header = "信息传输软件和信息技术服务业"
    rewrite(
        raw,
        EMPLOYMENT,
        lambda ls: [x.replace(header, '"信息传输软件和\r\n信息技术服务业"', 1) for x in ls],
    )
    paths = build_panel_outputs(raw, results)
    assert pd.read_parquet(paths["parquet"])["city_code"].nunique() == 283


def test_line_break_inside_a_note_row_is_accepted(raw, results):
    rewrite(raw, EMPLOYMENT, lambda ls: [*ls, '"注3：两行的\r\n说明"\r\n'])
    build_panel_outputs(raw, results)


def test_below_a_two_line_header_cell_rows_are_spreadsheet_rows_and_syntax_errors_file_lines(
    raw, results
):
    two_lines = '"信息传输软件和\r\n信息技术服务业"'
    path = rewrite(
        raw,
        EMPLOYMENT,
        lambda ls: [
            x.replace("信息传输软件和信息技术服务业", two_lines, 1).replace(
                sjz(ls) + ",", sjz(ls).rsplit(",", 1)[0] + ",", 1
            )
            for x in ls
        ],
    )
    (problem,) = [p for p in build_fails(raw, results).problems if p.file == str(path)]
    assert "this row has 7 cells" in problem.message and problem.line == SHIJIAZHUANG_LINE
    text = path.read_text(encoding="utf-8-sig").replace("石家庄,", "石家庄\x00,", 1)
    with pytest.raises(UnreadableFile) as caught:
        parse_csv(text, str(path))
    assert caught.value.problem.line == SHIJIAZHUANG_LINE + 1  # the line a text editor shows


# --- cells against the header ----------------------------------------------------------------------------


def test_trailing_empty_cells_do_not_count(raw, results):
    rewrite(raw, EMPLOYMENT, lambda ls: [x.replace(",9.68\r\n", ",9.68,,,\r\n", 1) for x in ls])
    build_panel_outputs(raw, results)


def test_xlsx_row_shorter_than_the_header_is_empty_cells_at_its_end(raw, results):
    path = raw / XLSX
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    row = next(r for r in ws.iter_rows() if str(r[0].value).strip() == "石家庄市")
    row[-1].value = None  # the last column (an optional industry) left empty
    wb.save(path)
    paths = build_panel_outputs(raw, results)
    industries = pd.read_parquet(paths["industries"])
    assert industries.query("city_code == '130100' and year == 2009").shape[0] > 0


def test_row_with_one_cell_missing_is_an_error_not_a_shift(raw, results):
    path = rewrite(
        raw,
        EMPLOYMENT,
        lambda ls: [x.replace(sjz(ls) + ",", sjz(ls).rsplit(",", 1)[0] + ",", 1) for x in ls],
    )
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if "cells but the header has" in p.message]
    assert (problem.file, problem.line) == (str(path), SHIJIAZHUANG_LINE)
    assert "this row has 7 cells but the header has 8" in problem.message
    assert problem.column == "卫生和社会工作 [H]"  # the row ends before the last header cell


def test_row_with_a_cell_too_many_is_an_error(raw, results):
    # an unquoted thousands separator splits one number into two cells
    path = rewrite(
        raw, EMPLOYMENT, lambda ls: [x.replace("石家庄,", "石家庄,1,", 1) for x in ls]
    )
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if "cells but the header only" in p.message]
    assert (problem.file, problem.line, problem.column) == (str(path), SHIJIAZHUANG_LINE, "I")


def test_header_with_one_extra_column_is_one_error_on_the_header(raw, results):
    path = rewrite(raw, EMPLOYMENT, lambda ls: [x.replace("城市,", "城市,备注,", 1) for x in ls])
    err = build_fails(raw, results)
    mine = [p for p in err.problems if p.file == str(path)]
    (problem,) = [p for p in mine if "header has 9 cells" in p.message]
    assert problem.line == 4 and problem.column == "卫生和社会工作 [I]"
    assert not any("cells but the header has" in p.message for p in mine)  # not one per row


def test_file_cut_mid_row_is_an_error_on_that_line(raw, results):
    def change(lines):
        i = city_index(lines, "石家庄")
        return [*lines[:i], sjz(lines)[:-1]]  # '石家庄,142.98,5.93' -> '石家庄,142.98,5.9'

    path = rewrite(raw, EMPLOYMENT, change)
    text = str(build_fails(raw, results))
    assert (
        f"{path}, line {SHIJIAZHUANG_LINE}, column '住宿和餐饮业 [D]': this row has 3 cells" in text
    )
    assert f"{path}, line {SHIJIAZHUANG_LINE}: the file ends inside this row" in text


def test_file_cut_inside_its_last_value_is_an_error(raw, results):
    def change(lines):
        last = city_rows(lines)[-1]
        return [*lines[:last], lines[last].rstrip()[:-1]]  # '...,1.49' -> '...,1.4'

    path = rewrite(raw, EMPLOYMENT, change)
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert "the file ends inside this row, without a line break" in problem.message
    assert problem.line is not None


def test_last_row_without_line_break_but_complete_needs_one(raw, results):
    """A file whose last city row lacks only its line break: named, and fixed by adding it."""

    def strip_end(lines, keep_break):
        last = city_rows(lines)[-1]
        return [*lines[:last], lines[last] if keep_break else lines[last].rstrip("\r\n")]

    rewrite(raw, EMPLOYMENT, lambda ls: strip_end(ls, keep_break=True))
    build_panel_outputs(raw, results)  # notes and blank lines after the last city are optional
    rewrite(raw, EMPLOYMENT, lambda ls: strip_end(ls, keep_break=False))
    err = build_fails(raw, results.parent / "results2")
    assert any("ends inside this row" in p.message for p in err.problems)


# --- truncation across editions --------------------------------------------------------------------------


def _keep_first_cities(n: int) -> Callable[[list[str]], list[str]]:
    def change(lines):
        return lines[: city_rows(lines)[n - 1] + 1]

    return change


def test_file_cut_at_a_line_end_is_caught_by_the_edition_count(raw, results):
    path = rewrite(raw, EMPLOYMENT, _keep_first_cities(141))
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert re.search(
        r"only 1\d\d cities, against 2\d\d in edition 201[35] of the employment", problem.message
    )
    assert "ingestion: truncation_ratio (now 0.8" in problem.message


@pytest.mark.parametrize("rel", ["employment/ccsy_2007.csv", "employment/ccsy_2024.csv"])
def test_first_and_last_editions_are_compared_with_their_one_neighbour(raw, results, rel):
    path = rewrite(raw, rel, _keep_first_cities(150))
    err = build_fails(raw, results)
    assert [p.file for p in err.problems] == [str(path)]
    assert "only 1" in err.problems[0].message


def test_two_truncated_editions_in_a_row_are_both_caught(raw, results):
    a = rewrite(raw, "employment/ccsy_2013.csv", _keep_first_cities(141))
    b = rewrite(raw, EMPLOYMENT, _keep_first_cities(141))
    err = build_fails(raw, results)
    assert sorted(p.file for p in err.problems) == sorted([str(a), str(b)])


def test_truncation_threshold_comes_from_the_config(raw, results):
    assert CONFIG["ingestion"]["truncation_ratio"] == 0.8
    rewrite(raw, EMPLOYMENT, _keep_first_cities(240))  # 240 of 290: above 0.8, no error by itself
    build_panel_outputs(raw, results)
    err = build_fails(raw, results.parent / "r2", truncation_ratio=0.9)
    assert "ingestion: truncation_ratio (now 0.9" in str(err)


def test_real_roster_changes_do_not_trip_the_truncation_check():
    demo = dict(
        enumerate([287, 287, 287, 287, 287, 288, 289, 290, 292, 295, 297, 298, 298, 297], 2007)
    )
    counts = {("employment", e): (f"ccsy_{e}.csv", n) for e, n in demo.items()}
    assert truncation_problems(counts, 0.8) == []
    # the real roster, 2006-2023: between 285 and 298 units in every year; a one-city table is still caught
    counts[("employment", 2015)] = ("ccsy_2015.csv", 1)
    assert [p.file for p in truncation_problems(counts, 0.8)] == ["ccsy_2015.csv"]
    assert truncation_problems(counts, 0) == []  # 0 turns it off


# --- XLSX ------------------------------------------------------------------------------------------------

XLSX = "employment/ccsy_2010.xlsx"


def _formulas(raw: Path, n: int = 6) -> list[str]:
    """Replace the IT cell of the first `n` cities by a formula (openpyxl saves no result); the cells."""
    path = raw / XLSX
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    header = next(
        r
        for r in ws.iter_rows()
        if r[0].value and str(r[0].value).strip() in ("地区", "城市", "城市名称")
    )
    it = next(c.column_letter for c in header if c.value and "信息传输" in str(c.value))
    total = header[1].column_letter
    cells = []
    for row in ws.iter_rows(min_row=header[0].row + 1):
        if len(cells) == n:
            break
        if str(row[0].value).strip() in ("全国", "合计", "全省"):
            continue
        if isinstance(row[1].value, int | float) or (
            isinstance(row[1].value, str) and row[1].value[:1].isdigit()
        ):
            cell = f"{it}{row[0].row}"
            ws[cell] = f"={total}{row[0].row}*0.01"
            cells.append(cell)
    wb.save(path)
    return cells


def test_xlsx_formulas_without_saved_results_name_sheet_cells_and_fix(raw, results):
    cells = _formulas(raw)
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(raw / XLSX)]
    assert "sheet '表': 6 cell(s) hold a formula without a saved result" in problem.message
    assert ", ".join(cells) in problem.message
    assert (
        "open it in a spreadsheet program" in problem.message
        and "export the sheet as CSV" in problem.message
    )
    assert (problem.line, problem.column) == (int(cells[0][1:]), cells[0][0])


def test_xlsx_formulas_with_saved_results_are_read(raw, results):
    """What Excel writes: the formula and its last result; the result is read."""
    cells = _formulas(raw, n=1)
    path = raw / XLSX
    with zipfile.ZipFile(path) as src:
        items = {i.filename: src.read(i.filename) for i in src.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml, n = re.subn(
        rf'(<c r="{cells[0]}"[^>]*>)<f>([^<]*)</f>(?:<v\s*/>|<v></v>)?'.encode(),
        rb"\1<f>\2</f><v>7.77</v>",
        items[sheet],
    )
    assert n == 1
    items[sheet] = xml
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in items.items():
            dst.writestr(name, data)
    paths = build_panel_outputs(raw, results)
    panel = pd.read_parquet(paths["parquet"])
    assert (panel.loc[panel["year"] == 2009, "it_emp"] == 7.77).sum() == 1


# --- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["①", "²", "*"])
def test_footnote_marker_after_a_number_is_an_error_naming_the_cell(raw, results, marker):
    it_value = sjz(read_lines(raw / EMPLOYMENT)).rsplit(",", 1)[1]
    path = rewrite(
        raw, EMPLOYMENT, lambda ls: [x.replace(sjz(ls) + ",", f"{sjz(ls)}{marker},", 1) for x in ls]
    )
    err = build_fails(raw, results)
    (problem,) = [p for p in err.problems if p.file == str(path)]
    assert (problem.line, problem.column) == (SHIJIAZHUANG_LINE, IT_COLUMN)
    assert f"'{it_value}{marker}' ends with the footnote marker '{marker}'" in problem.message


def test_footnote_markers_are_never_digits():
    assert parse_number("5.13①") is None and footnote_marker("5.13①") == "①"
    assert parse_number("5.13²") is None and footnote_marker("5.13²") == "²"
    assert parse_number("１２３.５") == 123.5  # full-width digits are digits
    assert footnote_marker("5.13") is None and footnote_marker("①") is None
    for marker in ("¹", "³", "⑳", "⑴", "❶", "†", "‡", "#", "§", "※", "＊", "＃"):
        assert parse_number(f"5.13{marker}") is None and footnote_marker(f"5.13{marker}") == marker


@pytest.mark.parametrize(("ratio", "valid"), [(0.5, True), (0, True), (1.0, False), (-0.1, False)])
def test_truncation_ratio_overlay_is_validated_by_the_schema(ratio, valid):
    """The documented overlay `ingestion: {truncation_ratio: 0.5}` passes the config schema."""
    import copy

    from snakemake.utils import validate

    config = copy.deepcopy(CONFIG)
    config["ingestion"]["truncation_ratio"] = ratio
    schema = str(Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml")
    if valid:
        validate(config, schema)
    else:
        with pytest.raises(Exception, match="truncation_ratio"):
            validate(config, schema)


# --- duplicated rows -------------------------------------------------------------------------------------


def test_a_row_pasted_50000_times_is_one_problem_with_a_capped_list(raw, results):
    def change(lines):
        i = city_index(lines, "石家庄")
        return [*lines[: i + 1], *[lines[i]] * 50_000, *lines[i + 1 :]]

    path = rewrite(raw, EMPLOYMENT, change)
    err = build_fails(raw, results)
    dup = [p for p in err.problems if "appears more than once" in p.message]
    assert len(dup) == 1 and len(err.problems) == 1
    (problem,) = dup
    assert (problem.file, problem.line) == (str(path), SHIJIAZHUANG_LINE + 1)
    assert "city 130100 appears more than once in this table (50,001 rows)" in problem.message
    assert f"and {50_001 - SHOWN_AT_MOST:,} more" in problem.message
    assert problem.message.count("line ") == SHOWN_AT_MOST
    assert len(str(err)) < 2_000  # the message does not grow with the number of copies


def test_a_patent_row_pasted_many_times_is_one_problem(raw, results):
    path = raw / "patents.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    path.write_text("".join([*lines[:2], *[lines[1]] * 5_000, *lines[2:]]), encoding="utf-8")
    err = build_fails(raw, results)
    (problem,) = err.problems
    assert (problem.file, problem.line) == (str(path), 3)
    assert "(5,001 rows): lines 2, 3, 4" in problem.message and "and 4,991 more" in problem.message
