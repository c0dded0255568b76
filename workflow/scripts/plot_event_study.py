"""Event-study figure with 95 % intervals and the base period marked (rule plot_event_study)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import plots, tables

    fig = plots.coefficient_plot(
        pd.read_csv(inputs.estimates),
        pattern=tables.EVENT_TERM_PATTERN,
        base_period=params.base,
        title={"zh": "双试点的动态效应", "en": "Dynamic effects of the dual pilot"},
        ylabel={"zh": "估计系数", "en": "Coefficient"},
        xlabel={"zh": "相对双试点开始的年份", "en": "Years relative to the dual-pilot start"},
        ci=params.figures["ci"],
        ci_style=params.figures["ci_style"],
        language=params.language,
        labels=tables.load_labels(inputs.labels),
    )
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
