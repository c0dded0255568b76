"""HonestDiD sensitivity of a reported event study (the imputation event study by default, or the TWFE one):
robust confidence sets for the first post-period and the average post-period effect, read from the
estimates and vcov (rules estimate_staggered, estimate_event_study) without a re-fit (`dualpilot.did.honestdid`;
normal critical values, as the R package). Note and figure: `dualpilot.render.robustness`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dualpilot.analyses import baseline as analyses
from dualpilot.analyses.staggered_did import event_time, model_rows
from dualpilot.core.errors import SpecificationError
from dualpilot.did import honestdid as hd

log = logging.getLogger(__name__)

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
    rows = model_rows(reported, model, "the reported event study")
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
        by_time = sorted(coef.index, key=event_time)
        exclude = [by_time[0], by_time[-1]] if exclude_endpoints else []
        return coef, vcov.loc[coef.index, coef.index], exclude
    lo, hi = (int(v) for v in window)
    inside = [t for t in coef.index if lo <= event_time(t) <= hi]
    try:
        times, beta, sigma = hd.normalise_at_base(
            [event_time(t) for t in inside],
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
    times = [event_time(t) for t in kept]
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
