"""Tests of dualpilot.did.honestdid (Rambachan & Roth 2023 sensitivity analysis).

Independent checks, each with its tolerance:

1. Numbers computed by the R package HonestDiD on its bundled Benzarti-Carloni event study
   (`BCdata_EventStudy`: 4 pre-periods, 4 post-periods). The coefficients (10 significant digits)
   and R's results are those published in the test fixtures of HonestDiD.jl
   (github.com/eohne/HonestDiD.jl, test/reference.jl, "auto-generated reference values from the R
   HonestDiD package (BCdata_EventStudy)"):
   - original CI, upper bound of M: 1e-9;
   - ARP conditional sets (Delta^SD and Delta^RM) on R's own theta grids: 1e-8, i.e. the same grid
     points are accepted;
   - FLCI: 1e-3, because R computes the folded-normal quantile by simulation (10^6 draws), an error
     of about 1e-3 of the half-length; the C-LF hybrid: two grid steps, because its critical value
     is simulated with another random generator.
2. R HonestDiD 0.2.6's FLCI with its simulated quantile replaced by the exact one, published by
   diff-diff (github.com/igerber/diff-diff, benchmarks/data/honest_flci_golden.json): half-length to
   1e-7, centre to 1e-4 (the centre is flat in the weights near the optimum, and R's conic solver
   stops earlier than ours).
3. Independent re-implementations written here: R's no-nuisance ARP test (argmax conditioning,
   polyhedral bounds, scipy's truncnorm), the relative-magnitudes identified set as a plain LP, the
   conditioning interval by solving the LP at shifted points, the least-favourable statistic by one
   linprog per draw, and scipy.stats for the folded and truncated normal quantiles.
4. Invariants from the brief.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from dualpilot.did import honestdid as hd

# ------------------------------------------------------------------------------------------------
# Benzarti & Carloni (2019) event study as bundled with R HonestDiD (BCdata_EventStudy)
# ------------------------------------------------------------------------------------------------

BC_BETA = np.array(
    [0.006696351804, 0.02934503369, -0.006472972222, 0.0730149895]
    + [0.1959611177, 0.3120639026, 0.2395415455, 0.1260425001]
)
BC_SIGMA = np.array(
    [
        [8.428358124e-4, 4.768686777e-4, 2.618051076e-4, 2.354220342e-4,
         1.676371467e-4, 1.128707663e-4, 1.992816215e-5, -1.368265366e-4],
        [4.768686777e-4, 6.425420288e-4, 3.987425007e-4, 2.435515198e-4,
         2.201960306e-4, 1.804591157e-4, 3.84376508e-5, -2.960421989e-5],
        [2.618051076e-4, 3.987425007e-4, 5.229949602e-4, 2.11768609e-4,
         1.840722252e-4, 1.45852784e-4, 7.005197403e-5, 5.952994979e-5],
        [2.354220342e-4, 2.435515198e-4, 2.11768609e-4, 3.089595411e-4,
         1.197866077e-4, 1.334081317e-4, 1.016335009e-4, 1.079051726e-4],
        [1.676371467e-4, 2.201960306e-4, 1.840722252e-4, 1.197866077e-4,
         3.59970436e-4, 2.478818642e-4, 1.749579242e-4, 1.654256921e-4],
        [1.128707663e-4, 1.804591157e-4, 1.45852784e-4, 1.334081317e-4,
         2.478818642e-4, 4.263949813e-4, 2.171437809e-4, 2.892747871e-4],
        [1.992816215e-5, 3.84376508e-5, 7.005197403e-5, 1.016335009e-4,
         1.749579242e-4, 2.171437809e-4, 4.886697861e-4, 3.805322049e-4],
        [-1.368265366e-4, -2.960421989e-5, 5.952994979e-5, 1.079051726e-4,
         1.654256921e-4, 2.892747871e-4, 3.805322049e-4, 7.61739444e-4],
    ]
)  # fmt: skip
BC_PRE, BC_POST = 4, 4
BC_SD1 = math.sqrt(BC_SIGMA[4, 4])  # standard error of the first post-period coefficient


def r_sd_grid(M: float, l_vec: np.ndarray) -> tuple[float, float]:
    """R's default theta grid for the Delta^SD conditional test: ID set at beta = 0, +/- 20 se."""
    lo, hi = hd.identified_set_sd(np.zeros(8), BC_PRE, BC_POST, M, l_vec=l_vec)
    se = math.sqrt(l_vec @ BC_SIGMA[4:, 4:] @ l_vec)
    return lo - 20 * se, hi + 20 * se


# ------------------------------------------------------------------------------------------------
# 1. Against R on the Benzarti-Carloni data
# ------------------------------------------------------------------------------------------------


def test_original_ci_matches_r_and_is_beta_pm_z_se():
    lo, hi = hd.original_ci(BC_BETA, BC_SIGMA, BC_PRE, BC_POST)
    assert lo == pytest.approx(0.15877494280765, abs=1e-9)
    assert hi == pytest.approx(0.233147292681241, abs=1e-9)
    assert (lo + hi) / 2 == pytest.approx(BC_BETA[4], abs=1e-12)
    assert (hi - lo) / 2 == pytest.approx(stats.norm.ppf(0.975) * BC_SD1, rel=1e-12)
    l_avg = np.full(4, 0.25)
    lo, hi = hd.original_ci(BC_BETA, BC_SIGMA, BC_PRE, BC_POST, l_vec=l_avg, alpha=0.1)
    se = math.sqrt(l_avg @ BC_SIGMA[4:, 4:] @ l_avg)
    assert (lo, hi) == pytest.approx(
        (
            BC_BETA[4:].mean() - 1.6448536269514722 * se,
            BC_BETA[4:].mean() + 1.6448536269514722 * se,
        ),
        abs=1e-12,
    )


def test_upper_bound_for_m_matches_r():
    ub = hd.sd_upper_bound_mpre(BC_BETA, BC_SIGMA, BC_PRE)
    assert ub == pytest.approx(0.202169869297069, abs=1e-9)


@pytest.mark.parametrize(
    ("M", "r_low", "r_high", "r_half"),
    [
        (0.0, 0.131411316, 0.2161696482, 0.04237916612),
        (0.1, 0.1194440001, 0.4185082143, 0.1495321071),
        (0.2, 0.01944400015, 0.5185082143, 0.2495321071),
    ],
)
def test_flci_matches_r_on_bc_data(M, r_low, r_high, r_half):
    res = hd.flci_sd(BC_BETA, BC_SIGMA, BC_PRE, BC_POST, M)
    assert res.conf_low == pytest.approx(r_low, abs=1e-3)
    assert res.conf_high == pytest.approx(r_high, abs=1e-3)
    assert res.half_length == pytest.approx(r_half, abs=1e-3)
    if M == 0.1:  # R's optimal weights: extrapolate from the last pre-period only
        r_vec = [2.861389194e-12, -9.074547384e-12, 2.517812476e-11, 1, 1, 0, 0, 0]
        np.testing.assert_allclose(res.optimal_vec, r_vec, atol=1e-3)


def test_conditional_sd_matches_r_grid_for_grid():
    e1 = hd._basis_vector(4, 0)
    lb, ub = r_sd_grid(0.1, e1)
    ci = hd.conditional_ci_sd(
        BC_BETA, BC_SIGMA, BC_PRE, BC_POST, 0.1, grid_points=200, grid_lb=lb, grid_ub=ub,
        refine=False,
    )  # fmt: skip
    assert ci == pytest.approx((0.1228761035, 0.4168150178), abs=1e-8)


@pytest.mark.parametrize(
    ("M", "r_low", "r_high"),
    [
        (0.0, 0.2100501789, 0.3277998271),
        (0.1, 0.1195044811, 0.4180257149),
        (0.2, 0.02030132213, 0.5179737331),
    ],
)
def test_conditional_sd_matches_r_sensitivity_results(M, r_low, r_high):
    """R: createSensitivityResults(method = "Conditional", Mvec = c(0, 0.1, 0.2)), 1000 points."""
    lb, ub = r_sd_grid(M, hd._basis_vector(4, 0))
    ci = hd.conditional_ci_sd(
        BC_BETA, BC_SIGMA, BC_PRE, BC_POST, M, grid_points=1000, grid_lb=lb, grid_ub=ub,
        refine=False,
    )  # fmt: skip
    assert ci == pytest.approx((r_low, r_high), abs=1e-8)


def test_conditional_sd_average_effect_matches_r_lower_end():
    """R (gridPoints = 100) accepted up to the top of its grid; the same grid, extended upwards by
    whole steps, must give R's lower end."""
    l_avg = np.full(4, 0.25)
    lb, ub = r_sd_grid(0.1, l_avg)
    step = (ub - lb) / 99
    low, high = hd.conditional_ci_sd(
        BC_BETA, BC_SIGMA, BC_PRE, BC_POST, 0.1, l_vec=l_avg, grid_points=300, grid_lb=lb,
        grid_ub=lb + 299 * step, refine=False,
    )  # fmt: skip
    assert low == pytest.approx(-0.1809607769, abs=1e-8)
    assert high > ub


def test_conditional_rm_matches_r_grid_for_grid():
    """R: computeConditionalCS_DeltaRM(Mbar = 1, hybrid_flag = "ARP", gridPoints = 200)."""
    ci = hd.conditional_ci_rm(
        BC_BETA, BC_SIGMA, BC_PRE, BC_POST, 1.0, hybrid="ARP", grid_points=200,
        grid_lb=-20 * BC_SD1, grid_ub=20 * BC_SD1, refine=False,
    )  # fmt: skip
    assert ci == pytest.approx((0.07055244362, 0.3184394077), abs=1e-8)


def test_conditional_rm_lf_hybrid_close_to_r():
    """R's C-LF set for Mbar = 1 (200 points); the simulated critical value differs: 2 steps."""
    step = 40 * BC_SD1 / 199
    ci = hd.conditional_ci_rm(
        BC_BETA, BC_SIGMA, BC_PRE, BC_POST, 1.0, hybrid="LF", seed=0, grid_points=200,
        grid_lb=-20 * BC_SD1, grid_ub=20 * BC_SD1, refine=False,
    )  # fmt: skip
    assert ci == pytest.approx((0.07055244362, 0.3184394077), abs=2 * step)


# ------------------------------------------------------------------------------------------------
# 2. Against R's FLCI with the exact folded-normal quantile (diff-diff goldens)
# ------------------------------------------------------------------------------------------------


def golden_case(num_pre: int, num_post: int, rho: float, average: bool):
    n = num_pre + num_post
    idx = np.arange(n)
    sigma = rho ** np.abs(idx[:, None] - idx[None, :]) * 0.01
    beta = np.r_[np.resize([1.0, 0.0], num_pre), np.linspace(1.2, 1.7, num_post)]
    l_vec = np.full(num_post, 1 / num_post) if average else hd._basis_vector(num_post, 0)
    return beta, sigma, l_vec


FLCI_GOLDEN = [  # (num_pre, num_post, rho, average, M, centre, half_length)
    (3, 1, 0.0, False, 0.0, 1.48575528987607, 0.202875546401568),
    (3, 1, 0.0, False, 0.05, 1.52634895987866, 0.250459332503154),
    (3, 1, 0.0, False, 0.2, 2.03478246906161, 0.431217243166294),
    (3, 1, 0.0, False, 0.5, 2.19999999993086, 0.732617430726547),
    (3, 1, 0.5, False, 0.05, 1.06873476216774, 0.271013845132539),
    (3, 1, 0.5, False, 0.1, 1.19412747799138, 0.351476184950717),
    (3, 4, 0.5, False, 0.2, 2.00143608768822, 0.484211636465734),
    (3, 4, 0.0, True, 0.0, 2.16428576305853, 0.163563493960891),
    (3, 4, 0.0, True, 0.05, 2.203036571692, 0.476585989561021),
    (3, 4, 0.0, True, 0.2, 2.65977452809088, 1.36906552502129),
]


@pytest.mark.parametrize(
    ("num_pre", "num_post", "rho", "average", "M", "centre", "half"), FLCI_GOLDEN
)
def test_flci_matches_r_with_exact_quantile(num_pre, num_post, rho, average, M, centre, half):
    beta, sigma, l_vec = golden_case(num_pre, num_post, rho, average)
    res = hd.flci_sd(beta, sigma, num_pre, num_post, M, l_vec=l_vec)
    assert res.half_length == pytest.approx(half, abs=1e-7)
    assert (res.conf_low + res.conf_high) / 2 == pytest.approx(centre, abs=1e-4)
    # the reported parts are consistent: half-length = sd * cv(bias / sd)
    assert res.half_length == pytest.approx(
        res.sd * stats.foldnorm.ppf(0.95, res.max_bias / res.sd), rel=1e-8
    )


# ------------------------------------------------------------------------------------------------
# 3. Against independent re-implementations
# ------------------------------------------------------------------------------------------------


def r_no_nuisance_rejects(y, sigma, A, d, alpha):
    """R HonestDiD's .testInIdentifiedSet: condition on the location of the largest moment."""
    sd = np.sqrt(np.diag(A @ sigma @ A.T))
    At, dt = A / sd[:, None], d / sd
    moments = At @ y - dt
    j = int(np.argmax(moments))
    gamma = At[j]
    Abar, dbar = At - At[j], dt - dt[j]
    sigmabar = math.sqrt(gamma @ sigma @ gamma)
    c = sigma @ gamma / (gamma @ sigma @ gamma)
    z = y - c * (gamma @ y)
    Ac, resid = Abar @ c, dbar - Abar @ z
    vlo = np.max(resid[Ac < -1e-12] / Ac[Ac < -1e-12], initial=-np.inf)
    vup = np.min(resid[Ac > 1e-12] / Ac[Ac > 1e-12], initial=np.inf)
    mu = dt[j]
    crit = stats.truncnorm.ppf(
        1 - alpha, (vlo - mu) / sigmabar, (vup - mu) / sigmabar, loc=mu, scale=sigmabar
    )
    return moments[j] + mu > crit


def test_single_post_period_conditional_sd_matches_polyhedral_test():
    """num_post = 1: no nuisance parameter; every SD moment enters, as in R."""
    beta, sigma = BC_BETA[:5], BC_SIGMA[:5, :5]
    M = 0.05
    A, d = hd._sd_constraints(4, 1, M)
    grid = np.linspace(0.0, 0.5, 101)
    accepted = [not r_no_nuisance_rejects(beta - t * np.eye(5)[4], sigma, A, d, 0.05) for t in grid]
    expected = (grid[np.flatnonzero(accepted)[0]], grid[np.flatnonzero(accepted)[-1]])
    ci = hd.conditional_ci_sd(
        beta, sigma, 4, 1, M, grid_points=101, grid_lb=0.0, grid_ub=0.5, refine=False
    )
    assert ci == pytest.approx(expected, abs=1e-12)


def test_truncation_interval_is_where_the_dual_vertex_stays_optimal():
    rng = np.random.default_rng(5)
    A, d = hd._rm_constraints(3, 3, 1.5, 1, True)
    rows = hd._post_rows(A, 3)
    root = rng.standard_normal((6, 6)) * 0.1
    sigma = root @ root.T + 0.01 * np.eye(6)
    beta = rng.standard_normal(6) * 0.2
    prob = hd._moment_problem(beta, sigma, 3, np.full(3, 1 / 3), A, d, rows, 0.05, "ARP", None)
    W = np.column_stack([prob.sd, prob.X])
    k = W.shape[1]

    def lp_value(y):
        res = optimize.linprog(
            np.eye(k)[0], A_ub=-W, b_ub=-y, bounds=[(None, None)] * k, method="highs"
        )
        return res.fun

    checked = 0
    for theta in np.linspace(-1.0, 1.0, 9):
        y = prob.Y - prob.a * theta
        eta, gamma = prob._eta_lp.solve(-y)
        assert eta == pytest.approx(lp_value(y), abs=1e-10)
        vlo, vup = prob._truncation(y, gamma)
        assert vlo <= eta + 1e-10 <= vup + 2e-10
        b = prob.sigma_y @ gamma / (gamma @ prob.sigma_y @ gamma)
        S = y - b * (gamma @ y)
        for end, inward in ((vlo, 1.0), (vup, -1.0)):
            if not np.isfinite(end):
                continue
            eps = 1e-4 * max(1.0, abs(end))
            inside, outside = end + inward * eps, end - inward * eps
            # gamma optimal at S + b c  <=>  LP value equals c (it is never below c); HiGHS
            # solves to 1e-7
            assert lp_value(S + b * inside) == pytest.approx(inside, abs=1e-7)
            assert lp_value(S + b * outside) > outside + 1e-7
            checked += 1
    assert checked >= 4


def test_least_favourable_cv_equals_one_lp_per_draw():
    rng = np.random.default_rng(11)
    A, _ = hd._rm_constraints(3, 4, 1.0, 2, False)
    rows = hd._post_rows(A, 3)
    gamma_inv = np.linalg.inv(hd._gamma_matrix(np.full(4, 0.25)))
    X = (A[:, 3:] @ gamma_inv)[rows, 1:]
    root = rng.standard_normal((7, 7)) * 0.05
    draws = rng.standard_normal((300, 7)) @ root.T @ A[rows].T
    sd = np.sqrt(np.diag(A[rows] @ root @ root.T @ A[rows].T))
    W = np.column_stack([sd, X])
    direct = [
        optimize.linprog(
            np.eye(W.shape[1])[0], A_ub=-W, b_ub=-xi, bounds=[(None, None)] * W.shape[1],
            method="highs",
        ).fun
        for xi in draws
    ]  # fmt: skip
    cv = hd._least_favourable_cv(X, draws, sd, 0.005)
    assert cv == pytest.approx(np.quantile(direct, 0.995), abs=1e-9)


def brute_rm_identified_set(beta_pre, beta_post, Mbar, l_vec):
    """|delta_t - delta_{t-1}| <= Mbar * max pre-period |change| for the post-period changes."""
    n_post = beta_post.size
    biggest = np.max(np.abs(np.diff(np.r_[beta_pre, 0.0])))
    D = np.eye(n_post) - np.eye(n_post, k=-1)  # delta_0 = 0 at the base period
    A_ub = np.vstack([D, -D])
    b_ub = np.full(2 * n_post, Mbar * biggest)
    free = [(None, None)] * n_post
    hi = optimize.linprog(-l_vec, A_ub=A_ub, b_ub=b_ub, bounds=free, method="highs")
    lo = optimize.linprog(l_vec, A_ub=A_ub, b_ub=b_ub, bounds=free, method="highs")
    theta = l_vec @ beta_post
    return theta + hi.fun, theta - lo.fun


@pytest.mark.parametrize("Mbar", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("l_vec", [[1.0, 0, 0], [0, 0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
def test_rm_identified_set_matches_plain_lp(Mbar, l_vec):
    beta = np.array([-0.30, -0.05, -0.25, -0.20, 1.0, 1.2, 1.4])
    got = hd.identified_set_rm(beta, 4, 3, Mbar, l_vec=l_vec)
    want = brute_rm_identified_set(beta[:4], beta[4:], Mbar, np.asarray(l_vec))
    assert got == pytest.approx(want, abs=1e-9)


def test_sd_identified_set_with_linear_pre_trend_is_the_extrapolation():
    beta = np.array([-0.3, -0.2, -0.1, 1.0, 1.5])  # slope 0.1 through the base period
    assert hd.identified_set_sd(beta, 3, 2, 0.0) == pytest.approx((0.9, 0.9), abs=1e-10)
    lo, hi = hd.identified_set_sd(beta, 3, 2, 0.05)
    assert (lo, hi) == pytest.approx((0.85, 0.95), abs=1e-10)


@pytest.mark.parametrize(("lo", "hi"), [(-np.inf, 1.0), (0.5, 3.0), (4.0, np.inf), (8.0, 9.0)])
@pytest.mark.parametrize("p", [0.05, 0.5, 0.95])
def test_truncated_normal_quantile_matches_scipy(lo, hi, p):
    assert hd._truncnorm_quantile(p, lo, hi) == pytest.approx(
        stats.truncnorm.ppf(p, lo, hi), abs=1e-9
    )
    assert hd._truncnorm_quantile(p, -hi, -lo) == pytest.approx(
        stats.truncnorm.ppf(p, -hi, -lo), abs=1e-9
    )


@pytest.mark.parametrize("mu", [0.0, 0.3, 2.0, 25.0])
def test_folded_normal_quantile_matches_scipy(mu):
    assert hd._folded_normal_quantile(0.95, mu) == pytest.approx(stats.foldnorm.ppf(0.95, mu))


# ------------------------------------------------------------------------------------------------
# 4. Invariants and the tidy wrapper
# ------------------------------------------------------------------------------------------------


def synthetic_event_study(num_pre: int = 3, num_post: int = 4, pre_trend: float = 0.0, seed=0):
    rng = np.random.default_rng(seed)
    n = num_pre + num_post
    idx = np.arange(n)
    se = 0.02 + 0.01 * rng.random(n)
    sigma = 0.5 ** np.abs(idx[:, None] - idx[None, :]) * np.outer(se, se)
    times = np.r_[np.arange(-num_pre - 1, -1), np.arange(num_post)]
    beta = pre_trend * (times + 1) + np.where(times >= 0, 0.1, 0.0)
    return beta + rng.multivariate_normal(np.zeros(n), sigma), sigma


@pytest.fixture(scope="module")
def tidy():
    beta, sigma = synthetic_event_study()
    return beta, sigma, hd.honest_did(beta, sigma, 3, 4, M_grid=(0.0, 0.02, 0.05), seed=1)


def test_tidy_output_layout(tidy):
    _, _, out = tidy
    assert list(out.columns) == hd.RESULT_COLUMNS
    assert set(out["target"]) == {"first_post", "avg_post"}
    counts = out.groupby(["target", "method"]).size().to_dict()
    for target in ("first_post", "avg_post"):
        assert counts[(target, "original")] == 1
        assert counts[(target, "C-LF")] == 3
        assert counts[(target, "FLCI")] == 3
        assert counts[(target, "Conditional")] == 3
    assert out["restriction"].isin(["none", "RM", "SD"]).all()
    assert out["Mbar_or_M"].isna().sum() == 2
    assert (out["conf_low"] < out["conf_high"]).all()


def test_tidy_original_rows_are_beta_pm_z_se(tidy):
    beta, sigma, out = tidy
    z = stats.norm.ppf(0.975)
    row = out[(out.method == "original") & (out.target == "first_post")].iloc[0]
    assert (row.conf_low, row.conf_high) == pytest.approx(
        (beta[3] - z * math.sqrt(sigma[3, 3]), beta[3] + z * math.sqrt(sigma[3, 3])), abs=1e-12
    )
    lv = np.full(4, 0.25)
    se = math.sqrt(lv @ sigma[3:, 3:] @ lv)
    row = out[(out.method == "original") & (out.target == "avg_post")].iloc[0]
    assert (row.conf_low, row.conf_high) == pytest.approx(
        (beta[3:].mean() - z * se, beta[3:].mean() + z * se), abs=1e-12
    )


@pytest.mark.parametrize(
    ("method", "restriction"), [("C-LF", "RM"), ("FLCI", "SD"), ("Conditional", "SD")]
)
def test_sets_widen_weakly_with_the_bound(tidy, method, restriction):
    _, _, out = tidy
    for _, rows in out[(out.method == method) & (out.restriction == restriction)].groupby("target"):
        rows = rows.sort_values("Mbar_or_M")
        width = (rows.conf_high - rows.conf_low).to_numpy()
        assert np.all(np.diff(width) >= -1e-9)
        if restriction == "RM":  # nested as well
            assert np.all(np.diff(rows.conf_low.to_numpy()) <= 1e-9)
            assert np.all(np.diff(rows.conf_high.to_numpy()) >= -1e-9)


@pytest.mark.parametrize("hybrid", ["LF", "ARP"])
@pytest.mark.parametrize("l_vec", [None, np.full(4, 0.25)])
def test_rm_with_mbar_zero_contains_the_point_estimate(hybrid, l_vec):
    beta, sigma = synthetic_event_study(pre_trend=0.03, seed=3)
    lo, hi = hd.conditional_ci_rm(beta, sigma, 3, 4, 0.0, l_vec=l_vec, hybrid=hybrid)
    estimate = beta[3] if l_vec is None else beta[3:].mean()
    assert lo <= estimate <= hi


@pytest.mark.parametrize("l_vec", [None, np.full(4, 0.25)])
def test_sd_with_m_zero_and_no_pre_trend_contains_the_point_estimate(l_vec):
    beta, sigma = synthetic_event_study(seed=4)
    beta[:3] = 0.0  # no pre-trend at all
    estimate = beta[3] if l_vec is None else beta[3:].mean()
    flci = hd.flci_sd(beta, sigma, 3, 4, 0.0, l_vec=l_vec)
    assert flci.conf_low <= estimate <= flci.conf_high
    lo, hi = hd.conditional_ci_sd(beta, sigma, 3, 4, 0.0, l_vec=l_vec)
    assert lo <= estimate <= hi


def test_refined_ends_are_inside_the_coarse_grid_neighbours():
    """The refined ends lie between R-style grid ends and their rejected neighbours."""
    beta, sigma = synthetic_event_study(seed=6)
    fine = hd.conditional_ci_rm(beta, sigma, 3, 4, 1.0, hybrid="ARP")
    lb, ub = fine[0] - 0.3, fine[1] + 0.3
    coarse = hd.conditional_ci_rm(
        beta, sigma, 3, 4, 1.0, hybrid="ARP", grid_points=61, grid_lb=lb, grid_ub=ub,
        refine=False,
    )  # fmt: skip
    step = (ub - lb) / 60
    assert coarse[0] - step <= fine[0] <= coarse[0] + 1e-12
    assert coarse[1] - 1e-12 <= fine[1] <= coarse[1] + step


def test_same_seed_same_result_and_seed_only_moves_lf_slightly():
    beta, sigma = synthetic_event_study(seed=7)
    a = hd.conditional_ci_rm(beta, sigma, 3, 4, 1.0, seed=3)
    b = hd.conditional_ci_rm(beta, sigma, 3, 4, 1.0, seed=3)
    c = hd.conditional_ci_rm(beta, sigma, 3, 4, 1.0, seed=4)
    assert a == b
    assert c == pytest.approx(a, abs=0.25 * math.sqrt(sigma[3, 3]))


def test_explicit_l_vec_gives_one_target():
    beta, sigma = synthetic_event_study(seed=8)
    out = hd.honest_did(
        beta, sigma, 3, 4, l_vec=[0, 1, 0, 0], Mbar_grid=(1.0,), M_grid=(0.0,),
        rm_method="Conditional", sd_methods=("FLCI",),
    )  # fmt: skip
    assert out["target"].tolist() == ["l_vec"] * 3
    assert out["method"].tolist() == ["original", "Conditional", "FLCI"]
    assert out.iloc[0].conf_low == pytest.approx(
        beta[4] - 1.959963984540054 * math.sqrt(sigma[4, 4])
    )


def test_default_m_grid_spans_zero_to_the_pre_period_bound():
    beta, sigma = synthetic_event_study(seed=9)
    out = hd.honest_did(beta, sigma, 3, 4, Mbar_grid=(), sd_methods=("FLCI",), l_vec=[1, 0, 0, 0])
    m_ub = hd.sd_upper_bound_mpre(beta, sigma, 3)
    np.testing.assert_allclose(
        out.loc[out.method == "FLCI", "Mbar_or_M"], np.linspace(0, m_ub, 5), rtol=1e-12
    )


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_pre": 0}, "num_pre"),
        ({"num_post": 5}, "beta has 7 entries"),
        ({"sigma": -np.eye(7)}, "positive semi-definite"),
        ({"sigma": np.triu(np.ones((7, 7))) * 0.01 + np.eye(7) * 0.01}, "symmetric"),
        ({"l_vec": [0, 0, 0, 0]}, "all zeros"),
        ({"l_vec": [1, 0]}, "l_vec must hold 4"),
        ({"alpha": 1.5}, "alpha"),
        ({"beta": [np.nan] * 7}, "finite"),
    ],
)
def test_invalid_inputs_raise(kwargs, message):
    beta, sigma = synthetic_event_study()
    args = {"beta": beta, "sigma": sigma, "num_pre": 3, "num_post": 4} | kwargs
    l_vec = args.pop("l_vec", None)
    alpha = args.pop("alpha", 0.05)
    with pytest.raises(hd.HonestDiDError, match=message):
        hd.original_ci(**args, l_vec=l_vec, alpha=alpha)


def test_bad_options_raise():
    beta, sigma = synthetic_event_study()
    with pytest.raises(hd.HonestDiDError, match="rm_method"):
        hd.honest_did(beta, sigma, 3, 4, rm_method="FLCI")
    with pytest.raises(hd.HonestDiDError, match="sd_methods"):
        hd.honest_did(beta, sigma, 3, 4, sd_methods=("C-F",))
    with pytest.raises(hd.HonestDiDError, match="Mbar must be >= 0"):
        hd.conditional_ci_rm(beta, sigma, 3, 4, -1.0)
    with pytest.raises(hd.HonestDiDError, match="both grid_lb and grid_ub"):
        hd.conditional_ci_sd(beta, sigma, 3, 4, 0.1, grid_lb=0.0)
    with pytest.raises(hd.HonestDiDError, match="at least 2 pre-period"):
        hd.sd_upper_bound_mpre(beta, sigma, 1)


def test_grid_that_cuts_the_set_raises():
    with pytest.raises(hd.HonestDiDError, match="end of the theta grid"):
        hd.conditional_ci_rm(
            BC_BETA, BC_SIGMA, BC_PRE, BC_POST, 1.0, hybrid="ARP", grid_points=50,
            grid_lb=0.1, grid_ub=0.2, refine=False,
        )  # fmt: skip


def test_rejected_restriction_gives_an_empty_set_with_a_warning():
    """A strongly curved pre-trend is incompatible with Delta^SD(0) in the single-post case."""
    beta = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    sigma = np.eye(5) * 1e-4
    with pytest.warns(hd.EmptyConfidenceSetWarning):
        ci = hd.conditional_ci_sd(beta, sigma, 4, 1, 0.0)
    assert all(math.isnan(x) for x in ci)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hd.EmptyConfidenceSetWarning)
        out = hd.honest_did(
            beta, sigma, 4, 1, Mbar_grid=(), M_grid=(0.0,), sd_methods=("Conditional",)
        )
    assert isinstance(out, pd.DataFrame)
    assert out.loc[out.method == "Conditional", ["conf_low", "conf_high"]].isna().all(axis=None)


def test_prepare_event_study_sorts_and_drops_nothing_else():
    times = [2, -3, 0, -2, 1]
    est = [0.2, -0.3, 0.0, -0.2, 0.1]
    vcov = np.diag([2.0, -3.0, 0.5, -2.0, 1.0]) ** 2
    beta, sigma, num_pre, num_post = hd.prepare_event_study(times, est, vcov)
    assert (num_pre, num_post) == (2, 3)
    np.testing.assert_array_equal(beta, [-0.3, -0.2, 0.0, 0.1, 0.2])
    np.testing.assert_array_equal(np.sqrt(np.diag(sigma)), [3.0, 2.0, 0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    ("times", "message"),
    [([-3, -1, 0], "base period -1 must be omitted"), ([-4, -2, 0, 1], "consecutive"),
     ([0, 1, 2], "at least one pre-period"), ([-2, -2, 0], "consecutive")],
)  # fmt: skip
def test_prepare_event_study_rejects_bad_layouts(times, message):
    n = len(times)
    with pytest.raises(hd.HonestDiDError, match=message):
        hd.prepare_event_study(times, np.zeros(n), np.eye(n))


def test_normalise_at_base_differences_with_the_joint_covariance():
    # an event study that estimated its base period (the imputation leads), in any order
    times = [0, -1, -3, 1, -2]
    est = np.array([0.5, 0.1, -0.2, 0.7, 0.05])
    rng = np.random.default_rng(3)
    root = rng.normal(size=(5, 5))
    vcov = root @ root.T
    kept, beta, sigma = hd.normalise_at_base(times, est, vcov, base_period=-1)
    assert kept == [0, -3, 1, -2]
    np.testing.assert_allclose(beta, est[[0, 2, 3, 4]] - est[1], rtol=0, atol=1e-15)
    # Var(b_s - b_base, b_t - b_base) written out entry by entry
    idx = [0, 2, 3, 4]
    want = np.array([[vcov[s, t] - vcov[s, 1] - vcov[1, t] + vcov[1, 1] for t in idx] for s in idx])
    np.testing.assert_allclose(sigma, want, rtol=1e-12)
    # the result is in the layout prepare_event_study takes
    _, _, num_pre, num_post = hd.prepare_event_study(kept, beta, sigma)
    assert (num_pre, num_post) == (2, 2)
    with pytest.raises(hd.HonestDiDError, match="estimate it once"):
        hd.normalise_at_base([-2, 0, 1], np.zeros(3), np.eye(3))
    with pytest.raises(hd.HonestDiDError, match="do not match"):
        hd.normalise_at_base([-1, 0], np.zeros(3), np.eye(3))
