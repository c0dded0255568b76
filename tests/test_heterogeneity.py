"""Tests of the heterogeneity analysis (dualpilot.analyses.heterogeneity).

Independent references: group definitions recomputed in the test with pandas from their written
definitions; split-sample and interaction coefficients from pyfixest `feols` fitted directly (1e-8
relative); permutation draws rebuilt by hand in the test from the documented generator (same gap to
1e-8); the p-value rule of Stata's bdiff v1.04 written out as in bdiff.ado (count of d* >= d, divided by
the draws, 1 - p above 0.5). Planted heterogeneity must give a small permutation p-value and a null
panel p-values that are not small (fixed seeds, so these checks are deterministic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from matplotlib.figure import Figure
from pyfixest.demeaners import MapDemeaner

from dualpilot.analyses import heterogeneity as het
from dualpilot.data.reference import load_usd_cny
from dualpilot.demo import extracts as demo
from dualpilot.engines import estimation as est
from dualpilot.engines import resampling
from dualpilot.engines.estimation import EstimationError
from dualpilot.engines.resampling import draw_rng
from dualpilot.render import heterogeneity as heterogeneity_output

RESOURCES = Path(__file__).resolve().parents[1] / "resources"

CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]
TIGHT = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=100_000)
REL = 1e-8


def _feols(df: pd.DataFrame, terms: list[str]):
    rhs = " + ".join([*terms, *CONTROLS])
    return pf.feols(
        f"lq ~ {rhs} | city_code + year", df, vcov={"CRV1": "city_code"}, demeaner=TIGHT
    )


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def _with_effect(df: pd.DataFrame, by_city: pd.Series) -> pd.DataFrame:
    """lq plus a dual effect that depends on the city (on top of the panel's own effect)."""
    out = df.copy()
    out["lq"] = out["lq"] + out["dual_post"] * out["city_code"].map(by_city).astype(float)
    return out


@pytest.fixture(scope="module")
def panel60(make_panel) -> pd.DataFrame:
    return make_panel(n_cities=60, seed=21)


@pytest.fixture(scope="module")
def groups60(panel60: pd.DataFrame) -> pd.DataFrame:
    return het.baseline_groups(panel60)


# --------------------------------------------------------------------------------------------------
# Dimensions and groups
# --------------------------------------------------------------------------------------------------


def test_dimension_validation() -> None:
    with pytest.raises(ValueError, match="exactly two"):
        het.Dimension("x", "median", "gdp", ("a", "b", "c"), "a")
    with pytest.raises(ValueError, match="above"):
        het.Dimension("x", "median", "gdp", ("a", "b"), "c")
    with pytest.raises(ValueError, match="group names"):
        het.Dimension("x", "category", "region", ("interaction", "b"))
    with pytest.raises(ValueError, match="unknown key"):
        het.dimensions_from_config({"x": {"split": "median", "variable": "gdp", "groups": ["a", "b"],
                                          "above": "a", "colour": "red"}})  # fmt: skip
    dims = het.dimensions_from_config(
        {
            "dev": {
                "split": "median",
                "variable": "gdp/population",
                "groups": ["rich", "poor"],
                "above": "rich",
            }
        }  # fmt: skip
    )
    assert dims["dev"].below == "poor" and dims["dev"].pairs == [("rich", "poor")]
    assert het.DEFAULT_DIMENSIONS["region"].pairs == [
        ("east", "central"),
        ("east", "west"),
        ("central", "west"),
    ]


def test_baseline_groups_follow_definitions(panel60: pd.DataFrame, groups60: pd.DataFrame) -> None:
    pre = panel60[panel60["year"] < 2010]
    dev = pre.groupby("city_code")["ln_gdp_pc"].mean()
    so2 = (pre["so2"] / pre["gdp"]).groupby(pre["city_code"]).mean()
    green = pre.groupby("city_code")["green_cover"].mean()
    expect_dev = np.where(dev > dev.median(), "high", "low")
    expect_env = np.where(so2 <= so2.median(), "clean", "dirty")
    expect_green = np.where(green > green.median(), "high", "low")
    g = groups60.loc[dev.index]
    assert (g["development"].to_numpy() == expect_dev).all()
    assert (g["environment"].to_numpy() == expect_env).all()
    assert (g["greening"].to_numpy() == expect_green).all()
    np.testing.assert_allclose(g["environment_baseline"], so2, rtol=1e-12)
    region = panel60.groupby("city_code")["region"].first()
    assert (g["region"].to_numpy() == region.loc[dev.index].to_numpy()).all()
    counts = g["development"].value_counts()
    assert counts["high"] == counts["low"] == 30
    summary = het.group_summary(panel60, groups60)
    assert summary.loc[summary["dimension"] == "development", "n_cities"].tolist() == [30, 30]
    assert summary["n_treated_cities"].sum() > 0


def test_groups_do_not_depend_on_post_2009_values(panel60: pd.DataFrame) -> None:
    before = het.baseline_groups(panel60)
    changed = panel60.copy()
    late = changed["year"] >= 2010
    rng = np.random.default_rng(0)
    for col in ("ln_gdp_pc", "gdp", "so2", "green_cover"):
        changed.loc[late, col] = changed.loc[late, col] * rng.uniform(0.1, 10.0, late.sum())
    pd.testing.assert_frame_equal(het.baseline_groups(changed), before)
    # the check can fail: moving one city's pre-2010 values does move it
    city = before.index[before["development"] == "low"][0]
    early = (changed["city_code"] == city) & ~late
    changed.loc[early, "ln_gdp_pc"] = changed.loc[early, "ln_gdp_pc"] + 5.0
    assert het.baseline_groups(changed).loc[city, "development"] == "high"
    # a later baseline year (before=2015) does see post-2009 values
    assert not het.baseline_groups(changed, before=2015).equals(het.baseline_groups(changed))


def test_cities_without_baseline_and_bad_regions(panel60: pd.DataFrame) -> None:
    df = panel60.copy()
    city = df["city_code"].iloc[0]
    df = df[~((df["city_code"] == city) & (df["year"] < 2010))]
    other = df["city_code"].unique()[1]
    df.loc[df["city_code"] == other, "region"] = "northeast"
    g = het.baseline_groups(df)
    assert pd.isna(g.loc[city, "development"]) and pd.isna(g.loc[other, "region"])
    df.loc[df.index[df["city_code"] == other][0], "region"] = "east"
    with pytest.raises(EstimationError, match="varies within"):
        het.baseline_groups(df)


# --------------------------------------------------------------------------------------------------
# Split samples and interaction
# --------------------------------------------------------------------------------------------------


def test_split_sample_and_interaction_equal_direct_fits(
    panel60: pd.DataFrame, groups60: pd.DataFrame
) -> None:
    out = het.heterogeneity(panel60, CONTROLS, n_draws=0)
    by = out.set_index(["model", "term"])
    lab = panel60["city_code"].map(groups60["region"])
    for g in ("east", "central", "west"):
        ref = _feols(panel60[lab == g], ["dual_post"])
        row = by.loc[(f"region: {g}", "dual_post")]
        assert _close(row["estimate"], ref.coef()["dual_post"])
        assert _close(row["std_error"], ref.se()["dual_post"])
        assert row["sample"] == f"region = {g}"
    df = panel60.copy()
    df["ie"] = df["dual_post"] * (lab == "east")
    df["ic"] = df["dual_post"] * (lab == "central")
    ref = _feols(df, ["dual_post", "ie", "ic"])
    model = "region: interaction"
    assert _close(by.loc[(model, "dual_post_x_region_east"), "estimate"], ref.coef()["ie"])
    assert _close(by.loc[(model, "dual_post_x_region_central"), "std_error"], ref.se()["ic"])
    diff = by.loc[(model, "lincom: east - central"), "estimate"]
    assert _close(diff, ref.coef()["ie"] - ref.coef()["ic"])
    dev = by.loc[("development: interaction", "lincom: high - low"), "estimate"]
    assert dev == by.loc[("development: interaction", "dual_post_x_development_high"), "estimate"]
    assert list(out.columns) == list(est.TIDY_COLUMNS)
    assert not out.duplicated(["model", "term"]).any()


# --------------------------------------------------------------------------------------------------
# bdiff permutation test
# --------------------------------------------------------------------------------------------------


def test_permutation_draws_keep_city_labels(panel60: pd.DataFrame, groups60: pd.DataFrame) -> None:
    """Each draw equals the gap on a hand-built permutation of city labels (a city keeps one label for
    all its years; the number of cities per group is kept)."""
    seed, pair = 9, ("east", "west")
    draws = het.bdiff_draws(
        panel60, "region", [3, 0], seed, pair=pair, groups=groups60, controls=CONTROLS
    )
    labels = groups60["region"]
    members = labels[labels.isin(pair)].sort_index()
    for _, row in draws.iterrows():
        perm = resampling.permute_labels(
            members.to_numpy(), draw_rng(seed, int(row["draw"]), het.BDIFF_STREAM, "region", *pair)
        )
        assert (pd.Series(perm).value_counts() == members.value_counts()).all()
        new = pd.Series(perm, index=members.index)
        lab = panel60["city_code"].map(new)
        per_city = lab.groupby(panel60["city_code"]).nunique()
        assert (per_city[members.index] == 1).all()
        b = [_feols(panel60[lab == g], ["dual_post"]).coef()["dual_post"] for g in pair]
        assert _close(row["estimate_a"], b[0]) and _close(row["estimate_b"], b[1])
        assert _close(row["gap"], b[0] - b[1], 1e-7)
    assert draws["draw"].tolist() == [3, 0]


def test_bdiff_fast_equals_fit_engine(panel60: pd.DataFrame, groups60: pd.DataFrame) -> None:
    kw = dict(groups=groups60, controls=CONTROLS)
    fast = het.bdiff_draws(panel60, "development", range(3), 2, **kw)
    slow = het.bdiff_draws(panel60, "development", range(3), 2, engine="fit", **kw)
    np.testing.assert_allclose(fast["gap"], slow["gap"], rtol=REL)


def test_bdiff_draws_seeded_and_shard_invariant(panel60: pd.DataFrame) -> None:
    whole = het.bdiff_draws(panel60, "environment", range(8), 4, controls=CONTROLS)
    parts = [
        het.bdiff_draws(panel60, "environment", r, 4, controls=CONTROLS)
        for r in (range(5, 8), range(0, 5))
    ]
    gathered = pd.concat(parts).sort_values("draw").reset_index(drop=True)
    pd.testing.assert_frame_equal(gathered, whole)
    other_seed = het.bdiff_draws(panel60, "environment", range(8), 5, controls=CONTROLS)
    assert not np.allclose(other_seed["gap"], whole["gap"])
    # each comparison has its own stream
    a = draw_rng(4, 0, het.BDIFF_STREAM, "region", "east", "west").random()
    b = draw_rng(4, 0, het.BDIFF_STREAM, "region", "east", "central").random()
    assert a != b
    with pytest.raises(ValueError, match="pair"):
        het.bdiff_draws(panel60, "region", range(2), 4)
    with pytest.raises(ValueError, match="not one of"):
        het.bdiff_draws(panel60, "region", range(2), 4, pair=("west", "east"))


def _bdiff_plus_one(d0: float, gaps: np.ndarray) -> float:
    """Reference, written out: bdiff.ado v1.04 takes count(diff >= diff0) / reps and 1 - that when above
    0.5 (one-sided in the direction of the gap); with the +1 rule each side is (1 + count) / (1 + reps)
    and the direction is the side with the smaller count."""
    above = sum(1 for g in gaps if g >= d0)
    below = sum(1 for g in gaps if g <= d0)
    return (1 + min(above, below)) / (1 + len(gaps))


def test_bdiff_pvalue_formula() -> None:
    """(1 + #extreme) / (1 + N), checked by hand on ten gaps and against a loop on random ones."""
    gaps = np.array([-0.3, -0.1, 0.0, 0.05, 0.2, 0.4, 0.1, -0.2, 0.25, 0.3])
    assert het.bdiff_pvalue(0.25, gaps) == pytest.approx(4 / 11)  # 0.25, 0.3, 0.4 (+1)
    assert het.bdiff_pvalue(-0.2, gaps) == pytest.approx(3 / 11)  # -0.3, -0.2 (+1)
    assert het.bdiff_pvalue(0.25, gaps, alternative="two-sided") == pytest.approx(5 / 11)
    assert het.bdiff_pvalue(0.25, gaps, alternative="greater") == pytest.approx(4 / 11)
    assert het.bdiff_pvalue(0.25, gaps, alternative="less") == pytest.approx(9 / 11)
    # a gap beyond every draw: 1 / (1 + N), never 0
    assert het.bdiff_pvalue(9.0, gaps) == pytest.approx(1 / 11)
    assert het.bdiff_pvalue(9.0, gaps, alternative="two-sided") == pytest.approx(1 / 11)
    rng = np.random.default_rng(1)
    for _ in range(50):
        g = rng.normal(size=int(rng.integers(1, 40)))
        d0 = float(rng.normal())
        assert het.bdiff_pvalue(d0, g) == pytest.approx(_bdiff_plus_one(d0, g))
        assert het.bdiff_pvalue(d0, pd.DataFrame({"gap": g})) == het.bdiff_pvalue(d0, g)
    with pytest.raises(ValueError):
        het.bdiff_pvalue(0.1, [])
    with pytest.raises(ValueError):
        het.bdiff_pvalue(0.1, [np.nan, 0.2])


def test_planted_heterogeneity_is_detected(panel60: pd.DataFrame, groups60: pd.DataFrame) -> None:
    """Effect 0.30 + 0.25 in high-development cities, 0.30 elsewhere: the gap is found."""
    extra = (groups60["development"] == "high").astype(float) * 0.25
    df = _with_effect(panel60, extra)
    out = het.heterogeneity(
        df, CONTROLS, dimensions={"development": het.DEFAULT_DIMENSIONS["development"]},
        n_draws=199, seed=7,
    )  # fmt: skip
    row = out.set_index("term").loc["bdiff: high - low"]
    assert row["estimate"] == pytest.approx(0.25, abs=0.02)
    assert row["p_value"] <= 0.01
    assert out.set_index("term").loc["bdiff (two-sided): high - low", "p_value"] <= 0.01
    assert row["model"] == "development: bdiff high vs low"


def test_null_heterogeneity_gives_large_p_values(make_panel) -> None:
    """One common effect: no comparison is significant (90 cities, so that no permuted region group
    is left without a treated city)."""
    panel90 = make_panel(n_cities=90, seed=21)
    out = het.heterogeneity(panel90, CONTROLS, n_draws=99, seed=7)
    tests = out[out["term"].str.startswith(het.BDIFF_TWO_SIDED_PREFIX)]
    assert len(tests) == 6  # development, environment, greening, three region pairs
    assert (tests["p_value"] > 0.01).all() and tests["p_value"].median() > 0.2
    one_sided = out[out["term"].str.startswith(het.BDIFF_PREFIX)]
    assert (one_sided["p_value"] <= 0.5).all() and (one_sided["p_value"] > 0.005).all()


def test_degenerate_draws_raise_and_stratification(panel60: pd.DataFrame) -> None:
    """A two-city group is often left without a treated city by a permutation: that raises (bdiff
    would use a zero coefficient); stratifying by treatment keeps each group's treated cities."""
    cities = np.sort(panel60["city_code"].unique())
    treated = panel60.groupby("city_code")["dual_year"].max().notna()
    small = [c for c in cities if treated[c]][:1] + [c for c in cities if not treated[c]][:2]
    df = panel60.assign(size=np.where(panel60["city_code"].isin(small), "small", "big"))
    dims = {"size": het.Dimension("size", "category", "size", ("small", "big"))}
    with pytest.raises(EstimationError, match="stratify_treated"):
        het.bdiff_draws(df, "size", range(30), 1, dimensions=dims, controls=CONTROLS)
    draws = het.bdiff_draws(
        df, "size", range(30), 1, dimensions=dims, controls=CONTROLS, stratify_treated=True
    )
    assert np.isfinite(draws["gap"]).all() and len(draws) == 30
    labels = np.array(["a", "b", "a", "b", "b", "a"])
    strata = np.array([1, 1, 0, 0, 0, 0])
    for d in range(20):
        perm = resampling.permute_labels(labels, draw_rng(0, d, het.BDIFF_STREAM, "x", "a", "b"), strata)
        assert sorted(perm[:2]) == ["a", "b"] and sorted(perm[2:]) == ["a", "b", "b", "b"][
            :0
        ] + sorted(labels[2:])


def test_precomputed_draws_are_used(panel60: pd.DataFrame, groups60: pd.DataFrame) -> None:
    dims = {"development": het.DEFAULT_DIMENSIONS["development"]}
    draws = het.bdiff_draws(panel60, "development", range(9), 3, groups=groups60, controls=CONTROLS)
    key = het.comparison_label("development", ("high", "low"))
    a = het.heterogeneity(panel60, CONTROLS, dimensions=dims, n_draws=9, seed=3)
    b = het.heterogeneity(panel60, CONTROLS, dimensions=dims, n_draws=9, seed=3, draws={key: draws})
    pd.testing.assert_frame_equal(a, b)
    shuffled = draws.iloc[::-1]  # shards arrive in any order: gathered by draw
    c = het.heterogeneity(
        panel60, CONTROLS, dimensions=dims, n_draws=9, seed=3, draws={key: shuffled}
    )
    pd.testing.assert_frame_equal(a, c)
    with pytest.raises(ValueError, match=r"precomputed draws: .*missing \[9\]"):
        het.heterogeneity(panel60, CONTROLS, dimensions=dims, n_draws=10, draws={key: draws})
    twice = pd.concat([draws, draws.iloc[:1]])
    with pytest.raises(ValueError, match=r"precomputed draws: .*duplicated draw\(s\) \[0\]"):
        het.heterogeneity(panel60, CONTROLS, dimensions=dims, n_draws=9, draws={key: twice})


def test_demo_panel_groups_match_planted_cells_and_gap_is_found() -> None:
    """The demo generator plants the dual effect by baseline cell (rich: ln GDP per capita above the
    median of the averages over years <= 2009; clean: SO2 intensity below the median): our groups
    reproduce its flags exactly, and the planted gaps are detected."""
    usd_cny = load_usd_cny(RESOURCES / "macro" / "usd_cny.csv")
    panel = demo.generate_panel(80, 18, 5, demo.DEFAULT_EFFECTS, usd_cny=usd_cny)
    groups = het.baseline_groups(panel)
    truth = panel.groupby("city_code")[["rich", "clean"]].first().astype(bool)
    assert ((groups["development"] == "high") == truth["rich"]).all()
    assert ((groups["environment"] == "clean") == truth["clean"]).all()
    dims = {k: het.DEFAULT_DIMENSIONS[k] for k in ("development", "environment")}
    out = het.heterogeneity(panel, CONTROLS, dimensions=dims, n_draws=99, seed=2).set_index("term")
    for term in ("bdiff: high - low", "bdiff: clean - dirty"):
        assert out.loc[term, "estimate"] > 0.05 and out.loc[term, "p_value"] <= 0.01


# --------------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------------


def test_heterogeneity_plot(panel60: pd.DataFrame) -> None:
    out = het.heterogeneity(panel60, CONTROLS, n_draws=0)
    rows = heterogeneity_output.split_rows(out)
    assert len(rows) == 9 and rows["dimension"].unique().tolist() == list(het.DEFAULT_DIMENSIONS)
    for language in ("en", "zh"):
        fig = heterogeneity_output.heterogeneity_plot(out, language=language, title="test")
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert len(ax.get_yticks()) == 9
        labels = [t.get_text() for t in ax.get_yticklabels()]
        if language == "en":  # headings from resources/labels/terms.csv, each with its sample
            first, last = rows.iloc[0], rows.iloc[-1]
            assert labels[0] == (
                f"High development ({first['n_clusters']:,} cities, {first['n_obs']:,} obs.)"
            )
            assert labels[-1] == f"West ({last['n_clusters']:,} cities, {last['n_obs']:,} obs.)"
    with pytest.raises(ValueError, match="split-sample"):
        heterogeneity_output.heterogeneity_plot(out[out["model"].str.endswith("interaction")])
