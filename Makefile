# Every target sets up what it needs: a .venv made with $(PYTHON) (3.11+) and the project installed into it.
PYTHON ?= python3
ARCH ?= arm64
# `make package PYTHON=3.13`: a bare version is the Lambda runtime's Python (default 3.12, the template's), and
# the tools here still run with python3.
ifneq ($(filter 3.%,$(PYTHON)),)
LAMBDA_PYTHON := $(PYTHON)
override PYTHON := python3
else ifneq ($(shell echo '$(PYTHON)' | grep -xE '[0-9.]+'),)
$(error PYTHON=$(PYTHON) is a version Lambda does not run: give 3.12 or 3.13, or an interpreter such as python3.12)
else
LAMBDA_PYTHON ?= 3.12
endif
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# make local SOURCE=dynamodb-streams: the path through DynamoDB Streams and an EventBridge Pipe instead of Kinesis
SOURCE ?= kinesis

.PHONY: demo test lint bench bench-record package local clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(VENV)/.runtime  ## run the bundled cities event through the handler
	$(BIN)/python -m pipeline demo

package: $(VENV)/.runtime  ## dist/lambda.zip for Lambda (ARCH=arm64|x86_64, PYTHON=3.12|3.13): handler.py, pipeline/, toolz, msgspec
	$(BIN)/python deploy/package.py dist/lambda.zip --arch $(ARCH) --python $(LAMBDA_PYTHON)

local: $(VENV)/.test  ## the whole path on a moto server it starts: DynamoDB -> Kinesis (or SOURCE=dynamodb-streams: a pipe) -> run-local + handler -> S3
	$(BIN)/python -m pipeline sandbox --source $(SOURCE)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint  ## lint, then unit, doctest, property, moto-server and benchmark-smoke tests
	$(BIN)/python -m pytest --benchmark-disable $(PYTEST_ARGS)

bench: $(VENV)/.test  ## the benchmark suite (a few minutes); writes .benchmarks/RESULTS.md (not committed)
	$(BIN)/python -m pytest benchmarks --benchmark-columns=min,median,rounds $(PYTEST_ARGS)

bench-record: $(VENV)/.test  ## the benchmark suite, updating the committed benchmarks/RESULTS.md (run on a quiet machine)
	BENCH_RESULTS=benchmarks/RESULTS.md $(BIN)/python -m pytest benchmarks --benchmark-columns=min,median,rounds $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache .benchmarks
