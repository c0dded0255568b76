"""Benchmark: the project's imputation estimator against pyfixest's did2s on the workflow's own calls
(not a test; docs/staggered-did.md, "Why the imputation estimator is our own, not pyfixest.did2s").

On the demo panel (results/panel/panel.parquet: build it first with
`snakemake --cores 2 results/panel/panel.parquet`) and with the settings of config/config.yaml, this times
in one process, `--repeats` rounds after one warm-up call, the routes taking turns within each round
(wall-clock median and best, CPU-time median reported):

- `staggered.imputation_did_with_vcov` as rule estimate_staggered calls it (dual_year cohorts, the six
  controls + sc_only_post + lc_only_post, clusters city_code): the static ATT alone, the event study alone
  (its vcov feeds HonestDiD), and all three aggregations (simple, dynamic, group: the rule's call);
- `pilot_order.state_imputation` as rule estimate_pilot_order calls it (first_pilot_year, the states model
  and the pilot-order model);

against the same estimands by `pyfixest.did2s` (one call per second stage: the mutually exclusive dummies
of each aggregation, the treatment flag of the untreated observations, cluster city_code), building the
dummy columns inside the timed call, as a switch would. did2s is timed twice: as shipped (its first stage
demeans with tolerance 1e-6 and recovers the fixed effects by LSQR with atol 1e-6) and with the tight
first stage the agreement tests use (fixef_tol 1e-13, LSQR atol/btol 1e-14; tests/test_staggered.py). Next
to the times it prints the agreement: max |difference| of the coefficients, of the SEs and of the vcov
entries, and the number of observations each side used.

It also measures, each in `--cold-repeats` fresh Python processes (a Snakemake job is one): the import of
`dualpilot.did.staggered` alone and with `from pyfixest import did2s` (pyfixest 0.60 loads its modules lazily:
`import pyfixest` alone costs almost nothing, the first access to `did2s` loads them), and the first
event-study call in such a process (for did2s it includes numba's compilation or cache load); and it
reports whether the rules' jobs load pyfixest anyway (estimate_pilot_order fits TWFE models with it).

    python bench/did2s_vs_imputation.py --repeats 15 --cold-repeats 5
    python bench/did2s_vs_imputation.py --repeats 15 --cold-repeats 5 --openblas-autodetect
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if (
    __name__ == "__main__"
    and "--openblas-autodetect" in sys.argv
    and any(v in os.environ for v in OPENBLAS_OVERRIDES)
):  # before numpy loads OpenBLAS: run again without the two overrides (the flag stays, so once only)
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from dualpilot.analyses import baseline as analyses  # noqa: E402
from dualpilot.analyses import pilot_order, samples, staggered_did  # noqa: E402
from dualpilot.data.panel import read_panel  # noqa: E402
from dualpilot.did import staggered  # noqa: E402

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
CONTROLS: list[str] = list(CONFIG["controls"])
EST = CONFIG["estimation"]
UNIT, TIME, OUTCOME, CLUSTER = EST["unit"], EST["time"], EST["outcome"], EST["cluster"]
STATES = list(staggered_did.SINGLE_PILOT_STATES)  # sc_only_post, lc_only_post (adjust_single_pilots)


# ------------------------------------------------------------------------------------- the workflow's data


def staggered_data(panel: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The data and covariates of rule estimate_staggered's imputation call (adjust_single_pilots on)."""
    data = analyses.pilot_states(panel)
    covs = [*CONTROLS, *STATES]
    fe_data, _ = samples.complete_cases(data, [OUTCOME, *covs], unit=UNIT)
    return fe_data.reset_index(drop=True), covs


def pilot_order_data(panel: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The data and the two state lists of rule estimate_pilot_order's state imputations."""
    data = analyses.pilot_states(panel)
    data = pd.concat(
        [data, pilot_order.order_indicators(data), pilot_order.first_pilot_year(data)], axis=1
    )
    present = [t for t in pilot_order.ORDER_TERMS.values() if data[t].any()]
    complete, _ = samples.complete_cases(data, [OUTCOME, *CONTROLS], unit=UNIT)
    models = {"states": list(pilot_order.STATE_TERMS), "order": [*STATES, *present]}
    return complete.reset_index(drop=True), models


# ------------------------------------------------------------------------------------------ the two routes


@contextlib.contextmanager
def tight_did2s() -> Iterator[None]:
    """did2s with the exact first stage of the agreement tests (the estimator code unchanged)."""
    module = importlib.import_module("pyfixest.did.did2s")
    from pyfixest.demeaners import MapDemeaner
    from pyfixest.estimation.models.feols_ import Feols

    feols, fixef = module.feols, Feols.fixef
    tight = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=1_000_000)
    module.feols = functools.partial(feols, demeaner=tight)
    Feols.fixef = lambda self, atol=1e-14, btol=1e-14: fixef(self, atol, btol)
    try:
        yield
    finally:
        module.feols, Feols.fixef = feols, fixef


def _event_masks(data: pd.DataFrame, first_treat: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = data[first_treat].to_numpy(dtype=float)
    ever = np.isfinite(g) & (g != 0)
    rel = np.where(ever, data[TIME].to_numpy(dtype=float) - np.where(ever, g, 0), np.nan)
    return g, ever, rel


def did2s_aggregation(data: pd.DataFrame, covs: list[str], aggregation: str) -> dict[str, object]:
    """One aggregation of the imputation estimator by pyfixest.did2s: the second stage on the mutually
    exclusive dummies of `aggregation` (all leads kept, as staggered.imputation_did does)."""
    import pyfixest as pf

    g, ever, rel = _event_masks(data, "dual_year")
    post = ever & (rel >= 0)
    if aggregation == "simple":
        masks = {"ATT": post}
    elif aggregation == "dynamic":
        masks = {f"rel_{int(e)}": ever & (rel == e) for e in np.unique(rel[ever])}
    else:
        masks = {f"group_{int(c)}": post & (g == c) for c in np.unique(g[post])}
    names = {term: f"_d{k}" for k, term in enumerate(masks)}
    frame = data.assign(**{names[t]: m.astype(float) for t, m in masks.items()}, _treated=post)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecations inside pyfixest 0.60
        fit = pf.did2s(
            frame,
            yname=OUTCOME,
            first_stage=f"~ {' + '.join(covs)} | {UNIT} + {TIME}",
            second_stage="~ " + " + ".join(names.values()),
            treatment="_treated",
            cluster=CLUSTER,
        )
    cols = list(names.values())
    return {
        "coef": fit.coef()[cols].to_numpy(),
        "se": fit.se()[cols].to_numpy(),
        "vcov": np.asarray(fit._vcov),
        "terms": list(masks),
        "n_obs": int(fit._N),
    }


def own_aggregations(data: pd.DataFrame, covs: list[str], aggs: tuple[str, ...]) -> list[dict]:
    tidy, vcovs = staggered.imputation_did_with_vcov(
        data, UNIT, TIME, "dual_year", OUTCOME, covs, cluster=CLUSTER, aggregations=aggs
    )
    out = []
    for a in aggs:
        rows = tidy[tidy["aggregation"] == a]
        out.append(
            {
                "coef": rows["estimate"].to_numpy(),
                "se": rows["std_error"].to_numpy(),
                "vcov": vcovs[a].to_numpy(),
                "terms": list(rows["term"]),
                "n_obs": int(rows["n_obs"].iloc[0]),
            }
        )
    return out


def did2s_states(data: pd.DataFrame, states: list[str]) -> dict[str, object]:
    import pyfixest as pf

    frame = data.assign(_treated=(data[TIME] >= data["first_pilot_year"]).to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.did2s(
            frame,
            yname=OUTCOME,
            first_stage=f"~ {' + '.join(CONTROLS)} | {UNIT} + {TIME}",
            second_stage="~ " + " + ".join(states),
            treatment="_treated",
            cluster=CLUSTER,
        )
    return {
        "coef": fit.coef()[states].to_numpy(),
        "se": fit.se()[states].to_numpy(),
        "vcov": np.asarray(fit._vcov),
        "terms": states,
        "n_obs": int(fit._N),
    }


def own_states(data: pd.DataFrame, states: list[str]) -> dict[str, object]:
    fit = pilot_order.state_imputation(
        data, states, CONTROLS, outcome=OUTCOME, unit=UNIT, time=TIME, cluster=CLUSTER
    )
    return {
        "coef": fit.coef[states].to_numpy(),
        "se": fit.se[states].to_numpy(),
        "vcov": fit.vcov.loc[states, states].to_numpy(),
        "terms": states,
        "n_obs": int(fit.n_obs),
    }


# ------------------------------------------------------------------------------------------------ timing


def timed(
    routes: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[object, dict[str, float]]]:
    """Each route's result (one warm-up call) and its wall-clock median and best and CPU-time median over
    `repeats` rounds (seconds). The routes take turns within each round, so a busy machine slows them alike.
    """
    results = {name: fn() for name, fn in routes.items()}
    wall: dict[str, list[float]] = {name: [] for name in routes}
    cpu: dict[str, list[float]] = {name: [] for name in routes}
    for _ in range(repeats):
        for name, fn in routes.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: (
            results[name],
            {
                "median": statistics.median(wall[name]),
                "best": min(wall[name]),
                "cpu": statistics.median(cpu[name]),
            },
        )
        for name in routes
    }


def tight(fn: Callable[[], list]) -> Callable[[], list]:
    def run() -> list:
        with tight_did2s():
            return fn()

    return run


def agreement(own: list[dict], ref: list[dict]) -> dict[str, float]:
    """Max |difference| over the aggregations' coefficients, SEs and vcov entries."""
    out = {"coef": 0.0, "se": 0.0, "vcov": 0.0, "se_rel": 0.0}
    for a, b in zip(own, ref, strict=True):
        if a["terms"] != b["terms"]:
            raise AssertionError(f"terms differ: {a['terms']} vs {b['terms']}")
        out["coef"] = max(out["coef"], float(np.max(np.abs(a["coef"] - b["coef"]))))
        out["se"] = max(out["se"], float(np.max(np.abs(a["se"] - b["se"]))))
        out["se_rel"] = max(out["se_rel"], float(np.max(np.abs(a["se"] / b["se"] - 1))))
        out["vcov"] = max(out["vcov"], float(np.max(np.abs(a["vcov"] - b["vcov"]))))
    return out


def cases(panel: pd.DataFrame) -> list[tuple[str, Callable[[], list], Callable[[], list]]]:
    """(label, own route, did2s route) of each call of the workflow; both return a list of blocks."""
    data, covs = staggered_data(panel)
    order_data, models = pilot_order_data(panel)

    def own(aggs: tuple[str, ...]) -> Callable[[], list]:
        return lambda: own_aggregations(data, covs, aggs)

    def ref(aggs: tuple[str, ...]) -> Callable[[], list]:
        return lambda: [did2s_aggregation(data, covs, a) for a in aggs]

    out = [
        ("staggered: static ATT (simple)", own(("simple",)), ref(("simple",))),
        ("staggered: event study (dynamic + vcov)", own(("dynamic",)), ref(("dynamic",))),
        (
            "staggered: simple+dynamic+group (the rule's call)",
            own(("simple", "dynamic", "group")),
            ref(("simple", "dynamic", "group")),
        ),
    ]
    for name, states in models.items():
        out.append(
            (
                f"pilot order: state imputation ({name})",
                functools.partial(lambda s: [own_states(order_data, s)], states),
                functools.partial(lambda s: [did2s_states(order_data, s)], states),
            )
        )
    return out


# ---------------------------------------------------------------------------------- fresh processes


def child(route: str, panel_path: str) -> None:
    """In a fresh process: time the imports a route needs and its first event-study call; print JSON."""
    start = time.perf_counter()
    if route == "did2s":
        from pyfixest import did2s  # noqa: F401  (pyfixest loads its modules on first access)
    t_import = time.perf_counter() - start
    panel = read_panel(panel_path)
    data, covs = staggered_data(panel)
    start = time.perf_counter()
    if route == "did2s":
        did2s_aggregation(data, covs, "dynamic")
    else:
        own_aggregations(data, covs, ("dynamic",))
    t_first = time.perf_counter() - start
    print(json.dumps({"import": t_import, "first_call": t_first}))


def fresh_process_times(route: str, panel_path: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", route, "--panel", str(panel_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs) for k in ("import", "first_call")}


def import_times(repeats: int) -> dict[str, float]:
    """Median wall time of a fresh interpreter that imports only the named modules."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")}
    stmts = {
        "python -c pass": "pass",
        "import dualpilot.did.staggered": "import dualpilot.did.staggered",
        "import dualpilot.did.staggered; from pyfixest import did2s": (
            "import dualpilot.did.staggered; from pyfixest import did2s"
        ),
    }
    out = {}
    for label, stmt in stmts.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", stmt], env=env, check=True)
            times.append(time.perf_counter() - start)
        out[label] = statistics.median(times)
    return out


def jobs_import_pyfixest(panel_path: Path) -> dict[str, bool]:
    """Whether the functions of rules estimate_staggered and estimate_pilot_order import pyfixest."""
    code = (
        "import sys, yaml\n"
        "from dualpilot.analyses import pilot_order, staggered_did\n"
        "from dualpilot.data.panel import read_panel\n"
        f"panel = read_panel({str(panel_path)!r})\n"
        f"c = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))\n"
        "if sys.argv[1] == 'estimate_staggered':\n"
        "    s = dict(c['robustness']['staggered']); use = s.pop('use_controls')\n"
        "    staggered_did.staggered_estimates_with_vcov(panel, c['controls'] if use else (),\n"
        "        adjust_single_pilots=c['event_study']['adjust_single_pilots'], **s)\n"
        "else:\n"
        "    pilot_order.two_treatment_design(panel, c['controls'])\n"
        "print('pyfixest.did.did2s' in sys.modules or 'pyfixest.estimation' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")}
    out = {}
    for rule in ("estimate_staggered", "estimate_pilot_order"):
        proc = subprocess.run(
            [sys.executable, "-c", code, rule], env=env, capture_output=True, text=True, check=True
        )
        out[rule] = proc.stdout.strip().splitlines()[-1] == "True"
    return out


# ------------------------------------------------------------------------------------------------- main


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p['internal_api']} {p.get('version')} {p.get('architecture')} kernel, "
            f"{p['num_threads']} threads"
            for p in threadpool_info()
        ]
    except ImportError:  # pragma: no cover - threadpoolctl is pinned in requirements.txt
        pools = ["threadpoolctl not installed"]
    env = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in OPENBLAS_OVERRIDES)
    return "; ".join([*dict.fromkeys(pools), env])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--panel",
        type=Path,
        default=REPO / "results" / "panel" / "panel.parquet",
        help="the city panel (default results/panel/panel.parquet)",
    )
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per route (median, best)")
    ap.add_argument(
        "--cold-repeats", type=int, default=3, help="fresh processes per import/first-call timing"
    )
    ap.add_argument(
        "--openblas-autodetect",
        action="store_true",
        help="run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS\n"
        "builds; they slow a current numpy), so OpenBLAS picks its kernel; fresh processes inherit it",
    )
    ap.add_argument("--child", choices=["own", "did2s"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.panel.is_file():
        sys.exit(
            f"{args.panel} not found: build it with `snakemake --cores 2 results/panel/panel.parquet`"
        )
    if args.child:
        child(args.child, str(args.panel))
        return
    if args.repeats < 1 or args.cold_repeats < 1:
        ap.error("--repeats and --cold-repeats must be >= 1")

    import pyfixest

    panel = read_panel(args.panel)
    print(
        f"python {platform.python_version()}, pyfixest {pyfixest.__version__}, numpy {np.__version__}; "
        f"{blas_info()}; cpu_count {os.cpu_count()}"
    )
    print(
        f"panel {args.panel}: {len(panel)} rows; {args.repeats} rounds after a warm-up, the routes "
        "taking turns in each; wall-clock median and best, CPU-time median (all threads); x own = "
        "ratio of the wall medians; max|d...| = did2s minus own\n"
    )
    header = (
        f"{'call':<52} {'route':<12} {'median s':>9} {'best s':>8} {'cpu s':>9} {'x own':>6} {'n_obs':>6} "
        f"{'max|dcoef|':>10} {'max|dSE|':>9} {'max|dSE|/SE':>11} {'max|dV|':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, own_fn, ref_fn in cases(panel):
        timings = timed(
            {"own": own_fn, "did2s": ref_fn, "did2s tight": tight(ref_fn)}, args.repeats
        )
        own_res, own_t = timings["own"]
        for route, (res, t) in timings.items():
            line = (
                f"{label if route == 'own' else '':<52} {route:<12} {t['median']:9.4f} "
                f"{t['best']:8.4f} {t['cpu']:9.4f} {t['median'] / own_t['median']:6.2f} "
                f"{res[0]['n_obs']:6d}"
            )
            if route != "own":
                agree = agreement(own_res, res)
                line += (
                    f" {agree['coef']:10.1e} {agree['se']:9.1e} {agree['se_rel']:11.1e} "
                    f"{agree['vcov']:9.1e}"
                )
            print(line)

    print(f"\nfresh processes (median of {args.cold_repeats}):")
    for label, seconds in import_times(args.cold_repeats).items():
        print(f"  {label:<56} {seconds:7.3f} s (interpreter start included)")
    for route in ("own", "did2s"):
        t = fresh_process_times(route, args.panel, args.cold_repeats)
        extra = "+ pyfixest.did2s" if route == "did2s" else "no extra import"
        print(
            f"  {route:<6} {extra:<17} {t['import']:7.3f} s; first event-study call "
            f"{t['first_call']:7.3f} s"
        )
    for rule, imports in jobs_import_pyfixest(args.panel).items():
        print(
            f"  rule {rule} loads pyfixest (pyfixest.estimation) today: {'yes' if imports else 'no'}"
        )


if __name__ == "__main__":
    main()
