"""Each test of the code location starts without a Dagster instance left current by another."""

import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage


@pytest.fixture(autouse=True)
def no_instance_left_current():
    # A persistent instance (the schedule's runs need one) makes its state storage current when entered and
    # leaves it so when closed (Dagster 1.13.27); once the instance is collected, building any other repository
    # raises "Attempted to resolve undefined DagsterInstance weakref". Each test gets its own and drops it.
    with set_defs_state_storage(None):
        yield
