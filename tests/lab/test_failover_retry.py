"""Promotion retried and heartbeat's state repaired: master-side scenarios that end in a failover,
on lab hosts (lab `fr`, one cluster taken through a story; the stale cascade is in
test_failover_stale.py). A workload commits through the VIP meanwhile.

- A refused promotion is retried: the downstream (the only witness) is down when the master
  crashes, so nothing is promoted; once it is back, the cascade is promoted.
- heartbeat SIGKILLed on the new master is started again by ha-watch; killed again mid-way through
  a hand-over request, it leaves the peer's heartbeat wedged in "transition", which ha-watch
  restarts there; a crash of that master later still fails over.
- The witness frozen (answering ping, nothing else) when the master crashes: the promotion refused
  is asked again as soon as the witness thaws.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import contextmanager

import pytest

from lab.workload import client_inventory, install_sql
from tests.conftest import Lab, deployed_lab, holds_resources, wait_until
from tests.lab.test_failover_master import (
    FAILOVER_DEADLINE,
    ROLE,
    assert_acknowledged_rows_on,
    assert_one_writer_at_a_time,
    journal,
    workload,
)

pytestmark = pytest.mark.lab


@contextmanager
def deployed(name: str, tmp_path_factory):
    """A deployed cluster, the workload admitted and its table made. PGCASCADE_TEST_FRESH=1 deploys
    onto bare hosts instead of booting the snapshot (one lab at a time boots a given snapshot)."""
    with deployed_lab(name, fresh=os.environ.get("PGCASCADE_TEST_FRESH") == "1") as lab:
        lab.inventory = client_inventory(lab.desc, tmp_path_factory.mktemp("inv"), ROLE)
        proc = lab.pyinfra("-y", lab.inventory, "deploy.py")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    with deployed("fr", tmp_path_factory) as lab:
        yield lab


def views(lab: Lab, hosts) -> list:
    out = []
    for host in hosts:
        text = lab.ssh(host, "PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.canfailover", timeout=20).stdout
        out.append(json.loads(text or "{}"))
    return out


def in_recovery(lab: Lab, host: str) -> str:
    """pg_is_in_recovery() once the server answers (a loaded machine may keep it starting a while)."""
    query = "cd / && runuser -u postgres -- psql -XAtc 'select pg_is_in_recovery()'"
    return wait_until(lambda: lab.ssh(host, query, timeout=30).stdout.strip(), 60, f"{host}'s PostgreSQL answering")


def first_write_on(load, node: str, since: float, deadline: float) -> float:
    """When `node` first acknowledged a write through the VIP after `since`; writes then go on."""
    wait_until(lambda: load.first_ack_after(since, node=node), deadline, f"a write acknowledged by {node}")
    load.wait_for_acks(20, 30, after=time.monotonic())
    return load.first_ack_after(since, node=node).acked


def rscstatus(lab: Lab, host: str) -> str:
    return lab.ssh(host, "cl_status rscstatus", timeout=10).stdout.strip()


def cut_hand_over_request(lab: Lab, tries: int = 3) -> None:
    """pg2 (the master) asks heartbeat to hand its resources to pg1, and its heartbeat is killed
    0.3 s later, once pg1 took the request ("transition"). On a loaded machine the kill can come
    before the request reached pg1 (pg1 never says "transition": nothing wedged): then, once the
    cluster can fail over again, the cut is made again."""
    for _ in range(tries):
        lab.ssh("pg2", "/usr/share/heartbeat/hb_standby all; sleep 0.3; systemctl kill --signal=KILL heartbeat")
        said = [rscstatus(lab, "pg1") for _ in range(3)]
        if "transition" in said:
            return
        print(f"the hand-over request did not reach pg1 before the kill (pg1's heartbeat said {said}): again")
        wait_until(lambda: all(v.get("can_fail_over") for v in views(lab, ("pg1", "pg2"))), 120,
                   "can fail over: yes, after a missed cut")
    raise AssertionError(f"pg1's heartbeat never took pg2's hand-over request in {tries} tries")


def test_a_refused_promotion_is_retried_once_the_witness_is_back(story):
    lab = story
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        lab.cli("crash", "pg3")
        # The master's synchronous standby is the cascade: writes go on without the downstream.
        load.wait_for_acks(20, 30, after=time.monotonic())
        lab.cli("crash", "pg1")
        crashed = time.monotonic()
        wait_until(lambda: "[no-witness]" in journal(lab, "pg2"), 30, "pg2 refusing: no witness")
        assert in_recovery(lab, "pg2") == "t"
        lab.cli("restart", "pg3")
        back = time.monotonic()
        first = first_write_on(load, "pg2", crashed, 90)
    print(f"downstream back -> first write acknowledged by pg2 (the promotion retried): {first - back:.2f} s")
    assert "[peer-dead-no-primary]" in journal(lab, "pg2")
    # heartbeat's own 30 s-delayed hb_standby after the refused start, killed before it fires: by
    # ha-watch's scan (every 5 s), or with heartbeat's processes when the retry restarted it sooner
    # (test 2 checks that it never fired)
    said = journal(lab, "pg2")
    assert "[delayed-standby-disarmed]" in said or "restarting heartbeat here" in said
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)


def test_heartbeat_killed_on_the_new_master_is_repaired_then_its_crash_fails_over(story):
    lab = story
    lab.cli("restart", "pg1")
    proc = lab.pyinfra("-y", lab.inventory, "tasks/rejoin.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    wait_until(lambda: all(v.get("can_fail_over") for v in views(lab, ("pg1", "pg2"))), 90,
               "can fail over: yes, after the rejoin")
    with workload(lab, first_number=10**6) as load:
        load.wait_for_acks(20, 30)
        lab.ssh("pg2", "systemctl kill --signal=KILL heartbeat")
        wait_until(lambda: "[heartbeat-failed]" in journal(lab, "pg2"), 30, "ha-watch starting heartbeat again")
        wait_until(lambda: all(v.get("can_fail_over") for v in views(lab, ("pg1", "pg2"))), 120,
                   "can fail over: yes, after the repair")
        # A hand-shake cut mid-way: the master asks heartbeat to hand its resources over and its
        # heartbeat dies 0.3 s later. The peer's heartbeat then stays in "transition" (seen for an
        # hour, ignoring every request) until ha-watch restarts it there.
        mark = len(journal(lab, "pg1").splitlines())
        cut_hand_over_request(lab)
        try:
            wait_until(lambda: "[heartbeat-stuck-in-transition]" in "\n".join(journal(lab, "pg1").splitlines()[mark:]),
                       90, "ha-watch restarting pg1's heartbeat wedged in transition")
        except AssertionError as error:
            raise AssertionError(f"{error}; now pg1's heartbeat says {rscstatus(lab, 'pg1')!r}, pg2's "
                                 f"{rscstatus(lab, 'pg2')!r}; the views: {views(lab, ('pg1', 'pg2'))}") from None
        wait_until(lambda: all(v.get("can_fail_over") for v in views(lab, ("pg1", "pg2"))), 120,
                   "can fail over: yes, after the hand-shake's repair")
        load.wait_for_acks(20, 30, after=time.monotonic())
        # The new master never asked to hand its resources away (the refused start's delayed
        # hb_standby once fired here and wedged both heartbeats: the repair above never ended).
        hb = lab.ssh("pg2", "journalctl -u heartbeat --no-pager -o cat", timeout=20).stdout
        assert "Going standby" not in hb, hb[-3000:]
        crashed = time.monotonic()
        lab.cli("crash", "pg2")
        first = first_write_on(load, "pg1", crashed, 60) - crashed
    print(f"heartbeat repaired, then a crash of pg2 -> first write acknowledged by pg1: {first:.2f} s")
    assert first < FAILOVER_DEADLINE  # a master crash, as in test_failover_master (bench: ~5 s on a quiet machine)
    assert_one_writer_at_a_time(load, "pg2", "pg1")
    assert_acknowledged_rows_on(lab, "pg1", load)


def test_a_promotion_refused_for_a_frozen_witness_is_retried_as_soon_as_it_thaws(story):
    """The downstream (the only witness) frozen, not dead: it still answers ping, its ssh and
    PostgreSQL do not. A master crash then promotes nothing ([no-witness]); once the witness thaws,
    ha-watch asks may-promote again at once ([witness-back]) instead of at its next periodic retry."""
    lab = story
    lab.cli("restart", "pg2")
    proc = lab.pyinfra("-y", "--data", "target=pg2", lab.inventory, "tasks/rejoin.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    wait_until(lambda: all(v.get("can_fail_over") for v in views(lab, ("pg1", "pg2"))), 90,
               "can fail over: yes, after the rejoin")
    mark = len(journal(lab, "pg2").splitlines())

    def said() -> str:
        return "\n".join(journal(lab, "pg2").splitlines()[mark:])

    with workload(lab, first_number=2 * 10**6) as load:
        load.wait_for_acks(20, 30)
        lab.cli("pause", "pg3")
        try:
            load.wait_for_acks(20, 30, after=time.monotonic())  # the synchronous standby is pg2
            lab.cli("crash", "pg1")
            crashed = time.monotonic()
            wait_until(lambda: "[no-witness]" in said(), 30, "pg2 refusing: no witness")
            # past a periodic retry, so that the next one is seconds away when the witness thaws
            wait_until(lambda: "[peer-dead-no-primary]" in said(), 30, "a periodic retry")
            wait_until(lambda: said().count("[no-witness]") >= 3, 30, "the periodic retry refused")
            time.sleep(2)
            assert in_recovery(lab, "pg2") == "t"
        finally:
            lab.cli("resume", "pg3")
        thawed = time.monotonic()
        first = first_write_on(load, "pg2", crashed, 90)
    print(f"witness thawed -> first write acknowledged by pg2: {first - thawed:.2f} s")
    assert "[witness-back]" in said()
    assert_one_writer_at_a_time(load, "pg1", "pg2")
    assert_acknowledged_rows_on(lab, "pg2", load)
