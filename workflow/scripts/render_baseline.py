"""Every table and figure of the baseline stage (rule render_baseline): the regression tables of the
baseline, dual-versus-single, event-study and duration estimates, the descriptive statistics, and the
event-study and duration coefficient plots, and the cities per pilot programme and cohort, all drawn from the tidy files the estimation rules wrote."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data import programmes
    from dualpilot.render import documents as render
    from dualpilot.render import plots, tables

    settings, figures = params.tables, params.figures
    language = settings["language"]
    labels = tables.load_labels(inputs.labels).for_outcome_industry(params.outcome_industry)
    estimates = {
        analysis: render.write_analysis_table(
            inputs, outputs, analysis, labels=labels, settings=settings
        )
        for analysis in params.analyses
    }
    descriptives = tables.descriptive_table(
        pd.read_csv(inputs.descriptives),
        labels,
        language,
        title={"zh": "描述性统计", "en": "Descriptive statistics"}[language],
        digits=settings["digits"],
    )
    render.write_table(descriptives, outputs, "descriptives")
    summary = pd.read_csv(inputs.treatment_summary)
    pair, names = programmes.pair_and_names(params.programmes, params.dual)
    render.write_table(
        render.treatment_summary_table(summary, labels, language, pair=pair, names=names),
        outputs,
        "treatment_summary",
    )

    fig = plots.coefficient_plot(
        estimates["event_study"],
        pattern=tables.EVENT_TERM_PATTERN,
        base_period=params.base,
        title={"zh": "双试点的动态效应", "en": "Dynamic effects of the dual pilot"},
        ylabel={"zh": "估计系数", "en": "Coefficient"},
        xlabel={"zh": "相对双试点开始的年份", "en": "Years relative to the dual-pilot start"},
        ci=figures["ci"],
        ci_style=figures["ci_style"],
        language=language,
        labels=labels,
    )
    plots.save_figure(fig, outputs.event_study_png, outputs.event_study_pdf, dpi=figures["dpi"])
    duration = estimates["duration"]
    bins = duration[duration["model"] == "bins"]
    fig = plots.coefficient_plot(
        duration,
        model="bins",
        terms=[t for t in bins["term"] if t.startswith("dur_")],
        title={
            "zh": "双试点效应与试点持续时间",
            "en": "Dual-pilot effect by years since the start",
        },
        ylabel={"zh": "估计系数", "en": "Coefficient"},
        ci=figures["ci"],
        language=language,
        labels=labels,
    )
    plots.save_figure(fig, outputs.duration_png, outputs.duration_pdf, dpi=figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
