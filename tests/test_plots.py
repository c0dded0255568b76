"""Tests of dualpilot.render.plots: event-study and coefficient plots, fonts, saving.

Figures are checked through their Axes objects (errorbar containers, lines, tick labels), not pixels.
Confidence intervals at levels other than 95 % are checked against pyfixest's `confint`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from dualpilot.render import plots
from dualpilot.render.plots import (
    coefficient_plot,
    confidence_bounds,
    configure_fonts,
    event_study_data,
    find_cjk_font,
    multi_event_study,
    save_figure,
)
from dualpilot.render.tables import EVENT_TERM_PATTERN

EVENT_TIMES = [k for k in range(-6, 9) if k != -1]


def event_tidy(shift: float = 0.0, seed: int = 0, model: str = "es", placeholder: bool = False):
    """An event study rel_-6..rel_8 without rel_-1 (optionally with a rel_-1 placeholder row)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in EVENT_TIMES:
        est = (0.1 * k if k >= 0 else 0.0) + shift + rng.normal(0, 0.02)
        se = 0.04 + 0.002 * abs(k)
        rows.append((k, est, se))
    if placeholder:
        rows.append((-1, 0.0, np.nan))
    return pd.DataFrame(
        {
            "model": model,
            "term": [f"rel_{k}" for k, _, _ in rows],
            "estimate": [e for _, e, _ in rows],
            "std_error": [s for _, _, s in rows],
            "conf_low": [e - 2.0 * s for _, e, s in rows],
            "conf_high": [e + 2.0 * s for _, e, s in rows],
            "n_clusters": 298,
        }
    )


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def points(container: ErrorbarContainer) -> tuple[np.ndarray, np.ndarray]:
    line = container.lines[0]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def whisker_ends(container: ErrorbarContainer) -> np.ndarray:
    """(n, 2, 2) array of whisker segments [[x0, y0], [x1, y1]]."""
    (bars,) = container.lines[2]
    return np.asarray(bars.get_segments())


def dashed(ax) -> list:
    return [line for line in ax.lines if line.get_linestyle() == "--"]


def base_markers(ax) -> list:
    return [line for line in ax.lines if line.get_gid() == "base_period"]


def test_event_study_points_whiskers_and_lines() -> None:
    tidy = event_tidy()
    fig = coefficient_plot(tidy, pattern=EVENT_TERM_PATTERN, base_period=-1, language="en")
    (ax,) = fig.axes
    (bars,) = errorbars(ax)
    x, y = points(bars)
    np.testing.assert_array_equal(x, EVENT_TIMES)
    np.testing.assert_allclose(y, tidy["estimate"])
    segs = whisker_ends(bars)
    np.testing.assert_allclose(segs[:, 0, 1], tidy["conf_low"])
    np.testing.assert_allclose(segs[:, 1, 1], tidy["conf_high"])
    horizontal = [ln for ln in dashed(ax) if np.allclose(ln.get_ydata(), 0)]
    vertical = [ln for ln in dashed(ax) if np.allclose(ln.get_xdata(), -0.5)]
    assert len(horizontal) == 1 and len(vertical) == 1
    (base,) = base_markers(ax)
    assert base.get_xdata() == [-1] and base.get_ydata() == [0.0]
    assert base.get_markerfacecolor() == "white" and base.get_marker() == "o"
    assert [t.get_text() for t in ax.texts] == ["Base period"]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{k}".replace("-", "\N{MINUS SIGN}") for k in range(-6, 9)]
    assert ax.get_xlabel() == "Years relative to the pilot"
    assert ax.get_ylabel() == "Estimate and 95% confidence interval"


def test_placeholder_row_at_the_base_is_dropped_and_marked() -> None:
    fig = coefficient_plot(event_tidy(placeholder=True), pattern=EVENT_TERM_PATTERN, base_period=-1)
    (ax,) = fig.axes
    (bars,) = errorbars(ax)
    assert len(points(bars)[0]) == len(EVENT_TIMES)
    assert len(base_markers(ax)) == 1
    bad = event_tidy(placeholder=True)
    bad.loc[bad["term"] == "rel_-1", "estimate"] = 0.3
    with pytest.raises(ValueError, match="non-zero estimate"):
        coefficient_plot(bad, pattern=EVENT_TERM_PATTERN, base_period=-1)


def test_an_estimated_base_period_is_an_ordinary_point() -> None:
    tidy = pd.concat([event_tidy(), event_tidy(seed=1).assign(term="rel_-1").iloc[[0]]])
    data, needs_marker = event_study_data(tidy, base_period=-1)
    assert not needs_marker and -1 in data["x"].tolist()
    (ax,) = coefficient_plot(tidy, pattern=EVENT_TERM_PATTERN, base_period=-1).axes
    assert len(points(errorbars(ax)[0])[0]) == len(EVENT_TIMES) + 1
    assert base_markers(ax) == []


def test_band_style_passes_through_the_base_period() -> None:
    fig = coefficient_plot(
        event_tidy(), pattern=EVENT_TERM_PATTERN, base_period=-1, ci_style="band"
    )
    (ax,) = fig.axes
    assert errorbars(ax) == []
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    (line,) = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_gid() is None]
    x = np.asarray(line.get_xdata(), float)
    np.testing.assert_array_equal(x, sorted([*EVENT_TIMES, -1]))
    assert np.asarray(line.get_ydata(), float)[x == -1] == 0.0


def test_explicit_event_times_and_other_term_names() -> None:
    tidy = event_tidy()
    tidy["term"] = [f"lead{-k}" if k < 0 else f"lag{k}" for k in EVENT_TIMES]
    x = dict(zip(tidy["term"], EVENT_TIMES, strict=True))
    (ax,) = coefficient_plot(tidy, x=x, base_period=-1).axes
    np.testing.assert_array_equal(points(errorbars(ax)[0])[0], EVENT_TIMES)
    # pyfixest-style names and formula-safe minus signs match the default pattern
    tidy["term"] = [
        f"rel::{k}" if k % 2 else f"rel_m{-k}" if k < 0 else f"rel_{k}" for k in EVENT_TIMES
    ]
    data, _ = event_study_data(tidy)
    assert data["x"].tolist() == EVENT_TIMES


def test_event_plot_errors() -> None:
    tidy = event_tidy()
    two = pd.concat([tidy, event_tidy(model="other")])
    with pytest.raises(ValueError, match="pass model="):
        coefficient_plot(two, pattern=EVENT_TERM_PATTERN)
    assert len(coefficient_plot(two, pattern=EVENT_TERM_PATTERN, model="other").axes) == 1
    with pytest.raises(ValueError, match="needs a group"):
        coefficient_plot(tidy, pattern=r"^rel_-?\d+$")
    with pytest.raises(ValueError, match="not both"):
        coefficient_plot(tidy, pattern=EVENT_TERM_PATTERN, terms=["rel_0"])
    with pytest.raises(ValueError, match="share an event time"):
        event_study_data(pd.concat([tidy, tidy.assign(term="rel::0").iloc[[7]]]))
    with pytest.raises(ValueError, match="no confidence interval"):
        coefficient_plot(tidy.assign(conf_low=np.nan), pattern=EVENT_TERM_PATTERN)
    with pytest.raises(ValueError, match="ci must"):
        coefficient_plot(tidy, pattern=EVENT_TERM_PATTERN, ci=95)
    with pytest.raises(ValueError, match="no event-time term"):
        coefficient_plot(tidy, pattern=r"^lead(\d+)$")


def test_other_ci_levels_use_t_with_clusters_minus_one_like_pyfixest() -> None:
    rng = np.random.default_rng(3)
    n, years = 30, 8
    df = pd.DataFrame(
        {"city": np.repeat(np.arange(n), years), "year": np.tile(np.arange(years), n)}
    )
    df["x1"] = rng.normal(size=len(df))
    df["x2"] = rng.normal(size=len(df))
    df["y"] = 0.3 * df["x1"] - 0.1 * df["x2"] + rng.normal(size=len(df))
    fit = pf.feols("y ~ x1 + x2 | city + year", df, vcov={"CRV1": "city"})
    t = fit.tidy().reset_index()
    tidy = pd.DataFrame(
        {
            "model": "m",
            "term": t["Coefficient"],
            "estimate": t["Estimate"],
            "std_error": t["Std. Error"],
            "conf_low": t["2.5%"],
            "conf_high": t["97.5%"],
            "n_clusters": n,
        }
    )
    for level in (0.90, 0.99):
        lo, hi = confidence_bounds(tidy, level)
        expected = fit.confint(alpha=1 - level)
        np.testing.assert_allclose(lo, expected.iloc[:, 0], rtol=1e-10)
        np.testing.assert_allclose(hi, expected.iloc[:, 1], rtol=1e-10)
    lo, hi = confidence_bounds(tidy.assign(n_clusters=np.nan), 0.90)  # no G: normal quantile
    np.testing.assert_allclose(hi - tidy["estimate"], 1.6448536269514722 * tidy["std_error"])


def test_pyfixest_event_study_plots_every_coefficient() -> None:
    rng = np.random.default_rng(5)
    n, years = 40, 10
    df = pd.DataFrame(
        {"city": np.repeat(np.arange(n), years), "year": np.tile(np.arange(years), n)}
    )
    first = np.repeat(rng.choice([4, 6, 99], n), years)
    df["rel"] = np.where(first < 99, df["year"] - first, -1)  # never-treated sit in the base bin
    df["y"] = np.where(df["rel"] >= 0, 0.5, 0.0) + rng.normal(size=len(df))
    fit = pf.feols("y ~ i(rel, ref=-1) | city + year", df, vcov={"CRV1": "city"})
    t = fit.tidy().reset_index()
    tidy = pd.DataFrame(
        {
            "model": "TWFE",
            "term": t["Coefficient"],
            "estimate": t["Estimate"],
            "std_error": t["Std. Error"],
            "conf_low": t["2.5%"],
            "conf_high": t["97.5%"],
        }
    )
    assert tidy["term"].str.startswith("rel::").all()
    (ax,) = coefficient_plot(tidy, pattern=EVENT_TERM_PATTERN, base_period=-1).axes
    x, y = points(errorbars(ax)[0])
    assert len(x) == len(tidy) and -1 not in x
    np.testing.assert_allclose(
        y, tidy.set_index("term").loc[[f"rel::{int(k)}" for k in x], "estimate"]
    )


def test_multi_event_study_offsets_and_legend() -> None:
    estimates = {
        "TWFE": event_tidy(),
        "Callaway–Sant'Anna": event_tidy(0.02, seed=1),
        "Sun–Abraham": event_tidy(-0.02, seed=2, placeholder=True),
    }
    fig = multi_event_study(estimates, base_period=-1, offset=0.1, language="en")
    (ax,) = fig.axes
    containers = errorbars(ax)
    assert len(containers) == 3
    xs = [points(c)[0] for c in containers]
    for x in xs:
        assert len(x) == len(EVENT_TIMES)
    np.testing.assert_allclose(xs[0], np.array(EVENT_TIMES) - 0.1)
    np.testing.assert_allclose(xs[1], EVENT_TIMES)
    np.testing.assert_allclose(xs[2], np.array(EVENT_TIMES) + 0.1)
    assert [c.get_label() for c in containers] == list(estimates)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(estimates)
    assert len({points(c)[0][0] for c in containers}) == 3
    assert len({c.lines[0].get_marker() for c in containers}) == 3
    assert len(base_markers(ax)) == 1
    with pytest.raises(ValueError, match="no event study"):
        multi_event_study({})


def test_estimators_side_by_side_state_their_samples() -> None:
    """Estimators on different samples (Callaway-Sant'Anna needs a balanced panel) say so in the legend."""
    estimates = {
        "TWFE": event_tidy().assign(n_obs=5046, n_clusters=283),
        "Callaway-Sant'Anna": event_tidy(0.02, seed=1).assign(n_obs=4410, n_clusters=245),
    }
    en = multi_event_study(estimates, base_period=-1, language="en")
    texts = [t.get_text() for t in en.axes[0].get_legend().get_texts()]
    assert texts == ["TWFE (283 cities, 5,046 obs.)", "Callaway-Sant'Anna (245 cities, 4,410 obs.)"]
    lang = configure_fonts("zh")
    zh = multi_event_study(estimates, base_period=-1, language="zh")
    texts = [t.get_text() for t in zh.axes[0].get_legend().get_texts()]
    if lang == "zh":
        assert texts[1] == "Callaway-Sant'Anna（245 个城市，4,410 个观测值）"
    # rows that disagree on the sample: no claim is made
    mixed = estimates["TWFE"].assign(n_obs=[5046, 5000] * 7)
    assert plots.sample_text(mixed, "en") is None


def test_time_placebo_is_a_coefficient_plot_per_shift() -> None:
    """Five shifts are five estimates, each with its own interval: no density, no p-values."""
    draws = pd.DataFrame(
        {
            "kind": "time",
            "draw": range(5),
            "estimate": [0.017, 0.020, 0.023, 0.023, 0.020],
            "std_error": [0.005, 0.005, 0.005, 0.005, 0.006],
            "p_value": [0.001, 0.0, 0.0, 0.0, 0.001],
            "shift": [1, 2, 3, 4, 5],
        }
    )
    draws["conf_low"] = draws["estimate"] - 1.97 * draws["std_error"]
    draws["conf_high"] = draws["estimate"] + 1.97 * draws["std_error"]
    fig = plots.placebo_figure(draws, 0.17, language="en")
    (ax,) = fig.axes  # one panel, not density + p-value scatter
    (container,) = errorbars(ax)
    x, y = points(container)
    np.testing.assert_allclose(x, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(y, draws["estimate"])
    segs = whisker_ends(container)
    np.testing.assert_allclose(segs[:, 0, 1], draws["conf_low"])
    np.testing.assert_allclose(segs[:, 1, 1], draws["conf_high"])
    assert "p-value" not in ax.get_ylabel() and "density" not in ax.get_ylabel().lower()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5"]
    levels = sorted(float(line.get_ydata()[0]) for line in ax.get_lines() if len(line.get_ydata()) == 2)
    assert levels == pytest.approx([0.0, 0.17])  # the zero line and the true estimate
    random = draws.drop(columns="shift")
    assert len(plots.placebo_figure(random, 0.17, language="en").axes) == 2


def test_honestdid_figure_ticks_legend_and_labels() -> None:
    from dualpilot.render import robustness as robustness_figures

    m_grid = [0.0, 0.00511155, 0.01022311, 0.01533466, 0.02044621]
    rows = [("first_post", "none", "original", np.nan, 0.09, 0.14)]
    rows += [("first_post", "RM", "C-LF", m, 0.09 - m / 10, 0.14 + m / 10) for m in (0.5, 1, 2)]
    for method in ("FLCI", "Conditional"):
        rows += [("first_post", "SD", method, m, 0.09 - m, 0.14 + m) for m in m_grid]
    frame = pd.DataFrame(
        rows, columns=["target", "restriction", "method", "Mbar_or_M", "conf_low", "conf_high"]
    ).assign(event_study="imputation", base_period=-1, pre_periods="-5..-2", post_periods="0..7")
    assert robustness_figures.bound_ticks(m_grid) == ["0.000", "0.005", "0.010", "0.015", "0.020"]
    assert robustness_figures.bound_ticks([0.5, 1, 2]) == ["0.5", "1.0", "2.0"]
    fig = robustness_figures.honestdid_figure(frame, language="en")
    rm, sd = fig.axes
    assert [t.get_text() for t in sd.get_xticklabels()] == [
        "Original", "0.000", "0.005", "0.010", "0.015", "0.020"
    ]  # fmt: skip
    assert rm.get_legend() is None and sd.get_legend() is None  # one legend, below the panels
    (legend,) = fig.legends
    names = [t.get_text() for t in legend.get_texts()]
    assert names == [
        "Conditional-LF hybrid (C-LF)", "Fixed-length CI (FLCI)", "Conditional CI"
    ]  # fmt: skip
    if configure_fonts("zh") == "zh":
        zh = robustness_figures.honestdid_figure(frame, language="zh")
        (legend,) = zh.legends
        assert [t.get_text() for t in legend.get_texts()][1] == "固定长度置信区间（FLCI）"
        assert zh.axes[0].get_title() == "首期效应（相对时间 0）"


def test_horizontal_coefplot_with_two_models() -> None:
    rows = []
    for model, shift in [("(1)", 0.0), ("(2)", 0.02)]:
        for term, est in [("dual_post", 0.1), ("sc_only_post", 0.03), ("lc_only_post", 0.01)]:
            if model == "(1)" and term == "lc_only_post":
                continue  # absent from model (1): no point
            e = est + shift
            rows.append((model, term, e, 0.03, e - 0.06, e + 0.06))
    rows.append(("(2)", "wald:dual_post=sc_only_post", 3.0, np.nan, np.nan, np.nan))
    tidy = pd.DataFrame(
        rows, columns=["model", "term", "estimate", "std_error", "conf_low", "conf_high"]
    )
    fig = coefficient_plot(tidy, language="zh", offset=0.2)
    (ax,) = fig.axes
    first, second = errorbars(ax)
    x1, y1 = points(first)
    x2, y2 = points(second)
    assert len(x1) == 2 and len(x2) == 3  # the Wald row is not a coefficient
    np.testing.assert_allclose(x2, [0.12, 0.05, 0.03])
    np.testing.assert_allclose(y2, [2 - 0.1, 1 - 0.1, 0 - 0.1])
    np.testing.assert_allclose(y1, [2 + 0.1, 1 + 0.1])
    segs = whisker_ends(second)
    np.testing.assert_allclose(segs[:, 0, 0], x2 - 0.06)
    np.testing.assert_allclose(segs[:, 1, 0], x2 + 0.06)
    if configure_fonts("zh") == "zh":
        labels = ["双试点", "仅智慧城市试点", "仅低碳城市试点"]
    else:
        labels = ["Dual pilot", "Smart City pilot only", "Low-Carbon City pilot only"]
    ticks = {float(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert ticks == {2.0: labels[0], 1.0: labels[1], 0.0: labels[2]}  # top to bottom in order
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["(1)", "(2)"]
    (ref,) = dashed(ax)
    assert np.allclose(ref.get_xdata(), 0)
    one = coefficient_plot(tidy, terms=["dual_post"], model="(1)")
    assert ax is not one.axes[0] and len(points(errorbars(one.axes[0])[0])[0]) == 1
    assert one.axes[0].get_legend() is None
    with pytest.raises(ValueError, match="in none of the models"):
        coefficient_plot(tidy, terms=["nope"])


def test_save_figure_writes_png_at_200_dpi_and_pdf(tmp_path: Path) -> None:
    fig = coefficient_plot(event_tidy(), pattern=EVENT_TERM_PATTERN, base_period=-1)
    png, pdf = tmp_path / "a" / "es.png", tmp_path / "b" / "es.pdf"
    save_figure(fig, png, pdf)
    assert png.stat().st_size > 20_000 and pdf.stat().st_size > 5_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    height, width = mpimg.imread(png).shape[:2]
    assert (width, height) == (round(7.0 * 200), round(4.2 * 200))
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    assert (tmp_path / "c.pdf").read_bytes() == pdf.read_bytes()  # no dates: reproducible


def test_chinese_text_renders_without_missing_glyphs(tmp_path: Path) -> None:
    if find_cjk_font() is None:
        pytest.skip("no CJK font installed: apt-get install -y fonts-noto-cjk")
    assert configure_fonts("zh") == "zh"
    fig = multi_event_study(
        {"双重差分": event_tidy(), "稳健估计量": event_tidy(0.01, seed=1)},
        base_period=-1,
        title="双试点政策的动态效应",
    )
    (ax,) = fig.axes
    assert ax.get_xlabel() == "相对政策实施年份" and ax.texts[0].get_text() == "基期"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would fail here
        save_figure(fig, tmp_path / "zh.png", tmp_path / "zh.pdf")


def test_no_cjk_font_switches_to_english_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plots, "find_cjk_font", lambda font_paths=(): None)
    with caplog.at_level(logging.WARNING, logger="dualpilot.render.plots"):
        assert configure_fonts("zh") == "en"
        fig = coefficient_plot(
            event_tidy(),
            pattern=EVENT_TERM_PATTERN,
            base_period=-1,
            title="平行趋势检验",
            ylabel={"zh": "系数", "en": "Coefficient"},
            language="zh",
        )
    assert "fonts-noto-cjk" in caplog.text and "switches to English" in caplog.text
    assert "is left out" in caplog.text
    (ax,) = fig.axes
    assert ax.get_title() == ""
    assert ax.get_ylabel() == "Coefficient"
    assert ax.get_xlabel() == "Years relative to the pilot"
    assert [t.get_text() for t in ax.texts] == ["Base period"]
    with pytest.raises(ValueError, match="no 'en' text"):
        coefficient_plot(event_tidy(), pattern=EVENT_TERM_PATTERN, title={"zh": "标题"})


def test_explicit_font_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="font file not found"):
        configure_fonts("zh", font_paths=[tmp_path / "missing.ttf"])
