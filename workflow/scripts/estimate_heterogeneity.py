"""Split-sample and interaction estimates by pre-policy groups, with permutation tests of the gaps
gathered from the shards (rule estimate_heterogeneity)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import heterogeneity, mechanisms
    from dualpilot.data.panel import read_panel

    spec = params.heterogeneity
    panel = read_panel(inputs.panel)
    draws = pd.concat([pd.read_parquet(path) for path in inputs.permutations], ignore_index=True)
    by_comparison = {
        key: frame.drop(columns="comparison").sort_values("draw").reset_index(drop=True)
        for key, frame in draws.groupby("comparison")
    }
    dims = heterogeneity.dimensions_from_config(spec["dimensions"])
    options = mechanisms.estimation_options(params.estimation)
    tidy = heterogeneity.heterogeneity(
        panel,
        params.controls,
        dimensions=dims,
        before=spec["baseline_before"],
        n_draws=spec["draws"],
        seed=spec["seed"],
        draws=by_comparison,
        stratify_treated=spec["stratify_treated"],
        **options,
    )
    tidy.to_csv(outputs.estimates, index=False)
    groups = heterogeneity.baseline_groups(panel, dims, before=spec["baseline_before"])
    groups.to_csv(outputs.groups)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
