"""Run the workflow in a temporary copy of the repository (tests of layers b and c)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What a run needs; results/, logs/ and .snakemake/ are left behind so each test starts clean.
COPIED = ["Snakefile", "config", "workflow", "resources", "envs", "profiles"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow's sources into `dest` (created if needed) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None
):
    """Run `python -m snakemake` in `workdir`; return the CompletedProcess (stdout and stderr as text).

    `env`: variables to set on top of the test's environment."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc
