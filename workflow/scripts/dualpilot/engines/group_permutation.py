"""The engine of the bdiff permutation test: the coefficient of a treatment D in y ~ D + X | unit + year,
re-estimated on the two groups of cities of many label permutations at once (vectorised over the draws, as
`dualpilot.engines.placebo` is over placebo assignments).

A draw changes which cities form each group, so the fixed effects cannot be partialled out once for all
draws as in the placebo engine, where the sample is fixed. What stays fixed is each city's own
contribution: the city effect is a within-city demeaning, the same whichever other cities share the sample,
so the per-city blocks S_c = W_c'W_c of W = [year dummies, X, D, y] demeaned within the city are computed
once, a batch of draws gets the Gram matrices of all its groups from one (draws x cities) @ (cities x m^2)
product, and a batched Cholesky solve gives b = (A_Dy - u'v) / (A_DD - u'u). The algebra, the singleton
and base-year rules and the checks are set out in `dualpilot.analyses.heterogeneity`'s docstring; the
per-draw refit this replaces is `dualpilot.engines.twfe.TwfeDesign` (the tests' oracle, equal to 1e-10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dualpilot.engines.fwl import COLLIN_TOL, FloatArray, factorize, group_sums, singleton_mask


@dataclass
class _Totals:
    """Sufficient statistics of B estimation samples (leading axis B): see `_CityMoments`."""

    n: FloatArray  # rows
    counts: FloatArray  # (B, T) rows per year
    sums: FloatArray  # (B, k + 1) sums of the raw X and D
    sumsq: FloatArray  # (B, k + 1) sums of squares of the raw X and D
    cross: FloatArray  # (B, m * m) sum of the cities' within-city cross-products
    non_nested: NDArray[np.bool_]  # (B,) a city with rows in two clusters
    n_clusters: NDArray[np.int64]  # (B,)
    time_nested: NDArray[np.bool_]  # (B,) every year present holds exactly one cluster

    def put(self, i: int, other: _Totals) -> None:
        """Replace sample `i` by the (single) sample of `other`."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[i] = getattr(other, name)[0]


@dataclass
class _CityMoments:
    """Per-city sufficient statistics of y ~ D + X | city + year on a set of rows.

    C cities, T years (sorted codes of the whole comparison), k controls; W = [year dummies (T), X (k),
    D, y] (m = T + k + 2 columns). A city with a single row is a singleton of the city effect and is
    dropped, as `fwl.singleton_mask` drops it: all its entries are 0.
    """

    n: FloatArray  # (C,) rows
    counts: FloatArray  # (C, T) rows per year
    sums: FloatArray  # (C, k + 1)
    sumsq: FloatArray  # (C, k + 1)
    cross: FloatArray  # (C, m * m) W'W of the city's rows, W demeaned within the city
    cluster: NDArray[np.int64]  # (C,) cluster of the city's first row (-1: no rows)
    nested: NDArray[np.bool_]  # (C,) the city's rows lie in one cluster
    n_cluster_codes: int

    @classmethod
    def of_rows(cls, engine: GroupPermutationEngine, rows: NDArray[np.bool_]) -> _CityMoments:
        """The moments of the rows marked in the boolean mask `rows`."""
        n_cities, n_years = engine.n_cities, engine.n_years
        idx = np.flatnonzero(rows)
        city = engine.row_city[idx]
        idx = idx[np.bincount(city, minlength=n_cities)[city] >= 2]
        idx = idx[np.argsort(engine.row_city[idx], kind="stable")]
        city = engine.row_city[idx]
        n = np.bincount(city, minlength=n_cities).astype(np.float64)
        w = np.zeros((idx.size, engine.n_columns))
        w[np.arange(idx.size), engine.row_year[idx]] = 1.0
        w[:, n_years:] = engine.xdy[idx]
        raw = w[:, n_years:-1]
        counts = group_sums(w[:, :n_years], city, n_cities)
        sums = group_sums(raw, city, n_cities)
        sumsq = group_sums(raw * raw, city, n_cities)
        w -= (group_sums(w, city, n_cities) / np.maximum(n, 1.0)[:, None])[city]
        cross = np.zeros((n_cities, engine.n_columns**2))
        bounds = np.searchsorted(city, np.arange(n_cities + 1))
        for c in np.flatnonzero(n):
            block = w[bounds[c] : bounds[c + 1]]
            cross[c] = (block.T @ block).ravel()
        clus = engine.row_cluster[idx]
        cluster = np.full(n_cities, -1, dtype=np.int64)
        cluster[city[::-1]] = clus[::-1]  # the first row of each city is written last
        nested = np.ones(n_cities, dtype=bool)
        nested[city[clus != cluster[city]]] = False
        return cls(n, counts, sums, sumsq, cross, cluster, nested, engine.n_cluster_codes)

    def total(self, members: NDArray[np.bool_]) -> _Totals:
        """Sums over the cities marked in each row of `members` (B x C)."""
        w = np.asarray(members, dtype=np.float64)
        kept = self.n > 0
        present = (self.counts > 0).astype(np.float64)
        if self.nested[kept].all() and np.unique(self.cluster[kept]).size == kept.sum():
            # every city is its own cluster (the study's case): count cities
            n_clusters = np.rint(w @ kept).astype(np.int64)
            per_year = w @ present
        else:
            q = np.zeros((self.n.size, self.n_cluster_codes))
            q[np.flatnonzero(kept), self.cluster[kept]] = 1.0
            n_clusters = ((w @ q) > 0).sum(axis=1)
            per_year = np.column_stack(
                [((w * present[:, t]) @ q > 0).sum(axis=1) for t in range(present.shape[1])]
            )
        counts = w @ self.counts
        years = counts > 0
        time_nested = years.any(axis=1) & np.where(years, np.rint(per_year) == 1, True).all(axis=1)
        return _Totals(
            n=w @ self.n,
            counts=counts,
            sums=w @ self.sums,
            sumsq=w @ self.sumsq,
            cross=w @ self.cross,
            non_nested=(w @ (kept & ~self.nested)) > 0,
            n_clusters=n_clusters,
            time_nested=time_nested,
        )


class GroupPermutationEngine:
    """The coefficient of D in the permuted groups of one comparison, many draws at once.

    See the module docstring for the algebra: per-city cross-products summed over a group's cities by
    one matrix product per batch of draws, then a batched Cholesky factorisation. The conventions and
    checks are those of `dualpilot.engines.twfe.TwfeDesign` (which `bdiff_draws_reference` refits per draw):
    singletons dropped iteratively, the base year the group's first, collinearity at 1e-10 of a
    column's own variation, the same checks in the same order.
    """

    CHUNK = 256
    """Draws per batch (the Gram matrices of a batch take CHUNK x m^2 floats per group)."""

    def __init__(
        self,
        *,
        n_cities: int,
        row_city: NDArray[np.int64],
        row_unit: NDArray[np.int64],
        row_cluster: NDArray[np.int64],
        time: np.ndarray,
        x: FloatArray,
        d: FloatArray,
        y: FloatArray,
        treatment: str,
        control_names: Sequence[str],
    ) -> None:
        """Rows of the comparison's sample: the city (0..n_cities-1, the unit of permutation), unit and
        cluster codes, the time labels, controls `x` (n x k), treatment `d` and outcome `y`."""
        self.n_cities = int(n_cities)
        self.row_city = np.asarray(row_city, dtype=np.int64)
        self.row_unit = np.asarray(row_unit, dtype=np.int64)
        self.row_cluster = np.asarray(row_cluster, dtype=np.int64)
        self.n_cluster_codes = int(self.row_cluster.max()) + 1 if self.row_cluster.size else 0
        self.row_year, years = factorize(np.asarray(time), "time")
        self.n_years = len(years)
        self.n_controls = x.shape[1]
        self.n_columns = self.n_years + self.n_controls + 2
        self.xdy = np.column_stack([x, d, y])
        self.treatment = treatment
        self.control_names = [str(c) for c in control_names]
        self.moments = _CityMoments.of_rows(self, np.ones(self.row_city.size, dtype=bool))

    def coefficients(self, members: NDArray[np.bool_]) -> tuple[FloatArray, list[str | None]]:
        """The coefficient of D on the cities marked in each row of `members` (B x C), and for each
        sample None or the message of the error the per-draw fit raises there."""
        total = self.moments.total(members)
        # A singleton year left after the singleton cities are dropped: that sample's own rows,
        # dropped iteratively as the per-draw fit does.
        for i in np.flatnonzero((total.counts == 1).any(axis=1)):
            rows = members[i][self.row_city]
            kept = singleton_mask(self.row_unit[rows], self.row_year[rows])
            keep = np.zeros(rows.size, dtype=bool)
            keep[np.flatnonzero(rows)[kept]] = True
            total.put(i, _CityMoments.of_rows(self, keep).total(np.ones((1, self.n_cities), bool)))
        return self._solve(total)

    def _solve(self, t: _Totals) -> tuple[FloatArray, list[str | None]]:
        n_samples, n_years, k = t.n.size, self.n_years, self.n_controls
        p = n_years + k  # columns of [year dummies, X]; D is column p, y column p + 1
        cross = t.cross.reshape(n_samples, p + 2, p + 2)
        errors: list[str | None] = [None] * n_samples

        def flag(mask: NDArray[np.bool_], message: Callable[[int], str]) -> None:
            for i in np.flatnonzero(mask):
                if errors[i] is None:
                    errors[i] = message(int(i))

        present = t.counts > 0
        n_periods = present.sum(axis=1)
        base = np.argmax(present, axis=1)
        keep = np.ones((n_samples, p), dtype=bool)
        keep[:, :n_years] = present
        keep[np.arange(n_samples), base] = False
        flag(t.n == 0, lambda i: "no observation left after dropping singletons")
        flag(t.non_nested, lambda i: "the fast path needs units nested in clusters")
        flag(t.n_clusters < 2, lambda i: f"CRV1 needs at least 2 clusters, got {t.n_clusters[i]}")
        flag(
            t.time_nested,
            lambda i: (
                "the time effect is nested in the clusters (fixest would count it differently in K)"
            ),
        )
        n = np.maximum(t.n, 1.0)
        ref = np.empty((n_samples, p + 1))  # variation of each raw column around its mean
        ref[:, :n_years] = t.counts - t.counts**2 / n[:, None]
        ref[:, n_years:] = t.sumsq - t.sums**2 / n[:, None]
        diag = np.diagonal(cross, axis1=1, axis2=2)[:, : p + 1]

        def names(i: int, columns: NDArray[np.bool_]) -> str:
            # the per-draw fit numbers the group's years after its first: "time dummy 1", ...
            labels = [f"time dummy {j}" for j in range(1, int(n_periods[i]))] + self.control_names
            return ", ".join(np.asarray(labels, dtype=object)[columns[keep[i]]])

        absorbed = keep & (diag[:, :p] <= COLLIN_TOL * ref[:, :p])
        flag(
            absorbed.any(axis=1),
            lambda i: (
                "collinear with the unit fixed effects (constant within every unit): "
                + names(i, absorbed[i])
            ),
        )
        # [year dummies, X] block scaled to a unit diagonal; dropped years decoupled (identity)
        scale = np.where(keep & (diag[:, :p] > 0), np.sqrt(np.where(keep, diag[:, :p], 1.0)), 1.0)
        gram = cross[:, :p, :p] / (scale[:, :, None] * scale[:, None, :])
        gram *= keep[:, :, None] & keep[:, None, :]
        gram[:, np.arange(p), np.arange(p)] += ~keep
        rhs = cross[:, :p, p:] / scale[:, :, None]  # columns D and y
        rhs *= keep[:, :, None]
        eye = np.eye(p)
        gram[np.array([e is not None for e in errors], dtype=bool)] = eye
        try:
            chol = np.linalg.cholesky(gram)
        except np.linalg.LinAlgError:
            chol = np.empty_like(gram)
            for i in range(n_samples):
                try:
                    chol[i] = np.linalg.cholesky(gram[i])
                except np.linalg.LinAlgError:
                    chol[i] = eye
                    flag(
                        np.arange(n_samples) == i,
                        lambda i: (
                            "the fixed effects and controls are collinear (singular design "
                            "after within-unit demeaning): the panel may be disconnected or a control "
                            "may be a combination of fixed effects and other controls"
                        ),
                    )
        left_f = np.diagonal(chol, axis1=1, axis2=2) ** 2 * np.where(keep, diag[:, :p], 0.0)
        bad = keep & (left_f < COLLIN_TOL * ref[:, :p])
        flag(
            bad.any(axis=1),
            lambda i: (
                "collinear with the fixed effects and preceding controls (residual variance "
                f"below {COLLIN_TOL:g} of the variable's own): " + names(i, bad[i])
            ),
        )
        df_k = 1 + k + n_periods
        flag(
            t.n <= df_k,
            lambda i: f"no residual degrees of freedom: N={int(t.n[i])}, K={int(df_k[i])}",
        )
        u = np.linalg.solve(chol, rhs)  # L^-1 [a_D, a_y]
        left = cross[:, p, p] - np.einsum("bj,bj->b", u[:, :, 0], u[:, :, 0])
        flag(
            ~(left > COLLIN_TOL * ref[:, p]),
            lambda i: (
                f"{self.treatment!r} has no variation left after the fixed effects, "
                "controls and preceding terms"
            ),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = (cross[:, p, p + 1] - np.einsum("bj,bj->b", u[:, :, 0], u[:, :, 1])) / left
        return coef, errors
