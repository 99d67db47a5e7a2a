# userreg: `make run` starts the whole system locally, `make test` runs the test suite,
# `make bench` prints the benchmark figures. Each sets up the virtual environment it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := shared services/registration services/mailer services/confirmation-web tools/inbox admin
STAMP := $(VENV)/.installed

.PHONY: install run test test-full bench chromium clean

$(STAMP): $(foreach p,$(PACKAGES),$(p)/pyproject.toml) tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(foreach p,$(PACKAGES),-e $(p)) -r tests/requirements.txt
	touch $@

install: $(STAMP)

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(BIN)/userreg run

test: install chromium
	$(BIN)/pytest -n 2 --dist loadgroup

# The fault-injection runs with their full counts (1,000 registrations per fault).
test-full: install chromium
	USERREG_FULL_FAULTS=1 $(BIN)/pytest -n 2 --dist loadgroup

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) test-artifacts
