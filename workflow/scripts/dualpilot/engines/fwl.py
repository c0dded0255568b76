"""Two-way fixed-effect partialling (Frisch-Waugh-Lovell) for a unit x time panel.

The placebo engine regresses y on a treatment D, controls X and unit and time fixed effects many times.
By Frisch-Waugh-Lovell (FWL) the coefficient of D equals the coefficient of the regression of `P y` on
`P D`, where `P` is the residual maker of [unit dummies, time dummies, X]. This module builds `P` once.

`P` is applied exactly, not by iterating to a tolerance, for balanced and unbalanced panels alike:

    span[U, T, X] = span(U) + span(M_U [T_{-1}, X])

(U: unit dummies, T_{-1}: time dummies without the first level, M_U: within-unit demeaning). Hence

    P v = M_U v - F (F'F)^{-1} F' v,        F = M_U [T_{-1}, X]   (n x p, p = n_periods - 1 + k).

For a balanced panel this reduces to the textbook closed form `v - unit mean - time mean + grand mean`
(then residualised on the demeaned controls); for an unbalanced one it is what alternating projections
converge to, reached in one step (a p x p Cholesky solve; p is small: periods plus controls).

Columns of F are scaled to unit length before the Cholesky factorisation (the span, hence `P`, is
unchanged). A column whose squared residual on the unit FE and the preceding columns falls below
`COLLIN_TOL` (1e-10, fixest's `collin.tol`) times its own variance is reported as collinear instead of
being silently dropped: a disconnected panel, a control constant within units or a control that is a
combination of others raises `ValueError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import linalg

COLLIN_TOL = 1e-10
"""Relative tolerance below which a column of F counts as collinear with the preceding ones."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def factorize(values: ArrayLike, name: str) -> tuple[IntArray, pd.Index]:
    """Integer codes 0..G-1 of `values` in sorted order of the labels, and the sorted labels.

    Raises `ValueError` if any value is missing (a fixed effect or cluster label cannot be missing).
    """
    codes, uniques = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError(f"{name}: {(codes < 0).sum()} missing value(s); every row needs a label")
    return codes.astype(np.int64), pd.Index(uniques)


def singleton_mask(*codes: IntArray) -> NDArray[np.bool_]:
    """Rows to keep after iteratively dropping singletons (levels observed once) of every factor.

    Dropping a singleton of one factor can create a singleton of another, so this loops until stable,
    as pyfixest's `fixef_rm="singleton"` (its default) and reghdfe do.
    """
    if not codes:
        raise ValueError("singleton_mask needs at least one factor")
    keep = np.ones(codes[0].shape[0], dtype=bool)
    changed = True
    while changed:
        changed = False
        for c in codes:
            counts = np.bincount(c[keep], minlength=int(c.max()) + 1 if c.size else 0)
            single = keep & (counts[c] == 1)
            if single.any():
                keep &= ~single
                changed = True
    return keep


def group_sums(values: ArrayLike, codes: IntArray, n_groups: int) -> FloatArray:
    """Sum of the rows of `values` (n or n x m) within each group: returns n_groups (x m)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros((n_groups, *v.shape[1:]), dtype=np.float64)
    np.add.at(out, codes, v)
    return out


def within(values: ArrayLike, codes: IntArray, n_groups: int) -> FloatArray:
    """`values` minus their group means (the residual maker M_U of one set of dummies)."""
    v = np.asarray(values, dtype=np.float64)
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    means = group_sums(v, codes, n_groups) / counts.reshape(-1, *([1] * (v.ndim - 1)))
    return v - means[codes]


@dataclass
class TwoWayPartialler:
    """The residual maker P of [unit FE, time FE, controls] on one estimation sample.

    Parameters
    ----------
    unit_codes, time_codes:
        Integer codes 0..N-1 and 0..T-1 of every observation (see `factorize`).
    controls:
        n x k matrix of controls (k may be 0).
    control_names:
        Names of the controls, used in error messages only.

    Attributes
    ----------
    F:
        M_U [time dummies 1..T-1, controls], each column scaled to unit length (n x p).
    scale:
        The column norms divided out of F (F = M_U Z / scale).
    chol:
        Lower Cholesky factor of F'F.
    """

    unit_codes: IntArray
    time_codes: IntArray
    controls: FloatArray
    control_names: Sequence[str] = ()
    n_units: int = field(init=False)
    n_periods: int = field(init=False)
    F: FloatArray = field(init=False, repr=False)
    scale: FloatArray = field(init=False, repr=False)
    chol: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.unit_codes.shape[0]
        x = np.asarray(self.controls, dtype=np.float64).reshape(n, -1)
        self.controls = x
        self.n_units = int(self.unit_codes.max()) + 1
        self.n_periods = int(self.time_codes.max()) + 1
        # F is built in place in one n x p array, without n x p temporaries (they made the peak
        # memory of the placebo engine's setup on large panels).
        q = self.n_periods - 1
        f = np.zeros((n, q + x.shape[1]))
        later = self.time_codes > 0
        f[np.flatnonzero(later), self.time_codes[later] - 1] = 1.0
        f[:, q:] = x
        names = np.asarray(
            [f"time dummy {t}" for t in range(1, self.n_periods)]
            + [str(c) for c in (self.control_names or [f"control {j}" for j in range(x.shape[1])])],
            dtype=object,
        )
        # Reference scale of each column: its variance around its mean (times n).
        ref = np.array([np.square(col - col.mean()).sum() for col in f.T])
        counts = np.bincount(self.unit_codes, minlength=self.n_units).astype(np.float64)
        means = group_sums(f, self.unit_codes, self.n_units) / counts[:, None]
        for j in range(f.shape[1]):  # M_U in place, one column at a time
            f[:, j] -= means[self.unit_codes, j]
        norms = np.sqrt(np.einsum("ij,ij->j", f, f))
        absorbed = norms**2 <= COLLIN_TOL * ref
        if absorbed.any():
            raise ValueError(
                "collinear with the unit fixed effects (constant within every unit): "
                + ", ".join(names[absorbed])
            )
        self.scale = norms
        f /= norms
        self.F = f
        try:
            self.chol = linalg.cholesky(self.F.T @ self.F, lower=True)
        except linalg.LinAlgError as err:
            raise ValueError(
                "the fixed effects and controls are collinear (singular design after within-unit "
                "demeaning): the panel may be disconnected or a control may be a combination of "
                "fixed effects and other controls"
            ) from err
        # (diag(L)_j * norm_j)^2 is the squared residual of column j on the unit FE and columns < j.
        bad = (np.diag(self.chol) * norms) ** 2 < COLLIN_TOL * ref
        if bad.any():
            raise ValueError(
                "collinear with the fixed effects and preceding controls (residual variance below "
                f"{COLLIN_TOL:g} of the variable's own): " + ", ".join(names[bad])
            )

    @property
    def within_controls(self) -> FloatArray:
        """M_U X: the controls demeaned within units (unscaled), n x k."""
        q = self.n_time_columns
        return self.F[:, q:] * self.scale[q:]

    @property
    def n_time_columns(self) -> int:
        """Number of columns of F that come from the time dummies (T - 1)."""
        return self.n_periods - 1

    def solve(self, rhs: ArrayLike) -> FloatArray:
        """(F'F)^{-1} rhs for rhs of shape p or p x m."""
        return linalg.cho_solve((self.chol, True), np.asarray(rhs, dtype=np.float64))

    def partial(self, values: ArrayLike) -> FloatArray:
        """P v: residual of v (n or n x m) on unit FE, time FE and the controls."""
        w = within(values, self.unit_codes, self.n_units)
        return w - self.F @ self.solve(self.F.T @ w)

    def partial_fe(self, values: ArrayLike) -> FloatArray:
        """M_FE v: residual of v (n or n x m) on the unit and time fixed effects only."""
        w = within(values, self.unit_codes, self.n_units)
        q = self.n_time_columns
        if q == 0:
            return w
        ft = self.F[:, :q]
        # The leading q x q block of the Cholesky factor of F'F factorises the time block alone.
        lead = self.chol[:q, :q]
        return w - ft @ linalg.cho_solve((lead, True), ft.T @ w)
