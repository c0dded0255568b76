"""Kernel density and p-value scatter of one placebo kind, true estimate marked (rule render_placebo)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.engines import placebo
    from dualpilot.render import plots

    fig = plots.placebo_figure(
        pd.read_parquet(inputs.draws),
        placebo.true_estimate(
            pd.read_csv(inputs.baseline), params.headline["model"], params.headline["term"]
        ),
        language=params.language,
    )
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
