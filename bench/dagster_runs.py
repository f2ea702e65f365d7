"""Run a job of the code location the way the daemon does, for the benches that time whole Dagster runs.

A bench writes its config and a Dagster instance into a scratch folder, starts the code location's
gRPC server there (`dagster api grpc`, as `dagster dev` and the daemon serve it), and launches a run
with `dagster job launch`. The instance uses Dagster's DefaultRunCoordinator: the run goes straight
to the run launcher, as the daemon's queue hands a dequeued run to it, so no dequeue interval is
timed. The launcher starts the run worker process (`dagster api execute_run`), which runs the job's
executor. A run's wall time is read back from the instance: its creation to its end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
LOCATION = "krnn_signals"
# the project's pools (dagster_home/dagster.yaml), so steps queue on them as in the project's instance
INSTANCE = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text()) | {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
}


def bench_config(scratch: Path, source: Path, **changes) -> Path:
    """configs/csi300_2015_2019.yaml with its data under `scratch`, its source `source`, top-level keys changed."""
    scratch.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((ROOT / "configs" / "csi300_2015_2019.yaml").read_text())
    raw["qlib_init"]["provider_uri"] = str(scratch / "qlib_data")
    raw["source"]["path"] = str(source)
    raw |= {"duckdb_path": str(scratch / "krnn_signals.duckdb"), "model_dir": str(scratch / "models")} | changes
    (scratch / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return scratch / "config.yaml"


def run_env(scratch: Path, config: Path) -> dict[str, str]:
    """The environment of every Dagster process of the bench: its instance, its config, this checkout."""
    home = scratch / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(INSTANCE))
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {"DAGSTER_HOME": str(home), "KRNN_CONFIG": str(config), "PYTHONPATH": pythonpath}


@contextmanager
def code_server(scratch: Path, env: dict[str, str], timeout_s: float = 180) -> Iterator[Path]:
    """The code location served over a socket until the block ends; yields a workspace file that points at it."""
    socket = scratch / "grpc.sock"
    command = [DAGSTER, "api", "grpc", "-m", "krnn_signals.definitions", "-d", str(ROOT), "-s", str(socket)]
    with open(scratch / "code_server.log", "w") as log:  # its output and its runs' (a run worker is its child)
        server = subprocess.Popen([*command, "--location-name", LOCATION], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        _wait_healthy(socket, env, server, timeout_s)
        workspace = scratch / "workspace.yaml"
        grpc = {"socket": str(socket), "location_name": LOCATION}
        workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": grpc}]}))
        yield workspace
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # seen under heavy load: a server that never finishes stopping
            server.kill()
            server.wait()


def _wait_healthy(socket: Path, env: dict[str, str], server: subprocess.Popen, timeout_s: float) -> None:
    """Wait until the server answers its health check; fail if it exits or takes longer than `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the code server exited with {server.returncode}")
        if socket.exists():
            check = [DAGSTER, "api", "grpc-health-check", "-s", str(socket)]
            if subprocess.run(check, env=env, capture_output=True).returncode == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the code server did not answer within {timeout_s} s")


def launch(workspace: Path, env: dict[str, str], job: str, tags: dict[str, str]) -> str:
    """Launch one run of `job` with `tags` through the instance's run launcher; its run id.

    The run gets the job's run config for its partitions, as the schedule's and the backfill's runs do
    (`dagster job launch` alone would give none).
    """
    from assets.names import LocationNames
    from krnn_core.config import load_config
    from krnn_signals.jobs import QUIET_CONSOLE  # the trading-day jobs' config: the same for every partition

    run_id = str(uuid.uuid4())
    job = LocationNames.of(load_config(env["KRNN_CONFIG"])).named(job)  # as the code location names it
    command = [DAGSTER, "job", "launch", "-w", str(workspace), "-j", job, "--tags", json.dumps(tags)]
    command += ["--config-json", json.dumps(QUIET_CONSOLE)]
    done = subprocess.run([*command, "--run-id", run_id], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"dagster job launch failed:\n{done.stderr[-3000:]}")
    return run_id


def wait_for_run(env: dict[str, str], run_id: str, timeout_s: float) -> dict:
    """Wait for the run to end; its status, wall seconds (creation to end) and each step's seconds."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    deadline = time.monotonic() + timeout_s
    with dg.DagsterInstance.get() as instance:
        while not (record := instance.get_run_record_by_id(run_id)).dagster_run.is_finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not end within {timeout_s} s")
            time.sleep(0.2)
        steps = {
            stat.step_key: stat.end_time - stat.start_time
            for stat in instance.get_run_step_stats(run_id)
            if stat.end_time and stat.start_time
        }
    return {
        "status": record.dagster_run.status.value,
        "wall_s": record.end_time - record.create_timestamp.timestamp(),
        "steps_s": steps,
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def remove(folder: Path) -> None:
    """Delete a scratch folder, whatever the runs left in it."""
    shutil.rmtree(folder, ignore_errors=True)
