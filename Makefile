# The README's two commands: `make demo` (the main job, on the lab) and `make test`.
# `make unit` (no lab, seconds) and `make lab-test` (lab hosts) run one half of the suite each.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LAB ?= demo
# What the main machine needs to build and run lab hosts (Debian 12).
# rsync: unit tests run the archive script's rsync calls against local directories.
HOST_PACKAGES := debootstrap systemd-container apt-utils dpkg-dev zstd iproute2 iputils-ping openssh-client rsync

.PHONY: setup host-packages demo status test unit lab-test bench down gc

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
	$(PY) -m lab up --name $(LAB) --hosts 4 --backup
	PGCASCADE_LAB=$(LAB) $(VENV)/bin/pyinfra -y inventories/lab.py deploy.py
	@PGCASCADE_LAB=$(LAB) $(PY) -m tasks.status inventories/lab.py || true
	@$(PY) -m lab --name $(LAB) exec pg4 -- runuser -u postgres -- sh -c 'cd / && pgbackrest info' || true
	@cat docs/demo-next-steps.txt

status:
	PGCASCADE_LAB=$(LAB) $(PY) -m tasks.status inventories/lab.py

# The whole suite, timed: its duration and slowest tests go to bench/results/suite.json.
test: setup
	$(PY) bench/suite.py

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -q

lab-test: setup
	$(PY) -m pytest tests/lab

bench: setup
	$(PY) bench/lab.py
	$(PY) bench/deploy.py
	$(PY) bench/failover.py
	$(PY) bench/deploy_scaling.py --demo
	$(PY) bench/idle.py
	$(PY) bench/peers/failover.py
	$(PY) bench/backup.py

down:
	$(PY) -m lab down --name $(LAB)

gc:
	$(PY) -m lab gc
