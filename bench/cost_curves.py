"""Benchmark: cost curves of the placebo engine against the per-draw pyfixest loop (not a test).

    python bench/cost_curves.py          # writes docs/performance-cost-curves.csv, docs/img/cost_curves.png

Two sweeps, every point measured in its own fresh process (bench/measure.py: wall seconds, resident
memory before the call, peak during it):

- panel rows at a fixed number of draws (`--draws`, default 200): generate_panel panels of 300 x 18,
  1000 x 18, 2850 x 18, 10000 x 20 and 50000 x 20 (1,000,000 rows);
- draws (100, 300, 1000, 3000, 10000) on the city-scale panel (300 x 18).

Each point puts the engine (`run_shard`, kind space, one shard: setup, draw generation, estimation)
beside the per-draw loop of `estimation.fit` (pyfixest) on the same panel, measured in the same run.
The loop is timed on a few draws only (20, or 3 on panels of 300,000 rows or more) and extrapolated
linearly to the draws of the point (seconds per draw x draws): the output and the CSV say so. The loop
also checks the engine on the timed draws (max |b_engine - b_pyfixest|). One pyfixest fit of the
baseline model is timed per panel for reference. Prints the ratios loop / engine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
from measure import DEFAULT_CACHE, DEFAULT_PACKAGE, REPO, load_average, measure, panel_file

SIZES = [(300, 18), (1000, 18), (2850, 18), (10_000, 20), (50_000, 20)]
DRAW_COUNTS = [100, 300, 1000, 3000, 10_000]
CITY = (300, 18)
SEED = 20260302
CSV = REPO / "docs" / "performance-cost-curves.csv"
FIGURE = REPO / "docs" / "img" / "cost_curves.png"


def loop_draws(rows: int) -> int:
    """Draws timed in the per-draw loop (the rest is extrapolated)."""
    return 3 if rows >= 300_000 else 20


def best(task: str, repeats: int, **kwargs) -> dict:
    """The fastest of `repeats` fresh-process measurements."""
    runs = [measure(task, **kwargs) for _ in range(repeats)]
    return min(runs, key=lambda r: r["seconds"])


def point(sweep: str, path: Path, draws: int, loop: dict, fit: dict | None, args) -> dict:
    eng = best("engine", args.repeats, package=args.package, panel=path, draws=draws)
    extrapolated = loop["seconds_per_draw"] * draws
    return {
        "sweep": sweep,
        "units": eng["units"],
        "years": eng["years"],
        "rows": eng["rows"],
        "draws": draws,
        "engine_s": eng["seconds"],
        "engine_setup_s": eng["setup_s"],
        "engine_s_per_draw": eng["seconds"] / draws,
        "engine_rss_before_mb": eng["rss_before_mb"],
        "engine_peak_mb": eng["peak_rss_mb"],
        "engine_increment_mb": eng["increment_mb"],
        "engine_chunk": eng["chunk"],
        "loop_draws_timed": loop["draws"],
        "loop_s_per_draw": loop["seconds_per_draw"],
        "loop_s_extrapolated": extrapolated,
        "loop_peak_mb": loop["peak_rss_mb"],
        "loop_increment_mb": loop["increment_mb"],
        "loop_max_abs_diff": loop["max_abs_diff_vs_engine"],
        "fit_s": fit["seconds"] if fit else float("nan"),
        "ratio_loop_over_engine": extrapolated / eng["seconds"],
        "load_1min": os.getloadavg()[0],
    }


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["sweep"] == "rows"]
    draws = table[table["sweep"] == "draws"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    d0 = int(rows["draws"].iloc[0])
    ax = axes[0, 0]
    ax.loglog(rows["rows"], rows["engine_s"], "o-", label=f"engine, {d0} draws")
    ax.loglog(rows["rows"], rows["loop_s_extrapolated"], "s--", label=f"pyfixest loop, {d0} draws*")
    ax.loglog(rows["rows"], rows["fit_s"], "^:", label="one pyfixest fit")
    ax.set(xlabel="panel rows", ylabel="seconds", title="Time against panel rows")
    ax = axes[0, 1]
    ax.loglog(rows["rows"], rows["engine_increment_mb"], "o-", label=f"engine, {d0} draws")
    ax.loglog(rows["rows"], rows["loop_increment_mb"], "s--", label="pyfixest loop")
    ax.set(
        xlabel="panel rows",
        ylabel="MB above the loaded panel",
        title="Peak memory against panel rows",
    )
    u, t = int(draws["units"].iloc[0]), int(draws["years"].iloc[0])
    ax = axes[1, 0]
    ax.loglog(draws["draws"], draws["engine_s"], "o-", label="engine")
    ax.loglog(draws["draws"], draws["loop_s_extrapolated"], "s--", label="pyfixest loop*")
    ax.set(xlabel="placebo draws", ylabel="seconds", title=f"Time against draws ({u} x {t} panel)")
    ax = axes[1, 1]
    ax.semilogx(draws["draws"], draws["engine_increment_mb"], "o-", label="above the loaded panel")
    ax.semilogx(draws["draws"], draws["engine_peak_mb"], "o:", label="whole process (peak RSS)")
    ax.set(xlabel="placebo draws", ylabel="MB", title="Engine's peak memory against draws")
    ax.set_ylim(bottom=0)
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.text(
        0.01,
        0.005,
        "* timed on a few draws and extrapolated linearly (bench/cost_curves.py); memory measured in "
        "a fresh process per point",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--package", type=Path, default=DEFAULT_PACKAGE, help="folder holding dualpilot/"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache of generated panels")
    ap.add_argument("--draws", type=int, default=200, help="draws of the rows sweep")
    ap.add_argument("--repeats", type=int, default=1, help="engine runs per point (fastest kept)")
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--figure", type=Path, default=FIGURE)
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --csv")
    args = ap.parse_args()
    if args.plot_only:
        plot(pd.read_csv(args.csv), args.figure)
        return

    print(f"package: {args.package.resolve()}; cpu_count {os.cpu_count()}")
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    points = []
    for units, years in SIZES:
        path = panel_file(units, years, SEED, args.cache)
        n_loop = loop_draws(units * years)
        loop = measure("loop", package=args.package, panel=path, draws=n_loop)
        fit = measure("fit", package=args.package, panel=path)
        points.append(point("rows", path, args.draws, loop, fit, args))
        print(f"  rows sweep: {units} x {years} done (load {load_average()})", flush=True)
    city = panel_file(*CITY, SEED, args.cache)
    loop = measure("loop", package=args.package, panel=city, draws=loop_draws(CITY[0] * CITY[1]))
    for d in DRAW_COUNTS:
        points.append(point("draws", city, d, loop, None, args))
    print(f"  draws sweep done (load {load_average()})")
    table = pd.DataFrame(points)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False, float_format="%.6g")
    plot(table, args.figure)

    print(
        f"\n{'sweep':<6}{'panel':>14}{'draws':>7}{'engine s':>10}{'setup s':>9}{'loop s*':>10}"
        f"{'loop/engine':>12}"
        f"{'fit s':>8}{'eng. peak MB':>13}{'eng. +MB':>9}{'loop +MB':>9}{'max|db|':>9}"
    )
    for r in table.itertuples():
        print(
            f"{r.sweep:<6}{f'{r.units} x {r.years}':>14}{r.draws:>7}{r.engine_s:>10.3f}"
            f"{r.engine_setup_s:>9.3f}{r.loop_s_extrapolated:>10.1f}{r.ratio_loop_over_engine:>12.0f}{r.fit_s:>8.3f}"
            f"{r.engine_peak_mb:>13.0f}{r.engine_increment_mb:>9.0f}{r.loop_increment_mb:>9.0f}"
            f"{r.loop_max_abs_diff:>9.1e}"
        )
    print(
        "* the pyfixest loop is timed on the first 20 draws (3 on panels of 300,000 rows or more) and "
        "extrapolated linearly to the point's draws"
    )
    print(f"wrote {args.csv} and {args.figure}")
    print(f"load average (1, 5, 15 min) at the end: {load_average()}")


if __name__ == "__main__":
    main()
