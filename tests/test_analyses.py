"""Tests of dualpilot.analyses: planted effects are recovered, indicators are built as specified on
hand-made cases, and the test statistics equal direct computations from an independent fit
(linearmodels PanelOLS in the xtreg/reghdfe convention, which equals ours exactly; see
test_estimation.py).

Recovery tolerance: |estimate - truth| < 0.02 on panels with noise sd 0.02, where the clustered SEs are
about 0.003-0.008; the seeds are fixed, so these checks are deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linearmodels.panel import PanelOLS
from scipy import stats

from dualpilot import analyses as an
from dualpilot.estimation import TIDY_COLUMNS, EstimationError

TOL = 0.02


def by_term(out: pd.DataFrame, model: str) -> pd.DataFrame:
    return out.loc[out["model"] == model].set_index("term")


def panelols_xtreg(df: pd.DataFrame, regressors: list[str]):
    """Independent fit: entity effects + constant + year dummies, CRV1 by entity, Stata small-sample."""
    panel = df.set_index(["city_code", "year"])
    years = pd.get_dummies(df["year"], prefix="y", drop_first=True, dtype=float)
    years.index = panel.index
    exog = sm.add_constant(pd.concat([panel[regressors].astype(float), years], axis=1))
    return PanelOLS(panel["lq"], exog, entity_effects=True).fit(
        cov_type="clustered", cluster_entity=True, debiased=True, group_debias=True
    )


# ------------------------------------------------------------------------------------------------
# baseline
# ------------------------------------------------------------------------------------------------


def test_baseline_recovers_the_planted_effect(make_panel, baseline_controls):
    panel = make_panel(dual_effect=0.3, seed=1)
    out = an.baseline(panel, baseline_controls)
    assert list(out.columns) == list(TIDY_COLUMNS)
    assert list(out["model"]) == ["(1)", "(2)", "(3)"]
    assert set(out["term"]) == {"dual_post"}
    assert (out["estimate"] - 0.3).abs().max() < TOL
    assert list(out["fixed_effects"]) == ["city_code + year"] * 2 + ["city_code + province^year"]
    assert list(out["controls"]) == ["none"] + [" + ".join(baseline_controls)] * 2
    # model (3): the one-city province's province-years are singletons, dropped as in reghdfe
    assert list(out["n_obs"]) == [len(panel), len(panel), len(panel) - 18]
    assert list(out["n_clusters"]) == [60, 60, 59]


def test_baseline_with_controls_and_bootstrap_rows(make_panel, baseline_controls):
    panel = make_panel(dual_effect=0.3, seed=1)
    out = an.baseline(
        panel,
        baseline_controls,
        include_controls=True,
        bootstrap={"reps": 99, "seed": 5, "weights_type": "webb"},
    )
    m2 = by_term(out, "(2)")
    assert list(m2.index) == ["dual_post", *baseline_controls, "wildboot: dual_post"]
    boot = m2.loc["wildboot: dual_post"]
    # a t statistic near 40 is never reached by the 99 draws: p = (1 + 0) / (1 + 99), never 0
    assert boot["p_value"] == pytest.approx(1 / 100)
    assert boot["estimate"] == m2.loc["dual_post", "estimate"]
    assert "webb weights, 99 draws, seed 5" in boot["vcov"]
    assert (out["term"] == "wildboot: dual_post").sum() == 3


def test_options_are_passed_to_every_model(make_panel):
    panel = make_panel(dual_effect=0.3, seed=1)
    out = an.baseline(panel, [], options={"vcov": "hetero", "cluster": None, "outcome": "lq"})
    assert out["vcov"].str.startswith("HC1").all()
    assert out["n_clusters"].isna().all()
    with pytest.raises(EstimationError, match="unknown estimation options"):
        an.baseline(panel, [], options={"clustr": "province"})


# ------------------------------------------------------------------------------------------------
# single pilots versus the dual pilot
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_states(make_panel) -> pd.DataFrame:
    return make_panel(dual_effect=0.3, sc_only_effect=0.1, lc_only_effect=0.05, seed=2)


def test_single_vs_dual_recovers_each_state(three_states, baseline_controls):
    out = an.single_vs_dual(three_states, baseline_controls)
    assert list(out.columns) == list(TIDY_COLUMNS)
    joint = by_term(out, "joint")
    assert list(joint.index) == [
        "sc_only_post",
        "lc_only_post",
        "dual_post",
        "wald: dual_post = sc_only_post",
        "wald: dual_post = lc_only_post",
        "lincom: synergy = dual_post - sc_only_post - lc_only_post",
    ]
    truth = {"sc_only_post": 0.1, "lc_only_post": 0.05, "dual_post": 0.3}
    for term, value in truth.items():
        assert abs(joint.loc[term, "estimate"] - value) < TOL
    synergy = joint.loc["lincom: synergy = dual_post - sc_only_post - lc_only_post", "estimate"]
    assert abs(synergy - 0.15) < TOL
    assert set(out["model"]) == {"joint", "sc_alone", "lc_alone"}
    assert list(by_term(out, "sc_alone").index) == ["sc_post"]
    assert list(by_term(out, "lc_alone").index) == ["lc_post"]


def test_single_vs_dual_tests_equal_direct_computation(three_states, baseline_controls):
    out = by_term(an.single_vs_dual(three_states, baseline_controls), "joint")
    data = an.pilot_states(three_states)
    terms = ["sc_only_post", "lc_only_post", "dual_post"]
    res = panelols_xtreg(data, [*terms, *baseline_controls])
    b = res.params[terms].to_numpy()
    v = res.cov.loc[terms, terms].to_numpy()
    df = data["city_code"].nunique() - 1
    for other, idx in (("sc_only_post", 0), ("lc_only_post", 1)):
        r = np.zeros(3)
        r[2], r[idx] = 1.0, -1.0
        f_stat = (r @ b) ** 2 / (r @ v @ r)
        row = out.loc[f"wald: dual_post = {other}"]
        assert row["t_stat"] == pytest.approx(f_stat, rel=1e-7)
        assert row["p_value"] == pytest.approx(stats.f.sf(f_stat, 1, df), rel=1e-6)
    w = np.array([-1.0, -1.0, 1.0])
    row = out.loc["lincom: synergy = dual_post - sc_only_post - lc_only_post"]
    assert row["estimate"] == pytest.approx(w @ b, rel=1e-8)
    assert row["std_error"] == pytest.approx(np.sqrt(w @ v @ w), rel=1e-8)
    assert row["p_value"] == pytest.approx(
        2 * stats.t.sf(abs(w @ b) / np.sqrt(w @ v @ w), df), rel=1e-6
    )


def test_pilot_states_on_hand_cases():
    df = pd.DataFrame(
        {"sc_post": [0, 1, 0, 1, 1], "lc_post": [0, 0, 1, 1, 0], "dual_post": [0, 0, 0, 1, 0]}
    )
    out = an.pilot_states(df)
    assert out["sc_only_post"].tolist() == [0, 1, 0, 0, 1]
    assert out["lc_only_post"].tolist() == [0, 0, 1, 0, 0]
    states = out[["sc_only_post", "lc_only_post", "dual_post"]].sum(axis=1)
    assert states.tolist() == [0, 1, 1, 1, 1]  # at most one state per row
    with pytest.raises(EstimationError, match="dual_post != sc_post"):
        an.pilot_states(df.assign(dual_post=[0, 0, 0, 0, 1]))
    with pytest.raises(EstimationError, match="disagrees"):
        an.pilot_states(df.assign(sc_only_post=[0, 1, 0, 1, 1]))
    with pytest.raises(EstimationError, match="0/1"):
        an.pilot_states(df.assign(sc_post=[0, 2, 0, 1, 1]))


# ------------------------------------------------------------------------------------------------
# event study
# ------------------------------------------------------------------------------------------------


def test_event_time_indicators_bin_the_endpoints():
    years = [2003, 2005, 2006, 2010, 2011, 2012, 2013, 2019, 2020, 2021]
    df = pd.DataFrame(
        {"year": years + [2003, 2012], "dual_year": [2012.0] * len(years) + [np.nan, np.nan]}
    )
    out = an.event_time_indicators(df, window=(-6, 8), base=-1)
    expected_cols = [f"rel_{k}" for k in range(-6, 9) if k != -1]
    assert list(out.columns) == expected_cols
    # relative times -9, -7, -6, -2, -1 (base), 0, 1, 7, 8, 9, then two never-treated rows
    expected = {
        0: "rel_-6",
        1: "rel_-6",
        2: "rel_-6",
        3: "rel_-2",
        5: "rel_0",
        6: "rel_1",
        7: "rel_7",
    }
    expected.update({8: "rel_8", 9: "rel_8"})
    for i in range(len(df)):
        row = out.iloc[i]
        if i in expected:
            assert row[expected[i]] == 1 and row.sum() == 1, (i, row[row == 1])
        else:
            assert row.sum() == 0, i  # base period and never-treated rows
    assert out.index.equals(df.index)


def test_event_time_indicators_validate_the_window():
    df = pd.DataFrame({"year": [2010], "dual_year": [2012.0]})
    with pytest.raises(EstimationError, match="outside the window"):
        an.event_time_indicators(df, window=(-3, 3), base=-5)
    with pytest.raises(EstimationError, match="start < end"):
        an.event_time_indicators(df, window=(3, -3), base=0)


def dynamic(since: np.ndarray) -> np.ndarray:
    """Planted dynamic effect: 0.1 in the first year, +0.03 a year, flat from 8 years on."""
    return 0.1 + 0.03 * np.minimum(since, 8)


@pytest.fixture(scope="module")
def dynamic_panel(make_panel) -> pd.DataFrame:
    return make_panel(dual_effect=dynamic, seed=3)


def test_event_study_recovers_dynamic_effects(dynamic_panel, baseline_controls):
    out = an.event_study(dynamic_panel, baseline_controls, window=(-6, 8), base=-1)
    assert list(out.columns) == list(TIDY_COLUMNS)
    terms = [f"rel_{k}" for k in range(-6, 9)] + ["wald: leads = 0"]
    assert list(out["term"]) == terms
    res = out.set_index("term")
    base = res.loc["rel_-1"]
    assert base["estimate"] == 0.0 and np.isnan(base["std_error"]) and np.isnan(base["p_value"])
    for k in range(-6, 9):
        truth = 0.0 if k < 0 else float(dynamic(np.array([k]))[0])
        assert abs(res.loc[f"rel_{k}", "estimate"] - truth) < TOL, k
    assert res.loc["wald: leads = 0", "p_value"] > 0.01
    assert (out["sample"] == "full").all() and (out["model"] == "event_study").all()


def test_event_study_leads_test_equals_direct_computation(dynamic_panel, baseline_controls):
    out = an.event_study(dynamic_panel, baseline_controls).set_index("term")
    ind = an.event_time_indicators(dynamic_panel)
    data = pd.concat([dynamic_panel, ind], axis=1)
    res = panelols_xtreg(data, [*ind.columns, *baseline_controls])
    leads = ["rel_-6", "rel_-5", "rel_-4", "rel_-3", "rel_-2"]
    b = res.params[leads].to_numpy()
    v = res.cov.loc[leads, leads].to_numpy()
    f_stat = b @ np.linalg.solve(v, b) / len(leads)
    row = out.loc["wald: leads = 0"]
    assert row["t_stat"] == pytest.approx(f_stat, rel=1e-7)
    assert row["p_value"] == pytest.approx(stats.f.sf(f_stat, 5, 59), rel=1e-6)
    np.testing.assert_allclose(out.loc["rel_3", "std_error"], res.std_errors["rel_3"], rtol=1e-8)


def test_event_study_not_yet_treated_controls(dynamic_panel, baseline_controls):
    out = an.event_study(dynamic_panel, baseline_controls, control_group="not_yet")
    ever = dynamic_panel["dual_year"].notna()
    assert (out["sample"] == "ever_treated").all()
    assert (out["n_obs"] == int(ever.sum())).all()
    res = out.set_index("term")
    assert abs(res.loc["rel_2", "estimate"] - float(dynamic(np.array([2]))[0])) < TOL
    with pytest.raises(EstimationError, match="control_group"):
        an.event_study(dynamic_panel, baseline_controls, control_group="never")


# ------------------------------------------------------------------------------------------------
# duration
# ------------------------------------------------------------------------------------------------


def test_duration_indicators_on_hand_cases():
    df = pd.DataFrame(
        {
            "dual_post": [0, 1, 1, 1, 1, 1, 0],
            "years_since_dual": [-2.0, 0.0, 1.0, 2.0, 5.0, 12.0, np.nan],
        }
    )
    out = an.duration_indicators(df, [[0, 1], [2, 3], [4, 5], [6, 99]])
    assert list(out.columns) == ["dur_0_1", "dur_2_3", "dur_4_5", "dur_6_99"]
    assert out.to_numpy().tolist() == [
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
    ]
    with pytest.raises(EstimationError, match=r"values \[12.0\]"):
        an.duration_indicators(df, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(EstimationError, match="sorted and disjoint"):
        an.duration_indicators(df, [[0, 2], [2, 99]])
    with pytest.raises(EstimationError, match="0 <= lo <= hi"):
        an.duration_indicators(df, [[1, 0]])


def test_duration_bins_recover_piecewise_effects(make_panel, baseline_controls):
    steps = {(0, 1): 0.1, (2, 3): 0.2, (4, 5): 0.3, (6, 99): 0.4}

    def piecewise(since):
        return np.select([(since >= lo) & (since <= hi) for lo, hi in steps], list(steps.values()))

    out = an.duration(make_panel(dual_effect=piecewise, seed=4), baseline_controls)
    assert list(out.columns) == list(TIDY_COLUMNS)
    bins = by_term(out, "bins")
    for (lo, hi), truth in steps.items():
        assert abs(bins.loc[f"dur_{lo}_{hi}", "estimate"] - truth) < TOL


def test_duration_linear_model_recovers_intercept_and_slope(make_panel, baseline_controls):
    out = an.duration(make_panel(dual_effect=lambda s: 0.1 + 0.02 * s, seed=6), baseline_controls)
    linear = by_term(out, "linear")
    assert list(linear.index) == ["dual_post", "dual_post_x_years_since_dual"]
    assert abs(linear.loc["dual_post", "estimate"] - 0.1) < TOL
    assert abs(linear.loc["dual_post_x_years_since_dual", "estimate"] - 0.02) < 0.005


# ------------------------------------------------------------------------------------------------
# descriptives
# ------------------------------------------------------------------------------------------------


def test_descriptives_on_a_hand_case():
    df = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, np.nan],
            "g": ["b", "a", "b", "a", "a"],
        }
    )
    out = an.descriptives(df, ["x"], by="g")
    assert list(out.columns) == ["variable", "group", "n", "mean", "sd", "min", "max"]
    assert list(out["group"]) == ["all", "a", "b"]
    all_row, a_row, b_row = (out.iloc[i] for i in range(3))
    assert (all_row["n"], all_row["mean"], all_row["min"], all_row["max"]) == (4, 2.5, 1.0, 4.0)
    assert all_row["sd"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert (a_row["n"], a_row["mean"]) == (2, 3.0)
    assert a_row["sd"] == pytest.approx(np.sqrt(2))
    assert (b_row["n"], b_row["mean"], b_row["max"]) == (2, 2.0, 3.0)
    ordered = an.descriptives(df, ["x"], by="g", group_order=["b", "a"])
    assert list(ordered["group"]) == ["all", "b", "a"]
    assert list(an.descriptives(df, ["x"], by=None)["group"]) == ["all"]
    with pytest.raises(EstimationError, match="lacks values"):
        an.descriptives(df, ["x"], by="g", group_order=["a"])
    with pytest.raises(EstimationError, match="numeric"):
        an.descriptives(df, ["g"], by=None)


def test_descriptives_of_the_panel_by_group(panel):
    order = ["none", "sc_only", "lc_only", "dual"]
    out = an.descriptives(panel, ["lq", "dual_post"], group_order=order)
    assert list(out["group"]) == ["all", *order] * 2
    lq = out.loc[out["variable"] == "lq"].set_index("group")
    assert lq.loc["all", "n"] == len(panel)
    assert lq.loc["dual", "mean"] == pytest.approx(panel.loc[panel["group"] == "dual", "lq"].mean())
    assert lq.loc[order, "n"].sum() == len(panel)
