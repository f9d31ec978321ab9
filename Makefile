# Two commands for a newcomer: `make run` (demo) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/scsp demo

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy ocpi221 optimizer profiles scsp cposim

bench: install
	$(PY) benchmarks/optimizer_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
	rm -f scsp.db scsp.db-wal scsp.db-shm simulator.db simulator.db-wal simulator.db-shm
