"""Coefficient plot of the split-sample estimates by heterogeneity dimension (rule plot_heterogeneity)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import heterogeneity, plots

    fig = heterogeneity.heterogeneity_plot(pd.read_csv(inputs.estimates), language=params.language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
