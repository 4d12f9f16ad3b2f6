# chute — `make run` and `make test` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit workflow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: the bundled samples through the real state machine on the embedded local AWS.
# The demo lowers the Batch threshold so one sample takes the Batch route; broken.csv is
# expected to be quarantined.
run: install
	$(BIN)/chute run samples --large-threshold 100000 --expect-quarantine broken.csv

lint: install
	$(BIN)/ruff check chute tasks batch tests
	$(BIN)/ruff format --check chute tasks batch tests

typecheck: install
	$(BIN)/mypy

# Unit tests use moto's in-process mock; workflow and CLI tests run the embedded server.
# They are separate pytest processes because mock_aws resets the backends the server shares.
unit: install
	$(BIN)/pytest tests/unit -q

workflow: install
	$(BIN)/pytest tests/workflow tests/e2e -q

test: lint typecheck unit workflow

clean:
	rm -rf $(VENV) .chute chute-out .pytest_cache .mypy_cache .ruff_cache
