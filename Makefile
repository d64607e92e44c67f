# Two commands do all the set-up on a fresh machine:
#   make demo   the main job: local Kafka, a worker, sample data, live signals, backtest
#               report; installs the core and the sample data's extra only
#   make test   the test suite (what CI runs); adds the test tool chain (.[dev])
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup setup-demo system kafka-jars clean constraints

demo: setup-demo kafka-jars
	$(BIN)/gnosis demo

test: setup system kafka-jars
	$(BIN)/ruff check gnosis tests bench scripts
	$(BIN)/pytest

setup-demo: $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml constraints.txt
	PYTHON=$(PYTHON) scripts/setup-system.sh --demo
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[sample]'
	touch $(DEMO_STAMP)

setup: $(STAMP)

$(STAMP): $(DEMO_STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

system:
	scripts/setup-system.sh

kafka-jars: setup-demo
	$(BIN)/gnosis kafka fetch

lint: setup
	$(BIN)/ruff check gnosis tests bench scripts

bench: setup system kafka-jars
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# One bench with the flags a BENCHMARKS.md row names, e.g.
#   make bench-pipeline ARGS='--partitions 8 --workers 2 --eos-commit "" --rate 2000'
bench-%: setup system kafka-jars
	$(BIN)/python bench/bench_$*.py $(ARGS)

constraints: setup
	$(BIN)/pip freeze --exclude-editable | grep -v '^gnosis' | sed '1i # The versions CI ran with (pip freeze of the dev environment), so a fresh install gets\n# them too; make setup installs with -c constraints.txt. Regenerate after changing\n# pyproject.toml: make constraints.' > constraints.txt

clean:
	-$(BIN)/gnosis kafka down
	rm -rf out .pytest_cache
