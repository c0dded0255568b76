"""Every table and figure of the robustness checks (rule render_robustness), drawn from the estimation
rules' files: the Goodman-Bacon scatter, the TWFE and robust event studies on one axis, the HonestDiD table
and figure, the pilot-order table and the robustness-grid table."""

from dualpilot.workflow.runner import run

# Columns of the table, headed by their column:<name> entries of resources/labels/terms.csv.
HONESTDID_COLUMNS = (
    "restriction",
    "method",
    "Mbar_or_M",
    "conf_low",
    "conf_high",
)


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import bacon
    from dualpilot.render import documents as render
    from dualpilot.render import plots, tables
    from dualpilot.render import robustness as robustness_figures

    settings, figures = params.tables, params.figures
    language = settings["language"]
    labels = tables.load_labels(inputs.labels).for_outcome_industry(params.outcome_industry)
    dpi = figures["dpi"]

    summary = pd.read_csv(inputs.bacon_summary)
    bacon = bacon.BaconResult(
        decomposition=pd.read_csv(inputs.bacon),
        summary=summary,
        # the "total" row: the TWFE coefficient the 2x2 estimates add up to (checked by estimate_bacon)
        twfe=float(summary.loc[summary["type"] == "total", "estimate"].iloc[0]),
    )
    fig = robustness_figures.bacon_figure(bacon, language=language)
    plots.save_figure(fig, outputs.bacon_png, outputs.bacon_pdf, dpi=dpi)

    event_study = params.event_study
    fig = robustness_figures.event_study_comparison(
        pd.read_csv(inputs.event_study),
        pd.read_csv(inputs.staggered),
        {entry["label"]: entry["model"] for entry in params.series},
        window=event_study["window"],
        base=event_study["base"],
        cs_base_period=params.cs_base_period,
        ci=figures["ci"],
        language=language,
    )
    plots.save_figure(fig, outputs.estimators_png, outputs.estimators_pdf, dpi=dpi)

    honest = pd.read_csv(inputs.honestdid)
    table = tables.frame_table(
        honest,
        columns=HONESTDID_COLUMNS,
        language=language,
        group="target",
        label_columns=("restriction", "method"),
        title={"zh": "平行趋势敏感性分析（HonestDiD）", "en": "Pre-trend sensitivity (HonestDiD)"}[
            language
        ],
        note=robustness_figures.honestdid_note(honest, language=language),
        labels=labels,
    )
    render.write_table(table, outputs, "honestdid")
    fig = robustness_figures.honestdid_figure(honest, alpha=params.honestdid["alpha"], language=language)
    plots.save_figure(fig, outputs.honestdid_png, outputs.honestdid_pdf, dpi=dpi)

    render.write_analysis_table(inputs, outputs, "pilot_order", labels=labels, settings=settings)

    table = robustness_figures.robustness_table(
        pd.read_csv(inputs.robustness),
        pd.read_csv(inputs.robustness_specs),
        language=language,
        digits=settings["digits"],
        stars=settings["stars"],
        bootstrap=params.bootstrap,
        labels=labels,
    )
    render.write_table(table, outputs, "robustness")


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
