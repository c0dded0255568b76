"""Every figure of the spatial stage (rule render_maps): maps of the location quotient in selected years
and of the pilot cities, the LISA cluster maps, the regional trends and the kernel densities."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import spatial
    from dualpilot.data import programmes
    from dualpilot.data.panel import read_panel
    from dualpilot.render.plots import save_figure

    spec, lang, dpi = params.spatial, params.language, params.dpi
    panel = read_panel(inputs.panel)
    geo = spatial.load_boundaries(inputs.layer)
    dash = spatial.load_dash_line(inputs.dash_line)
    fig = spatial.lq_maps(
        panel, geo, spec["map_years"], spec["classes"], dash_line=dash, language=lang
    )
    save_figure(fig, outputs.maps_png, outputs.maps_pdf, dpi=dpi)
    first, second = programmes.dual_programmes(params.programmes, params.dual)
    fig = spatial.pilot_map(
        panel,
        geo,
        spec["pilot_map_year"],
        k=spec["classes"],
        dash_line=dash,
        language=lang,
        pair=programmes.Pair(first.key, second.key),
        single_labels=tuple(
            spatial.single_pilot_legend(p.short_zh, p.short_en, lang) for p in (first, second)
        ),
    )
    save_figure(fig, outputs.pilots_png, outputs.pilots_pdf, dpi=dpi)
    lisa = pd.read_csv(inputs.lisa, dtype={"city_code": str})
    fig = spatial.lisa_figure(lisa, geo, alpha=spec["lisa_alpha"], dash_line=dash, language=lang)
    save_figure(fig, outputs.lisa_png, outputs.lisa_pdf, dpi=dpi)
    fig = spatial.regional_trends_figure(pd.read_csv(inputs.trends), language=lang)
    save_figure(fig, outputs.trends_png, outputs.trends_pdf, dpi=dpi)
    fig = spatial.lq_densities(panel, spec["map_years"], language=lang)
    save_figure(fig, outputs.densities_png, outputs.densities_pdf, dpi=dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
