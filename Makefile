# userreg: `make run` starts the whole system locally, `make test` runs the test suite,
# `make bench` prints the benchmark figures. Each sets up the virtual environment it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := shared services/registration services/mailer services/confirmation-web services/console tools/inbox admin
STAMP := $(VENV)/.installed

.PHONY: install run test test-full bench chromium sdk clean

$(STAMP): $(foreach p,$(PACKAGES),$(p)/pyproject.toml) tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(foreach p,$(PACKAGES),-e $(p)) -r tests/requirements.txt
	touch $@

install: $(STAMP)

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The SDK tests drive the official Backendless JavaScript SDK, pinned in tests/sdk/package-lock.json.
SDK_STAMP := tests/sdk/node_modules/.installed

$(SDK_STAMP): tests/sdk/package.json tests/sdk/package-lock.json
	@command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { \
	  echo "make sdk: node and npm are missing; install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)," \
	       "the SDK tests (tests/e2e/test_sdk_*.py) need them" >&2; exit 1; }
	cd tests/sdk && npm ci --no-audit --no-fund
	touch $@

# The console's accessibility checks inject axe-core, pinned in tests/a11y/package-lock.json.
A11Y_STAMP := tests/a11y/node_modules/.installed

$(A11Y_STAMP): tests/a11y/package.json tests/a11y/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "make sdk: npm is missing; install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)," \
	       "the console's accessibility checks (tests/integration/console) need it" >&2; exit 1; }
	cd tests/a11y && npm ci --no-audit --no-fund
	touch $@

sdk: $(SDK_STAMP) $(A11Y_STAMP)

run: install
	$(BIN)/userreg run

test: install chromium sdk
	$(BIN)/pytest -n 2 --dist loadgroup

# The fault-injection runs with their full counts (1,000 registrations per fault).
test-full: install chromium sdk
	USERREG_FULL_FAULTS=1 $(BIN)/pytest -n 2 --dist loadgroup

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) test-artifacts tests/sdk/node_modules tests/a11y/node_modules
