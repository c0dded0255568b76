"""The conventions that exist once (issue 14 item 2): the seeded generator of a draw, the CRV1
small-sample factor and its K, the column check. Each is pinned to the formula the modules used before
they shared it, so the draws and standard errors of every analysis are unchanged."""

from __future__ import annotations

import ast
import zlib

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from dualpilot.analyses import heterogeneity, mechanisms
from dualpilot.core.errors import SpecificationError, require_columns
from dualpilot.did.inference import crv1_factor, crv1_vcov, fixest_df_k
from dualpilot.engines import placebo
from dualpilot.engines.resampling import draw_rng
from package_helpers import package_modules


def _first(rng: np.random.Generator) -> np.ndarray:
    return rng.random(5)


@pytest.mark.parametrize("seed, draw", [(0, 0), (20260401, 7), (3, 999)])
def test_draw_rng_streams_equal_the_former_per_module_seeds(seed: int, draw: int) -> None:
    """Placebo [seed, KIND_ID[kind], d], bootstrap [seed, 101, d], bdiff [seed, 202, crc32(dimension),
    crc32(a), crc32(b), d]: the entropy each module used before, hence the same draws."""
    for kind, kind_id in placebo.KIND_ID.items():
        old = np.random.default_rng(np.random.SeedSequence([seed, kind_id, draw]))
        assert np.array_equal(_first(draw_rng(seed, draw, placebo.KIND_ID[kind])), _first(old))
    old = np.random.default_rng(np.random.SeedSequence([seed, 101, draw]))
    assert mechanisms.BOOTSTRAP_STREAM == 101
    assert np.array_equal(_first(draw_rng(seed, draw, mechanisms.BOOTSTRAP_STREAM)), _first(old))
    keys = [zlib.crc32(s.encode("utf-8")) for s in ("region", "east", "west")]
    old = np.random.default_rng(np.random.SeedSequence([seed, 202, *keys, draw]))
    assert heterogeneity.BDIFF_STREAM == 202
    new = draw_rng(seed, draw, heterogeneity.BDIFF_STREAM, "region", "east", "west")
    assert np.array_equal(_first(new), _first(old))


def test_draw_rng_depends_on_every_part_and_refuses_negatives() -> None:
    base = _first(draw_rng(1, 2, 3, "a"))
    assert np.array_equal(base, _first(draw_rng(1, 2, 3, "a")))
    for other in (draw_rng(0, 2, 3, "a"), draw_rng(1, 1, 3, "a"), draw_rng(1, 2, 4, "a")):
        assert not np.array_equal(base, _first(other))
    assert not np.array_equal(base, _first(draw_rng(1, 2, 3, "b")))
    with pytest.raises(ValueError, match="non-negative"):
        draw_rng(-1, 0, 101)
    with pytest.raises(ValueError, match="non-negative"):
        draw_rng(0, -1, 101)


def test_fixest_df_k_counts_nested_effects_once() -> None:
    # unit FE (50 levels) nested in the clusters, time FE (10) not: K = coef + 10
    assert fixest_df_k(3, [50, 10], [True, False]) == 13
    # neither nested: every FE but the first loses one level
    assert fixest_df_k(3, [50, 10], [False, False]) == 3 + 50 + 9
    # both nested: each counts as one parameter after the intercept loss
    assert fixest_df_k(3, [50, 10], [True, True]) == 3 + 50 + 9 - 49 - 9


def test_crv1_factor_reproduces_pyfixest_on_a_twfe_model() -> None:
    rng = np.random.default_rng(5)
    n_units, n_periods = 40, 6
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_periods),
            "time": np.tile(np.arange(n_periods), n_units),
        }
    )
    df["x"] = rng.normal(size=len(df))
    df["z"] = rng.normal(size=len(df))
    df["y"] = 0.5 * df["x"] + rng.normal(size=len(df))
    model = pf.feols(
        "y ~ x + z | unit + time",
        data=df,
        vcov={"CRV1": "unit"},
        ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min"),  # as estimation.fit
    )
    k = fixest_df_k(2, [n_units, n_periods], [True, False])
    assert crv1_factor(len(df), k, n_units) == pytest.approx(
        float(np.squeeze(model._ssc)), rel=1e-12
    )
    with pytest.raises(ValueError, match="degrees of freedom"):
        crv1_factor(10, 10, 5)
    with pytest.raises(ValueError, match="2 clusters"):
        crv1_factor(100, 10, 1)


def test_crv1_vcov_equals_pyfixest_without_fixed_effects() -> None:
    """The sandwich of the own engines (mechanisms' refits, Sun-Abraham) against pyfixest's CRV1."""
    rng = np.random.default_rng(11)
    n, g = 300, 30
    df = pd.DataFrame({"cl": np.repeat(np.arange(g), n // g), "x": rng.normal(size=n)})
    df["y"] = 1.0 + 0.3 * df["x"] + rng.normal(size=n) + rng.normal(size=g)[df["cl"]]
    model = pf.feols(
        "y ~ x",
        data=df,
        vcov={"CRV1": "cl"},
        ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min"),
    )
    x = np.column_stack([np.ones(n), df["x"].to_numpy()])
    bread = np.linalg.inv(x.T @ x)
    resid = df["y"].to_numpy() - x @ (bread @ (x.T @ df["y"].to_numpy()))
    scores = np.zeros((g, 2))
    np.add.at(scores, df["cl"].to_numpy(), x * resid[:, None])
    vcov = crv1_vcov(bread, scores, n, fixest_df_k(2, [], []), g)
    np.testing.assert_allclose(vcov, np.asarray(model._vcov), rtol=1e-10)


def test_require_columns_names_every_missing_column_once() -> None:
    frame = pd.DataFrame(columns=["city_code", "year"])
    require_columns(frame, ["year", "city_code"], "the panel")
    with pytest.raises(SpecificationError, match=r"the panel lacks column\(s\) \['lq', 'gdp'\]"):
        require_columns(frame, ["lq", "year", "gdp", "lq"], "the panel")


def test_runner_caps_blas_threads_at_runtime(tmp_path) -> None:
    """numpy is loaded before `runner.run` starts, so the cap must act on the loaded BLAS (threadpoolctl),
    not through environment variables read only when it loads: a command-line run with --threads 1
    sees one BLAS thread even when started with OPENBLAS_NUM_THREADS=2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "probe.py"
    out = tmp_path / "threads.txt"
    script.write_text(
        "import numpy  # loaded before run(), as in every rule's script\n"
        "from threadpoolctl import threadpool_info\n"
        "from dualpilot.workflow.runner import run\n"
        "def main(inputs, outputs, params):\n"
        "    n = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "    open(outputs.txt, 'w').write(','.join(map(str, n)))\n"
        "run(main, globals())\n"
    )
    lib = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "2",
        "OMP_NUM_THREADS": "2",
        "PYTHONPATH": str(lib),
    }
    subprocess.run(
        [sys.executable, str(script), "--output", f"txt={out}", "--threads", "1"],
        check=True,
        env=env,
        capture_output=True,
    )
    counts = out.read_text().split(",")
    assert counts and set(counts) == {"1"}


def test_each_convention_has_one_implementation() -> None:
    """Each shared convention is defined in exactly one module of the package (docs/architecture.md
    lists where): the CRV1 factor, its K and vcov, the seeded rng of a draw, the gathering of shards, the
    resampled p-value, the column check and the tidy columns."""
    defined: dict[str, list[str]] = {}
    for module, tree in package_modules().items():
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for name in names:
                defined.setdefault(name, []).append(module)
    homes = {
        "crv1_factor": "dualpilot.did.inference",
        "crv1_vcov": "dualpilot.did.inference",
        "fixest_df_k": "dualpilot.did.inference",
        "draw_rng": "dualpilot.engines.resampling",
        "resampled_pvalue": "dualpilot.engines.resampling",
        "require_columns": "dualpilot.core.errors",
        "TIDY_COLUMNS": "dualpilot.core.tidy",
        "Language": "dualpilot.core.labels",
        "check_language": "dualpilot.core.labels",
        "read_label_entries": "dualpilot.core.labels",
        "write_label_entries": "dualpilot.core.labels",
        "permute_labels": "dualpilot.engines.resampling",
        "resample_clusters": "dualpilot.engines.resampling",
        "conditional_draws": "dualpilot.engines.resampling",
        "TwfeDesign": "dualpilot.engines.twfe",
        "GroupPermutationEngine": "dualpilot.engines.group_permutation",
    }
    for name, home in homes.items():
        assert defined.get(name) == [home], (name, defined.get(name))
