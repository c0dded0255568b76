"""Demo data: yearbook extracts with planted effects, laid out exactly as the raw-data contract says.

`generate_demo` writes a raw directory (``employment/ccsy_<E>.csv|xlsx``, ``economy/ccsy_<E>.csv|xlsx``,
``patents.csv``, ``policy/smart_city_pilots.csv``) for the real city roster, with every quirk of the
contract (encodings, XLSX, title lines, province/total/note/blank rows, padded, short and historical names,
header variants, bracketed units, missing markers, thousands separators, extra industries), and returns a
`DemoTruth`: the exact generated values, the treatment timing coded by `dualpilot.data.treatment` with the
policy rules passed in, and the planted effects. `generate_panel` makes an analysis-ready synthetic panel of
any size directly (county-scale performance work), from the same data-generating process.

The data-generating process is documented, with its equations, in docs/demo-data.md. All randomness comes
from ``numpy.random.SeedSequence(seed)``: its children drive (0) the city fundamentals, (1) the synthetic
smart-city list, (2) the outcomes, (3) the missing cells and (4) the print layout, so the same seed writes
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualpilot.core.labels import DEFAULT_OUTCOME_INDUSTRY
from dualpilot.data.panel import PANEL_COLUMNS as _BASE_PANEL_COLUMNS
from dualpilot.data.panel import derive_variables, location_quotient
from dualpilot.data.treatment import TREATMENT_COLUMNS, code_treatment

# ---------------------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------------------

#: Planted effects and the noise of the outcome (config ``demo: effects:``). Every key is required.
DEFAULT_EFFECTS: dict[str, Any] = {
    "dual_lq": 0.12,  # effect of dual_post on lq in the first treated year (mean over dual cities)
    "dual_lq_growth": 0.02,  # added per year since dual_year (same scaling by city as dual_lq)
    # Effects of being a smart-city (low-carbon) pilot only (sc_post, lc_post and not dual_post). 0 by
    # default: estimators that time the treatment by dual_year count single-pilot years as untreated, so
    # a single-pilot effect breaks their parallel trends (docs/demo-data.md, "What identifies the ATT").
    "sc_only_lq": 0.0,
    "lc_only_lq": 0.0,
    "dual_ln_digital_pat": 0.15,  # effect of dual_post on ln(1 + digital_patents)
    "dual_ln_green_pat": 0.10,  # effect of dual_post on ln(1 + green_patents)
    "dual_human_capital": 15.0,  # effect of dual_post on students per 10,000 residents
    # Relative size of the dual effect on lq by baseline cell (rich: above-median GDP per capita; clean:
    # below-median SO2 intensity), rescaled so that its mean over the dual cities is 1.
    "heterogeneity": {
        "rich_clean": 1.0,
        "rich_dirty": 0.35,
        "poor_clean": 0.35,
        "poor_dirty": 0.02,
    },
    "baseline_end": 2009,  # the baseline is the average over the window's years up to this one
    "lq_noise_sd": 0.04,  # standard deviation of the AR(1) error of lq*
    "lq_noise_rho": 0.5,  # its autocorrelation
    # Coefficient of ln GDP per capita in lq* (the catch-up channel: GDP per capita grows faster in the
    # centre and west). Parallel trends hold given the ln_gdp_pc control; 0 makes them hold without it.
    "lq_catch_up": 0.30,
}
_HETEROGENEITY_CELLS = ("rich_clean", "rich_dirty", "poor_clean", "poor_dirty")

#: The synthetic smart-city list (config ``demo: smart_city:``).
DEFAULT_SMART_CITY: dict[str, Any] = {
    "prefecture_pilots": {1: 37, 2: 40, 3: 30},  # prefecture-level pilots per batch
    "subcity_entries": 6,  # district/county entries, in cities that are not prefecture pilots
    "gdp_tilt": 1.0,  # selection weight exp(gdp_tilt * standardised baseline ln GDP per capita)
}

#: The policy coding of config/config.yaml (the batch years of its programmes sc and lc and the rules of its
#: `policy:` block, as rule make_demo_extracts passes them); `generate_panel` uses it when no policy is given.
DEFAULT_POLICY: dict[str, Any] = {
    "sc_batch_years": {1: 2012, 2: 2013, 3: 2014},
    "lc_batch_years": {1: 2010, 2: 2012, 3: 2017},
    "province_pilot_treats_cities": True,
    "subcity_pilot_treats_city": False,
}
_POLICY_KEYS = frozenset(DEFAULT_POLICY)

SYNTHETIC_SOURCE = "synthetic demo entry (not a real pilot)"

#: Region parameters: GDP per capita in the first year (元), growth of ln GDP per capita per year, and the
#: level of the IT location quotient's city effect before scaling (east leads).
_REGIONS: dict[str, tuple[float, float, float]] = {
    "east": (30_000.0, 0.095, 1.00),
    "central": (14_000.0, 0.112, 0.72),
    "northeast": (19_000.0, 0.080, 0.78),
    "west": (12_500.0, 0.115, 0.66),
}
_GDP_PC_CURVATURE = -0.0012  # quadratic term of ln GDP per capita in years since the start


def _it_share(t: np.ndarray) -> np.ndarray:
    """National IT employment share s_t, t = years since the first year (1.1 % rising by 0.11 pp)."""
    return 0.011 + 0.0011 * t


#: Share shifters of the other industries (only their ratios matter); printed columns are a subset.
_INDUSTRY_WEIGHTS: dict[str, float] = {
    "emp_nonglinmuyu": 0.012, "emp_caikuang": 0.035, "emp_zhizao": 0.28, "emp_dianli": 0.022,
    "emp_jianzhu": 0.12, "emp_jiaotong": 0.045, "emp_pifa_lingshou": 0.05, "emp_zhusu_canyin": 0.02,
    "emp_jinrong": 0.04, "emp_fangdichan": 0.02, "emp_zulin_shangwu": 0.03, "emp_keyan": 0.02,
    "emp_shuili_huanjing": 0.02, "emp_jumin_fuwu": 0.006, "emp_jiaoyu": 0.09, "emp_weisheng": 0.05,
    "emp_wenhua": 0.01, "emp_gonggong_guanli": 0.11,
}  # fmt: skip

#: Printed precision (decimals) of each variable, as the yearbook prints it.
PRINT_DECIMALS: dict[str, int] = {
    "total_emp": 2, "it_emp": 2, "gdp": 0, "population": 2, "area": 0, "secondary_share": 2,
    "fiscal_exp": 0, "fdi": 0, "loans": 0, "students": 0, "so2": 0, "green_cover": 2,
}  # fmt: skip
ECONOMY_VARIABLES: tuple[str, ...] = (
    "gdp", "population", "area", "secondary_share", "fiscal_exp", "fdi", "loans", "students", "so2",
    "green_cover",
)  # fmt: skip
_SHARE_VARIABLES = frozenset({"secondary_share", "green_cover"})

#: Missing markers of the contract; each file uses two of them.
MISSING_MARKERS: tuple[str, ...] = ("", "—", "-", "…", "..", "NA")
HEADER_FIRST_CELLS: tuple[str, ...] = ("地区", "城市", "城市名称")
TOTAL_ROWS: tuple[str, ...] = ("全国", "合计", "全省")
_IT_SEPARATORS: tuple[str, ...] = ("、", ",", "，", "")
_FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_FIXED_XLSX_STAMP = "2024-01-01T00:00:00Z"

# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass
class DemoTruth:
    """What `generate_demo` planted and wrote.

    Attributes:
        panel: one row per existing city-year with the exact generated values (before rounding to
            print; NaN where the value is genuinely missing in the output), the analysis-panel columns
            (controls, mechanisms, treatment coding), and the truth columns ``lq_star`` (planted latent
            location quotient), ``lq`` (realised on the generated values over the cities whose IT
            employment is not missing), ``lq_print`` (realised on the printed, rounded values),
            ``effect_lq`` (planted treatment component of lq*), ``effect_ln_digital_pat``,
            ``effect_ln_green_pat``, ``effect_human_capital``, ``it_share`` (s_t).
        cities: one row per city: baseline ln GDP per capita and SO2 intensity, ``rich``/``clean``
            flags, heterogeneity multiplier ``dual_scale``, sc_year, lc_year, dual_year, group.
        smart_city_pilots: the synthetic smart-city list as written.
        effects: the planted effects (a copy of the argument).
        summary: planted and realised average effects and other checks (JSON-serialisable).
        missing: the genuinely missing cells: city_code, year, variable, where (file or patents.csv).
        files: one row per written file: path (relative to out_dir), table, edition, format, encoding
            and the layout choices used.
    """

    panel: pd.DataFrame
    cities: pd.DataFrame
    smart_city_pilots: pd.DataFrame
    effects: dict[str, Any]
    summary: dict[str, Any]
    missing: pd.DataFrame
    files: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, panel_path: str | Path, summary_path: str | Path) -> None:
        """Write the truth panel (parquet) and a JSON file with effects, summary, cities and files."""
        Path(panel_path).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
        self.panel.to_parquet(panel_path, index=False)
        doc = {
            "effects": self.effects,
            "summary": self.summary,
            "cities": json.loads(self.cities.to_json(orient="records", force_ascii=False)),
            "missing": json.loads(self.missing.to_json(orient="records", force_ascii=False)),
            "files": json.loads(self.files.to_json(orient="records", force_ascii=False)),
        }
        Path(summary_path).write_text(
            json.dumps(doc, ensure_ascii=False, indent=1, default=_json_default), encoding="utf-8"
        )


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------------------
# Validation of the arguments
# ---------------------------------------------------------------------------------------------------------


def validate_effects(effects: Mapping[str, Any]) -> dict[str, Any]:
    """Check that `effects` has exactly the keys of `DEFAULT_EFFECTS` with sensible values; return a copy.

    Raises ValueError naming every missing or unknown key and every bad value.
    """
    problems = []
    missing = sorted(set(DEFAULT_EFFECTS) - set(effects))
    unknown = sorted(set(effects) - set(DEFAULT_EFFECTS))
    if missing:
        problems.append(f"missing key(s) {missing}")
    if unknown:
        problems.append(f"unknown key(s) {unknown}")
    if not problems:
        het = effects["heterogeneity"]
        if not isinstance(het, Mapping) or set(het) != set(_HETEROGENEITY_CELLS):
            problems.append(
                f"heterogeneity must have exactly the keys {list(_HETEROGENEITY_CELLS)}"
            )
        elif any(not _is_number(v) or v < 0 for v in het.values()) or sum(het.values()) <= 0:
            problems.append("heterogeneity multipliers must be >= 0 and not all 0")
        for key, value in effects.items():
            if key != "heterogeneity" and not _is_number(value):
                problems.append(f"{key} must be a number, got {value!r}")
        if not problems:
            if effects["lq_noise_sd"] < 0:
                problems.append("lq_noise_sd must be >= 0")
            if not 0 <= effects["lq_noise_rho"] < 1:
                problems.append("lq_noise_rho must be in [0, 1)")
            if int(effects["baseline_end"]) != effects["baseline_end"]:
                problems.append("baseline_end must be a year")
    if problems:
        raise ValueError("invalid demo effects: " + "; ".join(problems))
    out = dict(effects)
    out["heterogeneity"] = {k: float(effects["heterogeneity"][k]) for k in _HETEROGENEITY_CELLS}
    out["baseline_end"] = int(effects["baseline_end"])
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _validate_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    missing = sorted(_POLICY_KEYS - set(policy))
    unknown = sorted(set(policy) - _POLICY_KEYS)
    if missing or unknown:
        raise ValueError(
            f"invalid policy: missing key(s) {missing}, unknown key(s) {unknown}; expected "
            f"{sorted(_POLICY_KEYS)}"
        )
    out = dict(policy)
    for key in ("sc_batch_years", "lc_batch_years"):
        out[key] = {int(b): int(y) for b, y in policy[key].items()}
    return out


def _validate_smart_city(smart_city: Mapping[str, Any] | None) -> dict[str, Any]:
    if smart_city is None:
        return {
            **DEFAULT_SMART_CITY,
            "prefecture_pilots": dict(DEFAULT_SMART_CITY["prefecture_pilots"]),
        }
    if set(smart_city) != set(DEFAULT_SMART_CITY):
        raise ValueError(
            f"invalid smart_city settings: expected exactly the keys {sorted(DEFAULT_SMART_CITY)}, "
            f"got {sorted(smart_city)}"
        )
    sizes = {int(b): int(n) for b, n in smart_city["prefecture_pilots"].items()}
    if any(n < 0 for n in sizes.values()) or int(smart_city["subcity_entries"]) < 0:
        raise ValueError("smart_city counts must be >= 0")
    return {
        "prefecture_pilots": sizes,
        "subcity_entries": int(smart_city["subcity_entries"]),
        "gdp_tilt": float(smart_city["gdp_tilt"]),
    }


def _rates(usd_cny: pd.Series | pd.DataFrame, years: np.ndarray) -> np.ndarray:
    """CNY per USD for `years` from a Series indexed by year or a frame with year, cny_per_usd."""
    if isinstance(usd_cny, pd.DataFrame):
        usd_cny = usd_cny.set_index("year")["cny_per_usd"]
    series = pd.Series(usd_cny.to_numpy(dtype=float), index=usd_cny.index.astype(int))
    missing = [int(y) for y in years if y not in series.index]
    if missing:
        raise ValueError(f"usd_cny has no rate for year(s) {missing}")
    return series.loc[years].to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------------------
# The data-generating process
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Roster:
    """City-level inputs of the DGP (arrays of length n, in roster order)."""

    codes: np.ndarray
    region4: np.ndarray
    capital: np.ndarray  # 0/1 provincial capital
    municipality: np.ndarray  # 0/1
    first_year: np.ndarray
    last_year: np.ndarray


def _ar1(rng: np.random.Generator, n: int, t: int, rho: float, sd: float) -> np.ndarray:
    """n x t stationary AR(1) paths with autocorrelation rho and marginal standard deviation sd."""
    out = np.empty((n, t))
    out[:, 0] = rng.normal(0.0, sd, n)
    innovation_sd = sd * math.sqrt(1.0 - rho**2)
    for j in range(1, t):
        out[:, j] = rho * out[:, j - 1] + rng.normal(0.0, innovation_sd, n)
    return out


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _fundamentals(
    rng: np.random.Generator, roster: _Roster, years: np.ndarray, rates: np.ndarray
) -> dict[str, np.ndarray]:
    """Every non-outcome variable (n x t arrays) and the latent city traits; none depends on treatment."""
    n, nt = len(roster.codes), len(years)
    t = (years - years[0]).astype(float)[None, :]
    cap, mun = roster.capital[:, None].astype(float), roster.municipality[:, None].astype(float)
    region = roster.region4
    east = (region == "east")[:, None].astype(float)
    west = (region == "west")[:, None].astype(float)
    northeast = (region == "northeast")[:, None].astype(float)
    base_gdp_pc = np.array([_REGIONS[r][0] for r in region])[:, None]
    growth = np.array([_REGIONS[r][1] for r in region])[:, None]

    # Latent traits: prosperity z, size u, pollution propensity v, and idiosyncratic city levels.
    z = rng.normal(size=n)[:, None]
    u = rng.normal(size=n)[:, None]
    v = rng.normal(size=n)[:, None]
    level = {name: rng.normal(size=n)[:, None] for name in (
        "area", "emp", "lq", "dig", "green", "hc", "sec", "gov", "fdi", "loans", "green_cover",
    )}  # fmt: skip

    ln_gdp_pc = (
        np.log(base_gdp_pc) + 0.30 * z + 0.25 * cap + 0.30 * mun
        + growth * t + _GDP_PC_CURVATURE * t**2 + _ar1(rng, n, nt, 0.8, 0.03)
    )  # fmt: skip
    pop0 = np.clip(350.0 * np.exp(0.5 * u + 0.35 * cap + 1.4 * mun - 0.15 * west), 52.0, 2750.0)
    population = pop0 * np.exp(0.004 * t + _ar1(rng, n, nt, 0.9, 0.005))
    area = np.clip(
        np.exp(np.log(11_000.0) + 0.55 * level["area"] + 0.7 * west - 0.25 * east + 0.2 * u),
        1_500.0,
        250_000.0,
    ) * np.ones((1, nt))
    gdp_pc = np.exp(ln_gdp_pc)
    gdp = gdp_pc * population  # 元 per person x 万人 = 万元
    # Urban-unit employment: 3 万 floor (administration, schools, hospitals) plus a part that scales with
    # population and income.
    total_emp = 3.0 + np.exp(
        np.log(0.085) + 0.6 * np.log(population / 350.0) + np.log(350.0)
        + 0.45 * (ln_gdp_pc - np.log(30_000.0)) + 0.25 * cap + 1.2 * mun + 0.12 * level["emp"]
        + _ar1(rng, n, nt, 0.8, 0.02)
    )  # fmt: skip
    secondary_share = 100.0 * _logistic(
        _logit(0.47) + 0.35 * v - 0.15 * z - 0.6 * mun + 0.2 * level["sec"] - 0.03 * t
        + _ar1(rng, n, nt, 0.8, 0.03)
    )  # fmt: skip
    fiscal_exp = gdp * np.exp(
        np.log(0.11) + 0.35 * west + 0.15 * northeast - 0.2 * z + 0.2 * level["gov"] + 0.03 * t
        + _ar1(rng, n, nt, 0.7, 0.04)
    )  # fmt: skip
    open_share = np.exp(
        np.log(0.02) + 0.5 * east - 0.5 * west + 0.3 * z + 0.5 * level["fdi"] - 0.035 * t
        + _ar1(rng, n, nt, 0.7, 0.15)
    )  # fmt: skip
    fdi = open_share * gdp / rates[None, :]  # 万美元
    loans = gdp * np.exp(
        np.log(0.75) + 0.2 * z + 0.3 * cap + 0.3 * mun + 0.2 * level["loans"] + 0.035 * t
        + _ar1(rng, n, nt, 0.8, 0.03)
    )  # fmt: skip
    post_2015 = np.maximum(years - 2015, 0).astype(float)[None, :]
    so2_intensity = np.exp(  # 吨 per 万元
        np.log(0.012) + 0.55 * v + 0.35 * west + 0.2 * northeast - 0.30 * z - 0.10 * t
        - 0.22 * post_2015 + _ar1(rng, n, nt, 0.8, 0.05)
    )  # fmt: skip
    so2 = so2_intensity * gdp
    green_cover = 100.0 * _logistic(
        _logit(0.33)
        + 0.12 * z
        + 0.035 * t
        + 0.15 * level["green_cover"]
        + _ar1(rng, n, nt, 0.6, 0.03)
    )
    # College students per 10,000 residents: a city level plus a common trend in levels (parallel trends in
    # the units the mechanism regression uses).
    hc_base = (
        20.0 + np.exp(np.log(90.0) + 0.35 * z + 1.2 * cap + 0.8 * mun + 0.45 * level["hc"])
        + 5.0 * t + _ar1(rng, n, nt, 0.8, 4.0)
    )  # fmt: skip
    # Patents: log counts with a city level (richer and larger cities patent more) and a common trend;
    # nothing time-varying that differs by region, so trends are parallel without controls.
    rich0 = np.log(base_gdp_pc) + 0.30 * z - np.log(30_000.0)
    size0 = np.log(pop0 / 350.0)
    ln_dig_base = (
        3.0 + 1.1 * rich0 + 0.9 * size0 + 0.7 * cap + 0.6 * mun + 0.19 * t + 0.25 * level["dig"]
        + _ar1(rng, n, nt, 0.8, 0.08)
    )  # fmt: skip
    ln_green_base = (
        2.4 + 0.9 * rich0 + 0.9 * size0 + 0.5 * cap + 0.5 * mun + 0.16 * t - 0.15 * v
        + 0.25 * level["green"] + _ar1(rng, n, nt, 0.8, 0.08)
    )  # fmt: skip
    # City effect of lq*: log-normal (positive, skewed: strong centres), east highest.
    lq_level = np.array([_REGIONS[r][2] for r in region])[:, None]
    alpha = np.exp(
        np.log(lq_level) + 0.20 * z + 0.40 * cap + 0.55 * mun + 0.15 * level["lq"]
    ) * np.ones((1, nt))
    industry_mix = np.exp(rng.normal(0.0, 0.25, (n, len(_INDUSTRY_WEIGHTS))))
    return {
        "ln_gdp_pc": ln_gdp_pc, "gdp": gdp, "population": population, "area": area,
        "total_emp": total_emp, "secondary_share": secondary_share, "fiscal_exp": fiscal_exp,
        "fdi": fdi, "loans": loans, "so2": so2, "green_cover": green_cover, "hc_base": hc_base,
        "ln_dig_base": ln_dig_base, "ln_green_base": ln_green_base, "alpha": alpha,
        "industry_mix": industry_mix,
    }  # fmt: skip


def _baseline(
    fund: dict[str, np.ndarray], years: np.ndarray, baseline_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """City baseline (mean over the window's years <= baseline_end) of ln GDP per capita and so2/gdp."""
    cols = years <= baseline_end
    if not cols.any():
        raise ValueError(
            f"baseline_end={baseline_end} is before the first year {years[0]}: no baseline years"
        )
    ln_gdp_pc = fund["ln_gdp_pc"][:, cols].mean(axis=1)
    so2_intensity = (fund["so2"][:, cols] / fund["gdp"][:, cols]).mean(axis=1)
    return ln_gdp_pc, so2_intensity


def _weighted_draw(
    rng: np.random.Generator,
    eligible: np.ndarray,
    score: np.ndarray,
    size: int,
    tilt: float,
    what: str,
) -> np.ndarray:
    """Indices of `size` of the `eligible` units, without replacement, weights exp(tilt * std. score)."""
    idx = np.flatnonzero(eligible)
    if size > len(idx):
        raise ValueError(f"{what}: asked for {size} units but only {len(idx)} are eligible")
    if size == 0:
        return np.array([], dtype=int)
    s = score[idx]
    w = np.exp(tilt * (s - s.mean()) / (s.std() if s.std() > 0 else 1.0))
    return np.sort(rng.choice(idx, size=size, replace=False, p=w / w.sum()))


def _synthetic_smart_city(
    rng: np.random.Generator,
    master: pd.DataFrame,
    baseline_ln_gdp_pc: np.ndarray,
    settings: dict[str, Any],
    batch_years: Mapping[int, int],
) -> pd.DataFrame:
    """The synthetic smart-city list: prefecture pilots per batch, richer cities likelier, plus a few
    district/county entries in cities that are not prefecture pilots."""
    codes = master["city_code"].to_numpy()
    first, last = master["first_year"].to_numpy(int), master["last_year"].to_numpy(int)
    municipality = master["is_municipality"].to_numpy(int) == 1
    taken = np.zeros(len(codes), dtype=bool)
    rows = []
    for batch in sorted(settings["prefecture_pilots"]):
        if batch not in batch_years:
            raise ValueError(f"smart-city batch {batch} has no year in policy sc_batch_years")
        year = batch_years[batch]
        eligible = ~taken & ~municipality & (first <= year) & (year <= last)
        chosen = _weighted_draw(
            rng, eligible, baseline_ln_gdp_pc, settings["prefecture_pilots"][batch],
            settings["gdp_tilt"], f"smart-city batch {batch}",
        )  # fmt: skip
        taken[chosen] = True
        rows += [(batch, master["city_name"].iat[i], "prefecture", i) for i in chosen]
    n_sub = settings["subcity_entries"]
    if n_sub:
        batches = sorted(settings["prefecture_pilots"])
        # A pilot list names only cities that exist in the year of the entry's batch (checked by
        # reference.pilot_list_problems): a city that exists in no batch year is replaced by another
        # draw; an entry whose drawn batch predates or outlives its city takes the city's first valid batch.
        years = np.array([batch_years[b] for b in batches])
        alive = (first[:, None] <= years[None, :]) & (years[None, :] <= last[:, None])
        chosen = _weighted_draw(rng, ~taken, baseline_ln_gdp_pc, n_sub, 0.0, "sub-city entries")
        dead = ~alive[chosen].any(axis=1)
        if dead.any():
            spare = ~taken & alive.any(axis=1)
            spare[chosen] = False
            extra = _weighted_draw(
                rng, spare, baseline_ln_gdp_pc, int(dead.sum()), 0.0, "sub-city entries"
            )
            chosen = np.sort(np.concatenate([chosen[~dead], extra]))
        for k, i in enumerate(chosen):
            level = "district" if k % 2 == 0 else "county"
            batch = int(batches[int(rng.integers(len(batches)))])
            if not alive[i, batches.index(batch)]:
                batch = int(batches[int(np.argmax(alive[i]))])
            name = master["city_name"].iat[i] + ("新城区" if level == "district" else "示范县")
            rows.append((batch, name, level, i))
    out = pd.DataFrame(
        {
            "batch": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "level": [r[2] for r in rows],
            "province": [master["province"].iat[r[3]] for r in rows],
            "city_code": [codes[r[3]] for r in rows],
            "source": SYNTHETIC_SOURCE,
        }
    )
    return out.sort_values(["batch", "level", "city_code"], kind="stable").reset_index(drop=True)


def _heterogeneity(
    rich: np.ndarray, clean: np.ndarray, ever_dual: np.ndarray, cells: Mapping[str, float]
) -> np.ndarray:
    """Multiplier of the dual effect by baseline cell, scaled to mean 1 over the ever-dual cities."""
    raw = np.select(
        [rich & clean, rich & ~clean, ~rich & clean],
        [cells["rich_clean"], cells["rich_dirty"], cells["poor_clean"]],
        cells["poor_dirty"],
    ).astype(float)
    if not ever_dual.any():
        raise ValueError("no city is dual-treated in the window: the dual effect cannot be planted")
    mean = raw[ever_dual].mean()
    if mean <= 0:
        raise ValueError("the heterogeneity multipliers are 0 in every dual city")
    return raw / mean


@dataclass
class _Outcomes:
    lq_star: np.ndarray
    it_emp: np.ndarray
    effect_lq: np.ndarray
    effect_parts: dict[str, np.ndarray]  # dual, sc_only, lc_only parts of effect_lq (lq* units)
    dual_scale: np.ndarray
    rich: np.ndarray
    clean: np.ndarray
    effects: dict[str, np.ndarray]
    digital: np.ndarray
    green: np.ndarray
    ln_dig_star: np.ndarray
    ln_green_star: np.ndarray
    human_capital: np.ndarray
    students: np.ndarray
    it_share: np.ndarray


def _outcomes(
    rng: np.random.Generator,
    fund: dict[str, np.ndarray],
    treat: dict[str, np.ndarray],
    exists: np.ndarray,
    years: np.ndarray,
    effects: dict[str, Any],
) -> _Outcomes:
    """Planted outcomes given the fundamentals and the treatment arrays (n x t; NaN year = never)."""
    n, nt = fund["gdp"].shape
    yr = years[None, :].astype(float)
    dual_post, sc_post, lc_post = treat["dual_post"], treat["sc_post"], treat["lc_post"]
    sc_only = sc_post * (1 - dual_post)
    lc_only = lc_post * (1 - dual_post)
    base_gdp, base_so2 = _baseline(fund, years, effects["baseline_end"])
    rich = base_gdp > np.median(base_gdp)
    clean = base_so2 < np.median(base_so2)
    ever_dual = (dual_post * exists).max(axis=1) == 1
    scale = _heterogeneity(rich, clean, ever_dual, effects["heterogeneity"])
    since = np.where(dual_post == 1, yr - treat["dual_year"], 0.0)
    dual_path = effects["dual_lq"] + effects["dual_lq_growth"] * since
    parts = {
        "dual": dual_post * scale[:, None] * dual_path,
        "sc_only": effects["sc_only_lq"] * sc_only,
        "lc_only": effects["lc_only_lq"] * lc_only,
    }
    effect_lq = parts["dual"] + parts["sc_only"] + parts["lc_only"]
    noise = _ar1(rng, n, nt, effects["lq_noise_rho"], effects["lq_noise_sd"])
    ln_gdp_pc = fund["ln_gdp_pc"]
    w = np.where(exists, fund["total_emp"], 0.0)
    # Scale the city effects once so their weighted mean in the first year is 1.
    alpha = fund["alpha"] / (w[:, 0] @ fund["alpha"][:, 0] / w[:, 0].sum())
    raw = alpha + effects["lq_catch_up"] * (ln_gdp_pc - ln_gdp_pc[:, :1]) + effect_lq + noise
    # c_t: year constant making the total_emp-weighted mean of lq* exactly 1 among existing cities.
    c = 1.0 - (w * raw).sum(axis=0) / w.sum(axis=0)
    lq_star = raw + c[None, :]
    if (lq_star[exists] <= 0).any():
        raise ValueError(
            "the planted lq* is <= 0 for some city-year: the effects or the noise are too large"
        )
    share = _it_share((years - years[0]).astype(float))
    it_emp = lq_star * share[None, :] * fund["total_emp"]

    eff_dig = effects["dual_ln_digital_pat"] * dual_post
    eff_green = effects["dual_ln_green_pat"] * dual_post
    eff_hc = effects["dual_human_capital"] * dual_post
    ln_dig_star = fund["ln_dig_base"] + eff_dig
    ln_green_star = fund["ln_green_base"] + eff_green
    # Counts: the integer nearest exp(y*) - 1, at least 0 (so ln(1 + count) is y* up to rounding).
    digital = np.maximum(np.rint(np.expm1(ln_dig_star)), 0.0)
    green = np.maximum(np.rint(np.expm1(ln_green_star)), 0.0)
    human_capital = fund["hc_base"] + eff_hc
    if (human_capital[exists] <= 0).any():
        raise ValueError("the planted students per 10,000 residents are <= 0 for some city-year")
    students = human_capital * fund["population"]
    return _Outcomes(
        lq_star=lq_star, it_emp=it_emp, effect_lq=effect_lq, effect_parts=parts, dual_scale=scale,
        rich=rich,
        clean=clean, effects={"ln_digital_pat": eff_dig, "ln_green_pat": eff_green,
                              "human_capital": eff_hc},
        digital=digital, green=green, ln_dig_star=ln_dig_star, ln_green_star=ln_green_star,
        human_capital=human_capital, students=students, it_share=share,
    )  # fmt: skip


def _treatment_arrays(
    coded: pd.DataFrame, codes: np.ndarray, years: np.ndarray
) -> dict[str, np.ndarray]:
    """n x t arrays of the treatment coding (from a long frame coded by `code_treatment`); a city
    absent from `coded` (it exists in no year of the window) is never treated."""
    pos = pd.Series(np.arange(len(codes)), index=codes)
    i = pos.loc[coded["city_code"]].to_numpy()
    j = (coded["year"].to_numpy(int) - years[0]).astype(int)
    out = {}
    for col in ("sc_post", "lc_post", "dual_post"):
        a = np.zeros((len(codes), len(years)))
        a[i, j] = coded[col].to_numpy(float)
        out[col] = a
    first = coded.groupby("city_code")[["sc_year", "lc_year", "dual_year"]].first().reindex(codes)
    for col in ("sc_year", "lc_year", "dual_year"):
        out[col] = np.repeat(first[col].to_numpy(float)[:, None], len(years), axis=1)
    return out


def _realised_lq(it_emp: pd.Series, total_emp: pd.Series, year: pd.Series) -> pd.Series:
    """`dualpilot.data.panel.location_quotient` over the rows where both employments are present (NaN
    elsewhere)."""
    ok = it_emp.notna() & total_emp.notna()
    out = pd.Series(np.nan, index=it_emp.index)
    out[ok] = location_quotient(it_emp[ok], total_emp[ok], year[ok])
    return out


#: Columns of the analysis panel (`dualpilot.data.panel.PANEL_COLUMNS` plus the treatment coding).
PANEL_COLUMNS: tuple[str, ...] = (*_BASE_PANEL_COLUMNS, *TREATMENT_COLUMNS)
TRUTH_COLUMNS: tuple[str, ...] = (
    "lq_star", "lq_print", "it_share", "lq_star_national_mean", "effect_lq", "effect_dual_lq",
    "effect_sc_only_lq", "effect_lc_only_lq", "effect_ln_digital_pat", "effect_ln_green_pat",
    "effect_human_capital", "ln_digital_pat_star", "ln_green_pat_star", "dual_scale", "rich", "clean",
)  # fmt: skip


@dataclass
class _Simulation:
    """Everything the DGP produced for a roster (long frames, one row per existing city-year)."""

    panel: pd.DataFrame
    cities: pd.DataFrame
    fund: dict[str, np.ndarray]
    exists: np.ndarray


def _simulate(
    roster_frame: pd.DataFrame,
    years: np.ndarray,
    rates: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    effects: dict[str, Any],
    policy: dict[str, Any],
    smart_city_list: Callable[[np.random.Generator, np.ndarray], pd.DataFrame],
    low_carbon: pd.DataFrame,
    missing_outcome: Callable[[np.random.Generator, np.ndarray], np.ndarray],
) -> tuple[_Simulation, pd.DataFrame]:
    """Run the DGP on `roster_frame` (a city master). `smart_city_list(rng, baseline)` returns the
    smart-city pilot list; `missing_outcome(rng, exists)` returns a boolean n x t mask of it_emp cells
    to blank."""
    roster = _Roster(
        codes=roster_frame["city_code"].to_numpy(),
        region4=roster_frame["region4"].to_numpy(),
        capital=roster_frame["is_provincial_capital"].to_numpy(int),
        municipality=roster_frame["is_municipality"].to_numpy(int),
        first_year=roster_frame["first_year"].to_numpy(int),
        last_year=roster_frame["last_year"].to_numpy(int),
    )
    exists = (roster.first_year[:, None] <= years[None, :]) & (
        years[None, :] <= roster.last_year[:, None]
    )
    fund = _fundamentals(np.random.default_rng(seeds[0]), roster, years, rates)
    base_gdp, base_so2 = _baseline(fund, years, effects["baseline_end"])
    smart_city = smart_city_list(np.random.default_rng(seeds[1]), base_gdp)

    ii, jj = np.nonzero(exists)
    skeleton = pd.DataFrame({"city_code": roster.codes[ii], "year": years[jj].astype("int64")})
    coded = code_treatment(
        skeleton,
        smart_city,
        low_carbon,
        roster_frame,
        sc_batch_years=policy["sc_batch_years"],
        lc_batch_years=policy["lc_batch_years"],
        province_pilot_treats_cities=bool(policy["province_pilot_treats_cities"]),
        subcity_pilot_treats_city=bool(policy["subcity_pilot_treats_city"]),
        last_year=int(years[-1]),
    )
    treat = _treatment_arrays(coded, roster.codes, years)
    out = _outcomes(np.random.default_rng(seeds[2]), fund, treat, exists, years, effects)

    it_emp = out.it_emp.copy()
    it_emp[missing_outcome(np.random.default_rng(seeds[3]), exists)] = np.nan
    take = (ii, jj)
    panel = coded.copy()
    meta = roster_frame.set_index("city_code")
    panel["city_name"] = meta.loc[panel["city_code"], "city_name"].to_numpy()
    panel["province"] = meta.loc[panel["city_code"], "province"].to_numpy()
    panel["region"] = meta.loc[panel["city_code"], "region3"].to_numpy()
    panel["region4"] = meta.loc[panel["city_code"], "region4"].to_numpy()
    for col in ("is_municipality", "is_provincial_capital"):
        panel[col] = meta.loc[panel["city_code"], col].to_numpy(int)
    for name in ("gdp", "population", "area", "total_emp", "secondary_share", "fiscal_exp", "fdi",
                 "loans", "so2", "green_cover"):  # fmt: skip
        panel[name] = fund[name][take]
    panel["it_emp"] = it_emp[take]
    panel["students"] = out.students[take]
    panel["digital_patents"] = out.digital[take]
    panel["green_patents"] = out.green[take]
    panel["lq_star"] = out.lq_star[take]
    panel["it_share"] = out.it_share[jj]
    panel["effect_lq"] = out.effect_lq[take]
    for name, arr in out.effects.items():
        panel[f"effect_{name}"] = arr[take]
    panel["ln_digital_pat_star"] = out.ln_dig_star[take]
    panel["ln_green_pat_star"] = out.ln_green_star[take]
    panel["dual_scale"] = out.dual_scale[ii]
    panel["rich"] = out.rich[ii]
    panel["clean"] = out.clean[ii]
    panel["lq"] = _realised_lq(panel["it_emp"], panel["total_emp"], panel["year"])
    # The true effects in the units of the realised lq = lq* / m_t: each component divided by m_t.
    panel["lq_star_national_mean"] = panel["year"].map(_national_mean_lq_star(panel))
    for name, part in out.effect_parts.items():
        panel[f"effect_{name}_lq"] = part[take] / panel["lq_star_national_mean"]
    cities = pd.DataFrame(
        {
            "city_code": roster.codes,
            "baseline_ln_gdp_pc": base_gdp,
            "baseline_so2_intensity": base_so2,
            "rich": out.rich,
            "clean": out.clean,
            "dual_scale": out.dual_scale,
        }
    )
    timing = coded.groupby("city_code")[["sc_year", "lc_year", "dual_year", "group"]].first()
    cities = cities.join(timing, on="city_code")
    sim = _Simulation(panel=panel, cities=cities, fund=fund, exists=exists)
    return sim, smart_city


def _national_mean_lq_star(panel: pd.DataFrame) -> pd.Series:
    """m_t by year: the total_emp-weighted mean of lq* over the city-years whose lq is observed, so that
    the realised lq = lq* / m_t (`location_quotient` on the generated values)."""
    w = panel["total_emp"].where(panel["lq"].notna())
    return (w * panel["lq_star"]).groupby(panel["year"]).sum() / w.groupby(panel["year"]).sum()


def _finish_panel(panel: pd.DataFrame, rates_by_year: pd.Series) -> pd.DataFrame:
    """Derived variables, column order and dtypes of the analysis panel (truth columns appended)."""
    panel = derive_variables(panel, rates_by_year)
    extra = [c for c in TRUTH_COLUMNS if c in panel.columns]
    out = panel[[*PANEL_COLUMNS, *extra]].sort_values(["city_code", "year"], kind="stable")
    out = out.reset_index(drop=True)
    for col in ("city_code", "city_name", "province", "region", "region4", "group"):
        out[col] = out[col].astype("str")
    for col in ("sc_post", "lc_post", "dual_post", "sc_only_post", "lc_only_post"):
        out[col] = out[col].astype("int64")
    out["year"] = out["year"].astype("int64")
    return out


def _summary(panel: pd.DataFrame, effects: dict[str, Any]) -> dict[str, Any]:
    """Planted and realised average effects on the truth panel.

    ``att_dual_lq`` and ``event_path_dual_lq`` are in the units of the realised lq (effect_dual_lq: the
    dual component divided by m_t), over the dual post city-years whose lq is observed; the path is the
    mean by years since the dual start (with the number of city-years). ``att_dual_lq_planted`` is the
    mean of the dual component in lq* units (before the division by m_t) over every dual post city-year."""
    dual = panel["dual_post"] == 1
    ever = panel.groupby("city_code")["dual_post"].transform("max") == 1
    obs = panel["lq"].notna()
    m_t = panel.groupby("year")["lq_star_national_mean"].first()

    def att(column: str, where: pd.Series) -> float:
        return float(panel.loc[where, column].mean())

    rich, clean = panel["rich"].astype(bool), panel["clean"].astype(bool)
    first = dual & (panel["years_since_dual"] == 0)
    treated = panel.loc[dual & obs]
    since = treated["years_since_dual"].astype(int)
    path = treated.groupby(since)["effect_dual_lq"].agg(["mean", "size"])
    return {
        "n_cities": int(panel["city_code"].nunique()),
        "n_city_years": len(panel),
        "n_dual_cities": int(panel.loc[ever, "city_code"].nunique()),
        "dual_cohorts": {
            str(int(k)): int(v)
            for k, v in panel.drop_duplicates("city_code")["dual_year"].value_counts().sort_index().items()
        },
        "groups": panel.drop_duplicates("city_code")["group"].value_counts().sort_index().to_dict(),
        "att_dual_lq": att("effect_dual_lq", dual & obs),
        "event_path_dual_lq": {
            str(e): {"effect": float(row["mean"]), "city_years": int(row["size"])}
            for e, row in path.iterrows()
        },
        "att_dual_lq_planted": att("effect_lq", dual),  # on dual rows effect_lq is the dual component
        "att_sc_only_lq": att("effect_sc_only_lq", panel["sc_only_post"] == 1),
        "att_lc_only_lq": att("effect_lc_only_lq", panel["lc_only_post"] == 1),
        "dual_lq_first_year_mean": att("effect_lq", first),
        "att_dual_lq_by_rich": {
            "rich": att("effect_dual_lq", dual & obs & rich),
            "poor": att("effect_dual_lq", dual & obs & ~rich),
        },
        "att_dual_lq_by_clean": {
            "clean": att("effect_dual_lq", dual & obs & clean),
            "dirty": att("effect_dual_lq", dual & obs & ~clean),
        },
        "att_dual_ln_digital_pat": att("effect_ln_digital_pat", dual),
        "att_dual_ln_green_pat": att("effect_ln_green_pat", dual),
        "att_dual_human_capital": att("effect_human_capital", dual),
        "max_abs_weighted_mean_lq_star_minus_1": float((m_t - 1).abs().max()),
        "max_abs_lq_print_minus_lq": float((panel["lq_print"] - panel["lq"]).abs().max()),
        "planted": effects,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Print layout (one style per file)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStyle:
    """How one yearbook table is printed (chosen per file; recorded in `DemoTruth.files`)."""

    table: str
    edition: int
    fmt: str  # "csv" or "xlsx"
    encoding: str | None  # "utf-8", "utf-8-sig", "gb18030" (None for xlsx)
    title_lines: tuple[str, ...]
    pad_title: bool  # CSV: title rows padded with empty cells to the table's width
    blank_after_title: bool
    header_cell: str
    headers: tuple[tuple[str, str], ...]  # (variable, printed header) in column order
    province_rows: bool
    total_rows: tuple[str, ...]
    note_rows: bool
    blank_rows: bool
    name_style: str  # official / short / mixed
    padding: str  # none / fullwidth / ascii / both
    thousands: bool
    markers: tuple[str, str]
    line_terminator: str
    numbers_as_text: bool  # XLSX: numbers written as text cells


_AliasIndex = dict[tuple[str, str], list[tuple[str, str, float, float]]]


def _alias_index(aliases: pd.DataFrame) -> _AliasIndex:
    """header_aliases.csv as {(table, variable): [(header, unit, first_edition, last_edition)]}."""
    for col in ("table", "variable", "header", "first_edition", "last_edition", "unit"):
        if col not in aliases.columns:
            raise ValueError(f"header aliases lack column {col!r}")
    lo = pd.to_numeric(aliases["first_edition"], errors="coerce").fillna(-math.inf)
    hi = pd.to_numeric(aliases["last_edition"], errors="coerce").fillna(math.inf)
    out: _AliasIndex = {}
    for t, v, h, u, a, b in zip(
        aliases["table"],
        aliases["variable"],
        aliases["header"],
        aliases["unit"],
        lo,
        hi,
        strict=True,
    ):
        out.setdefault((t, v), []).append((h, u, float(a), float(b)))
    return out


def _accepted(
    aliases: _AliasIndex, table: str, variable: str, edition: int
) -> list[tuple[str, str]]:
    """(header, unit) pairs accepted for `variable` in `edition`, in file order."""
    out = [(h, u) for h, u, lo, hi in aliases.get((table, variable), []) if lo <= edition <= hi]
    if not out:
        raise ValueError(
            f"header_aliases lists no header for {table}.{variable} in edition {edition}"
        )
    return out


def _bracket(header: str, unit: str, style: str) -> str:
    if style == "ascii":
        return f"{header}({unit})"
    if style == "fullwidth":
        return f"{header}（{unit}）"
    return header


def _style_for(
    rng: np.random.Generator,
    table: str,
    edition: int,
    k: int,
    aliases: _AliasIndex,
    always: str = "it_emp",
) -> FileStyle:
    """The layout of one file. Quirks cycle with the edition's index k so that a window of 12 or more
    editions shows every one of them; the rng picks details (industries, column order). The industry
    `always` is printed whether picked or not (the same draws either way)."""
    j = 0 if table == "employment" else 1
    xlsx = (k % 5 == 3) if j == 0 else (k % 5 == 1)
    encoding = None if xlsx else ("utf-8", "utf-8-sig", "gb18030")[(k + j) % 3]
    n_titles = 1 + (k + 2 * j) % 5
    markers = (MISSING_MARKERS[(k + j) % 6], MISSING_MARKERS[(k + j + 3) % 6])
    bracket_styles = ("none", "ascii", "fullwidth", "mixed")
    if table == "employment":
        titles = [
            "2-6 按行业分城镇单位从业人员（全市）",
            "单位：万人",
            "Number of Employed Persons in Urban Units by Sector (Total City)",
            "(10 000 persons)",
            f"中国城市统计年鉴{edition}",
        ]
        total_opts = _accepted(aliases, table, "total_emp", edition)
        total_header, unit = total_opts[k % len(total_opts)]
        it_header, _ = _accepted(aliases, table, "it_emp", edition)[0]
        it_header = it_header.replace("、", _IT_SEPARATORS[k % 4])
        headers = [("total_emp", _bracket(total_header, unit, "ascii" if k % 4 == 1 else "none"))]
        extras = [v for v in _INDUSTRY_WEIGHTS if (table, v) in aliases]
        n_extra = 2 + k % 4
        picked = set(
            rng.choice(len(extras), size=min(n_extra, len(extras)), replace=False).tolist()
        )
        industry_cols = []
        for pos, v in enumerate(extras):
            if v == "emp_pifa_lingshou":  # the IT column stands among the industries in book order
                industry_cols.append(("it_emp", it_header))
            if pos in picked or v == always:
                industry_cols.append((v, _accepted(aliases, table, v, edition)[0][0]))
        if not any(v == "it_emp" for v, _ in industry_cols):
            industry_cols.append(("it_emp", it_header))
        headers += industry_cols
    else:
        titles = [
            "2-1 综合经济、人口与环境主要指标（全市）",
            "Main Indicators of Economy, Population and Environment (Total City)",
            "单位：见各栏",
            f"中国城市统计年鉴{edition}",
            "（按地区分列）",
        ]
        style = bracket_styles[k % 4]
        headers = []
        for pos, v in enumerate(ECONOMY_VARIABLES):
            opts = _accepted(aliases, table, v, edition)
            header, unit = opts[(k + pos) % len(opts)]
            s = style if style != "mixed" else ("ascii", "fullwidth", "none")[pos % 3]
            headers.append((v, _bracket(header, unit, s)))
        if k % 2 == 0:
            headers = [headers[i] for i in rng.permutation(len(headers))]
    # Keep the first title line as the table title and the others in their listed order.
    title_lines = tuple(titles[:n_titles])
    return FileStyle(
        table=table,
        edition=edition,
        fmt="xlsx" if xlsx else "csv",
        encoding=encoding,
        title_lines=title_lines,
        pad_title=k % 2 == 0,
        blank_after_title=k % 3 == 2,
        header_cell=HEADER_FIRST_CELLS[(k + 2 * j) % 3],
        headers=tuple(headers),
        province_rows=(k + j) % 2 == 0,
        total_rows=(TOTAL_ROWS[(k + j) % 3],),
        note_rows=k % 4 != 2,
        blank_rows=(k + j) % 3 != 1,
        name_style=("official", "short", "mixed")[(k + j) % 3],
        padding=("none", "fullwidth", "ascii", "both")[k % 4],
        thousands=table == "economy" and k % 3 == 1,
        markers=markers,
        line_terminator="\r\n" if (k + j) % 2 else "\n",
        numbers_as_text=xlsx and k % 2 == 0,
    )


def _printed_names(master: pd.DataFrame, crosswalk: pd.DataFrame, year: int) -> dict[str, str]:
    """The name each city bears in data year `year`: a historical or official crosswalk name valid in
    that year (historical first), else the master's name."""
    cw = crosswalk[crosswalk["kind"].isin(["official", "historical"])]
    lo = pd.to_numeric(cw["first_year"], errors="coerce").fillna(-math.inf)
    hi = pd.to_numeric(cw["last_year"], errors="coerce").fillna(math.inf)
    cw = cw[(lo <= year) & (year <= hi)]
    out = dict(zip(master["city_code"], master["city_name"], strict=True))
    for kind in ("official", "historical"):  # historical overrides
        sub = cw[cw["kind"] == kind]
        out.update(dict(zip(sub["city_code"], sub["name"], strict=True)))
    return out


def _style_name(name: str, style: FileStyle, rng: np.random.Generator) -> str:
    """Apply the file's name style: suffix 市 kept or dropped, padding with ASCII or full-width spaces."""
    short = name.removesuffix("市") if len(name) > 2 else name
    if style.name_style == "short" or (style.name_style == "mixed" and rng.random() < 0.5):
        name = short
    if style.padding in ("fullwidth", "both") and len(name) == 2:
        name = name[0] + "\u3000" + name[1]
    elif style.padding in ("ascii", "both") and len(name) == 3 and rng.random() < 0.5:
        name = " ".join(name)
    if rng.random() < 0.05:
        name = f" {name} "
    return name


def _fmt(value: float, decimals: int, thousands: bool) -> str:
    if decimals == 0:
        return f"{int(value):,d}" if thousands else f"{int(value):d}"
    return f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"


def _round(x: np.ndarray | float, decimals: int) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float), decimals)


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


def _table_rows(
    style: FileStyle,
    cities: pd.DataFrame,
    values: dict[str, np.ndarray],
    missing: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> list[list[object]]:
    """The rows of one file (title lines, header, body), cells as str (CSV) or numbers (XLSX).

    `cities` has columns city_code, name, province, municipality (in print order); `values[v]` holds the rounded values
    and `missing[v]` the cells to print with a missing marker.
    """
    width = 1 + len(style.headers)
    xlsx = style.fmt == "xlsx"
    rows: list[list[object]] = []
    for title in style.title_lines:
        rows.append([title] + ([""] * (width - 1) if style.pad_title and not xlsx else []))
    if style.blank_after_title:
        rows.append([])
    rows.append([style.header_cell] + [h for _, h in style.headers])
    variables = [v for v, _ in style.headers]

    def cell(v: str, x: float) -> object:
        d = PRINT_DECIMALS.get(v, 2)
        if xlsx and not style.numbers_as_text:
            return int(x) if d == 0 else float(x)
        return _fmt(x, d, style.thousands)

    def total_row(label: str, idx: np.ndarray) -> list[object]:
        out: list[object] = [label]
        for v in variables:
            x = values[v][idx]
            ok = ~missing[v][idx]
            if v in _SHARE_VARIABLES:
                agg = float(np.round(x[ok].mean(), 2)) if ok.any() else math.nan
            else:
                agg = float(np.round(x[ok].sum(), PRINT_DECIMALS.get(v, 2)))
            out.append("" if math.isnan(agg) else cell(v, agg))
        return out

    everyone = np.arange(len(cities))
    if "全国" in style.total_rows:
        rows.append(total_row("全国", everyone))
    province = cities["province"].to_numpy()
    is_municipality = cities["municipality"].to_numpy(bool)
    names = cities["name"].tolist()
    value_lists = {v: values[v].tolist() for v in variables}
    missing_lists = {v: missing[v].tolist() for v in variables}
    provinces = list(dict.fromkeys(province))
    for p in provinces:
        idx = np.flatnonzero(province == p)
        municipality = bool(is_municipality[idx].all())
        if style.province_rows and not municipality:
            rows.append([p] + ([""] * (width - 1) if not xlsx else []))
        for i in idx.tolist():
            row: list[object] = [names[i]]
            for v in variables:
                if missing_lists[v][i]:
                    marker = style.markers[int(rng.integers(2))]
                    row.append(None if (xlsx and marker == "") else marker)
                else:
                    row.append(cell(v, value_lists[v][i]))
            rows.append(row)
        if "全省" in style.total_rows and not municipality:
            rows.append(total_row("全省", idx))
        if style.blank_rows and p == provinces[len(provinces) // 2]:
            rows.append([""] * width if style.pad_title and not xlsx else [])
    if "合计" in style.total_rows:
        rows.append(total_row("合计", everyone))
    if style.note_rows:
        rows.append(["注：本表为全市口径；“—”等符号表示数据缺失。"])
        rows.append(["注2：演示数据（合成），非真实统计。"])
    if style.blank_rows:
        rows.append([])
    return rows


def _write_csv(path: Path, rows: list[list[object]], style: FileStyle) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=style.line_terminator, quoting=csv.QUOTE_MINIMAL)
    for r in rows:
        writer.writerow(["" if c is None else c for c in r])
    path.write_bytes(buf.getvalue().encode(style.encoding or "utf-8"))


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    """Write an XLSX whose bytes depend only on `rows` (fixed timestamps), data on the first sheet."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "表"
    for r in rows:
        ws.append([None if c == "" else c for c in r] if r else [])
    notes = wb.create_sheet("说明")
    notes.append(["演示数据：合成数值，非真实统计。The data sheet is the first sheet."])
    raw = io.BytesIO()
    wb.save(raw)
    stamp = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = stamp.sub(rb"\g<1>" + _FIXED_XLSX_STAMP.encode() + rb"\g<2>", data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME), data,
                         compress_type=zipfile.ZIP_DEFLATED)  # fmt: skip
    path.write_bytes(out.getvalue())


def _write_policy(path: Path, pilots: pd.DataFrame) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["batch", "name", "level", "province", "city_code", "source"])
    for r in pilots.itertuples(index=False):
        writer.writerow([r.batch, r.name, r.level, r.province, r.city_code, r.source])
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _write_patents(path: Path, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["city_code", "year", "digital_patents", "green_patents"])
    for r in frame.itertuples(index=False):
        writer.writerow([r.city_code, int(r.year), int(r.digital_patents), int(r.green_patents)])
    path.write_bytes(buf.getvalue().encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------
# Missing cells
# ---------------------------------------------------------------------------------------------------------


def _missing_outcome_cells(
    n_cities: int,
) -> Callable[[np.random.Generator, np.ndarray], np.ndarray]:
    """A callback blanking it_emp of `n_cities` cities (present all years, not municipalities) in one
    inner year each."""

    def draw(rng: np.random.Generator, exists: np.ndarray) -> np.ndarray:
        mask = np.zeros_like(exists)
        full = np.flatnonzero(exists.all(axis=1))
        if n_cities == 0:
            return mask
        if len(full) < n_cities or exists.shape[1] < 3:
            raise ValueError("too few cities or years to plant missing outcomes")
        for i in rng.choice(full, size=n_cities, replace=False):
            mask[i, int(rng.integers(1, exists.shape[1] - 1))] = True
        return mask

    return draw


def _missing_inputs(
    rng: np.random.Generator, exists: np.ndarray, population: np.ndarray
) -> dict[str, np.ndarray]:
    """n x t masks of genuinely missing non-outcome cells: fdi in 2-4 small cities every year, so2 and
    green_cover in a few cells, and about 0.4 % of the patent city-years."""
    n, nt = exists.shape
    small = population[:, 0] <= np.quantile(population[:, 0], 0.25)
    masks = {
        name: np.zeros((n, nt), dtype=bool) for name in ("fdi", "so2", "green_cover", "patents")
    }
    for j in range(nt):
        pool = np.flatnonzero(small & exists[:, j])
        masks["fdi"][rng.choice(pool, size=int(rng.integers(2, 5)), replace=False), j] = True
        for name in ("so2", "green_cover"):
            if rng.random() < 0.5:
                masks[name][rng.choice(np.flatnonzero(exists[:, j])), j] = True
    cells = np.flatnonzero(exists.ravel())
    k = max(3, round(0.004 * len(cells)))
    masks["patents"].ravel()[rng.choice(cells, size=k, replace=False)] = True
    return masks


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------


def generate_demo(
    out_dir: str | Path,
    *,
    master: pd.DataFrame,
    crosswalk: pd.DataFrame,
    aliases: pd.DataFrame,
    low_carbon: pd.DataFrame,
    usd_cny: pd.Series | pd.DataFrame,
    years: tuple[int, int] = (2006, 2023),
    seed: int,
    effects: Mapping[str, Any],
    policy: Mapping[str, Any],
    smart_city: Mapping[str, Any] | None = None,
    scale: Mapping[str, Any] | None = None,
    outcome_industry: str = DEFAULT_OUTCOME_INDUSTRY,
) -> DemoTruth:
    """Write demo yearbook extracts for the real city roster into `out_dir` and return the truth.

    Args:
        out_dir: the raw directory to write; it must not exist or be empty (so real extracts are
            never mixed with or overwritten by demo files).
        master: the city master (`dualpilot.data.reference.load_city_master`).
        crosswalk: the name crosswalk as a frame (columns name, city_code, kind, first_year, last_year).
        aliases: resources/yearbook/header_aliases.csv as a frame (table, variable, header,
            first_edition, last_edition, unit).
        low_carbon: the real low-carbon list (`dualpilot.data.reference.load_pilot_list`).
        usd_cny: CNY per USD by year (`dualpilot.data.reference.load_usd_cny`), used to express FDI in 万美元.
        years: first and last data year (editions are years + 1).
        seed: the only source of randomness.
        effects: planted effects, exactly the keys of `DEFAULT_EFFECTS`.
        policy: treatment rules as `dualpilot.data.treatment.code_treatment` takes them: sc_batch_years,
            lc_batch_years, province_pilot_treats_cities, subcity_pilot_treats_city.
        smart_city: settings of the synthetic smart-city list (`DEFAULT_SMART_CITY` if None).
        scale: must be None. County-scale raw extracts cannot pass the city crosswalk (synthetic unit
            names are unknown to it); use `generate_panel` for an analysis-ready panel of any size.
        outcome_industry: the industry whose location quotient the panel's lq will be (config
            outcome_industry): its column is printed in every edition, as the IT sector's always is;
            the other industries' columns are a random few per edition. The default (it_emp) adds
            nothing, so the default extracts do not depend on this argument; another industry's
            values are those it has when picked (they depend on no random draw).

    Returns:
        The `DemoTruth`. Raises ValueError on bad arguments (naming them).
    """
    if scale is not None:
        raise ValueError(
            "generate_demo writes yearbook extracts for the real city roster only: synthetic county-scale "
            "names would not pass the city crosswalk of the ingestion. For a large panel use "
            "dualpilot.demo.extracts.generate_panel(n_units, n_years, seed, effects, usd_cny=...)."
        )
    if outcome_industry != DEFAULT_OUTCOME_INDUSTRY and outcome_industry not in _INDUSTRY_WEIGHTS:
        raise ValueError(
            f"outcome_industry {outcome_industry!r} is not an industry of the demo: "
            f"it_emp or one of {', '.join(_INDUSTRY_WEIGHTS)}"
        )
    effects = validate_effects(effects)
    policy = _validate_policy(policy)
    sc_settings = _validate_smart_city(smart_city)
    start, end = int(years[0]), int(years[1])
    if end < start + 2:
        raise ValueError(f"years must span at least three years, got {years}")
    year_values = np.arange(start, end + 1)
    rates = _rates(usd_cny, year_values)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(
            f"refusing to write demo extracts into {out}: it exists and is not an empty directory"
        )
    master = master.sort_values("city_code", kind="stable").reset_index(drop=True)
    for col in ("first_year", "last_year", "is_municipality", "is_provincial_capital"):
        master[col] = master[col].astype(int)
    seeds = np.random.SeedSequence(seed).spawn(5)

    sim, sc_pilots = _simulate(
        master,
        year_values,
        rates,
        seeds,
        effects,
        policy,
        lambda rng, base: _synthetic_smart_city(
            rng, master, base, sc_settings, policy["sc_batch_years"]
        ),
        low_carbon,
        _missing_outcome_cells(2),
    )
    panel = sim.panel
    n, nt = sim.exists.shape
    pos = pd.Series(np.arange(n), index=master["city_code"].to_numpy())
    ii = pos.loc[panel["city_code"]].to_numpy()
    jj = panel["year"].to_numpy(int) - start
    # Missing non-outcome cells (the fourth seed child: continue its stream after the outcome cells).
    miss_rng = np.random.default_rng(seeds[3].spawn(1)[0])
    masks = _missing_inputs(miss_rng, sim.exists, sim.fund["population"])
    for name in ("fdi", "so2", "green_cover"):
        panel.loc[masks[name][ii, jj], name] = np.nan
    lost = masks["patents"][ii, jj]
    panel.loc[lost, ["digital_patents", "green_patents"]] = np.nan

    for sub in ("employment", "economy", "policy"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    style_rng = np.random.default_rng(seeds[4])
    files, printed_emp = _write_tables(
        out,
        panel,
        master,
        crosswalk,
        aliases,
        year_values,
        style_rng,
        sim.fund,
        ii,
        jj,
        always=outcome_industry,
    )
    panel["lq_print"] = _realised_lq(printed_emp["it_emp"], printed_emp["total_emp"], panel["year"])
    _write_patents(
        out / "patents.csv",
        panel.loc[~lost, ["city_code", "year", "digital_patents", "green_patents"]].sort_values(
            ["city_code", "year"], kind="stable"
        ),
    )
    _write_policy(out / "policy" / "smart_city_pilots.csv", sc_pilots)

    final = _finish_panel(panel, pd.Series(rates, index=year_values))
    missing = _missing_frame(final, masks, ii, jj, lost)
    return DemoTruth(
        panel=final,
        cities=sim.cities.merge(master[["city_code", "city_name"]], on="city_code"),
        smart_city_pilots=sc_pilots,
        effects=effects,
        summary=_summary(final, effects),
        missing=missing,
        files=files,
    )


def _missing_frame(
    panel: pd.DataFrame,
    masks: dict[str, np.ndarray],
    ii: np.ndarray,
    jj: np.ndarray,
    lost: np.ndarray,
) -> pd.DataFrame:
    rows = []
    for name, where in (("fdi", "economy"), ("so2", "economy"), ("green_cover", "economy")):
        hit = masks[name][ii, jj]
        rows += [
            (c, int(y), name, where)
            for c, y in panel.loc[hit, ["city_code", "year"]].itertuples(index=False)
        ]
    hit = panel["it_emp"].isna().to_numpy()
    rows += [
        (c, int(y), "it_emp", "employment")
        for c, y in panel.loc[hit, ["city_code", "year"]].itertuples(index=False)
    ]
    rows += [
        (c, int(y), "patents", "patents.csv")
        for c, y in panel.loc[lost, ["city_code", "year"]].itertuples(index=False)
    ]
    return pd.DataFrame(rows, columns=["city_code", "year", "variable", "where"])  # fmt: skip


def _write_tables(
    out: Path,
    panel: pd.DataFrame,
    master: pd.DataFrame,
    crosswalk: pd.DataFrame,
    aliases: pd.DataFrame,
    years: np.ndarray,
    rng: np.random.Generator,
    fund: dict[str, np.ndarray],
    ii: np.ndarray,
    jj: np.ndarray,
    always: str = "it_emp",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write every edition's two tables; return the file list and the printed (rounded) employment.
    `always`: an industry printed in every edition (besides it_emp, which always is)."""
    alias_index = _alias_index(aliases)
    records = []
    printed = pd.DataFrame(index=panel.index, columns=["it_emp", "total_emp"], dtype=float)
    mix = fund["industry_mix"] * np.array(list(_INDUSTRY_WEIGHTS.values()))[None, :]
    mix = mix / mix.sum(axis=1, keepdims=True)
    munis = master.set_index("city_code")["is_municipality"] == 1
    for k, year in enumerate(years):
        edition = int(year) + 1
        rows_idx = np.flatnonzero(panel["year"].to_numpy() == year)
        sub = panel.iloc[rows_idx]
        names = _printed_names(master, crosswalk, int(year))
        city_i = ii[rows_idx]
        order = np.argsort(sub["city_code"].to_numpy(), kind="stable")
        rows_idx, sub, city_i = rows_idx[order], sub.iloc[order], city_i[order]
        for table in ("employment", "economy"):
            style = _style_for(rng, table, edition, k, alias_index, always=always)
            plain = [names[c] for c in sub["city_code"]]
            cities = pd.DataFrame(
                {
                    "city_code": sub["city_code"].to_numpy(),
                    "province": sub["province"].to_numpy(),
                    "municipality": munis.loc[sub["city_code"]].to_numpy(bool),
                    "name": [_style_name(p, style, rng) for p in plain],
                }
            )
            values: dict[str, np.ndarray] = {}
            missing: dict[str, np.ndarray] = {}
            for v, _ in style.headers:
                if v.startswith("emp_"):
                    col = list(_INDUSTRY_WEIGHTS).index(v)
                    rest = (sub["total_emp"] - sub["it_emp"].fillna(0.0)).to_numpy()
                    x = rest * mix[city_i, col]
                    miss = np.zeros(len(sub), dtype=bool)
                    if v == "emp_caikuang":  # cities without mining print a marker
                        miss = fund["industry_mix"][city_i, col] < np.quantile(
                            fund["industry_mix"][:, col], 0.02
                        )
                else:
                    x = sub[v].to_numpy(dtype=float)
                    miss = np.isnan(x)
                values[v] = _round(np.nan_to_num(x), PRINT_DECIMALS.get(v, 2))
                missing[v] = miss
            if table == "employment":
                for v in ("it_emp", "total_emp"):
                    printed.loc[sub.index, v] = np.where(missing[v], np.nan, values[v])
            rows = _table_rows(style, cities, values, missing, rng)
            rel = f"{table}/ccsy_{edition}.{style.fmt}"
            if style.fmt == "xlsx":
                _write_xlsx(out / rel, rows)
            else:
                _write_csv(out / rel, rows, style)
            records.append(
                {
                    "path": rel,
                    "table": table,
                    "edition": edition,
                    "format": style.fmt,
                    "encoding": style.encoding,
                    "title_lines": len(style.title_lines),
                    "header_cell": style.header_cell,
                    "headers": [h for _, h in style.headers],
                    "province_rows": style.province_rows,
                    "total_rows": list(style.total_rows),
                    "note_rows": style.note_rows,
                    "blank_rows": style.blank_rows,
                    "name_style": style.name_style,
                    "padding": style.padding,
                    "thousands": style.thousands,
                    "markers": list(style.markers),
                    "numbers_as_text": style.numbers_as_text,
                }
            )
    return pd.DataFrame(records), printed


def generate_panel(
    n_units: int,
    n_years: int,
    seed: int,
    effects: Mapping[str, Any],
    *,
    usd_cny: pd.Series | pd.DataFrame,
    start_year: int = 2006,
    policy: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """An analysis-ready synthetic panel of `n_units` units x `n_years` years (e.g. county scale).

    Same DGP as `generate_demo` on a synthetic roster: units get 6-digit codes 9xxxxx, 31 synthetic
    provinces with one capital each, regions in the real proportions; smart-city pilots are drawn per
    batch in the demo's proportions (37/40/30 of 298 cities) with richer units likelier, low-carbon
    pilots uniformly at random (22 %, 12 % and 12 % of units in batches 1-3), both coded by
    `dualpilot.data.treatment.code_treatment`. Every unit exists in every year; nothing is missing. Returns
    the analysis-panel columns plus the truth columns (lq_star, effect_lq, ...); ``lq_print`` is absent.
    """
    if n_units < 40 or n_units > 99_999:
        raise ValueError(f"n_units must be between 40 and 99,999, got {n_units}")
    if n_years < 3:
        raise ValueError(f"n_years must be >= 3, got {n_years}")
    effects = validate_effects(effects)
    policy = _validate_policy(DEFAULT_POLICY if policy is None else policy)
    year_values = np.arange(start_year, start_year + n_years)
    rates = _rates(usd_cny, year_values)
    seeds = np.random.SeedSequence(seed).spawn(5)
    roster = _synthetic_roster(
        np.random.default_rng(seeds[4]), n_units, start_year, year_values[-1]
    )
    shares = {1: 0.22, 2: 0.12, 3: 0.12}
    sizes = {
        b: round(m * n_units / 298) for b, m in DEFAULT_SMART_CITY["prefecture_pilots"].items()
    }

    def smart_city_list(rng: np.random.Generator, base: np.ndarray) -> pd.DataFrame:
        settings = {
            "prefecture_pilots": sizes,
            "subcity_entries": 0,
            "gdp_tilt": DEFAULT_SMART_CITY["gdp_tilt"],
        }
        return _synthetic_smart_city(rng, roster, base, settings, policy["sc_batch_years"])

    lc_rng = np.random.default_rng(seeds[1].spawn(1)[0])
    draw = lc_rng.permutation(n_units)
    cut = np.cumsum([0] + [round(shares[b] * n_units) for b in (1, 2, 3)])
    low_carbon = pd.DataFrame(
        [
            (b, roster["city_name"].iat[i], "prefecture", roster["province"].iat[i], roster["city_code"].iat[i], SYNTHETIC_SOURCE)
            for b in (1, 2, 3)
            for i in np.sort(draw[cut[b - 1] : cut[b]])
        ],
        columns=["batch", "name", "level", "province", "city_code", "source"],
    )  # fmt: skip
    sim, _ = _simulate(
        roster, year_values, rates, seeds, effects, policy, smart_city_list, low_carbon,
        _missing_outcome_cells(0),
    )  # fmt: skip
    return _finish_panel(sim.panel, pd.Series(rates, index=year_values))


def _synthetic_roster(
    rng: np.random.Generator, n_units: int, first_year: int, last_year: int
) -> pd.DataFrame:
    """A synthetic city master: 31 provinces with regions in the real proportions, one capital each."""
    regions = np.array(["east"] * 10 + ["central"] * 6 + ["northeast"] * 3 + ["west"] * 12)
    region3 = {"east": "east", "central": "central", "northeast": "central", "west": "west"}
    province = np.sort(rng.integers(0, 31, n_units))
    province[:31] = np.arange(31)  # every province has a unit
    province = np.sort(province)
    capital = np.r_[1, (province[1:] != province[:-1]).astype(int)]
    codes = np.array([f"9{i:05d}" for i in range(1, n_units + 1)])
    return pd.DataFrame(
        {
            "city_code": codes,
            "city_name": [f"U{c}" for c in codes],
            "province": [f"P{p:02d}" for p in province],
            "region4": regions[province],
            "region3": [region3[r] for r in regions[province]],
            "is_municipality": 0,
            "is_provincial_capital": capital,
            "first_year": first_year,
            "last_year": int(last_year),
        }
    )
