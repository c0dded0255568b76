"""Tests of the demo data generator (dualpilot.demo.extracts).

The generated files are checked with a small reader written here (csv + openpyxl), independent of the
generator's own layout records, and once through the real ingestion (`dualpilot.data.panel.build_panel`).
Effect recovery is checked on the truth frame with pyfixest: a TWFE regression for a static homogeneous
effect, the Gardner two-stage imputation estimator (`pyfixest.did2s`) for the default dynamic,
heterogeneous effects.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyfixest as pf
import pytest

from dualpilot.data.reference import (
    load_city_master,
    load_name_crosswalk,
    load_pilot_list,
    load_usd_cny,
)
from dualpilot.demo import extracts as demo

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "resources"
SEED = 20260228  # the seed of config/config.yaml
YEARS = (2006, 2023)
EDITIONS = range(YEARS[0] + 1, YEARS[1] + 2)
CONTROLS = "ln_gdp_pc + ln_density + industry + gov + open + finance"
MARKERS = {"", "—", "-", "…", "..", "NA"}
#: One constant dual effect: no growth, no single-pilot effects, no heterogeneity.
STATIC_EFFECTS = {
    **demo.DEFAULT_EFFECTS, "dual_lq_growth": 0.0, "sc_only_lq": 0.0, "lc_only_lq": 0.0,
    "heterogeneity": dict.fromkeys(("rich_clean", "rich_dirty", "poor_clean", "poor_dirty"), 1.0),
}  # fmt: skip


@pytest.fixture(scope="module")
def inputs() -> dict:
    master = load_city_master(RES / "cities/city_master.csv")
    return {
        "master": master,
        "crosswalk": pd.read_csv(
            RES / "cities/name_crosswalk.csv", dtype=str, keep_default_na=False
        ),
        "aliases": pd.read_csv(
            RES / "yearbook/header_aliases.csv", dtype=str, keep_default_na=False
        ),
        "low_carbon": load_pilot_list(RES / "policy/low_carbon_pilots.csv"),
        "usd_cny": load_usd_cny(RES / "macro/usd_cny.csv"),
    }


def _run(inputs: dict, out: Path, seed: int = SEED, **overrides) -> demo.DemoTruth:
    kwargs = {
        "years": YEARS,
        "seed": seed,
        "effects": demo.DEFAULT_EFFECTS,
        "policy": demo.DEFAULT_POLICY,
    }
    return demo.generate_demo(out, **{**inputs, **kwargs, **overrides})


@pytest.fixture(scope="module")
def default_run(
    inputs: dict, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, demo.DemoTruth]:
    out = tmp_path_factory.mktemp("demo") / "raw"
    return out, _run(inputs, out)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- an independent reader of the written tables ------------------------------------------------------


def _rows(path: Path) -> tuple[list[list[str]], str]:
    """All rows of a file as text cells (None -> ''), and how it was decoded."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        rows = [
            ["" if c is None else str(c) for c in r]
            for r in wb.worksheets[0].iter_rows(values_only=True)
        ]
        wb.close()
        return rows, "xlsx"
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        how, text = "utf-8-sig", data.decode("utf-8-sig")
    else:
        try:
            how, text = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            how, text = "gb18030", data.decode("gb18030")
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""))], how


def _split(rows: list[list[str]]) -> tuple[list[list[str]], list[str], list[list[str]]]:
    """(lines above the header, header, lines below it)."""
    h = next(i for i, r in enumerate(rows) if r and r[0].strip() in {"地区", "城市", "城市名称"})
    return rows[:h], rows[h], rows[h + 1 :]


@pytest.fixture(scope="module")
def parsed(default_run) -> dict[str, dict]:
    out, _ = default_run
    result = {}
    for path in sorted((out / "employment").iterdir()) + sorted((out / "economy").iterdir()):
        rows, how = _rows(path)
        above, header, body = _split(rows)
        result[f"{path.parent.name}/{path.name}"] = {
            "how": how,
            "above": above,
            "header": header,
            "body": body,
            "edition": int(path.stem[-4:]),
            "raw": path.read_bytes(),
        }
    return result


# --- determinism and layout --------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes_and_truth(inputs, default_run, tmp_path) -> None:
    out, truth = default_run
    again = _run(inputs, tmp_path / "again")
    assert _files(out) == _files(tmp_path / "again")
    pd.testing.assert_frame_equal(truth.panel, again.panel)
    other = _run(inputs, tmp_path / "other", seed=SEED + 1)
    a, b = _files(out), _files(tmp_path / "other")
    assert a.keys() == b.keys()
    assert a["employment/ccsy_2015.xlsx"] != b["employment/ccsy_2015.xlsx"]
    assert not np.allclose(truth.panel["lq_star"], other.panel["lq_star"])


def test_layout_matches_the_contract(default_run) -> None:
    out, truth = default_run
    names = set(_files(out))
    expected_fixed = {"patents.csv", "policy/smart_city_pilots.csv"}
    assert expected_fixed <= names
    for table in ("employment", "economy"):
        for edition in EDITIONS:
            found = {f"{table}/ccsy_{edition}.{ext}" for ext in ("csv", "xlsx")} & names
            assert len(found) == 1, (table, edition, found)
    assert len(names) == 2 * len(EDITIONS) + len(expected_fixed)  # nothing else
    patents = pd.read_csv(out / "patents.csv", dtype={"city_code": str})
    assert list(patents.columns) == ["city_code", "year", "digital_patents", "green_patents"]
    assert patents["city_code"].str.fullmatch(r"\d{6}").all()
    assert all(pd.api.types.is_integer_dtype(patents[c]) for c in patents.columns[1:])
    assert (patents[["digital_patents", "green_patents"]] >= 0).all().all()
    # every city appears only in the editions of the years it exists
    exists = truth.panel.groupby("year")["city_code"].apply(set)
    assert set(zip(patents["city_code"], patents["year"], strict=True)) < {
        (c, y) for y, cs in exists.items() for c in cs
    }
    assert len(patents) < len(truth.panel)  # a few city-years missing


def test_cities_appear_in_the_years_they_exist(parsed, default_run, inputs) -> None:
    _, truth = default_run
    master = inputs["master"]
    cw = load_name_crosswalk(RES / "cities/name_crosswalk.csv")
    from dualpilot.data.reference import normalise_name

    for name, f in parsed.items():
        codes = {cw.get(normalise_name(r[0])) for r in f["body"] if r and r[0].strip()} - {None}
        year = f["edition"] - 1
        alive = set(
            master.loc[(master.first_year <= year) & (year <= master.last_year), "city_code"]
        )
        assert codes == alive, name


# --- every quirk of the contract -----------------------------------------------------------------------


def _numeric(cell: str) -> bool:
    return re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d+)?", cell.strip()) is not None


def _city_rows(body: list[list[str]]) -> list[list[str]]:
    return [r for r in body if len(r) > 1 and r[0].strip() and any(_numeric(c) for c in r[1:])
            and r[0].strip() not in {"全国", "合计", "全省"}]  # fmt: skip


def test_encodings_and_formats(parsed) -> None:
    how = Counter(f["how"] for f in parsed.values())
    assert set(how) == {"utf-8", "utf-8-sig", "gb18030", "xlsx"}
    gb = next(f for f in parsed.values() if f["how"] == "gb18030")
    with pytest.raises(UnicodeDecodeError):
        gb["raw"].decode("utf-8")
    for table in ("employment", "economy"):
        assert any(n.startswith(table) and n.endswith(".xlsx") for n in parsed)


def test_xlsx_data_is_on_the_first_sheet(default_run) -> None:
    out, _ = default_run
    path = next((out / "economy").glob("*.xlsx"))
    wb = openpyxl.load_workbook(path, read_only=True)
    assert len(wb.sheetnames) >= 2  # a second sheet the reader must ignore
    first = [r[0] for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    assert any(c in {"地区", "城市", "城市名称"} for c in first)


def test_title_lines_and_header_cells(parsed) -> None:
    counts = {len([r for r in f["above"] if any(c.strip() for c in r)]) for f in parsed.values()}
    assert counts == {1, 2, 3, 4, 5}
    assert {f["header"][0] for f in parsed.values()} == {"地区", "城市", "城市名称"}
    emp_titles = [
        c for n, f in parsed.items() if n.startswith("employment") for r in f["above"] for c in r
    ]
    assert "2-6 按行业分城镇单位从业人员（全市）" in emp_titles
    assert "单位：万人" in emp_titles
    # some CSV title rows are a single field, others padded to the table width
    widths = {len(r) for f in parsed.values() if f["how"] != "xlsx" for r in f["above"] if r}
    assert 1 in widths and max(widths) > 1


def test_non_city_rows(parsed) -> None:
    names = Counter(r[0].strip() for f in parsed.values() for r in f["body"] if r and r[0].strip())
    assert {"全国", "合计", "全省"} <= set(names)
    assert any(n.startswith("注") for n in names)
    province_rows = [
        r for f in parsed.values() for r in f["body"]
        if r and r[0].endswith("省") and not any(c.strip() for c in r[1:])
    ]  # fmt: skip
    assert any(r[0] == "河北省" for r in province_rows)
    blank = [r for f in parsed.values() for r in f["body"] if not any(c.strip() for c in r)]
    assert blank


def test_city_name_variants(parsed) -> None:
    names_by_edition: dict[int, set[str]] = {}
    for f in parsed.values():
        names_by_edition.setdefault(f["edition"], set()).update(r[0] for r in _city_rows(f["body"]))
    every = set().union(*names_by_edition.values())
    assert any(n.strip().endswith("市") for n in every)
    assert any(not n.strip().endswith("市") for n in every)
    assert any("\u3000" in n for n in every)  # 北　京
    assert any(re.search(r"\S \S", n) for n in every)  # 石 家 庄
    assert any(n != n.strip() for n in every)  # padded ends
    squeezed = {e: {re.sub(r"\s", "", n) for n in ns} for e, ns in names_by_edition.items()}
    for e, ns in squeezed.items():
        assert bool(ns & {"襄樊", "襄樊市"}) == (e <= 2010), e  # renamed 襄阳 in 2010
        assert bool(ns & {"襄阳", "襄阳市"}) == (e >= 2011), e
        assert bool(ns & {"思茅", "思茅市"}) == (e == 2007), e  # renamed 普洱 in 2007


def test_header_variants(parsed) -> None:
    emp_headers = {
        h for n, f in parsed.items() if n.startswith("employment") for h in f["header"][1:]
    }
    total = {re.sub(r"[(（].*", "", h) for h in emp_headers}
    assert {"城镇单位从业人员期末人数", "年末单位从业人员数", "合计"} <= total
    for n, f in parsed.items():
        if n.startswith("employment"):
            it = [h for h in f["header"] if h.startswith("信息传输")]
            assert len(it) == 1
            new = (
                it[0].replace(",", "").replace("，", "").replace("、", "")
                == "信息传输软件和信息技术服务业"
            )
            assert new == (f["edition"] >= 2013), (n, it)
    it_headers = {h for h in emp_headers if h.startswith("信息传输")}
    assert {h[4] for h in it_headers} == {"、", ",", "，", "软", "计"}  # every separator and none
    econ_headers = {
        h for n, f in parsed.items() if n.startswith("economy") for h in f["header"][1:]
    }
    assert "地区生产总值(万元)" in econ_headers and "地区生产总值（万元）" in econ_headers
    assert "地区生产总值" in econ_headers
    assert {"年末户籍人口", "年末总人口"} <= {re.sub(r"[(（].*", "", h) for h in econ_headers}
    assert {"制造业", "金融业"} & emp_headers  # extra industry columns


def test_cells_missing_markers_thousands_and_rounding(parsed) -> None:
    tokens = Counter()
    for f in parsed.values():
        for r in _city_rows(f["body"]):
            tokens.update(c.strip() for c in r[1:] if not _numeric(c))
    assert MARKERS <= set(tokens), tokens
    csv_texts = [f["raw"] for f in parsed.values() if f["how"] != "xlsx"]
    assert any(re.search(rb'"\d{1,3}(,\d{3})+"', t) for t in csv_texts)  # quoted 1,234
    for n, f in parsed.items():
        if f["how"] == "xlsx":
            continue
        header, rows = f["header"], _city_rows(f["body"])
        for col, digits in (
            ("地区生产总值", r"[\d,]+"),
            ("城镇单位从业人员期末人数", r"\d+\.\d\d"),
        ):
            j = next((k for k, h in enumerate(header) if h.startswith(col)), None)
            if j is not None:
                cells = [r[j] for r in rows if _numeric(r[j])]
                assert cells and all(re.fullmatch(digits, c) for c in cells), (n, col)


def test_printed_values_are_the_rounded_truth(parsed, default_run, inputs) -> None:
    _, truth = default_run
    cw = load_name_crosswalk(RES / "cities/name_crosswalk.csv")
    from dualpilot.data.reference import normalise_name

    f = parsed["employment/ccsy_2016.csv"]
    j = next(k for k, h in enumerate(f["header"]) if h.startswith("信息传输"))
    t = truth.panel[truth.panel["year"] == 2015].set_index("city_code")["it_emp"]
    for r in _city_rows(f["body"]):
        if _numeric(r[j]):
            code = cw[normalise_name(r[0])]
            assert float(r[j].replace(",", "")) == pytest.approx(round(t[code], 2), abs=1e-9)


# --- truth, missing values, smart-city list ------------------------------------------------------------


def test_truth_frame_is_consistent(default_run) -> None:
    _, truth = default_run
    p = truth.panel
    # lq* has total_emp-weighted mean exactly 1 over the existing cities of each year
    w = p.groupby("year").apply(lambda d: np.average(d["lq_star"], weights=d["total_emp"]))
    np.testing.assert_allclose(w.to_numpy(), 1.0, rtol=0, atol=1e-12)
    ok = p["it_emp"].notna()
    np.testing.assert_allclose(
        p.loc[ok, "it_emp"], (p["lq_star"] * p["it_share"] * p["total_emp"])[ok]
    )
    share = p[ok].groupby("year").apply(lambda d: d["it_emp"].sum() / d["total_emp"].sum())
    assert (
        0.009 < share.iloc[0] < 0.015
        and 0.025 < share.iloc[-1] < 0.035
        and share.is_monotonic_increasing
    )
    assert (p["lq_star"] > 0).all() and (p.loc[ok, "it_emp"] < p.loc[ok, "total_emp"]).all()
    assert abs(p["lq"] - p["lq_star"]).max() < 0.01  # realised on generated values
    first = p[(p["dual_post"] == 1) & (p["years_since_dual"] == 0)]
    assert first["effect_lq"].mean() == pytest.approx(demo.DEFAULT_EFFECTS["dual_lq"], abs=1e-12)
    assert truth.summary["dual_lq_first_year_mean"] == pytest.approx(0.12, abs=1e-12)
    # magnitudes
    assert 7 < p["total_emp"].min() < 15 and 500 < p["total_emp"].max() < 1100
    assert 50 <= p["population"].min() and p["population"].max() <= 3000
    # the derived variables follow the contract
    np.testing.assert_allclose(p["human_capital"], p["students"] / p["population"])
    np.testing.assert_allclose(p["industry"], p["secondary_share"] / 100)
    # east leads; in the untreated component the centre and west rise relative to the east
    lq0 = (
        p.assign(lq0=p["lq"] - p["effect_lq"]).groupby(["region4", "year"])["lq0"].mean().unstack()
    )
    assert lq0.loc["east"].mean() > lq0.loc[["central", "west"]].mean(axis=1).max()
    gain = lq0[2023] - lq0[2006]
    assert gain["central"] - gain["east"] > 0.05 and gain["west"] - gain["east"] > 0.05


def test_missing_values(default_run) -> None:
    _, truth = default_run
    p = truth.panel
    it_missing = p[p["it_emp"].isna()]
    assert len(it_missing) == 2 and it_missing["city_code"].nunique() == 2
    assert p["fdi"].isna().sum() >= 2 * 18 and p["gdp"].notna().all()
    assert set(truth.missing["variable"]) == {"fdi", "so2", "green_cover", "it_emp", "patents"}
    assert p["digital_patents"].isna().sum() == (truth.missing["variable"] == "patents").sum() > 0


def test_smart_city_list(default_run, inputs) -> None:
    out, truth = default_run
    listed = load_pilot_list(out / "policy/smart_city_pilots.csv")
    pref = listed[listed["level"] == "prefecture"]
    assert pref.groupby("batch").size().to_dict() == demo.DEFAULT_SMART_CITY["prefecture_pilots"]
    sub = listed[listed["level"] != "prefecture"]
    assert len(sub) == demo.DEFAULT_SMART_CITY["subcity_entries"]
    assert set(sub["level"]) == {"district", "county"}
    assert (listed["source"] == "synthetic demo entry (not a real pilot)").all()
    assert not set(sub["city_code"]) & set(pref["city_code"])
    master = inputs["master"].set_index("city_code")
    assert (master.loc[pref["city_code"], "is_municipality"] == 0).all()
    # richer cities are likelier pilots
    base = truth.cities.set_index("city_code")["baseline_ln_gdp_pc"]
    chosen = base.index.isin(pref["city_code"])
    assert base[chosen].mean() - base[~chosen].mean() > 0.25


def test_truth_timing_matches_the_written_lists(default_run, inputs) -> None:
    from dualpilot.data.treatment import code_treatment

    out, truth = default_run
    p = truth.panel
    coded = code_treatment(
        p[["city_code", "year"]],
        load_pilot_list(out / "policy/smart_city_pilots.csv"),
        inputs["low_carbon"],
        inputs["master"],
        sc_batch_years=demo.DEFAULT_POLICY["sc_batch_years"],
        lc_batch_years=demo.DEFAULT_POLICY["lc_batch_years"],
        province_pilot_treats_cities=demo.DEFAULT_POLICY["province_pilot_treats_cities"],
        subcity_pilot_treats_city=demo.DEFAULT_POLICY["subcity_pilot_treats_city"],
        last_year=YEARS[1],
    )
    for col in ("sc_year", "lc_year", "dual_year", "dual_post", "group"):
        pd.testing.assert_series_equal(coded[col], p[col], check_names=False)
    assert set(p.drop_duplicates("city_code")["dual_year"].dropna()) == {2012, 2013, 2014, 2017}


# --- effect recovery ------------------------------------------------------------------------------------


def _coef(formula: str, data: pd.DataFrame, term: str = "dual_post") -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(formula, data=data, vcov={"CRV1": "city_code"})
    return float(fit.coef()[term]), float(fit.se()[term])


def _gardner(p: pd.DataFrame) -> tuple[float, float, float]:
    """Gardner's two-stage imputation (pyfixest.did2s; single-pilot states and the controls in the first
    stage) of lq on dual_post: coefficient, standard error, and the true ATT (effect_dual_lq) on its sample."""
    q = p.dropna(subset=["lq", "open"])
    untreated = q[q["dual_post"] == 0].groupby("city_code").size()
    q = q[q["city_code"].isin(untreated[untreated >= 2].index)]  # did2s cannot drop singletons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.did2s(q, yname="lq", first_stage=f"~ sc_only_post + lc_only_post + {CONTROLS} | city_code + year",
                       second_stage="~ dual_post", treatment="dual_post", cluster="city_code")  # fmt: skip
    att = q.loc[q["dual_post"] == 1, "effect_dual_lq"].mean()
    return float(fit.coef()["dual_post"]), float(fit.se()["dual_post"]), float(att)


def test_twfe_recovers_a_static_homogeneous_effect(inputs, tmp_path) -> None:
    """With one constant dual effect (no growth, no single-pilot effects, no heterogeneity) TWFE is
    unbiased: the coefficient must be within 0.015 of the planted 0.12 (about 2.5 standard errors)."""
    truth = _run(inputs, tmp_path / "static", effects=STATIC_EFFECTS)
    b, se = _coef(f"lq ~ dual_post + {CONTROLS} | city_code + year", truth.panel)
    assert abs(b - 0.12) < 0.015
    assert 0.002 < se < 0.01  # tight, but not zero
    b_print, _ = _coef(f"lq_print ~ dual_post + {CONTROLS} | city_code + year", truth.panel)
    assert abs(b_print - b) < 0.005  # rounding to print barely moves it


def test_default_effects_are_recovered(default_run) -> None:
    """Default (dynamic, heterogeneous) effects. (a) Conditional on the baseline controls the untreated
    outcome lq - effect_lq has no dual_post 'effect' (|b| < 0.015); (b) TWFE on lq matches TWFE on the
    noise-free planted effect within 0.015; (c) the imputation estimator (pyfixest.did2s, single-pilot
    states in the first stage) is within 0.03 of the planted ATT; (d) mechanisms within 0.04 (logs) and
    2 (students per 10,000) of their planted effects; (e) the effect is concentrated in rich cities."""
    _, truth = default_run
    p = truth.panel.assign(lq0=lambda d: d["lq"] - d["effect_lq"])
    fe = f" + {CONTROLS} | city_code + year"
    b0, se0 = _coef("lq0 ~ dual_post" + fe, p)
    assert abs(b0) < 0.015 and abs(b0) < 4 * se0
    b, _ = _coef("lq ~ dual_post" + fe, p)
    b_star, _ = _coef("effect_lq ~ dual_post" + fe, p)
    assert abs(b - b_star) < 0.015
    gardner, _, att = _gardner(p)
    assert abs(att - truth.summary["att_dual_lq"]) < 0.005
    assert abs(gardner - att) < 0.03
    for y, effect, tol in (("ln_digital_pat", "dual_ln_digital_pat", 0.04),
                           ("ln_green_pat", "dual_ln_green_pat", 0.04),
                           ("human_capital", "dual_human_capital", 2.0)):  # fmt: skip
        got, _ = _coef(f"{y} ~ dual_post" + fe, p)
        assert abs(got - demo.DEFAULT_EFFECTS[effect]) < tol, (y, got)
    rich, _ = _coef("lq ~ dual_post" + fe, p[p["rich"]])
    poor, _ = _coef("lq ~ dual_post" + fe, p[~p["rich"]])
    assert rich > 0.15 and poor < 0.08


def test_real_ingestion_reads_the_demo(default_run, inputs) -> None:
    """Round trip through dualpilot.data.panel.build_panel: no problem, values equal the rounded truth, the
    balanced rule drops the two cities with a missing outcome."""
    from dualpilot.data.panel import build_panel
    from dualpilot.data.yearbook import load_aliases, load_bounds

    out, truth = default_run
    aliases = load_aliases(RES / "yearbook/header_aliases.csv")
    built = build_panel(
        out, years=YEARS, sample_rule="balanced_outcome", master=inputs["master"],
        crosswalk=load_name_crosswalk(RES / "cities/name_crosswalk.csv"),
        aliases=aliases, usd_cny=inputs["usd_cny"],
        bounds=load_bounds(RES / "yearbook/plausibility.csv", aliases), jump_factor=10.0,
        truncation_ratio=0.8,
    )  # fmt: skip
    got = built.panel.set_index(["city_code", "year"])
    want = truth.panel.set_index(["city_code", "year"]).loc[got.index]
    for v, tol in (("it_emp", 0.005 + 1e-9), ("total_emp", 0.005 + 1e-9), ("gdp", 0.5 + 1e-6),
                   ("fdi", 0.5 + 1e-6), ("green_cover", 0.005 + 1e-9)):  # fmt: skip
        assert got[v].isna().equals(want[v].isna()), v
        assert ((got[v] - want[v]).abs() <= tol)[got[v].notna()].all(), v
    dropped = built.sample.loc[~built.sample["kept"], "reason"]
    missing_cities = set(truth.missing.loc[truth.missing["variable"] == "it_emp", "city_code"])
    assert missing_cities <= set(built.sample.loc[~built.sample["kept"], "city_code"])
    assert dropped.str.contains("outcome missing").sum() == 2


# --- generate_panel, arguments, writing ----------------------------------------------------------------


def test_generate_panel_is_analysis_ready_and_recovers_a_static_effect(inputs) -> None:
    a = demo.generate_panel(600, 18, 7, STATIC_EFFECTS, usd_cny=inputs["usd_cny"])
    b = demo.generate_panel(600, 18, 7, STATIC_EFFECTS, usd_cny=inputs["usd_cny"])
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns[: len(demo.PANEL_COLUMNS)]) == list(demo.PANEL_COLUMNS)
    assert len(a) == 600 * 18 and a["lq"].notna().all() and a["dual_post"].sum() > 0
    assert set(a["group"]) == {"none", "sc_only", "lc_only", "dual"}
    got, _ = _coef(f"lq ~ dual_post + {CONTROLS} | city_code + year", a)
    assert abs(got - 0.12) < 0.015


def test_bad_arguments_are_refused(inputs, tmp_path) -> None:
    with pytest.raises(ValueError, match="missing key"):
        _run(
            inputs,
            tmp_path,
            effects={k: v for k, v in demo.DEFAULT_EFFECTS.items() if k != "dual_lq"},
        )
    with pytest.raises(ValueError, match="unknown key"):
        _run(inputs, tmp_path, effects={**demo.DEFAULT_EFFECTS, "dual": 1})
    with pytest.raises(ValueError, match="generate_panel"):
        _run(inputs, tmp_path, scale={"units": 2850})
    with pytest.raises(ValueError, match="policy"):
        _run(inputs, tmp_path, policy={**demo.DEFAULT_POLICY, "province_rule": True})
    with pytest.raises(ValueError, match="no rate"):
        _run(inputs, tmp_path, usd_cny=inputs["usd_cny"].drop(2010))
    with pytest.raises(ValueError, match="baseline_end"):
        _run(inputs, tmp_path, effects={**demo.DEFAULT_EFFECTS, "baseline_end": 2000})
    assert not any(tmp_path.iterdir())  # nothing written by a refused call
    (tmp_path / "real_extract.csv").write_text("地区,合计\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not an empty directory"):
        _run(inputs, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["real_extract.csv"]


def test_truth_write(default_run, tmp_path) -> None:
    _, truth = default_run
    truth.write(tmp_path / "truth.parquet", tmp_path / "truth.json")
    back = pd.read_parquet(tmp_path / "truth.parquet")
    assert len(back) == len(truth.panel)
    doc = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert doc["effects"]["dual_lq"] == 0.12 and len(doc["files"]) == 2 * len(EDITIONS)
    assert doc["summary"]["att_dual_lq_planted"] == pytest.approx(
        truth.summary["att_dual_lq_planted"]
    )


# --- the numbers of docs/demo-data.md ------------------------------------------------------------------


def _documented_numbers(heading: str) -> dict[str, list[str]]:
    """Value column of the first table below `heading` in docs/demo-data.md: row label -> the decimal
    numbers printed in it (as text, so their precision is known)."""
    lines = (
        (REPO / "docs/demo-data.md").read_text(encoding="utf-8").split(heading, 1)[1].splitlines()
    )
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    out = {}
    for line in lines[start + 2 : end]:  # below the header and its rule
        label, value = (c.strip() for c in line.strip().strip("|").rsplit("|", 1))
        out[label] = re.findall(r"-?\d+\.\d+", value)
    return out


def test_documented_numbers_match_the_generator(default_run, inputs, tmp_path) -> None:
    """Every number of the table "How close the realised effects are to the planted ones" is what the
    generator and the regressions give, to the printed precision."""
    from demo_mutations import build_panel_outputs

    out, truth = default_run
    p, s = truth.panel, truth.summary
    fe = f" + {CONTROLS} | city_code + year"

    def twfe(y: str, data: pd.DataFrame = p) -> tuple[float, float]:
        return _coef(f"{y} ~ dual_post" + fe, data)

    # the panel as rule build_panel writes it (real ingestion, treatment coding, balanced sample)
    built = pd.read_parquet(build_panel_outputs(out, tmp_path / "results")["parquet"])
    flat = _run(inputs, tmp_path / "static", effects=STATIC_EFFECTS).panel
    rich, clean = p["rich"], p["clean"]
    by_rich, by_clean = s["att_dual_lq_by_rich"], s["att_dual_lq_by_clean"]
    want = [
        [s["att_dual_lq"]],
        [s["att_dual_lq_planted"]],
        [s["dual_lq_first_year_mean"]],
        [by_rich["rich"], by_rich["poor"], by_clean["clean"], by_clean["dirty"]],
        [*twfe("lq")],
        [twfe("effect_dual_lq")[0]],
        [twfe("lq_print")[0]],
        [*twfe("lq", built)],
        [*_gardner(p)],
        [twfe("lq", p[rich])[0], twfe("lq", p[~rich])[0], twfe("lq", p[clean])[0],
         twfe("lq", p[~clean])[0]],
        [twfe("ln_digital_pat")[0], twfe("ln_green_pat")[0], twfe("human_capital")[0], 0.15, 0.10],
        [*twfe("lq", flat), 0.12],
    ]  # fmt: skip
    documented = _documented_numbers("## How close the realised effects are to the planted ones")
    assert len(documented) == len(want)
    for (label, printed), values in zip(documented.items(), want, strict=True):
        assert len(printed) == len(values), (label, printed)
        for text, value in zip(printed, values, strict=True):
            half_digit = 0.5 * 10 ** -len(text.split(".")[1])
            assert abs(float(text) - value) <= half_digit + 1e-9, (label, text, value)
    assert built["city_code"].nunique() == 283
