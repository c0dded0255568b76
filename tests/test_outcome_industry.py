"""The outcome industry as a setting (issue 15, item 2): config `outcome_industry` names the employment-table
industry whose location quotient is `lq` (docs/other-industries.md).

Checked here: the key's validation (schema and config_checks: an unknown id names the key and the known ids; an
edition of the window without a header names header_aliases.csv and the edition); every industry of the alias
table has a header in every edition 2007-2024; the default panel is unchanged to the last digit (a stored
digest); on the demo extracts for 金融业 the panel's lq is that industry's (recomputed independently from
industries_long), the .dta, labels, table notes, figures and captions name it; the robustness grid derives
ln_emp_<id> and emp_<id>_share; and the documented one-command example runs the panel and baseline in a copy
of the workflow. The demo plants effects on the IT sector only, so these tests check mechanics, not effects.
"""

from __future__ import annotations

import copy
import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from demo_mutations import CONFIG, build_panel_outputs, write_demo_raw
from dualpilot.analyses import spec_grid as rb
from dualpilot.core.errors import InputError
from dualpilot.core.tidy import TIDY_COLUMNS
from dualpilot.data import panel as P
from dualpilot.render import documents, maps, tables
from dualpilot.workflow.config_checks import (
    HEADER_ALIASES,
    check_config,
    config_problems,
    outcome_industry_problems,
)
from workflow_helpers import REPO, copy_workflow, snakemake

FINANCE = "emp_jinrong"
FINANCE_ZH = "金融业就业区位熵"
OVERLAY = "config/examples/finance_industry.yaml"
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"

#: SHA-256 of the default demo build's panel and industries_long as `DataFrame.to_csv(index=False)` (floats
#: in full precision), taken from a build of main before outcome_industry existed. A change here means the
#: default run's outputs changed: if that is intended (a change of the demo or of the panel), say so in the
#: commit and replace the digest by the one the failure prints.
DEFAULT_DIGESTS = {
    "parquet": "f7759e083f379fa1fde0cb10ba6c8e8119b5884b4280bbd10fbfd475a2c180c6",
    "industries": "2ea3a9b5bacf2c0c25229d71251fdfb4474a8f174594bc949f22ec130a9680da",
}


def employment_industries() -> list[str]:
    """The industry ids of the shipped alias table (employment variables other than total_emp)."""
    with HEADER_ALIASES.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["table"] == "employment"]
    return list(dict.fromkeys(r["variable"] for r in rows if r["variable"] != "total_emp"))


def with_industry(industry: str, **years: int) -> dict:
    config = copy.deepcopy(CONFIG)
    config["outcome_industry"] = industry
    config["years"].update(years)
    return config


# ------------------------------------------------------------------------------------------ validation


def test_default_is_the_it_sector_and_consistent() -> None:
    assert CONFIG["outcome_industry"] == "it_emp"
    assert outcome_industry_problems(CONFIG) == []


def test_every_industry_has_a_header_in_every_edition_2007_2024() -> None:
    """The 19 sections of GB/T 4754 (IT and 18 others) are each accepted in every edition of 2006-2023,
    across the renaming of the 2013 edition (GB/T 4754-2002 -> 2011)."""
    industries = employment_industries()
    assert len(industries) == 19 and industries[0] == "it_emp"
    for industry in industries:
        assert outcome_industry_problems(with_industry(industry, start=2006, end=2023)) == [], (
            industry
        )


def test_unknown_industry_names_the_key_and_the_known_ids() -> None:
    (problem,) = config_problems(with_industry("emp_bank"))
    assert problem.startswith("outcome_industry = 'emp_bank' is not an industry")
    assert str(HEADER_ALIASES) in problem
    for known in employment_industries():
        assert known in problem
    assert "total_emp" not in problem.split("known ids:")[1]
    with pytest.raises(ValueError, match="outcome_industry = 'emp_bank'"):
        check_config(with_industry("emp_bank"))


def test_an_edition_without_a_header_names_the_alias_file_and_the_edition(tmp_path: Path) -> None:
    """科学研究和技术服务业 is printed so from the 2013 edition on: without that row, the editions
    2013-2024 (data years 2012-2023) have no header for emp_keyan."""
    lines = HEADER_ALIASES.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith("employment,emp_keyan,科学研究和技术服务业,")]
    assert len(kept) == len(lines) - 1
    aliases = tmp_path / "header_aliases.csv"
    aliases.write_text("".join(kept), encoding="utf-8")
    (problem,) = config_problems(with_industry("emp_keyan"), aliases)
    assert problem.startswith(f"outcome_industry = 'emp_keyan' has no header in {aliases}")
    assert "edition(s) 2013, 2014," in problem and "2024 (data years 2012," in problem
    assert "2012, 2013 (" not in problem  # edition 2012 still has its GB/T 4754-2002 header
    # a window before the renaming needs no header of the new name
    assert config_problems(with_industry("emp_keyan", start=2006, end=2011), aliases) == []


@pytest.mark.parametrize("value", ["金融业", "finance", "emp_Jinrong", 3])
def test_the_schema_rejects_a_malformed_id(value: object) -> None:
    from snakemake.utils import validate

    config = with_industry(value)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="outcome_industry"):
        validate(config, str(SCHEMA))
    validate(with_industry(FINANCE), str(SCHEMA))


@pytest.mark.workflow
def test_a_dry_run_stops_on_an_unknown_industry(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path / "w")
    proc = snakemake(work, "-n", "panel", "--config", "outcome_industry=emp_bank", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "outcome_industry = 'emp_bank' is not an industry" in text, text[-3000:]
    assert "Traceback" not in text and not (work / "results").exists()


# ------------------------------------------------------------------------------------------ the panel


def test_the_default_panel_is_unchanged_to_the_last_digit(pristine_demo_raw: Path, tmp_path: Path):
    paths = build_panel_outputs(pristine_demo_raw, tmp_path / "results")
    for key, digest in DEFAULT_DIGESTS.items():
        frame = pd.read_parquet(paths[key])
        found = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        assert found == digest, f"the default {paths[key].name} changed: digest {found}"
    columns = tuple(pd.read_parquet(paths["parquet"]).columns)
    assert columns[: len(P.PANEL_COLUMNS)] == P.PANEL_COLUMNS  # then the treatment columns


@pytest.fixture(scope="module")
def finance(tmp_path_factory) -> dict[str, Path]:
    """The demo extracts written for outcome_industry emp_jinrong, and the panel built from them."""
    root = tmp_path_factory.mktemp("finance")
    raw = write_demo_raw(root / "demo" / "raw", outcome_industry=FINANCE)
    return build_panel_outputs(raw, root / "results", outcome_industry=FINANCE)


def test_lq_is_the_location_quotient_of_the_chosen_industry(finance: dict[str, Path]) -> None:
    """Recomputed from industries_long with a plain loop over years: lq_ct = (e_ct / T_ct) /
    (sum_j e_jt / sum_j T_jt) over the panel's city-years."""
    panel = pd.read_parquet(finance["parquet"])
    long = pd.read_parquet(finance["industries"])
    emp = long[long["variable"] == FINANCE].set_index(["city_code", "year"])["value"]
    assert set(long.loc[long["variable"] == FINANCE, "industry"]) == {"金融业"}
    keyed = panel.set_index(["city_code", "year"])
    assert emp.reindex(keyed.index).notna().all()  # the balanced sample needs it in every city-year
    np.testing.assert_array_equal(keyed[FINANCE].to_numpy(), emp.reindex(keyed.index).to_numpy())
    for year in sorted(panel["year"].unique()):
        rows = keyed.xs(year, level="year")
        e = emp.xs(year, level="year").reindex(rows.index).to_numpy()
        t = rows["total_emp"].to_numpy()
        expected = (e / t) / (e.sum() / t.sum())
        np.testing.assert_allclose(rows["lq"].to_numpy(), expected, rtol=1e-12, atol=0)
    it_share = panel["it_emp"] / panel["total_emp"]
    assert not np.allclose(panel["lq"], it_share / it_share.mean(), rtol=0.05)


def test_the_panel_keeps_it_emp_and_adds_the_industrys_column(finance: dict[str, Path]) -> None:
    panel = pd.read_parquet(finance["parquet"])
    expected = P.panel_columns(FINANCE)
    assert tuple(panel.columns)[: len(expected)] == expected  # then the treatment columns
    cols = list(panel.columns)
    assert cols.index(FINANCE) == cols.index("total_emp") + 1 and "it_emp" in cols
    # the sample rule follows the outcome: cities whose IT employment is missing in a year stay in
    assert panel["it_emp"].isna().any() and panel[FINANCE].notna().all()
    # every edition of the demo prints the outcome industry
    long = pd.read_parquet(finance["industries"])
    assert sorted(long.loc[long["variable"] == FINANCE, "year"].unique()) == list(
        range(CONFIG["years"]["start"], CONFIG["years"]["end"] + 1)
    )


def test_the_dta_says_whose_location_quotient_lq_is(finance: dict[str, Path]) -> None:
    with pd.io.stata.StataReader(finance["dta"]) as reader:
        labels = reader.variable_labels()
        data_label = reader.data_label
    assert labels["lq"] == f"{FINANCE_ZH} / Finance employment location quotient"
    assert labels[FINANCE] == "金融业从业人员（万人） / Finance employment (10k persons)"
    assert labels["it_emp"] == "信息技术业从业人员（万人） / IT employment (10k persons)"
    assert data_label.endswith(f"lq of {FINANCE}")


def test_extracts_without_the_industry_in_an_edition_fail_naming_the_file(
    pristine_demo_raw: Path, tmp_path: Path
) -> None:
    """The default demo prints 金融业 in a few editions only: asking for its lq names the others."""
    with pytest.raises(InputError) as err:
        build_panel_outputs(pristine_demo_raw, tmp_path / "results", outcome_industry=FINANCE)
    missing = [p for p in err.value.problems if p.message.startswith(f"no column for {FINANCE}")]
    assert missing and all("/employment/ccsy_" in p.file for p in missing)
    assert "accepted headers in edition" in missing[0].message and "金融业" in missing[0].message
    assert not (tmp_path / "results" / "panel").exists() or not any(
        (tmp_path / "results" / "panel").iterdir()
    )


def test_build_panel_rejects_an_industry_the_aliases_do_not_know(pristine_demo_raw: Path) -> None:
    with pytest.raises(
        ValueError, match="outcome_industry 'emp_bank' is not an employment variable"
    ):
        build_panel_outputs(pristine_demo_raw, Path("/nonexistent"), outcome_industry="emp_bank")


# ------------------------------------------------------------------------------------------ labels


def test_labels_name_the_industry_only_when_it_is_not_it() -> None:
    shipped = tables.load_labels()
    assert shipped.for_outcome_industry("it_emp") is shipped
    assert shipped.outcome_note("zh") == ""
    finance = shipped.for_outcome_industry(FINANCE)
    assert finance.get("lq", "zh") == FINANCE_ZH
    assert finance.get("lq", "en") == "Finance employment location quotient"
    assert finance.outcome_note("zh") == f"被解释变量 lq 为{FINANCE_ZH}。"
    assert (
        finance.outcome_note("en") == "The outcome lq is the Finance employment location quotient."
    )
    for industry in employment_industries():  # every id the config accepts has its labels
        relabelled = shipped.for_outcome_industry(industry)
        assert relabelled.has(industry) and relabelled.outcome_note("en") or industry == "it_emp"


def test_a_missing_label_names_the_label_file(tmp_path: Path) -> None:
    path = tmp_path / "terms.csv"
    path.write_text("term,label_zh,label_en\nlq,区位熵,LQ\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        tables.load_labels(path).for_outcome_industry(FINANCE)
    assert {p.file for p in err.value.problems} == {str(path)}
    assert "lq:emp_jinrong" in str(err.value) and "note:outcome_industry" in str(err.value)


def test_regression_tables_note_the_industry(tmp_path: Path) -> None:
    tidy = pd.DataFrame(
        {
            "model": ["(1)"],
            "term": ["dual_post"],
            "estimate": [0.1],
            "std_error": [0.05],
            "t_stat": [2.0],
            "p_value": [0.05],
            "conf_low": [0.0],
            "conf_high": [0.2],
            "n_obs": [100],
            "n_clusters": [10],
            "r2_within": [0.1],
            "fixed_effects": ["city_code+year"],
            "controls": [""],
            "sample": ["all"],
            "vcov": ["CRV1: city_code"],
        }
    )[list(TIDY_COLUMNS)]
    settings = {"language": "zh", "digits": 3, "stars": [0.1, 0.05, 0.01]}
    specs = str(REPO / "resources/labels/tables.csv")
    shipped = tables.load_labels()
    for language, note in (
        ("zh", f"被解释变量 lq 为{FINANCE_ZH}。"),
        ("en", "The outcome lq is the Finance employment location quotient."),
    ):
        settings["language"] = language
        for labels, shown in ((shipped, False), (shipped.for_outcome_industry(FINANCE), True)):
            table = documents.analysis_table(
                tidy, "baseline", specs_path=specs, labels=labels, settings=settings
            )
            assert (note in " ".join(table.notes)) is shown, table.notes


def test_figures_name_the_industry() -> None:
    assert "IT业区位熵" in maps.figure_text("zh")["pilot_title"]
    zh = maps.figure_text("zh", FINANCE_ZH)
    assert zh["mean_lq"] == f"{FINANCE_ZH}均值" and FINANCE_ZH in zh["pilot_title"]
    en = maps.figure_text("en", "Finance employment location quotient")
    assert en["mean_lq"] == "Mean finance employment location quotient"
    assert en["pilot_title"].format(year=2023).startswith("Finance employment")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_captions_name_the_industry(language: str) -> None:
    from test_report_captions import config as caption_config
    from test_report_captions import render

    captions = sorted((REPO / "workflow/report").glob("*.rst"))
    named = 0
    for path in captions:
        default = render(path, caption_config(language))
        cfg = caption_config(language)
        cfg["outcome_industry"] = FINANCE
        other = render(path, cfg)
        if default != other:
            named += 1
            assert FINANCE in other and " IT " not in f" {other} ", path.name
            assert "IT" in default, path.name
    assert named >= 10


# ------------------------------------------------------------------------------------------ the grid


def test_grid_outcomes_of_another_industry(finance: dict[str, Path]) -> None:
    panel = pd.read_parquet(finance["parquet"])
    (spec,) = rb.parse_grid([{"name": "ln_fin", "outcome": f"ln_{FINANCE}"}])
    data = rb.build_spec(panel, spec, controls=CONFIG["controls"]).data
    np.testing.assert_array_equal(data[f"ln_{FINANCE}"], np.log(panel[FINANCE]))
    (spec,) = rb.parse_grid([{"name": "sh_fin", "outcome": f"{FINANCE}_share"}])
    data = rb.build_spec(panel, spec, controls=CONFIG["controls"]).data
    np.testing.assert_array_equal(
        data[f"{FINANCE}_share"], 100.0 * panel[FINANCE] / panel["total_emp"]
    )
    assert rb.derived_outcome("ln_gdp") is None and rb.derived_outcome("emp_x_total") is None
    (spec,) = rb.parse_grid([{"name": "keyan", "outcome": "ln_emp_keyan"}])
    with pytest.raises(Exception, match="emp_keyan"):
        rb.build_spec(panel, spec, controls=CONFIG["controls"])


# ------------------------------------------------------------------------------------------ the example


def test_the_overlay_changes_the_industry_and_the_descriptives_only() -> None:
    overlay = yaml.safe_load((REPO / OVERLAY).read_text(encoding="utf-8"))
    assert overlay["outcome_industry"] == FINANCE
    default = CONFIG["descriptives"]["variables"]
    assert overlay["descriptives"]["variables"] == [
        FINANCE if v == "it_emp" else v for v in default
    ]
    assert set(overlay) == {"outcome_industry", "descriptives"}


@pytest.mark.workflow
def test_the_documented_example_builds_the_panel_and_baseline(tmp_path: Path) -> None:
    """docs/other-industries.md's command, run for real in a copy of the workflow (about a minute)."""
    work = copy_workflow(tmp_path / "w")
    snakemake(
        work,
        "--cores",
        "2",
        "results/estimates/baseline.csv",
        "results/tables/baseline.md",
        "--configfile",
        OVERLAY,
    )
    panel = pd.read_parquet(work / "results/panel/panel.parquet")
    long = pd.read_parquet(work / "results/panel/industries_long.parquet")
    emp = long[long["variable"] == FINANCE].set_index(["city_code", "year"])["value"]
    keyed = panel.set_index(["city_code", "year"])
    e = emp.reindex(keyed.index)
    share = e / keyed["total_emp"]
    national = e.groupby(level="year").transform("sum") / keyed["total_emp"].groupby(
        level="year"
    ).transform("sum")
    np.testing.assert_allclose(keyed["lq"], share / national, rtol=1e-12, atol=0)
    estimates = pd.read_csv(work / "results/estimates/baseline.csv")
    rows = estimates[estimates["term"] == "dual_post"]
    assert len(rows) == 3 and rows["estimate"].notna().all() and rows["std_error"].gt(0).all()
    # model (1) has no controls, so its sample is the whole panel
    assert int(rows.loc[rows["model"] == "(1)", "n_obs"].iloc[0]) == len(panel)
    table = (work / "results/tables/baseline.md").read_text(encoding="utf-8")
    assert f"被解释变量 lq 为{FINANCE_ZH}。" in table
    config_used = work / ".snakemake" / "dualpilot"
    assert any(FINANCE in p.read_text(encoding="utf-8") for p in config_used.glob("*.yaml"))


def test_the_docs_list_every_industry_with_its_headers() -> None:
    """docs/other-industries.md's table is the alias table: each id with its header up to the 2012 edition
    and from the 2013 edition ("(same)" when one header covers every edition)."""
    text = (REPO / "docs/other-industries.md").read_text(encoding="utf-8")
    shown = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0] != "`id`":
            shown[cells[0].split("`")[1]] = (cells[1], cells[2])
    with HEADER_ALIASES.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["table"] == "employment"]
    expected = {}
    for industry in employment_industries():
        own = [r for r in rows if r["variable"] == industry]
        if len(own) == 1:
            assert own[0]["first_edition"] == own[0]["last_edition"] == ""
            expected[industry] = (own[0]["header"], "(same)")
        else:
            (old,) = [r["header"] for r in own if r["last_edition"] == "2012"]
            (new,) = [r["header"] for r in own if r["first_edition"] == "2013"]
            assert len(own) == 2
            expected[industry] = (old, new)
    assert shown == expected


def test_the_demo_values_of_an_industry_do_not_depend_on_the_setting(
    finance: dict[str, Path], pristine_demo_raw: Path, tmp_path: Path
) -> None:
    """Where the default demo prints 金融业 too, the finance demo prints the same values."""
    default = build_panel_outputs(pristine_demo_raw, tmp_path / "results")
    keys = ["city_code", "year", "variable"]
    a = pd.read_parquet(default["industries"]).set_index(keys)["value"]
    b = pd.read_parquet(finance["industries"]).set_index(keys)["value"]
    a = a[a.index.get_level_values("variable") == FINANCE]
    assert len(a) > 500
    common = a.index.intersection(b.index)
    assert len(common) > 0.9 * len(a)
    np.testing.assert_array_equal(a.loc[common].to_numpy(), b.loc[common].to_numpy())


@pytest.mark.workflow
def test_another_industry_and_another_programme_pair_together(tmp_path: Path) -> None:
    """The two overlays compose (docs/other-industries.md): finance's lq with the synthetic broadband x
    low-carbon pair; the panel carries both, and the baseline table's note names the industry."""
    work = copy_workflow(tmp_path / "wf")
    snakemake(
        work,
        "--cores",
        "2",
        "results/estimates/baseline.csv",
        "results/tables/baseline.md",
        "--configfile",
        "config/examples/finance_industry.yaml",
        "config/examples/broadband_low_carbon.yaml",
    )
    panel = pd.read_parquet(work / "results/panel/panel.parquet")
    assert {"emp_jinrong", "bb_post", "lc_post", "bb_only_post"} <= set(panel.columns)
    assert "sc_post" not in panel.columns
    table = (work / "results/tables/baseline.md").read_text(encoding="utf-8")
    assert "被解释变量 lq 为金融业就业区位熵" in table
    labels = (work / "results/labels/terms.csv").read_text(encoding="utf-8")
    assert "bb_post,合成宽带中国试点,Synthetic broadband China pilot" in labels.splitlines()
