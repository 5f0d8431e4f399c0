"""The cluster the failover benches measure: deployed on a lab with a role that writes through the
VIP (lab/workload.py), pg1 holding heartbeat's resources."""
from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from lab.client import Lab, holds_resources, wait_until
from lab.workload import client_inventory, install_sql


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
