"""Measurements for the scale benchmarks: each one in a fresh Python process (not a test).

`bench/scale.py` and `bench/cost_curves.py` call `measure(task, ...)`, which runs this file as a
worker in a new interpreter and reads back one JSON line. One process per measurement, so that the
peak memory of one task is not inherited from the previous one. The worker

1. imports the package (from `--package`, default workflow/scripts: point it at a patched copy to
   measure a proposed change) and reads the panel (Parquet, written once by the task `panel`);
2. frees what reading left behind (garbage collection, pyarrow's memory pool, glibc `malloc_trim`),
   records the resident memory, then resets the process's peak-RSS counter (writing 5 to
   /proc/self/clear_refs resets VmHWM and getrusage's ru_maxrss on Linux);
3. runs the task once (pyfixest tasks after an untimed warm-up fit on 200 units, which compiles
   pyfixest's numba kernels) and reports its wall time, the RSS before it and the peak RSS during it
   (`resource.getrusage(RUSAGE_SELF).ru_maxrss` after the reset), and the increment.

Tasks:

- ``panel``: `dualpilot.demo.extracts.generate_panel(n_units, n_years, seed, <config demo effects>)`, the
  analysis-panel columns only, written to Parquet. Years end in 2023; for panels longer than the 18
  years of resources/macro/usd_cny.csv the earliest rate (2006) is carried back (a synthetic panel).
- ``engine``: `dualpilot.engines.placebo.run_shard` on all `draws` draws of `kind` (one shard), controls of
  the config, `max_bytes = max_mb MiB`: engine setup, draw generation and estimation, as a rule does.
  Then, after the peak is recorded, the engine's setup alone is timed once more (`setup_s`).
- ``fit``: `dualpilot.engines.estimation.fit` of baseline model (2) (`lq ~ dual_post + controls | city +
  year`, CRV1 by city) with pyfixest.
- ``loop``: the per-draw alternative: the first `draws` draws of `kind`, each a fresh
  `estimation.fit` (pyfixest) of `lq ~ D + controls | city + year` with D from the draw's fake dates.
  Reports seconds per draw, and checks the engine on the same draws (max |b_engine - b_loop|).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGE = REPO / "workflow" / "scripts"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "dualpilot-bench-panels"
LAST_YEAR = 2023


def _config() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


def panel_file(n_units: int, n_years: int, seed: int, cache: Path = DEFAULT_CACHE) -> Path:
    """The cached Parquet panel of that size (generated in a subprocess on first use)."""
    path = Path(cache) / f"panel_{n_units}x{n_years}_seed{seed}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        measure("panel", n_units=n_units, n_years=n_years, seed=seed, out=str(path))
    return path


def measure(task: str, *, package: Path | str = DEFAULT_PACKAGE, **kwargs: Any) -> dict[str, Any]:
    """Run one task in a fresh interpreter; returns its JSON record (raises if the worker fails)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), task, "--package", str(package)]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_average() -> str:
    """The load average (1, 5, 15 min) as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _settle() -> float:
    """Free what loading left behind; reset the peak-RSS counter; return the current RSS (MB)."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: nothing to trim
        pass
    before = _rss_mb()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return before


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make_panel(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from dualpilot.demo import extracts as demo

    years = range(LAST_YEAR - args.n_years + 1, LAST_YEAR + 1)
    rates = pd.read_csv(REPO / "resources" / "macro" / "usd_cny.csv").set_index("year")
    rates = rates["cny_per_usd"].reindex(range(min(years), LAST_YEAR + 1)).bfill()
    t0 = time.perf_counter()
    panel = demo.generate_panel(
        args.n_units, args.n_years, args.seed, _config()["demo"]["effects"],
        usd_cny=rates, start_year=min(years),
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    panel[list(demo.PANEL_COLUMNS)].to_parquet(args.out, index=False)
    return {"seconds": seconds, "rows": len(panel), "peak_rss_mb": _peak_mb()}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from dualpilot.engines import estimation, placebo

    cfg = _config()
    controls = cfg["controls"]
    panel = pd.read_parquet(args.panel)
    record: dict[str, Any] = {
        "task": args.task,
        "rows": len(panel),
        "units": int(panel["city_code"].nunique()),
        "years": int(panel["year"].nunique()),
    }
    if args.task in ("fit", "loop"):
        # Warm-up on the first 200 units (not timed): pyfixest compiles its numba kernels on first use.
        first = panel["city_code"].isin(np.sort(panel["city_code"].unique())[:200])
        estimation.fit(panel.loc[first], outcome="lq", terms=["dual_post"], controls=controls)
    if args.task == "engine":
        before = _settle()
        t0 = time.perf_counter()
        out = placebo.run_shard(
            panel, args.kind, 0, 1, args.draws, args.seed, None, "lq", controls,
            max_bytes=args.max_mb * 2**20,
        )  # fmt: skip
        seconds, peak = time.perf_counter() - t0, _peak_mb()
        del out
        t0 = time.perf_counter()  # again, after the peak is recorded: the setup alone
        engine = placebo.PlaceboEngine(panel, "lq", controls, max_bytes=args.max_mb * 2**20)
        record["setup_s"] = time.perf_counter() - t0
        record.update(
            draws=args.draws, kind=args.kind, max_mb=args.max_mb, chunk=engine.chunk_size,
            bytes_per_draw=engine.bytes_per_draw,
        )  # fmt: skip
    elif args.task == "fit":
        before = _settle()
        t0 = time.perf_counter()
        fit = estimation.fit(panel, outcome="lq", terms=["dual_post"], controls=controls)
        seconds, peak = time.perf_counter() - t0, _peak_mb()
        record.update(estimate=float(fit.coef["dual_post"]), std_error=float(fit.se["dual_post"]))
    elif args.task == "loop":
        engine = placebo.PlaceboEngine(panel, "lq", controls)
        base = engine.unit_values(panel, "dual_year")
        draws = range(args.draws)
        starts = placebo.draw_assignments(args.kind, base, draws, args.seed)
        reference = engine.estimate(starts)["estimate"].to_numpy()
        unit_pos = pd.Index(engine.units).get_indexer(panel["city_code"])
        year = panel["year"].to_numpy(dtype=float)
        del engine
        before = _settle()
        t0 = time.perf_counter()
        coefs = []
        for row in starts:
            data = panel.assign(D=(year >= row[unit_pos]).astype(float))
            fit = estimation.fit(data, outcome="lq", terms=["D"], controls=controls)
            coefs.append(float(fit.coef["D"]))
        seconds, peak = time.perf_counter() - t0, _peak_mb()
        record.update(
            draws=args.draws,
            kind=args.kind,
            seconds_per_draw=seconds / args.draws,
            max_abs_diff_vs_engine=float(np.max(np.abs(np.asarray(coefs) - reference))),
        )
    else:
        raise ValueError(f"unknown task {args.task!r}")
    record.update(
        seconds=seconds, rss_before_mb=before, peak_rss_mb=peak, increment_mb=peak - before
    )
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("task", choices=["panel", "engine", "fit", "loop"])
    ap.add_argument("--package", default=str(DEFAULT_PACKAGE), help="folder holding dualpilot/")
    ap.add_argument("--panel", help="Parquet panel (engine, fit, loop)")
    ap.add_argument("--n-units", type=int)
    ap.add_argument("--n-years", type=int)
    ap.add_argument("--seed", type=int, default=20260302)
    ap.add_argument("--out", help="Parquet file to write (panel)")
    ap.add_argument("--kind", default="space")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--max-mb", type=int, default=512, help="the engine's memory budget (MiB)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.package).resolve()))
    record = _make_panel(args) if args.task == "panel" else _run(args)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
