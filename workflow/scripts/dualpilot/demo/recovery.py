"""Demo recovery: each estimator's overall ATT of the dual pilot beside the demo's true ATT (rule
estimate_demo_recovery; docs/demo-data.md, "What the workflow recovers").

The truth is the generator's `effect_dual_lq` (results/demo/truth.parquet: the dual component of the planted
effect, in lq units), re-expressed in the units of the panel's lq and averaged over the dual post city-years
the estimator averages over: the city-years of its own sample (Callaway-Sant'Anna: the balanced panel of
the cities without a missing value; TWFE, Sun-Abraham and imputation: the rows without a missing value).
Nothing is re-estimated: the estimates are read from the tidy files of the baseline and robustness stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dualpilot.analyses.samples import complete_cases
from dualpilot.core.errors import SpecificationError, require_columns

#: Columns of results/tables/demo_recovery.csv.
RECOVERY_COLUMNS: tuple[str, ...] = (
    "estimator", "model", "estimate", "conf_low", "conf_high", "truth", "covered", "n_obs",
    "treated_city_years", "sample",
)  # fmt: skip

#: The printed employment is rounded to 0.01 (万人): a panel built from a demo's extracts agrees with its
#: truth to this much (plus floating-point slack), and one that does not was built from other data.
_PRINT_TOLERANCE = 0.005 + 1e-6


@dataclass(frozen=True)
class Recovered:
    """One row of the recovery table: `source` (baseline or staggered) and `model` in that tidy file;
    `balanced` estimators use whole cities without a missing value, the others rows."""

    estimator: str
    source: str
    model: str
    balanced: bool


def recovered_estimators(
    cs_control_groups: Sequence[str], twfe_model: str = "(2)"
) -> list[Recovered]:
    """TWFE (baseline column `twfe_model`), Callaway-Sant'Anna per control group, Sun-Abraham and
    imputation, each by its simple (overall) ATT."""
    rows = [Recovered("twfe", "baseline", twfe_model, balanced=False)]
    rows += [
        Recovered(
            f"callaway_santanna_{g}", "staggered", f"callaway_santanna_{g}_simple", balanced=True
        )
        for g in cs_control_groups
    ]
    rows += [
        Recovered("sun_abraham", "staggered", "sun_abraham_simple", balanced=False),
        Recovered("imputation", "staggered", "imputation_simple", balanced=False),
    ]
    return rows


def true_dual_effect(
    truth: pd.DataFrame, panel: pd.DataFrame, *, unit: str, time: str
) -> pd.Series:
    """The true dual effect on the panel's lq for every panel row (0 where the city is not dual).

    The panel's lq divides by the national IT share of the cities it keeps, m_t^panel times the demo's
    s_t, where the truth's lq divides by that of every existing city (m_t, `lq_star_national_mean`); the
    effect on the panel's lq is therefore effect_dual_lq x m_t / m_t^panel (the two differ by less than 1 %).
    Raises SpecificationError when the panel was not built from the demo behind `truth` (a city-year
    missing from the truth, or employment that differs by more than the printing rounding).
    """
    keys = [unit, time]
    need = ["effect_dual_lq", "lq_star_national_mean", "it_share", "it_emp", "total_emp"]
    require_columns(truth, [*keys, *need], "the demo truth")
    merged = panel[[*keys, "it_emp", "total_emp"]].merge(
        truth[[*keys, *need]], on=keys, how="left", suffixes=("", "_truth"), validate="one_to_one"
    )
    absent = merged["effect_dual_lq"].isna()
    if absent.any():
        first = merged.loc[absent, keys].iloc[0].tolist()
        raise SpecificationError(
            f"{int(absent.sum())} panel city-year(s) are not in the demo truth (first: {first}): the "
            "panel was not built from these demo extracts"
        )
    for col in ("it_emp", "total_emp"):
        gap = (merged[col] - merged[f"{col}_truth"]).abs()
        if (gap > _PRINT_TOLERANCE).any():
            raise SpecificationError(
                f"the panel's {col} differs from the demo truth by up to {gap.max():.4g} (more than "
                "the printing rounding): the panel was not built from these demo extracts"
            )
    share = merged.groupby(time)["it_emp"].sum() / merged.groupby(time)["total_emp"].sum()
    m_panel = merged[time].map(share) / merged["it_share"]
    effect = merged["effect_dual_lq"] * merged["lq_star_national_mean"] / m_panel
    return pd.Series(effect.to_numpy(), index=panel.index, name="truth")


def demo_recovery(
    truth: pd.DataFrame,
    panel: pd.DataFrame,
    estimates: Mapping[str, pd.DataFrame],
    estimators: Sequence[Recovered],
    *,
    outcome: str,
    twfe_controls: Sequence[str],
    staggered_covariates: Sequence[str],
    unit: str = "city_code",
    time: str = "year",
    treatment: str = "dual_post",
) -> pd.DataFrame:
    """The recovery table: per estimator its ATT (estimate and 95 % interval from its tidy file), the true
    ATT on its sample and whether the interval covers it.

    `estimates` maps each source (baseline, staggered) to its tidy frame. The sample of each estimator is
    rebuilt with `dualpilot.analyses.samples.complete_cases` from the outcome and its covariates (`twfe_controls` for TWFE,
    `staggered_covariates` for the others) and must have exactly the estimate's n_obs city-years;
    otherwise, or when a model is missing, SpecificationError names the estimator.
    """
    if outcome != "lq":
        raise SpecificationError(
            f"the demo's true effects are in lq units, but the estimates are of outcome {outcome!r} "
            "(estimation: outcome)"
        )
    effect = true_dual_effect(truth, panel, unit=unit, time=time)
    rows = []
    for item in estimators:
        if item.source not in estimates:
            raise SpecificationError(f"{item.estimator}: no {item.source} estimates were given")
        tidy = estimates[item.source]
        hit = tidy[(tidy["model"] == item.model) & (tidy["term"] == _term(item, treatment))]
        if len(hit) != 1:
            raise SpecificationError(
                f"{item.estimator}: expected one row of model {item.model!r} in the {item.source} "
                f"estimates, found {len(hit)}"
            )
        row = hit.iloc[0]
        covariates = twfe_controls if item.source == "baseline" else staggered_covariates
        sample, label = complete_cases(
            panel, [outcome, *covariates], unit=unit, whole_units=item.balanced
        )
        if len(sample) != int(row["n_obs"]):
            raise SpecificationError(
                f"{item.estimator}: its estimate uses {int(row['n_obs'])} city-years, but its sample "
                f"rebuilt here ({label}) has {len(sample)}: the truth cannot be matched to it"
            )
        treated = sample[treatment] == 1
        true_att = float(effect.loc[sample.index[treated.to_numpy()]].mean())
        low, high = float(row["conf_low"]), float(row["conf_high"])
        if not np.isfinite([low, high]).all():
            raise SpecificationError(f"{item.estimator}: its estimate has no confidence interval")
        rows.append(
            {
                "estimator": item.estimator,
                "model": item.model,
                "estimate": float(row["estimate"]),
                "conf_low": low,
                "conf_high": high,
                "truth": true_att,
                "covered": bool(low <= true_att <= high),
                "n_obs": int(row["n_obs"]),
                "treated_city_years": int(treated.sum()),
                "sample": str(row["sample"]),
            }
        )
    return pd.DataFrame(rows, columns=list(RECOVERY_COLUMNS))


def _term(item: Recovered, treatment: str) -> str:
    """The term of the overall ATT: the treatment's coefficient in TWFE, ATT in the staggered file."""
    return treatment if item.source == "baseline" else "ATT"
