"""The package's modules as syntax trees, for the tests of its structure (tests/test_architecture.py,
tests/test_conventions.py)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "dualpilot"


def module_name(path: Path) -> str:
    """dualpilot/engines/fwl.py -> 'dualpilot.engines.fwl'; a package's __init__ -> the package."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def package_modules() -> dict[str, ast.Module]:
    """Every module of dualpilot (by dotted name) parsed once."""
    return {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }
