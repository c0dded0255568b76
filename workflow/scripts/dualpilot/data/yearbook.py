"""Read one raw yearbook table (or patents.csv) exactly as docs/raw-data.md and the raw-data contract
(/work/shared/spec/raw-data-contract.md) describe, and report every defect with its file, line and column.

A yearbook table is a CSV (UTF-8 with or without BOM, else GB18030/GBK) or an XLSX file (first sheet) as
digitised from the printed China City Statistical Yearbook:

- up to `MAX_TITLE_LINES` non-blank title or unit lines stand above the header row, which is the first row
  whose first cell is one of `HEADER_FIRST_CELLS` (地区, 城市, 城市名称);
- column headers are matched to variables through resources/yearbook/header_aliases.csv (`HeaderAliases`)
  after `normalise_header`: NFKC, every bracketed part `(...)`/`（...）` removed (a bracket holding a unit is
  checked against the unit the variable must have), all whitespace removed, and the separators `、` `,` `，`
  deleted, so `信息传输,软件和信息技术服务业（万人）` matches `信息传输、软件和信息技术服务业`;
- rows that are not cities are skipped: blank rows, note rows (the name starts with one of `NOTE_PREFIXES`),
  total rows (`TOTAL_ROW_NAMES`), province rows (the name ends in 省/自治区/特别行政区 or is a province's
  name, and the row holds no value); a row without any value whose name matches nothing (a sub-heading such
  as 地级市) is skipped and logged;
- city names go through `dualpilot.data.reference.normalise_name` and the name crosswalk (current, short,
  historical and variant names -> 6-digit code);
- cells are numbers, missing markers (`MISSING_MARKERS`) or errors; thousands separators are accepted.

Line numbers are spreadsheet row numbers: the first line of the file is line 1, title lines and the header
count. Every kept row carries its line so later checks can point at it.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import math
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from dualpilot.core.errors import InputError, Problem, io_problem, raise_if
from dualpilot.data.reference import normalise_name

log = logging.getLogger(__name__)

Table = Literal["employment", "economy"]
TABLES: tuple[str, ...] = ("employment", "economy")

#: Variables each table must provide, in panel order (the contract's tables). Any other variable of the
#: alias table is optional and must be an employment column named `emp_<ascii>` (other industries).
REQUIRED_VARIABLES: dict[str, tuple[str, ...]] = {
    "employment": ("it_emp", "total_emp"),
    "economy": (
        "gdp",
        "population",
        "area",
        "secondary_share",
        "fiscal_exp",
        "fdi",
        "loans",
        "students",
        "so2",
        "green_cover",
    ),
}
OPTIONAL_VARIABLE = re.compile(r"emp_[a-z0-9_]+")

#: The first cell of the header row (after NFKC and removing whitespace).
HEADER_FIRST_CELLS = frozenset({"地区", "城市", "城市名称"})
#: At most this many non-blank lines may stand above the header row (blank lines are not counted).
MAX_TITLE_LINES = 5
#: Rows whose name (NFKC, no whitespace) is one of these are totals and are skipped, with or without values.
TOTAL_ROW_NAMES = frozenset(
    {"全国", "合计", "总计", "全省", "全市", "全区", "全国合计", "全国总计"}
)
#: Rows whose name starts with one of these are notes and are skipped.
NOTE_PREFIXES: tuple[str, ...] = ("注", "资料来源", "数据来源", "说明")
#: Province-level units, so that a province heading (河北省, 河北, 广西壮族自治区, 广西) is recognised.
PROVINCES: tuple[str, ...] = (
    "北京市", "天津市", "河北省", "山西省", "内蒙古自治区", "辽宁省", "吉林省", "黑龙江省", "上海市",
    "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省",
    "广西壮族自治区", "海南省", "重庆市", "四川省", "贵州省", "云南省", "西藏自治区", "陕西省", "甘肃省",
    "青海省", "宁夏回族自治区", "新疆维吾尔自治区", "台湾省", "香港特别行政区", "澳门特别行政区",
)  # fmt: skip
_PROVINCE_SUFFIX = re.compile(r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$")
PROVINCE_NAMES = frozenset(PROVINCES) | frozenset(_PROVINCE_SUFFIX.sub("", p) for p in PROVINCES)

#: Cells meaning "missing", as printed. A cell is compared after NFKC and trimming, so the full-width forms
#: `－` (-> `-`), `…`/`……` (-> `...`/`......`), `．．` (-> `..`) and `ＮＡ` (-> `NA`) are covered; `NA` and `N/A`
#: in any letter case.
MISSING_MARKERS: tuple[str, ...] = (
    "", "—", "——", "-", "--", "－", "－－", "–", "―", "…", "……", "...", "..", "．．", "NA", "N/A", "ＮＡ",
)  # fmt: skip


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_WHITESPACE = re.compile(r"\s+")


def squeeze(text: str) -> str:
    """NFKC, then remove all whitespace (ASCII and full-width spaces alike)."""
    return _WHITESPACE.sub("", _nfkc(text))


_MISSING = frozenset(squeeze(m).casefold() for m in MISSING_MARKERS)

# ---------------------------------------------------------------------------------------------------------
# Headers and units
# ---------------------------------------------------------------------------------------------------------

_BRACKET = re.compile(r"\(([^()]*)\)")
_HEADER_SEPARATORS = re.compile(r"[、,]")  # NFKC has already turned ， into ,

#: Unit spellings that may appear in a header bracket or a title line `单位：...`, mapped to one spelling.
#: A bracket whose text is not a unit (e.g. 当年价格) is ignored; a unit different from the one the variable
#: must have is an error (a table in 亿元 or 人 would otherwise be read 10,000 times off).
UNIT_SPELLINGS: dict[str, str] = {
    "人": "人", "万人": "万人", "千人": "千人", "百人": "百人", "亿人": "亿人",
    "元": "元", "千元": "千元", "万元": "万元", "亿元": "亿元",
    "美元": "美元", "千美元": "千美元", "万美元": "万美元", "亿美元": "亿美元",
    "平方公里": "平方公里", "平方千米": "平方公里", "km2": "平方公里", "公顷": "公顷", "平方米": "平方米",
    "亩": "亩", "%": "%", "‰": "‰", "吨": "吨", "万吨": "万吨", "千吨": "千吨", "公斤": "公斤",
}  # fmt: skip


def normalise_header(text: str) -> str:
    """Header text as matched: NFKC, bracketed parts removed, no whitespace, no `、` `,` `，` separators."""
    out = _nfkc(text)
    while True:  # remove innermost brackets first so nested brackets go too
        stripped = _BRACKET.sub("", out)
        if stripped == out:
            break
        out = stripped
    out = _WHITESPACE.sub("", out)
    return _HEADER_SEPARATORS.sub("", out)


def header_units(text: str) -> list[str]:
    """The units named in the brackets of a header, in canonical spelling (brackets that are not units
    are left out)."""
    units = []
    for inner in _BRACKET.findall(_nfkc(text)):
        key = _WHITESPACE.sub("", inner).removeprefix("单位:")
        if key in UNIT_SPELLINGS:
            units.append(UNIT_SPELLINGS[key])
    return units


_TITLE_UNIT = re.compile(r"单位:(.+)$")


def title_unit(text: str) -> str | None:
    """The unit of a title line such as `单位：万人` (canonical spelling), or None (also for a title that
    names no single unit, such as `单位：见各栏`)."""
    match = _TITLE_UNIT.search(squeeze(text))
    if match is None:
        return None
    return UNIT_SPELLINGS.get(match.group(1))


def canonical_unit(unit: str) -> str:
    """A unit of header_aliases.csv in the spelling of `UNIT_SPELLINGS`."""
    return UNIT_SPELLINGS.get(squeeze(unit), unit)


def title_unit_problems(
    file: str,
    title_rows: Sequence[Sequence[object]],
    table: str,
    found: Mapping[str, int],
    header: Sequence[str],
    aliases: HeaderAliases,
) -> list[Problem]:
    """Problems of the `单位：` lines above the header, in either table.

    A title line naming one unit (`单位：亿元`) states the unit of every column that has no unit of its own
    in brackets; a bracketed unit overrides it for its column. One problem per such title line whose unit
    is not the required unit of some column without brackets (the columns are listed), naming the line
    and the cell. Nothing is converted: the user converts the column or writes its unit in its header.
    `found` maps each variable to its column index in `header`."""
    problems: list[Problem] = []
    for i, row in enumerate(title_rows):
        for j, cell in enumerate(row):
            unit = title_unit(cell) if isinstance(cell, str) else None
            if unit is None:
                continue
            wrong = [
                f"{_column(k, header[k])} ({variable}) must be in {aliases.unit(table, variable)}"
                for variable, k in found.items()
                if not header_units(header[k])
                and canonical_unit(aliases.unit(table, variable)) != unit
            ]
            if wrong:
                problems.append(
                    Problem(
                        file,
                        f"the table says its unit is {unit} ({squeeze(cell)}), which holds for every "
                        f"column without a unit in brackets, but {'; '.join(wrong)}: convert the values "
                        "to the required unit, or write each column's unit in brackets in its header",
                        i + 1,
                        column_letter(j),
                    )
                )
    return problems


@dataclass(frozen=True)
class Alias:
    """One accepted header of a variable (a row of resources/yearbook/header_aliases.csv)."""

    table: str
    variable: str
    header: str
    first_edition: int | None
    last_edition: int | None
    unit: str

    def covers(self, edition: int) -> bool:
        """Whether the header is accepted in `edition`."""
        lo = self.first_edition if self.first_edition is not None else -math.inf
        hi = self.last_edition if self.last_edition is not None else math.inf
        return lo <= edition <= hi

    def overlaps(self, other: Alias) -> bool:
        """Whether the two headers are accepted in at least one common edition."""
        lo = max(self.first_edition or -math.inf, other.first_edition or -math.inf)
        hi = min(self.last_edition or math.inf, other.last_edition or math.inf)
        return lo <= hi

    def editions(self) -> str:
        """The editions in words, for messages."""
        if self.first_edition is None and self.last_edition is None:
            return "all editions"
        if self.first_edition is None:
            return f"editions up to {self.last_edition}"
        if self.last_edition is None:
            return f"editions from {self.first_edition}"
        return f"editions {self.first_edition}-{self.last_edition}"


class HeaderAliases:
    """The accepted headers of every variable, by table and edition.

    Build it with `load_aliases(path)` or `HeaderAliases.from_frame(df)`. Two headers of one table that
    normalise to the same text must not name different variables in overlapping editions.
    """

    def __init__(
        self,
        entries: Iterable[Alias],
        source: str = "header aliases",
        problems: Sequence[Problem] = (),
    ):
        self.entries: tuple[Alias, ...] = tuple(entries)
        self.source = source
        self._by_key: dict[tuple[str, str], list[Alias]] = defaultdict(list)
        for entry in self.entries:
            self._by_key[(entry.table, normalise_header(entry.header))].append(entry)
        problems = list(problems)
        for (table, key), group in self._by_key.items():
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    if a.variable != b.variable and a.overlaps(b):
                        problems.append(
                            Problem(
                                source,
                                f"headers {a.header!r} ({a.variable}) and {b.header!r} ({b.variable}) "
                                f"of table {table} are the same after normalisation ({key!r}) in "
                                "overlapping editions",
                            )
                        )
        for table, required in REQUIRED_VARIABLES.items():
            for variable in required:
                if not any(e.table == table and e.variable == variable for e in self.entries):
                    problems.append(
                        Problem(source, f"no header listed for {table} variable {variable}")
                    )
        if problems:
            raise InputError(problems, f"{source} is not a valid alias table")

    @classmethod
    def from_frame(cls, df: pd.DataFrame, source: str = "header aliases") -> HeaderAliases:
        """Aliases from a frame with the columns of header_aliases.csv (line numbers assume a CSV)."""
        needed = ["table", "variable", "header", "first_edition", "last_edition", "unit"]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise InputError(
                Problem(source, f"missing columns {missing}", line=1), "bad alias table"
            )
        entries, problems = [], []
        for i, row in enumerate(df[needed].itertuples(index=False), start=2):
            table, variable, header, first, last, unit = (_text(v) for v in row)
            if table not in TABLES:
                problems.append(Problem(source, f"unknown table {table!r}", i, "table"))
            elif variable not in REQUIRED_VARIABLES[table] and not (
                table == "employment" and OPTIONAL_VARIABLE.fullmatch(variable)
            ):
                problems.append(
                    Problem(
                        source,
                        f"{variable!r} is neither a required {table} variable "
                        f"({', '.join(REQUIRED_VARIABLES[table])}) nor an optional employment "
                        "column named emp_<lowercase ascii>",
                        i,
                        "variable",
                    )
                )
            if not header:
                problems.append(Problem(source, "empty header", i, "header"))
            editions = []
            for column, value in (("first_edition", first), ("last_edition", last)):
                if value == "":
                    editions.append(None)
                elif re.fullmatch(r"\d{4}", value):
                    editions.append(int(value))
                else:
                    problems.append(Problem(source, f"{value!r} is not a year", i, column))
                    editions.append(None)
            entries.append(Alias(table, variable, header, editions[0], editions[1], unit))
        return cls(entries, source, problems)

    def variables(self, table: str) -> list[str]:
        """Every variable of `table`: the required ones in contract order, then the optional ones."""
        optional = [e.variable for e in self.entries if e.table == table]
        required = list(REQUIRED_VARIABLES[table])
        return required + [v for v in dict.fromkeys(optional) if v not in required]

    def match(self, table: str, edition: int, header: str) -> tuple[Alias | None, list[Alias]]:
        """The alias `header` matches in `edition`, and the aliases it would match in other editions."""
        group = self._by_key.get((table, normalise_header(header)), [])
        now = [a for a in group if a.covers(edition)]
        return (now[0] if now else None), [a for a in group if not a.covers(edition)]

    def accepted(self, table: str, variable: str, edition: int) -> list[str]:
        """The headers accepted for `variable` in `edition`."""
        return [
            e.header
            for e in self.entries
            if e.table == table and e.variable == variable and e.covers(edition)
        ]

    def unit(self, table: str, variable: str) -> str:
        """The unit `variable` must be in."""
        return next(e.unit for e in self.entries if e.table == table and e.variable == variable)

    def label(self, table: str, variable: str) -> str:
        """The newest accepted header of `variable` (used to name optional industries)."""
        entries = [e for e in self.entries if e.table == table and e.variable == variable]
        return max(entries, key=lambda e: e.first_edition or 0).header


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def load_aliases(path: str | Path) -> HeaderAliases:
    """Read resources/yearbook/header_aliases.csv (UTF-8) into `HeaderAliases`."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(io_problem(path, exc), "cannot read the header aliases") from exc
    return HeaderAliases.from_frame(df, source=str(path))


# ---------------------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


#: Footnote signs printed after a number (`5.13*`, `12†`). Besides these, every character of Unicode category
#: No (a numeric character that is not a plain digit: superscripts `¹²³`, subscripts, circled `①`-`⑳`,
#: parenthesised `⑴`, `❶`, fractions) is a footnote marker: NFKC would turn `5.13①` into 5.131.
FOOTNOTE_SIGNS = frozenset("*＊†‡#＃§※")


def _is_footnote_char(char: str) -> bool:
    return char in FOOTNOTE_SIGNS or unicodedata.category(char) == "No"


def footnote_marker(value: object) -> str | None:
    """The footnote marker that ends a text cell holding a number (`'①'` for `5.13①`, `'²'` for `5.13²`,
    `'*'` for `5.13*`), or None. Such a cell is never a number: `parse_number` returns None for it."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    end = len(text)
    while end and _is_footnote_char(text[end - 1]):
        end -= 1
    if end == len(text) or end == 0:
        return None
    number = parse_number(text[:end])
    return text[end:] if number is not None and not math.isnan(number) else None


def parse_number(value: object) -> float | None:
    """A cell as a number: NaN for a missing marker, None when it is neither a number nor missing.

    Accepted: numbers of an XLSX cell; text such as `1234`, `1,234.5`, `-3`, `1.2E+05`, full-width digits
    and separators (NFKC); the minus sign U+2212. A text holding a footnote marker (`FOOTNOTE_SIGNS` or a
    character of Unicode category No such as `①` or `²`) is not a number: it is checked before NFKC, which
    would turn the marker into a digit.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool) or isinstance(value, datetime | date | time):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = _nfkc(str(value)).strip().replace("\u2212", "-")
    if text.casefold() in _MISSING:
        return math.nan
    if any(unicodedata.category(c) == "No" for c in str(value)) or not _NUMBER.fullmatch(text):
        return None
    return float(text.replace(",", ""))


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and squeeze(value) == "")


def _has_value(value: object) -> bool:
    """Whether a cell holds anything but a missing marker."""
    parsed = parse_number(value)
    return parsed is None or not math.isnan(parsed)


def column_letter(index: int) -> str:
    """Spreadsheet column letter of a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column(index: int, header: str) -> str:
    return f"{header} [{column_letter(index)}]" if header else column_letter(index)


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")


class UnreadableFile(Exception):
    """A file that cannot be opened or decoded; carries the Problem to report."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


#: How many cell addresses or line numbers one message lists at most (the rest are counted), so that a
#: message stays short however many rows share a defect.
SHOWN_AT_MOST = 10


def _shown(items: Sequence[str]) -> str:
    """`items` joined by commas, at most `SHOWN_AT_MOST` of them, then "and N more"."""
    text = ", ".join(items[:SHOWN_AT_MOST])
    if len(items) > SHOWN_AT_MOST:
        text += f" and {len(items) - SHOWN_AT_MOST:,} more"
    return text


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_of(text: str, position: int) -> int:
    """The line (1-based; CR, LF and CRLF each end a line) holding character `position` of `text`."""
    return len(_LINE_BREAK.findall(text, 0, position)) + 1


def parse_csv(text: str, file: str) -> list[list[object]]:
    """The records of a decoded CSV text, parsed strictly; UnreadableFile naming the line for a NUL
    character, a quote `"` opened and never closed (whether the file ends first or a cell outgrows the csv
    module's limit of 131,072 characters), or a quote closing a cell that is not followed by a comma or
    the end of the line. Quoted cells may hold line breaks (a header typed on two lines); `read_table`
    rejects them below the header."""
    nul = text.find("\x00")
    if nul >= 0:
        line = _line_of(text, nul)
        raise UnreadableFile(
            Problem(
                file,
                f"{text.count(chr(0)):,} NUL character(s), the first on line {line}: not a plain-text "
                "CSV (a damaged copy, or a UTF-16 file?); save it again as CSV UTF-8",
                line,
            )
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[object]] = []
    while True:
        start = reader.line_num + 1  # the line the next record starts on
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            too_long = "field larger than field limit" in str(exc)
            quoted = '"' in _LINE_BREAK.split(text, maxsplit=start)[start - 1]
            if too_long and not quoted:
                line = start
                msg = (
                    f"a cell on line {line} is longer than {csv.field_size_limit():,} characters, "
                    "which no yearbook cell is: is this file a table exported as CSV?"
                )
            elif too_long or "unexpected end of data" in str(exc):
                what = (
                    "the file ends"
                    if not too_long
                    else f"the cell grows past {csv.field_size_limit():,} characters"
                )
                msg = (
                    f'unbalanced quote: a cell of the row starting on line {start} opens a quote (") '
                    f'that is never closed, so {what} inside it; remove the stray " or close it'
                )
                line = start
            else:
                line = reader.line_num
                msg = (
                    f'malformed quoting on line {line} ({exc}): a quoted cell must end with " right '
                    'before a comma or the end of the line; a quote inside a quoted cell is written ""'
                )
            raise UnreadableFile(Problem(file, msg, line)) from exc
        rows.append(row)


def _check_formulas(path: Path, sheet: str, rows: Sequence[Sequence[object]]) -> None:
    """UnreadableFile if cells of the first sheet hold a formula without a saved result.

    openpyxl reads the result Excel saves with a formula; a program that writes formulas without computing
    them (a script, some exporters) leaves none, and the cell would read as empty. `rows` are the values
    read with data_only=True; only cells empty there are looked up in the formulas."""
    if not any(c is None for row in rows for c in row):
        return
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except OSError as exc:  # the file went away between the two reads
        raise UnreadableFile(io_problem(path, exc)) from exc
    cells: list[str] = []
    try:
        for i, (values, formulas) in enumerate(
            zip(rows, wb.worksheets[0].iter_rows(values_only=True), strict=False)
        ):
            for j, formula in enumerate(formulas):
                empty = j >= len(values) or values[j] is None
                if (
                    empty
                    and formula is not None
                    and not (isinstance(formula, str) and not formula.startswith("="))
                ):
                    cells.append(f"{column_letter(j)}{i + 1}")
    finally:
        wb.close()
    if cells:
        first = re.fullmatch(r"([A-Z]+)(\d+)", cells[0])
        assert first is not None
        raise UnreadableFile(
            Problem(
                str(path),
                f"sheet {sheet!r}: {len(cells):,} cell(s) hold a formula without a saved result, which "
                f"would read as empty: {_shown(cells)}. The file was written by a program that does not "
                "compute formulas: open it in a spreadsheet program (Excel, WPS, LibreOffice) and save "
                "it, or export the sheet as CSV",
                int(first.group(2)),
                first.group(1),
            )
        )


def read_rows(path: str | Path) -> tuple[list[list[object]], str]:
    """All rows of a CSV or the first sheet of an XLSX file, and how it was read (the encoding or "xlsx").

    CSV: decoded as UTF-8 (a BOM is dropped) or, failing that, GB18030 (a superset of GBK and GB2312),
    then parsed by `parse_csv`. XLSX: the values Excel saved; a formula without a saved value is an
    error (`_check_formulas`). Row i of the list is spreadsheet line i + 1 (blank lines included).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except OSError as exc:  # permission denied, a directory, a broken link, a vanished file
            raise UnreadableFile(io_problem(path, exc)) from exc
        except Exception as exc:  # openpyxl raises zipfile/XML errors of many kinds
            raise UnreadableFile(
                Problem(str(path), f"cannot open as an XLSX workbook: {exc}")
            ) from exc
        try:
            rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
            sheet = wb.worksheets[0].title
        finally:
            wb.close()
        _check_formulas(path, sheet, rows)
        return rows, "xlsx"
    if suffix != ".csv":
        raise UnreadableFile(Problem(str(path), "not a .csv or .xlsx file"))
    try:
        data = path.read_bytes()
    except OSError as exc:  # permission denied, a directory, a broken link, a vanished file
        raise UnreadableFile(io_problem(path, exc)) from exc
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return parse_csv(text, str(path)), encoding
    raise UnreadableFile(
        Problem(
            str(path),
            "cannot be decoded as UTF-8 or GB18030/GBK; save it in one of those encodings",
        )
    )


# ---------------------------------------------------------------------------------------------------------
# Plausibility
# ---------------------------------------------------------------------------------------------------------

#: Percent columns: if the median of a table's column is at most 1, the column holds fractions.
PERCENT_VARIABLES = frozenset({"secondary_share", "green_cover"})
#: The bounds of every optional employment column `emp_<ascii>` are the row with this name.
OPTIONAL_BOUNDS = "emp_*"
#: The shipped bounds (`read_table` uses them unless given others).
SHIPPED_BOUNDS = Path(__file__).resolve().parents[4] / "resources" / "yearbook" / "plausibility.csv"
BOUNDS_COLUMNS: tuple[str, ...] = ("variable", "unit", "lower", "upper", "why")


@dataclass(frozen=True)
class Bound:
    """The plausible range [lower, upper] of one raw variable for one city-year, in `unit`."""

    variable: str
    unit: str
    lower: float
    upper: float
    why: str


class PlausibilityBounds:
    """Lower and upper bounds of every raw variable of the yearbook tables (resources/yearbook/
    plausibility.csv): the required variables of both tables and, through the row `emp_*`, every optional
    employment column. Build it with `load_bounds`."""

    def __init__(self, bounds: Mapping[str, Bound], source: str):
        self.bounds = dict(bounds)
        self.source = source

    def __getitem__(self, variable: str) -> Bound:
        if OPTIONAL_VARIABLE.fullmatch(variable):
            return self.bounds[OPTIONAL_BOUNDS]
        return self.bounds[variable]


def load_bounds(path: str | Path, aliases: HeaderAliases | None = None) -> PlausibilityBounds:
    """Read and validate resources/yearbook/plausibility.csv (columns `BOUNDS_COLUMNS`).

    Every required variable of both tables and `emp_*` must have exactly one row; lower and upper are
    finite numbers with 0 <= lower < upper; `why` is not empty; with `aliases`, each unit must be the unit
    header_aliases.csv requires for the variable. Raises InputError naming file, line and column."""
    file = str(path)
    try:
        rows, _ = read_rows(path)
    except UnreadableFile as exc:
        raise InputError(exc.problem, "cannot read the plausibility bounds") from exc
    header = [_text(c) for c in rows[0]] if rows else []
    missing = [c for c in BOUNDS_COLUMNS if c not in header]
    if missing:
        raise InputError(
            Problem(file, f"missing column(s) {', '.join(missing)}", 1), "bad plausibility bounds"
        )
    at = {c: header.index(c) for c in BOUNDS_COLUMNS}
    known = {v: t for t, vs in REQUIRED_VARIABLES.items() for v in vs} | {
        OPTIONAL_BOUNDS: "employment"
    }
    bounds: dict[str, Bound] = {}
    first_line: dict[str, int] = {}  # variable -> its first row
    problems: list[Problem] = []
    for line, row in enumerate(rows[1:], start=2):
        if all(_is_blank(c) for c in row):
            continue
        cell = {c: _text(row[j]) if j < len(row) else "" for c, j in at.items()}
        variable, ok = cell["variable"], True
        if variable not in known:
            problems.append(
                Problem(
                    file,
                    f"{variable!r} is not a raw variable of the yearbook tables (nor {OPTIONAL_BOUNDS})",
                    line,
                    "variable",
                )
            )
            ok = False
        elif variable in first_line:
            problems.append(
                Problem(file, f"bounds repeated (line {first_line[variable]})", line, "variable")
            )
            ok = False
        else:
            first_line[variable] = line
        number = {}
        for column in ("lower", "upper"):
            value = parse_number(cell[column])
            if value is None or not math.isfinite(value):
                problems.append(Problem(file, f"{cell[column]!r} is not a number", line, column))
                ok = False
            number[column] = value
        if ok and not 0 <= number["lower"] < number["upper"]:
            problems.append(
                Problem(file, f"need 0 <= lower < upper {number['upper']:g}", line, "lower")
            )
            ok = False
        if not cell["why"]:
            problems.append(Problem(file, "empty: say why the bounds are safe", line, "why"))
        if ok and aliases is not None:
            units = {
                e.unit
                for e in aliases.entries
                if e.variable == variable
                or (variable == OPTIONAL_BOUNDS and OPTIONAL_VARIABLE.fullmatch(e.variable))
            }
            if units != {cell["unit"]}:
                need = " or ".join(sorted(units))
                problems.append(
                    Problem(file, f"{variable} is in {need} (header_aliases.csv)", line, "unit")
                )
        if ok:
            lower, upper = number["lower"], number["upper"]
            bounds[variable] = Bound(variable, cell["unit"], lower, upper, cell["why"])
    problems += [Problem(file, f"no bounds for {v}") for v in known if v not in first_line]
    raise_if(problems, f"{file} is not a valid table of plausibility bounds")
    return PlausibilityBounds(bounds, file)


@functools.cache
def shipped_bounds() -> PlausibilityBounds:
    """The bounds of resources/yearbook/plausibility.csv, read once."""
    return load_bounds(SHIPPED_BOUNDS)


#: Values of one column listed one by one before the rest is summed up in one problem.
MAX_LISTED = 5


def check_values(
    df: pd.DataFrame,
    file: str,
    table: str,
    columns: Mapping[str, str],
    bounds: PlausibilityBounds,
    header_line: int | None,
) -> list[Problem]:
    """Values outside their plausibility bounds (negative, a zero where `lower` > 0, below `lower`, above
    `upper`), an industry's employment (it_emp, emp_<id>) above total_emp and percent columns holding fractions. `df` has a `line` column and one
    column per variable; `columns` names each variable's column as a message shows it. Past
    `MAX_LISTED` values of one column outside its bounds, one more problem counts the rest and names
    their first lines (a column in another unit would otherwise bury every other problem)."""
    problems: list[Problem] = []
    lines = df["line"].to_numpy()
    for variable, column in columns.items():
        values = df[variable].to_numpy(dtype=float)
        bound = bounds[variable]
        unit = f" {bound.unit}"
        outside = (values < bound.lower) | (values > bound.upper)  # NaN compares False
        bad_values, bad_lines = values[outside], lines[outside]
        for value, line in zip(bad_values[:MAX_LISTED], bad_lines[:MAX_LISTED], strict=True):
            if value < 0:
                msg = f"negative value {value:g}"
            elif value == 0:
                msg = f"{variable} is 0, which no city has; write a missing marker if unknown"
            else:
                side = "below" if value < bound.lower else "above"
                limit = bound.lower if value < bound.lower else bound.upper
                msg = (
                    f"implausible {variable} {value:,.15g} ({side} {limit:,.15g}{unit} for one city, "
                    f"{Path(bounds.source).name}): is the unit{unit} as required?"
                )
            problems.append(Problem(file, msg, int(line), column))
        if len(bad_values) > MAX_LISTED:  # a column in another unit: one problem for the rest
            rest = bad_lines[MAX_LISTED:]
            shown = ", ".join(str(int(x)) for x in rest[:MAX_LISTED])
            problems.append(
                Problem(
                    file,
                    f"and {len(rest)} more values of {variable} outside [{bound.lower:,.15g}, "
                    f"{bound.upper:,.15g}]{unit} (lines {shown}{', ...' if len(rest) > MAX_LISTED else ''})"
                    f": is the whole column in another unit?",
                    int(rest[0]),
                    column,
                )
            )
        if variable in PERCENT_VARIABLES and np.isfinite(values).any():
            median = float(np.nanmedian(values))
            if median <= 1.0:
                problems.append(
                    Problem(
                        file,
                        f"{variable} looks like fractions (median {median:g}); percent is required",
                        header_line,
                        column,
                    )
                )
    if table == "employment" and "total_emp" in columns:
        # every industry's employment is part of the total: IT (the study's outcome) and each emp_<id>
        # (any may be the outcome industry)
        industries = [v for v in columns if v == "it_emp" or v.startswith("emp_")]
        for variable in industries:
            over = df[variable] > df["total_emp"]
            for line, value, total in df.loc[over, ["line", variable, "total_emp"]].itertuples(
                index=False
            ):
                problems.append(
                    Problem(
                        file,
                        f"{variable} {value:g} is greater than total_emp {total:g}",
                        int(line),
                        columns[variable],
                    )
                )
    return problems


# ---------------------------------------------------------------------------------------------------------
# One table
# ---------------------------------------------------------------------------------------------------------


def _width(row: Sequence[object]) -> int:
    """The number of cells up to the last non-blank one (trailing empty cells do not count)."""
    n = len(row)
    while n and _is_blank(row[n - 1]):
        n -= 1
    return n


@dataclass
class RowShapes:
    """The widths of the rows of a table that hold values, checked against its header row.

    `positional` is True for XLSX, whose cells keep their column: a row there cannot lose a cell in the
    middle, and a short row only means empty cells at its end. In a CSV a cell is placed by counting
    commas, so a row with fewer cells than the header (a cell missing in the middle, or a line cut short)
    would read values from the neighbouring column."""

    header: Sequence[object]
    positional: bool
    rows: list[tuple[int, int, int]] = field(default_factory=list)  # (line, cells, width)

    def add(self, line: int, row: Sequence[object]) -> None:
        self.rows.append((line, len(row), _width(row)))

    def problems(self, file: str, header_line: int) -> list[Problem]:
        """A header with more cells than any row reaches (one problem on the header line), else one
        problem per row with a value beyond the header's last cell or, in a CSV, fewer cells than the
        header."""
        width = _width(self.header)
        if not self.rows or width == 0:
            return []
        reach = max(w if self.positional else n for _, n, w in self.rows)
        if reach < width:
            last = _column(width - 1, str(self.header[width - 1]).strip())
            return [
                Problem(
                    file,
                    f"the header has {width} cells but no row below it reaches column {last} (the rows "
                    f"have at most {reach}): a header cell too many puts every header after it over its "
                    "neighbour's values. Delete the extra header cell; if the column is really empty, "
                    "write a missing marker (—) in its cells",
                    header_line,
                    last,
                )
            ]
        out = []
        for line, n, w in self.rows:
            if w > width:
                out.append(
                    Problem(
                        file,
                        f"this row has {w} cells but the header only {width}: a cell too many (an "
                        "unquoted comma inside a number such as 1,234 or inside a name?) shifts the values "
                        'after it; quote the cell ("1,234") or delete the extra cell',
                        line,
                        column_letter(width),
                    )
                )
            elif n < width and not self.positional:
                out.append(
                    Problem(
                        file,
                        f"this row has {n} cells but the header has {width}: a cell is missing (or the line "
                        "is cut short), so the values after it would be read from the neighbouring "
                        "columns; write an empty cell (two commas in a row) or a missing marker (—) "
                        "where a value is missing",
                        line,
                        _column(n, str(self.header[n]).strip()),
                    )
                )
        return out


def _record_lines(rows: Sequence[Sequence[object]]) -> list[int]:
    """For a CSV, the line of the file on which each record starts (records whose quoted cells hold line
    breaks span several lines, so a text editor counts differently from a spreadsheet)."""
    starts, line = [], 1
    for row in rows:
        starts.append(line)
        line += 1 + sum(len(_LINE_BREAK.findall(c)) for c in row if isinstance(c, str))
    return starts


def _ends_inside_line(path: str | Path) -> bool:
    """Whether a file's last byte is not a line break (CR or LF are single bytes in UTF-8 and GB18030).
    An OSError propagates (the caller reports it with `io_problem`)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) not in (b"\n", b"\r")


@dataclass
class TableStats:
    """What reading one table did (for the manifest and the log)."""

    file: str
    table: str
    edition: int
    read_as: str = ""
    header_line: int | None = None
    rows_read: int = 0  # non-blank lines below the header
    rows_kept: int = 0  # city rows returned
    skipped: dict[str, int] = field(default_factory=dict)  # note/total/province/label/blank
    ignored_columns: list[str] = field(default_factory=list)
    unmatched_labels: list[tuple[int, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # variable -> column, as messages name it

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


def _classify_name(name: str) -> str | None:
    """'note', 'total' or 'province' for a row name that is not a city, else None."""
    if name.startswith(NOTE_PREFIXES):
        return "note"
    if name in TOTAL_ROW_NAMES:
        return "total"
    if name in PROVINCE_NAMES or name.endswith(("省", "自治区", "特别行政区")):
        return "province"
    return None


def _find_header(rows: Sequence[Sequence[object]]) -> int | None:
    non_blank = 0
    for i, row in enumerate(rows):
        if all(_is_blank(c) for c in row):
            continue
        if row and isinstance(row[0], str) and squeeze(row[0]) in HEADER_FIRST_CELLS:
            return i
        non_blank += 1
        if non_blank > MAX_TITLE_LINES:
            return None
    return None


def read_table(
    path: str | Path,
    table: Table,
    edition: int,
    aliases: HeaderAliases,
    crosswalk: Mapping[str, str],
    bounds: PlausibilityBounds | None = None,
    required: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[Problem], TableStats]:
    """Read one yearbook table and validate it on its own.

    `required`: optional variables of `table` that this read needs as well (the outcome industry's
    employment, config `outcome_industry`): a missing column is an error as for the required ones.

    Returns the city rows (columns `city_code`, `name` as printed, `line`, then one float column per
    variable found, required ones first), every problem found (unreadable file, no header row, missing or
    duplicated required column, unit in a header bracket or in a `单位：` title line other than the required
    one, unknown city, duplicated city, non-numeric cell, negative, zero or implausible value, it_emp >
    total_emp), and `TableStats`. `crosswalk` maps `normalise_name(name)` to a 6-digit city code.
    Columns whose header matches no alias are ignored and listed in the stats. `bounds` are the
    plausibility bounds of the values (default: the shipped resources/yearbook/plausibility.csv).
    """
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}, not {table!r}")
    file = str(path)
    stats = TableStats(file=file, table=table, edition=edition)
    empty = pd.DataFrame(columns=["city_code", "name", "line"])
    try:
        rows, stats.read_as = read_rows(path)
    except UnreadableFile as exc:
        return empty, [exc.problem], stats

    h = _find_header(rows)
    if h is None:
        first = ", ".join(sorted(HEADER_FIRST_CELLS))
        msg = (
            f"no header row: none of the first {MAX_TITLE_LINES + 1} non-blank lines has {first} "
            "in its first cell (column A)"
        )
        return empty, [Problem(file, msg, None, "A")], stats
    stats.header_line = h + 1
    header = ["" if c is None else str(c).strip() for c in rows[h]]
    problems: list[Problem] = []

    # Columns -> variables.
    found: dict[str, int] = {}
    other_editions: dict[str, list[tuple[str, Alias]]] = defaultdict(list)
    for j, text in enumerate(header[1:], start=1):
        if not text:
            continue
        alias, elsewhere = aliases.match(table, edition, text)
        if alias is None:
            for a in elsewhere:
                other_editions[a.variable].append((text, a))
            stats.ignored_columns.append(_column(j, text))
            continue
        if alias.variable in found:
            k = found[alias.variable]
            problems.append(
                Problem(
                    file,
                    f"two columns give {alias.variable}: {_column(k, header[k])} and this one",
                    h + 1,
                    _column(j, text),
                )
            )
            continue
        found[alias.variable] = j
        required_unit = canonical_unit(alias.unit)
        for unit in header_units(text):
            if unit != required_unit:
                problems.append(
                    Problem(
                        file,
                        f"the header says the unit is {unit}; {alias.variable} must be in {alias.unit}",
                        h + 1,
                        _column(j, text),
                    )
                )
    for variable in dict.fromkeys([*REQUIRED_VARIABLES[table], *required]):
        if variable in found:
            continue
        accepted = " or ".join(repr(x) for x in aliases.accepted(table, variable, edition))
        msg = f"no column for {variable}; accepted headers in edition {edition}: {accepted}"
        for text, a in other_editions.get(variable, []):
            msg += f" (column {text!r} is the header of {a.editions()}, not of {edition})"
        msg += (
            "; a bracketed unit, spaces and the separators 、 , ， are ignored; other spellings can be "
            "added to resources/yearbook/header_aliases.csv"
        )
        problems.append(Problem(file, msg, h + 1, None))
    problems += title_unit_problems(file, rows[:h], table, found, header, aliases)
    variables = [v for v in aliases.variables(table) if v in found]
    columns = {v: _column(found[v], header[found[v]]) for v in variables}
    stats.columns = columns
    name_column = _column(0, header[0])

    # Rows.
    records: list[dict[str, object]] = []
    empty_city_rows: list[dict[str, object]] = []
    unknown: list[Problem] = []
    is_csv = stats.read_as != "xlsx"
    shapes = RowShapes(rows[h], positional=not is_csv)
    starts: list[int] | None = None  # lines of the file where CSV records start, when needed
    last_value_row = None
    for i in range(h + 1, len(rows)):
        row = rows[i]
        line = i + 1
        if all(_is_blank(c) for c in row):
            stats.skip("blank")
            continue
        stats.rows_read += 1
        raw_name = "" if not row or row[0] is None else str(row[0]).strip()
        name = squeeze(raw_name)
        has_values = any(_has_value(c) for c in row[1:])
        kind = _classify_name(name) if name else None
        breaks = sum(len(_LINE_BREAK.findall(c)) for c in row if isinstance(c, str))
        if breaks and is_csv and kind != "note":
            starts = starts or _record_lines(rows)
            problems.append(
                Problem(
                    file,
                    f"a cell of this row holds a line break (the row runs over lines {starts[i]}-"
                    f'{starts[i] + breaks} of the file): names and values never do, so a quote (") '
                    "opened here swallows the lines below it; remove the stray quote or the line break",
                    line,
                )
            )
        code = crosswalk.get(normalise_name(raw_name)) if name else None
        if kind in ("note", "total") or (kind == "province" and code is None and not has_values):
            stats.skip(kind)
            continue
        if has_values:  # a row whose values are read: its cells must line up with the header
            shapes.add(line, row)
            last_value_row = i
        if code is None:
            if not name:
                if has_values:
                    problems.append(
                        Problem(file, "a row with values has no city name", line, name_column)
                    )
                else:
                    stats.skip("label")
                continue
            if not has_values:
                stats.skip("label")
                stats.unmatched_labels.append((line, raw_name))
                continue
            if kind == "province":
                msg = (
                    f"{raw_name!r} is a province but its row holds values; province totals are not "
                    "accepted: delete the row or its values"
                )
            else:
                msg = (
                    f"unknown city name {raw_name!r} (normalised {normalise_name(raw_name)!r}): not a city "
                    "of the city master list; if it is a historical or variant name, add it to "
                    "resources/cities/name_crosswalk.csv"
                )
            unknown.append(Problem(file, msg, line, name_column))
            continue
        record: dict[str, object] = {"city_code": code, "name": raw_name, "line": line}
        for variable in variables:
            j = found[variable]
            cell = row[j] if j < len(row) else None
            value = parse_number(cell)
            if value is None:
                marker = footnote_marker(cell)
                msg = (
                    f"{cell!r} is not a number (missing values are written as empty, —, -, …, .. or NA)"
                    if marker is None
                    else f"{cell!r} ends with the footnote marker {marker!r}, which is never read as "
                    "part of the number (NFKC would turn ① or ² into a digit): delete the marker and "
                    "keep the note in a note row (注…)"
                )
                problems.append(Problem(file, msg, line, columns[variable]))
                value = math.nan
            record[variable] = value
        (records if has_values else empty_city_rows).append(record)
    problems.extend(unknown)
    problems.extend(shapes.problems(file, h + 1))
    if (
        is_csv
        and last_value_row is not None
        and all(all(_is_blank(c) for c in r) for r in rows[last_value_row + 1 :])
    ):
        try:
            cut = _ends_inside_line(path)
        except OSError as exc:  # the file went away after it was read
            problems.append(io_problem(path, exc))
            cut = False
        if cut:
            problems.append(
                Problem(
                    file,
                    "the file ends inside this row, without a line break: was it cut short? Its last "
                    "value may be incomplete. If the row is complete, end it with a line break",
                    last_value_row + 1,
                )
            )

    # A city row without values is dropped when the city also has a row with values.
    with_values = {r["city_code"] for r in records}
    for record in empty_city_rows:
        if record["city_code"] in with_values:
            stats.skip("label")
        else:
            records.append(record)
            with_values.add(record["city_code"])
    records.sort(key=lambda r: r["line"])
    lines_by_code: dict[object, list[dict[str, object]]] = defaultdict(list)
    for r in records:
        lines_by_code[r["city_code"]].append(r)
    for code, group in lines_by_code.items():
        if len(group) > 1:
            where = _shown([f"line {r['line']} ({r['name']})" for r in group])
            problems.append(
                Problem(
                    file,
                    f"city {code} appears more than once in this table ({len(group):,} rows): {where}",
                    int(group[1]["line"]),  # type: ignore[arg-type]
                    name_column,
                )
            )
    df = pd.DataFrame.from_records(records, columns=["city_code", "name", "line", *variables])
    df = df.astype({"line": "int64", **{v: "float64" for v in variables}})
    bounds = shipped_bounds() if bounds is None else bounds
    problems.extend(check_values(df, file, table, columns, bounds, stats.header_line))
    stats.rows_kept = len(df)
    if stats.unmatched_labels:
        log.warning(
            "%s: rows without values whose name matches no city were skipped: %s",
            file,
            ", ".join(f"line {ln} {nm!r}" for ln, nm in stats.unmatched_labels),
        )
    if stats.ignored_columns:
        log.info("%s: columns matching no alias were ignored: %s", file, stats.ignored_columns)
    return df, problems, stats


# ---------------------------------------------------------------------------------------------------------
# patents.csv
# ---------------------------------------------------------------------------------------------------------

PATENT_COLUMNS: tuple[str, ...] = ("city_code", "year", "digital_patents", "green_patents")


@dataclass
class PatentStats:
    """What reading patents.csv did."""

    file: str
    read_as: str = ""
    rows_read: int = 0
    rows_kept: int = 0  # rows inside the window
    outside_window: int = 0


def read_patents(
    path: str | Path, known_codes: Iterable[str], years: tuple[int, int]
) -> tuple[pd.DataFrame, list[Problem], PatentStats]:
    """Read patents.csv (UTF-8, BOM allowed): columns city_code, year, digital_patents, green_patents.

    Problems: missing column, a city_code that is not 6 digits or not in the city master, a year that is not
    an integer, a count that is not a non-negative integer (`3.0` is accepted; an empty cell or another
    missing marker is a missing count, like an absent row), a duplicated city-year. Rows outside `years`
    are dropped after validation and counted. Returns rows with city_code (str), year (int), the two
    counts (float, NaN when missing).
    """
    file = str(path)
    stats = PatentStats(file=file)
    cols = list(PATENT_COLUMNS)
    empty = pd.DataFrame(columns=cols)
    try:
        rows, stats.read_as = read_rows(path)
    except UnreadableFile as exc:
        return empty, [exc.problem], stats
    if not rows:
        return empty, [Problem(file, f"empty file; expected the header {','.join(cols)}", 1)], stats
    header = [squeeze(str(c)).lower() for c in rows[0]]
    missing = [c for c in cols if c not in header]
    if missing:
        return empty, [Problem(file, f"missing column(s) {', '.join(missing)}", 1)], stats
    index = {c: header.index(c) for c in cols}
    known = set(known_codes)
    problems: list[Problem] = []
    records = []
    seen: dict[tuple[str, int], list[int]] = {}
    shapes = RowShapes(rows[0], positional=stats.read_as == "xlsx")
    for i, row in enumerate(rows[1:], start=2):
        if all(_is_blank(c) for c in row):
            continue
        stats.rows_read += 1
        shapes.add(i, row)
        cell = {c: (row[j] if j < len(row) else "") for c, j in index.items()}
        code = squeeze(str(cell["city_code"]))
        ok = True
        if not re.fullmatch(r"\d{6}", code):
            problems.append(Problem(file, f"{code!r} is not a 6-digit city code", i, "city_code"))
            ok = False
        elif code not in known:
            problems.append(Problem(file, f"unknown city_code {code}", i, "city_code"))
            ok = False
        year_value = parse_number(cell["year"])
        if year_value is None or math.isnan(year_value) or not float(year_value).is_integer():
            problems.append(Problem(file, f"{cell['year']!r} is not a year", i, "year"))
            ok = False
        counts = {}
        for c in ("digital_patents", "green_patents"):
            value = parse_number(cell[c])
            if value is None or (not math.isnan(value) and not value.is_integer()):
                problems.append(Problem(file, f"{cell[c]!r} is not an integer count", i, c))
                ok = False
            elif value < 0:
                problems.append(Problem(file, f"negative count {value:g}", i, c))
                ok = False
            counts[c] = value
        if not ok:
            continue
        year = int(year_value)  # type: ignore[arg-type]
        if (code, year) in seen:
            seen[(code, year)].append(i)
            continue
        seen[(code, year)] = [i]
        if not years[0] <= year <= years[1]:
            stats.outside_window += 1
            continue
        records.append({"city_code": code, "year": year, **counts})
    problems.extend(shapes.problems(file, 1))
    for (code, year), lines in seen.items():
        if len(lines) > 1:
            problems.append(
                Problem(
                    file,
                    f"city {code} year {year} appears more than once: lines {lines[0]} and {lines[1]}"
                    if len(lines) == 2
                    else f"city {code} year {year} appears more than once ({len(lines):,} rows): "
                    f"lines {_shown([str(x) for x in lines])}",
                    lines[1],
                    "city_code",
                )
            )
    df = pd.DataFrame.from_records(records, columns=cols)
    df = df.astype({"year": "int64", "digital_patents": "float64", "green_patents": "float64"})
    stats.rows_kept = len(df)
    if stats.outside_window:
        log.info("%s: %d rows outside %d-%d ignored", file, stats.outside_window, *years)
    return df, problems, stats
