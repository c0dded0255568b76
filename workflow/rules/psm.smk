# PSM-DID (docs/psm-did.md): logit propensity scores on the controls, nearest-neighbour or kernel matching
# under three designs (pooled, year by year, baseline), balance before and after, and the baseline DID
# re-estimated on each matched sample.


rule estimate_psm_did:
    input:
        panel="results/panel/panel.parquet",
        labels="resources/labels/terms.csv",
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
        balance_tex="results/tables/psm_balance.tex",
        balance_md="results/tables/psm_balance.md",
        summary="results/psm/summary.csv",
        matched="results/psm/matched.parquet",
        scores="results/psm/scores.parquet",
        png=report(
            "results/figures/psm_density.png",
            caption="../report/psm_density.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "PSM score densities", "type": "figure"},
        ),
        pdf="results/figures/psm_density.pdf",
    log:
        "logs/estimate_psm_did.log",
    benchmark:
        "benchmarks/estimate_psm_did.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        psm=config["psm"],
        tables=config["tables"],
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/estimate_psm_did.py"


rule psm:
    """Aggregate target: PSM-DID estimates, balance, densities and the table."""
    input:
        rules.estimate_psm_did.output,
        "results/tables/psm_did.tex",
        "results/tables/psm_did.md",


localrules:
    psm,
