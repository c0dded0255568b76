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
from dualpilot.data.programmes import DEFAULT_PAIR, Pair, Programme
from dualpilot.data.treatment import DEFAULT_NAMES

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Treatment recoding (pilot lists as rule build_panel chooses them)
# --------------------------------------------------------------------------------------------------

#: Pilot-list file of each programme name of the default pair.
PILOT_FILES: dict[str, str] = {
    "smart_city": "smart_city_pilots.csv",
    "low_carbon": "low_carbon_pilots.csv",
}


def load_pilot_lists(
    raw_dir: str | Path,
    shipped: Mapping[str, str | Path | None],
    provinces: Sequence[str] | set[str],
    files: Mapping[str, str] = PILOT_FILES,
) -> dict[str, pd.DataFrame]:
    """The pilot list of each programme name of `files` (name -> file name; default: the smart-city and
    low-carbon lists), chosen as rule build_panel chooses them: the user's `<raw_dir>/policy/<file>` if
    present, else the shipped list (`reference.choose_policy_file`). `shipped` maps each name to its
    shipped file (None when none of that name is shipped)."""
    lists = {}
    for key, name in files.items():
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


def recoding_policy(programmes: Sequence[Programme], policy: Mapping[str, Any]) -> dict[str, Any]:
    """The complete policy block that grid recodings override (`merge_policy`): each programme's batch
    years under its name ({name: {"batch_years": [...]}}) and the coding rules of the config's `policy`."""
    return {
        **{p.name: {"batch_years": list(p.batch_years)} for p in programmes},
        **treatment.rules_from_config(policy),
    }


def recode_treatment(
    panel: pd.DataFrame,
    policy: Mapping[str, Any],
    *,
    lists: Mapping[str, pd.DataFrame],
    master: pd.DataFrame,
    last_year: int,
    pair: Pair = DEFAULT_PAIR,
    names: tuple[str, str] = DEFAULT_NAMES,
) -> pd.DataFrame:
    """The panel with its treatment columns recoded by `treatment.code_dual` for `pair`, whose programmes
    are named `names`, under `policy` (a complete block as `recoding_policy` makes it, e.g. from
    `merge_policy`); `lists` maps the names to the pilot lists. Other columns and the row order are
    kept."""
    bare = panel.drop(columns=[c for c in pair.treatment_columns if c in panel.columns])
    try:
        return treatment.code_dual(
            bare,
            {key: lists[name] for key, name in zip(pair.keys, names, strict=True)},
            master,
            pair=pair,
            batch_years={
                key: dict(enumerate(policy[name]["batch_years"], start=1))
                for key, name in zip(pair.keys, names, strict=True)
            },
            **treatment.rules_from_config(policy),
            last_year=last_year,
        )
    except (KeyError, ValueError) as err:
        raise SpecificationError(f"recoding the treatment: {err}") from err


def check_coding(panel: pd.DataFrame, recoded: pd.DataFrame, pair: Pair = DEFAULT_PAIR) -> None:
    """Raise SpecificationError unless `recoded` (the panel recoded under the config's own policy) has the
    panel's treatment coding: the grid's recodings must start from the lists the panel was built from."""
    differing = [
        c
        for c in pair.treatment_columns[:6]
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
    """Recodes the treatment under the config's policy (`recoding_policy`) with a grid specification's
    overrides, for `pair` whose programmes are named `names` (`lists` keyed by those names)."""

    lists: Mapping[str, pd.DataFrame]
    master: pd.DataFrame
    policy: Mapping[str, Any]
    last_year: int
    pair: Pair = DEFAULT_PAIR
    names: tuple[str, str] = DEFAULT_NAMES

    def __call__(self, panel: pd.DataFrame, override: Mapping[str, Any]) -> pd.DataFrame:
        return recode_treatment(
            panel,
            merge_policy(self.policy, override),
            lists=self.lists,
            master=self.master,
            last_year=self.last_year,
            pair=self.pair,
            names=self.names,
        )
