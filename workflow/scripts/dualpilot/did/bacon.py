"""The Goodman-Bacon (2021) decomposition of a two-way fixed-effects DID coefficient into 2x2 DIDs, for any
balanced long panel with an absorbing binary treatment (depends on nothing else of the project)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dualpilot.did.staggered import integer_periods, period_label

# --------------------------------------------------------------------------------------------
# Goodman-Bacon (2021) decomposition
# --------------------------------------------------------------------------------------------

BACON_TYPES = ("treated_vs_never", "earlier_vs_later", "later_vs_earlier", "treated_vs_always")


def goodman_bacon(
    data: pd.DataFrame, unit: str, time: str, treat_col: str, outcome: str
) -> pd.DataFrame:
    """Goodman-Bacon (2021) decomposition of the TWFE DID coefficient.

    For a balanced panel with a binary, absorbing (staggered) treatment `treat_col` and no
    covariates, the coefficient of y ~ D | unit + time is the weighted sum of all 2x2 DIDs between
    timing groups (units sharing a first treated period; never-treated and always-treated units
    form their own groups). One row per 2x2: `type` ("treated_vs_never", "earlier_vs_later":
    earlier cohort treated, later cohort as control before it is treated, "later_vs_earlier":
    later cohort treated, already-treated earlier cohort as control, "treated_vs_always": a
    cohort against units treated throughout), `treated`/`control` group labels (first treated
    period, "never" or "always"), the window of periods used, `estimate` and `weight` (weights sum
    to 1; sum(weight * estimate) is the TWFE coefficient).
    """
    for col in (unit, time, treat_col, outcome):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not found in the data")
    y, d, times = _prepare_bacon(data, unit, time, treat_col, outcome)
    timing = np.where(d.any(axis=1), times[np.argmax(d, axis=1)], np.inf)  # first treated period
    groups = np.unique(timing)
    share_units = np.array([(timing == g).mean() for g in groups])
    share_treated = np.array([(times >= g).mean() for g in groups])  # D-bar of each group
    dd = d.astype(float)
    d_tilde = dd - dd.mean(axis=1, keepdims=True) - dd.mean(axis=0, keepdims=True) + dd.mean()
    var_d = (d_tilde**2).mean()
    if var_d <= 0:
        raise ValueError("the treatment has no variation left after unit and period effects")

    def label(k: int) -> str:
        if np.isinf(groups[k]):
            return "never"
        return "always" if share_treated[k] == 1 else period_label(groups[k])

    def did(treat_k: int, ctrl_k: int, window: np.ndarray, post: np.ndarray) -> float:
        def change(k: int) -> float:
            yk = y[timing == groups[k]][:, window]
            return float(yk[:, post[window]].mean() - yk[:, ~post[window]].mean())

        return change(treat_k) - change(ctrl_k)

    rows = []
    for k in range(len(groups)):
        for m in range(len(groups)):
            dk, dl = share_treated[k], share_treated[m]
            if not dk > dl:  # k is the earlier-treated group of the pair
                continue
            nk, nl = share_units[k], share_units[m]
            n_kl = nk / (nk + nl)
            scale = n_kl * (1 - n_kl) / var_d
            if dk < 1:  # k treated; m (not yet treated) as control, before m is treated
                weight = (
                    ((nk + nl) * (1 - dl)) ** 2 * scale * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl)
                )
                window = times < groups[m]
                kind = "treated_vs_never" if dl == 0 else "earlier_vs_later"
                rows.append((kind, k, m, window, times >= groups[k], weight))
            if dl > 0:  # m treated; k (already treated) as control, after k is treated
                weight = ((nk + nl) * dk) ** 2 * scale * (dl / dk) * (dk - dl) / dk
                window = times >= groups[k]
                kind = "treated_vs_always" if dk == 1 else "later_vs_earlier"
                rows.append((kind, m, k, window, times >= groups[m], weight))
    out = pd.DataFrame(
        [
            {
                "type": kind,
                "treated": label(tk),
                "control": label(ck),
                "window_start": int(times[window].min()),
                "window_end": int(times[window].max()),
                "n_treated_units": int((timing == groups[tk]).sum()),
                "n_control_units": int((timing == groups[ck]).sum()),
                "estimate": did(tk, ck, window, post),
                "weight": float(weight),
            }
            for kind, tk, ck, window, post, weight in rows
        ]
    )
    if out.empty:
        raise ValueError("no 2x2 comparison: the treatment does not vary across timing groups")
    rank = out["type"].map({kind: i for i, kind in enumerate(BACON_TYPES)})
    return (
        out.assign(_rank=rank)
        .sort_values(["_rank", "treated", "control"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _prepare_bacon(
    data: pd.DataFrame, unit: str, time: str, treat_col: str, outcome: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a Goodman-Bacon input; return Y and D (units x periods, sorted) and the periods."""
    missing = [c for c in (unit, time, treat_col, outcome) if c not in data.columns]
    if missing:
        raise ValueError(f"columns not found in the data: {missing}")
    frame = data.loc[:, list(dict.fromkeys([unit, time, treat_col, outcome]))]
    t = integer_periods(frame[time], time, allow_nan=False)
    treat = frame[treat_col]
    if not (pd.api.types.is_numeric_dtype(treat) or pd.api.types.is_bool_dtype(treat)):
        raise ValueError(f"column {treat_col!r} must be 0/1, got {treat.dtype}")
    d = treat.to_numpy(dtype=float, na_value=np.nan)
    if not np.isin(d, [0.0, 1.0]).all():
        raise ValueError(f"column {treat_col!r} must be 0/1 without missing values")
    if not pd.api.types.is_numeric_dtype(frame[outcome]):
        raise ValueError(f"column {outcome!r} must be numeric")
    y = frame[outcome].to_numpy(dtype=float, na_value=np.nan)
    if not np.isfinite(y).all():
        raise ValueError(f"column {outcome!r} has {int((~np.isfinite(y)).sum())} missing value(s)")
    if frame[unit].isna().any():
        raise ValueError(f"column {unit!r} has missing unit identifiers")
    if frame.duplicated([unit, time]).any():
        raise ValueError(f"duplicated ({unit}, {time}) rows")
    codes = pd.factorize(frame[unit], sort=True)[0]
    times = np.unique(t)
    n, n_t = int(codes.max()) + 1, len(times)
    if len(frame) != n * n_t:
        raise ValueError(
            "the Goodman-Bacon decomposition needs a balanced panel (every unit in every period)"
        )
    order = np.lexsort((t, codes))
    y_w = y[order].reshape(n, n_t)
    d_w = d[order].reshape(n, n_t).astype(bool)
    if (np.diff(d_w.astype(int), axis=1) < 0).any():
        raise ValueError(f"column {treat_col!r} must be absorbing: once 1, it stays 1")
    return y_w, d_w, times


def bacon_summary(decomposition: pd.DataFrame) -> pd.DataFrame:
    """Total weight and weighted-average estimate by comparison type, plus a "total" row whose
    estimate is the TWFE coefficient implied by the decomposition."""
    dec = decomposition.assign(_wb=decomposition["weight"] * decomposition["estimate"])
    by = dec.groupby("type", sort=False).agg(
        weight=("weight", "sum"), _wb=("_wb", "sum"), n=("weight", "size")
    )
    by["estimate"] = by["_wb"] / by["weight"]
    total = pd.DataFrame(
        {"weight": [dec["weight"].sum()], "_wb": [dec["_wb"].sum()], "n": [len(dec)]},
        index=["total"],
    )
    total["estimate"] = total["_wb"]
    out = pd.concat([by, total]).drop(columns="_wb").rename(columns={"n": "n_comparisons"})
    return (
        out.rename_axis("type")
        .reset_index()
        .loc[:, ["type", "n_comparisons", "weight", "estimate"]]
    )
