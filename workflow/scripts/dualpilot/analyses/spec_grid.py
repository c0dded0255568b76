"""The robustness grid: each row a specification written as data in the config (`robustness: grid:`),
applied to baseline model (2) (`parse_grid`, `build_spec`, `run_grid`, `describe_specs`). Standard errors:
`estimation.fit`'s CRV1 with fixest's small-sample correction and t(G-1), or what the row asks for. The
table is `dualpilot.render.robustness.robustness_table`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from dualpilot.analyses import baseline as analyses
from dualpilot.analyses.samples import TIME, UNIT
from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.core.labels import Language
from dualpilot.engines import estimation as est

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# The robustness grid
# --------------------------------------------------------------------------------------------------


def _log_positive(panel: pd.DataFrame, column: str) -> pd.Series:
    values = panel[column].astype(float)
    bad = values.notna() & (values <= 0)
    if bad.any():
        raise SpecificationError(
            f"ln({column}) needs {column} > 0; {int(bad.sum())} row(s) are <= 0"
        )
    return np.log(values)


def _share_percent(panel: pd.DataFrame, numerator: str, denominator: str) -> pd.Series:
    den = panel[denominator].astype(float)
    if (den.notna() & (den <= 0)).any():
        raise SpecificationError(f"{numerator}/{denominator} needs {denominator} > 0")
    return 100.0 * panel[numerator].astype(float) / den


DERIVED_OUTCOMES: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], pd.Series]]] = {
    "ln_it_emp": (("it_emp",), lambda p: _log_positive(p, "it_emp")),
    "it_emp_share": (("it_emp", "total_emp"), lambda p: _share_percent(p, "it_emp", "total_emp")),
}
"""Outcomes a grid specification may name besides panel columns: ln_it_emp = ln(it_emp) (IT employment,
10k persons; it_emp must be positive); it_emp_share = 100 * it_emp / total_emp (IT share of employment, %).
`derived_outcome` gives the same two for the employment of any other industry of the panel (`emp_<id>`,
the outcome industry's column when config outcome_industry names one): ln_emp_<id> and emp_<id>_share."""

_INDUSTRY_OUTCOME = re.compile(r"^(?:ln_(?P<log>emp_[a-z0-9_]+)|(?P<share>emp_[a-z0-9_]+)_share)$")


def derived_outcome(
    name: str,
) -> tuple[tuple[str, ...], Callable[[pd.DataFrame], pd.Series]] | None:
    """The (input columns, derivation) of a derived outcome `name`: an entry of `DERIVED_OUTCOMES`, or
    ln_emp_<id> = ln(emp_<id>) and emp_<id>_share = 100 * emp_<id> / total_emp for an industry's
    employment column emp_<id>; None for any other name. (A name that is both a log and a share, such as
    ln_emp_x_share, is read as the log of the column emp_x_share.)"""
    if name in DERIVED_OUTCOMES:
        return DERIVED_OUTCOMES[name]
    match = _INDUSTRY_OUTCOME.fullmatch(name)
    if match is None:
        return None
    if match["log"]:
        column = match["log"]
        return (column,), lambda p: _log_positive(p, column)
    column = match["share"]
    return (column, "total_emp"), lambda p: _share_percent(p, column, "total_emp")


@dataclass(frozen=True)
class GridSpec:
    """One robustness specification: baseline model (2) with the changes its fields name.

    Fields (all optional but `name`; config keys have the same names):
    - label: display label, a string or {"zh": ..., "en": ...};
    - drop_if: {column: [values]}: drop the rows whose column holds one of the values;
    - outcome: a panel column or a derived outcome (`derived_outcome`: a key of `DERIVED_OUTCOMES`,
      ln_emp_<id>, emp_<id>_share; default: the baseline outcome);
    - winsorise: [lower, upper] quantiles at which the outcome is clipped (pooled over the sample);
    - cluster: cluster variable of the CRV1 SEs (default: the city);
    - bootstrap: add a wild cluster bootstrap p-value (settings of the grid, seeded);
    - treatment_lag: k > 0 replaces dual_post by dual_post_lag<k> = 1 from dual_year + k on;
    - policy: overrides of the config's policy block; the treatment is recoded with them;
    - trends: {variables: [...], baseline_end: year}: the cities' mean of each variable over the years up
      to baseline_end, times a linear trend (year - first year), added as controls;
    - controls / fixed_effects: replace the baseline's (e.g. fixed_effects [city_code, province^year]).
    """

    name: str
    label: str | Mapping[str, str] | None = None
    drop_if: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    outcome: str | None = None
    winsorise: tuple[float, float] | None = None
    cluster: str | None = None
    bootstrap: bool = False
    treatment_lag: int = 0
    policy: Mapping[str, Any] = field(default_factory=dict)
    trends: tuple[str, ...] = ()
    trend_baseline_end: int | None = None
    controls: tuple[str, ...] | None = None
    fixed_effects: tuple[str, ...] | None = None

    def display(self, language: Language) -> str:
        """The label in `language` (the name when no label is given)."""
        if self.label is None:
            return self.name
        if isinstance(self.label, str):
            return self.label
        if language not in self.label:
            raise SpecificationError(f"grid spec {self.name!r} has no {language!r} label")
        return self.label[language]


_SPEC_KEYS = {f.name for f in fields(GridSpec)} - {"trend_baseline_end"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _parse_one(raw: Mapping[str, Any]) -> GridSpec:
    if not isinstance(raw, Mapping):
        raise SpecificationError(f"a grid specification must be a mapping, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecificationError(f"grid specification names must be identifiers, got {name!r}")
    unknown = sorted(set(raw) - _SPEC_KEYS)
    if unknown:
        raise SpecificationError(
            f"grid spec {name!r}: unknown field(s) {unknown}; known {sorted(_SPEC_KEYS)}"
        )
    drop_if = {}
    for column, values in (raw.get("drop_if") or {}).items():
        values = values if isinstance(values, list | tuple) else [values]
        if not values:
            raise SpecificationError(f"grid spec {name!r}: drop_if {column!r} lists no value")
        drop_if[str(column)] = tuple(values)
    winsorise = raw.get("winsorise")
    if winsorise is not None:
        if len(winsorise) != 2 or not 0 <= float(winsorise[0]) < float(winsorise[1]) <= 1:
            raise SpecificationError(
                f"grid spec {name!r}: winsorise must be [lower, upper] with 0 <= lower < upper <= 1"
            )
        winsorise = (float(winsorise[0]), float(winsorise[1]))
    lag = raw.get("treatment_lag", 0)
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
        raise SpecificationError(f"grid spec {name!r}: treatment_lag must be an integer >= 0")
    trends_raw = raw.get("trends") or {}
    trends, baseline_end = (), None
    if trends_raw:
        extra = sorted(set(trends_raw) - {"variables", "baseline_end"})
        if extra or "variables" not in trends_raw or "baseline_end" not in trends_raw:
            raise SpecificationError(
                f"grid spec {name!r}: trends needs exactly 'variables' and 'baseline_end'"
            )
        trends = tuple(str(v) for v in trends_raw["variables"])
        baseline_end = int(trends_raw["baseline_end"])
        if not trends:
            raise SpecificationError(f"grid spec {name!r}: trends lists no variable")
    bootstrap = raw.get("bootstrap", False)
    if not isinstance(bootstrap, bool):
        raise SpecificationError(f"grid spec {name!r}: bootstrap must be true or false")
    return GridSpec(
        name=name,
        label=raw.get("label"),
        drop_if=drop_if,
        outcome=raw.get("outcome"),
        winsorise=winsorise,
        cluster=raw.get("cluster"),
        bootstrap=bootstrap,
        treatment_lag=lag,
        policy=dict(raw.get("policy") or {}),
        trends=trends,
        trend_baseline_end=baseline_end,
        controls=None if raw.get("controls") is None else tuple(raw["controls"]),
        fixed_effects=None if raw.get("fixed_effects") is None else tuple(raw["fixed_effects"]),
    )


def parse_grid(specs: Sequence[Mapping[str, Any]]) -> list[GridSpec]:
    """Validate the config's list of grid specifications (unique names, known fields, valid values)."""
    if not specs:
        raise SpecificationError("the robustness grid lists no specification")
    parsed = [_parse_one(raw) for raw in specs]
    names = [s.name for s in parsed]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecificationError(f"grid specification names repeated: {dup}")
    return parsed


@dataclass(frozen=True)
class SpecData:
    """What `estimation.fit` needs for one grid specification, and how the sample was changed."""

    spec: GridSpec
    data: pd.DataFrame
    outcome: str
    treatment: str
    controls: tuple[str, ...]
    fixed_effects: tuple[str, ...]
    cluster: str | None
    sample: str


def _drop_rows(data: pd.DataFrame, spec: GridSpec) -> tuple[pd.DataFrame, str]:
    if not spec.drop_if:
        return data, "full"
    keep = np.ones(len(data), dtype=bool)
    parts = []
    for column, values in spec.drop_if.items():
        if column not in data.columns:
            raise SpecificationError(
                f"grid spec {spec.name!r}: drop_if names unknown column {column!r}"
            )
        hit = data[column].isin(list(values)).to_numpy()
        if not hit.any():
            raise SpecificationError(
                f"grid spec {spec.name!r}: no row has {column} in {list(values)} (check the values' "
                f"type: the column holds e.g. {data[column].iloc[0]!r})"
            )
        keep &= ~hit
        parts.append(f"{column} not in {{{', '.join(map(str, values))}}}")
    return data.loc[keep], "; ".join(parts)


def _winsorise(values: pd.Series, lower: float, upper: float) -> pd.Series:
    lo, hi = values.quantile([lower, upper]).to_numpy()
    return values.clip(lower=lo, upper=hi)


def _trend_terms(
    data: pd.DataFrame, variables: Sequence[str], baseline_end: int, unit: str, time: str
) -> pd.DataFrame:
    """Columns <var>_base_x_trend = (mean of var over the unit's years <= baseline_end) * (time - first
    time of the data)."""
    missing = [v for v in variables if v not in data.columns]
    if missing:
        raise SpecificationError(f"trend variables {missing} are not panel columns")
    early = data[data[time] <= baseline_end]
    if early.empty:
        raise SpecificationError(f"no observation in or before the baseline year {baseline_end}")
    base = early.groupby(unit)[list(variables)].mean()
    trend = (data[time] - data[time].min()).astype(float)
    out = pd.DataFrame(index=data.index)
    for v in variables:
        level = data[unit].map(base[v])
        lacking = data.loc[level.isna(), unit].nunique()
        if lacking:
            log.warning(
                "%d cities have no %s up to %d: their rows drop out of the trend specification",
                lacking,
                v,
                baseline_end,
            )
        out[f"{v}_base_x_trend"] = level.astype(float) * trend
    return out


def build_spec(
    panel: pd.DataFrame,
    spec: GridSpec,
    *,
    controls: Sequence[str],
    outcome: str = "lq",
    treatment_col: str = "dual_post",
    treat_time: str = "dual_year",
    unit: str = UNIT,
    time: str = TIME,
    cluster: str | None = UNIT,
    recode: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame] | None = None,
) -> SpecData:
    """Apply `spec` to the panel: the data and model of one grid row.

    Order: recode the treatment (`policy`, with `recode`, e.g. a `PolicyRecoder`), lag it, derive the
    outcome, drop rows (`drop_if`), winsorise the outcome over the remaining rows, add baseline-by-trend
    controls. Everything a spec does not name stays as in baseline model (2): `outcome`, `treatment_col`,
    `controls`, unit + time fixed effects, CRV1 by `unit`. New columns never overwrite panel columns, except
    the outcome when winsorised and the treatment columns when recoded.
    """
    data = panel
    if spec.policy:
        if recode is None:
            raise SpecificationError(
                f"grid spec {spec.name!r} recodes the treatment: pilot lists needed"
            )
        data = recode(data, spec.policy)
    term = treatment_col
    if spec.treatment_lag:
        term = f"{treatment_col}_lag{spec.treatment_lag}"
        if term in data.columns:
            raise SpecificationError(f"the panel already has a column {term!r}")
        since = data[time].to_numpy(dtype=float) - data[treat_time].to_numpy(dtype=float)
        data = data.assign(**{term: (since >= spec.treatment_lag).astype("int64")})
    y = spec.outcome or outcome
    derived = derived_outcome(y)
    if derived is not None and y not in data.columns:
        inputs, derive = derived
        require_columns(data, list(inputs), f"the panel for outcome {y}")
        data = data.assign(**{y: derive(data)})
    elif y not in data.columns:
        raise SpecificationError(
            f"grid spec {spec.name!r}: outcome {y!r} is neither a panel column nor one of "
            f"{sorted(DERIVED_OUTCOMES)}, ln_emp_<id> or emp_<id>_share of an industry column emp_<id>"
        )
    data, sample = _drop_rows(data, spec)
    if spec.winsorise is not None:
        data = data.assign(**{y: _winsorise(data[y].astype(float), *spec.winsorise)})
    ctrl = tuple(controls if spec.controls is None else spec.controls)
    if spec.trends:
        assert spec.trend_baseline_end is not None
        trend = _trend_terms(data, spec.trends, spec.trend_baseline_end, unit, time)
        clash = [c for c in trend.columns if c in data.columns]
        if clash:
            raise SpecificationError(f"the panel already has columns {clash}")
        data = pd.concat([data, trend], axis=1)
        ctrl = ctrl + tuple(trend.columns)
    return SpecData(
        spec=spec,
        data=data,
        outcome=y,
        treatment=term,
        controls=ctrl,
        fixed_effects=spec.fixed_effects or (unit, time),
        cluster=spec.cluster or cluster,
        sample=sample,
    )


def run_grid(
    panel: pd.DataFrame,
    specs: Sequence[GridSpec],
    *,
    controls: Sequence[str],
    options: analyses.Options | Mapping[str, Any] | None = None,
    bootstrap: analyses.BootstrapOptions | Mapping[str, Any] | None = None,
    recode: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimate every grid specification; return (tidy estimates, spec descriptions).

    `options` are the estimation options of the baseline (outcome, unit, time, cluster, ...); a spec's
    outcome and cluster replace theirs. Estimates: one row per spec (model = spec name, term = its
    treatment) and, for specs with `bootstrap`, a "wildboot: <treatment>" row (`estimation.wild_bootstrap`
    with `bootstrap`'s reps, seed and weights). Descriptions: `describe_specs`.
    """
    opts = analyses.Options.coerce(options)
    boot = analyses.BootstrapOptions.coerce(bootstrap)
    frames, built = [], []
    for spec in specs:
        sd = build_spec(
            panel,
            spec,
            controls=controls,
            outcome=opts.outcome,
            unit=opts.unit,
            time=opts.time,
            cluster=opts.cluster,
            recode=recode,
        )
        spec_opts = replace(opts, outcome=sd.outcome, cluster=sd.cluster)
        if spec.cluster is not None:
            spec_opts = replace(spec_opts, vcov="cluster")
        fit = spec_opts.fit(sd.data, [sd.treatment], list(sd.controls), list(sd.fixed_effects))
        frames.append(est.tidy(fit, model=spec.name, sample=sd.sample))
        if spec.bootstrap:
            if boot is None:
                raise SpecificationError(
                    f"grid spec {spec.name!r} asks for a bootstrap: no settings"
                )
            result = est.wild_bootstrap(
                fit, sd.treatment, reps=boot.reps, seed=boot.seed, weights_type=boot.weights_type
            )
            frames.append(est.bootstrap_row(fit, result, model=spec.name, sample=sd.sample))
        log.info(
            "grid %s: %s = %.4f (N = %d)",
            spec.name,
            sd.treatment,
            fit.coef[sd.treatment],
            fit.n_obs,
        )
        built.append(sd)
    return est.concat_tidy(frames), describe_specs(built)


SPEC_COLUMNS = (
    "model",
    "label_zh",
    "label_en",
    "outcome",
    "treatment",
    "sample",
    "policy",
    "winsorise",
    "controls",
    "fixed_effects",
    "cluster",
    "bootstrap",
)


def describe_specs(built: Sequence[SpecData]) -> pd.DataFrame:
    """One row per specification: what it estimates (the grid's data, next to the estimates)."""
    rows = []
    for sd in built:
        s = sd.spec
        rows.append(
            {
                "model": s.name,
                "label_zh": s.display("zh"),
                "label_en": s.display("en"),
                "outcome": sd.outcome,
                "treatment": sd.treatment,
                "sample": sd.sample,
                "policy": "; ".join(f"{k}={v}" for k, v in _flatten(s.policy)) or "configured",
                "winsorise": ""
                if s.winsorise is None
                else f"{s.winsorise[0]:g}/{s.winsorise[1]:g}",
                "controls": " + ".join(sd.controls) or "none",
                "fixed_effects": " + ".join(sd.fixed_effects),
                "cluster": sd.cluster or "none",
                "bootstrap": s.bootstrap,
            }
        )
    return pd.DataFrame(rows, columns=list(SPEC_COLUMNS))


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name + ".")
        else:
            out.append((name, value))
    return out
