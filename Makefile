# Two commands: `make run` (first run, no services needed) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# The venv is made without pip of its own (ensurepip alone took ~9 s of a fresh
# `make run`): the system's pip (22.3 or newer) installs into it with --python.
PIP := python3 -m pip --python $(PY)
HOST ?= 127.0.0.1:8000
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
# Every dependency, direct and transitive, pinned with its hashes (docs: "Dependencies"):
# the runtime lock serves Warden (`make run`); the full lock adds the test and adapter
# tool chain (`make test`, CI). The runtime lock's pins are the full lock's, so both
# describe one resolution.
RUNTIME_LOCK := requirements/runtime.txt
LOCK := requirements/lock.txt
UV_VERSION ?= 0.13.9

.PHONY: docs run test test-fast test-sdk lint install install-runtime lock migrate demo bench clean mutation mutation-ci

# Reinstall whenever pyproject.toml or a lock changes. Only the pinned, hashed packages
# are installed; Warden and the Python SDK (clients/python, whose test and adapter
# dependencies are in the dev extra) go in without resolving anything, and `pip check`
# refuses a lock that misses a dependency pyproject.toml names.
$(RUNTIME_STAMP): pyproject.toml $(RUNTIME_LOCK)
	test -x $(PY) || python3 -m venv --without-pip $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --require-hashes -r $(RUNTIME_LOCK)
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e .
	$(PIP) check || { echo "$(RUNTIME_LOCK) does not match pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) clients/python/pyproject.toml $(LOCK)
	$(PIP) install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e ./clients/python
	$(PIP) check || { echo "$(LOCK) does not match pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $(STAMP)

# `make run` needs only the runtime; `make test` (and CI) the whole tool chain.
install-runtime: $(RUNTIME_STAMP)
install: $(STAMP)

# Re-resolve the lock from pyproject.toml, keeping current pins where they still fit;
# `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME) moves pins forward.
lock:
	test -x $(PY) || python3 -m venv --without-pip $(VENV)
	test -x $(VENV)/bin/uv || $(PIP) install --quiet "uv==$(UV_VERSION)"
	mkdir -p $(dir $(LOCK))
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --index-url https://pypi.org/simple $(LOCK_ARGS) -o $(LOCK)
	$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal \
		--python-version 3.11 --index-url https://pypi.org/simple --constraint $(LOCK) \
		-o $(RUNTIME_LOCK)

migrate: install-runtime
	DEBUG=1 $(PY) manage.py migrate --noinput

# The banner and approvers' e-mail links follow HOST unless WARDEN_PUBLIC_URL is set.
PUBLIC_URL = $(or $(WARDEN_PUBLIC_URL),http://$(HOST))

demo: migrate
	DEBUG=1 WARDEN_PUBLIC_URL=$(PUBLIC_URL) $(PY) manage.py load_demo

run: demo
	DEBUG=1 WARDEN_PUBLIC_URL=$(PUBLIC_URL) $(PY) manage.py runserver $(HOST)

# The whole suite (PostgreSQL when DATABASE_URL points at it; SQLite otherwise).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Fast suite: no browser, no slow integration tests. CI's SQLite pass also leaves out
# the db_independent tests, which its PostgreSQL pass has run.
FAST_MARKERS ?= not slow and not e2e
test-fast: install
	$(PY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# The SDK's own unit tests (a stub server, no Django).
test-sdk: install
	cd clients/python && $(abspath $(PY)) -m pytest -q $(PYTEST_ARGS)

# Mutation testing (docs/mutation.md). `make mutation`: mutmut 3 over the modules in
# [tool.mutmut] (pyproject.toml), one child at a time (the machine is shared), then the
# score per module in test-output/mutation-score.txt. Slow (hours); MUTANTS narrows it to
# mutmut name globs, e.g. MUTANTS='approvals.gate.*'. Resumes where a run stopped unless
# MUTATION_FRESH=1. `make mutation-ci`: the pinned mutants of .ci/mutation_pins.py, each
# run against only the tests that must kill it; fails if one survives (minutes).
MUTANTS ?=
# MODULES="gate guard" narrows to modules (.ci/mutation_run.py), MUTANTS to mutmut name globs.
mutation: install
	mkdir -p test-output
	$(PY) .ci/mutation_run.py $(MODULES) $(if $(MUTANTS),-- $(MUTANTS)) | tee test-output/mutation-score.txt

mutation-ci: install
	$(PY) .ci/mutation_pins.py $(PINS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff format --check . || true

clean:
	rm -rf $(VENV) db.sqlite3 var test-output mutants

# The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8001; CI builds it with
# --strict (tests/test_docs.py).
DOCS_HOST ?= 127.0.0.1:8001
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve -a $(DOCS_HOST)
