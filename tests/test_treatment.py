"""Tests of the treatment coding (dualpilot.data.treatment) on hand-made cases and the shipped lists."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualpilot.data.reference import load_city_master, load_pilot_list, load_smart_city_batches
from dualpilot.data.treatment import (
    code_treatment,
    coverage_warning,
    pilot_assignments,
    pilot_start_years,
    smart_city_coverage,
    treatment_summary,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
RULES = SHARED / "data/policy_lists/lowcarbon_prefecture_treatment_rules.csv"

SC_YEARS = {1: 2012, 2: 2013, 3: 2014}
LC_YEARS = {1: 2010, 2: 2012, 3: 2017}

MASTER = pd.DataFrame(
    [
        ("330100", "杭州市", "浙江省"),
        ("330300", "温州市", "浙江省"),
        ("440100", "广州市", "广东省"),
        ("440300", "深圳市", "广东省"),
        ("420500", "宜昌市", "湖北省"),
        ("110000", "北京市", "北京市"),
        ("620300", "金昌市", "甘肃省"),
    ],
    columns=["city_code", "city_name", "province"],
)
CODES = MASTER["city_code"].tolist()


def pilots(*rows: tuple[int, str, str, str, str]) -> pd.DataFrame:
    """A pilot list from (batch, name, level, province, city_code) tuples."""
    return pd.DataFrame(rows, columns=["batch", "name", "level", "province", "city_code"])


SC = pilots(
    (1, "温州市", "prefecture", "浙江省", "330300"),
    (3, "杭州市", "prefecture", "浙江省", "330100"),
    (2, "宜昌市某区", "district", "湖北省", "420500"),
    (1, "北京市东城区", "district", "北京市", "110000"),
)
LC = pilots(
    (1, "广东省", "province", "广东省", ""),
    (1, "深圳市", "prefecture", "广东省", "440300"),
    (2, "广州市", "prefecture", "广东省", "440100"),
    (1, "杭州市", "prefecture", "浙江省", "330100"),
    (3, "温州市", "prefecture", "浙江省", "330300"),
    (3, "北京市", "prefecture", "北京市", "110000"),
    (2, "大兴安岭地区", "prefecture", "黑龙江省", "232700"),  # not a master city
    (2, "济源市", "county", "河南省", ""),  # lies in no prefecture
)


def panel(start: int = 2006, end: int = 2023) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, y) for c in CODES for y in range(start, end + 1)], columns=["city_code", "year"]
    )


def code(
    sc: pd.DataFrame = SC,
    lc: pd.DataFrame = LC,
    *,
    province: bool = True,
    subcity: bool = True,
    last_year: int = 2023,
    start: int = 2006,
) -> pd.DataFrame:
    return code_treatment(
        panel(start, last_year),
        sc,
        lc,
        MASTER,
        sc_batch_years=SC_YEARS,
        lc_batch_years=LC_YEARS,
        province_pilot_treats_cities=province,
        subcity_pilot_treats_city=subcity,
        last_year=last_year,
    )


def city(df: pd.DataFrame, code_: str) -> pd.Series:
    """The time-invariant treatment columns of one city."""
    rows = df[df["city_code"] == code_][["sc_year", "lc_year", "dual_year", "group"]]
    assert len(rows.drop_duplicates()) == 1
    return rows.iloc[0]


def same(a: float, b: float | None) -> bool:
    return (b is None and math.isnan(a)) or a == b


# --- hand-made cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "guangzhou"), [(True, 2010), (False, 2012)])
def test_city_in_a_pilot_province(rule: bool, guangzhou: int) -> None:
    lc = pilot_start_years(LC, MASTER, LC_YEARS, province_rule=rule, subcity_rule=True)
    assert lc["440100"] == guangzhou  # listed itself in batch 2, its province in batch 1
    assert lc["440300"] == 2010  # listed itself in batch 1
    assert "620300" not in lc.index
    a = pilot_assignments(LC, MASTER, LC_YEARS, province_rule=rule, subcity_rule=True)
    prov = a[a["name"] == "广东省"]
    assert sorted(prov["city_code"]) == (["440100", "440300"] if rule else [""])


@pytest.mark.parametrize(("rule", "expected"), [(True, 2013), (False, None)])
def test_district_pilot(rule: bool, expected: int | None) -> None:
    df = code(subcity=rule)
    yichang = city(df, "420500")
    assert same(yichang["sc_year"], expected)
    # 湖北 was a 2010 low-carbon province, but the toy LC list has no 湖北 entry: never LC-treated.
    assert yichang["group"] == ("sc_only" if rule else "none")
    beijing = city(df, "110000")  # 北京市东城区 is a district pilot of batch 1
    assert same(beijing["sc_year"], 2012 if rule else None)


def test_dual_timing_smart_city_first() -> None:
    df = code()
    wz = city(df, "330300")
    assert (wz["sc_year"], wz["lc_year"], wz["dual_year"], wz["group"]) == (
        2012,
        2017,
        2017,
        "dual",
    )
    rows = df[df["city_code"] == "330300"].set_index("year")
    assert rows.loc[2011, ["sc_post", "lc_post", "dual_post", "sc_only_post"]].tolist() == [
        0,
        0,
        0,
        0,
    ]
    assert rows.loc[2012, ["sc_post", "lc_post", "dual_post", "sc_only_post"]].tolist() == [
        1,
        0,
        0,
        1,
    ]
    assert rows.loc[2016, ["sc_only_post", "lc_only_post", "dual_post"]].tolist() == [1, 0, 0]
    assert rows.loc[2017, ["sc_only_post", "lc_only_post", "dual_post"]].tolist() == [0, 0, 1]
    assert rows.loc[2006, "years_since_dual"] == -11 and rows.loc[2023, "years_since_dual"] == 6


def test_dual_timing_low_carbon_first() -> None:
    df = code()
    hz = city(df, "330100")
    assert (hz["sc_year"], hz["lc_year"], hz["dual_year"], hz["group"]) == (
        2014,
        2010,
        2014,
        "dual",
    )
    rows = df[df["city_code"] == "330100"].set_index("year")
    assert rows.loc[2009, ["lc_post", "lc_only_post", "dual_post"]].tolist() == [0, 0, 0]
    assert rows.loc[2010, ["lc_post", "lc_only_post", "dual_post"]].tolist() == [1, 1, 0]
    assert rows.loc[2014, ["sc_post", "lc_post", "lc_only_post", "dual_post"]].tolist() == [
        1,
        1,
        0,
        1,
    ]
    assert rows.loc[2014, "years_since_dual"] == 0


def test_start_after_the_window_counts_as_never() -> None:
    df = code(last_year=2015)
    bj = city(df, "110000")  # SC 2012 (district, rule on); LC 2017 > 2015
    assert bj["sc_year"] == 2012 and math.isnan(bj["lc_year"]) and math.isnan(bj["dual_year"])
    assert bj["group"] == "sc_only"
    wz = city(df, "330300")  # SC 2012, LC 2017 > 2015
    assert wz["group"] == "sc_only" and math.isnan(wz["dual_year"])
    assert df.loc[df["city_code"] == "330300", "dual_post"].eq(0).all()
    assert df.loc[df["city_code"] == "110000", "years_since_dual"].isna().all()
    full = city(code(), "110000")
    assert (full["lc_year"], full["dual_year"], full["group"]) == (2017, 2017, "dual")
    # The boundary: a start in last_year is treated, a start in last_year + 1 is not.
    assert city(code(last_year=2017), "110000")["group"] == "dual"
    assert city(code(last_year=2016), "110000")["group"] == "sc_only"


def test_city_in_neither() -> None:
    df = code()
    jc = df[df["city_code"] == "620300"]
    assert jc[["sc_year", "lc_year", "dual_year", "years_since_dual"]].isna().all().all()
    assert jc[["sc_post", "lc_post", "dual_post", "sc_only_post", "lc_only_post"]].eq(0).all().all()
    assert (jc["group"] == "none").all()


def test_ignored_entries_are_reported() -> None:
    a = pilot_assignments(LC, MASTER, LC_YEARS, province_rule=True, subcity_rule=True)
    ignored = a[a["rule"] == "ignored"].set_index("name")["reason"]
    assert "not a city of the master" in ignored["大兴安岭地区"]
    assert "no prefecture" in ignored["济源市"]
    assert "232700" not in set(pilot_start_years(LC, MASTER, LC_YEARS, True, True).index)


def test_output_types_and_row_order() -> None:
    p = panel().sample(frac=1.0, random_state=3)
    df = code_treatment(
        p,
        SC,
        LC,
        MASTER,
        sc_batch_years=SC_YEARS,
        lc_batch_years=LC_YEARS,
        province_pilot_treats_cities=True,
        subcity_pilot_treats_city=True,
        last_year=2023,
    )
    assert df.index.equals(p.index) and df["city_code"].tolist() == p["city_code"].tolist()
    for col in ["sc_year", "lc_year", "dual_year", "years_since_dual"]:
        assert df[col].dtype == np.float64, col
    for col in ["sc_post", "lc_post", "dual_post", "sc_only_post", "lc_only_post"]:
        assert df[col].dtype == np.int64 and set(df[col]) <= {0, 1}, col
    state = df["sc_only_post"] + df["lc_only_post"] + df["dual_post"]
    assert state.max() <= 1  # each city-year in exactly one of none / SC only / LC only / dual


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"no policy year configured for batch\(es\) \[3\]"):
        pilot_start_years(LC, MASTER, {1: 2010, 2: 2012}, True, True)
    bad_prov = pilots((1, "火星省", "province", "火星省", ""))
    with pytest.raises(ValueError, match="has no city in the master"):
        pilot_start_years(bad_prov, MASTER, LC_YEARS, True, True)
    with pytest.raises(ValueError, match="already has treatment column"):
        code_treatment(
            panel().assign(group="x"),
            SC,
            LC,
            MASTER,
            sc_batch_years=SC_YEARS,
            lc_batch_years=LC_YEARS,
            province_pilot_treats_cities=True,
            subcity_pilot_treats_city=True,
            last_year=2023,
        )
    with pytest.raises(ValueError, match="not in the city master"):
        code_treatment(
            panel().assign(city_code="999900"),
            SC,
            LC,
            MASTER,
            sc_batch_years=SC_YEARS,
            lc_batch_years=LC_YEARS,
            province_pilot_treats_cities=True,
            subcity_pilot_treats_city=True,
            last_year=2023,
        )
    with pytest.raises(ValueError, match="years after last_year=2020"):
        code_treatment(
            panel(),
            SC,
            LC,
            MASTER,
            sc_batch_years=SC_YEARS,
            lc_batch_years=LC_YEARS,
            province_pilot_treats_cities=True,
            subcity_pilot_treats_city=True,
            last_year=2020,
        )


# --- against a naive implementation --------------------------------------------------------------


def naive(
    entries: pd.DataFrame, batch_years: dict[int, int], province: bool, subcity: bool, last: int
) -> dict[str, float]:
    """Start year per master city by a plain loop over cities and entries (NaN = never)."""
    out = {}
    for c, prov in zip(MASTER["city_code"], MASTER["province"], strict=True):
        years = []
        for e in entries.itertuples(index=False):
            hit = (
                (e.level == "prefecture" and e.city_code == c)
                or (e.level == "province" and province and e.province == prov)
                or (e.level in ("county", "district") and subcity and e.city_code == c)
            )
            if hit:
                years.append(batch_years[e.batch])
        first = min(years) if years else math.inf
        out[c] = float(first) if first <= last else math.nan
    return out


entry = st.tuples(
    st.sampled_from([1, 2, 3]),
    st.sampled_from(["province", "prefecture", "county", "district"]),
    st.sampled_from([*MASTER.itertuples(index=False)]),
    st.booleans(),  # a sub-city entry with an empty code / a prefecture outside the master
)


@settings(max_examples=60, deadline=None)
@given(
    sc_rows=st.lists(entry, max_size=6),
    lc_rows=st.lists(entry, max_size=6),
    province=st.booleans(),
    subcity=st.booleans(),
    last=st.sampled_from([2011, 2013, 2016, 2023]),
)
def test_matches_naive_implementation(sc_rows, lc_rows, province, subcity, last) -> None:
    def frame(rows: list) -> pd.DataFrame:
        out = []
        for i, (batch, level, m, odd) in enumerate(rows):
            code_ = "" if level == "province" else m.city_code
            if odd and level in ("county", "district"):
                code_ = ""
            if odd and level == "prefecture":
                code_ = "232700"
            out.append((batch, f"entry{i}", level, m.province, code_))
        return pilots(*out)

    sc, lc = frame(sc_rows), frame(lc_rows)
    df = code(sc, lc, province=province, subcity=subcity, last_year=last, start=2008)
    exp_sc = naive(sc, SC_YEARS, province, subcity, last)
    exp_lc = naive(lc, LC_YEARS, province, subcity, last)
    for r in df.itertuples(index=False):
        s, lcy = exp_sc[r.city_code], exp_lc[r.city_code]
        d = max(s, lcy) if not (math.isnan(s) or math.isnan(lcy)) else math.nan
        assert same(r.sc_year, None if math.isnan(s) else s)
        assert same(r.lc_year, None if math.isnan(lcy) else lcy)
        assert same(r.dual_year, None if math.isnan(d) else d)
        assert r.sc_post == int(r.year >= s) and r.lc_post == int(r.year >= lcy)
        assert r.dual_post == int(r.year >= d)
        assert r.sc_only_post == int(r.year >= s and not r.year >= d)
        assert r.lc_only_post == int(r.year >= lcy and not r.year >= d)
        group = {(1, 1): "dual", (1, 0): "sc_only", (0, 1): "lc_only", (0, 0): "none"}
        assert r.group == group[(int(not math.isnan(s)), int(not math.isnan(lcy)))]


# --- summary ---------------------------------------------------------------------------------


def test_treatment_summary_and_its_table() -> None:
    from dualpilot.render import documents as render
    from dualpilot.render import tables

    df = code(last_year=2015)
    s = treatment_summary(df)
    assert list(s.columns) == ["programme", "cohort", "group", "n_cities"]
    assert s.groupby("programme")["n_cities"].sum().eq(len(MASTER)).all()
    lc = s[s["programme"] == "low_carbon"].set_index(["cohort", "group"])["n_cities"]
    # LC 2010: 杭州 (dual), 广州, 深圳 (province/listed); never: 温州 (SC only), 北京 (SC only), 宜昌, 金昌
    assert lc[(2010, "dual")] == 1 and lc[(2010, "lc_only")] == 2
    never = s[(s["programme"] == "dual") & s["cohort"].isna()].set_index("group")["n_cities"]
    assert never.to_dict() == {"none": 1, "sc_only": 3, "lc_only": 2}
    labels = tables.load_labels(REPO / "resources/labels/terms.csv")
    en = tables.to_markdown(render.treatment_summary_table(s, labels, "en"))
    # panels in programme order, each row a cohort: none, SC only, LC only, dual, total
    assert en.index("**Smart City pilot**") < en.index("**Low-Carbon City pilot**") < en.index("**Dual")
    low_carbon = en[en.index("**Low-Carbon City pilot**") : en.index("**Dual")]
    assert "| 2010 | 0 | 0 | 2 | 1 | 3 |" in low_carbon
    assert en.rstrip().count("| Never (in the window) | 1 | 3 | 2 | 0 | 6 |") == 1
    zh = tables.to_markdown(render.treatment_summary_table(s, labels, "zh"))
    assert "| 窗口内未开始 | 1 | 3 | 2 | 0 | 6 |" in zh and "**低碳城市试点**" in zh
    for raw_id in ("sc_only", "lc_only", "low_carbon", "smart_city", "never"):
        assert raw_id not in zh and raw_id not in en
    varying = df.copy()
    varying.loc[varying.index[0], "sc_year"] = 1999.0
    with pytest.raises(ValueError, match="vary within city"):
        treatment_summary(varying)


def test_smart_city_coverage_warning() -> None:
    sc = load_pilot_list(REPO / "resources/policy/smart_city_pilots.csv")
    batches = load_smart_city_batches(REPO / "resources/policy/smart_city_batches.csv")
    cov = smart_city_coverage(sc, batches)
    assert cov["listed"].sum() == len(sc) and not cov["complete"].any()
    text = coverage_warning(cov)
    assert text is not None and "INCOMPLETE" in text and "smart_city_pilots.csv" in text
    assert "5 of 37 prefecture-level cities" in text
    full = pd.DataFrame({"batch": [1] * 90 + [2] * 112 + [3] * 97, "level": "prefecture"})
    assert coverage_warning(smart_city_coverage(full, batches)) is None


# --- against the independently gathered low-carbon rules ---------------------------------------


@pytest.mark.skipif(not RULES.is_file(), reason=f"shared rules file not found at {RULES}")
@pytest.mark.parametrize(
    ("column", "province", "subcity"),
    [
        ("first_year_ruleA_city_listed", False, False),
        ("first_year_ruleB_A_plus_province", True, False),
        ("first_year_ruleC_B_plus_subunits", True, True),
    ],
)
def test_low_carbon_matches_rules_file(column: str, province: bool, subcity: bool) -> None:
    master = load_city_master(REPO / "resources/cities/city_master.csv")
    lc = load_pilot_list(REPO / "resources/policy/low_carbon_pilots.csv")
    got = pilot_start_years(lc, master, LC_YEARS, province, subcity).reindex(master["city_code"])
    rules = pd.read_csv(RULES, dtype={"code": str}).set_index("code")
    assert set(master["city_code"]) <= set(rules.index)
    expected = rules[column].reindex(master["city_code"])
    pd.testing.assert_series_equal(
        got.astype(float), expected.astype(float), check_names=False, check_index_type=False
    )
    assert got.notna().sum() > 60
