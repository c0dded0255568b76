"""Tests of dualpilot.analyses.baseline: planted effects are recovered, indicators are built as specified on
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

from dualpilot.analyses import baseline as an
from dualpilot.engines.estimation import TIDY_COLUMNS, EstimationError

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


@pytest.fixture(scope="module")
def province_panel(make_panel) -> pd.DataFrame:
    """12 provinces (province 0 holds one city), a small effect: bootstrap p-values far from 0 and 1."""
    return make_panel(n_cities=96, n_provinces=12, dual_effect=0.004, noise_sd=0.05, seed=17)


def wildboottest_on_dummies(df, regressors, fes, cluster, *, reps, seed, weights_type):
    """The wildboottest package (WCR11, called as `estimation._wcr_pvalue` calls it) on an explicit
    design: the regressors and one dummy per fixed-effect level, collinear dummies dropped (pivoted
    QR), instead of the engine's design with the nested effects partialled out."""
    from scipy.linalg import qr

    from dualpilot.engines import estimation as est

    dummies = [pd.get_dummies(df[f], dtype=float).to_numpy() for f in fes]
    x = np.column_stack([df[regressors].to_numpy(float), *dummies])
    _, r, piv = qr(x, mode="economic", pivoting=True)
    rank = int((np.abs(np.diag(r)) > 1e-9 * abs(r[0, 0])).sum())
    keep = np.sort(piv[:rank])
    assert all(j in keep for j in range(len(regressors)))  # the regressors are identified
    p_value, _, _ = est._wcr_pvalue(
        df["lq"].to_numpy(float), x[:, keep], df[cluster].to_numpy(), 0, null=0.0, reps=reps,
        seed=seed, weights_type=weights_type, impose_null=True,
    )  # fmt: skip
    return p_value


@pytest.mark.parametrize("weights_type", ["webb", "rademacher"])
def test_baseline_province_wild_bootstrap_equals_pyfixest(
    province_panel, baseline_controls, weights_type
):
    """Each column's province wild bootstrap (WCR11, same seed and weights) gives the p-value of
    pyfixest's `wildboottest` (columns 1 and 2; converted to the (1 + #)/(1 + B) rule) and of the
    wildboottest package on the explicit dummy design (all three columns: pyfixest's one-hot design
    is rank deficient with city and province x year effects); the coefficient rows keep the city
    clusters."""
    import warnings

    import pyfixest as pf

    reps, seed = 999, 11
    boot = {"reps": reps, "seed": seed, "weights_type": weights_type, "cluster": "province"}
    out = an.baseline(province_panel, baseline_controls, bootstrap=boot)
    # cluster codes in sorted order of the province names, as the estimation module numbers them
    # (the bootstrap weights are drawn cluster by cluster in that order)
    df = province_panel.assign(
        cid=province_panel["city_code"].astype(int),
        pid=province_panel.groupby("province").ngroup(),
        pyid=province_panel.groupby(["province", "year"]).ngroup(),
    )
    without_singletons = df[df.groupby("pyid")["cid"].transform("size") > 1]
    specs = {
        "(1)": ([], ["cid", "year"], df),
        "(2)": (baseline_controls, ["cid", "year"], df),
        "(3)": (baseline_controls, ["cid", "pyid"], without_singletons),
    }
    for model, (controls, fes, data) in specs.items():
        rows = by_term(out, model)
        assert rows.loc["dual_post", "n_clusters"] == data["cid"].nunique()  # city SEs
        assert rows.loc["dual_post", "vcov"].startswith("CRV1 by city_code")
        row = rows.loc["wildboot: dual_post"]
        assert row["vcov"].startswith("wild cluster bootstrap WCR11 by province")
        assert f"{weights_type} weights, {reps} draws, seed {seed}" in row["vcov"]
        assert row["n_clusters"] == data["pid"].nunique() and row["n_obs"] == len(data)
        assert 0.05 < row["p_value"] < 0.95  # a real test, not a corner case
        regressors = ["dual_post", *controls]
        package = wildboottest_on_dummies(
            data, regressors, fes, "pid", reps=reps, seed=seed, weights_type=weights_type
        )
        assert row["p_value"] == pytest.approx(package, abs=1e-12), model
        if model == "(3)":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pf.feols(
                f"lq ~ {' + '.join(regressors)} | {' + '.join(fes)}", data=data,
                vcov={"CRV1": "pid"},
            ).wildboottest(reps=reps, param="dual_post", seed=seed, weights_type=weights_type)  # fmt: skip
        # pyfixest reports #{|t*| > |t|} / B; ours adds the observed t: (1 + #) / (1 + B)
        n_extreme = round(float(ref["Pr(>|t|)"]) * reps)
        assert row["p_value"] == pytest.approx((1 + n_extreme) / (1 + reps), abs=1e-12), model


def test_wild_bootstrap_interval_inverts_the_test(province_panel):
    """The interval's ends are where the bootstrap p-value (same seed and weights) crosses 1 - level."""
    from dualpilot.engines import estimation as est

    fit = est.fit(province_panel, outcome="lq", terms=["dual_post"], cluster="province")
    kw = {"reps": 198, "seed": 3, "weights_type": "webb"}  # (1 + n) / 199 is never 0.1
    boot = est.wild_bootstrap(fit, "dual_post", ci_level=0.9, **kw)
    lo, hi = boot.conf_low, boot.conf_high
    se = fit.se["dual_post"]
    assert lo < fit.coef["dual_post"] < hi
    # the p-value of the WCR test is a step function of the null, not always monotone at the finest
    # scale: a twentieth of an SE on either side of an end lies inside and outside the interval
    for end, outward in ((lo, -1.0), (hi, 1.0)):
        inside = est.wild_bootstrap(fit, "dual_post", null=end - outward * 0.05 * se, **kw)
        outside = est.wild_bootstrap(fit, "dual_post", null=end + outward * 0.05 * se, **kw)
        assert inside.p_value > 0.1 >= outside.p_value
    # close to the interval of the province CRV1 t test (G - 1 df), as with a fair bootstrap
    t_crit = stats.t.ppf(0.95, fit.n_clusters - 1)
    assert abs(lo - (fit.coef["dual_post"] - t_crit * se)) < 0.5 * se
    assert abs(hi - (fit.coef["dual_post"] + t_crit * se)) < 0.5 * se
    row = est.bootstrap_row(fit, boot, model="(1)").iloc[0]
    assert (row["conf_low"], row["conf_high"]) == (lo, hi)
    assert est.parse_bootstrap_label(row["vcov"])["level"] == 90


def test_test_inversion_finds_the_ends_of_a_step_function():
    from dualpilot.engines import estimation as est

    calls = []

    def pvalue(b0: float) -> float:
        calls.append(b0)
        return 0.5 if -0.25 < b0 - 1.0 < 0.3 else 0.01

    lo, hi = est._invert_test(pvalue, estimate=1.0, se=0.1, alpha=0.05)
    assert lo == pytest.approx(0.75, abs=1e-4) and hi == pytest.approx(1.3, abs=1e-4)
    assert len(calls) < 40
    with pytest.raises(EstimationError, match="unbounded"):
        est._invert_test(lambda b0: 0.5, estimate=1.0, se=0.1, alpha=0.05)


def test_baseline_table_shows_city_se_and_province_bootstrap(province_panel, baseline_controls):
    """The rendered baseline table: city-clustered SEs in parentheses (the note says so), then rows
    with the province wild bootstrap p-value, its interval when computed, and the number of
    provinces; the note describes the bootstrap (both languages)."""
    from dataclasses import replace
    from pathlib import Path

    from dualpilot.engines import estimation as est
    from dualpilot.render import documents as render
    from dualpilot.render import tables

    boot = {"reps": 99, "seed": 5, "weights_type": "webb", "cluster": "province"}
    out = an.baseline(province_panel, baseline_controls, bootstrap=boot)
    specs = Path(__file__).resolve().parents[1] / "resources" / "labels" / "tables.csv"
    labels = tables.load_labels()
    settings = {"stars": [0.1, 0.05, 0.01], "digits": 3}
    expected = {
        "zh": ("野自助法 p 值（省份聚类）", "省份聚类数", "聚类到城市层面", "按省份聚类的 WCR 野聚类自助法"),
        "en": ("Wild cluster bootstrap p (province clusters)", "Clusters (province)",
               "clustered by city", "WCR wild cluster bootstrap by province"),
    }  # fmt: skip
    for language, (p_row, g_row, se_note, boot_note) in expected.items():
        table = render.analysis_table(
            out, "baseline", specs_path=specs, labels=labels,
            settings=settings | {"language": language},
        )  # fmt: skip
        rows = {r.cells[0]: r.cells[1:] for p in table.panels for r in p.rows}
        p_values = by_term(out, "(1)"), by_term(out, "(2)"), by_term(out, "(3)")
        assert rows[p_row] == tuple(
            tables.format_p(b.loc["wildboot: dual_post", "p_value"], 3) for b in p_values
        )
        assert rows[g_row] == tuple(
            str(b.loc["wildboot: dual_post", "n_clusters"]) for b in p_values
        )
        coef = [b.loc["dual_post"] for b in p_values]
        ses = next(r.cells[1:] for p in table.panels for r in p.rows if r.kind == "se")
        assert ses == tuple(f"({tables.format_number(c['std_error'], 3)})" for c in coef)
        note = " ".join(table.notes)
        assert (
            se_note in note
            and boot_note in note
            and "99" in note
            and "seed 5" in note.replace("种子", "seed")
        )
    # with an interval (as ci_level gives), a row shows it
    fit = est.fit(province_panel, outcome="lq", terms=["dual_post"], cluster="province")
    result = est.wild_bootstrap(fit, "dual_post", reps=99, seed=5, weights_type="webb")
    result = replace(result, conf_low=0.001, conf_high=0.0123, ci_level=0.95)
    with_ci = pd.concat(
        [out[out["model"] == "(1)"].iloc[:1], est.bootstrap_row(fit, result, model="(1)")]
    )
    table = render.analysis_table(
        with_ci, "baseline", specs_path=specs, labels=labels, settings=settings | {"language": "en"}
    )
    rows = {r.cells[0]: r.cells[1:] for p in table.panels for r in p.rows}
    assert rows["Wild bootstrap 95% CI"] == ("[0.001, 0.012]",)
    assert "inverts the bootstrap test" in " ".join(table.notes)


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
