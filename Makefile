# Every target bootstraps .venv on first use: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench soak clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dispatcher demo

# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser):
# installed with apt when it is missing and we may (root, apt present); elsewhere they skip
# (and fail under CI=true).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

test: $(STAMP) chromium
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/audience.py
	$(BIN)/python bench/broker_memory.py
	$(BIN)/python bench/meter.py

soak: $(STAMP)
	SOAK=1 $(BIN)/pytest -q tests/faults --timeout 1800

clean:
	rm -rf $(VENV) .state
