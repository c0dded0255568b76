"""Regional mean location quotient by year, kernel densities and the top cities (rule
describe_regional_pattern)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    from dualpilot import spatial
    from dualpilot.panel import read_panel
    from dualpilot.plots import save_figure

    spec, lang, dpi = params.spatial, params.language, params.dpi
    panel = read_panel(inputs.panel)
    trends, fig = spatial.regional_trends(panel, "region4", language=lang)
    trends.to_csv(outputs.trends, index=False)
    save_figure(fig, outputs.trends_png, outputs.trends_pdf, dpi=dpi)
    fig = spatial.lq_densities(panel, spec["map_years"], language=lang)
    save_figure(fig, outputs.densities_png, outputs.densities_pdf, dpi=dpi)
    spatial.top_cities(panel, spec["top_n"], spec["map_years"]).to_csv(outputs.top, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
