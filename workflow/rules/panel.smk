# The city-year panel: read every edition of the raw extracts, validate, derive the variables of the contract,
# code the two pilot programmes, and write the panel in Parquet, CSV and Stata formats.


rule write_labels:
    """The labels of this run: the shipped label file with those of the programmes' derived terms."""
    input:
        **reference("labels"),
    output:
        labels=LABELS,
    log:
        "logs/write_labels.log",
    benchmark:
        "benchmarks/write_labels.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        programmes=config["programmes"],
    script:
        "../scripts/write_labels.py"


rule build_panel:
    input:
        **reference(
            "city_master",
            "name_crosswalk",
            "header_aliases",
            "plausibility",
            "usd_cny",
        ),
        **programme_inputs(),
        labels=LABELS,
        raw=raw_inputs,
    output:
        parquet="results/panel/panel.parquet",
        csv="results/panel/panel.csv",
        dta="results/panel/panel.dta",
        manifest="results/panel/manifest.csv",
        sample="results/panel/sample.csv",
        industries="results/panel/industries_long.parquet",
        quality=report(
            "results/panel/quality.csv",
            caption="../report/quality.rst",
            category="1 Data",
            subcategory="Tables",
            labels={"analysis": "values accepted with a warning", "type": "table"},
        ),
    log:
        "logs/build_panel.log",
    benchmark:
        "benchmarks/build_panel.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,  # reads every edition's workbooks; openpyxl holds a whole workbook in memory
        runtime=15,  # seconds on the demo, a minute or two on the full yearbooks
    params:
        raw_dir=config["raw_dir"],
        years=YEARS,
        sample_rule=config["sample"]["rule"],
        jump_factor=config["ingestion"]["jump_factor"],
        programmes=config["programmes"],
        dual=DUAL,
        policy=config["policy"],
        truncation_ratio=config["ingestion"]["truncation_ratio"],
        outcome_industry=config["outcome_industry"],
    script:
        "../scripts/build_panel.py"


rule summarise_treatment:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        csv=report(
            "results/tables/treatment_summary.csv",
            caption="../report/treatment_summary.rst",
            category="1 Data",
            subcategory="Tables",
            labels={"analysis": "treatment summary", "type": "table"},
        ),
    log:
        "logs/summarise_treatment.log",
    benchmark:
        "benchmarks/summarise_treatment.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        programmes=config["programmes"],
        dual=DUAL,
    script:
        "../scripts/summarise_treatment.py"


rule save_config:
    """Provenance: the configuration in effect, as merged from config.yaml, overlays and --config."""
    input:
        config_snapshot(),
    output:
        "results/config_used.yaml",
    log:
        "logs/save_config.log",
    benchmark:
        "benchmarks/save_config.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **JOB_RESOURCES,
    script:
        "../scripts/save_config.py"


rule panel:
    """Aggregate target: the panel, its provenance and the treatment summary."""
    input:
        rules.build_panel.output,
        rules.summarise_treatment.output,
        rules.save_config.output,


localrules:
    panel,
    save_config,
