# `make demo` sets up a fresh machine and runs the pipeline on the embedded synthetic market;
# `make test` runs the tests. Both create the virtual environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# the CPU wheel lies on this machine's disk; on a GPU machine PyPI's torch==2.13.0 is the CUDA build
TORCH ?= torch==2.13.0
# the Dagster instance's folder: dagster_home (SQLite, no setup) or dagster_home_postgres (needs DAGSTER_PG_URL)
INSTANCE ?= dagster_home
export DAGSTER_HOME := $(CURDIR)/$(INSTANCE)
# the pipeline's config for demo and ui: `make demo CONFIG=configs/csi300_2015_2019.yaml` runs on real prices
CONFIG ?= configs/default.yaml
# the UI's port: `make serve PORT=3001` when 3000 is taken
PORT ?= 3000

.PHONY: install demo test serve ui validate clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	KRNN_CONFIG=$(abspath $(CONFIG)) $(VENV)/bin/krnn-signals demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

# the daily service: `dagster dev` runs the UI and the daemon (schedule, sensors) on the project's instance;
# `make ui` is the same
serve ui: install
	KRNN_CONFIG=$(abspath $(CONFIG)) $(VENV)/bin/dagster dev -w workspace.yaml --port $(PORT)

validate: install
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs
