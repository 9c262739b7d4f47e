# gasdesk — two commands on a fresh machine:  make run   |   make test
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run run-cluster test test-all install test-deps lint test-sqlite test-postgres test-cluster test-browser bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## run: install, migrate, seed demo data once, serve on http://127.0.0.1:8000
run: install
	$(BIN)/gasdesk db upgrade
	$(BIN)/gasdesk seed-demo
	@echo "gasdesk 正在启动: http://$(HOST):$(PORT)  （演示账号见上方，或首页）"
	$(BIN)/gasdesk serve --host $(HOST) --port $(PORT)

## run-cluster: the scale-out set-up on this machine — PostgreSQL (kept in var/cluster), Redis, two web processes
## and a worker behind nginx on http://127.0.0.1:8000; Ctrl-C stops everything
run-cluster: install test-deps
	$(BIN)/gasdesk cluster --port $(PORT)

## test-deps: Debian packages the tests need (PostgreSQL server, Redis, Chromium, CJK fonts)
test-deps:
	@bash scripts/install-test-deps.sh

lint: install
	$(BIN)/ruff check gasdesk tests bench scripts
	$(BIN)/mypy

# Bytecode is cached (in __pycache__, ignored by git) even where the environment sets PYTHONDONTWRITEBYTECODE:
# without it every pytest process compiled and assertion-rewrote the ~370 test modules again (collecting took
# 17.7 s of CPU instead of 8.2 s, in each of the five pytest processes of make test) and every live server and
# subprocess compiled gasdesk.
unexport PYTHONDONTWRITEBYTECODE

# Three pytest-xdist workers on this 2-core machine: the browser tests wait on Chromium and on their servers,
# and a third worker fills those waits (SQLite pass 414 s -> 349 s). The bench-marked load tests run alone
# afterwards, so that their latency figures are not measured beside another worker's tests.
XDIST := -n 3 --dist worksteal
# The modules holding bench-marked tests: the bench run collects only these (collecting the whole suite to
# deselect all but one test cost ~8 s of CPU). tests/system/test_make_targets.py keeps the list complete.
BENCH_TESTS := tests/security/test_slow_consumer.py tests/telephony/sip/test_g711_rtp.py

test-sqlite: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 $(XDIST) -m "not bench and not cluster"
	$(BIN)/python -m pytest -q -p no:cacheprovider -m bench $(BENCH_TESTS)

test-postgres: install
	bash scripts/with-postgres.sh $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 $(XDIST) -m "not browser and not bench and not no_database and not cluster"

# The fault tests (tests/cluster): each module starts its own PostgreSQL, Redis, gasdesk processes and nginx,
# and kills or restarts them — servers of their own, so `make test` runs them beside the PostgreSQL pass (they
# wait on restarts half the time; after it they added ~25 s).
test-cluster: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=10 -m cluster tests/cluster

## test: everything, on SQLite and on a throwaway PostgreSQL cluster; prints how long it took
test:
	@start=$$(date +%s); status=0; $(MAKE) --no-print-directory test-all || status=$$?; \
	took=$$(( $$(date +%s) - start )); \
	if [ $$status -eq 0 ]; then echo "make test: passed in $$((took / 60)) min $$((took % 60)) s"; \
	else echo "make test: FAILED after $$((took / 60)) min $$((took % 60)) s"; fi; exit $$status

# Lint (ruff + mypy: ~20 s of one core on a clean clone) runs beside the SQLite pass instead of before it; its
# result is awaited, and fails the run, before the PostgreSQL pass starts.
test-all: install test-deps
	@mkdir -p var; $(MAKE) --no-print-directory lint > var/lint.log 2>&1 & lint=$$!; \
	$(MAKE) --no-print-directory test-sqlite; status=$$?; \
	wait $$lint; lint_status=$$?; cat var/lint.log; \
	if [ $$lint_status -ne 0 ]; then echo "lint failed"; exit $$lint_status; fi; \
	[ $$status -eq 0 ] || exit $$status; \
	$(MAKE) --no-print-directory test-cluster > var/cluster.log 2>&1 & cluster=$$!; \
	$(MAKE) --no-print-directory test-postgres; status=$$?; \
	wait $$cluster; cluster_status=$$?; cat var/cluster.log; \
	[ $$status -eq 0 ] || exit $$status; exit $$cluster_status

bench: install
	$(BIN)/python bench/import_customers.py

clean:
	rm -rf $(VENV) var .pytest_cache
