"""Shared fixtures: lab hosts for the integration tests, always taken down afterwards. The lab
client itself (Lab, lab_cli, wait_until, ...) lives in lab/client.py."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from lab.client import ROOT, Lab, has_vip, holds_resources, lab_cli, test_lab_name, wait_until
from lab.deployed import ensure_deployed_snapshot

__all__ = ["ROOT", "Lab", "deployed_lab", "has_vip", "holds_resources", "lab_cli", "test_lab_name", "wait_until"]

BOOT_DEADLINE = 120  # seconds from a snapshot's boot to a healthy cluster (seen: about 15 s)


@contextmanager
def deployed_lab(name: str, hosts: int = 3, inventory: str = "inventories/lab.py", fresh: bool = False):
    """A lab whose hosts got the deploy (the cascade), removed afterwards.

    By default it boots from the snapshot of a deployed cluster (built when missing or stale) and
    waits until the cluster is back as the deploy left it: the master holds heartbeat's resources
    and the VIP, the standbys stream, tasks.status exits 0. fresh=True (or another inventory)
    deploys onto bare hosts instead; the deploy's output is then in lab.first_deploy."""
    if fresh or inventory != "inventories/lab.py":
        lab = Lab(name, hosts)
    else:
        lab = Lab(name, hosts, snapshot=ensure_deployed_snapshot(hosts))
    try:
        if lab.desc.get("snapshot"):
            wait_until(lambda: holds_resources(lab, lab.desc["hosts"][0]["name"]), BOOT_DEADLINE,
                       f"heartbeat giving {lab.desc['hosts'][0]['name']} the resources after the boot")
            lab.wait_healthy(BOOT_DEADLINE)
        else:
            proc = lab.pyinfra("-y", inventory, "deploy.py")
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
            lab.first_deploy = proc.stdout + proc.stderr
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def lab3():
    """Three bare lab hosts (pg1, pg2, pg3) for one test module, removed afterwards."""
    lab = Lab("test", 3)
    try:
        yield lab
    finally:
        lab.down()
