"""The demo run recovers what was planted (issue: baseline results).

Runs the baseline stage through Snakemake on the default demo configuration, then compares the estimates
with the generator's truth (results/demo/truth.parquet):

- event study: each relative-year coefficient k >= 0 covers the true mean dual effect at event time k
  (`effect_dual_lq`, in lq units), and each lead covers 0, within simultaneous 95 % intervals (Bonferroni
  over the coefficients checked);
- baseline: the dual_post coefficient of column (2) covers the planted effects as TWFE weights them, i.e.
  the same regression (pyfixest, called directly) on the noise-free planted effect component `effect_lq`.
  docs/demo-data.md explains why TWFE weights a growing, staggered effect below its simple average;
- dual versus single: the dual effect exceeds each single-pilot effect (Wald tests reject equality).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

CONTROLS = ["ln_gdp_pc", "ln_density", "industry", "gov", "open", "finance"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("baseline_run"))
    snakemake(work, "baseline", "--cores", "2")
    return work


@pytest.fixture(scope="module")
def merged(run: Path) -> pd.DataFrame:
    panel = pd.read_parquet(run / "results/panel/panel.parquet")
    truth = pd.read_parquet(run / "results/demo/truth.parquet")
    truth = truth[["city_code", "year", "effect_lq", "effect_dual_lq"]]
    return panel.merge(truth, on=["city_code", "year"], validate="1:1")


def test_event_study_covers_planted_dynamic_effects(run: Path, merged: pd.DataFrame):
    es = pd.read_csv(run / "results/estimates/event_study.csv")
    coef = es[es["term"].str.match(r"^rel_-?\d+$") & es["std_error"].notna()].copy()
    coef["k"] = coef["term"].str.removeprefix("rel_").astype(int)
    lo, hi = coef["k"].min(), coef["k"].max()
    dual = merged[merged["dual_year"].notna()]
    planted = dual.groupby("years_since_dual")["effect_dual_lq"].mean()
    # Interior event times only: the endpoint bins pool several years.
    checked = coef[(coef["k"] > lo) & (coef["k"] < hi)].copy()
    checked["planted"] = [planted.get(float(k), np.nan) if k >= 0 else 0.0 for k in checked["k"]]
    assert checked["planted"].notna().all()
    z = stats.norm.ppf(1 - 0.05 / (2 * len(checked)))
    gap = (checked["estimate"] - checked["planted"]).abs() / checked["std_error"]
    assert (gap <= z).all(), checked.assign(gap=gap)
    # and the dynamic pattern is there: the effect grows with time since the start
    post = checked[checked["k"] >= 0].sort_values("k")
    assert post["estimate"].iloc[-1] > post["estimate"].iloc[0] + 0.05


def test_baseline_covers_planted_effect_as_twfe_weights_it(run: Path, merged: pd.DataFrame):
    est = pd.read_csv(run / "results/estimates/baseline.csv")
    row = est[(est["model"] == "(2)") & (est["term"] == "dual_post")].iloc[0]
    data = merged.dropna(subset=["lq", *CONTROLS])
    fml = f"effect_lq ~ dual_post + {' + '.join(CONTROLS)} | city_code + year"
    benchmark = pf.feols(fml, data=data).coef()["dual_post"]
    assert row["conf_low"] <= benchmark <= row["conf_high"], (row.to_dict(), benchmark)
    assert row["n_obs"] == len(data)


def test_dual_effect_exceeds_single_pilot_effects(run: Path):
    est = pd.read_csv(run / "results/estimates/single_vs_dual.csv").set_index(["model", "term"])
    dual = est.loc[("joint", "dual_post"), "estimate"]
    assert dual > est.loc[("joint", "sc_only_post"), "estimate"]
    assert dual > est.loc[("joint", "lc_only_post"), "estimate"]
    for single in ("sc_only_post", "lc_only_post"):
        assert est.loc[("joint", f"wald: dual_post = {single}"), "p_value"] < 0.01
    synergy = est.loc[("joint", "lincom: synergy = dual_post - sc_only_post - lc_only_post")]
    assert synergy["conf_low"] > 0


def test_tables_and_figures_are_written(run: Path):
    for name in ("baseline", "single_vs_dual", "event_study", "duration", "descriptives"):
        tex = (run / f"results/tables/{name}.tex").read_text(encoding="utf-8")
        assert "\\toprule" in tex and "\\bottomrule" in tex and "\\hline" not in tex
    for name in ("event_study", "duration"):
        for ext in ("png", "pdf"):
            assert (run / f"results/figures/{name}.{ext}").stat().st_size > 10_000
    baseline = (run / "results/tables/baseline.md").read_text(encoding="utf-8")
    assert "双试点" in baseline and "是" in baseline and "否" in baseline
