"""Maps and figures of the spatial pattern: location-quotient maps in an Albers equal-area projection for
China (`dualpilot.data.geography.ALBERS_CHINA`) with the South China Sea islands and the ten-dash line in an
inset, the pilot-city map, regional trends, LISA clusters and densities.

Figures are `matplotlib.figure.Figure` objects built without pyplot (Agg); text is Chinese when a
CJK font is installed (`dualpilot.render.plots.configure_fonts`) and English otherwise. Save them with
`dualpilot.render.plots.save_figure`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import shapely
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats

from dualpilot.analyses.spatial import (
    DEFAULT_YEARS,
    check_panel,
    check_years,
    fisher_jenks_breaks,
    mapped_values,
    year_values,
)
from dualpilot.core.labels import Language
from dualpilot.data.geography import ALBERS_CHINA, check_layer
from dualpilot.data.programmes import DEFAULT_PAIR, Pair

log = logging.getLogger(__name__)

ArrayLike = float | Sequence[float] | np.ndarray

#: Code of 三沙 (the South China Sea islands): left out of the main map's extent, shown in the inset.
SANSHA_CODE = "460300"
#: Longitude/latitude box of the South China Sea inset (west, south, east, north).
SCS_BOX: tuple[float, float, float, float] = (106.5, 2.5, 123.0, 24.8)
CLUSTER_COLOURS: dict[str, str] = {
    "HH": "#d7191c",
    "LL": "#2c7bb6",
    "LH": "#abd9e9",
    "HL": "#fdae61",
    "ns": "#f0f0f0",
}
NO_DATA_COLOUR = "#c8c8c8"

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "no_data": "无数据",
        "lq": "区位熵",
        "year": "年份",
        "mean_lq": "IT业区位熵均值",
        "density": "核密度",
        "east": "东部",
        "central": "中部",
        "west": "西部",
        "northeast": "东北",
        "dual": "双试点城市",
        "first": "仅智慧城市试点",
        "second": "仅低碳城市试点",
        "HH": "高-高",
        "LL": "低-低",
        "LH": "低-高",
        "HL": "高-低",
        "ns": "不显著",
        "lisa_title": "{year}年 局部莫兰指数聚类",
        "pilot_title": "{year}年 IT业区位熵与试点城市",
        "year_title": "{year}年",
    },
    "en": {
        "no_data": "No data",
        "lq": "Location quotient",
        "year": "Year",
        "mean_lq": "Mean IT location quotient",
        "density": "Density",
        "east": "East",
        "central": "Central",
        "west": "West",
        "northeast": "Northeast",
        "dual": "Dual pilot",
        "first": "Smart city only",
        "second": "Low-carbon city only",
        "HH": "High-High",
        "LL": "Low-Low",
        "LH": "Low-High",
        "HL": "High-Low",
        "ns": "Not significant",
        "lisa_title": "LISA clusters, {year}",
        "pilot_title": "IT location quotient and pilot cities, {year}",
        "year_title": "{year}",
    },
}


def figure_text(language: Language, lq_label: str | None = None) -> dict[str, str]:
    """The figures' texts in `language`. `lq_label`: the label of lq when the outcome industry is not the
    IT sector (`tables.Labels.for_outcome_industry`, e.g. 金融业就业区位熵): the texts naming the IT
    location quotient or the location quotient name it instead; None keeps the study's texts."""
    text = dict(_TEXT[_language(language)])
    if lq_label is None:
        return text
    if language == "zh":
        text.update(
            lq=lq_label, mean_lq=f"{lq_label}均值", pilot_title=f"{{year}}年 {lq_label}与试点城市"
        )
    else:
        lower = lq_label[:1].lower() + lq_label[1:]
        text.update(
            lq=lq_label,
            mean_lq=f"Mean {lower}",
            pilot_title=f"{lq_label} and pilot cities, {{year}}",
        )
    return text


#: Outline styles of the pilot map: (edge colour, line style, line width); "first" and "second" are the
#: single-pilot groups of the dual pair's first and second programme (sc_only and lc_only by default).
PILOT_STYLES: dict[str, tuple[str, str, float]] = {
    "dual": ("#000000", "-", 1.3),
    "first": ("#1f4e9c", "--", 0.9),
    "second": ("#1a7a33", ":", 1.1),
}


def single_pilot_legend(short_zh: str, short_en: str, language: Language) -> str:
    """Legend name of a programme's single-pilot cities in the pilot map: "仅<short>试点" / "<short> only"
    (e.g. 仅智慧城市试点, Smart City only)."""
    return f"仅{short_zh}试点" if _language(language) == "zh" else f"{short_en} only"


# --------------------------------------------------------------------------------------------------
# Map drawing helpers
# --------------------------------------------------------------------------------------------------


def _language(language: Language) -> Language:
    from dualpilot.render import plots  # lazy: plots pulls in the table helpers

    return plots.configure_fonts(language)


def _project(geo: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    check_layer(geo)
    out = geo.to_crs(ALBERS_CHINA)
    out["code"] = out["code"].astype(str)
    return out.reset_index(drop=True)


def _box_bounds(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Projected bounds of a densified lon/lat box."""
    poly = shapely.segmentize(shapely.box(*box), 0.5)
    return tuple(gpd.GeoSeries([poly], crs=4326).to_crs(ALBERS_CHINA).total_bounds)


#: Height of the South China Sea inset as a fraction of its map's height.
INSET_HEIGHT = 0.27
#: Parts of the mainland smaller than this (m^2) may lie under the inset (e.g. 东沙 reefs).
_INSET_IGNORE_AREA = 2e9


@dataclass
class _MapBase:
    """The projected layer, province outlines, dash line and extents, shared by map panels.

    The main extent covers every unit but 三沙; when the layer reaches the South China Sea, the
    extent is lowered just enough for an inset in the lower right corner (showing `SCS_BOX`) to
    cover no part of the mainland, Hainan or Taiwan larger than `_INSET_IGNORE_AREA`.
    """

    layer: gpd.GeoDataFrame
    provinces: gpd.GeoSeries  # province outlines without 三沙
    dash_line: gpd.GeoSeries | None
    main_bounds: tuple[float, float, float, float]
    inset_bounds: tuple[float, float, float, float] | None

    @classmethod
    def build(cls, geo: gpd.GeoDataFrame, dash_line: gpd.GeoDataFrame | None) -> _MapBase:
        layer = _project(geo)
        mainland = layer[layer["code"] != SANSHA_CODE]
        groups = mainland.groupby("province", sort=True)["geometry"]
        outlines = [shapely.coverage_union_all(g.to_numpy()).boundary for _, g in groups]
        provinces = gpd.GeoSeries(outlines, crs=layer.crs)
        x0, y0, x1, y1 = mainland.total_bounds
        pad = 0.02 * max(x1 - x0, y1 - y0)
        main = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
        line = None if dash_line is None else dash_line.to_crs(ALBERS_CHINA).geometry
        if line is None and not (layer["code"] == SANSHA_CODE).any():
            return cls(layer, provinces, None, main, None)
        inset = _box_bounds(SCS_BOX)
        parts = shapely.get_parts(mainland.geometry.to_numpy())
        large = parts[shapely.area(parts) > _INSET_IGNORE_AREA]
        return cls(layer, provinces, line, _lower_for_inset(main, inset, large), inset)

    def _draw(self, ax: Axes, colours: Sequence[str], bounds, *, inset: bool) -> None:
        """Draw the units (三沙 and the dash line only in the inset) and province outlines."""
        shown = np.ones(len(self.layer), dtype=bool) if inset else self._mainland()
        self.layer[shown].plot(
            ax=ax,
            color=list(np.asarray(colours, dtype=object)[shown]),
            edgecolor="white",
            linewidth=0.15,
        )
        self.provinces.plot(ax=ax, color="0.35", linewidth=0.35)
        if inset:
            self.layer[~self._mainland()].boundary.plot(ax=ax, color="0.35", linewidth=0.35)
        if inset and self.dash_line is not None:
            self.dash_line.plot(ax=ax, color="0.2", linewidth=0.8)
        ax.set_xlim(bounds[0], bounds[2])
        ax.set_ylim(bounds[1], bounds[3])
        ax.set_aspect("equal")
        _bare(ax)

    def draw(self, ax: Axes, colours: Sequence[str]) -> Axes | None:
        """Fill the units with `colours` (one per layer row) and add the South China Sea inset.

        Returns the inset axes (a child of `ax`), or None when the layer has no South China Sea.
        """
        if len(colours) != len(self.layer):
            raise ValueError(f"{len(colours)} colours for {len(self.layer)} units")
        self._draw(ax, colours, self.main_bounds, inset=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if self.inset_bounds is None:
            return None
        x0, y0, x1, y1 = _inset_box(self.main_bounds, self.inset_bounds)
        mx0, my0, mx1, my1 = self.main_bounds
        inset = ax.inset_axes(
            ((x0 - mx0) / (mx1 - mx0), 0.0, (x1 - x0) / (mx1 - mx0), INSET_HEIGHT)
        )
        self._draw(inset, colours, self.inset_bounds, inset=True)
        for spine in inset.spines.values():
            spine.set_linewidth(0.6)
        return inset

    def _mainland(self) -> np.ndarray:
        return (self.layer["code"] != SANSHA_CODE).to_numpy()

    def overlay(self, ax: Axes, codes: Iterable[str], style: tuple[str, str, float]) -> None:
        """Outline the units `codes` with (edge colour, line style, width), in `ax` and its inset."""
        chosen = self.layer["code"].isin(list(codes)).to_numpy()
        colour, linestyle, width = style
        for target, shown in (
            (ax, chosen & self._mainland()),
            *((c, chosen) for c in ax.child_axes),
        ):
            if shown.any():
                self.layer[shown].boundary.plot(
                    ax=target, color=colour, linestyle=linestyle, linewidth=width
                )
                _bare(target)


def _bare(ax: Axes) -> None:
    """No ticks and no axis labels (geopandas labels projected axes with their units)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")


def _inset_box(
    main: tuple[float, float, float, float], inset: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """Where the inset sits in the main map's coordinates (lower right, `INSET_HEIGHT` tall)."""
    mx0, my0, mx1, my1 = main
    ix0, iy0, ix1, iy1 = inset
    height = INSET_HEIGHT * (my1 - my0)
    width = height * (ix1 - ix0) / (iy1 - iy0)
    return (mx1 - width, my0, mx1, my0 + height)


def _lower_for_inset(
    main: tuple[float, float, float, float],
    inset: tuple[float, float, float, float],
    land: np.ndarray,
) -> tuple[float, float, float, float]:
    """`main` with its bottom lowered (in 1 % steps) until the inset box clears `land`."""
    x0, y0, x1, y1 = main
    for step in range(0, 101):
        bounds = (x0, y0 - 0.01 * step * (y1 - y0), x1, y1)
        if not shapely.intersects(shapely.box(*_inset_box(bounds, inset)), land).any():
            return bounds
    raise RuntimeError("no room for the South China Sea inset")


def _choropleth_colours(
    layer: gpd.GeoDataFrame, values: pd.Series, bounds: np.ndarray, palette: Sequence[str]
) -> list[str]:
    """Fill colour per layer row: the natural-break class colour, grey where there is no value."""
    colour = pd.Series(NO_DATA_COLOUR, index=layer.index, dtype=object)
    have = layer["code"].isin(values.index)
    classes = _classify(values.loc[layer.loc[have, "code"]].to_numpy(), bounds)
    colour[have] = [palette[c] for c in classes]
    return colour.tolist()


def _palette(k: int, cmap: str = "YlOrRd") -> list[str]:
    colours = colormaps[cmap](np.linspace(0.12, 0.95, k))
    return [mcolors.to_hex(c) for c in colours]


def _class_handles(bounds: np.ndarray, lowest: float, palette: Sequence[str], lang: Language):
    handles = [
        Patch(facecolor=c, edgecolor="0.5", linewidth=0.3, label=label)
        for c, label in zip(palette, _class_labels(bounds, lowest), strict=True)
    ]
    handles.append(
        Patch(
            facecolor=NO_DATA_COLOUR, edgecolor="0.5", linewidth=0.3, label=_TEXT[lang]["no_data"]
        )
    )
    return handles


# --------------------------------------------------------------------------------------------------
# Figures and tables
# --------------------------------------------------------------------------------------------------


def lq_maps(
    panel: pd.DataFrame,
    geo: gpd.GeoDataFrame,
    years: Sequence[int] = DEFAULT_YEARS,
    k: int = 5,
    *,
    dash_line: gpd.GeoDataFrame | None = None,
    language: Language = "zh",
    lq_label: str | None = None,
) -> Figure:
    """Small multiples (2 columns) of lq in `years`, one shared natural-breaks legend.

    The k Fisher-Jenks classes are computed on the pooled values of all `years` (cities with a
    polygon), so colours mean the same in every panel. Units without a value (no data that year,
    or not cities of the study) are grey. Each panel gets a South China Sea inset (the islands of
    三沙 and, if `dash_line` is given, the ten-dash line). Axes: one per year (insets are child
    axes of their panel).
    """
    lang = _language(language)
    text = figure_text(lang, lq_label)
    data = check_panel(panel)
    chosen = check_years(data, years)
    base = _MapBase.build(geo, dash_line)
    per_year = {y: mapped_values(data, geo, y, "lq")[0] for y in chosen}
    pooled = np.concatenate([v.to_numpy() for v in per_year.values()])
    bounds = fisher_jenks_breaks(pooled, k)
    palette = _palette(k)
    ncol = 2 if len(chosen) > 1 else 1
    nrow = math.ceil(len(chosen) / ncol)
    fig = Figure(figsize=(5.2 * ncol, 4.3 * nrow + 0.7), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, year in zip(axes, chosen, strict=False):
        base.draw(ax, _choropleth_colours(base.layer, per_year[year], bounds, palette))
        ax.set_title(text["year_title"].format(year=year))
    for ax in axes[len(chosen) :]:
        fig.delaxes(ax)
    fig.legend(
        handles=_class_handles(bounds, float(pooled.min()), palette, lang),
        loc="outside lower center",
        ncol=k + 1,
        frameon=False,
        title=text["lq"],
        fontsize="small",
    )
    return fig


def pilot_map(
    panel: pd.DataFrame,
    geo: gpd.GeoDataFrame,
    year: int | None = None,
    *,
    k: int = 5,
    dash_line: gpd.GeoDataFrame | None = None,
    language: Language = "zh",
    lq_label: str | None = None,
    pair: Pair = DEFAULT_PAIR,
    single_labels: tuple[str, str] | None = None,
) -> Figure:
    """lq in `year` (default: the last panel year) with the pilot cities outlined.

    Natural breaks (k classes) of that year's values; outlines from the panel's indicators in that
    year: dual pilots (`dual_post` = 1) solid black, first-programme-only (e.g. `sc_post` = 1, not dual)
    dashed blue, second-programme-only (e.g. `lc_post` = 1, not dual) dotted green, for the programmes
    of `pair`; `single_labels` names the two single-pilot groups in the legend (default: smart city and
    low carbon). One axes (plus inset).
    """
    lang = _language(language)
    text = dict(figure_text(lang, lq_label))
    if single_labels is not None:
        text["first"], text["second"] = single_labels
    a_post, b_post = pair.post_columns
    data = check_panel(panel, [a_post, b_post, "dual_post"])
    year = int(data["year"].max()) if year is None else check_years(data, [year])[0]
    base = _MapBase.build(geo, dash_line)
    values = mapped_values(data, geo, year, "lq")[0]
    bounds = fisher_jenks_breaks(values.to_numpy(), k)
    palette = _palette(k)
    fig = Figure(figsize=(7.6, 6.4), layout="constrained")
    ax = fig.add_subplot()
    base.draw(ax, _choropleth_colours(base.layer, values, bounds, palette))
    rows = data[data["year"] == year]
    dual = rows["dual_post"].astype(int) == 1
    groups = {
        "dual": rows.loc[dual, "city_code"],
        "first": rows.loc[~dual & (rows[a_post].astype(int) == 1), "city_code"],
        "second": rows.loc[~dual & (rows[b_post].astype(int) == 1), "city_code"],
    }
    handles = _class_handles(bounds, float(values.min()), palette, lang)
    for name, codes in groups.items():
        base.overlay(ax, codes, PILOT_STYLES[name])
        colour, linestyle, width = PILOT_STYLES[name]
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linestyle=linestyle,
                linewidth=width + 0.4,
                label=f"{text[name]} ({len(codes)})",
            )
        )
    ax.legend(handles=handles, loc="lower left", fontsize="small", frameon=False, title=text["lq"])
    ax.set_title(text["pilot_title"].format(year=year))
    return fig


def regional_trends_figure(
    table: pd.DataFrame, *, language: Language = "zh", lq_label: str | None = None
) -> Figure:
    """Line chart of `regional_trends`' table: mean lq by year, one line per region in table order.
    `lq_label`: see `figure_text` (also for `lq_maps`, `pilot_map` and `lq_densities`)."""
    lang = _language(language)
    text = figure_text(lang, lq_label)
    order = list(dict.fromkeys(table["region"].astype(str)))
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for j, region in enumerate(order):
        sub = table[table["region"] == region]
        ax.plot(
            sub["year"],
            sub["mean_lq"],
            marker="o",
            markersize=3.5,
            color=f"C{j}",
            label=text.get(region, region),
        )
    ax.set_xlabel(text["year"])
    ax.set_ylabel(text["mean_lq"])
    years = sorted(table["year"].unique())
    ax.set_xticks(years[:: max(1, len(years) // 9)])
    ax.legend(frameon=False)
    return fig


def lisa_figure(
    table: pd.DataFrame,
    geo: gpd.GeoDataFrame,
    *,
    alpha: float,
    dash_line: gpd.GeoDataFrame | None = None,
    language: Language = "zh",
) -> Figure:
    """One map per year of `local_hotspots`' table, cities coloured by cluster (significant at `alpha`)."""
    lang = _language(language)
    chosen = list(dict.fromkeys(int(y) for y in table["year"]))
    table = table.assign(city_code=table["city_code"].astype(str))
    base = _MapBase.build(geo, dash_line)
    fig = Figure(figsize=(5.2 * len(chosen), 5.0), layout="constrained")
    axes = fig.subplots(1, len(chosen), squeeze=False).ravel()
    for ax, year in zip(axes, chosen, strict=True):
        cluster = table[table["year"] == year].set_index("city_code")["cluster"]
        colours = [
            CLUSTER_COLOURS[cluster[c]] if c in cluster.index else NO_DATA_COLOUR
            for c in base.layer["code"]
        ]
        base.draw(ax, colours)
        ax.set_title(_TEXT[lang]["lisa_title"].format(year=year))
    handles = [
        Patch(facecolor=CLUSTER_COLOURS[c], edgecolor="0.5", linewidth=0.3, label=_TEXT[lang][c])
        for c in ("HH", "LL", "LH", "HL", "ns")
    ]
    handles.append(
        Patch(
            facecolor=NO_DATA_COLOUR, edgecolor="0.5", linewidth=0.3, label=_TEXT[lang]["no_data"]
        )
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=len(handles),
        frameon=False,
        fontsize="small",
        title=f"p < {alpha:g}",
    )
    return fig


def lq_densities(
    panel: pd.DataFrame,
    years: Sequence[int] = DEFAULT_YEARS,
    *,
    bw_method: str | float | None = None,
    language: Language = "zh",
    lq_label: str | None = None,
) -> Figure:
    """Gaussian kernel densities of lq across cities, one curve per year, on one axes.

    `bw_method` is passed to `scipy.stats.gaussian_kde` (default: Scott's rule). The curves are
    evaluated on a common grid from the pooled minimum to the pooled maximum, each extended by 10 %
    of the range (but not below 0 when every value is non-negative, as lq is).
    """
    lang = _language(language)
    text = figure_text(lang, lq_label)
    data = check_panel(panel)
    chosen = check_years(data, years)
    per_year = {y: year_values(data, y).to_numpy() for y in chosen}
    for y, v in per_year.items():
        if np.unique(v).size < 2:
            raise ValueError(f"year {y}: need at least two distinct lq values for a density")
    pooled = np.concatenate(list(per_year.values()))
    lo, hi = float(pooled.min()), float(pooled.max())
    span = hi - lo
    grid = np.linspace(
        max(0.0, lo - 0.1 * span) if lo >= 0 else lo - 0.1 * span, hi + 0.1 * span, 400
    )
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    styles = ("-", "--", "-.", ":")
    for j, (year, v) in enumerate(per_year.items()):
        kde = stats.gaussian_kde(v, bw_method=bw_method)
        ax.plot(grid, kde(grid), color=f"C{j}", linestyle=styles[j % len(styles)], label=str(year))
    ax.set_xlabel(text["lq"])
    ax.set_ylabel(text["density"])
    ax.legend(frameon=False, title=text["year"])
    return fig


def _classify(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Class index (0..k-1) of each value for upper `bounds`; values above the last go to k-1."""
    idx = np.searchsorted(bounds, values, side="left")
    return np.minimum(idx, len(bounds) - 1)


def _class_labels(bounds: np.ndarray, lowest: float) -> list[str]:
    lows = [lowest, *bounds[:-1]]
    return [f"{lo:.2f} – {hi:.2f}" for lo, hi in zip(lows, bounds, strict=True)]
