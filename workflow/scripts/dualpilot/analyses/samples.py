"""Analysis samples: complete cases of the variables a model uses (rows, or whole cities for estimators
that need a balanced panel), with a sentence saying what was dropped."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from dualpilot.core.errors import require_columns

log = logging.getLogger(__name__)

UNIT = "city_code"
TIME = "year"
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
