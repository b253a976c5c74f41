# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak keyset clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lapor-gateway serve

lint: $(STAMP)
	$(BIN)/ruff check gateway channels normalizer sinks tests bench
	$(BIN)/ruff format --check gateway channels normalizer sinks tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# `make bench` runs the standard comparison; `make bench soak` the long fixed-rate run; `make bench keyset`
# pages a 1M-row store. Scenario names work the same way: `make bench manual`.
bench: $(STAMP)
	$(BIN)/python bench/bench.py $(filter-out bench,$(MAKECMDGOALS))

soak keyset manual twilio whatsapp:
	@:

clean:
	rm -rf $(VENV) data/*.db
