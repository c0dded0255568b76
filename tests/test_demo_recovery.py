"""The demo recovers its planted ATT in lq units (issue 13, item 1; docs/demo-data.md, "What the workflow
recovers").

Each case writes demo extracts (rule make_demo_extracts' script, `demo:` block of config/config.yaml with
the case's seed or effects), builds the panel through the real ingestion (rule build_panel's script), runs
the scripts of rules estimate_baseline and estimate_staggered with their rules' params, and then the script
of rule estimate_demo_recovery, all in-process. The recovery table must show:

- on the default demo and on two other seeds: Callaway-Sant'Anna (never and not-yet treated) and the
  imputation estimator cover the true ATT with their 95 % intervals;
- with a homogeneous effect that grows by 0.04 a year: static TWFE does not cover it (the regression of the
  noise-free planted effect, its estimand, lies below the ATT), while those estimators still do;
- with single-pilot effects on lq (the old defaults, 0.04 and 0.03): Callaway-Sant'Anna and static TWFE,
  which count single-pilot years as untreated, fall short of the ATT by more than their intervals allow;
- without the catch-up channel (region-specific trends of lq through ln GDP per capita) the robust
  estimates move by less than 0.005: the controls absorb it;
- the time placebo (true dual cities, dates moved 1-5 years earlier) covers 0 on the default demo and
  excludes it, positive, with the single-pilot effects (docs/placebo.md, "Reading the demo results").

Unit tests check the truth's units and the errors of `dualpilot.demo.recovery`.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import demo_mutations as dm
from dualpilot.core.errors import SpecificationError
from dualpilot.demo import recovery
from dualpilot.workflow.runner import Named

CONFIG = dm.CONFIG
STAGGERED = CONFIG["robustness"]["staggered"]
CONTROLS = CONFIG["controls"]
ROBUST = ["callaway_santanna_never", "callaway_santanna_notyet", "imputation"]
HOMOGENEOUS = dict.fromkeys(("rich_clean", "rich_dirty", "poor_clean", "poor_dirty"), 1.0)
DOC = dm.REPO / "docs" / "demo-data.md"
#: The true ATT of each seed's demo that docs/demo-data.md states.
DOCUMENTED_ATT = {"default": 0.2075, "seed_1": 0.216, "seed_2": 0.220}
CASES = {
    "default": {},
    "seed_1": {"seed": 1},
    "seed_2": {"seed": 2},
    "growing_homogeneous": {"effects": {"dual_lq_growth": 0.04, "heterogeneity": HOMOGENEOUS}},
    "single_pilot_effects": {"effects": {"sc_only_lq": 0.04, "lc_only_lq": 0.03}},
    "no_catch_up": {"effects": {"lq_catch_up": 0.0}},
}


def _demo_settings(case: dict) -> dict:
    settings = copy.deepcopy(CONFIG["demo"])
    settings["seed"] = case.get("seed", settings["seed"])
    settings["effects"].update(case.get("effects", {}))
    return settings


def _run_case(dest: Path, case: dict) -> dict:
    """Demo, panel, baseline, staggered estimates and the recovery table of one case, as the rules do."""
    raw = dm.write_demo_raw(dest / "demo" / "raw", demo=_demo_settings(case))
    paths = dm.build_panel_outputs(raw, dest)
    est = dest / "estimates"
    est.mkdir()
    panel = Named(panel=str(paths["parquet"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm._script("estimate_baseline").main(
            panel,
            Named(estimates=str(est / "baseline.csv")),
            Named(controls=CONTROLS, estimation=CONFIG["estimation"], bootstrap=None),
        )
        dm._script("estimate_staggered").main(
            panel,
            Named(estimates=str(est / "staggered.csv"), vcov=str(est / "imputation_vcov.csv")),
            Named(
                controls=CONTROLS,
                estimation=CONFIG["estimation"],
                options=STAGGERED,
                adjust_single_pilots=CONFIG["event_study"]["adjust_single_pilots"],
                dual=CONFIG["dual"],
            ),
        )
    table = dest / "demo_recovery.csv"
    dm._script("estimate_demo_recovery").main(
        Named(
            truth=str(dest / "demo" / "truth.parquet"),
            panel=str(paths["parquet"]),
            baseline=str(est / "baseline.csv"),
            staggered=str(est / "staggered.csv"),
        ),
        Named(table=str(table)),
        # the params of rule estimate_demo_recovery (workflow/rules/demo.smk)
        Named(
            controls=CONTROLS,
            estimation=CONFIG["estimation"],
            staggered_use_controls=STAGGERED["use_controls"],
            cs_control_groups=STAGGERED["cs_control_groups"],
            twfe_model=CONFIG["headline"]["model"],
            treatment=CONFIG["headline"]["term"],
            outcome_industry=CONFIG["outcome_industry"],
        ),
    )
    return {
        "table": pd.read_csv(table).set_index("estimator"),
        "truth": pd.read_parquet(dest / "demo" / "truth.parquet"),
        "summary": json.loads((dest / "demo" / "truth.json").read_text(encoding="utf-8"))[
            "summary"
        ],
        "panel": pd.read_parquet(paths["parquet"]),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    return {name: _run_case(tmp_path_factory.mktemp(name), case) for name, case in CASES.items()}


# --------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("name", ["default", "seed_1", "seed_2"])
def test_robust_estimators_cover_the_true_att(runs, name: str) -> None:
    run = runs[name]
    table = run["table"]
    assert list(table.reset_index().columns) == list(recovery.RECOVERY_COLUMNS)
    assert set(table.index) == {"twfe", "sun_abraham", *ROBUST}
    for estimator in ROBUST:
        row = table.loc[estimator]
        assert row["conf_low"] <= row["truth"] <= row["conf_high"] and row["covered"], (name, row)
    # on these three demos every estimator's interval covers its truth (docs/demo-data.md)
    assert table["covered"].all(), table
    # the truth is the ATT of truth.json up to the estimator's sample (a few cities fewer)
    att = run["summary"]["att_dual_lq"]
    assert att == pytest.approx(DOCUMENTED_ATT[name], abs=0.0005)
    assert (table["truth"] - att).abs().max() < 0.01
    # same sample, same truth: TWFE, Sun-Abraham and imputation drop the same rows
    assert (
        table.loc["twfe", "truth"]
        == table.loc["imputation", "truth"]
        == table.loc["sun_abraham", "truth"]
    )
    assert table.loc["callaway_santanna_never", "n_obs"] < table.loc["imputation", "n_obs"]


def _twfe_estimand(run: dict) -> float:
    """TWFE column (2) on the noise-free true effect: what static TWFE estimates."""
    import pyfixest as pf

    data = run["panel"].merge(
        run["truth"][["city_code", "year", "effect_dual_lq"]], on=["city_code", "year"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(
            f"effect_dual_lq ~ dual_post + {' + '.join(CONTROLS)} | city_code + year", data=data
        )
    return float(fit.coef()["dual_post"])


def test_static_twfe_misses_a_growing_effect_the_robust_estimators_recover(runs) -> None:
    run = runs["growing_homogeneous"]
    table = run["table"]
    twfe = table.loc["twfe"]
    assert not twfe["covered"] and twfe["conf_high"] < twfe["truth"]
    # the numbers docs/demo-data.md quotes
    documented = [0.291, 0.274, 0.307, 0.308]
    got = twfe[["estimate", "conf_low", "conf_high", "truth"]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, documented, atol=0.0005 + 1e-9)
    for estimator in [*ROBUST, "sun_abraham"]:
        assert table.loc[estimator, "covered"], table.loc[estimator]
    # why: TWFE's estimand, the same regression on the noise-free planted effect, is below the ATT,
    # here and (by less than TWFE's standard error) on the default demo
    assert _twfe_estimand(run) < twfe["truth"] - 0.01
    default = runs["default"]
    assert _twfe_estimand(default) < default["table"].loc["twfe", "truth"] - 0.005


def test_single_pilot_effects_break_the_dual_timing_design(runs) -> None:
    """Callaway-Sant'Anna cannot take the single-pilot states into account, static TWFE column (2) does not
    include them: both fall short of the true ATT, by more than their intervals allow."""
    table = runs["single_pilot_effects"]["table"]
    dual_timing = ["callaway_santanna_never", "callaway_santanna_notyet", "twfe"]
    for estimator in dual_timing:
        row = table.loc[estimator]
        assert not row["covered"] and row["conf_high"] < row["truth"], row
    cs = table.loc[dual_timing[:2], "estimate"]
    assert cs.between(0.16, 0.175).all(), cs  # docs/demo-data.md, docs/robustness.md


def test_the_catch_up_channel_is_absorbed_by_the_controls(runs) -> None:
    default, flat = runs["default"]["table"], runs["no_catch_up"]["table"]
    robust = [*ROBUST, "sun_abraham"]
    assert (default.loc[robust, "estimate"] - flat.loc[robust, "estimate"]).abs().max() < 0.005
    assert flat.loc[ROBUST, "covered"].all()


def test_time_placebo_picks_up_single_pilot_effects_only(runs) -> None:
    from dualpilot.engines import placebo

    cfg = CONFIG["placebo"]
    options = {
        "shifts": cfg["time"]["shifts"],
        "shift_range": cfg["time_random"]["shift_range"],
        "n_units": None,
        "time_scope": None,
    }

    def time_placebo(name: str) -> pd.DataFrame:
        n = len(options["shifts"])
        return placebo.run_shard(
            runs[name]["panel"], "time", 0, 1, n, cfg["seed"], options, "lq", CONTROLS,
            unit="city_code", time="year", cluster="city_code", drop_singletons=True,
            max_bytes=2**28,
        )  # fmt: skip

    flat = time_placebo("default")
    assert ((flat["conf_low"] < 0) & (flat["conf_high"] > 0)).all(), flat
    assert flat["estimate"].abs().max() < 0.01
    single = time_placebo("single_pilot_effects")
    assert (single["conf_low"] > 0).all(), single
    assert single["estimate"].between(0.01, 0.03).all(), single


# ------------------------------------------------------------------------------------------ truth units


def test_truth_records_each_effect_in_lq_units(runs) -> None:
    run = runs["single_pilot_effects"]
    t, summary = run["truth"], run["summary"]
    m = t["lq_star_national_mean"]
    parts = t["effect_dual_lq"] + t["effect_sc_only_lq"] + t["effect_lc_only_lq"]
    np.testing.assert_allclose(parts * m, t["effect_lq"], atol=1e-12)
    # each part lives in its own state; the realised lq is lq* / m_t
    assert (t.loc[t["dual_post"] == 0, "effect_dual_lq"] == 0).all()
    sc, lc = t["sc_only_post"] == 1, t["lc_only_post"] == 1
    assert sc.any() and lc.any()
    np.testing.assert_allclose((t["effect_sc_only_lq"] * m)[sc], 0.04, atol=1e-12)
    np.testing.assert_allclose((t["effect_lc_only_lq"] * m)[lc], 0.03, atol=1e-12)
    assert (t.loc[~sc, "effect_sc_only_lq"] == 0).all() and (
        t.loc[~lc, "effect_lc_only_lq"] == 0
    ).all()
    ok = t["lq"].notna()
    np.testing.assert_allclose(t.loc[ok, "lq"], (t["lq_star"] / m)[ok], rtol=1e-12)
    # truth.json: the ATT and the event-time path over the dual post city-years with lq observed
    treated = t[(t["dual_post"] == 1) & ok]
    assert summary["att_dual_lq"] == pytest.approx(treated["effect_dual_lq"].mean(), abs=1e-12)
    path = treated.groupby("years_since_dual")["effect_dual_lq"].agg(["mean", "size"])
    assert summary["event_path_dual_lq"] == {
        str(int(e)): {"effect": pytest.approx(r["mean"], abs=1e-12), "city_years": int(r["size"])}
        for e, r in path.iterrows()
    }
    assert summary["event_path_dual_lq"]["0"]["effect"] == pytest.approx(0.12, abs=0.002)
    assert summary["att_sc_only_lq"] == pytest.approx(0.04, abs=0.001)
    # m_t within 0.001 of 1 (docs/demo-data.md): lq and lq* units nearly agree
    assert 0 < runs["default"]["summary"]["max_abs_weighted_mean_lq_star_minus_1"] < 0.001


# ------------------------------------------------------------------------------------------ the module


def _frames(runs) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    run = runs["default"]
    table = run["table"]
    estimates = {
        "baseline": pd.DataFrame(
            [{"model": "(2)", "term": "dual_post", **table.loc["twfe", ["estimate", "conf_low", "conf_high", "n_obs", "sample"]]}]
        ),
        "staggered": pd.DataFrame(
            [
                {"model": table.loc[e, "model"], "term": "ATT", **table.loc[e, ["estimate", "conf_low", "conf_high", "n_obs", "sample"]]}
                for e in table.index
                if e != "twfe"
            ]
        ),
    }  # fmt: skip
    return run["truth"], run["panel"], estimates


def _recover(truth, panel, estimates, **overrides) -> pd.DataFrame:
    kwargs = {
        "outcome": "lq",
        "twfe_controls": CONTROLS,
        "staggered_covariates": CONTROLS,
        **overrides,
    }
    return recovery.demo_recovery(
        truth, panel, estimates, recovery.recovered_estimators(["never", "notyet"]), **kwargs
    )


def test_truth_is_averaged_over_each_estimators_sample(runs) -> None:
    truth, panel, estimates = _frames(runs)
    got = _recover(truth, panel, estimates).set_index("estimator")
    pd.testing.assert_series_equal(
        got["truth"], runs["default"]["table"]["truth"], check_names=False, rtol=1e-12
    )
    # by hand: the balanced sample of Callaway-Sant'Anna, effect rescaled to the panel's national share
    full = panel.dropna(subset=["lq", *CONTROLS]).groupby("city_code")["year"].size()
    cities = full[full == panel.groupby("city_code")["year"].size()].index
    d = panel.merge(truth, on=["city_code", "year"], suffixes=("", "_t"))
    share = d.groupby("year")["it_emp"].sum() / d.groupby("year")["total_emp"].sum()
    effect = d["effect_dual_lq"] * d["lq_star_national_mean"] * d["it_share"] / d["year"].map(share)
    cs = d["city_code"].isin(cities) & (d["dual_post"] == 1)
    assert got.loc["callaway_santanna_never", "truth"] == pytest.approx(
        effect[cs].mean(), rel=1e-12
    )
    # the panel's share differs from the truth's (other cities kept) by under 1 %: rescaling matters little
    assert abs(effect[cs].mean() - d.loc[cs, "effect_dual_lq"].mean()) < 0.003


def test_recovery_refuses_what_it_cannot_match(runs) -> None:
    truth, panel, estimates = _frames(runs)
    with pytest.raises(SpecificationError, match="not built from these demo extracts"):
        _recover(truth, panel.assign(it_emp=panel["it_emp"] * 1.05), estimates)
    with pytest.raises(SpecificationError, match="not in the demo truth"):
        _recover(truth[truth["year"] > 2006], panel, estimates)
    wrong_n = {**estimates, "staggered": estimates["staggered"].assign(n_obs=10)}
    with pytest.raises(SpecificationError, match="callaway_santanna_never: its estimate uses 10"):
        _recover(truth, panel, wrong_n)
    no_cs = {**estimates, "staggered": estimates["staggered"].iloc[1:]}
    with pytest.raises(SpecificationError, match="expected one row of model"):
        _recover(truth, panel, no_cs)
    with pytest.raises(SpecificationError, match="lq units"):
        _recover(truth, panel, estimates, outcome="ln_it_emp")
    no_ci = {**estimates, "baseline": estimates["baseline"].assign(conf_low=np.nan)}
    with pytest.raises(SpecificationError, match="no confidence interval"):
        _recover(truth, panel, no_ci)


def test_documented_recovery_table_is_the_default_demos(runs) -> None:
    """The table of docs/demo-data.md ("What the workflow recovers") is what the rule writes."""
    section = DOC.read_text(encoding="utf-8").split("### What the workflow recovers", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    table = runs["default"]["table"]
    assert [r.split("|")[1].strip() for r in rows] == list(table.index)
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        estimator, estimate, interval, truth, covered = cells
        low, high = (float(x) for x in interval.strip("[]").split(","))
        got = table.loc[estimator]
        for printed, value in ((estimate, got["estimate"]), (low, got["conf_low"]),
                               (high, got["conf_high"]), (truth, got["truth"])):  # fmt: skip
            assert float(printed) == pytest.approx(value, abs=0.00005 + 1e-9), (estimator, printed)
        assert covered == ("yes" if got["covered"] else "no")


def test_two_treatment_design_recovers_the_states_on_the_default_demo(runs) -> None:
    """docs/robustness.md, "Demo data": imputation state effects near the truth, single pilots near 0."""
    from dualpilot.analyses import pilot_order

    run = runs["default"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pilot_order.two_treatment_design(run["panel"], CONTROLS, options=CONFIG["estimation"])
    states = out[out["model"] == "imputation_states"].set_index("term")["estimate"]
    assert abs(states["dual_post"] - run["summary"]["att_dual_lq"]) < 0.01
    assert abs(states["sc_only_post"]) < 0.005 and abs(states["lc_only_post"]) < 0.005


@pytest.mark.workflow
def test_rule_all_writes_the_recovery_table(small_study: Path, runs) -> None:
    """`snakemake` on the demo builds results/tables/demo_recovery.csv by rule estimate_demo_recovery,
    equal to the in-process table of the default demo (the small study changes no estimation setting)."""
    table = pd.read_csv(small_study / "results/tables/demo_recovery.csv").set_index("estimator")
    pd.testing.assert_frame_equal(table, runs["default"]["table"], rtol=1e-9)
    log = (small_study / "logs/estimate_demo_recovery.log").read_text(encoding="utf-8")
    assert log.count(", covered") == len(table)
