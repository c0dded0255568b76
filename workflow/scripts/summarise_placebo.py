"""Placebo distributions against the true baseline estimate, one row per kind (rule summarise_placebo)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.engines import placebo

    true_estimate = placebo.true_estimate(
        pd.read_csv(inputs.baseline), params.headline["model"], params.headline["term"]
    )
    rows = [
        {"kind": kind, **placebo.summarise(pd.read_parquet(path), true_estimate)}
        for kind, path in zip(params.kinds, inputs.draws, strict=True)
    ]
    pd.DataFrame(rows).to_csv(outputs.summary, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
