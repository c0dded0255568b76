"""Global Moran's I of the location quotient by year and local hot spots (rule
estimate_spatial_autocorrelation); rule render_maps maps the hot spots."""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_spatial_autocorrelation")


def main(inputs, outputs, params):
    from dualpilot.analyses import spatial
    from dualpilot.data import geography
    from dualpilot.data.panel import read_panel

    spec = params.spatial
    panel = read_panel(inputs.panel)
    geo = geography.load_boundaries(inputs.layer)
    moran = spatial.morans_i(
        panel,
        geo,
        permutations=spec["permutations"],
        seed=spec["seed"],
        k_islands=spec["k_islands"],
    )
    moran.to_csv(outputs.moran, index=False)
    log.info(
        "Moran's I for %d years, from %.3f (%d) to %.3f (%d)",
        len(moran),
        moran["moran_i"].iloc[0],
        moran["year"].iloc[0],
        moran["moran_i"].iloc[-1],
        moran["year"].iloc[-1],
    )
    lisa = spatial.local_hotspots(
        panel,
        geo,
        spec["hotspot_years"],
        seed=spec["seed"],
        permutations=spec["permutations"],
        alpha=spec["lisa_alpha"],
        k_islands=spec["k_islands"],
    )
    lisa.to_csv(outputs.lisa, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
