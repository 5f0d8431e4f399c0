"""Partial failures of the master side, on one lab cluster (lab `pf`) taken through them in turn,
with a workload committing through the VIP: the master's PostgreSQL killed on a live host (restarted
in place), a stray VIP on the standby (removed), the downstream's PostgreSQL killed (systemd starts it
again; a stopped one stays stopped), the master's PostgreSQL frozen while the cascade is
down (no hand-over: nobody could take over; writes resume at the thaw), a link blip of the cascade (no stop of the
primary, no promotion), a downstream promoted by hand for a DR test (the master is not deposed),
then a master crash (the cascade is promoted, the DR branch notwithstanding).

Each test's workload numbers its rows from its own range (one table for the whole module).
Always: no acknowledged row lost, acknowledgements by one server at a time, writes back within
the bound (a dead PostgreSQL: 10 s). A 5 s cut of the cascade may fail it over (the downstream's
cascade monitor): the DR test puts the tree back first with a deploy rerun.
"""
from __future__ import annotations

import json
import os
import secrets
import time

import pytest

from lab.workload import client_inventory, install_sql
from tests.conftest import Lab, deployed_lab, has_vip, holds_resources, wait_until
from tests.lab.test_failover_master import (
    FAILOVER_DEADLINE,
    ROLE,
    UNIT,
    assert_acknowledged_rows_on,
    assert_one_writer_at_a_time,
    journal,
    unit_state,
    workload,
)

pytestmark = pytest.mark.lab

LAB = "pf"
BOUND = 10  # seconds: a dead or frozen PostgreSQL, writes back through the VIP


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One deployed cluster (booted from the snapshot; PGCASCADE_TEST_FRESH=1: deployed onto bare
    hosts) for the whole module, the workload admitted."""
    with deployed_lab(LAB, fresh=os.environ.get("PGCASCADE_TEST_FRESH") == "1") as lab:
        lab.inventory = client_inventory(lab.desc, tmp_path_factory.mktemp("inv"), ROLE)
        proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab


def can_fail_over(lab: Lab) -> list:
    """The heartbeat nodes' standing checks (hostrules.canfailover), as written by ha-watch."""
    views = []
    for host in ("pg1", "pg2"):
        out = lab.ssh(host, "PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.canfailover", timeout=20).stdout
        views.append(json.loads(out or "{}"))
    return views


def test_killed_master_postgres_is_restarted_in_place(cluster):
    lab = cluster
    with workload(lab, first_number=1) as load:
        load.wait_for_acks(20, 30)
        before = time.monotonic()
        lab.ssh("pg1", "kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")
        killed = time.monotonic()  # the kill is done by now
        wait_until(lambda: load.first_ack_after(killed, node="pg1"), 30, "pg1 acknowledging again")
        load.wait_for_acks(20, 30, after=time.monotonic())
        after = time.monotonic()
    gap = load.longest_pause(before, after)
    print(f"postmaster SIGKILLed: writes through the VIP stopped for {gap:.2f} s")
    assert gap < BOUND
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert_acknowledged_rows_on(lab, "pg1", load)
    assert "starting it again in place [primary-down]" in journal(lab, "pg1")
    wait_until(lambda: all(v.get("can_fail_over") for v in can_fail_over(lab)), 60, "can fail over: yes")


def postmaster_pid(lab: Lab) -> str:
    return lab.ssh("pg1", "head -1 /var/lib/postgresql/15/main/postmaster.pid 2>/dev/null").stdout.strip()


def test_a_second_kill_right_after_the_restart_is_restarted_in_place_too(cluster):
    """Killed again the moment it acknowledges writes, before ha-watch's next check may have seen it
    answer: a new outage (its unit became active after the restart), not a failed restart."""
    lab = cluster
    restarts_before = journal(lab, "pg1").count("starting it again in place")
    with workload(lab, first_number=5 * 10**5) as load:
        load.wait_for_acks(20, 30)
        before = time.monotonic()
        for _ in range(2):
            killed_pid = postmaster_pid(lab)
            lab.ssh("pg1", f"kill -9 {killed_pid}")
            # The killed postmaster's backends may still acknowledge a commit or two: wait for
            # the new postmaster, then for a write it acknowledges.
            wait_until(lambda k=killed_pid: postmaster_pid(lab) not in ("", k), 30, "a new postmaster on pg1",
                       interval=0.1)
            started = time.monotonic()
            wait_until(lambda s=started: load.first_ack_after(s, node="pg1"), 30, "pg1 acknowledging again",
                       interval=0.05)
        load.wait_for_acks(20, 30, after=time.monotonic())
        after = time.monotonic()
    gap = load.longest_pause(before, after)
    print(f"postmaster SIGKILLed twice: writes through the VIP stopped for at most {gap:.2f} s")
    assert gap < BOUND
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert_acknowledged_rows_on(lab, "pg1", load)
    assert journal(lab, "pg1").count("starting it again in place") == restarts_before + 2


def test_a_stray_vip_on_the_standby_is_removed(cluster):
    lab = cluster
    lab.ssh("pg2", f"ip -4 addr add {lab.desc['vip']}/{lab.desc['prefix']} dev eth0")
    wait_until(lambda: not has_vip(lab, "pg2"), 15, "ha-watch removing the VIP from pg2")
    assert "[stray-vip]" in journal(lab, "pg2")
    assert holds_resources(lab, "pg1")


def sender_host(lab: Lab, host: str) -> str:
    return lab.psql(host, "select sender_host from pg_stat_wal_receiver where status = 'streaming'")


def sender_host_once_up(lab: Lab, host: str) -> str:
    """sender_host, '' while the server does not answer yet (starting)."""
    proc = lab.ssh(host, "cd / && runuser -u postgres -- psql -XAtq -c \"select sender_host from "
                         "pg_stat_wal_receiver where status = 'streaming'\"", timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_a_killed_downstream_postgres_is_started_again_and_a_stopped_one_stays_stopped(cluster):
    """No ha-watch runs on the downstream: the unit fails, and its OnFailure= (a drop-in) starts a
    killed server again (it left its postmaster.pid). Writes never wait for it (the master's
    synchronous standby is the cascade), its cascade monitor fails nothing over, and a stop, by
    systemctl or by pg_ctl, is left alone."""
    lab = cluster
    dropin = "/etc/systemd/system/postgresql@15-main.service.d/pgcascade-restart.conf"
    restarter = "pgcascade-postgres-restart-15-main.service"
    assert lab.ssh("pg1", f"test -e {dropin}").returncode != 0  # ha-watch decides there
    mark = len(journal(lab, "pg3").splitlines())
    with workload(lab, first_number=3 * 10**5) as load:
        load.wait_for_acks(20, 30)
        before = time.monotonic()
        killed = lab.ssh("pg3", "head -1 /var/lib/postgresql/15/main/postmaster.pid").stdout.strip()
        lab.ssh("pg3", f"kill -9 {killed}")
        wait_until(lambda: lab.ssh("pg3", "head -1 /var/lib/postgresql/15/main/postmaster.pid 2>/dev/null")
                   .stdout.strip() not in ("", killed), 30, "a new postmaster on pg3")
        wait_until(lambda: sender_host_once_up(lab, "pg3") == lab.ip("pg2"), 60, "pg3 streaming from pg2 again")
        load.wait_for_acks(20, 30, after=time.monotonic())
        after = time.monotonic()
    gap = load.longest_pause(before, after)
    print(f"downstream postmaster SIGKILLed: started again; writes stopped for at most {gap:.2f} s")
    assert gap < 3
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    said = lab.ssh("pg3", f"journalctl -u {restarter} --no-pager -o cat").stdout
    assert f"postmaster {killed} killed or crashed: its postmaster.pid was left): starting it again" in said
    assert "failing over" not in "\n".join(journal(lab, "pg3").splitlines()[mark:])
    assert_acknowledged_rows_on(lab, "pg1", load)
    # A stop while the start job still runs would cancel it (PostgreSQL then stays 'shutting
    # down'): the restart's start job ends first, as a person's stop would find it.
    unit_active_on_pg3(lab, "after the restart")
    for stop in (f"systemctl stop {UNIT}", "cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl "
                 "-D /var/lib/postgresql/15/main -m fast stop"):
        lab.ssh("pg3", stop, timeout=120)
        stopped = time.monotonic()
        wait_until(lambda stopped=stopped: time.monotonic() - stopped > 5, 10, "5 s after the stop", interval=1)
        assert unit_state(lab, "pg3") in ("inactive", "failed"), stop
        assert sender_host_once_up(lab, "pg3") == "", f"{stop}: started again"
        lab.ssh("pg3", f"systemctl reset-failed {UNIT}; systemctl start {UNIT}", timeout=120)
        wait_until(lambda: sender_host_once_up(lab, "pg3") == lab.ip("pg2"), 60, "pg3 streaming from pg2 after its start")
        unit_active_on_pg3(lab, f"after the start that followed '{stop}'")


def unit_active_on_pg3(lab: Lab, when: str) -> None:
    try:
        wait_until(lambda: unit_state(lab, "pg3") == "active", 120, f"pg3's unit active {when}")
    except AssertionError as error:
        status = lab.ssh("pg3", f"systemctl status {UNIT} --no-pager | head -20; tail -20 "
                                "/var/log/postgresql/postgresql-15-main.log").stdout
        raise AssertionError(f"{error}\n{status}") from None


def test_a_frozen_master_postgres_with_no_standby_to_take_over_waits_for_its_thaw(cluster):
    """The cascade's PostgreSQL stopped (the downstream's monitor fails it over: pg3 becomes pg1's
    synchronous standby), then the master's PostgreSQL frozen longer than ha-watch's deadline: a
    hand-over would queue its stop for nothing, heartbeat having nobody to promote; ha-watch waits,
    and writes resume on pg1 the moment it thaws."""
    lab = cluster
    mark = len(journal(lab, "pg1").splitlines())
    with workload(lab, first_number=3 * 10**6) as load:
        load.wait_for_acks(20, 30)
        lab.ssh("pg2", f"systemctl stop {UNIT}")
        wait_until(lambda: sender_host(lab, "pg3") == lab.ip("pg1"), 60, "pg3 streaming from pg1 (the cascade failover)")
        load.wait_for_acks(20, 30, after=time.monotonic())
        lab.ssh("pg1", f"systemctl kill -s SIGSTOP {UNIT}")
        frozen = time.monotonic()
        try:
            wait_until(lambda: time.monotonic() - frozen >= 8, 12, "8 s with pg1's PostgreSQL frozen", interval=0.1)
        finally:
            lab.ssh("pg1", f"systemctl kill -s SIGCONT {UNIT}")
        thawed = time.monotonic()
        load.wait_for_acks(20, 30, after=thawed)
        resumed = load.first_ack_after(thawed).acked - thawed
    print(f"first write after the thaw: {resumed:.2f} s")
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    assert resumed < BOUND
    assert "[primary-unresponsive]" not in "\n".join(journal(lab, "pg1").splitlines()[mark:])
    assert unit_state(lab, "pg1") == "active" and holds_resources(lab, "pg1")
    assert_acknowledged_rows_on(lab, "pg1", load)
    # the cascade back, then the deploy puts the tree back
    lab.ssh("pg2", f"systemctl start {UNIT}")
    wait_until(lambda: lab.psql("pg2", "select pg_is_in_recovery()") == "t", 60, "pg2 a standby again")
    proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    wait_until(lambda: sender_host(lab, "pg3") == lab.ip("pg2"), 60, "pg3 streaming from pg2 again")


def test_link_blip_of_the_cascade_stops_nothing(cluster):
    lab = cluster
    with workload(lab, first_number=10**6) as load:
        load.wait_for_acks(20, 30)
        lab.cli("partition", "pg2")
        cut = time.monotonic()
        try:
            wait_until(lambda: time.monotonic() - cut >= 5, 10, "a 5 s partition", interval=0.1)
        finally:
            lab.cli("heal", "pg2")
        healed = time.monotonic()
        # heartbeat restarts on both nodes after the heal: give it the time it takes, and more.
        wait_until(lambda: "Heartbeat restart" in lab.ssh("pg1", "cat /var/log/ha-log").stdout
                   or time.monotonic() - healed > 40, 60, "heartbeat's restart after the heal")
        wait_until(lambda: time.monotonic() - healed > 25, 40, "25 s after the heal", interval=1)
        load.wait_for_acks(20, 30, after=time.monotonic())
    gap = load.longest_pause(healed + 5, time.monotonic() - 1)
    print(f"after the heal: longest time without an acknowledged write {gap:.2f} s")
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    assert gap < 3, f"writes stopped for {gap:.1f} s after the link came back"
    assert unit_state(lab, "pg1") == "active" and lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert "stopping the primary PostgreSQL" not in journal(lab, "pg1")
    assert_acknowledged_rows_on(lab, "pg1", load)


def test_a_downstream_promoted_by_hand_does_not_depose_the_master_then_a_master_crash(cluster):
    lab = cluster
    # The blip may have failed the cascade over (the downstream's cascade monitor): the deploy puts
    # the tree back, pg2 the master's synchronous standby again.
    proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    wait_until(lambda: lab.psql("pg1", "select application_name || '|' || sync_state from pg_stat_replication")
               == "standby_1|sync", 90, "pg2 the master's synchronous standby")
    with workload(lab, first_number=2 * 10**6) as load:
        load.wait_for_acks(20, 30)
        lab.ssh("pg3", "cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl promote -w "
                       "-D /var/lib/postgresql/15/main")
        promoted = time.monotonic()
        wait_until(lambda: lab.psql("pg3", "select pg_is_in_recovery()") == "f", 30, "pg3 promoted by hand")
        wait_until(lambda: time.monotonic() - promoted > 15, 30, "15 s of ha-watch checks", interval=1)
        load.wait_for_acks(20, 30, after=time.monotonic())
        assert unit_state(lab, "pg1") == "active" and set(load.spans()) == {"pg1"}
        assert "former primary" not in journal(lab, "pg1")
        assert load.longest_pause(promoted, time.monotonic() - 1) < 3
        # Then the master crashes: pg2, its synchronous standby, is promoted.
        crashed = time.monotonic()
        lab.cli("crash", "pg1")
        wait_until(lambda: load.first_ack_after(crashed, node="pg2"), 30, "a write acknowledged by pg2")
        load.wait_for_acks(20, 30, after=time.monotonic())
    first = load.first_ack_after(crashed, node="pg2").acked - crashed
    print(f"master crash after a DR promotion -> first write acknowledged by pg2: {first:.2f} s")
    assert first < FAILOVER_DEADLINE  # a master crash, as in test_failover_master (bench: ~5 s on a quiet machine)
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
    assert "[synchronous-standby]" in journal(lab, "pg2")
