"""The PSM-DID figure: propensity-score densities of treated and control units before and after matching
(zh/en), from the scores `dualpilot.analyses.psm` writes."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from dualpilot.analyses.psm import PsmError
from dualpilot.core.errors import require_columns
from dualpilot.render.plots import configure_fonts
from dualpilot.render.tables import Language

log = logging.getLogger(__name__)

_FIG_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "before": "匹配前",
        "after": "匹配后",
        "treated": "处理组",
        "control": "控制组",
        "x": "倾向得分",
        "y": "核密度",
    },
    "en": {
        "before": "Before matching",
        "after": "After matching",
        "treated": "Treated",
        "control": "Control",
        "x": "Propensity score",
        "y": "Kernel density",
    },
}


def _density(
    values: np.ndarray, weights: np.ndarray | None, grid: np.ndarray, what: str
) -> np.ndarray:
    if values.size < 2 or np.ptp(values) == 0:
        raise PsmError(f"cannot draw a density of {what}: fewer than two distinct scores")
    return stats.gaussian_kde(values, weights=weights)(grid)


def pscore_density_figure(
    scores: pd.DataFrame,
    *,
    design: str | None = None,
    model: str | None = None,
    weighted: bool = True,
    language: Language = "zh",
    title: str | Mapping[str, str] | None = None,
    grid_points: int = 256,
) -> Figure:
    """Kernel densities of the propensity score, treated vs controls, before and after matching.

    Left panel: every scored unit. Right panel: treated units on support and controls with a positive
    weight; with `weighted`, the controls' density is weighted by their matching weights (what the
    matched comparison uses), otherwise each matched control counts once. Densities are Gaussian
    kernel estimates (scipy `gaussian_kde`, Scott's bandwidth). For a design that scores several
    pools (by_year), all pools are drawn together. `scores` is `PsmResult.scores` (or the stacked
    `PsmAll.scores` with `design` or `model` to pick one matching).
    """
    frame = scores
    for column, value in (("design", design), ("model", model)):
        if value is not None:
            frame = frame[frame[column] == value]
            if frame.empty:
                raise PsmError(f"no scores of {column} {value!r}")
    for column, what in (("design", "designs"), ("model", "matchings")):
        if column in frame.columns and frame[column].nunique() > 1:
            raise PsmError(f"scores hold several {what}: pass {column}= to choose one")
    require_columns(frame, ["treated", "pscore", "support", "weight"], "the score frame")
    lang = configure_fonts(language)
    text = _FIG_TEXT[lang]
    ps = frame["pscore"].to_numpy(dtype="float64")
    tr = frame["treated"].to_numpy() == 1
    w = frame["weight"].to_numpy(dtype="float64")
    after_t = tr & frame["support"].to_numpy(dtype=bool)
    after_c = ~tr & (w > 0)
    pad = 0.05 * max(np.ptp(ps), 1e-3)
    grid = np.linspace(max(ps.min() - pad, 0.0), min(ps.max() + pad, 1.0), grid_points)
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    panels = [
        (text["before"], ps[tr], None, ps[~tr], None),
        (text["after"], ps[after_t], None, ps[after_c], w[after_c] if weighted else None),
    ]
    for ax, (name, pt, wt, pc, wc) in zip(axes, panels, strict=True):
        ax.plot(grid, _density(pt, wt, grid, "treated units"), color="C3", label=text["treated"])
        ax.plot(
            grid, _density(pc, wc, grid, "control units"), color="C0", linestyle="--",
            label=text["control"],
        )  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel(text["x"])
        ax.legend(frameon=False)
    axes[0].set_ylabel(text["y"])
    if isinstance(title, Mapping):
        if lang not in title:
            raise PsmError(f"title has no {lang!r} text: {dict(title)!r}")
        fig.suptitle(title[lang])
    elif title:
        fig.suptitle(title)
    return fig
