"""Estimate one shard of placebo draws of one kind (rule placebo_shard)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.data.panel import read_panel
    from dualpilot.engines import placebo

    est = params.estimation
    draws = placebo.run_shard(
        read_panel(inputs.panel),
        params.kind,
        params.shard,
        params.n_shards,
        params.n_draws,
        params.seed,
        params.options,
        est["outcome"],
        params.controls,
        unit=est["unit"],
        time=est["time"],
        cluster=est["cluster"],
        drop_singletons=est["drop_singletons"],
        max_bytes=params.memory_mb * 2**20,
    )
    draws.to_parquet(outputs[0], index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
