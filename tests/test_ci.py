"""The test suite changes nothing on the system (issue 11, item 8): the SLURM cluster test is opt-in, and
.ci/run runs the README's test command, then the SLURM test in its own step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_plain_pytest_collects_no_slurm_test() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_slurm.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_cluster_run_equals_local_run" not in proc.stdout
    assert re.search(r"\d+/\d+ tests collected \(\d+ deselected\)", proc.stdout), proc.stdout[-2000:]
    opt_in = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "slurm", "tests/test_slurm.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "test_cluster_run_equals_local_run" in opt_in.stdout, opt_in.stdout[-2000:]


def test_ci_runs_the_readme_test_command_then_the_slurm_test() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = ".venv/bin/python -m pytest"
    assert f"-r requirements-dev.txt && {command}\n" in readme
    steps = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert command in steps and f"{command} -m slurm" in steps
    assert steps.index(command) < steps.index(f"{command} -m slurm")
