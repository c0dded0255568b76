"""Placebo draws through Snakemake: identical whatever the number of shards, and an interrupted run
resumes with only the missing shards (issue: placebo tests at cluster scale)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

KINDS = ["space", "mixed_restricted"]


def overlay(shards: int, draws: int = 24) -> dict:
    return {"placebo": {"draws": draws, "shards": shards, "kinds": KINDS}}


def draws_files(kinds=KINDS) -> list[str]:
    return [f"results/placebo/{kind}/draws.parquet" for kind in kinds]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A workflow copy with the demo panel built once; each test writes its own overlay."""
    work = copy_workflow(tmp_path_factory.mktemp("placebo"))
    snakemake(work, "results/panel/panel.parquet", "--cores", "2")
    return work


def run_with(work: Path, shards: int, *args: str, check: bool = True):
    (work / f"shards{shards}.yaml").write_text(yaml.safe_dump(overlay(shards)))
    return snakemake(work, *args, "--configfile", f"shards{shards}.yaml", check=check)


@pytest.fixture(scope="module")
def reference(work: Path) -> dict[str, pd.DataFrame]:
    run_with(work, 1, *draws_files(), "--cores", "2", "--forcerun", "placebo_shard")
    return {k: pd.read_parquet(work / f) for k, f in zip(KINDS, draws_files(), strict=True)}


@pytest.mark.parametrize("shards", [4, 16])
def test_draws_identical_for_any_number_of_shards(work: Path, reference, shards: int):
    run_with(work, shards, *draws_files(), "--cores", "2", "--forcerun", "placebo_shard")
    for kind, path in zip(KINDS, draws_files(), strict=True):
        assert len(list((work / f"results/placebo/{kind}").glob("shard_*.parquet"))) >= shards
        pd.testing.assert_frame_equal(
            pd.read_parquet(work / path), reference[kind], check_exact=True
        )


# A test-only Snakefile in the temporary copy: the workflow itself plus one rule that needs the first two
# shards of the first kind, has top priority and then blocks until released. Run with one core and
# `--prioritize`, the interruption always comes while exactly those two shards are done and no shard is
# running, whatever the speed of the machine (the workflow's own rules are untouched).
HOLD_SNAKEFILE = """
include: "Snakefile"


rule hold_after_two_shards:
    input:
        "results/placebo/{kind}/shard_0.parquet",
        "results/placebo/{kind}/shard_1.parquet",
    output:
        "hold.done",
    priority: 100
    shell:
        "touch hold.started; for i in $(seq 3000); do [ -e hold.release ] && break; sleep 0.1; done; "
        "touch {{output}}"
"""


def test_interrupted_run_resumes_with_missing_shards_only(work: Path, reference):
    shards = 8
    (work / "resume.yaml").write_text(yaml.safe_dump(overlay(shards)))
    (work / "hold.smk").write_text(HOLD_SNAKEFILE.format(kind=KINDS[0]))
    for kind in KINDS:  # start from nothing
        for f in (work / f"results/placebo/{kind}").glob("*.parquet"):
            f.unlink()
    for name in ("hold.started", "hold.release", "hold.done"):
        (work / name).unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        "hold.smk",
        *draws_files(),
        "hold.done",
        "--prioritize",
        "hold.done",
        "--cores",
        "1",
        "--configfile",
        "resume.yaml",
    ]
    log = work / "interrupted.log"

    def wait_for(condition, what: str) -> None:
        deadline = time.time() + 300
        while not condition():
            assert proc.poll() is None and time.time() < deadline, (what, log.read_text()[-3000:])
            time.sleep(0.05)

    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, text=True)
        wait_for((work / "hold.started").exists, "the holding job never started")
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends: Snakemake starts no further job
        # Snakemake waits for the running job before it exits; release it once the stop is under way.
        wait_for(lambda: "Terminating processes on user request" in log.read_text(), "no stop")
        (work / "hold.release").touch()
        proc.wait(timeout=120)
    done = sorted(
        f"{k}/{p.name}"
        for k in KINDS
        for p in (work / f"results/placebo/{k}").glob("shard_*.parquet")
    )
    assert done == [f"{KINDS[0]}/shard_0.parquet", f"{KINDS[0]}/shard_1.parquet"], log.read_text()

    dry = snakemake(work, *draws_files(), "-n", "--cores", "1", "--configfile", "resume.yaml")
    pending = dry.stdout.count("rule placebo_shard:")
    # Exactly the missing shards are computed again (no shard was running when the run was stopped).
    assert pending == shards * len(KINDS) - len(done), dry.stdout[-3000:]

    snakemake(work, *draws_files(), "--cores", "2", "--configfile", "resume.yaml")
    for kind, path in zip(KINDS, draws_files(), strict=True):
        pd.testing.assert_frame_equal(
            pd.read_parquet(work / path), reference[kind], check_exact=True
        )
    assert os.path.exists(work / "results/placebo" / KINDS[1] / "draws.parquet")
