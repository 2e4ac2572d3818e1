# The README's two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest demo db-upgrade bench clean scale-demo deploy flow-overhead browser compose web-tools client-tools examples

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

db-upgrade: $(STAMP)
	$(BIN)/lims db upgrade

# `make run PORT=8080 HOST=0.0.0.0` to serve elsewhere.
PORT ?= 8000
HOST ?= 127.0.0.1
run: $(STAMP)
	$(BIN)/lims db upgrade
	$(BIN)/lims demo --if-empty
	$(BIN)/lims serve --host $(HOST) --port $(PORT)

demo: $(STAMP)
	$(BIN)/lims db upgrade
	$(BIN)/lims demo

# The scale-out topology on this machine: a Prefect server on a fresh PostgreSQL database,
# the lab deployments in a process work pool, a worker, a stage run through its deployment.
# LIMS_SCALE_POSTGRES_URL: a user that may create databases (README, "Running at scale").
# HOSTS=1: across hosts made with network namespaces (root): a database host, a Prefect
# server, two workers and two APIs; a worker's link cut mid-flow, an API host killed.
scale-demo: $(STAMP)
	$(BIN)/python -m flows.scale $(if $(HOSTS),--hosts)

# Register the lab deployments on the Prefect server at PREFECT_API_URL.
deploy: $(STAMP)
	$(BIN)/python -m flows.deploy --pool $(or $(POOL),lab) --source $(or $(SOURCE),$(CURDIR))

# Per-stage cost of running a stage as a flow rather than calling the services directly.
flow-overhead: $(STAMP)
	$(BIN)/python -m flows.overhead

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The web tests drive Debian's Chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; \
	  exit 1; fi; }

# docker-compose.yml is validated with `docker-compose config` (tests/test_compose.py):
# Debian's docker-compose (no Docker engine is needed, and none runs here).
compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q docker-compose; \
	  else echo "the compose check needs Debian's docker-compose: sudo apt-get install docker-compose" >&2; \
	  exit 1; fi; }

# axe-core (accessibility rules the browser tests run on every page) from the npm registry,
# at the version package-lock.json pins.
web-tools: node_modules/axe-core/axe.min.js

node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# openapi-python-client for the generated-client contract test (tests/contract), in a venv
# of its own: it pins httpx and typer below the versions the project uses.
CLIENT_VENV := .venv-client
client-tools: $(CLIENT_VENV)/bin/openapi-python-client

$(CLIENT_VENV)/bin/openapi-python-client:
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install --quiet openapi-python-client==0.29.1

pytest: $(STAMP) browser compose web-tools client-tools
	$(BIN)/pytest

test: lint typecheck pytest

# The OpenAPI document's examples are real exchanges recorded from the API tests on SQLite
# (tests/examples_recorder.py); tests/api/test_examples.py checks them against the schemas.
examples: $(STAMP)
	LIMS_RECORD_EXAMPLES=api/openapi_examples.json $(BIN)/pytest -p no:cacheprovider -k "not postgresql" \
		--ignore=tests/api/test_examples.py tests/api tests/flows/test_api_start.py \
		tests/reliability/test_input_documents.py tests/reliability/test_input_records.py \
		tests/custody/test_checkpoint_api.py

# Benchmarks print figures and ratios against a baseline measured in the same run
# (not part of `make test`; see docs/performance.md). About 25 minutes on 2 cores.
bench: $(STAMP)
	$(BIN)/python -m bench.lineage
	$(BIN)/python -m bench.custody
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.dossier
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.flows --prefect postgres

clean:
	rm -rf $(VENV) $(CLIENT_VENV) var/*.db var/*.db-*
