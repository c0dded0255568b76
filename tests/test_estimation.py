"""Tests of dualpilot.engines.estimation against independent implementations.

References: linearmodels PanelOLS, statsmodels OLS/WLS with explicit dummies, pyfixest's own wald_test and
wildboottest, and a brute-force numpy wild cluster bootstrap. Coefficients and standard errors must agree to
1e-8 (relative); the only adjustments made in the tests are the documented small-sample factors, computed
here from their textbook definitions (not from the module under test):

- fixest/reghdfe K for clustered SEs: K = k + 1 + sum over fixed effects NOT nested in the cluster
  variable of (levels - 1); for HC1 and iid all fixed effects count.
- statsmodels multiplies its cluster sandwich by G/(G-1)·(N-1)/(N-K_sm) and HC1 by N/(N-K_sm), with K_sm the
  number of columns of its (full-rank) dummy matrix; the test rescales by (N-K_sm)/(N-K).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import statsmodels.api as sm
from linearmodels.panel import PanelOLS
from scipy import stats

from dualpilot.core.errors import SpecificationError
from dualpilot.engines import estimation as est

RTOL = 1e-8
CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]


# ------------------------------------------------------------------------------------------------
# helpers: an independent dummy-variable regression
# ------------------------------------------------------------------------------------------------


def fe_key(df: pd.DataFrame, fe: str) -> pd.Series:
    parts = fe.split("^")
    key = df[parts[0]].astype(str)
    for part in parts[1:]:
        key = key + "|" + df[part].astype(str)
    return key


def full_rank(matrix: np.ndarray, keep_first: int) -> np.ndarray:
    """Keep the first `keep_first` columns and a maximal independent subset of the rest."""
    head, tail = matrix[:, :keep_first], matrix[:, keep_first:]
    resid = tail - head @ np.linalg.lstsq(head, tail, rcond=None)[0]
    _, r, piv = scipy.linalg.qr(resid, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > 1e-9 * diag[0]).sum())
    return np.column_stack([head, tail[:, np.sort(piv[:rank])]])


def dummy_design(df: pd.DataFrame, regressors: list[str], fes: list[str]) -> np.ndarray:
    """[regressors, intercept, dummies of every fixed effect] reduced to full column rank."""
    cols = [df[regressors].to_numpy(float), np.ones((len(df), 1))]
    for fe in fes:
        cols.append(pd.get_dummies(fe_key(df, fe), dtype=float).to_numpy())
    return full_rank(np.column_stack(cols), keep_first=len(regressors) + 1)


def k_fixest(df: pd.DataFrame, n_regressors: int, fes: list[str], cluster: str | None) -> int:
    """K of fixest's ssc(fixef.K='nested') / reghdfe: regressors + constant + non-nested FE levels - 1."""
    k = n_regressors + 1
    for fe in fes:
        key = fe_key(df, fe)
        nested = cluster is not None and (df.groupby(key)[cluster].nunique() == 1).all()
        if not nested:
            k += key.nunique() - 1
    return k


def singleton_free(df: pd.DataFrame, fes: list[str]) -> pd.DataFrame:
    """Drop observations alone in a level of some fixed effect, until none is left (reghdfe)."""
    out = df
    while True:
        alone = np.zeros(len(out), dtype=bool)
        for fe in fes:
            key = fe_key(out, fe)
            alone |= key.map(key.value_counts()).to_numpy() == 1
        if not alone.any():
            return out
        out = out.loc[~alone]


def sm_fit(df, regressors, fes, *, cov_type, groups=None, weights=None):
    x = dummy_design(df, regressors, fes)
    y = df["lq"].to_numpy(float)
    model = sm.WLS(y, x, weights=df[weights].to_numpy(float)) if weights else sm.OLS(y, x)
    kwargs = {"cov_kwds": {"groups": pd.factorize(df[groups])[0]}} if groups else {}
    res = model.fit(cov_type=cov_type, **kwargs)
    return res, x.shape[1]


@pytest.fixture(scope="module")
def data(make_panel) -> pd.DataFrame:
    return make_panel(n_cities=36, dual_effect=0.2, sc_only_effect=0.05, noise_sd=0.05, seed=11)


# ------------------------------------------------------------------------------------------------
# point estimates and standard errors
# ------------------------------------------------------------------------------------------------


def test_cluster_city_year_equals_linearmodels_xtreg_convention(data):
    """PanelOLS with entity effects, a constant and year dummies, debiased + group_debias, is
    Stata's xtreg/reghdfe cluster convention: K = k + 1 + (T - 1), no adjustment needed."""
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    panel = data.set_index(["city_code", "year"])
    years = pd.get_dummies(data["year"], prefix="y", drop_first=True, dtype=float)
    years.index = panel.index
    exog = pd.concat([panel[["dual_post", *CONTROLS]].astype(float), years], axis=1)
    exog = sm.add_constant(exog)
    res = PanelOLS(panel["lq"], exog, entity_effects=True).fit(
        cov_type="clustered", cluster_entity=True, debiased=True, group_debias=True
    )
    names = ["dual_post", *CONTROLS]
    np.testing.assert_allclose(fit.coef[names], res.params[names], rtol=RTOL)
    np.testing.assert_allclose(fit.se[names], res.std_errors[names], rtol=RTOL)
    assert fit.df_k == len(names) + 1 + data["year"].nunique() - 1
    assert fit.n_clusters == data["city_code"].nunique() and fit.df_t == fit.n_clusters - 1


def test_cluster_city_year_equals_linearmodels_twoway_effects(data):
    """PanelOLS entity + time effects without counting the effects: (N-1)/(N-k)·G/(G-1); rescale
    analytically to fixest's K = k + T."""
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    panel = data.set_index(["city_code", "year"])
    names = ["dual_post", *CONTROLS]
    res = PanelOLS(
        panel["lq"], panel[names].astype(float), entity_effects=True, time_effects=True
    ).fit(
        cov_type="clustered",
        cluster_entity=True,
        debiased=True,
        group_debias=True,
        auto_df=False,
        count_effects=False,
    )
    n, k = len(data), len(names)
    k_fx = k_fixest(data, k, ["city_code", "year"], "city_code")
    se = res.std_errors[names] * np.sqrt((n - k) / (n - k_fx))
    np.testing.assert_allclose(fit.coef[names], res.params[names], rtol=RTOL)
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)


def test_cluster_city_year_equals_statsmodels_dummies(data):
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    names = ["dual_post", *CONTROLS]
    fes = ["city_code", "year"]
    res, k_sm = sm_fit(data, names, fes, cov_type="cluster", groups="city_code")
    n, k_fx = len(data), k_fixest(data, len(names), fes, "city_code")
    np.testing.assert_allclose(fit.coef[names], res.params[: len(names)], rtol=RTOL)
    se = res.bse[: len(names)] * np.sqrt((n - k_sm) / (n - k_fx))
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)


@pytest.mark.parametrize("drop_singletons", [True, False])
def test_province_year_effects_equal_statsmodels_dummies(data, drop_singletons):
    """city + province^year effects; province P00 has one city, so its province-years are singletons."""
    fes = ["city_code", "province^year"]
    fit = est.fit(
        data,
        outcome="lq",
        terms=["dual_post"],
        controls=CONTROLS,
        fixed_effects=fes,
        drop_singletons=drop_singletons,
    )
    sample = singleton_free(data, fes) if drop_singletons else data
    assert fit.n_obs == len(sample)
    assert fit.n_dropped_singletons == len(data) - len(sample)
    assert (len(data) - len(sample) > 0) == drop_singletons
    assert fit.sample_index.equals(sample.index)
    names = ["dual_post", *CONTROLS]
    res, k_sm = sm_fit(sample, names, fes, cov_type="cluster", groups="city_code")
    n, k_fx = len(sample), k_fixest(sample, len(names), fes, "city_code")
    assert fit.df_k == k_fx
    np.testing.assert_allclose(fit.coef[names], res.params[: len(names)], rtol=RTOL)
    se = res.bse[: len(names)] * np.sqrt((n - k_sm) / (n - k_fx))
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)


def test_weighted_fit_equals_statsmodels_wls(data):
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS, weights="population")
    names = ["dual_post", *CONTROLS]
    fes = ["city_code", "year"]
    res, k_sm = sm_fit(
        data, names, fes, cov_type="cluster", groups="city_code", weights="population"
    )
    n, k_fx = len(data), k_fixest(data, len(names), fes, "city_code")
    np.testing.assert_allclose(fit.coef[names], res.params[: len(names)], rtol=RTOL)
    se = res.bse[: len(names)] * np.sqrt((n - k_sm) / (n - k_fx))
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)
    unweighted = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    assert abs(fit.coef["dual_post"] - unweighted.coef["dual_post"]) > 1e-6
    assert "population" in fit.vcov_label


def test_province_clusters_equal_statsmodels(data):
    """City effects are nested in provinces (not counted in K), year effects are not."""
    fes = ["city_code", "year"]
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS, cluster="province")
    names = ["dual_post", *CONTROLS]
    res, k_sm = sm_fit(data, names, fes, cov_type="cluster", groups="province")
    n, k_fx = len(data), k_fixest(data, len(names), fes, "province")
    assert fit.n_clusters == data["province"].nunique()
    assert fit.df_t == fit.n_clusters - 1
    np.testing.assert_allclose(fit.coef[names], res.params[: len(names)], rtol=RTOL)
    se = res.bse[: len(names)] * np.sqrt((n - k_sm) / (n - k_fx))
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)


@pytest.mark.parametrize(("vcov", "sm_cov"), [("hetero", "HC1"), ("iid", "nonrobust")])
def test_hetero_and_iid_equal_statsmodels(data, vcov, sm_cov):
    fes = ["city_code", "year"]
    fit = est.fit(
        data, outcome="lq", terms=["dual_post"], controls=CONTROLS, vcov=vcov, cluster=None
    )
    names = ["dual_post", *CONTROLS]
    res, k_sm = sm_fit(data, names, fes, cov_type=sm_cov)
    n, k_fx = len(data), k_fixest(data, len(names), fes, None)
    assert fit.df_k == k_fx and fit.df_t == n - k_fx and fit.n_clusters is None
    se = res.bse[: len(names)] * np.sqrt((n - k_sm) / (n - k_fx))
    np.testing.assert_allclose(fit.se[names], se, rtol=RTOL)


def test_r2_within_is_r2_after_partialling_out_the_effects(data):
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    fe_only = dummy_design(data, [], ["city_code", "year"])
    full = dummy_design(data, ["dual_post", *CONTROLS], ["city_code", "year"])
    y = data["lq"].to_numpy()

    def rss(x):
        return float(np.sum((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2))

    assert fit.r2_within == pytest.approx(1 - rss(full) / rss(fe_only), rel=1e-8)


def test_no_fixed_effects_estimates_an_intercept(data):
    fit = est.fit(
        data, outcome="lq", terms=["dual_post"], fixed_effects=(), vcov="hetero", cluster=None
    )
    res = sm.OLS(data["lq"], sm.add_constant(data[["dual_post"]].astype(float))).fit(cov_type="HC1")
    np.testing.assert_allclose(fit.coef[["Intercept", "dual_post"]], res.params, rtol=RTOL)
    np.testing.assert_allclose(fit.se[["Intercept", "dual_post"]], res.bse, rtol=RTOL)
    assert np.isnan(fit.r2_within)


# ------------------------------------------------------------------------------------------------
# tidy, lincom, wald
# ------------------------------------------------------------------------------------------------


def test_tidy_columns_and_t_inference(data):
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    out = est.tidy(fit, model="(2)", sample="full", terms=["dual_post", "gov"])
    assert list(out.columns) == [
        "model", "term", "estimate", "std_error", "t_stat", "p_value", "conf_low", "conf_high",
        "n_obs", "n_clusters", "r2_within", "fixed_effects", "controls", "sample", "vcov",
    ]  # fmt: skip
    assert list(out["term"]) == ["dual_post", "gov"]
    row = out.iloc[0]
    b, se, g = fit.coef["dual_post"], fit.se["dual_post"], fit.n_clusters
    assert row["t_stat"] == pytest.approx(b / se, rel=1e-12)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(b / se), g - 1), rel=1e-10)
    crit = stats.t.ppf(0.975, g - 1)
    assert row["conf_low"] == pytest.approx(b - crit * se, rel=1e-12)
    assert row["conf_high"] == pytest.approx(b + crit * se, rel=1e-12)
    assert row["n_obs"] == len(data) and row["n_clusters"] == g
    assert row["fixed_effects"] == "city_code + year"
    assert row["controls"] == " + ".join(CONTROLS)
    assert row["vcov"].startswith("CRV1 by city_code (fixest small-sample: G/(G-1)·(N-1)/(N-K)")
    # pyfixest's own table uses the same t(G-1) reference distribution
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols(
            "lq ~ dual_post + " + " + ".join(CONTROLS) + " | city_code + year",
            data=data,
            vcov={"CRV1": "city_code"},
        ).tidy()
    assert row["p_value"] == pytest.approx(ref.loc["dual_post", "Pr(>|t|)"], rel=1e-6)
    assert row["conf_low"] == pytest.approx(ref.loc["dual_post", "2.5%"], rel=1e-6)


STATES = ["sc_only_post", "lc_only_post", "dual_post"]


def with_states(df: pd.DataFrame) -> pd.DataFrame:
    """Add the single-pilot-only indicators (each city-year in exactly one state)."""
    df = df.copy()
    df["sc_only_post"] = ((df["sc_post"] == 1) & (df["dual_post"] == 0)).astype(int)
    df["lc_only_post"] = ((df["lc_post"] == 1) & (df["dual_post"] == 0)).astype(int)
    return df


@pytest.fixture(scope="module")
def three_state_fit(make_panel):
    df = make_panel(dual_effect=0.3, sc_only_effect=0.1, lc_only_effect=0.05, noise_sd=0.05, seed=5)
    return est.fit(with_states(df), outcome="lq", terms=STATES, controls=CONTROLS)


def test_lincom_equals_direct_computation(three_state_fit):
    fit = three_state_fit
    w = {"dual_post": 1.0, "sc_only_post": -1.0, "lc_only_post": -1.0}
    row = est.lincom(fit, w, "synergy", model="m").iloc[0]
    names = list(w)
    b = fit.coef[names].to_numpy()
    v = fit.vcov.loc[names, names].to_numpy()
    a = np.array([1.0, -1.0, -1.0])
    se = np.sqrt(a @ v @ a)
    assert row["term"] == "lincom: synergy"
    assert row["estimate"] == pytest.approx(a @ b, rel=1e-12)
    assert row["std_error"] == pytest.approx(se, rel=1e-12)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(a @ b / se), fit.df_t), rel=1e-10)


def test_wald_single_restriction_is_squared_t(three_state_fit):
    fit = three_state_fit
    test = est.wald(fit, est.equal("dual_post", "sc_only_post"))
    b, v = fit.coef, fit.vcov
    d = b["dual_post"] - b["sc_only_post"]
    var = v.loc["dual_post", "dual_post"] + v.loc["sc_only_post", "sc_only_post"]
    var -= 2 * v.loc["dual_post", "sc_only_post"]
    assert test.statistic == pytest.approx(d**2 / var, rel=1e-10)
    assert (test.df_num, test.df_den) == (1, fit.n_clusters - 1)
    assert test.p_value == pytest.approx(2 * stats.t.sf(abs(d) / np.sqrt(var), fit.df_t), rel=1e-8)
    row = est.wald_row(
        fit, est.equal("dual_post", "sc_only_post"), "dual_post = sc_only_post", model="m"
    )
    assert row.iloc[0]["term"] == "wald: dual_post = sc_only_post"
    assert row.iloc[0]["t_stat"] == pytest.approx(test.statistic)
    assert np.isnan(row.iloc[0]["estimate"]) and row.iloc[0]["vcov"].endswith(
        f"Wald F(1, {fit.n_clusters - 1})"
    )


def test_wald_joint_equals_direct_computation(three_state_fit):
    fit = three_state_fit
    test = est.wald(fit, [est.zero(t) for t in STATES])
    b = fit.coef[STATES].to_numpy()
    v = fit.vcov.loc[STATES, STATES].to_numpy()
    f_stat = b @ np.linalg.solve(v, b) / 3
    assert test.statistic == pytest.approx(f_stat, rel=1e-10)
    assert test.p_value == pytest.approx(stats.f.sf(f_stat, 3, fit.df_t), rel=1e-10)
    stat, p = test
    assert (stat, p) == (test.statistic, test.p_value)


def test_wald_joint_equals_pyfixest_wald_test(make_panel):
    """pyfixest's wald_test uses F(q, G-1) for clustered fits (only with R = identity)."""
    import pyfixest as pf

    weak = with_states(make_panel(dual_effect=0.01, sc_only_effect=0.01, noise_sd=0.05, seed=5))
    fit = est.fit(weak, outcome="lq", terms=STATES)
    ours = est.wald(fit, [est.zero(t) for t in STATES])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols(
            "lq ~ " + " + ".join(STATES) + " | city_code + year",
            data=weak,
            vcov={"CRV1": "city_code"},
        ).wald_test()
    assert ours.statistic == pytest.approx(float(ref["statistic"]), rel=1e-8)
    assert 1e-6 < ours.p_value < 0.999
    assert ours.p_value == pytest.approx(float(ref["pvalue"]), rel=1e-6)


def test_wald_rejects_dependent_restrictions(three_state_fit):
    with pytest.raises(est.EstimationError, match="linearly dependent"):
        est.wald(three_state_fit, [est.zero("dual_post"), {"dual_post": 2.0}])


# ------------------------------------------------------------------------------------------------
# errors and bookkeeping
# ------------------------------------------------------------------------------------------------


def test_collinear_term_raises(data):
    df = data.assign(dual_twice=2 * data["dual_post"])
    with pytest.raises(est.EstimationError, match="dual_twice"):
        est.fit(df, outcome="lq", terms=["dual_post", "dual_twice"])


def test_term_absorbed_by_fixed_effects_raises(data):
    df = data.assign(east=(data["region"] == "east").astype(int))
    with pytest.raises(est.EstimationError, match="absorbed"):
        est.fit(df, outcome="lq", terms=["dual_post"], controls=["east"])


def test_missing_values_are_counted_not_hidden(data):
    df = data.copy()
    df.loc[df.index[[5, 40, 41]], "gov"] = np.nan
    fit = est.fit(df, outcome="lq", terms=["dual_post"], controls=["gov"])
    assert fit.n_dropped_missing == 3 and fit.n_obs == len(df) - 3
    assert not fit.sample_index.isin(df.index[[5, 40, 41]]).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"terms": ["dual_post"], "vcov": "hetero"}, "cluster=None"),
        ({"terms": ["dual_post"], "cluster": None}, "needs a cluster"),
        ({"terms": ["dual_post"], "controls": ["dual_post"]}, "listed twice"),
        ({"terms": ["city_name"]}, "not numeric"),
        ({"terms": []}, "at least one term"),
    ],
)
def test_invalid_specifications_raise(data, kwargs, message):
    with pytest.raises(est.EstimationError, match=message):
        est.fit(data, outcome="lq", **kwargs)


def test_missing_columns_are_named(data):
    """A column of the model that the data lacks: the project's one column check (errors.require_columns),
    a SpecificationError the runner reports without a traceback."""
    with pytest.raises(SpecificationError, match=r"the data lacks column\(s\) \['nope', 'gone'\]"):
        est.fit(data, outcome="lq", terms=["nope"], controls=["gone", "gov"])


def test_interacted_effect_components_are_checked(data):
    with pytest.raises(SpecificationError, match=r"lacks column\(s\) \['province_x'\]"):
        est.fit(data, outcome="lq", terms=["dual_post"], fixed_effects=["province_x^year"])


# ------------------------------------------------------------------------------------------------
# wild cluster bootstrap
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights_type", ["rademacher", "webb"])
def test_bootstrap_equals_pyfixest_wildboottest(data, weights_type):
    """Same seed and draws: our design (city effects partialled out, year dummies) must give the same
    p-value as pyfixest's one-hot implementation (which needs integer cluster ids)."""
    import pyfixest as pf

    small = CONTROLS[:2]
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=small)
    ours = est.wild_bootstrap(fit, "dual_post", reps=499, seed=42, weights_type=weights_type)
    df = data.assign(cid=data["city_code"].astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols(
            "lq ~ dual_post + " + " + ".join(small) + " | cid + year", data=df, vcov={"CRV1": "cid"}
        ).wildboottest(reps=499, param="dual_post", seed=42, weights_type=weights_type)
    # pyfixest reports the share #{|t*| > |t|} / B; ours adds the observed t: (1 + #) / (1 + B)
    n_extreme = round(float(ref["Pr(>|t|)"]) * 499)
    assert ours.p_value == pytest.approx((1 + n_extreme) / (1 + 499), abs=1e-12)
    assert ours.reps == 499 and not ours.full_enumeration
    assert ours.t_stat == pytest.approx(fit.coef["dual_post"] / fit.se["dual_post"])


def brute_force_wcr(df, term, regressors, fes, cluster):
    """Textbook WCR11 with explicit dummies, enumerating every Rademacher sign vector.

    Returns the counts of draws with |t*| clearly above |t| and not clearly below it (the two differ
    only by draws that reproduce |t| up to rounding, e.g. v = +-1)."""
    x = dummy_design(df, regressors, fes)
    y = df["lq"].to_numpy(float)
    g = pd.factorize(df[cluster])[0]
    n_g = g.max() + 1
    j = regressors.index(term)

    def t_stats(ys):  # ys: n x B
        xtx_inv = np.linalg.inv(x.T @ x)
        beta = xtx_inv @ x.T @ ys
        resid = ys - x @ beta
        row = xtx_inv[j]
        # CRV1 variance of beta_j without small-sample factor (it cancels in the p-value)
        per_obs = (x @ row)[:, None] * resid
        sums = np.zeros((n_g, ys.shape[1]))
        np.add.at(sums, g, per_obs)
        return beta[j] / np.sqrt((sums**2).sum(axis=0))

    t_obs = t_stats(y[:, None])[0]
    x_r = np.delete(x, j, axis=1)
    fitted_r = x_r @ np.linalg.lstsq(x_r, y, rcond=None)[0]
    u_r = y - fitted_r
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n_g))).T  # G x 2^G
    t_boot = t_stats(fitted_r[:, None] + u_r[:, None] * signs[g])
    above = int((np.abs(t_boot) > abs(t_obs) * (1 + 1e-7)).sum())
    not_below = int((np.abs(t_boot) >= abs(t_obs) * (1 - 1e-7)).sum())
    return above, not_below, signs.shape[1]


@pytest.mark.parametrize("fes", [["city_code", "year"], ["city_code", "province^year"]])
def test_bootstrap_full_enumeration_equals_brute_force(make_panel, fes):
    small = make_panel(
        n_cities=12, n_provinces=3, years=(2008, 2019), dual_effect=0.01, noise_sd=0.05
    )
    small = singleton_free(small, fes)
    regs = ["dual_post", "ln_gdp_pc"]
    fit = est.fit(small, outcome="lq", terms=regs[:1], controls=regs[1:], fixed_effects=fes)
    boot = est.wild_bootstrap(fit, "dual_post", reps=100_000, seed=1)
    assert boot.full_enumeration and boot.reps == 2**fit.n_clusters
    above, not_below, total = brute_force_wcr(small, "dual_post", regs, fes, "city_code")
    assert total == boot.reps
    assert above <= round(boot.p_value * boot.reps) <= not_below
    assert not_below - above <= 2  # only the +-1 sign vectors tie


def test_bootstrap_is_reproducible_and_seed_dependent(make_panel):
    data = make_panel(dual_effect=0.01, noise_sd=0.05, seed=11)
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS[:1])
    a = est.wild_bootstrap(fit, "dual_post", reps=199, seed=7, weights_type="webb")
    b = est.wild_bootstrap(fit, "dual_post", reps=199, seed=7, weights_type="webb")
    assert a == b
    c = est.wild_bootstrap(fit, "dual_post", reps=199, seed=8, weights_type="webb")
    assert c.p_value != a.p_value
    row = est.bootstrap_row(fit, a, model="(2)").iloc[0]
    assert row["term"] == "wildboot: dual_post" and row["p_value"] == a.p_value
    assert row["estimate"] == fit.coef["dual_post"] and np.isnan(row["std_error"])
    assert "webb weights, 199 draws, seed 7" in row["vcov"]


def test_bootstrap_p_value_is_never_zero(make_panel):
    """A planted effect far beyond every bootstrap draw: p = 1 / (1 + B), not 0."""
    data = make_panel(dual_effect=0.5, noise_sd=0.02, seed=3)
    fit = est.fit(data, outcome="lq", terms=["dual_post"], controls=CONTROLS[:1])
    boot = est.wild_bootstrap(fit, "dual_post", reps=999, seed=1, weights_type="webb")
    assert boot.p_value == pytest.approx(1 / 1000)


def test_bootstrap_province_clusters_with_nested_province_year(make_panel):
    """With province clusters both city and province^year effects are nested and partialled out."""
    df = make_panel(n_cities=24, n_provinces=5, dual_effect=0.01, noise_sd=0.05, seed=3)
    fes = ["city_code", "province^year"]
    df = singleton_free(df, fes)
    regs = ["dual_post", "ln_gdp_pc"]
    fit = est.fit(
        df, outcome="lq", terms=regs[:1], controls=regs[1:], fixed_effects=fes, cluster="province"
    )
    boot = est.wild_bootstrap(fit, "dual_post", reps=1000, seed=2)
    assert boot.full_enumeration and boot.reps == 2**fit.n_clusters
    above, not_below, _ = brute_force_wcr(df, "dual_post", regs, fes, "province")
    assert above <= round(boot.p_value * boot.reps) <= not_below


def test_bootstrap_rejects_weighted_and_unclustered_fits(data):
    weighted = est.fit(data, outcome="lq", terms=["dual_post"], weights="population")
    with pytest.raises(est.EstimationError, match="weighted"):
        est.wild_bootstrap(weighted, "dual_post", reps=9, seed=1)
    hetero = est.fit(data, outcome="lq", terms=["dual_post"], vcov="hetero", cluster=None)
    with pytest.raises(est.EstimationError, match="vcov='cluster'"):
        est.wild_bootstrap(hetero, "dual_post", reps=9, seed=1)
