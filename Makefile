# The single entry point: `make demo`, `make test`, `make lint`, `make typecheck`,
# `make bench`. Every target creates the virtualenv in .venv first if needed.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamp file: the venv is (re)installed only when pyproject.toml changes.
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint typecheck docstrings pytest bench test-tools clean

help:
	@echo "make demo       examples/demo.py: a checkout service, its breakers operated live (~15 s)"
	@echo "make test       lint, type-check, docstring check and the whole test suite"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make typecheck  mypy --strict"
	@echo "make bench      per-call overhead vs. peer libraries, config propagation latency"
	@echo "make venv       create .venv with cbcontrol[all] and the dev dependency group"
	@echo "make clean      remove .venv, build output and caches"

venv: $(STAMP)

# pip >= 25.1 understands --group (PEP 735 dependency groups).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[all]" --group dev
	touch $@

demo: venv
	$(BIN)/python examples/demo.py

test: lint typecheck docstrings pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

docstrings: venv
	$(BIN)/interrogate tests

pytest: venv test-tools
	$(BIN)/pytest

bench: venv test-tools
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/propagation.py
	$(BIN)/python bench/ack.py
	$(BIN)/python bench/scale.py

# Commands the tests take from Debian, each as command=package: the etcd server and
# client (etcd tests, the RBAC script in deploy/), openssl (TLS certificates) and promtool
# (`promtool test rules` on deploy/prometheus/). As root (CI, a fresh machine) the missing
# ones are installed here; Debian's postinsts must not leave an etcd or a Prometheus
# running, so service starts are denied for the duration of the install (the tests start
# their own etcd).
TEST_COMMANDS := etcd=etcd-server etcdctl=etcd-client openssl=openssl promtool=prometheus

test-tools:
	@missing=; for pair in $(TEST_COMMANDS); do \
	  command -v "$${pair%%=*}" >/dev/null || missing="$$missing $${pair#*=}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing from PATH, install with: apt-get install$$missing" >&2; \
	  exit 1; \
	fi; \
	policy=/usr/sbin/policy-rc.d; made_policy=; \
	if [ ! -e $$policy ]; then \
	  printf '#!/bin/sh\nexit 101\n' > $$policy && chmod +x $$policy && made_policy=1; \
	fi; \
	trap '[ -z "$$made_policy" ] || rm -f '$$policy EXIT; \
	apt-get update -q; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing </dev/null; \
	for pair in $(TEST_COMMANDS); do command -v "$${pair%%=*}" >/dev/null; done

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
