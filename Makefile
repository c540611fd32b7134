# The two commands of the README: each sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit lint bench messages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make demo: the whole pipeline on the embedded default (local broker, embedded ClickHouse under
## data/demo), 50,000 simulated events, a summary, then the dashboard on that data until Ctrl-C
## (make demo DEMO_ARGS="--no-dashboard" to end after the summary; --alerting FILE adds alerts)
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/privaudit demo --events 50000 $(DEMO_ARGS)

## make test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-unit: the fast suite (no broker, engine or browser; about half a minute)
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## make lint: ruff; mypy, strict (a short baseline in pyproject.toml); the import-linter contracts
## (layers, no cycles). mypy and import-linter read the installed layout: tools/srctree.py
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python tools/srctree.py $(CURDIR)/$(BIN)/mypy
	$(BIN)/python tools/srctree.py --in-tree $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml

## make bench: the benchmarks recorded in docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python bench/check_throughput.py --events 200000 --json
	$(BIN)/python bench/pipeline_throughput.py --events 100000 --client kafka-python --processes 2 --json
	$(BIN)/python bench/pipeline_throughput.py --events 100000 --client confluent --processes 2 --json
	$(BIN)/python bench/alert_latency.py --json
	$(BIN)/python bench/insert_formats.py --json
	$(BIN)/python bench/broker_latency.py --seconds 180 --json
	$(BIN)/python bench/emitter_calls.py --events 20000 --rate 2000 --json

## make messages: extract the console's and the report's texts (privaudit/locale/privaudit.pot) and
## merge them into each language's catalogue; then translate what is new (docs/i18n.md)
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ -k t -k tf --no-location --sort-output --project privaudit \
		--copyright-holder privaudit -o privaudit/locale/privaudit.pot .
	$(BIN)/pybabel -q update -i privaudit/locale/privaudit.pot -d privaudit/locale -D privaudit \
		--ignore-obsolete --no-fuzzy-matching -w 120

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build *.egg-info
