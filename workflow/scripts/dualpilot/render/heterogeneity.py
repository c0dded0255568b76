"""Heterogeneity output: the split-sample coefficient plot (zh/en) and the table of between-group gap tests,
from the tidy frame `dualpilot.analyses.heterogeneity.heterogeneity` writes."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dualpilot.analyses.heterogeneity import RESERVED_GROUPS
from dualpilot.render import tables

log = logging.getLogger(__name__)

_AXIS_TEXT = {
    "zh": "双试点效应估计系数及 {ci} 置信区间",
    "en": "Dual-pilot effect and {ci} confidence interval",
}


def split_rows(tidy: pd.DataFrame, treatment: str = "dual_post") -> pd.DataFrame:
    """The split-sample rows of a heterogeneity tidy frame, with columns dimension and group added
    (rows of models "<dimension>: <group>" whose term is the treatment), in their original order."""
    rows = tidy[tidy["term"].astype(str) == treatment].copy()
    parts = rows["model"].astype(str).str.split(": ", n=1, expand=True)
    if parts.shape[1] < 2:
        raise ValueError("no split-sample rows ('<dimension>: <group>') in the tidy frame")
    rows["dimension"], rows["group"] = parts[0], parts[1]
    first_word = rows["group"].str.split(" ", n=1).str[0]
    rows = rows[rows["group"].notna() & ~first_word.isin(RESERVED_GROUPS)]
    if rows.empty:
        raise ValueError("no split-sample rows ('<dimension>: <group>') in the tidy frame")
    return rows.reset_index(drop=True)


def heterogeneity_plot(
    tidy: pd.DataFrame,
    *,
    treatment: str = "dual_post",
    language: str = "zh",
    labels: tables.Labels | Mapping[str, tuple[str, str]] | None = None,
    title: str | None = None,
    ci: float = 0.95,
) -> Figure:
    """Horizontal coefficient plot of the split-sample estimates with `ci` intervals, grouped by
    dimension (one colour and a shaded band per dimension, a dashed line at 0).

    Intervals come from `dualpilot.render.plots.confidence_bounds` (the tidy frame's own 95% bounds, t(G-1)
    otherwise). Each row is the split model's heading from `labels` (a `tables.Labels`; default the
    shipped resources/labels/terms.csv, e.g. ``model:development: high``) with its sample (cities,
    observations); with no CJK font installed the figure falls back to English.
    """
    from dualpilot.render.plots import confidence_bounds, configure_fonts, with_sample

    lang = configure_fonts(language)  # type: ignore[arg-type]
    rows = split_rows(tidy, treatment)
    lab = tables.resolve_labels(labels)

    lo, hi = confidence_bounds(rows, ci)
    est_ = rows["estimate"].to_numpy(dtype=float)
    dims = list(dict.fromkeys(rows["dimension"]))
    n_gaps = len(dims) - 1
    fig = Figure(figsize=(8.5, 1.0 + 0.42 * (len(rows) + n_gaps)), layout="constrained")
    ax = fig.add_subplot()
    y, ticks, ticklabels = float(len(rows) + n_gaps), [], []
    for k, dim in enumerate(dims):
        idx = np.flatnonzero(rows["dimension"].to_numpy() == dim)
        ys = []
        for i in idx:
            y -= 1.0
            ys.append(y)
            ticks.append(y)
            model = str(rows["model"].iat[i])
            ticklabels.append(with_sample(lab.model(model, lang), rows.iloc[[i]], lang))
        ys_arr = np.array(ys)
        ax.errorbar(
            est_[idx],
            ys_arr,
            xerr=np.vstack([est_[idx] - lo[idx], hi[idx] - est_[idx]]),
            fmt="o",
            color=f"C{k}",
            capsize=3,
            markersize=5,
        )
        if k % 2 == 0:
            ax.axhspan(ys_arr.min() - 0.5, ys_arr.max() + 0.5, color="0.93", zorder=0)
        y -= 1.0
    ax.axvline(0.0, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
    ax.set_yticks(ticks, labels=ticklabels)
    ax.set_ylim(min(ticks) - 0.6, max(ticks) + 0.6)
    ax.set_xlabel(_AXIS_TEXT.get(lang, _AXIS_TEXT["en"]).format(ci=f"{ci * 100:g}%"))
    if title:
        ax.set_title(title)
    return fig


def gap_tests(tidy: pd.DataFrame) -> pd.DataFrame:
    """The between-group gaps of a `heterogeneity` frame, one row per pair: dimension, comparison
    ("a - b"), gap (permutation estimate b_a - b_b), p_bdiff (one-sided, bdiff), p_two_sided."""
    rows = []
    for model, part in tidy[tidy["model"].str.contains(": bdiff ", regex=False)].groupby(
        "model", sort=False
    ):
        dimension = model.split(": bdiff ")[0]
        one = part[part["term"].str.startswith("bdiff: ")].iloc[0]
        two = part[part["term"].str.startswith("bdiff (two-sided): ")].iloc[0]
        rows.append(
            {
                "dimension": dimension,
                "comparison": one["term"].removeprefix("bdiff: "),
                "gap": one["estimate"],
                "p_bdiff": one["p_value"],
                "p_two_sided": two["p_value"],
            }
        )
    return pd.DataFrame(rows, columns=["dimension", "comparison", "gap", "p_bdiff", "p_two_sided"])
