"""The one home of the clustered small-sample convention (fixest's CRV1 defaults).

`estimation.fit` leaves it to pyfixest (`ssc(k_adj=True, k_fixef="nonnested", G_adj=True)`); every
engine that forms a CRV1 sandwich itself (the placebo engine, the mechanisms' bootstrap refits, the
Sun-Abraham regression of `staggered`) takes its K and its factor from here, so the numbers agree
with `estimation.fit` to rounding:

    V = G/(G-1) · (N-1)/(N-K) · B (sum_g s_g s_g') B

with K = coefficients + counted fixed-effect levels (`fixest_df_k`) and S the cluster sums of the scores
(`crv1_vcov`). This module imports nothing of the project and only numpy, so the light engines use it
without loading pyfixest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def fixest_df_k(n_coef: int, fe_sizes: Sequence[int], fe_nested: Sequence[bool]) -> int:
    """K of the factor (N-1)/(N-K) as fixest counts it (`fixef.K="nested"`; pyfixest's
    k_fixef="nonnested"): K = n_coef + sum(fe sizes) - (n_fe - 1) - sum(nested fe sizes) + n_nested.

    Every fixed effect but the first loses one level to the intercept, and a fixed effect nested in the
    clusters counts as one parameter.
    """
    n_fe = len(fe_sizes)
    k_fe = sum(fe_sizes) - (n_fe - 1 if n_fe > 1 else 0)
    nested = [s for s, f in zip(fe_sizes, fe_nested, strict=True) if f]
    return n_coef + k_fe - (sum(nested) - len(nested) if nested else 0)


def crv1_factor(n_obs: int, df_k: int, n_clusters: int) -> float:
    """fixest's CRV1 small-sample factor G/(G-1) · (N-1)/(N-K) (`ssc(adj=TRUE, cluster.adj=TRUE)`).

    Raises ValueError when there are no residual degrees of freedom (N <= K) or fewer than 2 clusters.
    """
    if n_obs <= df_k:
        raise ValueError(f"no residual degrees of freedom: N={n_obs}, K={df_k}")
    if n_clusters < 2:
        raise ValueError(f"clustered standard errors need at least 2 clusters, got {n_clusters}")
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - df_k)


def crv1_vcov(
    bread: NDArray[np.float64], scores: NDArray[np.float64], n_obs: int, df_k: int, n_clusters: int
) -> NDArray[np.float64]:
    """The CRV1 covariance ``crv1_factor · B (S'S) B`` from the bread B = (X'X)^{-1} (k x k) and the
    cluster sums S of the scores x_i u_i (n_clusters x k)."""
    return crv1_factor(n_obs, df_k, n_clusters) * bread @ (scores.T @ scores) @ bread
