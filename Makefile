# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench eval soak keyset clean

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

# The normalizer's figures on the held-out reports it never trains on.
eval: $(STAMP)
	$(BIN)/lapor-gateway normalizer evaluate normalizer/data/heldout.jsonl

# `make bench` runs the standard comparison; `make bench soak` the long fixed-rate run; `make bench keyset`
# pages a 1M-row store. Scenario names work the same way: `make bench manual`.
bench: $(STAMP)
	$(BIN)/python bench/bench.py $(filter-out bench,$(MAKECMDGOALS))

soak keyset normalizer worker manual twilio whatsapp:
	@:

clean:
	rm -rf $(VENV) data/*.db
