"""Tests of the shipped reference resources and their loaders (dualpilot.data.reference)."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualpilot.core.errors import InputError
from dualpilot.data.reference import (
    load_city_master,
    load_name_crosswalk,
    load_pilot_list,
    load_smart_city_batches,
    load_usd_cny,
    normalise_name,
)

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "resources"
SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(
    not (SHARED / "data").is_dir(), reason=f"shared reference data not found at {SHARED}"
)

MASTER = RES / "cities/city_master.csv"
CROSSWALK = RES / "cities/name_crosswalk.csv"
_CROSSWALK_ROWS = pd.read_csv(CROSSWALK, dtype=str, keep_default_na=False)
_CROSSWALK_MAP = load_name_crosswalk(CROSSWALK)


@pytest.fixture(scope="module")
def master() -> pd.DataFrame:
    return load_city_master(MASTER)


@pytest.fixture(scope="module")
def crosswalk(master: pd.DataFrame) -> dict[str, str]:
    return load_name_crosswalk(CROSSWALK, valid_codes=master["city_code"])


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


# --- normalise_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("北京市", "北京"),
        ("北京", "北京"),
        ("北　京", "北京"),  # U+3000 ideographic space
        ("石 家 庄", "石家庄"),
        (" 襄樊市 ", "襄樊"),
        ("\t乌鲁木齐\u00a0市\n", "乌鲁木齐"),  # tab, no-break space, newline
        ("吉林省", "吉林省"),
        ("毕节地区", "毕节地区"),
        ("ＡＢ市", "AB"),  # full-width letters folded by NFKC
        ("市中区", "市中区"),  # only a trailing 市 goes
        ("市市", "市"),  # and only one of them
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_normalise_name_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="expects a str"):
        normalise_name(None)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_padded_names_resolve_to_the_same_code(data: st.DataObject) -> None:
    """Any crosswalk name padded with ASCII/full-width spaces anywhere maps to the same code."""
    xw, mapping = _CROSSWALK_ROWS, _CROSSWALK_MAP
    i = data.draw(st.integers(0, len(xw) - 1))
    name, code = xw["name"].iloc[i], xw["city_code"].iloc[i]
    pads = data.draw(
        st.lists(
            st.sampled_from([" ", "\u3000", "  ", "\t"]),
            min_size=len(name) + 1,
            max_size=len(name) + 1,
        )
    )
    padded = "".join(p + c for p, c in zip(pads, name, strict=False)) + pads[-1]
    assert mapping[normalise_name(padded)] == code


# --- city master ------------------------------------------------------------------------------


def test_master_shape_and_types(master: pd.DataFrame) -> None:
    assert len(master) == 299
    assert master["city_code"].is_unique
    assert master["city_code"].str.fullmatch(r"\d{6}").all()
    assert list(master.columns[:3]) == ["city_code", "city_name", "province_code"]
    assert set(master["unit_type"]) == {"地级市", "直辖市"}
    munis = master.loc[master["is_municipality"] == 1, "city_name"]
    assert sorted(munis) == sorted(["北京市", "天津市", "上海市", "重庆市"])
    assert MASTER.read_bytes()[:3] != b"\xef\xbb\xbf", "city master must be UTF-8 without BOM"


def test_master_counts_by_year(master: pd.DataFrame) -> None:
    """Counts of 地级市 + 直辖市 per year from the shared README, with 莱芜 kept in 2018."""
    expected = {y: 287 for y in range(2006, 2011)}
    expected |= {2011: 288, 2012: 289, 2013: 290, 2014: 292, 2015: 295, 2016: 297, 2017: 298}
    expected |= {2018: 298}  # 297 in the yescallop list + 莱芜 (our convention, see README)
    expected |= {y: 297 for y in range(2019, 2024)}
    for year, n in expected.items():
        alive = (master["first_year"] <= year) & (master["last_year"] >= year)
        assert alive.sum() == n, year


def test_master_conventions(master: pd.DataFrame) -> None:
    m = master.set_index("city_code")
    assert (m.loc["371200", ["city_name", "last_year"]] == ["莱芜市", 2018]).all()
    assert (m.loc["341400", ["city_name", "last_year"]] == ["巢湖市", 2010]).all()
    assert m.loc["420600", "city_name"] == "襄阳市"
    assert m.loc["530800", "city_name"] == "普洱市"
    upgraded = {
        "520500": 2011,
        "520600": 2011,
        "460300": 2012,
        "630200": 2013,
        "540200": 2014,
        "540300": 2014,
        "540400": 2015,
        "650400": 2015,
        "460400": 2015,
        "540500": 2016,
        "650500": 2016,
        "540600": 2017,
    }
    assert m.loc[list(upgraded), "first_year"].to_dict() == upgraded
    late = m.index[m["first_year"] > 2006]
    assert sorted(late) == sorted(upgraded)
    assert all(m.loc[c, "note"] for c in [*upgraded, "371200", "341400"])


def test_master_regions(master: pd.DataFrame) -> None:
    by_prov = master.groupby("province")[["region4", "region3"]].agg(set)
    assert by_prov.loc["辽宁省"].tolist() == [{"northeast"}, {"east"}]
    assert by_prov.loc["吉林省"].tolist() == [{"northeast"}, {"central"}]
    assert by_prov.loc["黑龙江省"].tolist() == [{"northeast"}, {"central"}]
    assert by_prov.loc["广西壮族自治区"].tolist() == [{"west"}, {"west"}]
    assert by_prov.loc["海南省"].tolist() == [{"east"}, {"east"}]
    assert len(by_prov) == 31
    assert (by_prov.map(len) == 1).all().all()


def test_master_capitals(master: pd.DataFrame) -> None:
    caps = master[master["is_provincial_capital"] == 1]
    assert len(caps) == 27
    assert caps["province"].is_unique
    assert (caps["is_municipality"] == 0).all()
    assert caps["city_code"].str.endswith("0100").all()
    assert {"石家庄市", "呼和浩特市", "拉萨市", "乌鲁木齐市", "海口市"} <= set(caps["city_name"])


@needs_shared
def test_master_agrees_with_fiersity_roster(master: pd.DataFrame) -> None:
    """Independent check: each master city-year is an active FIERsity prefecture of that name/province.

    The one known disagreement is 那曲 in 2017 (FIERsity dates the upgrade 2018).
    """
    fc = SHARED / "data/admin_codes/fiersity_crosswalk"
    roster = pd.read_csv(fc / "legal_roster_year_end_1987_2026.csv", dtype=str)
    roster = roster[roster["status"] == "active"]
    active = set(
        zip(
            roster["year"].astype(int),
            roster["legal_name_zh"],
            roster["province_name_zh"],
            strict=True,
        )
    )
    xw = pd.read_csv(
        CROSSWALK, dtype={"city_code": str, "first_year": "Int64", "last_year": "Int64"}
    )
    named = xw[xw["kind"].isin(["official", "historical"]) & xw["name"].str.endswith("市")]
    prov = master.set_index("city_code")["province"]
    missing = [
        (y, r.name)
        for r in named.itertuples(index=False)
        for y in range(int(r.first_year), int(r.last_year) + 1)
        if (y, r.name, prov[r.city_code]) not in active
    ]
    assert missing == [(2017, "那曲市")]


# --- name crosswalk ---------------------------------------------------------------------------


def test_crosswalk_names_are_unique_after_normalisation() -> None:
    xw = pd.read_csv(CROSSWALK, dtype=str, keep_default_na=False)
    codes = xw.assign(norm=xw["name"].map(normalise_name)).groupby("norm")["city_code"].nunique()
    assert codes.max() == 1, codes[codes > 1]


def test_crosswalk_covers_every_city(master: pd.DataFrame, crosswalk: dict[str, str]) -> None:
    xw = pd.read_csv(CROSSWALK, dtype=str, keep_default_na=False)
    assert set(xw["city_code"]) == set(master["city_code"])
    for name, code in zip(master["city_name"], master["city_code"], strict=True):
        assert crosswalk[normalise_name(name)] == code
    official = xw[xw["kind"] == "official"]
    assert official["city_code"].is_unique and len(official) == len(master)


def test_crosswalk_historical_names(crosswalk: dict[str, str]) -> None:
    assert crosswalk["襄樊"] == crosswalk["襄阳"] == "420600"
    assert crosswalk["思茅"] == crosswalk["普洱"] == "530800"
    assert crosswalk[normalise_name("毕节地区")] == "520500"
    xw = pd.read_csv(CROSSWALK, dtype=str, keep_default_na=False).set_index("name")
    assert xw.loc["襄樊市", ["kind", "first_year", "last_year"]].tolist() == [
        "historical",
        "2006",
        "2009",
    ]
    assert xw.loc["襄阳市", ["first_year", "last_year"]].tolist() == ["2010", "2023"]
    assert xw.loc["思茅市", ["first_year", "last_year"]].tolist() == ["2006", "2006"]
    assert xw.loc["莱芜市", ["first_year", "last_year"]].tolist() == ["2006", "2018"]


def test_no_city_name_collides_with_a_province(master: pd.DataFrame, crosswalk: dict) -> None:
    """A province row (吉林省, 海南省, ...) never matches a city; a municipality matches itself only."""
    assert "吉林省" not in crosswalk and crosswalk["吉林"] == "220200"
    for prov, pcode in (
        master[["province", "province_code"]].drop_duplicates().itertuples(index=False)
    ):
        key = normalise_name(prov)
        if key in crosswalk:
            assert crosswalk[key] == pcode, prov  # only 北京市/天津市/上海市/重庆市
            assert master.set_index("city_code").loc[pcode, "is_municipality"] == 1


def test_crosswalk_conflict_is_an_error(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "xw.csv",
        "name,city_code,kind,first_year,last_year,source\n"
        "吉林市,220200,official,2006,2023,x\n"
        "吉 林,110000,alias,,,y\n",
    )
    with pytest.raises(InputError) as err:
        load_name_crosswalk(p)
    (problem,) = err.value.problems
    assert (problem.line, problem.column) == (3, "name") and "line 2" in problem.message


def test_crosswalk_rejects_codes_outside_master(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "xw.csv",
        "name,city_code,kind,first_year,last_year,source\n大兴安岭,232700,alias,,,x\n",
    )
    with pytest.raises(InputError, match="not in the city master"):
        load_name_crosswalk(p, valid_codes={"220200"})


# --- loaders: errors name file, line and column -----------------------------------------------


def test_city_master_errors(tmp_path: Path) -> None:
    lines = MASTER.read_text(encoding="utf-8").splitlines()
    header, beijing, tianjin = lines[0], lines[1], lines[2]
    bad = [
        header,
        beijing,
        beijing.replace("北京市", "北京二市", 1),  # line 3: duplicate code
        tianjin.replace("120000,", "12000X,", 1),  # line 4: malformed code
        tianjin.replace(",east,east,", ",east,north,").replace("120000,天津市", "120001,天津二市"),
    ]
    p = write(tmp_path, "m.csv", "\n".join(bad) + "\n")
    with pytest.raises(InputError) as err:
        load_city_master(p)
    where = {(pr.line, pr.column) for pr in err.value.problems}
    assert where == {(3, "city_code"), (4, "city_code"), (5, "region3")}
    assert all(pr.file == str(p) for pr in err.value.problems)


def test_city_master_missing_column_and_file(tmp_path: Path) -> None:
    p = write(tmp_path, "m.csv", "city_code,city_name\n110000,北京市\n")
    with pytest.raises(InputError) as err:
        load_city_master(p)
    assert {pr.column for pr in err.value.problems} >= {"province", "region4", "last_year"}
    with pytest.raises(InputError, match="file not found"):
        load_city_master(tmp_path / "absent.csv")


def test_pilot_list_errors(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "smart_city_pilots.csv",
        "batch,name,level,province,city_code,source\n"
        "1,温州市,prefecture,浙江省,330300,ok\n"
        "1or2,淮南市,prefecture,安徽省,340400,bad batch\n"
        "2,广东省,province,广东省,440000,province with code\n"
        "3,滁州市,prefecture,安徽省,,prefecture without code\n"
        "3,某开发区,zone,安徽省,341100,bad level\n"
        "1,温州市,prefecture,浙江省,330300,duplicate\n"
        "2,某县,county,火星省,34110,bad province and code\n",
    )
    with pytest.raises(InputError) as err:
        load_pilot_list(p, provinces={"浙江省", "安徽省", "广东省"})
    where = {(pr.line, pr.column) for pr in err.value.problems}
    assert where == {
        (3, "batch"),
        (4, "city_code"),
        (5, "city_code"),
        (6, "level"),
        (7, "batch"),
        (8, "province"),
        (8, "city_code"),
    }
    assert str(p) in str(err.value)


def test_pilot_list_rejects_gbk(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "p.csv",
        "batch,name,level,province,city_code,source\n1,温州市,prefecture,浙江省,330300,x\n",
        "gb18030",
    )
    with pytest.raises(InputError, match="not UTF-8"):
        load_pilot_list(p)


def test_usd_cny(tmp_path: Path) -> None:
    s = load_usd_cny(RES / "macro/usd_cny.csv")
    assert s.index.tolist() == list(range(2006, 2024))
    assert s[2006] == pytest.approx(7.9718) and s[2023] == pytest.approx(7.0467)
    assert s.between(6.0, 8.5).all()
    p = write(tmp_path, "fx.csv", "year,cny_per_usd\n2006,7.9\n2006,abc\n20x7,-1\n")
    with pytest.raises(InputError) as err:
        load_usd_cny(p)
    assert {(pr.line, pr.column) for pr in err.value.problems} == {
        (3, "year"),
        (3, "cny_per_usd"),
        (4, "year"),
        (4, "cny_per_usd"),
    }


# --- shipped policy lists ---------------------------------------------------------------------


def test_low_carbon_list(master: pd.DataFrame) -> None:
    lc = load_pilot_list(RES / "policy/low_carbon_pilots.csv", provinces=set(master["province"]))
    assert len(lc) == 87
    assert lc["batch"].value_counts().to_dict() == {1: 13, 2: 29, 3: 45}
    assert lc["level"].value_counts().to_dict() == {
        "prefecture": 70,
        "county": 10,
        "province": 6,
        "district": 1,
    }
    no_code = lc.loc[lc["city_code"] == "", ["name", "level"]]
    assert set(no_code.loc[no_code["level"] != "province", "name"]) == {
        "济源市",
        "琼中黎族苗族自治县",
        "第一师阿拉尔市",
    }
    outside = set(lc["city_code"]) - {""} - set(master["city_code"])
    assert outside == {
        "232700",
        "652300",
        "654000",
        "653200",
    }  # 大兴安岭; 昌吉, 伊犁, 和田 (counties)
    assert (lc.loc[lc["city_code"] == "232700", "level"] == "prefecture").all()
    assert lc["source"].str.len().min() > 20


def test_smart_city_list(master: pd.DataFrame) -> None:
    sc = load_pilot_list(RES / "policy/smart_city_pilots.csv", provinces=set(master["province"]))
    assert len(sc) == 29
    assert set(sc["city_code"]) <= set(master["city_code"])
    moved = sc[sc["source"].str.contains("reported as '1 or 2'")]
    assert len(moved) == 10 and (moved["batch"] == 2).all()
    assert sc["source"].str.contains("http").all()
    b = load_smart_city_batches(RES / "policy/smart_city_batches.csv")
    assert b[["batch", "total"]].values.tolist() == [[1, 90], [2, 103], [3, 84]]
    assert b["prefecture_level"].tolist()[0] == 37


# --- build script ------------------------------------------------------------------------------


@needs_shared
def test_build_script_reproduces_shipped_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(RES / "build/build_resources.py"),
            "--shared",
            str(SHARED),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for rel in [
        "cities/city_master.csv",
        "cities/name_crosswalk.csv",
        "policy/low_carbon_pilots.csv",
        "policy/smart_city_pilots.csv",
        "policy/smart_city_batches.csv",
        "macro/usd_cny.csv",
    ]:
        assert filecmp.cmp(tmp_path / rel, RES / rel, shallow=False), rel
