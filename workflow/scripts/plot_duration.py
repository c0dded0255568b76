"""The dual effect by years since the dual start, as a coefficient plot (rule plot_duration)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import plots, tables

    estimates = pd.read_csv(inputs.estimates)
    fig = plots.coefficient_plot(
        estimates,
        model="bins",
        terms=[
            t for t in estimates.loc[estimates["model"] == "bins", "term"] if t.startswith("dur_")
        ],
        title={
            "zh": "双试点效应与试点持续时间",
            "en": "Dual-pilot effect by years since the start",
        },
        ylabel={"zh": "估计系数", "en": "Coefficient"},
        ci=params.figures["ci"],
        language=params.language,
        labels=tables.load_labels(inputs.labels),
    )
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
