# trafex: the single entry point. CI calls the same targets a person does.
#   make run    set up, then start trafexd with its gobgpd sidecar on loopback
#   make test   set up, then run the whole test suite
#   make lint   ruff + mypy --strict
#   make bench  print the benchmarks' numbers
#   make soak   100,000 rules churned against a real FRR; prints RSS and whether tables agree
#   make lab    set up, then build the talk's four-router lab (make lab-down removes it)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gobgpd golang-github-osrg-gobgp-dev frr nftables tshark iproute2 \
	python3-venv python3-dev procps libpcap0.8 traceroute iputils-ping curl
GEN_STAMP := trafex/_gen/.stamp
PROTOS := $(wildcard proto/trafex/v1/*.proto)

.PHONY: setup apt venv stubs run test test-unit test-integration test-lab lint bench lab lab-down clean

setup: apt venv stubs

# Installs the Debian packages only when one is missing, so a second run is quick.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "setup: installing Debian packages:" $$missing; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

stubs: $(GEN_STAMP)

$(GEN_STAMP): $(VENV)/.installed gobgp/gen_stubs.py $(PROTOS)
	$(PY) gobgp/gen_stubs.py
	touch $@

run: setup
	$(VENV)/bin/trafexd $(if $(CONFIG),--config $(CONFIG))

test: setup
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -q -ra tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest -q -ra tests/integration $(PYTEST_ARGS)

test-lab: setup
	$(PY) -m pytest -q -ra -s tests/lab $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/trafex lab up

lab-down: setup
	$(VENV)/bin/trafex lab down

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# Not part of `make test`: 100,000 rules churned at 1,000/s against a real FRR (root).
# SOAK_SECONDS=60 make soak for a short run; SOAK_ARGS for bench/soak.py's options.
.PHONY: soak
soak: setup
	$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf trafex/_gen build *.egg-info .mypy_cache .ruff_cache .pytest_cache
