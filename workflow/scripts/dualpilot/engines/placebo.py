"""Vectorised placebo (randomisation) tests for the baseline two-way fixed-effects DID.

The baseline regression is

    y_it = beta * D_it + x_it' gamma + a_i + l_t + e_it,      D_it = 1[t >= start_i],

with standard errors clustered by city (CRV1 with fixest's small-sample convention; the reference is
pyfixest `feols("y ~ D + x1 + ... | unit + time", data, vcov={"CRV1": "cluster"})`). A placebo test
re-estimates it many times with `start_i` replaced by fake treatment dates. This module

1. draws the fake dates (`draw_assignments`; kinds below), reproducibly per draw;
2. estimates every draw of a shard together (`PlaceboEngine`), in memory-bounded chunks;
3. splits draws into shards and gathers them (`shard_range`, `run_shard`, `gather`), and
4. summarises the placebo distribution against the true estimate (`summarise`).

Kinds of placebo (following Chen, Qi and Yan 2025, "didplacebo", Stata; see docs/performance.md)
-------------------------------------------------------------------------------------------------
- ``space`` (didplacebo `pbounit`): the vector of per-unit start years, never-treated included, is
  permuted across units. The number of treated units and the multiset of dates (the cohort structure)
  are kept.
- ``time`` (didplacebo `pbotime`): deterministic; draw d moves every true date `options.shifts[d]`
  periods earlier. As in didplacebo, the truly treated observations (t >= true start) are dropped, so the
  fake treatment is estimated on pre-treatment data only.
- ``time_random``: like ``time``, but each treated unit gets its own shift drawn uniformly from the
  integers in `options.shift_range` (a randomised variant; not in didplacebo). Same dropped sample.
- ``mixed_unrestricted`` (didplacebo `pbomix(2)`, `xtrantreat, method(2)`): `n_units` units (default:
  the true number of treated units) are drawn at random without replacement; each receives a date drawn
  independently and uniformly from the sample periods within `time_scope` (default: earliest to latest
  true date). The cohort structure is not kept.
- ``mixed_restricted`` (didplacebo `pbomix(3)`, `xtrantreat, method(3)`): with true cohorts t_1..t_G of
  sizes N_1..N_G, a random set of sum(N_g) units is partitioned at random into G cohorts of sizes
  N_1..N_G, and G *distinct* dates drawn at random from the periods within `time_scope` are assigned to
  them. Cohort sizes are kept; needs at least G candidate periods.

Randomness
----------
Draw d of kind k uses only ``resampling.draw_rng(seed, d, KIND_ID[k])``, that is
``np.random.default_rng(np.random.SeedSequence([seed, KIND_ID[k], d]))``, so a shard computing
draws [a, b) reproduces exactly the draws of a single run over all draws.

Estimation (see `PlaceboEngine` for the algebra)
------------------------------------------------
Fixed effects and controls are partialled out once (FWL, `dualpilot.engines.fwl`); each draw then needs only
per-unit sufficient statistics read from precomputed suffix-sum tables, O(units x periods x controls)
operations per draw, vectorised over the draws of a chunk without BLAS calls.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse, stats

from dualpilot.core.errors import require_columns
from dualpilot.did.inference import crv1_factor, fixest_df_k
from dualpilot.engines import resampling
from dualpilot.engines.fwl import FloatArray, TwoWayPartialler, factorize, singleton_mask

log = logging.getLogger(__name__)

KIND_ID: dict[str, int] = {
    "space": 1,
    "time": 2,
    "time_random": 3,
    "mixed_unrestricted": 4,
    "mixed_restricted": 5,
}
"""Stable integer id of each placebo kind; part of every draw's seed (never renumber)."""

KINDS: tuple[str, ...] = tuple(KIND_ID)
TIME_KINDS: frozenset[str] = frozenset({"time", "time_random"})
"""Kinds estimated on the pre-treatment sample (truly treated observations dropped)."""

DEFAULT_MAX_BYTES = 512 * 2**20
"""Default memory budget of one chunk of draws (bytes)."""

MAX_CHUNK = 1024
"""Upper bound on draws per chunk: wider chunks gain little and waste work at shard edges."""

DEGENERATE_TOL = 1e-10
"""A draw whose partialled treatment keeps less than this share of its within-unit variation is
collinear with the fixed effects and controls (fixest's collin.tol) and raises an error."""

RESULT_COLUMNS = (
    "draw",
    "estimate",
    "std_error",
    "t_stat",
    "p_value",
    "n_treated_units",
    "n_treated_obs",
)


# --------------------------------------------------------------------------------------------------
# Options and assignments
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceboOptions:
    """Options of the placebo kinds (each kind reads only its own).

    Attributes
    ----------
    shifts:
        ``time``: the shifts k (periods earlier); draw d uses shifts[d]. Positive integers.
    shift_range:
        ``time_random``: inclusive integer range (lo, hi) of the per-unit shift, 1 <= lo <= hi.
    n_units:
        ``mixed_unrestricted``: number of fake treated units (None: the true number).
    time_scope:
        ``mixed_*``: inclusive range (t_min, t_max) of fake dates (None: earliest and latest true date,
        t_min at least the first sample period, as didplacebo's default for staggered designs).
    periods:
        The sample's periods; fake dates of the mixed kinds are drawn among the periods inside
        `time_scope`. None: every integer in the scope. `run_shard` fills it from the panel.
    """

    shifts: tuple[int, ...] = (1, 2, 3, 4, 5)
    shift_range: tuple[int, int] = (1, 5)
    n_units: int | None = None
    time_scope: tuple[int, int] | None = None
    periods: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.shifts or any(int(k) != k or k < 1 for k in self.shifts):
            raise ValueError(f"shifts must be positive integers, got {self.shifts!r}")
        lo, hi = self.shift_range
        if int(lo) != lo or int(hi) != hi or not 1 <= lo <= hi:
            raise ValueError(
                f"shift_range must be integers 1 <= lo <= hi, got {self.shift_range!r}"
            )
        if self.n_units is not None and self.n_units < 1:
            raise ValueError(f"n_units must be positive, got {self.n_units}")
        if self.time_scope is not None and self.time_scope[0] > self.time_scope[1]:
            raise ValueError(
                f"time_scope must be (t_min, t_max) with t_min <= t_max, got {self.time_scope}"
            )

    @classmethod
    def from_mapping(cls, options: PlaceboOptions | Mapping[str, Any] | None) -> PlaceboOptions:
        """Options from a config mapping (unknown keys raise); None gives the defaults."""
        if options is None:
            return cls()
        if isinstance(options, PlaceboOptions):
            return options
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown placebo option(s) {sorted(unknown)}; known: {sorted(known)}")
        kw: dict[str, Any] = {}
        for key, value in options.items():
            if value is None:
                kw[key] = None
            elif key in {"shifts", "shift_range", "time_scope", "periods"}:
                kw[key] = tuple(int(v) for v in value)
            else:
                kw[key] = int(value)
        return cls(**kw)


def _scope_periods(base: FloatArray, opts: PlaceboOptions) -> FloatArray:
    """Candidate fake dates of the mixed kinds (see `PlaceboOptions.time_scope`)."""
    finite = base[np.isfinite(base)]
    if opts.time_scope is not None:
        lo, hi = opts.time_scope
    else:
        if finite.size == 0:
            raise ValueError(
                "mixed placebo: no treated unit in the base assignment to set time_scope"
            )
        lo, hi = float(finite.min()), float(finite.max())
        if opts.periods is not None:
            lo = max(lo, float(min(opts.periods)))
    if opts.periods is not None:
        grid = np.asarray(sorted(opts.periods), dtype=np.float64)
    else:
        grid = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=np.float64)
    cand = grid[(grid >= lo) & (grid <= hi)]
    if cand.size == 0:
        raise ValueError(f"mixed placebo: no period inside time_scope ({lo}, {hi})")
    return cand


def _sampler(
    kind: str, b: FloatArray, opts: PlaceboOptions
) -> Callable[[np.random.Generator], FloatArray]:
    """The function turning one draw's generator into fake start years, for a random kind."""
    treated = np.isfinite(b)
    n_treated = int(treated.sum())
    if kind == "space":
        return lambda rng: rng.permutation(b)
    if kind == "time_random":
        lo, hi = opts.shift_range

        def shifted(rng: np.random.Generator) -> FloatArray:
            row = b.copy()
            row[treated] -= rng.integers(lo, hi + 1, size=n_treated)
            return row

        return shifted
    cand = _scope_periods(b, opts)
    if kind == "mixed_unrestricted":
        n_fake = n_treated if opts.n_units is None else opts.n_units
        if n_fake > b.size:
            raise ValueError(f"n_units={n_fake} exceeds the number of units ({b.size})")

        def unrestricted(rng: np.random.Generator) -> FloatArray:
            row = np.full(b.size, np.nan)
            row[rng.permutation(b.size)[:n_fake]] = cand[rng.integers(0, cand.size, size=n_fake)]
            return row

        return unrestricted
    if kind == "mixed_restricted":
        cohorts, sizes = np.unique(b[treated], return_counts=True)
        if cand.size < cohorts.size:
            raise ValueError(
                f"mixed_restricted needs at least as many candidate periods ({cand.size}) as true "
                f"cohorts ({cohorts.size}); widen time_scope"
            )
        cohort_of_slot = np.repeat(np.arange(cohorts.size), sizes)

        def restricted(rng: np.random.Generator) -> FloatArray:
            new_dates = rng.permutation(cand)[: cohorts.size]
            row = np.full(b.size, np.nan)
            row[rng.permutation(b.size)[:n_treated]] = new_dates[cohort_of_slot]
            return row

        return restricted
    raise ValueError(f"unknown random placebo kind {kind!r}")


def draw_assignments(
    kind: str,
    base: ArrayLike,
    draws: range | Sequence[int],
    seed: int,
    options: PlaceboOptions | Mapping[str, Any] | None = None,
) -> FloatArray:
    """Fake start years: an array (len(draws) x n_units), NaN = never treated.

    `base` holds the true start year of every unit (NaN or +inf = never treated), in the order the
    engine expects (`PlaceboEngine.units`). Row j is draw `draws[j]`, computed from
    `resampling.draw_rng(seed, draws[j], KIND_ID[kind])` only (``time`` uses no randomness: row j
    shifts by `options.shifts[draws[j]]`).
    """
    if kind not in KIND_ID:
        raise ValueError(f"unknown placebo kind {kind!r}; known: {list(KINDS)}")
    opts = PlaceboOptions.from_mapping(options)
    b = np.array(base, dtype=np.float64, ndmin=1)
    if b.ndim != 1:
        raise ValueError("base must be one start year per unit (1-D)")
    if np.any(b == -np.inf):
        raise ValueError("base start years must be finite, or NaN/+inf for never treated")
    b[b == np.inf] = np.nan
    if not np.isfinite(b).any():
        raise ValueError("base assignment has no treated unit: nothing to permute or shift")
    draws = list(draws)
    if kind == "time":
        bad = [d for d in draws if not 0 <= d < len(opts.shifts)]
        if bad:
            raise ValueError(
                f"time placebo: draw(s) {bad[:5]} have no shift (options.shifts has "
                f"{len(opts.shifts)})"
            )
        return np.array([b - opts.shifts[d] for d in draws]).reshape(len(draws), b.size)
    sample = _sampler(kind, b, opts)
    out = np.empty((len(draws), b.size))
    for j, d in enumerate(draws):
        out[j] = sample(resampling.draw_rng(seed, d, KIND_ID[kind]))
    return out


def shard_range(n_draws: int, n_shards: int, k: int) -> range:
    """Draws of shard k (0-based) when `n_draws` draws are split into `n_shards` contiguous shards.

    Shard sizes differ by at most one; the shards partition range(n_draws) in order.
    """
    if n_draws < 0 or n_shards < 1:
        raise ValueError(f"need n_draws >= 0 and n_shards >= 1, got {n_draws}, {n_shards}")
    if not 0 <= k < n_shards:
        raise ValueError(f"shard index {k} outside 0..{n_shards - 1}")
    return range(k * n_draws // n_shards, (k + 1) * n_draws // n_shards)


# --------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------


class PlaceboEngine:
    """Estimate y ~ D + controls | unit + time with CRV1 SEs for many treatment assignments at once.

    Parameters
    ----------
    panel:
        Long panel, one row per unit x period.
    outcome, controls:
        Column names. Rows with a missing outcome or control are dropped (as feols does).
    unit, time, cluster:
        Column names of the unit FE, the time FE and the cluster variable. The cluster must be
        constant within each unit (units nested in clusters: city or province, not year).
    drop_singletons:
        Drop observations whose unit or period occurs once, iteratively (pyfixest's default
        ``fixef_rm="singleton"``; R fixest keeps them: pass False to match it).
    max_bytes:
        Memory budget of one chunk of draws; the chunk width is chosen so that the per-draw working
        arrays fit (at least one draw per chunk, at most `MAX_CHUNK`).

    Method
    ------
    With P the residual maker of [unit FE, time FE, controls] (FWL; `TwoWayPartialler`),
    F = M_U [time dummies, X] (n x p) and y~ = P y, each draw needs z = P D = a - F theta, where
    a = M_U D and theta = (F'F)^{-1} F'D. Per unit i (observations O_i; S_i = {t in O_i: t >= start_i},
    c_i = |S_i|, n_i = |O_i|; sum_t f_it = sum_t y~_it = 0 within units):

        u_i = z_i'y~  = sum_{t in S_i} y~_it - R_i' theta,                R_i = sum_t f_it y~_it
        w_i = z_i'z_i = c_i (1 - c_i/n_i) - 2 sum_{t in S_i} f_it' theta + theta' Q_i theta,
                                                                          Q_i = sum_t f_it f_it'

    Then beta = sum_i u_i / sum_i w_i and, with s_g = sum_{i in g} (u_i - beta w_i) the cluster
    scores, V = factor * sum_g s_g^2 / (sum_i w_i)^2 -- exactly the (D, D) element of the CRV1
    sandwich of the full regression (FWL holds for the sandwich too). t = beta / se; p-value from
    t(G - 1), as fixest for CRV1.

    Sums over S_i are read from per-unit suffix-sum tables (built once). The time-dummy block of F
    is never materialised per draw: F'D's time part is a histogram of start periods, and the
    time-block terms of sum_{S_i} f'theta and theta'Q_i theta are per-draw period tables, with a
    correction for units that miss periods (`_quadratic`). Only the k control columns are gathered
    per unit. The per-draw work uses numpy element-wise operations and `einsum` (no BLAS), so it
    neither needs nor suffers from BLAS threads; parallelism comes from shards.
    """

    def __init__(
        self,
        panel: pd.DataFrame,
        outcome: str,
        controls: Sequence[str] = (),
        unit: str = "city_code",
        time: str = "year",
        cluster: str = "city_code",
        *,
        drop_singletons: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        controls = list(controls)
        require_columns(panel, [outcome, *controls, unit, time, cluster], "the panel")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.outcome, self.controls = outcome, controls
        self.unit, self.time, self.cluster = unit, time, cluster
        self.max_bytes = int(max_bytes)

        values = panel[[outcome, *controls]].apply(pd.to_numeric, errors="raise")
        complete = values.notna().all(axis=1).to_numpy()
        self.n_dropped_missing = int((~complete).sum())
        if self.n_dropped_missing:
            log.info(
                "placebo engine: %d row(s) with missing %s dropped",
                self.n_dropped_missing,
                [outcome, *controls],
            )
        rows = np.flatnonzero(complete)
        if panel[[unit, time, cluster]].iloc[rows].isna().any().any():
            raise ValueError(f"missing {unit}, {time} or {cluster} in rows with complete data")
        unit_codes, _ = factorize(panel[unit].iloc[rows], unit)
        time_codes, _ = factorize(panel[time].iloc[rows], time)
        keep = (
            singleton_mask(unit_codes, time_codes) if drop_singletons else np.ones(rows.size, bool)
        )
        self.n_dropped_singletons = int((~keep).sum())
        if self.n_dropped_singletons:
            log.info(
                "placebo engine: %d singleton observation(s) dropped", self.n_dropped_singletons
            )
        rows = rows[keep]
        self.sample_index = panel.index[rows]
        """Index labels of the panel rows in the estimation sample."""

        sample = panel[list(dict.fromkeys([unit, time, cluster]))].iloc[rows]
        ucodes, self.units = factorize(sample[unit], unit)
        tcodes, periods = factorize(sample[time], time)
        self.periods = np.asarray(periods, dtype=np.float64)
        if np.any(np.diff(self.periods) <= 0):
            raise ValueError(f"{time} must be numeric with distinct values")
        self._consecutive = bool(
            np.all(self.periods == np.round(self.periods)) and np.all(np.diff(self.periods) == 1)
        )
        if np.any(np.bincount(ucodes * self.periods.size + tcodes) > 1):
            raise ValueError(f"duplicate ({unit}, {time}) rows in the panel")
        ccodes, cl_labels = factorize(sample[cluster], cluster)
        n_units, n_periods, n_obs = len(self.units), self.periods.size, rows.size
        self.n_obs, self.n_units, self.n_periods = n_obs, n_units, n_periods
        self.n_clusters = len(cl_labels)

        # Units must nest in clusters: scores are accumulated per unit, then per cluster.
        unit_cluster = np.full(n_units, -1)
        unit_cluster[ucodes] = ccodes
        if np.any(unit_cluster[ucodes] != ccodes):
            raise ValueError(
                f"cluster {cluster!r} varies within {unit!r}: the engine needs units nested in clusters"
            )
        self._unit_cluster = unit_cluster
        self._cluster_is_unit = self.n_clusters == n_units
        if not self._cluster_is_unit:
            self._cluster_matrix = sparse.csr_matrix(
                (np.ones(n_units), (unit_cluster, np.arange(n_units))),
                shape=(self.n_clusters, n_units),
            )
        time_nested = bool(np.all(pd.Series(ccodes).groupby(tcodes).nunique().to_numpy() == 1))
        self.df_k = fixest_df_k(1 + len(controls), [n_units, n_periods], [True, time_nested])
        self.ssc = crv1_factor(n_obs, self.df_k, self.n_clusters)
        self.df_t = self.n_clusters - 1

        x = values.to_numpy(dtype=np.float64)[rows]
        fwl = TwoWayPartialler(ucodes, tcodes, x[:, 1:], controls)
        f = fwl.F
        p = f.shape[1]
        self.n_partialled = p
        self.y_tilde = fwl.partial(x[:, 0])
        """P y: the outcome residualised on the fixed effects and controls (estimation-sample order)."""

        # Unit x period grids (zeros where a unit is not observed) and their suffix sums over periods:
        # entry [i, k] sums periods k..T-1 of unit i, entry [i, T] is 0 (never treated).
        cells = ucodes * n_periods + tcodes

        def grid(v: FloatArray) -> FloatArray:
            g = np.zeros((n_units * n_periods, *v.shape[1:]))
            g[cells] = v
            return g.reshape(n_units, n_periods, *v.shape[1:])

        def suffix(g: FloatArray) -> FloatArray:
            s = np.zeros((g.shape[0], g.shape[1] + 1, *g.shape[2:]))
            s[:, :-1] = np.flip(np.cumsum(np.flip(g, axis=1), axis=1), axis=1)
            return s

        self._obs = grid(np.ones(n_obs))  # N x T indicator of observed cells
        self._n_i = self._obs.sum(axis=1)
        grid_y = grid(self.y_tilde)
        # Flat suffix tables, entry i * (T+1) + k: counts, y~ and each column of M_U X.
        self._sc = suffix(self._obs).ravel()
        self._sy = suffix(grid_y).ravel()
        self._sx = np.ascontiguousarray(
            suffix(grid(fwl.within_controls)).reshape(n_units * (n_periods + 1), -1).T
        )  # k x N(T+1)
        self._unit_offset = (n_periods + 1) * np.arange(n_units)
        self._r = np.column_stack(  # R_i, N x p, one column at a time (no n x p temporary)
            [np.bincount(ucodes, f[:, j] * self.y_tilde, minlength=n_units) for j in range(p)]
        )
        # For theta' Q_i theta (see `_quadratic`): per unit, M_U X on the period grid (T*k values,
        # period-major) followed by sum_t xw_it xw_it' packed (upper triangle, off-diagonal x2).
        grid_xw = grid(fwl.within_controls)  # N x T x k
        self._xu, self._xv = np.triu_indices(len(controls))
        xx = np.einsum("itj,itl->ijl", grid_xw, grid_xw)
        xx_packed = xx[:, self._xu, self._xv] * np.where(self._xu == self._xv, 1.0, 2.0)
        self._x_design = np.hstack([grid_xw.reshape(n_units, -1), xx_packed])
        self._incomplete = np.flatnonzero(self._n_i < n_periods)
        self._missing = self._obs[self._incomplete] == 0  # |I| x T
        self._missing_f = self._missing.astype(np.float64)
        self._gram_inv = fwl.solve(np.eye(p))  # (F'F)^{-1}
        # Per draw only these are needed: F itself (n x p, the largest table) is not kept.
        self._scale, self._n_time_columns = fwl.scale, fwl.n_time_columns
        del fwl, f

        n_inc = self._incomplete.size
        self.bytes_per_draw = (
            8
            * (
                n_units * (len(controls) + 16)
                + 2 * self._x_design.shape[1]
                + 4 * p
                + 2 * self.n_clusters
            )
            + 8 * 4 * n_periods
            + 9 * n_inc * n_periods
        )
        """Estimated working memory of one draw in a chunk (bytes)."""
        self.chunk_size = int(max(1, min(MAX_CHUNK, self.max_bytes // self.bytes_per_draw)))
        """Draws estimated together; bounded by `max_bytes` and `MAX_CHUNK`."""

    # ----------------------------------------------------------------------------------------------

    def start_index(self, start_years: ArrayLike) -> NDArray[np.intp]:
        """Position of the first period >= start (n_periods for never: NaN or +inf)."""
        s = np.asarray(start_years, dtype=np.float64)
        last = self.periods.size
        if self._consecutive:
            k = np.ceil(s - self.periods[0])
            np.clip(k, 0, last, out=k)
            k[np.isnan(k)] = last
            return k.astype(np.intp)
        k = np.searchsorted(self.periods, s, side="left")
        k[np.isnan(s)] = last
        return k.astype(np.intp)

    def _estimate_chunk(self, starts: FloatArray) -> dict[str, NDArray[Any]]:
        """Estimates for an (m x n_units) block of start years (see the class docstring).

        Layout: draws x units. phi = theta / scale are the coefficients on the unscaled partialled
        columns M_U [time dummies, X]; phibar_t (period t) is the time-dummy part (phibar_0 = 0).
        """
        n_periods, q, inc = self.n_periods, self._n_time_columns, self._incomplete
        kidx = self.start_index(starts)  # m x N
        m = kidx.shape[0]
        flat = kidx + self._unit_offset
        cnt = np.take(self._sc, flat)
        share = cnt / self._n_i
        within_var = cnt - cnt * share  # sum_t a_it^2, a = M_U D
        # (M_U Z)'D, time block: units observed in t with start <= t, minus sum_i obs_it c_i / n_i.
        offsets = (n_periods + 1) * np.arange(m)[:, None]
        hist = np.bincount((kidx + offsets).ravel(), minlength=m * (n_periods + 1))
        started = np.cumsum(hist.reshape(m, n_periods + 1), axis=1)[:, :n_periods]
        if self._incomplete.size:
            # unit i in I, period t unobserved, t >= start_i
            late_gap = (np.arange(n_periods)[None, None, :] >= kidx[:, inc, None]) & self._missing[
                None
            ]
            started = started - late_gap.sum(axis=1)
        share_obs = share.sum(axis=1)[:, None]  # sum_i obs_it c_i / n_i: all units observed ...
        if self._incomplete.size:  # ... minus those not observed in t
            share_obs = share_obs - np.einsum("mi,it->mt", share[:, inc], self._missing_f)
        zd = np.empty((m, self.n_partialled))
        zd[:, :q] = (started - share_obs)[:, 1:]
        # (M_U Z)'D, control block: sum over units of the suffix sums of M_U X.
        sx = [np.take(col, flat) for col in self._sx]  # k arrays m x N
        for j, g in enumerate(sx):
            zd[:, q + j] = g.sum(axis=1)
        theta = np.einsum("pq,mq->pm", self._gram_inv, zd / self._scale)  # p x m
        phi = theta / self._scale[:, None]
        # sum_{t in S_i} f_it' theta = sum_{t in S_i} phibar_t - c_i/n_i sum_{t in O_i} phibar_t
        #                              + SX_i(start_i)' phi_X
        phibar = np.zeros((m, n_periods))
        phibar[:, 1:] = phi[:q].T
        tail = np.zeros((m, n_periods + 1))
        tail[:, :-1] = np.flip(np.cumsum(np.flip(phibar, axis=1), axis=1), axis=1)
        obs_phibar = np.repeat(phibar.sum(axis=1)[:, None], self.n_units, axis=1)
        if self._incomplete.size:
            obs_phibar[:, inc] -= np.einsum("mt,it->mi", phibar, self._missing_f)
        sf_theta = np.take_along_axis(tail, kidx, axis=1) - share * obs_phibar
        if self._incomplete.size:
            sf_theta[:, inc] -= np.einsum("mit,mt->mi", late_gap, phibar)
        for j, g in enumerate(sx):
            sf_theta += g * phi[q + j][:, None]
        u = np.take(self._sy, flat) - np.einsum("ip,pm->mi", self._r, theta)  # z_i'y~
        w = within_var - 2.0 * sf_theta + self._quadratic(phibar, phi[q:])  # z_i'z_i
        if self._cluster_is_unit:
            uc, wc = u, w
        else:
            uc = (self._cluster_matrix @ u.T).T
            wc = (self._cluster_matrix @ w.T).T
        num, den = u.sum(axis=1), w.sum(axis=1)
        total_var = within_var.sum(axis=1)
        bad = ~(den > DEGENERATE_TOL * total_var) | (total_var <= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(bad, np.nan, num / den)
            scores = uc - beta[:, None] * wc
            se = np.sqrt(self.ssc * (scores * scores).sum(axis=1)) / np.abs(den)
            t = beta / se
        return {
            "estimate": beta,
            "std_error": se,
            "t_stat": t,
            "p_value": 2.0 * stats.t.sf(np.abs(t), self.df_t),
            "n_treated_units": (cnt > 0).sum(axis=1),
            "n_treated_obs": cnt.sum(axis=1).astype(np.int64),
            "degenerate": bad,
        }

    def _quadratic(self, phibar: FloatArray, phi_x: FloatArray) -> FloatArray:
        """theta' Q_i theta = sum_{t in O_i} g_it^2 for every draw and unit (m x N), where
        g_it = (phibar_t - mean_{O_i} phibar) + xw_it' phi_x (xw = M_U X; sum_t xw_it = 0):

            sum_t g_it^2 = sum_{t in O_i} (phibar_t - pm_i)^2 + 2 sum_t phibar_t xw_it' phi_x
                           + phi_x' (sum_t xw_it xw_it') phi_x.

        The first term is centred on the draw's mean c over all periods: with M1, M2 the sums of
        (phibar_t - c) and (phibar_t - c)^2 over unit i's unobserved periods, it equals
        sum_t (phibar_t - c)^2 - M2_i - M1_i^2 / n_i (exact, no cancellation for complete units).
        """
        dev = phibar - phibar.mean(axis=1, keepdims=True)
        out = np.repeat((dev * dev).sum(axis=1)[:, None], self.n_units, axis=1)
        inc = self._incomplete
        if inc.size:
            m1 = np.einsum("mt,it->mi", dev, self._missing_f)
            m2 = np.einsum("mt,it->mi", dev * dev, self._missing_f)
            out[:, inc] -= m2 + m1 * m1 / self._n_i[inc]
        if phi_x.shape[0]:
            # Both control terms in one contraction against the unit's design row.
            m, n_cross = phibar.shape[0], self.n_periods * phi_x.shape[0]
            coef = np.empty((self._x_design.shape[1], m))
            coef[:n_cross] = (2.0 * phibar.T[:, None, :] * phi_x[None, :, :]).reshape(n_cross, m)
            coef[n_cross:] = phi_x[self._xu] * phi_x[self._xv]
            out += np.einsum("ia,am->mi", self._x_design, coef)
        return out

    def estimate(self, start_years: ArrayLike, draws: Iterable[int] | None = None) -> pd.DataFrame:
        """Placebo estimates for each row of `start_years` (n_draws x n_units, columns in
        `self.units` order; a 1-D array is one draw). D_it = 1[period_t >= start_i]; NaN or +inf
        means never treated, -inf always.

        Returns a frame with columns draw, estimate, std_error, t_stat, p_value, n_treated_units,
        n_treated_obs (draw labels default to 0..n_draws-1). Raises `ValueError` naming the draws
        whose treatment has no variation left after partialling out the fixed effects and controls.
        """
        s = np.asarray(start_years, dtype=np.float64)
        if s.ndim == 1:
            s = s[None, :]
        if s.ndim != 2 or s.shape[1] != self.n_units:
            raise ValueError(
                f"start_years must be (n_draws x {self.n_units}) in the engine's unit order, "
                f"got shape {s.shape}"
            )
        labels = np.arange(s.shape[0]) if draws is None else np.asarray(list(draws), dtype=np.int64)
        if labels.size != s.shape[0]:
            raise ValueError(f"{labels.size} draw labels for {s.shape[0]} rows of start_years")
        parts = [
            self._estimate_chunk(s[a : a + self.chunk_size])
            for a in range(0, s.shape[0], self.chunk_size)
        ]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="float64") for c in RESULT_COLUMNS}).astype(
                {"draw": "int64", "n_treated_units": "int64", "n_treated_obs": "int64"}
            )
        res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        bad = res.pop("degenerate")
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} draw(s) have a treatment collinear with the fixed effects and "
                f"controls (no identifying variation), e.g. draw(s) {labels[bad][:10].tolist()}"
            )
        out = pd.DataFrame({"draw": labels, **res})
        return out[list(RESULT_COLUMNS)]

    def unit_values(self, panel: pd.DataFrame, column: str) -> FloatArray:
        """Per-unit value of `column` (constant within unit) in `self.units` order, from the
        estimation-sample rows of `panel` (the frame the engine was built from)."""
        sample = panel.loc[self.sample_index, [self.unit, column]]
        per_unit = sample.groupby(self.unit, sort=True)[column]
        varying = per_unit.nunique(dropna=False)
        if (varying > 1).any():
            raise ValueError(
                f"{column!r} varies within {self.unit!r} for e.g. "
                f"{varying[varying > 1].index[:5].tolist()}"
            )
        vals = per_unit.first().reindex(self.units)
        return pd.to_numeric(vals, errors="raise").to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------------


def run_shard(
    panel: pd.DataFrame,
    kind: str,
    shard: int,
    n_shards: int,
    n_draws: int,
    seed: int,
    options: PlaceboOptions | Mapping[str, Any] | None,
    outcome: str,
    controls: Sequence[str],
    *,
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
    treatment_year: str = "dual_year",
    drop_singletons: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> pd.DataFrame:
    """Placebo estimates of the draws of one shard (see `shard_range`).

    ``time``/``time_random`` drop the truly treated observations (period >= `treatment_year`) first.
    Draws are processed in blocks aligned to absolute draw indices (multiples of the engine's chunk
    size), so each draw is computed with exactly the same arithmetic whatever the sharding: the
    gathered result is bitwise identical for any `n_shards` (same machine and numpy build).

    Returns `PlaceboEngine.estimate`'s columns plus ``kind`` (and, for kind ``time``, ``shift`` and
    the 95 % interval ``conf_low``, ``conf_high``).
    """
    if kind not in KIND_ID:
        raise ValueError(f"unknown placebo kind {kind!r}; known: {list(KINDS)}")
    opts = PlaceboOptions.from_mapping(options)
    if kind == "time" and n_draws != len(opts.shifts):
        raise ValueError(
            f"time placebo: n_draws ({n_draws}) must equal the number of shifts {opts.shifts}"
        )
    data = panel
    if kind in TIME_KINDS:
        start = pd.to_numeric(panel[treatment_year], errors="raise")
        data = panel.loc[~(panel[time] >= start)]
    engine = PlaceboEngine(
        data,
        outcome,
        controls,
        unit,
        time,
        cluster,
        drop_singletons=drop_singletons,
        max_bytes=max_bytes,
    )
    if opts.periods is None:
        opts = dataclasses.replace(opts, periods=tuple(int(t) for t in engine.periods))
    base = engine.unit_values(data, treatment_year)
    wanted = shard_range(n_draws, n_shards, shard)
    size = engine.chunk_size
    frames = []
    for b in range(wanted.start // size, -(-wanted.stop // size)):
        block = range(b * size, min((b + 1) * size, n_draws))
        res = engine.estimate(draw_assignments(kind, base, block, seed, opts), draws=block)
        frames.append(res[res["draw"].between(wanted.start, wanted.stop - 1)])
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else engine.estimate(np.empty((0, engine.n_units)))
    )
    out.insert(0, "kind", kind)
    if kind == "time":
        # one estimate per shift, read with its own 95 % interval (t with the engine's G-1 df)
        out["shift"] = np.asarray(opts.shifts, dtype=np.int64)[out["draw"].to_numpy()]
        q = stats.t.ppf(0.975, engine.df_t)
        out["conf_low"] = out["estimate"] - q * out["std_error"]
        out["conf_high"] = out["estimate"] + q * out["std_error"]
    return out.reset_index(drop=True)


def gather(frames: Sequence[pd.DataFrame], n_draws: int | None = None) -> pd.DataFrame:
    """Concatenate shard results of one kind, sorted by draw (`resampling.gather_draws`: draws exactly
    0..n_draws-1; `n_draws=None` expects as many draws as there are rows).

    Raises `ValueError` on no frames, differing columns, several kinds, duplicate or missing draws.
    """
    kinds = sorted({k for f in frames if "kind" in f for k in f["kind"].unique()})
    if len(kinds) > 1:
        raise ValueError(f"gather: mixed kinds {kinds}")
    return resampling.gather_draws(frames, n_draws)


def summarise(draws: pd.DataFrame, true_estimate: float) -> dict[str, float]:
    """Placebo distribution against the true estimate (didplacebo's three p-values).

    p-values follow `resampling.resampled_pvalue`, (1 + #extreme) / (1 + B): p_two_sided counts
    |placebo| >= |true|, p_left placebo <= true, p_right placebo >= true. Also the placebo mean, sd
    (ddof=1) and the share of draws significant at 5%. The deterministic time placebo (draws with a
    ``shift`` column: one estimate per shift, not a random distribution) gets no p-values (NaN): it is
    read shift by shift, each estimate with its own interval (`plots.placebo_shift_figure`).
    """
    b = draws["estimate"].to_numpy(dtype=np.float64)
    if b.size == 0 or not np.all(np.isfinite(b)):
        raise ValueError("summarise: need at least one draw and finite estimates")
    if not np.isfinite(true_estimate):
        raise ValueError(f"summarise: true_estimate must be finite, got {true_estimate}")
    random = "shift" not in draws.columns

    def p(side: str) -> float:
        return resampling.permutation_pvalue(b, true_estimate, side=side) if random else math.nan

    out = {
        "n_draws": float(b.size),
        "true_estimate": float(true_estimate),
        "mean": float(b.mean()),
        "sd": float(b.std(ddof=1)) if b.size > 1 else float("nan"),
        "p_two_sided": p("two-sided"),
        "p_left": p("less"),
        "p_right": p("greater"),
    }
    if "p_value" in draws:
        out["share_p_below_0.05"] = float(np.mean(draws["p_value"].to_numpy() < 0.05))
    return out


def true_estimate(baseline: pd.DataFrame, model: str, term: str = "dual_post") -> float:
    """The estimate the placebo draws are compared with: `term` of `model` in a tidy baseline file."""
    row = baseline[(baseline["model"] == model) & (baseline["term"] == term)]
    if len(row) != 1:
        raise ValueError(f"the baseline estimates have no single row for model {model!r}, term {term!r}")
    return float(row["estimate"].iloc[0])
