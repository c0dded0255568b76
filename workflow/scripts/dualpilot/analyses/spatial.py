"""The spatial pattern of the IT location quotient: regional trends, Moran's I, hot spots, top cities.

Inputs are the city panel (one row per city-year, columns `city_code`, `city_name`, `year`, `lq`, the
region columns and the pilot indicators) and the prefecture boundary layer (`dualpilot.data.geography`).
The maps and figures are `dualpilot.render.maps`.

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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse, stats

from dualpilot.core.errors import require_columns
from dualpilot.data.geography import ALBERS_CHINA, check_layer
from dualpilot.engines import resampling

log = logging.getLogger(__name__)

ArrayLike = float | Sequence[float] | np.ndarray

#: Map years of the default small multiples.
DEFAULT_YEARS: tuple[int, ...] = (2006, 2012, 2018, 2023)
#: Region orders for the regional trends.
REGION_ORDER: dict[str, tuple[str, ...]] = {
    "region4": ("east", "central", "west", "northeast"),
    "region": ("east", "central", "west"),
}
#: LISA quadrant codes (esda's convention) -> cluster label.
QUADRANTS: dict[int, str] = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}


PANEL_COLUMNS: tuple[str, ...] = ("city_code", "city_name", "year", "lq")


def check_panel(panel: pd.DataFrame, columns: Iterable[str] = PANEL_COLUMNS) -> pd.DataFrame:
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


def check_years(panel: pd.DataFrame, years: Iterable[int]) -> list[int]:
    """`years` as ints, each present in the panel (ValueError otherwise)."""
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


def year_values(panel: pd.DataFrame, year: int, value: str = "lq") -> pd.Series:
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
        draws = resampling.permutations_of(z, permutations, seed)
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
    ``resampling.conditional_draws(n, max_card, permutations, seed)``. Units need at least one neighbour.
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
        draws = resampling.conditional_draws(n, int(card.max()), permutations, seed)
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


def mapped_values(
    panel: pd.DataFrame, geo: gpd.GeoDataFrame, year: int, value: str
) -> tuple[pd.Series, list[str]]:
    """Values of `year` for cities with a polygon, and the codes left out for lack of one."""
    vals = year_values(panel, year, value)
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
    data = check_panel(panel, [value])
    chosen = sorted(data["year"].unique().tolist()) if years is None else check_years(data, years)
    rows = []
    for year in chosen:
        vals, missing = mapped_values(data, geo, year, value)
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



def regional_trends(panel: pd.DataFrame, region_col: str = "region4") -> pd.DataFrame:
    """Mean lq by region and year (results/tables/regional_trends.csv; `regional_trends_figure` draws it).

    Columns: region, year, mean_lq, sd_lq (sample s.d.), n_cities (cities with a value).
    Regions are ordered east, central, west (, northeast) for `region4`/`region`, else sorted.
    """
    data = check_panel(panel, [region_col])
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
    data = check_panel(panel)
    all_years = sorted(data["year"].unique().tolist())
    chosen = [all_years[0], all_years[-1]] if years is None else check_years(data, years)
    chosen = list(dict.fromkeys(chosen))
    names = data.drop_duplicates("city_code").set_index("city_code")["city_name"]
    frames = []
    for year in chosen:
        vals, _ = mapped_values(data, geo, year, "lq")
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



def top_cities(
    panel: pd.DataFrame, n: int = 20, years: Iterable[int] | None = None
) -> pd.DataFrame:
    """The `n` cities with the highest lq in each year (`years` default: every panel year).

    Columns year, rank (1 = highest), city_code, city_name, lq; cities without a value are left
    out; ties in lq are ordered by city_code and ranked one after the other.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    data = check_panel(panel)
    chosen = sorted(data["year"].unique().tolist()) if years is None else check_years(data, years)
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
