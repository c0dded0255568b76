"""Tiny raw-data fixtures for tests of dualpilot.data.yearbook and dualpilot.data.panel.

Everything is written into a test's tmp_path: a city master of eight cities, a name crosswalk, an
exchange-rate table, yearbook tables in any encoding or as XLSX, patents.csv, and whole raw directories
laid out as the raw-data contract says. Values are deterministic functions of (city, year) so tests can
recompute every derived variable independently. Nothing here depends on the demo generator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from dualpilot.data.reference import load_city_master, load_name_crosswalk, load_usd_cny
from dualpilot.data.yearbook import HeaderAliases, load_aliases

REPO = Path(__file__).resolve().parents[1]
ALIASES_PATH = REPO / "resources" / "yearbook" / "header_aliases.csv"

# city_code, city_name, province_code, province, region4, region3, unit_type, is_municipality,
# is_provincial_capital, first_year, last_year
MASTER_ROWS: list[tuple[object, ...]] = [
    ("110000", "北京市", "110000", "北京市", "east", "east", "直辖市", 1, 0, 2006, 2023),
    ("130100", "石家庄市", "130000", "河北省", "east", "east", "地级市", 0, 1, 2006, 2023),
    ("130200", "唐山市", "130000", "河北省", "east", "east", "地级市", 0, 0, 2006, 2023),
    ("220200", "吉林市", "220000", "吉林省", "northeast", "central", "地级市", 0, 0, 2006, 2023),
    ("341400", "巢湖市", "340000", "安徽省", "central", "central", "地级市", 0, 0, 2006, 2010),
    ("420600", "襄阳市", "420000", "湖北省", "central", "central", "地级市", 0, 0, 2006, 2023),
    ("520500", "毕节市", "520000", "贵州省", "west", "west", "地级市", 0, 0, 2011, 2023),
    ("530800", "普洱市", "530000", "云南省", "west", "west", "地级市", 0, 0, 2006, 2023),
]
MASTER_COLUMNS = [
    "city_code", "city_name", "province_code", "province", "region4", "region3", "unit_type",
    "is_municipality", "is_provincial_capital", "first_year", "last_year",
]  # fmt: skip
HISTORICAL = [
    ("襄樊市", "420600", 2006, 2009),
    ("思茅市", "530800", 2006, 2006),
    ("毕节地区", "520500", 2006, 2010),
]
CODES = [r[0] for r in MASTER_ROWS]

OLD_IT = "信息传输、计算机服务和软件业"
NEW_IT = "信息传输、软件和信息技术服务业"
EMPLOYMENT_VARIABLES = ("total_emp", "it_emp", "emp_zhizao")
ECONOMY_HEADER: dict[str, str] = {
    "gdp": "地区生产总值(万元)",
    "population": "年末户籍人口(万人)",
    "area": "行政区域土地面积(平方公里)",
    "secondary_share": "第二产业占地区生产总值的比重(%)",
    "fiscal_exp": "地方一般公共预算支出(万元)",
    "fdi": "当年实际使用外资金额(万美元)",
    "loans": "年末金融机构各项贷款余额(万元)",
    "students": "普通高等学校在校学生数(人)",
    "so2": "工业二氧化硫排放量(吨)",
    "green_cover": "建成区绿化覆盖率(%)",
}
USD_CNY = {y: 8.0 - 0.1 * (y - 2006) for y in range(2006, 2024)}


def write_reference(folder: Path) -> tuple[Path, Path, Path]:
    """Write city_master.csv, name_crosswalk.csv and usd_cny.csv of the tiny city set into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    master = pd.DataFrame(MASTER_ROWS, columns=MASTER_COLUMNS).assign(note="")
    master_path = folder / "city_master.csv"
    master.to_csv(master_path, index=False)
    rows = []
    for code, name, *_rest, first, last in MASTER_ROWS:
        rows.append((name, code, "official", first, last, "test"))
        rows.append((name.removesuffix("市"), code, "short", "", "", "test"))
    for name, code, first, last in HISTORICAL:
        rows.append((name, code, "historical", first, last, "test"))
    crosswalk_path = folder / "name_crosswalk.csv"
    pd.DataFrame(
        rows, columns=["name", "city_code", "kind", "first_year", "last_year", "source"]
    ).to_csv(crosswalk_path, index=False)
    rate_path = folder / "usd_cny.csv"
    pd.DataFrame({"year": list(USD_CNY), "cny_per_usd": list(USD_CNY.values())}).to_csv(
        rate_path, index=False
    )
    return master_path, crosswalk_path, rate_path


def load_reference(folder: Path) -> tuple[pd.DataFrame, dict[str, str], pd.Series, HeaderAliases]:
    """Write and load (with the real loaders) master, crosswalk, exchange rates and the shipped aliases."""
    master_path, crosswalk_path, rate_path = write_reference(folder)
    master = load_city_master(master_path)
    crosswalk = load_name_crosswalk(crosswalk_path, valid_codes=master["city_code"])
    return master, crosswalk, load_usd_cny(rate_path), load_aliases(ALIASES_PATH)


def values(code: str, year: int) -> dict[str, float]:
    """Deterministic raw values of a city-year, in the contract's units (employment in 万人)."""
    k = CODES.index(code) + 1
    t = year - 2000
    total = 40.0 + 7.0 * k + 0.5 * t
    return {
        "total_emp": total,
        "it_emp": round(total * (0.01 + 0.003 * k + 0.0005 * t), 4),
        "emp_zhizao": round(total * 0.3, 4),
        "gdp": 1.0e6 * k + 5.0e4 * t,
        "population": 300.0 + 40.0 * k,
        "area": 5000.0 + 1000.0 * k,
        "secondary_share": 40.0 + k,
        "fiscal_exp": 1.5e5 * k + 1.0e4 * t,
        "fdi": 1.0e4 * k + 100.0 * t,
        "loans": 8.0e5 * k + 3.0e4 * t,
        "students": 2.0e4 * k + 500.0 * t,
        "so2": 3.0e4 + 1.0e3 * k,
        "green_cover": 35.0 + 0.5 * k,
    }


def patent_counts(code: str, year: int) -> tuple[int, int]:
    """Deterministic (digital_patents, green_patents) of a city-year."""
    k = CODES.index(code) + 1
    return 10 * k + (year - 2000), 5 * k + 2 * (year - 2000)


def printed_name(code: str, year: int) -> str:
    """The name a yearbook of data year `year` prints: historical names before a rename, mixed spellings."""
    if code == "420600" and year < 2010:
        return "襄樊"
    if code == "530800" and year < 2007:
        return "思茅市"
    spelled = {"110000": "北　京", "130100": "石 家 庄", "130200": "唐山市"}
    name = next(r[1] for r in MASTER_ROWS if r[0] == code)
    return spelled.get(code, name.removesuffix("市"))


def employment_header(edition: int, *, it_header: str | None = None) -> list[str]:
    """Header row of an employment table of `edition` (the IT header changes with the 2013 edition)."""
    it = it_header or (OLD_IT if edition <= 2012 else NEW_IT)
    return ["地区", "年末单位从业人员数(万人)", it, "制造业"]


def economy_header() -> list[str]:
    """Header row of an economy table."""
    return ["城市", *ECONOMY_HEADER.values()]


def _fmt(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".") if x >= 1000 else f"{x:g}"


def data_row(table: str, code: str, year: int, override: dict[str, object] | None = None) -> list:
    """A city row of `table` for data year `year` (values as printed text, large ones with separators)."""
    v: dict[str, object] = {k: _fmt(x) for k, x in values(code, year).items()}
    v.update(override or {})
    names = EMPLOYMENT_VARIABLES if table == "employment" else tuple(ECONOMY_HEADER)
    return [printed_name(code, year), *(v[n] for n in names)]


def write_table(
    path: Path,
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    titles: Sequence[str] = (),
    encoding: str = "utf-8",
) -> Path:
    """Write title lines, the header and rows as CSV in `encoding` (e.g. utf-8, utf-8-sig, gb18030) or,
    when `path` ends in .xlsx, as the first sheet of a workbook (numeric text stays text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[list[object]] = [[t] for t in titles] + [list(header)] + [list(r) for r in rows]
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        for line in lines:
            ws.append(line)
        wb.save(path)
        return path
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_patents(path: Path, rows: Iterable[Sequence[object]]) -> Path:
    """Write patents.csv with the contract's header and `rows`."""
    return write_table(path, ["city_code", "year", "digital_patents", "green_patents"], rows)


def write_raw_dir(
    root: Path,
    years: tuple[int, int],
    *,
    codes: Sequence[str] = tuple(CODES),
    fmt: Callable[[str, int], str] = lambda table, edition: "csv",
    drop: Iterable[tuple[str, str, int]] = (),
    override: dict[tuple[str, str, int], dict[str, object]] | None = None,
    patents: bool = True,
) -> Path:
    """Write a complete raw directory for data years `years` and return it.

    Each table has two title lines, a province heading, a total row and a note row. A city appears in a
    year inside its life in the tiny master (巢湖 to 2010, 毕节 from 2011). `fmt(table, edition)` picks
    "csv", "gb18030" (a GB18030 CSV) or "xlsx"; `drop` lists (table, code, year) rows to leave out;
    `override` replaces printed cells of (table, code, year).
    """
    drop = set(drop)
    override = override or {}
    life = {r[0]: (r[9], r[10]) for r in MASTER_ROWS}
    for edition in range(years[0] + 1, years[1] + 2):
        year = edition - 1
        for table in ("employment", "economy"):
            rows: list[list[object]] = [["河北省"], ["全国", *["1"] * 3]]
            for code in codes:
                first, last = life[code]
                if first <= year <= last and (table, code, year) not in drop:
                    rows.append(data_row(table, code, year, override.get((table, code, year))))
            rows.append(["注：本表为测试数据"])
            header = employment_header(edition) if table == "employment" else economy_header()
            kind = fmt(table, edition)
            suffix = "xlsx" if kind == "xlsx" else "csv"
            encoding = "gb18030" if kind == "gb18030" else "utf-8"
            titles = (
                ["2-6 按行业分城镇单位从业人员", "单位：万人"]
                if table == "employment"
                else ["2-1 综合"]
            )
            write_table(
                root / table / f"ccsy_{edition}.{suffix}",
                header,
                rows,
                titles=titles,
                encoding=encoding,
            )
    if patents:
        write_patents(
            root / "patents.csv",
            [
                (code, y, *patent_counts(code, y))
                for code in codes
                for y in range(years[0], years[1] + 1)
            ],
        )
    return root
