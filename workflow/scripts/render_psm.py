"""The PSM-DID table, the balance table and the propensity-score densities (rule render_psm), drawn from
the files rule estimate_psm_did wrote."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import psm
    from dualpilot.render import documents as render
    from dualpilot.render import plots, tables
    from dualpilot.render import psm as psm_figures

    settings = params.tables
    language = settings["language"]
    labels = tables.load_labels(inputs.labels).for_outcome_industry(params.outcome_industry)
    render.write_analysis_table(inputs, outputs, "psm_did", labels=labels, settings=settings)
    balance = tables.frame_table(
        pd.read_csv(inputs.balance),
        columns=psm.BALANCE_TABLE_COLUMNS,
        language=language,
        group="model",
        label_columns=("covariate", "sample"),
        title={"zh": "倾向得分匹配平衡性检验", "en": "Covariate balance before and after matching"}[
            language
        ],
        digits=settings["digits"],
        labels=labels,
    )
    render.write_table(balance, outputs, "psm_balance")
    scores = pd.read_parquet(inputs.scores)
    # the first matching of the design (with 1:1 and 1:4 side by side: 1:1 as configured first)
    drawn = scores.loc[scores["design"] == params.figure_design, "model"]
    if drawn.empty:
        raise psm.PsmError(f"psm.figure_design {params.figure_design!r} is not among psm.designs")
    fig = psm_figures.pscore_density_figure(scores, model=drawn.iloc[0], language=language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
