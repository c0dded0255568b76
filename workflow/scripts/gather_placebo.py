"""Gather the shards of one placebo kind into one table of draws (rule gather_placebo)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.engines import placebo

    draws = placebo.gather([pd.read_parquet(path) for path in inputs], n_draws=params.n_draws)
    draws.to_parquet(outputs[0], index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
