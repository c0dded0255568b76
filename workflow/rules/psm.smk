# PSM-DID (docs/psm-did.md): logit propensity scores on the controls, nearest-neighbour or kernel matching
# under three designs (pooled, year by year, baseline), balance before and after, and the baseline DID
# re-estimated on each matched sample.


rule estimate_psm_did:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        estimates=report(
            "results/estimates/psm_did.csv",
            caption="../report/psm_did.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "PSM-DID", "type": "table"},
        ),
        balance=report(
            "results/psm/balance.csv",
            caption="../report/psm_balance.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "PSM balance", "type": "table"},
        ),
        summary="results/psm/summary.csv",
        matched="results/psm/matched.parquet",
        scores="results/psm/scores.parquet",
    log:
        "logs/estimate_psm_did.log",
    benchmark:
        "benchmarks/estimate_psm_did.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        # figure_design only chooses the design render_psm draws
        psm={k: v for k, v in config["psm"].items() if k != "figure_design"},
    script:
        "../scripts/estimate_psm_did.py"


rule render_psm:
    """The PSM-DID and balance tables and the score densities, drawn from the estimation's files."""
    input:
        **reference("specs"),
        labels=LABELS,
        psm_did=rules.estimate_psm_did.output.estimates,
        balance=rules.estimate_psm_did.output.balance,
        scores=rules.estimate_psm_did.output.scores,
    output:
        **table_outputs(["psm_did", "psm_balance"], "3 Robustness"),
        png=report(
            "results/figures/psm_density.png",
            caption="../report/psm_density.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "PSM score densities", "type": "figure"},
        ),
        pdf="results/figures/psm_density.pdf",
    log:
        "logs/render_psm.log",
    benchmark:
        "benchmarks/render_psm.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        tables=config["tables"],
        figures=config["figures"],
        figure_design=config["psm"]["figure_design"],
        outcome_industry=config["outcome_industry"],  # whose location quotient lq is, in labels and notes
    script:
        "../scripts/render_psm.py"


rule psm:
    """Aggregate target: PSM-DID estimates, balance, densities and the tables."""
    input:
        rules.estimate_psm_did.output,
        rules.render_psm.output,


localrules:
    psm,
