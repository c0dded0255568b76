"""Shared pytest fixtures: a small synthetic city panel with a staggered dual-pilot treatment.

The panel has every column of `results/panel/panel.parquet` (see the project README) with the same names,
dtypes and meanings, so any function that takes the panel can be tested on it. It is small (by default 60
cities x 18 years = 1,080 rows) and fully determined by its arguments, so tests are fast and reproducible.

Use it through two fixtures:

- `panel`: the default panel (`build_synthetic_panel()` with its defaults).
- `make_panel`: the builder itself, to plant other effects or change the size, e.g.
  `make_panel(dual_effect=0.3, sc_only_effect=0.1, lc_only_effect=0.05, seed=7)`.

How the data are generated (all draws from `numpy.random.default_rng(seed)`):

- Cities get 6-digit codes and belong to provinces; the first province holds a single city, like the four
  municipalities of the real panel (so province x year fixed effects produce singletons there). Regions are
  assigned per province.
- Pilot years are drawn per city: `sc_year` from the smart-city batches {2012, 2013, 2014} or never, `lc_year`
  from the low-carbon batches {2010, 2012, 2017} or never, with shares that leave every group (none, sc_only,
  lc_only, dual) and every dual cohort populated. `dual_year = max(sc_year, lc_year)` when both exist.
- Treatment indicators follow the panel's definitions: `sc_post = year >= sc_year`, `lc_post`, `dual_post`
  likewise, `years_since_dual = year - dual_year` (NaN if never dual), `group` = state in the last year.
- The outcome is additive, with the effects planted as arguments:

      lq = 1 + city effect + year effect + controls @ control_coefs
           + sc_only_effect * sc_only_post + lc_only_effect * lc_only_post
           + dual_effect(years_since_dual) * dual_post + noise,

  where `sc_only_post = sc_post & ~dual_post` and `lc_only_post = lc_post & ~dual_post`, and `dual_effect` is
  a number (a constant effect) or a function of `years_since_dual` (a dynamic effect; it is only evaluated at
  `years_since_dual >= 0`). No effect before `dual_year`: leads are zero by construction.
- The six baseline controls are drawn independently of treatment (city level + noise), so they do not bias
  the treatment coefficients. The raw columns (gdp, population, ...) are generated first and the controls are
  derived from them with the definitions written in `_derive_controls`; `it_emp` is backed out of `lq` so that
  `lq = (it_emp / total_emp) / (national it share)` holds with a national share of 0.02.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BASELINE_CONTROLS: tuple[str, ...] = (
    "ln_gdp_pc",
    "ln_density",
    "industry",
    "gov",
    "open",
    "finance",
)
"""The controls of the baseline specification."""

CONTROL_COEFS: dict[str, float] = {
    "ln_gdp_pc": 0.08,
    "ln_density": -0.05,
    "industry": 0.004,
    "gov": 0.6,
    "open": -0.4,
    "finance": 0.1,
}
"""True coefficients of the controls in the generated outcome."""

NATIONAL_IT_SHARE = 0.02
SC_BATCHES = (2012, 2013, 2014)
LC_BATCHES = (2010, 2012, 2017)

DualEffect = float | Callable[[np.ndarray], np.ndarray]


def _pilot_years(rng: np.random.Generator, n_cities: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw sc_year and lc_year per city (NaN = never), cycling through a fixed pattern of states.

    The pattern guarantees every group and every dual cohort (2012, 2013, 2014, 2017) when
    n_cities >= 12; the rng only shuffles which city gets which state.
    """
    nan = np.nan
    pattern = [
        (nan, nan),  # none
        (nan, nan),  # none
        (2012, nan),  # sc_only
        (2014, nan),  # sc_only
        (nan, 2010),  # lc_only
        (nan, 2017),  # lc_only
        (2012, 2010),  # dual 2012
        (2013, 2010),  # dual 2013
        (2014, 2012),  # dual 2014
        (2012, 2017),  # dual 2017
        (2013, 2012),  # dual 2013
        (nan, nan),  # none
    ]
    states = np.array([pattern[i % len(pattern)] for i in range(n_cities)], dtype=float)
    states = states[rng.permutation(n_cities)]
    return states[:, 0], states[:, 1]


def _derive_controls(df: pd.DataFrame) -> pd.DataFrame:
    """Compute the baseline controls and log patent counts from the raw columns (panel definitions)."""
    out = df.copy()
    out["ln_gdp_pc"] = np.log(out["gdp"] / out["population"])
    out["ln_density"] = np.log(out["population"] / out["area"])
    out["industry"] = out["secondary_share"]
    out["gov"] = out["fiscal_exp"] / out["gdp"]
    out["open"] = out["fdi"] / out["gdp"]
    out["finance"] = out["loans"] / out["gdp"]
    out["ln_digital_pat"] = np.log1p(out["digital_patents"])
    out["ln_green_pat"] = np.log1p(out["green_patents"])
    out["human_capital"] = out["students"] / (out["population"] * 1e4)
    return out


def build_synthetic_panel(
    *,
    n_cities: int = 60,
    n_provinces: int = 6,
    years: tuple[int, int] = (2006, 2023),
    dual_effect: DualEffect = 0.30,
    sc_only_effect: float = 0.0,
    lc_only_effect: float = 0.0,
    noise_sd: float = 0.02,
    seed: int = 20240601,
) -> pd.DataFrame:
    """Build a balanced synthetic city-year panel with the panel's columns and planted effects.

    Args:
        n_cities: number of cities (>= 12 to populate every group and dual cohort).
        n_provinces: number of provinces (>= 2); province 0 holds exactly one city.
        years: first and last year, inclusive.
        dual_effect: effect of `dual_post` on `lq`: a number, or a vectorised function of
            `years_since_dual` (evaluated where `years_since_dual >= 0`).
        sc_only_effect: effect of being a smart-city pilot only (`sc_post & ~dual_post`).
        lc_only_effect: effect of being a low-carbon pilot only (`lc_post & ~dual_post`).
        noise_sd: standard deviation of the idiosyncratic error of `lq`.
        seed: seed of the only random generator used.

    Returns:
        One row per city-year, sorted by city_code and year, with a fresh RangeIndex.
    """
    if n_cities < 12 or n_provinces < 2:
        raise ValueError("need n_cities >= 12 and n_provinces >= 2")
    rng = np.random.default_rng(seed)
    year_values = np.arange(years[0], years[1] + 1)
    n_years = len(year_values)

    codes = np.array([f"{110000 + 10000 * (i % 40) + 100 * (i + 1):06d}" for i in range(n_cities)])
    province_of_city = np.concatenate([[0], 1 + np.arange(n_cities - 1) % (n_provinces - 1)])
    regions3 = np.array(["east", "central", "west"])
    regions4 = np.array(["east", "central", "west", "northeast"])
    sc_year, lc_year = _pilot_years(rng, n_cities)
    both = ~np.isnan(sc_year) & ~np.isnan(lc_year)
    dual_year = np.where(both, np.fmax(sc_year, lc_year), np.nan)

    city = pd.DataFrame(
        {
            "city_code": codes,
            "city_name": [f"City{i:03d}" for i in range(n_cities)],
            "province": [f"P{p:02d}" for p in province_of_city],
            "region": regions3[province_of_city % 3],
            "region4": regions4[province_of_city % 4],
            "sc_year": sc_year,
            "lc_year": lc_year,
            "dual_year": dual_year,
            "city_fe": rng.normal(0.0, 0.3, n_cities),
            "size": rng.lognormal(5.5, 0.5, n_cities),
        }
    )
    df = city.loc[city.index.repeat(n_years)].reset_index(drop=True)
    df["year"] = np.tile(year_values, n_cities).astype("int64")
    n = len(df)
    t = (df["year"] - years[0]).to_numpy(dtype=float)

    # Raw columns: city level x growth x noise, independent of treatment.
    size = df["size"].to_numpy()
    df["population"] = size * np.exp(0.005 * t + rng.normal(0, 0.02, n))
    df["area"] = size * 20 * np.exp(rng.normal(0, 0.01, n))
    df["gdp"] = size * 3e4 * np.exp(0.07 * t + rng.normal(0, 0.1, n))
    df["secondary_share"] = np.clip(45 + rng.normal(0, 6, n), 15, 75)
    df["fiscal_exp"] = df["gdp"] * np.clip(0.15 + rng.normal(0, 0.03, n), 0.03, None)
    df["fdi"] = df["gdp"] * np.clip(0.02 + rng.normal(0, 0.01, n), 0.0, None)
    df["loans"] = df["gdp"] * np.clip(1.0 + rng.normal(0, 0.2, n), 0.2, None)
    df["students"] = np.round(size * 50 * np.exp(rng.normal(0, 0.3, n)))
    df["so2"] = size * 100 * np.exp(rng.normal(0, 0.3, n))
    df["green_cover"] = np.clip(38 + rng.normal(0, 4, n), 10, 60)
    df["digital_patents"] = rng.poisson(size / 10 * np.exp(0.1 * t)).astype("int64")
    df["green_patents"] = rng.poisson(size / 20 * np.exp(0.08 * t)).astype("int64")
    df = _derive_controls(df)

    year_num = df["year"].to_numpy(dtype=float)
    for name, start in (("sc", "sc_year"), ("lc", "lc_year"), ("dual", "dual_year")):
        df[f"{name}_post"] = (year_num >= df[start].to_numpy()).astype("int64")  # NaN -> False
    df["years_since_dual"] = year_num - df["dual_year"].to_numpy()
    last = df["year"] == years[1]
    end_state = np.select(
        [df["dual_post"] == 1, df["sc_post"] == 1, df["lc_post"] == 1],
        ["dual", "sc_only", "lc_only"],
        default="none",
    )
    group_of_city = pd.Series(end_state[last.to_numpy()], index=df.loc[last, "city_code"])
    df["group"] = df["city_code"].map(group_of_city).astype("str")

    dual = df["dual_post"].to_numpy() == 1
    sc_only = (df["sc_post"].to_numpy() == 1) & ~dual
    lc_only = (df["lc_post"].to_numpy() == 1) & ~dual
    if callable(dual_effect):
        since = np.where(dual, df["years_since_dual"].to_numpy(), 0.0)
        dual_part = np.where(dual, dual_effect(since), 0.0)
    else:
        dual_part = dual_effect * dual
    year_fe = 0.02 * t + 0.05 * np.sin(t)
    controls = sum(coef * df[name].to_numpy() for name, coef in CONTROL_COEFS.items())
    df["lq"] = (
        1.0
        + df["city_fe"].to_numpy()
        + year_fe
        + controls
        + sc_only_effect * sc_only
        + lc_only_effect * lc_only
        + dual_part
        + rng.normal(0.0, noise_sd, n)
    )
    df["total_emp"] = size * 0.1 * np.exp(0.01 * t)
    df["it_emp"] = df["lq"] * NATIONAL_IT_SHARE * df["total_emp"]

    columns = [
        "city_code", "city_name", "province", "region", "region4", "year", "it_emp", "total_emp", "lq",
        "gdp", "population", "area", "secondary_share", "fiscal_exp", "fdi", "loans", "students", "so2",
        "green_cover", "digital_patents", "green_patents", "ln_gdp_pc", "ln_density", "industry", "gov",
        "open", "finance", "ln_digital_pat", "ln_green_pat", "human_capital", "sc_year", "lc_year",
        "dual_year", "sc_post", "lc_post", "dual_post", "years_since_dual", "group",
    ]  # fmt: skip
    out = df[columns].sort_values(["city_code", "year"]).reset_index(drop=True)
    for col in ("city_code", "city_name", "province", "region", "region4", "group"):
        out[col] = out[col].astype("str")
    return out


@pytest.fixture(scope="session")
def make_panel() -> Callable[..., pd.DataFrame]:
    """The panel builder `build_synthetic_panel` (keyword arguments only); see the module docstring."""
    return build_synthetic_panel


@pytest.fixture(scope="session")
def _default_panel() -> pd.DataFrame:
    return build_synthetic_panel()


@pytest.fixture
def panel(_default_panel: pd.DataFrame) -> pd.DataFrame:
    """The default synthetic panel (a fresh copy per test, so tests may modify it)."""
    return _default_panel.copy()


@pytest.fixture(scope="session")
def baseline_controls() -> list[str]:
    """Names of the six baseline controls."""
    return list(BASELINE_CONTROLS)


@pytest.fixture(scope="session")
def pristine_demo_raw(tmp_path_factory) -> Path:
    """The demo extracts of the default configuration, written once per session (do not modify: copy
    them with `demo_mutations.mutable_copy` first)."""
    from demo_mutations import write_demo_raw

    return write_demo_raw(tmp_path_factory.mktemp("demo") / "raw")


# --- issue 12: one small but complete build of the study, shared by test_report.py and
# test_workflow_render.py (tests/study_build.py); built on first use only.
@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    """A temporary copy of the workflow with `rule all` built on study_build.SMALL_OVERLAY (do not modify
    its results: tests only read them, dry-run, or write new files such as reports)."""
    from study_build import build_small_study

    return build_small_study(tmp_path_factory.mktemp("small_study"))
