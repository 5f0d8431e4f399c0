"""Shared fixtures: lab hosts for the integration tests, always taken down afterwards. The lab
client itself (Lab, lab_cli, wait_until, ...) lives in lab/client.py."""
from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from lab.client import ROOT, Lab, has_vip, holds_resources, lab_cli, test_lab_name, wait_until
from lab.deployed import boot_deployed

__all__ = ["ROOT", "Lab", "boot_deployed", "deployed_lab", "has_vip", "holds_resources", "lab_cli", "test_lab_name", "wait_until"]

# pytest -n N (xdist): each worker's labs and snapshots carry its own letter (gw0 -> w, gw1 -> x, ...),
# so that modules running at once never share a lab name or a snapshot's subnet.
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw") and "PGCASCADE_TEST_LAB_PREFIX" not in os.environ:
    os.environ["PGCASCADE_TEST_LAB_PREFIX"] = "wxyzuv"[int(os.environ["PYTEST_XDIST_WORKER"][2:]) % 6]

@contextmanager
def deployed_lab(name: str, hosts: int = 3, inventory: str = "inventories/lab.py", fresh: bool = False):
    """A lab whose hosts got the deploy (the cascade), removed afterwards.

    By default it boots from the snapshot of a deployed cluster (built when missing or stale) and
    waits until the cluster is back as the deploy left it: the master holds heartbeat's resources
    and the VIP, the standbys stream, tasks.status exits 0. fresh=True (or another inventory)
    deploys onto bare hosts instead; the deploy's output is then in lab.first_deploy."""
    lab = Lab(name, hosts) if fresh or inventory != "inventories/lab.py" else boot_deployed(name, hosts)
    try:
        if not lab.desc.get("snapshot"):
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


JOURNAL_LINES = 150  # per host, in a failed lab test's report
POSTGRES_LOG_LINES = 40
# journalctl ANDs -t with -u: two reads, merged by time; heartbeat's start-up chatter left out.
JOURNAL = ("{ journalctl -q -o short-precise --no-pager -n 400 -t pgcascade; "
           "journalctl -q -o short-precise --no-pager -n 400 -u heartbeat -u 'pgcascade-*' -u 'postgresql@*'; } "
           "| sort -s -k1,3 | uniq | grep -v -E 'Core dump|core_|Logging daemon|dead time|>= deadtime|[*]{5}|glib: |"
           "notify_world|Pacemaker|Configuration validated|killing HB|Core process|locked-in memory|"
           "delnodelist|StartNextRemoteRscReq' | tail -n " + str(JOURNAL_LINES))
# PostgreSQL's own log (not in the journal): why a server did not start, what its recovery waits for.
POSTGRES_LOG = "tail -n " + str(POSTGRES_LOG_LINES) + " /var/log/postgresql/postgresql-*.log 2>&1"


def _labs_of(item) -> list[Lab]:
    """The Lab objects a test used (its fixtures, or fixtures holding one as .lab)."""
    labs = []
    for value in getattr(item, "funcargs", {}).values():
        lab = value if isinstance(value, Lab) else getattr(value, "lab", None)
        if isinstance(lab, Lab) and lab not in labs:
            labs.append(lab)
    return labs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed lab test's report carries each host's pgcascade, monitor, heartbeat and PostgreSQL
    journal: a failure in a whole run can then be read without reproducing it."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for lab in _labs_of(item):
        for host in [h["name"] for h in lab.desc.get("hosts", [])]:
            try:
                proc = lab.ssh(host, JOURNAL, timeout=20)
                text = proc.stdout or proc.stderr
            except Exception as error:  # the host may be the one that failed
                text = f"(journal not read: {error})"
            report.sections.append((f"journal of {lab.name}/{host}", text))
            try:
                text = lab.ssh(host, POSTGRES_LOG, timeout=20).stdout
            except Exception as error:
                text = f"(log not read: {error})"
            report.sections.append((f"PostgreSQL log of {lab.name}/{host}", text))
