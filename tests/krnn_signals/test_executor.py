import dagster as dg
import pytest
from dagster_k8s import k8s_job_executor

from assets.names import LocationNames
from krnn_core.config import load_config
from krnn_signals.definitions import build_definitions
from krnn_signals.executor import EXECUTOR_ENV, executor_from_env


def test_the_jobs_run_on_dagsters_default_executor_unless_the_deployment_asks_for_k8s(monkeypatch, test_config_path):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    names = LocationNames.of(load_config(test_config_path))
    job, model_job = names.named("daily_signals_job"), names.named("krnn_model_job")
    local = build_definitions(load_config(test_config_path))
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    deployed_location = build_definitions(load_config(test_config_path))
    deployed = deployed_location.resolve_job_def(job)
    # here the trading-day jobs run in one process, the others on Dagster's default
    assert local.resolve_job_def(job).executor_def.name == "in_process"
    assert local.resolve_job_def(model_job).executor_def.name == "multi_or_in_process_executor"
    assert deployed.executor_def is k8s_job_executor
    assert deployed_location.resolve_job_def(model_job).executor_def is k8s_job_executor
    # a run needs no executor config: its step pods take namespace, image and volumes from the run and its location
    assert dg.validate_run_config(deployed, {})["execution"]["k8s"]["retries"] == {"enabled": {}}


def test_an_unknown_executor_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "kubernetes")
    with pytest.raises(ValueError, match=r"\$KRNN_EXECUTOR='kubernetes'"):
        executor_from_env()
