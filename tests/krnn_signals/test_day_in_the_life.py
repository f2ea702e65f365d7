"""A trading day run by the real Dagster daemon (`dagster-daemon run`, as in `make serve`), not in process.

A tiny live CSV market (no `end_time`) is prepared through 2024-05-30 by the CLI's demo. Then the source
gains 2024-05-31, the last trading day of May: a new row per instrument and the market's clock ($KRNN_NOW)
past its close. The schedule (every minute here) runs the day, its signals are served, its checks pass,
and the sensor refreshes the reports and trains June's model. Then 2024-06-03 arrives with one broken
file: the run fails, an alert names the file, and 2024-05-31's signals are still served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import yaml

from assets.names import LocationNames
from krnn_core.signals import queries
from krnn_core.signals.read_snapshot import open_snapshot

REPO = Path(__file__).resolve().parents[2]
CODES = ("SH000300", "SH600001", "SH600002", "SH600003", "SH600004", "SH600005", "SZ000001", "SZ000002")
DAYS = pd.bdate_range("2024-01-02", "2024-06-03")  # the feed's sessions: every weekday
PREPARED, GOOD_DAY, BROKEN_DAY = "2024-05-30", "2024-05-31", "2024-06-03"
BROKEN_FILE = "SH600003.csv"
CONFIG = {
    "qlib_init": {"provider_uri": "qlib_data", "region": "cn"},
    "source": {"kind": "csv", "path": "csv"},
    "start_time": "2024-01-02",
    "schedule_cron": "* * * * *",
    "duckdb_path": "krnn_signals.duckdb",
    "model_dir": "models",
    "task": {
        "model": {"kwargs": {"cnn_dim": 4, "rnn_dim": 4, "rnn_dups": 1, "rnn_layers": 1, "n_epochs": 1, "seed": 3}},
        "dataset": {
            "segments": {
                "train": ["2024-01-02", "2024-03-29"],
                "valid": ["2024-04-01", "2024-04-30"],
                "test": ["2024-05-01", None],
            }
        },
    },
    "rolling": {"step": "monthly"},
    "port_analysis_config": {"strategy": {"class": "TopkDropoutStrategy", "kwargs": {"topk": 3, "n_drop": 1}}},
}
# the project's instance, with sensors and schedules evaluated on threads so one waits for none of the others
INSTANCE_SETTINGS = {"sensors": {"use_threads": True, "num_workers": 4}, "schedules": {"use_threads": True}}
NAMES = LocationNames("csi300")  # CONFIG names no market: the default one's
DAILY_JOB, REPORTS_JOB, MODEL_JOB = (NAMES.named(job) for job in ("daily_signals_job", "reports_job", "krnn_model_job"))
BY_SENSOR = {"dagster/sensor_name": NAMES.named("after_daily_signals")}
# the checks of a day's partitions: market data, then signals
DAILY_CHECKS = {"bars_are_consistent", "no_unexplained_jumps", "universe_is_covered"}
DAILY_CHECKS |= {"signals_cover_universe", "signals_are_spread", "model_is_recent"}
# for each awaited run, from the moment the daemon starts: generous, as the machine may be shared
TIMEOUT_S = 600


def test_a_trading_day_run_by_the_daemon(tmp_path, monkeypatch):
    home, env = _setup(tmp_path)
    # the instance's event log storage (krnn_signals/event_log.py) finds its folder by $DAGSTER_HOME, as the
    # daemon's processes do: the test reads the same instance (make test exports the project's DAGSTER_HOME)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    _prepare(tmp_path, env)
    served = _a_good_day(tmp_path, home, env)
    _a_broken_day(tmp_path, home, env)
    pd.testing.assert_frame_equal(_top_signals(tmp_path), served)  # the good day's signals are still served


def _prepare(root: Path, env: dict[str, str]) -> None:
    """The whole chain through PREPARED by the CLI's demo, before any daemon runs."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "krnn_signals.cli", "demo"], cwd=REPO, env=env | _clock(PREPARED), check=True)
    print(f"prepared through {PREPARED} by the CLI's demo in {time.monotonic() - started:.0f} s")
    assert _top_signals(root)["datetime"].iloc[0] == pd.Timestamp(PREPARED)
    assert _report_ends(root) == ("2024-05-28", PREPARED)  # the IC of a day needs the close two days later


def _a_good_day(root: Path, home: Path, env: dict[str, str]) -> pd.DataFrame:
    """GOOD_DAY's rows and clock: the schedule's run, its checks, the reports and June's model; its signals."""
    _append_rows(root / "csv", GOOD_DAY)
    with dg.DagsterInstance.from_config(str(home)) as instance, _daemon(root, env | _clock(GOOD_DAY)) as wait:
        daily = wait(lambda: _run(instance, DAILY_JOB, _day(GOOD_DAY)), "the schedule's run of the good day")
        assert daily.status == dg.DagsterRunStatus.SUCCESS, f"daily run {daily.run_id} of {GOOD_DAY}: {daily.status}"
        reports = wait(lambda: _run(instance, REPORTS_JOB, BY_SENSOR), "the sensor's reports_job run")
        model = wait(lambda: _run(instance, MODEL_JOB, BY_SENSOR), "the sensor's krnn_model_job run")
        assert (reports.status, model.status) == (dg.DagsterRunStatus.SUCCESS,) * 2
        evaluations = _check_evaluations(instance, daily.run_id)
    assert daily.tags["dagster/schedule_name"] == NAMES.named("daily_signals_schedule")
    assert model.tags["dagster/partition"] == "2024-06-01"  # June's model, trained on May's last day
    assert {name for name, partition, _ in evaluations if partition == GOOD_DAY} == DAILY_CHECKS
    assert all(passed for _, partition, passed in evaluations if partition == GOOD_DAY), evaluations
    served = _top_signals(root)
    assert served["datetime"].iloc[0] == pd.Timestamp(GOOD_DAY)
    assert set(served["instrument"]) == set(CODES) and served["score"].notna().all()
    with open_snapshot(root / "krnn_signals.duckdb") as con:
        periods = sorted(str(period) for period in queries.model_table(con)["period"])
    assert periods == ["2024-05-01", "2024-06-03"]  # a version is named by the first trading day of its period
    assert _report_ends(root) == ("2024-05-29", GOOD_DAY)
    return served


def _a_broken_day(root: Path, home: Path, env: dict[str, str]) -> None:
    """BROKEN_DAY's rows, one file broken, and its clock: the schedule's run fails and an alert names the file."""
    _append_rows(root / "csv", BROKEN_DAY, broken=BROKEN_FILE)
    with dg.DagsterInstance.from_config(str(home)) as instance, _daemon(root, env | _clock(BROKEN_DAY)) as wait:
        day = _day(BROKEN_DAY)
        failed = wait(lambda: _run(instance, DAILY_JOB, day), "the schedule's run of the broken day")
        assert failed.status == dg.DagsterRunStatus.FAILURE, f"run {failed.run_id} of {BROKEN_DAY}: {failed.status}"
        alert = wait(lambda: _alert(root, failed.run_id), "the run_failure_alerts sensor's alert")
    assert str(root / "csv" / BROKEN_FILE) in alert and "close 'twelve' is not a number" in alert


def _setup(root: Path) -> tuple[Path, dict[str, str]]:
    """The feed through PREPARED, the config, a Dagster home with the project's instance settings; the env."""
    _write_feed(root / "csv", PREPARED)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    home = root / "dagster_home"
    home.mkdir()
    settings = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text()) | INSTANCE_SETTINGS
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    env = os.environ | {"DAGSTER_HOME": str(home), "KRNN_CONFIG": str(root / "config.yaml"), "PYTHONPATH": str(REPO)}
    return home, env


def _clock(day: str) -> dict[str, str]:
    """The market's clock an hour after `day`'s close."""
    return {"KRNN_NOW": f"{day}T16:00"}


def _bars(code: str) -> pd.DataFrame:
    """A random walk of daily bars over DAYS, the same for a code on every call."""
    rng = np.random.default_rng(CODES.index(code))
    close = 10 * np.cumprod(1 + rng.normal(0, 0.01, len(DAYS)))
    open_ = close * (1 + rng.normal(0, 0.003, len(DAYS)))
    frame = pd.DataFrame({"open": open_, "close": close}, index=DAYS.rename("date"))
    frame["high"], frame["low"] = frame.max(axis=1) * 1.004, frame.min(axis=1) * 0.996
    frame["volume"] = rng.integers(100_000, 1_000_000, len(DAYS)).astype(float)
    frame["amount"] = frame["volume"] * (open_ + close) / 2
    return frame[["open", "high", "low", "close", "volume", "amount"]].round(4)


def _write_feed(folder: Path, through: str) -> None:
    folder.mkdir()
    for code in CODES:
        _bars(code).loc[:through].to_csv(folder / f"{code}.csv", date_format="%Y-%m-%d")


def _append_rows(folder: Path, day: str, broken: str | None = None) -> None:
    """Drop in `day`'s row of every file, the one of `broken` with a word where its close belongs."""
    for code in CODES:
        row = _bars(code).loc[[day]]
        if f"{code}.csv" == broken:
            row = row.astype(object).assign(close="twelve")
        with (folder / f"{code}.csv").open("a") as handle:
            row.to_csv(handle, header=False, date_format="%Y-%m-%d")


@contextmanager
def _daemon(root: Path, env: dict[str, str]) -> Iterator[Callable]:
    """`dagster-daemon run` on the workspace (as `make serve` runs it, less the webserver) in its own process group,
    stopped with all it started; its log and the runs printed on failure. Yields wait(probe, what): `probe()`'s
    first answer that is not None, polled for up to TIMEOUT_S from the daemon's start."""
    log = root / f"daemon_{env['KRNN_NOW'][:10]}.log"
    command = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(REPO / "workspace.yaml")]
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait(probe: Callable, what: str):
        while (answer := probe()) is None:
            if process.poll() is not None:
                raise AssertionError(f"dagster-daemon exited ({process.returncode}) while waiting for {what}")
            if time.monotonic() - started > TIMEOUT_S:
                raise AssertionError(f"no {what} within {TIMEOUT_S} s of starting dagster-daemon")
            time.sleep(1)
        print(f"{what}: {time.monotonic() - started:.0f} s after the daemon's start")
        return answer

    try:
        yield wait
    except BaseException:
        print(f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-100:]) + "\n--- runs\n" + _runs(env))
        raise
    finally:
        _stop_group(process)


def _runs(env: dict[str, str]) -> str:
    """Every run of the instance with its partition and status, and the errors of its failed steps."""
    lines = []
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for run in instance.get_runs():
            lines.append(f"{run.job_name} {run.tags.get('dagster/partition', '')} {run.status.value} {run.run_id}")
            for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
                lines.append(f"    {record.event_log_entry.dagster_event.message}")
    return "\n".join(lines)


def _stop_group(process: subprocess.Popen) -> None:
    """Stop the process group as Ctrl-C would, then kill what is left of it; check that nothing survives."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while _group_members(process.pid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.2)
    process.wait(timeout=10)
    assert not _group_members(process.pid), f"processes of dagster-daemon left running: {_group_members(process.pid)}"


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _day(day: str) -> dict[str, str]:
    return {"dagster/partition": day}


def _run(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> dg.DagsterRun | None:
    """The latest finished run of `job` with `tags`, None while there is none."""
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    runs = instance.get_runs(dg.RunsFilter(job_name=job, tags=tags, statuses=finished), limit=1)
    return runs[0] if runs else None


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str | None, bool]]:
    """(check, partition, passed) of every check the run evaluated."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return [(evaluation.check_name, evaluation.partition, evaluation.passed) for evaluation in evaluations]


def _alert(root: Path, run_id: str) -> str | None:
    """The message of the alert raised for the run, read from the snapshot the CLI reads."""
    with open_snapshot(root / "krnn_signals.duckdb") as con:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        rows = (
            con.execute("SELECT message FROM alerts WHERE run_id = ?", [run_id]).fetchall()
            if "alerts" in tables
            else []
        )
    return rows[0][0] if rows else None


def _report_ends(root: Path) -> tuple[str, str]:
    """The last day of the daily IC and of the backtest in the snapshot."""
    with open_snapshot(root / "krnn_signals.duckdb") as con:
        ends = con.execute("SELECT (SELECT max(datetime) FROM ic_daily), (SELECT max(datetime) FROM backtest_daily)")
        return tuple(str(day) for day in ends.fetchone())


def _top_signals(root: Path) -> pd.DataFrame:
    """The last day's signals as `krnn-signals signals` reads them."""
    with open_snapshot(root / "krnn_signals.duckdb") as con:
        return queries.top_signals(con, None, top=len(CODES))
