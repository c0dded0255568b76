"""Dual versus single pilots: one regression with the three states, Wald tests, synergy (rule
estimate_single_vs_dual)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import baseline as analyses
    from dualpilot.data.panel import read_panel
    from dualpilot.data.programmes import Pair

    panel = read_panel(inputs.panel)
    tidy = analyses.single_vs_dual(
        panel, params.controls, options=params.estimation, pair=Pair.of(params.dual)
    )
    tidy.to_csv(outputs.estimates, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
