"""Heterogeneity-robust staggered estimators run on the study panel: Callaway-Sant'Anna with never-treated
and not-yet-treated controls, Sun-Abraham and the BJS imputation estimator (`dualpilot.did.staggered`), with
the single-pilot states handled as in the TWFE event study (`event_study: adjust_single_pilots`), in the
project's tidy format. Standard errors: each estimator keeps its own convention (documented in
`dualpilot.did.staggered`). The comparison figure is `dualpilot.render.robustness.event_study_comparison`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dualpilot.analyses import baseline as analyses
from dualpilot.analyses.samples import TIME, UNIT, complete_cases
from dualpilot.core.errors import SpecificationError
from dualpilot.core.tidy import TIDY_COLUMNS
from dualpilot.data.programmes import DEFAULT_PAIR, Pair
from dualpilot.did import staggered
from dualpilot.did.staggered import STAGGERED_COLUMNS

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Heterogeneity-robust staggered estimators
# --------------------------------------------------------------------------------------------------


SINGLE_PILOT_STATES: tuple[str, ...] = DEFAULT_PAIR.only_post_columns
"""sc_only_post and lc_only_post: the single-pilot states of the default pair that an event study around the
dual start may absorb (another pair's: `Pair.only_post_columns`)."""
_SINGLE_STATE = re.compile(r"^[a-z][a-z0-9]*_only_post$")


def single_pilot_controls(adjust: bool, pair: Pair = DEFAULT_PAIR) -> list[str]:
    """The extra controls of every event study around the dual start under `event_study:
    adjust_single_pilots` (the one switch): the single-pilot states of `pair`, or none."""
    return list(pair.only_post_columns) if adjust else []


def staggered_estimates(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """The estimates of `staggered_estimates_with_vcov` (same arguments), without the vcov."""
    return staggered_estimates_with_vcov(*args, **kwargs)[0]


def staggered_estimates_with_vcov(
    panel: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    adjust_single_pilots: bool = False,
    pair: Pair = DEFAULT_PAIR,
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
    `event_study: adjust_single_pilots`, shared with the TWFE event study) adds the single-pilot states of
    `pair` (sc_only_post and lc_only_post by default) to the covariates of Sun-Abraham and imputation, as the TWFE event study adds them to its
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
    states = single_pilot_controls(adjust_single_pilots, pair)
    if states:
        panel = analyses.pilot_states(panel, pair)
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
            frames.append(as_estimates(res, cs_sample))
        fe_args = (unit, time, first_treat, outcome, fe_covs or None)
        sa = as_estimates(
            staggered.sun_abraham(fe_data, *fe_args, cluster=cluster, alpha=alpha), fe_sample
        )
        frames.append(_with_base_row(sa, "sun_abraham_dynamic", -1))
        imp, vcovs = staggered.imputation_did_with_vcov(
            fe_data, *fe_args, cluster=cluster, alpha=alpha
        )
        frames.append(as_estimates(imp, fe_sample))
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
    times = rows["term"].map(event_time)
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
    'a + b', the staggered estimators 'a+b'; a state is a control named <key>_only_post): the treatment
    structure its event study shares or not."""
    found: set[str] = set()
    for value in rows["controls"].dropna().astype(str).unique():
        found.update(part.strip() for part in value.split("+"))
    return frozenset(p for p in found if _SINGLE_STATE.match(p))


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


def model_rows(tidy: pd.DataFrame, model: str, what: str) -> pd.DataFrame:
    rows = tidy[tidy["model"].astype(str) == model]
    if rows.empty:
        models = sorted(set(tidy["model"].astype(str)))
        raise SpecificationError(f"model {model!r} is not in {what}; it has {models}")
    return rows


def event_time(term: str) -> int:
    match = re.fullmatch(r"rel_(-?\d+)", term)
    if match is None:
        raise SpecificationError(f"{term!r} is not an event-time term rel_<k>")
    return int(match.group(1))


def as_estimates(tidy: pd.DataFrame, sample: str) -> pd.DataFrame:
    """Convert a tidy frame of this module to the project's estimate format (one row per
    (model, term)); `model` is "<estimator>_<aggregation>", `r2_within` is NaN (not defined)."""
    missing = [c for c in STAGGERED_COLUMNS if c not in tidy.columns]
    if missing:
        raise SpecificationError(f"not a frame of dualpilot.did.staggered: missing {missing}")
    out = tidy.assign(
        model=tidy["estimator"] + "_" + tidy["aggregation"], r2_within=np.nan, sample=sample
    )
    return out.loc[:, list(TIDY_COLUMNS)].reset_index(drop=True)
