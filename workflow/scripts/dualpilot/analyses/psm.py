"""PSM-DID: propensity-score matching, then the baseline DiD re-estimated on the matched sample.

Three matching designs (docs/psm-did.md explains why the first is the headline):

- ``"baseline"`` (the headline): the units are cities, described by their pre-period means of the
  covariates (years <= `baseline_end`), treated = ever dual within the panel; matched once, and the
  matched cities are kept in every year.
- ``"pooled"``: the units are city-years, matched in one pool over all years (what most applied papers
  do). Treated city-years after the dual start are matched on covariates measured after treatment
  (which the policy may have moved). Matches may come from other years, a city's matched controls
  change from year to year and, with ``treat="current"`` (treated = the city-year's ``dual_post``), a
  treated city-year can be matched to a pre-treatment year of the same city (`n_self_matches`).
- ``"by_year"``: the units are city-years, matched within each year (one logit per year); after the
  dual start, too, on covariates measured after treatment.

Propensity score: a logit of the treatment indicator on a constant and the covariates, fitted by
maximum likelihood with statsmodels (Newton). psmatch2 fits a probit unless ``logit`` is given; the
applied literature passes ``logit``, and so do we. Units with a missing covariate are left out (as
psmatch2's sample marking does) and counted in the summary. Perfect separation, a rank-deficient
design or a failed convergence raise `PsmError`.

The matching scale (`caliper_scale`): ``"logit_sd"`` (default, Austin 2011) matches nearest neighbours
on the logit of the score, log(p / (1 - p)), with the caliper in standard deviations of that logit
(sample SD, ddof = 1, over every scored unit of the pool): caliper 0.2 keeps a neighbour only if
|logit p_i - logit p_j| < 0.2 SD. ``"pscore"`` matches on the probability itself with the caliper in
probability units, as psmatch2's ``caliper()``. Kernel matching always uses the probability scale (its
bandwidth is psmatch2's). Otherwise the rules follow psmatch2 where it has one:

- Common support (``common=True``, psmatch2 ``common``): treated units whose score lies below the
  smallest or above the largest control score are off support and are not matched.
- Nearest neighbour 1:k (psmatch2 ``neighbor(k)``): each treated unit takes its k nearest controls.
  Caliper (psmatch2 ``caliper()``): only neighbours at a distance below the caliper (strict, as in
  psmatch2's code; distance and caliper on the matching scale) are kept; a treated unit with none is off support. Each of the n_i controls kept
  for treated unit i gets 1/n_i, and a control's weight is the sum over the treated units using it
  (psmatch2 ``_weight``: for k = 1 without ties, the number of times it is used). Treated units on
  support get weight 1.
- Ties (``ties``): distances within `TIE_TOL` of the k-th smallest distance are tied. ``"all"``
  keeps every tied control (psmatch2 ``ties``; then n_i may exceed k); ``"first"`` breaks ties by the
  order of the units sorted by (city_code, year); ``"random"`` by a random order of the controls drawn
  from ``numpy.random.default_rng(seed)``. psmatch2 without ``ties`` breaks ties by the sort order of
  the data, which is why users randomise the order first; ``"random"`` is that practice made
  reproducible.
- Without replacement (``replacement=False``, psmatch2 ``noreplacement``): a greedy pass over the
  treated units in the order ``order`` ("descending" score first, "ascending", or "random" with
  `seed`); each takes its k nearest still-available controls (with ``ties="all"``, every tied one is
  used up). psmatch2 allows this for 1:1 only and
  uses a forward sweep over the sorted data, which can pick a different control than the nearest
  available one; see docs/psm-did.md.
- Kernel (``method="kernel"``, psmatch2 ``kernel`` with its default Epanechnikov kernel and bandwidth
  0.06): treated unit i gives control j the weight K((p_j - p_i)/h) / sum_l K((p_l - p_i)/h) with
  K(u) = 1 - u^2 for |u| <= 1 (psmatch2's kernel; the usual 3/4 cancels in the ratio). A control's
  weight is the sum of these over the treated units; a treated unit with no control within h is
  off support. `k`, `caliper`, `ties` and `order` are not used by kernel matching.

Balance (`balance_table`) follows psmatch2's ``pstest``: means before matching over all scored units;
after matching, treated units on support (weight 1) against controls weighted by their matching
weight. Standardised bias = 100 (mean_T - mean_C) / sqrt((s2_T + s2_C) / 2) with the variances of the
**unmatched** samples in the denominator both before and after matching (Rosenbaum & Rubin 1985, as
pstest computes it); % reduction = 100 (1 - |bias_after| / |bias_before|). t tests: before, OLS of the
covariate on the treatment dummy (pooled-variance two-sample t, n - 2 df); after, the same regression
with the matching weights as Stata importance weights (``regress x treated [iw=w]``: residual variance
with sum(w) - 2 degrees of freedom, t with sum(w) - 2 df).

DiD on the matched sample: ``outcome ~ treatment + controls | city_code + year``, CRV1 by city, through
`dualpilot.engines.estimation.fit` (fixest small-sample conventions; see that module). ``did_weights="weights"``
(default) is weighted least squares with the matching weights as analytic weights (the point estimate
of ``reghdfe ... [aweight=_weight]`` or ``[pweight=_weight]``; standard errors as the estimation module
computes them for analytic weights); ``did_weights="unweighted"`` keeps every matched city-year with
weight 1 (``reg ... if _weight != .``, the common practice in applied papers).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.engines import estimation as est
from dualpilot.engines import resampling

log = logging.getLogger("dualpilot")

Design = Literal["pooled", "by_year", "baseline"]
Method = Literal["nearest", "kernel"]
Ties = Literal["all", "first", "random"]
Order = Literal["descending", "ascending", "random"]
Treat = Literal["ever", "current"]
DidWeights = Literal["weights", "unweighted"]

CaliperScale = Literal["logit_sd", "pscore"]

DESIGNS: tuple[str, ...] = ("baseline", "pooled", "by_year")
"""The matching designs, the headline (baseline) first: the order `run_all_designs` reports them."""
CALIPER_SCALES: tuple[str, ...] = ("logit_sd", "pscore")
UNIT = "city_code"
TIME = "year"
TIE_TOL = 1e-12
"""Distances (on the matching scale) closer than this are tied."""
WEIGHT_COLUMN = "_psm_weight"
"""Column of the matching weights in the frame given to the DiD regression."""
FULL_MODEL = "full_sample"
"""Model name of the unmatched DiD that `run_all_designs` adds for comparison."""

_DEFAULT_K = 1
_DEFAULT_KS = (1, 4)
_DEFAULT_CALIPER = 0.2
_DEFAULT_SCALE: CaliperScale = "logit_sd"
_DEFAULT_BANDWIDTH = 0.06


class PsmError(SpecificationError):
    """A matching that cannot be carried out as specified (the message says why and what to change)."""


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


def _choice(value: object, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise PsmError(f"{what} must be one of {list(allowed)}, not {value!r}")


@dataclass(frozen=True)
class MatchOptions:
    """How to match on the propensity score (see the module docstring for each rule).

    Nearest-neighbour matching reads `k`, `caliper` (None: no caliper) on `caliper_scale`,
    `replacement`, `ties` and `order`; kernel matching reads `bandwidth`. `seed` is required, and only used, when something is
    random: ``ties="random"``, or ``order="random"`` without replacement.
    """

    method: Method = "nearest"
    k: int = _DEFAULT_K
    caliper: float | None = _DEFAULT_CALIPER
    caliper_scale: CaliperScale = _DEFAULT_SCALE
    replacement: bool = True
    ties: Ties = "all"
    order: Order = "descending"
    bandwidth: float = _DEFAULT_BANDWIDTH
    common: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        _choice(self.method, ("nearest", "kernel"), "method")
        _choice(self.caliper_scale, CALIPER_SCALES, "caliper_scale")
        _choice(self.ties, ("all", "first", "random"), "ties")
        _choice(self.order, ("descending", "ascending", "random"), "order")
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise PsmError(f"k must be a positive integer, not {self.k!r}")
        if self.caliper is not None and not (math.isfinite(self.caliper) and self.caliper > 0):
            raise PsmError(
                f"caliper must be positive (or None for no caliper), not {self.caliper!r}"
            )
        if not (math.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise PsmError(f"bandwidth must be positive, not {self.bandwidth!r}")
        if self.method == "kernel" and not self.replacement:
            raise PsmError(
                "kernel matching uses every control within the bandwidth for every treated unit; it "
                "has no without-replacement version (set replacement=True or method='nearest')"
            )
        if self.needs_seed and self.seed is None:
            raise PsmError(
                "random tie-breaking (ties='random') or a random matching order (order='random' "
                "without replacement) needs a seed"
            )

    @property
    def needs_seed(self) -> bool:
        """True if the matching draws random numbers."""
        if self.method != "nearest":
            return False
        return self.ties == "random" or (self.order == "random" and not self.replacement)

    def describe(self) -> str:
        """A short description, e.g. 'nearest 1:1 on logit(p), caliper 0.2 SD of logit(p), with
        replacement, ties all'."""
        support = ", common support" if self.common else ""
        if self.method == "kernel":
            return f"kernel (Epanechnikov, bandwidth {self.bandwidth:g}){support}"
        on_logit = self.caliper_scale == "logit_sd"
        if self.caliper is None:
            caliper = "no caliper"
        elif on_logit:
            caliper = f"caliper {self.caliper:g} SD of logit(p)"
        else:
            caliper = f"caliper {self.caliper:g} on p"
        repl = "with replacement" if self.replacement else f"without replacement ({self.order})"
        scale = "logit(p)" if on_logit else "p"
        return f"nearest 1:{self.k} on {scale}, {caliper}, {repl}, ties {self.ties}{support}"


# --------------------------------------------------------------------------------------------------
# Propensity score
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logit:
    """A fitted propensity-score logit."""

    params: pd.Series
    """Coefficients, 'const' first, then the covariates."""
    bse: pd.Series
    """Standard errors (inverse of the observed information, as Stata's `logit`)."""
    pscore: np.ndarray
    """Predicted probabilities Pr(treated = 1 | x), one per row of the input."""
    n_obs: int
    pseudo_r2: float
    """McFadden's pseudo R^2 (Stata's e(r2_p))."""


def logit_pscore(covariates: pd.DataFrame, treated: Sequence[bool] | np.ndarray) -> Logit:
    """Fit Pr(treated = 1 | x) = Lambda(a + x'b) by maximum likelihood (statsmodels `Logit`, Newton).

    Args:
        covariates: one column per covariate, no missing values.
        treated: 0/1 (or boolean) treatment indicator, one per row.

    Raises:
        PsmError: missing or infinite values, only one outcome class, covariates collinear with
            each other or the constant, perfect separation, or no convergence.
    """
    x = covariates.to_numpy(dtype="float64")
    y = np.asarray(treated, dtype="float64")
    if y.shape != (len(x),):
        raise PsmError(f"{len(x)} rows of covariates but {y.size} treatment values")
    if not np.isfinite(x).all():
        raise PsmError("the propensity-score covariates have missing or infinite values")
    if not np.isin(y, (0.0, 1.0)).all():
        raise PsmError("the treatment indicator must be 0/1")
    n_treated = int(y.sum())
    if n_treated == 0 or n_treated == len(y):
        raise PsmError(
            f"the logit needs treated and control units; got {n_treated} of {len(y)} treated"
        )
    design = np.column_stack([np.ones(len(x)), x])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise PsmError(
            f"the covariates {list(covariates.columns)} are collinear (with each other or the "
            f"constant) in this sample; drop one"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sm.Logit(y, design).fit(method="newton", maxiter=200, tol=1e-12, disp=False)
    separation = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    converged = bool(result.mle_retvals.get("converged", False))
    if separation or not converged:
        reason = (
            "perfect separation (a covariate predicts treatment exactly)"
            if separation
            else ("the maximum-likelihood iterations did not converge")
        )
        raise PsmError(f"propensity-score logit failed: {reason}; simplify the covariates")
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    names = ["const", *map(str, covariates.columns)]
    return Logit(
        params=pd.Series(np.asarray(result.params), index=names, name="estimate"),
        bse=pd.Series(np.asarray(result.bse), index=names, name="std_error"),
        pscore=np.asarray(result.predict(design), dtype="float64"),
        n_obs=len(y),
        pseudo_r2=float(result.prsquared),
    )


# --------------------------------------------------------------------------------------------------
# Matching on a score
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matching:
    """The result of matching treated to control units on a score (arrays indexed like the input).

    `pairs` has one row per (treated, control) link: positions `treated` and `control` in the input,
    `distance` = |p_treated - p_control| and `weight` (the share of the treated unit going to that
    control: 1/n_i, or the normalised kernel weight).
    """

    weight: np.ndarray
    """psmatch2 `_weight`: 1 for matched treated units, sum of link weights for controls, else 0."""
    support: np.ndarray
    """psmatch2 `_support`: False for treated units off common support or left without a match."""
    n_matches: np.ndarray
    """Treated: number of controls linked (psmatch2 `_nn`); controls: number of treated using them."""
    off_common: np.ndarray
    """Treated units outside the common support [min control score, max control score]."""
    pairs: pd.DataFrame = field(repr=False)

    @property
    def unmatched(self) -> np.ndarray:
        """Treated units on common support left without a match (caliper, bandwidth, none left)."""
        return ~self.support & ~self.off_common


def _check_scores(
    pscore: Sequence[float] | np.ndarray, treated: Sequence[bool] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ps = np.asarray(pscore, dtype="float64")
    tr_raw = np.asarray(treated)
    if ps.ndim != 1 or tr_raw.shape != ps.shape:
        raise PsmError("pscore and treated must be 1-d arrays of the same length")
    if not np.isfinite(ps).all():
        raise PsmError("the scores have missing or infinite values")
    if not np.isin(tr_raw.astype("float64"), (0.0, 1.0)).all():
        raise PsmError("the treatment indicator must be 0/1")
    tr = tr_raw.astype(bool)
    if not tr.any() or tr.all():
        raise PsmError(
            f"matching needs treated and control units; got {int(tr.sum())} of {tr.size}"
        )
    return ps, tr


def common_support(
    pscore: Sequence[float] | np.ndarray, treated: Sequence[bool] | np.ndarray
) -> np.ndarray:
    """psmatch2 ``common``: True for controls and for treated units with min p_C <= p <= max p_C."""
    ps, tr = _check_scores(pscore, treated)
    lo, hi = ps[~tr].min(), ps[~tr].max()
    return ~tr | ((ps >= lo) & (ps <= hi))


def _finish(
    n: int,
    tr: np.ndarray,
    off_common: np.ndarray,
    links: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> Matching:
    """Assemble a Matching from link blocks (treated positions, control positions, distances, shares)."""
    weight = np.zeros(n)
    n_matches = np.zeros(n, dtype="int64")
    parts = [np.concatenate([b[i] for b in links]) if links else np.zeros(0) for i in range(4)]
    pairs = pd.DataFrame(
        {
            "treated": parts[0].astype("int64"),
            "control": parts[1].astype("int64"),
            "distance": parts[2].astype("float64"),
            "weight": parts[3].astype("float64"),
        }
    )
    if len(pairs):
        np.add.at(weight, pairs["control"].to_numpy(), pairs["weight"].to_numpy())
        np.add.at(n_matches, pairs["control"].to_numpy(), 1)
        linked, counts = np.unique(pairs["treated"].to_numpy(), return_counts=True)
        n_matches[linked] = counts
        weight[linked] = 1.0
    support = ~tr | (n_matches > 0)
    return Matching(
        weight=weight, support=support, n_matches=n_matches, off_common=off_common, pairs=pairs
    )


def _nearest(
    dist: np.ndarray, available: np.ndarray, k: int, ties: Ties, tie_rank: np.ndarray
) -> np.ndarray:
    """Positions (into `dist`) of the k nearest available controls, with the tie rule, nearest first."""
    cand = np.flatnonzero(available)
    if cand.size == 0:
        return cand
    d = dist[cand]
    kk = min(k, cand.size)
    kth = np.partition(d, kk - 1)[kk - 1]
    if ties == "all":
        chosen = cand[d <= kth + TIE_TOL]
    else:
        closer = cand[d < kth - TIE_TOL]
        tied = cand[np.abs(d - kth) <= TIE_TOL]
        tied = tied[np.argsort(tie_rank[tied], kind="stable")][: kk - closer.size]
        chosen = np.concatenate([closer, tied])
    return chosen[np.lexsort((tie_rank[chosen], dist[chosen]))]


def nearest_neighbor_match(
    pscore: Sequence[float] | np.ndarray,
    treated: Sequence[bool] | np.ndarray,
    *,
    k: int = _DEFAULT_K,
    caliper: float | None = None,
    replacement: bool = True,
    ties: Ties = "all",
    order: Order = "descending",
    common: bool = True,
    seed: int | None = None,
) -> Matching:
    """Nearest-neighbour 1:k matching of treated to control units on `pscore` (module docstring).

    `pscore` is the score matched on (the probability or its logit: `matching_score`) and `caliper`
    an absolute distance on that scale. Common support compares the scores themselves (the same on
    either scale: the logit is monotone). Ties ``"first"`` and the order of equal scores follow the
    input positions, so pass units in a fixed order (`match_units` sorts them by city_code and year).
    """
    opts = MatchOptions(
        method="nearest", k=k, caliper=caliper, caliper_scale="pscore", replacement=replacement,
        ties=ties, order=order, common=common, seed=seed,
    )  # fmt: skip
    ps, tr = _check_scores(pscore, treated)
    on_common = common_support(ps, tr) if opts.common else np.ones(ps.size, dtype=bool)
    controls = np.flatnonzero(~tr)
    targets = np.flatnonzero(tr & on_common)
    rng = resampling.seeded_generator(seed) if opts.needs_seed else None
    if ties == "random":
        assert rng is not None
        tie_rank = rng.permutation(controls.size)
    else:
        tie_rank = np.arange(controls.size)
    if not replacement:
        if order == "random":
            assert rng is not None
            targets = targets[rng.permutation(targets.size)]
        else:
            sign = -1.0 if order == "descending" else 1.0
            targets = targets[np.lexsort((targets, sign * ps[targets]))]
    available = np.ones(controls.size, dtype=bool)
    links: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for i in targets:
        dist = np.abs(ps[controls] - ps[i])
        chosen = _nearest(dist, available, opts.k, opts.ties, tie_rank)
        if caliper is not None:
            chosen = chosen[dist[chosen] < caliper]
        if not replacement:
            available[chosen] = False
        share = np.full(chosen.size, 1.0 / max(chosen.size, 1))
        links.append((np.full(chosen.size, i), controls[chosen], dist[chosen], share))
    return _finish(ps.size, tr, tr & ~on_common, links)


def epanechnikov(u: np.ndarray) -> np.ndarray:
    """psmatch2's Epanechnikov kernel 1 - u^2 on |u| <= 1, else 0 (without the constant 3/4)."""
    u = np.asarray(u, dtype="float64")
    return np.where(np.abs(u) <= 1.0, 1.0 - u**2, 0.0)


def kernel_match(
    pscore: Sequence[float] | np.ndarray,
    treated: Sequence[bool] | np.ndarray,
    *,
    bandwidth: float = _DEFAULT_BANDWIDTH,
    common: bool = True,
) -> Matching:
    """Epanechnikov kernel matching with bandwidth `bandwidth` (psmatch2 ``kernel``; module docstring)."""
    MatchOptions(method="kernel", bandwidth=bandwidth, common=common)
    ps, tr = _check_scores(pscore, treated)
    on_common = common_support(ps, tr) if common else np.ones(ps.size, dtype=bool)
    controls = np.flatnonzero(~tr)
    targets = np.flatnonzero(tr & on_common)
    links: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for rows in np.array_split(targets, max(1, targets.size // 256)):
        diff = ps[controls][None, :] - ps[rows][:, None]
        kern = epanechnikov(diff / bandwidth)
        r, j = np.nonzero(kern > 0)
        share = kern[r, j] / kern.sum(axis=1)[r]
        links.append((rows[r], controls[j], np.abs(diff[r, j]), share))
    return _finish(ps.size, tr, tr & ~on_common, links)


def matching_score(
    pscore: Sequence[float] | np.ndarray, options: MatchOptions
) -> tuple[np.ndarray, float | None]:
    """The score nearest neighbours are matched on, and the caliper as an absolute distance on it.

    ``caliper_scale="logit_sd"``: the logit log(p / (1 - p)) and `caliper` times its sample standard
    deviation (ddof = 1) over all the units given (Austin 2011); ``"pscore"``: the probability and
    `caliper` itself. Kernel matching: the probability (its bandwidth is on that scale), no caliper.

    Raises:
        PsmError: a score of exactly 0 or 1 (its logit is infinite), or scores without spread.
    """
    ps = np.asarray(pscore, dtype="float64")
    if options.method == "kernel" or options.caliper_scale == "pscore":
        return ps, None if options.method == "kernel" else options.caliper
    if ((ps <= 0.0) | (ps >= 1.0)).any():
        raise PsmError(
            "a propensity score is exactly 0 or 1, so its logit is infinite: simplify the covariates "
            "or set caliper_scale: pscore"
        )
    score = np.log(ps) - np.log1p(-ps)
    if options.caliper is None:
        return score, None
    sd = float(np.std(score, ddof=1)) if score.size > 1 else 0.0
    if not sd > 0:
        raise PsmError(
            "the logit of the propensity score has no spread: a caliper in SDs is undefined"
        )
    return score, options.caliper * sd


def match_scores(pscore: np.ndarray, treated: np.ndarray, options: MatchOptions) -> Matching:
    """`nearest_neighbor_match` or `kernel_match`, as `options.method` says, on the matching scale of
    `options` (`matching_score`): pair distances are on that scale."""
    if options.method == "kernel":
        return kernel_match(pscore, treated, bandwidth=options.bandwidth, common=options.common)
    score, caliper = matching_score(pscore, options)
    return nearest_neighbor_match(
        score,
        treated,
        k=options.k,
        caliper=caliper,
        replacement=options.replacement,
        ties=options.ties,
        order=options.order,
        common=options.common,
        seed=options.seed,
    )


# --------------------------------------------------------------------------------------------------
# Balance (pstest)
# --------------------------------------------------------------------------------------------------

BALANCE_COLUMNS: tuple[str, ...] = (
    "design",
    "covariate",
    "sample",
    "mean_treated",
    "mean_control",
    "bias_pct",
    "bias_reduction_pct",
    "t_stat",
    "p_value",
    "var_ratio",
    "n_treated",
    "n_control",
)
"""Columns of the balance table: one row per (design, covariate, sample in {unmatched, matched})."""

BALANCE_TABLE_COLUMNS: tuple[str, ...] = BALANCE_COLUMNS[1:9]
"""The columns the formatted balance table prints (covariate to p_value; one panel per matching), headed by
their column:<name> entries of resources/labels/terms.csv."""


def _weighted_moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Mean and Stata importance-weight variance sum(w (x - m)^2) / (sum(w) - 1)."""
    total = w.sum()
    mean = float((w * x).sum() / total)
    var = float((w * (x - mean) ** 2).sum() / (total - 1.0)) if total > 1 else math.nan
    return mean, var


def _t_test(x1: np.ndarray, w1: np.ndarray, x0: np.ndarray, w0: np.ndarray) -> tuple[float, float]:
    """t and p of the treated coefficient in `regress x treated [iw=w]` (df = sum(w) - 2)."""
    m1, _ = _weighted_moments(x1, w1)
    m0, _ = _weighted_moments(x0, w0)
    sw1, sw0 = w1.sum(), w0.sum()
    df = sw1 + sw0 - 2.0
    if df <= 0:
        return math.nan, math.nan
    rss = (w1 * (x1 - m1) ** 2).sum() + (w0 * (x0 - m0) ** 2).sum()
    se = math.sqrt(rss / df * (1.0 / sw1 + 1.0 / sw0))
    if se == 0:
        return math.nan, math.nan
    t = (m1 - m0) / se
    return t, float(2.0 * stats.t.sf(abs(t), df))


def balance_table(
    units: pd.DataFrame,
    covariates: Sequence[str],
    *,
    treated: str = "treated",
    weight: str = "weight",
    support: str = "support",
    design: str = "",
) -> pd.DataFrame:
    """psmatch2 ``pstest, both``: covariate balance before and after matching (module docstring).

    Args:
        units: one row per matched unit (e.g. `PsmResult.scores`), with the covariates, the 0/1
            treatment `treated`, the matching weight `weight` (0 = not used) and `support`.
        covariates: columns to compare.

    Returns:
        Two rows per covariate (sample "unmatched", then "matched") with `BALANCE_COLUMNS`.
        `bias_reduction_pct` is NaN on the unmatched row, and `var_ratio` is s2_T / s2_C (weighted
        after matching, as pstest).
    """
    missing = [c for c in [*covariates, treated, weight, support] if c not in units.columns]
    if missing:
        raise PsmError(f"balance_table needs columns {missing}")
    tr = units[treated].to_numpy(dtype="float64") == 1.0
    w = units[weight].to_numpy(dtype="float64")
    on = units[support].to_numpy(dtype=bool)
    matched_t = tr & on
    matched_c = ~tr & (w > 0)
    if not matched_t.any() or not matched_c.any():
        raise PsmError("no matched treated or no matched control units: nothing to compare")
    rows = []
    for cov in covariates:
        x = units[cov].to_numpy(dtype="float64")
        if not np.isfinite(x).all():
            raise PsmError(f"covariate {cov!r} has missing values among the matched units")
        x1, x0 = x[tr], x[~tr]
        ones1, ones0 = np.ones(x1.size), np.ones(x0.size)
        m1u, v1u = _weighted_moments(x1, ones1)
        m0u, v0u = _weighted_moments(x0, ones0)
        scale = math.sqrt((v1u + v0u) / 2.0)
        m1m, v1m = _weighted_moments(x[matched_t], np.ones(int(matched_t.sum())))
        m0m, v0m = _weighted_moments(x[matched_c], w[matched_c])
        bias_u = 100.0 * (m1u - m0u) / scale if scale > 0 else math.nan
        bias_m = 100.0 * (m1m - m0m) / scale if scale > 0 else math.nan
        reduction = 100.0 * (1.0 - abs(bias_m) / abs(bias_u)) if bias_u else math.nan
        t_u, p_u = _t_test(x1, ones1, x0, ones0)
        t_m, p_m = _t_test(x[matched_t], np.ones(int(matched_t.sum())), x[matched_c], w[matched_c])
        common = {"design": design, "covariate": cov}
        rows.append(
            common
            | {
                "sample": "unmatched",
                "mean_treated": m1u,
                "mean_control": m0u,
                "bias_pct": bias_u,
                "bias_reduction_pct": math.nan,
                "t_stat": t_u,
                "p_value": p_u,
                "var_ratio": v1u / v0u if v0u > 0 else math.nan,
                "n_treated": x1.size,
                "n_control": x0.size,
            }
        )
        rows.append(
            common
            | {
                "sample": "matched",
                "mean_treated": m1m,
                "mean_control": m0m,
                "bias_pct": bias_m,
                "bias_reduction_pct": reduction,
                "t_stat": t_m,
                "p_value": p_m,
                "var_ratio": v1m / v0m if v0m > 0 else math.nan,
                "n_treated": int(matched_t.sum()),
                "n_control": int(matched_c.sum()),
            }
        )
    return pd.DataFrame(rows, columns=list(BALANCE_COLUMNS))


# --------------------------------------------------------------------------------------------------
# Designs: units, scores, matched samples
# --------------------------------------------------------------------------------------------------


def _check_panel(panel: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> None:
    require_columns(panel, [UNIT, TIME, treatment, *covariates], "the panel")
    if panel.duplicated([UNIT, TIME]).any():
        raise PsmError(f"the panel has duplicated ({UNIT}, {TIME}) rows")
    values = panel[treatment]
    if values.isna().any() or not values.isin([0, 1]).all():
        raise PsmError(f"{treatment!r} must be 0/1 without missing values")


def design_units(
    panel: pd.DataFrame,
    *,
    design: Design,
    covariates: Sequence[str],
    treatment: str = "dual_post",
    treat: Treat = "ever",
    baseline_end: int = 2009,
) -> pd.DataFrame:
    """The units matched under `design`, sorted, with their treatment indicator and covariates.

    Columns: `group` (the matching pool: "all", or the year for "by_year"), city_code, year (Int64;
    missing for "baseline", whose units are cities), `treated` (0/1), then the covariates (pre-period
    means over years <= `baseline_end` for "baseline", skipping missing years). `treat="ever"`:
    treated = the city has `treatment` == 1 in some year of the panel; `treat="current"` (pooled
    only): treated = the city-year's own `treatment`. Units with a missing covariate are kept here
    (`match_units` counts and drops them).
    """
    _choice(design, DESIGNS, "design")
    _choice(treat, ("ever", "current"), "treat")
    if treat == "current" and design != "pooled":
        raise PsmError(
            f"treat='current' (treated = the city-year's own {treatment}) is only defined for the "
            f"pooled design; the {design} design matches ever-treated cities (treat='ever')"
        )
    _check_panel(panel, treatment, covariates)
    cov = list(covariates)
    ever = panel.groupby(UNIT, sort=True)[treatment].max().astype("int64")
    if design == "baseline":
        pre = panel[panel[TIME] <= baseline_end]
        if pre.empty:
            raise PsmError(f"no panel year is <= baseline_end={baseline_end}")
        if (pre[treatment] == 1).any():
            first = int(pre.loc[pre[treatment] == 1, TIME].min())
            raise PsmError(
                f"{treatment} is already 1 in {first}, inside the baseline period (years <= "
                f"{baseline_end}): set baseline_end before the first treated year"
            )
        means = pre.groupby(UNIT, sort=True)[cov].mean()
        units = means.reindex(ever.index).reset_index()
        units.insert(1, TIME, pd.array([pd.NA] * len(units), dtype="Int64"))
        units.insert(2, "treated", ever.to_numpy())
        units.insert(0, "group", "all")
        return units.reset_index(drop=True)
    units = panel[[UNIT, TIME, treatment, *cov]].sort_values([UNIT, TIME]).reset_index(drop=True)
    if treat == "ever":
        treated = units[UNIT].map(ever).to_numpy(dtype="int64")
    else:
        treated = units[treatment].to_numpy(dtype="int64")
    units = units.drop(columns=[treatment])
    units[TIME] = units[TIME].astype("Int64")
    units.insert(2, "treated", treated)
    group = units[TIME].astype("str") if design == "by_year" else "all"
    units.insert(0, "group", group)
    return units


SUMMARY_COLUMNS: tuple[str, ...] = (
    "design",
    "n_units",
    "n_missing",
    "n_treated",
    "n_controls",
    "n_off_common",
    "n_unmatched",
    "n_treated_matched",
    "n_controls_used",
    "n_self_matches",
)


def _groups(units: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    for key, frame in units.groupby("group", sort=True):
        yield str(key), frame


def match_units(
    units: pd.DataFrame, covariates: Sequence[str], options: MatchOptions, *, design: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score and match the units of `design_units`, pool by pool (`group`).

    Units with a missing covariate are dropped before the logit (counted in the summary). Random
    draws for a pool use the seed ``SeedSequence([seed, g]).generate_state(1)[0]``, g being the
    position of the pool among the sorted pool keys (0 for the single pool of pooled and baseline).

    Returns:
        scores: the scored units with `pscore`, `on_common` (inside the common support; True for
            controls), `support` (psmatch2 `_support`), `weight` (psmatch2 `_weight`, 0 if unused)
            and `n_matches`;
        pairs: one row per (treated, control) link, with both units' city_code and year and their
            distance on the matching scale (`matching_score`);
        summary: one row of counts (`SUMMARY_COLUMNS`).
    """
    cov = list(covariates)
    score_frames, pair_frames = [], []
    n_missing = 0
    for g_index, (key, frame) in enumerate(_groups(units)):
        complete = frame[cov].notna().all(axis=1).to_numpy()
        n_missing += int((~complete).sum())
        frame = frame.loc[complete].reset_index(drop=True)
        if frame.empty:
            raise PsmError(f"pool {key!r}: no unit has all covariates {cov}")
        treated = frame["treated"].to_numpy()
        logit = logit_pscore(frame[cov], treated)
        opts = options
        if options.seed is not None:
            pool_seed = resampling.child_seed(options.seed, g_index)
            opts = replace(options, seed=int(pool_seed))
        if opts.method == "nearest" and opts.caliper is not None:
            _, caliper = matching_score(logit.pscore, opts)
            log.info("PSM %s, pool %s: caliper %s = %.6g on the matching scale", design, key,
                     opts.caliper, caliper)  # fmt: skip
        m = match_scores(logit.pscore, treated, opts)
        out = frame.assign(
            pscore=logit.pscore,
            on_common=~m.off_common,
            support=m.support,
            weight=m.weight,
            n_matches=m.n_matches,
        )
        score_frames.append(out)
        ids = frame[[UNIT, TIME]]
        t_ids = ids.iloc[m.pairs["treated"].to_numpy()].reset_index(drop=True)
        c_ids = ids.iloc[m.pairs["control"].to_numpy()].reset_index(drop=True)
        pair_frames.append(
            pd.DataFrame(
                {
                    "group": key,
                    "treated_city": t_ids[UNIT].to_numpy(),
                    "treated_year": t_ids[TIME].array,
                    "control_city": c_ids[UNIT].to_numpy(),
                    "control_year": c_ids[TIME].array,
                    "distance": m.pairs["distance"].to_numpy(),
                    "weight": m.pairs["weight"].to_numpy(),
                }
            )
        )
    scores = pd.concat(score_frames, ignore_index=True)
    scores.insert(0, "design", design)
    pairs = pd.concat(pair_frames, ignore_index=True)
    pairs.insert(0, "design", design)
    tr = scores["treated"].to_numpy() == 1
    summary = pd.DataFrame(
        [
            {
                "design": design,
                "n_units": len(scores),
                "n_missing": n_missing,
                "n_treated": int(tr.sum()),
                "n_controls": int((~tr).sum()),
                "n_off_common": int((tr & ~scores["on_common"]).sum()),
                "n_unmatched": int((tr & scores["on_common"] & ~scores["support"]).sum()),
                "n_treated_matched": int((tr & (scores["weight"] > 0)).sum()),
                "n_controls_used": int((~tr & (scores["weight"] > 0)).sum()),
                "n_self_matches": int((pairs["treated_city"] == pairs["control_city"]).sum()),
            }
        ],
        columns=list(SUMMARY_COLUMNS),
    )
    if n_missing:
        log.info("PSM %s: %d unit(s) with a missing covariate left out", design, n_missing)
    return scores, pairs, summary


def matched_sample(scores: pd.DataFrame, panel: pd.DataFrame, *, design: Design) -> pd.DataFrame:
    """The city-years kept after matching, with their weights.

    City-year designs keep the matched city-years themselves; "baseline" keeps every panel year of
    each matched city, with the city's weight. Columns: design, city_code, year, treated, pscore,
    weight (> 0), n_matches.
    """
    _choice(design, DESIGNS, "design")
    kept = scores.loc[
        scores["weight"] > 0, [UNIT, TIME, "treated", "pscore", "weight", "n_matches"]
    ]
    if design == "baseline":
        years = panel[[UNIT, TIME]].sort_values([UNIT, TIME])
        kept = years.merge(kept.drop(columns=[TIME]), on=UNIT, how="inner", validate="many_to_one")
    out = kept.sort_values([UNIT, TIME]).reset_index(drop=True)
    out[TIME] = out[TIME].astype("int64")
    out.insert(0, "design", design)
    return out


# --------------------------------------------------------------------------------------------------
# PSM-DID
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsmResult:
    """Everything one PSM-DID design produces."""

    matched: pd.DataFrame
    """The matched city-years (`matched_sample`)."""
    balance: pd.DataFrame
    """The pstest balance table (`balance_table`) on the matched units."""
    tidy: pd.DataFrame
    """The DiD on the matched sample in the tidy estimate format (one row: the treatment)."""
    scores: pd.DataFrame
    """Every scored unit with its propensity score, support and weight (`match_units`)."""
    pairs: pd.DataFrame
    """One row per (treated, control) link (`match_units`)."""
    summary: pd.DataFrame
    """One row of counts (`SUMMARY_COLUMNS` plus n_obs_did, the rows used by the DiD)."""


def _sample_label(design: str, options: MatchOptions, did_weights: str, baseline_end: int) -> str:
    what = {
        "pooled": "city-years matched in one pool, on covariates measured after treatment too",
        "by_year": "city-years matched within each year, on covariates measured after treatment too",
        "baseline": f"cities matched on means up to {baseline_end}, all years kept",
    }[design]
    how = "WLS with matching weights" if did_weights == "weights" else "unweighted"
    return f"PSM {design}: {what}; {options.describe()}; {how}"


def did_on_matched(
    panel: pd.DataFrame,
    matched: pd.DataFrame,
    *,
    controls: Sequence[str],
    outcome: str = "lq",
    treatment: str = "dual_post",
    did_weights: DidWeights = "weights",
    model: str = "psm",
    sample: str = "matched",
) -> tuple[pd.DataFrame, est.Fit]:
    """``outcome ~ treatment + controls | city_code + year`` (CRV1 by city) on the matched city-years.

    With ``did_weights="weights"`` the matching weights are WLS weights; with "unweighted" each
    matched city-year counts once. Returns the tidy row of `treatment` and the fit.
    """
    _choice(did_weights, ("weights", "unweighted"), "did_weights")
    require_columns(panel, [outcome, treatment, *controls], "the panel")
    weights = matched[[UNIT, TIME, "weight"]].rename(columns={"weight": WEIGHT_COLUMN})
    data = panel.merge(weights, on=[UNIT, TIME], how="inner", validate="one_to_one")
    if len(data) != len(matched):
        raise PsmError("matched city-years missing from the panel")
    fit = est.fit(
        data,
        outcome=outcome,
        terms=[treatment],
        controls=list(controls),
        fixed_effects=(UNIT, TIME),
        cluster=UNIT,
        vcov="cluster",
        weights=WEIGHT_COLUMN if did_weights == "weights" else None,
    )
    return est.tidy(fit, model=model, sample=sample), fit


def psm_did(
    panel: pd.DataFrame,
    *,
    controls: Sequence[str],
    design: Design = "baseline",
    method: Method = "nearest",
    k: int = _DEFAULT_K,
    caliper: float | None = _DEFAULT_CALIPER,
    caliper_scale: CaliperScale = _DEFAULT_SCALE,
    replacement: bool = True,
    ties: Ties = "all",
    order: Order = "descending",
    bandwidth: float = _DEFAULT_BANDWIDTH,
    common: bool = True,
    seed: int | None = None,
    outcome: str = "lq",
    treatment: str = "dual_post",
    treat: Treat = "ever",
    baseline_end: int = 2009,
    did_weights: DidWeights = "weights",
    covariates: Sequence[str] | None = None,
    model: str | None = None,
) -> PsmResult:
    """Propensity-score matching under `design`, balance, and the baseline DiD on the matched sample.

    Args:
        panel: the city-year panel (city_code, year, outcome, treatment, controls).
        controls: controls of the DiD; also the logit's covariates unless `covariates` is given.
        design: "pooled", "by_year" or "baseline" (module docstring).
        method, k, caliper, caliper_scale, replacement, ties, order, bandwidth, common, seed:
            `MatchOptions`.
        outcome, treatment: the DiD's outcome and treatment (0/1 per city-year).
        treat: "ever" (treated = ever `treatment` == 1) or, pooled only, "current".
        baseline_end: last year of the baseline period of the "baseline" design.
        did_weights: "weights" (WLS with the matching weights) or "unweighted" (keep if matched).
        covariates: covariates of the propensity score (default: `controls`).
        model: the model id of the tidy row and of the `model` column of every frame (default
            ``psm_<design>``).

    Raises:
        PsmError: invalid options or data, failed logit, nothing matched.
        EstimationError: the DiD cannot be estimated on the matched sample.
    """
    _choice(design, DESIGNS, "design")
    _choice(did_weights, ("weights", "unweighted"), "did_weights")
    options = MatchOptions(
        method=method, k=k, caliper=caliper, caliper_scale=caliper_scale, replacement=replacement,
        ties=ties, order=order, bandwidth=bandwidth, common=common, seed=seed,
    )  # fmt: skip
    model = f"psm_{design}" if model is None else model
    cov = list(controls if covariates is None else covariates)
    if not cov:
        raise PsmError("the propensity score needs at least one covariate")
    require_columns(panel, [outcome, *controls], "the panel")
    units = design_units(
        panel, design=design, covariates=cov, treatment=treatment, treat=treat,
        baseline_end=baseline_end,
    )  # fmt: skip
    scores, pairs, summary = match_units(units, cov, options, design=design)
    if not (scores["weight"] > 0).any():
        raise PsmError(f"PSM {design}: no treated unit was matched ({options.describe()})")
    balance = balance_table(scores, cov, design=design)
    matched = matched_sample(scores, panel, design=design)
    label = _sample_label(design, options, did_weights, baseline_end)
    tidy, fit = did_on_matched(
        panel, matched, controls=controls, outcome=outcome, treatment=treatment,
        did_weights=did_weights, model=model, sample=label,
    )  # fmt: skip
    summary = summary.assign(n_obs_did=fit.n_obs)
    log.info("PSM %s (%s): %s", design, options.describe(), summary.iloc[0].to_dict())
    k_value = k if method == "nearest" else pd.NA

    def tag(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out.insert(1, "model", model)
        out.insert(2, "k", pd.array([k_value] * len(out), dtype="Int64"))
        return out

    return PsmResult(
        matched=tag(matched), balance=tag(balance), tidy=tidy, scores=tag(scores),
        pairs=tag(pairs), summary=tag(summary),
    )  # fmt: skip


@dataclass(frozen=True)
class PsmAll:
    """`run_all_designs`: each matching's result by model id and the stacked frames (with `design`,
    `model` and `k` columns)."""

    results: dict[str, PsmResult]
    tidy: pd.DataFrame
    """Tidy rows of every matching (`model_id`), plus the unmatched DiD (last) if requested."""
    balance: pd.DataFrame
    matched: pd.DataFrame
    scores: pd.DataFrame
    summary: pd.DataFrame


def model_id(design: str, k: int | None, several: bool) -> str:
    """The model id of a matching: ``psm_<design>``, or ``psm_<design>_k<k>`` when several numbers
    of neighbours are run side by side (each id a table prints needs a ``model:<id>`` label in
    resources/labels/terms.csv; the shipped file has k = 1 and 4)."""
    return f"psm_{design}_k{k}" if several and k is not None else f"psm_{design}"


def run_all_designs(
    panel: pd.DataFrame,
    *,
    controls: Sequence[str],
    designs: Sequence[str] = DESIGNS,
    k: int | Sequence[int] = _DEFAULT_KS,
    include_full: bool = True,
    **options: Any,
) -> PsmAll:
    """`psm_did` for each design in `designs` and each number of neighbours in `k` (1:1 and 1:4 by
    default; ignored by kernel matching), with the same other options (keyword arguments of
    `psm_did`).

    The results come design by design in the order of `designs` (the first is the headline), each
    with its `k` values in order; model ids by `model_id`. With `include_full`, the same DiD on the
    full (unmatched) panel is added last as model "full_sample".
    """
    if not designs:
        raise PsmError("no design to run")
    for d in designs:
        _choice(d, DESIGNS, "design")
    if "design" in options:
        raise PsmError("pass designs=[...] to run_all_designs, not design=")
    ks = [k] if isinstance(k, int | np.integer) else list(k)
    if not ks or len(set(ks)) != len(ks):
        raise PsmError(f"k must be a positive integer or a list of distinct ones, not {k!r}")
    if options.get("method", "nearest") == "kernel":
        ks = ks[:1]  # kernel matching has no k: one run per design
    several = len(ks) > 1
    results = {
        model_id(d, kk, several): psm_did(
            panel, controls=controls, design=d, k=kk, model=model_id(d, kk, several), **options,  # type: ignore[arg-type]
        )
        for d in designs
        for kk in ks
    }  # fmt: skip
    frames = [r.tidy for r in results.values()]
    if include_full:
        outcome = options.get("outcome", "lq")
        treatment = options.get("treatment", "dual_post")
        full = est.fit(
            panel, outcome=outcome, terms=[treatment], controls=list(controls),
            fixed_effects=(UNIT, TIME), cluster=UNIT, vcov="cluster",
        )  # fmt: skip
        frames.append(est.tidy(full, model=FULL_MODEL, sample="full panel, unmatched"))

    def stack(name: str) -> pd.DataFrame:
        return pd.concat([getattr(r, name) for r in results.values()], ignore_index=True)

    return PsmAll(
        results=results,
        tidy=est.concat_tidy(frames),
        balance=stack("balance"),
        matched=stack("matched"),
        scores=stack("scores"),
        summary=stack("summary"),
    )
