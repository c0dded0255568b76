"""Tests of dualpilot.data.yearbook: one per quirk of the raw tables and one per class of bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from dualpilot.core.errors import InputError
from dualpilot.data.yearbook import (
    MISSING_MARKERS,
    REQUIRED_VARIABLES,
    HeaderAliases,
    column_letter,
    header_units,
    load_aliases,
    normalise_header,
    parse_number,
    read_patents,
    read_table,
    title_unit,
)
from fixtures_raw import (
    ALIASES_PATH,
    ECONOMY_HEADER,
    NEW_IT,
    OLD_IT,
    data_row,
    economy_header,
    employment_header,
    load_reference,
    values,
    write_patents,
    write_table,
)

TITLES = ["2-6 按行业分城镇单位从业人员", "单位：万人"]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    master, crosswalk, usd, aliases = load_reference(tmp_path_factory.mktemp("ref"))
    return {"master": master, "crosswalk": crosswalk, "aliases": aliases}


def read(ref, path: Path, table: str = "employment", edition: int = 2014):
    return read_table(path, table, edition, ref["aliases"], ref["crosswalk"])


def emp_rows(year: int = 2013, codes=("110000", "130100", "130200")) -> list[list]:
    return [data_row("employment", c, year) for c in codes]


def only(problems, text: str):
    """The one problem whose message contains `text`."""
    hits = [p for p in problems if text in p.message]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


# --- the alias table -----------------------------------------------------------------------------------


def test_shipped_alias_table_is_valid_and_complete():
    aliases = load_aliases(ALIASES_PATH)
    df = pd.read_csv(ALIASES_PATH, dtype=str, keep_default_na=False)
    assert list(df.columns) == [
        "table",
        "variable",
        "header",
        "first_edition",
        "last_edition",
        "unit",
    ]
    for table, required in REQUIRED_VARIABLES.items():
        assert aliases.variables(table)[: len(required)] == list(required)
    assert aliases.accepted("employment", "it_emp", 2012) == [OLD_IT]
    assert aliases.accepted("employment", "it_emp", 2013) == [NEW_IT]
    assert set(aliases.accepted("employment", "total_emp", 2020)) == {
        "城镇单位从业人员期末人数",
        "年末单位从业人员数",
        "合计",
    }
    assert aliases.unit("economy", "fdi") == "万美元"
    assert "emp_zhizao" in aliases.variables("employment")
    assert "emp_jinrong" in aliases.variables("employment")


def test_alias_table_rejects_conflicts_and_unknown_variables():
    rows = [
        ("employment", "total_emp", "合计", "", "", "万人"),
        ("employment", "it_emp", OLD_IT, "", "", "万人"),
        (
            "employment",
            "emp_x",
            "合 计",
            "",
            "",
            "万人",
        ),  # same header as total_emp after normalisation
        ("economy", "gdp_pc", "人均地区生产总值", "", "", "元"),  # not a contract variable
    ]
    df = pd.DataFrame(
        rows, columns=["table", "variable", "header", "first_edition", "last_edition", "unit"]
    )
    with pytest.raises(InputError) as err:
        HeaderAliases.from_frame(df, source="aliases.csv")
    text = str(err.value)
    assert "overlapping editions" in text
    assert "'gdp_pc'" in text
    assert "no header listed for economy variable gdp" in text


# --- normalisation and cells --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        NEW_IT,
        "信息传输,软件和信息技术服务业",
        "信息传输，软件和信息技术服务业",
        "信息传输软件和信息技术服务业",
        " 信息传输、软件和 信息技术服务业 （万人）",
        "信息传输、软件和信息技术服务业(万人)",
    ],
)
def test_it_header_variants_normalise_alike(header):
    assert normalise_header(header) == normalise_header(NEW_IT) == "信息传输软件和信息技术服务业"


def test_bracketed_units_are_recognised():
    assert header_units("地区生产总值(当年价格)(万元)") == ["万元"]
    assert header_units("行政区域土地面积（平方千米）") == ["平方公里"]
    assert header_units("建成区绿化覆盖率(％)") == ["%"]
    assert title_unit("单位：万人") == "万人"
    assert title_unit("单位: 人") == "人"
    assert title_unit("2-6 按行业分城镇单位从业人员") is None


@pytest.mark.parametrize("marker", MISSING_MARKERS + ("na", "n/a", "　", None))
def test_every_missing_marker_is_missing(marker):
    assert math.isnan(parse_number(marker))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1,234.5", 1234.5),
        ("12,345,678", 12345678.0),
        ("１２３．５", 123.5),
        ("１，２３４", 1234.0),
        (" 42 ", 42.0),
        ("−5", -5.0),
        ("1.2E+03", 1200.0),
        (".5", 0.5),
        (7, 7.0),
        (2.5, 2.5),
    ],
)
def test_numbers_parse(cell, expected):
    assert parse_number(cell) == expected


@pytest.mark.parametrize("cell", ["1,23", "12a", "abc", "1 234", "#N/A", "e5", "1.2.3", True])
def test_non_numbers_are_rejected(cell):
    assert parse_number(cell) is None


def test_column_letters():
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


# --- reading: encodings, formats, layout quirks ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_encodings_give_the_same_table(ref, tmp_path, encoding):
    path = write_table(
        tmp_path / "t.csv", employment_header(2014), emp_rows(), titles=TITLES, encoding=encoding
    )
    df, problems, stats = read(ref, path)
    assert problems == []
    assert stats.read_as == ("utf-8-sig" if encoding.startswith("utf") else "gb18030")
    assert list(df["city_code"]) == ["110000", "130100", "130200"]
    assert df.loc[0, "total_emp"] == values("110000", 2013)["total_emp"]
    assert df.loc[1, "it_emp"] == values("130100", 2013)["it_emp"]


def test_bom_is_not_part_of_the_first_header(ref, tmp_path):
    path = write_table(
        tmp_path / "t.csv", employment_header(2014), emp_rows(), encoding="utf-8-sig"
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    df, problems, stats = read(ref, path)
    assert problems == [] and stats.header_line == 1 and len(df) == 3


def test_xlsx_first_sheet_with_numbers_and_text(ref, tmp_path):
    rows = emp_rows()
    rows[0][1:3] = [float(values("110000", 2013)["total_emp"]), 1]  # real numbers in cells
    path = write_table(tmp_path / "t.xlsx", employment_header(2014), rows, titles=TITLES)
    df, problems, stats = read(ref, path)
    assert problems == []
    assert stats.read_as == "xlsx"
    assert df.loc[0, "it_emp"] == 1.0
    assert list(df["line"]) == [4, 5, 6]


def test_up_to_five_title_lines_then_the_header(ref, tmp_path):
    titles = ["表 2-6", "", "按行业分", "城镇单位从业人员", "（全市）", "单位：万人"]  # 5 non-blank
    path = write_table(tmp_path / "t.csv", employment_header(2014), emp_rows(), titles=titles)
    df, problems, stats = read(ref, path)
    assert problems == [] and stats.header_line == 7
    assert list(df["line"]) == [8, 9, 10]

    six = write_table(tmp_path / "six.csv", employment_header(2014), emp_rows(), titles=["x"] * 6)
    df, problems, _ = read(ref, six)
    assert df.empty
    assert "no header row" in problems[0].message and problems[0].column == "A"


@pytest.mark.parametrize("first", ["地区", "城市", "城市名称", "地　区", " 城 市 "])
def test_header_row_first_cell_variants(ref, tmp_path, first):
    header = [first, *employment_header(2014)[1:]]
    df, problems, _ = read(ref, write_table(tmp_path / "t.csv", header, emp_rows()))
    assert problems == [] and len(df) == 3


def test_province_total_note_and_blank_rows_are_skipped_with_right_lines(ref, tmp_path):
    rows = [
        ["全国", "10000", "300", "2000"],
        ["北京", *data_row("employment", "110000", 2013)[1:]],
        [],
        ["河北省"],
        ["河北", "", "", ""],
        ["合计", "500", "5", "50"],
        data_row("employment", "130100", 2013),
        ["", "", "", ""],
        ["全省", "600", "6", "60"],
        ["地级市"],  # a sub-heading without values
        data_row("employment", "130200", 2013),
        ["注：本表数据为全市口径。"],
        ["资料来源：测试"],
    ]
    path = write_table(tmp_path / "t.csv", employment_header(2014), rows, titles=TITLES)
    df, problems, stats = read(ref, path)
    assert problems == []
    assert list(df["city_code"]) == ["110000", "130100", "130200"]
    assert list(df["line"]) == [5, 10, 14]
    assert stats.skipped == {"total": 3, "blank": 2, "province": 2, "label": 1, "note": 2}
    assert stats.unmatched_labels == [(13, "地级市")]


def test_padded_short_suffixed_and_historical_names(ref, tmp_path):
    rows = [
        ["北　京", "100", "5", "20"],
        ["石 家 庄", "60", "2", "20"],
        ["唐山市", "50", "1", "20"],
        ["襄樊", "40", "1", "10"],
        ["思茅市", "30", "1", "5"],
        ["吉林", "30", "1", "5"],
        ["　毕节 市 ", "30", "1", "5"],
    ]
    df, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    assert problems == []
    assert list(df["city_code"]) == [
        "110000",
        "130100",
        "130200",
        "420600",
        "530800",
        "220200",
        "520500",
    ]
    assert list(df["name"]) == [r[0].strip() for r in rows]


def test_province_heading_that_is_also_a_city_name(ref, tmp_path):
    # 吉林 heads the 吉林省 block without values and is also the city 吉林 with values.
    rows = [["吉林"], ["吉林", "30", "1", "5"], ["吉林省"]]
    df, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    assert problems == []
    assert list(df["line"]) == [3]


@pytest.mark.parametrize(
    ("edition", "it_header"),
    [
        (2007, OLD_IT),
        (2012, OLD_IT),
        (2013, NEW_IT),
        (2024, NEW_IT),
        (2014, "信息传输,软件和信息技术服务业"),
    ],
)
def test_it_header_by_edition(ref, tmp_path, edition, it_header):
    header = employment_header(edition, it_header=it_header)
    df, problems, _ = read(
        ref, write_table(tmp_path / "t.csv", header, emp_rows()), edition=edition
    )
    assert problems == []
    assert df["it_emp"].notna().all()


def test_it_header_of_the_wrong_edition_is_a_missing_column(ref, tmp_path):
    header = employment_header(2014, it_header=OLD_IT)
    path = write_table(tmp_path / "t.csv", header, emp_rows(), titles=TITLES)
    _, problems, _ = read(ref, path, edition=2014)
    p = only(problems, "no column for it_emp")
    assert p.file == str(path) and p.line == 3
    assert NEW_IT in p.message  # names the accepted header
    assert "editions up to 2012" in p.message  # and why the printed one does not count


def test_total_emp_header_variants_and_units_in_brackets(ref, tmp_path):
    for i, total in enumerate(
        ["城镇单位从业人员期末人数（万人）", "合计", "年末单位从业人员数 (万人)"]
    ):
        header = ["地区", total, NEW_IT + "（万人）", "制造业(万人)"]
        df, problems, _ = read(ref, write_table(tmp_path / f"t{i}.csv", header, emp_rows()))
        assert problems == [] and df["total_emp"].notna().all()


def test_economy_table_reads_every_variable(ref, tmp_path):
    rows = [data_row("economy", c, 2013) for c in ("110000", "130100")]
    df, problems, _ = read(ref, write_table(tmp_path / "e.csv", economy_header(), rows), "economy")
    assert problems == []
    expected = values("130100", 2013)
    for variable in REQUIRED_VARIABLES["economy"]:
        assert df.loc[1, variable] == pytest.approx(expected[variable])


def test_thousands_separators_and_missing_markers_in_cells(ref, tmp_path):
    rows = [["北京", "1,234.5", "—", "——"], ["石家庄", "60", "…", "－"], ["唐山", "50", "..", "NA"]]
    rows += [["吉林", "40", "", "……"], ["襄阳", "30", "-", "N/A"]]
    df, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    assert problems == []
    assert df.loc[0, "total_emp"] == 1234.5
    assert df[["it_emp", "emp_zhizao"]].isna().all().all()


def test_other_industry_columns_are_kept_and_unknown_ones_ignored(ref, tmp_path):
    header = [*employment_header(2014), "金融业", "某个新行业", ""]
    rows = [[*data_row("employment", "110000", 2013), "12", "3", ""]]
    df, problems, stats = read(ref, write_table(tmp_path / "t.csv", header, rows))
    assert problems == []
    assert df.loc[0, "emp_zhizao"] == values("110000", 2013)["emp_zhizao"]
    assert df.loc[0, "emp_jinrong"] == 12.0
    assert stats.ignored_columns == ["某个新行业 [F]"]


# --- bad input: each names the file, the line and the column -------------------------------------------


def test_unknown_city_names_are_all_listed(ref, tmp_path):
    rows = [*emp_rows(), ["火星", "10", "1", "2"], ["月亮市", "10", "1", "2"]]
    path = write_table(tmp_path / "t.csv", employment_header(2014), rows, titles=TITLES)
    _, problems, _ = read(ref, path)
    unknown = [p for p in problems if "unknown city name" in p.message]
    assert [(p.file, p.line, p.column) for p in unknown] == [
        (str(path), 7, "地区 [A]"),
        (str(path), 8, "地区 [A]"),
    ]
    assert "'火星'" in unknown[0].message and "'月亮市'" in unknown[1].message
    assert "name_crosswalk.csv" in unknown[0].message


def test_province_row_with_values_is_an_error(ref, tmp_path):
    rows = [["河北省", "500", "5", "50"], *emp_rows()]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    p = only(problems, "province totals are not accepted")
    assert p.line == 2 and p.column == "地区 [A]"


def test_duplicated_city(ref, tmp_path):
    rows = [*emp_rows(), ["石家庄市", "61", "2", "20"]]
    path = write_table(tmp_path / "t.csv", employment_header(2014), rows, titles=TITLES)
    _, problems, _ = read(ref, path)
    p = only(problems, "appears more than once")
    assert (p.file, p.line, p.column) == (str(path), 7, "地区 [A]")
    assert "line 5 (石 家 庄)" in p.message and "line 7 (石家庄市)" in p.message


def test_missing_required_column_names_accepted_headers(ref, tmp_path):
    header = ["城市", *list(economy_header()[1:3]), *economy_header()[4:]]  # no area
    rows = [[r[0], *r[1:3], *r[4:]] for r in [data_row("economy", "110000", 2013)]]
    path = write_table(tmp_path / "e.csv", header, rows, titles=["2-1 综合"])
    _, problems, _ = read(ref, path, "economy")
    p = only(problems, "no column for area")
    assert (p.file, p.line) == (str(path), 2)
    assert "'行政区域土地面积'" in p.message


def test_two_columns_for_one_variable(ref, tmp_path):
    header = ["地区", "合计", NEW_IT, "年末单位从业人员数"]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", header, [["北京", "1", "1", "1"]]))
    p = only(problems, "two columns give total_emp")
    assert p.line == 1 and p.column == "年末单位从业人员数 [D]"


def test_non_numeric_cell(ref, tmp_path):
    rows = emp_rows()
    rows[1][2] = "1.2万"
    path = write_table(tmp_path / "t.csv", employment_header(2014), rows, titles=TITLES)
    _, problems, _ = read(ref, path)
    p = only(problems, "is not a number")
    assert (p.file, p.line, p.column) == (str(path), 5, f"{NEW_IT} [C]")
    assert "'1.2万'" in p.message


def test_negative_count(ref, tmp_path):
    rows = emp_rows()
    rows[2][3] = "-3"
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    p = only(problems, "negative value -3")
    assert p.line == 4 and p.column == "制造业 [D]"


def test_it_emp_greater_than_total_emp(ref, tmp_path):
    rows = emp_rows()
    rows[0][1:3] = ["10", "12"]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    p = only(problems, "it_emp 12 is greater than total_emp 10")
    assert p.line == 2 and p.column.startswith(NEW_IT)


def test_another_industry_greater_than_total_emp(ref, tmp_path):
    """Any industry may be the outcome (config outcome_industry), so each is checked against the total."""
    rows = emp_rows()
    rows[0][1:4] = ["10", "2", "12"]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    p = only(problems, "emp_zhizao 12 is greater than total_emp 10")
    assert p.line == 2 and p.column == "制造业 [D]"


def test_employment_in_persons_is_implausible(ref, tmp_path):
    rows = emp_rows()
    rows[0][1:3] = ["5,123,400", "12,000"]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    p = only(problems, "implausible total_emp")
    assert p.line == 2 and p.column == "年末单位从业人员数(万人) [B]"
    assert "2,000 万人" in p.message
    assert only(problems, "implausible it_emp").line == 2


@pytest.mark.parametrize(
    ("variable", "bad", "text"),
    [
        ("population", "52,000", "implausible population"),
        ("area", "1,200,000", "implausible area"),
        ("secondary_share", "145", "implausible secondary_share"),
        ("gdp", "0", "gdp is 0"),
        ("loans", "2e10", "implausible loans"),
    ],
)
def test_economy_plausibility_bounds(ref, tmp_path, variable, bad, text):
    rows = [data_row("economy", c, 2013) for c in ("110000", "130100")]
    rows[1] = data_row("economy", "130100", 2013, {variable: bad})
    path = write_table(tmp_path / "e.csv", economy_header(), rows)
    _, problems, _ = read(ref, path, "economy")
    p = only(problems, text)
    assert p.line == 3 and p.column.startswith(ECONOMY_HEADER[variable])


def test_percent_given_as_fractions(ref, tmp_path):
    rows = [data_row("economy", c, 2013, {"green_cover": "0.4"}) for c in ("110000", "130100")]
    path = write_table(tmp_path / "e.csv", economy_header(), rows)
    _, problems, _ = read(ref, path, "economy")
    p = only(problems, "green_cover looks like fractions")
    assert p.line == 1 and p.column == "建成区绿化覆盖率(%) [K]"


def test_wrong_unit_in_header_or_title(ref, tmp_path):
    header = economy_header()
    header[1] = "地区生产总值(亿元)"
    rows = [data_row("economy", "110000", 2013)]
    _, problems, _ = read(ref, write_table(tmp_path / "e.csv", header, rows), "economy")
    p = only(problems, "the header says the unit is 亿元")
    assert p.line == 1 and p.column == "地区生产总值(亿元) [B]"

    path = write_table(
        tmp_path / "t.csv", employment_header(2014), emp_rows(), titles=["表", "单位：人"]
    )
    _, problems, _ = read(ref, path)
    assert only(problems, "the table says its unit is 人").line == 2


def test_row_with_values_but_no_name(ref, tmp_path):
    rows = [*emp_rows(), ["", "10", "1", "2"]]
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    assert only(problems, "has no city name").line == 5


def test_undecodable_and_corrupt_files(ref, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\xff")
    _, problems, _ = read(ref, bad)
    assert "cannot be decoded" in problems[0].message and problems[0].file == str(bad)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("not a workbook")
    _, problems, _ = read(ref, fake)
    assert "cannot open as an XLSX workbook" in problems[0].message


def test_every_problem_of_a_table_is_reported_at_once(ref, tmp_path):
    rows = [*emp_rows(), ["火星", "1", "1", "1"], ["北京", "1", "x", "1"]]
    rows[0][3] = "-1"
    _, problems, _ = read(ref, write_table(tmp_path / "t.csv", employment_header(2014), rows))
    messages = " | ".join(p.message for p in problems)
    for text in ("unknown city name", "is not a number", "appears more than once", "negative"):
        assert text in messages


# --- patents.csv ---------------------------------------------------------------------------------------


def test_patents_good_file(ref, tmp_path):
    path = write_patents(
        tmp_path / "patents.csv",
        [("110000", 2010, 5, 3), ("110000", 2011, "1,200", ""), ("130100", 2030, 1, 1)],
    )
    df, problems, stats = read_patents(path, ref["master"]["city_code"], (2006, 2023))
    assert problems == []
    assert list(df["year"]) == [2010, 2011]
    assert df.loc[1, "digital_patents"] == 1200.0 and math.isnan(df.loc[1, "green_patents"])
    assert stats.rows_read == 3 and stats.rows_kept == 2 and stats.outside_window == 1


def test_patents_bad_rows(ref, tmp_path):
    path = write_patents(
        tmp_path / "patents.csv",
        [
            ("11000", 2010, 1, 1),  # line 2: not 6 digits
            ("999999", 2010, 1, 1),  # line 3: unknown code
            ("110000", "2010年", 1, 1),  # line 4: bad year
            ("110000", 2011, 1.5, 1),  # line 5: not an integer
            ("110000", 2012, 1, -2),  # line 6: negative
            ("130100", 2012, 1, 1),  # line 7
            ("130100", 2012, 2, 2),  # line 8: duplicate of line 7
        ],
    )
    _, problems, _ = read_patents(path, ref["master"]["city_code"], (2006, 2023))
    got = [(p.line, p.column) for p in problems]
    assert got == [
        (2, "city_code"),
        (3, "city_code"),
        (4, "year"),
        (5, "digital_patents"),
        (6, "green_patents"),
        (8, "city_code"),
    ]
    assert all(p.file == str(path) for p in problems)
    assert "lines 7 and 8" in problems[-1].message


def test_patents_missing_column(ref, tmp_path):
    path = write_table(tmp_path / "patents.csv", ["city_code", "year", "digital_patents"], [])
    _, problems, _ = read_patents(path, ref["master"]["city_code"], (2006, 2023))
    assert problems[0].line == 1 and "green_patents" in problems[0].message
