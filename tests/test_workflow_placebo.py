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


def test_interrupted_run_resumes_with_missing_shards_only(work: Path, reference):
    shards = 8
    (work / "resume.yaml").write_text(yaml.safe_dump(overlay(shards)))
    for kind in KINDS:  # start from nothing
        for f in (work / f"results/placebo/{kind}").glob("*.parquet"):
            f.unlink()
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *draws_files(),
        "--cores",
        "1",
        "--configfile",
        "resume.yaml",
    ]
    proc = subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    shard_dir = work / f"results/placebo/{KINDS[0]}"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(shard_dir.glob("shard_*.parquet"))) < 2:
        assert proc.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends; Snakemake stops its jobs and exits
    proc.communicate(timeout=120)
    done = sorted(
        p.name for k in KINDS for p in (work / f"results/placebo/{k}").glob("shard_*.parquet")
    )
    assert 2 <= len(done) < shards * len(KINDS)

    dry = snakemake(work, *draws_files(), "-n", "--cores", "1", "--configfile", "resume.yaml")
    pending = dry.stdout.count("rule placebo_shard:")
    missing = shards * len(KINDS) - len(done)
    # Only the missing shards are computed again, plus at most the one job that was running (-j1) when
    # the run was stopped, if its output was left incomplete.
    assert missing <= pending <= missing + 1, dry.stdout[-3000:]

    snakemake(work, *draws_files(), "--cores", "2", "--configfile", "resume.yaml")
    for kind, path in zip(KINDS, draws_files(), strict=True):
        pd.testing.assert_frame_equal(
            pd.read_parquet(work / path), reference[kind], check_exact=True
        )
    assert os.path.exists(work / "results/placebo" / KINDS[1] / "draws.parquet")
