"""Benchmark: the placebo engine and pyfixest at county scale and at one million rows (not a test).

    python bench/scale.py                      # both parts, the package in workflow/scripts
    python bench/scale.py --package /tmp/patched --csv /tmp/scale.csv   # a patched copy of dualpilot/

(a) county scale: `generate_panel(2850, 18)` fed to `run_shard` (one shard, 1000 draws) of kinds space
    and mixed_restricted; target under 10 s together on 2 cores.
(b) one million rows: `generate_panel(50000, 20)` (analysis-panel columns) fed to `estimation.fit`
    (pyfixest, baseline model (2)), to a per-draw `estimation.fit` loop (2 draws, extrapolated), and
    to `run_shard` (space) at several memory budgets (`max_bytes`) and draw counts; target: peak RSS
    under 2 GB whatever the draws.

Every number comes from its own fresh process (bench/measure.py): wall seconds of the call, resident
memory before it (the panel and the imported libraries), and the peak during it. Panels are generated
once and cached as Parquet (--cache). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
from measure import DEFAULT_CACHE, DEFAULT_PACKAGE, load_average, measure, panel_file

COUNTY = (2850, 18)
MILLION = (50_000, 20)
SEED = 20260302


def county(package: Path, cache: Path, draws: int) -> list[dict]:
    """Part (a): both kinds on the county-scale panel."""
    path = panel_file(*COUNTY, SEED, cache)
    rows = []
    for kind in ("space", "mixed_restricted"):
        rows.append(
            {
                "part": "county",
                **measure("engine", package=package, panel=path, kind=kind, draws=draws),
            }
        )
    return rows


def million(package: Path, cache: Path, budgets: list[int], draw_counts: list[int]) -> list[dict]:
    """Part (b): pyfixest and the engine on 1,000,000 rows."""
    path = panel_file(*MILLION, SEED, cache)
    rows = [{"part": "million", **measure("fit", package=package, panel=path)}]
    rows.append({"part": "million", **measure("loop", package=package, panel=path, draws=2)})
    for mb in budgets:
        rows.append(
            {
                "part": "million",
                **measure("engine", package=package, panel=path, draws=1000, max_mb=mb),
            }
        )
    for d in draw_counts:
        rows.append({"part": "million", **measure("engine", package=package, panel=path, draws=d)})
    return rows


def describe(r: pd.Series) -> str:
    if r["task"] == "engine":
        what = f"engine {r['kind']}, {r['draws']:.0f} draws, budget {r['max_mb']:.0f} MB (chunk {r['chunk']:.0f})"
    elif r["task"] == "loop":
        what = f"pyfixest loop, {r['draws']:.0f} draws ({r['seconds_per_draw']:.2f} s/draw)"
    else:
        what = "estimation.fit (pyfixest), model (2)"
    return (
        f"{r['units']:>6.0f} x {r['years']:.0f}  {what:<60}{r['seconds']:>8.2f} s"
        f"{r['rss_before_mb']:>9.0f}{r['peak_rss_mb']:>9.0f}{r['increment_mb']:>9.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--package", type=Path, default=DEFAULT_PACKAGE, help="folder holding dualpilot/"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache of generated panels")
    ap.add_argument("--part", choices=["county", "million", "both"], default="both")
    ap.add_argument("--budgets", type=int, nargs="+", default=[512, 64, 8], help="max_bytes in MiB")
    ap.add_argument("--draw-counts", type=int, nargs="+", default=[100, 3000])
    ap.add_argument("--csv", type=Path, help="also write every measurement as CSV")
    args = ap.parse_args()

    print(f"package: {args.package.resolve()}; cpu_count {os.cpu_count()}")
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    rows = []
    if args.part in ("county", "both"):
        rows += county(args.package, args.cache, 1000)
    if args.part in ("million", "both"):
        rows += million(args.package, args.cache, args.budgets, args.draw_counts)
    table = pd.DataFrame(rows)
    print(f"\n{'panel':<16}{'what':<60}{'seconds':>10}{'RSS MB':>9}{'peak MB':>9}{'incr MB':>9}")
    for _, r in table.iterrows():
        print(describe(r))
    if "county" in set(table["part"]):
        total = table.loc[table["part"] == "county", "seconds"].sum()
        print(
            f"\n(a) county scale, both kinds: {total:.2f} s (target 10 s: {'met' if total < 10 else 'missed'})"
        )
    if "million" in set(table["part"]):
        m = table[table["part"] == "million"]
        peaks = {t: m.loc[m["task"] == t, "peak_rss_mb"].max() for t in ("engine", "fit", "loop")}
        verdict = "met" if max(peaks["engine"], peaks["fit"]) < 2048 else "missed"
        print(
            f"(b) 1M rows: peak RSS of the engine {peaks['engine']:.0f} MB (largest over budgets and "
            f"draws), of estimation.fit {peaks['fit']:.0f} MB (target 2048 MB: {verdict}); the per-draw "
            f"loop {peaks['loop']:.0f} MB"
        )
    print(f"load average (1, 5, 15 min) at the end: {load_average()}")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
