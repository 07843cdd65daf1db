# Two commands: `make run` (first run, no services needed) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1:8000
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-sdk lint install migrate demo bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[dev]"
	# The Python SDK (clients/python) with both adapters' frameworks: the server suite
	# drives it against a live server, and its own tests exercise the adapters.
	$(PIP) install --quiet -e "./clients/python[openai-agents,langgraph]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	DEBUG=1 $(PY) manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(PY) manage.py load_demo

run: demo
	DEBUG=1 $(PY) manage.py runserver $(HOST)

# The whole suite (PostgreSQL when DATABASE_URL points at it; SQLite otherwise).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Fast suite: no browser, no slow integration tests.
test-fast: install
	$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

# The SDK's own unit tests (a stub server, no Django).
test-sdk: install
	cd clients/python && $(abspath $(PY)) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || true

clean:
	rm -rf $(VENV) db.sqlite3 var test-output
