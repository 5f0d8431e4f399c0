"""The cascade's health for the synchronous-commit decision is "PostgreSQL answers and WAL flows",
not ping (lab `ch`, one cluster for the module). A workload commits through the VIP throughout:
no acknowledged row is lost, pg1 alone acknowledges, and the master's commits resume within 10 s
of the fault: a hung cascade (it still answers ping) and a cascade whose PostgreSQL died on a live
host are failed over; a restart of the cascade's PostgreSQL is not (commits resume by themselves).
"""
from __future__ import annotations

import os
import secrets
import time

import pytest

from tests.conftest import Lab, holds_resources, wait_until
from tests.lab.test_failover_master import assert_acknowledged_rows_on
from tests.lab.workload import TABLE, Workload, client_inventory, install_sql

pytestmark = pytest.mark.lab

ROLE = "pgcascade_workload"
MONITOR = "pgcascade-cascade-monitor"
UNIT = "postgresql@15-main"
WRITE_BOUND = 10  # seconds: the master's commits resume within this of the fault
OBSERVE = 16  # seconds of workload after the fault
REPLICATION_ROWS = "select application_name, sync_state from pg_stat_replication order by 1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    lab = Lab("ch", 3)
    try:
        lab.inventory = client_inventory(lab.desc, tmp_path_factory.mktemp("inventory"), ROLE)
        deploy(lab)
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab
    finally:
        lab.down()


def deploy(lab: Lab) -> str:
    proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def monitor_log(lab: Lab, after: int = 0) -> str:
    lines = lab.ssh("pg3", f"journalctl -u {MONITOR} --no-pager -o cat").stdout.splitlines()
    return "\n".join(lines[after:])


def log_mark(lab: Lab) -> int:
    return len(monitor_log(lab).splitlines())


def streaming_from(lab: Lab, host: str) -> str:
    return lab.psql(host, "select sender_host from pg_stat_wal_receiver where status = 'streaming'")


def run_fault(lab: Lab, fault) -> tuple[Workload, float]:
    """The workload through the VIP, the fault once it commits, OBSERVE seconds more; returns the
    workload and the longest pause in acknowledgements after the fault."""
    first = int(lab.psql("pg1", f"select coalesce(max(n), 0) + 1 from {TABLE}"))
    with Workload(lab.desc["vip"], 5432, ROLE, lab.password, first_number=first) as load:
        load.wait_for_acks(20, 30)
        at = time.monotonic()
        fault()
        deadline = at + OBSERVE
        while time.monotonic() < deadline:
            time.sleep(0.2)
        end = time.monotonic()
    pause = load.longest_pause(at, end)
    print(f"longest write pause after the fault: {pause:.2f} s; {len(load.acks)} commits acknowledged")
    return load, pause


def assert_safe(lab: Lab, load: Workload, pause: float) -> None:
    assert pause <= WRITE_BOUND, f"the master's commits stopped for {pause:.1f} s; failures: {load.failures[-3:]}"
    assert set(load.spans()) == {"pg1"}, load.spans()
    assert_acknowledged_rows_on(lab, "pg1", load)


def assert_failed_over(lab: Lab, mark: int, reason: str) -> None:
    log = monitor_log(lab, mark)
    assert f"failing over ({reason})" in log, log
    assert streaming_from(lab, "pg3") == lab.ip("pg1")
    assert lab.psql("pg1", REPLICATION_ROWS).splitlines()[-1] == "standby_2|sync"


def restore(lab: Lab, mark: int) -> None:
    """The cascade back and caught up, then the deploy: the original tree, watched again."""
    wait_until(lambda: lab.ssh("pg2", "pg_isready -q").returncode == 0, 60, "PostgreSQL up on pg2")
    deploy(lab)
    wait_until(lambda: streaming_from(lab, "pg3") == lab.ip("pg2"), 60, "pg3 streaming from pg2")
    wait_until(lambda: lab.psql("pg1", REPLICATION_ROWS) == "standby_1|sync", 60, "standby_1 synchronous on pg1")
    wait_until(lambda: f"watching pg2 again" in monitor_log(lab, mark), 30, "the monitor watching pg2 again")


def test_a_restart_of_the_cascades_postgresql_is_not_a_failover(cluster):
    lab = cluster
    mark = log_mark(lab)
    load, pause = run_fault(lab, lambda: lab.ssh("pg2", f"systemctl restart {UNIT}"))
    assert_safe(lab, load, pause)
    log = monitor_log(lab, mark)
    assert "failing over (" not in log, log
    assert streaming_from(lab, "pg3") == lab.ip("pg2")
    assert lab.psql("pg1", REPLICATION_ROWS) == "standby_1|sync"


def test_a_cascade_whose_postgresql_died_on_a_live_host_is_failed_over(cluster):
    lab = cluster
    mark = log_mark(lab)
    load, pause = run_fault(lab, lambda: lab.ssh("pg2", f"systemctl kill -s KILL {UNIT}"))
    assert lab.ssh("pg2", "ping -c 1 -W 1 " + lab.ip("pg1")).returncode == 0  # the host lives
    assert_safe(lab, load, pause)
    assert_failed_over(lab, mark, "cascade-disconnected")
    lab.ssh("pg2", f"systemctl reset-failed {UNIT}; systemctl start {UNIT}")
    restore(lab, mark)


def test_a_hung_cascade_is_failed_over(cluster):
    lab = cluster
    mark = log_mark(lab)
    try:
        load, pause = run_fault(lab, lambda: lab.cli("pause", "pg2"))
        assert_safe(lab, load, pause)
        assert_failed_over(lab, mark, "cascade-stalled")
    finally:
        lab.cli("resume", "pg2")
    restore(lab, mark)
