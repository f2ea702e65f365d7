"""The DuckLake warehouse (catalog in the test session's PostgreSQL, Parquet files in a temporary folder): the readers'
SQL answers as on the DuckDB file, readers see committed snapshots, and two markets' backfills write it at once."""

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from krnn_core.config import load_config, warehouse_location
from krnn_core.features.store import ensure_schema, read_features
from krnn_core.reports.html import load_factor_report, write_html_report
from krnn_core.reports.views import ic_charts, ic_figures
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_core.signals.scoring import read_signals, signal_day_stats
from krnn_core.warehouse import DuckLake, connect
from krnn_signals.cli import main
from tests.conftest import TEST_CONFIG
from tests.fixtures import REPO_ROOT

# what the CLI prints, and the README's queries of the snapshot and of the features
CLI_COMMANDS = [
    ["signals", "--top", "10"],
    ["signals", "--date", "2022-05-10", "--format", "json"],
    ["ic"],
    ["ic", "--start", "2022-05-02", "--end", "2022-05-31"],
    ["models"],
    ["report", "--start", "2022-04-15"],
]
README_QUERIES = [
    "SELECT * FROM latest_signals LIMIT 20",
    "SELECT * FROM ic_summary",
    "SELECT datetime, ic, rank_ic, rank_ic_mean_20 FROM ic_daily ORDER BY datetime DESC LIMIT 20",
    "SELECT * FROM ic_decay ORDER BY horizon",
    "SELECT * FROM quantile_returns ORDER BY quantile",
    "SELECT model_version, period, train_start, valid_end, best_epoch, valid_ic FROM models",
    "SELECT * FROM backtest_summary",
]
FEATURE_QUERY = (
    "SELECT instrument, CLOSE0, VWAP0, VOLUME0, CLOSE5 FROM alpha360_features_named "
    "WHERE datetime = '2022-06-30' ORDER BY instrument LIMIT 5"
)
WINDOW = pd.Timestamp("2022-04-01"), pd.Timestamp("2022-06-30")


def _lake_config(root: Path, catalog: str, schema: str, base: dict) -> Path:
    """`base` config with its warehouse a DuckLake: catalog `catalog`, files under root/lake, tables in `schema`."""
    raw = copy.deepcopy(base)
    raw.pop("duckdb_path", None)
    raw["warehouse"] = {"kind": "ducklake", "catalog": catalog, "data_path": str(root / "lake"), "schema": schema}
    path = root / f"{schema}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _copy_into_lake(database: Path, lake: DuckLake) -> None:
    """Every table and view of a pipeline's DuckDB file into the lake's schema, as the pipeline would store them."""
    with connect(lake) as con:
        ensure_schema(con)  # the feature store's tables and views in DuckLake's types
        con.execute(f"ATTACH '{database}' AS source (READ_ONLY)")
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'source'").fetchall():
            if table.startswith("alpha360_"):
                con.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
            else:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM source.{table}")
        views = "SELECT sql FROM duckdb_views() WHERE database_name = 'source' AND view_name NOT LIKE 'alpha360_%'"
        for (sql,) in con.execute(views).fetchall():
            con.execute(sql)
        con.execute("DETACH source")


def _answers(config_file: Path, tmp_path: Path, capsys, monkeypatch) -> dict:
    """What every reader gets from the warehouse of `config_file`: CLI output, README queries, reports, features."""
    monkeypatch.setenv("KRNN_CONFIG", str(config_file))
    answers = {}
    for command in CLI_COMMANDS:
        main(command)
        answers[" ".join(command)] = capsys.readouterr().out
    main(["export", str(tmp_path / "pred.pkl")])
    answers["export"] = (capsys.readouterr().out.split(" to ")[0], pd.read_pickle(tmp_path / "pred.pkl"))
    warehouse = warehouse_location(load_config(config_file))
    with open_snapshot(warehouse) as con:
        answers |= {sql: con.execute(sql).df() for sql in README_QUERIES}
        report = load_factor_report(con, *(day.date() for day in WINDOW))
        answers |= {"ic figures": ic_figures(report), "ic charts": ic_charts(report)}
        answers |= {"read_signals": read_signals(con, *WINDOW), "signal_day_stats": signal_day_stats(con, *WINDOW)}
        answers["html"] = write_html_report(con, None, None, tmp_path / "report.html").read_text()
    with connect(warehouse, read_only=True) as con:
        matrix = read_features(con, *WINDOW, with_labels=True)
        answers |= {"features": (matrix.index, matrix.x, matrix.y), FEATURE_QUERY: con.execute(FEATURE_QUERY).df()}
    return answers


def test_every_reader_gets_the_same_answers_from_the_duckdb_file_and_from_ducklake(
    pipeline, postgres, tmp_path, capsys, monkeypatch
):
    lake_file = _lake_config(tmp_path, postgres.create_database("copy_lake"), "copied", TEST_CONFIG)
    raw = yaml.safe_load(lake_file.read_text())
    raw["qlib_init"]["provider_uri"], raw["model_dir"] = str(pipeline.qlib_init.provider_uri), str(pipeline.model_dir)
    lake_file.write_text(yaml.safe_dump(raw))
    _copy_into_lake(pipeline.duckdb_path, warehouse_location(load_config(lake_file)))

    on_file = _answers(Path(os.environ["KRNN_CONFIG"]), tmp_path, capsys, monkeypatch)
    on_lake = _answers(lake_file, tmp_path, capsys, monkeypatch)
    assert on_file.keys() == on_lake.keys()
    for question, answer in on_file.items():
        _assert_same(question, answer, on_lake[question])
    assert len(on_file["read_signals"]) > 3000 and on_file["features"][1].shape[1] == 360  # real answers compared


def _assert_same(question: str, expected, got) -> None:
    """Equal answers: frames and series by value and dtype, arrays exactly, the rest with ==."""
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, obj=question)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected, obj=question)
    elif question == "export":
        assert got[0] == expected[0], question
        pd.testing.assert_frame_equal(got[1], expected[1], obj=question)
    elif isinstance(expected, tuple):
        index, x, y = expected
        assert got[0].equals(index), question
        np.testing.assert_array_equal(got[1], x, err_msg=question)
        np.testing.assert_array_equal(got[2], y, err_msg=question)
    else:
        assert got == expected, question


def test_a_reader_keeps_its_committed_snapshot_while_writers_commit_and_never_waits(postgres, tmp_path):
    lake = DuckLake(postgres.create_database("snapshot_lake"), tmp_path / "lake", "market")
    with connect(lake) as con:
        con.execute("CREATE TABLE signals AS SELECT 'SH600000' AS instrument, 1.0 AS score")
    with open_snapshot(lake) as reader, connect(lake) as writer:
        assert reader.execute("SELECT count(*), sum(score) FROM signals").fetchone() == (1, 1.0)
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM signals")
        writer.execute("INSERT INTO signals VALUES ('SZ000001', 2.0), ('SZ000002', 3.0)")
        assert reader.execute("SELECT count(*), sum(score) FROM signals").fetchone() == (1, 1.0)  # not uncommitted
        writer.execute("COMMIT")
        assert reader.execute("SELECT count(*), sum(score) FROM signals").fetchone() == (1, 1.0)  # its snapshot
        with open_snapshot(lake) as later:
            assert later.execute("SELECT count(*), sum(score) FROM signals").fetchone() == (2, 5.0)


def test_a_reader_of_a_market_nobody_wrote_is_told_so(postgres, tmp_path):
    catalog = postgres.create_database("one_market_lake")
    with connect(DuckLake(catalog, tmp_path / "lake", "written")) as con:
        con.execute("CREATE TABLE signals AS SELECT 1.0 AS score")
    lake = DuckLake(catalog, tmp_path / "lake", "never_written")
    with pytest.raises(FileNotFoundError, match="schema never_written of the DuckLake .* does not exist yet"):
        open_snapshot(lake)


# one market's backfill: two months in one run, then three days in a run each, every run writing the lake
BACKFILL = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from krnn_signals.definitions import CONFIG
    from krnn_signals.demo import RANGE_END, RANGE_START, run_job

    print("ready", flush=True)
    sys.stdin.readline()  # both markets start together
    with dg.DagsterInstance.ephemeral() as instance:
        run_job("market_data_job", instance, CONFIG, tags={RANGE_START: "2021-01-04", RANGE_END: "2021-02-26"})
        for day in ("2021-03-01", "2021-03-02", "2021-03-03"):
            run_job("market_data_job", instance, CONFIG, partition_key=day)
    """
)
MARKET = copy.deepcopy(TEST_CONFIG) | {
    "source": {"kind": "synthetic", "seed": 5, "n_instruments": 30, "n_members": 20},
    "end_time": "2021-03-31",
}


def test_two_markets_backfill_one_lake_at_once_without_a_lock_error(postgres, tmp_path):
    catalog = postgres.create_database("shared_lake")
    configs = {}
    for schema in ("market_a", "market_b"):  # one lake, a Qlib folder each
        market = MARKET | {"qlib_init": {"provider_uri": str(tmp_path / schema / "qlib_data")}}
        configs[schema] = _lake_config(tmp_path, catalog, schema, market)
    workers = {schema: _start_backfill(config) for schema, config in configs.items()}
    for worker in workers.values():
        assert worker.stdout.readline() == "ready\n"
    for worker in workers.values():
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = {schema: worker.communicate(timeout=300)[0] for schema, worker in workers.items()}

    for schema, worker in workers.items():
        assert worker.returncode == 0, outputs[schema][-3000:]
        assert "lock" not in outputs[schema].lower() and "conflict" not in outputs[schema].lower()
    commits = _commits_by_schema(warehouse_location(load_config(configs["market_a"])))
    assert commits.count("market_a") >= 4 and commits.count("market_b") >= 4
    assert _interleaved(commits), commits
    features = {}
    for schema, config in configs.items():
        with connect(warehouse_location(load_config(config)), read_only=True) as con:
            features[schema] = read_features(con, pd.Timestamp("2021-01-04"), pd.Timestamp("2021-03-03"), True)
    days = features["market_a"].index.get_level_values("datetime").unique()
    assert (days[0], days[-1], len(days)) == (
        pd.Timestamp("2021-01-04"),
        pd.Timestamp("2021-03-03"),
        38,
    )  # less the Spring Festival
    assert features["market_a"].index.equals(features["market_b"].index)  # one synthetic market, written twice
    np.testing.assert_array_equal(features["market_a"].x, features["market_b"].x)


def _start_backfill(config: Path) -> subprocess.Popen:
    """A process that backfills `config`'s market once told to go."""
    env = os.environ | {"KRNN_CONFIG": str(config)}
    return subprocess.Popen(
        [sys.executable, "-c", BACKFILL],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _commits_by_schema(lake: DuckLake) -> list[str]:
    """The schema each data-writing commit of the lake went to, in commit order."""
    with connect(lake, read_only=True) as con:
        tables = dict(
            con.execute(
                "SELECT t.table_id::VARCHAR, s.schema_name FROM __ducklake_metadata_lake.ducklake_table t "
                "JOIN __ducklake_metadata_lake.ducklake_schema s USING (schema_id)"
            ).fetchall()
        )
        changes = con.execute("SELECT changes FROM lake.snapshots() ORDER BY snapshot_id").fetchall()
    written = ("tables_inserted_into", "tables_deleted_from", "inlined_insert", "inlined_delete")
    schemas = []
    for (change,) in changes:
        ids = [table for kind in written for table in change.get(kind, [])]
        if ids:
            schemas.append(tables[ids[0]])
    return schemas


def _interleaved(commits: list[str]) -> bool:
    """Whether each schema committed again after the other had: the two wrote during each other's runs."""
    switches = sum(1 for before, after in zip(commits, commits[1:], strict=False) if before != after)
    return switches >= 3
