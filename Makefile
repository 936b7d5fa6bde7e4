# Every target bootstraps .venv on first use: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck bench soak clean chromium

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

# Tests: pytest-xdist runs everything but the rate-sensitive tests on TEST_WORKERS processes
# (each with its own Redis, SQLite files and PostgreSQL schema); those (marked slow: real
# fleets judged by a 20 calls/s limit; serial: limiter timings) then run one at a time, with
# the machine to themselves. Both runs always run; make fails if either failed.
TEST_WORKERS ?= auto

test: $(STAMP) chromium
	@$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow and not serial"; parallel=$$?; \
	$(BIN)/pytest -q -m "slow or serial"; serial=$$?; \
	test $$parallel -eq 0 && test $$serial -eq 0

# The inner loop: the pure core and the in-process tests (no fleet, no process of their own,
# no limiter timings).
test-fast: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow and not serial and not processes"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/callbacks.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/audience.py
	$(BIN)/python bench/broker_memory.py
	$(BIN)/python bench/meter.py

soak: $(STAMP)
	SOAK=1 $(BIN)/pytest -q tests/faults --timeout 1800

clean:
	rm -rf $(VENV) .state
