"""Tests of the vectorised placebo engine (dualpilot.engines.placebo) and FWL partialling (dualpilot.engines.fwl).

Independent references: pyfixest `feols(..., vcov={"CRV1": cluster})` fitted draw by draw (coefficient,
standard error, t and p-value to 1e-10), statsmodels OLS with explicit dummies for the partialling.
pyfixest's demeaner is run to 1e-14 (its default tolerance, 1e-6, would limit the comparison).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from pyfixest import feols
from pyfixest.demeaners import MapDemeaner

from dualpilot.engines.fwl import TwoWayPartialler, factorize, singleton_mask
from dualpilot.engines.placebo import (
    KIND_ID,
    KINDS,
    PlaceboEngine,
    PlaceboOptions,
    draw_assignments,
    gather,
    run_shard,
    shard_range,
    summarise,
)

# pyfixest announces the singleton it drops from the `unbalanced` fixture (expected, tested).
pytestmark = pytest.mark.filterwarnings("ignore:.*singleton fixed effect:UserWarning")

TOL = 1e-10  # engine vs pyfixest: absolute on estimates/p-values, relative on standard errors
TIGHT = MapDemeaner(fixef_tol=1e-14, fixef_maxiter=100_000)
CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]


@pytest.fixture(scope="module")
def balanced(make_panel) -> pd.DataFrame:
    return make_panel(n_cities=40, years=(2006, 2019), seed=11)


@pytest.fixture(scope="module")
def unbalanced(balanced: pd.DataFrame) -> pd.DataFrame:
    """Balanced panel with 12% of rows dropped at random and one city reduced to a single row."""
    rng = np.random.default_rng(5)
    keep = rng.random(len(balanced)) > 0.12
    df = balanced.loc[keep]
    lone = df["city_code"].iloc[0]
    df = pd.concat([df[df["city_code"] != lone], df[df["city_code"] == lone].iloc[:1]])
    return df.sort_values(["city_code", "year"]).reset_index(drop=True)


def _pyfixest(
    df: pd.DataFrame, starts: dict, controls: list[str], cluster: str = "city_code", **kw
):
    d = df.copy()
    d["D"] = (d["year"] >= d["city_code"].map(starts)).astype(float)
    rhs = " + ".join(["D", *controls])
    return feols(f"lq ~ {rhs} | city_code + year", d, vcov={"CRV1": cluster}, demeaner=TIGHT, **kw)


def _compare(res: pd.DataFrame, fits: list) -> None:
    for row, fit in zip(res.itertuples(), fits, strict=True):
        assert row.estimate == pytest.approx(fit.coef()["D"], abs=TOL)
        assert row.std_error == pytest.approx(fit.se()["D"], rel=TOL)
        assert row.t_stat == pytest.approx(fit.tstat()["D"], rel=TOL)
        assert row.p_value == pytest.approx(fit.pvalue()["D"], abs=TOL)


# ------------------------------------------------------------------------------------------------
# Engine vs pyfixest
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["balanced", "unbalanced"])
@pytest.mark.parametrize("controls", [CONTROLS, []], ids=["controls", "no_controls"])
def test_engine_matches_pyfixest_per_draw(request, which, controls):
    df = request.getfixturevalue(which)
    eng = PlaceboEngine(df, "lq", controls)
    base = eng.unit_values(df, "dual_year")
    starts = np.vstack([base, draw_assignments("space", base, range(4), seed=3)])  # true + 4 draws
    res = eng.estimate(starts)
    fits = [_pyfixest(df, dict(zip(eng.units, s, strict=True)), controls) for s in starts]
    _compare(res, fits)
    assert eng.n_obs == fits[0]._N  # same sample (pyfixest drops singletons too)
    assert eng.df_k == fits[0]._df_k
    if which == "unbalanced":
        assert eng.n_dropped_singletons == 1


def test_engine_cluster_coarser_than_unit_matches_pyfixest(unbalanced):
    eng = PlaceboEngine(unbalanced, "lq", CONTROLS, cluster="province")
    base = eng.unit_values(unbalanced, "dual_year")
    starts = draw_assignments("mixed_unrestricted", base, range(3), seed=4)
    fits = [
        _pyfixest(unbalanced, dict(zip(eng.units, s, strict=True)), CONTROLS, "province")
        for s in starts
    ]
    _compare(eng.estimate(starts), fits)
    # The dropped singleton city was alone in its province, so one cluster fewer than provinces.
    assert eng.n_clusters == unbalanced.loc[eng.sample_index, "province"].nunique() == 5


def test_engine_keeping_singletons_matches_pyfixest_fixef_rm_none(unbalanced):
    eng = PlaceboEngine(unbalanced, "lq", CONTROLS, drop_singletons=False)
    assert eng.n_obs == len(unbalanced)
    base = eng.unit_values(unbalanced, "dual_year")
    starts = draw_assignments("space", base, range(2), seed=8)
    fits = [
        _pyfixest(unbalanced, dict(zip(eng.units, s, strict=True)), CONTROLS, fixef_rm="none")
        for s in starts
    ]
    _compare(eng.estimate(starts), fits)


def test_engine_drops_rows_with_missing_values_like_feols(balanced):
    df = balanced.copy()
    df.loc[df.index[[3, 50, 51]], "gov"] = np.nan
    eng = PlaceboEngine(df, "lq", CONTROLS)
    assert eng.n_dropped_missing == 3
    base = eng.unit_values(df, "dual_year")
    fit = _pyfixest(df, dict(zip(eng.units, base, strict=True)), CONTROLS)
    _compare(eng.estimate(base), [fit])


def test_non_consecutive_periods_use_the_general_index(balanced):
    df = balanced[balanced["year"] % 2 == 0]  # 2006, 2008, ...: starts fall between periods
    eng = PlaceboEngine(df, "lq", CONTROLS[:2])
    base = eng.unit_values(df, "dual_year")
    fit = _pyfixest(df, dict(zip(eng.units, base, strict=True)), CONTROLS[:2])
    _compare(eng.estimate(base), [fit])


# ------------------------------------------------------------------------------------------------
# FWL partialling
# ------------------------------------------------------------------------------------------------


def test_partialler_matches_dummy_regression(unbalanced):
    df = unbalanced
    u, _ = factorize(df["city_code"], "city")
    t, _ = factorize(df["year"], "year")
    x = df[CONTROLS[:3]].to_numpy()
    fwl = TwoWayPartialler(u, t, x, CONTROLS[:3])
    dummies = pd.get_dummies(df[["city_code", "year"]].astype(str), drop_first=True, dtype=float)
    fe = sm.add_constant(dummies.to_numpy())
    y = df["lq"].to_numpy()
    full = sm.OLS(y, np.hstack([fe, x])).fit()
    np.testing.assert_allclose(fwl.partial(y), full.resid, atol=1e-10)
    np.testing.assert_allclose(fwl.partial_fe(y), sm.OLS(y, fe).fit().resid, atol=1e-10)
    # Balanced special case: the closed form x - unit mean - time mean + grand mean.
    b = df.groupby("city_code").filter(lambda g: len(g) == df["year"].nunique())
    if b["city_code"].nunique() >= 2:
        ub, _ = factorize(b["city_code"], "city")
        tb, _ = factorize(b["year"], "year")
        yb = b["lq"].to_numpy()
        closed = (
            yb
            - b.groupby("city_code")["lq"].transform("mean")
            - b.groupby("year")["lq"].transform("mean")
            + yb.mean()
        ).to_numpy()
        np.testing.assert_allclose(
            TwoWayPartialler(ub, tb, np.empty((len(b), 0))).partial_fe(yb), closed, atol=1e-12
        )


def test_collinear_control_raises(balanced):
    df = balanced.assign(area_level=balanced.groupby("city_code")["area"].transform("first"))
    with pytest.raises(ValueError, match="area_level"):
        PlaceboEngine(df, "lq", ["ln_gdp_pc", "area_level"])
    df = balanced.assign(twice=2 * balanced["gov"] + 1)
    with pytest.raises(ValueError, match="twice"):
        PlaceboEngine(df, "lq", ["gov", "twice"])


def test_singleton_mask_is_iterative():
    # Unit 2 is a singleton; dropping it leaves period 2 with one row (unit 3), and dropping that
    # leaves unit 3 with one row: only a second pass over the units finds it.
    unit = np.array([0, 0, 1, 1, 3, 3, 2])
    time = np.array([0, 1, 0, 1, 2, 0, 2])
    np.testing.assert_array_equal(singleton_mask(unit, time), [True] * 4 + [False] * 3)


# ------------------------------------------------------------------------------------------------
# Shards, chunks, reproducibility
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_shards_give_identical_results(balanced, kind):
    opts = {"shifts": [1, 2, 3, 4, 5, 6], "shift_range": [1, 4]}
    n = 6 if kind == "time" else 37
    # A small budget forces several chunks, so shard edges cut through chunks.
    common = dict(options=opts, outcome="lq", controls=CONTROLS, max_bytes=150_000)
    runs = [
        gather(
            [run_shard(balanced, kind, k, n_shards, n, 99, **common) for k in range(n_shards)], n
        )
        for n_shards in (1, 4, 16)
    ]
    assert runs[0]["estimate"].notna().all() and len(runs[0]) == n
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)


def test_chunking_gives_the_same_numbers(balanced):
    base_engine = PlaceboEngine(balanced, "lq", CONTROLS)
    tiny = PlaceboEngine(balanced, "lq", CONTROLS, max_bytes=1)
    assert tiny.chunk_size == 1 and base_engine.chunk_size > 40
    base = base_engine.unit_values(balanced, "dual_year")
    starts = draw_assignments("mixed_restricted", base, range(40), seed=1)
    one, many = base_engine.estimate(starts), tiny.estimate(starts)
    pd.testing.assert_frame_equal(one, many, check_exact=False, rtol=1e-12, atol=1e-14)


def test_working_memory_stays_within_the_budget(unbalanced):
    budget = 400_000
    eng = PlaceboEngine(unbalanced, "lq", CONTROLS, max_bytes=budget)
    assert 1 < eng.chunk_size < 100
    starts = draw_assignments("space", eng.unit_values(unbalanced, "dual_year"), range(600), 2)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        res = eng.estimate(starts)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    output = 3 * res.memory_usage(deep=True).sum()  # the result columns, concatenated and framed
    assert peak <= budget + output


def test_draws_depend_only_on_seed_kind_and_index(balanced):
    eng = PlaceboEngine(balanced, "lq", CONTROLS)
    base = eng.unit_values(balanced, "dual_year")
    for kind in ("space", "time_random", "mixed_unrestricted", "mixed_restricted"):
        whole = draw_assignments(kind, base, range(12), seed=5)
        parts = np.vstack(
            [draw_assignments(kind, base, r, seed=5) for r in (range(7, 12), range(7))]
        )
        np.testing.assert_array_equal(whole, np.vstack([parts[5:], parts[:5]]))
        np.testing.assert_array_equal(whole[[9, 2]], draw_assignments(kind, base, [9, 2], seed=5))
        assert not np.array_equal(
            whole, draw_assignments(kind, base, range(12), seed=6), equal_nan=True
        )
    assert len(set(KIND_ID.values())) == len(KIND_ID)
    assert not np.array_equal(
        draw_assignments("space", base, range(3), 5),
        draw_assignments("mixed_restricted", base, range(3), 5),
        equal_nan=True,
    )


def test_shard_range_partitions_draws():
    for n in range(0, 40):
        for k in range(1, 20):
            ranges = [shard_range(n, k, i) for i in range(k)]
            assert [d for r in ranges for d in r] == list(range(n))
            sizes = [len(r) for r in ranges]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard_range(10, 3, 3)


# ------------------------------------------------------------------------------------------------
# Invariants of each kind
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    rng = np.random.default_rng(0)
    b = np.full(50, np.nan)
    b[:20] = rng.choice([2012, 2013, 2014, 2017], size=20)
    return rng.permutation(b)


def test_space_keeps_treated_count_and_date_multiset(base):
    draws = draw_assignments("space", base, range(200), seed=1)
    key = np.sort(np.nan_to_num(base, nan=np.inf))
    for row in draws:
        np.testing.assert_array_equal(np.sort(np.nan_to_num(row, nan=np.inf)), key)
    assert not all(np.array_equal(row, base, equal_nan=True) for row in draws)


def test_mixed_restricted_keeps_cohort_sizes_with_distinct_new_dates(base):
    periods = tuple(range(2006, 2024))
    opts = PlaceboOptions(periods=periods)
    true_sizes = sorted(np.unique(base[np.isfinite(base)], return_counts=True)[1])
    seen = set()
    for row in draw_assignments("mixed_restricted", base, range(200), seed=2, options=opts):
        dates, sizes = np.unique(row[np.isfinite(row)], return_counts=True)
        assert sorted(sizes) == true_sizes  # cohort sizes kept; dates distinct by construction
        assert dates.min() >= 2012 and dates.max() <= 2017  # default scope: true dates' range
        seen.update(dates.tolist())
    assert seen == set(range(2012, 2018))  # dates are redrawn, not only the true ones


def test_mixed_unrestricted_draws_units_and_dates_uniformly(base):
    opts = PlaceboOptions(n_units=7, time_scope=(2008, 2010))
    draws = draw_assignments("mixed_unrestricted", base, range(300), seed=3, options=opts)
    assert (np.isfinite(draws).sum(axis=1) == 7).all()
    assert set(np.unique(draws[np.isfinite(draws)])) == {2008.0, 2009.0, 2010.0}
    default = draw_assignments("mixed_unrestricted", base, range(50), seed=3)
    assert (np.isfinite(default).sum(axis=1) == np.isfinite(base).sum()).all()


def test_time_kinds_shift_only_treated_units(base):
    opts = PlaceboOptions(shifts=(2, 5), shift_range=(1, 3))
    fixed = draw_assignments("time", base, range(2), seed=0, options=opts)
    np.testing.assert_array_equal(fixed, np.vstack([base - 2, base - 5]))
    rand = draw_assignments("time_random", base, range(100), seed=4, options=opts)
    shift = base - rand
    assert np.isnan(rand[:, np.isnan(base)]).all()
    assert set(np.unique(shift[:, np.isfinite(base)])) == {1.0, 2.0, 3.0}
    with pytest.raises(ValueError, match="shift"):
        draw_assignments("time", base, range(3), seed=0, options=opts)


def test_restricted_needs_enough_candidate_periods(base):
    with pytest.raises(ValueError, match="candidate periods"):
        draw_assignments("mixed_restricted", base, range(1), 0, {"time_scope": [2012, 2014]})


def test_time_placebo_drops_treated_rows_and_matches_pyfixest(balanced):
    res = run_shard(balanced, "time", 0, 1, 2, 0, {"shifts": [2, 3]}, "lq", CONTROLS)
    pre = balanced[~(balanced["year"] >= balanced["dual_year"])]
    starts = pre.groupby("city_code")["dual_year"].first()
    for row in res.itertuples():
        fit = _pyfixest(pre, (starts - row.shift).to_dict(), CONTROLS)
        assert row.estimate == pytest.approx(fit.coef()["D"], abs=TOL)
        assert row.std_error == pytest.approx(fit.se()["D"], rel=TOL)
        # each shift's own 95 % interval, as fixest reports it (t with G - 1 df)
        ci = fit.confint().loc["D"].to_numpy()
        assert (row.conf_low, row.conf_high) == pytest.approx(tuple(ci), rel=1e-6)
    assert list(res["shift"]) == [2, 3]


# ------------------------------------------------------------------------------------------------
# Errors, gather, summarise
# ------------------------------------------------------------------------------------------------


def test_degenerate_draw_raises(balanced):
    eng = PlaceboEngine(balanced, "lq", CONTROLS)
    always = np.where(np.arange(eng.n_units) % 2 == 0, 1990.0, np.nan)  # D constant within units
    with pytest.raises(ValueError, match="collinear"):
        eng.estimate(always)


def test_row_order_does_not_matter(unbalanced):
    shuffled = unbalanced.sample(frac=1.0, random_state=3)
    a, b = (PlaceboEngine(d, "lq", CONTROLS) for d in (unbalanced, shuffled))
    starts = draw_assignments("space", a.unit_values(unbalanced, "dual_year"), range(5), 1)
    np.testing.assert_array_equal(a.units, b.units)
    pd.testing.assert_frame_equal(a.estimate(starts), b.estimate(starts), rtol=1e-12, atol=1e-14)


def test_input_errors(balanced):
    df = balanced.assign(by_year=balanced["year"])
    with pytest.raises(ValueError, match="nested"):
        PlaceboEngine(df, "lq", CONTROLS, cluster="by_year")
    with pytest.raises(ValueError, match="duplicate"):
        PlaceboEngine(pd.concat([balanced, balanced.iloc[:1]]), "lq", CONTROLS)
    with pytest.raises(ValueError, match="unknown placebo option"):
        PlaceboOptions.from_mapping({"shfits": [1]})
    with pytest.raises(ValueError, match="unknown placebo kind"):
        draw_assignments("spaec", np.array([2012.0, np.nan]), range(1), 0)
    eng = PlaceboEngine(balanced, "lq", CONTROLS)
    with pytest.raises(ValueError, match="start_years"):
        eng.estimate(np.zeros((2, eng.n_units + 1)))
    varying = balanced.assign(
        dual_year=balanced["dual_year"].fillna(2030) + (balanced["year"] == 2010)
    )
    with pytest.raises(ValueError, match="varies within"):
        eng.unit_values(varying, "dual_year")


def test_gather_checks_completeness():
    frame = pd.DataFrame({"kind": "space", "draw": [2, 0, 1], "estimate": [0.3, 0.1, 0.2]})
    out = gather([frame.iloc[:1], frame.iloc[1:]], 3)
    assert list(out["draw"]) == [0, 1, 2] and list(out["estimate"]) == [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match="duplicate"):
        gather([frame, frame.iloc[:1]])
    with pytest.raises(ValueError, match="missing"):
        gather([frame], 4)
    with pytest.raises(ValueError, match="kinds"):
        gather([frame, frame.assign(kind="time", draw=[3, 4, 5])])


def test_summarise_by_hand():
    draws = pd.DataFrame(
        {"estimate": [-0.3, -0.1, 0.0, 0.2, 0.5], "p_value": [0.01, 0.5, 0.9, 0.2, 0.04]}
    )
    s = summarise(draws, 0.2)
    assert s["mean"] == pytest.approx(0.06)
    assert s["sd"] == pytest.approx(np.std([-0.3, -0.1, 0.0, 0.2, 0.5], ddof=1))
    # (1 + #extreme) / (1 + B), B = 5
    assert s["p_two_sided"] == pytest.approx(4 / 6)  # |-0.3|, |0.2|, |0.5| >= 0.2
    assert s["p_left"] == pytest.approx(5 / 6)
    assert s["p_right"] == pytest.approx(3 / 6)
    assert s["share_p_below_0.05"] == pytest.approx(2 / 5)
    # a true estimate beyond every draw: 1 / (1 + B), never 0
    assert summarise(draws, 9.0)["p_two_sided"] == pytest.approx(1 / 6)
    assert summarise(draws, 9.0)["p_right"] == pytest.approx(1 / 6)


def test_summarise_gives_the_time_placebo_no_p_value():
    """Five shifts are five estimates, not a randomisation distribution: no p-value is computed."""
    draws = pd.DataFrame({"estimate": [0.01, 0.02, 0.0, 0.01, 0.03], "shift": [1, 2, 3, 4, 5]})
    s = summarise(draws, 0.2)
    assert np.isnan(s["p_two_sided"]) and np.isnan(s["p_left"]) and np.isnan(s["p_right"])
    assert s["n_draws"] == 5 and s["mean"] == pytest.approx(0.014)
