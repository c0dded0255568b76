"""The Goodman-Bacon decomposition of the TWFE coefficient of the dual pilot (baseline model (1), no
controls), checked to add up to the coefficient `estimation.fit` gives. The decomposition itself is
`dualpilot.did.bacon`; the figure is `dualpilot.render.robustness.bacon_figure`; docs/robustness.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from dualpilot.analyses.samples import TIME, UNIT
from dualpilot.core.errors import SpecificationError
from dualpilot.did import bacon as bacon_decomposition
from dualpilot.engines import estimation as est

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class BaconResult:
    """A Goodman-Bacon decomposition with its summary and the TWFE coefficient it adds up to."""

    decomposition: pd.DataFrame
    """One row per 2x2 comparison (`bacon_decomposition.goodman_bacon`): type, treated, control, window,
    unit counts, estimate, weight."""
    summary: pd.DataFrame
    """`bacon_decomposition.bacon_summary`: weight and weighted estimate by comparison type, plus "total", with a
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
        dec = bacon_decomposition.goodman_bacon(panel, unit, time, treatment_col, outcome)
    except ValueError as err:
        raise SpecificationError(f"Goodman-Bacon decomposition: {err}") from err
    summary = bacon_decomposition.bacon_summary(dec)
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
