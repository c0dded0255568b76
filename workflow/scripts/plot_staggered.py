"""The TWFE event study next to the heterogeneity-robust estimators on one axis (rule plot_staggered)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import plots, robustness

    fig = robustness.event_study_comparison(
        pd.read_csv(inputs.twfe),
        pd.read_csv(inputs.staggered),
        {entry["label"]: entry["model"] for entry in params.series},
        window=params.event_study["window"],
        base=params.event_study["base"],
        ci=params.figures["ci"],
        language=params.language,
    )
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
