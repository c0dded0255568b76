"""The rule files: every job rule has a log, a benchmark and resources, every path is written once, and the
headline estimate comes from config (workflow/rules/*.smk, Snakefile).

Two levels: the .smk text, parsed rule by rule (what a reader sees), and a dry run of the whole study
without a profile (what Snakemake gives each job: no profile default can hide a rule without resources).
"""

from __future__ import annotations

import ast
import re

import pytest

from workflow_helpers import REPO, copy_workflow
from workflow_helpers import snakemake as run_snakemake

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
# A rule runs a job when it has one of these directives; the others are aggregate targets.
JOB_DIRECTIVES = ("script", "shell", "run", "notebook", "wrapper")
PATH_LITERAL = re.compile(r"""["'](?:results|resources)/[^"']*["']""")


def sections(text: str, head: str) -> dict[str, str]:
    """{name: text} of each section of `text` opened by a line matching `head` (group 1 the name, group 2
    the rest of the line); a section ends at the next such line or at a line that is not indented."""
    found: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(head, line)
        if match:
            name = match.group(1)
            found[name] = match.group(2)
        elif line and not line[0].isspace():
            name = None
        elif name:
            found[name] += "\n" + line
    return found


RULE_HEAD = r"^rule (\w+):(.*)$"
DIRECTIVE_HEAD = r"^    (\w+):(.*)$"  # directives sit at four spaces


def all_rules() -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    for path in RULE_FILES:
        for name, block in sections(path.read_text(encoding="utf-8"), RULE_HEAD).items():
            assert name not in rules, f"rule {name} is defined twice"
            rules[name] = sections(block, DIRECTIVE_HEAD)
    return rules


def job_rules() -> dict[str, dict[str, str]]:
    return {n: d for n, d in all_rules().items() if any(k in d for k in JOB_DIRECTIVES)}


def test_the_parser_sees_every_rule():
    rules = all_rules()
    # a sample of each kind: job rules (one with wildcards, a localrule) and aggregate targets
    for name in ("build_panel", "placebo_shard", "gather_placebo", "render_maps", "all", "placebo"):
        assert name in rules, name
    assert "script" in rules["build_panel"] and "script" not in rules["placebo"]
    assert len(job_rules()) >= 30


def test_every_job_rule_has_log_benchmark_and_resources():
    missing = {
        name: [k for k in ("log", "benchmark", "resources") if k not in d]
        for name, d in job_rules().items()
    }
    assert {n: m for n, m in missing.items() if m} == {}


def test_benchmark_and_log_paths_follow_one_pattern():
    """logs/<rule>.log and benchmarks/<rule>.tsv; with wildcards logs/<rule>/<wildcards>.log and
    benchmarks/<rule>/<wildcards>.tsv."""
    for name, d in job_rules().items():
        (log,) = re.findall(r'"([^"]+)"', d["log"])
        (benchmark,) = re.findall(r'"([^"]+)"', d["benchmark"])
        assert log in (f"logs/{name}.log",) or log.startswith(f"logs/{name}/"), (name, log)
        assert (
            benchmark == "benchmarks/" + log.removeprefix("logs/").removesuffix(".log") + ".tsv"
        ), (
            name,
            benchmark,
        )


def test_no_job_rule_relies_on_profile_defaults_for_resources():
    """mem_mb and runtime named in the rule, or through JOB_RESOURCES (common.smk), which has both."""
    common = (REPO / "workflow/rules/common.smk").read_text(encoding="utf-8")
    shared = re.search(r"^JOB_RESOURCES = (\{.*\})$", common, re.MULTILINE)
    assert shared, "common.smk defines JOB_RESOURCES on one line"
    assert {"mem_mb", "runtime"} <= set(ast.literal_eval(shared.group(1)))
    for name, d in job_rules().items():
        text = d["resources"]
        if "**JOB_RESOURCES" not in text:
            assert "mem_mb=" in text and "runtime=" in text, (name, text)


def test_each_path_is_written_once():
    counts: dict[str, list[str]] = {}
    for path in RULE_FILES:
        for literal in PATH_LITERAL.findall(path.read_text(encoding="utf-8")):
            counts.setdefault(literal.strip("\"'"), []).append(path.name)
    assert counts["results/panel/panel.parquet"] == ["panel.smk"]
    repeated = {p: files for p, files in counts.items() if len(files) > 1}
    assert repeated == {}, (
        f"paths written more than once (use rules.<rule>.output or common.smk): {repeated}"
    )


def test_headline_model_and_term_come_from_config():
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        assert '"(2)"' not in text and '"dual_post"' not in text, path.name
    rules = all_rules()
    for name in ("summarise_placebo", "render_placebo", "estimate_bacon", "estimate_demo_recovery"):
        assert 'config["headline"]' in rules[name]["params"], name


def test_rule_files_name_no_issue():
    for path in RULE_FILES:
        assert not re.search(r"\bissue \d+", path.read_text(encoding="utf-8"), re.IGNORECASE), (
            path.name
        )


# ------------------------------------------------------------------------------ what Snakemake gives each job
@pytest.fixture(scope="module")
def dry_run_jobs(tmp_path_factory) -> list[dict[str, str]]:
    """Every job of a dry run of the whole study without a profile: rule, log, benchmark, resources."""
    work = copy_workflow(tmp_path_factory.mktemp("rules"))
    out = run_snakemake(work, "-n", "--workflow-profile", "none", "--cores", "1").stdout
    jobs: list[dict[str, str]] = []
    for line in out.splitlines():
        head = re.match(r"^\s*(?:local)?rule (\w+):", line)
        if head:
            jobs.append({"rule": head.group(1)})
            continue
        item = re.match(r"^\s+(log|benchmark|resources): (.*)$", line)
        if item and jobs:
            jobs[-1][item.group(1)] = item.group(2)
    return jobs


def test_every_job_of_the_study_gets_log_benchmark_memory_and_runtime(dry_run_jobs):
    jobs = [j for j in dry_run_jobs if j["rule"] != "all"]
    assert {j["rule"] for j in jobs} == set(job_rules()), "the default target runs every job rule"
    for job in jobs:
        assert "log" in job and "benchmark" in job, job
        resources = dict(i.split("=", 1) for i in job.get("resources", "").split(", ") if "=" in i)
        assert int(resources.get("mem_mb", 0)) >= 1000, job
        assert int(resources.get("runtime", 0)) >= 10, job


def test_a_headline_the_placebo_shards_do_not_estimate_is_refused(tmp_path):
    """The placebo shards re-estimate model (2) with dual_post: another headline would be compared with
    draws of another model, so validation refuses it, naming the key."""
    work = copy_workflow(tmp_path / "work")
    overlay = tmp_path / "headline.yaml"
    overlay.write_text('headline:\n  model: "(1)"\n  term: dual_post\n', encoding="utf-8")
    proc = run_snakemake(work, "-n", "--configfile", str(overlay), check=False)
    assert proc.returncode != 0
    assert "headline" in proc.stdout + proc.stderr and "(1)" in proc.stdout + proc.stderr
