# The two commands of the README: `make up` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: up test unit lint bench setup clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

## Start the gateway on 127.0.0.1:8080 with the example functions (installs and starts Docker if needed).
up: setup
	$(BIN)/faas up functions functions/sam-hello/template.yaml

## Lint (ruff, format and rules; mypy, strict on the invoke room), then every test: unit tests, then
## integration tests against a real Docker engine.
test: lint
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff format --check --quiet faas gateway tests bench
	$(BIN)/ruff check --quiet faas gateway tests bench
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

bench: setup
	$(BIN)/python bench/invoke.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
