"""Benchmark: the vectorised bdiff permutation draws against the per-draw refit they replaced (not a test).

On the demo panel (built by the workflow from the demo extracts in a temporary copy, or `--panel PATH`, a
built results/panel/panel.parquet), with the config's heterogeneity settings (dimensions, seed, baseline
year, controls, estimation options, and its draw count unless `--draws` is given), this times for every
between-group comparison, in the same run:

- `heterogeneity.bdiff_draws` (the vectorised engine: per-city cross-products summed over the permuted
  groups, batched solves), best of `--repeats`;
- `heterogeneity.bdiff_draws_reference` (refit="twfe": one `mechanisms.TwfeDesign` per group and draw,
  what the workflow ran before), timed once (it is the slow one);

and prints wall and CPU seconds of both, the ratio, and the largest absolute difference of the gaps (the
two must agree to 1e-10). Draw generation (one seeded generator per draw) is inside both timings. The
BLAS threads and the load average are printed; nothing in the environment is changed.

    python bench/bdiff_engine.py                      # the config's draws (1000) per comparison
    python bench/bdiff_engine.py --draws 200 --panel results/panel/panel.parquet
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

from full_rebuild import copy_sources  # noqa: E402

from dualpilot.analyses import heterogeneity as het  # noqa: E402
from dualpilot.analyses.mechanisms import estimation_options  # noqa: E402

PANEL = "results/panel/panel.parquet"


def demo_panel() -> pd.DataFrame:
    """The demo panel, built by `snakemake results/panel/panel.parquet` in a temporary copy."""
    work = Path(tempfile.mkdtemp(prefix="dualpilot-bdiff-bench-"))
    try:
        copy_sources(work)
        env = dict(
            os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", PANEL],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"building the demo panel failed:\n{proc.stderr[-3000:]}")
        return pd.read_parquet(work / PANEL)
    finally:
        shutil.rmtree(work)


def timed(run: Callable[[], pd.DataFrame], repeats: int) -> tuple[float, float, pd.DataFrame]:
    """Best wall and CPU seconds over `repeats` runs, and the last result."""
    best_wall = best_cpu = float("inf")
    out = pd.DataFrame()
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = run()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, out


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--panel", type=Path, help="a built panel.parquet (default: build the demo's)")
    ap.add_argument("--draws", type=int, help="draws per comparison (default: the config's)")
    ap.add_argument(
        "--repeats", type=int, default=3, help="timings of the engine; the best is kept"
    )
    args = ap.parse_args()

    config = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
    spec = config["heterogeneity"]
    n_draws = spec["draws"] if args.draws is None else args.draws
    options = estimation_options(config["estimation"])
    dims = het.dimensions_from_config(spec["dimensions"])
    panel = pd.read_parquet(args.panel) if args.panel else demo_panel()
    groups = het.baseline_groups(panel, dims, before=spec["baseline_before"])
    print(
        f"panel: {panel['city_code'].nunique()} cities, {len(panel)} rows"
        f" ({args.panel or 'the demo, built now'}); {n_draws} draws per comparison, seed "
        f"{spec['seed']}, controls {config['controls']}"
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}; cpu_count {os.cpu_count()}")
    threads = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"threads: {threads}")
    print(f"load average (1, 5, 15 min) at start: {load()}\n")

    head = (
        f"{'comparison':<28}{'engine s':>10}{'cpu s':>8}{'per-draw s':>12}{'cpu s':>8}"
        f"{'x wall':>8}{'x cpu':>8}{'max |gap diff|':>16}"
    )
    print(head)
    print("-" * len(head))
    totals = np.zeros(4)
    worst = 0.0
    for dim in dims.values():
        for pair in dim.pairs:
            kw = dict(
                pair=pair,
                groups=groups,
                controls=config["controls"],
                stratify_treated=spec["stratify_treated"],
                **options,
            )
            draws = range(n_draws)
            new_wall, new_cpu, new = timed(
                lambda: het.bdiff_draws(panel, dim, draws, spec["seed"], **kw),  # noqa: B023
                args.repeats,
            )
            old_wall, old_cpu, old = timed(
                lambda: het.bdiff_draws_reference(panel, dim, draws, spec["seed"], **kw),  # noqa: B023
                1,
            )
            diff = float(np.abs(new["gap"].to_numpy() - old["gap"].to_numpy()).max())
            worst = max(worst, diff)
            totals += (new_wall, new_cpu, old_wall, old_cpu)
            print(
                f"{het.comparison_label(dim.name, pair):<28}{new_wall:>10.3f}{new_cpu:>8.3f}"
                f"{old_wall:>12.2f}{old_cpu:>8.2f}{old_wall / new_wall:>8.0f}"
                f"{old_cpu / new_cpu:>8.0f}{diff:>16.1e}"
            )
    print("-" * len(head))
    print(
        f"{'total':<28}{totals[0]:>10.3f}{totals[1]:>8.3f}{totals[2]:>12.2f}{totals[3]:>8.2f}"
        f"{totals[2] / totals[0]:>8.0f}{totals[3] / totals[1]:>8.0f}{worst:>16.1e}"
    )
    print(
        f"\nengine: best of {args.repeats}; per-draw refit (mechanisms.TwfeDesign per group and draw): "
        "timed once; both include the draws' generation"
    )
    print(f"load average (1, 5, 15 min) at the end: {load()}")
    if worst > 1e-10:
        sys.exit(f"the engine and the per-draw refit differ by {worst:.2e} > 1e-10")


if __name__ == "__main__":
    main()
