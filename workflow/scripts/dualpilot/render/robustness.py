"""Figures, notes and tables of the robustness checks: the Goodman-Bacon figure, the staggered event-study
comparison, the HonestDiD note and figure, and the robustness-grid table (zh/en). The estimates they draw
come from `dualpilot.analyses.{bacon,staggered_did,honest_sensitivity,spec_grid}`; docs/robustness.md says
how to read each."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dualpilot.analyses import baseline as analyses
from dualpilot.analyses.bacon import BaconResult
from dualpilot.analyses.staggered_did import (
    event_study_base,
    event_terms,
    model_rows,
    single_pilot_structure,
)
from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.did import bacon as bacon_decomposition
from dualpilot.engines import estimation as est
from dualpilot.render import plots, tables
from dualpilot.render.tables import Language

log = logging.getLogger(__name__)

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
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
    for j, kind in enumerate(bacon_decomposition.BACON_TYPES):
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
    twfe_rows = model_rows(twfe, twfe_model, "the TWFE event study")
    structure = single_pilot_structure(twfe_rows)

    def name(label: str, model: str) -> str:
        kind = event_study_base(model, base=base, cs_base_period=cs_base_period)
        return text[kind].format(name=label, base=base)

    frames = {name(twfe_label, twfe_model): event_terms(twfe_rows, (lo, hi))}
    left_out = []
    for label, model in series.items():
        rows = model_rows(robust, model, "the staggered estimates")
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
    return tables.join_sentences(parts[:2] if short else parts, lang)


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
    sentences.append(tables.star_sentence(thresholds, lang))
    return tables.Table(
        header=text["header"],
        panels=(tables.Panel(tuple(rows)),),
        language=lang,
        n_stub=2,
        title=text["title"],
        notes=(tables.join_sentences(sentences, lang),),
    )


def _outcome_label(outcome: str, labels: tables.Labels, language: Language) -> str:
    return labels.get(outcome, language)  # a missing label is logged and the name printed
