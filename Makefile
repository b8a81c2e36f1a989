# MetaLayer: `make run` and `make test` are the quick start (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install system-deps lint format bench console luigid db-url db-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start the embedded database, seed the landing dir if empty, run the pipeline, print a summary.
run: install
	$(BIN)/metalayer quickstart

## Debian packages the tests use: Prometheus, Pushgateway, Chromium (installs only what is missing).
system-deps:
	@bash scripts/system-deps.sh

## Lint, then the whole test suite on a real (embedded) PostgreSQL.
test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/metalayer bench

console: install
	$(BIN)/metalayer console

luigid: install
	$(BIN)/metalayer luigid

db-url: install
	@$(BIN)/metalayer db url

db-stop: install
	$(BIN)/metalayer db stop

clean:
	-$(BIN)/metalayer db stop
	rm -rf $(VENV) .metalayer .pytest_cache .ruff_cache *.egg-info
