# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 3000
DASHBOARD_PORT ?= 8501

.DEFAULT_GOAL := help
.PHONY: help setup setup-train setup-dev run test test-unit lint train experiments mlflow evaluate snapshot package local-api \
        dashboard bench deploy status teardown screenshots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# each stamp re-runs pip only when its requirements file changes: a second `make setup` is instant
$(VENV)/.stamp-main: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	@touch $@
$(VENV)/.stamp-train: requirements-train.txt $(VENV)/.stamp-main
	$(PIP) install --quiet -r requirements-train.txt
	@touch $@
$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-train
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.stamp-main ## create .venv with what `make run` needs (no torch)
setup-train: $(VENV)/.stamp-train ## add torch 2.13 (local CPU wheel), scikit-learn, joblib
setup-dev: $(VENV)/.stamp-dev ## add test and lint tools

run: setup ## start the local API and the dashboard on the bundled data (Ctrl-C stops both)
	$(PY) scripts/run.py --port $(PORT) --dashboard-port $(DASHBOARD_PORT)

test: setup-dev ## every test: unit, integration (local API, moto), browser (chromium)
	$(PY) -m pytest -q

test-unit: setup-dev ## only the fast tests
	$(PY) -m pytest -q -m "not integration and not browser and not slow"

lint: setup-dev ## ruff and cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint lambda/template.yaml

snapshot: setup-dev ## rebuild models/data/snapshot.csv.gz from the arch and bokeh-sampledata packages
	$(PY) -m models.data.build_snapshot

train: setup-train ## train, export to models/runtime and evaluate (about 20 s on 2 cores)
	$(PY) -m models.train

experiments: setup-train ## runs A, B and C (LSTM 2x64, 1x16, 2x128) logged to MLflow, then the comparison table
	$(PY) -m models.experiments

mlflow: setup-train ## the MLflow UI on 127.0.0.1:5000 over mlruns/ (Ctrl-C stops it and its workers)
	$(PY) scripts/mlflow_ui.py

evaluate: setup ## re-evaluate the served runtime model; writes models/metrics.json
	$(PY) -m models.evaluate

package: setup ## build dist/lambda_function.zip and dist/layer.zip
	$(PY) lambda/package.py

local-api: setup ## only the local API (PORT=3000)
	$(PY) lambda/local_api.py --port $(PORT)

dashboard: setup ## only the dashboard
	$(VENV)/bin/streamlit run dashboard/app.py --server.port $(DASHBOARD_PORT)

bench: setup-dev ## cold start, warm latency, load and package size; updates BENCHMARKS.md
	$(PY) benchmarks/run.py

deploy: setup ## deploy to AWS (or --endpoint-url) with boto3
	$(PY) lambda/deploy.py deploy $(ARGS)

status: setup ## what is deployed
	$(PY) lambda/deploy.py status $(ARGS)

teardown: setup ## delete what deploy created (keeps the model bucket unless ARGS=--purge)
	$(PY) lambda/deploy.py teardown $(ARGS)

screenshots: setup-dev ## screenshots of each dashboard page into docs/
	$(PY) scripts/screenshots.py

clean: ## remove build output (keeps .venv)
	rm -rf dist .pytest_cache .ruff_cache .hypothesis
