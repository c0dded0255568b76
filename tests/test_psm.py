"""Tests of PSM-DID (dualpilot.analyses.psm).

Independent references and tolerances:

- nearest-neighbour matching: a brute-force pure-Python implementation (sort every control by
  distance) and scikit-learn `NearestNeighbors`; exact agreement of the links, weights to 1e-12;
- kernel matching: the Epanechnikov weights written out as a double loop, 1e-12;
- propensity score: statsmodels `Logit` called directly on city means computed here (1e-10) and
  scikit-learn's unpenalised `LogisticRegression` (1e-6, its optimiser tolerance; the scikit-learn
  checks are skipped if it is not installed: it is a test-only dependency, scikit-learn==1.9.1);
- balance: bias and reductions computed by hand on a small frame (1e-12); the unmatched t test
  against scipy's `ttest_ind`, the matched one (Stata `regress [iw=w]`) against a statsmodels GLM
  with frequency weights (1e-10);
- DiD on the matched sample: `dualpilot.engines.estimation.fit` on a subsample built here and pyfixest `feols`
  called directly (estimates 1e-8, standard errors relative 1e-6).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from matplotlib.figure import Figure
from pyfixest import feols
from pyfixest.demeaners import MapDemeaner
from scipy import stats

from dualpilot.analyses import psm
from dualpilot.analyses.psm import MatchOptions, PsmError
from dualpilot.engines import estimation as est
from dualpilot.render import psm as psm_figures
from dualpilot.render.plots import save_figure

CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]
TIGHT = MapDemeaner(fixef_tol=1e-14, fixef_maxiter=100_000)


# --------------------------------------------------------------------------------------------------
# Reference implementations
# --------------------------------------------------------------------------------------------------


def brute_nearest(ps, tr, *, k, caliper, common):
    """Links {treated: [controls]} of 1:k matching with replacement, ties broken by position."""
    controls = [j for j in range(len(ps)) if not tr[j]]
    lo, hi = min(ps[j] for j in controls), max(ps[j] for j in controls)
    links = {}
    for i in range(len(ps)):
        if not tr[i] or (common and not lo <= ps[i] <= hi):
            continue
        ranked = sorted(controls, key=lambda j: (abs(ps[i] - ps[j]), j))[:k]
        kept = [j for j in ranked if caliper is None or abs(ps[i] - ps[j]) < caliper]
        if kept:
            links[i] = kept
    return links


def brute_greedy(ps, treated, controls, *, k, caliper, descending=True):
    """Greedy matching without replacement, `treated` taken in descending (or ascending) score order."""
    free = list(controls)
    sign = -1 if descending else 1
    links = {}
    for i in sorted(treated, key=lambda i: (sign * ps[i], i)):
        ranked = sorted(free, key=lambda j: (abs(ps[i] - ps[j]), j))[:k]
        kept = [j for j in ranked if caliper is None or abs(ps[i] - ps[j]) < caliper]
        for j in kept:
            free.remove(j)
        if kept:
            links[i] = kept
    return links


def weights_from_links(n, links):
    w = np.zeros(n)
    for i, js in links.items():
        w[i] = 1.0
        for j in js:
            w[j] += 1.0 / len(js)
    return w


def links_of(m: psm.Matching) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for row in m.pairs.itertuples():
        out[row.treated].append(row.control)
    return {i: sorted(js) for i, js in out.items()}


def random_scores(seed: int, n: int = 120, share: float = 0.3):
    rng = np.random.default_rng(seed)
    tr = rng.random(n) < share
    ps = np.where(tr, rng.beta(3, 2, n), rng.beta(2, 3, n))
    return ps, tr


# --------------------------------------------------------------------------------------------------
# Nearest neighbour
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("caliper", [None, 0.01])
@pytest.mark.parametrize("common", [True, False])
def test_nearest_with_replacement_matches_brute_force(seed, k, caliper, common):
    ps, tr = random_scores(seed)
    m = psm.nearest_neighbor_match(ps, tr, k=k, caliper=caliper, common=common, ties="first")
    expected = brute_nearest(ps, tr, k=k, caliper=caliper, common=common)
    assert links_of(m) == {i: sorted(js) for i, js in expected.items()}
    np.testing.assert_allclose(m.weight, weights_from_links(len(ps), expected), rtol=0, atol=1e-12)
    assert np.array_equal(m.support, ~tr | np.isin(np.arange(len(ps)), list(expected)))
    counts = np.bincount(m.pairs["control"], minlength=len(ps))
    assert np.array_equal(m.n_matches[~tr], counts[~tr])


def test_nearest_agrees_with_sklearn():
    NearestNeighbors = pytest.importorskip("sklearn.neighbors").NearestNeighbors
    ps, tr = random_scores(7, n=300)
    for k in (1, 4):
        m = psm.nearest_neighbor_match(ps, tr, k=k, caliper=None, common=False)
        controls = np.flatnonzero(~tr)
        nn = NearestNeighbors(n_neighbors=k).fit(ps[controls, None])
        _, idx = nn.kneighbors(ps[tr, None])
        expected = {
            int(i): sorted(controls[row].tolist())
            for i, row in zip(np.flatnonzero(tr), idx, strict=True)
        }
        assert links_of(m) == expected


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("descending", [True, False])
def test_without_replacement_uses_each_control_once(k, descending):
    ps, tr = random_scores(11, n=90, share=0.25)
    order = "descending" if descending else "ascending"
    m = psm.nearest_neighbor_match(ps, tr, k=k, caliper=0.05, replacement=False, order=order)
    assert m.pairs["control"].is_unique
    assert set(np.round(m.weight[~tr], 12)) <= {0.0, 0.5, 1.0}
    controls = np.flatnonzero(~tr)
    lo, hi = ps[controls].min(), ps[controls].max()
    eligible = [i for i in np.flatnonzero(tr) if lo <= ps[i] <= hi]
    expected = brute_greedy(ps, eligible, controls, k=k, caliper=0.05, descending=descending)
    assert links_of(m) == {i: sorted(js) for i, js in expected.items()}


def test_without_replacement_runs_out_of_controls():
    ps = np.array([0.50, 0.52, 0.54, 0.51, 0.90])
    tr = np.array([1, 1, 1, 0, 0], dtype=bool)
    m = psm.nearest_neighbor_match(ps, tr, k=1, caliper=None, replacement=False, common=False)
    # descending: 0.54 takes 0.51, 0.52 takes 0.90 (the only one left), 0.50 gets nothing
    assert links_of(m) == {2: [3], 1: [4]}
    assert list(m.support) == [False, True, True, True, True]
    assert m.unmatched.tolist() == [True, False, False, False, False]


def test_caliper_drops_the_right_treated_units():
    # dyadic numbers: distances are exact, so the strict inequality is tested exactly
    ps = np.array([0.125, 0.375, 0.625, 0.5, 0.8125, 0.25, 0.5, 0.75])
    tr = np.array([0, 0, 0, 0, 0, 1, 1, 1], dtype=bool)
    m = psm.nearest_neighbor_match(ps, tr, k=2, caliper=0.125, common=True, ties="first")
    # 0.25: controls at 0.125 and 0.375 are exactly 0.125 away -> not < caliper -> off support
    # 0.5: 0.5 (d 0) and 0.375/0.625 (d 0.125, excluded) -> one control, weight 1
    # 0.75: 0.8125 (d 0.0625) and 0.625 (d 0.125, excluded) -> one control
    assert links_of(m) == {6: [3], 7: [4]}
    assert m.support.tolist() == [True] * 5 + [False, True, True]
    assert m.unmatched.tolist() == [False] * 5 + [True, False, False]
    wider = psm.nearest_neighbor_match(ps, tr, k=2, caliper=0.126, common=True, ties="first")
    assert links_of(wider) == {5: [0, 1], 6: [1, 3], 7: [2, 4]}
    np.testing.assert_allclose(wider.weight[:5], [0.5, 1.0, 0.5, 0.5, 0.5])


def test_caliper_in_sds_of_the_logit_by_hand():
    """Austin (2011): match on logit(p), caliper 0.2 SD of logit(p) over every unit of the pool.

    Controls 0.5, 0.9, 0.99 and treated 0.55, 0.95 have logits 0, ln 9 = 2.1972, ln 99 = 4.5951,
    ln(11/9) = 0.2007 and ln 19 = 2.9444: mean 1.9875, sample SD 1.9302, caliper 0.2 SD = 0.3860.
    0.55 is 0.2007 from 0.5 on the logit (kept); 0.95 is nearest to 0.9 on the logit (0.7472,
    against 1.6507 to 0.99) and beyond the caliper (off support). On the probability scale 0.95 is
    nearest to 0.99 (0.04 against 0.05), so the scale changes the match, not only the caliper."""
    ps = np.array([0.5, 0.9, 0.99, 0.55, 0.95])
    tr = np.array([0, 0, 0, 1, 1], dtype=bool)
    logits = [math.log(p / (1 - p)) for p in ps]
    assert logits[1:4] == pytest.approx([math.log(9), math.log(99), math.log(11 / 9)])
    mean = sum(logits) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in logits) / 4)
    assert (mean, sd, 0.2 * sd) == pytest.approx((1.98749, 1.93018, 0.38604), abs=1e-5)

    opts = MatchOptions(k=1, caliper=0.2, caliper_scale="logit_sd")
    score, caliper = psm.matching_score(ps, opts)
    np.testing.assert_allclose(score, logits, rtol=1e-14)
    assert caliper == pytest.approx(0.2 * sd, rel=1e-12)
    m = psm.match_scores(ps, tr, opts)
    assert links_of(m) == {3: [0]}
    assert m.unmatched.tolist() == [False, False, False, False, True]
    assert m.pairs["distance"].tolist() == pytest.approx([math.log(11 / 9)])
    no_caliper = psm.match_scores(ps, tr, replace(opts, caliper=None))
    assert links_of(no_caliper) == {3: [0], 4: [1]}
    on_p = psm.match_scores(ps, tr, replace(opts, caliper=0.06, caliper_scale="pscore"))
    assert links_of(on_p) == {3: [0], 4: [2]}
    assert "caliper 0.2 SD of logit(p)" in opts.describe()
    with pytest.raises(PsmError, match="exactly 0 or 1"):
        psm.matching_score(np.array([0.2, 1.0]), opts)


def test_common_support_excludes_treated_outside_the_control_range():
    ps = np.array([0.2, 0.4, 0.41, 0.3, 0.19])
    tr = np.array([0, 0, 1, 1, 1], dtype=bool)
    assert psm.common_support(ps, tr).tolist() == [True, True, False, True, False]
    m = psm.nearest_neighbor_match(ps, tr, k=1, caliper=0.05, common=True)
    assert links_of(m) == {}
    assert m.off_common.tolist() == [False, False, True, False, True]
    # 0.3 is on support but 0.1 away from both controls: unmatched by the caliper
    assert m.unmatched.tolist() == [False, False, False, True, False]
    off = psm.nearest_neighbor_match(ps, tr, k=1, caliper=0.05, common=False)
    assert links_of(off) == {2: [1], 4: [0]}


def test_ties():
    ps = np.array([0.25, 0.75, 0.0, 0.5])
    tr = np.array([0, 0, 0, 1], dtype=bool)
    kw = {"k": 1, "caliper": None, "common": False}
    both = psm.nearest_neighbor_match(ps, tr, ties="all", **kw)
    assert links_of(both) == {3: [0, 1]}
    np.testing.assert_allclose(both.weight, [0.5, 0.5, 0.0, 1.0])
    assert both.n_matches[3] == 2
    first = psm.nearest_neighbor_match(ps, tr, ties="first", **kw)
    assert links_of(first) == {3: [0]}
    draws = {
        tuple(links_of(psm.nearest_neighbor_match(ps, tr, ties="random", seed=s, **kw))[3])
        for s in range(20)
    }
    assert draws == {(0,), (1,)}
    again = [
        psm.nearest_neighbor_match(ps, tr, ties="random", seed=5, **kw).pairs for _ in range(2)
    ]
    pd.testing.assert_frame_equal(*again)
    # with k = 2, "all" keeps the tie at the second distance too
    two = psm.nearest_neighbor_match(
        np.array([0.5, 0.25, 0.75, 0.5]), np.array([0, 0, 0, 1], dtype=bool), ties="all", k=2,
        caliper=None, common=False,
    )  # fmt: skip
    assert links_of(two) == {3: [0, 1, 2]}


def test_random_order_needs_and_uses_the_seed():
    with pytest.raises(PsmError, match="seed"):
        psm.nearest_neighbor_match([0.1, 0.2], [0, 1], ties="random")
    with pytest.raises(PsmError, match="seed"):
        MatchOptions(replacement=False, order="random")
    MatchOptions(replacement=True, order="random")  # order is irrelevant with replacement
    ps, tr = random_scores(3, n=60, share=0.5)
    runs = [
        psm.nearest_neighbor_match(
            ps, tr, k=1, caliper=None, replacement=False, order="random", seed=s
        )
        for s in (1, 1, 2)
    ]
    pd.testing.assert_frame_equal(runs[0].pairs, runs[1].pairs)
    assert all(r.pairs["control"].is_unique for r in runs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be"),
        ({"caliper": -0.1}, "caliper"),
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"method": "radius"}, "method"),
        ({"method": "kernel", "replacement": False}, "without-replacement"),
        ({"ties": "some"}, "ties"),
    ],
)
def test_options_are_validated(kwargs, message):
    with pytest.raises(PsmError, match=message):
        MatchOptions(**kwargs)


# --------------------------------------------------------------------------------------------------
# Kernel
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bandwidth", [0.06, 0.02])
def test_kernel_weights_against_direct_formula(bandwidth):
    ps, tr = random_scores(21, n=80)
    m = psm.kernel_match(ps, tr, bandwidth=bandwidth, common=True)
    controls = [j for j in range(len(ps)) if not tr[j]]
    lo, hi = min(ps[controls]), max(ps[controls])
    weight = np.zeros(len(ps))
    support = ~tr.copy()
    for i in np.flatnonzero(tr):
        if not lo <= ps[i] <= hi:
            continue
        raw = {
            j: 1 - ((ps[j] - ps[i]) / bandwidth) ** 2
            for j in controls
            if abs(ps[j] - ps[i]) <= bandwidth
        }
        total = sum(raw.values())
        if total == 0:
            continue
        support[i] = True
        weight[i] = 1.0
        for j, v in raw.items():
            weight[j] += v / total
    np.testing.assert_allclose(m.weight, weight, rtol=0, atol=1e-12)
    assert np.array_equal(m.support, support)
    sums = m.pairs.groupby("treated")["weight"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    assert m.weight[~tr].sum() == pytest.approx(support[tr].sum())


def test_kernel_with_narrow_bandwidth_leaves_isolated_treated_unmatched():
    ps = np.array([0.1, 0.2, 0.3, 0.15, 0.26])
    tr = np.array([0, 0, 0, 1, 1], dtype=bool)
    m = psm.kernel_match(ps, tr, bandwidth=0.03)
    # 0.15 is 0.05 from both neighbours; 0.26 is 0.04 from 0.3
    assert m.support.tolist() == [True, True, True, False, False]
    assert links_of(m) == {}


# --------------------------------------------------------------------------------------------------
# Propensity score
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_panel(make_panel) -> pd.DataFrame:
    return make_panel(n_cities=48, years=(2006, 2016), seed=3)


def test_baseline_scores_equal_statsmodels_and_sklearn(small_panel):
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    units = psm.design_units(small_panel, design="baseline", covariates=CONTROLS, baseline_end=2009)
    means = small_panel[small_panel["year"] <= 2009].groupby("city_code")[CONTROLS].mean()
    # ever treated within the window (2006-2016): the 2017 cohort counts as a control
    dual_year = small_panel.groupby("city_code")["dual_year"].first()
    treated = (dual_year <= 2016).astype(int)
    assert (dual_year == 2017).any()
    assert units["city_code"].tolist() == means.index.tolist()
    np.testing.assert_allclose(units[CONTROLS].to_numpy(), means.to_numpy(), rtol=1e-14)
    assert units["treated"].tolist() == treated.tolist()

    fit = psm.logit_pscore(units[CONTROLS], units["treated"])
    direct = sm.Logit(treated.to_numpy(float), sm.add_constant(means.to_numpy())).fit(
        disp=0, tol=1e-12
    )
    np.testing.assert_allclose(fit.pscore, direct.predict(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.params.to_numpy(), direct.params, rtol=1e-7)
    assert fit.pseudo_r2 == pytest.approx(direct.prsquared, rel=1e-10)

    sk = LogisticRegression(penalty=None, tol=1e-12, max_iter=100_000).fit(
        (means - means.mean()) / means.std(), treated
    )
    np.testing.assert_allclose(
        fit.pscore, sk.predict_proba((means - means.mean()) / means.std())[:, 1], atol=1e-6
    )

    scores, _, _ = psm.match_units(units, CONTROLS, MatchOptions(caliper=None))
    np.testing.assert_allclose(scores["pscore"], direct.predict(), rtol=0, atol=1e-10)


def test_logit_failures_raise():
    x = pd.DataFrame({"a": np.arange(10.0), "b": 2 * np.arange(10.0)})
    y = (np.arange(10) > 4).astype(int)
    with pytest.raises(PsmError, match="collinear"):
        psm.logit_pscore(x, y)
    with pytest.raises(PsmError, match="separation|converge"):
        psm.logit_pscore(x[["a"]], y)
    with pytest.raises(PsmError, match="treated and control"):
        psm.logit_pscore(x[["a"]], np.zeros(10))


def test_by_year_fits_one_logit_per_year(small_panel):
    units = psm.design_units(small_panel, design="by_year", covariates=CONTROLS)
    scores, pairs, _ = psm.match_units(units, CONTROLS, MatchOptions(caliper=None))
    one = small_panel[small_panel["year"] == 2012].sort_values("city_code")
    ever = small_panel.groupby("city_code")["dual_post"].max().reindex(one["city_code"])
    direct = sm.Logit(ever.to_numpy(float), sm.add_constant(one[CONTROLS].to_numpy())).fit(
        disp=0, tol=1e-12
    )
    got = scores[scores["year"] == 2012]
    assert got["city_code"].tolist() == one["city_code"].tolist()
    np.testing.assert_allclose(got["pscore"], direct.predict(), atol=1e-10)
    assert (pairs["treated_year"] == pairs["control_year"]).all()


# --------------------------------------------------------------------------------------------------
# Balance
# --------------------------------------------------------------------------------------------------


def test_standardised_bias_by_hand():
    units = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 6.0, 2.0, 4.0, 6.0, 8.0, 10.0],
            "treated": [1, 1, 1, 1, 0, 0, 0, 0, 0],
            "support": [True, True, True, False, True, True, True, True, True],
            "weight": [1.0, 1.0, 1.0, 0.0, 1.5, 0.5, 1.0, 0.0, 0.0],
        }
    )
    bal = psm.balance_table(units, ["x"], design="d").set_index("sample")
    scale = math.sqrt((14 / 3 + 10) / 2)  # unmatched variances: treated 14/3, controls 10
    u, m = bal.loc["unmatched"], bal.loc["matched"]
    assert (u["mean_treated"], u["mean_control"]) == pytest.approx((3.0, 6.0), abs=1e-12)
    assert u["bias_pct"] == pytest.approx(100 * (3 - 6) / scale, abs=1e-12)
    assert (m["mean_treated"], m["mean_control"]) == pytest.approx((2.0, 11 / 3), abs=1e-12)
    assert m["bias_pct"] == pytest.approx(100 * (2 - 11 / 3) / scale, abs=1e-12)
    assert m["bias_reduction_pct"] == pytest.approx(100 * (1 - (5 / 3) / 3), abs=1e-12)
    assert math.isnan(u["bias_reduction_pct"])
    v0m = (1.5 * (2 - 11 / 3) ** 2 + 0.5 * (4 - 11 / 3) ** 2 + 1.0 * (6 - 11 / 3) ** 2) / (3 - 1)
    assert m["var_ratio"] == pytest.approx(1.0 / v0m, abs=1e-12)
    assert u["var_ratio"] == pytest.approx((14 / 3) / 10, abs=1e-12)
    assert (m["n_treated"], m["n_control"]) == (3, 3)

    ref = stats.ttest_ind([1, 2, 3, 6], [2, 4, 6, 8, 10])
    assert (u["t_stat"], u["p_value"]) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-12)
    keep = units["weight"] > 0
    glm = sm.GLM(
        units.loc[keep, "x"],
        sm.add_constant(units.loc[keep, "treated"].astype(float)),
        family=sm.families.Gaussian(),
        freq_weights=units.loc[keep, "weight"],
    ).fit(use_t=True)
    assert m["t_stat"] == pytest.approx(glm.tvalues["treated"], rel=1e-10)
    assert m["p_value"] == pytest.approx(glm.pvalues["treated"], rel=1e-10)


# --------------------------------------------------------------------------------------------------
# Designs and the DiD on the matched sample
# --------------------------------------------------------------------------------------------------


def _reference_fit(panel, matched, weighted):
    data = panel.merge(matched[["city_code", "year", "weight"]], on=["city_code", "year"])
    fit = est.fit(
        data,
        outcome="lq",
        terms=["dual_post"],
        controls=CONTROLS,
        weights="weight" if weighted else None,
    )
    return data, fit


@pytest.mark.parametrize("design", psm.DESIGNS)
@pytest.mark.parametrize("weighted", [True, False])
def test_did_on_matched_sample_equals_estimation_and_pyfixest(small_panel, design, weighted):
    res = psm.psm_did(
        small_panel, controls=CONTROLS, design=design, did_weights="weights" if weighted else "unweighted",
        caliper=0.1,
    )  # fmt: skip
    assert list(res.tidy.columns) == list(est.TIDY_COLUMNS)
    row = res.tidy.iloc[0]
    assert (row["model"], row["term"]) == (f"psm_{design}", "dual_post")
    data, fit = _reference_fit(small_panel, res.matched, weighted)
    assert row["estimate"] == pytest.approx(fit.coef["dual_post"], abs=1e-12)
    assert row["std_error"] == pytest.approx(fit.se["dual_post"], rel=1e-12)
    assert row["n_obs"] == fit.n_obs == res.summary["n_obs_did"].iloc[0]
    # pyfixest directly (it keeps singletons, so drop them as the estimation module does)
    data = data.loc[fit.sample_index]
    pf = feols(
        "lq ~ dual_post + " + " + ".join(CONTROLS) + " | city_code + year",
        data, vcov={"CRV1": "city_code"}, weights="weight" if weighted else None, demeaner=TIGHT,
    )  # fmt: skip
    assert row["estimate"] == pytest.approx(pf.coef()["dual_post"], abs=1e-8)
    assert row["std_error"] == pytest.approx(pf.se()["dual_post"], rel=1e-6)


def test_baseline_design_keeps_matched_cities_in_every_year(small_panel):
    res = psm.psm_did(small_panel, controls=CONTROLS, design="baseline", caliper=None, k=2)
    years = small_panel["year"].nunique()
    per_city = res.matched.groupby("city_code")
    assert (per_city.size() == years).all()
    assert (per_city["weight"].nunique() == 1).all() and (per_city["treated"].nunique() == 1).all()
    cities = res.scores.loc[res.scores["weight"] > 0, "city_code"]
    assert set(res.matched["city_code"]) == set(cities)
    assert res.pairs["treated_year"].isna().all()
    # each treated city spreads weight 1 over its controls
    sums = res.pairs.groupby("treated_city")["weight"].sum()
    np.testing.assert_allclose(sums, 1.0)
    treated = res.scores["treated"] == 1
    assert res.scores.loc[~treated, "weight"].sum() == pytest.approx(
        res.summary["n_treated_matched"].iloc[0]
    )


def test_baseline_period_must_precede_treatment(small_panel):
    with pytest.raises(PsmError, match="baseline period"):
        psm.design_units(small_panel, design="baseline", covariates=CONTROLS, baseline_end=2012)
    with pytest.raises(PsmError, match="only defined for the pooled"):
        psm.design_units(small_panel, design="by_year", covariates=CONTROLS, treat="current")
    with pytest.raises(PsmError, match="design"):
        psm.psm_did(small_panel, controls=CONTROLS, design="stacked")


def test_pooled_current_treatment_counts_self_matches():
    rows = []
    levels = {"100100": 1.0, "100200": 0.0, "100300": 2.0, "100400": -1.0, "100500": 0.5}
    rng = np.random.default_rng(0)
    for code, level in levels.items():
        for year in range(2006, 2012):
            treated = int(code == "100100" and year >= 2010)
            rows.append(
                {
                    "city_code": code,
                    "year": year,
                    "dual_post": treated,
                    "x": level + rng.normal(0, 0.01),
                }
            )
    panel = pd.DataFrame(rows)
    units = psm.design_units(panel, design="pooled", covariates=["x"], treat="current")
    scores, pairs, summary = psm.match_units(
        units, ["x"], MatchOptions(k=1, caliper=None), design="pooled"
    )
    assert summary["n_treated"].iloc[0] == 2
    # the nearest controls of the city's treated years are its own earlier years
    assert (pairs["treated_city"] == "100100").all() and (pairs["control_city"] == "100100").all()
    assert summary["n_self_matches"].iloc[0] == len(pairs) >= 2
    ever = psm.design_units(panel, design="pooled", covariates=["x"], treat="ever")
    assert ever.loc[ever["city_code"] == "100100", "treated"].eq(1).all()


def test_results_do_not_depend_on_row_order(small_panel):
    shuffled = small_panel.sample(frac=1.0, random_state=4)
    a = psm.psm_did(small_panel, controls=CONTROLS, design="pooled", ties="first")
    b = psm.psm_did(shuffled, controls=CONTROLS, design="pooled", ties="first")
    pd.testing.assert_frame_equal(a.matched, b.matched)
    pd.testing.assert_frame_equal(a.tidy, b.tidy)


def test_missing_covariates_are_counted_not_matched(small_panel):
    panel = small_panel.copy()
    panel.loc[[0, 5, 7], "open"] = np.nan
    res = psm.psm_did(panel, controls=CONTROLS, design="pooled")
    assert res.summary["n_missing"].iloc[0] == 3
    assert len(res.scores) == len(panel) - 3


def test_run_all_designs(small_panel):
    out = psm.run_all_designs(small_panel, controls=CONTROLS, method="kernel", k=[1, 4])
    # kernel matching has no k: one model per design, the unmatched DiD last
    assert out.tidy["model"].tolist() == [f"psm_{d}" for d in psm.DESIGNS] + [psm.FULL_MODEL]
    full = est.fit(small_panel, outcome="lq", terms=["dual_post"], controls=CONTROLS)
    assert out.tidy["estimate"].iloc[-1] == pytest.approx(full.coef["dual_post"], abs=1e-12)
    assert set(out.balance["design"]) == set(psm.DESIGNS) == set(out.summary["design"])
    assert list(out.balance.columns) == ["design", "model", "k", *psm.BALANCE_COLUMNS[1:]]
    assert out.balance["k"].isna().all()
    # the planted effect (0.30, covariates independent of treatment) is recovered by every design
    np.testing.assert_allclose(out.tidy["estimate"], 0.30, atol=0.03)


# --------------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------------


def test_density_figure(small_panel, tmp_path):
    res = psm.psm_did(small_panel, controls=CONTROLS, design="pooled")
    fig = psm_figures.pscore_density_figure(res.scores, language="en", title="PSM")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    weighted = fig.axes[1].lines[1].get_ydata()
    plain = (
        psm_figures.pscore_density_figure(res.scores, language="en", weighted=False)
        .axes[1]
        .lines[1]
        .get_ydata()
    )
    assert not np.allclose(weighted, plain)
    save_figure(fig, tmp_path / "d.png", tmp_path / "d.pdf")
    assert (tmp_path / "d.png").stat().st_size > 0 and (tmp_path / "d.pdf").stat().st_size > 0
    stacked = pd.concat([res.scores, res.scores.assign(design="other")])
    with pytest.raises(PsmError, match="several designs"):
        psm_figures.pscore_density_figure(stacked, language="en")


# --------------------------------------------------------------------------------------------------
# The shipped defaults and the PSM-DID table
# --------------------------------------------------------------------------------------------------


def test_default_table_heads_with_baseline_matching_and_shows_1to1_and_1to4(small_panel):
    """config/config.yaml: baseline design first, 1:1 and 1:4 side by side, caliper 0.2 SD of the
    logit; the rendered table (both languages) has that column order and the note on post-treatment
    matching of the pooled and year-by-year designs."""
    import yaml

    from dualpilot.render import documents as render
    from dualpilot.render import tables

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8"))
    options = dict(config["psm"])
    options.pop("figure_design")
    designs = options.pop("designs")
    assert designs[0] == "baseline" and options["k"] == [1, 4]
    assert (options["caliper"], options["caliper_scale"]) == (0.2, "logit_sd")
    out = psm.run_all_designs(small_panel, controls=CONTROLS, designs=designs, **options)
    models = [f"psm_{d}_k{k}" for d in designs for k in (1, 4)] + [psm.FULL_MODEL]
    assert out.tidy["model"].tolist() == models
    first = out.tidy.iloc[0]
    assert "cities matched on means up to 2009" in first["sample"]
    assert "nearest 1:1 on logit(p), caliper 0.2 SD of logit(p)" in first["sample"]
    assert "nearest 1:4" in out.tidy.iloc[1]["sample"]
    pooled = out.tidy.set_index("model").loc["psm_pooled_k1", "sample"]
    assert "covariates measured after treatment" in pooled
    # the two ratios match differently (1:4 uses more controls)
    used = out.summary.set_index("model")["n_controls_used"]
    assert used["psm_baseline_k4"] > used["psm_baseline_k1"]
    labels = tables.load_labels()
    expected = {
        "zh": ["基期匹配 1:1", "基期匹配 1:4", "混合匹配 1:1", "混合匹配 1:4", "逐年匹配 1:1",
               "逐年匹配 1:4", "全样本"],
        "en": ["Baseline matching 1:1", "Baseline matching 1:4", "Pooled matching 1:1",
               "Pooled matching 1:4", "Year-by-year matching 1:1", "Year-by-year matching 1:4",
               "Full sample"],
    }  # fmt: skip
    note = {"zh": "按处理后测得的协变量匹配", "en": "covariates measured after treatment"}
    for language in ("zh", "en"):
        table = render.analysis_table(
            out.tidy, "psm_did", specs_path=root / "resources" / "labels" / "tables.csv",
            labels=labels, settings=config["tables"] | {"language": language},
        )  # fmt: skip
        assert list(table.header[1:]) == expected[language]
        assert note[language] in " ".join(table.notes)
