"""Heterogeneity-robust estimators for staggered (multi-period) difference-in-differences.

Every estimator takes ANY long panel (one row per unit and period) described by column names:
`unit`, `time` (integer periods, e.g. years), `first_treat` (the first treated period of the unit;
NaN or 0 = never treated; constant within a unit), `outcome` and optional `covariates`. Each returns
a frame (see `STAGGERED_COLUMNS`) with one row per reported parameter:

- `callaway_santanna`: Callaway and Sant'Anna (2021) group-time ATT(g,t) with never-treated or
  not-yet-treated controls, unconditional or with covariates (doubly robust, Sant'Anna and Zhao 2020,
  or outcome regression), aggregated to a simple ATT, an event study and cohort effects. Inference
  from the influence function (analytic, clustered by unit) or a seeded multiplier bootstrap. The
  conventions are those of the R package `did` (2.x), point estimates match it.
- `sun_abraham`: Sun and Abraham (2021) interaction-weighted event study: a two-way fixed-effects
  regression saturated in cohort x relative period, aggregated with cohort shares. CRV1 standard
  errors with fixest's small-sample correction.
- `imputation_did`: Borusyak, Jaravel and Spiess (2024) imputation estimator; its point estimates
  equal Gardner's two-stage `did2s`, whose GMM cluster-robust standard errors (Butts and Gardner
  2022) are reported.
(The Goodman-Bacon decomposition is `dualpilot.did.bacon`.)

Conventions shared by the three ATT estimators:
- never-treated units have `first_treat` NaN or 0; a `first_treat` after the last observed period
  (+ anticipation) also counts as never treated (as in `did`); units first treated at or before the
  first observed period + anticipation have no pre-period and are dropped (logged as a warning);
- `anticipation` = number of periods before `first_treat` in which the treatment may already act;
- event (relative) time e = time - first_treat; term names "rel_<e>" (e.g. "rel_-3", "rel_0");
- nothing is dropped or imputed silently: missing outcomes or covariates, duplicated unit-periods,
  a `first_treat` that varies within a unit, overlap failures and singular designs raise ValueError.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import SuperLU, splu

from dualpilot.did.inference import crv1_vcov

log = logging.getLogger(__name__)

STAGGERED_COLUMNS: tuple[str, ...] = (
    "estimator",
    "aggregation",
    "term",
    "estimate",
    "std_error",
    "t_stat",
    "p_value",
    "conf_low",
    "conf_high",
    "crit_value",
    "group",
    "time",
    "event_time",
    "n_obs",
    "n_clusters",
    "control_group",
    "controls",
    "fixed_effects",
    "vcov",
)
"""Columns of every tidy frame returned here. `group` (first-treated period of a cohort), `time`
and `event_time` are NaN where they do not apply; `crit_value` is the critical value used for the
confidence interval (a sup-t value when a uniform band was asked for)."""


ControlGroup = Literal["never", "notyet"]
Aggregation = Literal["simple", "dynamic", "group"]

_TRIM_LEVEL = 0.995  # DRDID: controls with propensity score >= this get weight 0
_OVERLAP_LIMIT = 0.999  # did: a propensity score this high means overlap fails
_DEGENERATE_SE = float(np.sqrt(np.finfo(float).eps) * 10)  # did: smaller SEs are reported as NaN


# --------------------------------------------------------------------------------------------
# Panel preparation (shared)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedPanel:
    """A validated long panel sorted by unit then time, with integer codes."""

    unit: np.ndarray  # (N,) unit code 0..n_units-1
    time: np.ndarray  # (N,) int period
    times: np.ndarray  # sorted distinct periods
    unit_labels: np.ndarray  # (n_units,) original unit identifiers
    unit_cohort: np.ndarray  # (n_units,) first treated period, inf = never treated
    cluster: np.ndarray  # (N,) cluster code 0..n_clusters-1 (units nested in clusters)
    y: np.ndarray  # (N,)
    x: np.ndarray  # (N, k)
    covariates: tuple[str, ...]

    @property
    def n_units(self) -> int:
        return len(self.unit_labels)

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def cohort(self) -> np.ndarray:
        """First treated period of each row's unit (inf = never)."""
        return self.unit_cohort[self.unit]

    @property
    def n_clusters(self) -> int:
        return int(self.cluster.max()) + 1

    def time_code(self) -> np.ndarray:
        return np.searchsorted(self.times, self.time)


def _as_list(covariates: str | Sequence[str] | None) -> list[str]:
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    return list(covariates)


def _examples(
    frame: pd.DataFrame, mask: np.ndarray | pd.Series, cols: list[str], k: int = 3
) -> str:
    rows = frame.loc[np.asarray(mask), cols].head(k)
    return "; ".join(", ".join(f"{c}={r[c]!r}" for c in cols) for _, r in rows.iterrows())


def integer_periods(values: pd.Series, name: str, allow_nan: bool) -> np.ndarray:
    """`values` as floats holding whole periods (NaN allowed only with `allow_nan`); ValueError naming
    `name` otherwise."""
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        raise ValueError(f"column {name!r} must be numeric (integer periods), got {values.dtype}")
    arr = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(arr)
    if bad.any() and not allow_nan:
        raise ValueError(f"column {name!r} has {int(bad.sum())} missing or infinite value(s)")
    finite = np.isfinite(arr)
    if np.any(arr[finite] != np.round(arr[finite])):
        raise ValueError(f"column {name!r} must hold whole numbers (periods)")
    return arr


def prepare(
    data: pd.DataFrame,
    unit: str,
    time: str,
    first_treat: str,
    outcome: str,
    covariates: str | Sequence[str] | None,
    *,
    anticipation: int,
    balanced: bool,
    cluster: str | None = None,
) -> PreparedPanel:
    """Validate the input panel and return it sorted, coded and cleaned (see module docstring)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame")
    if isinstance(anticipation, bool) or not isinstance(anticipation, int | np.integer):
        raise TypeError("anticipation must be an integer")
    if anticipation < 0:
        raise ValueError("anticipation must be >= 0")
    covs = _as_list(covariates)
    needed = list(
        dict.fromkeys([unit, time, first_treat, outcome, *covs] + ([cluster] if cluster else []))
    )
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"columns not found in the data: {missing}")
    if len(data) == 0:
        raise ValueError("the data have no rows")
    frame = data.loc[:, needed].reset_index(drop=True)

    t = integer_periods(frame[time], time, allow_nan=False)
    g = integer_periods(frame[first_treat], first_treat, allow_nan=True)
    g = np.where(~np.isfinite(g) | (g == 0), np.inf, g)  # NaN, 0 or inf: never treated

    numeric = {}
    for col in [outcome, *covs]:
        if not (
            pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        ):
            raise ValueError(f"column {col!r} must be numeric, got {frame[col].dtype}")
        arr = frame[col].to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"column {col!r} has {int(bad.sum())} missing or infinite value(s), e.g. "
                f"{_examples(frame, bad, [unit, time])}; drop or fill them before estimating"
            )
        numeric[col] = arr

    if frame[unit].isna().any():
        raise ValueError(f"column {unit!r} has missing unit identifiers")
    dup = frame.duplicated([unit, time]).to_numpy()
    if dup.any():
        raise ValueError(
            f"{int(dup.sum())} duplicated ({unit}, {time}) row(s), e.g. {_examples(frame, dup, [unit, time])}"
        )

    codes, labels = pd.factorize(frame[unit], sort=True)
    g_min = pd.Series(g).groupby(codes).min().to_numpy()
    g_max = pd.Series(g).groupby(codes).max().to_numpy()
    varying = g_min != g_max
    if varying.any():
        raise ValueError(
            f"column {first_treat!r} varies within {int(varying.sum())} unit(s), e.g. "
            f"{list(labels[varying][:3])}; it must be the unit's first treated period"
        )
    unit_cohort = g_min.copy()

    times = np.unique(t)
    late = np.isfinite(unit_cohort) & (unit_cohort > times.max() + anticipation)
    if late.any():
        log.info(
            "%d unit(s) first treated after the last period (+ anticipation) are used as never treated",
            int(late.sum()),
        )
        unit_cohort[late] = np.inf
    early = unit_cohort <= times.min() + anticipation
    if early.any():
        log.warning(
            "dropping %d unit(s) already treated in the first period (+ anticipation): no pre-period",
            int(early.sum()),
        )

    if cluster is None:
        cluster_codes = codes
    else:
        if frame[cluster].isna().any():
            raise ValueError(f"cluster column {cluster!r} has missing values")
        cluster_codes = pd.factorize(frame[cluster], sort=True)[0]
        per_unit = pd.Series(cluster_codes).groupby(codes).nunique().to_numpy()
        if (per_unit > 1).any():
            raise ValueError(
                f"units must be nested in clusters: {int((per_unit > 1).sum())} unit(s) appear in "
                f"several {cluster!r} clusters"
            )

    keep_unit = ~early
    keep_row = keep_unit[codes]
    # Re-code the kept units 0..n-1 and sort rows by unit then time.
    new_code = np.cumsum(keep_unit) - 1
    u = new_code[codes[keep_row]]
    tt = t[keep_row].astype(np.int64)
    order = np.lexsort((tt, u))
    u, tt = u[order], tt[order]
    cl = pd.factorize(cluster_codes[keep_row][order], sort=True)[0]
    y = numeric[outcome][keep_row][order]
    x = (
        np.column_stack([numeric[c][keep_row][order] for c in covs])
        if covs
        else np.empty((len(y), 0))
    )
    unit_cohort = unit_cohort[keep_unit]
    if not np.isfinite(unit_cohort).any():
        raise ValueError(
            "no treated cohort left: every unit is never treated or treated from the start"
        )
    times = np.unique(tt)

    if balanced:
        counts = np.bincount(u, minlength=len(unit_cohort))
        short = counts != len(times)
        if short.any():
            raise ValueError(
                f"this estimator needs a balanced panel: {int(short.sum())} unit(s) are not observed in "
                f"all {len(times)} periods, e.g. {list(labels[keep_unit][short][:3])}; drop them or "
                "fill the gaps first"
            )
    return PreparedPanel(
        unit=u,
        time=tt,
        times=times,
        unit_labels=np.asarray(labels[keep_unit]),
        unit_cohort=unit_cohort,
        cluster=cl,
        y=y,
        x=x,
        covariates=tuple(covs),
    )


def _check_choice(value: object, name: str, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _check_aggregations(aggregations: Sequence[str]) -> list[str]:
    aggs = [aggregations] if isinstance(aggregations, str) else list(aggregations)
    for a in aggs:
        _check_choice(a, "aggregation", ("simple", "dynamic", "group"))
    return aggs


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")


def period_label(value: float) -> str:
    """A period as the integer text used in term names and labels."""
    return str(int(value))


# --------------------------------------------------------------------------------------------
# Tidy output (shared)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """Estimates of one aggregation, before inference columns are added."""

    aggregation: str
    terms: list[str]
    estimate: np.ndarray
    std_error: np.ndarray
    crit_value: np.ndarray
    group: np.ndarray
    time: np.ndarray
    event_time: np.ndarray


def _nan(m: int) -> np.ndarray:
    return np.full(m, np.nan)


def _tidy(
    blocks: list[_Block],
    *,
    estimator: str,
    df: int | None,
    n_obs: int,
    n_clusters: int,
    control_group: str,
    controls: Sequence[str],
    fixed_effects: str,
    vcov: str,
) -> pd.DataFrame:
    """Assemble blocks into the tidy frame; p-values from N(0,1) (df None) or t(df)."""
    parts = []
    for b in blocks:
        with np.errstate(divide="ignore", invalid="ignore"):
            tstat = b.estimate / b.std_error
        dist = stats.norm if df is None else stats.t(df)
        parts.append(
            pd.DataFrame(
                {
                    "estimator": estimator,
                    "aggregation": b.aggregation,
                    "term": b.terms,
                    "estimate": b.estimate,
                    "std_error": b.std_error,
                    "t_stat": tstat,
                    "p_value": 2 * dist.sf(np.abs(tstat)),
                    "conf_low": b.estimate - b.crit_value * b.std_error,
                    "conf_high": b.estimate + b.crit_value * b.std_error,
                    "crit_value": b.crit_value,
                    "group": b.group,
                    "time": b.time,
                    "event_time": b.event_time,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out["n_obs"] = n_obs
    out["n_clusters"] = n_clusters
    out["control_group"] = control_group
    out["controls"] = "+".join(controls) if controls else "none"
    out["fixed_effects"] = fixed_effects
    out["vcov"] = vcov
    return out.loc[:, list(STAGGERED_COLUMNS)]



# --------------------------------------------------------------------------------------------
# Callaway and Sant'Anna (2021)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ATTgt:
    """Group-time average treatment effects ATT(g,t) with their influence functions.

    `cells` has one row per (group, time): group, time, base_time (the period compared with),
    event_time (time - group), post (group <= time), att, n_treated, n_control. `influence` is the
    (n_units x n_cells) matrix of influence functions scaled as in `did`: ATT-hat - ATT is
    approximately the mean over units of a column, so SE = sqrt(sum(col**2)) / n_units.
    """

    cells: pd.DataFrame
    influence: np.ndarray
    unit_cohort: np.ndarray
    n_obs: int
    control_group: str
    base_period: str
    est_method: str
    anticipation: int
    covariates: tuple[str, ...]

    @property
    def n_units(self) -> int:
        return len(self.unit_cohort)


def _logit(d: np.ndarray, z: np.ndarray, tol: float = 1e-11, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood logit by Newton-Raphson; returns fitted probabilities."""
    p1 = d.mean()
    beta = np.zeros(z.shape[1])
    beta[0] = np.log(p1 / (1 - p1))  # z[:, 0] is the intercept
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        hess = z.T @ (z * (p * (1 - p))[:, None])
        step = np.linalg.solve(hess, z.T @ (d - p))
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            return 1.0 / (1.0 + np.exp(-(z @ beta)))
    raise ValueError("the propensity-score logit did not converge (perfect separation?)")


def _ols_influence(z: np.ndarray, resid: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Asymptotic linear representation of OLS fitted on `rows` (DRDID's asy.lin.rep.ols)."""
    n = len(resid)
    w = rows.astype(float)
    xpx = z.T @ (z * w[:, None]) / n
    return (z * (w * resid)[:, None]) @ np.linalg.inv(xpx)


def _fit_control_regression(dy: np.ndarray, d: np.ndarray, z: np.ndarray, cell: str) -> np.ndarray:
    ctrl = d == 0
    zc = z[ctrl]
    if np.linalg.matrix_rank(zc) < z.shape[1]:
        raise ValueError(f"{cell}: covariates are collinear among the control units")
    beta, *_ = np.linalg.lstsq(zc, dy[ctrl], rcond=None)
    return z @ beta


def _dr_panel(dy: np.ndarray, d: np.ndarray, z: np.ndarray, cell: str) -> tuple[float, np.ndarray]:
    """Doubly robust DID for panel data (Sant'Anna and Zhao 2020; DRDID::drdid_panel).

    Logit propensity score and OLS outcome regression on the controls; the propensity score is
    capped at 1 - 1e-6 and controls with a score >= 0.995 are trimmed, as in DRDID. Returns the
    ATT and its influence function (one value per row of the 2x2 sample).
    """
    n = len(dy)
    ps_fit = _logit(d, z)
    if ps_fit.max() >= _OVERLAP_LIMIT:
        raise ValueError(
            f"{cell}: overlap fails (a propensity score >= {_OVERLAP_LIMIT}); use fewer "
            "covariates or est_method='reg'"
        )
    ps = np.minimum(ps_fit, 1 - 1e-6)
    keep = np.where(d == 1, True, ps < _TRIM_LEVEL).astype(float)
    out = _fit_control_regression(dy, d, z, cell)

    w_t = keep * d
    w_c = keep * ps * (1 - d) / (1 - ps)
    att_t = w_t * (dy - out)
    att_c = w_c * (dy - out)
    eta_t = att_t.mean() / w_t.mean()
    eta_c = att_c.mean() / w_c.mean()

    lin_ols = _ols_influence(z, dy - out, d == 0)
    hess_ps = np.linalg.inv(z.T @ (z * (ps_fit * (1 - ps_fit))[:, None])) * n
    lin_ps = (z * (d - ps)[:, None]) @ hess_ps

    m1 = (w_t[:, None] * z).mean(axis=0)
    inf_t = (att_t - w_t * eta_t - lin_ols @ m1) / w_t.mean()
    m2 = (z * (w_c * (dy - out - eta_c))[:, None]).mean(axis=0)
    m3 = (w_c[:, None] * z).mean(axis=0)
    inf_c = (att_c - w_c * eta_c + lin_ps @ m2 - lin_ols @ m3) / w_c.mean()
    return float(eta_t - eta_c), inf_t - inf_c


def _reg_panel(dy: np.ndarray, d: np.ndarray, z: np.ndarray, cell: str) -> tuple[float, np.ndarray]:
    """Outcome-regression DID for panel data (Heckman et al. 1997; DRDID::reg_did_panel)."""
    out = _fit_control_regression(dy, d, z, cell)
    p1 = d.mean()
    eta_t = (d * dy).mean() / p1
    eta_c = (d * out).mean() / p1
    lin_ols = _ols_influence(z, dy - out, d == 0)
    m1 = (d[:, None] * z).mean(axis=0)
    inf_t = (d * dy - d * eta_t) / p1
    inf_c = (d * out - d * eta_c + lin_ols @ m1) / p1
    return float(eta_t - eta_c), inf_t - inf_c


def cs_att_gt(
    data: pd.DataFrame,
    unit: str,
    time: str,
    first_treat: str,
    outcome: str,
    covariates: str | Sequence[str] | None = None,
    *,
    control_group: ControlGroup = "never",
    base_period: Literal["varying", "universal"] = "varying",
    anticipation: int = 0,
    est_method: Literal["dr", "reg"] = "dr",
) -> ATTgt:
    """Callaway and Sant'Anna (2021) group-time ATT(g,t) on a balanced panel, as `did::att_gt`.

    For each cohort g and period t, ATT(g,t) is a 2x2 DID between t and a base period b: with a
    "varying" base, b = t-1 before treatment and b = g-1-anticipation from g on; with a
    "universal" base, b = g-1-anticipation always (and ATT(g,b) = 0 is reported with NaN SE).
    Controls: never-treated units ("never") or units not yet treated by max(t, b) + anticipation
    ("notyet": never-treated + later cohorts). Without never-treated units and "notyet", periods
    from the last cohort's first period - anticipation on are dropped and that cohort only serves
    as control (as `did`).

    Without covariates, ATT(g,t) is the difference in mean outcome changes. With covariates
    (values at the earlier of t and b, as `did`), `est_method` "dr" is the doubly robust estimator
    (logit propensity score + linear outcome regression on controls) and "reg" the outcome
    regression estimator. Sampling weights are not supported.
    """
    _check_choice(control_group, "control_group", ("never", "notyet"))
    _check_choice(base_period, "base_period", ("varying", "universal"))
    _check_choice(est_method, "est_method", ("dr", "reg"))
    panel = prepare(
        data, unit, time, first_treat, outcome, covariates, anticipation=anticipation, balanced=True
    )
    n, n_t = panel.n_units, len(panel.times)
    times = panel.times
    y = panel.y.reshape(n, n_t)
    x = panel.x.reshape(n, n_t, -1)
    cohort = panel.unit_cohort.copy()

    if not np.isinf(cohort).any():
        if control_group == "never":
            raise ValueError("there are no never-treated units: use control_group='notyet'")
        g_last = cohort.max()
        keep_t = times < g_last - anticipation
        log.warning(
            "no never-treated units: dropping periods >= %d and using cohort %d only as control",
            int(g_last - anticipation),
            int(g_last),
        )
        times, y, x = times[keep_t], y[:, keep_t], x[:, keep_t]
        cohort = np.where(cohort == g_last, np.inf, cohort)
        n_t = len(times)
    glist = np.unique(cohort[np.isfinite(cohort)])
    if glist.size == 0 or n_t < 2:
        raise ValueError("not enough periods or cohorts left to estimate any ATT(g,t)")

    varying = base_period == "varying"
    estimate = _dr_panel if est_method == "dr" else _reg_panel
    rows: list[dict[str, float]] = []
    columns: list[np.ndarray] = []
    for g in glist:
        in_g = cohort == g
        g_base = int(np.flatnonzero(times + anticipation < g)[-1])
        for cur in range(1 if varying else 0, n_t):
            base = cur - 1 if varying else g_base
            if control_group == "notyet":
                threshold = times[max(cur, base)] + anticipation
                control = (cohort > threshold) & ~in_g
            else:
                control = np.isinf(cohort)
            post = g <= times[cur]
            if post:
                base = g_base
            row = {
                "group": float(g),
                "time": float(times[cur]),
                "base_time": float(times[base]),
                "event_time": float(times[cur] - g),
                "post": bool(post),
            }
            if base == cur:  # universal base period: the reference cell is normalised to 0
                rows.append({**row, "att": 0.0, "n_treated": int(in_g.sum()), "n_control": 0})
                columns.append(np.zeros(n))
                continue
            cell = f"ATT(g={period_label(g)},t={period_label(times[cur])})"
            mask = in_g | control
            if not control.any():
                raise ValueError(f"{cell}: no control units")
            d = in_g[mask].astype(float)
            dy = y[mask, cur] - y[mask, base]
            z = np.column_stack([np.ones(mask.sum()), x[mask, min(cur, base), :]])
            att, psi = estimate(dy, d, z, cell)
            infl = np.zeros(n)
            infl[mask] = psi * n / mask.sum()
            rows.append(
                {**row, "att": att, "n_treated": int(in_g.sum()), "n_control": int(control.sum())}
            )
            columns.append(infl)
    return ATTgt(
        cells=pd.DataFrame(rows),
        influence=np.column_stack(columns),
        unit_cohort=cohort,
        n_obs=n * n_t,
        control_group=control_group,
        base_period=base_period,
        est_method=est_method,
        anticipation=anticipation,
        covariates=panel.covariates,
    )


@dataclass(frozen=True)
class CSAggregate:
    """One aggregation of ATT(g,t): terms, estimates, influence functions (n_units x terms)."""

    aggregation: str
    terms: list[str]
    estimate: np.ndarray
    influence: np.ndarray
    group: np.ndarray
    time: np.ndarray
    event_time: np.ndarray
    overall: np.ndarray  # True for the summary "ATT" term (excluded from a uniform band)


def _weight_influence(unit_cohort: np.ndarray, groups: np.ndarray, pg: np.ndarray) -> np.ndarray:
    """Influence of estimating the cohort-share weights pg/sum(pg) (did's `wif`)."""
    ind = (unit_cohort[:, None] == groups[None, :]).astype(float) - pg[None, :]
    total = pg.sum()
    return ind / total - ind.sum(axis=1, keepdims=True) * (pg / total**2)[None, :]


def _combine(
    res: ATTgt, keep: np.ndarray, att: np.ndarray, groups: np.ndarray, pg: np.ndarray, wif: bool
) -> tuple[float, np.ndarray]:
    """Weighted average of the kept ATT(g,t) with weights pg, and its influence function."""
    weights = pg / pg.sum()
    infl = res.influence[:, keep] @ weights
    if wif:
        infl = infl + _weight_influence(res.unit_cohort, groups, pg) @ att
    return float(att @ weights), infl


def cs_aggregate(res: ATTgt, aggregation: Aggregation) -> CSAggregate:
    """Aggregate ATT(g,t) as `did::aggte` (weights = cohort shares among all units).

    - "simple": ATT = average of post-treatment ATT(g,t) weighted by cohort size;
    - "dynamic": for each event time e, average of ATT(g,g+e) weighted by cohort size ("rel_<e>"),
      plus "ATT" = plain mean of the e >= 0 effects;
    - "group": per cohort, plain mean of its post-treatment ATT(g,t) ("group_<g>"), plus "ATT" =
      their average weighted by cohort size.
    Influence functions include the estimation of the weights (`did`'s wif term). For the overall
    "group" ATT this uses each cohort's own indicator; `did` 2.x passes the (g,t)-level group
    vector there, which can give a slightly different SE (point estimates are identical).
    """
    _check_choice(aggregation, "aggregation", ("simple", "dynamic", "group"))
    cells = res.cells
    g_cell = cells["group"].to_numpy()
    t_cell = cells["time"].to_numpy()
    e_cell = cells["event_time"].to_numpy()
    att = cells["att"].to_numpy()
    glist = np.unique(g_cell)
    pg_group = np.array([(res.unit_cohort == g).mean() for g in glist])
    pg_cell = pg_group[np.searchsorted(glist, g_cell)]
    post = g_cell <= t_cell

    terms: list[str] = []
    est: list[float] = []
    infl: list[np.ndarray] = []
    grp: list[float] = []
    evt: list[float] = []
    overall: list[bool] = []

    def add(term: str, value: float, psi: np.ndarray, g: float, e: float, is_overall: bool) -> None:
        terms.append(term)
        est.append(value)
        infl.append(psi)
        grp.append(g)
        evt.append(e)
        overall.append(is_overall)

    if aggregation == "simple":
        value, psi = _combine(res, post, att[post], g_cell[post], pg_cell[post], wif=True)
        add("ATT", value, psi, np.nan, np.nan, True)
    elif aggregation == "dynamic":
        for e in np.unique(e_cell):
            k = e_cell == e
            value, psi = _combine(res, k, att[k], g_cell[k], pg_cell[k], wif=True)
            add(f"rel_{int(e)}", value, psi, np.nan, float(e), False)
        positive = np.array(evt) >= 0
        add(
            "ATT",
            float(np.mean(np.array(est)[positive])),
            np.column_stack(infl)[:, positive].mean(axis=1),
            np.nan,
            np.nan,
            True,
        )
    else:
        for g in glist:
            k = (g_cell == g) & post
            if not k.any():
                raise ValueError(f"cohort {period_label(g)} has no post-treatment ATT(g,t)")
            add(
                f"group_{period_label(g)}",
                float(att[k].mean()),
                res.influence[:, k].mean(axis=1),
                float(g),
                np.nan,
                False,
            )
        att_g = np.array(est)
        value = float(att_g @ pg_group / pg_group.sum())
        psi = np.column_stack(infl) @ (pg_group / pg_group.sum())
        psi = psi + _weight_influence(res.unit_cohort, glist, pg_group) @ att_g
        add("ATT", value, psi, np.nan, np.nan, True)

    m = len(terms)
    return CSAggregate(
        aggregation=aggregation,
        terms=terms,
        estimate=np.array(est),
        influence=np.column_stack(infl),
        group=np.array(grp),
        time=_nan(m),
        event_time=np.array(evt),
        overall=np.array(overall),
    )


def _gt_as_aggregate(res: ATTgt) -> CSAggregate:
    c = res.cells
    terms = [
        f"ATT(g={period_label(g)},t={period_label(t)})" for g, t in zip(c["group"], c["time"], strict=True)
    ]
    return CSAggregate(
        aggregation="gt",
        terms=terms,
        estimate=c["att"].to_numpy(),
        influence=res.influence,
        group=c["group"].to_numpy(),
        time=c["time"].to_numpy(),
        event_time=c["event_time"].to_numpy(),
        overall=np.zeros(len(c), dtype=bool),
    )


def _rademacher(n: int, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(draws, n)).astype(float) * 2 - 1


def _if_inference(
    agg: CSAggregate, multipliers: np.ndarray | None, alpha: float, cband: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and critical values from influence functions (`did`'s getSE/mboot).

    Analytic: SE = sqrt(sum_i psi_i^2) / n (clustered by unit). Bootstrap: draws
    sqrt(n) * mean_i(v_i psi_i) with Rademacher v; SE = IQR / (z_.75 - z_.25) / sqrt(n); the
    uniform band uses the (1-alpha) quantile of max_k |draw_k / sigma_k| over the non-summary terms.
    SEs below sqrt(machine eps) * 10 (e.g. the universal-base reference cell) are NaN.
    """
    psi = agg.influence
    n = psi.shape[0]
    z = stats.norm.ppf(1 - alpha / 2)
    crit = np.full(len(agg.terms), z)
    if multipliers is None:
        se = np.sqrt((psi**2).sum(axis=0)) / n
        se[se <= _DEGENERATE_SE] = np.nan
        return se, crit
    draws = np.sqrt(n) * (multipliers @ psi) / n
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    sigma = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    sigma[sigma <= _DEGENERATE_SE] = np.nan
    se = sigma / np.sqrt(n)
    if cband:
        band = ~agg.overall & np.isfinite(sigma)
        if band.any():
            sup_t = np.max(np.abs(draws[:, band] / sigma[band]), axis=1)
            c = float(np.quantile(sup_t, 1 - alpha, method="inverted_cdf"))
            if c < z:
                log.warning("uniform critical value %.3f < pointwise %.3f: using pointwise", c, z)
                c = z
            crit[~agg.overall] = c
    return se, crit


def callaway_santanna(
    data: pd.DataFrame,
    unit: str,
    time: str,
    first_treat: str,
    outcome: str,
    covariates: str | Sequence[str] | None = None,
    *,
    control_group: ControlGroup = "never",
    base_period: Literal["varying", "universal"] = "varying",
    anticipation: int = 0,
    est_method: Literal["dr", "reg"] = "dr",
    aggregations: Sequence[Aggregation] = ("simple", "dynamic", "group"),
    bootstrap: int = 0,
    seed: int | None = None,
    cband: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Callaway-Sant'Anna estimates as a tidy frame (see `cs_att_gt` and `cs_aggregate`).

    Rows: aggregation "gt" (terms "ATT(g=2012,t=2014)"), then each of `aggregations`.
    Inference: with `bootstrap` = 0, analytic influence-function SEs clustered by unit and normal
    pointwise intervals; with `bootstrap` = B > 0, a multiplier bootstrap with B Rademacher draws
    from `seed` (required), and with `cband` a uniform (sup-t) band per aggregation block (the
    summary "ATT" rows keep pointwise intervals). p-values are normal. The same draws serve every
    block, so results depend only on `seed`.
    """
    aggs = _check_aggregations(aggregations)
    _check_alpha(alpha)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise ValueError("bootstrap must be a non-negative integer (0 = analytic standard errors)")
    if bootstrap and seed is None:
        raise ValueError("a multiplier bootstrap needs a seed")
    if cband and not bootstrap:
        raise ValueError("a uniform confidence band (cband=True) needs bootstrap > 0")
    res = cs_att_gt(
        data,
        unit,
        time,
        first_treat,
        outcome,
        covariates,
        control_group=control_group,
        base_period=base_period,
        anticipation=anticipation,
        est_method=est_method,
    )
    multipliers = _rademacher(res.n_units, bootstrap, seed) if bootstrap else None  # type: ignore[arg-type]
    blocks = []
    for agg in [_gt_as_aggregate(res), *(cs_aggregate(res, a) for a in aggs)]:
        se, crit = _if_inference(agg, multipliers, alpha, cband)
        blocks.append(
            _Block(
                agg.aggregation,
                agg.terms,
                agg.estimate,
                se,
                crit,
                agg.group,
                agg.time,
                agg.event_time,
            )
        )
    if bootstrap:
        vcov = f"multiplier bootstrap (Rademacher, B={bootstrap}, seed={seed}), clustered by unit"
        if cband:
            vcov += ", uniform band"
    else:
        vcov = "influence function, clustered by unit"
    method = "doubly robust" if est_method == "dr" else "outcome regression"
    return _tidy(
        blocks,
        estimator="callaway_santanna",
        df=None,
        n_obs=res.n_obs,
        n_clusters=res.n_units,
        control_group=control_group,
        controls=res.covariates,
        fixed_effects=f"none ({method} 2x2, base period {base_period})",
        vcov=vcov,
    )


# --------------------------------------------------------------------------------------------
# Two-way fixed-effects machinery (Sun-Abraham, imputation)
# --------------------------------------------------------------------------------------------


def _fe_design(unit: np.ndarray, tcode: np.ndarray, n_units: int, n_times: int) -> sp.csr_matrix:
    """Sparse dummies: every unit, every period but the first."""
    n = len(unit)
    rows = np.arange(n)
    du = sp.csr_matrix((np.ones(n), (rows, unit)), shape=(n, n_units))
    dt = sp.csr_matrix((np.ones(n), (rows, tcode)), shape=(n, n_times))[:, 1:]
    return sp.hstack([du, dt], format="csr")


def _require_connected(
    unit: np.ndarray, tcode: np.ndarray, n_units: int, n_times: int, what: str
) -> None:
    """Unit and period effects are identified only if the unit-period graph is connected."""
    graph = sp.csr_matrix(
        (np.ones(len(unit)), (unit, n_units + tcode)), shape=(n_units + n_times,) * 2
    )
    n_comp, _ = connected_components(graph, directed=False)
    if n_comp > 1:
        raise ValueError(
            f"{what}: unit and period fixed effects are not identified (disconnected panel)"
        )


def _factorize_gram(a: sp.spmatrix, what: str) -> SuperLU:
    try:
        return splu(sp.csc_matrix(a))
    except RuntimeError as err:
        raise ValueError(f"{what}: the design is singular ({err})") from err


def _cluster_sums(values: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum the rows of `values` (N x p) within clusters -> (n_clusters x p)."""
    out = np.zeros((n_clusters, values.shape[1]))
    np.add.at(out, cluster, values)
    return out


# --------------------------------------------------------------------------------------------
# Sun and Abraham (2021)
# --------------------------------------------------------------------------------------------


def sun_abraham(
    data: pd.DataFrame,
    unit: str,
    time: str,
    first_treat: str,
    outcome: str,
    covariates: str | Sequence[str] | None = None,
    *,
    control_group: Literal["never", "last"] = "never",
    anticipation: int = 0,
    cluster: str | None = None,
    aggregations: Sequence[Aggregation] = ("simple", "dynamic", "group"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Sun and Abraham (2021) interaction-weighted (IW) event study, as fixest's `sunab`.

    Regression of the outcome on unit and period fixed effects, (time-varying) covariates and a
    dummy for every (cohort g, relative period e) cell of the treated cohorts except the
    reference e = -1 - anticipation. Controls: never-treated units ("never"); or ("last") the last
    treated cohort plus any never-treated units, with periods from that cohort's first period -
    anticipation on dropped. Unbalanced panels are allowed.

    Rows: aggregation "cohort_event" (cell coefficients, terms "ATT(g=2012,e=2)"); "dynamic"
    (rel_<e>: cell coefficients averaged with weights = the cells' shares of observations, i.e.
    cohort shares in a balanced panel); "simple" (ATT: all e >= 0 cells weighted by observations,
    fixest's "att" aggregation); "group" (group_<g>: cohort's e >= 0 cells weighted by
    observations). SEs: CRV1 clustered by `cluster` (default: unit; units must be nested in
    clusters) with fixest's small-sample factor G/(G-1) * (N-1)/(N-K), K = coefficients + number
    of periods (unit effects nested in clusters are not counted); weights are treated as fixed
    (as fixest). p-values and intervals use t(G-1).
    """
    _check_choice(control_group, "control_group", ("never", "last"))
    aggs = _check_aggregations(aggregations)
    _check_alpha(alpha)
    panel = prepare(
        data,
        unit,
        time,
        first_treat,
        outcome,
        covariates,
        anticipation=anticipation,
        balanced=False,
        cluster=cluster,
    )
    cohort = panel.cohort
    keep = np.ones(panel.n_obs, dtype=bool)
    control_cohort = np.isinf(cohort)
    if control_group == "never":
        if not control_cohort.any():
            raise ValueError("there are no never-treated units: use control_group='last'")
    else:
        g_last = panel.unit_cohort[np.isfinite(panel.unit_cohort)].max()
        keep = panel.time < g_last - anticipation
        control_cohort = control_cohort | (cohort == g_last)
        if not (control_cohort & keep).any() or (keep & ~control_cohort).sum() == 0:
            raise ValueError("control_group='last' leaves no treated or no control observations")

    unit_c = panel.unit[keep]
    t_kept = panel.time[keep]
    times = np.unique(t_kept)
    tcode = np.searchsorted(times, t_kept)
    _, unit_c = np.unique(unit_c, return_inverse=True)
    n_units = int(unit_c.max()) + 1
    clus = pd.factorize(panel.cluster[keep], sort=True)[0]
    n_cl = int(clus.max()) + 1
    coh = cohort[keep]
    treated_row = ~control_cohort[keep]
    rel = np.where(treated_row, t_kept - np.where(treated_row, coh, 0), np.nan)
    ref = -1 - anticipation

    cell_rows = treated_row & (rel != ref)
    cells = (
        pd.DataFrame({"g": coh[cell_rows], "e": rel[cell_rows]})
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["g", "e"], ignore_index=True)
    )
    if cells.empty:
        raise ValueError("no treated cohort-period cells to estimate")
    cell_index = pd.MultiIndex.from_frame(cells[["g", "e"]])
    col = cell_index.get_indexer(pd.MultiIndex.from_arrays([coh[cell_rows], rel[cell_rows]]))
    n = len(unit_c)
    dummies = np.zeros((n, len(cells)))
    dummies[np.flatnonzero(cell_rows), col] = 1.0
    regressors = np.column_stack([dummies, panel.x[keep]])

    what = "Sun-Abraham regression"
    _require_connected(unit_c, tcode, n_units, len(times), what)
    fe = _fe_design(unit_c, tcode, n_units, len(times))
    lu = _factorize_gram(fe.T @ fe, what)
    stacked = np.column_stack([panel.y[keep], regressors])
    resid = stacked - fe @ lu.solve(np.asarray(fe.T @ stacked))
    y_t, x_t = resid[:, 0], resid[:, 1:]
    p = x_t.shape[1]
    if np.linalg.matrix_rank(x_t) < p:
        raise ValueError(
            f"{what}: cohort x period dummies or covariates are collinear with each other or with "
            "the unit and period effects (time-invariant covariates are absorbed; a cohort needs "
            "an observation in the reference period)"
        )
    bread = np.linalg.inv(x_t.T @ x_t)
    beta = bread @ (x_t.T @ y_t)
    u = y_t - x_t @ beta
    scores = _cluster_sums(x_t * u[:, None], clus, n_cl)
    vcov = crv1_vcov(bread, scores, n, p + len(times), n_cl)
    m = len(cells)
    delta, v_delta = beta[:m], vcov[:m, :m]

    g_cell = cells["g"].to_numpy(dtype=float)
    e_cell = cells["e"].to_numpy(dtype=float)
    n_cell = cells["n"].to_numpy(dtype=float)
    z_crit = stats.t.ppf(1 - alpha / 2, n_cl - 1)

    def block(
        name: str, weights: np.ndarray, terms: list[str], g: np.ndarray, e: np.ndarray
    ) -> _Block:
        est = weights @ delta
        se = np.sqrt(np.einsum("ij,jk,ik->i", weights, v_delta, weights))
        k = len(terms)
        return _Block(name, terms, est, se, np.full(k, z_crit), g, _nan(k), e)

    def share(masks: list[np.ndarray]) -> np.ndarray:
        w = np.array([np.where(mk, n_cell, 0.0) for mk in masks])
        return w / w.sum(axis=1, keepdims=True)

    blocks = [
        block(
            "cohort_event",
            np.eye(m),
            [f"ATT(g={period_label(g)},e={int(e)})" for g, e in zip(g_cell, e_cell, strict=True)],
            g_cell,
            e_cell,
        )
    ]
    post = e_cell >= 0
    for a in aggs:
        if a == "simple":
            if not post.any():
                raise ValueError("no post-treatment cells for the simple ATT")
            blocks.append(block("simple", share([post]), ["ATT"], _nan(1), _nan(1)))
        elif a == "dynamic":
            es = np.unique(e_cell)
            blocks.append(
                block(
                    "dynamic",
                    share([e_cell == e for e in es]),
                    [f"rel_{int(e)}" for e in es],
                    _nan(len(es)),
                    es,
                )
            )
        else:
            gs = np.unique(g_cell[post])
            blocks.append(
                block(
                    "group",
                    share([(g_cell == g) & post for g in gs]),
                    [f"group_{period_label(g)}" for g in gs],
                    gs,
                    _nan(len(gs)),
                )
            )
    cl_name = cluster or unit
    return _tidy(
        blocks,
        estimator="sun_abraham",
        df=n_cl - 1,
        n_obs=n,
        n_clusters=n_cl,
        control_group=control_group,
        controls=panel.covariates,
        fixed_effects="unit+time",
        vcov=f"CRV1 by {cl_name} (fixest small-sample correction)",
    )


# --------------------------------------------------------------------------------------------
# Borusyak, Jaravel and Spiess (2024) imputation = Gardner (2022) two-stage DID
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstStage:
    """Imputation first stage: FE (+ covariates) fitted on untreated observations."""

    x1: sp.csr_matrix  # (N, k1) full first-stage design
    x10: sp.csr_matrix  # x1 with the rows of treated observations set to zero
    lu: SuperLU  # factorisation of x10' x10
    resid: np.ndarray  # (N,) y - x1 @ b: the imputed effect for treated rows


def imputation_first_stage(panel: PreparedPanel, untreated: np.ndarray) -> FirstStage:
    what = "imputation first stage (untreated observations)"
    tcode = panel.time_code()
    n_times = len(panel.times)
    treated = ~untreated
    has_untreated_unit = np.bincount(panel.unit[untreated], minlength=panel.n_units) > 0
    lacking = np.unique(panel.unit[treated & ~has_untreated_unit[panel.unit]])
    if lacking.size:
        raise ValueError(
            f"{what}: {lacking.size} treated unit(s) have no untreated period, so their unit effect "
            f"cannot be estimated, e.g. {list(panel.unit_labels[lacking][:3])}"
        )
    has_untreated_time = np.bincount(tcode[untreated], minlength=n_times) > 0
    bad_t = np.unique(panel.time[treated & ~has_untreated_time[tcode]])
    if bad_t.size:
        raise ValueError(f"{what}: no untreated observation in period(s) {list(bad_t)}")
    _require_connected(panel.unit[untreated], tcode[untreated], panel.n_units, n_times, what)
    fe = _fe_design(panel.unit, tcode, panel.n_units, n_times)
    if panel.x.shape[1]:
        fe0, x0 = fe[untreated], panel.x[untreated]
        x0_within = x0 - fe0 @ _factorize_gram(fe0.T @ fe0, what).solve(np.asarray(fe0.T @ x0))
        if np.linalg.matrix_rank(x0_within) < x0.shape[1]:
            raise ValueError(
                f"{what}: covariates {list(panel.covariates)} are collinear with each other or "
                "with the unit and period effects (time-invariant covariates are absorbed)"
            )
    x1 = sp.hstack([fe, sp.csr_matrix(panel.x)], format="csr") if panel.x.shape[1] else fe
    x10 = sp.diags(untreated.astype(float)) @ x1
    lu = _factorize_gram(x10.T @ x10, what)
    b = lu.solve(np.asarray(x10.T @ panel.y).ravel())
    fitted = x1 @ b
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{what}: singular design (collinear covariates?)")
    return FirstStage(x1=x1, x10=sp.csr_matrix(x10), lu=lu, resid=panel.y - fitted)


def two_stage(
    first: FirstStage, x2: np.ndarray, cluster: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Second stage of did2s: OLS of the first-stage residual on `x2` (no intercept), with the
    GMM cluster-robust covariance of Butts and Gardner (2022) (no small-sample factor).

    V = (X2'X2)^-1 [sum_c w_c w_c'] (X2'X2)^-1,  w_c = X2_c'u2_c - X2'X1 (X10'X10)^-1 X10_c'u1_c.
    """
    u1 = first.resid
    xtx2 = x2.T @ x2
    beta = np.linalg.solve(xtx2, x2.T @ u1)
    u2 = u1 - x2 @ beta
    gamma = first.lu.solve(np.asarray(first.x1.T @ x2))  # (X10'X10)^-1 X1'X2, k1 x k2
    s2 = _cluster_sums(x2 * u2[:, None], cluster, n_clusters)
    x10u = sp.csr_matrix(first.x10.multiply(u1[:, None]))
    ind = sp.csr_matrix(
        (np.ones(len(u1)), (np.arange(len(u1)), cluster)), shape=(len(u1), n_clusters)
    )
    s1 = np.asarray((ind.T @ x10u).todense())  # (n_clusters x k1)
    w = s2 - s1 @ gamma
    inv = np.linalg.inv(xtx2)
    return beta, inv @ (w.T @ w) @ inv


def imputation_did(*args: object, **kwargs: object) -> pd.DataFrame:
    """The tidy rows of `imputation_did_with_vcov` (same arguments), without the vcovs."""
    return imputation_did_with_vcov(*args, **kwargs)[0]  # type: ignore[arg-type]


def imputation_did_with_vcov(
    data: pd.DataFrame,
    unit: str,
    time: str,
    first_treat: str,
    outcome: str,
    covariates: str | Sequence[str] | None = None,
    *,
    anticipation: int = 0,
    pretrends: bool = True,
    cluster: str | None = None,
    aggregations: Sequence[Aggregation] = ("simple", "dynamic", "group"),
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Borusyak-Jaravel-Spiess imputation estimator (= Gardner's did2s point estimates), with the
    covariance matrix of each aggregation's terms (aggregation -> DataFrame labelled by term).

    Step 1: fit y = unit + period effects (+ covariates' slopes) on untreated observations
    (never treated, or t < g - anticipation). Step 2: impute Y(0) for the other observations;
    tau_it = y - Y0_hat. Step 3: average tau: "simple" (ATT over all e >= 0 observations, each
    observation weighted equally), "dynamic" (rel_<e> for each e >= -anticipation; with
    `pretrends`, also rel_<e> for every e <= -1 - anticipation = mean first-stage residual of the
    not-yet-treated observations of eventually treated units at that e), "group" (group_<g>:
    cohort g's e >= 0 observations).

    The leads are reported as they are: mean first-stage residuals, which average to zero over all
    untreated observations. They are NOT normalised at e = -1 (no period is omitted: rel_-1 is a lead
    with its own estimate and SE), and they are not BJS's separate pre-trend regression. Each lead
    equals did2s's event-study lead at that e (did2s omits e = -1, but its second stage has mutually
    exclusive dummies and no intercept, so omitting one changes no other coefficient or SE). To
    express the dynamic effects relative to e = -1 (as HonestDiD needs), difference them using the
    returned vcov (`dualpilot.did.honestdid.normalise_at_base`).

    Each aggregation is a did2s second stage on mutually exclusive dummies; SEs and vcovs are the
    did2s GMM cluster-robust ones by `cluster` (default: unit), without small-sample factor; p-values
    and intervals use t(G-1). Unbalanced panels are allowed as long as every treated unit has an
    untreated period.
    """
    aggs = _check_aggregations(aggregations)
    _check_alpha(alpha)
    panel = prepare(
        data,
        unit,
        time,
        first_treat,
        outcome,
        covariates,
        anticipation=anticipation,
        balanced=False,
        cluster=cluster,
    )
    cohort = panel.cohort
    ever = np.isfinite(cohort)
    rel = np.where(ever, panel.time - np.where(ever, cohort, 0), np.nan)
    untreated = ~ever | (rel < -anticipation)
    first = imputation_first_stage(panel, untreated)
    n_cl = panel.n_clusters
    z_crit = stats.t.ppf(1 - alpha / 2, n_cl - 1)
    post = ever & (rel >= 0)

    vcovs: dict[str, pd.DataFrame] = {}

    def block(
        name: str, masks: list[np.ndarray], terms: list[str], g: np.ndarray, e: np.ndarray
    ) -> _Block:
        x2 = np.column_stack(masks).astype(float)
        beta, vcov = two_stage(first, x2, panel.cluster, n_cl)
        vcovs[name] = pd.DataFrame(vcov, index=terms, columns=terms)
        k = len(terms)
        return _Block(name, terms, beta, np.sqrt(np.diag(vcov)), np.full(k, z_crit), g, _nan(k), e)

    blocks = []
    for a in aggs:
        if a == "simple":
            blocks.append(block("simple", [post], ["ATT"], _nan(1), _nan(1)))
        elif a == "dynamic":
            es = np.unique(rel[ever & ~untreated])
            if pretrends:
                leads = np.unique(rel[ever & untreated])
                es = np.concatenate([leads, es])
            blocks.append(
                block(
                    "dynamic",
                    [ever & (rel == e) for e in es],
                    [f"rel_{int(e)}" for e in es],
                    _nan(len(es)),
                    es,
                )
            )
        else:
            gs = np.unique(cohort[post])
            blocks.append(
                block(
                    "group",
                    [post & (cohort == g) for g in gs],
                    [f"group_{period_label(g)}" for g in gs],
                    gs,
                    _nan(len(gs)),
                )
            )
    if not blocks:
        raise ValueError("no aggregation requested")
    tidy = _tidy(
        blocks,
        estimator="imputation",
        df=n_cl - 1,
        n_obs=panel.n_obs,
        n_clusters=n_cl,
        control_group="never+notyet",
        controls=panel.covariates,
        fixed_effects="unit+time",
        vcov=f"did2s GMM, clustered by {cluster or unit}",
    )
    return tidy, vcovs
