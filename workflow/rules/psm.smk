# PSM-DID (docs/psm-did.md): logit propensity scores on the controls, nearest-neighbour or kernel matching
# under three designs (pooled, year by year, baseline), balance before and after, and the baseline DID
# re-estimated on each matched sample.


rule estimate_psm_did:
    input:
        panel="results/panel/panel.parquet",
        labels="resources/labels/terms.csv",
    output:
        estimates="results/estimates/psm_did.csv",
        balance="results/psm/balance.csv",
        balance_tex="results/tables/psm_balance.tex",
        balance_md="results/tables/psm_balance.md",
        summary="results/psm/summary.csv",
        matched="results/psm/matched.parquet",
        scores="results/psm/scores.parquet",
        png="results/figures/psm_density.png",
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
