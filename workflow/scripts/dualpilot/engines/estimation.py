"""The one estimation engine of the project: linear regressions with fixed effects, on pyfixest.

Every analysis fits its models with `fit` and reports them with `tidy`, `lincom`, `wald_row` and
`bootstrap_row`, so that all estimates share one convention for standard errors and one output format.

Conventions (details and the comparison with Stata's reghdfe in docs/estimation.md):

- Point estimates: OLS (or WLS with analytic weights) after absorbing the fixed effects
  (pyfixest's alternating projections, tolerance `fixef_tol`, 1e-10 by default).
- Clustered standard errors (`vcov="cluster"`): CRV1 with fixest's default small-sample correction,
  `ssc(adj=TRUE, fixef.K="nested", cluster.adj=TRUE)`: V = G/(G-1) * (N-1)/(N-K) * sandwich, where K counts
  the regressors plus the fixed-effect coefficients that are *not* nested in the cluster variable (a fixed
  effect is nested when each of its levels lies in one cluster, e.g. city effects with city clusters).
  With city and year effects and city clusters, K = k + T (k regressors, T years): the same K as Stata's
  `reghdfe ..., absorb(city year) vce(cluster city)` (k + constant + T - 1) and `xtreg, fe vce(cluster city)`
  with year dummies. t tests and confidence intervals use Student's t with G - 1 degrees of freedom, as
  fixest (t.df = "min") and reghdfe do; Wald tests use F(q, G - 1), as Stata's `test` after reghdfe and
  pyfixest's `wald_test` do.
- `vcov="hetero"`: HC1, V = N/(N-K) * sandwich with K = k + all fixed-effect coefficients (fixest
  "hetero", Stata `robust`); t with N - K degrees of freedom.
- `vcov="iid"`: V = s^2 (X'X)^-1 with s^2 = RSS/(N-K); t with N - K degrees of freedom.
- Singletons (observations alone in a fixed-effect level) are dropped before estimation by default
  (`drop_singletons=True`), as reghdfe does and fixest does not; see docs/estimation.md.
- Nothing is dropped silently: rows with missing values are counted in `Fit.n_dropped_missing`, singletons in
  `Fit.n_dropped_singletons`, and a regressor that is collinear with the others or with the fixed effects
  raises `EstimationError` instead of being dropped.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import stats

if TYPE_CHECKING:  # pyfixest is imported where a model is fitted: its import costs ~1 s of CPU
    from pyfixest.estimation.models.feols_ import Feols

from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.core.tidy import TIDY_COLUMNS
from dualpilot.engines import resampling

log = logging.getLogger("dualpilot")

VcovType = Literal["cluster", "hetero", "iid"]
BootstrapWeights = Literal["rademacher", "webb", "mammen", "norm"]

WALD_PREFIX = "wald: "
LINCOM_PREFIX = "lincom: "
BOOTSTRAP_PREFIX = "wildboot: "

_PANDAS_DEPRECATIONS = getattr(pd.errors, "Pandas4Warning", DeprecationWarning)


class EstimationError(SpecificationError):
    """A model that cannot be estimated as specified (the message says why and what to change)."""


@dataclass(frozen=True)
class Spec:
    """What to estimate: outcome ~ terms + controls | fixed effects, and how to compute the vcov.

    `terms` are the coefficients of interest (reported by `tidy` by default); `controls` are estimated
    alongside but not reported by default. A fixed effect is a column name or an interaction of columns
    written with `^` (`"province^year"`: one effect per province-year).
    """

    outcome: str
    terms: tuple[str, ...]
    controls: tuple[str, ...] = ()
    fixed_effects: tuple[str, ...] = ("city_code", "year")
    cluster: str | None = "city_code"
    vcov: VcovType = "cluster"
    weights: str | None = None
    drop_singletons: bool = True

    def __post_init__(self) -> None:
        if not self.terms:
            raise EstimationError("a model needs at least one term")
        regressors = self.regressors
        duplicated = sorted({r for r in regressors if regressors.count(r) > 1})
        if duplicated:
            raise EstimationError(f"regressors listed twice (terms and controls): {duplicated}")
        if self.outcome in regressors:
            raise EstimationError(f"the outcome {self.outcome!r} is also a regressor")
        if self.vcov not in ("cluster", "hetero", "iid"):
            raise EstimationError(f"vcov must be 'cluster', 'hetero' or 'iid', not {self.vcov!r}")
        if self.vcov == "cluster" and not self.cluster:
            raise EstimationError("vcov='cluster' needs a cluster variable")
        if self.vcov != "cluster" and self.cluster is not None:
            raise EstimationError(
                f"cluster={self.cluster!r} is only used with vcov='cluster'; pass cluster=None "
                f"with vcov={self.vcov!r}"
            )
        for fe in self.fixed_effects:
            if not fe or any(not part for part in fe.split("^")):
                raise EstimationError(f"malformed fixed effect {fe!r}")

    @property
    def regressors(self) -> tuple[str, ...]:
        """Terms followed by controls, in the order of the coefficient vector."""
        return tuple(self.terms) + tuple(self.controls)

    @property
    def fixed_effects_label(self) -> str:
        """Readable fixed effects, e.g. 'city_code + province^year' ('none' without any)."""
        return " + ".join(self.fixed_effects) if self.fixed_effects else "none"

    @property
    def controls_label(self) -> str:
        """Readable controls, e.g. 'ln_gdp_pc + gov' ('none' without any)."""
        return " + ".join(self.controls) if self.controls else "none"

    def columns(self) -> list[str]:
        """Every column of the data that the model reads."""
        cols = [self.outcome, *self.regressors]
        for fe in self.fixed_effects:
            cols += fe.split("^")
        cols += [c for c in (self.cluster, self.weights) if c]
        return list(dict.fromkeys(cols))


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted model: coefficients, their vcov, sample sizes and the small-sample details."""

    spec: Spec
    coef: pd.Series
    """All estimated coefficients (terms, then controls; 'Intercept' first without fixed effects)."""
    vcov: pd.DataFrame
    """Variance-covariance matrix of `coef` (rows and columns labelled like `coef`)."""
    n_obs: int
    n_clusters: int | None
    r2_within: float
    """R^2 of the regression after absorbing the fixed effects (NaN without fixed effects)."""
    df_k: int
    """K of the small-sample factor (N-1)/(N-K): regressors + counted fixed-effect coefficients."""
    df_t: int
    """Degrees of freedom of t and F tests: G - 1 when clustered, N - K otherwise."""
    ssc: float
    """The scalar small-sample factor applied to the sandwich."""
    vcov_label: str
    n_dropped_missing: int
    n_dropped_singletons: int
    sample_index: pd.Index = field(repr=False)
    """Labels (in the input data's index) of the rows used."""
    _design: pd.DataFrame = field(repr=False)
    _aliases: dict[str, str] = field(repr=False)

    @property
    def se(self) -> pd.Series:
        """Standard errors of `coef`."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.coef.index)

    def term_vcov(self, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """The vcov block of `terms` (default: the spec's terms)."""
        names = list(self.spec.terms if terms is None else terms)
        self._check_names(names)
        return self.vcov.loc[names, names]

    def _check_names(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.coef.index]
        if unknown:
            raise EstimationError(
                f"not coefficients of this model: {unknown}; it has {list(self.coef.index)}"
            )


# --------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------


def _group_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Integer codes (0..L-1, sorted by value) of the combinations of `columns`."""
    return frame.groupby(columns, sort=True).ngroup().to_numpy(dtype=np.int64)


def _prepare(data: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, dict[str, str], pd.Index, int]:
    """Build the aliased design frame pyfixest sees; drop rows with missing values.

    Aliases: `_y` outcome, `_x0.._xk` regressors, `_f0..` fixed effects (integer codes, interactions
    combined), `_c` cluster (integer codes), `_w` weights. Aliasing lets any column name (e.g. `rel_-6`)
    be a regressor and keeps pyfixest's formula parser away from user names.
    Returns the frame (RangeIndex), alias -> name of each regressor, the input labels of the kept rows
    and the number of rows dropped for missing values.
    """
    require_columns(data, spec.columns(), "the data")
    used = data[spec.columns()]
    has_na = used.isna().any(axis=1).to_numpy()
    kept = used.loc[~has_na]
    if kept.empty:
        raise EstimationError("no rows without missing values in the model's columns")

    design = pd.DataFrame(index=pd.RangeIndex(len(kept)))
    numeric = [spec.outcome, *spec.regressors] + ([spec.weights] if spec.weights else [])
    problems = []
    for col in numeric:
        values = kept[col]
        if values.dtype == bool:
            values = values.astype("float64")
        if not pd.api.types.is_numeric_dtype(values):
            problems.append(f"{col!r} is not numeric (dtype {values.dtype})")
            continue
        arr = values.to_numpy(dtype="float64")
        if not np.isfinite(arr).all():
            problems.append(f"{col!r} has infinite values")
        if col == spec.weights and (arr <= 0).any():
            problems.append(f"weights {col!r} must be positive")
    if problems:
        raise EstimationError("; ".join(problems))

    design["_y"] = kept[spec.outcome].to_numpy(dtype="float64")
    aliases: dict[str, str] = {}
    for i, name in enumerate(spec.regressors):
        alias = f"_x{i}"
        aliases[alias] = name
        design[alias] = kept[name].to_numpy(dtype="float64")
    for i, fe in enumerate(spec.fixed_effects):
        design[f"_f{i}"] = _group_codes(kept, fe.split("^"))
    if spec.cluster:
        design["_c"] = _group_codes(kept, [spec.cluster])
    if spec.weights:
        design["_w"] = kept[spec.weights].to_numpy(dtype="float64")
    return design, aliases, kept.index, int(has_na.sum())


def _formula(spec: Spec, aliases: Mapping[str, str]) -> str:
    rhs = " + ".join(aliases)
    fes = " + ".join(f"_f{i}" for i in range(len(spec.fixed_effects)))
    return f"_y ~ {rhs}" + (f" | {fes}" if fes else "")


def _vcov_label(spec: Spec, n_clusters: int | None, df_k: int, df_t: int) -> str:
    if spec.vcov == "cluster":
        label = (
            f"CRV1 by {spec.cluster} (fixest small-sample: G/(G-1)·(N-1)/(N-K), G={n_clusters}, "
            f"K={df_k}; t and F with G-1={df_t} df)"
        )
    elif spec.vcov == "hetero":
        label = f"HC1 (fixest small-sample: N/(N-K), K={df_k}; t and F with N-K={df_t} df)"
    else:
        label = f"iid (s² = RSS/(N-K), K={df_k}; t and F with N-K={df_t} df)"
    if spec.weights:
        label += f"; WLS, analytic weights {spec.weights}"
    return label


def _run_pyfixest(design: pd.DataFrame, fml: str, spec: Spec, fixef_tol: float) -> Feols:
    """Call pf.feols, re-emitting its warnings except pandas deprecations and the singleton notice."""
    import pyfixest as pf
    from pyfixest.estimation.models.feols_ import Feols

    vcov: str | dict[str, str] = {"CRV1": "_c"} if spec.vcov == "cluster" else spec.vcov
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = pf.feols(
            fml,
            data=design,
            vcov=vcov,
            weights="_w" if spec.weights else None,
            ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min"),
            fixef_rm="singleton" if spec.drop_singletons else "none",
            demeaner=pf.MapDemeaner(fixef_tol=fixef_tol),
        )
    for w in caught:
        if issubclass(w.category, _PANDAS_DEPRECATIONS):
            continue
        if "singleton" in str(w.message):
            log.debug("pyfixest: %s", w.message)  # fit() logs the count with the sample size
            continue
        if "multicollinearity" in str(w.message):
            continue  # fit() raises EstimationError naming the variables
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not isinstance(model, Feols):  # pragma: no cover - one formula gives one model
        raise EstimationError(f"expected one model from {fml!r}")
    return model


def fit(
    data: pd.DataFrame,
    *,
    outcome: str,
    terms: Sequence[str],
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = ("city_code", "year"),
    cluster: str | None = "city_code",
    vcov: VcovType = "cluster",
    weights: str | None = None,
    drop_singletons: bool = True,
    fixef_tol: float = 1e-10,
) -> Fit:
    """Fit `outcome ~ terms + controls | fixed_effects` by OLS (WLS with `weights`) with pyfixest.

    Args:
        data: one row per observation; rows with a missing value in any used column are dropped
            (and counted).
        outcome: dependent variable.
        terms: coefficients of interest.
        controls: further regressors.
        fixed_effects: absorbed effects; a column, or columns joined by `^` for their interaction
            (`"province^year"`). Empty for none (an intercept is then estimated).
        cluster: cluster variable of CRV1 standard errors (only with `vcov="cluster"`).
        vcov: "cluster" (CRV1), "hetero" (HC1) or "iid"; small-sample corrections as in fixest's
            defaults (module docstring).
        weights: column of analytic (precision) weights, or None.
        drop_singletons: drop observations alone in a fixed-effect level (reghdfe's default).
        fixef_tol: convergence tolerance of the fixed-effect demeaning.

    Raises:
        EstimationError: unknown columns, non-numeric or infinite values, invalid options, or a
            regressor collinear with the others or absorbed by the fixed effects.
    """
    spec = Spec(
        outcome=outcome,
        terms=tuple(terms),
        controls=tuple(controls),
        fixed_effects=tuple(fixed_effects),
        cluster=cluster,
        vcov=vcov,
        weights=weights,
        drop_singletons=drop_singletons,
    )
    design, aliases, kept_index, n_missing = _prepare(data, spec)
    fml = _formula(spec, aliases)
    model = _run_pyfixest(design, fml, spec, fixef_tol)

    collinear = [aliases.get(str(v), str(v)) for v in (model._collin_vars or [])]
    if collinear:
        raise EstimationError(
            f"collinear with the other regressors or absorbed by the fixed effects "
            f"({spec.fixed_effects_label}): {collinear}; remove them from the specification"
        )
    names = [aliases.get(str(n), str(n)) for n in model._coefnames]
    coef = pd.Series(np.asarray(model.coef(), dtype=float), index=names, name="estimate")
    vcov_matrix = pd.DataFrame(np.asarray(model._vcov, dtype=float), index=names, columns=names)
    n_obs = int(model._N)
    sample_positions = model._data.index.to_numpy()
    n_clusters = int(np.min(model._G)) if spec.vcov == "cluster" else None
    r2 = model._r2_within if spec.fixed_effects else None
    df_k, df_t = int(model._df_k), int(np.min(model._df_t))
    out = Fit(
        spec=spec,
        coef=coef,
        vcov=vcov_matrix,
        n_obs=n_obs,
        n_clusters=n_clusters,
        r2_within=float(r2) if r2 is not None else math.nan,
        df_k=df_k,
        df_t=df_t,
        ssc=float(np.squeeze(model._ssc)),
        vcov_label=_vcov_label(spec, n_clusters, df_k, df_t),
        n_dropped_missing=n_missing,
        n_dropped_singletons=len(design) - n_obs,
        sample_index=kept_index[sample_positions],
        _design=design.iloc[sample_positions].reset_index(drop=True),
        _aliases=aliases,
    )
    log.info("%s", fit_summary(out))
    return out


def fit_summary(fit: Fit) -> str:
    """One log line per fitted model, in the user's variable names (never the aliases of `_prepare`):
    'lq ~ dual_post + 6 controls | city_code + year: N = 5094, 283 clusters (dropped 0 missing, 2
    singletons)'."""
    spec = fit.spec
    rhs = " + ".join(spec.terms)
    if spec.controls:
        rhs += f" + {len(spec.controls)} control{'s' if len(spec.controls) > 1 else ''}"
    fe = f" | {spec.fixed_effects_label}" if spec.fixed_effects else ""
    clusters = f", {fit.n_clusters} clusters" if fit.n_clusters is not None else ""
    return (
        f"{spec.outcome} ~ {rhs}{fe}: N = {fit.n_obs}{clusters} (dropped "
        f"{fit.n_dropped_missing} missing, {fit.n_dropped_singletons} singletons)"
    )


# --------------------------------------------------------------------------------------------------
# Inference on fitted models
# --------------------------------------------------------------------------------------------------


def _t_inference(
    estimate: float, se: float, df: int, level: float
) -> tuple[float, float, float, float]:
    """t statistic, two-sided p-value and confidence interval from Student's t with `df` df."""
    t = estimate / se
    p = 2.0 * stats.t.sf(abs(t), df)
    half = stats.t.ppf(0.5 + level / 2.0, df) * se
    return t, p, estimate - half, estimate + half


def _row(fit: Fit, *, model: str, sample: str, term: str, values: Mapping[str, float]) -> dict:
    row = {
        "model": model,
        "term": term,
        "estimate": math.nan,
        "std_error": math.nan,
        "t_stat": math.nan,
        "p_value": math.nan,
        "conf_low": math.nan,
        "conf_high": math.nan,
        "n_obs": fit.n_obs,
        "n_clusters": fit.n_clusters,
        "r2_within": fit.r2_within,
        "fixed_effects": fit.spec.fixed_effects_label,
        "controls": fit.spec.controls_label,
        "sample": sample,
        "vcov": fit.vcov_label,
    }
    row.update(values)
    return row


def rows_to_frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Tidy rows (dicts) to a DataFrame with exactly `TIDY_COLUMNS` and stable dtypes."""
    frame = pd.DataFrame(list(rows), columns=list(TIDY_COLUMNS))
    for col in ("estimate", "std_error", "t_stat", "p_value", "conf_low", "conf_high", "r2_within"):
        frame[col] = frame[col].astype("float64")
    for col in ("n_obs", "n_clusters"):
        frame[col] = frame[col].astype("Int64")
    for col in ("model", "term", "fixed_effects", "controls", "sample", "vcov"):
        frame[col] = frame[col].astype("str")
    return frame


def concat_tidy(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack tidy frames (keeps the column order and dtypes)."""
    return rows_to_frame([r for f in frames for r in f.to_dict("records")])


def tidy(
    fit: Fit,
    *,
    model: str,
    sample: str = "full",
    terms: Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per coefficient in `terms` (default: the spec's terms) in the tidy format.

    p-values and `level` confidence intervals use Student's t with `fit.df_t` degrees of freedom
    (G - 1 when clustered), as fixest and reghdfe do.
    """
    names = list(fit.spec.terms if terms is None else terms)
    fit._check_names(names)
    se = fit.se
    rows = []
    for name in names:
        est, s = float(fit.coef[name]), float(se[name])
        t, p, lo, hi = _t_inference(est, s, fit.df_t, level)
        rows.append(
            _row(
                fit,
                model=model,
                sample=sample,
                term=name,
                values={
                    "estimate": est,
                    "std_error": s,
                    "t_stat": t,
                    "p_value": p,
                    "conf_low": lo,
                    "conf_high": hi,
                },
            )
        )
    return rows_to_frame(rows)


def _weight_vector(fit: Fit, weights: Mapping[str, float]) -> np.ndarray:
    if not weights:
        raise EstimationError("a linear combination needs at least one coefficient")
    fit._check_names(list(weights))
    return np.array([float(weights.get(name, 0.0)) for name in fit.coef.index])


def lincom(
    fit: Fit,
    weights: Mapping[str, float],
    label: str,
    *,
    model: str,
    sample: str = "full",
    value: float = 0.0,
    level: float = 0.95,
) -> pd.DataFrame:
    """The linear combination sum_i w_i b_i - value, with its standard error, as one tidy row.

    SE = sqrt(w' V w); t, p-value and interval from Student's t with `fit.df_t` df (Stata `lincom`).
    The row's term is `"lincom: " + label`.
    """
    w = _weight_vector(fit, weights)
    est = float(w @ fit.coef.to_numpy()) - value
    se = float(np.sqrt(w @ fit.vcov.to_numpy() @ w))
    t, p, lo, hi = _t_inference(est, se, fit.df_t, level)
    values = {
        "estimate": est,
        "std_error": se,
        "t_stat": t,
        "p_value": p,
        "conf_low": lo,
        "conf_high": hi,
    }
    return rows_to_frame(
        [_row(fit, model=model, sample=sample, term=LINCOM_PREFIX + label, values=values)]
    )


@dataclass(frozen=True)
class WaldTest:
    """Result of a Wald test of q linear restrictions R b = r; unpacks as `stat, p = wald(...)`."""

    statistic: float
    """F = (Rb - r)' (R V R')^-1 (Rb - r) / q."""
    p_value: float
    """P(F(q, df_den) > statistic)."""
    df_num: int
    df_den: int

    def __iter__(self) -> Iterator[float]:
        return iter((self.statistic, self.p_value))


Restriction = Mapping[str, float]
"""One linear restriction sum_i w_i b_i = 0, as {coefficient name: weight}; e.g. {"a": 1, "b": -1}."""


def equal(a: str, b: str) -> Restriction:
    """The restriction b_a = b_b."""
    if a == b:
        raise EstimationError(f"restriction {a} = {b} is empty")
    return {a: 1.0, b: -1.0}


def zero(name: str) -> Restriction:
    """The restriction b_name = 0."""
    return {name: 1.0}


def wald(
    fit: Fit,
    restrictions: Restriction | Sequence[Restriction],
    values: Sequence[float] | None = None,
) -> WaldTest:
    """Wald test of R b = r (r = `values`, zeros by default) with the fit's vcov.

    F = (Rb - r)' (R V R')^-1 (Rb - r) / q compared with F(q, fit.df_t): F(q, G - 1) when clustered, as
    Stata's `test` after `reghdfe, vce(cluster)` and pyfixest's `wald_test`. With one restriction, F is the
    square of the `lincom` t statistic and the p-values agree.
    """
    rows = [restrictions] if isinstance(restrictions, Mapping) else list(restrictions)
    if not rows:
        raise EstimationError("a Wald test needs at least one restriction")
    R = np.vstack([_weight_vector(fit, r) for r in rows])
    r = np.zeros(len(rows)) if values is None else np.asarray(values, dtype=float)
    if r.shape != (len(rows),):
        raise EstimationError(f"{len(rows)} restriction(s) but {r.size} value(s)")
    if np.linalg.matrix_rank(R) < len(rows):
        raise EstimationError("the restrictions are linearly dependent")
    diff = R @ fit.coef.to_numpy() - r
    middle = R @ fit.vcov.to_numpy() @ R.T
    q = len(rows)
    statistic = float(diff @ np.linalg.solve(middle, diff)) / q
    p = float(stats.f.sf(statistic, q, fit.df_t))
    return WaldTest(statistic=statistic, p_value=p, df_num=q, df_den=fit.df_t)


def wald_row(
    fit: Fit,
    restrictions: Restriction | Sequence[Restriction],
    label: str,
    *,
    model: str,
    sample: str = "full",
) -> pd.DataFrame:
    """A Wald test as one tidy row.

    Representation: term = "wald: " + label; t_stat = the F statistic; p_value = its p-value;
    estimate, std_error and the interval are NaN; the vcov column ends with "; Wald F(q, df)".
    """
    test = wald(fit, restrictions)
    row = _row(
        fit,
        model=model,
        sample=sample,
        term=WALD_PREFIX + label,
        values={
            "t_stat": test.statistic,
            "p_value": test.p_value,
            "vcov": f"{fit.vcov_label}; Wald F({test.df_num}, {test.df_den})",
        },
    )
    return rows_to_frame([row])


# --------------------------------------------------------------------------------------------------
# Wild cluster bootstrap
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WildBootstrap:
    """A wild cluster bootstrap test of H0: b_term = 0 (WCR11 when `impose_null`)."""

    term: str
    t_stat: float
    """The fit's own t statistic (coefficient / CRV1 SE). The package's t differs from it only by the
    scalar small-sample factor, which cancels in the bootstrap p-value."""
    p_value: float
    """(1 + #{|t*| >= |t|}) / (1 + B), two-tailed (`dualpilot.engines.resampling`); #{|t*| >= |t|} / 2^G under
    full enumeration, where the observed t is one of the draws. Never 0."""
    reps: int
    """Number of bootstrap draws used (2^G under full enumeration)."""
    weights_type: str
    seed: int
    cluster: str
    impose_null: bool
    full_enumeration: bool
    null: float = 0.0
    """The coefficient value under H0 (0 unless `wild_bootstrap` was given another)."""
    conf_low: float = math.nan
    conf_high: float = math.nan
    """The confidence interval by test inversion (`ci_level` of `wild_bootstrap`); NaN if not asked."""
    ci_level: float | None = None


def _nested_in(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """True if every level of the fixed effect lies within one cluster."""
    pairs = pd.DataFrame({"fe": fe_codes, "c": cluster_codes})
    return bool((pairs.groupby("fe")["c"].nunique() == 1).all())


def _independent_columns(matrix: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Indices of a maximal set of linearly independent columns (pivoted QR), in original order."""
    if matrix.shape[1] == 0:
        return np.arange(0)
    _, r, piv = scipy.linalg.qr(matrix, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > tol * diag[0]).sum()) if diag.size and diag[0] > 0 else 0
    return np.sort(piv[:rank])


def _bootstrap_design(fit: Fit) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Outcome and regressor matrix on which the bootstrap is run, equivalent to the dummy model.

    Fixed effects nested in the clusters are partialled out (Frisch-Waugh-Lovell); this leaves the WCR
    bootstrap unchanged because restricted residuals sum to zero within each level of a nested effect
    and the bootstrap weight is constant there. Fixed effects not nested in the clusters enter as
    dummies (partialled by the nested ones, collinear columns removed), as in pyfixest's one-hot
    `Feols.wildboottest`. Returns (y, X, column names); the first columns are the model's regressors.
    """
    d = fit._design
    n_fe = len(fit.spec.fixed_effects)
    clusters = d["_c"].to_numpy()
    fe_codes = [d[f"_f{i}"].to_numpy() for i in range(n_fe)]
    nested = [codes for codes in fe_codes if _nested_in(codes, clusters)]
    free = [codes for codes in fe_codes if not _nested_in(codes, clusters)]
    names = list(fit._aliases.values())
    x = d[list(fit._aliases)].to_numpy(dtype=float)
    y = d["_y"].to_numpy(dtype=float)
    dummies = [np.eye(codes.max() + 1)[codes] for codes in free]
    if not nested:
        # no absorbed effect: the dummies (or an intercept) carry the constant
        extra = np.hstack(dummies) if dummies else np.ones((len(d), 1))
    else:
        extra = np.hstack(dummies) if dummies else np.zeros((len(d), 0))
        stacked = np.column_stack([y, x, extra])
        flist = np.column_stack(nested).astype(np.uint64)
        from pyfixest.estimation import demean as _demean

        demeaned, ok = _demean(stacked, flist, np.ones(len(d)), tol=1e-12, maxiter=100_000)
        if not ok:
            raise EstimationError("partialling out the nested fixed effects did not converge")
        y, x, extra = demeaned[:, 0], demeaned[:, 1 : 1 + x.shape[1]], demeaned[:, 1 + x.shape[1] :]
    keep = _independent_columns(extra)
    extra = extra[:, keep]
    design = np.column_stack([x, extra])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise EstimationError("the bootstrap design is rank deficient")  # pragma: no cover
    return y, design, names + [f"_fe{j}" for j in range(extra.shape[1])]


def _wcr_pvalue(
    y: np.ndarray,
    x: np.ndarray,
    clusters: np.ndarray,
    column: int,
    *,
    null: float,
    reps: int,
    seed: int,
    weights_type: str,
    impose_null: bool,
) -> tuple[float, int, bool]:
    """p-value of H0: b_column = null on the bootstrap design, with the draws' count and whether they
    enumerate every sign vector. H0: b = null is H0: b = 0 for y - null * x_column (the design is
    linear), so the same seed gives the same bootstrap weights for every null."""
    from wildboottest.wildboottest import WildboottestCL  # heavy import (numba): only when used

    r_vec = np.zeros(x.shape[1])
    r_vec[column] = 1.0
    shifted = y - null * x[:, column] if null else y
    boot = WildboottestCL(
        X=x, Y=shifted, cluster=clusters, R=r_vec, B=reps, seed=seed, parallel=False
    )
    boot.get_scores(bootstrap_type="11", impose_null=impose_null, adj=True, cluster_adj=True)
    boot.get_weights(weights_type=weights_type)
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    # p by the +1 rule of dualpilot.engines.resampling: (1 + #{|t*| >= |t|}) / (1 + B); under full
    # enumeration the identity sign vector is one of the 2^G draws, so the exact share is used.
    t_boot = np.asarray(boot.t_boot, dtype=float).ravel()
    n_extreme = resampling.count_at_least(t_boot, float(np.ravel(boot.t_stat)[0]))
    full = bool(boot.full_enumeration)
    return resampling.resampled_pvalue(n_extreme, t_boot.size, exact=full), int(boot.B), full


def _invert_test(
    pvalue: Callable[[float], float], estimate: float, se: float, alpha: float
) -> tuple[float, float]:
    """The interval {b0 : p(b0) > alpha} around `estimate` (where p = 1), each end by bisection to
    1e-3 standard errors after doubling steps outward from two SEs until p(b0) <= alpha."""
    if not (math.isfinite(se) and se > 0):
        raise EstimationError("a bootstrap confidence interval needs a positive standard error")

    def end(direction: float) -> float:
        inside, step = estimate, 2.0 * se
        outside = estimate + direction * step
        while pvalue(outside) > alpha:
            inside, step = outside, 2.0 * step
            outside = estimate + direction * step
            if step > 1e6 * se:
                raise EstimationError("the bootstrap confidence interval is unbounded")
        while abs(outside - inside) > 1e-3 * se:
            middle = 0.5 * (inside + outside)
            if pvalue(middle) > alpha:
                inside = middle
            else:
                outside = middle
        return 0.5 * (inside + outside)

    return end(-1.0), end(1.0)


def wild_bootstrap(
    fit: Fit,
    term: str,
    *,
    reps: int,
    seed: int,
    weights_type: BootstrapWeights = "rademacher",
    impose_null: bool = True,
    null: float = 0.0,
    ci_level: float | None = None,
) -> WildBootstrap:
    """Wild cluster bootstrap p-value for H0: b_term = `null`, clustered like `fit` (package
    wildboottest).

    WCR11 (restricted residuals, CRV1 t statistic; Cameron, Gelbach & Miller 2008; Roodman et al. 2019)
    with Rademacher or Webb weights drawn from `numpy.random.default_rng(seed)`; with Rademacher weights
    and 2^G < reps every sign vector is enumerated once instead (then `reps` = 2^G). Runs the same code
    path as pyfixest's `Feols.wildboottest` (which fails on string cluster ids and on `^` effects), on
    the design described in `_bootstrap_design`. Not available for weighted fits.

    With `ci_level` (e.g. 0.95), also the confidence interval by test inversion: every b0 whose
    bootstrap p-value (same seed, hence the same weights, for every b0) exceeds 1 - ci_level, each end
    found by bisection to 1e-3 standard errors (boottest inverts the test likewise; Roodman et al.
    2019). Each evaluation is a full bootstrap (the package compiles its kernel anew on every call),
    so an interval costs some 25 of them.
    """

    if fit.spec.vcov != "cluster" or fit.spec.cluster is None:
        raise EstimationError("the wild cluster bootstrap needs a fit with vcov='cluster'")
    if fit.spec.weights:
        raise EstimationError("the wild cluster bootstrap is not available for weighted fits")
    if weights_type not in ("rademacher", "webb", "mammen", "norm"):
        raise EstimationError(f"unknown bootstrap weights {weights_type!r}")
    if reps < 1:
        raise EstimationError("reps must be positive")
    if term not in fit.spec.regressors:
        raise EstimationError(
            f"{term!r} is not a regressor of the model: {list(fit.spec.regressors)}"
        )
    if ci_level is not None and not 0 < ci_level < 1:
        raise EstimationError(f"ci_level must lie strictly between 0 and 1, not {ci_level!r}")
    y, x, names = _bootstrap_design(fit)
    column = names.index(term)
    clusters = fit._design["_c"].to_numpy(dtype=np.int64)

    def pvalue(b0: float) -> tuple[float, int, bool]:
        return _wcr_pvalue(
            y, x, clusters, column, null=b0, reps=reps, seed=seed, weights_type=weights_type,
            impose_null=impose_null,
        )  # fmt: skip

    p_value, draws, full = pvalue(null)
    estimate, se = float(fit.coef[term]), float(fit.se[term])
    conf_low = conf_high = math.nan
    if ci_level is not None:
        conf_low, conf_high = _invert_test(
            lambda b0: pvalue(b0)[0], estimate, se, alpha=1.0 - ci_level
        )
    return WildBootstrap(
        term=term,
        t_stat=(estimate - null) / se,
        p_value=p_value,
        reps=draws,
        weights_type=weights_type,
        seed=seed,
        cluster=fit.spec.cluster,
        impose_null=impose_null,
        full_enumeration=full,
        null=null,
        conf_low=conf_low,
        conf_high=conf_high,
        ci_level=ci_level,
    )


def bootstrap_row(
    fit: Fit, boot: WildBootstrap, *, model: str, sample: str = "full"
) -> pd.DataFrame:
    """A wild bootstrap test as one tidy row.

    Representation: term = "wildboot: " + term; estimate = the coefficient; t_stat = the original
    t statistic; p_value = the bootstrap p-value; std_error is NaN; conf_low and conf_high the
    interval by test inversion (NaN unless asked for); n_clusters those of the bootstrap; the vcov
    column describes the bootstrap (type, cluster, weights, draws, seed, the interval's level).
    """
    kind = "WCR11" if boot.impose_null else "WCU11"
    draws = f"{boot.reps} draws" + (" (full enumeration)" if boot.full_enumeration else "")
    desc = (
        f"wild cluster bootstrap {kind} by {boot.cluster}, {boot.weights_type} weights, {draws}, "
        f"seed {boot.seed}"
    )
    if boot.null:
        desc += f", H0: coefficient = {boot.null:g}"
    if boot.ci_level is not None:
        desc += f", {100 * boot.ci_level:g}% interval by test inversion"
    row = _row(
        fit,
        model=model,
        sample=sample,
        term=BOOTSTRAP_PREFIX + boot.term,
        values={
            "estimate": float(fit.coef[boot.term]),
            "t_stat": boot.t_stat,
            "p_value": boot.p_value,
            "conf_low": boot.conf_low,
            "conf_high": boot.conf_high,
            "vcov": desc,
        },
    )
    return rows_to_frame([row])


_BOOTSTRAP_LABEL = re.compile(
    r"^wild cluster bootstrap (?P<kind>WC[RU]11) by (?P<cluster>\S+), (?P<weights>\w+) weights, "
    r"(?P<draws>\d+) draws(?P<full> \(full enumeration\))?, seed (?P<seed>-?\d+)"
    r"(?:, H0: coefficient = (?P<null>[^,]+))?(?:, (?P<level>[\d.]+)% interval by test inversion)?$"
)


def parse_bootstrap_label(vcov: str) -> dict[str, Any]:
    """The settings `bootstrap_row` wrote into the vcov column of a "wildboot: " row: kind (WCR11 or
    WCU11), cluster, weights, draws (int), full (bool), seed (int), null (float) and level (the
    interval's level in percent, or None). Raises ValueError on any other text."""
    match = _BOOTSTRAP_LABEL.match(str(vcov))
    if match is None:
        raise ValueError(f"not a wild bootstrap description: {vcov!r}")
    g = match.groupdict()
    return {
        "kind": g["kind"],
        "cluster": g["cluster"],
        "weights": g["weights"],
        "draws": int(g["draws"]),
        "full": g["full"] is not None,
        "seed": int(g["seed"]),
        "null": float(g["null"]) if g["null"] else 0.0,
        "level": float(g["level"]) if g["level"] else None,
    }
