"""The cluster the failover benches measure: deployed on a lab with a role that writes through the
VIP (lab/workload.py), pg1 holding heartbeat's resources."""
from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from lab import machines
from lab.client import Lab, holds_resources, wait_until
from lab.workload import Workload, client_inventory, install_sql


def deploy_with_workload(lab: Lab, role: str, failed: str = "the deploy failed",
                         fail: Callable[[str], NoReturn] = sys.exit, extra: dict | None = None) -> str:
    """Deploy the cluster with `role` as an application user (and `extra` inventory data on every
    host), wait until pg1 holds the resources, create the role there; its password. A failed
    deploy calls `fail` with `failed` and its output."""
    with tempfile.TemporaryDirectory() as directory:
        proc = lab.pyinfra("-y", client_inventory(lab.desc, Path(directory), role, extra), "deploy.py")
    if proc.returncode != 0:
        fail(f"{failed}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
    password = secrets.token_urlsafe(24)
    lab.psql("pg1", install_sql(role, password, os.urandom(16)))
    return password


def crash_to_first_write(lab: Lab, role: str, password: str, what: str = "") -> float:
    """pg1's machine crashes (`python -m lab crash`'s code) while the workload commits through the
    VIP: seconds to the first write pg2 acknowledges. Overlapping acknowledgements (two primaries)
    end the bench, `what` naming the run."""
    with Workload(lab.desc["vip"], 5432, role, password) as load:
        load.wait_for_acks(20, 30)
        crashed = time.monotonic()
        machines.crash(lab.name, "pg1")
        first = wait_until(lambda: load.first_ack_after(crashed, node="pg2"), 60,
                           "a write acknowledged by pg2 through the VIP", interval=0.05)
    if load.overlaps():
        sys.exit(f"{what}{': ' if what else ''}overlapping acknowledgements: {load.overlaps()}")
    return first.acked - crashed
