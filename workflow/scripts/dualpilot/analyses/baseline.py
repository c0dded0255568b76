"""Specification builders of the baseline analyses: panel in, tidy estimates out.

Each function takes the panel (results/panel/panel.parquet) and the specification values (which arrive from
the config through Snakemake params) and returns a DataFrame in the tidy format of
`dualpilot.engines.estimation.TIDY_COLUMNS`, one row per (model, term). All models are fitted by
`dualpilot.engines.estimation.fit`, so they share its conventions (CRV1 by city with fixest's small-sample
correction by default; see docs/estimation.md).

Rows that are not plain coefficients carry a prefix in `term` (documented in docs/estimation.md):
`wald: ...` (F test: statistic in t_stat, p-value in p_value), `lincom: ...` (linear combination with its
SE) and `wildboot: ...` (wild cluster bootstrap p-value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from dualpilot.core.errors import require_columns
from dualpilot.data.programmes import DEFAULT_PAIR, DUAL_POST, Pair
from dualpilot.engines import estimation as est
from dualpilot.engines.estimation import EstimationError, Fit, VcovType

ControlGroup = Literal["never_and_not_yet", "not_yet"]


@dataclass(frozen=True)
class Options:
    """Column names and inference options shared by every model of an analysis.

    `cluster` must be None unless `vcov == "cluster"`. The province x year effect of the baseline's
    model (3) is `f"{province}^{time}"`.
    """

    outcome: str = "lq"
    unit: str = "city_code"
    time: str = "year"
    province: str = "province"
    cluster: str | None = "city_code"
    vcov: VcovType = "cluster"
    weights: str | None = None
    drop_singletons: bool = True

    @classmethod
    def coerce(cls, value: Options | Mapping[str, Any] | None) -> Options:
        """Options from an Options, a mapping of some of its fields (e.g. Snakemake params) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise EstimationError(f"unknown estimation options {unknown}; known: {sorted(known)}")
        return cls(**dict(value))

    def fit(
        self,
        data: pd.DataFrame,
        terms: Sequence[str],
        controls: Sequence[str] = (),
        fixed_effects: Sequence[str] | None = None,
    ) -> Fit:
        """`estimation.fit` with these options; fixed effects default to unit + time."""
        return est.fit(
            data,
            outcome=self.outcome,
            terms=terms,
            controls=controls,
            fixed_effects=(self.unit, self.time) if fixed_effects is None else fixed_effects,
            cluster=self.cluster,
            vcov=self.vcov,
            weights=self.weights,
            drop_singletons=self.drop_singletons,
        )


@dataclass(frozen=True)
class BootstrapOptions:
    """Wild cluster bootstrap settings (see `estimation.wild_bootstrap`).

    `cluster`: the bootstrap's cluster variable (None: the model's own clusters); `ci_level`: also the
    confidence interval by test inversion at this level (None: the p-value only)."""

    reps: int
    seed: int
    weights_type: est.BootstrapWeights = "webb"
    cluster: str | None = None
    ci_level: float | None = None

    @classmethod
    def coerce(cls, value: BootstrapOptions | Mapping[str, Any] | None) -> BootstrapOptions | None:
        if value is None or isinstance(value, cls):
            return value
        return cls(**dict(value))


# --------------------------------------------------------------------------------------------------
# Baseline
# --------------------------------------------------------------------------------------------------


def baseline(
    panel: pd.DataFrame,
    controls: Sequence[str],
    *,
    treatment: str = "dual_post",
    options: Options | Mapping[str, Any] | None = None,
    bootstrap: BootstrapOptions | Mapping[str, Any] | None = None,
    include_controls: bool = False,
) -> pd.DataFrame:
    """The baseline two-way fixed-effects DiD, three columns:

    - "(1)": outcome ~ treatment | unit + time;
    - "(2)": + controls;
    - "(3)": + controls | unit + province^time.

    With `bootstrap`, each model also gets a "wildboot: <treatment>" row: the wild cluster bootstrap
    p-value (and interval, with `ci_level`) of the same model clustered by `bootstrap.cluster` (e.g.
    province, beside the city-clustered standard errors of the coefficient rows; the row's n_clusters
    and vcov are the bootstrap's). With `include_controls`, the controls' coefficients are reported too.
    """
    opts = Options.coerce(options)
    boot = BootstrapOptions.coerce(bootstrap)
    controls = list(controls)
    specs = {
        "(1)": ([], None),
        "(2)": (controls, None),
        "(3)": (controls, (opts.unit, f"{opts.province}^{opts.time}")),
    }
    frames = []
    for name, (ctrl, fes) in specs.items():
        fit = opts.fit(panel, [treatment], ctrl, fes)
        terms = [treatment, *ctrl] if include_controls else [treatment]
        frames.append(est.tidy(fit, model=name, terms=terms))
        if boot is not None:
            boot_fit = fit
            if boot.cluster is not None and (opts.vcov, opts.cluster) != ("cluster", boot.cluster):
                require_columns(panel, [boot.cluster], "the panel for the bootstrap's clusters")
                boot_opts = replace(opts, vcov="cluster", cluster=boot.cluster)
                boot_fit = boot_opts.fit(panel, [treatment], ctrl, fes)
            result = est.wild_bootstrap(
                boot_fit, treatment, reps=boot.reps, seed=boot.seed,
                weights_type=boot.weights_type, ci_level=boot.ci_level,
            )  # fmt: skip
            frames.append(est.bootstrap_row(boot_fit, result, model=name))
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# Single pilots versus the dual pilot
# --------------------------------------------------------------------------------------------------

#: The three treated states of the default pair (sc, lc); another pair's are `Pair.state_columns`.
STATE_COLUMNS = DEFAULT_PAIR.state_columns


def pilot_states(panel: pd.DataFrame, pair: Pair = DEFAULT_PAIR) -> pd.DataFrame:
    """The panel with the single-pilot states of `pair` (a, b): a_only_post and b_only_post (built if
    absent, checked if present).

    a_only_post = a_post & not dual_post, b_only_post = b_post & not dual_post, so each city-year is
    in exactly one of none / a only / b only / dual. Raises EstimationError if the indicators are not
    0/1 or contradict dual_post = a_post & b_post (dual_year is the later of the two pilot years).
    """
    a_post, b_post = pair.post_columns
    posts = [a_post, b_post, DUAL_POST]
    require_columns(panel, posts, "the panel for the single-vs-dual analysis")
    ind = panel[posts]
    if ind.isna().any().any() or not ind.isin([0, 1]).all().all():
        raise EstimationError(
            f"{a_post}, {b_post} and dual_post must be 0/1 without missing values"
        )
    a, b, dual = (panel[c].to_numpy(dtype=int) for c in posts)
    bad = int((dual != a * b).sum())
    if bad:
        raise EstimationError(
            f"{bad} row(s) have dual_post != {a_post} * {b_post}; dual_year must be the later pilot year"
        )
    out = panel.copy()
    a_only, b_only = pair.only_post_columns
    derived = {a_only: a * (1 - dual), b_only: b * (1 - dual)}
    for name, values in derived.items():
        if name in out.columns and not np.array_equal(out[name].to_numpy(dtype=float), values):
            raise EstimationError(
                f"column {name} disagrees with its definition from {a_post}/{b_post}"
            )
        out[name] = values.astype("int64")
    return out


def single_vs_dual(
    panel: pd.DataFrame,
    controls: Sequence[str],
    *,
    options: Options | Mapping[str, Any] | None = None,
    pair: Pair = DEFAULT_PAIR,
) -> pd.DataFrame:
    """Dual pilot versus each single pilot of `pair` (a, b; default sc, lc).

    Model "joint": outcome ~ a_only_post + b_only_post + dual_post + controls | unit + time, reported
    with rows "wald: dual_post = a_only_post", "wald: dual_post = b_only_post" and
    "lincom: synergy = dual_post - a_only_post - b_only_post" (the synergy: the dual effect beyond the
    sum of the single effects). Models "a_alone" (a_post) and "b_alone" (b_post): each single pilot
    alone, same controls and effects.
    """
    opts = Options.coerce(options)
    data = pilot_states(panel, pair)
    controls = list(controls)
    a_only, b_only = pair.only_post_columns
    joint = opts.fit(data, list(pair.state_columns), controls)
    frames = [
        est.tidy(joint, model="joint"),
        est.wald_row(joint, est.equal(DUAL_POST, a_only), f"dual_post = {a_only}", model="joint"),
        est.wald_row(joint, est.equal(DUAL_POST, b_only), f"dual_post = {b_only}", model="joint"),
        est.lincom(
            joint,
            {DUAL_POST: 1.0, a_only: -1.0, b_only: -1.0},
            f"synergy = dual_post - {a_only} - {b_only}",
            model="joint",
        ),
    ]
    for name, term in zip(pair.alone_models, pair.post_columns, strict=True):
        frames.append(est.tidy(opts.fit(data, [term], controls), model=name))
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# Event study
# --------------------------------------------------------------------------------------------------


def rel_term(k: int) -> str:
    """Name of the event-time indicator for k years relative to treatment: rel_-6, rel_0, rel_8."""
    return f"rel_{k}"


def _check_window(window: Sequence[int], base: int) -> tuple[int, int]:
    lo, hi = (int(v) for v in window)
    if not lo < hi:
        raise EstimationError(f"event window must satisfy start < end, got {tuple(window)}")
    if not lo <= base <= hi:
        raise EstimationError(f"base period {base} lies outside the window {tuple(window)}")
    return lo, hi


def event_time_indicators(
    panel: pd.DataFrame,
    window: Sequence[int] = (-6, 8),
    base: int = -1,
    *,
    treat_time: str = "dual_year",
    time: str = "year",
) -> pd.DataFrame:
    """Relative-time indicators rel_k, k in [start, end] except `base` (same index as `panel`).

    Relative time is time - treat_time; values below `start` are pooled into rel_<start> and values above
    `end` into rel_<end> (binned endpoints). Never-treated rows (treat_time missing) are zero in every
    indicator, as are rows at the base period.
    """
    lo, hi = _check_window(window, base)
    require_columns(panel, [treat_time, time], "the panel for the event study")
    rel = panel[time].to_numpy(dtype=float) - panel[treat_time].to_numpy(dtype=float)
    treated = ~np.isnan(rel)
    binned = np.clip(np.where(treated, rel, 0.0), lo, hi)
    out = pd.DataFrame(index=panel.index)
    for k in range(lo, hi + 1):
        if k != base:
            out[rel_term(k)] = (treated & (binned == k)).astype("int64")
    return out


def event_study(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """The tidy rows of `event_study_with_vcov` (same arguments), without the vcov."""
    return event_study_with_vcov(*args, **kwargs)[0]


def event_study_with_vcov(
    panel: pd.DataFrame,
    controls: Sequence[str],
    window: Sequence[int] = (-6, 8),
    base: int = -1,
    control_group: ControlGroup = "never_and_not_yet",
    *,
    treat_time: str = "dual_year",
    options: Options | Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dynamic TWFE event study around `treat_time` (model "event_study"), with the vcov of its
    event-time coefficients (rows and columns rel_<k>, base period left out), which HonestDiD reads.

    outcome ~ sum_{k != base} rel_k + controls | unit + time, with endpoint bins (`event_time_indicators`).
    `control_group`: "never_and_not_yet" keeps every unit, so never-treated units (all indicators zero)
    and not-yet-treated observations identify the counterfactual; "not_yet" keeps only units treated at
    some point (sample "ever_treated"), identifying from treatment timing alone.

    Rows: rel_<start> .. rel_<end> in order, the base period as a row with estimate 0 and NaN SE, then
    "wald: leads = 0", the joint F test that all leads (k < 0, k != base) are zero (omitted if there
    are no leads).
    """
    opts = Options.coerce(options)
    lo, hi = _check_window(window, base)
    if control_group == "never_and_not_yet":
        data, sample = panel, "full"
    elif control_group == "not_yet":
        require_columns(panel, [treat_time], "the panel for the event study")
        data, sample = panel.loc[panel[treat_time].notna()], "ever_treated"
    else:
        raise EstimationError(
            f"control_group must be 'never_and_not_yet' or 'not_yet', not {control_group!r}"
        )
    indicators = event_time_indicators(data, (lo, hi), base, treat_time=treat_time, time=opts.time)
    clash = [c for c in indicators.columns if c in data.columns]
    if clash:
        raise EstimationError(f"the panel already has columns named like event indicators: {clash}")
    data = pd.concat([data, indicators], axis=1)
    terms = list(indicators.columns)
    fit = opts.fit(data, terms, list(controls))
    rows = est.tidy(fit, model="event_study", sample=sample)
    base_row = rows.iloc[[0]].copy()
    base_row[["term", "estimate"]] = [rel_term(base), 0.0]
    base_row[["std_error", "t_stat", "p_value", "conf_low", "conf_high"]] = np.nan
    order = {rel_term(k): k for k in range(lo, hi + 1)}
    rows = pd.concat([rows, base_row], ignore_index=True)
    rows = rows.sort_values("term", key=lambda s: s.map(order)).reset_index(drop=True)
    frames = [rows]
    leads = [rel_term(k) for k in range(lo, 0) if k != base]
    if leads:
        frames.append(
            est.wald_row(
                fit, [est.zero(t) for t in leads], "leads = 0", model="event_study", sample=sample
            )
        )
    return est.concat_tidy(frames), fit.term_vcov(terms)


# --------------------------------------------------------------------------------------------------
# Duration
# --------------------------------------------------------------------------------------------------

DEFAULT_BINS: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5), (6, 99))
INTERACTION_TERM = "dual_post_x_years_since_dual"


def dur_term(lo: int, hi: int) -> str:
    """Name of the duration-bin indicator: dur_0_1."""
    return f"dur_{lo}_{hi}"


def duration_indicators(
    panel: pd.DataFrame,
    bins: Sequence[Sequence[int]] = DEFAULT_BINS,
    *,
    treated: str = "dual_post",
    since: str = "years_since_dual",
) -> pd.DataFrame:
    """Indicators dur_<lo>_<hi> = treated & lo <= since <= hi (same index as `panel`).

    Bins are closed integer intervals, sorted and disjoint; every treated row must fall in one of them,
    otherwise EstimationError lists the uncovered values of `since`.
    """
    require_columns(panel, [treated, since], "the panel for the duration analysis")
    clean = [(int(b[0]), int(b[1])) for b in bins]
    if not clean:
        raise EstimationError("duration bins are empty")
    for (lo, hi), nxt in zip(clean, [*clean[1:], None], strict=True):
        if lo > hi or lo < 0:
            raise EstimationError(f"duration bin {[lo, hi]} must satisfy 0 <= lo <= hi")
        if nxt is not None and nxt[0] <= hi:
            raise EstimationError(
                f"duration bins must be sorted and disjoint: {[lo, hi]}, {list(nxt)}"
            )
    on = panel[treated].to_numpy(dtype=float) == 1
    years = panel[since].to_numpy(dtype=float)
    if np.isnan(years[on]).any():
        raise EstimationError(f"{since} is missing for treated rows")
    out = pd.DataFrame(index=panel.index)
    covered = np.zeros(len(panel), dtype=bool)
    for lo, hi in clean:
        hit = on & (years >= lo) & (years <= hi)
        covered |= hit
        out[dur_term(lo, hi)] = hit.astype("int64")
    uncovered = np.unique(years[on & ~covered])
    if uncovered.size:
        raise EstimationError(f"{since} values {uncovered.tolist()} of treated rows are in no bin")
    return out


def duration(
    panel: pd.DataFrame,
    controls: Sequence[str],
    bins: Sequence[Sequence[int]] = DEFAULT_BINS,
    *,
    options: Options | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """How the dual effect evolves with years since the dual pilot started.

    Model "bins": outcome ~ dur_<lo>_<hi> (one per bin) + controls | unit + time.
    Model "linear": outcome ~ dual_post + dual_post_x_years_since_dual + controls | unit + time, where the
    interaction is dual_post * years_since_dual (0 when not treated): the effect in the first year and
    its change per additional year.
    """
    opts = Options.coerce(options)
    indicators = duration_indicators(panel, bins)
    clash = [c for c in [*indicators.columns, INTERACTION_TERM] if c in panel.columns]
    if clash:
        raise EstimationError(f"the panel already has columns {clash}")
    data = pd.concat([panel, indicators], axis=1)
    since = np.nan_to_num(data["years_since_dual"].to_numpy(dtype=float), nan=0.0)
    data[INTERACTION_TERM] = data["dual_post"].to_numpy(dtype=float) * since
    controls = list(controls)
    frames = [
        est.tidy(opts.fit(data, list(indicators.columns), controls), model="bins"),
        est.tidy(opts.fit(data, ["dual_post", INTERACTION_TERM], controls), model="linear"),
    ]
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# Descriptive statistics
# --------------------------------------------------------------------------------------------------

DESCRIPTIVE_COLUMNS = ("variable", "group", "n", "mean", "sd", "min", "max")


def descriptives(
    panel: pd.DataFrame,
    variables: Sequence[str],
    by: str | None = "group",
    *,
    group_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """N, mean, sd (n - 1 denominator), min and max of each variable, overall and by `by`.

    One row per (variable, group): group "all" first, then the values of `by` in `group_order` (default:
    sorted). N counts non-missing values; statistics ignore missing values. No `by`: only "all".
    """
    require_columns(panel, [*variables, *([by] if by else [])], "the panel for descriptives")
    not_numeric = [v for v in variables if not pd.api.types.is_numeric_dtype(panel[v])]
    if not_numeric:
        raise EstimationError(f"descriptives need numeric variables: {not_numeric}")
    groups: list[tuple[str, pd.DataFrame]] = [("all", panel)]
    if by:
        present = [str(v) for v in panel[by].dropna().unique()]
        order = list(group_order) if group_order is not None else sorted(present)
        missing = sorted(set(present) - set(order))
        if missing:
            raise EstimationError(f"group_order lacks values of {by}: {missing}")
        keys = panel[by].astype(str)
        groups += [(g, panel.loc[keys == g]) for g in order]
    rows = []
    for variable in variables:
        for name, part in groups:
            values = part[variable].astype(float)
            rows.append(
                {
                    "variable": variable,
                    "group": name,
                    "n": int(values.notna().sum()),
                    "mean": values.mean(),
                    "sd": values.std(ddof=1),
                    "min": values.min(),
                    "max": values.max(),
                }
            )
    out = pd.DataFrame(rows, columns=list(DESCRIPTIVE_COLUMNS))
    out["n"] = out["n"].astype("int64")
    return out
