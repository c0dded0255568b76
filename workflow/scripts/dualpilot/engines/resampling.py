"""The one convention for p-values from resampling (permutations, placebo draws, bootstraps).

A p-value estimated from B random draws counts the observed statistic as one of the draws:

    p = (1 + #{draws at least as extreme as the observed statistic}) / (1 + B)

(Davison & Hinkley 1997, eq. 4.11; Phipson & Smyth 2010). It is never 0: with B = 999 the smallest
attainable value is 0.001, and tables print values below 0.001 as "< 0.001" (`tables.format_p`). Under
full enumeration of a finite randomisation distribution (e.g. every Rademacher sign vector of a wild
cluster bootstrap with few clusters) the observed statistic is already one of the B draws and the exact
share #{extreme} / B is used instead (`exact=True`).

Romano-Wolf (`mechanisms.romano_wolf`) and the spatial pseudo p-values (`spatial`) follow the same rule.

Every random draw (a placebo assignment, a bootstrap resample, a permutation of group labels) takes its
generator from `draw_rng`: a function of the seed, the draw's stream and its index only, so a shard
computing draws [a, b) reproduces exactly the draws of a single run over all draws.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray


def resampled_pvalue(n_extreme: int, n_draws: int, *, exact: bool = False) -> float:
    """(1 + n_extreme) / (1 + n_draws), or n_extreme / n_draws when `exact` (full enumeration).

    Raises ValueError unless 0 <= n_extreme <= n_draws and n_draws >= 1 (and, when `exact`,
    n_extreme >= 1: the observed statistic is one of the enumerated draws).
    """
    n_extreme, n_draws = int(n_extreme), int(n_draws)
    if n_draws < 1 or not 0 <= n_extreme <= n_draws:
        raise ValueError(
            f"need 0 <= n_extreme <= n_draws and n_draws >= 1, got {n_extreme}, {n_draws}"
        )
    if exact:
        if n_extreme < 1:
            raise ValueError("under full enumeration the observed statistic is one of the draws")
        return n_extreme / n_draws
    return (1 + n_extreme) / (1 + n_draws)


def count_at_least(draws: ArrayLike, observed: float, *, side: str = "two-sided") -> int:
    """Number of `draws` at least as extreme as `observed`: |d| >= |observed| ("two-sided"),
    d >= observed ("greater") or d <= observed ("less")."""
    d = np.asarray(draws, dtype=float)
    if side == "two-sided":
        return int(np.sum(np.abs(d) >= abs(observed)))
    if side == "greater":
        return int(np.sum(d >= observed))
    if side == "less":
        return int(np.sum(d <= observed))
    raise ValueError(f"side must be 'two-sided', 'greater' or 'less', got {side!r}")


def permutation_pvalue(draws: ArrayLike, observed: float, *, side: str = "two-sided") -> float:
    """`resampled_pvalue` of `observed` against finite random `draws` (see `count_at_least`)."""
    d = np.asarray(draws, dtype=float)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise ValueError("need at least one finite draw")
    if not np.isfinite(observed):
        raise ValueError(f"the observed statistic must be finite, got {observed}")
    return resampled_pvalue(count_at_least(d, observed, side=side), d.size)


def draw_rng(seed: int, draw: int, *stream: int | str) -> np.random.Generator:
    """The generator of draw `draw`: ``default_rng(SeedSequence([seed, *stream, draw]))``.

    `stream` names the kind of draw (an analysis' stream id, then e.g. a placebo kind's id or a
    dimension and pair of groups); a string enters as its CRC-32 of UTF-8. Raises ValueError if
    `seed` or `draw` is negative.
    """
    if seed < 0 or draw < 0:
        raise ValueError(f"seed and draw must be non-negative, got seed={seed}, draw={draw}")
    keys = [zlib.crc32(k.encode("utf-8")) if isinstance(k, str) else int(k) for k in stream]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *keys, int(draw)]))


def gather_draws(
    frames: Sequence[pd.DataFrame], n_draws: int | None = None, *, per: Sequence[str] = ()
) -> pd.DataFrame:
    """Concatenate the shards of a run of draws (each with a `draw` column), sorted by draw (stable:
    the rows of one draw keep their order), checking that they are one run: the same columns in every
    shard, each draw once (once per value of the `per` columns present, e.g. each mediator) and the
    draws exactly 0..n_draws-1 (`None`: as many draws as there are distinct ones).

    Raises ValueError naming the shard, the duplicated, missing or unexpected draws.
    """
    if not frames:
        raise ValueError("gather: no shards")
    cols = list(frames[0].columns)
    for i, f in enumerate(frames):
        if list(f.columns) != cols:
            raise ValueError(f"gather: shard {i} has columns {list(f.columns)}, expected {cols}")
    out = pd.concat(frames, ignore_index=True)
    keys = ["draw", *(c for c in per if c in out.columns)]
    dup = out.duplicated(keys)
    if dup.any():
        raise ValueError(
            f"gather: duplicated draw(s) {sorted(out.loc[dup, 'draw'].unique().tolist())[:10]}"
        )
    drawn = out["draw"].to_numpy()
    expected = np.arange(np.unique(drawn).size if n_draws is None else n_draws)
    missing = np.setdiff1d(expected, drawn)
    extra = np.setdiff1d(drawn, expected)
    if missing.size or extra.size:
        raise ValueError(
            f"gather: expected draws 0..{expected.size - 1}; missing {missing[:10].tolist()}"
            f"{' ...' if missing.size > 10 else ''}, unexpected {extra[:10].tolist()}"
        )
    return out.sort_values("draw", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# The draws themselves: every random number of an analysis comes from one of these
# --------------------------------------------------------------------------------------------------


def seeded_generator(seed: int) -> np.random.Generator:
    """The generator of one seeded stream, ``default_rng(seed)`` (psmatch2's random tie order and match
    order in PSM)."""
    return np.random.default_rng(seed)


def child_seed(seed: int, index: int) -> int:
    """The seed of the `index`-th independent sub-run of a seeded run (e.g. one matching pool),
    ``SeedSequence([seed, index]).generate_state(1)[0]``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def resample_clusters(n_clusters: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Indices of n_clusters clusters drawn with replacement (Stata `bsample, cluster()`)."""
    return rng.integers(0, n_clusters, size=n_clusters).astype(np.int64)


def bootstrap_clusters(n_clusters: int, seed: int, draw: int, *stream: int | str) -> NDArray[np.int64]:
    """The clusters of cluster-bootstrap draw `draw`: `resample_clusters` with `draw_rng(seed, draw,
    *stream)`."""
    return resample_clusters(n_clusters, draw_rng(seed, draw, *stream))


def permute_labels(
    labels: np.ndarray, rng: np.random.Generator, strata: np.ndarray | None = None
) -> np.ndarray:
    """A random permutation of the per-city labels (keeps the number of cities per label).

    With `strata` (one value per city), labels are permuted within each stratum separately (strata in
    sorted order, one `rng.permutation` each), so each label also keeps its count in every stratum.
    """
    if strata is None:
        return rng.permutation(labels)
    out = np.asarray(labels).copy()
    for stratum in np.unique(strata):
        idx = np.flatnonzero(strata == stratum)
        out[idx] = rng.permutation(out[idx])
    return out


def permutations_of(values: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """`permutations` random permutations of `values` (rows), from ``numpy.random.RandomState(seed)``:
    the legacy generator esda.Moran uses after ``numpy.random.seed(seed)``, so both give the same draws."""
    rs = np.random.RandomState(seed)
    return np.vstack([rs.permutation(values) for _ in range(permutations)])


def conditional_draws(n: int, max_card: int, permutations: int, seed: int) -> np.ndarray:
    """Random neighbour sets for conditional permutation (local Moran): (permutations x max_card) indices.

    Each row holds `max_card` distinct indices into the n-1 values of the *other* units, drawn
    without replacement with ``numpy.random.default_rng(seed)``; the same rows serve every unit.
    """
    if max_card > n - 1:
        raise ValueError(f"a unit cannot have {max_card} neighbours among {n - 1} others")
    rng = np.random.default_rng(seed)
    pool = np.tile(np.arange(n - 1), (permutations, 1))
    return rng.permuted(pool, axis=1)[:, :max_card]
