# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test browsers lint format bench bench-load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/crm up

# Browser tests drive Debian's browsers, never downloaded builds: chromium, firefox-esr
# (through puppeteer-core, so node too) and WebKitGTK's driver on an Xvfb display. Install
# what is missing where we can, fail clearly where not.
BROWSER_PACKAGES := /usr/bin/chromium:chromium /usr/bin/firefox-esr:firefox-esr \
	/usr/bin/WebKitWebDriver:webkit2gtk-driver /usr/bin/Xvfb:xvfb /usr/bin/node:nodejs /usr/bin/npm:npm
NODE_DIR := tests/browser/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
# One process per engine for the three-engine tests (pytest-xdist), fewer on a small machine.
ENGINE_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 3 ] && n=3; echo $$n)

browsers:
	@missing=""; for pair in $(BROWSER_PACKAGES); do \
		[ -x "$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "Browser tests need these packages:$$missing (sudo apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi

# puppeteer-core, exactly as the lockfile has it.
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | browsers
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

test: $(DEV_STAMP) browsers $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest --ignore=tests/browser/test_engines.py
	$(BIN)/python -m pytest -n $(ENGINE_JOBS) --dist loadgroup tests/browser/test_engines.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(DEV_STAMP)
	$(BIN)/python bench/bench_contacts.py

bench-load: $(DEV_STAMP)
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache $(NODE_DIR)/node_modules
