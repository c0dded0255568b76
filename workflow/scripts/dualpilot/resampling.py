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

import numpy as np
from numpy.typing import ArrayLike


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
