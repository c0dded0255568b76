"""Tests of the mechanism analysis (dualpilot.analyses.mechanisms).

Independent references: pyfixest `feols(..., vcov={"CRV1": city})` fitted directly (coefficients, CRV1
standard errors; the project's `estimation.fit` is pyfixest too, so the fast FWL path is also checked
against it), the Sobel formula written out in the test, a bootstrap sample rebuilt by hand in the test,
pyfixest's Romano-Wolf stepdown (`_get_rwolf_pval`, same bootstrap statistics) and `pf.rwolf` (wild
bootstrap: a statistical comparison only, the draws differ).

Tolerances: 1e-8 relative on coefficients and standard errors (pyfixest demeans to 1e-10); exact
equality for seeded draws across shards; 1e-12 for the Romano-Wolf p-values on identical statistics;
0.1 between our pairs-bootstrap and pyfixest's wild-bootstrap Romano-Wolf p-values (199 vs 999 draws).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyfixest.demeaners import MapDemeaner
from pyfixest.estimation.post_estimation.multcomp import _get_rwolf_pval
from scipy import stats

from dualpilot.analyses import mechanisms as mech
from dualpilot.engines import estimation as est
from dualpilot.engines import resampling, twfe
from dualpilot.engines.estimation import EstimationError
from dualpilot.engines.resampling import draw_rng

CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]
MEDIATORS = list(mech.DEFAULT_MEDIATORS)
TIGHT = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=100_000)
REL = 1e-8


@pytest.fixture(scope="module")
def planted(make_panel) -> pd.DataFrame:
    """Default synthetic panel with a strong dual effect on ln_digital_pat only (0.5) and on lq through
    it (lq += 0.2 * ln_digital_pat), the other mediators untouched (no effect)."""
    df = make_panel()
    df["ln_digital_pat"] = df["ln_digital_pat"] + 0.5 * df["dual_post"]
    df["lq"] = df["lq"] + 0.2 * df["ln_digital_pat"]
    return df


@pytest.fixture(scope="module")
def unbalanced(planted: pd.DataFrame) -> pd.DataFrame:
    """10% of rows dropped, some mediator values missing, and one city reduced to a single row."""
    rng = np.random.default_rng(3)
    df = planted.loc[rng.random(len(planted)) > 0.10].copy()
    df.loc[df.sample(frac=0.05, random_state=4).index, "ln_green_pat"] = np.nan
    lone = df["city_code"].iloc[0]
    df = pd.concat([df[df["city_code"] != lone], df[df["city_code"] == lone].iloc[:1]])
    return df.sort_values(["city_code", "year"]).reset_index(drop=True)


def _feols(df: pd.DataFrame, y: str, terms: list[str], unit: str = "city_code"):
    rhs = " + ".join([*terms, *CONTROLS])
    return pf.feols(f"{y} ~ {rhs} | {unit} + year", df, vcov={"CRV1": unit}, demeaner=TIGHT)


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


# --------------------------------------------------------------------------------------------------
# Fast path
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["planted", "unbalanced"])
@pytest.mark.parametrize("terms", [["dual_post"], ["dual_post", "ln_digital_pat"]])
def test_fast_path_equals_estimation_fit(request, which: str, terms: list[str]) -> None:
    df = request.getfixturevalue(which)
    ref = est.fit(df, outcome="lq", terms=terms, controls=CONTROLS)
    fast = twfe.twfe_fit(df, outcome="lq", terms=terms, controls=CONTROLS)
    assert fast.n_obs == ref.n_obs and fast.n_clusters == ref.n_clusters
    for j, t in enumerate(terms):
        assert _close(fast.coef[j], ref.coef[t])
        assert _close(fast.se[j], ref.se[t])


def test_fast_path_raises_on_absorbed_term(planted: pd.DataFrame) -> None:
    df = planted.copy()
    df["const_in_city"] = df["city_code"].astype(int) % 7
    with pytest.raises(EstimationError, match="const_in_city"):
        twfe.twfe_fit(df, outcome="lq", terms=["const_in_city"], controls=CONTROLS)


# --------------------------------------------------------------------------------------------------
# Two-step and three-step rows
# --------------------------------------------------------------------------------------------------


def test_two_step_rows_equal_direct_fits(unbalanced: pd.DataFrame) -> None:
    rows = mech.two_step(unbalanced, MEDIATORS, CONTROLS)
    assert rows["model"].tolist() == MEDIATORS
    assert (rows["term"] == "dual_post").all()
    assert list(rows.columns) == list(est.TIDY_COLUMNS)
    for m in MEDIATORS:
        row = rows.set_index("model").loc[m]
        ref = _feols(unbalanced, m, ["dual_post"])
        assert _close(row["estimate"], ref.coef()["dual_post"])
        assert _close(row["std_error"], ref.se()["dual_post"])
        assert row["n_obs"] == ref._N
        assert row["n_clusters"] == min(ref._G)
    # identical to the project's own fit/tidy
    direct = est.tidy(
        est.fit(unbalanced, outcome="ln_green_pat", terms=["dual_post"], controls=CONTROLS),
        model="ln_green_pat",
    )
    pd.testing.assert_frame_equal(rows.iloc[[1]].reset_index(drop=True), direct)


def test_three_step_rows_and_sobel(unbalanced: pd.DataFrame) -> None:
    rows = mech.three_step(unbalanced, ["ln_digital_pat", "ln_green_pat"], CONTROLS)
    for m in ["ln_digital_pat", "ln_green_pat"]:
        names = mech._three_step_models("lq", m, "dual_post")
        common = unbalanced.dropna(subset=["lq", m, "dual_post", *CONTROLS])
        total = _feols(common, "lq", ["dual_post"])
        first = _feols(common, m, ["dual_post"])
        direct = _feols(common, "lq", ["dual_post", m])
        by = rows.set_index(["model", "term"])
        assert _close(by.loc[(names["total"], "dual_post"), "estimate"], total.coef()["dual_post"])
        assert _close(by.loc[(names["a"], "dual_post"), "estimate"], first.coef()["dual_post"])
        assert _close(by.loc[(names["direct"], m), "estimate"], direct.coef()[m])
        assert _close(by.loc[(names["direct"], m), "std_error"], direct.se()[m])
        a, sa = first.coef()["dual_post"], first.se()["dual_post"]
        b, sb = direct.coef()[m], direct.se()[m]
        se = np.sqrt(b**2 * sa**2 + a**2 * sb**2)
        sob = by.loc[(names["sobel"], mech.INDIRECT_TERM)]
        assert _close(sob["estimate"], a * b, 1e-7)
        assert _close(sob["std_error"], se, 1e-7)
        assert _close(sob["p_value"], 2 * stats.norm.sf(abs(a * b / se)), 1e-6)
        assert _close(sob["conf_high"] - sob["estimate"], 1.959963984540054 * se, 1e-7)


def test_sobel_formula_and_errors() -> None:
    s = mech.sobel(0.5, 0.1, 0.2, 0.05)
    assert s.estimate == pytest.approx(0.1)
    assert s.std_error == pytest.approx(np.sqrt(0.2**2 * 0.1**2 + 0.5**2 * 0.05**2))
    assert s.z == pytest.approx(s.estimate / s.std_error)
    assert s.p_value == pytest.approx(2 * stats.norm.sf(s.z))
    with pytest.raises(EstimationError):
        mech.sobel(0.5, 0.0, 0.2, 0.05)
    with pytest.raises(EstimationError):
        mech.sobel(np.nan, 0.1, 0.2, 0.05)


def test_mediator_cannot_be_outcome(planted: pd.DataFrame) -> None:
    with pytest.raises(EstimationError, match="outcome or the treatment"):
        mech.three_step(planted, ["lq"], CONTROLS)
    with pytest.raises(EstimationError, match="twice"):
        mech.two_step(planted, ["ln_green_pat", "ln_green_pat"], CONTROLS)


# --------------------------------------------------------------------------------------------------
# Cluster bootstrap
# --------------------------------------------------------------------------------------------------


def test_bootstrap_draw_equals_hand_resampled_fit(unbalanced: pd.DataFrame) -> None:
    """Draw 4 is the regression on the cities drawn by draw_rng(seed, 4, BOOTSTRAP_STREAM), each copy a new city."""
    seed, d = 17, 4
    draws = mech.bootstrap_draws(
        unbalanced, MEDIATORS, CONTROLS, draws=[d], seed=seed, three_step_models=True
    )
    cities = np.sort(unbalanced["city_code"].unique())
    chosen = resampling.resample_clusters(len(cities), draw_rng(seed, d, mech.BOOTSTRAP_STREAM))
    parts = []
    for new_id, c in enumerate(chosen):
        part = unbalanced[unbalanced["city_code"] == cities[c]].copy()
        part["boot_id"] = new_id
        parts.append(part)
    boot = pd.concat(parts, ignore_index=True)
    for m in MEDIATORS:
        row = draws.set_index("mediator").loc[m]
        ref = _feols(boot, m, ["dual_post"], unit="boot_id")
        assert _close(row["estimate"], ref.coef()["dual_post"])
        assert _close(row["std_error"], ref.se()["dual_post"])
        common = boot.dropna(subset=["lq", m])
        b = _feols(common, "lq", ["dual_post", m], unit="boot_id").coef()[m]
        a = _feols(common, m, ["dual_post"], unit="boot_id").coef()["dual_post"]
        assert _close(row["a"], a) and _close(row["b"], b) and _close(row["indirect"], a * b, 1e-7)


def test_bootstrap_fast_equals_fit_engine(unbalanced: pd.DataFrame) -> None:
    kw = dict(draws=range(2), seed=5, three_step_models=True)
    fast = mech.bootstrap_draws(unbalanced, MEDIATORS, CONTROLS, **kw)
    slow = mech.bootstrap_draws(unbalanced, MEDIATORS, CONTROLS, engine="fit", **kw)
    assert fast[["draw", "mediator"]].equals(slow[["draw", "mediator"]])
    for col in ("estimate", "std_error", "a", "b"):
        np.testing.assert_allclose(fast[col], slow[col], rtol=REL)


def test_bootstrap_seeded_and_shard_invariant(planted: pd.DataFrame) -> None:
    kw = dict(seed=11, three_step_models=True)
    whole = mech.bootstrap_draws(planted, MEDIATORS, CONTROLS, draws=range(7), **kw)
    again = mech.bootstrap_draws(planted, MEDIATORS, CONTROLS, draws=range(7), **kw)
    pd.testing.assert_frame_equal(whole, again)
    shards = [
        mech.bootstrap_draws(planted, MEDIATORS, CONTROLS, draws=r, **kw)
        for r in (range(4, 7), range(0, 2), range(2, 4))
    ]
    pd.testing.assert_frame_equal(mech.gather_draws(shards, 7), whole)
    other = mech.bootstrap_draws(planted, MEDIATORS, CONTROLS, draws=range(7), seed=12)
    assert not np.allclose(other["estimate"], whole["estimate"])
    assert whole.groupby("draw")["mediator"].apply(list).map(lambda x: x == MEDIATORS).all()


def test_gather_draws_checks(planted: pd.DataFrame) -> None:
    d = mech.bootstrap_draws(planted, MEDIATORS[:1], CONTROLS, draws=range(3), seed=1)
    with pytest.raises(ValueError, match="missing"):
        mech.gather_draws([d], 4)
    with pytest.raises(ValueError, match="duplicated"):
        mech.gather_draws([d, d], 3)
    with pytest.raises(ValueError, match="no shards"):
        mech.gather_draws([], 3)


def test_bootstrap_needs_unit_clusters(planted: pd.DataFrame) -> None:
    with pytest.raises(EstimationError, match="cluster"):
        mech._prepare(planted, ["lq"], "city_code", "year", "province")
    with pytest.raises(ValueError, match="non-negative"):
        draw_rng(-1, 0, mech.BOOTSTRAP_STREAM)


# --------------------------------------------------------------------------------------------------
# Romano-Wolf
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_romano_wolf_equals_pyfixest_stepdown(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = 3 + seed
    t = rng.normal(0, 2.5, s)
    boot = rng.standard_t(8, size=(199, s))
    ours = mech.romano_wolf(t, boot)
    theirs = _get_rwolf_pval(t.copy(), boot.copy())
    np.testing.assert_allclose(ours.adjusted, theirs, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=2**31),
)
def test_romano_wolf_properties(s: int, b: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 2, s)
    boot = rng.normal(0, 1, (b, s))
    rw = mech.romano_wolf(t, boot)
    assert np.all(rw.adjusted >= rw.unadjusted - 1e-15)
    assert np.all(np.diff(rw.adjusted[rw.order]) >= 0)  # monotone in the stepdown order
    assert np.all((rw.adjusted > 0) & (rw.adjusted <= 1))
    # first step = single-step max-T p-value; with one hypothesis it is the unadjusted one
    first = (np.sum(np.abs(boot).max(axis=1) >= np.abs(t).max()) + 1) / (b + 1)
    assert rw.adjusted[rw.order[0]] == pytest.approx(first)
    if s == 1:
        assert rw.adjusted[0] == pytest.approx(rw.unadjusted[0])


def test_romano_wolf_rows_match_pyfixest_on_same_draws(planted: pd.DataFrame) -> None:
    rows = mech.two_step(planted, MEDIATORS, CONTROLS)
    draws = mech.bootstrap_draws(planted, MEDIATORS, CONTROLS, draws=range(99), seed=8)
    rw = mech.romano_wolf_rows(rows, draws, seed=8)
    assert (rw["term"] == mech.RWOLF_PREFIX + "dual_post").all()
    np.testing.assert_allclose(rw["estimate"], rows["estimate"])
    np.testing.assert_allclose(rw["t_stat"], rows["t_stat"])
    est_ = draws.pivot(index="draw", columns="mediator", values="estimate")[MEDIATORS]
    se_ = draws.pivot(index="draw", columns="mediator", values="std_error")[MEDIATORS]
    boot_t = (est_.to_numpy() - rows["estimate"].to_numpy()) / se_.to_numpy()
    expected = _get_rwolf_pval(rows["t_stat"].to_numpy().copy(), boot_t)
    np.testing.assert_allclose(rw["p_value"], expected, atol=1e-12)
    assert rw["std_error"].isna().all() and rw["vcov"].str.contains("Romano-Wolf").all()


def test_romano_wolf_close_to_pyfixest_wild_rwolf(planted: pd.DataFrame) -> None:
    """Pairs-bootstrap (ours) vs wild-bootstrap (pyfixest) Romano-Wolf: same conclusions, close
    p-values for the null mediators, the smallest attainable p for the planted one."""
    out = mech.mechanisms(planted, CONTROLS, reps=199, seed=3)
    ours = out[out["term"] == mech.RWOLF_PREFIX + "dual_post"].set_index("model")["p_value"]
    df = planted.assign(cid=planted["city_code"].astype(int))
    fits = [_feols(df, m, ["dual_post"], unit="cid") for m in MEDIATORS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pf.rwolf(fits, "dual_post", reps=999, seed=1).loc["RW Pr(>|t|)"].to_numpy()
    assert ours["ln_digital_pat"] == pytest.approx(1 / 200)
    assert theirs[0] <= 0.01
    for j, m in enumerate(MEDIATORS[1:], start=1):
        assert ours[m] > 0.3 and abs(ours[m] - theirs[j]) < 0.1


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------


def test_indirect_bootstrap_rows(planted: pd.DataFrame) -> None:
    steps = mech.three_step(planted, ["ln_digital_pat"], CONTROLS)
    draws = mech.bootstrap_draws(
        planted, ["ln_digital_pat"], CONTROLS, draws=range(59), seed=2, three_step_models=True
    )
    row = mech.indirect_bootstrap_rows(steps, draws, seed=2).iloc[0]
    ab = draws["indirect"].to_numpy()
    assert row["conf_low"] == pytest.approx(np.quantile(ab, 0.025))
    assert row["conf_high"] == pytest.approx(np.quantile(ab, 0.975))
    assert row["std_error"] == pytest.approx(ab.std(ddof=1))
    sobel = steps[steps["model"].str.endswith("(Sobel)")].iloc[0]
    assert row["estimate"] == sobel["estimate"]
    # planted indirect effect 0.5 * 0.2 = 0.1 lies in the interval; the interval excludes 0
    assert row["conf_low"] < 0.1 < row["conf_high"] and row["conf_low"] > 0


def test_mechanisms_composition_and_precomputed_draws(planted: pd.DataFrame) -> None:
    out = mech.mechanisms(planted, CONTROLS, three_step_models=True, reps=19, seed=4)
    assert out.duplicated(["model", "term"]).sum() == 0
    assert out.loc[out["term"] == "dual_post", "model"].head(3).tolist() == MEDIATORS
    assert (out["term"] == mech.RWOLF_PREFIX + "dual_post").sum() == 3
    assert out["model"].str.endswith("(cluster bootstrap)").sum() == 3
    assert out["model"].str.endswith("(Sobel)").sum() == 3
    draws = mech.bootstrap_draws(
        planted, MEDIATORS, CONTROLS, draws=range(19), seed=4, three_step_models=True
    )
    again = mech.mechanisms(planted, CONTROLS, three_step_models=True, reps=19, seed=4, draws=draws)
    pd.testing.assert_frame_equal(out, again)
    plain = mech.mechanisms(planted, CONTROLS, reps=0)
    assert plain["model"].tolist() == MEDIATORS
    with pytest.raises(ValueError, match="draws"):
        mech.mechanisms(planted, CONTROLS, reps=20, seed=4, draws=draws)
    with pytest.raises(ValueError, match="reps"):
        mech.mechanisms(planted, CONTROLS, reps=-1)


def test_estimation_options_from_config() -> None:
    cfg = {"outcome": "lq", "unit": "city_code", "time": "year", "province": "province",
           "cluster": "city_code", "vcov": "cluster", "weights": None, "drop_singletons": True}  # fmt: skip
    assert mech.estimation_options(cfg) == {
        "outcome": "lq",
        "unit": "city_code",
        "time": "year",
        "cluster": "city_code",
    }
    for bad in ({"vcov": "hetero"}, {"weights": "total_emp"}, {"cluster": "province"},
                {"drop_singletons": False}, {"colour": 1}):  # fmt: skip
        with pytest.raises(EstimationError):
            mech.estimation_options({**cfg, **bad})
