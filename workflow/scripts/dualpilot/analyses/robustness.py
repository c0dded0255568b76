"""Robustness II: heterogeneity-robust staggered DID, the Goodman-Bacon decomposition, HonestDiD
sensitivity, the two-treatment (pilot order and pilot state) design and the robustness grid.

Every function takes the panel (results/panel/panel.parquet) and specification values that arrive from the
config through Snakemake params; the rules of workflow/rules/robustness.smk only read, call and write.
Estimates are returned in the project's tidy format (`dualpilot.engines.estimation.TIDY_COLUMNS`); docs/robustness.md
says what each estimator identifies and how to read each figure.

- Goodman-Bacon (`bacon`, `bacon_figure`): the no-control TWFE coefficient of `dual_post` (baseline model
  (1), not the headline model (2): the decomposition does not hold with controls) as a weighted sum of 2x2
  DIDs, checked to add up to the coefficient `estimation.fit` gives; table and figure say which model.
- Staggered (`staggered_estimates_with_vcov`, `event_study_comparison`): Callaway-Sant'Anna with
  never-treated and not-yet-treated controls, Sun-Abraham and the BJS imputation estimator
  (`dualpilot.did.staggered`), with the single-pilot states handled as in the TWFE event study
  (`event_study: adjust_single_pilots`), and the comparable ones next to the TWFE event study on one axis.
- HonestDiD (`honest_event_study`, `honest_sensitivity`, `honestdid_figure`): robust confidence sets
  for the first post-period and the average post-period effect of the imputation event study (default;
  re-expressed relative to the base period) or the TWFE event study (`dualpilot.did.honestdid`), read from
  its estimates and vcov (rules estimate_staggered, estimate_event_study) without a re-fit.
- Two-treatment design (`pilot_order`, `order_indicators`, `state_imputation`, `two_treatment_design`): the
  dual effect by which pilot came first, and the effects of the four states none / smart-city only /
  low-carbon only / dual estimated by imputation from not-yet-treated and never-treated observations, next
  to TWFE.
- The robustness grid (`parse_grid`, `build_spec`, `run_grid`, `describe_specs`, `robustness_table`): each
  row a specification written as data in the config, applied to baseline model (2).
- Treatment recoding for the grid (`load_pilot_lists`, `merge_policy`, `PolicyRecoder`, `check_coding`):
  the pilot lists chosen exactly as rule build_panel chooses them (`reference.choose_policy_file`) and
  recoded with `treatment.code_treatment`.

Standard errors: TWFE models use `estimation.fit`'s CRV1 with fixest's small-sample correction (reghdfe's
convention) and t(G-1) inference; the staggered estimators keep their own conventions (documented in
`dualpilot.did.staggered`); the state imputation estimator uses the did2s GMM cluster-robust vcov (Butts and
Gardner 2022; no small-sample factor) with t(G-1) inference. HonestDiD uses normal critical values, as the R
package does.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dualpilot.analyses import baseline as analyses
from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.data import reference, treatment
from dualpilot.did import honestdid as hd
from dualpilot.did import staggered
from dualpilot.engines import estimation as est
from dualpilot.engines.estimation import Fit, Spec
from dualpilot.render import plots, tables
from dualpilot.render.tables import Language

log = logging.getLogger(__name__)

UNIT = "city_code"
TIME = "year"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


# --------------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------------


def complete_cases(
    data: pd.DataFrame,
    columns: Sequence[str],
    *,
    unit: str = UNIT,
    whole_units: bool = False,
) -> tuple[pd.DataFrame, str]:
    """`data` without the rows (or, with `whole_units`, the units) that miss a value in `columns`.

    The staggered estimators refuse missing values; this is the one place where they are removed, logged
    with their count and named in the returned sample label ("full" when nothing is dropped). Balanced-panel
    estimators (Callaway-Sant'Anna) need `whole_units=True`: dropping single rows would unbalance the panel.
    """
    require_columns(data, [*columns, unit], "the panel")
    gap = data[list(columns)].isna().any(axis=1)
    if not gap.any():
        return data, "full"
    where = sorted(c for c in columns if data[c].isna().any())
    if whole_units:
        units = set(data.loc[gap, unit])
        kept = data.loc[~data[unit].isin(units)]
        n_units = data[unit].nunique()
        log.warning(
            "dropping %d of %d cities with a missing value in %s (a balanced panel is needed)",
            len(units),
            n_units,
            where,
        )
        return (
            kept,
            f"cities without missing {'/'.join(where)} ({n_units - len(units)} of {n_units})",
        )
    log.warning("dropping %d row(s) with a missing value in %s", int(gap.sum()), where)
    return data.loc[~gap], f"rows without missing {'/'.join(where)} ({int(gap.sum())} dropped)"


# --------------------------------------------------------------------------------------------------
# Goodman-Bacon decomposition
# --------------------------------------------------------------------------------------------------

_BACON_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "x": "权重",
        "y": "2×2 DID 估计值",
        "twfe": "TWFE 系数（基准模型 (1)，无控制变量）= {value:.3f}",
    },
    "en": {
        "x": "Weight",
        "y": "2×2 DID estimate",
        "twfe": "TWFE coefficient (baseline model (1), no controls) = {value:.3f}",
    },
}


@dataclass(frozen=True)
class BaconResult:
    """A Goodman-Bacon decomposition with its summary and the TWFE coefficient it adds up to."""

    decomposition: pd.DataFrame
    """One row per 2x2 comparison (`staggered.goodman_bacon`): type, treated, control, window,
    unit counts, estimate, weight."""
    summary: pd.DataFrame
    """`staggered.bacon_summary`: weight and weighted estimate by comparison type, plus "total", with a
    `specification` column naming the regression decomposed (`bacon_specification`)."""
    twfe: float
    """The coefficient of `treatment` in outcome ~ treatment | unit + time (`estimation.fit`)."""


def bacon_specification(outcome: str, treatment_col: str, unit: str, time: str) -> str:
    """The regression a Goodman-Bacon decomposition splits, as its table states it: baseline model (1),
    without controls (with controls, TWFE adds a within-timing-group term that it does not split, so
    the headline model (2) is not decomposed)."""
    return f"{outcome} ~ {treatment_col} | {unit} + {time}: baseline model (1), no controls"


def bacon(
    panel: pd.DataFrame,
    *,
    outcome: str = "lq",
    treatment_col: str = "dual_post",
    unit: str = UNIT,
    time: str = TIME,
    tol: float = 1e-8,
) -> BaconResult:
    """Goodman-Bacon decomposition of the TWFE coefficient of `treatment_col` (no controls).

    The decomposition holds for outcome ~ treatment | unit + time on a balanced panel with an absorbing
    treatment. It is checked here: the weights must sum to 1 and the weighted sum of the 2x2 estimates must
    equal the coefficient that `estimation.fit` estimates, up to `tol` (absolute); otherwise
    SpecificationError.
    """
    try:
        dec = staggered.goodman_bacon(panel, unit, time, treatment_col, outcome)
    except ValueError as err:
        raise SpecificationError(f"Goodman-Bacon decomposition: {err}") from err
    summary = staggered.bacon_summary(dec)
    fit = est.fit(panel, outcome=outcome, terms=[treatment_col], fixed_effects=(unit, time))
    twfe = float(fit.coef[treatment_col])
    implied = float((dec["weight"] * dec["estimate"]).sum())
    if abs(dec["weight"].sum() - 1.0) > tol or abs(implied - twfe) > tol:
        raise SpecificationError(
            f"the Goodman-Bacon decomposition does not add up: weights sum to {dec['weight'].sum():.10f}, "
            f"weighted 2x2 estimates to {implied:.10f}, TWFE coefficient {twfe:.10f}"
        )
    summary = summary.assign(specification=bacon_specification(outcome, treatment_col, unit, time))
    return BaconResult(decomposition=dec, summary=summary, twfe=twfe)


def bacon_figure(
    result: BaconResult,
    *,
    language: Language = "zh",
    labels: tables.Labels | Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """Scatter of each 2x2 comparison's weight (x) against its estimate (y), one marker and colour per
    comparison type (labelled by the ``bacon:<type>`` entries of `labels`, default
    resources/labels/terms.csv), with a dashed horizontal line at the TWFE coefficient (the weighted
    mean)."""
    lang = plots.configure_fonts(language)
    text = _BACON_LABELS[lang]
    lab = tables.resolve_labels(labels)
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    dec = result.decomposition
    for j, kind in enumerate(staggered.BACON_TYPES):
        part = dec[dec["type"] == kind]
        if part.empty:
            continue
        ax.scatter(
            part["weight"],
            part["estimate"],
            marker=_MARKERS[j % len(_MARKERS)],
            color=f"C{j}",
            s=36,
            label=lab.get(f"bacon:{kind}", lang),
            zorder=3,
        )
    ax.axhline(
        result.twfe,
        linestyle="--",
        color="0.3",
        linewidth=1.0,
        label=text["twfe"].format(value=result.twfe),
    )
    ax.axhline(0.0, color="0.7", linewidth=0.8, zorder=0)
    ax.set_xlabel(text["x"])
    ax.set_ylabel(text["y"])
    ax.set_xlim(left=0)
    ax.legend(frameon=False, fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------------
# Heterogeneity-robust staggered estimators
# --------------------------------------------------------------------------------------------------


SINGLE_PILOT_STATES: tuple[str, ...] = analyses.STATE_COLUMNS[:2]
"""sc_only_post and lc_only_post: the single-pilot states an event study around the dual start may absorb."""


def single_pilot_controls(adjust: bool) -> list[str]:
    """The extra controls of every event study around the dual start under `event_study:
    adjust_single_pilots` (the one switch): the single-pilot states, or none."""
    return list(SINGLE_PILOT_STATES) if adjust else []


def staggered_estimates(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """The estimates of `staggered_estimates_with_vcov` (same arguments), without the vcov."""
    return staggered_estimates_with_vcov(*args, **kwargs)[0]


def staggered_estimates_with_vcov(
    panel: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    adjust_single_pilots: bool = False,
    outcome: str = "lq",
    unit: str = UNIT,
    time: str = TIME,
    first_treat: str = "dual_year",
    cs_control_groups: Sequence[str] = ("never", "notyet"),
    cs_est_method: str = "dr",
    cs_base_period: str = "universal",
    cluster: str | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Callaway-Sant'Anna (one per control group), Sun-Abraham and imputation estimates, project format,
    with the vcov of the imputation event study (model imputation_dynamic, rows and columns rel_<e>).

    Models are "<estimator>_<aggregation>" with estimator callaway_santanna_never,
    callaway_santanna_notyet, sun_abraham and imputation, aggregations gt (CS only), simple, dynamic, group
    (and cohort_event for Sun-Abraham). Terms: ATT, rel_<e>, group_<g>, ATT(g=..,t=..).

    Treatment structure: the event is `first_treat` (the dual start). `adjust_single_pilots` (config
    `event_study: adjust_single_pilots`, shared with the TWFE event study) adds sc_only_post and
    lc_only_post to the covariates of Sun-Abraham and imputation, as the TWFE event study adds them to its
    controls; Callaway-Sant'Anna takes covariates at the base period only and cannot absorb a time-varying
    state, so it keeps them out (its `controls` column says so, and `event_study_comparison` does not
    draw it next to an adjusted TWFE event study); a warning is logged.

    Base periods (each event study's `rel_<e>` rows): Sun-Abraham omits e = -1 (a rel_-1 row with
    estimate 0 and no SE states it, as in the TWFE event study); Callaway-Sant'Anna with
    `cs_base_period="universal"` compares every period with g-1 (rel_-1 reported as 0 with no SE),
    with "varying" each pre-period with the one before; the imputation leads are mean first-stage
    residuals with their own SEs, normalised at no period (`staggered.imputation_did_with_vcov`).

    Samples (the `sample` column says which): Callaway-Sant'Anna needs a balanced panel, so cities with a
    missing outcome or covariate in any year are dropped; Sun-Abraham and imputation drop only the rows
    with a missing value (the sample of the TWFE regression). `cluster` (default: the unit) applies to
    Sun-Abraham and imputation; Callaway-Sant'Anna's influence-function SEs are clustered by unit.
    """
    covs = list(covariates)
    states = single_pilot_controls(adjust_single_pilots)
    if states:
        panel = analyses.pilot_states(panel)
        log.warning(
            "single-pilot states %s absorbed by Sun-Abraham and imputation; Callaway-Sant'Anna takes "
            "covariates at its base period only and keeps single-pilot years among its controls",
            states,
        )
    cs_data, cs_sample = complete_cases(panel, [outcome, *covs], unit=unit, whole_units=True)
    fe_data, fe_sample = complete_cases(panel, [outcome, *covs, *states], unit=unit)
    fe_covs = [*covs, *states]
    frames: list[pd.DataFrame] = []
    try:
        for group in cs_control_groups:
            res = staggered.callaway_santanna(
                cs_data,
                unit,
                time,
                first_treat,
                outcome,
                covs or None,
                control_group=group,  # type: ignore[arg-type]
                base_period=cs_base_period,  # type: ignore[arg-type]
                est_method=cs_est_method,  # type: ignore[arg-type]
                alpha=alpha,
            )
            res = res.assign(estimator=f"callaway_santanna_{group}")
            frames.append(staggered.as_estimates(res, cs_sample))
        fe_args = (unit, time, first_treat, outcome, fe_covs or None)
        sa = staggered.as_estimates(
            staggered.sun_abraham(fe_data, *fe_args, cluster=cluster, alpha=alpha), fe_sample
        )
        frames.append(_with_base_row(sa, "sun_abraham_dynamic", -1))
        imp, vcovs = staggered.imputation_did_with_vcov(
            fe_data, *fe_args, cluster=cluster, alpha=alpha
        )
        frames.append(staggered.as_estimates(imp, fe_sample))
    except ValueError as err:
        raise SpecificationError(f"staggered estimators: {err}") from err
    vcov = vcovs["dynamic"].rename_axis(index="term")
    return pd.concat(frames, ignore_index=True), vcov


def _with_base_row(tidy: pd.DataFrame, model: str, base: int) -> pd.DataFrame:
    """`tidy` with a row rel_<base> of `model` (estimate 0, no SE) before the first later event time: the
    period the event study omitted, stated as the TWFE event study states it."""
    rows = tidy[tidy["model"] == model]
    term = analyses.rel_term(base)
    if rows.empty or term in set(rows["term"]):
        raise SpecificationError(f"{model}: cannot add the base row {term}")
    base_row = rows.iloc[[0]].copy()
    base_row[["term", "estimate"]] = [term, 0.0]
    base_row[["std_error", "t_stat", "p_value", "conf_low", "conf_high"]] = np.nan
    times = rows["term"].map(_event_time)
    after = rows.index[times.to_numpy() > base]
    at = int(after[0]) if len(after) else int(rows.index[-1]) + 1
    return pd.concat([tidy.loc[: at - 1], base_row, tidy.loc[at:]], ignore_index=True)


def event_terms(tidy: pd.DataFrame, window: Sequence[int]) -> pd.DataFrame:
    """The rows of `tidy` whose term is rel_<k> with `window[0] <= k <= window[1]`."""
    lo, hi = (int(v) for v in window)
    k = tidy["term"].astype(str).str.extract(r"^rel_(-?\d+)$")[0]
    keep = k.notna() & k.astype(float).between(lo, hi)
    return tidy.loc[keep.to_numpy()]


def single_pilot_structure(rows: pd.DataFrame) -> frozenset[str]:
    """The single-pilot states a model absorbed, read from its `controls` column (TWFE writes
    'a + b', the staggered estimators 'a+b'): the treatment structure its event study shares or not."""
    found: set[str] = set()
    for value in rows["controls"].dropna().astype(str).unique():
        found.update(part.strip() for part in value.split("+"))
    return frozenset(found & set(SINGLE_PILOT_STATES))


def event_study_base(model: str, *, base: int = -1, cs_base_period: str = "universal") -> str:
    """How the event study of `model` sets its base period: "omitted" (a period omitted, reported as 0:
    TWFE at `base`, Sun-Abraham and Callaway-Sant'Anna with the universal base at -1), "varying"
    (Callaway-Sant'Anna's pre-periods against the year before) or "none" (imputation leads)."""
    if model.startswith("imputation"):
        return "none"
    if model.startswith("callaway_santanna"):
        if cs_base_period not in ("universal", "varying"):
            raise SpecificationError(f"unknown cs_base_period {cs_base_period!r}")
        return "omitted" if cs_base_period == "universal" else "varying"
    if model.startswith("sun_abraham") or model == "event_study":
        return "omitted"
    raise SpecificationError(f"no base-period convention known for model {model!r}")


_ESTIMATORS_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "omitted": "{name}，基期 {base}",
        "varying": "{name}，前期为逐年差分",
        "none": "{name}，无基期（前期为残差均值）",
        "note": "相对时间 {lo} 至 {hi}（TWFE 两端合并区间不画）；单一试点状态：{states}",
        "adjusted": "各序列均已控制",
        "not_adjusted": "各序列均未控制",
        "left_out": "\n未画（单一试点处理方式不同）：{names}",
    },
    "en": {
        "omitted": "{name}, base {base}",
        "varying": "{name}, pre-periods year on year",
        "none": "{name}, no base (leads: mean residuals)",
        "note": "Event times {lo} to {hi} (binned TWFE endpoints not drawn); single-pilot states: {states}",
        "adjusted": "absorbed in every series",
        "not_adjusted": "absorbed in no series",
        "left_out": "\nNot drawn (single pilots handled differently): {names}",
    },
}


def event_study_comparison(
    twfe: pd.DataFrame,
    robust: pd.DataFrame,
    series: Mapping[str, str],
    *,
    window: Sequence[int] = (-6, 8),
    base: int = -1,
    cs_base_period: str = "universal",
    twfe_model: str = "event_study",
    twfe_label: str = "TWFE",
    ci: float = 0.95,
    language: Language = "zh",
) -> Figure:
    """The TWFE event study and the comparable robust event studies on one axis (`plots.multi_event_study`).

    `twfe` is results/estimates/event_study.csv (model `twfe_model`, rel_<k> with the base row at estimate
    0); `robust` is results/estimates/staggered.csv; `series` maps each legend label to a model of it (e.g.
    "Sun-Abraham": "sun_abraham_dynamic"). Like for like:

    - every series has the dual start as its event; a series is drawn only if it handles the single pilots
      as the TWFE event study does (`single_pilot_structure`: the same single-pilot states absorbed); the
      others are left out, logged and named in the figure's note (none comparable: SpecificationError);
    - the TWFE endpoints of `window` are bins (all periods beyond), the robust estimators' are single event
      times: only the event times strictly inside `window` are drawn;
    - each legend entry states its base period (`event_study_base`) and its sample (cities, observations).

    `ci`: see `plots.confidence_bounds` (0.95 draws each estimator's own interval).
    """
    if not series:
        raise SpecificationError("no robust estimator to plot next to TWFE")
    lang = tables.check_language(language)
    text = _ESTIMATORS_TEXT[lang]
    lo, hi = int(window[0]) + 1, int(window[1]) - 1  # the binned endpoints are not comparable
    twfe_rows = _model_rows(twfe, twfe_model, "the TWFE event study")
    structure = single_pilot_structure(twfe_rows)

    def name(label: str, model: str) -> str:
        kind = event_study_base(model, base=base, cs_base_period=cs_base_period)
        return text[kind].format(name=label, base=base)

    frames = {name(twfe_label, twfe_model): event_terms(twfe_rows, (lo, hi))}
    left_out = []
    for label, model in series.items():
        rows = _model_rows(robust, model, "the staggered estimates")
        if single_pilot_structure(rows) != structure:
            left_out.append(label)
            log.warning(
                "%s (%s) is not drawn next to TWFE: it absorbs single-pilot states %s, TWFE %s",
                label,
                model,
                sorted(single_pilot_structure(rows)),
                sorted(structure),
            )
            continue
        key = name(label, model)
        if key in frames:
            raise SpecificationError(f"legend label {label!r} is used twice")
        frames[key] = event_terms(rows, (lo, hi))
    if len(frames) == 1:
        raise SpecificationError(
            f"no robust event study handles the single pilots as the TWFE event study does "
            f"(absorbed: {sorted(structure)}); left out: {left_out}"
        )
    empty = [label for label, frame in frames.items() if frame.empty]
    if empty:
        raise SpecificationError(f"no event-time estimates in the window {[lo, hi]} for {empty}")
    fig = plots.multi_event_study(frames, base_period=base, ci=ci, language=lang)
    note = text["note"].format(
        lo=lo, hi=hi, states=text["adjusted" if structure else "not_adjusted"]
    )
    if left_out:
        note += text["left_out"].format(names=("、" if lang == "zh" else ", ").join(left_out))
    fig.axes[0].set_title(note, loc="left", fontsize="small", wrap=True)
    return fig


def _model_rows(tidy: pd.DataFrame, model: str, what: str) -> pd.DataFrame:
    rows = tidy[tidy["model"].astype(str) == model]
    if rows.empty:
        models = sorted(set(tidy["model"].astype(str)))
        raise SpecificationError(f"model {model!r} is not in {what}; it has {models}")
    return rows


# --------------------------------------------------------------------------------------------------
# HonestDiD on a reported event study (imputation by default, or TWFE)
# --------------------------------------------------------------------------------------------------

HONEST_SOURCES: dict[str, tuple[str, str]] = {
    "imputation": ("imputation_dynamic", "estimate_staggered"),
    "twfe": ("event_study", "estimate_event_study"),
}
"""config `robustness: honestdid: event_study` -> (model of the event study, rule that writes it)."""


def event_study_estimates(
    reported: pd.DataFrame,
    vcov: pd.DataFrame,
    *,
    model: str = "event_study",
    rule: str = "estimate_event_study",
    rtol: float = 1e-6,
) -> pd.Series:
    """The event-time coefficients of a reported event study, in the order of their vcov.

    `reported` holds the estimates (results/estimates/event_study.csv, model "event_study", or
    staggered.csv, model "imputation_dynamic") and `vcov` the covariance of the event-time terms
    (event_study_vcov.csv or imputation_event_study_vcov.csv, read with ``index_col="term"``), both
    written by rule `rule`, so HonestDiD runs on the reported event study without re-fitting it. The two
    files must belong together: the vcov is square and symmetric over the terms, every term has a row in
    `reported` (model `model`), and the standard errors there equal the square roots of the vcov's
    diagonal (within `rtol`); otherwise SpecificationError (e.g. one file is from an older run).
    """
    rows = _model_rows(reported, model, "the reported event study")
    if rows["term"].duplicated().any():
        raise SpecificationError(
            f"model {model!r} of the reported event study repeats terms (several samples?)"
        )
    rows = rows.set_index("term")
    terms = [str(t) for t in vcov.index]
    if [str(c) for c in vcov.columns] != terms:
        raise SpecificationError(
            f"the event study's vcov is not square over its terms: rows {terms}, "
            f"columns {list(vcov.columns)}"
        )
    matrix = vcov.to_numpy(dtype=float)
    if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=0):
        raise SpecificationError("the event study's vcov is not symmetric")
    absent = [t for t in terms if t not in rows.index]
    if absent:
        raise SpecificationError(
            f"the estimates of {model!r} lack the terms {absent} of its vcov: the two files are "
            f"from different runs; rebuild them with rule {rule}"
        )
    se_want = rows.loc[terms, "std_error"].to_numpy(dtype=float)
    if not np.allclose(np.sqrt(np.diag(matrix)), se_want, rtol=rtol, atol=0):
        raise SpecificationError(
            f"the standard errors of {model!r} differ from its vcov: the two files are from "
            f"different runs; rebuild them with rule {rule}"
        )
    return rows.loc[terms, "estimate"].astype(float).rename("estimate")


def honest_event_study(
    reported: pd.DataFrame,
    vcov: pd.DataFrame,
    *,
    source: str = "imputation",
    base: int = -1,
    window: Sequence[int] = (-6, 8),
    exclude_endpoints: bool = True,
) -> tuple[pd.Series, pd.DataFrame, list[str]]:
    """The event study HonestDiD analyses: (coefficients, vcov, terms to leave out), base period omitted.

    `source` (config `robustness: honestdid: event_study`): "imputation" reads model imputation_dynamic
    (staggered.csv and imputation_event_study_vcov.csv). Its coefficients are mean residuals normalised at
    no period, so the event times of `window` (single event times, no bins) are re-expressed relative to
    `base` with their joint covariance (`honestdid.normalise_at_base`: b_e - b_base); the effects HonestDiD
    then bounds are those differences, as in any event study normalised at `base`. "twfe" reads the TWFE
    event study (event_study.csv and event_study_vcov.csv), which omitted `base` already; with
    `exclude_endpoints` its two binned endpoints are left out (a bin pools several years).
    """
    if source not in HONEST_SOURCES:
        raise SpecificationError(
            f"HonestDiD event study {source!r}: one of {sorted(HONEST_SOURCES)}"
        )
    model, rule = HONEST_SOURCES[source]
    coef = event_study_estimates(reported, vcov, model=model, rule=rule)
    if source == "twfe":
        by_time = sorted(coef.index, key=_event_time)
        exclude = [by_time[0], by_time[-1]] if exclude_endpoints else []
        return coef, vcov.loc[coef.index, coef.index], exclude
    lo, hi = (int(v) for v in window)
    inside = [t for t in coef.index if lo <= _event_time(t) <= hi]
    try:
        times, beta, sigma = hd.normalise_at_base(
            [_event_time(t) for t in inside],
            coef[inside].to_numpy(dtype=float),
            vcov.loc[inside, inside].to_numpy(dtype=float),
            base_period=base,
        )
    except hd.HonestDiDError as err:
        raise SpecificationError(f"HonestDiD on {model}: {err}") from err
    terms = [analyses.rel_term(t) for t in times]
    return (
        pd.Series(beta, index=terms, name="estimate"),
        pd.DataFrame(sigma, index=terms, columns=terms),
        [],
    )


def _event_time(term: str) -> int:
    match = re.fullmatch(r"rel_(-?\d+)", term)
    if match is None:
        raise SpecificationError(f"{term!r} is not an event-time term rel_<k>")
    return int(match.group(1))


def honest_sensitivity(
    coef: pd.Series,
    vcov: pd.DataFrame,
    *,
    base: int = -1,
    source: str = "twfe",
    exclude_terms: Sequence[str] = (),
    Mbar_grid: Sequence[float] = (0.5, 1.0, 2.0),
    M_grid: Sequence[float] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    n_draws: int = 1000,
    rm_method: str = "C-LF",
    sd_methods: Sequence[str] = ("FLCI", "Conditional"),
) -> pd.DataFrame:
    """HonestDiD confidence sets for the first post-period and the average post-period effect.

    The event-study coefficients `coef` (rel_<k> terms, as `event_study_estimates` returns them; minus
    `exclude_terms`, e.g. the binned endpoints, whose "period" pools several event times) and their vcov
    `vcov` (labelled by term) are ordered by `honestdid.prepare_event_study`: the
    base period `base` is the omitted, normalised period (-1 here, the R package's 0), the pre-periods
    `base`-1, `base`-2, ... and the post periods 0, 1, ... must be consecutive. Restrictions: relative
    magnitudes with `Mbar_grid` and second-difference smoothness with `M_grid` (None: data-driven, see
    `honestdid.honest_did`). Columns: those of `honestdid.honest_did` plus event_study (`source`, the
    event study analysed: see `honest_event_study`), base_period, pre_periods and post_periods (e.g.
    "-5..-2", "0..7"); the average post effect averages the post periods listed.
    """
    terms = list(coef.index)
    unknown = [t for t in exclude_terms if t not in terms]
    if unknown:
        raise SpecificationError(f"exclude_terms {unknown} are not event-study terms {terms}")
    kept = [t for t in terms if t not in set(exclude_terms)]
    times = [_event_time(t) for t in kept]
    try:
        beta, sigma, num_pre, num_post = hd.prepare_event_study(
            times,
            coef[kept].to_numpy(dtype=float),
            vcov.loc[kept, kept].to_numpy(dtype=float),
            base_period=base,
        )
        out = hd.honest_did(
            beta,
            sigma,
            num_pre,
            num_post,
            Mbar_grid=tuple(float(m) for m in Mbar_grid),
            M_grid=None if M_grid is None else tuple(float(m) for m in M_grid),
            alpha=alpha,
            seed=seed,
            n_draws=n_draws,
            rm_method=rm_method,
            sd_methods=tuple(sd_methods),
        )
    except hd.HonestDiDError as err:
        raise SpecificationError(f"HonestDiD: {err}") from err
    ordered = sorted(times)
    pre = [t for t in ordered if t < base]
    post = [t for t in ordered if t > base]
    return out.assign(
        event_study=source,
        base_period=base,
        pre_periods=f"{pre[0]}..{pre[-1]}",
        post_periods=f"{post[0]}..{post[-1]}",
    )


_HONEST_INPUT_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "imputation": "输入为插补估计量（BJS）的事件研究及其协方差矩阵，其系数（残差均值，无基期）改写为与第 "
        "{base} 期系数之差，故原始置信区间是该差值的区间",
        "twfe": "输入为 TWFE 事件研究及其协方差矩阵，以第 {base} 期为省略的基期",
        "periods": "前期 {pre}，后期 {post}",
        "bounds": "M̄ 为相对幅度约束的上限，M 为平滑性约束（二阶差分）的上限",
    },
    "en": {
        "imputation": "Input: the imputation (Borusyak-Jaravel-Spiess) event study and its covariance; its "
        "coefficients (mean residuals, normalised at no period) are re-expressed as differences from the "
        "coefficient at event time {base}, so the original interval is that of such a difference",
        "twfe": "Input: the TWFE event study and its covariance, event time {base} the omitted base period",
        "periods": "pre-periods {pre}, post-periods {post}",
        "bounds": "M̄ bounds the relative magnitudes, M the second differences (smoothness)",
    },
}


def honestdid_note(frame: pd.DataFrame, *, language: Language = "zh", short: bool = False) -> str:
    """The note of the HonestDiD table (and, `short`, its first sentence for the figure), read from
    honestdid.csv: which event study was analysed, its base period and how it was normalised, the periods
    used, and what M̄ and M bound."""
    lang = tables.check_language(language)
    text = _HONEST_INPUT_TEXT[lang]
    cols = ["event_study", "base_period", "pre_periods", "post_periods"]
    require_columns(frame, cols, "the HonestDiD note")
    described = frame[cols].drop_duplicates()
    if len(described) != 1:
        raise SpecificationError(
            f"honestdid.csv mixes event studies: {described.to_dict('records')}"
        )
    row = described.iloc[0]
    parts = [
        text[str(row["event_study"])].format(base=int(row["base_period"])),
        text["periods"].format(pre=row["pre_periods"], post=row["post_periods"]),
        text["bounds"],
    ]
    return tables._join_sentences(parts[:2] if short else parts, lang)


_HONEST_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "RM": "相对幅度约束（M̄）",
        "SD": "平滑性约束（M）",
        "original": "原始",
        "y": "{ci} 稳健置信区间",
        "empty": "空集",
    },
    "en": {
        "RM": "Relative magnitudes (M̄)",
        "SD": "Smoothness (M)",
        "original": "Original",
        "y": "{ci} robust confidence set",
        "empty": "empty",
    },
}


def bound_ticks(values: Sequence[float]) -> list[str]:
    """Tick labels of the M̄ or M grid with one number of decimals for all, just enough to tell the
    smallest step apart (0.00511, 0.0102 -> "0.005", "0.010"; 0.5, 1, 2 -> "0.5", "1.0", "2.0")."""
    vals = sorted(float(v) for v in values)
    steps = [b - a for a, b in zip(vals, vals[1:], strict=False) if b - a > 0]
    scale = min([*steps, *(abs(v) for v in vals if v)], default=1.0)
    decimals = max(0, -math.floor(math.log10(scale))) if scale > 0 else 0
    return [f"{v:.{decimals}f}" for v in vals]


def honestdid_figure(
    frame: pd.DataFrame,
    *,
    alpha: float = 0.05,
    language: Language = "zh",
    labels: tables.Labels | Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """Sensitivity plot: the event study analysed and its base period on top (`honestdid_note`), one row
    of panels per target (first_post, avg_post), relative magnitudes on the left and smoothness on the
    right; each panel shows the original CI and the robust set at each M̄ or
    M as vertical intervals (methods side by side), an empty set as a labelled cross. Targets and methods
    are labelled from `labels` (resources/labels/terms.csv: ``first_post``, ``method:FLCI``, ...); the
    M̄/M ticks share one number of decimals (`bound_ticks`); one legend for all panels sits below them,
    clear of the zero line."""
    lang = plots.configure_fonts(language)
    lab = tables.resolve_labels(labels)
    text = _HONEST_TEXT[lang]
    targets = list(dict.fromkeys(frame["target"]))
    fig = Figure(figsize=(9.0, 3.2 * len(targets) + 0.9), layout="constrained")
    # which event study, and relative to which base period (the figure states it, as the table does)
    fig.suptitle(honestdid_note(frame, language=lang, short=True), fontsize="small", wrap=True)
    axes = fig.subplots(len(targets), 2, squeeze=False)
    level = f"{(1 - alpha) * 100:g}%"
    legend: dict[str, Any] = {}
    for i, target in enumerate(targets):
        part = frame[frame["target"] == target]
        original = part[part["restriction"] == "none"]
        for j, restriction in enumerate(("RM", "SD")):
            ax = axes[i][j]
            rows = part[part["restriction"] == restriction]
            values = sorted(set(rows["Mbar_or_M"].astype(float)))
            ticks = [text["original"], *bound_ticks(values)]
            methods = list(dict.fromkeys(rows["method"]))
            _interval(ax, 0.0, original.iloc[0], color="0.25", marker="s", label=None, text=text)
            for k, method in enumerate(methods):
                shift = 0.12 * (k - (len(methods) - 1) / 2)
                sub = rows[rows["method"] == method]
                name = lab.value("method", str(method), lang) or str(method)
                for pos, value in enumerate(values, start=1):
                    cell = sub[np.isclose(sub["Mbar_or_M"].astype(float), value)]
                    if cell.empty:
                        continue
                    handle = _interval(
                        ax,
                        pos + shift,
                        cell.iloc[0],
                        color=f"C{k + 2 * j}",
                        marker=_MARKERS[(k + 2 * j) % len(_MARKERS)],
                        label=name,
                        text=text,
                    )
                    if handle is not None:
                        legend.setdefault(name, handle)
            ax.axhline(0.0, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
            ax.set_xticks(range(len(ticks)), labels=ticks)
            ax.set_xlabel(text[restriction])
            ax.set_title(lab.get(str(target), lang), fontsize="medium")
            if j == 0:
                ax.set_ylabel(text["y"].format(ci=level))
    if legend:
        fig.legend(
            list(legend.values()),
            list(legend),
            loc="outside lower center",
            ncols=min(len(legend), 4),
            frameon=False,
            fontsize="small",
        )
    return fig


def _interval(ax: Any, x: float, row: pd.Series, **style: Any) -> Any:
    """Draw one confidence set as a vertical segment (a cross marked 'empty' when it is empty); returns
    the segment's line (for the legend), or None for an empty set."""
    text = style.pop("text")
    lo, hi = float(row["conf_low"]), float(row["conf_high"])
    if math.isnan(lo) or math.isnan(hi):
        ax.plot([x], [0.0], marker="x", color=style["color"], linestyle="none")
        ax.annotate(text["empty"], (x, 0.0), xytext=(0, 6), textcoords="offset points", ha="center")
        return None
    (line,) = ax.plot(
        [x, x],
        [lo, hi],
        color=style["color"],
        linewidth=2.0,
        marker=style["marker"],
        markevery=[0, 1],
    )
    return line


# --------------------------------------------------------------------------------------------------
# Two-treatment design: pilot order and pilot states
# --------------------------------------------------------------------------------------------------

ORDER_TERMS: dict[str, str] = {
    "sc_first": "dual_sc_first",
    "lc_first": "dual_lc_first",
    "same_year": "dual_same_year",
}
"""Pilot order of a dual city -> name of its dual_post indicator."""
STATE_TERMS: tuple[str, ...] = ("sc_only_post", "lc_only_post", "dual_post")
SYNERGY = {"dual_post": 1.0, "sc_only_post": -1.0, "lc_only_post": -1.0}
SYNERGY_LABEL = "synergy = dual_post - sc_only_post - lc_only_post"


def pilot_order(panel: pd.DataFrame) -> pd.Series:
    """Which pilot a dual city held first: "sc_first", "lc_first" or "same_year" ("" if never dual).

    Read from sc_year and lc_year (dual_year is the later of the two); the panel's index is kept.
    """
    require_columns(
        panel, ["sc_year", "lc_year", "dual_year"], "the panel for the pilot-order analysis"
    )
    sc = panel["sc_year"].to_numpy(dtype=float)
    lc = panel["lc_year"].to_numpy(dtype=float)
    dual = panel["dual_year"].to_numpy(dtype=float)
    both = ~np.isnan(sc) & ~np.isnan(lc)
    if not np.array_equal(both, ~np.isnan(dual)) or not np.allclose(
        dual[both], np.fmax(sc[both], lc[both])
    ):
        raise SpecificationError(
            "dual_year must be the later of sc_year and lc_year when both exist"
        )
    order = np.select(
        [both & (sc < lc), both & (lc < sc), both & (sc == lc)],
        ["sc_first", "lc_first", "same_year"],
        default="",
    )
    return pd.Series(order, index=panel.index, name="pilot_order", dtype="str")


def order_indicators(panel: pd.DataFrame) -> pd.DataFrame:
    """dual_post split by pilot order: dual_sc_first, dual_lc_first, dual_same_year (0/1, same index)."""
    order = pilot_order(panel)
    dual = panel["dual_post"].to_numpy(dtype=int)
    return pd.DataFrame(
        {term: dual * (order == key).to_numpy() for key, term in ORDER_TERMS.items()},
        index=panel.index,
    ).astype("int64")


def first_pilot_year(panel: pd.DataFrame) -> pd.Series:
    """The year a city entered its first pilot (either programme), NaN if never."""
    return pd.Series(
        np.fmin(panel["sc_year"].to_numpy(dtype=float), panel["lc_year"].to_numpy(dtype=float)),
        index=panel.index,
        name="first_pilot_year",
    )


def state_imputation(
    data: pd.DataFrame,
    states: Sequence[str],
    covariates: Sequence[str] = (),
    *,
    outcome: str = "lq",
    unit: str = UNIT,
    time: str = TIME,
    first_treat: str = "first_pilot_year",
    cluster: str | None = None,
) -> Fit:
    """Imputation estimator (Borusyak, Jaravel and Spiess 2024) of the effect of each treatment state.

    Untreated observations are those before `first_treat` (the first pilot of either programme) and all
    observations of never-treated units. Step 1 fits outcome = unit + time effects (+ covariates) on them;
    step 2 imputes Y(0) for every other observation; step 3 averages y - Y0_hat within each state. The
    `states` are 0/1 columns that must be mutually exclusive and cover exactly the observations from
    `first_treat` on (e.g. sc_only_post, lc_only_post, dual_post), so each coefficient is the average
    effect of being in that state rather than in no pilot, identified only from never-treated and
    not-yet-treated observations (no already-treated unit serves as a control).

    This is a did2s second stage on the state dummies (`staggered`'s first stage and GMM vcov, Butts and
    Gardner 2022, clustered by `cluster`, default the unit; no small-sample factor). Returned as an
    `estimation.Fit` with df_t = G - 1, so `estimation.tidy`, `lincom` and `wald_row` report it; it has no
    design for a wild bootstrap. Rows with missing values must be removed first (`complete_cases`).
    """
    states = list(states)
    try:
        panel = staggered._prepare(
            data,
            unit,
            time,
            first_treat,
            outcome,
            list(covariates) or None,
            anticipation=0,
            balanced=False,
            cluster=cluster,
        )
    except ValueError as err:
        raise SpecificationError(f"state imputation: {err}") from err
    missing = [s for s in states if s not in data.columns]
    if missing:
        raise SpecificationError(f"state imputation: the data lack state column(s) {missing}")
    key = pd.DataFrame({unit: panel.unit_labels[panel.unit], time: panel.time})
    source = data[[unit, time, *states]].astype({time: "int64"})
    aligned = key.merge(source, on=[unit, time], how="left", validate="one_to_one")
    x2 = aligned[states].to_numpy(dtype=float)
    if not np.isin(x2, [0.0, 1.0]).all():
        raise SpecificationError(f"state columns {states} must be 0/1 without missing values")
    cohort = panel.cohort
    treated = np.isfinite(cohort) & (panel.time >= np.where(np.isfinite(cohort), cohort, 0))
    if not np.array_equal(x2.sum(axis=1), treated.astype(float)):
        raise SpecificationError(
            f"state columns {states} must be mutually exclusive and equal 1 exactly from "
            f"{first_treat} on"
        )
    empty = [s for s, n in zip(states, x2.sum(axis=0), strict=True) if n == 0]
    if empty:
        raise SpecificationError(f"state imputation: no observation in state(s) {empty}")
    try:
        first = staggered._imputation_first_stage(panel, ~treated)
    except ValueError as err:
        raise SpecificationError(f"state imputation: {err}") from err
    beta, vcov = staggered._two_stage(first, x2, panel.cluster, panel.n_clusters)
    g = panel.n_clusters
    cluster_name = cluster or unit
    spec = Spec(
        outcome=outcome,
        terms=tuple(states),
        controls=tuple(covariates),
        fixed_effects=(unit, time),
        cluster=cluster_name,
    )
    return Fit(
        spec=spec,
        coef=pd.Series(beta, index=states, name="estimate"),
        vcov=pd.DataFrame(vcov, index=states, columns=states),
        n_obs=panel.n_obs,
        n_clusters=g,
        r2_within=math.nan,
        df_k=len(states),
        df_t=g - 1,
        ssc=1.0,
        vcov_label=(
            f"did2s GMM by {cluster_name} (Butts-Gardner, no small-sample factor, G={g}; "
            f"t and F with G-1={g - 1} df)"
        ),
        n_dropped_missing=0,
        n_dropped_singletons=0,
        sample_index=pd.RangeIndex(panel.n_obs),
        _design=pd.DataFrame(),
        _aliases={},
    )


def _order_rows(fit: Fit, model: str, sample: str, present: Sequence[str]) -> list[pd.DataFrame]:
    """Tests of the pilot-order model: the dual effects of the orders `present` are equal (pairwise for
    SC-first vs LC-first, jointly for all), and the increment of the second pilot (the dual effect of an
    order minus the effect of holding its first pilot alone)."""
    sc, lc = ORDER_TERMS["sc_first"], ORDER_TERMS["lc_first"]
    rows = []
    if sc in present and lc in present:
        rows.append(
            est.wald_row(fit, est.equal(sc, lc), f"{sc} = {lc}", model=model, sample=sample)
        )
    if len(present) == 3:
        restrictions = [est.equal(present[0], other) for other in present[1:]]
        label = " = ".join(present)
        rows.append(est.wald_row(fit, restrictions, label, model=model, sample=sample))
    for term, single in ((sc, "sc_only_post"), (lc, "lc_only_post")):
        if term in present:
            rows.append(
                est.lincom(
                    fit, {term: 1.0, single: -1.0}, f"{term} - {single}", model=model, sample=sample
                )
            )
    return rows


def two_treatment_design(
    panel: pd.DataFrame,
    controls: Sequence[str],
    *,
    options: analyses.Options | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The two-treatment design: pilot states and pilot order, by TWFE and by imputation.

    Models (tidy format):
    - "twfe_states": outcome ~ sc_only_post + lc_only_post + dual_post + controls | unit + time, with
      "lincom: synergy = dual_post - sc_only_post - lc_only_post";
    - "imputation_states": the same three state effects by `state_imputation` (not-yet-treated and
      never-treated controls only), with the same synergy row;
    - "twfe_order" and "imputation_order": dual_post split into dual_sc_first / dual_lc_first /
      dual_same_year (which pilot came first), next to sc_only_post and lc_only_post, with Wald tests that
      the dual effect does not depend on the order and lincom rows for the increment of the second pilot
      (dual_sc_first - sc_only_post, dual_lc_first - lc_only_post). An order no dual city has is left out
      (with a logged warning), and so are the tests that involve it.
    The imputation models use the rows without missing values in the outcome and controls (the TWFE
    sample); their SEs are did2s GMM (see `state_imputation`), the TWFE ones `estimation.fit`'s CRV1.
    """
    opts = analyses.Options.coerce(options)
    controls = list(controls)
    data = analyses.pilot_states(panel)
    clash = [c for c in [*ORDER_TERMS.values(), "first_pilot_year"] if c in data.columns]
    if clash:
        raise SpecificationError(f"the panel already has columns {clash}")
    data = pd.concat([data, order_indicators(data), first_pilot_year(data)], axis=1)
    present = [t for t in ORDER_TERMS.values() if data[t].any()]
    if len(present) < len(ORDER_TERMS):
        log.warning(
            "no dual city in pilot order(s) %s: left out of the order models",
            sorted(set(ORDER_TERMS.values()) - set(present)),
        )
    order_terms = ["sc_only_post", "lc_only_post", *present]

    states_fit = opts.fit(data, list(STATE_TERMS), controls)
    order_fit = opts.fit(data, order_terms, controls)
    complete, sample = complete_cases(data, [opts.outcome, *controls], unit=opts.unit)
    imputation = {
        name: state_imputation(
            complete,
            terms,
            controls,
            outcome=opts.outcome,
            unit=opts.unit,
            time=opts.time,
            cluster=opts.cluster,
        )
        for name, terms in (("states", list(STATE_TERMS)), ("order", order_terms))
    }
    frames = []
    for model, fit, where in (
        ("twfe_states", states_fit, "full"),
        ("imputation_states", imputation["states"], sample),
    ):
        frames += [
            est.tidy(fit, model=model, sample=where),
            est.lincom(fit, SYNERGY, SYNERGY_LABEL, model=model, sample=where),
        ]
    for model, fit, where in (
        ("twfe_order", order_fit, "full"),
        ("imputation_order", imputation["order"], sample),
    ):
        frames += [
            est.tidy(fit, model=model, sample=where),
            *_order_rows(fit, model, where, present),
        ]
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# Treatment recoding (pilot lists as rule build_panel chooses them)
# --------------------------------------------------------------------------------------------------

PILOT_FILES: dict[str, str] = {
    "smart_city": "smart_city_pilots.csv",
    "low_carbon": "low_carbon_pilots.csv",
}


def load_pilot_lists(
    raw_dir: str | Path,
    shipped: Mapping[str, str | Path],
    provinces: Sequence[str] | set[str],
) -> dict[str, pd.DataFrame]:
    """The smart-city and low-carbon pilot lists, chosen as rule build_panel chooses them: the user's
    `<raw_dir>/policy/<file>` if present, else the shipped list (`reference.choose_policy_file`).
    `shipped` maps "smart_city" and "low_carbon" to the shipped files."""
    lists = {}
    for key, name in PILOT_FILES.items():
        if key not in shipped:
            raise SpecificationError(f"no shipped {key} pilot list given")
        path, is_shipped = reference.choose_policy_file(raw_dir, name, shipped[key])
        log.info(
            "%s pilot list: %s%s", key, path, " (shipped)" if is_shipped else " (from raw_dir)"
        )
        lists[key] = reference.load_pilot_list(path, provinces=set(provinces))
    return lists


def merge_policy(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (the config's policy block) with the keys of `override` replaced, recursively.

    Every key of `override` must exist in `base` (a misspelt key raises SpecificationError)."""
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            raise SpecificationError(
                f"unknown policy setting {key!r} in a grid specification; known: {sorted(base)}"
            )
        if isinstance(value, Mapping):
            if not isinstance(base[key], Mapping):
                raise SpecificationError(f"policy setting {key!r} is not a group of settings")
            out[key] = merge_policy(base[key], value)
        else:
            out[key] = value
    return out


def recode_treatment(
    panel: pd.DataFrame,
    policy: Mapping[str, Any],
    *,
    lists: Mapping[str, pd.DataFrame],
    master: pd.DataFrame,
    last_year: int,
) -> pd.DataFrame:
    """The panel with its treatment columns recoded by `treatment.code_treatment` under `policy` (a
    complete policy block, e.g. from `merge_policy`). Other columns and the row order are kept."""
    bare = panel.drop(columns=[c for c in treatment.TREATMENT_COLUMNS if c in panel.columns])
    try:
        return treatment.code_treatment(
            bare,
            lists["smart_city"],
            lists["low_carbon"],
            master,
            **treatment.rules_from_config(policy),
            last_year=last_year,
        )
    except ValueError as err:
        raise SpecificationError(f"recoding the treatment: {err}") from err


_CODING_CHECK = ("sc_year", "lc_year", "dual_year", "sc_post", "lc_post", "dual_post")


def check_coding(panel: pd.DataFrame, recoded: pd.DataFrame) -> None:
    """Raise SpecificationError unless `recoded` (the panel recoded under the config's own policy) has the
    panel's treatment coding: the grid's recodings must start from the lists the panel was built from."""
    differing = [
        c
        for c in _CODING_CHECK
        if not np.array_equal(
            panel[c].to_numpy(dtype=float), recoded[c].to_numpy(dtype=float), equal_nan=True
        )
    ]
    if differing:
        raise SpecificationError(
            f"recoding the panel with the configured policy changes {differing}: the pilot lists or the "
            "policy settings given to this rule differ from those the panel was built with"
        )


@dataclass(frozen=True)
class PolicyRecoder:
    """Recodes the treatment under the config's policy block with a grid specification's overrides."""

    lists: Mapping[str, pd.DataFrame]
    master: pd.DataFrame
    policy: Mapping[str, Any]
    last_year: int

    def __call__(self, panel: pd.DataFrame, override: Mapping[str, Any]) -> pd.DataFrame:
        return recode_treatment(
            panel,
            merge_policy(self.policy, override),
            lists=self.lists,
            master=self.master,
            last_year=self.last_year,
        )


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


_TABLE_TEXT: dict[str, dict[str, Any]] = {
    "zh": {
        "header": (
            "设定",
            "被解释变量",
            "估计系数",
            "标准误",
            "野自助法 p 值",
            "观测值",
            "聚类层面（个数）",
        ),
        "title": "稳健性检验",
        "design": "每行为基准模型（2）的一项改动（控制变量，城市与年份固定效应），除非该行另有说明",
        "se": "括号内为聚类稳健标准误（CRV1，fixest/reghdfe 小样本校正），聚类层面见最后一列",
        "boot": "野自助法 p 值为同一聚类层面的 WCR 野聚类自助法（{reps} 次，{weights} 权重，种子 {seed}）",
        "no_cluster": "不聚类",
    },
    "en": {
        "header": (
            "Specification",
            "Outcome",
            "Estimate",
            "SE",
            "Wild bootstrap p",
            "Observations",
            "Clusters (number)",
        ),
        "title": "Robustness checks",
        "design": (
            "Each row changes one element of baseline model (2) (controls, city and year fixed "
            "effects) unless it says otherwise"
        ),
        "se": (
            "Cluster-robust standard errors in parentheses (CRV1 with the fixest/reghdfe small-sample "
            "correction), clustered as the last column says"
        ),
        "boot": (
            "the wild bootstrap p-value is a WCR wild cluster bootstrap at the same level ({reps} draws, "
            "{weights} weights, seed {seed})"
        ),
        "no_cluster": "none",
    },
}


def robustness_table(
    grid: pd.DataFrame,
    specs: pd.DataFrame,
    *,
    language: Language = "zh",
    digits: int = 3,
    stars: Sequence[float] = (0.1, 0.05, 0.01),
    bootstrap: analyses.BootstrapOptions | Mapping[str, Any] | None = None,
    labels: tables.Labels | Mapping[str, tuple[str, str]] | None = None,
) -> tables.Table:
    """The grid as a three-line table, one row per specification (the grid is too wide for one column
    per model): label, outcome, estimate with stars (one per threshold of `stars` the p-value is below),
    SE, wild bootstrap p-value (blank if not run), N, and cluster variable with the number of clusters.
    `grid` and `specs` are `run_grid`'s outputs; outcome and cluster labels come from `labels`
    (resources/labels/terms.csv by default; the derived outcomes have their own labels)."""
    lang = tables.check_language(language)
    thresholds = tables.check_stars(stars)
    text = _TABLE_TEXT[lang]
    lab = tables.resolve_labels(labels)
    boot = analyses.BootstrapOptions.coerce(bootstrap)
    rows = []
    any_boot = False
    for spec in specs.itertuples(index=False):
        part = grid[grid["model"] == spec.model].set_index("term")
        if spec.treatment not in part.index:
            raise SpecificationError(f"grid estimates lack {spec.treatment!r} of {spec.model!r}")
        main = part.loc[spec.treatment]
        boot_term = est.BOOTSTRAP_PREFIX + spec.treatment
        boot_p = part.loc[boot_term, "p_value"] if boot_term in part.index else math.nan
        any_boot |= not math.isnan(boot_p)
        cluster = (
            text["no_cluster"]
            if spec.cluster == "none"
            else f"{lab.get('cluster:' + spec.cluster, lang)} "
            f"({tables.format_count(main['n_clusters'])})"
        )
        rows.append(
            tables.Row(
                (
                    spec.label_zh if lang == "zh" else spec.label_en,
                    _outcome_label(spec.outcome, lab, lang),
                    tables.format_number(main["estimate"], digits)
                    + tables.significance_stars(main["p_value"], thresholds),
                    f"({tables.format_number(main['std_error'], digits)})",
                    tables.format_p(boot_p, digits),
                    tables.format_count(main["n_obs"]),
                    cluster,
                ),
                kind="coef",
            )
        )
    sentences = [text["design"], text["se"]]
    if any_boot:
        if boot is None:
            raise SpecificationError("the grid has bootstrap p-values but no bootstrap settings")
        sentences.append(
            text["boot"].format(reps=boot.reps, weights=boot.weights_type, seed=boot.seed)
        )
    sentences.append(tables._star_sentence(thresholds, lang))
    return tables.Table(
        header=text["header"],
        panels=(tables.Panel(tuple(rows)),),
        language=lang,
        n_stub=2,
        title=text["title"],
        notes=(tables._join_sentences(sentences, lang),),
    )


def _outcome_label(outcome: str, labels: tables.Labels, language: Language) -> str:
    return labels.get(outcome, language)  # a missing label is logged and the name printed
