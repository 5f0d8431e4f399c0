"""`python -m tasks.status` against a deployed lab cluster: healthy, a stopped cascade, a crashed
downstream. One lab (`st`) and one deploy for the module; the tests run in file order and the
destructive one (the crash) comes last."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, Lab, deployed_lab

pytestmark = pytest.mark.lab

PG_UNIT = "postgresql@15-main"


@pytest.fixture(scope="module")
def cluster():
    """Lab `st` (pg1 master, pg2 cascade, pg3 downstream), deployed once, removed afterwards."""
    with deployed_lab("st") as lab:
        yield lab


def run_status(lab: Lab, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.status", "inventories/lab.py"], cwd=ROOT, env=lab.env,
                          text=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def status_until(lab: Lab, returncode: int, seconds: float = 60) -> subprocess.CompletedProcess:
    """Poll the status command until it exits with `returncode` (a deadline, not a fixed wait)."""
    deadline = time.monotonic() + seconds
    while True:
        proc = run_status(lab)
        if proc.returncode == returncode or time.monotonic() > deadline:
            return proc
        time.sleep(1)


def block(stdout: str, host: str) -> str:
    """The host's block of the report: from `HOST  ROLE  ADDRESS` to the next blank line."""
    match = re.search(rf"^{host}  \w+  \S+\n(?:  .*\n)*", stdout, re.M)
    assert match, f"no block for {host} in:\n{stdout}"
    return match.group(0)


def row(application_name: str, client_addr: str, priority: int, sync_state: str) -> re.Pattern:
    """A pg_stat_replication row as the report prints it (columns aligned by spaces)."""
    return re.compile(rf"^\s+{application_name}\s+{re.escape(client_addr)}\s+streaming\s+{priority}\s+"
                      rf"{sync_state}$", re.M)


BEHIND = re.compile(r"^  (receive|replay):\s+[0-9A-F]+/[0-9A-F]+, \d+ bytes behind the master$", re.M)


def test_healthy_cluster_matches_the_seeds_tables(cluster):
    started = time.monotonic()
    proc = status_until(cluster, 0, seconds=30)  # the cascade's own standby may still be connecting
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""  # pyinfra's own log stays quiet
    out = proc.stdout
    assert out.startswith("cluster 15/main, port 5432, synchronous on\n")
    assert "pg1 (master): a running primary on timeline 1\n" \
           "`-- pg2 (cascade): a running standby on timeline 1\n" \
           "    `-- pg3 (downstream): a running standby on timeline 1\n" in out

    master, cascade, downstream = block(out, "pg1"), block(out, "pg2"), block(out, "pg3")
    assert "  in recovery:  no\n" in master and "  upstream:     none (the master)\n" in master
    assert row("standby_1", cluster.ip("pg2"), 1, "sync").search(master), master
    assert "  in recovery:  yes\n" in cascade
    assert f"  upstream:     pg1 ({cluster.ip('pg1')}:5432), streaming from {cluster.ip('pg1')}:5432 (timeline 1)\n" \
           in cascade
    assert row("standby_2", cluster.ip("pg3"), 0, "async").search(cascade), cascade
    assert "  replication:  (0 rows)\n" in downstream
    for standby in (cascade, downstream):
        assert sorted(m.group(1) for m in BEHIND.finditer(standby)) == ["receive", "replay"], standby
    assert out.endswith("no problems: the cluster matches the inventory\n")
    assert elapsed < 15  # typically ~1.5 s; generous for a busy machine


def test_stopped_cascade_exits_1_and_says_so(cluster):
    # The downstream's cascade monitor would fail the stopped cascade over within seconds (its
    # job): held still, so that the report shows the tree as it is and it comes back as it was.
    cluster.cli("exec", "pg3", "--", "systemctl", "stop", "pgcascade-cascade-monitor")
    cluster.cli("exec", "pg2", "--", "systemctl", "stop", PG_UNIT)
    try:
        proc = run_status(cluster)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        out = proc.stdout
        assert "`-- pg2 (cascade): a stopped standby on timeline 1" in out
        problems = out.split("problem(s):\n")[1]
        assert "  - pg2: PostgreSQL 15/main is not running (start it: pg_ctlcluster 15 main start)\n" in problems
        assert "  - pg1: standby_1 (pg2) is not connected (no row in pg_stat_replication)\n" in problems
        assert "  - pg3: not receiving WAL from pg2" in problems
    finally:
        cluster.cli("exec", "pg2", "--", "systemctl", "start", PG_UNIT)
        cluster.cli("exec", "pg3", "--", "systemctl", "start", "pgcascade-cascade-monitor")
    proc = status_until(cluster, 0)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_crashed_downstream_is_reported_down_and_the_others_still_shown(cluster):
    cluster.cli("crash", "pg3")  # last test: the module's lab is removed afterwards
    proc = run_status(cluster)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "    `-- pg3 (downstream): unreachable\n" in out
    assert re.search(r"^  - pg3: down or unreachable \(ssh: .+\)$", out, re.M), out
    assert "  - pg2: standby_2 (pg3) is not connected (no row in pg_stat_replication)\n" in out
    assert row("standby_1", cluster.ip("pg2"), 1, "sync").search(block(out, "pg1"))
    assert "  replication:  (0 rows)\n" in block(out, "pg2")
