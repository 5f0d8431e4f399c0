"""One link cut between two hosts that both stay up (lab `lc`): each still reaches the third host
and the controller, so every host sees a different cluster. A workload commits through the VIP.

- master <-> cascade, both ways: the cascade's heartbeat finds the master dead, but the downstream
  still reaches it: nothing is promoted. The master's commits stop waiting once the downstream's
  monitor fails the cascade over (the downstream becomes the synchronous standby).
- master -> cascade only (the cascade still reaches the master): the same, from the other side.
- cascade <-> downstream: no write waits; status names the downstream that receives nothing, and
  it streams again within seconds of the link's return (wal_receiver_timeout, connect_timeout).
- master <-> downstream: nothing changes (no cascade failover, no write waits).
- master <-> both standbys, its clients still reaching it: the cascade is promoted and the old
  master, still a primary holding the VIP and its sessions, acknowledges nothing more.

Always: one writer at a time, nothing acknowledged lost, the cascade never promoted; after the
mend a deploy rerun puts the tree back and the status is clean.
"""
from __future__ import annotations

import os
import secrets
import time

import pytest

from lab.workload import client_inventory, install_sql
from tests.conftest import Lab, deployed_lab, has_vip, holds_resources, wait_until
from tests.lab.test_failover_master import (
    ROLE,
    assert_acknowledged_rows_on,
    assert_one_writer_at_a_time,
    journal,
    unit_state,
    workload,
)
from tests.lab.test_partial_failures import sender_host

pytestmark = pytest.mark.lab

LAB = "lc"
BOUND = 10  # seconds without an acknowledged write while the master's synchronous standby is cut off


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with deployed_lab(LAB, fresh=os.environ.get("PGCASCADE_TEST_FRESH") == "1") as lab:
        lab.inventory = client_inventory(lab.desc, tmp_path_factory.mktemp("inv"), ROLE)
        redeploy(lab)
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab


def redeploy(lab: Lab) -> None:
    proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def received(lab: Lab, host: str) -> str:
    return lab.psql(host, "select pg_last_wal_receive_lsn()")


def in_recovery(lab: Lab, host: str) -> bool:
    return lab.psql(host, "select pg_is_in_recovery()") == "t"


def tree_as_deployed(lab: Lab) -> bool:
    return (sender_host(lab, "pg2") == lab.ip("pg1") and sender_host(lab, "pg3") == lab.ip("pg2")
            and lab.psql("pg1", "select string_agg(application_name || '|' || sync_state, ',') "
                                "from pg_stat_replication") == "standby_1|sync")


def put_the_tree_back(lab: Lab) -> None:
    """A deploy rerun once the cascade streams again (a held cascade failover comes back only
    caught up), then the cluster as deployed and healthy."""
    wait_until(lambda: sender_host(lab, "pg2") == lab.ip("pg1"), 60, "pg2 streaming from pg1 again")
    redeploy(lab)
    wait_until(lambda: tree_as_deployed(lab), 90, "pg1 -> pg2 (synchronous) -> pg3 again")
    lab.wait_healthy(120, inventory=lab.inventory)


def cut_while(lab: Lab, a: str, b: str, seconds: float, *, one_way: bool = False, watch=None) -> tuple[float, float]:
    """Cut the link a-b (only a -> b with one_way) for `seconds`, calling watch() about every
    second meanwhile; mended whatever happens. Returns (cut, mended) in time.monotonic()."""
    flags = ["--one-way"] if one_way else []
    lab.cli("cut", *flags, a, b)
    cut = time.monotonic()
    try:
        while time.monotonic() - cut < seconds:
            if watch:
                watch()
            time.sleep(1)
    finally:
        lab.cli("mend", *flags, a, b)
    return cut, time.monotonic()


def assert_cascade_is_a_standby(lab: Lab) -> None:
    assert in_recovery(lab, "pg2"), "the cascade was promoted while the master ran"


def _master_cascade_cut(lab: Lab, first_number: int, one_way: bool) -> None:
    marks = {h: len(journal(lab, h).splitlines()) for h in ("pg1", "pg2")}
    with workload(lab, first_number=first_number) as load:
        load.wait_for_acks(20, 30)
        cut, mended = cut_while(lab, "pg1", "pg2", 20, one_way=one_way, watch=lambda: assert_cascade_is_a_standby(lab))
        load.wait_for_acks(20, 30, after=time.monotonic())
        gap = load.longest_pause(cut, mended)
    print(f"pg1-pg2 cut{' one way' if one_way else ''}: writes through the VIP stopped for at most {gap:.2f} s")
    assert set(load.spans()) == {"pg1"} and not load.overlaps()
    assert gap < BOUND
    assert sender_host(lab, "pg3") == lab.ip("pg1"), "the downstream's monitor did not fail the cascade over"
    assert_cascade_is_a_standby(lab)
    assert unit_state(lab, "pg1") == "active" and holds_resources(lab, "pg1")
    assert_acknowledged_rows_on(lab, "pg1", load)
    new = {h: "\n".join(journal(lab, h).splitlines()[marks[h]:]) for h in marks}
    assert "former primary" not in new["pg1"] and "stopping the primary" not in new["pg1"]
    put_the_tree_back(lab)


def test_a_cut_between_master_and_cascade_promotes_nothing_and_writes_resume(cluster):
    lab = cluster
    _master_cascade_cut(lab, first_number=1, one_way=False)
    # the cascade's heartbeat found its peer dead; may-promote asked the downstream and refused
    assert "[witness-reaches-peer]" in journal(lab, "pg2")


def test_a_one_way_cut_from_master_to_cascade_promotes_nothing_and_writes_resume(cluster):
    """The master's frames never reach the cascade; the cascade's still reach the master, until its
    ARP entry for the master goes stale (the master's ARP replies are dropped too): the cascade
    hears no heartbeat first, then the master stops hearing the cascade's. Heartbeat's resource
    hand-shake after such a partition has left the master's heartbeat in "transition" for good: ha-watch
    restarts it there (`[heartbeat-stuck-in-transition]`), keeping the primary and its VIP."""
    _master_cascade_cut(cluster, first_number=10**6, one_way=True)


def started_at(lab: Lab) -> dict[str, str]:
    return {h: lab.psql(h, "select pg_postmaster_start_time()") for h in ("pg1", "pg2", "pg3")}


def test_a_deploy_rerun_during_the_cut_restarts_and_clones_nothing(cluster):
    """The deploy's own repairs while the master and the cascade cannot reach each other (the
    controller reaches both): the cascade, not streaming and behind, is neither cloned again nor
    made the master's standby again (the cascade failover is held), no server restarts, and the
    writes do not pause."""
    lab = cluster
    with workload(lab, first_number=5 * 10**5) as load:
        load.wait_for_acks(20, 30)
        lab.cli("cut", "pg1", "pg2")
        try:
            wait_until(lambda: sender_host(lab, "pg3") == lab.ip("pg1"), 30, "the cascade failed over (pg3 streaming from pg1)")
            load.wait_for_acks(20, 30, after=time.monotonic())
            before = started_at(lab)
            deploy_started = time.monotonic()
            proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
            deployed = time.monotonic()
            load.wait_for_acks(20, 30, after=deployed)
            assert_cascade_is_a_standby(lab)
            after = started_at(lab)
        finally:
            lab.cli("mend", "pg1", "pg2")
        gap = load.longest_pause(deploy_started, deployed)
    output = proc.stdout + proc.stderr
    print(f"deploy during the pg1-pg2 cut: exit {proc.returncode}, longest write pause {gap:.2f} s")
    assert proc.returncode == 0, output[-4000:]
    assert before == after, f"a server restarted during the deploy: {before} -> {after}"
    assert "pg_basebackup" not in output
    assert gap < 3 and set(load.spans()) == {"pg1"}, output[:4000] + "\n...\n" + output[-3000:]
    assert sender_host(lab, "pg3") == lab.ip("pg1")  # still failed over: the cascade has not caught up
    assert_acknowledged_rows_on(lab, "pg1", load)
    put_the_tree_back(lab)


def test_a_cut_between_cascade_and_downstream_stops_no_write_and_heals_in_seconds(cluster):
    lab = cluster
    seen: dict[str, str] = {}

    def watch() -> None:
        if "problem" not in seen:
            out = lab.status(inventory=lab.inventory).stdout
            if "pg3: not receiving WAL from pg2" in out:
                seen["problem"] = out

    with workload(lab, first_number=2 * 10**6) as load:
        load.wait_for_acks(20, 30)
        cut, mended = cut_while(lab, "pg2", "pg3", 25, watch=watch)
        before = received(lab, "pg3")
        wait_until(lambda: received(lab, "pg3") != before, 15, "pg3 receiving WAL again after the mend",
                   interval=0.25)
        resumed = time.monotonic() - mended
        load.wait_for_acks(20, 30, after=time.monotonic())
        gap = load.longest_pause(cut, mended)
    print(f"pg2-pg3 cut: longest write pause {gap:.2f} s; pg3 received WAL {resumed:.2f} s after the mend")
    assert "problem" in seen, "the status never said that pg3 receives no WAL during a 25 s cut"
    assert gap < 3
    assert set(load.spans()) == {"pg1"}
    assert sender_host(lab, "pg3") == lab.ip("pg2")
    assert_acknowledged_rows_on(lab, "pg1", load)
    lab.wait_healthy(60, inventory=lab.inventory)


def test_a_cut_between_master_and_downstream_changes_nothing(cluster):
    """The downstream's monitor cannot see the master: a view it cannot trust is no failover."""
    lab = cluster
    monitor = "journalctl -u pgcascade-cascade-monitor --no-pager -o cat"
    mark = len(lab.ssh("pg3", monitor).stdout.splitlines())

    def watch() -> None:
        assert sender_host(lab, "pg3") == lab.ip("pg2"), "pg3 was re-pointed although the cascade is healthy"

    with workload(lab, first_number=3 * 10**6) as load:
        load.wait_for_acks(20, 30)
        cut, mended = cut_while(lab, "pg1", "pg3", 15, watch=watch)
        load.wait_for_acks(20, 30, after=time.monotonic())
        gap = load.longest_pause(cut, mended)
    print(f"pg1-pg3 cut: longest write pause {gap:.2f} s")
    assert gap < 3 and set(load.spans()) == {"pg1"}
    assert tree_as_deployed(lab)
    said = "\n".join(lab.ssh("pg3", monitor).stdout.splitlines()[mark:])
    assert ": failing over (" not in said and "failed over from" not in said, said
    assert_acknowledged_rows_on(lab, "pg1", load)
    lab.wait_healthy(60, inventory=lab.inventory)


def test_a_master_cut_off_from_the_cluster_but_not_from_its_clients_acknowledges_nothing_more(cluster):
    """The master's links to both standbys cut, the clients' (the controller's) not: the cascade is
    promoted (the downstream confirms the master silent) and takes the VIP while the old master
    still holds it and its clients' sessions. The old master cannot acknowledge a commit (its
    synchronous standby is cut off, and nobody makes it stop waiting), so one server acknowledges
    at a time; once the links are back, ha-watch stops the old master. Last in the module: the
    cluster is failed over afterwards."""
    lab = cluster
    with workload(lab, first_number=4 * 10**6) as load:
        load.wait_for_acks(20, 30)
        cut = time.monotonic()
        lab.cli("cut", "pg1", "pg2")
        lab.cli("cut", "pg1", "pg3")
        try:
            wait_until(lambda: load.first_ack_after(cut, node="pg2"), 30, "a write through the VIP acknowledged by pg2")
            wait_until(lambda: time.monotonic() - cut > 20, 30, "20 s of the cut", interval=1)
            assert not in_recovery(lab, "pg1"), "the cut-off master stopped being a primary by itself"
        finally:
            lab.cli("mend", "pg1", "pg2")
            lab.cli("mend", "pg1", "pg3")
        wait_until(lambda: unit_state(lab, "pg1") != "active", 60, "pg1's PostgreSQL stopped as a former primary")
        wait_until(lambda: holds_resources(lab, "pg2"), 120, "pg2 holding the resources")
        load.wait_for_acks(20, 60, after=time.monotonic())
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
    assert "former primary" in journal(lab, "pg1")
    wait_until(lambda: not has_vip(lab, "pg1"), 30, "no VIP left on pg1")
