"""Benchmark: the vectorised placebo engine against per-draw regression loops (not a test).

On one synthetic city x year panel (default 298 x 18, six controls, staggered treatment), this times

- the engine (`dualpilot.engines.placebo.PlaceboEngine.estimate`) on `--draws` space-placebo draws,
- the draw generation (`draw_assignments`) for the same draws,
- a per-draw pyfixest loop (`feols("y ~ D + controls | unit + year", vcov={"CRV1": "unit"})`) and
- a per-draw linearmodels loop (`PanelOLS(entity + time effects).fit(cov_type="clustered")`),

the two loops on the first `--loop-draws` draws only, extrapolated per draw (the output says so). Each
method is timed `--repeats` times and the best time is reported (robust to a busy machine). It also
checks that the engine reproduces pyfixest on the timed loop draws. Nothing in the environment is changed;
the BLAS thread count in use is reported.

    python bench/placebo_engine.py --draws 10000 --units 298 --years 18
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from dualpilot.engines.placebo import PlaceboEngine, draw_assignments  # noqa: E402

CONTROLS = [f"x{j}" for j in range(1, 7)]
COHORTS = (2012, 2013, 2014, 2017)


def synthetic_panel(n_units: int, n_years: int, seed: int) -> pd.DataFrame:
    """Balanced unit x year panel: six controls, a third of units treated in staggered cohorts."""
    rng = np.random.default_rng(seed)
    years = np.arange(2006, 2006 + n_years)
    df = pd.DataFrame(
        {
            "unit": np.repeat([f"{110000 + 100 * i:06d}" for i in range(n_units)], n_years),
            "year": np.tile(years, n_units),
        }
    )
    start = np.where(rng.random(n_units) < 1 / 3, rng.choice(COHORTS, n_units), np.nan)
    df["start"] = np.repeat(start, n_years)
    n = len(df)
    for j, c in enumerate(CONTROLS):
        df[c] = np.repeat(rng.normal(size=n_units), n_years) + (0.2 + 0.1 * j) * rng.normal(size=n)
    treated = (df["year"] >= df["start"]).to_numpy()
    df["y"] = (
        np.repeat(rng.normal(size=n_units), n_years)
        + np.tile(rng.normal(size=n_years), n_units)
        + df[CONTROLS].to_numpy() @ np.linspace(0.1, -0.1, len(CONTROLS))
        + 0.3 * treated
        + rng.normal(scale=0.5, size=n)
    )
    return df


def blas_threads() -> str:
    """Threads of the OpenBLAS that numpy uses (best effort), and the relevant environment."""
    env = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    count = "unknown"
    libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in glob.glob(str(libdir / "libscipy_openblas*.so")):
        try:
            fn = ctypes.CDLL(lib).scipy_openblas_get_num_threads64_
            fn.restype = ctypes.c_int
            count = str(fn())
        except (OSError, AttributeError):
            pass
    return f"OpenBLAS threads {count}; {env}; cpu_count {os.cpu_count()}"


def with_treatment(df: pd.DataFrame, units: pd.Index, starts: np.ndarray) -> pd.DataFrame:
    d = df.copy()
    d["D"] = (d["year"] >= d["unit"].map(dict(zip(units, starts, strict=True)))).astype(float)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--draws", type=int, default=10_000, help="placebo draws for the engine")
    ap.add_argument("--units", type=int, default=298)
    ap.add_argument("--years", type=int, default=18)
    ap.add_argument("--loop-draws", type=int, default=20, help="draws timed in the per-draw loops")
    ap.add_argument(
        "--repeats", type=int, default=3, help="timings of each method; the best is reported"
    )
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()

    import linearmodels
    import pyfixest
    from linearmodels import PanelOLS
    from pyfixest import feols

    df = synthetic_panel(args.units, args.years, args.seed)
    fml = "y ~ D + " + " + ".join(CONTROLS) + " | unit + year"
    lm_fml = "y ~ D + " + " + ".join(CONTROLS) + " + EntityEffects + TimeEffects"
    print(
        f"panel: {args.units} units x {args.years} years = {len(df)} rows, {len(CONTROLS)} controls"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pyfixest "
        f"{pyfixest.__version__}, linearmodels {linearmodels.__version__}; {platform.machine()}"
    )
    print(f"threads: {blas_threads()}")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))

    def best_of(run: Callable[[], object]) -> float:
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        return best

    t0 = time.perf_counter()
    engine = PlaceboEngine(df, "y", CONTROLS, unit="unit", time="year", cluster="unit")
    t_setup = time.perf_counter() - t0
    base = engine.unit_values(df, "start")
    starts = draw_assignments("space", base, range(args.draws), seed=args.seed)
    t_draws = best_of(lambda: draw_assignments("space", base, range(args.draws), seed=args.seed))
    res = engine.estimate(starts)  # warm-up, kept for the check below
    t_engine = best_of(lambda: engine.estimate(starts))

    n_loop = min(args.loop_draws, args.draws)
    loop_panels = [with_treatment(df, engine.units, s) for s in starts[:n_loop]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [feols(fml, d, vcov={"CRV1": "unit"}) for d in loop_panels]  # warm-up, kept
        coefs = [(f.coef()["D"], f.se()["D"]) for f in fits]
        t_pf = best_of(
            lambda: [
                (f.coef()["D"], f.se()["D"])
                for f in (feols(fml, d, vcov={"CRV1": "unit"}) for d in loop_panels)
            ]
        )
        lm_panels = [d.set_index(["unit", "year"]) for d in loop_panels]
        PanelOLS.from_formula(lm_fml, lm_panels[0]).fit(cov_type="clustered", cluster_entity=True)
        t_lm = best_of(
            lambda: [
                PanelOLS.from_formula(lm_fml, d)
                .fit(cov_type="clustered", cluster_entity=True)
                .params["D"]
                for d in lm_panels
            ]
        )

    pf_coef, pf_se = np.array(coefs).T
    diff_b = np.max(np.abs(res["estimate"].to_numpy()[:n_loop] - pf_coef))
    diff_se = np.max(np.abs(res["std_error"].to_numpy()[:n_loop] / pf_se - 1))

    per = {
        "engine (estimate only)": t_engine / args.draws,
        "engine incl. draw generation": (t_engine + t_draws) / args.draws,
        f"pyfixest loop ({n_loop} draws, extrapolated)": t_pf / n_loop,
        f"linearmodels loop ({n_loop} draws, extrapolated)": t_lm / n_loop,
    }
    print(
        f"engine: setup {t_setup * 1e3:.1f} ms, chunk {engine.chunk_size} draws, "
        f"{args.draws} draws in {t_engine:.3f} s (best of {args.repeats}); "
        f"draw generation {t_draws:.3f} s"
    )
    print(
        f"check on the {n_loop} loop draws: max |b_engine - b_pyfixest| = {diff_b:.1e}, "
        f"max |se_engine / se_pyfixest - 1| = {diff_se:.1e}"
    )
    print(f"\n{'method':<44}{'per draw':>14}{'x engine':>12}")
    for name, sec in per.items():
        print(f"{name:<44}{sec * 1e6:>11.1f} us{sec / per['engine (estimate only)']:>12.1f}")
    print(
        f"\nspeed-up vs pyfixest loop: {per[list(per)[2]] / per[list(per)[0]]:.0f}x (estimate only), "
        f"{per[list(per)[2]] / per[list(per)[1]]:.0f}x (incl. draw generation)"
    )
    print(
        f"speed-up vs linearmodels loop: {per[list(per)[3]] / per[list(per)[0]]:.0f}x (estimate only)"
    )
    print(
        f"loops timed on {n_loop} draws and extrapolated per draw; "
        f"{args.draws} pyfixest fits would take ~{t_pf / n_loop * args.draws:.0f} s"
    )
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
