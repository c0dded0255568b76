"""Tests of dualpilot.did.staggered against published output and independent implementations.

What each estimator is checked against (tolerances in brackets):
- Callaway-Sant'Anna: the R `did` package's printed output on mpdta (4 printed decimals: |diff| <=
  5e-5 + 1e-12); on synthetic panels, every unconditional ATT(g,t) against a hand-built 2x2 DID
  regression in statsmodels with HC0 SEs (estimate 1e-10 abs, SE 1e-8 rel), every covariate-adjusted
  ATT(g,t) and its influence function against the `drdid` package (estimate 1e-8 abs, influence
  function 1e-7 abs), the aggregated influence functions against a numerical derivative of an
  independent weighted re-implementation (1e-6 abs), and the bootstrap SE against the analytic SE
  (10% rel, fixed seed).
- Sun-Abraham: cohort x period coefficients against a statsmodels OLS with explicit unit, period and
  cell dummies (1e-8 abs), SEs against pyfixest CRV1 (1e-6 rel) and against the statsmodels sandwich
  times fixest's small-sample factor (1e-6 rel), aggregates against weights computed here (1e-8 abs).
- Imputation: point estimates and SEs against pyfixest's `did2s` (estimates 1e-8 abs, SE 1e-6 rel) and
  the GMM vcov against a dense numpy formula without small-sample factor (1e-10 rel); where did2s differs
  (docs/staggered-did.md, "Why the imputation estimator is our own"): its p-values from t(N-K) and
  intervals from N(0,1) where ours use t(G-1), its first stage as shipped off by more than 1e-7, its
  failure on units with a single untreated period.
- Goodman-Bacon: the weighted sum of the 2x2 estimates against the pyfixest TWFE coefficient (1e-10
  abs) and every 2x2 estimate against a two-group TWFE regression on its window (1e-10 abs).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import statsmodels.api as sm
from drdid.drdid import drdid_panel
from drdid.reg_did import reg_did_panel
from pyfixest.demeaners import MapDemeaner
from pyfixest.estimation.models.feols_ import Feols
from scipy import stats

from dualpilot.analyses.staggered_did import as_estimates
from dualpilot.core.tidy import TIDY_COLUMNS
from dualpilot.did.bacon import bacon_summary, goodman_bacon
from dualpilot.did.staggered import (
    STAGGERED_COLUMNS,
    callaway_santanna,
    cs_aggregate,
    cs_att_gt,
    imputation_did,
    imputation_did_with_vcov,
    sun_abraham,
)

MPDTA_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mpdta"
MPDTA_COPY = Path(__file__).resolve().parent / "data" / "mpdta.csv"
PRINTED = 5e-5 + 1e-12  # half a unit in the 4th printed decimal

# R did, att_gt(yname="lemp", gname="first.treat", idname="countyreal", tname="year", xformla=~1,
# data=mpdta): /work/shared/data/mpdta/README.md (did 2.5.1 docs/articles/did-basics.md).
DID_ATT_GT = {
    (2004, 2004): -0.0105, (2004, 2005): -0.0704, (2004, 2006): -0.1373, (2004, 2007): -0.1008,
    (2006, 2004): 0.0065, (2006, 2005): -0.0028, (2006, 2006): -0.0046, (2006, 2007): -0.0412,
    (2007, 2004): 0.0305, (2007, 2005): -0.0027, (2007, 2006): -0.0311, (2007, 2007): -0.0261,
}  # fmt: skip
DID_DYNAMIC = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008}
DID_DYNAMIC_OVERALL = -0.0772
# aggte(type="group") printed in the did README (github.com/bcallaway11/did, README.md): groups to
# 4 decimals, the overall ATT to 3 ("-0.031").
DID_GROUP = {2004: -0.0797, 2006: -0.0229, 2007: -0.0261}
DID_GROUP_OVERALL = -0.031
# att_gt(..., xformla=~lpop) (doubly robust) with never-treated and with not-yet-treated controls,
# printed in the examples of the did reference manual (att_gt).
DID_ATT_GT_LPOP = {
    "never": [-0.0145, -0.0764, -0.1404, -0.1069, -0.0005, -0.0062, 0.0010, -0.0413,
              0.0267, -0.0046, -0.0284, -0.0288],
    "notyet": [-0.0212, -0.0816, -0.1382, -0.1069, -0.0075, -0.0046, 0.0087, -0.0413,
               0.0269, -0.0042, -0.0284, -0.0288],
}  # fmt: skip


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    shared = MPDTA_SHARED / "mpdta.csv"
    return pd.read_csv(shared if shared.exists() else MPDTA_COPY)


def staggered_panel(
    n: int = 80,
    periods: int = 8,
    seed: int = 0,
    cohorts: tuple[int, ...] = (3, 5, 6),
    never: bool = True,
    drop_rows: int = 0,
    noise: float = 1.0,
) -> pd.DataFrame:
    """A synthetic staggered panel: string unit ids, periods 1..T, cohort 0 = never treated.

    y = unit effect + 0.3 t + 0.5 x1 + 0.4 x2 * t / T + effect + noise, with x1 time-varying and
    correlated with treatment, x2 time-invariant (so parallel trends hold only given x2) and a
    heterogeneous effect 1 + 0.5 e + 0.2 g from e = t - g >= 0 on.
    """
    rng = np.random.default_rng(seed)
    choices = [*cohorts, *([0] if never else [])]
    g = rng.choice(choices, size=n)
    g[: len(choices)] = choices  # every cohort populated
    t = np.tile(np.arange(1, periods + 1), n)
    gg = np.repeat(g, periods)
    x2 = np.repeat(rng.normal(size=n) + 0.5 * (g > 0), periods)
    x1 = rng.normal(size=n * periods) + 0.3 * (gg > 0)
    treated = (gg > 0) & (t >= gg)
    effect = np.where(treated, 1 + 0.5 * (t - gg) + 0.2 * gg, 0.0)
    y = (
        np.repeat(rng.normal(size=n), periods)
        + 0.3 * t
        + 0.5 * x1
        + 0.4 * x2 * t / periods
        + effect
        + noise * rng.normal(size=n * periods)
    )
    df = pd.DataFrame(
        {
            "unit": np.repeat([f"u{i:03d}" for i in range(n)], periods),
            "t": t,
            "g": gg.astype(float),
            "x1": x1,
            "x2": x2,
            "y": y,
            "treat": treated.astype(int),
        }
    )
    if drop_rows:
        # drop rows other than each unit's first two periods: no unit loses its pre-period
        candidates = np.flatnonzero(df["t"].to_numpy() > 2)
        df = df.drop(index=rng.choice(candidates, size=drop_rows, replace=False))
    return df.reset_index(drop=True)


def _rows(res: pd.DataFrame, aggregation: str) -> pd.DataFrame:
    return res[res["aggregation"] == aggregation].set_index("term")


# ------------------------------------------------------------------------------------------
# Callaway-Sant'Anna: R did on mpdta
# ------------------------------------------------------------------------------------------


def test_mpdta_copy_is_the_shared_file() -> None:
    shared = MPDTA_SHARED / "mpdta.csv"
    if not shared.exists():
        pytest.skip("shared/ is not beside the repository; the tests use tests/data/mpdta.csv")
    assert shared.read_bytes() == MPDTA_COPY.read_bytes()


def test_cs_mpdta_matches_did_att_gt_and_aggregations(mpdta: pd.DataFrame) -> None:
    res = callaway_santanna(mpdta, "countyreal", "year", "first.treat", "lemp")
    gt = _rows(res, "gt")
    for (g, t), value in DID_ATT_GT.items():
        assert abs(gt.loc[f"ATT(g={g},t={t})", "estimate"] - value) <= PRINTED
    assert len(gt) == len(DID_ATT_GT)
    dyn = _rows(res, "dynamic")
    for e, value in DID_DYNAMIC.items():
        assert abs(dyn.loc[f"rel_{e}", "estimate"] - value) <= PRINTED
    assert abs(dyn.loc["ATT", "estimate"] - DID_DYNAMIC_OVERALL) <= PRINTED
    grp = _rows(res, "group")
    for g, value in DID_GROUP.items():
        assert abs(grp.loc[f"group_{g}", "estimate"] - value) <= PRINTED
    assert abs(grp.loc["ATT", "estimate"] - DID_GROUP_OVERALL) <= 5e-4
    # simple ATT = post-treatment ATT(g,t) weighted by cohort size (counties per cohort)
    sizes = mpdta.groupby("first.treat")["countyreal"].nunique()
    post = {k: v for k, v in DID_ATT_GT.items() if k[0] <= k[1]}
    expected = sum(v * sizes[g] for (g, _), v in post.items()) / sum(sizes[g] for g, _ in post)
    assert abs(_rows(res, "simple").loc["ATT", "estimate"] - expected) <= PRINTED
    assert set(res.columns) == set(STAGGERED_COLUMNS)
    assert (res["n_obs"] == 2500).all() and (res["n_clusters"] == 500).all()


@pytest.mark.parametrize("control_group", ["never", "notyet"])
def test_cs_mpdta_with_covariate_matches_did(mpdta: pd.DataFrame, control_group: str) -> None:
    res = cs_att_gt(
        mpdta, "countyreal", "year", "first.treat", "lemp", "lpop", control_group=control_group
    )
    got = res.cells.sort_values(["group", "time"])["att"].to_numpy()
    np.testing.assert_allclose(got, DID_ATT_GT_LPOP[control_group], rtol=0, atol=PRINTED)


# ------------------------------------------------------------------------------------------
# Callaway-Sant'Anna: independent implementations on synthetic panels
# ------------------------------------------------------------------------------------------


def _wide(df: pd.DataFrame, col: str) -> np.ndarray:
    return df.pivot(index="unit", columns="t", values=col).sort_index().to_numpy()


def _expected_cells(df: pd.DataFrame, control_group: str, base_period: str):
    """The 2x2 comparisons of did::att_gt, written out from its documentation."""
    periods = np.sort(df["t"].unique())
    cohort = df.groupby("unit")["g"].first().sort_index().to_numpy()
    cohort = np.where(cohort == 0, np.inf, cohort)
    for g in np.unique(cohort[np.isfinite(cohort)]):
        g_base = periods[periods < g].max()
        for j, t in enumerate(periods):
            if base_period == "varying":
                if j == 0:
                    continue
                base = g_base if t >= g else periods[j - 1]
            else:
                base = g_base
                if t == base:
                    continue
            if control_group == "never":
                control = np.isinf(cohort)
            else:  # not yet treated in the later of the two compared periods
                control = (cohort > max(t, base)) & (cohort != g)
            yield g, t, base, cohort == g, control


@pytest.mark.parametrize("control_group", ["never", "notyet"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_cs_unconditional_equals_2x2_regressions(control_group: str, base_period: str) -> None:
    df = staggered_panel(n=70, periods=7, seed=1)
    res = cs_att_gt(df, "unit", "t", "g", "y", control_group=control_group, base_period=base_period)
    cells = res.cells.set_index(["group", "time"])
    y = _wide(df, "y")
    col = {p: j for j, p in enumerate(np.sort(df["t"].unique()))}
    n_checked = 0
    for g, t, base, treated, control in _expected_cells(df, control_group, base_period):
        mask = treated | control
        dy = y[mask, col[t]] - y[mask, col[base]]
        design = sm.add_constant(treated[mask].astype(float))
        fit = sm.OLS(dy, design).fit(cov_type="HC0")
        k = cells.index.get_loc((g, t))
        assert cells.iloc[k]["base_time"] == base
        assert abs(cells.iloc[k]["att"] - fit.params[1]) < 1e-10
        se = np.sqrt((res.influence[:, k] ** 2).sum()) / res.n_units
        assert se == pytest.approx(fit.bse[1], rel=1e-8)
        n_checked += 1
    # universal base: one normalised reference cell per cohort, with a zero influence function
    reference = res.cells["time"] == res.cells["base_time"]
    assert n_checked == len(res.cells) - reference.sum()
    assert (res.cells.loc[reference, "att"] == 0).all()
    assert not res.influence[:, reference.to_numpy()].any()


@pytest.mark.parametrize("est_method", ["dr", "reg"])
@pytest.mark.parametrize("control_group", ["never", "notyet"])
def test_cs_covariates_equal_drdid(est_method: str, control_group: str) -> None:
    df = staggered_panel(n=120, periods=6, seed=2)
    covs = ["x1", "x2"]
    res = cs_att_gt(
        df, "unit", "t", "g", "y", covs, control_group=control_group, est_method=est_method
    )
    cells = res.cells.set_index(["group", "time"])
    y = _wide(df, "y")
    x = np.stack([_wide(df, c) for c in covs], axis=2)
    col = {p: j for j, p in enumerate(np.sort(df["t"].unique()))}
    kernel = drdid_panel if est_method == "dr" else reg_did_panel
    for g, t, base, treated, control in _expected_cells(df, control_group, "varying"):
        mask = treated | control
        cur, pre = col[t], col[base]
        covariates = x[mask, min(cur, pre), :]  # covariates of the earlier period, as did
        att, inf = kernel(y[mask, cur], y[mask, pre], treated[mask].astype(float), covariates)
        k = cells.index.get_loc((g, t))
        assert abs(cells.iloc[k]["att"] - att) < 1e-8
        ours = res.influence[mask, k] * mask.sum() / res.n_units
        np.testing.assert_allclose(ours, inf, rtol=0, atol=1e-7)
        assert not res.influence[~mask, k].any()


def _weighted_cs(df: pd.DataFrame, control_group: str, weights: np.ndarray) -> dict[str, float]:
    """Unconditional CS with unit weights, and its aggregations (a separate implementation)."""
    y = _wide(df, "y")
    col = {p: j for j, p in enumerate(np.sort(df["t"].unique()))}
    cohort = df.groupby("unit")["g"].first().sort_index().to_numpy()
    cohort = np.where(cohort == 0, np.inf, cohort)
    cells = []
    for g, t, base, treated, control in _expected_cells(df, control_group, "varying"):
        dy = y[:, col[t]] - y[:, col[base]]
        att = (weights * treated) @ dy / (weights @ treated) - (weights * control) @ dy / (
            weights @ control
        )
        pg = weights @ (cohort == g) / weights.sum()
        cells.append((g, t, att, pg))
    cells_df = pd.DataFrame(cells, columns=["g", "t", "att", "pg"])
    post = cells_df[cells_df["g"] <= cells_df["t"]]
    out = {"simple:ATT": float((post["att"] * post["pg"]).sum() / post["pg"].sum())}
    cells_df["e"] = cells_df["t"] - cells_df["g"]
    dyn = cells_df.groupby("e").apply(lambda c: (c["att"] * c["pg"]).sum() / c["pg"].sum())
    out.update({f"dynamic:rel_{int(e)}": float(v) for e, v in dyn.items()})
    out["dynamic:ATT"] = float(dyn[dyn.index >= 0].mean())
    by_group = post.groupby("g").agg(att=("att", "mean"), pg=("pg", "first"))
    out.update({f"group:group_{int(g)}": float(v) for g, v in by_group["att"].items()})
    out["group:ATT"] = float((by_group["att"] * by_group["pg"]).sum() / by_group["pg"].sum())
    return out


@pytest.mark.parametrize("control_group", ["never", "notyet"])
def test_cs_aggregated_influence_functions_are_derivatives(control_group: str) -> None:
    df = staggered_panel(n=40, periods=6, seed=3)
    res = cs_att_gt(df, "unit", "t", "g", "y", control_group=control_group)
    n = res.n_units
    ones = np.ones(n)
    base = _weighted_cs(df, control_group, ones)
    step = 1e-5
    derivative = {key: np.zeros(n) for key in base}
    for i in range(n):
        up, down = ones.copy(), ones.copy()
        up[i] += step
        down[i] -= step
        hi, lo = _weighted_cs(df, control_group, up), _weighted_cs(df, control_group, down)
        for key in base:
            # influence function = n * d(theta)/d(weight_i) for a smooth functional of weights
            derivative[key][i] = n * (hi[key] - lo[key]) / (2 * step)
    for aggregation in ("simple", "dynamic", "group"):
        agg = cs_aggregate(res, aggregation)  # type: ignore[arg-type]
        for j, term in enumerate(agg.terms):
            key = f"{aggregation}:{term}"
            assert abs(agg.estimate[j] - base[key]) < 1e-12
            np.testing.assert_allclose(agg.influence[:, j], derivative[key], rtol=0, atol=1e-6)
        assert len(agg.terms) == sum(k.startswith(aggregation) for k in base)


def test_cs_bootstrap_is_seeded_and_close_to_analytic() -> None:
    df = staggered_panel(n=150, periods=5, seed=4)
    analytic = callaway_santanna(df, "unit", "t", "g", "y")
    boot = callaway_santanna(df, "unit", "t", "g", "y", bootstrap=4000, seed=11)
    again = callaway_santanna(df, "unit", "t", "g", "y", bootstrap=4000, seed=11)
    other = callaway_santanna(df, "unit", "t", "g", "y", bootstrap=4000, seed=12)
    pd.testing.assert_frame_equal(boot, again)
    assert not np.allclose(boot["std_error"], other["std_error"])
    np.testing.assert_allclose(boot["estimate"], analytic["estimate"], rtol=0, atol=0)
    np.testing.assert_allclose(boot["std_error"], analytic["std_error"], rtol=0.10)
    band = callaway_santanna(df, "unit", "t", "g", "y", bootstrap=4000, seed=11, cband=True)
    z = 1.959963984540054
    for aggregation in ("gt", "dynamic", "group"):
        rows = band[(band["aggregation"] == aggregation) & (band["term"] != "ATT")]
        assert rows["crit_value"].nunique() == 1 and rows["crit_value"].iloc[0] > z
    np.testing.assert_allclose(band.loc[band["term"] == "ATT", "crit_value"], z, rtol=1e-12)
    assert "seed=11" in band["vcov"].iloc[0]


def test_cs_no_never_treated_uses_last_cohort_as_control() -> None:
    df = staggered_panel(n=60, periods=8, seed=5, cohorts=(3, 5, 7), never=False)
    with pytest.raises(ValueError, match="no never-treated"):
        cs_att_gt(df, "unit", "t", "g", "y")
    res = cs_att_gt(df, "unit", "t", "g", "y", control_group="notyet")
    assert res.cells["time"].max() == 6  # periods >= 7 dropped
    assert set(res.cells["group"]) == {3.0, 5.0}  # cohort 7 only serves as control
    # check one cell by hand: ATT(3, 4) against cohorts 5 and 7 (both untreated in period 4)
    y = _wide(df, "y")
    cohort = df.groupby("unit")["g"].first().sort_index().to_numpy()
    dy = y[:, 3] - y[:, 1]
    expected = dy[cohort == 3].mean() - dy[cohort >= 5].mean()
    cell = res.cells.set_index(["group", "time"]).loc[(3.0, 4.0)]
    assert cell["att"] == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------
# Sun-Abraham
# ------------------------------------------------------------------------------------------


def _saturated_ols(df: pd.DataFrame, control: np.ndarray, covs: list[str]) -> dict:
    """OLS of y on explicit unit, period and (cohort, e != -1) dummies, with statsmodels."""
    treated = ~control
    rel = np.where(treated, df["t"] - df["g"], np.nan)
    cells = sorted({(g, e) for g, e in zip(df["g"][treated], rel[treated], strict=True) if e != -1})
    names = [f"c{k}" for k in range(len(cells))]
    dummies = pd.DataFrame(
        {
            nm: ((df["g"] == g) & (rel == e)).astype(float)
            for nm, (g, e) in zip(names, cells, strict=True)
        }
    )
    units = pd.get_dummies(df["unit"], prefix="u", dtype=float)
    periods = pd.get_dummies(df["t"], prefix="t", drop_first=True, dtype=float)
    design = pd.concat([dummies, df[covs].reset_index(drop=True), units, periods], axis=1)
    groups = pd.factorize(df["unit"])[0]
    fit = sm.OLS(df["y"].to_numpy(), design).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    n, n_cl = len(df), groups.max() + 1
    k_fixest = len(names) + len(covs) + df["t"].nunique()  # unit effects nested in clusters
    factor = n_cl / (n_cl - 1) * (n - 1) / (n - k_fixest)
    counts = np.array([((df["g"] == g) & (rel == e)).sum() for g, e in cells], dtype=float)
    return {
        "cells": cells,
        "names": names,
        "dummies": dummies,
        "beta": fit.params[names].to_numpy(),
        "vcov": factor * fit.cov_params().loc[names, names].to_numpy(),
        "counts": counts,
    }


def _check_sa_aggregates(res: pd.DataFrame, ref: dict) -> None:
    g = np.array([c[0] for c in ref["cells"]])
    e = np.array([c[1] for c in ref["cells"]])

    def expect(mask: np.ndarray) -> tuple[float, float]:
        w = np.where(mask, ref["counts"], 0.0)
        w = w / w.sum()
        return float(w @ ref["beta"]), float(np.sqrt(w @ ref["vcov"] @ w))

    wanted = {("simple", "ATT"): e >= 0}
    wanted.update({("dynamic", f"rel_{int(v)}"): e == v for v in np.unique(e)})
    wanted.update({("group", f"group_{int(v)}"): (g == v) & (e >= 0) for v in np.unique(g)})
    for (aggregation, term), mask in wanted.items():
        row = _rows(res, aggregation).loc[term]
        est, se = expect(mask)
        assert abs(row["estimate"] - est) < 1e-8
        assert row["std_error"] == pytest.approx(se, rel=1e-6)
    assert len(res) == len(wanted) + len(ref["cells"])


@pytest.mark.parametrize("unbalanced", [False, True])
def test_sun_abraham_equals_saturated_regression(unbalanced: bool) -> None:
    df = staggered_panel(n=60, periods=7, seed=6, drop_rows=25 if unbalanced else 0)
    res = sun_abraham(df, "unit", "t", "g", "y", covariates="x1")
    ref = _saturated_ols(df, (df["g"] == 0).to_numpy(), ["x1"])
    cells = _rows(res, "cohort_event")
    terms = [f"ATT(g={int(g)},e={int(e)})" for g, e in ref["cells"]]
    assert list(cells.index) == terms
    np.testing.assert_allclose(cells["estimate"], ref["beta"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(cells["std_error"], np.sqrt(np.diag(ref["vcov"])), rtol=1e-6)
    # pyfixest's own CRV1 (fixest small-sample conventions) on the same saturated model
    data = pd.concat([df.reset_index(drop=True), ref["dummies"]], axis=1)
    fit = pf.feols(f"y ~ {' + '.join(ref['names'])} + x1 | unit + t", data, vcov={"CRV1": "unit"})
    np.testing.assert_allclose(cells["estimate"], fit.coef()[ref["names"]], rtol=0, atol=1e-8)
    np.testing.assert_allclose(cells["std_error"], fit.se()[ref["names"]], rtol=1e-6)
    _check_sa_aggregates(res, ref)
    assert (res["n_obs"] == len(df)).all() and (res["n_clusters"] == 60).all()


def test_sun_abraham_last_treated_cohort_as_control() -> None:
    df = staggered_panel(n=60, periods=8, seed=7, cohorts=(3, 5, 7), never=False)
    with pytest.raises(ValueError, match="no never-treated"):
        sun_abraham(df, "unit", "t", "g", "y")
    res = sun_abraham(df, "unit", "t", "g", "y", control_group="last")
    kept = df[df["t"] < 7].reset_index(drop=True)
    ref = _saturated_ols(kept, (kept["g"] == 7).to_numpy(), [])
    _check_sa_aggregates(res, ref)
    assert (res["n_obs"] == len(kept)).all()


# ------------------------------------------------------------------------------------------
# Imputation (Borusyak-Jaravel-Spiess) = did2s
# ------------------------------------------------------------------------------------------


@pytest.fixture
def exact_did2s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pyfixest's did2s first stage exact: by default it demeans with tolerance 1e-6 and
    recovers the fixed effects by LSQR with atol 1e-6, which leaves errors of ~1e-6 in the
    imputed outcomes of unbalanced untreated samples. The estimator code itself is unchanged."""
    module = importlib.import_module("pyfixest.did.did2s")
    tight = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=1_000_000)
    monkeypatch.setattr(module, "feols", functools.partial(module.feols, demeaner=tight))
    fixef = Feols.fixef
    monkeypatch.setattr(
        Feols, "fixef", lambda self, atol=1e-14, btol=1e-14: fixef(self, atol, btol)
    )


def _imputation_dense(df: pd.DataFrame, untreated: np.ndarray, covs: list[str]) -> np.ndarray:
    """Imputed effects y - Y0_hat by dense least squares on explicit dummies (numpy lstsq)."""
    design = pd.concat(
        [
            pd.get_dummies(df["unit"], dtype=float),
            pd.get_dummies(df["t"], drop_first=True, dtype=float),
            df[covs],
        ],
        axis=1,
    ).to_numpy()
    beta, *_ = np.linalg.lstsq(design[untreated], df["y"].to_numpy()[untreated], rcond=None)
    return df["y"].to_numpy() - design @ beta


def _did2s(df: pd.DataFrame, masks: dict[str, np.ndarray], untreated: np.ndarray, covs: list[str]):
    data = df.reset_index(drop=True).assign(
        **{name: m.astype(float) for name, m in masks.items()}, _treated=~untreated
    )
    first = f"~ {' + '.join(covs) if covs else '0'} | unit + t"
    return pf.did2s(
        data,
        yname="y",
        first_stage=first,
        second_stage="~ " + " + ".join(masks),
        treatment="_treated",
        cluster="unit",
    )


@pytest.mark.usefixtures("exact_did2s")
@pytest.mark.parametrize(
    ("covs", "anticipation", "drop_rows", "cohorts"),
    # pyfixest drops singleton fixed effects, so with anticipation every cohort keeps >= 2
    # untreated periods in the comparison (our estimator keeps singletons, as fixest does)
    [([], 0, 0, (3, 5, 6)), (["x1"], 0, 20, (3, 5, 6)), (["x1"], 1, 10, (4, 6, 7))],
)
def test_imputation_equals_did2s(
    covs: list[str], anticipation: int, drop_rows: int, cohorts: tuple[int, ...]
) -> None:
    df = staggered_panel(n=70, periods=8, seed=8, drop_rows=drop_rows, cohorts=cohorts)
    res = imputation_did(df, "unit", "t", "g", "y", covs or None, anticipation=anticipation)
    g = df["g"].to_numpy()
    ever = g > 0
    rel = np.where(ever, df["t"] - g, np.nan)
    untreated = ~ever | (rel < -anticipation)
    e_values = np.unique(rel[ever])  # every lead, e = -1 - anticipation included (not omitted)
    specs = {
        "simple": {"ATT": ever & (rel >= 0)},
        "dynamic": {f"rel_{int(e)}": ever & (rel == e) for e in e_values},
        "group": {f"group_{int(c)}": (g == c) & (rel >= 0) for c in np.unique(g[ever])},
    }
    for aggregation, masks in specs.items():
        names = {f"d{k}": m for k, m in enumerate(masks.values())}
        fit = _did2s(df, names, untreated, covs)
        rows = _rows(res, aggregation)
        assert list(rows.index) == list(masks)
        np.testing.assert_allclose(rows["estimate"], fit.coef()[list(names)], rtol=0, atol=1e-8)
        np.testing.assert_allclose(rows["std_error"], fit.se()[list(names)], rtol=1e-6)
        tau = _imputation_dense(df, untreated, covs)
        dense = [tau[m].mean() for m in masks.values()]
        np.testing.assert_allclose(rows["estimate"], dense, rtol=0, atol=1e-10)
        # the covariance of the aggregation's terms is did2s's (HonestDiD reads it)
        _, vcovs = imputation_did_with_vcov(
            df, "unit", "t", "g", "y", covs or None, anticipation=anticipation
        )
        vcov = vcovs[aggregation]
        assert list(vcov.index) == list(vcov.columns) == list(masks)
        np.testing.assert_allclose(vcov.to_numpy(), fit._vcov, rtol=1e-6, atol=1e-14)
    # did2s's own event study omits e = -1 - anticipation: no other lead or lag changes
    ref = f"rel_{-1 - anticipation}"
    dynamic = {k: m for k, m in specs["dynamic"].items() if k != ref}
    names = {f"d{k}": m for k, m in enumerate(dynamic.values())}
    fit = _did2s(df, names, untreated, covs)
    rows = _rows(res, "dynamic").drop(index=ref)
    np.testing.assert_allclose(rows["estimate"], fit.coef()[list(names)], rtol=0, atol=1e-8)
    np.testing.assert_allclose(rows["std_error"], fit.se()[list(names)], rtol=1e-6)


# What differs between did2s and this estimator (docs/staggered-did.md, "Why the imputation estimator
# is our own, not pyfixest.did2s"): the degrees of freedom of p-values and intervals, the accuracy of
# did2s's first stage as shipped, and units with a single untreated period.


def _gmm_dense(
    df: pd.DataFrame, untreated: np.ndarray, x2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """did2s's two stages and Butts-Gardner GMM vcov clustered by unit, by dense numpy algebra on
    explicit dummies, with no small-sample factor: V = B^-1 (sum_c w_c w_c') B^-1, B = X2'X2,
    w_c = X2_c'u2_c - X2'X1 (X10'X10)^-1 X10_c'u1_c."""
    x1 = pd.concat(
        [
            pd.get_dummies(df["unit"], dtype=float),
            pd.get_dummies(df["t"], drop_first=True, dtype=float),
        ],
        axis=1,
    ).to_numpy()
    x10 = x1 * untreated[:, None]
    y = df["y"].to_numpy()
    u1 = y - x1 @ np.linalg.solve(x10.T @ x10, x10.T @ y)
    beta = np.linalg.solve(x2.T @ x2, x2.T @ u1)
    u2 = u1 - x2 @ beta
    gamma = np.linalg.solve(x10.T @ x10, x1.T @ x2)
    codes = pd.factorize(df["unit"])[0]
    w = np.stack(
        [
            x2[codes == c].T @ u2[codes == c] - gamma.T @ (x10[codes == c].T @ u1[codes == c])
            for c in range(codes.max() + 1)
        ]
    )
    inv = np.linalg.inv(x2.T @ x2)
    return beta, inv @ (w.T @ w) @ inv


@pytest.mark.usefixtures("exact_did2s")
def test_did2s_has_the_same_gmm_se_but_other_degrees_of_freedom() -> None:
    """Both report the Butts-Gardner GMM vcov without small-sample factor (= the dense formula). This
    estimator takes p-values and intervals from t(G - 1), as every clustered estimate of the project;
    did2s takes p-values from t(N - K2) (the df of its iid second stage) and `confint()` from N(0, 1):
    the same SEs, other p-values and intervals. did2s keeps the GMM vcov in a private attribute."""
    df = staggered_panel(n=70, periods=8, seed=8)
    g = df["g"].to_numpy()
    ever = g > 0
    rel = np.where(ever, df["t"].to_numpy() - g, np.nan)
    post = ever & (rel >= 0)
    masks = {f"rel_{int(e)}": ever & (rel == e) for e in np.unique(rel[ever])}
    rows = _rows(imputation_did(df, "unit", "t", "g", "y", aggregations=("dynamic",)), "dynamic")
    x2 = np.column_stack(list(masks.values())).astype(float)
    beta, vcov = _gmm_dense(df, ~post, x2)
    np.testing.assert_allclose(rows["estimate"], beta, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rows["std_error"], np.sqrt(np.diag(vcov)), rtol=1e-10)
    names = {f"d{k}": m for k, m in enumerate(masks.values())}
    fit = _did2s(df, names, ~post, [])
    se, coef = fit.se()[list(names)].to_numpy(), fit.coef()[list(names)].to_numpy()
    np.testing.assert_allclose(se, rows["std_error"], rtol=1e-6)
    n, n_units, k = len(df), df["unit"].nunique(), len(names)
    assert fit._df_t == n - k
    tstat = np.abs(coef / se)
    np.testing.assert_allclose(
        fit.pvalue()[list(names)], 2 * stats.t.sf(tstat, n - k), rtol=1e-8, atol=1e-14
    )
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        fit.confint().loc[list(names)].to_numpy(),
        np.column_stack([coef - z * se, coef + z * se]),
        rtol=1e-10,
    )
    ours = stats.t.ppf(0.975, n_units - 1)
    np.testing.assert_allclose(rows["crit_value"], ours, rtol=1e-12)
    np.testing.assert_allclose(
        rows["p_value"], 2 * stats.t.sf(np.abs(rows["t_stat"]), n_units - 1), rtol=1e-12
    )
    np.testing.assert_allclose(
        rows["conf_low"], rows["estimate"] - ours * rows["std_error"], rtol=1e-12
    )
    # the same SEs, other inference: visible on the leads (t-statistics near 1-2)
    leads = [i for i, term in enumerate(masks) if term.startswith("rel_-")]
    gap = np.abs(fit.pvalue()[list(names)].to_numpy()[leads] - rows["p_value"].to_numpy()[leads])
    assert gap.max() > 1e-3
    assert ours - z > 0.03  # t(69) vs N(0, 1): did2s's intervals are narrower
    # the GMM vcov is only in the private attribute `_vcov`: the public `vcov()` replaces it with a
    # second-stage CRV1 that ignores the first stage's estimation error (variances off by 20-80 % here)
    gmm = fit._vcov.copy()
    fit.vcov({"CRV1": "unit"})
    assert np.max(np.abs(np.diag(fit._vcov) / np.diag(gmm) - 1)) > 0.2


def test_did2s_as_shipped_is_off_by_its_demeaning_tolerance() -> None:
    """Without the exact first stage of the agreement tests, did2s's estimate differs from exact least
    squares by more than 1e-7 (its demeaning tolerance is 1e-6); this estimator's does not."""
    df = staggered_panel(n=70, periods=8, seed=8)
    g = df["g"].to_numpy()
    post = (g > 0) & (df["t"].to_numpy() >= g)
    exact = _imputation_dense(df, ~post, ["x1"])[post].mean()
    ours = _rows(
        imputation_did(df, "unit", "t", "g", "y", "x1", aggregations=("simple",)), "simple"
    )
    assert abs(ours.loc["ATT", "estimate"] - exact) < 1e-12
    shipped = _did2s(df, {"d0": post}, ~post, ["x1"]).coef()["d0"]
    assert 1e-7 < abs(shipped - exact) < 1e-4


def test_did2s_fails_where_a_unit_has_one_untreated_period() -> None:
    """A cohort treated from the second period has one untreated observation per unit: did2s drops it
    as a singleton, cannot impute the unit's treated outcomes and fails; this estimator keeps it (the
    unit effect is that observation) and equals dense least squares."""
    df = staggered_panel(n=70, periods=8, seed=8, cohorts=(2, 5, 6))
    g = df["g"].to_numpy()
    post = (g > 0) & (df["t"].to_numpy() >= g)
    row = _rows(imputation_did(df, "unit", "t", "g", "y", aggregations=("simple",)), "simple")
    exact = _imputation_dense(df, ~post, [])[post].mean()
    np.testing.assert_allclose(row.loc["ATT", "estimate"], exact, rtol=0, atol=1e-10)
    assert row.loc["ATT", "n_obs"] == len(df)
    cohort_2 = df.loc[df["g"] == 2, "unit"].nunique()
    with (
        pytest.warns(UserWarning, match=f"{cohort_2} singleton fixed effect"),
        pytest.raises(ValueError, match="could not be broadcast"),
    ):
        _did2s(df, {"d0": post}, ~post, [])


def test_did2s_takes_weights_and_this_estimator_does_not() -> None:
    """The one feature did2s has and this estimator lacks; the workflow uses no weights."""
    assert "weights" in inspect.signature(pf.did2s).parameters
    assert "weights" not in inspect.signature(imputation_did_with_vcov).parameters


def test_imputation_rejects_absorbed_covariates() -> None:
    df = staggered_panel(n=40, periods=6, seed=18)
    with pytest.raises(ValueError, match="collinear"):
        imputation_did(df, "unit", "t", "g", "y", ["x1", "x2"])  # x2 is time-invariant
    with pytest.raises(ValueError, match="collinear"):
        sun_abraham(df, "unit", "t", "g", "y", ["x2"])


# ------------------------------------------------------------------------------------------
# All three ATT estimators on a noiseless heterogeneous panel
# ------------------------------------------------------------------------------------------


def test_estimators_recover_heterogeneous_effects_without_noise() -> None:
    df = staggered_panel(n=50, periods=8, seed=9, noise=0.0)
    df["y"] = df["y"] - 0.5 * df["x1"] - 0.4 * df["x2"] * df["t"] / 8  # additive model only
    g, t = df["g"].to_numpy(), df["t"].to_numpy()
    true_effect = np.where((g > 0) & (t >= g), 1 + 0.5 * (t - g) + 0.2 * g, 0.0)
    cs = cs_att_gt(df, "unit", "t", "g", "y")
    post = cs.cells[cs.cells["post"]]
    np.testing.assert_allclose(
        post["att"], 1 + 0.5 * post["event_time"] + 0.2 * post["group"], rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(cs.cells.loc[~cs.cells["post"], "att"], 0, atol=1e-10)
    sa = _rows(sun_abraham(df, "unit", "t", "g", "y"), "cohort_event")
    imp = _rows(imputation_did(df, "unit", "t", "g", "y"), "dynamic")
    for _, row in sa.iterrows():
        e = row["event_time"]
        expected = 1 + 0.5 * e + 0.2 * row["group"] if e >= 0 else 0.0
        assert row["estimate"] == pytest.approx(expected, abs=1e-9)
    for _, row in imp.iterrows():
        e = row["event_time"]
        expected = true_effect[(g > 0) & (t - g == e)].mean() if e >= 0 else 0.0
        assert row["estimate"] == pytest.approx(expected, abs=1e-9)


# ------------------------------------------------------------------------------------------
# Goodman-Bacon
# ------------------------------------------------------------------------------------------


def _bacon_panels() -> dict[str, pd.DataFrame]:
    base = staggered_panel(n=60, periods=8, seed=10)
    always = staggered_panel(n=12, periods=8, seed=11, cohorts=(1,), never=False)
    always["unit"] = "a" + always["unit"]
    return {
        "never": base,
        "never_and_always": pd.concat([base, always], ignore_index=True),
        "timing_only": staggered_panel(n=45, periods=8, seed=12, cohorts=(2, 4, 7), never=False),
    }


@pytest.mark.parametrize("case", ["never", "never_and_always", "timing_only"])
def test_goodman_bacon_sums_to_twfe(case: str) -> None:
    df = _bacon_panels()[case]
    dec = goodman_bacon(df, "unit", "t", "treat", "y")
    twfe = pf.feols("y ~ treat | unit + t", df).coef()["treat"]
    assert dec["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (dec["weight"] > 0).all()
    assert abs((dec["weight"] * dec["estimate"]).sum() - twfe) < 1e-10
    summary = bacon_summary(dec).set_index("type")
    assert abs(summary.loc["total", "estimate"] - twfe) < 1e-10
    expected_types = {
        "never": {"treated_vs_never", "earlier_vs_later", "later_vs_earlier"},
        "never_and_always": {
            "treated_vs_never", "earlier_vs_later", "later_vs_earlier", "treated_vs_always",
        },
        "timing_only": {"earlier_vs_later", "later_vs_earlier"},
    }[case]  # fmt: skip
    assert set(dec["type"]) == expected_types
    # every 2x2 estimate is a two-group TWFE regression on its window
    cohort = df.assign(_d=df["treat"] * df["t"]).query("_d > 0").groupby("unit")["t"].min()
    label = df["unit"].map(cohort).fillna(np.inf)
    t_min = df["t"].min()
    label = label.map(
        lambda v: "never" if np.isinf(v) else ("always" if v == t_min else str(int(v)))
    )
    for row in dec.itertuples():
        sub = df[
            label.isin([row.treated, row.control])
            & df["t"].between(row.window_start, row.window_end)
        ]
        fit = pf.feols("y ~ treat | unit + t", sub)
        assert abs(fit.coef()["treat"] - row.estimate) < 1e-10


def test_goodman_bacon_rejects_bad_input() -> None:
    df = staggered_panel(n=30, periods=6, seed=13)
    with pytest.raises(ValueError, match="balanced"):
        goodman_bacon(df.iloc[1:], "unit", "t", "treat", "y")
    flip = df.copy()
    unit = flip.loc[flip["treat"] == 1, "unit"].iloc[0]
    flip.loc[(flip["unit"] == unit) & (flip["t"] == flip["t"].max()), "treat"] = 0  # switches off
    with pytest.raises(ValueError, match="absorbing"):
        goodman_bacon(flip, "unit", "t", "treat", "y")


# ------------------------------------------------------------------------------------------
# Input handling, output format, the project's panel
# ------------------------------------------------------------------------------------------


def test_input_errors_are_explicit() -> None:
    df = staggered_panel(n=30, periods=5, seed=14)
    with pytest.raises(ValueError, match="duplicated"):
        callaway_santanna(pd.concat([df, df.iloc[:1]]), "unit", "t", "g", "y")
    varying = df.copy()
    varying.loc[0, "g"] = 4.0 if varying.loc[0, "g"] != 4 else 5.0
    with pytest.raises(ValueError, match="varies within"):
        sun_abraham(varying, "unit", "t", "g", "y")
    missing = df.copy()
    missing.loc[3, "y"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        imputation_did(missing, "unit", "t", "g", "y")
    with pytest.raises(ValueError, match="balanced"):
        callaway_santanna(df.iloc[2:], "unit", "t", "g", "y")
    with pytest.raises(ValueError, match="seed"):
        callaway_santanna(df, "unit", "t", "g", "y", bootstrap=99)
    with pytest.raises(ValueError, match="cband"):
        callaway_santanna(df, "unit", "t", "g", "y", cband=True)
    with pytest.raises(ValueError, match="columns not found"):
        callaway_santanna(df, "unit", "t", "g", "y", covariates=["nope"])
    with pytest.raises(ValueError, match="control_group"):
        callaway_santanna(df, "unit", "t", "g", "y", control_group="later")  # type: ignore[arg-type]


def test_first_treat_coding() -> None:
    """NaN, 0 and a date after the panel mean never treated; treated-from-start units are dropped."""
    df = staggered_panel(n=40, periods=6, seed=15)
    base = callaway_santanna(df, "unit", "t", "g", "y")
    recoded = df.copy()
    never = recoded["g"] == 0
    recoded.loc[never, "g"] = np.where(recoded.loc[never, "unit"] < "u020", np.nan, 99.0)
    extra = staggered_panel(n=3, periods=6, seed=16, cohorts=(1,), never=False)
    extra["unit"] = "z" + extra["unit"]
    again = callaway_santanna(pd.concat([recoded, extra]), "unit", "t", "g", "y")
    pd.testing.assert_frame_equal(base, again)


def test_as_estimates_has_the_project_format() -> None:
    df = staggered_panel(n=40, periods=6, seed=17)
    tidy = imputation_did(df, "unit", "t", "g", "y", ["x1"])
    est = as_estimates(tidy, sample="full")
    assert list(est.columns) == list(TIDY_COLUMNS)
    assert set(est["model"]) == {"imputation_simple", "imputation_dynamic", "imputation_group"}
    assert (est["controls"] == "x1").all() and (est["sample"] == "full").all()
    assert est["r2_within"].isna().all()
    with pytest.raises(ValueError, match="missing"):
        as_estimates(tidy.drop(columns="vcov"), sample="full")


def test_estimators_on_the_project_panel(panel: pd.DataFrame, baseline_controls: list[str]) -> None:
    """The synthetic city panel (string city codes, dual_year NaN = never, planted effect 0.30)."""
    args = (panel, "city_code", "year", "dual_year", "lq")
    results = {
        "cs": callaway_santanna(*args),
        "cs_dr": callaway_santanna(*args, baseline_controls),
        "cs_reg": callaway_santanna(*args, baseline_controls, est_method="reg"),
        "sa": sun_abraham(*args, baseline_controls, cluster="province"),
        "imputation": imputation_did(*args, baseline_controls),
    }
    for name, res in results.items():
        att = _rows(res, "simple").loc["ATT"]
        assert abs(att["estimate"] - 0.30) < 0.03, name
        assert 0 < att["std_error"] < 0.05, name
    assert results["sa"]["n_clusters"].iloc[0] == panel["province"].nunique()
    dec = goodman_bacon(panel, "city_code", "year", "dual_post", "lq")
    assert dec["weight"].sum() == pytest.approx(1.0, abs=1e-12)
