"""The code locations of more markets, one per config: in workspace.yaml an entry's `attribute` names the config,
`attribute: synthetic_csi500` loads configs/synthetic_csi500.yaml. The default location is krnn_signals.definitions.

    - python_module:
        module_name: krnn_signals.markets
        attribute: synthetic_csi500
        working_directory: .
"""

import gc
from functools import cache

import dagster as dg

from krnn_core.config import CONFIGS, load_config
from krnn_signals.code_location import build_definitions


def __getattr__(config_name: str) -> dg.Definitions:
    """The code location of configs/<config_name>.yaml: Python asks here for the names the module does not define."""
    if config_name.startswith("_"):  # __path__, __wrapped__ and the like, asked by the import system and inspect
        raise AttributeError(config_name)
    return _location(config_name)


@cache  # Dagster looks the attribute up more than once
def _location(config_name: str) -> dg.Definitions:
    location = build_definitions(load_config(CONFIGS / f"{config_name}.yaml"))
    gc.freeze()  # as krnn_signals.definitions does
    return location
