"""Coefficient plots and event-study figures from tidy estimate frames.

Figures are built as `matplotlib.figure.Figure` objects without pyplot (so nothing depends on a GUI
backend and no figure is kept alive by a global registry); `save_figure` writes PNG (Agg, 200 dpi) and
PDF. Chinese text needs a CJK font: `configure_fonts` looks for one (Noto Sans CJK from the Debian
package fonts-noto-cjk, or any of `CJK_FAMILIES`) and, when none is installed, logs a warning and
switches the figure's text to English so that no missing-glyph boxes appear.

Confidence intervals: at ``ci=0.95`` the tidy frame's own `conf_low`/`conf_high` are drawn, i.e.
whatever the estimator reported (fixest/pyfixest use t(G-1) critical values with clustered standard
errors). At any other level the bounds are estimate ± q·std_error with q the t(G-1) quantile when the
tidy frame gives the number of clusters G (the fixest/reghdfe convention for clustered errors) and the
standard-normal quantile otherwise.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from dualpilot.core.errors import require_columns
from dualpilot.render.tables import (
    EVENT_TERM_PATTERN,
    Labels,
    Language,
    check_language,
    is_special,
    parse_event_time,
    resolve_labels,
    validate_tidy,
)

log = logging.getLogger(__name__)

#: CJK families tried in this order; the first installed one that has the probe glyphs is used.
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Sarasa Gothic SC",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Noto Serif CJK SC",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)
#: File-name fragments of CJK fonts, used to register fonts installed after matplotlib's font cache.
_CJK_FILE_HINTS: tuple[str, ...] = (
    "cjk",
    "wqy",
    "wenquanyi",
    "sourcehan",
    "notosanssc",
    "simhei",
    "msyh",
    "pingfang",
    "sarasa",
    "uming",
    "droidsansfallback",
)
_PROBE = "双试点相对时间估计系数置信区间基期"
_CJK_CHARS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
_LATIN_FAMILY = "DejaVu Sans"
#: Marker shapes of the series of a figure, in turn (with colours C0, C1, ...).
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "event_axis": "相对政策实施年份",
        "coef_axis": "估计系数及 {ci} 置信区间",
        "base": "基期",
        "sample": "{cities} 个城市，{obs} 个观测值",
        "named_sample": "{name}（{sample}）",
        "true_estimate": "真实估计值",
        "placebo_estimate": "安慰剂估计系数",
        "density": "核密度",
        "p_value": "p 值",
        "shift_axis": "虚构政策时点提前的年数",
        "shift_coef": "安慰剂估计系数及 {ci} 置信区间",
        "shift_title": "时间安慰剂检验：各提前年数的估计",
    },
    "en": {
        "event_axis": "Years relative to the pilot",
        "coef_axis": "Estimate and {ci} confidence interval",
        "base": "Base period",
        "sample": "{cities} cities, {obs} obs.",
        "named_sample": "{name} ({sample})",
        "true_estimate": "True estimate",
        "placebo_estimate": "Placebo estimate",
        "density": "Kernel density",
        "p_value": "p-value",
        "shift_axis": "Years the fake start is moved earlier",
        "shift_coef": "Placebo estimate and {ci} confidence interval",
        "shift_title": "Time placebo: one estimate per shift",
    },
}

TextArg = str | Mapping[str, str] | None


# --------------------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------------------


def _covers(family: str, chars: str) -> bool:
    try:
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
    except ValueError:
        return False
    font = font_manager.get_font(path)
    return all(font.get_char_index(ord(ch)) != 0 for ch in chars)


def _first_cjk_family() -> str | None:
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed and _covers(family, _PROBE):
            return family
    return None


_SYSTEM_SCANNED = False


def _mark_scanned() -> None:
    global _SYSTEM_SCANNED
    _SYSTEM_SCANNED = True


def find_cjk_font(font_paths: Sequence[str | Path] = ()) -> str | None:
    """The family name of an installed font that renders Chinese, or None.

    `font_paths` are font files to register first (e.g. a .ttc/.otf shipped by the user). Fonts
    installed after matplotlib built its font cache are found by scanning the system font folders
    (once per process) for file names that look like CJK fonts.
    """
    for path in font_paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"font file not found: {path}")
        font_manager.fontManager.addfont(str(path))
    family = _first_cjk_family()
    if family is not None or _SYSTEM_SCANNED:
        return family
    _mark_scanned()
    for path in font_manager.findSystemFonts():
        if any(hint in Path(path).name.lower() for hint in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError) as err:
                log.debug("cannot register font %s: %s", path, err)
    return _first_cjk_family()


def configure_fonts(language: Language = "zh", font_paths: Sequence[str | Path] = ()) -> Language:
    """Set matplotlib's fonts for `language` and return the language figures should use.

    For 'zh' it sets ``rcParams['font.family']`` to a CJK family followed by DejaVu Sans (which draws
    any glyph the CJK font lacks) and returns 'zh'. If no CJK font is installed it logs a warning,
    uses DejaVu Sans and returns 'en': callers then label the figure in English. For 'en' it uses
    DejaVu Sans. The setting is global (figures are drawn when saved, so it must outlive the call).
    """
    lang = check_language(language)
    if lang == "zh":
        family = find_cjk_font(font_paths)
        if family is not None:
            matplotlib.rcParams["font.family"] = [family, _LATIN_FAMILY]
            return "zh"
        log.warning(
            "no font that renders Chinese is installed (tried %s); figure text switches to "
            "English. Install the Debian package fonts-noto-cjk to get Chinese figures.",
            ", ".join(CJK_FAMILIES),
        )
    matplotlib.rcParams["font.family"] = [_LATIN_FAMILY]
    return "en"


def _pick_text(value: TextArg, language: Language, what: str) -> str | None:
    """Text for `language` from a plain string or a {'zh': ..., 'en': ...} mapping.

    A plain string holding Chinese characters is dropped, with a warning, when the figure is drawn in
    English (the font could not render it).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        if language not in value:
            raise ValueError(f"{what} has no {language!r} text: {dict(value)!r}")
        return value[language]
    if language == "en" and _CJK_CHARS.search(value):
        log.warning("%s %r is Chinese but the figure is in English; it is left out", what, value)
        return None
    return value


def sample_text(tidy: pd.DataFrame, language: Language) -> str | None:
    """ "245 个城市，4,410 个观测值" / "245 cities, 4,410 obs.": the sample of one model's rows, from its
    n_clusters (clustered by city) and n_obs; None when the frame does not say or its rows disagree."""
    values = []
    for column in ("n_clusters", "n_obs"):
        if column not in tidy.columns:
            return None
        found = pd.to_numeric(tidy[column], errors="coerce").dropna().unique()
        if len(found) != 1:
            return None
        values.append(f"{round(float(found[0])):,}")
    return _TEXT[language]["sample"].format(cities=values[0], obs=values[1])


def with_sample(name: str, tidy: pd.DataFrame, language: Language) -> str:
    """`name` followed by its sample (`sample_text`) in parentheses, as figures that put estimators
    side by side label each one; `name` alone when the sample is unknown."""
    sample = sample_text(tidy, language)
    if sample is None:
        return name
    return _TEXT[language]["named_sample"].format(name=name, sample=sample)


# --------------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------------


def _check_ci(ci: float) -> float:
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    return float(ci)


def confidence_bounds(frame: pd.DataFrame, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the `ci` confidence intervals of the rows of a tidy frame.

    At 0.95 the stored conf_low/conf_high; otherwise estimate ± q·std_error with q from t(G-1) if the
    row has n_clusters = G, else from the standard normal (see the module docstring).
    """
    level = _check_ci(ci)
    est = frame["estimate"].to_numpy(dtype=float)
    if math.isclose(level, 0.95):
        require_columns(frame, ["conf_low", "conf_high"], "the tidy frame")
        lo = frame["conf_low"].to_numpy(dtype=float)
        hi = frame["conf_high"].to_numpy(dtype=float)
    else:
        require_columns(frame, ["std_error"], "the tidy frame")
        se = frame["std_error"].to_numpy(dtype=float)
        tail = 1 - (1 - level) / 2
        if "n_clusters" in frame.columns:
            groups = frame["n_clusters"].to_numpy(dtype=float)
        else:
            groups = np.full(len(frame), np.nan)
        q = np.where(
            np.isfinite(groups) & (groups > 1),
            stats.t.ppf(tail, np.where(groups > 1, groups - 1, 1)),
            stats.norm.ppf(tail),
        )
        lo, hi = est - q * se, est + q * se
    bad = frame["term"][np.isnan(lo) | np.isnan(hi)].tolist()
    if bad:
        raise ValueError(f"no confidence interval for term(s) {bad}")
    if np.any(lo > est + 1e-12) or np.any(hi < est - 1e-12):
        raise ValueError("confidence bounds do not bracket their estimates")
    return lo, hi


def _one_model(tidy: pd.DataFrame, model: str | None, what: str) -> pd.DataFrame:
    models = list(dict.fromkeys(tidy["model"].astype(str)))
    if model is None:
        if len(models) != 1:
            raise ValueError(f"{what} holds models {models}: pass model= to choose one")
        return tidy
    if model not in models:
        raise ValueError(f"model {model!r} not in {what}; it has {models}")
    return tidy[tidy["model"].astype(str) == model]


def event_study_data(
    tidy: pd.DataFrame,
    *,
    pattern: str | None = EVENT_TERM_PATTERN,
    x: Mapping[str, float] | None = None,
    model: str | None = None,
    ci: float = 0.95,
    base_period: float | None = None,
) -> tuple[pd.DataFrame, bool]:
    """Event-time coefficients of one model, sorted by event time, with their CI bounds.

    Event times come from `x` (term -> event time) if given, else from the first group of the regex
    `pattern` (default: rel_-3, rel_m3, rel::-3). A row at `base_period` whose standard error is
    missing or zero is the normalisation placeholder: it is dropped (its estimate must be 0). Returns
    the frame (columns term, x, estimate, conf_low, conf_high) and whether the base period still
    needs a hollow marker (it does unless the model estimated a coefficient there).
    """
    validate_tidy(tidy, ["model", "term", "estimate", "std_error"])
    data = _one_model(tidy, model, "the tidy frame").copy()
    data = data[~data["term"].astype(str).map(is_special)]
    if x is not None:
        missing = [t for t in x if t not in set(data["term"])]
        if missing:
            raise ValueError(f"term(s) {missing} of x are not in the tidy frame")
        data = data[data["term"].isin(list(x))].copy()
        data["x"] = data["term"].map(dict(x)).astype(float)
    else:
        if pattern is None:
            raise ValueError("give either pattern or x to place terms in event time")
        regex = re.compile(pattern)
        if regex.groups < 1:
            raise ValueError(f"pattern {pattern!r} needs a group capturing the event time")
        found = data["term"].astype(str).map(regex.match)
        data = data[found.notna()].copy()
        data["x"] = [float(parse_event_time(m.group(1))) for m in found.dropna()]
    if data.empty:
        raise ValueError(f"no event-time term matches (pattern {pattern!r}, x {x!r})")
    if data["x"].duplicated().any():
        raise ValueError(f"several terms share an event time: {data['term'].tolist()}")
    needs_marker = base_period is not None
    if base_period is not None:
        at_base = np.isclose(data["x"], float(base_period))
        se = data["std_error"].to_numpy(dtype=float)
        placeholder = at_base & (np.isnan(se) | (se == 0))
        if placeholder.any():
            if not np.allclose(data.loc[placeholder, "estimate"].to_numpy(dtype=float), 0):
                raise ValueError(
                    "the base-period row has no standard error but a non-zero estimate"
                )
            data = data[~placeholder]
        elif at_base.any():
            log.info("the model estimated a coefficient at the base period %s", base_period)
            needs_marker = False
    data = data.sort_values("x")
    data["conf_low"], data["conf_high"] = confidence_bounds(data, ci)
    return data[["term", "x", "estimate", "conf_low", "conf_high"]].reset_index(drop=True), (
        needs_marker
    )


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def _new_figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _ci_text(ci: float) -> str:
    return f"{ci * 100:g}%"


def _axis_texts(
    title: TextArg, ylabel: TextArg, xlabel: TextArg, lang: Language, ci: float
) -> tuple[str | None, str | None, str | None]:
    """The title, coefficient-axis and event-time-axis texts of a coefficient figure in `lang`; the
    coefficient axis says "estimate and `ci` interval" unless `ylabel` is given."""
    title_text = _pick_text(title, lang, "title")
    coef_label = _pick_text(ylabel, lang, "ylabel")
    if coef_label is None and ylabel is None:
        coef_label = _TEXT[lang]["coef_axis"].format(ci=_ci_text(ci))
    return title_text, coef_label, _pick_text(xlabel, lang, "xlabel")


def _event_axes(
    ax: Axes,
    *,
    xs: Sequence[float],
    lang: Language,
    xlabel: str | None,
    ylabel: str | None,
    title: str | None,
    reference_line: float | None,
    treatment_line: float | None,
    base_period: float | None,
    base_marker: bool,
) -> None:
    """Reference lines, base-period marker, ticks and labels shared by the event-study figures."""
    if reference_line is not None:
        ax.axhline(reference_line, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
    if treatment_line is not None:
        ax.axvline(treatment_line, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
    ticks = sorted({*xs, *([base_period] if base_period is not None else [])})
    if base_period is not None and base_marker:
        ax.plot(
            [base_period],
            [0.0],
            linestyle="none",
            marker="o",
            markersize=7,
            markerfacecolor="white",
            markeredgecolor="black",
            zorder=3,
            gid="base_period",
        )
        ax.annotate(
            _TEXT[lang]["base"],
            (base_period, 0.0),
            xytext=(0, -16),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize="small",
        )
    ax.set_xticks(ticks, labels=[f"{t:g}".replace("-", "\N{MINUS SIGN}") for t in ticks])
    ax.set_xlabel(xlabel if xlabel is not None else _TEXT[lang]["event_axis"])
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _errorbars_y(ax: Axes, x: np.ndarray, frame: pd.DataFrame, **kwargs: object) -> None:
    """Vertical whiskers from the frame's conf_low/conf_high around its estimates at `x`."""
    est = frame["estimate"].to_numpy(dtype=float)
    err = np.vstack(
        [est - frame["conf_low"].to_numpy(float), frame["conf_high"].to_numpy(float) - est]
    )
    ax.errorbar(x, est, yerr=err, capsize=3, markersize=5, elinewidth=1.1, **kwargs)


def _draw_event_series(
    ax: Axes, data: pd.DataFrame, ci_style: str, pinned_base: float | None
) -> None:
    """Points with whiskers, or a line with a band; `pinned_base` adds the (base, 0) point to the
    line and band (the normalised base period belongs to the line: the band pinches to 0)."""
    if ci_style == "bars":
        _errorbars_y(ax, data["x"].to_numpy(dtype=float), data, fmt="o", color="C0")
        return
    band = data
    if pinned_base is not None:
        base = {"term": "", "x": float(pinned_base), "estimate": 0.0, "conf_low": 0.0}
        band = pd.concat([data, pd.DataFrame([base | {"conf_high": 0.0}])]).sort_values("x")
    bx = band["x"].to_numpy(dtype=float)
    ax.fill_between(bx, band["conf_low"], band["conf_high"], alpha=0.25, color="C0")
    ax.plot(bx, band["estimate"], marker="o", color="C0", markersize=5)


def _coefplot(
    tidy: pd.DataFrame,
    terms: Sequence[str] | None,
    chosen: list[str] | None,
    ci: float,
    offset: float,
    labels: Labels,
    lang: Language,
) -> Figure:
    """Horizontal whiskers, one row per term, one offset series per model (all if `chosen` is None)."""
    frame = tidy.copy()
    frame["model"] = frame["model"].astype(str)
    models = list(dict.fromkeys(frame["model"]))
    chosen = models if chosen is None else chosen
    unknown = [m for m in chosen if m not in models]
    if unknown:
        raise ValueError(f"model(s) {unknown} not in the tidy frame; it has {models}")
    frame = frame[frame["model"].isin(chosen)]
    regular = [t for t in dict.fromkeys(frame["term"].astype(str)) if not is_special(t)]
    rows = list(terms) if terms is not None else regular
    absent = [t for t in rows if t not in regular]
    if absent:
        raise ValueError(f"term(s) {absent} are in none of the models {chosen}")
    fig, ax = _new_figure((6.5, 0.9 + 0.45 * len(rows) * max(1, len(chosen) ** 0.5)))
    ypos = {t: float(len(rows) - 1 - i) for i, t in enumerate(rows)}
    for j, m in enumerate(chosen):
        sub = frame[(frame["model"] == m) & frame["term"].isin(rows)]
        sub = sub.set_index("term").loc[[t for t in rows if t in set(sub["term"])]].reset_index()
        if sub.empty:
            continue
        lo, hi = confidence_bounds(sub, ci)
        est = sub["estimate"].to_numpy(dtype=float)
        shift = offset * (j - (len(chosen) - 1) / 2) if len(chosen) > 1 else 0.0
        y = np.array([ypos[t] for t in sub["term"]]) - shift
        ax.errorbar(
            est,
            y,
            xerr=np.vstack([est - lo, hi - est]),
            fmt=MARKERS[j % len(MARKERS)],
            color=f"C{j}",
            capsize=3,
            markersize=5,
            label=with_sample(labels.model(m, lang), frame[frame["model"] == m], lang),
        )
    ax.set_yticks(list(ypos.values()), labels=[labels.get(t, lang) for t in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    if len(chosen) > 1:
        ax.legend(frameon=False)
    return fig


def coefficient_plot(
    tidy: pd.DataFrame,
    *,
    terms: Sequence[str] | None = None,
    pattern: str | None = None,
    x: Mapping[str, float] | None = None,
    model: str | Sequence[str] | None = None,
    title: TextArg = None,
    ylabel: TextArg = None,
    xlabel: TextArg = None,
    base_period: float | None = None,
    reference_line: float | None = 0.0,
    treatment_line: float | None = -0.5,
    ci: float = 0.95,
    ci_style: str = "bars",
    offset: float = 0.15,
    language: Language = "zh",
    labels: Labels | Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """An event-study plot or a horizontal coefficient plot (like Stata's coefplot).

    Event-study style when `pattern` (a regex whose first group is the event time, e.g.
    ``EVENT_TERM_PATTERN``) or `x` (term -> event time) is given: points with `ci` intervals as
    whiskers (``ci_style='bars'``) or a shaded band (``'band'``), a dashed line at `reference_line`,
    a dashed vertical line at `treatment_line` (between periods -1 and 0 by default) and, if
    `base_period` is given, a hollow marker at (base_period, 0) labelled "基期"/"Base period".
    With a band, the line and band pass through (base_period, 0). One model only (`model` picks it
    when the frame holds several).

    Otherwise coefplot style: one row per term in `terms` (default: every non-test term), labelled
    from `labels`, estimates with horizontal whiskers and a dashed vertical line at `reference_line`;
    several models (`model` as a list, default all) are drawn with small vertical offsets and a legend
    naming each model (`Labels.model`) with its sample (cities and observations, `with_sample`).

    `ylabel` labels the coefficient axis (the x axis in coefplot style), `xlabel` the event-time
    axis. Texts may be plain strings or {'zh': ..., 'en': ...} mappings; see `configure_fonts` for
    the English fallback.
    """
    lang = configure_fonts(language)
    ci = _check_ci(ci)
    if ci_style not in {"bars", "band"}:
        raise ValueError(f"ci_style must be 'bars' or 'band', got {ci_style!r}")
    validate_tidy(tidy, ["model", "term", "estimate", "std_error"])
    lab = resolve_labels(labels)
    title_text, coef_label, event_label = _axis_texts(title, ylabel, xlabel, lang, ci)

    if pattern is not None or x is not None:
        if terms is not None:
            raise ValueError("give terms for a coefplot, or pattern/x for an event study, not both")
        if model is not None and not isinstance(model, str):
            raise ValueError("an event study shows one model: pass model as a string")
        data, marker = event_study_data(
            tidy, pattern=pattern, x=x, model=model, ci=ci, base_period=base_period
        )
        fig, ax = _new_figure((7.0, 4.2))
        _draw_event_series(ax, data, ci_style, base_period if marker else None)
        _event_axes(
            ax,
            xs=data["x"].tolist(),
            lang=lang,
            xlabel=event_label,
            ylabel=coef_label,
            title=title_text,
            reference_line=reference_line,
            treatment_line=treatment_line,
            base_period=base_period,
            base_marker=marker,
        )
        return fig

    if ci_style != "bars":
        raise ValueError("the coefplot style draws whiskers only (ci_style='bars')")
    chosen = None if model is None else ([model] if isinstance(model, str) else list(model))
    fig = _coefplot(tidy, terms, chosen, ci, offset, lab, lang)
    (ax,) = fig.axes
    if reference_line is not None:
        ax.axvline(reference_line, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
    ax.set_xlabel(coef_label or "")
    if title_text:
        ax.set_title(title_text)
    return fig


def multi_event_study(
    estimates: Mapping[str, pd.DataFrame],
    *,
    pattern: str | None = EVENT_TERM_PATTERN,
    x: Mapping[str, float] | None = None,
    model: str | Mapping[str, str] | None = None,
    title: TextArg = None,
    ylabel: TextArg = None,
    xlabel: TextArg = None,
    base_period: float | None = None,
    reference_line: float | None = 0.0,
    treatment_line: float | None = -0.5,
    ci: float = 0.95,
    offset: float = 0.12,
    language: Language = "zh",
) -> Figure:
    """Several event studies (e.g. TWFE and heterogeneity-robust estimators) on one axis.

    `estimates` maps the legend name of each estimator to its tidy frame; each series is shifted
    horizontally by a multiple of `offset` so the whiskers do not overlap, and gets its own colour
    and marker. Event times, `base_period`, lines and `ci` work as in `coefficient_plot`; the hollow
    base-period marker is drawn (at the unshifted position) if any series omits the base period.
    `model` picks one model per frame: a string for all, or a mapping estimator name -> model.
    Estimators may differ in their samples (Callaway-Sant'Anna needs a balanced panel): each legend
    entry states its own (cities and observations, `with_sample`) when the frame has n_clusters and
    n_obs.
    """
    if not estimates:
        raise ValueError("no event study to plot")
    lang = configure_fonts(language)
    ci = _check_ci(ci)
    title_text, coef_label, event_label = _axis_texts(title, ylabel, xlabel, lang, ci)
    fig, ax = _new_figure((7.5, 4.4))
    all_x: set[float] = set()
    marker_needed = False
    k = len(estimates)
    for j, (name, tidy) in enumerate(estimates.items()):
        chosen = model.get(name) if isinstance(model, Mapping) else model
        data, needs = event_study_data(
            tidy, pattern=pattern, x=x, model=chosen, ci=ci, base_period=base_period
        )
        marker_needed |= needs
        xs = data["x"].to_numpy(dtype=float)
        all_x.update(xs.tolist())
        shift = offset * (j - (k - 1) / 2)
        rows = _one_model(tidy, chosen, "the tidy frame") if chosen is not None else tidy
        _errorbars_y(
            ax,
            xs + shift,
            data,
            fmt=MARKERS[j % len(MARKERS)],
            color=f"C{j}",
            label=with_sample(name, rows, lang),
        )
    _event_axes(
        ax,
        xs=sorted(all_x),
        lang=lang,
        xlabel=event_label,
        ylabel=coef_label,
        title=title_text,
        reference_line=reference_line,
        treatment_line=treatment_line,
        base_period=base_period,
        base_marker=marker_needed,
    )
    ax.legend(frameon=False, fontsize="small")
    return fig


def save_figure(fig: Figure, png_path: str | Path, pdf_path: str | Path, *, dpi: int = 200) -> None:
    """Write `fig` as PNG (at `dpi`, 200 by default) and PDF, creating parent folders.

    Metadata dates are left out so the files depend only on the figure.
    """
    for path in (png_path, pdf_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=dpi, format="png", metadata={"Software": None})
    fig.savefig(pdf_path, format="pdf", metadata={"CreationDate": None, "Creator": None})


def placebo_figure(
    draws: pd.DataFrame,
    true_estimate: float,
    *,
    title: TextArg = None,
    language: Language = "zh",
    p_line: float = 0.1,
    ci: float = 0.95,
) -> Figure:
    """The figure of one placebo kind.

    Random kinds: the two panels Chinese journals print, (a) the kernel density of the placebo estimates
    with the true estimate marked; (b) each draw's estimate against its p-value, with a dashed line at
    p = `p_line` and the true estimate marked. `draws` needs columns estimate and p_value (one row per
    draw, e.g. placebo.gather's output).

    The deterministic time placebo (draws with a ``shift`` column: one estimate per shift of the true
    dates) is not a distribution: it is drawn as a coefficient plot (`placebo_shift_figure`).
    """
    if "shift" in draws.columns:
        return placebo_shift_figure(
            draws, true_estimate, title=title, language=language, ci=ci
        )
    require_columns(draws, ("estimate", "p_value"), "the placebo draws")
    if len(draws) < 2:
        raise ValueError("a placebo figure needs at least two draws")
    lang = configure_fonts(language)
    text = _TEXT[lang]
    est = draws["estimate"].to_numpy(dtype=float)
    fig = Figure(figsize=(10, 4), layout="constrained")
    density, scatter = fig.subplots(1, 2)
    grid = np.linspace(min(est.min(), true_estimate), max(est.max(), true_estimate), 400)
    pad = 0.1 * (grid[-1] - grid[0] or 1.0)
    grid = np.linspace(grid[0] - pad, grid[-1] + pad, 400)
    if np.ptp(est) > 0:
        density.plot(grid, stats.gaussian_kde(est)(grid), color="C0")
    density.hist(est, bins=40, density=True, color="C0", alpha=0.25)
    for ax in (density, scatter):
        ax.axvline(true_estimate, color="C3", linestyle="--", label=text["true_estimate"])
    density.set_xlabel(text["placebo_estimate"])
    density.set_ylabel(text["density"])
    density.legend(frameon=False)
    scatter.scatter(est, draws["p_value"].to_numpy(dtype=float), s=6, alpha=0.5, color="C0")
    scatter.axhline(p_line, color="grey", linestyle=":", label=f"p = {p_line:g}")
    scatter.set_xlabel(text["placebo_estimate"])
    scatter.set_ylabel(text["p_value"])
    scatter.set_ylim(0, 1)
    scatter.legend(frameon=False)
    chosen = _pick_text(title, lang, "title")
    if chosen:
        fig.suptitle(chosen)
    return fig


def placebo_shift_figure(
    draws: pd.DataFrame,
    true_estimate: float,
    *,
    title: TextArg = None,
    language: Language = "zh",
    ci: float = 0.95,
) -> Figure:
    """The time placebo as a coefficient plot: one point per shift k (the true dates moved k years
    earlier, estimated on the not-yet-treated years only) with its own `ci` interval, a dashed line at
    0 and a dotted line at the true estimate for comparison. No p-value is drawn: a handful of shifts
    is not a randomisation distribution.

    `draws` needs shift, estimate and std_error (and conf_low/conf_high for the stored 95 % interval;
    at other levels, estimate ± q·std_error with q from the standard normal).
    """
    require_columns(draws, ("shift", "estimate", "std_error"), "the time placebo draws")
    if draws.empty:
        raise ValueError("the time placebo has no shift to plot")
    lang = configure_fonts(language)
    text = _TEXT[lang]
    frame = draws.sort_values("shift").assign(term=lambda d: d["shift"].astype(str))
    level = _check_ci(ci)
    if math.isclose(level, 0.95) and {"conf_low", "conf_high"} <= set(frame.columns):
        lo, hi = confidence_bounds(frame, level)
    else:
        q = stats.norm.ppf(1 - (1 - level) / 2)
        se = frame["std_error"].to_numpy(dtype=float)
        lo = frame["estimate"].to_numpy(dtype=float) - q * se
        hi = frame["estimate"].to_numpy(dtype=float) + q * se
    fig, ax = _new_figure((6.5, 4.0))
    x = frame["shift"].to_numpy(dtype=float)
    plotted = frame.assign(conf_low=lo, conf_high=hi)
    _errorbars_y(ax, x, plotted, fmt="o", color="C0", label=text["placebo_estimate"])
    ax.axhline(0.0, linestyle="--", color="0.45", linewidth=0.9, zorder=0)
    ax.axhline(true_estimate, linestyle=":", color="C3", linewidth=1.2, label=text["true_estimate"])
    ax.set_xticks(x, labels=[f"{int(k)}" for k in x])
    ax.set_xlabel(text["shift_axis"])
    ax.set_ylabel(text["shift_coef"].format(ci=_ci_text(level)))
    ax.legend(frameon=False, loc="center right")
    chosen = _pick_text(title, lang, "title")
    ax.set_title(chosen if chosen else text["shift_title"])
    return fig
