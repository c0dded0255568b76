"""End to end: Snakemake builds the demo extracts and the panel in a temporary copy of the workflow.

Layers (b) and (c) of the test plan: a small demo configuration run through Snakemake, checked against the
generator's own truth; a user's raw directory; bad input that must stop the run before any estimation and
leave no panel behind; a dry run of the whole study; the config schema.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dualpilot.demo.extracts import PRINT_DECIMALS
from workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

# A shorter window than the study's keeps the run small; everything else is the default configuration.
OVERLAY = {"years": {"start": 2009, "end": 2016}}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("demo_run"))
    (work / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY))
    snakemake(work, "panel", "--cores", "2", "--configfile", "overlay.yaml")
    return work


def test_panel_matches_generator_truth(demo_run: Path):
    panel = pd.read_parquet(demo_run / "results/panel/panel.parquet")
    truth = pd.read_parquet(demo_run / "results/demo/truth.parquet")
    assert panel["year"].min() == 2009 and panel["year"].max() == 2016
    merged = panel.merge(truth, on=["city_code", "year"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(panel)
    # Raw values equal the generated ones to the precision the yearbook prints them.
    for column, decimals in PRINT_DECIMALS.items():
        both = merged[[column, f"{column}_truth"]].dropna()
        assert len(both) > 0.9 * len(merged), column
        gap = (both[column] - both[f"{column}_truth"]).abs().max()
        assert gap <= 0.5 * 10.0**-decimals + 1e-9, (column, gap)
    # The treatment coding of the panel is the generator's own.
    for column in ("sc_year", "lc_year", "dual_year"):
        pd.testing.assert_series_equal(
            merged[column], merged[f"{column}_truth"], check_names=False, check_dtype=False
        )
    assert (merged["dual_post"] == merged["dual_post_truth"]).all()
    # lq: recomputed here from the printed inputs over the kept cities of each year.
    share = panel.groupby("year")[["it_emp", "total_emp"]].transform("sum")
    lq = (panel["it_emp"] / panel["total_emp"]) / (share["it_emp"] / share["total_emp"])
    np.testing.assert_allclose(panel["lq"], lq, rtol=1e-12)
    # ... and equal to the lq of the generator's unrounded values over the same cities, within the error
    # that printing employment to 0.01 万人 can cause (relative error up to 0.005/it_emp + 0.005/total_emp,
    # plus a little for the national share).
    t_share = merged.groupby("year")[["it_emp_truth", "total_emp_truth"]].transform("sum")
    t_lq = (merged["it_emp_truth"] / merged["total_emp_truth"]) / (
        t_share["it_emp_truth"] / t_share["total_emp_truth"]
    )
    bound = 0.005 / merged["it_emp_truth"] + 0.005 / merged["total_emp_truth"] + 1e-3
    assert ((merged["lq"] / t_lq - 1).abs() <= bound).all()


def test_panel_provenance_and_formats(demo_run: Path):
    out = demo_run / "results/panel"
    manifest = pd.read_csv(out / "manifest.csv")
    assert {"file", "edition", "sha256", "rows_read", "rows_kept"} <= set(manifest.columns)
    assert set(manifest["edition"].dropna().astype(int)) == set(range(2010, 2018))
    sample = pd.read_csv(out / "sample.csv", dtype={"city_code": str})
    panel = pd.read_parquet(out / "panel.parquet")
    assert set(sample.loc[sample["kept"], "city_code"]) == set(panel["city_code"])
    assert sample.loc[~sample["kept"], "reason"].str.len().gt(0).all()
    dta = pd.read_stata(out / "panel.dta")
    assert len(dta) == len(panel) and dta["city_code"].str.len().eq(6).all()
    csv = pd.read_csv(out / "panel.csv", dtype={"city_code": str}, encoding="utf-8-sig")
    assert list(csv.columns) == list(panel.columns)
    summary = pd.read_csv(demo_run / "results/tables/treatment_summary.csv")
    assert set(summary["programme"]) == {"smart_city", "low_carbon", "dual"}
    used = yaml.safe_load((demo_run / "results/config_used.yaml").read_text(encoding="utf-8"))
    assert used["years"] == OVERLAY["years"]


def test_required_panel_columns(demo_run: Path):
    panel = pd.read_parquet(demo_run / "results/panel/panel.parquet")
    required = """city_code city_name province region year it_emp total_emp lq gdp population area
    secondary_share fiscal_exp fdi loans students so2 green_cover digital_patents green_patents ln_gdp_pc
    ln_density industry gov open finance ln_digital_pat ln_green_pat human_capital sc_year lc_year dual_year
    sc_post lc_post dual_post years_since_dual group""".split()
    assert not set(required) - set(panel.columns)
    assert (
        panel.groupby("city_code")["year"].nunique().eq(8).all()
    )  # the default sample is balanced


def _user_raw_dir(demo_run: Path, dest: Path) -> Path:
    raw = dest / "my_extracts"
    shutil.copytree(demo_run / "results/demo/raw", raw)
    return raw


def test_user_raw_dir_builds_its_panel(demo_run: Path, tmp_path: Path):
    raw = _user_raw_dir(demo_run, tmp_path)
    work = copy_workflow(tmp_path / "work")
    (work / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY))
    target = "results/panel/panel.parquet"
    snakemake(
        work, target, "--cores", "2", "--configfile", "overlay.yaml", "--config", f"raw_dir={raw}"
    )
    assert not (work / "results/demo").exists()  # the demo was not built
    mine = pd.read_parquet(work / "results/panel/panel.parquet")
    demo = pd.read_parquet(demo_run / "results/panel/panel.parquet")
    pd.testing.assert_frame_equal(mine, demo)


def test_bad_input_stops_before_estimation_and_leaves_no_panel(demo_run: Path, tmp_path: Path):
    raw = _user_raw_dir(demo_run, tmp_path)
    target = sorted((raw / "employment").glob("ccsy_2012.*"))[0]
    if target.suffix == ".xlsx":  # keep the test simple: corrupt a CSV edition
        target = sorted((raw / "employment").glob("*.csv"))[0]
    raw_bytes = target.read_bytes()
    try:  # the demo writes UTF-8 (with or without BOM) or GB18030: write back in the same encoding
        text, encoding = raw_bytes.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError:
        text, encoding = raw_bytes.decode("gb18030"), "gb18030"
    lines = text.splitlines()

    # Replace the first city row's name by a name no city has ever had.
    def is_city_row(line: str) -> bool:
        name, *cells = line.split(",")
        numeric = [c for c in cells if c.replace(".", "", 1).isdigit()]
        return len(numeric) >= 2 and name.strip() not in {"全国", "合计", "全省"}

    row = next(i for i, line in enumerate(lines) if is_city_row(line))
    lines[row] = "不存在市" + lines[row][lines[row].index(",") :]
    target.write_bytes("\n".join(lines).encode(encoding))

    work = copy_workflow(tmp_path / "work")
    (work / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY))
    overlay = ("--configfile", "overlay.yaml")
    proc = snakemake(
        work, "panel", "--cores", "2", *overlay, "--config", f"raw_dir={raw}", check=False
    )
    assert proc.returncode != 0
    message = proc.stderr + proc.stdout
    assert target.name in message and "不存在" in message
    assert f"line {row + 1}" in message
    assert not (work / "results/panel/panel.parquet").exists()
    assert not list((work / "results").rglob("*.parquet"))


def test_truncation_ratio_of_an_overlay_reaches_build_panel(demo_run: Path, tmp_path: Path):
    """An edition cut after 250 of its ~290 cities passes the default ratio 0.8 but not 0.9 set in an
    overlay file: the threshold goes from the config through the rule's params to the check."""
    raw = _user_raw_dir(demo_run, tmp_path)
    target = sorted((raw / "employment").glob("*.csv"))[1]
    data = target.read_bytes()
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        lines = data.decode(encoding).splitlines(keepends=True)
    except UnicodeDecodeError:
        encoding = "gb18030"
        lines = data.decode(encoding).splitlines(keepends=True)
    cities = [
        i
        for i, line in enumerate(lines)
        if line.count(",") >= 2
        and line.split(",")[1].replace(".", "", 1).strip().isdigit()
        and line.split(",")[0].strip() not in {"全国", "合计", "全省"}
    ]
    target.write_bytes("".join(lines[: cities[249] + 1]).encode(encoding))

    work = copy_workflow(tmp_path / "work")
    overlay = {**OVERLAY, "ingestion": {"truncation_ratio": 0.9}}
    (work / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    proc = snakemake(
        work,
        "results/panel/panel.parquet",
        "--cores",
        "2",
        "--configfile",
        "overlay.yaml",
        "--config",
        f"raw_dir={raw}",
        check=False,
    )
    message = proc.stderr + proc.stdout
    assert proc.returncode != 0
    # 250 city rows with a number in their first column, and a few whose first value is missing
    assert re.search(rf"{re.escape(str(target))}: only 2[5-6]\d cities", message)
    assert "truncation_ratio (now 0.9" in message
    assert not (work / "results/panel/panel.parquet").exists()


def test_missing_raw_dir_is_named(tmp_path: Path):
    work = copy_workflow(tmp_path)
    proc = snakemake(work, "-n", "--config", "raw_dir=/no/such/folder", check=False)
    assert proc.returncode != 0
    assert "/no/such/folder" in proc.stderr + proc.stdout


def test_unknown_config_key_is_named(tmp_path: Path):
    work = copy_workflow(tmp_path)
    proc = snakemake(work, "-n", "--config", "sampel={rule: all}", check=False)
    assert proc.returncode != 0
    assert "sampel" in proc.stderr + proc.stdout


def test_dry_run_of_the_whole_study(tmp_path: Path):
    work = copy_workflow(tmp_path)
    proc = snakemake(work, "-n", "--cores", "2")
    assert "make_demo_extracts" in proc.stdout and "build_panel" in proc.stdout


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", check=False)
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
