# Two commands do all the set-up on a fresh machine:
#   make demo   the main job: local Kafka, a worker, sample data, live signals, backtest report
#   make test   the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup system kafka-jars clean constraints

demo: setup kafka-jars
	$(BIN)/gnosis demo

test: setup system kafka-jars
	$(BIN)/ruff check gnosis tests bench scripts
	$(BIN)/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

system:
	scripts/setup-system.sh

kafka-jars: setup
	scripts/setup-system.sh --broker-only
	$(BIN)/gnosis kafka fetch

lint: setup
	$(BIN)/ruff check gnosis tests bench scripts

bench: setup system kafka-jars
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

constraints: setup
	$(BIN)/pip freeze --exclude-editable | grep -v '^gnosis' | sed '1i # The versions CI ran with (pip freeze of the dev environment), so a fresh install gets\n# them too; make setup installs with -c constraints.txt. Regenerate after changing\n# pyproject.toml: make constraints.' > constraints.txt

clean:
	-$(BIN)/gnosis kafka down
	rm -rf out .pytest_cache
