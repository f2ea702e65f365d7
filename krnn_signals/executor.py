"""The executor of every job: Dagster's default here, each step a Kubernetes pod where deploy/ sets $KRNN_EXECUTOR."""

import os

import dagster as dg

EXECUTOR_ENV = "KRNN_EXECUTOR"
K8S = "k8s"


def executor_from_env() -> dg.ExecutorDefinition | None:
    """`k8s_job_executor` when $KRNN_EXECUTOR is `k8s`; None (Dagster's default executor) when it is unset."""
    name = os.environ.get(EXECUTOR_ENV, "")
    if not name:
        return None
    if name != K8S:
        raise ValueError(f"${EXECUTOR_ENV}={name!r}: the one executor to choose is {K8S!r}; unset, Dagster's default")
    # only images built for the cluster (deploy/Dockerfile, the `k8s` extra) carry dagster-k8s
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
