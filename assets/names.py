"""The names of what one code location defines, each led by its config's `name`: the locations of several markets
then share a workspace and a Dagster instance without a clash (Dagster merges assets of one key across code
locations, and a schedule finds a day's runs by their job's name). Every place that names an asset, job, schedule or
sensor of the pipeline asks here."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from krnn_core.config import PipelineConfig


@dataclass(frozen=True)
class LocationNames:
    """The asset keys, steps, groups, pools, jobs, schedules and sensors of the code location called `name`."""

    name: str

    @classmethod
    def of(cls, config: PipelineConfig) -> LocationNames:
        """The names of the location built from `config`."""
        return cls(config.name)

    def key(self, asset: str) -> dg.AssetKey:
        """An asset's key: the location's name, then the asset's own (csi500/signals)."""
        return dg.AssetKey([self.name, asset])

    def step(self, asset: str) -> str:
        """The op, and step, that materializes an asset: Dagster names it after the key (csi500__signals)."""
        return self.key(asset).to_python_identifier()

    def named(self, definition: str) -> str:
        """A group, pool, job, schedule or sensor of the location (csi500_daily_signals_job)."""
        return f"{self.name}_{definition}"
