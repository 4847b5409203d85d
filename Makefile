# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_PORT ?= 5432

.PHONY: install demo test lint postgres bench clean

$(PY):
	python3 -m venv $(VENV)

# Re-install when the dependency list changes; the stamp keeps `make demo` fast afterwards.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	touch $@

install: $(STAMP)

demo: install
	$(VENV)/bin/leadshop demo

# PostgreSQL tests fail, never skip, in CI: start the machine's cluster when none answers.
postgres:
	@if ! pg_isready -q -h 127.0.0.1 -p $(PG_PORT) 2>/dev/null; then \
	  command -v pg_ctlcluster >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql; }; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
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
