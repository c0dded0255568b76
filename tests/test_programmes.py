"""Pilot programmes as data (issue 15, items 1, 3 and 4; docs/treatment-coding.md, "Programmes as data", and
docs/other-programmes.md): the column names and labels that follow the programme keys, the generic coding,
the checks of bad programme definitions, the synthetic example list, and two builds of the workflow: the
default run equals the one built from the code before programmes became data, and the example overlay runs
with the other programme's columns and labels."""

from __future__ import annotations

import copy
import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dualpilot.data import programmes, reference, treatment
from dualpilot.data.programmes import DEFAULT_PAIR, Pair
from dualpilot.demo.synthetic_pilots import pilot_list_text, synthetic_pilot_list
from dualpilot.render import tables
from dualpilot.workflow.config_checks import (
    config_problems,
    config_warnings,
    programme_file_problems,
)
from workflow_helpers import REPO, copy_workflow, snakemake

CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
EXAMPLE = "config/examples/broadband_low_carbon.yaml"
RES = REPO / "resources"


def _merged(base: dict, overlay: dict) -> dict:
    """`overlay` merged into `base` key by key, as Snakemake merges a --configfile overlay."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


EXAMPLE_CONFIG = _merged(CONFIG, yaml.safe_load((REPO / EXAMPLE).read_text(encoding="utf-8")))


def _with(config: dict, changes: dict[str, object]) -> dict:
    out = copy.deepcopy(config)
    for dotted, value in changes.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return out


# ---------------------------------------------------------------------------------------------------------
# Names and labels that follow the keys
# ---------------------------------------------------------------------------------------------------------


def test_the_default_pair_names_the_study_columns() -> None:
    assert treatment.TREATMENT_COLUMNS == (
        "sc_year", "lc_year", "dual_year", "sc_post", "lc_post", "dual_post",
        "sc_only_post", "lc_only_post", "years_since_dual", "group",
    )  # fmt: skip
    assert treatment.GROUPS == ("none", "sc_only", "lc_only", "dual")
    pair = Pair("bb", "lc")
    assert pair.treatment_columns == (
        "bb_year", "lc_year", "dual_year", "bb_post", "lc_post", "dual_post",
        "bb_only_post", "lc_only_post", "years_since_dual", "group",
    )  # fmt: skip
    assert pair.groups == ("none", "bb_only", "lc_only", "dual")
    assert pair.state_columns == ("bb_only_post", "lc_only_post", "dual_post")
    assert Pair.of(["bb", "lc"]) == pair and Pair.of(None) == DEFAULT_PAIR


def test_a_pair_needs_two_programmes_that_are_not_reserved() -> None:
    with pytest.raises(ValueError, match="names one programme twice"):
        Pair("sc", "sc")
    with pytest.raises(ValueError, match="'dual' is reserved"):
        Pair("dual", "lc")
    with pytest.raises(ValueError, match="two programmes"):
        Pair.of(["sc"])
    with pytest.raises(ValueError, match=r"names programme\(s\) \['bb'\]"):
        programmes.dual_programmes(CONFIG["programmes"], ["bb", "lc"])


def test_the_default_programmes_derive_the_shipped_labels() -> None:
    """The labels derived from the default programmes are those of resources/labels/terms.csv, so the
    label file of a default run (rule write_labels) is the shipped one."""
    shipped = tables.load_labels().entries
    defined = [programmes.parse_programme(k, v) for k, v in CONFIG["programmes"].items()]
    derived = programmes.label_entries(defined)
    assert {t: shipped.get(t) for t in derived} == derived
    assert len(derived) == 16  # 8 terms per programme
    merged = tables.with_programme_labels(tables.load_labels(), defined)
    assert dict(merged.entries) == dict(shipped)


def test_another_programme_labels_its_terms() -> None:
    bb = programmes.parse_programme("bb", EXAMPLE_CONFIG["programmes"]["bb"])
    labels = tables.with_programme_labels(tables.load_labels(), [bb])
    assert labels.get("bb_only_post", "en") == "Synthetic broadband China pilot only"
    assert labels.get("bb_only", "zh") == "仅合成宽带中国试点城市"
    assert labels.get("column:bb_only", "en") == "Synthetic broadband only"
    assert labels.get("model:bb_alone", "zh") == "仅含合成宽带中国试点"
    assert labels.get("dual_bb_first", "en") == "Dual pilot (Synthetic broadband first)"
    assert labels.get("programme:synthetic_broadband", "zh") == "合成宽带中国试点"
    assert labels.get("wald: dual_post = bb_only_post", "en").endswith(
        "Dual pilot = Synthetic broadband China pilot only"
    )


# ---------------------------------------------------------------------------------------------------------
# The coding for any pair
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_lists() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    master = reference.load_city_master(RES / "cities/city_master.csv")
    sc = reference.load_pilot_list(RES / "policy/smart_city_pilots.csv")
    lc = reference.load_pilot_list(RES / "policy/low_carbon_pilots.csv")
    return master, sc, lc


def _city_years(master: pd.DataFrame) -> pd.DataFrame:
    years = range(2006, 2024)
    return pd.DataFrame(
        [(c, y) for c in master["city_code"] for y in years], columns=["city_code", "year"]
    )


def test_code_dual_of_other_keys_is_the_default_coding_renamed(shipped_lists) -> None:
    master, sc, lc = shipped_lists
    panel = _city_years(master)
    rules = {"province_pilot_treats_cities": True, "subcity_pilot_treats_city": True}
    years = {"sc": {1: 2012, 2: 2013, 3: 2014}, "lc": {1: 2010, 2: 2012, 3: 2017}}
    default = treatment.code_treatment(
        panel, sc, lc, master, sc_batch_years=years["sc"], lc_batch_years=years["lc"],
        last_year=2023, **rules,
    )  # fmt: skip
    other = treatment.code_dual(
        panel,
        {"xa": sc, "yb": lc},
        master,
        pair=Pair("xa", "yb"),
        batch_years={"xa": years["sc"], "yb": years["lc"]},
        last_year=2023,
        **rules,
    )
    renamed = other.rename(columns=lambda c: c.replace("xa_", "sc_").replace("yb_", "lc_"))
    renamed["group"] = renamed["group"].replace({"xa_only": "sc_only", "yb_only": "lc_only"})
    pd.testing.assert_frame_equal(renamed, default)
    assert set(default["group"]) == {"none", "sc_only", "lc_only", "dual"}
    with pytest.raises(
        ValueError, match=r"no pilot list or batch years given for programme\(s\) \['yb'\]"
    ):
        treatment.code_dual(
            panel,
            {"xa": sc},
            master,
            pair=Pair("xa", "yb"),
            batch_years={"xa": years["sc"], "yb": years["lc"]},
            last_year=2023,
            **rules,
        )


def test_the_demo_codes_the_config_s_sc_and_lc() -> None:
    """The demo's default coding is the one rule make_demo_extracts builds from programmes sc and lc."""
    from dualpilot.demo import extracts as demo

    sc, lc = programmes.dual_programmes(CONFIG["programmes"], ["sc", "lc"])
    assert demo.DEFAULT_POLICY == {
        "sc_batch_years": sc.batch_map,
        "lc_batch_years": lc.batch_map,
        **treatment.rules_from_config(CONFIG["policy"]),
    }


def test_treatment_summary_names_the_pair(shipped_lists) -> None:
    master, sc, lc = shipped_lists
    pair = Pair("bb", "lc")
    coded = treatment.code_dual(
        _city_years(master),
        {"bb": sc, "lc": lc},
        master,
        pair=pair,
        batch_years={"bb": {1: 2014, 2: 2015, 3: 2016}, "lc": {1: 2010, 2: 2012, 3: 2017}},
        province_pilot_treats_cities=True,
        subcity_pilot_treats_city=False,
        last_year=2023,
    )
    summary = treatment.treatment_summary(coded, pair=pair, names=("broadband", "low_carbon"))
    assert set(summary["programme"]) == {"broadband", "low_carbon", "dual"}
    assert set(summary["group"]) <= set(pair.groups)
    for _, rows in summary.groupby("programme"):
        assert rows["n_cities"].sum() == len(master)


# ---------------------------------------------------------------------------------------------------------
# Bad programme definitions fail validation, naming the key or file
# ---------------------------------------------------------------------------------------------------------


def test_the_default_and_the_example_config_are_consistent() -> None:
    assert config_problems(CONFIG) == []
    assert config_problems(EXAMPLE_CONFIG) == []
    assert programme_file_problems(CONFIG, REPO) == []
    assert programme_file_problems(EXAMPLE_CONFIG, REPO) == []
    assert config_warnings(EXAMPLE_CONFIG) == []


BAD_DEFINITIONS = [
    (
        {"dual": ["sc", "bb"]},
        "dual = ['sc', 'bb'] names programme(s) ['bb'] that programmes does not define",
    ),
    ({"dual": ["lc", "lc"]}, "dual = ['lc', 'lc'] names the programme 'lc' twice"),
    (
        {"programmes.lc.batch_years": [2010, 2012, 2012]},
        "programmes.lc.batch_years = [2010, 2012, 2012]: year(s) [2012] given to more than one batch",
    ),
    (
        {"programmes.sc.batch_years": [2013, 2012, 2014]},
        "programmes.sc.batch_years = [2013, 2012, 2014]: batch n+1 cannot start before batch n",
    ),
    (
        {
            "programmes.lc.pilot_list": "smart_city_pilots.csv",
            "programmes.lc.batch_years": [2012, 2013, 2014],
        },
        "programmes.sc and programmes.lc have the same pilot_list and batch_years",
    ),
    (
        {"programmes.lc.name": "smart_city"},
        "programmes.lc.name = 'smart_city' is also the name of programmes.sc",
    ),
    (
        {"descriptives.group_order": ["none", "bb_only", "lc_only", "dual"]},
        "descriptives.group_order = ['none', 'bb_only', 'lc_only', 'dual'] lists group(s) ['bb_only']",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_DEFINITIONS)
def test_a_bad_programme_definition_names_its_key(changes: dict, message: str) -> None:
    problems = config_problems(_with(CONFIG, changes))
    assert any(message in p for p in problems), problems


def test_the_example_pair_rejects_the_default_pair_keys() -> None:
    """With dual [bb, lc], the default grid's smart-city recoding and the default descriptives name a
    programme outside the pair: both are errors naming the key."""
    config = _with(CONFIG, {"dual": ["bb", "lc"]})
    config["programmes"]["bb"] = EXAMPLE_CONFIG["programmes"]["bb"]
    problems = config_problems(config)
    specs = CONFIG["robustness"]["grid"]["specs"]
    i = next(i for i, s in enumerate(specs) if "smart_city" in (s.get("policy") or {}))
    assert any(f"robustness.grid.specs[{i}].policy.smart_city" in p for p in problems), problems
    assert any("descriptives.group_order" in p and "'sc_only'" in p for p in problems), problems
    assert any("descriptives.variables[13] = 'sc_post'" in p for p in problems), problems


def test_a_missing_pilot_list_names_the_key_and_both_folders(tmp_path: Path) -> None:
    config = _with(CONFIG, {"programmes.lc.pilot_list": "nowhere.csv", "raw_dir": str(tmp_path)})
    problems = programme_file_problems(config, REPO)
    assert problems == [
        f"programmes.lc.pilot_list = 'nowhere.csv': no such file in {tmp_path / 'policy'} or "
        f"{REPO / 'resources' / 'policy'}"
    ]
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "nowhere.csv").write_text("batch\n", encoding="utf-8")
    assert programme_file_problems(config, REPO) == []  # the user's raw_dir brings it
    config = _with(CONFIG, {"programmes.sc.official_counts": "missing_counts.csv"})
    assert programme_file_problems(config, REPO) == [
        f"programmes.sc.official_counts = 'missing_counts.csv': no such file in "
        f"{REPO / 'resources' / 'policy'}"
    ]


def test_a_batch_year_outside_the_window_is_a_warning() -> None:
    warnings = config_warnings(_with(CONFIG, {"programmes.sc.batch_years": [2004, 2013, 2014]}))
    assert any(
        w.startswith("programmes.sc.batch_years has 2004, outside the study window")
        and "no year before the pilot" in w
        for w in warnings
    ), warnings


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        (
            {"programmes": {"lc": {"pilot_list": "nowhere.csv"}}},
            "programmes.lc.pilot_list = 'nowhere.csv'",
        ),
        ({"dual": ["sc", "bb"]}, "names programme(s) ['bb'] that programmes does not define"),
        ({"programmes": {"sc": {"batch_years": [2012, 2012, 2014]}}}, "programmes.sc.batch_years"),
        (
            {"programmes": {"dual": CONFIG["programmes"]["sc"]}},
            "schema['properties']['programmes']['propertyNames']",
        ),
    ],
    ids=["missing_list", "unknown_programme", "repeated_year", "reserved_key"],
)
def test_a_dry_run_stops_on_a_bad_definition(tmp_path: Path, overlay: dict, message: str) -> None:
    work = copy_workflow(tmp_path / "wf")
    (work / "bad.yaml").write_text(yaml.safe_dump(overlay, allow_unicode=True), encoding="utf-8")
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert not (work / "results").exists()


# ---------------------------------------------------------------------------------------------------------
# The synthetic example list
# ---------------------------------------------------------------------------------------------------------


def test_the_synthetic_broadband_list_is_redrawn_exactly() -> None:
    master = reference.load_city_master(RES / "cities/city_master.csv")
    bb = EXAMPLE_CONFIG["programmes"]["bb"]
    batch_years = dict(enumerate(bb["batch_years"], start=1))
    drawn = synthetic_pilot_list(
        master,
        batch_years,
        {1: 39, 2: 39, 3: 39},
        seed=20260406,
        programme="broadband China (宽带中国)",
    )
    path = RES / "policy" / bb["pilot_list"]
    assert path.name.startswith("synthetic_")
    assert path.read_text(encoding="utf-8") == pilot_list_text(drawn)
    listed = reference.load_checked_pilot_list(
        path,
        master=master,
        crosswalk=reference.load_name_crosswalk(RES / "cities/name_crosswalk.csv"),
        batch_years=batch_years,
    )
    assert len(listed) == 117 and listed["source"].str.startswith("SYNTHETIC").all()
    assert listed["city_code"].is_unique


# ---------------------------------------------------------------------------------------------------------
# Builds: the default run is unchanged; the example overlay runs
# ---------------------------------------------------------------------------------------------------------

#: The last commit before programmes became data (issue 14's package layout). The default run of the current
#: code must reproduce its results. When a later change alters the default estimates on purpose, this test
#: fails by design: move the commit to the one before that change's, after checking the new numbers.
REFERENCE_COMMIT = "ff2f4f6205e39858c585cc31d6794ee43056ba5e"
#: Results compared: every estimate file, the tidy tables and the panel.
COMPARED = ("results/estimates/*.csv", "results/tables/*.csv", "results/panel/*.csv")
#: Relative tolerance for numbers that differ in their last bits only. The same code does not reproduce every
#: estimate to the last bit from one process to the next: the PSM and regression estimates change in the 16th
#: significant digit with the process's memory layout (the PSM of the reference commit, run with a different
#: heap offset, gives 0.20431324543846557 or 0.2043132454384656; two builds of the reference commit gave
#: baseline (1) 0.18918818694394407 and 0.1891881869439441; a PSM standard error moved by 4e-11 relative, p-values
#: near 1e-26 by 4e-9 relative). Text cells must be equal, numbers equal to 1e-9 relative or 1e-12 absolute:
#: every printed digit.
LAST_BITS = 1e-9


def _reference_tree(dest: Path) -> Path:
    rev = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "rev-parse",
            "--verify",
            "--quiet",
            f"{REFERENCE_COMMIT}^{{commit}}",
        ],
        capture_output=True,
        text=True,
    )
    if rev.returncode != 0:
        pytest.skip(f"the reference commit {REFERENCE_COMMIT[:7]} is not in this clone (shallow?)")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", REFERENCE_COMMIT], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _same_numbers(a: Path, b: Path) -> bool:
    """Two CSV files with the same text cells and numbers equal up to `LAST_BITS` (relative) or 1e-12."""
    x, y = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
    if list(x.columns) != list(y.columns) or x.shape != y.shape:
        return False
    for col in x.columns:
        nx, ny = pd.to_numeric(x[col], errors="coerce"), pd.to_numeric(y[col], errors="coerce")
        numeric = nx.notna() & ny.notna()
        if not x[col][~numeric].fillna("").equals(y[col][~numeric].fillna("")):
            return False
        if not np.allclose(nx[numeric], ny[numeric], rtol=LAST_BITS, atol=1e-12):
            return False
    return True


@pytest.mark.workflow
def test_the_default_run_is_unchanged(small_study: Path, tmp_path: Path) -> None:
    from study_build import OVERLAY_FILE, SMALL_OVERLAY

    ref = _reference_tree(tmp_path / "reference")
    (ref / OVERLAY_FILE).write_text(yaml.safe_dump(SMALL_OVERLAY), encoding="utf-8")
    snakemake(ref, "--cores", "2", "--configfile", OVERLAY_FILE)
    files = sorted({p.relative_to(ref) for g in COMPARED for p in ref.glob(g)})
    assert len(files) >= 25, files
    now = sorted({p.relative_to(small_study) for g in COMPARED for p in small_study.glob(g)})
    assert now == files
    different = [f for f in files if (ref / f).read_bytes() != (small_study / f).read_bytes()]
    in_last_bits = [f for f in different if _same_numbers(ref / f, small_study / f)]
    assert different == in_last_bits, f"changed: {sorted(set(different) - set(in_last_bits))}"
    print(
        f"{len(files) - len(different)} of {len(files)} files byte for byte; last bits: {different}"
    )


@pytest.mark.workflow
def test_the_example_overlay_codes_and_labels_the_other_pair(tmp_path: Path) -> None:
    """The documented command of docs/other-programmes.md (with few draws and English tables): the other
    programme's columns, groups, models and labels everywhere, marked synthetic; no sc_ column."""
    from study_build import SMALL_OVERLAY

    work = copy_workflow(tmp_path / "wf")
    (work / "small.yaml").write_text(yaml.safe_dump(SMALL_OVERLAY), encoding="utf-8")
    snakemake(work, "--cores", "2", "--configfile", EXAMPLE, "small.yaml")
    results = work / "results"
    panel = pd.read_parquet(results / "panel/panel.parquet")
    assert set(Pair("bb", "lc").treatment_columns) <= set(panel.columns)
    assert not [c for c in panel.columns if c.startswith("sc_")]
    assert set(panel["group"]) == {"none", "bb_only", "lc_only", "dual"}
    svd = pd.read_csv(results / "estimates/single_vs_dual.csv")
    assert set(svd["model"]) == {"joint", "bb_alone", "lc_alone"}
    assert "wald: dual_post = bb_only_post" in set(svd["term"])
    order = pd.read_csv(results / "estimates/pilot_order.csv")
    assert {"bb_only_post", "lc_only_post"} <= set(order["term"])
    assert set(order["term"]) & {"dual_bb_first", "dual_lc_first"}
    summary = pd.read_csv(results / "tables/treatment_summary.csv")
    assert set(summary["programme"]) == {"synthetic_broadband", "low_carbon", "dual"}
    grid = pd.read_csv(results / "estimates/robustness_specs.csv")
    assert "broadband_batch3_2017" in set(grid["model"])
    md = (results / "tables/single_vs_dual.md").read_text(encoding="utf-8")
    assert "Synthetic broadband China pilot only" in md and "Smart City" not in md
    summary_md = (results / "tables/treatment_summary.md").read_text(encoding="utf-8")
    assert "Synthetic broadband only" in summary_md
    dta = pd.io.stata.StataReader(results / "panel/panel.dta")
    assert dta.variable_labels()["bb_post"] == "合成宽带中国试点 / Synthetic broadband China pilot"
    log = (work / "logs/build_panel.log").read_text(encoding="utf-8")
    assert "synthetic_broadband pilot list" in log and "is SYNTHETIC" in log
    assert not (results / "tables/demo_recovery.csv").exists()
    # the report's captions name the pair's programmes and columns
    snakemake(work, "--report", "results/report.html", "--configfile", EXAMPLE, "small.yaml")
    assert (results / "report.html").stat().st_size > 0
