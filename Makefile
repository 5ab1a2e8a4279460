# drf-instcache developer commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast servers lint typecheck bench bench-cold-writes bench-quick tox tox-ci quickstart clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## Install memcached and redis-server from Debian's packages when they are missing (root only).
servers:
	@missing=""; \
	command -v memcached >/dev/null || [ -x /usr/bin/memcached ] || missing="$$missing memcached"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing$$missing: install them (apt-get install$$missing) or the tests that need them are skipped"; fi; \
	fi

## Migrate a SQLite database, seed it and serve the sample API on 127.0.0.1:8000 (disk cache).
demo: $(STAMP)
	$(PY) -m example.demo

## The whole test suite, against real servers started on free loopback ports.
test: $(STAMP) servers
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP) servers
	$(PY) -m benchmarks --out results/full

## Cold reads and writes (README "Performance": cold page/retrieve and write tables).
bench-cold-writes: $(STAMP) servers
	$(PY) -m benchmarks --backends redis --workloads cold,writes --sizes 10,100,1000 --out results/cold-writes

bench-quick: $(STAMP) servers
	$(PY) -m benchmarks --quick --out results/quick

## Every tox env: Django 4.2 and 5.2 on Python 3.11, 6.0 on 3.12, 6.1 on 3.13 (pyenv's are found).
tox: $(STAMP)
	$(VENV)/bin/tox

## What CI runs besides `make test`: the whole suite on 6.1, the core layers on 4.2 and 6.0.
tox-ci: $(STAMP) servers
	$(VENV)/bin/tox -e py313-django61 -- -q
	$(VENV)/bin/tox -e py311-django42,py312-django60 -- -q tests/api tests/core tests/fastpath

## Follow the README's Quick start in a fresh venv (install line's extras only) and check its output.
quickstart: $(STAMP)
	$(PY) scripts/check_quickstart.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .tox var results
