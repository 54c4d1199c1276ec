# Two commands do all the set-up on a fresh machine: `make dev` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
PORT ?= 8000
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: dev test lint typecheck template-lint sam-build unit bench clean sandbox-tools browser-tools openapi console

$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip
	$(TOOLS)/bin/python -m pip install -q -r requirements-tools.txt
	touch $@

# bubblewrap isolates run_python's code locally (docs/isolation.md); installed from Debian's packages where possible.
sandbox-tools:
	@sh scripts/install_bwrap.sh

# headless chromium for the JavaScript client's browser check, from Debian's packages where possible.
browser-tools:
	@sh scripts/install_chromium.sh

## console: build the web console (console/dist, served at /console/) with its pinned packages (npm ci), when changed
console: console/dist/index.html

console/node_modules/.installed: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	touch $@

console/dist/index.html: console/node_modules/.installed $(wildcard console/src/*) console/build.mjs console/tsconfig.json clients/js/src/index.ts
	cd console && npm run build

## dev: install, then serve every route group on http://localhost:$(PORT)/ap/v1/agent (the console at /console/)
dev: $(VENV)/.installed sandbox-tools console
	$(PY) -m devserver --port $(PORT)

## test: every check CI runs: ruff, mypy, the template checks, sam build, pytest
test: lint typecheck template-lint sam-build unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The layer as a package; each function on its own (every one is an `app` module).
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy layers/common/agent_core
	for f in functions/*/app.py; do $(VENV)/bin/mypy $$f || exit 1; done
	$(VENV)/bin/mypy clients/python/src/autogpt_client

template-lint: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/python scripts/lint_transformed.py template.yaml
	$(TOOLS)/bin/sam validate --lint --region $(AWS_DEFAULT_REGION)

sam-build: $(TOOLS)/.installed
	rm -rf .aws-sam/ci-build
	$(TOOLS)/bin/sam build --build-dir .aws-sam/ci-build --cache-dir .aws-sam/ci-cache >/dev/null
	$(TOOLS)/bin/python scripts/check_layer_arch.py .aws-sam/ci-build/CommonLayer
	test -f .aws-sam/ci-build/ConsoleFunction/static/index.html  # the console built into its function (makefile)
	@echo "sam build: ok"

unit: $(VENV)/.installed sandbox-tools browser-tools console
	$(VENV)/bin/pytest -q

## bench: print the benchmarks' figures (not a test): tables only, no metric or log lines of the code they run
bench: export POWERTOOLS_METRICS_DISABLED := true
bench: export POWERTOOLS_LOG_LEVEL := WARNING
bench: $(VENV)/.installed
	$(PY) -m benchmarks.http
	$(PY) -m benchmarks.cold_start
	$(PY) -m benchmarks.warm
	$(PY) -m benchmarks.ddb_calls
	$(PY) -m benchmarks.counter_writes
	$(PY) -m benchmarks.artifacts
	$(PY) -m benchmarks.steps
	$(PY) -m benchmarks.sandbox
	$(PY) -m benchmarks.runs
	$(PY) -m benchmarks.push
	PYTHONPATH=clients/python/src $(PY) -m benchmarks.conditional

## openapi: rewrite layers/common/agent_core/openapi.json from the functions' routes (a test says when it is stale)
openapi: $(VENV)/.installed
	$(PY) scripts/openapi.py

clean:
	rm -rf $(VENV) $(TOOLS) .venv-compat .aws-sam .pytest_cache .ruff_cache console/node_modules console/dist
