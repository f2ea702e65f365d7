"""A small synthetic market and its pipeline config, set up before any test imports krnn_signals.

krnn_signals builds its partitions from the config at import time, so KRNN_CONFIG must point at
the test config first. The market is small enough for the whole chain to run in about a minute:
80 instruments (60 index members), 2021-01 to 2022-06, one quarterly model version for 2022Q2.
The chain's runs are recorded in a Dagster instance of its own (`dagster_home`) that a test can serve.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["tests.postgres"]  # the `postgres` fixture: a throwaway PostgreSQL cluster for the session

TEST_ROOT = Path(tempfile.mkdtemp(prefix="krnn-signals-tests-"))
# the instance's SQLite files take a few commits per event: in memory (tmpfs) where there is one, not on the disk
DAGSTER_HOME = Path(
    tempfile.mkdtemp(prefix="krnn-signals-dagster-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
)
TEST_CONFIG = {
    "qlib_init": {"provider_uri": "qlib_data", "region": "cn"},
    "source": {"kind": "synthetic", "seed": 11, "n_instruments": 80, "n_members": 60},
    "market": "csi300",
    "benchmark": "SH000300",
    "start_time": "2021-01-04",
    "duckdb_path": "krnn_signals.duckdb",
    "model_dir": "models",
    "task": {
        "model": {
            "class": "KRNN",
            "kwargs": {"n_epochs": 8, "early_stop": 3, "batch_size": 800, "lr": 0.002, "seed": 3},
        },
        "dataset": {
            "segments": {
                "train": ["2021-04-01", "2021-12-31"],
                "valid": ["2022-01-04", "2022-03-31"],
                "test": ["2022-04-01", "2022-06-30"],
            }
        },
    },
    "rolling": {"step": "quarterly", "rtype": "sliding"},
    "port_analysis_config": {"strategy": {"class": "TopkDropoutStrategy", "kwargs": {"topk": 20, "n_drop": 3}}},
}
(TEST_ROOT / "config.yaml").write_text(yaml.safe_dump(TEST_CONFIG))
os.environ["KRNN_CONFIG"] = str(TEST_ROOT / "config.yaml")


def pytest_sessionfinish(session, exitstatus):
    """The test market and its warehouse are some 35 MB: leave nothing behind in the temporary folder."""
    shutil.rmtree(TEST_ROOT, ignore_errors=True)
    shutil.rmtree(DAGSTER_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def test_config_path() -> Path:
    return TEST_ROOT / "config.yaml"


@pytest.fixture(autouse=True)
def no_dagster_instance_left_current():
    """Each test starts without the state storage of another test's Dagster instance current."""
    # A persistent instance (the `pipeline` fixture's, the schedule's tests') makes its state storage current when
    # entered and leaves it so when closed (Dagster 1.13.27); once the instance is collected, building any other
    # repository raises "Attempted to resolve undefined DagsterInstance weakref".
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture(scope="session")
def dagster_home() -> Path:
    """The Dagster instance that recorded the `pipeline` fixture's runs, as `make demo` records its own."""
    return DAGSTER_HOME


@pytest.fixture(scope="session")
def pipeline(test_config_path, dagster_home):
    """The test market materialized through Dagster up to the end of its test segment."""
    import dagster as dg

    from krnn_core.config import load_config
    from krnn_signals.demo import materialize_chain

    config = load_config(test_config_path)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        materialize_chain(instance, str(config.task.dataset.segments.test[1]), config)
    return config
