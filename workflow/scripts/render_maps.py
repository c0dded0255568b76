"""Every figure of the spatial stage (rule render_maps): maps of the location quotient in selected years
and of the pilot cities, the LISA cluster maps, the regional trends and the kernel densities."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data import geography, programmes
    from dualpilot.data.panel import read_panel
    from dualpilot.render import maps, tables
    from dualpilot.render.plots import save_figure

    spec, lang, dpi = params.spatial, params.language, params.dpi
    # the outcome industry's lq label when it is not the IT sector (the figures' own texts name IT)
    lq_label = None
    if params.outcome_industry != "it_emp":
        labels = tables.load_labels(inputs.labels).for_outcome_industry(params.outcome_industry)
        lq_label = labels.get("lq", lang)
    panel = read_panel(inputs.panel)
    geo = geography.load_boundaries(inputs.layer)
    dash = geography.load_dash_line(inputs.dash_line)
    fig = maps.lq_maps(
        panel,
        geo,
        spec["map_years"],
        spec["classes"],
        dash_line=dash,
        language=lang,
        lq_label=lq_label,
    )
    save_figure(fig, outputs.maps_png, outputs.maps_pdf, dpi=dpi)
    first, second = programmes.dual_programmes(params.programmes, params.dual)
    fig = maps.pilot_map(
        panel,
        geo,
        spec["pilot_map_year"],
        k=spec["classes"],
        dash_line=dash,
        language=lang,
        lq_label=lq_label,
        pair=programmes.Pair(first.key, second.key),
        single_labels=tuple(
            maps.single_pilot_legend(p.short_zh, p.short_en, lang) for p in (first, second)
        ),
    )
    save_figure(fig, outputs.pilots_png, outputs.pilots_pdf, dpi=dpi)
    lisa = pd.read_csv(inputs.lisa, dtype={"city_code": str})
    fig = maps.lisa_figure(lisa, geo, alpha=spec["lisa_alpha"], dash_line=dash, language=lang)
    save_figure(fig, outputs.lisa_png, outputs.lisa_pdf, dpi=dpi)
    fig = maps.regional_trends_figure(pd.read_csv(inputs.trends), language=lang, lq_label=lq_label)
    save_figure(fig, outputs.trends_png, outputs.trends_pdf, dpi=dpi)
    fig = maps.lq_densities(panel, spec["map_years"], language=lang, lq_label=lq_label)
    save_figure(fig, outputs.densities_png, outputs.densities_pdf, dpi=dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
