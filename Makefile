# The README's two commands: `make demo` (the main job, on the lab) and `make test`.
# `make unit` (no lab, seconds) and `make lab-test` (lab hosts) run one half of the suite each.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LAB ?= demo
# What the main machine needs to build and run lab hosts (Debian 12).
# rsync: unit tests run the archive script's rsync calls against local directories.
# nftables: `lab cut A B` drops the frames between two hosts on the lab's bridge.
HOST_PACKAGES := debootstrap systemd-container apt-utils dpkg-dev zstd iproute2 iputils-ping openssh-client rsync nftables

.PHONY: setup host-packages demo status verify lint types test unit lab-test bench down gc

setup: host-packages $(VENV)/.installed

host-packages:
	@dpkg -s $(HOST_PACKAGES) >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(HOST_PACKAGES); }

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

demo: setup
	$(PY) -m lab up --name $(LAB) --hosts 4 --backup --with-packages
	PGCASCADE_LAB=$(LAB) $(VENV)/bin/pyinfra -y inventories/lab.py deploy.py
	@PGCASCADE_LAB=$(LAB) $(PY) -m tasks.status inventories/lab.py || true
	@$(PY) -m lab --name $(LAB) exec pg4 -- runuser -u postgres -- sh -c 'cd / && pgbackrest info' || true
	@cat docs/demo-next-steps.txt

status:
	PGCASCADE_LAB=$(LAB) $(PY) -m tasks.status inventories/lab.py

# The host-state spec (tests/spec, testinfra, read-only) against an inventory:
# `make verify` (the lab LAB) or `make verify INVENTORY=inventories/prod.py`.
INVENTORY ?= inventories/lab.py
verify:
	PGCASCADE_LAB=$(LAB) PGCASCADE_SPEC_INVENTORY=$(INVENTORY) $(PY) -m pytest tests/spec -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# mypy over the project's packages and entry points (mypy.ini says which; tests/ is not checked).
types: $(VENV)/.installed
	$(VENV)/bin/mypy

# Lint and types, then the whole suite, timed: its duration and slowest tests go to bench/results/suite.json.
# Two pytest workers, a test module each at a time (--dist loadfile): a lab module mostly waits on
# its hosts, and each worker's labs and snapshot carry its own letter and subnet.
PYTEST_PARALLEL := -n 2 --dist loadfile
test: setup lint types
	$(PY) bench/suite.py $(PYTEST_PARALLEL)

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -q

lab-test: setup
	$(PY) -m pytest $(PYTEST_PARALLEL) tests/lab

bench: setup
	$(PY) bench/lab.py
	$(PY) bench/deploy.py
	$(PY) bench/failover.py
	$(PY) bench/failover_timing.py
	$(PY) bench/partial_failures.py
	$(PY) bench/deploy_scaling.py --demo --cold-demo
	$(PY) bench/idle.py
	$(PY) bench/peers/failover.py
	$(PY) bench/backup.py
	$(PY) bench/switchover_rejoin.py --cycles 2 --scale 700 --link-rate 1gbit --results bench/results/rejoin_10gb.json

down:
	$(PY) -m lab down --name $(LAB)

gc:
	$(PY) -m lab gc
