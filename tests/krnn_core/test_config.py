from pathlib import Path

import pandas as pd
import pytest
import yaml

from krnn_core.config import DEFAULT_CONFIG, ConfigError, load_config, warehouse_location
from krnn_core.warehouse import DuckLake
from tests.fixtures import CN_TINY_2019

LAKE = {"kind": "ducklake", "catalog": "host=db dbname=lake", "data_path": "../lake", "schema": "csi300"}


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _default() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def _segment(name: str, window: list[str]):
    return lambda raw: raw["task"]["dataset"]["segments"].update({name: window})


def _kwargs(**kwargs):
    return lambda raw: raw["task"]["model"]["kwargs"].update(kwargs)


def _backtest(**keys):
    return lambda raw: raw["port_analysis_config"]["backtest"].update(keys)


def _exchange(**kwargs):
    return lambda raw: raw["port_analysis_config"]["backtest"]["exchange_kwargs"].update(kwargs)


def _cron_at(cron: str):
    return lambda raw: raw.update(schedule_cron=cron)


def _strategy(**kwargs):
    return lambda raw: raw["port_analysis_config"]["strategy"].update(kwargs=kwargs)


def test_default_config_loads_with_paths_resolved_from_its_folder():
    config = load_config(DEFAULT_CONFIG)
    assert config.market == "csi300"
    assert config.task.model.kwargs.rnn_dups == 2
    assert config.schedule_cron == "0 18 * * 1-5"  # Asia/Shanghai, three hours after the close
    assert config.duckdb_path == (DEFAULT_CONFIG.parent.parent / "data" / "krnn_signals.duckdb").resolve()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda raw: raw["task"]["model"]["kwargs"].update(rnn_dim="wide"), "task.model.kwargs.rnn_dim"),
        (lambda raw: raw["task"]["model"]["kwargs"].update(hidden_size=64), "task.model.kwargs.hidden_size"),
        (_kwargs(cnn_kernel_size=4), "task.model.kwargs.cnn_kernel_size: Value error, cnn_kernel_size=4 must be"),
        (_kwargs(fea_dim=7), "task.model.kwargs.fea_dim: Value error, fea_dim=7 must divide the 360"),
        (_kwargs(lr=0), "task.model.kwargs.lr: Value error, lr=0.0 must be positive"),
        (_kwargs(metric="sharpe"), "task.model.kwargs.metric: Value error, metric='sharpe' is not one of"),
        (lambda raw: raw["source"].update(kind="bloomberg"), "source.kind"),
        (lambda raw: raw["rolling"].update(step="weekly"), "rolling.step"),
        (lambda raw: raw.pop("duckdb_path"), "duckdb_path"),
        (lambda raw: raw.update(warehouse=LAKE), "give either duckdb_path (a DuckDB file) or warehouse (a DuckLake)"),
        (lambda raw: raw.pop("duckdb_path") and raw.update(warehouse=LAKE | {"schema": "CSI-300"}), "warehouse.schema"),
        (lambda raw: raw.pop("duckdb_path") and raw.update(warehouse=LAKE | {"catalog": None}), "warehouse.catalog"),
        (lambda raw: raw["task"]["dataset"]["segments"].update(valid=["2021-01-04", "2021-02-01"]), "segments"),
        (lambda raw: raw.update(markets="csi500"), "markets: Extra inputs are not permitted"),
        (lambda raw: raw.update(monitoring={"min_coverage": 1.5}), "monitoring.min_coverage"),
        (_cron_at("0 18 * *"), "schedule_cron: Value error, '0 18 * *' is not a cron string of 5 fields"),
        (_cron_at("0 24 * * 1-5"), "schedule_cron: Value error, '0 24 * * 1-5' is not a cron string: hour '24'"),
        (_cron_at("0 18 * * 1-8"), "schedule_cron: Value error, '0 18 * * 1-8' is not a cron string: day of week"),
        (lambda raw: raw.update(monitoring={"signals_deadline_cron": "30 19h * * *"}), "signals_deadline_cron: Value"),
        (_segment("train", ["2023-12-29", "2023-01-03"]), "segments.train: Value error, starts 2023-12-29 after"),
        (_segment("valid", ["2024-06-28", "2024-01-02"]), "segments.valid: Value error, starts 2024-06-28 after"),
        (_segment("test", ["2024-12-31", "2024-07-01"]), "segments.test: Value error, starts 2024-12-31 after"),
        (_segment("valid", ["2023-12-01", "2024-06-28"]), "segments.valid: Value error, starts 2023-12-01, not after"),
        (_segment("test", ["2024-06-28", "2024-12-31"]), "segments.test: Value error, starts 2024-06-28, not after"),
        (_segment("test", ["2022-01-03", "2022-06-30"]), "segments.test: Value error, starts 2022-01-03, not after"),
        (_segment("train", ["2023-01-03", "2023-02-30"]), "task.dataset.segments.train.1"),
        (_backtest(start_time="2024-12-31", end_time="2024-07-01"), "backtest.end_time: Value error, 2024-07-01"),
        (_backtest(start_time="2025-03-03"), "port_analysis_config.backtest.start_time 2025-03-03 is after"),
        (_strategy(topk=5, n_drop=6), "strategy.kwargs: Value error, needs 1 <= topk"),
        (_strategy(topk=0, n_drop=0), "got topk 0 and n_drop 0"),
        (_strategy(topk=50, n_drop=-1), "got topk 50 and n_drop -1"),
        (_strategy(topk=3), "got topk 3 and n_drop 5"),
        (_strategy(top_k=50), "port_analysis_config.strategy.kwargs.top_k"),
        (_exchange(deal_price="vwap"), "exchange_kwargs.deal_price: Value error, deal_price='vwap' is not one of"),
        (_exchange(open_cost="cheap"), "port_analysis_config.backtest.exchange_kwargs.open_cost"),
        (lambda raw: raw.update(name="csi-500"), "name: Value error, 'csi-500' cannot name the code location"),
        (lambda raw: raw.update(market="SH.A"), "name: Value error, 'SH.A' cannot name the code location (by default"),
        (lambda raw: raw["source"].update(skip_largest=100), "skip_largest 100 + n_members 300 is more than n_inst"),
        (lambda raw: raw.update(ensemble={"seeds": 0}), "ensemble.seeds: Value error, 0 is not a count of seeds"),
        (lambda raw: raw.update(ensemble={"seeds": [1, 2]}), "ensemble.seeds: Value error, [1, 2] is not a count"),
        (lambda raw: raw.update(ensemble={"combine": "max"}), "ensemble.combine: Input should be 'zscore' or 'rank'"),
        (lambda raw: raw.update(search={"space": {"rnn_dim": [8, 0]}}), "search.space.rnn_dim: Value error, rnn_dim=0"),
        (
            lambda raw: raw.update(search={"space": {"dropout": []}}),
            "search.space.dropout: Value error, needs at least",
        ),
        (lambda raw: raw.update(search={"space": {"hidden_size": [64]}}), "search.space.hidden_size: Extra inputs"),
        (lambda raw: raw.update(search={"trials": 0}), "search.trials"),
    ],
)
def test_a_bad_config_is_refused_naming_file_and_key(tmp_path, edit, named):
    raw = _default()
    edit(raw)
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, raw))
    assert named in str(error.value)
    assert str(tmp_path / "config.yaml") in str(error.value)


def test_a_ducklake_warehouse_resolves_its_data_path_from_the_config_folder(tmp_path):
    raw = _default()
    del raw["duckdb_path"]
    raw["warehouse"] = LAKE
    (tmp_path / "configs").mkdir()
    config = load_config(_write(tmp_path / "configs", raw))
    assert config.duckdb_path is None
    assert warehouse_location(config) == DuckLake("host=db dbname=lake", tmp_path / "lake", "csi300")
    assert warehouse_location(load_config(DEFAULT_CONFIG)) == load_config(DEFAULT_CONFIG).duckdb_path


def test_the_location_is_named_after_the_market_unless_the_config_names_it(tmp_path):
    assert load_config(DEFAULT_CONFIG).name == "csi300"
    raw = _default() | {"market": "csi500"}
    assert load_config(_write(tmp_path, raw)).name == "csi500"
    assert load_config(_write(tmp_path, raw | {"name": "csi500_live"})).name == "csi500_live"


def test_ensembles_and_search_are_off_by_default():
    config = load_config(DEFAULT_CONFIG)
    assert config.ensemble.seeds == 1
    assert config.search.space.rnn_dim[-1] >= 64 and config.search.space.cnn_dim[-1] >= 64


def test_unreadable_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("market: [csi300\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_a_qlib_folder_source_resolves_its_path(tmp_path):
    from krnn_core.config import market_source
    from krnn_core.data.sources.qlib_folder import QlibFolderSource

    raw = _default()
    raw["source"] = {"kind": "qlib_folder", "path": "tiny", "suspended_as_missing": False}
    (tmp_path / "tiny").symlink_to(CN_TINY_2019)
    config = load_config(_write(tmp_path, raw))
    assert market_source(config) == QlibFolderSource(
        CN_TINY_2019, suspended_as_missing=False
    )  # resolved from the config


def test_a_csv_source_needs_a_path_and_names_it(tmp_path):
    raw = _default()
    raw["source"] = {"kind": "csv"}
    with pytest.raises(ConfigError, match="source.csv.path"):
        load_config(_write(tmp_path, raw))


def test_a_csv_row_dated_2099_adds_no_session(tmp_path):
    from krnn_core.config import market_source

    (tmp_path / "csv").mkdir()
    rows = "".join(f"{day},10,11,9,10,100\n" for day in ("2024-03-01", "2024-03-05", "2099-01-05"))
    (tmp_path / "csv" / "SH600001.csv").write_text("date,open,high,low,close,volume\n" + rows)
    raw = _default()
    raw["source"] = {"kind": "csv", "path": "csv"}
    raw["start_time"] = "2024-03-01"
    raw["task"]["dataset"]["segments"] = {
        "train": ["2024-03-01", "2024-03-01"],
        "valid": ["2024-03-04", "2024-03-04"],
        "test": ["2024-03-05", None],
    }
    config = load_config(_write(tmp_path, raw))
    assert list(market_source(config).trading_days()) == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-05")]


def test_the_cli_loads_a_config_without_importing_torch():
    import subprocess
    import sys

    code = "import sys, krnn_signals.cli, krnn_core.config as c; c.load_config(); print('torch' in sys.modules)"
    root = DEFAULT_CONFIG.parent.parent
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert run.stdout.strip() == "False"  # a query answers without torch's seconds of import
