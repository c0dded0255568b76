"""Global Moran's I of the location quotient by year and local hot spots (rule
estimate_spatial_autocorrelation)."""

import logging

from dualpilot.runner import run

log = logging.getLogger("dualpilot.estimate_spatial_autocorrelation")


def main(inputs, outputs, params):
    from dualpilot import spatial
    from dualpilot.panel import read_panel
    from dualpilot.plots import save_figure

    spec = params.spatial
    panel = read_panel(inputs.panel)
    geo = spatial.load_boundaries(inputs.layer)
    moran = spatial.morans_i(
        panel,
        geo,
        permutations=spec["permutations"],
        seed=spec["seed"],
        k_islands=spec["k_islands"],
    )
    moran.to_csv(outputs.moran, index=False)
    log.info("Moran's I by year:\n%s", moran[["year", "n", "moran_i", "p_sim"]].to_string())
    lisa, fig = spatial.local_hotspots(
        panel,
        geo,
        spec["hotspot_years"],
        seed=spec["seed"],
        permutations=spec["permutations"],
        alpha=spec["lisa_alpha"],
        k_islands=spec["k_islands"],
        dash_line=spatial.load_dash_line(inputs.dash_line),
        language=params.language,
    )
    lisa.to_csv(outputs.lisa, index=False)
    save_figure(fig, outputs.png, outputs.pdf, dpi=params.dpi)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
