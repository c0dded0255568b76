"""Heterogeneity of the dual-pilot effect by pre-policy city characteristics.

Groups (`baseline_groups`) are fixed per city from baselines that the policy cannot have moved: city
averages over the years before `before` (2010 by default; the first dual year is 2012):

- development: ln GDP per capita (``ln_gdp_pc``), ``high`` strictly above the median of the city
  averages, ``low`` at or below it;
- environment: SO2 emission intensity (``so2/gdp``, the yearly ratio averaged), ``clean`` at or below the
  median (the better environmental base), ``dirty`` above;
- greening (alternative environmental base): green coverage (``green_cover``), ``high`` / ``low``;
- region: the ``region`` column (east, central, west), which must be constant within a city.

A city without a baseline value (no usable year before `before`) or with a region outside the listed
groups gets no label and is left out of that dimension (logged). The dimensions are data
(`Dimension`, `dimensions_from_config`), so the config can change variables, labels or the year.

For each dimension (`heterogeneity`):

1. split-sample estimates of y ~ D + controls | city + year (CRV1 by city), model "<dimension>: <group>";
2. the interaction model on the pooled labelled sample, y ~ D + sum_g D×1[group = g] + controls | city +
   year with the last listed group as the base: term ``<D>_x_<dimension>_<group>`` is the effect in that
   group minus the base group's (common control coefficients and year effects), model
   "<dimension>: interaction", with a ``lincom: <a> - <b>`` row for every pair of groups;
3. a Fisher permutation test of every between-group gap d = b_a - b_b of the split-sample coefficients,
   with the semantics of Stata's ``bdiff`` (Lian Yujun 连玉君, v1.04; 连玉君 & 廖俊平 2017) for panel
   models: the group labels are permuted ACROSS CITIES (a city keeps one label for all its years, and the
   number of cities per group is kept), both subsamples are re-estimated, and the empirical p-value is
   one-sided in the direction of the observed gap, as bdiff's (#{d* >= d} / N, 1 - that when above
   0.5), but with the +1 rule of `dualpilot.engines.resampling`: p = (1 + #{d* at least as far out as d on
   its side}) / (1 + N), so it is never 0 (bdiff itself has no +1 correction). The two-sided
   (1 + #{|d*| >= |d|}) / (1 + N) is reported alongside
   (`bdiff_pvalue(..., alternative="two-sided")`). For three groups each pair is tested on its own, on
   the cities of the two groups (as bdiff run on that subsample), gap = first minus second in the listed
   order. Rows: model "<dimension>: bdiff <a> vs <b>", terms ``bdiff: <a> - <b>`` (estimate = the
   observed gap, p_value = bdiff's p) and ``bdiff (two-sided): <a> - <b>``.

Randomness: draw d of comparison (dimension, a, b) uses only
``np.random.default_rng(np.random.SeedSequence([seed, 202, crc32(dimension), crc32(a), crc32(b), d]))``,
so `bdiff_draws(..., draws=range(i, j))` computed in shards gathers to the same result. Draws are
re-estimated on the fast FWL path of `dualpilot.engines.twfe.TwfeDesign` (checked against
`estimation.fit`); ``engine="fit"`` uses `estimation.fit` itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from dualpilot.core.errors import require_columns
from dualpilot.engines import estimation as est
from dualpilot.engines import resampling
from dualpilot.engines.estimation import EstimationError
from dualpilot.engines.twfe import Engine, TwfeDesign

log = logging.getLogger(__name__)

Split = Literal["median", "category"]
Alternative = Literal["bdiff", "two-sided", "greater", "less"]

BDIFF_STREAM = 202
"""Stream id in every permutation draw's seed; never change."""
BDIFF_PREFIX = "bdiff: "
BDIFF_TWO_SIDED_PREFIX = "bdiff (two-sided): "
RESERVED_GROUPS = frozenset({"interaction", "bdiff"})
"""Names a group cannot take (they name the interaction and test models)."""
DEFAULT_BEFORE = 2010
DEFAULT_DRAWS = 1000


@dataclass(frozen=True)
class Dimension:
    """One heterogeneity dimension.

    Attributes:
        name: used in model names ("<name>: <group>") and seeds.
        split: "median" (two groups split at the median of the city baselines of `variable`) or
            "category" (groups are the values of the city-constant column `variable`).
        variable: a column, or for a median split a ratio of two columns written "num/den".
        groups: the group labels; their order fixes the sign of every gap (first minus second) and the
            base of the interaction model (the last group).
        above: median split only: which group holds the cities strictly above the median (the other
            holds those at or below it).
    """

    name: str
    split: Split
    variable: str
    groups: tuple[str, ...]
    above: str | None = None

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"dimension name {self.name!r} must be non-empty and without ':'")
        if self.split not in ("median", "category"):
            raise ValueError(
                f"{self.name}: split must be 'median' or 'category', not {self.split!r}"
            )
        groups = tuple(str(g) for g in self.groups)
        if len(groups) < 2 or len(set(groups)) != len(groups):
            raise ValueError(f"{self.name}: need at least two distinct groups, got {groups}")
        bad = [g for g in groups if not g or ":" in g or g.split(" ")[0] in RESERVED_GROUPS]
        if bad:
            raise ValueError(
                f"{self.name}: group names must be non-empty, without ':' and not "
                f"{sorted(RESERVED_GROUPS)}: {bad}"
            )
        if self.split == "median":
            if len(groups) != 2:
                raise ValueError(f"{self.name}: a median split has exactly two groups")
            if self.above not in groups:
                raise ValueError(f"{self.name}: above must be one of {groups}, not {self.above!r}")
            if self.variable.count("/") > 1 or not all(self.variable.split("/")):
                raise ValueError(f"{self.name}: variable must be 'col' or 'num/den'")
        elif self.above is not None:
            raise ValueError(f"{self.name}: above is only for median splits")

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every pair (a, b) of groups, a listed before b: the tested gaps b_a - b_b."""
        g = self.groups
        return [(g[i], g[j]) for i in range(len(g)) for j in range(i + 1, len(g))]

    @property
    def below(self) -> str:
        """Median split: the group at or below the median."""
        if self.split != "median":
            raise ValueError(f"{self.name} is not a median split")
        return next(g for g in self.groups if g != self.above)


DEFAULT_DIMENSIONS: dict[str, Dimension] = {
    "development": Dimension("development", "median", "ln_gdp_pc", ("high", "low"), "high"),
    "environment": Dimension("environment", "median", "so2/gdp", ("clean", "dirty"), "dirty"),
    "greening": Dimension("greening", "median", "green_cover", ("high", "low"), "high"),
    "region": Dimension("region", "category", "region", ("east", "central", "west")),
}
"""The study's dimensions (config ``heterogeneity: dimensions:``)."""


def dimensions_from_config(
    config: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, Dimension]:
    """Dimensions from a config mapping {name: {split, variable, groups, above}}; None: the defaults.

    Unknown keys raise ValueError.
    """
    if config is None:
        return dict(DEFAULT_DIMENSIONS)
    out = {}
    for name, spec in config.items():
        if isinstance(spec, Dimension):
            out[name] = spec
            continue
        unknown = set(spec) - {"split", "variable", "groups", "above"}
        if unknown:
            raise ValueError(f"dimension {name!r}: unknown key(s) {sorted(unknown)}")
        out[name] = Dimension(
            name=name,
            split=spec["split"],
            variable=spec["variable"],
            groups=tuple(spec["groups"]),
            above=spec.get("above"),
        )
    if not out:
        raise ValueError("no heterogeneity dimension given")
    return out


def _dims(dimensions: Mapping[str, Any] | None) -> dict[str, Dimension]:
    """Dimension objects from objects, a config mapping, or None (the defaults)."""
    if dimensions is not None and all(isinstance(d, Dimension) for d in dimensions.values()):
        return dict(dimensions)
    return dimensions_from_config(dimensions)


def _dimension(dimension: str | Dimension, dimensions: Mapping[str, Dimension] | None) -> Dimension:
    if isinstance(dimension, Dimension):
        return dimension
    dims = DEFAULT_DIMENSIONS if dimensions is None else dimensions
    if dimension not in dims:
        raise ValueError(f"unknown dimension {dimension!r}; known: {list(dims)}")
    return dims[dimension]


# --------------------------------------------------------------------------------------------------
# Groups from pre-policy baselines
# --------------------------------------------------------------------------------------------------


def baseline_values(
    panel: pd.DataFrame,
    variable: str,
    *,
    before: int = DEFAULT_BEFORE,
    unit: str = "city_code",
    time: str = "year",
) -> pd.Series:
    """City average of `variable` ("col" or "num/den", the ratio taken year by year) over the rows with
    time < `before`; missing and non-finite values are skipped; NaN for a city without any."""
    parts = variable.split("/")
    require_columns(panel, [*parts, unit, time], f"the panel for the baseline of {variable!r}")
    pre = panel.loc[pd.to_numeric(panel[time]) < before]
    num = pd.to_numeric(pre[parts[0]], errors="raise").astype("float64")
    if len(parts) == 2:
        den = pd.to_numeric(pre[parts[1]], errors="raise").astype("float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            num = num / den
    num = num.where(np.isfinite(num))
    cities = pd.Index(sorted(panel[unit].unique()), name=unit)
    return num.groupby(pre[unit]).mean().reindex(cities).rename(variable)


def _category_values(panel: pd.DataFrame, column: str, unit: str) -> pd.Series:
    require_columns(panel, [column, unit], f"the panel for category {column!r}")
    per_city = panel.groupby(unit)[column]
    varying = per_city.nunique(dropna=True)
    if (varying > 1).any():
        raise EstimationError(
            f"{column!r} varies within {unit!r}, e.g. {varying[varying > 1].index[:5].tolist()}"
        )
    return per_city.first().astype("str").where(per_city.first().notna())


def baseline_groups(
    panel: pd.DataFrame,
    dimensions: Mapping[str, Dimension] | None = None,
    *,
    before: int = DEFAULT_BEFORE,
    unit: str = "city_code",
    time: str = "year",
) -> pd.DataFrame:
    """One row per city (index `unit`): its group in each dimension (missing if unassigned) and, for
    median splits, the baseline value in column "<dimension>_baseline".

    Only rows with time < `before` enter a median split, so values after it cannot move a city.
    """
    dims = _dims(dimensions)
    cities = pd.Index(sorted(panel[unit].unique()), name=unit)
    out = pd.DataFrame(index=cities)
    for name, dim in dims.items():
        if dim.split == "median":
            base = baseline_values(panel, dim.variable, before=before, unit=unit, time=time)
            ok = base.notna()
            if not ok.any():
                raise EstimationError(
                    f"{name}: no city has a baseline {dim.variable} before {before}"
                )
            median = float(np.median(base[ok]))
            labels = pd.Series(pd.NA, index=cities, dtype="str")
            labels[ok & (base > median)] = dim.above
            labels[ok & (base <= median)] = dim.below
            out[name] = labels
            out[f"{name}_baseline"] = base
            if (~ok).any():
                log.info(
                    "%s: %d city(ies) without a baseline before %d are not grouped",
                    name,
                    int((~ok).sum()),
                    before,
                )
        else:
            values = _category_values(panel, dim.variable, unit).reindex(cities)
            labels = values.where(values.isin(list(dim.groups)))
            dropped = values.notna() & labels.isna()
            if dropped.any():
                log.info(
                    "%s: %d city(ies) with %s outside %s are not grouped",
                    name,
                    int(dropped.sum()),
                    dim.variable,
                    list(dim.groups),
                )
            out[name] = labels.astype("str")
    return out


def group_summary(
    panel: pd.DataFrame,
    groups: pd.DataFrame,
    dimensions: Mapping[str, Dimension] | None = None,
    *,
    treatment_year: str = "dual_year",
    unit: str = "city_code",
) -> pd.DataFrame:
    """Cities per group: dimension, group, n_cities, n_treated_cities (finite `treatment_year`),
    rule (the split rule with the median)."""
    dims = _dims(dimensions)
    treated = panel.groupby(unit)[treatment_year].max().reindex(groups.index).notna()
    rows = []
    for name, dim in dims.items():
        labels = groups[name]
        for g in dim.groups:
            if dim.split == "median":
                median = float(np.median(groups.loc[groups[name].notna(), f"{name}_baseline"]))
                side = ">" if g == dim.above else "<="
                rule = f"baseline {dim.variable} {side} median {median:.6g}"
            else:
                rule = f"{dim.variable} == {g}"
            members = labels == g
            rows.append(
                {
                    "dimension": name,
                    "group": g,
                    "n_cities": int(members.sum()),
                    "n_treated_cities": int((members & treated).sum()),
                    "rule": rule,
                }
            )
    return pd.DataFrame(rows)


def assign(
    panel: pd.DataFrame, groups: pd.DataFrame, dimension: str, *, unit: str = "city_code"
) -> pd.Series:
    """The group of every panel row in `dimension` (aligned with the panel's index)."""
    if dimension not in groups.columns:
        raise ValueError(f"no groups for dimension {dimension!r}; have {list(groups.columns)}")
    return panel[unit].map(groups[dimension])


# --------------------------------------------------------------------------------------------------
# Split samples and interaction model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    outcome: str
    treatment: str
    controls: tuple[str, ...]
    unit: str
    time: str
    cluster: str
    treatment_year: str = "dual_year"

    def fit(self, data: pd.DataFrame, terms: Sequence[str] | None = None) -> est.Fit:
        return est.fit(
            data,
            outcome=self.outcome,
            terms=list(terms) if terms is not None else [self.treatment],
            controls=self.controls,
            fixed_effects=(self.unit, self.time),
            cluster=self.cluster,
        )


def split_model(dimension: str, group: str) -> str:
    """Model name of a split-sample estimate."""
    return f"{dimension}: {group}"


def interaction_term(treatment: str, dimension: str, group: str) -> str:
    """Name of the interaction regressor D × 1[group]."""
    return f"{treatment}_x_{dimension}_{group}"


def bdiff_model(dimension: str, pair: tuple[str, str]) -> str:
    """Model name of the permutation-test rows of one comparison, e.g. 'region: bdiff east vs west'."""
    return f"{dimension}: bdiff {pair[0]} vs {pair[1]}"


def comparison_label(dimension: str, pair: tuple[str, str]) -> str:
    """Key of one between-group comparison, e.g. 'region: east vs west'."""
    return f"{dimension}: {pair[0]} vs {pair[1]}"


def _subsample(panel: pd.DataFrame, labels: pd.Series, group: str) -> pd.DataFrame:
    return panel.loc[(labels == group).fillna(False).to_numpy(dtype=bool)]


def _split_sample(
    panel: pd.DataFrame, groups: pd.DataFrame, dim: Dimension, spec: _Spec
) -> tuple[pd.DataFrame, dict[str, est.Fit]]:
    """Split-sample tidy rows of one dimension and the fits by group."""
    labels = assign(panel, groups, dim.name, unit=spec.unit)
    fits, frames = {}, []
    for g in dim.groups:
        data = _subsample(panel, labels, g)
        if data.empty:
            raise EstimationError(f"{dim.name}: no observation in group {g!r}")
        fits[g] = spec.fit(data)
        frames.append(est.tidy(fits[g], model=split_model(dim.name, g), sample=f"{dim.name} = {g}"))
    return est.concat_tidy(frames), fits


def _interaction_model(
    panel: pd.DataFrame, groups: pd.DataFrame, dim: Dimension, spec: _Spec
) -> pd.DataFrame:
    """The pooled interaction model of one dimension with its pairwise `lincom` rows."""
    labels = assign(panel, groups, dim.name, unit=spec.unit)
    keep = labels.isin(list(dim.groups)).fillna(False).to_numpy(dtype=bool)
    data = panel.loc[keep].copy()
    lab = labels[keep]
    d = pd.to_numeric(data[spec.treatment], errors="raise").astype("float64")
    base = dim.groups[-1]
    inter = {g: interaction_term(spec.treatment, dim.name, g) for g in dim.groups[:-1]}
    clash = [c for c in inter.values() if c in panel.columns]
    if clash:
        raise EstimationError(f"the panel already has column(s) {clash}")
    for g, col in inter.items():
        data[col] = d * (lab == g).astype("float64")
    fit = spec.fit(data, [spec.treatment, *inter.values()])
    model = f"{dim.name}: interaction"
    sample = f"{dim.name} in {{{', '.join(dim.groups)}}}"
    frames = [est.tidy(fit, model=model, sample=sample)]
    for a, b in dim.pairs:
        weights = {inter[a]: 1.0} if b == base else {inter[a]: 1.0, inter[b]: -1.0}
        frames.append(est.lincom(fit, weights, f"{a} - {b}", model=model, sample=sample))
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# bdiff: Fisher permutation test of between-group gaps
# --------------------------------------------------------------------------------------------------


def _resolve_pair(dim: Dimension, pair: tuple[str, str] | None) -> tuple[str, str]:
    if pair is None:
        if len(dim.groups) != 2:
            raise ValueError(f"{dim.name} has {len(dim.groups)} groups: pass pair=(a, b)")
        return dim.groups[0], dim.groups[1]
    pair = (str(pair[0]), str(pair[1]))
    if pair not in dim.pairs:
        raise ValueError(f"{dim.name}: pair {pair} is not one of {dim.pairs}")
    return pair



@dataclass
class _PairData:
    """The cities of one comparison and the arrays the permutation draws need."""

    cities: np.ndarray  # city labels (sorted)
    city_labels: np.ndarray  # observed group of each city
    city_treated: np.ndarray  # ever treated (finite treatment year) per city
    frame: pd.DataFrame  # rows of those cities (complete cases of the model)
    row_city: np.ndarray  # position in `cities` of each row
    y: np.ndarray
    d: np.ndarray
    x: np.ndarray
    codes: dict[str, np.ndarray]  # integer codes of unit, time and cluster per row


def _pair_data(
    panel: pd.DataFrame, groups: pd.DataFrame, dim: Dimension, pair: tuple[str, str], spec: _Spec
) -> _PairData:
    labels = groups[dim.name]
    in_pair = labels[labels.isin(list(pair)).fillna(False).to_numpy(dtype=bool)]
    present = in_pair[in_pair.index.isin(panel[spec.unit].unique())].sort_index()
    cities = np.asarray(present.index)
    cols = [spec.outcome, spec.treatment, *spec.controls, spec.unit, spec.time, spec.cluster]
    require_columns(panel, [*cols, spec.treatment_year], "the panel for bdiff")
    ever = pd.to_numeric(panel[spec.treatment_year], errors="raise").notna()
    treated = ever.groupby(panel[spec.unit]).any().reindex(cities).to_numpy(dtype=bool)
    rows = panel.loc[panel[spec.unit].isin(cities), list(dict.fromkeys(cols))]
    num = [spec.outcome, spec.treatment, *spec.controls]
    complete = np.isfinite(rows[num].apply(pd.to_numeric, errors="raise").to_numpy(float)).all(1)
    rows = rows.loc[complete].reset_index(drop=True)
    pos = pd.Index(cities).get_indexer(rows[spec.unit])
    return _PairData(
        cities=cities,
        city_labels=np.asarray(present.astype(str)),
        city_treated=treated,
        frame=rows,
        row_city=pos,
        y=rows[spec.outcome].to_numpy(float),
        d=rows[spec.treatment].to_numpy(float),
        x=rows[list(spec.controls)].to_numpy(float),
        codes={c: pd.factorize(rows[c])[0] for c in (spec.unit, spec.time, spec.cluster)},
    )


def _gap_fast(data: _PairData, perm: np.ndarray, pair: tuple[str, str], spec: _Spec) -> tuple:
    c = data.codes
    out = []
    for g in pair:
        mask = perm[data.row_city] == g
        design = TwfeDesign(
            c[spec.unit][mask],
            c[spec.time][mask],
            c[spec.cluster][mask],
            data.x[mask],
            control_names=spec.controls,
        )
        out.append(float(design.regress(data.y[mask], data.d[mask], [spec.treatment]).coef[0]))
    return out[0] - out[1], out[0], out[1]


def _gap_fit(data: _PairData, perm: np.ndarray, pair: tuple[str, str], spec: _Spec) -> tuple:
    out = []
    for g in pair:
        sub = data.frame.loc[perm[data.row_city] == g]
        out.append(float(spec.fit(sub).coef[spec.treatment]))
    return out[0] - out[1], out[0], out[1]


def bdiff_draws(
    panel: pd.DataFrame,
    dimension: str | Dimension,
    draws: range | Sequence[int],
    seed: int,
    *,
    pair: tuple[str, str] | None = None,
    groups: pd.DataFrame | None = None,
    dimensions: Mapping[str, Dimension] | None = None,
    controls: Sequence[str] = (),
    outcome: str = "lq",
    treatment: str = "dual_post",
    before: int = DEFAULT_BEFORE,
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
    treatment_year: str = "dual_year",
    stratify_treated: bool = False,
    engine: Engine = "fast",
) -> pd.DataFrame:
    """Permutation draws of the gap b_a - b_b between two groups of `dimension`.

    Draw d permutes the labels of the pair's cities with
    `resampling.draw_rng(seed, d, BDIFF_STREAM, dimension, *pair)` only (each city keeps one label for
    all its years; group sizes are kept) and re-estimates the model in both permuted groups. `groups` defaults to `baseline_groups(panel, dimensions, before=before)`;
    `pair` may be omitted for a two-group dimension. Returns columns draw, gap, estimate_a, estimate_b.

    A draw that leaves a group without identifying variation (e.g. no treated city) raises
    EstimationError: bdiff would silently use a zero coefficient there. `stratify_treated=True`
    permutes separately among ever-treated cities (finite `treatment_year`) and the others, so each
    group keeps its number of treated cities (a conditional permutation test; not bdiff's default).
    """
    dim = _dimension(dimension, dimensions)
    pair = _resolve_pair(dim, pair)
    if engine not in ("fast", "fit"):
        raise ValueError(f"engine must be 'fast' or 'fit', not {engine!r}")
    if groups is None:
        groups = baseline_groups(panel, {dim.name: dim}, before=before, unit=unit, time=time)
    spec = _Spec(outcome, treatment, tuple(controls), unit, time, cluster, treatment_year)
    data = _pair_data(panel, groups, dim, pair, spec)
    gap = _gap_fast if engine == "fast" else _gap_fit
    strata = data.city_treated if stratify_treated else None
    rows = []
    for d in draws:
        perm = resampling.permute_labels(
            data.city_labels,
            resampling.draw_rng(seed, int(d), BDIFF_STREAM, dim.name, *pair),
            strata,
        )
        try:
            rows.append((int(d), *gap(data, perm, pair, spec)))
        except EstimationError as err:
            raise EstimationError(
                f"{comparison_label(dim.name, pair)}, permutation draw {d}: {err} (a permuted group "
                "without identifying variation; stratify_treated=True keeps each group's number of "
                "treated cities)"
            ) from err
    out = pd.DataFrame(rows, columns=["draw", "gap", "estimate_a", "estimate_b"])
    out["draw"] = out["draw"].astype("int64")
    return out


def bdiff_pvalue(
    observed_gap: float,
    draws: pd.DataFrame | Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "bdiff",
) -> float:
    """Empirical p-value of an observed gap against its permutation draws (a frame with column `gap`
    or the gaps themselves), by the +1 rule of `dualpilot.engines.resampling`: (1 + #extreme) / (1 + N).

    - "bdiff" (default): one-sided in the direction of the observed gap, as Stata bdiff v1.04 (which
      takes #{d* >= d} / N and 1 - that when above 0.5): the smaller of the "greater" and "less" values;
    - "two-sided": extreme means |d*| >= |d|;
    - "greater": d* >= d; "less": d* <= d.
    """
    gaps = np.asarray(draws["gap"] if isinstance(draws, pd.DataFrame) else draws, dtype=float)
    if gaps.ndim != 1:
        raise ValueError("need a one-dimensional set of permutation gaps")
    if alternative == "bdiff":
        return min(
            resampling.permutation_pvalue(gaps, observed_gap, side="greater"),
            resampling.permutation_pvalue(gaps, observed_gap, side="less"),
        )
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"unknown alternative {alternative!r}")
    return resampling.permutation_pvalue(gaps, observed_gap, side=alternative)


def bdiff_rows(
    dim: Dimension,
    pair: tuple[str, str],
    fit_a: est.Fit,
    fit_b: est.Fit,
    draws: pd.DataFrame,
    *,
    seed: int | None = None,
    stratify_treated: bool = False,
) -> pd.DataFrame:
    """The two test rows of one comparison (model "<dimension>: bdiff <a> vs <b>")."""
    gap = float(fit_a.coef[fit_a.spec.terms[0]] - fit_b.coef[fit_b.spec.terms[0]])
    n = len(draws)
    desc = (
        "Fisher permutation test (Stata bdiff): labels permuted across cities (one label per "
        "city, group sizes kept"
        + (", within ever-treated and never-treated cities" if stratify_treated else "")
        + f"), both groups re-estimated, {n} draws"
        + (f", seed {seed}" if seed is not None else "")
        + "; 'bdiff': one-sided in the direction of the gap, p = (1 + #(d* beyond d))/(1 + N); "
        "'bdiff (two-sided)': (1 + #(|d*| >= |d|))/(1 + N)"
    )
    base = {
        "model": bdiff_model(dim.name, pair),
        "estimate": gap,
        "std_error": math.nan,
        "t_stat": math.nan,
        "conf_low": math.nan,
        "conf_high": math.nan,
        "n_obs": fit_a.n_obs + fit_b.n_obs,
        "n_clusters": (fit_a.n_clusters or 0) + (fit_b.n_clusters or 0),
        "r2_within": math.nan,
        "fixed_effects": fit_a.spec.fixed_effects_label,
        "controls": fit_a.spec.controls_label,
        "sample": comparison_label(dim.name, pair),
        "vcov": desc,
    }
    label = f"{pair[0]} - {pair[1]}"
    rows = [
        {**base, "term": BDIFF_PREFIX + label, "p_value": bdiff_pvalue(gap, draws)},
        {
            **base,
            "term": BDIFF_TWO_SIDED_PREFIX + label,
            "p_value": bdiff_pvalue(gap, draws, alternative="two-sided"),
        },
    ]
    return est.rows_to_frame(rows)


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------


def heterogeneity(
    panel: pd.DataFrame,
    controls: Sequence[str],
    *,
    dimensions: Mapping[str, Dimension] | Mapping[str, Mapping[str, Any]] | None = None,
    before: int = DEFAULT_BEFORE,
    outcome: str = "lq",
    treatment: str = "dual_post",
    n_draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    draws: Mapping[str, pd.DataFrame] | None = None,
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
    treatment_year: str = "dual_year",
    stratify_treated: bool = False,
    engine: Engine = "fast",
) -> pd.DataFrame:
    """The heterogeneity analysis as one tidy frame (results/estimates/heterogeneity.csv).

    For each dimension: split-sample rows, the interaction model with its lincom rows and, with
    `n_draws` > 0, the bdiff rows of every pair. `draws` maps `comparison_label(dimension, pair)` to
    precomputed permutation draws (e.g. gathered from shards; must hold draws 0..n_draws-1); missing
    comparisons are computed here.
    """
    dims = _dims(dimensions)
    if n_draws < 0:
        raise ValueError(f"n_draws must be >= 0, got {n_draws}")
    groups = baseline_groups(panel, dims, before=before, unit=unit, time=time)
    spec = _Spec(outcome, treatment, tuple(controls), unit, time, cluster, treatment_year)
    frames = []
    for dim in dims.values():
        rows, fits = _split_sample(panel, groups, dim, spec)
        frames += [rows, _interaction_model(panel, groups, dim, spec)]
        if n_draws == 0:
            continue
        for pair in dim.pairs:
            key = comparison_label(dim.name, pair)
            if draws is not None and key in draws:
                try:
                    perm = resampling.gather_draws([draws[key]], n_draws)
                except ValueError as err:
                    raise ValueError(f"{key}: precomputed draws: {err}") from err
            else:
                perm = bdiff_draws(
                    panel,
                    dim,
                    range(n_draws),
                    seed,
                    pair=pair,
                    groups=groups,
                    controls=controls,
                    outcome=outcome,
                    treatment=treatment,
                    unit=unit,
                    time=time,
                    cluster=cluster,
                    treatment_year=treatment_year,
                    stratify_treated=stratify_treated,
                    engine=engine,
                )
            frames.append(
                bdiff_rows(
                    dim,
                    pair,
                    fits[pair[0]],
                    fits[pair[1]],
                    perm,
                    seed=seed,
                    stratify_treated=stratify_treated,
                )
            )
    return est.concat_tidy(frames)
