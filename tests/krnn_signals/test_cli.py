import json
import re

import pytest

from krnn_core.warehouse import connect
from krnn_signals.cli import main


def test_signals_prints_the_top_of_the_last_day_as_stored(pipeline, capsys):
    main(["signals", "--top", "5", "--format", "json"])
    printed = json.loads(capsys.readouterr().out)
    with connect(pipeline.duckdb_path, read_only=True) as con:
        stored = con.execute(
            "SELECT instrument, score FROM signals WHERE datetime = (SELECT max(datetime) FROM signals) ORDER BY rank LIMIT 5"
        ).fetchall()
    assert [row["instrument"] for row in printed] == [instrument for instrument, _ in stored]
    assert [row["score"] for row in printed] == pytest.approx([score for _, score in stored], rel=1e-12)
    assert [row["rank"] for row in printed] == [1, 2, 3, 4, 5]
    assert {row["datetime"][:10] for row in printed} == {str(pipeline.task.dataset.segments.test[1])}


def test_a_day_without_signals_names_the_nearest_one(pipeline):
    with pytest.raises(SystemExit, match="no signals for 2022-07-02; the nearest day with signals is 2022-06-30"):
        main(["signals", "--date", "2022-07-02"])


def test_report_prints_ic_and_the_backtest(pipeline, capsys):
    main(["report"])
    out = capsys.readouterr().out
    with connect(pipeline.duckdb_path, read_only=True) as con:
        ic = con.execute("SELECT ic FROM ic_summary").fetchone()[0]
    assert re.search(rf"^\s+ic\s+{ic:.4f}$", out, re.MULTILINE)
    assert "excess_return_with_cost.annualized_return" in out
