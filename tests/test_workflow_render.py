"""Estimation apart from rendering, `rule all` against the README, and quiet logs (issue 12).

- After a complete build (conftest's `small_study`), a `--configfile` overlay that changes `tables:` and
  `figures:` makes a dry run list render jobs only (render_<stage>, plus save_config, which records the
  configuration): no estimation, bootstrap or permutation job re-runs. As a control, a change of an
  estimation setting does re-run its estimation job.
- The README's result map ("What is computed, and where it lands": every path of its Output column, with
  `{a,b}` and `<kind>` expanded) equals the files `rule all` builds (`snakemake --summary`), apart from the
  shards the map names by their gathered file.
- Logs: no "Shell command: None" in Snakemake's output; no internal formula names (`_y ~ _x0 + ...`) and
  no multi-line dumps (DataFrames, configs) in logs/; one line per fitted model with its sample size; the
  dry run's reason for save_config names a snapshot file, not the configuration.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from study_build import BUILD_OUTPUT, OVERLAY_FILE
from workflow_helpers import REPO, copy_workflow, snakemake

RENDER_RULES = {
    "render_baseline",
    "render_psm",
    "render_placebo",
    "render_robustness",
    "render_mechanisms_heterogeneity",
    "render_maps",
}
# Rules a change of the presentation settings may re-run besides the render rules.
PROVENANCE_RULES = {"save_config", "all"}
# Outputs of rule all's DAG the README names by the file they are gathered into.
INTERMEDIATE = [
    "results/placebo/*/shard_*.parquet",
    "results/heterogeneity/permutations/*/shard_*.parquet",
]


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run's output ({} if nothing to do)."""
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", output, re.S)
    if match is None:
        assert "Nothing to be done" in output, output[-3000:]
        return {}
    return {
        rule: int(count)
        for rule, count in (line.split() for line in match.group(1).strip().splitlines())
    }


def dry_run(work: Path, *overlays: str) -> str:
    proc = snakemake(work, "--dry-run", "--configfile", OVERLAY_FILE, *overlays)
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ render apart from estimation


@pytest.mark.workflow
def test_a_built_study_is_up_to_date(small_study: Path):
    assert planned_jobs(dry_run(small_study)) == {}


@pytest.mark.workflow
def test_changing_tables_and_figures_reruns_render_jobs_only(small_study: Path):
    (small_study / "presentation.yaml").write_text(
        yaml.safe_dump(
            {
                "tables": {"language": "zh", "digits": 4},  # the small study is English
                "figures": {"dpi": 81, "ci": 0.9},
            }
        ),
        encoding="utf-8",
    )
    output = dry_run(small_study, "presentation.yaml")
    jobs = planned_jobs(output)
    assert set(jobs) - PROVENANCE_RULES == RENDER_RULES, jobs
    # every render job re-runs, each placebo kind's figure too
    kinds = yaml.safe_load((REPO / "config/config.yaml").read_text())["placebo"]["kinds"]
    assert jobs["render_placebo"] == len(kinds)
    # save_config says why in one short line: its snapshot file, not the whole configuration
    reasons = re.findall(r"rule save_config:.*?\n\s+reason: ([^\n]*)", output, re.S)
    assert reasons and len(reasons[0]) < 200 and "'raw_dir'" not in reasons[0], reasons


@pytest.mark.workflow
def test_changing_an_estimation_setting_reruns_its_estimation(small_study: Path):
    # the control: the dry run does see estimation jobs when their settings change
    (small_study / "honestdid.yaml").write_text(
        yaml.safe_dump({"robustness": {"honestdid": {"n_draws": 101}}}), encoding="utf-8"
    )
    jobs = planned_jobs(dry_run(small_study, "honestdid.yaml"))
    assert set(jobs) - PROVENANCE_RULES == {"estimate_honestdid", "render_robustness"}, jobs


# ---------------------------------------------------------------------------------- rule all = README


def expand_braces(pattern: str) -> list[str]:
    """`a{,_b}.{x,y}` -> a.x, a.y, a_b.x, a_b.y (left to right, nested braces not needed)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [p for option in match.group(1).split(",") for p in expand_braces(head + option + tail)]


def readme_outputs(readme: str, kinds: list[str]) -> list[str]:
    """Every path of the Output column of the README's result map, expanded."""
    section = readme.split("## What is computed, and where it lands", 1)[1]
    rows = [line for line in section.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    assert len(rows) > 10, "the result map is not where the test looks for it"
    paths = []
    for row in rows[2:]:
        output = row.rstrip().rstrip("|").rsplit("|", 1)[1]
        for raw in re.findall(r"`([^`]+)`", output):
            for path in expand_braces(raw):
                paths += [path.replace("<kind>", k) for k in kinds] if "<kind>" in path else [path]
    return [p.rstrip("/") for p in paths]


def dag_outputs(work: Path) -> list[str]:
    """Every output file of the jobs of `rule all` (snakemake --summary; nothing is run)."""
    proc = snakemake(work, "--summary")
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    return [line.split("\t")[0].rstrip("/") for line in lines[start + 1 :] if "\t" in line]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A temporary copy of the workflow with nothing built (for `--summary` and dry runs)."""
    return copy_workflow(tmp_path_factory.mktemp("fresh"))


# Jobs of a full rebuild of the default configuration when the render rules came (issue 12), 'all'
# included; before them it was 74 (docs/performance.md).
JOBS_BEFORE_RENDER_RULES = 74


def test_a_full_rebuild_runs_fewer_jobs_than_before_the_render_rules(fresh: Path):
    proc = snakemake(fresh, "--dry-run")
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert RENDER_RULES <= set(jobs), jobs
    # every job but `all` runs a script in its own Python process
    assert sum(jobs.values()) < JOBS_BEFORE_RENDER_RULES, jobs


def test_readme_result_map_equals_what_rule_all_builds(fresh: Path):
    work = fresh
    kinds = yaml.safe_load((work / "config/config.yaml").read_text())["placebo"]["kinds"]
    promised = readme_outputs((REPO / "README.md").read_text(encoding="utf-8"), kinds)
    built = dag_outputs(work)
    assert len(built) > 100
    # every promised file is built (a pattern such as results/psm/* must match some built file)
    not_built = [p for p in promised if not fnmatch.filter(built, p)]
    assert not_built == [], f"the README promises files that rule all does not build: {not_built}"
    # and every file rule all builds is in the map, apart from the shards of gathered results
    unlisted = [b for b in built if not any(fnmatch.fnmatch(b, p) for p in promised + INTERMEDIATE)]
    assert unlisted == [], (
        f"rule all builds files the README's result map does not list: {unlisted}"
    )


def test_expand_braces_and_the_result_map_parser():
    assert expand_braces("t/h{,_tests}.{tex,md}") == [
        "t/h.tex",
        "t/h.md",
        "t/h_tests.tex",
        "t/h_tests.md",
    ]
    readme = (
        "## What is computed, and where it lands\n\n| Result | Rule | Output |\n|---|---|---|\n"
        + "| x | `r` | `results/a.{csv,md}`, `results/p/<kind>/d.parquet` |\n" * 11
        + "\nText after the table with `results/not_a_result.csv`.\n"
    )
    got = readme_outputs(readme, ["space", "time"])
    assert got[:4] == [
        "results/a.csv",
        "results/a.md",
        "results/p/space/d.parquet",
        "results/p/time/d.parquet",
    ]
    assert "results/not_a_result.csv" not in got


# ------------------------------------------------------------------------------------------- quiet logs


@pytest.mark.workflow
def test_logs_are_quiet_and_useful(small_study: Path):
    build = (small_study / BUILD_OUTPUT).read_text(encoding="utf-8")
    assert "Shell command: None" not in build
    logs = sorted((small_study / "logs").rglob("*.log"))
    assert len(logs) > 30
    timestamp = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ ")
    for log in logs:
        text = log.read_text(encoding="utf-8")
        # internal names of the estimation engine's design frame never reach a log
        assert not re.search(r"\b_(?:y|x\d+|f\d+)\b", text), (log, text[:2000])
        # one line per message: no DataFrame or config dumps continuing over several lines
        loose = [line for line in text.splitlines() if line and not timestamp.match(line)]
        assert loose == [], (log, loose[:5])
    # one line per fitted model, with its sample size, in the user's names: the three columns of the
    # baseline table have three samples (each may be fitted again with other clusters for inference)
    baseline = (small_study / "logs/estimate_baseline.log").read_text(encoding="utf-8")
    fitted = re.findall(r"INFO dualpilot: lq ~ dual_post.*: N = (\d+), (\d+) clusters", baseline)
    assert len({n for n, _ in fitted}) == 3, baseline
    assert all(int(n) > 1000 and int(g) > 20 for n, g in fitted), fitted
