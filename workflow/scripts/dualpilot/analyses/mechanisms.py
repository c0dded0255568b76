"""Mechanisms of the dual pilot: its effect on the mediators, optional descriptive mediation, and
Romano-Wolf multiple-testing adjustment.

Default analysis: the two-step approach (江艇 2022, "因果推断经验研究中的中介效应分析", 中国工业经济)
-------------------------------------------------------------------------------------------------------
Each mediator M (by default ln_digital_pat, ln_green_pat, human_capital) is regressed on the treatment with
the baseline specification,

    M_it = a * dual_post_it + x_it' g + city_i + year_t + e_it,     CRV1 standard errors by city,

and the coefficient a is reported (tidy rows, model = the mediator). The channel M -> lq is argued from
theory and the literature, not estimated. All observed regressions are fitted by `dualpilot.engines.estimation.fit`
(pyfixest; CRV1 with fixest's small-sample factor G/(G-1)·(N-1)/(N-K), t(G-1) inference: see
docs/estimation.md).

Optional three-step mediation (labelled "descriptive": it needs sequential ignorability of M, which a
DID design does not deliver) on the common sample of rows where y, M, D and the controls are observed:
(1) y on D (total effect c); (2) M on D (a); (3) y on D and M (direct effect c', and b). The indirect effect
a·b is reported with the first-order Sobel standard error sqrt(b² se_a² + a² se_b²) (normal p-value and
interval) and with a percentile interval from a cluster (pairs) bootstrap.

Romano-Wolf stepdown adjusted p-values (Romano & Wolf 2005, 2016) for the three two-step coefficients
follow Stata's `rwolf` (Clarke, Romano & Wolf 2020): studentised statistics |t_j| = |a_j / se_j|; B cluster
bootstrap samples (cities drawn with replacement, each copy a new city and cluster, as
`bsample, cluster(city) idcluster(newid)`); the null is imposed by centring, t*_bj = (a*_bj - a_j) / se*_bj
with se* the CRV1 error of the bootstrap fit; stepdown over hypotheses in decreasing |t|,
p_(s) = (#{b : max over the not yet rejected j of |t*_bj| >= |t_(s)|} + 1) / (B + 1), made monotone by
taking the running maximum. The same bootstrap draws give the indirect effect's interval.

Randomness: bootstrap draw d uses only ``np.random.default_rng(np.random.SeedSequence([seed, 101, d]))``
(one draw of G cities with replacement, shared by every mediator and model of that draw), so draws can be
computed in shards (`bootstrap_draws(..., draws=range(a, b))`) and gathered with identical results.

Resampling path. Bootstrap (and heterogeneity permutation) draws re-estimate the same two-way fixed-effects
model thousands of times. `TwfeDesign` does it with exact Frisch-Waugh-Lovell partialling
(`dualpilot.engines.fwl.TwoWayPartialler`) and the same conventions as `estimation.fit` (singletons dropped, CRV1
with K = regressors + periods); the tests check it against `estimation.fit` to 1e-8. Every draw function
takes ``engine="fit"`` to use `estimation.fit` itself instead (slow; the reference).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from dualpilot.core.errors import require_columns
from dualpilot.engines import estimation as est
from dualpilot.engines import resampling
from dualpilot.engines.estimation import EstimationError
from dualpilot.engines.twfe import Engine, TwfeDesign

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_MEDIATORS: tuple[str, ...] = ("ln_digital_pat", "ln_green_pat", "human_capital")
"""Mediators of the study: digital patents, green patents (log 1 + count) and human capital."""

RWOLF_PREFIX = "rwolf: "
"""Term prefix of the Romano-Wolf rows (estimate = coefficient, p_value = adjusted p-value)."""

THREE_STEP = "three-step (descriptive)"
"""Model-name prefix of the optional three-step mediation rows."""

INDIRECT_TERM = "indirect"
"""Term of the indirect-effect rows (estimate a·b)."""

BOOTSTRAP_STREAM = 101
"""Stream id in every bootstrap draw's seed, SeedSequence([seed, BOOTSTRAP_STREAM, d]); never change."""

DRAW_COLUMNS: tuple[str, ...] = ("draw", "mediator", "estimate", "std_error", "a", "b", "indirect")
"""Columns of `bootstrap_draws`: the two-step coefficient and its CRV1 SE in the draw (for Romano-Wolf),
and, with the three-step models, a, b and a·b on the common sample (NaN otherwise)."""


# --------------------------------------------------------------------------------------------------
# Observed estimates (estimation.fit)
# --------------------------------------------------------------------------------------------------


def _check_mediators(mediators: Sequence[str], outcome: str, treatment: str) -> list[str]:
    meds = list(mediators)
    if not meds:
        raise EstimationError("give at least one mediator")
    if len(set(meds)) != len(meds):
        raise EstimationError(f"mediators listed twice: {meds}")
    bad = [m for m in meds if m in (outcome, treatment)]
    if bad:
        raise EstimationError(f"a mediator cannot be the outcome or the treatment: {bad}")
    return meds


def _fit(
    data: pd.DataFrame,
    outcome: str,
    terms: Sequence[str],
    controls: Sequence[str],
    unit: str,
    time: str,
    cluster: str,
) -> est.Fit:
    return est.fit(
        data,
        outcome=outcome,
        terms=terms,
        controls=controls,
        fixed_effects=(unit, time),
        cluster=cluster,
    )


def two_step(
    panel: pd.DataFrame,
    mediators: Sequence[str] = DEFAULT_MEDIATORS,
    controls: Sequence[str] = (),
    *,
    treatment: str = "dual_post",
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
) -> pd.DataFrame:
    """The two-step mechanism rows: mediator ~ treatment + controls | unit + time (CRV1 by cluster).

    One tidy row per mediator: model = the mediator, term = the treatment, sample "full" (each
    mediator on its own complete cases).
    """
    meds = _check_mediators(mediators, "", treatment)
    frames = [
        est.tidy(_fit(panel, m, [treatment], controls, unit, time, cluster), model=m) for m in meds
    ]
    return est.concat_tidy(frames)


@dataclass(frozen=True)
class Sobel:
    """Sobel test of the indirect effect a·b (first-order delta method)."""

    estimate: float
    std_error: float
    z: float
    p_value: float
    """Two-sided, standard normal."""


def sobel(a: float, se_a: float, b: float, se_b: float) -> Sobel:
    """a·b with SE = sqrt(b²·se_a² + a²·se_b²) (Sobel 1982), z = a·b / SE, two-sided normal p."""
    vals = np.array([a, se_a, b, se_b], dtype=float)
    if not np.isfinite(vals).all() or se_a <= 0 or se_b <= 0:
        raise EstimationError(f"Sobel needs finite a, b and positive SEs, got {vals.tolist()}")
    ab = a * b
    se = math.sqrt(b * b * se_a * se_a + a * a * se_b * se_b)
    if se == 0:
        raise EstimationError("Sobel SE is 0 (a = b = 0)")
    z = ab / se
    return Sobel(estimate=ab, std_error=se, z=z, p_value=float(2 * stats.norm.sf(abs(z))))


def _common_sample(
    panel: pd.DataFrame, outcome: str, mediator: str, treatment: str, controls: Sequence[str]
) -> pd.DataFrame:
    cols = [outcome, mediator, treatment, *controls]
    require_columns(panel, cols, "the panel")
    return panel.loc[panel[cols].notna().all(axis=1)]


def _three_step_models(outcome: str, mediator: str, treatment: str) -> dict[str, str]:
    base = f"{THREE_STEP} {mediator}"
    return {
        "total": f"{base}: {outcome} ~ {treatment}",
        "a": f"{base}: {mediator} ~ {treatment}",
        "direct": f"{base}: {outcome} ~ {treatment} + {mediator}",
        "sobel": f"{base}: indirect (Sobel)",
        "bootstrap": f"{base}: indirect (cluster bootstrap)",
    }


def _indirect_row(
    fit: est.Fit, model: str, sample: str, values: Mapping[str, float], vcov: str
) -> pd.DataFrame:
    row = {
        "model": model,
        "term": INDIRECT_TERM,
        "estimate": math.nan,
        "std_error": math.nan,
        "t_stat": math.nan,
        "p_value": math.nan,
        "conf_low": math.nan,
        "conf_high": math.nan,
        "n_obs": fit.n_obs,
        "n_clusters": fit.n_clusters,
        "r2_within": math.nan,
        "fixed_effects": fit.spec.fixed_effects_label,
        "controls": fit.spec.controls_label,
        "sample": sample,
        "vcov": vcov,
    }
    row.update(values)
    return est.rows_to_frame([row])


def three_step(
    panel: pd.DataFrame,
    mediators: Sequence[str] = DEFAULT_MEDIATORS,
    controls: Sequence[str] = (),
    *,
    outcome: str = "lq",
    treatment: str = "dual_post",
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
    level: float = 0.95,
) -> pd.DataFrame:
    """Descriptive three-step mediation with the Sobel test, one block per mediator.

    On the rows where outcome, mediator, treatment and controls are all observed (sample
    "common: <outcome>, <mediator>"): model "three-step (descriptive) M: y ~ D" (term D: total effect),
    "…: M ~ D" (term D: a), "…: y ~ D + M" (terms D: direct effect, M: b), and
    "…: indirect (Sobel)" (term "indirect": a·b, Sobel SE, z in t_stat, normal p and interval).
    """
    meds = _check_mediators(mediators, outcome, treatment)
    frames = []
    z_crit = stats.norm.ppf(0.5 + level / 2)
    for m in meds:
        data = _common_sample(panel, outcome, m, treatment, controls)
        names = _three_step_models(outcome, m, treatment)
        sample = f"common: {outcome}, {m}"
        total = _fit(data, outcome, [treatment], controls, unit, time, cluster)
        first = _fit(data, m, [treatment], controls, unit, time, cluster)
        direct = _fit(data, outcome, [treatment, m], controls, unit, time, cluster)
        frames += [
            est.tidy(total, model=names["total"], sample=sample),
            est.tidy(first, model=names["a"], sample=sample),
            est.tidy(direct, model=names["direct"], sample=sample),
        ]
        s = sobel(
            float(first.coef[treatment]),
            float(first.se[treatment]),
            float(direct.coef[m]),
            float(direct.se[m]),
        )
        frames.append(
            _indirect_row(
                first,
                names["sobel"],
                sample,
                {
                    "estimate": s.estimate,
                    "std_error": s.std_error,
                    "t_stat": s.z,
                    "p_value": s.p_value,
                    "conf_low": s.estimate - z_crit * s.std_error,
                    "conf_high": s.estimate + z_crit * s.std_error,
                },
                "Sobel (first-order delta method): SE = sqrt(b²·se_a² + a²·se_b²) with CRV1 SEs of "
                f"a ({m} ~ {treatment}) and b ({outcome} ~ {treatment} + {m}); normal p and "
                f"{level:.0%} interval; descriptive",
            )
        )
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# Cluster bootstrap draws
# --------------------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """The panel as arrays, rows grouped by cluster (= unit) for the pairs bootstrap."""

    frame: pd.DataFrame
    values: FloatArray  # n x (outcome, treatment, mediators..., controls...)
    columns: list[str]
    time: NDArray
    cluster_rows: list[IntArray]
    n_clusters: int


def _prepare(
    panel: pd.DataFrame, columns: Sequence[str], unit: str, time: str, cluster: str
) -> _Prepared:
    if unit != cluster:
        raise EstimationError(
            f"the cluster bootstrap resamples units: cluster ({cluster!r}) must equal unit ({unit!r})"
        )
    missing = [c for c in [*columns, unit, time] if c not in panel.columns]
    if missing:
        raise EstimationError(f"columns not in the panel: {missing}")
    frame = panel.reset_index(drop=True)
    codes, _ = pd.factorize(frame[unit], sort=True)
    if (codes < 0).any():
        raise EstimationError(f"missing {unit} labels")
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    rows = np.split(order, bounds)
    values = frame[list(columns)].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    return _Prepared(
        frame=frame,
        values=values,
        columns=list(columns),
        time=frame[time].to_numpy(),
        cluster_rows=[r.astype(np.int64) for r in rows],
        n_clusters=len(rows),
    )



def _resample(prep: _Prepared, seed: int, draw: int) -> tuple[IntArray, IntArray]:
    """Row positions of bootstrap draw `draw` and the new unit id (0..G-1, one per copy) of each."""
    chosen = resampling.bootstrap_clusters(prep.n_clusters, seed, draw, BOOTSTRAP_STREAM)
    parts = [prep.cluster_rows[c] for c in chosen]
    positions = np.concatenate(parts)
    ids = np.repeat(np.arange(chosen.size), [p.size for p in parts])
    return positions, ids


def _draw_models(
    outcome: str, treatment: str, mediators: Sequence[str], three_step_models: bool
) -> list[tuple[str, str, list[str], str]]:
    """(mediator, dependent variable, terms, role) of every regression of a draw."""
    models = [(m, m, [treatment], "two_step") for m in mediators]
    if three_step_models:
        for m in mediators:
            models.append((m, m, [treatment], "a"))
            models.append((m, outcome, [treatment, m], "b"))
    return models


def _sample_columns(
    role: str, outcome: str, mediator: str, treatment: str, controls: Sequence[str]
) -> list[str]:
    if role == "two_step":
        return [mediator, treatment, *controls]
    return [outcome, mediator, treatment, *controls]


def bootstrap_draws(
    panel: pd.DataFrame,
    mediators: Sequence[str] = DEFAULT_MEDIATORS,
    controls: Sequence[str] = (),
    *,
    draws: range | Sequence[int],
    seed: int,
    outcome: str = "lq",
    treatment: str = "dual_post",
    three_step_models: bool = False,
    unit: str = "city_code",
    time: str = "year",
    engine: Engine = "fast",
) -> pd.DataFrame:
    """Cluster (pairs) bootstrap draws of the mechanism models, one row per (draw, mediator).

    Draw d resamples the G cities with replacement from `resampling.draw_rng(seed, d, BOOTSTRAP_STREAM)`
    only; every copy of a city becomes its own unit and cluster. In the resampled panel it fits the
    two-step model of every mediator (columns estimate, std_error: the treatment coefficient and its CRV1 SE) and, with
    `three_step_models`, a (M ~ D) and b (y ~ D + M) on the common sample (columns a, b, indirect = a·b;
    NaN otherwise). `engine="fit"` uses `estimation.fit` for each regression (slow; the reference).
    Columns: `DRAW_COLUMNS`.
    """
    meds = _check_mediators(mediators, outcome, treatment)
    if engine not in ("fast", "fit"):
        raise ValueError(f"engine must be 'fast' or 'fit', not {engine!r}")
    columns = [outcome, treatment, *meds, *controls]
    prep = _prepare(panel, columns, unit, time, unit)
    col = {c: i for i, c in enumerate(columns)}
    models = _draw_models(outcome, treatment, meds, three_step_models)
    rows = []
    for d in draws:
        positions, ids = _resample(prep, seed, int(d))
        vals = prep.values[positions]
        times = prep.time[positions]
        results: dict[tuple[str, str], FloatArray] = {}
        if engine == "fit":
            frame = pd.DataFrame(vals, columns=columns)
            frame["_unit"], frame["_time"] = ids, times
            for med, dep, terms, role in models:
                fit = _fit(frame, dep, terms, controls, "_unit", "_time", "_unit")
                results[(med, role)] = np.array(
                    [fit.coef[terms[-1]], fit.se[terms[-1]]], dtype=float
                )
        else:
            designs: dict[bytes, TwfeDesign] = {}
            for med, dep, terms, role in models:
                needed = _sample_columns(role, outcome, med, treatment, controls)
                mask = np.isfinite(vals[:, [col[c] for c in needed]]).all(axis=1)
                key = mask.tobytes()
                if key not in designs:
                    designs[key] = TwfeDesign(
                        ids[mask],
                        times[mask],
                        ids[mask],
                        vals[mask][:, [col[c] for c in controls]],
                        control_names=controls,
                    )
                sub = vals[mask]
                res = designs[key].regress(sub[:, col[dep]], sub[:, [col[t] for t in terms]], terms)
                results[(med, role)] = np.array([res.coef[-1], res.se[-1]], dtype=float)
        for med in meds:
            estimate, se = results[(med, "two_step")]
            a = results[(med, "a")][0] if three_step_models else math.nan
            b = results[(med, "b")][0] if three_step_models else math.nan
            rows.append((int(d), med, estimate, se, a, b, a * b))
    out = pd.DataFrame(rows, columns=list(DRAW_COLUMNS))
    out["draw"] = out["draw"].astype("int64")
    out["mediator"] = out["mediator"].astype("str")
    return out


def gather_draws(frames: Sequence[pd.DataFrame], n_draws: int) -> pd.DataFrame:
    """Concatenate shards of draws, sorted by draw (stable: rows of one draw keep their order), and
    check that every draw 0..n_draws-1 is present exactly once per `mediator` (once, without it):
    `resampling.gather_draws`."""
    return resampling.gather_draws(frames, n_draws, per=("mediator",))


# --------------------------------------------------------------------------------------------------
# Romano-Wolf
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RomanoWolf:
    """Romano-Wolf stepdown results, in the order of the hypotheses given."""

    adjusted: FloatArray
    """Stepdown adjusted p-values (running maximum along the stepdown order)."""
    unadjusted: FloatArray
    """Single-hypothesis bootstrap p-values (#{|t*_j| >= |t_j|} + 1) / (B + 1) on the same draws."""
    order: IntArray
    """Stepdown order: hypotheses by decreasing |t|."""


def romano_wolf(t_stats: Sequence[float], boot_t: FloatArray) -> RomanoWolf:
    """Romano-Wolf stepdown p-values from observed t statistics and a B x S matrix of centred,
    studentised bootstrap statistics (Stata `rwolf` semantics, two-sided, with the +1 rule).

    p_(s) = (#{b : max_{j not in the s-1 largest |t|} |t*_bj| >= |t_(s)|} + 1) / (B + 1), then
    p_(s) = max(p_(s), p_(s-1)). Ties in |t| keep the input order.
    """
    t = np.abs(np.asarray(t_stats, dtype=np.float64))
    tb = np.abs(np.asarray(boot_t, dtype=np.float64))
    if tb.ndim != 2 or tb.shape[1] != t.size or tb.shape[0] < 1:
        raise ValueError(f"boot_t must be B x {t.size}, got shape {tb.shape}")
    if not (np.isfinite(t).all() and np.isfinite(tb).all()):
        raise ValueError("t statistics must be finite")
    n_boot = tb.shape[0]
    order = np.argsort(-t, kind="stable")
    adjusted = np.empty(t.size)
    running = 0.0
    for s, j in enumerate(order):
        max_stat = tb[:, order[s:]].max(axis=1)
        p = (np.sum(max_stat >= t[j]) + 1) / (n_boot + 1)
        running = max(running, p)
        adjusted[j] = running
    unadjusted = (np.sum(tb >= t[None, :], axis=0) + 1) / (n_boot + 1)
    return RomanoWolf(adjusted=adjusted, unadjusted=unadjusted, order=order.astype(np.int64))


def _boot_t_matrix(
    draws: pd.DataFrame, mediators: Sequence[str], observed: Mapping[str, float]
) -> FloatArray:
    """B x S matrix t*_bj = (estimate*_bj - observed_j) / se*_bj (draws x mediators)."""
    wide_b = draws.pivot(index="draw", columns="mediator", values="estimate")[list(mediators)]
    wide_s = draws.pivot(index="draw", columns="mediator", values="std_error")[list(mediators)]
    if wide_b.isna().any().any() or (wide_s.to_numpy() <= 0).any():
        raise EstimationError("bootstrap draws with missing estimates or non-positive SEs")
    centre = np.array([observed[m] for m in mediators])
    return (wide_b.to_numpy() - centre[None, :]) / wide_s.to_numpy()


def romano_wolf_rows(
    two_step_rows: pd.DataFrame,
    draws: pd.DataFrame,
    *,
    treatment: str = "dual_post",
    seed: int | None = None,
    cluster: str = "city_code",
) -> pd.DataFrame:
    """One "rwolf: <treatment>" row per mediator model of `two_step_rows` (see module docstring).

    estimate = the coefficient, t_stat = its t, p_value = the Romano-Wolf adjusted p-value, std_error
    and the interval NaN; vcov describes the procedure. The hypotheses are the models of
    `two_step_rows` (term = treatment), adjusted jointly.
    """
    rows = two_step_rows[two_step_rows["term"] == treatment]
    mediators = rows["model"].astype(str).tolist()
    if not mediators:
        raise EstimationError(f"no {treatment!r} rows to adjust")
    missing = sorted(set(mediators) - set(draws["mediator"].astype(str)))
    if missing:
        raise EstimationError(f"no bootstrap draws for {missing}")
    draws = draws[draws["mediator"].isin(mediators)]
    observed = dict(zip(mediators, rows["estimate"].astype(float), strict=True))
    boot_t = _boot_t_matrix(draws, mediators, observed)
    rw = romano_wolf(rows["t_stat"].to_numpy(dtype=float), boot_t)
    n_boot = boot_t.shape[0]
    desc = (
        f"Romano-Wolf stepdown over {mediators}: studentised cluster (pairs) bootstrap by {cluster} "
        f"(copies are new clusters), B={n_boot}"
        + (f", seed {seed}" if seed is not None else "")
        + "; null imposed by centring, t* = (b* - b)/se*; p = (#{max|t*| >= |t|} + 1)/(B + 1)"
    )
    out = rows.copy()
    out["term"] = RWOLF_PREFIX + treatment
    out["std_error"] = math.nan
    out["conf_low"] = math.nan
    out["conf_high"] = math.nan
    out["p_value"] = rw.adjusted
    out["vcov"] = desc
    return est.rows_to_frame(out.to_dict("records"))


def indirect_bootstrap_rows(
    three_step_rows: pd.DataFrame,
    draws: pd.DataFrame,
    *,
    outcome: str = "lq",
    treatment: str = "dual_post",
    seed: int | None = None,
    cluster: str = "city_code",
    level: float = 0.95,
) -> pd.DataFrame:
    """Percentile bootstrap interval of a·b for each mediator of `three_step_rows`.

    Row: model "three-step (descriptive) M: indirect (cluster bootstrap)", term "indirect",
    estimate = a·b of the full sample, std_error = SD of the bootstrap a·b (ddof 1), conf_low/high =
    the (1 ± level)/2 quantiles of the bootstrap a·b (numpy's linear interpolation), t and p NaN.
    """
    frames = []
    for m in draws["mediator"].astype(str).unique():
        names = _three_step_models(outcome, m, treatment)
        sobel_row = three_step_rows[three_step_rows["model"] == names["sobel"]]
        if sobel_row.empty:
            continue
        ab = draws.loc[draws["mediator"] == m, "indirect"].to_numpy(dtype=float)
        if ab.size < 2 or not np.isfinite(ab).all():
            raise EstimationError(
                f"bootstrap draws of a·b for {m} are missing (three_step_models?)"
            )
        lo, hi = np.quantile(ab, [(1 - level) / 2, (1 + level) / 2])
        row = sobel_row.iloc[0].to_dict()
        row.update(
            model=names["bootstrap"],
            std_error=float(ab.std(ddof=1)),
            t_stat=math.nan,
            p_value=math.nan,
            conf_low=float(lo),
            conf_high=float(hi),
            vcov=(
                f"cluster (pairs) bootstrap by {cluster} (copies are new clusters), B={ab.size}"
                + (f", seed {seed}" if seed is not None else "")
                + f"; {level:.0%} percentile interval of a·b; descriptive"
            ),
        )
        frames.append(est.rows_to_frame([row]))
    if not frames:
        raise EstimationError("no three-step rows match the bootstrap draws")
    return est.concat_tidy(frames)


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------


def estimation_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """outcome, unit, time and cluster from the config's `estimation:` block, for `mechanisms` and
    `heterogeneity.heterogeneity` (keyword arguments).

    These analyses use CRV1 errors by city with the unit and time effects of the baseline and no
    weights; any other setting raises EstimationError instead of being ignored.
    """
    opts = dict(options or {})
    known = {"outcome", "unit", "time", "province", "cluster", "vcov", "weights", "drop_singletons"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise EstimationError(f"unknown estimation options {unknown}")
    if opts.get("vcov", "cluster") != "cluster":
        raise EstimationError("mechanisms and heterogeneity need vcov: cluster (CRV1)")
    if opts.get("weights") is not None:
        raise EstimationError("mechanisms and heterogeneity do not support weights")
    if not opts.get("drop_singletons", True):
        raise EstimationError(
            "mechanisms and heterogeneity drop singletons (drop_singletons: true)"
        )
    out = {
        "outcome": str(opts.get("outcome", "lq")),
        "unit": str(opts.get("unit", "city_code")),
        "time": str(opts.get("time", "year")),
        "cluster": str(opts.get("cluster", "city_code")),
    }
    if out["cluster"] != out["unit"]:
        raise EstimationError(
            f"the cluster bootstrap and the permutation test resample units: cluster "
            f"({out['cluster']!r}) must equal unit ({out['unit']!r})"
        )
    return out


def mechanisms(
    panel: pd.DataFrame,
    controls: Sequence[str],
    *,
    mediators: Sequence[str] = DEFAULT_MEDIATORS,
    outcome: str = "lq",
    treatment: str = "dual_post",
    three_step_models: bool = False,
    reps: int = 500,
    seed: int = 0,
    draws: pd.DataFrame | None = None,
    unit: str = "city_code",
    time: str = "year",
    cluster: str = "city_code",
    engine: Engine = "fast",
) -> pd.DataFrame:
    """The mechanism analysis as one tidy frame (results/estimates/mechanisms.csv).

    Rows: the two-step coefficient of each mediator (model = mediator); with `reps` > 0 its
    Romano-Wolf adjusted p-value ("rwolf: <treatment>"); with `three_step_models` the descriptive
    three-step blocks with Sobel rows and, with `reps` > 0, the bootstrap interval of a·b.
    `draws` (from `bootstrap_draws`/`gather_draws`, e.g. computed in shards) replaces the bootstrap
    of this call; it must hold draws 0..reps-1.
    """
    meds = _check_mediators(mediators, outcome, treatment)
    if reps < 0:
        raise ValueError(f"reps must be >= 0, got {reps}")
    if reps > 0 and cluster != unit:
        raise EstimationError(
            f"the cluster bootstrap needs cluster == unit, got {cluster!r}, {unit!r}"
        )
    frames = [
        two_step(panel, meds, controls, treatment=treatment, unit=unit, time=time, cluster=cluster)
    ]
    steps = None
    if three_step_models:
        steps = three_step(
            panel,
            meds,
            controls,
            outcome=outcome,
            treatment=treatment,
            unit=unit,
            time=time,
            cluster=cluster,
        )
    if reps > 0:
        if draws is None:
            draws = bootstrap_draws(
                panel,
                meds,
                controls,
                draws=range(reps),
                seed=seed,
                outcome=outcome,
                treatment=treatment,
                three_step_models=three_step_models,
                unit=unit,
                time=time,
                engine=engine,
            )
        draws = gather_draws([draws], reps)
        frames.append(
            romano_wolf_rows(frames[0], draws, treatment=treatment, seed=seed, cluster=cluster)
        )
    if steps is not None:
        frames.append(steps)
        if reps > 0 and draws is not None:
            frames.append(
                indirect_bootstrap_rows(
                    steps, draws, outcome=outcome, treatment=treatment, seed=seed, cluster=cluster
                )
            )
    return est.concat_tidy(frames)
