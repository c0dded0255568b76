"""The two-treatment design: the dual effect by which pilot came first (`pilot_order`, `order_indicators`),
and the effects of the four states none / smart-city only / low-carbon only / dual estimated by imputation
from not-yet-treated and never-treated observations, next to TWFE (`state_imputation`,
`two_treatment_design`). TWFE models use `estimation.fit`'s CRV1 (fixest small-sample factor, t(G-1)); the
state imputation estimator uses the did2s GMM cluster-robust vcov (Butts and Gardner 2022; no small-sample
factor) with t(G-1) inference."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dualpilot.analyses import baseline as analyses
from dualpilot.analyses.samples import TIME, UNIT, complete_cases
from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.data.programmes import DEFAULT_PAIR, DUAL_POST, DUAL_YEAR, Pair
from dualpilot.did import staggered
from dualpilot.engines import estimation as est
from dualpilot.engines.estimation import Fit, Spec

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Two-treatment design: pilot order and pilot states
# --------------------------------------------------------------------------------------------------


def order_terms(pair: Pair = DEFAULT_PAIR) -> dict[str, str]:
    """Pilot order of a dual city -> name of its dual_post indicator: a_first -> dual_a_first, b_first ->
    dual_b_first, same_year -> dual_same_year, for the keys a, b of `pair`."""
    a_first, b_first = pair.first_orders
    return {a_first: f"dual_{a_first}", b_first: f"dual_{b_first}", "same_year": "dual_same_year"}


def synergy(pair: Pair = DEFAULT_PAIR) -> tuple[dict[str, float], str]:
    """The synergy of `pair` as lincom weights and label: dual_post - a_only_post - b_only_post."""
    a_only, b_only = pair.only_post_columns
    return (
        {DUAL_POST: 1.0, a_only: -1.0, b_only: -1.0},
        f"synergy = dual_post - {a_only} - {b_only}",
    )


ORDER_TERMS: dict[str, str] = order_terms()
"""Pilot order of a dual city -> name of its dual_post indicator (default pair)."""
STATE_TERMS: tuple[str, ...] = DEFAULT_PAIR.state_columns
SYNERGY, SYNERGY_LABEL = synergy()


def pilot_order(panel: pd.DataFrame, pair: Pair = DEFAULT_PAIR) -> pd.Series:
    """Which pilot of `pair` (a, b) a dual city held first: "a_first", "b_first" or "same_year" ("" if
    never dual; "sc_first", "lc_first" for the default pair).

    Read from a_year and b_year (dual_year is the later of the two); the panel's index is kept.
    """
    a_col, b_col = pair.year_columns
    require_columns(panel, [a_col, b_col, DUAL_YEAR], "the panel for the pilot-order analysis")
    a = panel[a_col].to_numpy(dtype=float)
    b = panel[b_col].to_numpy(dtype=float)
    dual = panel[DUAL_YEAR].to_numpy(dtype=float)
    both = ~np.isnan(a) & ~np.isnan(b)
    if not np.array_equal(both, ~np.isnan(dual)) or not np.allclose(
        dual[both], np.fmax(a[both], b[both])
    ):
        raise SpecificationError(
            f"dual_year must be the later of {a_col} and {b_col} when both exist"
        )
    order = np.select(
        [both & (a < b), both & (b < a), both & (a == b)],
        [*pair.first_orders, "same_year"],
        default="",
    )
    return pd.Series(order, index=panel.index, name="pilot_order", dtype="str")


def order_indicators(panel: pd.DataFrame, pair: Pair = DEFAULT_PAIR) -> pd.DataFrame:
    """dual_post split by pilot order: dual_a_first, dual_b_first, dual_same_year (0/1, same index)."""
    order = pilot_order(panel, pair)
    dual = panel[DUAL_POST].to_numpy(dtype=int)
    return pd.DataFrame(
        {term: dual * (order == key).to_numpy() for key, term in order_terms(pair).items()},
        index=panel.index,
    ).astype("int64")


def first_pilot_year(panel: pd.DataFrame, pair: Pair = DEFAULT_PAIR) -> pd.Series:
    """The year a city entered its first pilot (either programme of `pair`), NaN if never."""
    a_col, b_col = pair.year_columns
    return pd.Series(
        np.fmin(panel[a_col].to_numpy(dtype=float), panel[b_col].to_numpy(dtype=float)),
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
        panel = staggered.prepare(
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
        first = staggered.imputation_first_stage(panel, ~treated)
    except ValueError as err:
        raise SpecificationError(f"state imputation: {err}") from err
    beta, vcov = staggered.two_stage(first, x2, panel.cluster, panel.n_clusters)
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


def _order_rows(
    fit: Fit, model: str, sample: str, present: Sequence[str], pair: Pair = DEFAULT_PAIR
) -> list[pd.DataFrame]:
    """Tests of the pilot-order model: the dual effects of the orders `present` are equal (pairwise for
    a-first vs b-first, jointly for all), and the increment of the second pilot (the dual effect of an
    order minus the effect of holding its first pilot alone)."""
    terms = order_terms(pair)
    a, b = (terms[o] for o in pair.first_orders)
    rows = []
    if a in present and b in present:
        rows.append(est.wald_row(fit, est.equal(a, b), f"{a} = {b}", model=model, sample=sample))
    if len(present) == 3:
        restrictions = [est.equal(present[0], other) for other in present[1:]]
        label = " = ".join(present)
        rows.append(est.wald_row(fit, restrictions, label, model=model, sample=sample))
    for term, single in zip((a, b), pair.only_post_columns, strict=True):
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
    pair: Pair = DEFAULT_PAIR,
) -> pd.DataFrame:
    """The two-treatment design: pilot states and pilot order of `pair` (a, b; default sc, lc), by TWFE and
    by imputation.

    Models (tidy format):
    - "twfe_states": outcome ~ a_only_post + b_only_post + dual_post + controls | unit + time, with
      "lincom: synergy = dual_post - a_only_post - b_only_post";
    - "imputation_states": the same three state effects by `state_imputation` (not-yet-treated and
      never-treated controls only), with the same synergy row;
    - "twfe_order" and "imputation_order": dual_post split into dual_a_first / dual_b_first /
      dual_same_year (which pilot came first), next to a_only_post and b_only_post, with Wald tests that
      the dual effect does not depend on the order and lincom rows for the increment of the second pilot
      (dual_a_first - a_only_post, dual_b_first - b_only_post). An order no dual city has is left out
      (with a logged warning), and so are the tests that involve it.
    The imputation models use the rows without missing values in the outcome and controls (the TWFE
    sample); their SEs are did2s GMM (see `state_imputation`), the TWFE ones `estimation.fit`'s CRV1.
    """
    opts = analyses.Options.coerce(options)
    controls = list(controls)
    data = analyses.pilot_states(panel, pair)
    terms = order_terms(pair)
    states = list(pair.state_columns)
    weights, label = synergy(pair)
    clash = [c for c in [*terms.values(), "first_pilot_year"] if c in data.columns]
    if clash:
        raise SpecificationError(f"the panel already has columns {clash}")
    data = pd.concat([data, order_indicators(data, pair), first_pilot_year(data, pair)], axis=1)
    present = [t for t in terms.values() if data[t].any()]
    if len(present) < len(terms):
        log.warning(
            "no dual city in pilot order(s) %s: left out of the order models",
            sorted(set(terms.values()) - set(present)),
        )
    order_columns = [*pair.only_post_columns, *present]

    states_fit = opts.fit(data, states, controls)
    order_fit = opts.fit(data, order_columns, controls)
    complete, sample = complete_cases(data, [opts.outcome, *controls], unit=opts.unit)
    imputation = {
        name: state_imputation(
            complete,
            columns,
            controls,
            outcome=opts.outcome,
            unit=opts.unit,
            time=opts.time,
            cluster=opts.cluster,
        )
        for name, columns in (("states", states), ("order", order_columns))
    }
    frames = []
    for model, fit, where in (
        ("twfe_states", states_fit, "full"),
        ("imputation_states", imputation["states"], sample),
    ):
        frames += [
            est.tidy(fit, model=model, sample=where),
            est.lincom(fit, weights, label, model=model, sample=where),
        ]
    for model, fit, where in (
        ("twfe_order", order_fit, "full"),
        ("imputation_order", imputation["order"], sample),
    ):
        frames += [
            est.tidy(fit, model=model, sample=where),
            *_order_rows(fit, model, where, present, pair),
        ]
    return est.concat_tidy(frames)
