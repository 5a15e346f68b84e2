# One obvious way to run things: `make run` and `make test`.
# Both install what they need first: Python packages into .venv, Kafka's jars
# into Maven's local repository, and (for tests) Debian's prometheus and
# docker-compose packages.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run demo test test-unit test-e2e lint install native system-deps kafka-jars clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 (3.11+) not found: install it (apt-get install -y python3 python3-venv)"; exit 3; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

# The hot path compiled with mypyc (streams/native.py): again whenever its sources changed.
# Without a C compiler everything still runs, as Python (slower).
# A build that failed is not tried again on the same sources (build/native.failed holds their digest).
native: $(STAMP)
	@$(BIN)/python -c "import sys, streams.native as n; sys.exit(not n.up_to_date())" 2>/dev/null || { \
	  digest=$$($(BIN)/python -c "import streams.native as n; print(n.sources_digest())" 2>/dev/null); \
	  if [ -n "$$digest" ] && [ "$$(cat build/native.failed 2>/dev/null)" = "$$digest" ]; then \
	    echo "the hot path runs as Python: compiling these sources failed before (build/native.log; rm build/native.failed to try again)"; \
	  else \
	    echo "compiling the hot path with mypyc (about a minute; log: build/native.log)"; \
	    mkdir -p build; rm -f build/native.failed; \
	    ENGAGE_NATIVE=1 $(BIN)/python setup.py build_ext --inplace >build/native.log 2>&1 \
	      || { echo "$$digest" >build/native.failed; \
	           echo "could not compile the hot path (needs a C compiler and Python's headers; see build/native.log): it runs as Python, slower"; }; \
	  fi; }

kafka-jars:
	@command -v java >/dev/null || { echo "java not found: install a JDK 17+ (apt-get install -y openjdk-17-jre-headless)"; exit 3; }
	@command -v mvn >/dev/null || { echo "mvn not found: install Maven (apt-get install -y maven)"; exit 3; }
	@bash deploy/local/kafka.sh install

# promtool and prometheus (alert rule tests, the real-server test), amtool (checks the
# Alertmanager config) and docker-compose (validates docker-compose.yml) come from Debian's packages.
system-deps:
	@missing=""; \
	command -v promtool >/dev/null && command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

run: $(STAMP) native kafka-jars
	$(BIN)/engage run

demo: $(STAMP) native kafka-jars
	$(BIN)/engage demo

test: $(STAMP) native kafka-jars system-deps lint
	$(BIN)/pytest -q

test-unit: $(STAMP) native
	$(BIN)/pytest -q -m "not e2e"

test-e2e: $(STAMP) native kafka-jars system-deps
	$(BIN)/pytest -q -m e2e

lint: $(STAMP)
	$(BIN)/ruff check schemas streams sinks tests deploy
	$(BIN)/mypy

clean:
	rm -rf .engage-data .pytest_cache .mypy_cache .ruff_cache build streams/native-build.json
	find . -path ./.venv -prune -o -name '*.so' -print -delete
