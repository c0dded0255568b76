"""The package's structure (docs/architecture.md): every module in a sub-package named for its role, the
sub-packages layered, no module reaching into another's private names, `did/` free-standing, and random
numbers of the analyses drawn only through `dualpilot.engines.resampling`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from package_helpers import PACKAGE_DIR, package_modules

ROLES = ("core", "workflow", "data", "demo", "engines", "did", "analyses", "render")
"""The sub-packages, as docs/architecture.md lists them."""

MAY_IMPORT: dict[str, set[str]] = {
    "core": {"core"},
    "did": {"did"},
    "workflow": {"core", "workflow"},
    "data": {"core", "data"},
    "engines": {"core", "did", "engines"},
    "analyses": {"core", "data", "did", "engines", "analyses"},
    "demo": {"core", "data", "engines", "analyses", "demo"},
    "render": {"core", "data", "did", "engines", "analyses", "render"},
}
"""Which sub-packages the modules of each sub-package may import: a layered graph (no cycles), with did/
depending on nothing else of the project so it could be published on its own."""


def _imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(module imported from, names imported, line) for every project import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dualpilot"):
            out.append((node.module or "", [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dualpilot"):
                    out.append((alias.name, [], node.lineno))
    return out


def _role(module: str) -> str:
    return module.split(".")[1]


def test_every_module_sits_in_a_role_sub_package() -> None:
    top = sorted(p.name for p in PACKAGE_DIR.iterdir() if not p.name.startswith((".", "__pycache")))
    assert top == sorted([*ROLES, "__init__.py"])
    for role in ROLES:
        init = package_modules()[f"dualpilot.{role}"]
        assert ast.get_docstring(init), f"dualpilot/{role}/__init__.py says what the sub-package holds"
    for module, tree in package_modules().items():
        assert ast.get_docstring(tree), f"{module} has no docstring"


def test_sub_packages_import_only_the_layers_below() -> None:
    bad = []
    for module, tree in package_modules().items():
        if module == "dualpilot":
            continue
        for source, _, line in _imports(tree):
            target = source.split(".")
            if len(target) < 2:
                bad.append(f"{module}:{line} imports the package root")
            elif target[1] not in MAY_IMPORT[_role(module)]:
                bad.append(f"{module}:{line} imports {source}")
    assert not bad, "\n".join(bad)


def test_no_module_uses_a_private_name_of_another() -> None:
    bad = []
    for module, tree in package_modules().items():
        aliases: dict[str, str] = {}
        for source, names, line in _imports(tree):
            for name in names:
                if name.startswith("_"):
                    bad.append(f"{module}:{line} imports {source}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dualpilot"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in package_modules():
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def _random_calls(tree: ast.Module) -> list[int]:
    """Lines calling numpy.random (np.random.X(...)) directly."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            inner = node.func.value
            if (
                isinstance(inner, ast.Attribute)
                and inner.attr == "random"
                and isinstance(inner.value, ast.Name)
                and inner.value.id in {"np", "numpy"}
            ):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("role", ["analyses", "render", "data", "engines", "workflow", "core"])
def test_random_numbers_come_from_the_resampling_engine(role: str) -> None:
    """Every random number of an analysis comes from `engines.resampling` (seeded per draw or per run);
    did/ (free-standing) and demo/ (the data-generating process) make their own from the seeds given."""
    bad = [
        f"{module}:{line}"
        for module, tree in package_modules().items()
        if module.startswith(f"dualpilot.{role}.") and module != "dualpilot.engines.resampling"
        for line in _random_calls(tree)
    ]
    assert not bad, f"numpy.random called outside engines.resampling: {bad}"


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The AST checks above flag what they should (so a pass means something)."""
    tree = ast.parse(
        "import numpy as np\nfrom dualpilot.render import tables\nfrom dualpilot.did.staggered import _x\n"
        "def f():\n    return np.random.default_rng(1), tables._hidden\n"
    )
    assert _random_calls(tree) == [5]
    assert [names for _, names, _ in _imports(tree)] == [["tables"], ["_x"]]


def test_docs_architecture_lists_every_module_and_the_layers() -> None:
    """docs/architecture.md's package table names every module of each sub-package (and no other), and
    its "May import" column is `MAY_IMPORT`."""
    import re

    doc = (PACKAGE_DIR.parents[2] / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2).split(" | ")
        for m in re.finditer(r"^\| `(\w+)` \| (.+) \|$", doc, re.M)
        if m.group(1) in ROLES
    }
    assert sorted(rows) == sorted(ROLES)
    for role, (modules, _, may) in rows.items():
        listed = set(re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", modules)))
        actual = {
            name.rsplit(".", 1)[1]
            for name in package_modules()
            if name.startswith(f"dualpilot.{role}.")
        }
        assert listed == actual, (role, listed ^ actual)
        allowed = {r.strip() for r in may.split(",")} - {"—"}
        assert allowed == MAY_IMPORT[role] - {role}, role
