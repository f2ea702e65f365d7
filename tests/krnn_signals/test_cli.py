import json
import re

import pandas as pd
import pytest

from krnn_core.warehouse import connect
from krnn_signals.cli import main


def test_signals_prints_the_top_of_the_last_day_as_stored(pipeline, capsys):
    main(["signals", "--top", "5", "--format", "json"])
    printed = json.loads(capsys.readouterr().out)
    with connect(pipeline.duckdb_path, read_only=True) as con:
        stored = con.execute(
            "SELECT instrument, score FROM signals WHERE datetime = (SELECT max(datetime) FROM signals) "
            "ORDER BY rank LIMIT 5"
        ).fetchall()
    assert [(row["instrument"], row["score"]) for row in printed] == stored
    assert [row["rank"] for row in printed] == [1, 2, 3, 4, 5]
    assert {row["datetime"] for row in printed} == {str(pipeline.task.dataset.segments.test[1])}


def test_a_day_without_signals_names_the_nearest_one(pipeline):
    with pytest.raises(SystemExit, match="no signals for 2022-07-02; the nearest day with signals is 2022-06-30"):
        main(["signals", "--date", "2022-07-02"])


def test_a_malformed_date_is_refused_by_name(pipeline, capsys):
    with pytest.raises(SystemExit):
        main(["signals", "--date", "2022-13-01"])
    assert "'2022-13-01' is not a date of the form YYYY-MM-DD" in capsys.readouterr().err


def test_ic_over_a_window_matches_the_daily_ic_table(pipeline, capsys):
    main(["ic", "--start", "2022-05-02", "--end", "2022-05-31"])
    out = capsys.readouterr().out
    with connect(pipeline.duckdb_path, read_only=True) as con:
        daily = con.execute("SELECT ic FROM ic_daily WHERE datetime BETWEEN '2022-05-02' AND '2022-05-31'").df()["ic"]
    assert re.search(rf"^\s+ic\s+{daily.mean():.4f}$", out, re.MULTILINE)
    assert re.search(rf"^\s+icir\s+{daily.mean() / daily.std():.4f}$", out, re.MULTILINE)
    assert re.search(rf"^\s+days\s+{len(daily)}$", out, re.MULTILINE)


def test_models_lists_the_trained_version(pipeline, capsys):
    main(["models"])
    out = capsys.readouterr().out
    with connect(pipeline.duckdb_path, read_only=True) as con:
        (version,) = con.execute("SELECT model_version FROM model_versions").fetchone()
    assert version in out and "2022-04-01" in out


def test_export_writes_qlibs_prediction_format(pipeline, tmp_path, capsys):
    main(["export", str(tmp_path / "pred.pkl"), "--start", "2022-06-01"])
    pred = pd.read_pickle(tmp_path / "pred.pkl")
    assert list(pred.index.names) == ["datetime", "instrument"] and list(pred.columns) == ["score"]
    with connect(pipeline.duckdb_path, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM signals WHERE datetime >= '2022-06-01'").fetchone()[0]
    assert len(pred) == rows and pred.index.get_level_values(0).min() >= pd.Timestamp("2022-06-01")


def test_report_prints_ic_and_the_backtest(pipeline, capsys):
    main(["report"])
    out = capsys.readouterr().out
    with connect(pipeline.duckdb_path, read_only=True) as con:
        ic = con.execute("SELECT ic FROM ic_summary").fetchone()[0]
    assert re.search(rf"^\s+ic\s+{ic:.4f}$", out, re.MULTILINE)
    assert "excess_return_with_cost.annualized_return" in out


def test_search_refuses_a_day_that_is_not_a_retraining_period():
    with pytest.raises(SystemExit, match="2022-05-02 is not a retraining period; they are 2022-04-01, 2022-07-01"):
        main(["search", "--period", "2022-05-02"])
