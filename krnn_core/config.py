"""The pipeline's YAML config: Qlib workflow keys where Qlib has them, validated with pydantic."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from krnn_core.data.sources import MarketSource
from krnn_core.data.sources.csv_feed import CsvSource
from krnn_core.data.sources.qlib_folder import QlibFolderSource
from krnn_core.data.sources.synthetic import SyntheticSource
from krnn_core.data.synthetic import SyntheticMarket
from krnn_core.model.config import SEARCH_KEYS, KRNNConfig, TrainerConfig
from krnn_core.reports.backtest import BacktestConfig, ExchangeConfig
from krnn_core.warehouse import DuckLake

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "default.yaml"
CONFIG_ENV = "KRNN_CONFIG"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, lowest, highest, names of 1.. (months) or 0.. (weekdays): the five fields Dagster's schedules take
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i for i, name in enumerate(_MONTHS, 1)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_WEEKDAYS)}),
)
_CRON_ITEM = re.compile(r"(?:\*|(\w+)(?:-(\w+))?)(?:/([1-9]\d*))?")  # *, 5, 1-5, each optionally /step


def _cron(text: str) -> str:
    """`text` if it is a five-field cron string (minute hour day-of-month month day-of-week)."""
    parts = text.split()
    if len(parts) != len(_CRON_FIELDS):
        raise ValueError(f"{text!r} is not a cron string of 5 fields (minute hour day month weekday)")
    for part, (field, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            match = _CRON_ITEM.fullmatch(item)
            values = [names.get(v.lower(), v) for v in match.groups()[:2] if v] if match else ["?"]
            if not all(str(v).isdigit() and low <= int(v) <= high for v in values):
                raise ValueError(f"{text!r} is not a cron string: {field} {item!r} is not within {low}-{high}")
    return text


Cron = Annotated[str, AfterValidator(_cron)]


class QlibInit(_Strict):
    provider_uri: Path
    region: Literal["cn"] = "cn"


class SyntheticSourceConfig(_Strict):
    """The embedded synthetic market, generated offline and deterministic from the seed."""

    kind: Literal["synthetic"]
    seed: int = 7
    n_instruments: int = Field(360, ge=10)
    n_members: int = Field(300, ge=5)
    # the index leaves out the largest caps: CSI500 holds the n_members largest after the 300 of CSI300
    skip_largest: int = Field(0, ge=0)
    signal_strength: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _index_fits_the_pool(self) -> SyntheticSourceConfig:
        if self.skip_largest + self.n_members > self.n_instruments:
            raise ValueError(
                f"skip_largest {self.skip_largest} + n_members {self.n_members} is more than "
                f"n_instruments {self.n_instruments}"
            )
        return self


class QlibFolderSourceConfig(_Strict):
    """An existing Qlib-format folder, imported then synced day by day."""

    kind: Literal["qlib_folder"]
    path: Path
    suspended_as_missing: bool = True  # zero-volume bars with carried prices become missing bars
    change_in_percent: bool = True  # the folder's `change` is in percent; written as a fraction


class CsvSourceConfig(_Strict):
    """A folder of per-instrument CSV files (date, open, high, low, close, volume[, vwap, amount, factor])."""

    kind: Literal["csv"]
    path: Path


Source = Annotated[SyntheticSourceConfig | QlibFolderSourceConfig | CsvSourceConfig, Field(discriminator="kind")]


def _fields_of(*sources: type) -> type[_Strict]:
    """A strict model with the dataclasses' fields (names, types, defaults), each value checked by building its
    dataclass with it alone: the dataclasses stay the one definition (each of their checks concerns one field)."""
    owners, specs = {}, {}
    for source in sources:
        hints = get_type_hints(source)
        for spec in fields(source):
            owners[spec.name], specs[spec.name] = source, (hints[spec.name], spec.default)

    def built(value: Any, info: ValidationInfo) -> Any:
        owners[info.field_name](**{info.field_name: value})  # its ValueError is reported at this key
        return value

    name = "".join(source.__name__ for source in sources) + "Fields"
    return create_model(name, __base__=_Strict, __validators__={"_built": field_validator(*specs)(built)}, **specs)


class KRNNKwargs(_fields_of(KRNNConfig, TrainerConfig)):
    """Qlib's KRNN kwargs, same names: KRNNConfig's (the net) and TrainerConfig's (optimisation)."""


class ModelTask(_Strict):
    class_: Literal["KRNN"] = Field("KRNN", alias="class")
    kwargs: KRNNKwargs = KRNNKwargs()


class Segments(_Strict):
    """Windows of the first model version; later versions roll forward by `rolling.step`."""

    train: tuple[dt.date, dt.date]
    valid: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date | None]

    @field_validator("train", "valid", "test")
    @classmethod
    def _not_reversed(cls, window: tuple) -> tuple:
        start, end = window
        if end is not None and start > end:
            raise ValueError(f"starts {start} after it ends {end}")
        return window

    @field_validator("valid", "test")
    @classmethod
    def _after_the_previous(cls, window: tuple, info: ValidationInfo) -> tuple:
        previous = "train" if info.field_name == "valid" else "valid"
        if previous in info.data and window[0] <= info.data[previous][1]:
            raise ValueError(
                f"starts {window[0]}, not after {previous} ends {info.data[previous][1]}: "
                "segments must be ordered train < valid < test without overlap"
            )
        return window


class Dataset(_Strict):
    segments: Segments


class Task(_Strict):
    model: ModelTask = ModelTask()
    dataset: Dataset


class Rolling(_Strict):
    """Retraining: one model version per period; `sliding` is Qlib's ROLL_SD, `expanding` ROLL_EX."""

    step: Literal["monthly", "quarterly", "yearly"] = "monthly"
    rtype: Literal["sliding", "expanding"] = "sliding"


class Ensemble(_Strict):
    """Seeds trained per retraining period; their scores' combination is the served version."""

    seeds: int = 1  # members train with task.model.kwargs.seed, seed + 1, ...; 1: one model, no ensemble
    combine: Literal["zscore", "rank"] = "zscore"  # mean of per-day z-scores (Qlib's AverageEnsemble) or of ranks

    @field_validator("seeds", mode="before")
    @classmethod
    def _a_count(cls, seeds: Any) -> int:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ValueError(
                f"{seeds!r} is not a count of seeds (an integer >= 1): "
                "the members train with task.model.kwargs.seed, seed + 1, ..."
            )
        return seeds


class SearchSpace(_Strict):
    """The candidate values of each KRNN kwarg a model search varies; one value keeps it fixed."""

    cnn_dim: list[int] = [8, 16, 32, 64]
    rnn_dim: list[int] = [8, 16, 32, 64]
    rnn_dups: list[int] = [1, 2, 3]
    rnn_layers: list[int] = [1, 2]
    dropout: list[float] = [0.0, 0.1, 0.3]
    lr: list[float] = [0.0005, 0.001, 0.002]
    batch_size: list[int] = [800, 2000, 4000]

    @field_validator(*SEARCH_KEYS)
    @classmethod
    def _each_value_valid(cls, values: list, info: ValidationInfo) -> list:
        if not values:
            raise ValueError("needs at least one value")
        owner = KRNNConfig if info.field_name in {f.name for f in fields(KRNNConfig)} else TrainerConfig
        for value in values:
            owner(**{info.field_name: value})  # its ValueError is reported at this key
        return values


class Search(_Strict):
    """Model selection on valid Rank IC, run by krnn_model_search_job (`krnn-signals search`), never on its own."""

    trials: int = Field(16, ge=1)  # candidates trained, task.model.kwargs first
    seed: int = 0  # which points of the space are drawn
    space: SearchSpace = SearchSpace()


class Strategy(_Strict):
    class_: Literal["TopkDropoutStrategy"] = Field("TopkDropoutStrategy", alias="class")
    kwargs: dict[Literal["topk", "n_drop"], int] = {"topk": BacktestConfig.topk, "n_drop": BacktestConfig.n_drop}

    @field_validator("kwargs")
    @classmethod
    def _as_the_backtest_checks(cls, kwargs: dict[str, int]) -> dict[str, int]:
        BacktestConfig(**kwargs)  # its ValueError names topk and n_drop
        return kwargs


class ExchangeKwargs(_fields_of(ExchangeConfig)):
    """Qlib's backtest exchange_kwargs, same names: ExchangeConfig's."""


class Backtest(_Strict):
    start_time: dt.date | None = None  # defaults to the test segment
    end_time: dt.date | None = None
    account: float = BacktestConfig.account
    exchange_kwargs: ExchangeKwargs = ExchangeKwargs()

    @field_validator("end_time")
    @classmethod
    def _not_reversed(cls, end: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_time")
        if start is not None and end is not None and start > end:
            raise ValueError(f"{end} is before start_time {start}")
        return end


class PortAnalysis(_Strict):
    strategy: Strategy = Strategy()
    backtest: Backtest = Backtest()


class DuckLakeWarehouse(_Strict):
    """A DuckLake instead of the DuckDB file: catalog in PostgreSQL, Parquet files under data_path."""

    kind: Literal["ducklake"]
    catalog: str  # libpq connection string of the catalog database; a password belongs in PGPASSWORD or ~/.pgpass
    data_path: Path
    schema_: str = Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]*$")  # this config's tables in the lake


class Monitoring(_Strict):
    """Thresholds of the signal checks and alerts."""

    min_score_std: float = Field(1e-4, ge=0)  # below this a day's scores count as collapsed
    max_model_age_days: int = Field(120, ge=1)  # calendar days from a model's last label to a signal day
    rank_ic_floor: float = 0.0  # the rolling 20-day Rank IC below this raises a warning
    signals_deadline_cron: Cron = "30 19 * * 1-5"  # Asia/Shanghai: the day's signals exist by then
    max_day_move: float = Field(0.11, gt=0)  # |close / previous close - 1| above this, factor unchanged, warns
    min_coverage: float = Field(0.9, ge=0, le=1)  # a day with fewer index members with a bar than this warns


def _location_name(name: str) -> str:
    """`name` if Dagster takes it as an asset key prefix, a group, job and pool name."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(
            f"{name!r} cannot name the code location (by default the market names it): it prefixes its asset keys "
            f"({name}/signals), groups and jobs: letters, digits and underscores, starting with a letter"
        )
    return name


class PipelineConfig(_Strict):
    # the code location's name, the market's by default: two markets' locations in one workspace differ by it
    name: Annotated[str, AfterValidator(_location_name)]
    qlib_init: QlibInit
    source: Source
    market: str = "csi300"
    benchmark: str = "SH000300"
    start_time: dt.date  # first trading day of the market data and of the daily partitions
    # last trading day of a finished market (a snapshot, the demo): its partitions end there and nothing is
    # late; unset, the source is a live feed, partitions run to today and the signals have a deadline
    end_time: dt.date | None = None
    # Asia/Shanghai: when the daily schedule runs the last closed session (a test ticks every minute)
    schedule_cron: Cron = "0 18 * * 1-5"
    duckdb_path: Path | None = None  # the embedded DuckDB warehouse, unless `warehouse` names a DuckLake
    warehouse: DuckLakeWarehouse | None = None
    model_dir: Path
    task: Task
    rolling: Rolling = Rolling()
    ensemble: Ensemble = Ensemble()
    search: Search = Search()
    port_analysis_config: PortAnalysis = PortAnalysis()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="before")
    @classmethod
    def _named_by_the_market(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "name" not in raw:
            return {**raw, "name": raw.get("market", cls.model_fields["market"].default)}
        return raw

    @model_validator(mode="after")
    def _one_warehouse(self) -> PipelineConfig:
        if (self.duckdb_path is None) == (self.warehouse is None):
            raise ValueError("give either duckdb_path (a DuckDB file) or warehouse (a DuckLake), not both or neither")
        return self

    @model_validator(mode="after")
    def _windows_inside_data(self) -> PipelineConfig:
        if self.task.dataset.segments.train[0] < self.start_time:
            raise ValueError("task.dataset.segments.train starts before start_time")
        if self.end_time and self.end_time < self.start_time:
            raise ValueError(f"end_time {self.end_time} is before start_time {self.start_time}")
        backtest, test_end = self.port_analysis_config.backtest, self.task.dataset.segments.test[1]
        if backtest.start_time and not backtest.end_time and test_end and backtest.start_time > test_end:
            raise ValueError(
                f"port_analysis_config.backtest.start_time {backtest.start_time} is after the end of "
                f"task.dataset.segments.test {test_end}, where the backtest ends without an end_time"
            )
        return self


def config_path() -> Path:
    """The config file in use: $KRNN_CONFIG, else configs/default.yaml."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a config file; relative paths in it are taken from the file's folder."""
    path = Path(path).resolve() if path else config_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys")
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    return _resolve_paths(config, path.parent)


def _describe(exc: ValidationError) -> str:
    """One line per problem, each naming the dotted key."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):  # name the tag key, e.g. source.kind
            loc.append(error["ctx"]["discriminator"].strip("'"))
        key = ".".join(loc) or "<root>"
        lines.append(f"{key}: {error['msg']}")
    return "; ".join(lines)


def _resolve_paths(config: PipelineConfig, base: Path) -> PipelineConfig:
    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    source, lake = config.source, config.warehouse
    if not isinstance(source, SyntheticSourceConfig):
        source = source.model_copy(update={"path": resolve(source.path)})
    return config.model_copy(
        update={
            "source": source,
            "qlib_init": config.qlib_init.model_copy(update={"provider_uri": resolve(config.qlib_init.provider_uri)}),
            "duckdb_path": config.duckdb_path and resolve(config.duckdb_path),
            "warehouse": lake and lake.model_copy(update={"data_path": resolve(lake.data_path)}),
            "model_dir": resolve(config.model_dir),
        }
    )


def warehouse_location(config: PipelineConfig) -> Path | DuckLake:
    """What krnn_core.warehouse.connect opens for this config: the DuckDB file or the DuckLake."""
    lake = config.warehouse
    return config.duckdb_path if lake is None else DuckLake(lake.catalog, lake.data_path, lake.schema_)


def synthetic_market(config: PipelineConfig) -> SyntheticMarket:
    """The embedded synthetic market the config describes."""
    source = config.source
    extra = {} if source.signal_strength is None else {"signal_strength": source.signal_strength}
    return SyntheticMarket(
        seed=source.seed,
        start=str(config.start_time),
        n_instruments=source.n_instruments,
        n_members=source.n_members,
        skip_largest=source.skip_largest,
        market=config.market,
        benchmark=config.benchmark,
        **extra,
    )


def market_source(config: PipelineConfig) -> MarketSource:
    """The source the config names, ready to refresh the pipeline's Qlib folder."""
    source = config.source
    if isinstance(source, QlibFolderSourceConfig):
        return QlibFolderSource(source.path, source.suspended_as_missing, source.change_in_percent)
    if isinstance(source, CsvSourceConfig):
        return CsvSource(source.path, config.market)
    return SyntheticSource(synthetic_market(config))


def segments(config: PipelineConfig) -> dict[str, tuple]:
    """`task.dataset.segments` as Qlib writes them: name -> (start, end)."""
    return config.task.dataset.segments.model_dump()


def backtest_config(config: PipelineConfig) -> BacktestConfig:
    """Qlib's port_analysis_config, the benchmark and qlib_init's region as the backtest's settings."""
    port = config.port_analysis_config
    return BacktestConfig(
        **port.strategy.kwargs,
        account=port.backtest.account,
        benchmark=config.benchmark,
        exchange=ExchangeConfig(**port.backtest.exchange_kwargs.model_dump()),
        region=config.qlib_init.region,
    )


def report_bounds(config: PipelineConfig) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """The report window: backtest start_time/end_time, by default the test segment (None = open end)."""
    backtest, test = config.port_analysis_config.backtest, config.task.dataset.segments.test
    end = backtest.end_time or test[1]
    return pd.Timestamp(backtest.start_time or test[0]), None if end is None else pd.Timestamp(end)
