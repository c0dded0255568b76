"""PSM-DID under each matching design, with balance table and score densities (rule estimate_psm_did)."""

from dualpilot.runner import run

BALANCE_HEADERS = {
    "covariate": {"zh": "变量", "en": "Covariate"},
    "sample": {"zh": "样本", "en": "Sample"},
    "mean_treated": {"zh": "处理组均值", "en": "Mean treated"},
    "mean_control": {"zh": "控制组均值", "en": "Mean control"},
    "bias_pct": {"zh": "标准化偏差(%)", "en": "Std. bias (%)"},
    "bias_reduction_pct": {"zh": "偏差减少(%)", "en": "Bias reduction (%)"},
    "t_stat": {"zh": "t 值", "en": "t"},
    "p_value": {"zh": "p 值", "en": "p"},
}


def main(inputs, outputs, params):
    from dualpilot import plots, psm, tables
    from dualpilot.panel import read_panel

    options = dict(params.psm)
    designs = options.pop("designs")
    figure_design = options.pop("figure_design")
    result = psm.run_all_designs(
        read_panel(inputs.panel), controls=params.controls, designs=designs, **options
    )
    result.tidy.to_csv(outputs.estimates, index=False)
    result.balance.to_csv(outputs.balance, index=False)
    result.summary.to_csv(outputs.summary, index=False)
    result.matched.to_parquet(outputs.matched, index=False)
    result.scores.to_parquet(outputs.scores, index=False)

    language = params.tables["language"]
    table = tables.frame_table(
        result.balance,
        columns=BALANCE_HEADERS,
        language=language,
        group="design",
        label_columns=("covariate", "sample"),
        title={"zh": "倾向得分匹配平衡性检验", "en": "Covariate balance before and after matching"}[
            language
        ],
        digits=params.tables["digits"],
        labels=tables.load_labels(inputs.labels),
    )
    with open(outputs.balance_tex, "w", encoding="utf-8") as fh:
        fh.write(tables.to_latex(table, label="tab:psm_balance"))
    with open(outputs.balance_md, "w", encoding="utf-8") as fh:
        fh.write(tables.to_markdown(table))
    fig = psm.pscore_density_figure(result.scores, design=figure_design, language=language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
