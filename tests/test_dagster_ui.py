"""The chain's story as the Dagster UI tells it: the real webserver on the instance of the `pipeline` fixture,
asked through GraphQL and looked at in headless Chromium.

The webserver serves the test market as a finished one (its config plus `end_time`), as `make ui` serves the
demo's, in the default code location beside the workspace's second market: each check shows each materialized day
passed, or failed on exactly the days its rule fails; the runs succeeded, in the code location; no day is late.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from playwright.sync_api import Page, sync_playwright

from assets.names import LocationNames
from krnn_core.data.market_checks import universe_problems
from krnn_signals.definitions import CONFIG
from krnn_signals.demo import trading_days_between
from tests.fixtures import REPO_ROOT
from tests.krnn_core.reports.test_html import CHROMIUM, CHROMIUM_ARGS

LOCATION, REPOSITORY = "krnn_signals.definitions", "__repository__"
NAMES = LocationNames.of(CONFIG)  # the test config's, served as the default location
STARTUP_S = 180  # the webserver, then its code servers importing the locations: some 20 s on a quiet machine
CHAIN_JOBS = [NAMES.named(job) for job in ("krnn_model_job", "market_data_job", "reports_job", "signals_job")]
CHECKS = {  # every check of the code location; a live feed would add the signals' freshness check
    "qlib_market_data": {"calendar_is_valid", "bars_are_consistent", "no_unexplained_jumps", "universe_is_covered"},
    "signals": {"signals_cover_universe", "signals_are_spread", "model_is_recent"},
    "ic_report": {"rank_ic_holds_up"},
}
SHOTS_ENV = "KRNN_UI_SCREENSHOTS"  # where the screenshots go; by default a folder of pytest's tmp


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _finished_config(test_config_path: Path) -> Path:
    """The test config with the end of its data set: the market `make demo` serves is a finished one too."""
    raw = yaml.safe_load(test_config_path.read_text())
    raw["end_time"] = raw["task"]["dataset"]["segments"]["test"][1]
    path = test_config_path.with_name("finished.yaml")  # beside it: its relative paths name the same data
    path.write_text(yaml.safe_dump(raw))
    return path


def graphql(url: str, query: str, **variables) -> dict:
    """The data of a GraphQL query to the webserver; its errors, if any, fail the test."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message }
        ... on RepositoryLocation { repositories { name pipelines { name } } } } } } } }"""


def _wait_until_loaded(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers with every code location loaded; a clear failure after STARTUP_S or on exit."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dagster-webserver exited with {server.returncode}:\n{log.read_text()[-3000:]}"
        try:
            entries = graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError):
            entries = []
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            for entry in entries:
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
            return
        time.sleep(1)
    pytest.fail(f"the code location did not load within {STARTUP_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def webserver(pipeline, dagster_home, test_config_path, tmp_path_factory) -> Iterator[str]:
    """dagster-webserver on the workspace and the instance the chain ran in; stopped, with its code server, after."""
    port, log = _free_port(), tmp_path_factory.mktemp("webserver") / "webserver.log"
    env = os.environ | {"DAGSTER_HOME": str(dagster_home), "KRNN_CONFIG": str(_finished_config(test_config_path))}
    command = [Path(sys.executable).parent / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1"]
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server it starts is stopped with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_loaded(url, server, log)
        yield url
    finally:
        _stop_group(server)


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 30 s; its code server goes with it."""
    for stop in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, stop)
            server.wait(timeout=30)
            return
        except ProcessLookupError:  # the group has already gone
            return
        except subprocess.TimeoutExpired:
            continue


ASSETS = """{ assetNodes { assetKey { path } description
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { startKey endKey status } } }
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status }
        partitionStatuses { ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } }"""


def _assets(url: str) -> dict[str, dict]:
    """The default location's asset nodes by the asset's own name: its keys are NAMES.key(name)."""
    nodes = graphql(url, ASSETS)["assetNodes"]
    return {node["assetKey"]["path"][-1]: node for node in nodes if node["assetKey"]["path"][0] == NAMES.name}


def _by_day(ranges: list[dict], days: list[str]) -> dict[str, str]:
    """The status of each of `days` that a partition-status answer's ranges cover."""
    return {day: r["status"] for r in ranges for day in days if r["startKey"] <= day <= r["endKey"]}


def _low_coverage_days(config) -> dict[str, str]:
    """The days the test market's coverage warns on, by the check's own rule, read from the Qlib folder."""
    first, last = pd.Timestamp(config.start_time), pd.Timestamp(config.task.dataset.segments.test[1])
    problems = universe_problems(
        config.qlib_init.provider_uri, config.market, first, last, config.monitoring.min_coverage
    )
    return {str(day.date()): "FAILED" for day, found in problems.items() if found}


def test_each_check_shows_each_materialized_day_passed_or_failed_as_computed(webserver, pipeline):
    assets = _assets(webserver)
    found = {key: {c["name"] for c in node["assetChecksOrError"]["checks"]} for key, node in assets.items()}
    assert {key: names for key, names in found.items() if names} == CHECKS  # no freshness check: a finished market
    days = trading_days_between(str(pipeline.start_time), str(pipeline.task.dataset.segments.test[1]))
    materialized = {
        key: _by_day(assets[key]["assetPartitionStatuses"]["ranges"], days) for key in ("qlib_market_data", "signals")
    }
    assert set(materialized["qlib_market_data"].values()) == set(materialized["signals"].values()) == {"MATERIALIZED"}
    assert list(materialized["qlib_market_data"]) == days
    assert list(materialized["signals"]) == [day for day in days if day >= str(pipeline.task.dataset.segments.test[0])]
    # the synthetic market suspends enough members on a few days for the coverage warning: those days fail, alone
    low_coverage = _low_coverage_days(pipeline)
    assert 0 < len(low_coverage) < 10
    for key in ("qlib_market_data", "signals"):
        for check in assets[key]["assetChecksOrError"]["checks"]:
            failed = low_coverage if check["name"] == "universe_is_covered" else {}
            latest = check["executionForLatestMaterialization"]["status"]  # the range run's own verdict
            assert latest == ("FAILED" if failed else "SUCCEEDED"), (key, check["name"])
            if check["partitionStatuses"] is None:  # calendar_is_valid: one verdict on the whole calendar
                continue
            expected = {day: "SUCCEEDED" for day in materialized[key]} | failed
            assert _by_day(check["partitionStatuses"]["ranges"], days) == expected, (key, check["name"])
    (report_check,) = assets["ic_report"]["assetChecksOrError"]["checks"]
    assert report_check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"


RUNS = """query ($filter: RunsFilter!) { runsOrError(filter: $filter) { ... on Runs { results {
    pipelineName status repositoryOrigin { repositoryName repositoryLocationName } } } } }"""


def test_the_runs_succeeded_and_the_overview_timeline_places_them_in_the_code_location(webserver):
    # the filter of the UI's timeline (useRunsForTimeline): finished runs updated in the window; it draws a run
    # only when it has a repositoryOrigin, in the row of that location's job
    window = {"statuses": ["SUCCESS", "FAILURE", "CANCELED"], "updatedAfter": time.time() - 86400}
    runs = graphql(webserver, RUNS, filter=window)["runsOrError"]["results"]
    assert sorted(run["pipelineName"] for run in runs) == CHAIN_JOBS
    assert {run["status"] for run in runs} == {"SUCCESS"}
    origin = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION}
    assert all(run["repositoryOrigin"] == origin for run in runs), runs
    entries = graphql(webserver, LOCATIONS)["workspaceOrError"]["locationEntries"]
    (entry,) = [entry for entry in entries if entry["name"] == LOCATION]
    (repository,) = entry["locationOrLoadError"]["repositories"]
    assert repository["name"] == REPOSITORY
    assert set(CHAIN_JOBS) <= {job["name"] for job in repository["pipelines"]}


SCHEDULE = """query ($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
    ... on Schedule { scheduleState { status } } } }"""


def test_a_finished_market_says_so_and_is_never_late(webserver):
    description = _assets(webserver)["signals"]["description"]
    assert "A finished market: its data ends on 2022-06-30 (the config's end_time)" in description
    assert "there is no freshness check: no day is late" in description
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "scheduleName": NAMES.named("daily_signals_schedule"),
    }
    assert graphql(webserver, SCHEDULE, selector=selector)["scheduleOrError"]["scheduleState"]["status"] == "STOPPED"


@pytest.fixture(scope="module")
def browser_page(webserver) -> Iterator[Page]:
    """A page of headless Chromium, 1400 pixels wide as the reports' inline charts are sized for, and tall enough
    for a whole report: the UI scrolls inside the page, so a full-page screenshot shows the window alone."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        # the webserver on localhost greets a new browser with a "Join the Dagster community" dialog over the page
        page.add_init_script("window.localStorage.setItem('communityNux', 'true')")
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """The folder the screenshots are kept in: $KRNN_UI_SCREENSHOTS, or one of pytest's temporary folders."""
    folder = Path(os.environ[SHOTS_ENV]) if SHOTS_ENV in os.environ else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots of the Dagster UI in {folder}")
    return folder


def _shoot(page: Page, shots: Path, name: str, *shown: str) -> str:
    """Once each of `shown` is on the page, its screenshot as `name`.png; the page's text."""
    for text in shown:
        page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=shots / f"{name}.png")
    return page.inner_text("body")


def test_the_asset_graph_shows_every_stage(webserver, browser_page, shots):
    stages = ("market_data", "features", "model", "signals", "reports")
    groups = ",".join(f"global@global:{NAMES.named(stage)}" for stage in stages)  # the location's own groups
    browser_page.goto(f"{webserver}/asset-groups?{urllib.parse.urlencode({'expanded': groups})}")
    assets = ["qlib_market_data", "alpha360_features", "alpha360_labels", "krnn_model", "signals", "ic_report"]
    text = _shoot(browser_page, shots, "asset_graph", *assets, "backtest_report")
    assert {*assets, "backtest_report"} <= set(text.splitlines())  # each node of the expanded groups, by name


def test_the_overview_timeline_shows_the_runs_in_the_code_location(webserver, browser_page, shots):
    browser_page.goto(f"{webserver}/overview/activity/timeline")
    text = _shoot(browser_page, shots, "timeline", LOCATION, *CHAIN_JOBS)
    assert f"{LOCATION}\n{len(CHAIN_JOBS)}\n" in text  # the location's row counts its runs


def test_the_signals_partitions_show_every_day_materialized_and_passed(webserver, browser_page, shots, pipeline):
    days = len(trading_days_between(*(str(day) for day in pipeline.task.dataset.segments.test)))
    browser_page.goto(f"{webserver}/assets/{NAMES.name}/signals?view=partitions")
    _shoot(browser_page, shots, "signals_partitions", f"Materialized ({days})", "Failed (0)")
    browser_page.goto(f"{webserver}/assets/{NAMES.name}/signals?view=checks&checkDetail=signals_cover_universe")
    browser_page.get_by_role("tab", name="Execution history").wait_for()  # the check's own tabs, beside the asset's
    browser_page.get_by_role("tab", name="Partitions").last.click()
    _shoot(browser_page, shots, "signals_check_partitions", f"Passed ({days})", "Skipped (0)", "Failed (0)")


@pytest.mark.parametrize(
    ("report", "charts"),
    [("ic_report", ["ic_series", "quantile_returns", "ic_decay"]), ("backtest_report", ["cumulative_excess_return"])],
)
def test_a_report_shows_its_charts_in_place(webserver, browser_page, shots, report, charts):
    browser_page.goto(f"{webserver}/assets/{NAMES.name}/{report}")
    text = _shoot(browser_page, shots, report, *charts)
    drawn = browser_page.evaluate(
        "() => Array.from(document.querySelectorAll('img[alt=chart]')).map(i => [i.complete, i.naturalWidth])"
    )
    assert len(drawn) == len(charts) and all(complete and width > 300 for complete, width in drawn), drawn
    assert "[Show Markdown]" not in text
