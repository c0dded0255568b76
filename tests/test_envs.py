"""Pinned per-rule software environments (issue 7; docs/cluster.md).

Every rule runs in one of the conda environments of `envs/` (`snakemake --sdm conda`); without conda, the
same versions come from pip's `requirements.txt`. These tests keep the two in agreement:

- each `envs/*.yaml` lists the channels `conda-forge` and `nodefaults` and pins every package exactly
  (`name=version`, `python=3.11`);
- each package pinned in an env file has the same version in `requirements.txt` (conda-forge names mapped
  to PyPI names where they differ), and every runtime pin of `requirements.txt` is in some env file except
  those of the driving Snakemake process;
- each rule that runs something (a script) names an existing env file with `conda:`, and no env file is
  left unused (rules are read with Snakemake's own API, in a subprocess);
- each rule's env provides every third-party module its script imports, directly or through `dualpilot`
  (modules mapped to distributions with importlib.metadata), plus pyarrow wherever pandas is (Parquet).

The checkers are pure functions returning a list of problems; they are tested on broken inputs too, so a
disagreement fails a test with the file and package named.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "envs"
ENV_FILES = sorted(ENV_DIR.glob("*.yaml"))
REQUIREMENTS = REPO / "requirements.txt"
SCRIPTS = REPO / "workflow" / "scripts"
PACKAGE = "dualpilot"

CHANNELS = ["conda-forge", "nodefaults"]
PYTHON = "3.11"  # the interpreter series of every env (pyproject's target-version py311)
# conda-forge package name -> PyPI distribution name, where they differ (canonical forms).
CONDA_TO_PIP = {"matplotlib-base": "matplotlib"}
# Non-Python conda packages that have no PyPI counterpart and so no pin in requirements.txt (none yet).
CONDA_ONLY: frozenset[str] = frozenset()
# Runtime pins used by the driving `snakemake` process only (workflow validation), never inside a rule.
DRIVER_ONLY = frozenset({"snakemake", "jsonschema"})
# Distributions needed without being imported: pandas reads and writes Parquet through pyarrow.
IMPLIED = {"pandas": ("pyarrow",)}

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)=(?P<version>[0-9][A-Za-z0-9.+_-]*)$")
_REQ = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][A-Za-z0-9.+_-]*)$")


def canonical(name: str) -> str:
    """PEP 503 normal form of a package name (case and -_. runs folded), e.g. PyYAML -> pyyaml."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_name(conda_name: str) -> str:
    """The canonical PyPI name of a conda-forge package."""
    name = canonical(conda_name)
    return CONDA_TO_PIP.get(name, name)


@dataclass(frozen=True)
class EnvFile:
    """A parsed conda env file: its channels, its pinned python, its other pins by PyPI name."""

    name: str
    channels: list[str]
    python: str | None
    pins: dict[str, str]  # canonical PyPI name -> version
    problems: list[str]  # what is wrong with the file's form


def parse_env(name: str, text: str) -> EnvFile:
    """Parse a conda env file's YAML text; malformed entries are reported in `problems`, not raised."""
    problems: list[str] = []
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return EnvFile(name, [], None, {}, [f"{name}: not a YAML mapping"])
    channels = data.get("channels") or []
    if channels != CHANNELS:
        problems.append(f"{name}: channels are {channels}, expected exactly {CHANNELS}")
    python = None
    pins: dict[str, str] = {}
    for dep in data.get("dependencies") or []:
        if not isinstance(dep, str):
            problems.append(f"{name}: entry {dep!r} is not a conda pin (no pip: sections)")
            continue
        match = _PIN.match(dep.strip())
        if match is None:
            problems.append(f"{name}: {dep!r} is not an exact pin name=version")
            continue
        dep_name, version = match["name"], match["version"]
        if canonical(dep_name) == "python":
            python = version
            continue
        key = pip_name(dep_name)
        if key in pins:
            problems.append(f"{name}: {dep_name} is pinned twice")
        pins[key] = version
    if python != PYTHON:
        problems.append(f"{name}: python is pinned to {python!r}, expected python={PYTHON}")
    return EnvFile(name, channels, python, pins, problems)


def parse_requirements(text: str) -> dict[str, str]:
    """Exact pins `name==version` of a requirements file by canonical name; any other line raises."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQ.match(line)
        if match is None:
            raise ValueError(
                f"requirements line {number}: {raw!r} is not an exact pin name==version"
            )
        pins[canonical(match["name"])] = match["version"]
    return pins


def pin_problems(env: EnvFile, requirements: dict[str, str]) -> list[str]:
    """Packages of `env` whose version differs from requirements.txt, or that it lacks."""
    problems = []
    for name, version in sorted(env.pins.items()):
        if name in CONDA_ONLY:
            continue
        if name not in requirements:
            problems.append(f"{env.name}: {name}={version} has no pin in requirements.txt")
        elif requirements[name] != version:
            problems.append(
                f"{env.name}: {name}={version} but requirements.txt pins {name}=={requirements[name]}"
            )
    return problems


def coverage_problems(envs: list[EnvFile], requirements: dict[str, str]) -> list[str]:
    """Runtime pins of requirements.txt that no env file carries (conda users would lack them)."""
    in_envs = {name for env in envs for name in env.pins}
    return [
        f"requirements.txt pins {name}=={version} but no envs/*.yaml has {name}"
        for name, version in sorted(requirements.items())
        if name not in DRIVER_ONLY and name not in in_envs
    ]


# ------------------------------------------------------------------------------------- rules and imports
_LIST_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings

rules = {}
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        snakefile=Path(sys.argv[1]) / "Snakefile",
        workdir=Path(sys.argv[1]),
    )._workflow
    for rule in workflow.rules:
        base = Path(rule.basedir)
        rules[rule.name] = {
            "norun": bool(rule.norun),
            "conda": str((base / str(rule.conda_env)).resolve()) if rule.conda_env else None,
            "script": str((base / str(rule.script)).resolve()) if rule.script else None,
        }
print("RULES-JSON " + json.dumps(rules))
"""


def list_rules(repo: Path) -> dict[str, dict]:
    """Every rule of the workflow in `repo`: whether it runs nothing, its env file and its script."""
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_RULES, str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RULES-JSON ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"could not load the workflow's rules:\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RULES-JSON "))


def rule_env_problems(rules: dict[str, dict], env_dir: Path) -> list[str]:
    """Rules that run something without a `conda:` env file in env_dir, and env files no rule uses."""
    problems = []
    used = set()
    for name, rule in sorted(rules.items()):
        if rule["norun"]:
            continue
        env = rule["conda"]
        if env is None:
            problems.append(f"rule {name} has no conda: directive")
            continue
        path = Path(env)
        if path.parent != env_dir.resolve() or not path.is_file():
            problems.append(f"rule {name}: conda env {env} is not an existing file of {env_dir}")
            continue
        used.add(path.name)
    for path in sorted(env_dir.glob("*.yaml")):
        if path.name not in used:
            problems.append(f"{path.name} is used by no rule")
    return problems


def _module_file(module: str, scripts: Path) -> Path | None:
    """The file of a module of the project's package (`dualpilot` or `dualpilot.x`), if it is one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = scripts.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST, *, lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements of a module: every one if `lazy`, else only those run when it is imported
    (not inside a function body)."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            if lazy or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                todo.append(child)
    return found


def third_party_imports(script: Path, scripts: Path) -> set[str]:
    """Top-level names of the non-stdlib modules that `script` needs, following the project's package.

    Every import of the script counts (a thin script calls what it imports). In the `dualpilot` modules it
    reaches, the imports run on import count (module level, class bodies, try/if blocks); an import inside
    one of their functions is taken to serve that function only (e.g. openpyxl for reading workbooks) and
    is not followed: a rule that calls such a function needs its env checked by hand.
    """
    found: set[str] = set()
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = ".".join(path.relative_to(scripts).with_suffix("").parts)
        if path.name == "__init__.py":
            package = package.removesuffix(".__init__")
        else:
            package = package.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree, lazy=path == script):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif node.level:  # relative import inside the package
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
                modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                base = node.module or ""
                modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for module in modules:
                local = _module_file(module, scripts)
                if local is not None:
                    todo.append(local)
                    continue
                top = module.split(".")[0]
                if (
                    top
                    and top != PACKAGE
                    and top != "__future__"
                    and top not in sys.stdlib_module_names
                ):
                    found.add(top)
    return found


def import_problems(
    rules: dict[str, dict],
    envs: dict[str, EnvFile],
    scripts: Path,
    distributions: dict[str, list[str]],
) -> list[str]:
    """Modules imported by a rule's script that its env does not provide (by distribution)."""
    problems = []
    for name, rule in sorted(rules.items()):
        if rule["norun"] or not rule["script"] or not rule["conda"]:
            continue
        env = envs.get(Path(rule["conda"]).name)
        if env is None:
            continue  # reported by rule_env_problems
        provided = set(env.pins)
        for dist, implied in IMPLIED.items():
            if dist in provided:
                missing = [d for d in implied if d not in provided]
                problems += [f"{env.name}: has {dist} but lacks {d}" for d in missing]
        for module in sorted(third_party_imports(Path(rule["script"]), scripts)):
            dists = {canonical(d) for d in distributions.get(module, [])}
            if not dists:
                problems.append(
                    f"rule {name} imports {module}, which no installed distribution provides"
                )
            elif not dists & provided:
                problems.append(
                    f"rule {name} imports {module} ({', '.join(sorted(dists))}) "
                    f"but {env.name} does not pin it"
                )
    return sorted(set(problems))


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def requirements() -> dict[str, str]:
    if not REQUIREMENTS.is_file():
        pytest.fail(
            "requirements.txt is missing: it holds the runtime pins the env files must match"
        )
    return parse_requirements(REQUIREMENTS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def envs() -> dict[str, EnvFile]:
    assert ENV_FILES, "no envs/*.yaml"
    return {p.name: parse_env(p.name, p.read_text(encoding="utf-8")) for p in ENV_FILES}


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    return list_rules(REPO)


# ------------------------------------------------------------------------------------- tests: the repo
@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_file_has_channels_and_exact_pins(path: Path, envs):
    env = envs[path.name]
    assert env.problems == []
    assert env.pins, f"{path.name} pins no package"


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_pins_equal_requirements(path: Path, envs, requirements):
    assert pin_problems(envs[path.name], requirements) == []


def test_every_runtime_pin_is_in_some_env(envs, requirements):
    assert coverage_problems(list(envs.values()), requirements) == []


def test_every_rule_runs_in_an_existing_env(rules):
    assert any(not r["norun"] for r in rules.values())
    assert rule_env_problems(rules, ENV_DIR) == []


def test_every_rule_env_provides_what_its_script_imports(rules, envs):
    distributions = importlib.metadata.packages_distributions()
    assert import_problems(rules, envs, SCRIPTS, distributions) == []


# --------------------------------------------------------------------------- tests: the checkers fail
GOOD_ENV = """
channels: [conda-forge, nodefaults]
dependencies:
  - python=3.11
  - pandas=3.1.1
  - pyyaml=6.0.4
  - matplotlib-base=3.11.2
"""


def test_parse_env_maps_conda_names_to_pypi_names():
    env = parse_env("good.yaml", GOOD_ENV)
    assert env.problems == []
    assert env.python == "3.11"
    assert env.pins == {"pandas": "3.1.1", "pyyaml": "6.0.4", "matplotlib": "3.11.2"}
    reqs = parse_requirements("pandas==3.1.1\nPyYAML==6.0.4  # comment\nmatplotlib==3.11.2\n")
    assert pin_problems(env, reqs) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("channels: [conda-forge]\ndependencies: [python=3.11, pandas=3.1.1]", "channels"),
        ("channels: [defaults, conda-forge, nodefaults]\ndependencies: [python=3.11]", "channels"),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, pandas>=3.1]",
            "exact pin",
        ),
        ("channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, pandas]", "exact pin"),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, pandas=3.1.*]",
            "exact pin",
        ),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, pandas==3.1.1]",
            "exact pin",
        ),
        ("channels: [conda-forge, nodefaults]\ndependencies: [pandas=3.1.1]", "python"),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.12, pandas=3.1.1]",
            "python",
        ),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, {pip: [x==1]}]",
            "no pip",
        ),
        (
            "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, numpy=2.4.6, numpy=2.4.6]",
            "twice",
        ),
    ],
)
def test_parse_env_reports_malformed_files(text: str, fragment: str):
    problems = parse_env("bad.yaml", text).problems
    assert any(fragment in p for p in problems), problems


def test_pin_and_coverage_checks_report_disagreements():
    env = parse_env("x.yaml", GOOD_ENV)
    reqs = {"pandas": "3.1.0", "pyyaml": "6.0.4", "scipy": "1.17.1", "snakemake": "9.27.1"}
    problems = pin_problems(env, reqs)
    assert any("pandas=3.1.1 but requirements.txt pins pandas==3.1.0" in p for p in problems)
    assert any("matplotlib=3.11.2 has no pin" in p for p in problems)
    # scipy is a runtime pin no env carries; snakemake belongs to the driving process only.
    assert coverage_problems([env], reqs) == [
        "requirements.txt pins scipy==1.17.1 but no envs/*.yaml has scipy"
    ]
    with pytest.raises(ValueError, match="exact pin"):
        parse_requirements("pandas>=3\n")


def test_rule_env_check_reports_missing_and_unused_envs(tmp_path: Path):
    (tmp_path / "used.yaml").write_text(GOOD_ENV)
    (tmp_path / "orphan.yaml").write_text(GOOD_ENV)
    rules = {
        "aggregate": {"norun": True, "conda": None, "script": None},
        "ok": {"norun": False, "conda": str(tmp_path / "used.yaml"), "script": None},
        "bare": {"norun": False, "conda": None, "script": None},
        "gone": {"norun": False, "conda": str(tmp_path / "missing.yaml"), "script": None},
    }
    assert rule_env_problems(rules, tmp_path) == [
        "rule bare has no conda: directive",
        f"rule gone: conda env {tmp_path / 'missing.yaml'} is not an existing file of {tmp_path}",
        "orphan.yaml is used by no rule",
    ]


def test_import_check_follows_the_package_and_reports_missing_modules(tmp_path: Path):
    scripts = tmp_path / "scripts"
    (scripts / PACKAGE).mkdir(parents=True)
    (scripts / PACKAGE / "__init__.py").write_text("")
    (scripts / PACKAGE / "maps.py").write_text("import json\nfrom .shapes import area\n")
    (scripts / PACKAGE / "shapes.py").write_text(
        "import geopandas\n\ndef area():\n    import openpyxl  # lazy: serves area() only\n"
    )
    (scripts / "plot_maps.py").write_text(
        "from dualpilot.maps import x\nimport numpy as np\n\ndef main():\n    from matplotlib import pyplot\n"
    )
    assert third_party_imports(scripts / "plot_maps.py", scripts) == {
        "numpy",
        "matplotlib",
        "geopandas",
    }
    env = parse_env("analysis.yaml", GOOD_ENV)  # pandas, pyyaml, matplotlib: no numpy, no pyarrow
    rules = {
        "plot_maps": {
            "norun": False,
            "conda": "/x/analysis.yaml",
            "script": str(scripts / "plot_maps.py"),
        }
    }
    distributions = {"numpy": ["numpy"], "matplotlib": ["matplotlib"], "geopandas": ["geopandas"]}
    assert import_problems(rules, {"analysis.yaml": env}, scripts, distributions) == [
        "analysis.yaml: has pandas but lacks pyarrow",
        "rule plot_maps imports geopandas (geopandas) but analysis.yaml does not pin it",
        "rule plot_maps imports numpy (numpy) but analysis.yaml does not pin it",
    ]
    assert import_problems(rules, {"analysis.yaml": env}, scripts, {}) == [
        "analysis.yaml: has pandas but lacks pyarrow",
        "rule plot_maps imports geopandas, which no installed distribution provides",
        "rule plot_maps imports matplotlib, which no installed distribution provides",
        "rule plot_maps imports numpy, which no installed distribution provides",
    ]
