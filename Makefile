# userreg: `make run` starts the whole system locally, `make test` runs the test suite,
# `make bench` prints the benchmark figures. Each sets up the virtual environment it needs.
#
# The libraries come pinned, with their hashes, from requirements/runtime.txt (what the system
# needs to run) and requirements/test.txt (what the tests add); the project's own packages are then
# installed from this checkout without dependencies. `make lock` recompiles both files.
# VENV chooses the virtual environment:  make VENV=/tmp/try-venv install

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := shared services/registration services/mailer services/confirmation-web services/console tools/inbox admin
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
RUNTIME_LOCK := requirements/runtime.txt
TEST_LOCK := requirements/test.txt
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
# The resolver `make lock` uses, pinned like everything else.
UV_VERSION := 0.13.9

.PHONY: install install-test lock run test test-full bench chromium compose pgbouncer node sdk clean i18n

$(RUNTIME_STAMP): $(PYPROJECTS) VERSION $(RUNTIME_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(RUNTIME_LOCK)
	$(BIN)/pip install --quiet --no-deps $(foreach p,$(PACKAGES),-e $(p))
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP) $(TEST_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	touch $@

# What the system needs to run, and nothing else.
install: $(RUNTIME_STAMP)

# The above and the test libraries.
install-test: $(TEST_STAMP)

# Pin every library the packages and tests/requirements.txt name, with its hashes, for Python 3.11
# and later on any platform. Pins that still fit are kept; `make lock LOCK_FLAGS=--upgrade` takes
# the newest versions of everything.
LOCK_FLAGS ?=

lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes $(LOCK_FLAGS) \
	  --custom-compile-command "make lock" $(foreach p,$(PACKAGES),--no-emit-package userreg-$(notdir $(p))) \
	  requirements/runtime.in -o $(RUNTIME_LOCK)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes $(LOCK_FLAGS) \
	  --custom-compile-command "make lock" requirements/test.in -o $(TEST_LOCK)

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# tests/system/test_compose_config.py has `docker compose config` (or Debian's docker-compose)
# validate docker-compose.yml; neither needs a running Docker engine.
compose:
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

# tests/pooler runs the flows through a PgBouncer of its own (Debian's, in transaction mode).
pgbouncer:
	@test -x /usr/sbin/pgbouncer || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

# The SDK tests (tests/e2e/test_sdk_*.py) and the console's accessibility checks need Node.js and npm.
node:
	@command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

# The SDK tests drive the official Backendless JavaScript SDK, pinned in tests/sdk/package-lock.json.
SDK_STAMP := tests/sdk/node_modules/.installed

$(SDK_STAMP): tests/sdk/package.json tests/sdk/package-lock.json
	@$(MAKE) --no-print-directory node
	cd tests/sdk && npm ci --no-audit --no-fund
	touch $@

# The console's accessibility checks inject axe-core, pinned in tests/a11y/package-lock.json.
A11Y_STAMP := tests/a11y/node_modules/.installed

$(A11Y_STAMP): tests/a11y/package.json tests/a11y/package-lock.json
	@$(MAKE) --no-print-directory node
	cd tests/a11y && npm ci --no-audit --no-fund
	touch $@

sdk: $(SDK_STAMP) $(A11Y_STAMP)

run: install
	$(BIN)/userreg run

test: install-test chromium compose pgbouncer sdk
	$(BIN)/pytest -n 2 --dist loadgroup

# The fault-injection runs with their full counts (1,000 registrations per fault).
test-full: install-test chromium compose pgbouncer sdk
	USERREG_FULL_FAULTS=1 $(BIN)/pytest -n 2 --dist loadgroup

bench: install-test
	$(BIN)/python -m benchmarks

# The languages: extract the words the shipped templates mark {% trans %} (babel.cfg) into the
# catalogs' template, bring every language's catalog up to date with it (a changed string comes
# back fuzzy, for its translator), and compile the catalogs the package ships.
CATALOGS := shared/userreg/shared/locale
i18n: install
	$(BIN)/pybabel -q extract -F babel.cfg --no-location --sort-output --project userreg -o $(CATALOGS)/messages.pot .
	$(BIN)/pybabel -q update -i $(CATALOGS)/messages.pot -d $(CATALOGS) --ignore-obsolete
	$(BIN)/pybabel -q compile -d $(CATALOGS)

clean:
	rm -rf $(VENV) test-artifacts tests/sdk/node_modules tests/a11y/node_modules
