"""The master fails, on lab hosts (lab `fm`), one fresh cluster per scenario:
a crash, a network partition, a pause longer than heartbeat's dead time, and heartbeat alone
killed or frozen. A workload commits numbered rows through the VIP meanwhile (lab/workload.py) and
records who acknowledged what, and when.

Always: no two servers acknowledge writes in overlapping periods, and every acknowledged row is
on the primary at the end. The cascade is promoted only when the master is really gone.
"""
from __future__ import annotations

import os
import secrets
import time

import pytest

from lab.workload import TABLE, Workload, client_inventory, install_sql
from tests.conftest import Lab, deployed_lab, has_vip, holds_resources, wait_until

pytestmark = pytest.mark.lab

LAB = "fm"
ROLE = "pgcascade_workload"
UNIT = "postgresql@15-main"
FAILOVER_DEADLINE = 30  # seconds from the fault to writes acknowledged by pg2 (the bench: ~5 s)
REPLICATION_ROWS = "select application_name, state, sync_state from pg_stat_replication order by 1"


@pytest.fixture
def cluster(tmp_path):
    """A fresh lab cluster, deployed, heartbeat holding the resources on pg1, the workload's table."""
    with deployed_lab(LAB) as lab:
        proc = lab.pyinfra("-y", client_inventory(lab.desc, tmp_path, ROLE), "deploy.py")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab


# ---- reading the cluster ------------------------------------------------------------------------

def workload(lab: Lab, **kwargs) -> Workload:
    return Workload(lab.desc["vip"], 5432, ROLE, lab.password, **kwargs)


def unit_state(lab: Lab, host: str) -> str:
    return lab.ssh(host, f"systemctl is-active {UNIT}", timeout=20).stdout.strip()


def journal(lab: Lab, host: str) -> str:
    return lab.ssh(host, "journalctl -t pgcascade --no-pager -o cat", timeout=20).stdout


def streaming_from(lab: Lab, host: str) -> str:
    return lab.psql(host, "select sender_host || '|' || received_tli from pg_stat_wal_receiver"
                          " where status = 'streaming'")


def assert_acknowledged_rows_on(lab: Lab, host: str, load: Workload) -> None:
    rows = dict(line.split("|") for line in lab.psql(host, f"select n, node from {TABLE}").splitlines())
    missing = [a.n for a in load.acks if str(a.n) not in rows]
    assert not missing, f"{len(missing)} acknowledged rows missing on {host}: {missing[:20]}"
    wrong = [a for a in load.acks if rows[str(a.n)] != a.node]
    assert not wrong, f"rows acknowledged by one server but written by another: {wrong[:5]}"


def assert_one_writer_at_a_time(load: Workload, before: str, after: str) -> None:
    """Acknowledgements come from `before`, then from `after` only: never overlapping."""
    assert not load.overlaps(), load.overlaps()
    assert set(load.spans()) <= {before, after}, load.spans()
    first_after = load.first_ack_after(0, node=after)
    assert first_after is not None, f"no write acknowledged by {after}; failures: {load.failures[-5:]}"
    late = [a for a in load.acks if a.node == before and a.acked >= first_after.acked]
    assert not late, f"{before} acknowledged after {after} did: {late[:5]}"


# ---- the scenarios ------------------------------------------------------------------------------

def test_master_crash_promotes_the_cascade_and_the_old_master_stays_down(cluster):
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        crashed = time.monotonic()
        lab.cli("crash", "pg1")
        wait_until(lambda: load.first_ack_after(crashed, node="pg2"), FAILOVER_DEADLINE,
                   "a write through the VIP acknowledged by pg2")
        load.wait_for_acks(20, 30, after=time.monotonic())
    first = load.first_ack_after(crashed, node="pg2")
    print(f"crash of pg1 -> first write acknowledged by pg2 through the VIP: {first.acked - crashed:.2f} s")
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert "may-promote: agreed" in journal(lab, "pg2")

    # pg2 is the primary on timeline 2; pg3 follows it and is its synchronous standby.
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "f"
    wait_until(lambda: streaming_from(lab, "pg3") == f"{lab.ip('pg2')}|2", 30, "pg3 streaming from pg2 on timeline 2")
    assert lab.psql("pg2", REPLICATION_ROWS) == "standby_2|streaming|sync"
    assert_acknowledged_rows_on(lab, "pg2", load)
    last = max(a.n for a in load.acks)
    wait_until(lambda: lab.psql("pg3", f"select count(*) from {TABLE} where n = {last}") == "1", 30,
               "the last acknowledged row on pg3")
    assert_acknowledged_rows_on(lab, "pg3", load)

    # The old master boots again: its PostgreSQL does not come back as a primary, even when asked.
    lab.cli("restart", "pg1")
    wait_until(lambda: unit_state(lab, "pg1") == "failed", 60, "the boot guard refusing pg1's PostgreSQL")
    assert "boot-guard: REFUSED to start PostgreSQL 15/main as a primary" in journal(lab, "pg1")
    assert lab.ssh("pg1", f"systemctl start {UNIT}").returncode != 0
    assert lab.ssh("pg1", "cd / && runuser -u postgres -- psql -XAtc 'select 1'").returncode != 0
    # ... and writes through the VIP still go to pg2, now that pg1 is back.
    with workload(lab, first_number=10**6) as again:
        again.wait_for_acks(20, 60)
    assert set(again.spans()) == {"pg2"}
    assert not has_vip(lab, "pg1") and holds_resources(lab, "pg2")


def test_master_crash_then_the_downstream_crash_writes_go_on_then_synchronous_again(cluster):
    """A compound failure: the master crashes (the cascade is promoted, the downstream becomes its
    synchronous standby), the old master's host comes back (its PostgreSQL kept down), then the
    downstream crashes. The new primary, reaching a majority of the hosts (itself and pg1's), stops
    waiting for the downstream once it has been gone 10 s; when the downstream is back and caught
    up, commits wait for it again."""
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        crashed = time.monotonic()
        lab.cli("crash", "pg1")
        wait_until(lambda: load.first_ack_after(crashed, node="pg2"), FAILOVER_DEADLINE, "a write acknowledged by pg2")
        wait_until(lambda: streaming_from(lab, "pg3") == f"{lab.ip('pg2')}|2", 60, "pg3 streaming from pg2")
        lab.cli("restart", "pg1")  # back, kept down by the boot guard: a host pg2 reaches (a majority with it)
        wait_until(lambda: unit_state(lab, "pg1") == "failed", 90, "pg1 back, its PostgreSQL refused")
        load.wait_for_acks(20, 30, after=time.monotonic())
        lost = time.monotonic()
        lab.cli("crash", "pg3")
        wait_until(lambda: "[synchronous-standby-gone]" in journal(lab, "pg2"), 60, "pg2 no longer waiting for pg3")
        load.wait_for_acks(20, 30, after=time.monotonic())
        print(f"downstream crashed -> writes acknowledged again after {load.longest_pause(lost, time.monotonic()):.2f} s")
        lab.cli("restart", "pg3")
        wait_until(lambda: "[synchronous-standby-back]" in journal(lab, "pg2"), 120, "pg2 waiting for pg3 again")
        load.wait_for_acks(20, 30, after=time.monotonic())
    assert lab.psql("pg2", "show synchronous_standby_names") == 'FIRST 1 ("standby_2")'
    assert lab.psql("pg2", REPLICATION_ROWS) == "standby_2|streaming|sync"
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)


def test_master_partition_no_overlapping_acknowledgements_and_nothing_lost(cluster):
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        cut = time.monotonic()
        lab.cli("partition", "pg1")
        try:
            wait_until(lambda: load.first_ack_after(cut, node="pg2"), FAILOVER_DEADLINE,
                       "a write through the VIP acknowledged by pg2")
            # Cut off, pg1 is still a primary: it cannot acknowledge (its synchronous standby is gone).
            proc = lab.cli("exec", "pg1", "--", "runuser", "-u", "postgres", "--", "psql", "-XAt", "-c",
                           "select pg_is_in_recovery()", check=False)
            assert proc.stdout.strip() == "f", proc.stderr
        finally:
            lab.cli("heal", "pg1")
        # Back on the network, pg1 sees the new timeline: ha-watch stops it.
        wait_until(lambda: unit_state(lab, "pg1") != "active", 60, "pg1's PostgreSQL stopped as a former primary")
        # heartbeat restarts on both nodes after the heal; pg2 gets the resources back.
        wait_until(lambda: holds_resources(lab, "pg2"), 120, "pg2 holding the resources again")
        load.wait_for_acks(20, 60, after=time.monotonic())
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
    assert "former primary" in journal(lab, "pg1")
    wait_until(lambda: not has_vip(lab, "pg1"), 30, "no VIP left on pg1")


def test_master_pause_no_overlapping_acknowledgements_and_nothing_lost(cluster):
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        paused = time.monotonic()
        lab.cli("pause", "pg1")
        try:
            wait_until(lambda: load.first_ack_after(paused, node="pg2"), FAILOVER_DEADLINE,
                       "a write through the VIP acknowledged by pg2")
            # Frozen well beyond the dead time (3 s): the VIP is on both, pg1's kernel still answers.
            load.wait_for_acks(50, 30, after=paused)
        finally:
            lab.cli("resume", "pg1")
        wait_until(lambda: unit_state(lab, "pg1") != "active", 60, "pg1's PostgreSQL stopped as a former primary")
        wait_until(lambda: holds_resources(lab, "pg2") and not has_vip(lab, "pg1"), 120,
                   "pg2 alone holding the resources")
        load.wait_for_acks(20, 60, after=time.monotonic())
        end = time.monotonic()
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
    # The old master's return (heartbeat restarting on both nodes) costs the new primary no second outage.
    first = load.first_ack_after(paused, node="pg2").acked
    pause = load.longest_pause(first, end)
    print(f"after the failover, the longest time without an acknowledged write: {pause:.2f} s")
    assert pause < 5, f"writes stopped a second time, for {pause:.1f} s, when pg1 came back"


def test_master_postgres_frozen_on_a_live_host_is_handed_over_then_fenced(cluster):
    """Every PostgreSQL process on the master frozen (a stalled disk): the host, heartbeat and
    ha-watch live, the postmaster runs and said it was ready, but nothing answers. ha-watch hands
    the resources over; the cascade is promoted. Thawed, the old primary is stopped."""
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        frozen = time.monotonic()
        lab.ssh("pg1", f"systemctl kill -s SIGSTOP {UNIT}")
        try:
            wait_until(lambda: load.first_ack_after(frozen, node="pg2"), FAILOVER_DEADLINE,
                       "a write through the VIP acknowledged by pg2")
            load.wait_for_acks(20, 30, after=time.monotonic())
        finally:
            lab.ssh("pg1", f"systemctl kill -s SIGCONT {UNIT}")
        wait_until(lambda: unit_state(lab, "pg1") != "active", 60, "pg1's PostgreSQL stopped once thawed")
        load.wait_for_acks(20, 60, after=time.monotonic())
    first = load.first_ack_after(frozen, node="pg2").acked - frozen
    print(f"master's PostgreSQL frozen -> first write acknowledged by pg2: {first:.2f} s")
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
    assert "[primary-unresponsive]" in journal(lab, "pg1")
    assert holds_resources(lab, "pg2") and not has_vip(lab, "pg1")


def test_heartbeat_killed_on_the_master_comes_back_and_promotes_nothing(cluster):
    """heartbeat killed on the master, PostgreSQL alive: ha-watch starts it again (the unit's
    restart skips a killed daemon), the cascade stays a standby and writes go on."""
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        lab.ssh("pg1", "systemctl kill --signal=KILL heartbeat")
        wait_until(lambda: lab.ssh("pg1", "systemctl is-active heartbeat").stdout.strip() == "active", 30,
                   "heartbeat running on pg1 again")
        load.wait_for_acks(50, 30, after=time.monotonic())
    assert set(load.spans()) == {"pg1"}
    assert not load.overlaps()
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert has_vip(lab, "pg1") and not has_vip(lab, "pg2")


def test_heartbeat_frozen_on_the_master_past_the_dead_time_promotes_nothing(cluster):
    """heartbeat's messages stop for longer than the dead time (heartbeat frozen on the master:
    systemd still calls it active, so nothing restarts it) while PostgreSQL lives: the cascade's
    heartbeat takes over, may-promote sees the master answering and refuses; when heartbeat
    thaws, the master keeps the VIP and writes never moved."""
    lab = cluster
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        lab.ssh("pg1", "systemctl kill --signal=STOP heartbeat")
        try:
            wait_until(lambda: "may-promote: REFUSED" in journal(lab, "pg2"), 30, "pg2 refusing to promote")
        finally:
            lab.ssh("pg1", "systemctl kill --signal=CONT heartbeat")
        load.wait_for_acks(50, 30, after=time.monotonic())
        for host in ("pg1", "pg2"):
            wait_until(lambda h=host: lab.ssh(h, "systemctl is-active heartbeat").stdout.strip() == "active", 60,
                       f"heartbeat running on {host}")
        load.wait_for_acks(20, 30, after=time.monotonic())
    assert set(load.spans()) == {"pg1"}
    assert not load.overlaps()
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert has_vip(lab, "pg1") and not has_vip(lab, "pg2")
    assert "only heartbeat's link is down" in journal(lab, "pg2")
