"""bench/full_rebuild.py --compare: the argument checks and the materialisation of both trees, by its
--dry-run (each tree copied and instrumented, then `snakemake -n`). Nothing is timed here: benchmarks are
never tests (docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import REPO

pytestmark = pytest.mark.workflow

SCRIPT = REPO / "bench" / "full_rebuild.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout


def test_compare_dry_run_materialises_both_trees(tmp_path: Path) -> None:
    """Before = HEAD from `git archive`, after = this checkout's working tree: both copied,
    instrumented and dry-run by Snakemake."""
    keep = tmp_path / "runs"
    proc = _bench("--compare", "HEAD", "--dry-run", "--keep", str(keep))
    assert proc.returncode == 0, proc.stderr
    commit = _git("rev-parse", "--short", "HEAD").strip()
    lines = proc.stdout.splitlines()
    assert any(line.startswith(f"before (HEAD = {commit} (git archive))") for line in lines)
    assert any(line.startswith("after (this checkout") for line in lines)
    assert sum(line.endswith("jobs to run") for line in lines) == 2, proc.stdout
    # the before tree is HEAD's, byte for byte; the after copy is the working tree's
    snakefile = _git("show", "HEAD:Snakefile")
    assert (keep / "tree_before" / "Snakefile").read_text(encoding="utf-8") == snakefile
    for name in ("before", "after"):
        copy = keep / name
        assert (copy / "bench_overlay.yaml").exists()  # instrumented as for a timed run
        assert "_bench_run = run" in (copy / "workflow/scripts/dualpilot/runner.py").read_text()
        assert "rule bench_env_probe:" in (copy / "Snakefile").read_text(encoding="utf-8")
    after_config = (keep / "after" / "config" / "config.yaml").read_bytes()
    assert after_config == (REPO / "config" / "config.yaml").read_bytes()


def test_compare_arguments_are_checked() -> None:
    bad_ref = _bench("--compare", "no-such-ref-anywhere", "--dry-run")
    assert bad_ref.returncode != 0 and "git rev-parse" in bad_ref.stderr
    repeat = _bench("--repeat", "2", "--dry-run")
    assert repeat.returncode != 0 and "--repeat needs --compare" in repeat.stderr
    both = _bench("--compare", "HEAD", "--package", "/tmp", "--dry-run")
    assert both.returncode != 0 and "exclude each other" in both.stderr
    helped = _bench("--help")
    assert helped.returncode == 0
    assert all(opt in helped.stdout for opt in ("--compare", "--repeat", "--dry-run"))
