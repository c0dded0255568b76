"""Pre-trend sensitivity of event-study estimates (Rambachan & Roth 2023, "HonestDiD").

Given an event-study coefficient vector ``beta`` and its covariance ``sigma``, this module builds
confidence sets for a target ``theta = l' tau_post`` (the first post-period effect, the average post
effect, or any linear combination) that stay valid when parallel trends fails in a bounded way:

- ``Delta^RM(Mbar)`` (relative magnitudes): every post-period change of the trend violation,
  ``|delta_{t+1} - delta_t|`` for ``t >= base``, is at most ``Mbar`` times the largest consecutive
  pre-period change ``max_{s < base} |delta_{s+1} - delta_s|``;
- ``Delta^SD(M)`` (smoothness): every second difference of the violation, over the whole window,
  is at most ``M`` in absolute value (``M = 0``: the violation is an exactly linear trend).

Methods (Rambachan & Roth 2023, ReStud 90(5), sections 3-5; Andrews, Roth & Pakes 2023, "Inference
for linear conditional moment inequalities", ReStud, "ARP" below):

- ``"original"``: ``l'beta_post +/- z_{1-alpha/2} * se`` (no violation allowed);
- ``"FLCI"`` for ``Delta^SD``: the optimal fixed-length confidence interval, an affine estimator
  ``v'beta`` with the half-length ``sd * cv_alpha(M * maxbias / sd)`` minimised over ``v``;
- ``"Conditional"`` for both restrictions: the ARP conditional test of the moment inequalities
  ``E[A beta] - A (0, tau_post) <= d`` with the other post effects as nuisance parameters, inverted
  over a grid of ``theta``;
- ``"C-LF"`` for ``Delta^RM``: the ARP conditional / least-favourable hybrid (first-stage size
  ``kappa = alpha / 10``; its critical value is simulated from ``seed``).

For ``Delta^RM`` the set is a union over which pre-period change is the largest and its sign
(``2 * num_pre`` polyhedra): ``theta`` is in the confidence set when at least one of the tests
accepts, as in the R package HonestDiD's ``computeConditionalCS_DeltaRM``.

Base-period convention. ``beta`` holds ``num_pre`` pre-period coefficients for the event times
``-(num_pre + 1), ..., -2`` (oldest first), then ``num_post`` post-period coefficients for the event
times ``0, 1, ..., num_post - 1``. Event time ``-1`` is the omitted base period: its coefficient is
normalised to 0 and it is not in ``beta``. The periods must be consecutive (no gaps). This is the R
package's layout, where the base period is called 0 and the post periods ``1..num_post``.

Linear programs are solved with ``scipy.optimize.linprog`` (HiGHS); the FLCI's inner problem
(minimum worst-case bias at a given standard deviation) with ``scipy.optimize.minimize`` (SLSQP).
Differences from the R package, all deliberate: the folded-normal quantile of the FLCI is computed
exactly rather than by simulation (R simulates it with 10^6 draws, an error of about 1e-3 of the
half-length); the conditioning interval of the ARP test is computed exactly by linear programs
where R bisects to 1e-6; the default grid of ``theta`` is centred on the estimate and refined by
bisection at both ends, instead of R's fixed 1000 points around 0 (an explicit grid, as in R, is
available through ``grid_lb``/``grid_ub`` with ``refine=False``); the least-favourable critical
value uses numpy's random generator, so it matches R's only up to simulation error.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

log = logging.getLogger(__name__)

__all__ = [
    "EmptyConfidenceSetWarning",
    "FLCIResult",
    "HonestDiDError",
    "conditional_ci_rm",
    "conditional_ci_sd",
    "flci_sd",
    "honest_did",
    "identified_set_rm",
    "identified_set_sd",
    "original_ci",
    "prepare_event_study",
    "sd_upper_bound_mpre",
]

RESULT_COLUMNS = ["method", "restriction", "Mbar_or_M", "target", "conf_low", "conf_high"]

# Relative tolerances of the numerical steps (see the module docstring for what each one guards).
_DUAL_TOL = 1e-7  # a dual weight below this share of the largest one counts as zero
_FEAS_TOL = 1e-9  # slack allowed when re-using an LP basis, relative to the moments' scale


class HonestDiDError(ValueError):
    """Raised for invalid inputs or a computation that cannot be completed as asked."""


class EmptyConfidenceSetWarning(UserWarning):
    """The test rejected every value of theta: the data reject the restriction itself."""


# --------------------------------------------------------------------------------------------
# Small numerical helpers
# --------------------------------------------------------------------------------------------


def _norm_quantile_two_sided(alpha: float) -> float:
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def _folded_normal_quantile(p: float, mu: float) -> float:
    """The ``p`` quantile of ``|N(mu, 1)|``, by root finding on its exact CDF."""
    mu = abs(float(mu))

    def cdf_gap(x: float) -> float:
        return float(special.ndtr(x - mu) - special.ndtr(-x - mu)) - p

    upper = mu + 10.0
    return float(optimize.brentq(cdf_gap, 0.0, upper, xtol=1e-14, rtol=1e-14))


def _truncnorm_quantile(p: float, lo: float, hi: float) -> float:
    """The ``p`` quantile of a standard normal truncated to ``[lo, hi]``, stable in the tails."""
    if not lo < hi:
        return float(lo)
    if lo >= 0.0:
        # Upper tails S(x) = P(Z > x): the quantile solves S(q) = S(hi) + (1-p)(S(lo) - S(hi)).
        log_s_lo = special.log_ndtr(-lo)
        log_s_hi = special.log_ndtr(-hi) if np.isfinite(hi) else -np.inf
        log_mass = log_s_lo + np.log1p(-np.exp(log_s_hi - log_s_lo))
        log_target = np.logaddexp(log_s_hi, np.log1p(-p) + log_mass)
        return float(-special.ndtri_exp(log_target))
    if hi <= 0.0:
        return -_truncnorm_quantile(1.0 - p, -hi, -lo)
    c_lo = special.ndtr(lo)
    c_hi = special.ndtr(hi)
    return float(special.ndtri(c_lo + p * (c_hi - c_lo)))


def _basis_vector(size: int, index: int) -> np.ndarray:
    v = np.zeros(size)
    v[index] = 1.0
    return v


def _gamma_matrix(l_vec: np.ndarray) -> np.ndarray:
    """An invertible matrix whose first row is ``l'``, completed with unit vectors (R's choice).

    The test does not depend on the completion: the other rows only parametrise the nuisance
    directions ``{tau : l'tau = 0}``.
    """
    rows = [l_vec]
    for j in range(l_vec.size):
        candidate = np.vstack([*rows, _basis_vector(l_vec.size, j)])
        if np.linalg.matrix_rank(candidate) == candidate.shape[0]:
            rows.append(_basis_vector(l_vec.size, j))
        if len(rows) == l_vec.size:
            break
    return np.vstack(rows)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """A matrix ``R`` with ``R R' = sigma`` (Cholesky, or symmetric root when singular)."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(sigma)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _check_inputs(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta_arr = np.asarray(beta, dtype=float).ravel()
    sigma_arr = np.asarray(sigma, dtype=float)
    problems = []
    if int(num_pre) != num_pre or num_pre < 1:
        problems.append(f"num_pre must be a positive integer, got {num_pre!r}")
    if int(num_post) != num_post or num_post < 1:
        problems.append(f"num_post must be a positive integer, got {num_post!r}")
    if problems:
        raise HonestDiDError("; ".join(problems))
    n = int(num_pre) + int(num_post)
    if beta_arr.size != n:
        problems.append(f"beta has {beta_arr.size} entries, num_pre + num_post = {n}")
    if sigma_arr.shape != (n, n):
        problems.append(f"sigma has shape {sigma_arr.shape}, expected ({n}, {n})")
    if not (0.0 < alpha < 1.0):
        problems.append(f"alpha must lie in (0, 1), got {alpha!r}")
    if problems:
        raise HonestDiDError("; ".join(problems))
    if not (np.all(np.isfinite(beta_arr)) and np.all(np.isfinite(sigma_arr))):
        raise HonestDiDError("beta and sigma must be finite (no NaN or inf)")
    scale = max(float(np.max(np.abs(sigma_arr))), np.finfo(float).tiny)
    if np.max(np.abs(sigma_arr - sigma_arr.T)) > 1e-8 * scale:
        raise HonestDiDError("sigma is not symmetric")
    sigma_arr = (sigma_arr + sigma_arr.T) / 2.0
    if np.linalg.eigvalsh(sigma_arr)[0] < -1e-8 * scale:
        raise HonestDiDError("sigma is not positive semi-definite")
    if np.any(np.diag(sigma_arr) <= 0.0):
        raise HonestDiDError("every coefficient needs a positive variance (diagonal of sigma)")
    if l_vec is None:
        l_arr = _basis_vector(int(num_post), 0)
    else:
        l_arr = np.asarray(l_vec, dtype=float).ravel()
        if l_arr.size != num_post or not np.all(np.isfinite(l_arr)):
            raise HonestDiDError(f"l_vec must hold {num_post} finite numbers, got {l_vec!r}")
        if not np.any(l_arr != 0.0):
            raise HonestDiDError("l_vec must not be all zeros")
    return beta_arr, sigma_arr, l_arr


def _post_sd(sigma: np.ndarray, num_pre: int, l_vec: np.ndarray) -> float:
    post = sigma[num_pre:, num_pre:]
    return float(np.sqrt(l_vec @ post @ l_vec))


# --------------------------------------------------------------------------------------------
# Restriction sets: Delta = {delta : A delta <= d}; delta excludes the base period
# --------------------------------------------------------------------------------------------


def _first_differences(num_pre: int, num_post: int) -> np.ndarray:
    """Rows ``delta_r - delta_{r-1}`` over the window, base period (column num_pre) included."""
    n_full = num_pre + num_post + 1
    out = np.zeros((n_full - 1, n_full))
    for r in range(n_full - 1):
        out[r, r] = -1.0
        out[r, r + 1] = 1.0
    return out


def _drop_base(matrix: np.ndarray, num_pre: int) -> np.ndarray:
    return np.delete(matrix, num_pre, axis=1)


def _sd_constraints(num_pre: int, num_post: int, M: float) -> tuple[np.ndarray, np.ndarray]:
    """``Delta^SD(M)``: ``|second difference| <= M`` at every interior period of the window."""
    n_full = num_pre + num_post + 1
    second = np.zeros((n_full - 2, n_full))
    for r in range(n_full - 2):
        second[r, r : r + 3] = (1.0, -2.0, 1.0)
    second = _drop_base(second, num_pre)
    A = np.vstack([second, -second])
    return A, np.full(A.shape[0], float(M))


def _rm_constraints(
    num_pre: int, num_post: int, Mbar: float, s: int, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One polyhedron of ``Delta^RM(Mbar)``: pre-period change ``s`` is the largest, with a sign.

    ``s`` indexes the pre-period first differences ``0..num_pre-1`` (the last one ends at the base
    period). Constraints: ``|Delta_r| <= sign * Delta_s`` for pre-period changes and
    ``|Delta_r| <= Mbar * sign * Delta_s`` for post-period changes.
    """
    diffs = _first_differences(num_pre, num_post)
    bound = diffs[s] if positive else -diffs[s]
    scale = np.where(np.arange(diffs.shape[0]) < num_pre, 1.0, float(Mbar))[:, None]
    A_full = np.vstack([diffs - scale * bound, -diffs - scale * bound])
    keep = np.sum(A_full**2, axis=1) > 1e-10
    A = _drop_base(A_full[keep], num_pre)
    return A, np.zeros(A.shape[0])


def _post_rows(A: np.ndarray, num_pre: int) -> np.ndarray:
    """Indices of the constraints that involve at least one post-period coefficient."""
    return np.flatnonzero(np.any(A[:, num_pre:] != 0.0, axis=1))


def _rm_polyhedra(num_pre: int, num_post: int, Mbar: float) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        _rm_constraints(num_pre, num_post, Mbar, s, positive)
        for s in range(num_pre)
        for positive in (True, False)
    ]


# --------------------------------------------------------------------------------------------
# Identified sets (population: beta known)
# --------------------------------------------------------------------------------------------


def _identified_set(
    beta: np.ndarray, num_pre: int, l_vec: np.ndarray, A: np.ndarray, d: np.ndarray
) -> tuple[float, float] | None:
    """``[l'beta_post - max l'delta_post, l'beta_post - min l'delta_post]`` over ``A delta <= d``
    with ``delta_pre = beta_pre``; ``None`` when no such delta exists."""
    pre = beta[:num_pre]
    A_post = A[:, num_pre:]
    rhs = d - A[:, :num_pre] @ pre
    bounds = [(None, None)] * A_post.shape[1]
    theta_hat = float(l_vec @ beta[num_pre:])
    hi = optimize.linprog(-l_vec, A_ub=A_post, b_ub=rhs, bounds=bounds, method="highs")
    lo = optimize.linprog(l_vec, A_ub=A_post, b_ub=rhs, bounds=bounds, method="highs")
    if hi.status == 2 or lo.status == 2:
        return None
    if hi.status != 0 or lo.status != 0:
        raise HonestDiDError(f"identified-set LP failed: {hi.message} / {lo.message}")
    return theta_hat - (-hi.fun), theta_hat - lo.fun


def identified_set_sd(
    beta: Sequence[float] | np.ndarray,
    num_pre: int,
    num_post: int,
    M: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Identified set of ``l'tau_post`` under ``Delta^SD(M)`` when ``beta`` is known exactly.

    Returns ``(nan, nan)`` when the pre-period coefficients themselves violate the restriction.
    """
    beta_arr, _, l_arr = _check_inputs(beta, np.eye(len(beta)), num_pre, num_post, l_vec, 0.05)
    A, d = _sd_constraints(num_pre, num_post, M)
    out = _identified_set(beta_arr, num_pre, l_arr, A, d)
    return (math.nan, math.nan) if out is None else out


def identified_set_rm(
    beta: Sequence[float] | np.ndarray,
    num_pre: int,
    num_post: int,
    Mbar: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Identified set of ``l'tau_post`` under ``Delta^RM(Mbar)`` when ``beta`` is known exactly
    (the hull of the union over the location and sign of the largest pre-period change)."""
    beta_arr, _, l_arr = _check_inputs(beta, np.eye(len(beta)), num_pre, num_post, l_vec, 0.05)
    pieces = [
        piece
        for A, d in _rm_polyhedra(num_pre, num_post, Mbar)
        if (piece := _identified_set(beta_arr, num_pre, l_arr, A, d)) is not None
    ]
    if not pieces:  # cannot happen: some pre-period change is always the largest
        raise HonestDiDError("no polyhedron of Delta^RM is feasible")
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


# --------------------------------------------------------------------------------------------
# ARP conditional test of E[y] - X delta <= 0 for some delta (Andrews, Roth & Pakes 2023)
# --------------------------------------------------------------------------------------------


class _CachedLP:
    """``min cost'x`` s.t. ``G x <= h`` (``x`` free) for fixed ``cost``, ``G`` and varying ``h``.

    Each HiGHS solution leaves an optimal basis: ``n`` constraints, binding, with an invertible
    matrix, carrying every positive dual weight. The basis stays optimal for any other ``h`` where
    its vertex ``G_B^{-1} h_B`` is feasible (dual feasibility does not depend on ``h``), so along a
    grid of ``theta`` most solves are a small linear system. Unboundedness does not depend on ``h``
    either (it is a property of the recession cone), so it is remembered too.
    """

    def __init__(self, cost: np.ndarray, G: np.ndarray) -> None:
        self.cost = cost
        self.G = G
        self.unbounded = False
        self.basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def solve(self, h: np.ndarray) -> tuple[float, np.ndarray]:
        """Optimal value and duals ``lam >= 0`` (``cost + G'lam = 0``); ``-inf`` if unbounded."""
        if self.unbounded:
            return -math.inf, np.zeros(self.G.shape[0])
        tol = _FEAS_TOL * max(1.0, float(np.max(np.abs(h))))
        if self.basis is not None:
            rows, g_inv, lam = self.basis
            x = g_inv @ h[rows]
            if np.max(self.G @ x - h) <= tol:
                return float(self.cost @ x), lam
        n = self.G.shape[1]
        res = optimize.linprog(
            self.cost, A_ub=self.G, b_ub=h, bounds=[(None, None)] * n, method="highs"
        )
        if res.status == 3:
            self.unbounded = True
            return -math.inf, np.zeros(self.G.shape[0])
        if res.status != 0:
            raise HonestDiDError(f"linear program failed (status {res.status}): {res.message}")
        lam = np.clip(-np.asarray(res.ineqlin.marginals), 0.0, None)
        self.basis = self._find_basis(res.x, h, lam, tol)
        if self.basis is not None:
            # Polish: the basis's vertex is exact where HiGHS stops at its 1e-7 tolerances.
            rows, g_inv, _ = self.basis
            x = g_inv @ h[rows]
            if np.max(self.G @ x - h) <= tol:
                return float(self.cost @ x), lam
        return float(res.fun), lam

    def _find_basis(
        self, x: np.ndarray, h: np.ndarray, lam: np.ndarray, tol: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        n = self.G.shape[1]
        positive = np.flatnonzero(lam > _DUAL_TOL * max(float(lam.max()), 1e-300))
        slack = h - self.G @ x
        binding = [i for i in np.argsort(slack) if slack[i] <= 10.0 * tol and i not in positive]
        rows = list(positive)
        if np.linalg.matrix_rank(self.G[rows]) < len(rows):
            return None
        for i in binding:
            if len(rows) == n:
                break
            if np.linalg.matrix_rank(self.G[[*rows, i]]) == len(rows) + 1:
                rows.append(i)
        if len(rows) != n or np.linalg.cond(self.G[rows]) > 1e10:
            return None
        rows_arr = np.array(rows)
        return rows_arr, np.linalg.inv(self.G[rows_arr]), lam


@dataclass
class _MomentProblem:
    """ARP test of ``E[Y - a * theta] - X delta <= 0`` for some ``delta``; ``Y ~ N(mean, Sigma_Y)``.

    ``X`` may have zero columns (a single post period: no nuisance parameter). The statistic is
    ``eta = min_delta max_i (y_i - X_i delta) / sd_i``, the value of an LP whose dual vertex
    ``gamma`` gives ``eta = gamma'y``. Conditioning on ``gamma`` being optimal and on
    ``S = y - b gamma'y`` (``b = Sigma gamma / gamma'Sigma gamma``) leaves ``eta`` normal with
    standard deviation ``sigma_B = sqrt(gamma'Sigma gamma)``, truncated to the ``c`` for which
    ``gamma`` stays optimal at ``S + b c``, i.e. ``{c : exists delta, S - X delta <= c (sd - b)}``,
    an interval whose ends are two more LPs. The test rejects when ``eta / sigma_B`` exceeds the
    ``1 - alpha`` quantile of that truncated normal (floored at 0 with nuisance parameters, ARP's
    rule, and as R does in its two code paths).
    """

    Y: np.ndarray
    a: np.ndarray
    X: np.ndarray
    sigma_y: np.ndarray
    alpha: float
    lf_cv: float | None = None  # least-favourable critical value (C-LF hybrid) or None (ARP)
    kappa: float = 0.0
    sd: np.ndarray = field(init=False)
    _eta_lp: _CachedLP = field(init=False)
    _trunc: dict[bytes, tuple[np.ndarray, _CachedLP, _CachedLP]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.sd = np.sqrt(np.diag(self.sigma_y))
        if np.any(self.sd <= 0.0):
            raise HonestDiDError("a moment has zero variance; the restriction cannot be tested")
        k = self.X.shape[1] + 1
        # min eta  s.t.  -(sd * eta + X delta) <= -y
        self._eta_lp = _CachedLP(_basis_vector(k, 0), -np.column_stack([self.sd, self.X]))

    @property
    def floor_at_zero(self) -> bool:
        return self.X.shape[1] > 0

    @property
    def size(self) -> float:
        if self.lf_cv is None:
            return self.alpha
        return (self.alpha - self.kappa) / (1.0 - self.kappa)

    def _truncation(self, y: np.ndarray, gamma: np.ndarray) -> tuple[float, float]:
        key = np.round(gamma / gamma.max(), 10).tobytes()
        if key not in self._trunc:
            sg = self.sigma_y @ gamma
            b = sg / float(gamma @ sg)
            # variables (c, delta):  -(sd - b) c - X delta <= -S
            G = -np.column_stack([self.sd - b, self.X])
            k = G.shape[1]
            lo = _CachedLP(_basis_vector(k, 0), G)
            up = _CachedLP(-_basis_vector(k, 0), G)
            self._trunc[key] = (b, lo, up)
        b, lo, up = self._trunc[key]
        S = y - b * float(gamma @ y)
        vlo, _ = lo.solve(-S)
        neg_vup, _ = up.solve(-S)
        return vlo, -neg_vup

    def rejects(self, theta: float) -> bool:
        y = self.Y - self.a * theta
        eta, gamma = self._eta_lp.solve(-y)
        if self.lf_cv is not None and eta > self.lf_cv:
            return True
        if eta <= 0.0 and self.floor_at_zero:
            return False  # the critical value max(0, c) is never negative
        sigma_b = math.sqrt(max(float(gamma @ self.sigma_y @ gamma), 0.0))
        if sigma_b < 1e-10 * max(1.0, float(np.max(self.sd))):
            return eta > 0.0
        vlo, vup = self._truncation(y, gamma)
        if self.lf_cv is not None:
            vup = min(vup, self.lf_cv)
        z_lo, z_up, stat = vlo / sigma_b, vup / sigma_b, eta / sigma_b
        slack = 1e-7 * max(1.0, abs(stat))
        if not (z_lo - slack <= stat <= z_up + slack):
            raise HonestDiDError(
                f"ARP statistic {stat:.6g} outside its conditioning interval "
                f"[{z_lo:.6g}, {z_up:.6g}]"
            )
        cval = _truncnorm_quantile(1.0 - self.size, z_lo, z_up)
        if self.floor_at_zero:
            cval = max(0.0, cval)
        return stat > cval


def _least_favourable_cv(X: np.ndarray, draws: np.ndarray, sd: np.ndarray, kappa: float) -> float:
    """``1 - kappa`` quantile of ``min_delta max_i (xi_i - X_i delta) / sd_i`` over simulated xi.

    Each LP solved for one draw leaves an optimal basis, which is then tried on all remaining
    draws at once (optimal wherever its vertex is feasible), so HiGHS is called once per distinct
    basis rather than once per draw.
    """
    if X.shape[1] == 0:
        eta = np.max(draws / sd, axis=1)
        return float(np.quantile(eta, 1.0 - kappa))
    lp = _CachedLP(_basis_vector(X.shape[1] + 1, 0), -np.column_stack([sd, X]))
    eta = np.full(draws.shape[0], np.nan)
    while np.isnan(eta).any():
        todo = np.flatnonzero(np.isnan(eta))
        first = todo[0]
        eta[first] = lp.solve(-draws[first])[0]
        basis = lp.basis
        if basis is None:
            continue
        rows, g_inv, _ = basis
        rest = todo[1:]
        h = -draws[rest]  # (n_rest, m)
        x = h[:, rows] @ g_inv.T  # vertices G_B^{-1} h_B, one per draw
        excess = np.max(x @ lp.G.T - h, axis=1)
        tol = _FEAS_TOL * np.maximum(1.0, np.max(np.abs(h), axis=1))
        fits = excess <= tol
        eta[rest[fits]] = x[fits, 0]
    return float(np.quantile(eta, 1.0 - kappa))


def _moment_problem(
    beta: np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    l_vec: np.ndarray,
    A: np.ndarray,
    d: np.ndarray,
    rows: np.ndarray,
    alpha: float,
    hybrid: str,
    draws: np.ndarray | None,
) -> _MomentProblem:
    """Put ``A delta <= d`` in ARP form for ``H0: l'tau_post = theta`` (R's ``.ARP_computeCI``)."""
    gamma_inv = np.linalg.inv(_gamma_matrix(l_vec))
    a_gamma_inv = A[:, num_pre:] @ gamma_inv
    Y = (A @ beta - d)[rows]
    a = a_gamma_inv[rows, 0]
    X = a_gamma_inv[np.ix_(rows, np.arange(1, l_vec.size))]
    sigma_y = (A @ sigma @ A.T)[np.ix_(rows, rows)]
    if hybrid == "ARP":
        return _MomentProblem(Y, a, X, sigma_y, alpha)
    if hybrid == "LF":
        if draws is None:
            raise HonestDiDError("the LF hybrid needs simulated draws")
        kappa = alpha / 10.0
        xi = draws @ A[rows].T  # draws of A beta - E[A beta]
        lf_cv = _least_favourable_cv(X, xi, np.sqrt(np.diag(sigma_y)), kappa)
        return _MomentProblem(Y, a, X, sigma_y, alpha, lf_cv=lf_cv, kappa=kappa)
    raise HonestDiDError(f"unknown hybrid {hybrid!r}: use 'ARP' or 'LF'")


# --------------------------------------------------------------------------------------------
# Test inversion over a grid of theta
# --------------------------------------------------------------------------------------------


def _union_acceptor(problems: list[_MomentProblem]) -> Callable[[float], bool]:
    """theta is accepted when any of the tests accepts (union of the confidence sets)."""
    order = list(range(len(problems)))

    def accepts(theta: float) -> bool:
        for pos, idx in enumerate(order):
            if not problems[idx].rejects(theta):
                if pos:  # try the last accepting test first next time
                    order.insert(0, order.pop(pos))
                return True
        return False

    return accepts


def _invert(
    accepts: Callable[[float], bool],
    lb: float,
    ub: float,
    grid_points: int,
    refine_tol: float | None,
    expandable: bool,
    max_expansions: int = 4,
) -> tuple[float, float]:
    """Smallest and largest accepted theta on a grid over ``[lb, ub]``, optionally refined.

    With ``refine_tol``, each end is bisected between the outermost accepted grid point and its
    rejected neighbour until the bracket is shorter than ``refine_tol``; the accepted side is
    reported. When an end of the grid is accepted the set may extend beyond it: the grid is
    widened (``expandable``) or an error is raised. An automatic (``expandable``) grid on which
    nothing is accepted is searched again ten times finer before the set is reported empty.
    """
    if grid_points < 3:
        raise HonestDiDError("grid_points must be at least 3")
    for _ in range(max_expansions + 1):
        grid = np.linspace(lb, ub, grid_points)
        accepted = np.array([accepts(float(t)) for t in grid])
        if not accepted.any() and expandable:
            # Before calling the set empty, make sure it is not just narrower than the spacing.
            grid = np.linspace(lb, ub, 10 * grid_points)
            accepted = np.array([accepts(float(t)) for t in grid])
        if not accepted.any():
            return math.nan, math.nan
        if not (accepted[0] or accepted[-1]):
            break
        if not expandable:
            raise HonestDiDError(
                f"the confidence set reaches the end of the theta grid [{lb:.6g}, {ub:.6g}]; "
                "widen grid_lb/grid_ub"
            )
        centre, half = (lb + ub) / 2.0, (ub - lb) / 2.0
        lb, ub = centre - 2.0 * half, centre + 2.0 * half
    else:
        raise HonestDiDError(
            f"the confidence set still reaches the end of the theta grid after {max_expansions} "
            f"widenings (last grid [{lb:.6g}, {ub:.6g}]): it may be unbounded"
        )
    idx = np.flatnonzero(accepted)
    low, high = float(grid[idx[0]]), float(grid[idx[-1]])
    if refine_tol is not None:
        low = _bisect_edge(accepts, inside=low, outside=float(grid[idx[0] - 1]), tol=refine_tol)
        high = _bisect_edge(accepts, inside=high, outside=float(grid[idx[-1] + 1]), tol=refine_tol)
    return low, high


def _bisect_edge(
    accepts: Callable[[float], bool], inside: float, outside: float, tol: float
) -> float:
    while abs(outside - inside) > tol:
        mid = (inside + outside) / 2.0
        if accepts(mid):
            inside = mid
        else:
            outside = mid
    return inside


def _grid_bounds(
    centre_lo: float,
    centre_hi: float,
    sd_theta: float,
    grid_lb: float | None,
    grid_ub: float | None,
) -> tuple[float, float, bool]:
    if (grid_lb is None) != (grid_ub is None):
        raise HonestDiDError("give both grid_lb and grid_ub, or neither")
    if grid_lb is not None and grid_ub is not None:
        if not grid_lb < grid_ub:
            raise HonestDiDError("grid_lb must be below grid_ub")
        return float(grid_lb), float(grid_ub), False
    return centre_lo - 20.0 * sd_theta, centre_hi + 20.0 * sd_theta, True


def _normal_draws(sigma: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_draws, sigma.shape[0])) @ _psd_sqrt(sigma).T


# --------------------------------------------------------------------------------------------
# Public: original CI, conditional CIs
# --------------------------------------------------------------------------------------------


def original_ci(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """``l'beta_post -/+ z_{1-alpha/2} sqrt(l' Sigma_post l)``: CI under exact parallel trends."""
    beta_arr, sigma_arr, l_arr = _check_inputs(beta, sigma, num_pre, num_post, l_vec, alpha)
    est = float(l_arr @ beta_arr[num_pre:])
    half = _norm_quantile_two_sided(alpha) * _post_sd(sigma_arr, num_pre, l_arr)
    return est - half, est + half


def conditional_ci_sd(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    M: float,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    grid_points: int = 100,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    refine: bool = True,
) -> tuple[float, float]:
    """ARP conditional confidence set for ``l'tau_post`` under ``Delta^SD(M)`` (R: "Conditional").

    Only the moments that involve a post-period coefficient enter the test when ``num_post > 1``
    (R's ``postPeriodMomentsOnly``); with one post period all moments enter and there is no
    nuisance parameter. Returns ``(nan, nan)`` (with an ``EmptyConfidenceSetWarning``) when every
    theta is rejected. See :func:`conditional_ci_rm` for the grid arguments.
    """
    if M < 0:
        raise HonestDiDError(f"M must be >= 0, got {M}")
    beta_arr, sigma_arr, l_arr = _check_inputs(beta, sigma, num_pre, num_post, l_vec, alpha)
    A, d = _sd_constraints(num_pre, num_post, M)
    rows = _post_rows(A, num_pre) if num_post > 1 else np.arange(A.shape[0])
    problem = _moment_problem(beta_arr, sigma_arr, num_pre, l_arr, A, d, rows, alpha, "ARP", None)
    sd_theta = _post_sd(sigma_arr, num_pre, l_arr)
    # Centre the grid on the identified set given the post-period moments alone: it always exists
    # (the post coefficients are free), even when beta_pre itself breaks the restriction.
    post = _post_rows(A, num_pre)
    centre = _identified_set(beta_arr, num_pre, l_arr, A[post], d[post])
    if centre is None:  # cannot happen, see above
        raise HonestDiDError("the post-period moments of Delta^SD admit no violation")
    return _grid_confidence_set(
        [problem], centre, sd_theta, grid_points, grid_lb, grid_ub, refine, f"Delta^SD(M={M})"
    )


def conditional_ci_rm(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    Mbar: float,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    hybrid: str = "LF",
    seed: int = 0,
    n_draws: int = 1000,
    grid_points: int = 100,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    refine: bool = True,
) -> tuple[float, float]:
    """Confidence set for ``l'tau_post`` under ``Delta^RM(Mbar)`` (R: "C-LF" or "Conditional").

    ``hybrid="LF"`` is the conditional / least-favourable hybrid (R's default), whose first-stage
    critical value is the ``1 - alpha/10`` quantile of ``n_draws`` simulated statistics drawn with
    ``seed``; ``hybrid="ARP"`` is the pure conditional test. The set is the union over the
    ``2 * num_pre`` choices of the largest pre-period change and its sign.

    Grid: ``theta`` is tested at ``grid_points`` equally spaced values. By default the grid spans
    the identified set at ``beta`` widened by 20 standard errors of ``l'beta_post`` on each side
    (widened further if the set reaches an end), and each end of the set is refined by bisection to
    ``1e-4`` standard errors (``refine=True``). With ``grid_lb``/``grid_ub`` and ``refine=False``
    this is R's procedure: the smallest and largest accepted grid points are returned (an error is
    raised if an end of the grid is accepted).
    """
    if Mbar < 0:
        raise HonestDiDError(f"Mbar must be >= 0, got {Mbar}")
    if n_draws < 100:
        raise HonestDiDError("n_draws must be at least 100")
    beta_arr, sigma_arr, l_arr = _check_inputs(beta, sigma, num_pre, num_post, l_vec, alpha)
    draws = _normal_draws(sigma_arr, n_draws, seed) if hybrid == "LF" else None
    problems = []
    for A, d in _rm_polyhedra(num_pre, num_post, Mbar):
        rows = _post_rows(A, num_pre)
        if num_post == 1:  # R keeps only the post-period moments here and drops the others
            A, d = A[rows], d[rows]
            rows = np.arange(A.shape[0])
        problems.append(
            _moment_problem(beta_arr, sigma_arr, num_pre, l_arr, A, d, rows, alpha, hybrid, draws)
        )
    sd_theta = _post_sd(sigma_arr, num_pre, l_arr)
    id_set = identified_set_rm(beta_arr, num_pre, num_post, Mbar, l_arr)
    return _grid_confidence_set(
        problems, id_set, sd_theta, grid_points, grid_lb, grid_ub, refine, f"Delta^RM(Mbar={Mbar})"
    )


def _grid_confidence_set(
    problems: list[_MomentProblem],
    id_set: tuple[float, float],
    sd_theta: float,
    grid_points: int,
    grid_lb: float | None,
    grid_ub: float | None,
    refine: bool,
    what: str,
) -> tuple[float, float]:
    """The thetas that any of `problems` accepts, by grid inversion around the identified set
    `id_set` (see :func:`conditional_ci_rm` for the grid), ends refined to ``1e-4 * sd_theta`` if
    `refine`; an empty set warns (`EmptyConfidenceSetWarning`, at the caller of the public
    function) and is ``(nan, nan)``."""
    lb, ub, expandable = _grid_bounds(id_set[0], id_set[1], sd_theta, grid_lb, grid_ub)
    tol = 1e-4 * sd_theta if refine else None
    out = _invert(_union_acceptor(problems), lb, ub, grid_points, tol, expandable)
    if math.isnan(out[0]):
        warnings.warn(
            f"every theta was rejected under {what}: the confidence set is empty (the data reject "
            "the restriction); conf_low and conf_high are NaN",
            EmptyConfidenceSetWarning,
            stacklevel=3,
        )
    return out


# --------------------------------------------------------------------------------------------
# Public: the fixed-length confidence interval under Delta^SD(M)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FLCIResult:
    """An FLCI: ``v'beta -/+ half_length``, with ``v = (weights on beta_pre, l_vec)``."""

    conf_low: float
    conf_high: float
    half_length: float
    optimal_vec: np.ndarray
    max_bias: float  # worst-case bias of v'beta over Delta^SD(M)
    sd: float  # standard deviation of v'beta


@dataclass
class _FLCIProblem:
    """Affine estimators ``v'beta`` with ``v = (w, l)``, ``w`` free subject to trend invariance.

    Write the violation as ``delta = c * t + L e`` with ``e`` its second differences (``c`` a
    linear trend through the base period). ``v'delta`` does not depend on ``c`` iff
    ``w't_pre + l't_post = 0``; then its worst case over ``|e| <= M`` is ``M ||L'v||_1``.
    """

    sigma: np.ndarray
    num_pre: int
    l_vec: np.ndarray
    G: np.ndarray = field(init=False)  # L_pre'
    g0: np.ndarray = field(init=False)  # L_post' l
    t_pre: np.ndarray = field(init=False)
    trend_rhs: float = field(init=False)
    _cache: dict[float, tuple[float, np.ndarray]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        k, n_post = self.num_pre, self.l_vec.size
        n_full = k + n_post + 1
        # Rows: delta_base, slope into period 1, then second differences; inverse gives delta(c, e).
        basis = np.zeros((n_full, n_full))
        basis[0, k] = 1.0
        basis[1, k] = -1.0
        basis[1, k + 1] = 1.0
        for r in range(n_full - 2):
            basis[r + 2, r : r + 3] = (1.0, -2.0, 1.0)
        inverse = np.linalg.inv(basis)
        L = np.delete(inverse[:, 2:], k, axis=0)  # drop the base period row
        self.G = L[:k].T
        self.g0 = L[k:].T @ self.l_vec
        t_all = np.r_[np.arange(-k, 0), np.arange(1, n_post + 1)].astype(float)
        self.t_pre = t_all[:k]
        self.trend_rhs = -float(t_all[k:] @ self.l_vec)

    def variance(self, w: np.ndarray) -> float:
        v = np.r_[w, self.l_vec]
        return float(v @ self.sigma @ v)

    def max_bias(self, w: np.ndarray) -> float:
        return float(np.sum(np.abs(self.G @ w + self.g0)))

    def min_variance_weights(self) -> np.ndarray:
        k = self.num_pre
        s_pp = self.sigma[:k, :k]
        s_pl = self.sigma[:k, k:] @ self.l_vec
        kkt = np.block([[2.0 * s_pp, self.t_pre[:, None]], [self.t_pre[None, :], np.zeros((1, 1))]])
        rhs = np.r_[-2.0 * s_pl, self.trend_rhs]
        return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]

    def last_pre_weights(self) -> np.ndarray:
        """Weights on the last pre-period only (R's ``h0``): linear extrapolation from t = -1."""
        w = np.zeros(self.num_pre)
        w[-1] = self.trend_rhs / self.t_pre[-1]
        return w

    def min_bias_given_sd(self, h: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """``min ||G w + g0||_1`` s.t. trend invariance and ``var(v'beta) <= h^2`` (SLSQP)."""
        if h in self._cache:
            return self._cache[h]
        k, n_e = self.num_pre, self.G.shape[0]
        s_pp = self.sigma[:k, :k]
        s_pl = self.sigma[:k, k:] @ self.l_vec
        s_ll = float(self.l_vec @ self.sigma[k:, k:] @ self.l_vec)
        G, g0 = self.G, self.g0
        eye = np.eye(n_e)

        def objective(x: np.ndarray) -> float:
            return float(np.sum(x[k:]))

        def objective_grad(x: np.ndarray) -> np.ndarray:
            return np.r_[np.zeros(k), np.ones(n_e)]

        def abs_cons(x: np.ndarray) -> np.ndarray:
            r = G @ x[:k] + g0
            return np.r_[x[k:] - r, x[k:] + r]

        abs_jac = np.block([[-G, eye], [G, eye]])

        h2 = h * h  # the variance constraint is scaled to 1 - var / h^2 >= 0 for SLSQP

        def var_cons(x: np.ndarray) -> float:
            w = x[:k]
            return 1.0 - float(w @ s_pp @ w + 2.0 * w @ s_pl + s_ll) / h2

        def var_jac(x: np.ndarray) -> np.ndarray:
            return np.r_[-(2.0 * s_pp @ x[:k] + 2.0 * s_pl) / h2, np.zeros(n_e)]

        constraints = [
            {"type": "ineq", "fun": abs_cons, "jac": lambda x: abs_jac},
            {"type": "ineq", "fun": var_cons, "jac": var_jac},
            {
                "type": "eq",
                "fun": lambda x: np.array([self.t_pre @ x[:k] - self.trend_rhs]),
                "jac": lambda x: np.r_[self.t_pre, np.zeros(n_e)][None, :],
            },
        ]
        x = np.r_[start, np.abs(G @ start + g0)]
        # SLSQP's stopping rule is a relative change of the objective; at 1e-10 it can stall on a
        # line search at the optimum ("positive directional derivative"), so a stalled run is
        # restarted from where it stopped with a looser rule before giving up.
        messages = []
        for ftol in (1e-10, 1e-8):
            res = optimize.minimize(
                objective,
                x,
                jac=objective_grad,
                method="SLSQP",
                constraints=constraints,
                options={"ftol": ftol, "maxiter": 1000},
            )
            x = res.x
            messages.append(str(res.message))
            w = x[:k]
            scale = max(1.0, float(np.max(np.abs(w))))
            feasible = (
                var_cons(x) >= -1e-6  # relative to h^2
                and abs(self.t_pre @ w - self.trend_rhs) <= 1e-8 * scale
                and np.min(abs_cons(x)) >= -1e-8 * max(1.0, float(np.max(x[k:])))
            )
            if res.success and feasible:
                break
        else:
            raise HonestDiDError(
                f"FLCI bias minimisation failed at sd={h:.6g}: {'; '.join(messages)}"
            )
        out = (self.max_bias(w), w)
        self._cache[h] = out
        return out


def flci_sd(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    M: float,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> FLCIResult:
    """Optimal fixed-length confidence interval for ``l'tau_post`` under ``Delta^SD(M)``.

    Among affine estimators ``v'beta`` whose bias does not depend on a linear trend, minimise the
    half-length ``h * cv_alpha(M * maxbias / h)`` (``h`` the standard deviation, ``cv_alpha(b)`` the
    ``1 - alpha`` quantile of ``|N(b, 1)|``). As in R's ``findOptimalFLCI``, ``h`` is searched
    between the smallest attainable standard deviation and that of the estimator using the last
    pre-period alone, with the least worst-case bias found at each ``h``.
    """
    beta_arr, sigma_arr, l_arr = _check_inputs(beta, sigma, num_pre, num_post, l_vec, alpha)
    return _flci(_FLCIProblem(sigma_arr, int(num_pre), l_arr), beta_arr, M, alpha)


def _flci(prob: _FLCIProblem, beta: np.ndarray, M: float, alpha: float) -> FLCIResult:
    """:func:`flci_sd` on a prepared problem (its bias frontier is cached across values of M)."""
    if M < 0:
        raise HonestDiDError(f"M must be >= 0, got {M}")
    w_min = prob.min_variance_weights()
    h_min = math.sqrt(prob.variance(w_min))
    h_last = math.sqrt(prob.variance(prob.last_pre_weights()))

    def half_length(h: float) -> float:
        bias, _ = prob.min_bias_given_sd(h, w_min)
        return h * _folded_normal_quantile(1.0 - alpha, M * bias / h)

    if M == 0.0 or h_last <= h_min * (1.0 + 1e-9):
        w_star = w_min
    else:
        # The half-length is unimodal in h (R bisects its derivative); both ends are candidates.
        h_low = h_min * (1.0 + 1e-9)
        res = optimize.minimize_scalar(
            half_length, bounds=(h_low, h_last), method="bounded", options={"xatol": 1e-7 * h_last}
        )
        candidates = [(float(res.fun), float(res.x))]
        candidates += [(half_length(h), h) for h in (h_low, h_last)]
        _, h_star = min(candidates)
        w_star = prob.min_bias_given_sd(h_star, w_min)[1]
    bias = prob.max_bias(w_star)
    sd = math.sqrt(prob.variance(w_star))
    half = sd * _folded_normal_quantile(1.0 - alpha, M * bias / sd)
    v = np.r_[w_star, prob.l_vec]
    centre = float(v @ beta)
    return FLCIResult(centre - half, centre + half, half, v, M * bias, sd)


# --------------------------------------------------------------------------------------------
# Public: the data-driven upper bound for M and the tidy wrapper
# --------------------------------------------------------------------------------------------


def _event_study_arrays(
    n_times: int,
    estimates: Sequence[float] | np.ndarray,
    vcov: Sequence[Sequence[float]] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The estimates as a vector and their covariance as a matrix, checked against the number of
    event times that label them."""
    beta = np.asarray(estimates, dtype=float).ravel()
    sigma = np.asarray(vcov, dtype=float)
    if not (n_times == beta.size and sigma.shape == (beta.size, beta.size)):
        raise HonestDiDError(
            f"{n_times} event times, {beta.size} estimates and a {sigma.shape} covariance "
            "matrix do not match"
        )
    return beta, sigma


def prepare_event_study(
    event_times: Sequence[int],
    estimates: Sequence[float] | np.ndarray,
    vcov: Sequence[Sequence[float]] | np.ndarray,
    *,
    base_period: int = -1,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Order event-study coefficients into this layout: ``(beta, sigma, num_pre, num_post)``.

    ``event_times[i]`` labels ``estimates[i]`` and row/column ``i`` of ``vcov``, in any order. The
    base period must be absent (it was omitted from the regression) and the other event times must
    be consecutive integers around it, with at least one period on each side. Returns the
    coefficients sorted by event time, ``num_pre`` = number of event times below the base period.
    """
    times = np.asarray(event_times)
    beta, sigma = _event_study_arrays(times.size, estimates, vcov)
    if not np.all(times == np.round(times)):
        raise HonestDiDError(f"event times must be integers, got {times.tolist()}")
    times = times.astype(int)
    if base_period in times:
        raise HonestDiDError(f"the base period {base_period} must be omitted (normalised to 0)")
    order = np.argsort(times)
    times = times[order]
    expected = [t for t in range(int(times[0]), int(times[-1]) + 1) if t != base_period]
    if times.tolist() != expected:
        raise HonestDiDError(
            f"event times must be consecutive around the base period {base_period} with no gaps "
            f"or repeats; got {times.tolist()}"
        )
    num_pre = int(np.sum(times < base_period))
    num_post = int(np.sum(times > base_period))
    if num_pre < 1 or num_post < 1:
        raise HonestDiDError("need at least one pre-period and one post-period coefficient")
    return beta[order], sigma[np.ix_(order, order)], num_pre, num_post


def normalise_at_base(
    event_times: Sequence[int],
    estimates: Sequence[float] | np.ndarray,
    vcov: Sequence[Sequence[float]] | np.ndarray,
    *,
    base_period: int = -1,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Re-express an event study that estimated its base period relative to it.

    For estimators that omit no period (the imputation estimator's leads are mean first-stage
    residuals, not differences from e = -1), HonestDiD's layout needs ``b_e - b_base`` for every other
    e, with covariance ``A V A'`` (``A`` = identity minus the base column). Under a trend violation
    ``delta`` the imputation coefficients are ``delta_e - c`` (pre) and ``tau_e + delta_e - c``
    (post) for one constant ``c`` absorbed by the unit effects, so the differences are
    ``delta_e - delta_base`` and ``tau_e + delta_e - delta_base``: the structure HonestDiD assumes.
    Returns (event times without the base, normalised estimates, their covariance).
    """
    times = [int(t) for t in event_times]
    beta, sigma = _event_study_arrays(len(times), estimates, vcov)
    if times.count(base_period) != 1:
        raise HonestDiDError(
            f"to normalise at the base period {base_period} the event study must estimate it once; "
            f"event times {sorted(times)}"
        )
    b = times.index(base_period)
    keep = [i for i in range(len(times)) if i != b]
    a = np.eye(len(times))[keep]
    a[:, b] = -1.0
    return [times[i] for i in keep], a @ beta, a @ sigma @ a.T


def sd_upper_bound_mpre(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    *,
    alpha: float = 0.05,
) -> float:
    """Largest one-sided ``1 - alpha`` upper confidence bound of ``|second difference|`` over the
    pre-periods (base period included as 0), R's ``DeltaSD_upperBound_Mpre``."""
    if num_pre < 2:
        raise HonestDiDError("an upper bound for M needs at least 2 pre-period coefficients")
    beta_arr = np.asarray(beta, dtype=float)[:num_pre]
    sigma_arr = np.asarray(sigma, dtype=float)[:num_pre, :num_pre]
    A, _ = _sd_constraints(num_pre, 0, 0.0)
    diffs = A @ beta_arr
    se = np.sqrt(np.diag(A @ sigma_arr @ A.T))
    return float(np.max(diffs + stats.norm.ppf(1.0 - alpha) * se))


def honest_did(
    beta: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    num_pre: int,
    num_post: int,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    Mbar_grid: Sequence[float] = (0.5, 1.0, 2.0),
    M_grid: Sequence[float] | None = None,
    alpha: float = 0.05,
    grid_points: int = 100,
    rm_method: str = "C-LF",
    sd_methods: Sequence[str] = ("FLCI", "Conditional"),
    seed: int = 0,
    n_draws: int = 1000,
) -> pd.DataFrame:
    """Robust confidence sets under ``Delta^RM`` and ``Delta^SD``, one tidy row per set.

    Targets: with ``l_vec=None`` both ``first_post`` (``l = e_1``) and ``avg_post``
    (``l = 1/num_post``); otherwise the one target ``l_vec`` (named ``"l_vec"``).
    Rows: ``method`` in ``original`` / ``FLCI`` / ``Conditional`` / ``C-LF``; ``restriction`` in
    ``none`` / ``RM`` / ``SD``; ``Mbar_or_M`` (NaN for the original CI); ``target``; ``conf_low``,
    ``conf_high`` (NaN when the conditional test rejects every theta). ``M_grid=None`` uses
    ``0, 1/4, 1/2, 3/4, 1`` times :func:`sd_upper_bound_mpre` (``0`` alone with one pre period).
    ``rm_method`` is ``"C-LF"`` (hybrid, R's default) or ``"Conditional"``; ``sd_methods`` any of
    ``"FLCI"``, ``"Conditional"``. ``seed`` drives the C-LF simulation only.
    """
    beta_arr, sigma_arr, _ = _check_inputs(beta, sigma, num_pre, num_post, l_vec, alpha)
    if rm_method not in ("C-LF", "Conditional"):
        raise HonestDiDError(f"rm_method must be 'C-LF' or 'Conditional', got {rm_method!r}")
    bad = [m for m in sd_methods if m not in ("FLCI", "Conditional")]
    if bad:
        raise HonestDiDError(f"sd_methods must be drawn from 'FLCI', 'Conditional'; got {bad}")
    if any(m < 0 for m in Mbar_grid):
        raise HonestDiDError(f"Mbar_grid must be non-negative, got {list(Mbar_grid)}")
    if M_grid is None:
        if num_pre >= 2:
            m_ub = max(sd_upper_bound_mpre(beta_arr, sigma_arr, num_pre, alpha=alpha), 0.0)
            M_values = [float(x) for x in np.linspace(0.0, m_ub, 5)]
        else:
            M_values = [0.0]
    else:
        M_values = [float(m) for m in M_grid]
        if any(m < 0 for m in M_values):
            raise HonestDiDError(f"M_grid must be non-negative, got {M_values}")
    if l_vec is None:
        targets = {
            "first_post": _basis_vector(num_post, 0),
            "avg_post": np.full(num_post, 1.0 / num_post),
        }
    else:
        targets = {"l_vec": np.asarray(l_vec, dtype=float)}
    hybrid = "LF" if rm_method == "C-LF" else "ARP"
    rows: list[dict[str, object]] = []

    def add(
        method: str, restriction: str, bound: float, target: str, ci: tuple[float, float]
    ) -> None:
        rows.append(
            dict(zip(RESULT_COLUMNS, (method, restriction, bound, target, *ci), strict=True))
        )

    for name, lv in targets.items():
        add(
            "original",
            "none",
            math.nan,
            name,
            original_ci(beta_arr, sigma_arr, num_pre, num_post, l_vec=lv, alpha=alpha),
        )
        for mbar in Mbar_grid:
            ci = conditional_ci_rm(
                beta_arr,
                sigma_arr,
                num_pre,
                num_post,
                float(mbar),
                l_vec=lv,
                alpha=alpha,
                hybrid=hybrid,
                seed=seed,
                n_draws=n_draws,
                grid_points=grid_points,
            )
            add(rm_method, "RM", float(mbar), name, ci)
        flci_problem = _FLCIProblem(sigma_arr, int(num_pre), lv)
        for m in M_values:
            if "FLCI" in sd_methods:
                res = _flci(flci_problem, beta_arr, m, alpha)
                add("FLCI", "SD", m, name, (res.conf_low, res.conf_high))
            if "Conditional" in sd_methods:
                ci = conditional_ci_sd(
                    beta_arr,
                    sigma_arr,
                    num_pre,
                    num_post,
                    m,
                    l_vec=lv,
                    alpha=alpha,
                    grid_points=grid_points,
                )
                add("Conditional", "SD", m, name, ci)
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return out.astype({"Mbar_or_M": float, "conf_low": float, "conf_high": float})
