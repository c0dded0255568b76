"""Correctness of the placebo engine at county scale (issue 8: performance and scale).

Timing is never tested (see bench/ and docs/performance.md). These tests check that what makes the engine
fast at scale does not change its numbers, on a `dualpilot.demo.extracts.generate_panel(2850, 18)` panel (51,300
rows, the size of a county panel):

- a few draws of several kinds equal pyfixest `feols(..., vcov={"CRV1": cluster})` fitted draw by draw
  (estimate and p-value to 1e-10 absolute, standard error and t to 1e-10 relative), on the balanced panel,
  on an unbalanced one with missing controls (the engine's incomplete-unit corrections, thousands of
  units), with clusters coarser than units (province) and for the time placebo's reduced sample;
- a memory budget so small that every draw is its own chunk gives the numbers of one chunk (1e-12), and
  shards cut through chunks give bitwise identical results;
- the working memory of `estimate` stays within `max_bytes` at this scale (tracemalloc).

pyfixest's demeaner runs to 1e-14 here (its default tolerance, 1e-6, would limit the comparison).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pyfixest import feols
from pyfixest.demeaners import MapDemeaner

from dualpilot.demo.extracts import PANEL_COLUMNS, generate_panel
from dualpilot.engines.placebo import PlaceboEngine, draw_assignments, gather, run_shard

pytestmark = pytest.mark.filterwarnings("ignore:.*singleton fixed effect:UserWarning")

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10  # engine vs pyfixest (as tests/test_placebo.py)
TIGHT = MapDemeaner(fixef_tol=1e-14, fixef_maxiter=100_000)
CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]
N_UNITS, N_YEARS = 2850, 18


@pytest.fixture(scope="module")
def county() -> pd.DataFrame:
    """generate_panel(2850, 18) with the config's planted effects: 51,300 rows, 2006-2023."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    rates = pd.read_csv(ROOT / "resources/macro/usd_cny.csv")
    panel = generate_panel(N_UNITS, N_YEARS, 8, config["demo"]["effects"], usd_cny=rates)
    return panel[list(PANEL_COLUMNS)]


@pytest.fixture(scope="module")
def county_unbalanced(county: pd.DataFrame) -> pd.DataFrame:
    """10% of the rows dropped at random, a control missing in 1% of the rest, one unit left with a
    single row (a singleton the engine, like pyfixest, drops)."""
    rng = np.random.default_rng(3)
    df = county.loc[rng.random(len(county)) > 0.10].copy()
    df.loc[rng.random(len(df)) < 0.01, "gov"] = np.nan
    lone = df["city_code"].iloc[0]
    df = pd.concat([df[df["city_code"] != lone], df[df["city_code"] == lone].iloc[:1]])
    return df.sort_values(["city_code", "year"]).reset_index(drop=True)


def _pyfixest_draws(df: pd.DataFrame, units: pd.Index, starts: np.ndarray, cluster: str) -> list:
    fits = []
    for row in starts:
        d = df.copy()
        d["D"] = (d["year"] >= d["city_code"].map(dict(zip(units, row, strict=True)))).astype(float)
        fml = "lq ~ " + " + ".join(["D", *CONTROLS]) + " | city_code + year"
        fits.append(feols(fml, d, vcov={"CRV1": cluster}, demeaner=TIGHT))
    return fits


def _assert_matches(res: pd.DataFrame, fits: list) -> None:
    for row, fit in zip(res.itertuples(), fits, strict=True):
        assert row.estimate == pytest.approx(fit.coef()["D"], abs=TOL)
        assert row.std_error == pytest.approx(fit.se()["D"], rel=TOL)
        assert row.t_stat == pytest.approx(fit.tstat()["D"], rel=TOL)
        assert row.p_value == pytest.approx(fit.pvalue()["D"], abs=TOL)


def test_county_panel_has_the_expected_size(county):
    assert len(county) == N_UNITS * N_YEARS
    assert county["city_code"].nunique() == N_UNITS
    assert county["dual_year"].notna().groupby(county["city_code"]).first().sum() > 100


@pytest.mark.parametrize("kind", ["space", "mixed_restricted", "mixed_unrestricted"])
def test_engine_matches_pyfixest_at_county_scale(county, kind):
    eng = PlaceboEngine(county, "lq", CONTROLS)
    assert eng.n_units == N_UNITS and eng.n_obs == N_UNITS * N_YEARS
    base = eng.unit_values(county, "dual_year")
    starts = draw_assignments(kind, base, range(3), seed=17, options={"periods": eng.periods})
    _assert_matches(eng.estimate(starts), _pyfixest_draws(county, eng.units, starts, "city_code"))


def test_engine_matches_pyfixest_unbalanced_with_missing_controls(county_unbalanced):
    df = county_unbalanced
    eng = PlaceboEngine(df, "lq", CONTROLS)
    # thousands of units miss periods: the incomplete-unit corrections are exercised at scale
    assert eng.n_dropped_missing > 0 and eng.n_dropped_singletons == 1
    assert eng._incomplete.size > N_UNITS // 2
    starts = draw_assignments("space", eng.unit_values(df, "dual_year"), range(3), seed=4)
    _assert_matches(eng.estimate(starts), _pyfixest_draws(df, eng.units, starts, "city_code"))


def test_engine_with_province_clusters_matches_pyfixest(county_unbalanced):
    df = county_unbalanced
    eng = PlaceboEngine(df, "lq", CONTROLS, cluster="province")
    assert eng.n_clusters == 31
    starts = draw_assignments("space", eng.unit_values(df, "dual_year"), range(2), seed=9)
    _assert_matches(eng.estimate(starts), _pyfixest_draws(df, eng.units, starts, "province"))


def test_time_placebo_matches_pyfixest_on_the_pre_treatment_sample(county):
    res = run_shard(county, "time", 0, 1, 2, 1, {"shifts": [1, 3]}, "lq", CONTROLS)
    pre = county.loc[~(county["year"] >= county["dual_year"])]
    eng = PlaceboEngine(pre, "lq", CONTROLS)
    base = eng.unit_values(pre, "dual_year")
    fits = _pyfixest_draws(pre, eng.units, np.array([base - 1, base - 3]), "city_code")
    _assert_matches(res, fits)


def test_tiny_budget_gives_the_numbers_of_one_chunk(county_unbalanced):
    df = county_unbalanced
    one = PlaceboEngine(df, "lq", CONTROLS, max_bytes=2**30)
    tiny = PlaceboEngine(df, "lq", CONTROLS, max_bytes=1)
    assert tiny.chunk_size == 1 and one.chunk_size >= 60
    starts = draw_assignments("mixed_restricted", one.unit_values(df, "dual_year"), range(60), 5)
    pd.testing.assert_frame_equal(
        one.estimate(starts), tiny.estimate(starts), check_exact=False, rtol=1e-12, atol=1e-15
    )


def test_shards_through_small_chunks_are_bitwise_identical(county_unbalanced):
    n, common = 50, {"outcome": "lq", "controls": CONTROLS, "max_bytes": 8 * 2**20}
    chunk = PlaceboEngine(
        county_unbalanced, "lq", CONTROLS, max_bytes=common["max_bytes"]
    ).chunk_size
    assert 1 < chunk < n  # shard edges fall inside chunks
    runs = [
        gather(
            [
                run_shard(
                    county_unbalanced, "mixed_unrestricted", k, n_shards, n, 21, None, **common
                )
                for k in range(n_shards)
            ],
            n,
        )
        for n_shards in (1, 3)
    ]
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)


def test_working_memory_stays_within_the_budget_at_scale(county_unbalanced):
    budget = 8 * 2**20
    eng = PlaceboEngine(county_unbalanced, "lq", CONTROLS, max_bytes=budget)
    assert 1 < eng.chunk_size < 40
    starts = draw_assignments(
        "space", eng.unit_values(county_unbalanced, "dual_year"), range(80), 2
    )
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        res = eng.estimate(starts)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    output = 3 * res.memory_usage(deep=True).sum()  # the result columns, concatenated and framed
    assert peak <= budget + output
