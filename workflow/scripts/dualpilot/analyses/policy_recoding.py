"""Treatment recoding for the robustness grid: the pilot lists chosen exactly as rule build_panel chooses them
(`reference.choose_policy_file`) and recoded with `treatment.code_treatment` (`load_pilot_lists`,
`merge_policy`, `PolicyRecoder`, `check_coding`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualpilot.core.errors import SpecificationError
from dualpilot.data import reference, treatment

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Treatment recoding (pilot lists as rule build_panel chooses them)
# --------------------------------------------------------------------------------------------------

PILOT_FILES: dict[str, str] = {
    "smart_city": "smart_city_pilots.csv",
    "low_carbon": "low_carbon_pilots.csv",
}


def load_pilot_lists(
    raw_dir: str | Path,
    shipped: Mapping[str, str | Path],
    provinces: Sequence[str] | set[str],
) -> dict[str, pd.DataFrame]:
    """The smart-city and low-carbon pilot lists, chosen as rule build_panel chooses them: the user's
    `<raw_dir>/policy/<file>` if present, else the shipped list (`reference.choose_policy_file`).
    `shipped` maps "smart_city" and "low_carbon" to the shipped files."""
    lists = {}
    for key, name in PILOT_FILES.items():
        if key not in shipped:
            raise SpecificationError(f"no shipped {key} pilot list given")
        path, is_shipped = reference.choose_policy_file(raw_dir, name, shipped[key])
        log.info(
            "%s pilot list: %s%s", key, path, " (shipped)" if is_shipped else " (from raw_dir)"
        )
        lists[key] = reference.load_pilot_list(path, provinces=set(provinces))
    return lists


def merge_policy(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (the config's policy block) with the keys of `override` replaced, recursively.

    Every key of `override` must exist in `base` (a misspelt key raises SpecificationError)."""
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            raise SpecificationError(
                f"unknown policy setting {key!r} in a grid specification; known: {sorted(base)}"
            )
        if isinstance(value, Mapping):
            if not isinstance(base[key], Mapping):
                raise SpecificationError(f"policy setting {key!r} is not a group of settings")
            out[key] = merge_policy(base[key], value)
        else:
            out[key] = value
    return out


def recode_treatment(
    panel: pd.DataFrame,
    policy: Mapping[str, Any],
    *,
    lists: Mapping[str, pd.DataFrame],
    master: pd.DataFrame,
    last_year: int,
) -> pd.DataFrame:
    """The panel with its treatment columns recoded by `treatment.code_treatment` under `policy` (a
    complete policy block, e.g. from `merge_policy`). Other columns and the row order are kept."""
    bare = panel.drop(columns=[c for c in treatment.TREATMENT_COLUMNS if c in panel.columns])
    try:
        return treatment.code_treatment(
            bare,
            lists["smart_city"],
            lists["low_carbon"],
            master,
            **treatment.rules_from_config(policy),
            last_year=last_year,
        )
    except ValueError as err:
        raise SpecificationError(f"recoding the treatment: {err}") from err


_CODING_CHECK = ("sc_year", "lc_year", "dual_year", "sc_post", "lc_post", "dual_post")


def check_coding(panel: pd.DataFrame, recoded: pd.DataFrame) -> None:
    """Raise SpecificationError unless `recoded` (the panel recoded under the config's own policy) has the
    panel's treatment coding: the grid's recodings must start from the lists the panel was built from."""
    differing = [
        c
        for c in _CODING_CHECK
        if not np.array_equal(
            panel[c].to_numpy(dtype=float), recoded[c].to_numpy(dtype=float), equal_nan=True
        )
    ]
    if differing:
        raise SpecificationError(
            f"recoding the panel with the configured policy changes {differing}: the pilot lists or the "
            "policy settings given to this rule differ from those the panel was built with"
        )


@dataclass(frozen=True)
class PolicyRecoder:
    """Recodes the treatment under the config's policy block with a grid specification's overrides."""

    lists: Mapping[str, pd.DataFrame]
    master: pd.DataFrame
    policy: Mapping[str, Any]
    last_year: int

    def __call__(self, panel: pd.DataFrame, override: Mapping[str, Any]) -> pd.DataFrame:
        return recode_treatment(
            panel,
            merge_policy(self.policy, override),
            lists=self.lists,
            master=self.master,
            last_year=self.last_year,
        )
