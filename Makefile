# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# the function's own interpreter: CPython of template.yaml's Runtime (3.13), with exactly the layer's pins
FN_VENV := .venv-fn
FN_PY := $(FN_VENV)/bin/python
PORT ?= 3000
DASHBOARD_PORT ?= 8501

.DEFAULT_GOAL := help
.PHONY: mutation rollback reliability format promote help setup setup-ledger setup-train setup-dev setup-function browser run test test-function test-rest test-unit lint train experiments mlflow evaluate snapshot package local-api \
        dashboard bench deploy status teardown screenshots clean soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# each stamp re-runs pip only when its requirements file changes: a second `make setup` is instant
$(VENV)/.stamp-main: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	@touch $@
# the ledger's stamp sits between main and train: `make ledger` needs arch (GARCH baseline), not torch
$(VENV)/.stamp-ledger: requirements-ledger.txt $(VENV)/.stamp-main
	$(PIP) install --quiet -r requirements-ledger.txt
	@touch $@
$(VENV)/.stamp-train: requirements-train.txt $(VENV)/.stamp-ledger
	$(PIP) install --quiet -r requirements-train.txt
	@touch $@
$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-train
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.stamp-main ## create .venv with what `make run` needs (no torch)
setup-ledger: $(VENV)/.stamp-ledger ## add arch (the ledger's GARCH baseline): what `make ledger` needs, no torch
setup-train: $(VENV)/.stamp-train ## add torch 2.13 (local CPU wheel), scikit-learn, joblib
setup-dev: $(VENV)/.stamp-dev ## add test and lint tools

# .venv-fn on CPython 3.13 (python3.13 on PATH, pyenv, or FUNCTION_PYTHON); says how to get one if none is found
$(FN_VENV)/.stamp: lambda/requirements.txt requirements-function.txt lambda/template.yaml | $(VENV)/.stamp-main
	$(PY) lambda/runtime_python.py --venv
setup-function: $(FN_VENV)/.stamp ## .venv-fn: the function's runtime CPython with the layer's exact pins

browser: ## Debian's chromium for the browser tests (apt-get when root; otherwise prints the command)
	@$(SHELL) scripts/ensure_chromium.sh

run: setup ## start the local API and the dashboard on the bundled data (Ctrl-C stops both)
	-@$(MAKE) --no-print-directory setup-function || echo "make run: no CPython 3.13 here; the local API will serve on $$($(PY) -c 'import platform; print(platform.python_version())') and say so"
	$(PY) scripts/run.py --port $(PORT) --dashboard-port $(DASHBOARD_PORT)

test: setup-dev setup-function browser ## every test: the function on CPython 3.13, then unit, integration, browser
	$(FN_PY) -m pytest -q tests/function
	$(PY) -m pytest -q

test-function: setup-function ## only the function's own suite, on its runtime CPython (3.13)
	$(FN_PY) -m pytest -q tests/function

test-unit: setup-dev setup-function ## only the fast tests: no servers, no browser, no fuzzers
	$(FN_PY) -m pytest -q -m "not integration and not browser and not slow" tests/function
	$(PY) -m pytest -q -m "not integration and not browser and not slow"

lint: setup-dev ## ruff (lint and format) and cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint lambda/template.yaml

format: setup-dev ## ruff format and the safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

snapshot: setup-dev ## rebuild models/data/snapshot.csv.gz from the arch and bokeh-sampledata packages
	$(PY) -m models.data.build_snapshot

train: setup-train ## train, export to models/runtime and evaluate (about 26 s on 2 idle cores)
	$(PY) -m models.train

experiments: setup-train ## runs A, A0, B and C (LSTM 2x64, A0 with the old interval, 1x16, 2x128) logged to MLflow; table; models/runs.json
	$(PY) -m models.experiments

promote: setup-train ## serve a tracked run: make promote RUN=B (copies its artifacts, regenerates lambda/events)
	@test -n "$(RUN)" || { echo "make promote: say which run, e.g. make promote RUN=B"; exit 2; }
	$(PY) -m models.promote $(RUN)
	$(PY) lambda/events/generate.py

mlflow: setup-train ## the MLflow UI on 127.0.0.1:5000 over mlruns/ (Ctrl-C stops it and its workers)
	$(PY) scripts/mlflow_ui.py

evaluate: setup-train ## re-evaluate the served runtime model beside the risk baselines; writes models/metrics.json
	$(PY) -m models.evaluate

.PHONY: ledger
ledger: setup-ledger ## replay the test period through the local API into the track record, score it (ARGS="--json", "--url U --key K")
	$(PY) -m ledger.replay $(ARGS)

package: setup ## build dist/lambda_function.zip and dist/layer.zip
	$(PY) lambda/package.py

local-api: setup ## only the local API (PORT=3000)
	$(PY) -m local_api --port $(PORT)

dashboard: setup ## only the dashboard, on 127.0.0.1 (DASHBOARD_HOST=0.0.0.0 to share it: it can deploy with your AWS keys)
	$(VENV)/bin/streamlit run dashboard/app.py --server.port $(DASHBOARD_PORT) --server.address $(or $(DASHBOARD_HOST),127.0.0.1)

bench: setup-dev setup-function ## cold start (3.13 vs the old 3.11 build vs torch), warm latency, load, size; updates BENCHMARKS.md
	$(PY) benchmarks/run.py

soak: setup-dev setup-function ## the local API under the real mix for SOAK_S seconds (default 600), beside SOAK_BUSY busy loops (default 0): flat memory, p99, fds, zombies; updates BENCHMARKS.md
	$(PY) benchmarks/soak.py --seconds $(or $(SOAK_S),600)

deploy: setup setup-function ## deploy to AWS (or --endpoint-url) with boto3: ARGS="--region R [--api http|url] [--canary 10]"
	$(PY) -m deployer deploy $(ARGS)

status: setup ## what is deployed
	$(PY) -m deployer status $(ARGS)

rollback: setup ## move the alias live back (ARGS="--region R [--to VERSION]")
	$(PY) -m deployer rollback $(ARGS)

teardown: setup ## delete what deploy created (keeps the model bucket unless ARGS=--purge)
	$(PY) -m deployer teardown $(ARGS)

reliability: setup-dev setup-function ## the README's reliability figures: hostile events, load, slow, chunked, non-reading and pipelining clients, killed workers, collisions
	$(FN_PY) scripts/reliability.py function --n 20000
	$(PY) scripts/reliability.py local-api --load-seconds 20
	$(PY) -m pytest -q -p no:cacheprovider tests/test_deploy.py -k "foreign or extra_policies or key_is_checked or layer_versions"

mutation: setup-dev setup-function ## plant each bug of tests/mutations/*.yaml in a scratch copy, report the kill rate (ARGS="--threshold 90")
	$(PY) scripts/mutation.py $(ARGS)

screenshots: setup-dev ## screenshots of each dashboard page into docs/
	$(PY) scripts/screenshots.py

clean: ## remove build output (keeps .venv and .venv-fn)
	rm -rf dist .pytest_cache .ruff_cache .hypothesis
