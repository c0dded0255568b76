"""Tests of dualpilot.analyses.robustness: the grid builder on hand cases, the two-treatment design on synthetic panels
with planted effects and against an independent implementation, and the wiring of the Goodman-Bacon,
staggered and HonestDiD pieces.

Independent references and tolerances:
- state imputation: pyfixest's `did2s` with the state dummies as second stage (estimates 1e-8 abs, SE 1e-6
  rel, exact first stage as in tests/test_staggered.py) and a dense numpy least-squares imputation (1e-10
  abs); planted constant effects recovered within 0.02 (noise sd 0.02, 60 cities);
- grid specifications: each spec's data compared with the panel column by column (exact), the winsorised
  outcome with numpy quantiles (exact), the lagged treatment with a within-city shift (exact), the trend
  controls with a groupby mean (1e-12), the recodings with the pilot lists' rules written out by hand;
  grid estimates against pyfixest feols run directly (1e-8 abs);
- Goodman-Bacon: the TWFE line against pyfixest feols (1e-10 abs);
- HonestDiD wiring: the "original" intervals against beta ± z·se computed here from the event study's
  coefficients and vcov (1e-10 abs); the re-fitted event study against analyses.event_study (exact).
"""

from __future__ import annotations

import functools
import importlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from matplotlib.figure import Figure
from pyfixest.demeaners import MapDemeaner
from pyfixest.estimation.models.feols_ import Feols
from scipy import stats

from dualpilot.analyses import (
    bacon,
    honest_sensitivity,
    pilot_order,
    policy_recoding,
    samples,
    spec_grid,
    staggered_did,
)
from dualpilot.analyses import baseline as analyses
from dualpilot.core.errors import SpecificationError
from dualpilot.data import treatment
from dualpilot.did import staggered
from dualpilot.engines import estimation
from dualpilot.render import robustness as robustness_figures
from dualpilot.render import tables

CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]


# ------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def exact_did2s(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyfixest's did2s demeans with tolerance 1e-6 by default; make its first stage exact (the
    estimator itself is unchanged), as tests/test_staggered.py does."""
    module = importlib.import_module("pyfixest.did.did2s")
    tight = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=1_000_000)
    monkeypatch.setattr(module, "feols", functools.partial(module.feols, demeaner=tight))
    fixef = Feols.fixef
    monkeypatch.setattr(
        Feols, "fixef", lambda self, atol=1e-14, btol=1e-14: fixef(self, atol, btol)
    )


def with_flags(panel: pd.DataFrame) -> pd.DataFrame:
    """The synthetic panel plus the panel's flag columns: the single-city province P00 plays a
    municipality; the first city of every other province is its capital."""
    out = panel.copy()
    out["is_municipality"] = (out["province"] == "P00").astype("int64")
    first = out.groupby("province")["city_code"].transform("min")
    out["is_provincial_capital"] = (
        (out["city_code"] == first) & (out["province"] != "P00")
    ).astype("int64")
    return out


def recompute(panel: pd.DataFrame) -> pd.DataFrame:
    """Treatment indicators from sc_year/lc_year (the panel's definitions)."""
    out = panel.copy()
    year = out["year"].to_numpy(dtype=float)
    sc, lc = out["sc_year"].to_numpy(dtype=float), out["lc_year"].to_numpy(dtype=float)
    dual = np.where(~np.isnan(sc) & ~np.isnan(lc), np.fmax(sc, lc), np.nan)
    out["dual_year"] = dual
    out["sc_post"] = (year >= sc).astype("int64")
    out["lc_post"] = (year >= lc).astype("int64")
    out["dual_post"] = (year >= dual).astype("int64")
    out["years_since_dual"] = year - dual
    return analyses.pilot_states(
        out.drop(columns=["sc_only_post", "lc_only_post"], errors="ignore")
    )


def planted(
    panel: pd.DataFrame,
    *,
    sc_only: float,
    lc_only: float,
    dual: float,
    dual_by_order: dict[str, float] | None = None,
    noise: float = 0.02,
    seed: int = 5,
) -> pd.DataFrame:
    """A fresh outcome lq = city + year effects + 0.1·ln_gdp_pc + state effects + noise on `panel`'s
    treatment coding; `dual_by_order` adds an extra dual effect by pilot order."""
    rng = np.random.default_rng(seed)
    out = recompute(panel)
    codes, cities = pd.factorize(out["city_code"])
    years, year_values = pd.factorize(out["year"])
    order = pilot_order.pilot_order(out).to_numpy()
    extra = np.zeros(len(out))
    for key, value in (dual_by_order or {}).items():
        extra += value * (order == key) * out["dual_post"].to_numpy()
    out["lq"] = (
        rng.normal(0, 0.3, len(cities))[codes]
        + rng.normal(0, 0.1, len(year_values))[years]
        + 0.1 * out["ln_gdp_pc"].to_numpy()
        + sc_only * out["sc_only_post"].to_numpy()
        + lc_only * out["lc_only_post"].to_numpy()
        + dual * out["dual_post"].to_numpy()
        + extra
        + rng.normal(0, noise, len(out))
    )
    return out


def with_orders(panel: pd.DataFrame) -> pd.DataFrame:
    """Give the synthetic panel all three pilot orders: its pattern has SC-first (2012/2017) and LC-first
    dual cities; two LC-first cities are made same-year (lc_year = sc_year)."""
    out = panel.copy()
    lc_first = out.drop_duplicates("city_code")
    lc_first = lc_first[lc_first["lc_year"] < lc_first["sc_year"]]["city_code"].iloc[:2].tolist()
    hit = out["city_code"].isin(lc_first)
    out.loc[hit, "lc_year"] = out.loc[hit, "sc_year"]
    return out


def rows(tidy: pd.DataFrame, model: str) -> pd.DataFrame:
    return tidy[tidy["model"] == model].set_index("term")


# ------------------------------------------------------------------------------------------------
# Samples
# ------------------------------------------------------------------------------------------------


def test_complete_cases_rows_and_units(panel: pd.DataFrame) -> None:
    df = panel.copy()
    df.loc[[3, 40, 41], "open"] = np.nan  # rows of cities 0 and 2
    kept, label = samples.complete_cases(df, ["lq", "open"])
    assert len(kept) == len(df) - 3 and "3 dropped" in label
    whole, label = samples.complete_cases(df, ["lq", "open"], whole_units=True)
    gone = set(df.loc[[3, 40, 41], "city_code"])
    assert set(whole["city_code"]) == set(df["city_code"]) - gone
    assert f"{df['city_code'].nunique() - len(gone)} of {df['city_code'].nunique()}" in label
    same, label = samples.complete_cases(panel, ["lq"])
    assert same is panel and label == "full"
    with pytest.raises(SpecificationError, match="lacks"):
        samples.complete_cases(panel, ["nope"])


# ------------------------------------------------------------------------------------------------
# Goodman-Bacon
# ------------------------------------------------------------------------------------------------


def test_bacon_adds_up_to_pyfixest_twfe(panel: pd.DataFrame) -> None:
    result = bacon.bacon(panel)
    ref = pf.feols("lq ~ dual_post | city_code + year", data=panel, vcov="iid")
    assert result.twfe == pytest.approx(float(ref.coef()["dual_post"]), abs=1e-10)
    assert result.decomposition["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    total = result.summary.set_index("type").loc["total", "estimate"]
    assert total == pytest.approx(result.twfe, abs=1e-10)
    fig = robustness_figures.bacon_figure(result, language="en")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    # table and figure say which regression is decomposed: model (1) without controls, not model (2)
    assert set(result.summary["specification"]) == {
        "lq ~ dual_post | city_code + year: baseline model (1), no controls"
    }
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"TWFE coefficient (baseline model (1), no controls) = {result.twfe:.3f}" in legend
    with_controls = pf.feols(f"lq ~ dual_post + {' + '.join(CONTROLS)} | city_code + year", panel)
    assert abs(float(with_controls.coef()["dual_post"]) - result.twfe) > 1e-6  # not model (2)
    with pytest.raises(SpecificationError, match="balanced"):
        bacon.bacon(panel.iloc[1:])


# ------------------------------------------------------------------------------------------------
# Staggered estimators and their figure
# ------------------------------------------------------------------------------------------------


def test_staggered_estimates_models_and_samples(panel: pd.DataFrame) -> None:
    df = panel.copy()
    df.loc[5, "open"] = np.nan
    out = staggered_did.staggered_estimates(df, CONTROLS, cs_est_method="reg")
    assert list(out.columns) == list(estimation.TIDY_COLUMNS)
    assert not out.duplicated(["model", "term"]).any()
    simple = out[out["term"] == "ATT"].set_index("model")
    for model in (
        "callaway_santanna_never_simple",
        "callaway_santanna_notyet_simple",
        "sun_abraham_simple",
        "imputation_simple",
    ):
        assert simple.loc[model, "estimate"] == pytest.approx(0.30, abs=0.02), model
    city = df.loc[5, "city_code"]
    assert simple.loc["callaway_santanna_never_simple", "n_obs"] == len(df) - 18  # whole city out
    assert simple.loc["sun_abraham_simple", "n_obs"] == len(df) - 1  # one row out
    assert "cities without missing open" in simple.loc["callaway_santanna_never_simple", "sample"]
    direct = staggered.callaway_santanna(
        df[df["city_code"] != city],
        "city_code",
        "year",
        "dual_year",
        "lq",
        CONTROLS,
        control_group="notyet",
        base_period="universal",
        est_method="reg",
    )
    att = direct[(direct["aggregation"] == "simple")]["estimate"].iloc[0]
    assert simple.loc["callaway_santanna_notyet_simple", "estimate"] == pytest.approx(
        att, abs=1e-12
    )
    # the universal base period reports the reference period as 0
    dyn = rows(out, "callaway_santanna_never_dynamic")
    assert dyn.loc["rel_-1", "estimate"] == 0 and math.isnan(dyn.loc["rel_-1", "std_error"])


def _drawn(fig: Figure) -> tuple[list[str], list[float], str]:
    """Legend texts, every event time drawn (shifts removed by rounding) and the note above the axis."""
    (ax,) = fig.axes
    xs = sorted({round(float(x)) for c in ax.containers for x in c.lines[0].get_xdata()})
    return [t.get_text() for t in ax.get_legend().get_texts()], xs, ax.get_title(loc="left")


def _sample(tidy: pd.DataFrame, model: str) -> str:
    row = tidy[tidy["model"] == model].iloc[0]
    return f"{int(row['n_clusters']):,} cities, {int(row['n_obs']):,} obs."


def test_event_study_comparison_figure(panel: pd.DataFrame) -> None:
    # no single-pilot adjustment anywhere: every series shares the TWFE event study's structure
    twfe = analyses.event_study(panel, CONTROLS, window=(-4, 4))
    robust = staggered_did.staggered_estimates(panel, cs_control_groups=("notyet",))
    series = {
        "CS": "callaway_santanna_notyet_dynamic",
        "SA": "sun_abraham_dynamic",
        "BJS": "imputation_dynamic",
    }
    fig = robustness_figures.event_study_comparison(twfe, robust, series, window=(-4, 4), language="en")
    legend, xs, note = _drawn(fig)
    # each estimator with its base period and its own sample (CS drops cities with a missing value)
    assert legend == [
        f"TWFE, base -1 ({_sample(twfe, 'event_study')})",
        f"CS, base -1 ({_sample(robust, 'callaway_santanna_notyet_dynamic')})",
        f"SA, base -1 ({_sample(robust, 'sun_abraham_dynamic')})",
        f"BJS, no base (leads: mean residuals) ({_sample(robust, 'imputation_dynamic')})",
    ]
    # the binned TWFE endpoints (-4, 4) are not single event times like the robust ones: not drawn
    assert xs == [-3, -2, -1, 0, 1, 2, 3]
    assert "-3 to 3" in note and "absorbed in no series" in note and "not drawn (" not in note
    assert len(staggered_did.event_terms(robust[robust["model"] == "imputation_dynamic"], (-3, 3))) == 7
    with pytest.raises(SpecificationError, match="not in"):
        robustness_figures.event_study_comparison(twfe, robust, {"x": "nope"}, window=(-4, 4))
    varying = robustness_figures.event_study_comparison(
        twfe, robust, series, window=(-4, 4), cs_base_period="varying", language="en"
    )
    assert _drawn(varying)[0][1].startswith("CS, pre-periods year on year (")


def test_event_study_comparison_draws_only_the_same_treatment_structure(
    panel: pd.DataFrame,
) -> None:
    # the one switch (event_study: adjust_single_pilots) on: TWFE, SA and imputation absorb the
    # single-pilot states, Callaway-Sant'Anna cannot and is left out, named in the figure
    states = staggered_did.single_pilot_controls(True)
    assert states == ["sc_only_post", "lc_only_post"] and staggered_did.single_pilot_controls(False) == []
    twfe = analyses.event_study(analyses.pilot_states(panel), CONTROLS + states, window=(-4, 4))
    robust = staggered_did.staggered_estimates(
        panel,
        CONTROLS,
        adjust_single_pilots=True,
        cs_control_groups=("notyet",),
        cs_est_method="reg",
    )
    structure = {
        m: staggered_did.single_pilot_structure(robust[robust["model"] == m]) for m in robust["model"]
    }
    assert staggered_did.single_pilot_structure(twfe) == frozenset(states)
    assert structure["sun_abraham_dynamic"] == structure["imputation_dynamic"] == frozenset(states)
    assert structure["callaway_santanna_notyet_dynamic"] == frozenset()
    series = {
        "CS": "callaway_santanna_notyet_dynamic",
        "SA": "sun_abraham_dynamic",
        "BJS": "imputation_dynamic",
    }
    legend, _, note = _drawn(
        robustness_figures.event_study_comparison(twfe, robust, series, window=(-4, 4), language="en")
    )
    assert [text.split(",")[0] for text in legend] == ["TWFE", "SA", "BJS"]
    assert "absorbed in every series" in note and note.endswith(
        "\nNot drawn (single pilots handled differently): CS"
    )
    zh = robustness_figures.event_study_comparison(twfe, robust, series, window=(-4, 4), language="zh")
    assert _drawn(zh)[2].endswith("\n未画（单一试点处理方式不同）：CS")
    with pytest.raises(SpecificationError, match="handles the single pilots"):
        robustness_figures.event_study_comparison(twfe, robust, {"CS": "callaway_santanna_notyet_dynamic"})
    # unadjusted TWFE next to adjusted SA/BJS: only CS matches
    plain = analyses.event_study(panel, CONTROLS, window=(-4, 4))
    legend = _drawn(
        robustness_figures.event_study_comparison(plain, robust, series, window=(-4, 4), language="en")
    )[0]
    assert [text.split(",")[0] for text in legend] == ["TWFE", "CS"]


def test_staggered_estimates_absorb_single_pilots_as_twfe(panel: pd.DataFrame) -> None:
    # planted single-pilot effects: the dual-timing design without them in the model is biased, with them
    # (as the TWFE event study) the imputation and Sun-Abraham estimates recover the planted dual effect
    data = planted(panel, sc_only=0.15, lc_only=0.12, dual=0.30)
    adjusted, vcov = staggered_did.staggered_estimates_with_vcov(
        data, ["ln_gdp_pc"], adjust_single_pilots=True, cs_control_groups=()
    )
    plain = staggered_did.staggered_estimates(data, ["ln_gdp_pc"], cs_control_groups=())
    att = adjusted[adjusted["term"] == "ATT"].set_index("model")["estimate"]
    biased = plain[plain["term"] == "ATT"].set_index("model")["estimate"]
    for model in ("imputation_simple", "sun_abraham_simple"):
        assert att[model] == pytest.approx(0.30, abs=0.02), model
        assert abs(biased[model] - 0.30) > 0.05, model
    assert set(adjusted["controls"]) == {"ln_gdp_pc+sc_only_post+lc_only_post"}
    # the same imputation as dualpilot.did.staggered with the states as time-varying covariates
    direct = staggered.imputation_did(
        data, "city_code", "year", "dual_year", "lq", ["ln_gdp_pc", *staggered_did.SINGLE_PILOT_STATES]
    )
    imp = rows(adjusted, "imputation_dynamic")
    ref = direct[direct["aggregation"] == "dynamic"].set_index("term")
    np.testing.assert_allclose(imp["estimate"], ref.loc[imp.index, "estimate"], rtol=0, atol=1e-12)
    # the returned vcov is the imputation event study's: every rel_<e>, rel_-1 included
    assert list(vcov.index) == list(vcov.columns) == list(imp.index)
    np.testing.assert_allclose(np.sqrt(np.diag(vcov)), imp["std_error"], rtol=1e-12)


def test_event_study_base_periods_in_the_estimates(panel: pd.DataFrame) -> None:
    out = staggered_did.staggered_estimates(panel, cs_control_groups=("notyet",))
    # Sun-Abraham omits e = -1: stated by a base row, as the TWFE event study states its base
    sa = rows(out, "sun_abraham_dynamic")
    assert sa.loc["rel_-1", "estimate"] == 0 and math.isnan(sa.loc["rel_-1", "std_error"])
    times = [int(t.removeprefix("rel_")) for t in sa.index]
    assert times == sorted(times)
    # imputation leads are mean first-stage residuals with their own SE: no normalised period
    imp = rows(out, "imputation_dynamic")
    assert not math.isnan(imp.loc["rel_-1", "std_error"]) and imp.loc["rel_-1", "estimate"] != 0
    assert [staggered_did.event_study_base(m) for m in ("event_study", "sun_abraham_dynamic")] == [
        "omitted"
    ] * 2
    assert staggered_did.event_study_base("imputation_dynamic") == "none"
    assert staggered_did.event_study_base("callaway_santanna_never_dynamic", cs_base_period="varying") == (
        "varying"
    )


def test_twfe_event_study_table_states_its_base_period(panel: pd.DataFrame) -> None:
    from dualpilot.render import documents as render

    root = Path(__file__).resolve().parents[1]
    tidy = analyses.event_study(panel, CONTROLS, window=(-4, 4))
    base = tidy.set_index("term").loc["rel_-1"]
    assert base["estimate"] == 0 and math.isnan(base["std_error"])
    for language, sentence in (
        ("en", "The row at 0.000 without a standard error is the omitted base period"),
        ("zh", "系数为 0.000 且无标准误的一行为省略的基期"),
    ):
        table = render.analysis_table(
            tidy,
            "event_study",
            specs_path=str(root / "resources" / "labels" / "tables.csv"),
            labels=tables.load_labels(),
            settings={"language": language, "digits": 3, "stars": [0.1, 0.05, 0.01]},
        )
        assert sentence in tables.to_markdown(table)


# ------------------------------------------------------------------------------------------------
# HonestDiD wiring
# ------------------------------------------------------------------------------------------------


def _event_study_files(
    panel: pd.DataFrame, tmp_path, **kwargs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The event study and its vcov as rule estimate_event_study writes and rule estimate_honestdid
    reads them (CSV round trip)."""
    tidy, vcov = analyses.event_study_with_vcov(panel, CONTROLS, **kwargs)
    tidy.to_csv(tmp_path / "event_study.csv", index=False)
    vcov.to_csv(tmp_path / "event_study_vcov.csv", index_label="term")
    return (
        pd.read_csv(tmp_path / "event_study.csv"),
        pd.read_csv(tmp_path / "event_study_vcov.csv", index_col="term"),
    )


def test_event_study_estimates_read_the_reported_event_study(panel: pd.DataFrame, tmp_path) -> None:
    reported, vcov = _event_study_files(panel, tmp_path, window=(-4, 4))
    terms = [f"rel_{k}" for k in (-4, -3, -2, 0, 1, 2, 3, 4)]
    assert list(vcov.index) == terms == list(vcov.columns)
    coef = honest_sensitivity.event_study_estimates(reported, vcov)
    assert list(coef.index) == terms
    np.testing.assert_array_equal(coef, reported.set_index("term").loc[terms, "estimate"])
    # the vcov belongs to the model analyses.event_study reports (its standard errors)
    plain = analyses.event_study(panel, CONTROLS, window=(-4, 4)).set_index("term")
    np.testing.assert_allclose(
        np.sqrt(np.diag(vcov.to_numpy())), plain.loc[terms, "std_error"], rtol=1e-12
    )
    stale = reported.copy()
    stale.loc[stale["term"] == "rel_0", "std_error"] *= 1.01
    with pytest.raises(SpecificationError, match="different runs"):
        honest_sensitivity.event_study_estimates(stale, vcov)
    with pytest.raises(SpecificationError, match="lack the terms"):
        honest_sensitivity.event_study_estimates(reported[reported["term"] != "rel_4"], vcov)
    with pytest.raises(SpecificationError, match="square"):
        honest_sensitivity.event_study_estimates(reported, vcov.iloc[:, :-1])


def test_honest_sensitivity_orders_coefficients_and_periods(panel: pd.DataFrame, tmp_path) -> None:
    reported, vcov = _event_study_files(panel, tmp_path, window=(-4, 3))
    coef = honest_sensitivity.event_study_estimates(reported, vcov)
    out = honest_sensitivity.honest_sensitivity(
        coef, vcov, exclude_terms=["rel_-4", "rel_3"], Mbar_grid=(1.0,), M_grid=(0.0,), n_draws=200
    )
    assert set(out["pre_periods"]) == {"-3..-2"} and set(out["post_periods"]) == {"0..2"}
    assert set(out["restriction"]) == {"none", "RM", "SD"}
    z = stats.norm.ppf(0.975)
    post = ["rel_0", "rel_1", "rel_2"]
    rows = reported.set_index("term").loc[post]
    beta, sigma = rows["estimate"].to_numpy(), vcov.loc[post, post].to_numpy()
    original = out[out["method"] == "original"].set_index("target")
    first = original.loc["first_post"]
    assert first["conf_low"] == pytest.approx(beta[0] - z * rows["std_error"].iloc[0], abs=1e-10)
    avg_se = math.sqrt(sigma.sum()) / 3
    assert original.loc["avg_post", "conf_high"] == pytest.approx(
        beta.mean() + z * avg_se, abs=1e-10
    )
    robust = out[out["restriction"] != "none"]
    assert (robust["conf_low"] <= robust["conf_high"]).all()
    fig = robustness_figures.honestdid_figure(out, language="en")
    assert len(fig.axes) == 4
    with pytest.raises(SpecificationError, match="exclude_terms"):
        honest_sensitivity.honest_sensitivity(coef, vcov, exclude_terms=["rel_9"])
    with pytest.raises(SpecificationError, match="consecutive"):
        honest_sensitivity.honest_sensitivity(coef, vcov, exclude_terms=["rel_1"])


def test_honestdid_input_is_the_imputation_event_study_with_its_vcov(
    panel: pd.DataFrame, tmp_path
) -> None:
    # the files rule estimate_staggered writes and rule estimate_honestdid reads (CSV round trip)
    estimates, vcov = staggered_did.staggered_estimates_with_vcov(panel, CONTROLS, cs_control_groups=())
    estimates.to_csv(tmp_path / "staggered.csv", index=False)
    vcov.to_csv(tmp_path / "imputation_event_study_vcov.csv", index_label="term")
    reported = pd.read_csv(tmp_path / "staggered.csv")
    vcov = pd.read_csv(tmp_path / "imputation_event_study_vcov.csv", index_col="term")
    coef, sigma, exclude = honest_sensitivity.honest_event_study(reported, vcov, window=(-4, 3))
    # the window's event times, re-expressed relative to e = -1 with their covariance: b_e - b_-1
    terms = [f"rel_{k}" for k in (-4, -3, -2, 0, 1, 2, 3)]
    assert list(coef.index) == list(sigma.index) == list(sigma.columns) == terms and exclude == []
    b = rows(reported, "imputation_dynamic")["estimate"]
    np.testing.assert_allclose(coef, b[terms].to_numpy() - b["rel_-1"], rtol=0, atol=1e-14)
    v = vcov.to_numpy()
    i = {t: k for k, t in enumerate(vcov.index)}
    for s_, t_ in (("rel_0", "rel_0"), ("rel_-2", "rel_1")):
        want = (
            v[i[s_], i[t_]]
            - v[i[s_], i["rel_-1"]]
            - v[i["rel_-1"], i[t_]]
            + v[i["rel_-1"], i["rel_-1"]]
        )
        assert sigma.loc[s_, t_] == pytest.approx(want, rel=1e-12)
    out = honest_sensitivity.honest_sensitivity(
        coef, sigma, source="imputation", Mbar_grid=(1.0,), M_grid=(0.0,), n_draws=200
    )
    assert set(out["event_study"]) == {"imputation"} and set(out["base_period"]) == {-1}
    assert set(out["pre_periods"]) == {"-4..-2"} and set(out["post_periods"]) == {"0..3"}
    first = out[(out["method"] == "original") & (out["target"] == "first_post")].iloc[0]
    z = stats.norm.ppf(0.975)
    assert first["conf_low"] == pytest.approx(
        coef["rel_0"] - z * math.sqrt(sigma.loc["rel_0", "rel_0"]), abs=1e-10
    )
    # the table and the figure state the event study and its base period
    note = robustness_figures.honestdid_note(out, language="en")
    assert note.startswith("Input: the imputation (Borusyak-Jaravel-Spiess) event study")
    assert (
        "differences from the coefficient at event time -1" in note
        and "pre-periods -4..-2, post-periods 0..3" in note
    )
    fig = robustness_figures.honestdid_figure(out, language="en")
    assert fig.get_suptitle() == robustness_figures.honestdid_note(out, language="en", short=True)
    assert "以第 -1 期为省略的基期" in robustness_figures.honestdid_note(out.assign(event_study="twfe"))
    # the TWFE option reads the TWFE event study and leaves its binned endpoints out
    twfe, twfe_vcov = _event_study_files(panel, tmp_path, window=(-4, 3))
    coef, _, exclude = honest_sensitivity.honest_event_study(twfe, twfe_vcov, source="twfe", window=(-4, 3))
    assert "rel_-1" not in coef.index and exclude == ["rel_-4", "rel_3"]
    with pytest.raises(SpecificationError, match="one of"):
        honest_sensitivity.honest_event_study(twfe, twfe_vcov, source="cs")
    with pytest.raises(SpecificationError, match="not in the reported event study"):
        honest_sensitivity.honest_event_study(
            twfe, twfe_vcov
        )  # the imputation event study is not in event_study.csv


def test_honestdid_reads_the_imputation_event_study_by_default_and_twfe_as_an_option(
    tmp_path,
) -> None:
    """Dry runs of rule estimate_honestdid in a copy of the workflow: by default it waits for
    estimate_staggered (the imputation event study and its vcov), with `event_study: twfe` for
    estimate_event_study instead."""
    import yaml

    from workflow_helpers import copy_workflow, snakemake

    work = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((work / "config" / "config.yaml").read_text(encoding="utf-8"))
    assert config["robustness"]["honestdid"]["event_study"] == "imputation"
    (work / "twfe.yaml").write_text("robustness:\n  honestdid:\n    event_study: twfe\n")
    target = "results/estimates/honestdid.csv"
    for overlay, needed, not_needed in (
        ((), "estimate_staggered", "estimate_event_study"),
        (("--configfile", "twfe.yaml"), "estimate_event_study", "estimate_staggered"),
    ):
        proc = snakemake(work, target, "--dry-run", *overlay)
        jobs = proc.stdout + proc.stderr
        assert f"rule {needed}:" in jobs and f"rule {not_needed}:" not in jobs, jobs[-2000:]


# ------------------------------------------------------------------------------------------------
# Two-treatment design
# ------------------------------------------------------------------------------------------------


def test_pilot_order_on_hand_cases() -> None:
    df = pd.DataFrame(
        {
            "sc_year": [2012, 2014, 2013, np.nan, 2012, np.nan],
            "lc_year": [2017, 2010, 2013, 2010, np.nan, np.nan],
            "dual_year": [2017, 2014, 2013, np.nan, np.nan, np.nan],
            "dual_post": [1, 1, 0, 0, 0, 0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    order = pilot_order.pilot_order(df)
    assert order.tolist() == ["sc_first", "lc_first", "same_year", "", "", ""]
    assert list(order.index) == [10, 11, 12, 13, 14, 15]
    ind = pilot_order.order_indicators(df)
    assert ind.to_numpy().tolist() == [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
    ]
    assert pilot_order.first_pilot_year(df).tolist()[:4] == [2012, 2010, 2013, 2010]
    bad = df.assign(dual_year=[2012, 2014, 2013, np.nan, np.nan, np.nan])
    with pytest.raises(SpecificationError, match="later"):
        pilot_order.pilot_order(bad)


def _imputation_inputs(df: pd.DataFrame, states: list[str]) -> pd.DataFrame:
    data = pd.concat([df, pilot_order.order_indicators(df), pilot_order.first_pilot_year(df)], axis=1)
    return data


@pytest.mark.usefixtures("exact_did2s")
@pytest.mark.parametrize("covariates", [[], ["ln_gdp_pc"]])
def test_state_imputation_equals_did2s(make_panel, covariates: list[str]) -> None:
    df = planted(make_panel(n_cities=36, seed=11), sc_only=0.1, lc_only=0.05, dual=0.3)
    states = list(pilot_order.STATE_TERMS)
    data = _imputation_inputs(df, states)
    fit = pilot_order.state_imputation(data, states, covariates)
    ref_data = data.assign(
        city=pd.factorize(data["city_code"])[0],
        _treated=(data["year"] >= data["first_pilot_year"]).astype(bool),
    )
    first = f"~ {' + '.join(covariates) if covariates else '0'} | city + year"
    ref = pf.did2s(
        ref_data,
        yname="lq",
        first_stage=first,
        second_stage="~ 0 + " + " + ".join(states),
        treatment="_treated",
        cluster="city",
    )
    np.testing.assert_allclose(fit.coef[states], ref.coef()[states], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.se[states], ref.se()[states], rtol=1e-6)
    # dense least squares on explicit dummies, untreated rows only
    untreated = ~ref_data["_treated"].to_numpy()
    design = pd.concat(
        [
            pd.get_dummies(data["city_code"], dtype=float),
            pd.get_dummies(data["year"], drop_first=True, dtype=float),
            data[covariates],
        ],
        axis=1,
    ).to_numpy()
    coef, *_ = np.linalg.lstsq(design[untreated], data["lq"].to_numpy()[untreated], rcond=None)
    tau = data["lq"].to_numpy() - design @ coef
    dense = [tau[data[s].to_numpy() == 1].mean() for s in states]
    np.testing.assert_allclose(fit.coef[states], dense, rtol=0, atol=1e-10)
    assert fit.df_t == fit.n_clusters - 1 == 35


def test_state_imputation_rejects_bad_states(panel: pd.DataFrame) -> None:
    data = _imputation_inputs(recompute(panel), [])
    with pytest.raises(SpecificationError, match="mutually exclusive"):
        pilot_order.state_imputation(data, ["sc_only_post", "dual_post"])  # lc_only rows uncovered
    with pytest.raises(SpecificationError, match="lack"):
        pilot_order.state_imputation(data, ["nope"])
    with pytest.raises(SpecificationError, match="missing"):
        pilot_order.state_imputation(
            data.assign(lq=np.where(data.index == 0, np.nan, data["lq"])), ["dual_post"]
        )


def test_two_treatment_design_recovers_planted_states_and_orders(make_panel) -> None:
    base = with_orders(make_panel(seed=3))
    df = planted(
        base,
        sc_only=0.10,
        lc_only=0.05,
        dual=0.30,
        dual_by_order={"sc_first": 0.20, "same_year": -0.10},
    )
    out = pilot_order.two_treatment_design(df, ["ln_gdp_pc"])
    assert list(out.columns) == list(estimation.TIDY_COLUMNS)
    truth_order = {"dual_sc_first": 0.50, "dual_lc_first": 0.30, "dual_same_year": 0.20}
    # the pooled dual effect is heterogeneous by order: only imputation keeps the single states clean
    imp = rows(out, "imputation_states")
    assert imp.loc["sc_only_post", "estimate"] == pytest.approx(0.10, abs=0.02)
    twfe_sc = rows(out, "twfe_states").loc["sc_only_post", "estimate"]
    assert abs(twfe_sc - 0.10) > 2 * abs(imp.loc["sc_only_post", "estimate"] - 0.10)
    assert imp.loc["lc_only_post", "estimate"] == pytest.approx(0.05, abs=0.02)
    for kind in ("twfe", "imputation"):
        st_rows = rows(out, f"{kind}_states")
        od = rows(out, f"{kind}_order")
        assert od.loc["sc_only_post", "estimate"] == pytest.approx(0.10, abs=0.02)
        assert od.loc["lc_only_post", "estimate"] == pytest.approx(0.05, abs=0.02)
        for term, value in truth_order.items():
            assert od.loc[term, "estimate"] == pytest.approx(value, abs=0.03), (kind, term)
        assert od.loc["wald: dual_sc_first = dual_lc_first", "p_value"] < 1e-6
        inc = od.loc["lincom: dual_lc_first - lc_only_post", "estimate"]
        assert inc == pytest.approx(0.25, abs=0.03)
        syn = st_rows.loc["lincom: " + pilot_order.SYNERGY_LABEL]
        comb = (
            st_rows.loc["dual_post", "estimate"]
            - st_rows.loc["sc_only_post", "estimate"]
            - st_rows.loc["lc_only_post", "estimate"]
        )
        assert syn["estimate"] == pytest.approx(comb, abs=1e-12)
    assert imp.loc["dual_post", "vcov"].startswith("did2s GMM by city_code")
    assert imp.loc["dual_post", "n_clusters"] == 60


def test_imputation_states_average_heterogeneous_effects(make_panel) -> None:
    """With a dual effect growing in exposure, the imputation estimate is the average effect over the
    dual city-years (what was planted), and the single-pilot states stay unbiased."""
    df = make_panel(
        dual_effect=lambda e: 0.1 + 0.04 * e,
        sc_only_effect=0.08,
        lc_only_effect=0.04,
        noise_sd=0.01,
        seed=9,
    )
    truth = (0.1 + 0.04 * df.loc[df["dual_post"] == 1, "years_since_dual"]).mean()
    out = pilot_order.two_treatment_design(df, CONTROLS)
    imp = rows(out, "imputation_states")
    assert imp.loc["dual_post", "estimate"] == pytest.approx(truth, abs=0.01)
    assert imp.loc["sc_only_post", "estimate"] == pytest.approx(0.08, abs=0.01)
    assert imp.loc["lc_only_post", "estimate"] == pytest.approx(0.04, abs=0.01)


def test_two_treatment_design_leaves_out_an_empty_order(panel: pd.DataFrame, caplog) -> None:
    out = pilot_order.two_treatment_design(panel, CONTROLS)  # the synthetic pattern has no same-year city
    assert "dual_same_year" not in set(out["term"])
    assert "wald: dual_sc_first = dual_lc_first" in set(rows(out, "imputation_order").index)
    assert "no dual city in pilot order" in caplog.text


# ------------------------------------------------------------------------------------------------
# The grid: parsing
# ------------------------------------------------------------------------------------------------


def test_parse_grid_validates() -> None:
    specs = spec_grid.parse_grid(
        [
            {"name": "a", "label": {"zh": "甲", "en": "A"}},
            {"name": "b", "drop_if": {"is_municipality": 1}, "winsorise": [0.01, 0.99]},
            {"name": "c", "trends": {"variables": ["gov"], "baseline_end": 2009}},
        ]
    )
    assert specs[0].display("zh") == "甲" and specs[1].display("en") == "b"
    assert specs[1].drop_if == {"is_municipality": (1,)} and specs[1].winsorise == (0.01, 0.99)
    assert specs[2].trends == ("gov",) and specs[2].trend_baseline_end == 2009
    bad = [
        ([], "no specification"),
        ([{"name": "a"}, {"name": "a"}], "repeated"),
        ([{"name": "1a"}], "identifiers"),
        ([{"name": "a", "clustr": "province"}], "unknown field"),
        ([{"name": "a", "winsorise": [0.99, 0.01]}], "winsorise"),
        ([{"name": "a", "treatment_lag": -1}], "treatment_lag"),
        ([{"name": "a", "trends": {"variables": ["gov"]}}], "trends"),
        ([{"name": "a", "bootstrap": "yes"}], "bootstrap"),
        ([{"name": "a", "drop_if": {"x": []}}], "no value"),
    ]
    for raw, message in bad:
        with pytest.raises(SpecificationError, match=message):
            spec_grid.parse_grid(raw)


# ------------------------------------------------------------------------------------------------
# The grid: each specification changes exactly what it says
# ------------------------------------------------------------------------------------------------


def build(panel: pd.DataFrame, raw: dict, **kwargs) -> spec_grid.SpecData:
    (spec,) = spec_grid.parse_grid([raw])
    return spec_grid.build_spec(panel, spec, controls=CONTROLS, **kwargs)


def assert_same_except(a: pd.DataFrame, b: pd.DataFrame, changed: set[str]) -> None:
    """b has a's rows (same index) and columns, plus new ones; only `changed` columns differ."""
    assert list(b.index) == list(a.index)
    for col in a.columns:
        if col in changed:
            continue
        pd.testing.assert_series_equal(a[col], b[col], check_names=True)


def test_baseline_spec_is_model_2(panel: pd.DataFrame) -> None:
    df = with_flags(panel)
    sd = build(df, {"name": "baseline"})
    assert sd.data is df
    assert (sd.outcome, sd.treatment, sd.controls) == ("lq", "dual_post", tuple(CONTROLS))
    assert (sd.fixed_effects, sd.cluster, sd.sample) == (("city_code", "year"), "city_code", "full")


def test_drop_if_drops_exactly_those_rows(panel: pd.DataFrame) -> None:
    df = with_flags(panel)
    sd = build(df, {"name": "m", "drop_if": {"is_municipality": [1]}})
    assert set(sd.data.index) == set(df.index[df["is_municipality"] == 0])
    assert_same_except(df.loc[sd.data.index], sd.data, set())
    assert sd.sample == "is_municipality not in {1}"
    sd = build(df, {"name": "c", "drop_if": {"is_provincial_capital": [1], "province": ["P01"]}})
    gone = (df["is_provincial_capital"] == 1) | (df["province"] == "P01")
    assert set(sd.data.index) == set(df.index[~gone])
    with pytest.raises(SpecificationError, match="no row"):
        build(df, {"name": "x", "drop_if": {"is_municipality": ["1"]}})  # strings never match
    with pytest.raises(SpecificationError, match="unknown column"):
        build(df, {"name": "x", "drop_if": {"nope": [1]}})


def test_winsorise_changes_only_the_outcome_tails(panel: pd.DataFrame) -> None:
    sd = build(panel, {"name": "w", "winsorise": [0.01, 0.99]})
    assert_same_except(panel, sd.data, {"lq"})
    lo, hi = np.quantile(panel["lq"], [0.01, 0.99])
    np.testing.assert_array_equal(sd.data["lq"], np.clip(panel["lq"], lo, hi))
    changed = (sd.data["lq"] != panel["lq"]).sum()
    assert 0 < changed <= math.ceil(0.02 * len(panel)) + 2


def test_cluster_bootstrap_and_fixed_effects_change_only_the_model(panel: pd.DataFrame) -> None:
    sd = build(panel, {"name": "p", "cluster": "province", "bootstrap": True})
    assert sd.data is panel and sd.cluster == "province" and sd.spec.bootstrap
    sd = build(
        panel, {"name": "f", "fixed_effects": ["city_code", "province^year"], "controls": []}
    )
    assert sd.fixed_effects == ("city_code", "province^year") and sd.controls == ()
    assert sd.data is panel


def test_lagged_treatment(panel: pd.DataFrame) -> None:
    sd = build(panel, {"name": "lag", "treatment_lag": 1})
    assert sd.treatment == "dual_post_lag1"
    assert_same_except(panel, sd.data, set())
    shifted = panel.groupby("city_code")["dual_post"].shift(1).fillna(0).astype("int64")
    np.testing.assert_array_equal(sd.data["dual_post_lag1"], shifted)  # nobody is treated in 2006


def test_derived_outcomes(panel: pd.DataFrame) -> None:
    sd = build(panel, {"name": "ln", "outcome": "ln_it_emp"})
    assert sd.outcome == "ln_it_emp"
    np.testing.assert_allclose(sd.data["ln_it_emp"], np.log(panel["it_emp"]), rtol=0, atol=0)
    assert_same_except(panel, sd.data, set())
    sd = build(panel, {"name": "sh", "outcome": "it_emp_share"})
    np.testing.assert_allclose(sd.data["it_emp_share"], 100 * panel["it_emp"] / panel["total_emp"])
    sd = build(panel, {"name": "g", "outcome": "ln_gdp_pc"})
    assert sd.data is panel and sd.outcome == "ln_gdp_pc"
    with pytest.raises(SpecificationError, match="neither"):
        build(panel, {"name": "x", "outcome": "nope"})
    with pytest.raises(SpecificationError, match="> 0"):
        build(
            panel.assign(it_emp=panel["it_emp"].where(panel.index != 7, 0.0)),
            {"name": "x", "outcome": "ln_it_emp"},
        )


def test_baseline_characteristics_times_trend(panel: pd.DataFrame) -> None:
    raw = {"name": "t", "trends": {"variables": ["gov", "ln_density"], "baseline_end": 2009}}
    sd = build(panel, raw)
    assert sd.controls == (*CONTROLS, "gov_base_x_trend", "ln_density_base_x_trend")
    assert_same_except(panel, sd.data, set())
    for var in ("gov", "ln_density"):
        base = panel[panel["year"] <= 2009].groupby("city_code")[var].mean()
        expected = panel["city_code"].map(base) * (panel["year"] - 2006)
        np.testing.assert_allclose(sd.data[f"{var}_base_x_trend"], expected, rtol=1e-12)
    with pytest.raises(SpecificationError, match="not panel columns"):
        build(panel, {"name": "x", "trends": {"variables": ["nope"], "baseline_end": 2009}})
    with pytest.raises(SpecificationError, match="baseline year"):
        build(panel, {"name": "x", "trends": {"variables": ["gov"], "baseline_end": 1990}})


# ------------------------------------------------------------------------------------------------
# The grid: treatment recodings from pilot lists
# ------------------------------------------------------------------------------------------------

POLICY = {
    "smart_city": {"batch_years": [2012, 2013, 2014]},
    "low_carbon": {"batch_years": [2010, 2012, 2017]},
    "province_pilot_treats_cities": True,
    "subcity_pilot_treats_city": False,
}


@pytest.fixture
def coded(panel: pd.DataFrame):
    """The synthetic panel recoded from hand-made pilot lists, with the cities each rule touches."""
    cities = panel.drop_duplicates("city_code")[["city_code", "province"]].reset_index(drop=True)
    master = cities.assign(city_name=cities["city_code"])
    p2 = cities[cities["province"] == "P02"]["city_code"].tolist()
    others = cities[~cities["province"].isin(["P02"])]["city_code"].tolist()
    a, b, c, d, e = others[:5]
    cols = ["batch", "name", "level", "province", "city_code"]
    prov = dict(zip(cities["city_code"], cities["province"], strict=True))
    sc = pd.DataFrame(
        [
            (1, "A", "prefecture", prov[a], a),
            (1, "B", "prefecture", prov[b], b),
            (3, "C", "prefecture", prov[c], c),
            (2, "D district", "district", prov[d], d),
            (3, "P2 city", "prefecture", "P02", p2[0]),
        ],
        columns=cols,
    )
    lc = pd.DataFrame(
        [
            (1, "P02 province", "province", "P02", ""),
            (2, "A", "prefecture", prov[a], a),
            (3, "E", "prefecture", prov[e], e),
            (2, "C", "prefecture", prov[c], c),
        ],
        columns=cols,
    )
    lists = {"smart_city": sc, "low_carbon": lc}
    recoder = policy_recoding.PolicyRecoder(lists, master, POLICY, last_year=2023)
    base = recoder(with_flags(panel), {})
    return base, recoder, {"a": a, "b": b, "c": c, "d": d, "e": e, "p2": p2}


def _changed_cities(a: pd.DataFrame, b: pd.DataFrame, column: str) -> set[str]:
    diff = ~np.isclose(a[column], b[column], equal_nan=True)
    return set(a.loc[diff, "city_code"])


def test_recoding_under_the_configured_policy_is_the_panel(coded) -> None:
    base, recoder, who = coded
    policy_recoding.check_coding(base, recoder(base, {}))
    assert base.loc[base["city_code"] == who["c"], "sc_year"].iloc[0] == 2014
    altered = base.assign(dual_post=1 - base["dual_post"])
    with pytest.raises(SpecificationError, match="dual_post"):
        policy_recoding.check_coding(altered, recoder(base, {}))


def test_policy_specs_recode_exactly_the_cities_they_concern(coded) -> None:
    base, recoder, who = coded
    treatment_cols = ["sc_year", "lc_year", "dual_year", "sc_post", "lc_post", "dual_post"]

    def recoded(policy: dict) -> pd.DataFrame:
        sd = build(base, {"name": "p", "policy": policy}, recode=recoder)
        assert_same_except(base, sd.data, set(treatment.TREATMENT_COLUMNS))
        return sd.data

    sc3 = recoded({"smart_city": {"batch_years": [2012, 2013, 2015]}})
    assert _changed_cities(base, sc3, "sc_year") == {who["c"], who["p2"][0]}
    assert (sc3.loc[sc3["city_code"] == who["c"], "sc_year"] == 2015).all()
    assert _changed_cities(base, sc3, "lc_year") == set()

    lc2 = recoded({"low_carbon": {"batch_years": [2010, 2013, 2017]}})
    assert _changed_cities(base, lc2, "lc_year") == {who["a"], who["c"]}
    assert _changed_cities(base, lc2, "sc_year") == set()

    no_prov = recoded({"province_pilot_treats_cities": False})
    assert _changed_cities(base, no_prov, "lc_year") == set(who["p2"])
    assert no_prov.loc[no_prov["province"] == "P02", "lc_year"].isna().all()

    subcity = recoded({"subcity_pilot_treats_city": True})
    assert _changed_cities(base, subcity, "sc_year") == {who["d"]}
    assert (subcity.loc[subcity["city_code"] == who["d"], "sc_year"] == 2013).all()
    for frame in (sc3, lc2, no_prov, subcity):
        assert set(treatment_cols) <= set(frame.columns)
    with pytest.raises(SpecificationError, match="unknown policy setting"):
        recoded({"smart_cty": {"batch_years": [2012, 2013, 2015]}})
    with pytest.raises(SpecificationError, match="pilot lists needed"):
        build(base, {"name": "p", "policy": {"subcity_pilot_treats_city": True}})


def test_load_pilot_lists_prefers_the_raw_dir(tmp_path) -> None:
    header = "batch,name,level,province,city_code,source\n"
    shipped = {}
    for key, name in policy_recoding.PILOT_FILES.items():
        path = tmp_path / f"shipped_{name}"
        path.write_text(header + "1,甲市,prefecture,P01,110100,shipped\n", encoding="utf-8")
        shipped[key] = path
    raw = tmp_path / "raw"
    (raw / "policy").mkdir(parents=True)
    (raw / "policy" / "smart_city_pilots.csv").write_text(
        header + "2,乙市,prefecture,P01,110200,user\n", encoding="utf-8"
    )
    lists = policy_recoding.load_pilot_lists(raw, shipped, {"P01"})
    assert lists["smart_city"]["source"].tolist() == ["user"]
    assert lists["low_carbon"]["source"].tolist() == ["shipped"]


# ------------------------------------------------------------------------------------------------
# The grid: estimates and table
# ------------------------------------------------------------------------------------------------


def test_run_grid_estimates_match_pyfixest(panel: pd.DataFrame) -> None:
    df = with_flags(panel)
    specs = spec_grid.parse_grid(
        [
            {"name": "baseline"},
            {"name": "drop_caps", "drop_if": {"is_provincial_capital": [1]}},
            {"name": "lag", "treatment_lag": 1},
            {"name": "share", "outcome": "it_emp_share"},
            {"name": "prov", "cluster": "province", "bootstrap": True},
        ]
    )
    boot = {"reps": 99, "seed": 7, "weights_type": "webb"}
    grid, described = spec_grid.run_grid(df, specs, controls=CONTROLS, bootstrap=boot)
    fml = " + ".join(CONTROLS)
    refs = {
        "baseline": ("lq", "dual_post", df),
        "drop_caps": ("lq", "dual_post", df[df["is_provincial_capital"] == 0]),
        "lag": (
            "lq",
            "dual_post_lag1",
            df.assign(dual_post_lag1=(df["year"] >= df["dual_year"] + 1).astype(int)),
        ),
        "share": (
            "it_emp_share",
            "dual_post",
            df.assign(it_emp_share=100 * df["it_emp"] / df["total_emp"]),
        ),
    }
    for name, (y, term, data) in refs.items():
        ref = pf.feols(
            f"{y} ~ {term} + {fml} | city_code + year", data=data, vcov={"CRV1": "city_code"}
        )
        row = grid[(grid["model"] == name) & (grid["term"] == term)].iloc[0]
        assert row["estimate"] == pytest.approx(float(ref.coef()[term]), abs=1e-8), name
        assert row["n_obs"] == ref._N
    prov = rows(grid, "prov")
    assert prov.loc["dual_post", "n_clusters"] == df["province"].nunique()
    p_boot = prov.loc["wildboot: dual_post", "p_value"]
    assert 0 <= p_boot <= 1 and "seed 7" in prov.loc["wildboot: dual_post", "vcov"]
    again, _ = spec_grid.run_grid(df, [specs[-1]], controls=CONTROLS, bootstrap=boot)
    assert rows(again, "prov").loc["wildboot: dual_post", "p_value"] == p_boot
    assert described["model"].tolist() == [s.name for s in specs]
    assert described.set_index("model").loc["lag", "treatment"] == "dual_post_lag1"
    with pytest.raises(SpecificationError, match="no settings"):
        spec_grid.run_grid(df, [specs[-1]], controls=CONTROLS)

    table = robustness_figures.robustness_table(grid, described, language="en", bootstrap=boot)
    md = tables.to_markdown(table)
    assert md.count("\n| ") == 2 + len(specs)  # header, rule and one line per spec
    assert "IT employment share (%)" in md and "province (" in md and "seed 7" in md
    base = rows(grid, "baseline").loc["dual_post"]
    cell = tables.format_number(base["estimate"], 3) + tables.significance_stars(base["p_value"])
    first = table.panels[0].rows[0].cells
    assert first[:4] == (
        "baseline",
        "IT employment location quotient",
        cell,
        f"({base['std_error']:.3f})",
    )
    assert first[-1] == f"city ({df['city_code'].nunique()})" and first[4] == ""
    tex = tables.to_latex(robustness_figures.robustness_table(grid, described, language="zh", bootstrap=boot))
    assert "\\toprule" in tex and "省份" in tex
