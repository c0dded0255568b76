"""Synthetic pilot lists for worked examples of another programme (docs/other-programmes.md).

A synthetic list has the contract's policy format (batch, name, level, province, city_code, source) and
names prefecture-level cities of the city master drawn at random, so that the workflow can be run for a
programme whose official list is not shipped. Every row's source says SYNTHETIC, and the file's name starts
with ``synthetic_`` (rule build_panel then logs a warning). Such a list is never a programme's real pilots.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dualpilot.core.errors import require_columns
from dualpilot.data.reference import PILOT_COLUMNS

#: File names of synthetic lists start with this; build_panel warns when it codes one.
SYNTHETIC_PREFIX = "synthetic_"


def synthetic_source(programme: str, seed: int, per_batch: Mapping[int, int]) -> str:
    """The `source` of every row of a synthetic list: what it is and how it was drawn."""
    sizes = ", ".join(f"{b}: {n}" for b, n in sorted(per_batch.items()))
    return (
        f"SYNTHETIC {programme} list, not real pilots: drawn by "
        f"dualpilot.demo.synthetic_pilots.synthetic_pilot_list(seed={seed}, per_batch={{{sizes}}})"
    )


def synthetic_pilot_list(
    master: pd.DataFrame,
    batch_years: Mapping[int, int],
    per_batch: Mapping[int, int],
    *,
    seed: int,
    programme: str,
) -> pd.DataFrame:
    """A synthetic pilot list: `per_batch[b]` prefecture-level cities in batch b, drawn uniformly without
    replacement (a city enters one batch at most) from the master cities that exist in the batch's policy
    year `batch_years[b]`, with the generator seeded by `seed` only. Rows are sorted by batch and code;
    every row's source is `synthetic_source`. Raises ValueError when a batch has no year or more cities are
    asked for than exist."""
    require_columns(
        master, ("city_code", "city_name", "province", "first_year", "last_year"), "master"
    )
    missing = sorted(set(per_batch) - set(batch_years))
    if missing:
        raise ValueError(f"batch(es) {missing} have no policy year in {dict(batch_years)}")
    rng = np.random.default_rng(seed)
    first = master["first_year"].to_numpy(dtype=int)
    last = master["last_year"].to_numpy(dtype=int)
    taken = np.zeros(len(master), dtype=bool)
    rows = []
    for batch in sorted(per_batch):
        year = int(batch_years[batch])
        eligible = np.flatnonzero(~taken & (first <= year) & (year <= last))
        size = int(per_batch[batch])
        if size > len(eligible):
            raise ValueError(
                f"batch {batch}: asked for {size} cities, but only {len(eligible)} are left in {year}"
            )
        chosen = np.sort(rng.choice(eligible, size=size, replace=False))
        taken[chosen] = True
        rows += [(batch, i) for i in chosen]
    out = pd.DataFrame(
        {
            "batch": [b for b, _ in rows],
            "name": [master["city_name"].iat[i] for _, i in rows],
            "level": "prefecture",
            "province": [master["province"].iat[i] for _, i in rows],
            "city_code": [master["city_code"].iat[i] for _, i in rows],
            "source": synthetic_source(programme, seed, per_batch),
        }
    )
    return out.sort_values(["batch", "city_code"], kind="stable").reset_index(drop=True)


def pilot_list_text(pilots: pd.DataFrame) -> str:
    """A pilot list as the text of its CSV file (the contract's policy format, UTF-8, LF line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PILOT_COLUMNS)
    for r in pilots[list(PILOT_COLUMNS)].itertuples(index=False):
        writer.writerow(r)
    return buf.getvalue()
