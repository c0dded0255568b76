"""One shard of bdiff-style permutation draws for every pair of groups of one heterogeneity dimension
(rule permute_group_labels)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import heterogeneity, mechanisms
    from dualpilot.data.panel import read_panel
    from dualpilot.engines.placebo import shard_range

    spec = params.heterogeneity
    panel = read_panel(inputs.panel)
    dims = heterogeneity.dimensions_from_config(spec["dimensions"])
    dim = dims[params.dimension]
    draws = shard_range(spec["draws"], spec["shards"], params.shard)
    frames = []
    for pair in dim.pairs:
        frame = heterogeneity.bdiff_draws(
            panel,
            dim,
            draws,
            spec["seed"],
            pair=pair,
            dimensions=dims,
            controls=params.controls,
            before=spec["baseline_before"],
            stratify_treated=spec["stratify_treated"],
            **mechanisms.estimation_options(params.estimation),
        )
        frames.append(frame.assign(comparison=heterogeneity.comparison_label(dim.name, pair)))
    pd.concat(frames, ignore_index=True).to_parquet(outputs[0], index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
