import os
import subprocess
import sys
from pathlib import Path

from krnn_signals.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def test_dagster_validates_the_workspace():
    env = os.environ | {"DAGSTER_HOME": str(ROOT / "dagster_home")}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location krnn_signals.definitions" in result.stdout + result.stderr


def test_every_stage_is_an_asset_and_the_daily_job_ends_with_signals():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "qlib_market_data",
        "alpha360_features",
        "alpha360_labels",
        "krnn_model",
        "signals",
        "ic_report",
        "backtest_report",
    }
    job = defs.resolve_job_def("daily_signals_job")
    assert {node.name for node in job.graph.node_defs} >= {"qlib_market_data", "alpha360_features", "signals"}
