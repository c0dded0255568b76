"""Regional mean location quotient by year and the top cities (rule describe_regional_pattern); rule
render_maps draws the trends and the densities."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import spatial
    from dualpilot.data.panel import read_panel

    panel = read_panel(inputs.panel)
    spatial.regional_trends(panel, "region4").to_csv(outputs.trends, index=False)
    spatial.top_cities(panel, params.top_n, params.map_years).to_csv(outputs.top, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
