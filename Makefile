# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM ?= /usr/bin/chromium
CERTUTIL ?= /usr/bin/certutil
PG_PORT ?= 5432
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install demo test lint postgres bench clean

$(PY):
	python3 -m venv $(VENV)

# Re-install when the dependency list changes; the stamp keeps `make demo` fast afterwards.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	touch $@

# Debian's Chromium, driven by Lighthouse and Playwright (their own browser downloads are not
# used), and NSS's certutil, which hands Chromium the CAs SSL_CERT_FILE adds (leadshop/browser.py).
$(CHROMIUM) $(CERTUTIL):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium libnss3-tools

# Lighthouse, pinned in package-lock.json, into this folder's node_modules (never globally).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(CHROMIUM) $(CERTUTIL) $(NODE_STAMP)

demo: install
	$(VENV)/bin/leadshop demo

# PostgreSQL tests fail, never skip, in CI: start the machine's cluster when none answers.
postgres:
	@if ! pg_isready -q -h 127.0.0.1 -p $(PG_PORT) 2>/dev/null; then \
	  command -v pg_ctlcluster >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }; \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && break; sleep 1; done; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: install postgres lint
	$(VENV)/bin/pytest -q

bench: install
	$(PY) bench/throughput.py --leads 50

clean:
	rm -rf .leadshop
