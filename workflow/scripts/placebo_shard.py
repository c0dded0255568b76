"""Estimate one shard of placebo draws of one kind (rule placebo_shard)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    from dualpilot import placebo
    from dualpilot.panel import read_panel

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
