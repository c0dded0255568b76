"""Tests of dualpilot.data.panel: assembling, validating, the sample rule, lq and the derived variables, writing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualpilot.core.errors import InputError
from dualpilot.data import panel as P
from dualpilot.data.yearbook import SHIPPED_BOUNDS, load_bounds
from fixtures_raw import (
    CODES,
    MASTER_ROWS,
    USD_CNY,
    load_reference,
    patent_counts,
    values,
    write_patents,
    write_raw_dir,
    write_table,
)

YEARS = (2010, 2013)  # editions 2011-2014: the IT header changes with the 2013 edition
MIXED = {2011: "gb18030", 2012: "xlsx"}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    master, crosswalk, usd, aliases = load_reference(tmp_path_factory.mktemp("ref"))
    return {
        "master": master,
        "crosswalk": crosswalk,
        "usd_cny": usd,
        "aliases": aliases,
        "bounds": load_bounds(SHIPPED_BOUNDS, aliases),
        "jump_factor": 10.0,
        "truncation_ratio": 0.8,
    }


def build(ref, raw, years=YEARS, rule="balanced_outcome"):
    return P.build_panel(raw, years=years, sample_rule=rule, **ref)


@pytest.fixture(scope="module")
def balanced(ref, tmp_path_factory):
    raw = write_raw_dir(tmp_path_factory.mktemp("raw"), YEARS, fmt=lambda t, e: MIXED.get(e, "csv"))
    return raw, build(ref, raw)


def life(code):
    row = next(r for r in MASTER_ROWS if r[0] == code)
    return row[9], row[10]


# --- the happy path ------------------------------------------------------------------------------------


def test_panel_columns_rows_and_raw_values(balanced):
    _, b = balanced
    panel = b.panel
    assert list(panel.columns) == list(P.PANEL_COLUMNS)
    # 巢湖 (to 2010) and 毕节 (from 2011) are not cities in every year of 2010-2013.
    kept = [c for c in CODES if c not in ("341400", "520500")]
    assert sorted(panel["city_code"].unique()) == kept
    assert len(panel) == len(kept) * 4
    assert panel["city_code"].dtype == "str"
    row = panel.set_index(["city_code", "year"]).loc[("420600", 2011)]
    for variable, value in values("420600", 2011).items():
        if variable in P.RAW_VARIABLES:
            assert row[variable] == pytest.approx(value, rel=1e-12), variable
    assert row["city_name"] == "襄阳市" and row["province"] == "湖北省"
    assert row["region"] == "central" and row["region4"] == "central"
    assert (row["digital_patents"], row["green_patents"]) == patent_counts("420600", 2011)
    jilin = panel.set_index(["city_code", "year"]).loc[("220200", 2010)]
    assert jilin["region"] == "central" and jilin["region4"] == "northeast"


def test_lq_matches_an_independent_loop(balanced):
    _, b = balanced
    panel = b.panel
    for year in range(YEARS[0], YEARS[1] + 1):
        codes = list(panel.loc[panel["year"] == year, "city_code"])
        it = {c: values(c, year)["it_emp"] for c in codes}
        total = {c: values(c, year)["total_emp"] for c in codes}
        share = sum(it.values()) / sum(total.values())
        for c in codes:
            got = panel.loc[(panel["city_code"] == c) & (panel["year"] == year), "lq"].item()
            assert got == pytest.approx(it[c] / total[c] / share, rel=1e-12)


def test_derived_variables_follow_the_contract(balanced):
    _, b = balanced
    for r in b.panel.itertuples(index=False):
        v = values(r.city_code, r.year)
        d, g = patent_counts(r.city_code, r.year)
        rate = USD_CNY[r.year]
        expected = {
            "ln_gdp_pc": math.log(v["gdp"] / v["population"]),
            "ln_density": math.log(v["population"] / v["area"]),
            "industry": v["secondary_share"] / 100,
            "gov": v["fiscal_exp"] / v["gdp"],
            "open": v["fdi"] * rate / v["gdp"],
            "finance": v["loans"] / v["gdp"],
            "ln_digital_pat": math.log(1 + d),
            "ln_green_pat": math.log(1 + g),
            "human_capital": v["students"] / v["population"],
        }
        for name, value in expected.items():
            assert getattr(r, name) == pytest.approx(value, rel=1e-12), name


def test_manifest_lists_every_file_with_checksums(balanced):
    raw, b = balanced
    m = b.manifest
    assert list(m.columns) == list(P.MANIFEST_COLUMNS)
    assert len(m) == 2 * 4 + 1
    assert set(m["file"]) >= {"employment/ccsy_2012.xlsx", "economy/ccsy_2011.csv", "patents.csv"}
    e2012 = m.set_index("file").loc["employment/ccsy_2012.xlsx"]
    assert (e2012["edition"], e2012["data_year"], e2012["read_as"]) == (2012, 2011, "xlsx")
    assert m.set_index("file").loc["economy/ccsy_2011.csv", "read_as"] == "gb18030"
    assert e2012["sha256"] == P.sha256(raw / "employment/ccsy_2012.xlsx")
    # 7 cities (8 minus the one outside its life) plus a province, a total and a note row
    assert e2012["rows_kept"] == 7 and e2012["rows_read"] == 10


def test_sample_table_reasons(balanced):
    _, b = balanced
    s = b.sample.set_index("city_code")
    assert list(b.sample.columns) == ["city_code", "city_name", "kept", "n_years", "reason"]
    assert len(s) == len(MASTER_ROWS)
    assert s.loc["130100", "kept"] and s.loc["130100", "reason"] == ""
    assert s.loc["130100", "n_years"] == 4
    assert not s.loc["520500", "kept"]
    assert s.loc["520500", "reason"] == "not a prefecture-level city in 2010 (first_year 2011)"
    assert s.loc["341400", "reason"] == "not a prefecture-level city in 2011-2013 (last_year 2010)"


def test_industries_long_table(balanced):
    _, b = balanced
    long = b.industries_long
    assert list(long.columns) == ["city_code", "year", "variable", "industry", "value"]
    assert set(long["variable"]) == {"emp_zhizao"} and set(long["industry"]) == {"制造业"}
    assert len(long) == len(b.panel)
    one = long.loc[(long["city_code"] == "110000") & (long["year"] == 2012), "value"].item()
    assert one == pytest.approx(values("110000", 2012)["emp_zhizao"])


def test_rows_outside_a_citys_life_are_dropped(ref, tmp_path):
    # 毕节 printed as 毕节地区 before 2011 maps to 520500 but is not yet a prefecture-level city.
    raw = write_raw_dir(tmp_path, (2009, 2011))
    path = raw / "employment" / "ccsy_2010.csv"
    path.write_text(path.read_text() + "毕节地区,30,1,5\n")
    b = build(ref, raw, years=(2009, 2011), rule="all")
    assert sorted(b.panel.loc[b.panel["city_code"] == "520500", "year"]) == [2011]


# --- sample rules --------------------------------------------------------------------------------------


def test_balanced_rule_drops_a_city_with_a_gap_and_lq_uses_kept_cities(ref, tmp_path):
    raw = write_raw_dir(
        tmp_path,
        YEARS,
        drop=[("employment", "130200", 2011)],
        override={("employment", "110000", 2012): {"it_emp": "—"}},
    )
    b = build(ref, raw)
    s = b.sample.set_index("city_code")
    assert not s.loc["130200", "kept"] and s.loc["130200", "reason"] == "outcome missing in 2011"
    assert s.loc["110000", "reason"] == "outcome missing in 2012"
    kept = {"130100", "220200", "420600", "530800"}
    assert set(b.panel["city_code"]) == kept
    for year, g in b.panel.groupby("year"):
        # the denominator is over kept cities only, so lq weighted by total_emp averages to one
        assert np.average(g["lq"], weights=g["total_emp"]) == pytest.approx(1.0, rel=1e-12)
        share = sum(values(c, year)["it_emp"] for c in kept) / sum(
            values(c, year)["total_emp"] for c in kept
        )
        c = "130100"
        expected = values(c, year)["it_emp"] / values(c, year)["total_emp"] / share
        assert g.loc[g["city_code"] == c, "lq"].item() == pytest.approx(expected, rel=1e-12)


def test_all_rule_keeps_every_observed_city_year(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS, drop=[("employment", "130200", 2011)])
    b = build(ref, raw, rule="all")
    pairs = set(zip(b.panel["city_code"], b.panel["year"], strict=True))
    assert ("130200", 2011) not in pairs and ("130200", 2012) in pairs
    assert ("520500", 2011) in pairs and ("520500", 2010) not in pairs
    assert ("341400", 2010) in pairs and ("341400", 2011) not in pairs
    s = b.sample.set_index("city_code")
    assert s.loc["130200", "kept"] and s.loc["130200", "n_years"] == 3
    assert s.loc["130200", "reason"] == "outcome missing in 2011"
    for _, g in b.panel.groupby("year"):
        assert np.average(g["lq"], weights=g["total_emp"]) == pytest.approx(1.0, rel=1e-12)


def test_city_in_no_table(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS, codes=[c for c in CODES if c != "530800"])
    b = build(ref, raw, rule="all")
    s = b.sample.set_index("city_code")
    assert not s.loc["530800", "kept"] and s.loc["530800", "reason"] == "not in any table"


def test_missing_patent_city_years_stay_missing(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS)
    write_patents(raw / "patents.csv", [("110000", 2010, 3, 4)])
    panel = build(ref, raw).panel
    one = panel.loc[(panel["city_code"] == "110000") & (panel["year"] == 2010)].iloc[0]
    assert one["ln_digital_pat"] == pytest.approx(math.log(4))
    others = panel.drop(index=one.name)
    assert others[["digital_patents", "ln_digital_pat", "ln_green_pat"]].isna().all().all()


def test_year_list_compresses_runs():
    assert P._year_list([2008, 2009]) == "2008, 2009"
    assert P._year_list([2006, 2007, 2008, 2010, 2012, 2013]) == "2006-2008, 2010, 2012, 2013"


def test_unknown_sample_rule(ref, tmp_path):
    with pytest.raises(ValueError, match="sample_rule"):
        build(ref, tmp_path, rule="balanced")


# --- lq properties -------------------------------------------------------------------------------------

employment = st.lists(
    st.tuples(
        st.integers(0, 2),  # year index
        st.floats(1.0, 1000.0),  # total_emp
        st.one_of(st.just(0.0), st.floats(1e-6, 1.0)),  # it share (no subnormal underflow)
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(rows=employment, scale=st.floats(1e-3, 1e3))
def test_lq_weighted_mean_is_one_and_scale_free(rows, scale):
    year = pd.Series([2010 + r[0] for r in rows])
    total = pd.Series([r[1] for r in rows])
    it = pd.Series([r[1] * r[2] for r in rows])
    sums = it.groupby(year).sum()
    if (sums == 0).any():
        with pytest.raises(ValueError, match="sums to 0"):
            P.location_quotient(it, total, year)
        return
    lq = P.location_quotient(it, total, year)
    scaled = P.location_quotient(it * scale, total * scale, year)
    np.testing.assert_allclose(scaled, lq, rtol=1e-9, atol=1e-12)
    for y in year.unique():
        m = (year == y).to_numpy()
        assert np.average(lq[m], weights=total[m]) == pytest.approx(1.0, rel=1e-9)


def test_lq_rejects_missing_or_zero_inputs():
    y = pd.Series([2010, 2010])
    with pytest.raises(ValueError, match="observed"):
        P.location_quotient(pd.Series([1.0, np.nan]), pd.Series([2.0, 3.0]), y)
    with pytest.raises(ValueError, match="positive"):
        P.location_quotient(pd.Series([1.0, 1.0]), pd.Series([2.0, 0.0]), y)


# --- bad input across files ----------------------------------------------------------------------------


def test_missing_edition_is_named(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS)
    (raw / "economy" / "ccsy_2013.csv").unlink()
    with pytest.raises(InputError) as err:
        build(ref, raw)
    (p,) = err.value.problems
    assert p.file == str(raw / "economy" / "ccsy_2013.csv")
    assert "missing edition 2013 of the economy table (data year 2012" in p.message


def test_csv_and_xlsx_of_one_edition(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS)
    write_table(raw / "employment" / "ccsy_2012.xlsx", ["地区"], [])
    with pytest.raises(InputError, match="edition 2012 is present more than once"):
        build(ref, raw)


def test_files_outside_the_window_and_strays_are_ignored(ref, tmp_path, caplog):
    raw = write_raw_dir(tmp_path, YEARS)
    (raw / "employment" / "ccsy_2030.csv").write_text("garbage")
    (raw / "economy" / "readme.txt").write_text("notes")
    (raw / "economy" / "~$ccsy_2011.xlsx").write_text("lock")
    with caplog.at_level("INFO", logger="dualpilot.data.panel"):
        b = build(ref, raw)
    assert "employment/ccsy_2030.csv" not in set(b.manifest["file"])
    assert "edition 2030 is outside the window" in caplog.text
    assert "readme.txt" in caplog.text


def test_missing_folder_and_patents(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS, patents=False)
    for f in (raw / "economy").iterdir():
        f.unlink()
    (raw / "economy").rmdir()
    with pytest.raises(InputError) as err:
        build(ref, raw)
    files = [p.file for p in err.value.problems]
    assert files == [f"{raw / 'economy'}/", str(raw / "patents.csv")]


def test_every_problem_of_every_file_is_raised_once(ref, tmp_path):
    raw = write_raw_dir(
        tmp_path,
        YEARS,
        override={
            ("employment", "130100", 2010): {"it_emp": "abc"},
            ("economy", "420600", 2012): {"population": "-5"},
        },
    )
    path = raw / "employment" / "ccsy_2014.csv"
    path.write_text(path.read_text() + "火星,1,1,1\n")
    write_patents(raw / "patents.csv", [("110000", 2010, -1, 0)])
    with pytest.raises(InputError) as err:
        build(ref, raw)
    got = {(p.file.replace(str(raw), "<raw>"), p.line, p.column) for p in err.value.problems}
    assert got == {
        # title lines 1-2, header 3, 河北省 4, 全国 5, then 北京 6, 石家庄 7
        ("<raw>/employment/ccsy_2011.csv", 7, "信息传输、计算机服务和软件业 [C]"),
        # header 2 (one title line), 河北省 3, 全国 4, 北京 5, 石家庄 6, 唐山 7, 吉林 8, (巢湖 gone) 襄阳 9
        ("<raw>/economy/ccsy_2013.csv", 9, "年末户籍人口(万人) [C]"),
        # header 3, 河北省 4, 全国 5, seven cities 6-12, the note 13, 火星 14
        ("<raw>/employment/ccsy_2014.csv", 14, "地区 [A]"),
        ("<raw>/patents.csv", 2, "digital_patents"),
    }
    assert "failed validation" in str(err.value)


def test_exchange_rates_must_cover_the_window(ref, tmp_path):
    short = ref["usd_cny"].drop(index=2012)
    with pytest.raises(InputError, match="no exchange rate for 2012"):
        P.build_panel(
            tmp_path,
            years=YEARS,
            sample_rule="all",
            master=ref["master"],
            crosswalk=ref["crosswalk"],
            aliases=ref["aliases"],
            usd_cny=short,
            bounds=ref["bounds"],
            jump_factor=ref["jump_factor"],
            truncation_ratio=ref["truncation_ratio"],
        )


def test_empty_sample_is_an_error(ref, tmp_path):
    raw = write_raw_dir(tmp_path, YEARS, drop=[("employment", c, 2012) for c in CODES])
    with pytest.raises(InputError, match="no city-year is left"):  # (the truncation check is off)
        P.build_panel(
            raw, years=YEARS, sample_rule="balanced_outcome", **{**ref, "truncation_ratio": 0}
        )


# --- labels and writing --------------------------------------------------------------------------------


def test_every_panel_column_has_a_short_bilingual_label():
    from dualpilot.render.tables import load_labels

    entries = load_labels().entries  # the one label source: resources/labels/terms.csv
    for column in P.PANEL_COLUMNS:
        zh, en = entries[column]
        assert zh and en and en.isascii()
        assert P.stata_label(column) == f"{zh} / {en}"
        assert len(P.stata_label(column)) <= 80
    assert entries["lq"] == ("IT产业就业区位熵", "IT employment location quotient")


def test_write_panel_round_trip(balanced, tmp_path):
    _, b = balanced
    out = tmp_path / "out"
    P.write_panel(
        b,
        out / "panel.parquet",
        out / "panel.csv",
        out / "panel.dta",
        out_manifest=out / "manifest.csv",
        out_sample=out / "sample.csv",
        out_industries=out / "industries_long.parquet",
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "industries_long.parquet",
        "manifest.csv",
        "panel.csv",
        "panel.dta",
        "panel.parquet",
        "sample.csv",
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "panel.parquet"), b.panel)
    assert (out / "panel.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    csv = pd.read_csv(out / "panel.csv", dtype={"city_code": str}, encoding="utf-8-sig")
    assert list(csv["city_name"]) == list(b.panel["city_name"])
    np.testing.assert_allclose(csv["lq"], b.panel["lq"], rtol=1e-12)

    dta = pd.read_stata(out / "panel.dta")
    assert list(dta.columns) == list(P.PANEL_COLUMNS)
    assert list(dta["city_code"]) == list(b.panel["city_code"])  # text, leading digits intact
    assert list(dta["city_name"]) == list(b.panel["city_name"])
    for column in P.RAW_VARIABLES + P.DERIVED_VARIABLES:
        np.testing.assert_allclose(dta[column], b.panel[column], rtol=1e-12, err_msg=column)
    with pd.io.stata.StataReader(out / "panel.dta") as reader:
        labels = reader.variable_labels()
    assert labels["lq"] == "IT产业就业区位熵 / IT employment location quotient"
    frame, meta = pyreadstat.read_dta(out / "panel.dta")
    assert meta.column_names_to_labels["human_capital"] == P.stata_label("human_capital")
    assert list(frame["city_code"]) == list(b.panel["city_code"])
    assert list(frame["city_name"]) == list(b.panel["city_name"])  # Unicode (format 118)


def test_write_panel_leaves_nothing_behind_on_failure(balanced, tmp_path, monkeypatch):
    _, b = balanced

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_stata", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        P.write_panel(b, out / "p.parquet", out / "p.csv", out / "p.dta", out_sample=out / "s.csv")
    assert list(out.iterdir()) == []


def test_city_whose_life_misses_the_window(ref, tmp_path):
    raw = write_raw_dir(tmp_path, (2011, 2012))
    s = build(ref, raw, years=(2011, 2012), rule="all").sample.set_index("city_code")
    assert not s.loc["341400", "kept"]
    assert s.loc["341400", "reason"] == (
        "not a prefecture-level city in 2011-2012 (first_year 2006, last_year 2010)"
    )


def test_treatment_columns_have_labels_too():
    from dualpilot.data.treatment import TREATMENT_COLUMNS

    for column in TREATMENT_COLUMNS:
        assert len(P.stata_label(column)) <= 80
    with pytest.raises(ValueError, match="no label for column 'foo'"):
        P.stata_label("foo")
