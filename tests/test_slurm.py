"""Cluster execution: the profiles, and the workflow run on a real SLURM scheduler (issue 7).

Two kinds of test:

- Profile tests (fast, no scheduler): profiles/default is loaded on every run; `--workflow-profile
  profiles/slurm` gives every job the account, partition and resources of the profile; passing the same
  file as `--profile` loses them (the pitfall docs/cluster.md warns about); every setting is commented.
- `slurm` tests: a session fixture starts a single-node SLURM (munge, MariaDB + slurmdbd, slurmctld,
  slurmd) with .ci/slurm/start-slurm.sh, installing the Debian packages on first use (skipped, with the
  reason, where they cannot be installed: not root, no apt-get, no network), and stops at the end exactly
  the daemons it started. Each case of CASES runs its targets in two fresh copies of the workflow, once
  through SLURM with profiles/slurm and once locally, and requires every Parquet output to be equal
  (exactly: same machine, interpreter, seeds and one BLAS thread in both runs). It also checks that the jobs
  really went through the scheduler (sacct: COMPLETED, with the profile's account, partition, memory and
  time limit), that grouped jobs reached SLURM as the profile's group-components say, and that the jobs ran
  this interpreter (snakemake's `Command:` line in each SLURM log names this installation).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import snakemake
import yaml

from workflow_helpers import REPO, copy_workflow
from workflow_helpers import snakemake as run_snakemake

START = REPO / ".ci" / "slurm" / "start-slurm.sh"
STOP = REPO / ".ci" / "slurm" / "stop-slurm.sh"
SLURM_PROFILE = "profiles/slurm"
DEFAULT_PROFILE = REPO / "profiles" / "default" / "config.yaml"
SLURM_PROFILE_FILE = REPO / SLURM_PROFILE / "config.yaml"
# The environment variables that profiles/slurm reads its account and partition placeholders from.
ACCOUNT_VAR, PARTITION_VAR = "DUALPILOT_SLURM_ACCOUNT", "DUALPILOT_SLURM_PARTITION"
# snakemake prints `Command: <snakemake package>/__main__.py ...` at the start of every run; in a SLURM
# log it shows which installation (hence which interpreter) ran the job.
SNAKEMAKE_MAIN = str(Path(snakemake.__file__).resolve().parent / "__main__.py")
UNSTARTED_STATUS = 3  # start-slurm.sh: the packages cannot be installed here


@dataclass(frozen=True)
class Case:
    """Targets run on the cluster and locally, with a config overlay that keeps the run small."""

    name: str
    targets: tuple[str, ...]
    overlay: dict = field(default_factory=dict)
    grouped: dict[str, int] = field(default_factory=dict)  # group name -> number of its member jobs


PLACEBO_KINDS = ["space", "mixed_restricted"]
PLACEBO_SHARDS = 2
CASES = [
    # Demo extracts and panel as plain cluster jobs, then 2 kinds x 2 shards of placebo draws as grouped
    # jobs, gathered on the submit host. Add a case (e.g. Case("panel", ("results/panel/panel.parquet",)))
    # to run more targets; the aggregate target `placebo` also estimates the baseline and plots (~2 min).
    Case(
        "placebo_draws",
        tuple(f"results/placebo/{kind}/draws.parquet" for kind in PLACEBO_KINDS),
        {"placebo": {"draws": 24, "shards": PLACEBO_SHARDS, "kinds": PLACEBO_KINDS}},
        {"placebo": len(PLACEBO_KINDS) * PLACEBO_SHARDS},
    ),
]


def load_profile(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def job_resources(snakemake_output: str) -> dict[str, dict[str, str]]:
    """Resources of each rule's first job as snakemake prints them (a dry run's stdout, a run's
    stderr): {rule: {resource: value}}."""
    found: dict[str, dict[str, str]] = {}
    rule = None
    for line in snakemake_output.splitlines():
        head = re.match(r"^\s*rule (\w+):", line)
        if head:
            rule = head.group(1)
        res = re.match(r"^\s*resources: (.*)$", line)
        if res and rule and rule not in found:
            pairs = (item.split("=", 1) for item in res.group(1).split(", ") if "=" in item)
            found[rule] = dict(pairs)
    return found


# ------------------------------------------------------------------------------------- profile tests
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("profiles"))


def test_profiles_comment_every_setting():
    for path in (DEFAULT_PROFILE, SLURM_PROFILE_FILE):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0].strip()
            # A setting carries its reason on its line, or a block key on the comment lines above it.
            if code and not code.endswith(":"):
                assert "#" in line, f"{path.relative_to(REPO)}:{number} has no comment: {line!r}"


def test_default_profile_is_loaded_automatically(workdir: Path):
    expected = load_profile(DEFAULT_PROFILE)["default-resources"]
    proc = run_snakemake(workdir, "-n", "results/panel/panel.parquet")
    assert "workflow specific profile profiles/default" in proc.stderr
    resources = job_resources(proc.stdout)["make_demo_extracts"]
    assert resources["mem_mb"] == str(expected["mem_mb"])
    assert resources["runtime"] == str(expected["runtime"])


def test_slurm_profile_gives_jobs_account_partition_and_resources(workdir: Path, monkeypatch):
    require_slurm_plugin()
    profile = load_profile(SLURM_PROFILE_FILE)
    monkeypatch.setenv(ACCOUNT_VAR, "acct_x")
    monkeypatch.setenv(PARTITION_VAR, "part_y")
    proc = run_snakemake(
        workdir, "-n", "--workflow-profile", SLURM_PROFILE, "results/panel/panel.parquet"
    )
    assert f"workflow specific profile {SLURM_PROFILE}" in proc.stderr
    jobs = job_resources(proc.stdout)
    # Each rule's own resources (a dry run without a profile): they replace the profile's
    # default-resources, and the profile's set-resources replace them.
    own = job_resources(
        run_snakemake(
            workdir, "-n", "--workflow-profile", "none", "results/panel/panel.parquet"
        ).stdout
    )
    for rule in ("make_demo_extracts", "build_panel"):
        assert jobs[rule]["slurm_account"] == "acct_x"
        assert jobs[rule]["slurm_partition"] == "part_y"
        wanted = {
            **profile["default-resources"],
            **own[rule],
            **profile["set-resources"].get(rule, {}),
        }
        assert jobs[rule]["mem_mb"] == str(wanted["mem_mb"]), rule
        assert jobs[rule]["runtime"] == str(wanted["runtime"]), rule

    # The pitfall: as --profile, profiles/default is still the workflow profile and its
    # default-resources block replaces this profile's, so account and partition are lost.
    proc = run_snakemake(workdir, "-n", "--profile", SLURM_PROFILE, "results/panel/panel.parquet")
    assert "slurm_account" not in job_resources(proc.stdout)["make_demo_extracts"]


def require_slurm_plugin() -> None:
    """Fail (not skip: it is a pinned dependency) when the slurm executor plugins are missing."""
    for module in ("snakemake_executor_plugin_slurm", "snakemake_executor_plugin_slurm_jobstep"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(
                f"{module} is not installed: pip install snakemake-executor-plugin-slurm==2.8.0 "
                "snakemake-executor-plugin-slurm-jobstep==0.6.1 (requirements-dev.txt)"
            )


# -------------------------------------------------------------------------------------- the cluster
@dataclass(frozen=True)
class Cluster:
    """The local cluster the fixture brought up."""

    base: Path
    account: str
    partition: str
    accounting: str  # "dbd" (sacct works) or "none"


def _stop(base: Path, daemons: list[str]) -> str:
    """Stop the named daemons (never all by default: an empty list stops nothing)."""
    if not daemons:
        return ""
    env = dict(os.environ, SLURM_CI_BASE=str(base))
    proc = subprocess.run(
        ["bash", str(STOP), *daemons], env=env, capture_output=True, text=True, timeout=180
    )
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """A single-node SLURM cluster for the session; stops exactly the daemons it started."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root (daemons, apt-get, /etc/slurm)")
    base = Path(os.environ.get("SLURM_CI_BASE", REPO / ".slurm-ci"))
    cluster = Cluster(
        base=base,
        account=os.environ.get("SLURM_CI_ACCOUNT", "ci"),
        partition=os.environ.get("SLURM_CI_PARTITION", "main"),
        accounting=os.environ.get("SLURM_CI_ACCOUNTING", "dbd"),
    )
    env = dict(
        os.environ,
        SLURM_CI_BASE=str(base),
        SLURM_CI_ACCOUNT=cluster.account,
        SLURM_CI_PARTITION=cluster.partition,
        SLURM_CI_ACCOUNTING=cluster.accounting,
    )
    proc = subprocess.run(
        ["bash", str(START)], env=env, capture_output=True, text=True, timeout=1800
    )
    started_file = base / "run" / "started"
    started = started_file.read_text().split() if started_file.exists() else []
    if proc.returncode != 0:
        stopped = _stop(base, started)
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{stopped}"
        if proc.returncode == UNSTARTED_STATUS:
            pytest.skip(f"SLURM cannot be installed on this machine:\n{output}")
        pytest.fail(f"start-slurm.sh failed ({proc.returncode}):\n{output}")
    try:
        yield cluster
    finally:
        _stop(base, started)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_on_cluster(workdir: Path, cluster: Cluster, *args: str, timeout: int = 600):
    """Run snakemake with profiles/slurm in `workdir`; stop it with SIGINT on timeout.

    SIGINT, not SIGTERM or SIGKILL: while it waits on cluster jobs snakemake ignores SIGTERM, and a killed
    snakemake leaves its jobs queued; on SIGINT it cancels them (scancel) and exits.
    """
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        **{ACCOUNT_VAR: cluster.account, PARTITION_VAR: cluster.partition},
    )
    extra = []
    if cluster.accounting == "none":  # no sacct, no account database
        extra = ["--slurm-status-command", "squeue", "--slurm-no-account"]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--workflow-profile",
        SLURM_PROFILE,
        # The test's jobs take seconds: check their status soon (the plugin waits 40 s by default).
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        *extra,
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A process started in the background by a non-interactive shell inherits SIGINT ignored, and
        # Python keeps it so: give snakemake the default disposition so that SIGINT reaches it.
        preexec_fn=_default_sigint,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(
            f"snakemake on SLURM timed out after {timeout} s:\n{err[-6000:]}"
        ) from None
    if proc.returncode != 0:
        raise AssertionError(
            f"snakemake on SLURM failed ({proc.returncode}):\n{out[-3000:]}\n{err[-6000:]}"
        )
    return out, err


@dataclass(frozen=True)
class SubmittedJob:
    jobid: str
    kind: str  # "rule" or "group"
    name: str  # the rule, or for a group "<group>_<rules>"
    log: Path


def submitted_jobs(snakemake_stderr: str) -> list[SubmittedJob]:
    """The SLURM jobs that snakemake reports having submitted, from its log lines."""
    pattern = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)")
    jobs = []
    for jobid, log in pattern.findall(snakemake_stderr):
        log_path = Path(log)
        folder = next(p for p in log_path.parents if p.parent.name == "slurm_logs").name
        kind, _, name = folder.partition("_")  # rule_<rule> or group_<group>_<rules...>
        jobs.append(SubmittedJob(jobid, kind, name, log_path))
    return jobs


def accounting_records(jobids: list[str]) -> dict[str, dict[str, str]]:
    """sacct's record of each job: state, account, partition, requested memory and time limit."""
    fields = ["JobIDRaw", "State", "Account", "Partition", "ReqMem", "Timelimit", "AllocCPUS"]
    proc = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(jobids), "-o", ",".join(fields)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in proc.stdout.splitlines()]
    return {row["JobIDRaw"]: row for row in rows}


def parquet_outputs(workdir: Path) -> dict[str, pd.DataFrame]:
    return {
        str(p.relative_to(workdir)): pd.read_parquet(p)
        for p in sorted((workdir / "results").rglob("*.parquet"))
    }


@pytest.mark.slurm
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cluster_run_equals_local_run(case: Case, slurm_cluster: Cluster, tmp_path: Path):
    require_slurm_plugin()
    profile = load_profile(SLURM_PROFILE_FILE)
    runs = {}
    for where in ("slurm", "local"):
        work = copy_workflow(tmp_path / where)
        args = list(case.targets)
        if case.overlay:
            (work / "overlay.yaml").write_text(yaml.safe_dump(case.overlay))
            args += ["--configfile", "overlay.yaml"]
        if where == "slurm":
            _, err = run_on_cluster(work, slurm_cluster, *args)
        else:
            run_snakemake(work, *args, "--cores", "2")
        runs[where] = work

    jobs = submitted_jobs(err)
    assert jobs, f"no job reached SLURM:\n{err[-4000:]}"

    # Every job ran snakemake from this installation: first as the batch script (which hands the work to
    # the slurm-jobstep executor), then once per member job in an srun step.
    commands = {}
    for job in jobs:
        log = job.log.read_text(encoding="utf-8", errors="replace")
        lines = [ln for ln in log.splitlines() if ln.strip().startswith("Command: ")]
        assert lines and all(f"Command: {SNAKEMAKE_MAIN} " in ln for ln in lines), (
            job,
            log[-3000:],
        )
        assert "--executor slurm-jobstep" in lines[0], (job, lines[0])
        commands[job.jobid] = len(lines)
    for job in jobs:
        if job.kind == "rule":
            assert commands[job.jobid] == 2, job

    # Grouped rules reach the scheduler as ceil(members / group-components) jobs, which together ran
    # every member.
    for group, members in case.grouped.items():
        per_job = profile["group-components"][group]
        group_jobs = [j for j in jobs if j.kind == "group" and j.name.startswith(f"{group}_")]
        assert len(group_jobs) == math.ceil(members / per_job), (group, [j.log for j in jobs])
        assert sum(commands[j.jobid] - 1 for j in group_jobs) == members, group

    if slurm_cluster.accounting == "dbd":
        records = accounting_records([j.jobid for j in jobs])
        # The resources snakemake gave each rule (printed with its jobs); the profile's own values for
        # the rules it sets (the dry-run test above covers the rest of the profile -> job mapping).
        resources = job_resources(err)
        for rule, values in profile["set-resources"].items():
            if rule in resources:
                for key, value in values.items():
                    assert resources[rule][key] == str(value), (rule, key)
        for job in jobs:
            record = records[job.jobid]
            assert record["State"] == "COMPLETED", record
            assert record["Account"] == slurm_cluster.account, record
            assert record["Partition"] == slurm_cluster.partition, record
            assert int(record["AllocCPUS"]) <= profile["cores"], record
            if job.kind == "rule":
                assert record["ReqMem"] == f"{resources[job.name]['mem_mb']}M", record
                hours, minutes = divmod(int(resources[job.name]["runtime"]), 60)
                assert record["Timelimit"] == f"{hours:02d}:{minutes:02d}:00", record

    cluster_outputs, local_outputs = parquet_outputs(runs["slurm"]), parquet_outputs(runs["local"])
    assert sorted(cluster_outputs) == sorted(local_outputs)
    for target in case.targets:
        if target.endswith(".parquet"):
            assert target in cluster_outputs, target
    for path, frame in local_outputs.items():
        pd.testing.assert_frame_equal(cluster_outputs[path], frame, check_exact=True, obj=path)
