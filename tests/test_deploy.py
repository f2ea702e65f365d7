"""deploy/: the image installs what `make install` installs, and dagster-k8s accepts the Helm values and builds each
step's pod on the node its asset asks for. Neither docker nor helm runs here: the chart's rendering of the values
is written out below for the keys deploy/values.yaml sets, and the test refuses a key it does not translate."""

import re
import shlex
import sys
import tomllib
from importlib.metadata import requires, version

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.execution.api import create_execution_plan
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from packaging.requirements import Requirement

from assets.names import LocationNames
from krnn_signals.definitions import CONFIG, defs
from tests.fixtures import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
TEST_TOOLS = {"pytest", "playwright", "ruff"}  # what `make install` adds that the image goes without
# names the chart derives from the release and namespace; any string validates the same
NAMESPACE, RELEASE_PREFIX, IMAGE = "krnn-signals", "krnn-signals-dagster", "registry.example.com/krnn-signals:0.1.0"


def _files() -> dict[str, str]:
    return {name: (REPO_ROOT / name).read_text() for name in ("Makefile", "deploy/Dockerfile", "pyproject.toml")}


def _pip_installs(lines: list[str], variables: dict[str, str]) -> list[list[str]]:
    """What each `pip install` line installs, its options left out and its variables filled in."""
    installs = []
    for line in lines:
        if "pip install" not in line:
            continue
        words, targets = shlex.split(line.split("pip install", 1)[1]), []
        for previous, word in zip(["", *words], words, strict=False):
            if word.startswith("-") or previous == "--index-url":
                continue
            variable = re.fullmatch(r"\$\(?(\w+)\)?", word)  # $(TORCH) in make, $TORCH in the Dockerfile
            targets.append(variables[variable[1]] if variable else word)
        installs.append(targets)
    return installs


def _make_installs(makefile: str) -> list[list[str]]:
    recipe = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0].splitlines()
    return _pip_installs(recipe, dict(re.findall(r"^(\w+) \?= (.+)$", makefile, re.M)))


def _image_installs(dockerfile: str) -> list[list[str]]:
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    return _pip_installs(runs, dict(re.findall(r"^ARG (\w+)=(.+)$", dockerfile, re.M)))


def _packages(pyproject: dict, project_target: str) -> dict[str, str]:
    """Package name -> requirement of the project installed as `.[extras]`."""
    extras = re.fullmatch(r"\.(?:\[(.*)\])?", project_target)[1] or ""
    chosen = pyproject["project"]["optional-dependencies"]
    requirements = [
        *pyproject["project"]["dependencies"],
        *(r for extra in extras.split(",") if extra for r in chosen[extra]),
    ]
    return {Requirement(r).name: r for r in requirements}


def _drift(makefile: str, dockerfile: str, pyproject_text: str) -> list[str]:
    """How the image's environment differs from the one `make install` builds; empty when they agree."""
    pyproject, problems = tomllib.loads(pyproject_text), []
    make, image = _make_installs(makefile), _image_installs(dockerfile)
    if make[:-1] != image[:-1]:
        problems.append(f"installs before the project: make {make[:-1]}, image {image[:-1]}")
    make_packages, image_packages = _packages(pyproject, make[-1][0]), _packages(pyproject, image[-1][0])
    if mismatched := {name for name in image_packages if make_packages.get(name) != image_packages[name]}:
        problems.append(f"the image installs {sorted(mismatched)} otherwise than make, or make does not")
    if only_make := set(make_packages) - set(image_packages) - TEST_TOOLS:
        problems.append(f"make installs {sorted(only_make)}, the image does not")
    python, tested = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.M)[1], "{}.{}".format(*sys.version_info)
    if python != tested:
        problems.append(f"the image runs Python {python}, the tests ran on {tested}")
    return problems


def test_the_image_installs_what_make_install_installs():
    files = _files()
    assert _drift(*files.values()) == []
    make = _make_installs(files["Makefile"])
    assert make[1] == ["torch==2.13.0"] and make[-1] == [".[dev]"]  # the parser read the recipe it checks
    assert _image_installs(files["deploy/Dockerfile"])[-1] == [".[k8s]"]


DRIFTS = {
    "another torch": ("deploy/Dockerfile", "ARG TORCH=torch==2.13.0", "ARG TORCH=torch==2.14.0"),
    "the image without the k8s extra": ("deploy/Dockerfile", '".[k8s]"', '"."'),
    "another Python": ("deploy/Dockerfile", "FROM python:3.11-", "FROM python:3.12-"),
    "a step only make takes": (
        "Makefile",
        "\t$(PY) -m pip install -q -e",
        "\t$(PY) -m pip install numba\n\t$(PY) -m pip install -q -e",
    ),
    "a runtime package in dev only": ("pyproject.toml", 'dev = ["pytest>=8",', 'dev = ["scipy>=1.11", "pytest>=8",'),
    "another dagster-k8s pin in dev": (
        "pyproject.toml",
        '"ruff>=0.6", "dagster-k8s==0.29.27"',
        '"ruff>=0.6", "dagster-k8s"',
    ),
}


@pytest.mark.parametrize("case", DRIFTS)
def test_a_drift_between_the_image_and_make_install_is_reported(case):
    files = _files()
    name, old, new = DRIFTS[case]
    assert files[name].count(old) == 1
    files[name] = files[name].replace(old, new)
    assert len(_drift(*files.values())) == 1, case


def test_the_k8s_extra_matches_the_installed_dagster():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    dagster = next(r for r in pyproject["project"]["dependencies"] if Requirement(r).name == "dagster")
    for requirement in map(Requirement, pyproject["project"]["optional-dependencies"]["k8s"]):
        assert str(requirement.specifier) == f"=={version(requirement.name)}"  # what these tests ran with
        assert dagster in requires(requirement.name), requirement  # dagster's libraries pin the dagster they go with


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _run_launcher_config(values: dict) -> dict:
    """The instance's run_launcher config as the chart's run-launcher template renders it from `values`."""
    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(chart) <= {"imagePullPolicy", "loadInclusterConfig", "runK8sConfig"}, "a key translated nowhere"
    return {
        "load_incluster_config": chart["loadInclusterConfig"],
        "job_namespace": NAMESPACE,
        "image_pull_policy": chart["imagePullPolicy"],
        "service_account_name": RELEASE_PREFIX,
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": f"{RELEASE_PREFIX}-instance",
        "postgres_password_secret": "dagster-postgresql-secret",
        "run_k8s_config": {_snake(key): value for key, value in chart["runK8sConfig"].items()},
    }


def _code_location_context(values: dict) -> dict:
    """The container context the chart gives the code location's gRPC server, which its runs inherit."""
    [location] = values["dagster-user-deployments"]["deployments"]
    handled = {"name", "image", "dagsterApiGrpcArgs", "port", "includeConfigInLaunchedRuns", "env", "volumes"}
    assert set(location) <= handled | {"volumeMounts"}, "a key translated nowhere"
    assert location["includeConfigInLaunchedRuns"]["enabled"]
    return {
        "k8s": {
            "image_pull_policy": location["image"]["pullPolicy"],
            "env_config_maps": [f"{RELEASE_PREFIX}-{location['name']}-user-env"],
            "volume_mounts": location["volumeMounts"],
            "volumes": location["volumes"],
            "namespace": NAMESPACE,
            "service_account_name": f"{RELEASE_PREFIX}-user-deployments",
            "env": location["env"],
            "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
        }
    }


def _step_job(step_tags: dict[str, str]):
    """The Kubernetes job dagster-k8s's step handler builds for a step with these tags, merged as it merges them."""
    values = _values()
    launcher = _run_launcher_config(values)
    context = (
        K8sContainerContext(
            image_pull_policy=launcher["image_pull_policy"],
            service_account_name=launcher["service_account_name"],
            namespace=launcher["job_namespace"],
            run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher["run_k8s_config"]),
        )
        .merge(K8sContainerContext.create_from_config(_code_location_context(values)))
        .merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags)))
    )
    job_config = DagsterK8sJobConfig(
        job_image=IMAGE,
        dagster_home=launcher["dagster_home"],
        instance_config_map=launcher["instance_config_map"],
        postgres_password_secret=launcher["postgres_password_secret"],
    )
    return construct_dagster_k8s_job(job_config, ["dagster"], "dagster-step-x", context.run_k8s_config)


NAMES = LocationNames.of(CONFIG)
TRAIN_SEED_STEP = f"{NAMES.step('krnn_model')}.train_seed_0"  # the model asset's steps: plan, seeds, record


def _steps() -> dict[str, dict[str, str]]:
    """Every step of every job and its tags, as the executor hands them to the step handler."""
    plans = [create_execution_plan(job) for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    return {step.key: step.tags for plan in plans for step in plan.steps}


def test_the_run_launcher_config_validates_against_dagster_k8s():
    config = _run_launcher_config(_values())
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors
    assert result.value["run_k8s_config"]["job_spec_config"] == {"ttlSecondsAfterFinished": 86400}
    broken = config | {"run_k8s_config": {"pod_spec": {}}}  # a misspelt key is refused: the check can fail
    assert not validate_config(K8sRunLauncher.config_type(), broken).success


def test_only_training_steps_ask_for_a_gpu_and_the_feature_and_signal_steps_for_cpu_nodes():
    steps = _steps()
    limits = {
        key: get_user_defined_k8s_config(tags).container_config.get("resources", {}) for key, tags in steps.items()
    }
    assert {key: wanted["limits"] for key, wanted in limits.items() if "limits" in wanted} == {
        TRAIN_SEED_STEP: {"nvidia.com/gpu": 1},
        NAMES.step("krnn_model_search"): {"nvidia.com/gpu": 1},
    }
    recording = f"{NAMES.step('krnn_model')}.record_version"  # scores the members on valid: CPU work
    for step in [*(NAMES.step(key) for key in ("alpha360_features", "alpha360_labels", "signals")), recording]:
        node = get_user_defined_k8s_config(steps[step]).pod_spec_config["affinity"]["node_affinity"]
        [term] = node["required_during_scheduling_ignored_during_execution"]["node_selector_terms"]
        assert term["match_expressions"] == [{"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}]


def test_the_training_pod_gets_a_gpu_node_and_the_shared_data():
    pod = _step_job(_steps()[TRAIN_SEED_STEP]).spec.template.spec
    [container] = pod.containers
    assert container.resources.limits == {"nvidia.com/gpu": "1"}  # a Kubernetes quantity
    assert container.resources.requests == {"cpu": "4", "memory": "8Gi"}
    [toleration] = pod.tolerations
    assert (toleration.key, toleration.operator, toleration.effect) == ("nvidia.com/gpu", "Exists", "NoSchedule")
    assert pod.affinity is None
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [("data", "/app/data")]
    assert [v.persistent_volume_claim.claim_name for v in pod.volumes] == ["krnn-signals-data"]
    env = {e.name: e.value for e in container.env}
    assert env["KRNN_EXECUTOR"] == "k8s" and env["KRNN_CONFIG"] == "/app/configs/default.yaml"


@pytest.mark.parametrize("step", ["alpha360_features", "alpha360_labels", "signals", "qlib_market_data"])
def test_the_other_pods_stay_off_gpu_nodes_and_share_the_data(step):
    job = _step_job(_steps()[NAMES.step(step)])
    pod = job.spec.template.spec
    [container] = pod.containers
    assert "nvidia.com/gpu" not in (container.resources.limits or {}) and not pod.tolerations
    tagged = step != "qlib_market_data"  # market_data.py sets no placement: the run launcher's requests
    expected = {"cpu": "2", "memory": "4Gi"} if tagged else {"cpu": "250m", "memory": "512Mi"}
    assert container.resources.requests == expected
    assert (pod.affinity is not None) == tagged
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [("data", "/app/data")]
    assert job.spec.ttl_seconds_after_finished == 86400


def test_the_data_volume_is_the_claim_every_pod_mounts():
    claim = yaml.safe_load((DEPLOY / "data-volume.yaml").read_text())
    [volume] = _values()["dagster-user-deployments"]["deployments"][0]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on several nodes write it


def test_the_cluster_has_the_pools_of_the_local_instance():
    pools = _values()["concurrency"]
    local = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())["concurrency"]
    assert pools["enabled"] and {"pools": {"default_limit": pools["pools"]["defaultLimit"]}} == local
