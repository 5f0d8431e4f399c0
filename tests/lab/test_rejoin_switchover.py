"""After the master fails: the old master rejoins as a standby (pg_rewind), then a switchover
puts the inventory's roles back. A workload commits through the VIP the whole time: no
acknowledged row is lost and no two servers acknowledge in overlapping time."""
from __future__ import annotations

import os
import time

import pytest

from lab.workload import TABLE, Workload, client_inventory, install_sql
from tests.conftest import Lab, deployed_lab, wait_until
from tests.lab.pyinfra_output import changes, started_any_operation

pytestmark = pytest.mark.lab
ROLE, PASSWORD = "workload", "workload-" + os.urandom(6).hex()


class Story:
    """One cluster taken through failover, rejoin and switchover; the tests read it in order."""

    def __init__(self, lab: Lab, inventory: str):
        self.lab, self.inventory = lab, inventory
        self.load: Workload | None = None

    def run(self, *args: str):
        proc = self.lab.pyinfra("-y", self.inventory, *args)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-4000:]
        return changes(output)

    def refused(self, *args: str) -> str:
        """Run a task that must refuse before any operation; its output."""
        proc = self.lab.pyinfra("-y", self.inventory, *args)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output[-4000:]
        assert not started_any_operation(output), output[-4000:]
        return output

    def dry(self, *args: str) -> str:
        proc = self.lab.pyinfra("--dry", self.inventory, *args)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-4000:]
        return output


def previewed_on(output: str, operation: str) -> str:
    """The --dry summary line of an operation (its name, then the hosts it would change)."""
    return next(line for line in output.splitlines() if line.strip().startswith(operation))


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    with deployed_lab("rs") as lab:
        story = Story(lab, client_inventory(lab.desc, tmp_path_factory.mktemp("rs"), ROLE))
        try:
            story.run("deploy.py")
            wait_until(lambda: lab.desc["vip"] in lab.ssh("pg1", "ip -4 -o addr").stdout, 60, "the VIP on pg1")
            lab.psql("pg1", install_sql(ROLE, PASSWORD, os.urandom(16)))
            story.load = Workload(lab.desc["vip"], 5432, ROLE, PASSWORD).start()
            story.load.wait_for_acks(20, 60)
            yield story
        finally:
            if story.load:
                story.load.stop()


def test_master_crash_writes_resume_on_the_former_cascade(story):
    story.lab.cli("crash", "pg1")
    crashed = time.monotonic()  # pg1 is gone: every later acknowledgement is someone else's
    story.load.wait_for_acks(10, 90, after=crashed)
    assert story.load.first_ack_after(crashed).node == "pg2"
    wait_until(lambda: story.lab.psql("pg3", "select received_tli from pg_stat_wal_receiver where "
                                             "status = 'streaming'") == "2", 60, "pg3 on timeline 2")


def test_the_old_master_restarted_accepts_no_write(story):
    story.lab.cli("restart", "pg1")
    proc = story.lab.ssh("pg1", "cd / && runuser -u postgres -- psql -XAtq -c 'create table t_split(i int)'")
    assert proc.returncode != 0, "the former master accepted a write"


def test_rejoin_refuses_the_live_primary(story):
    assert "pg2 is the live primary: nothing to rejoin" in story.refused("tasks/rejoin.py", "--data", "target=pg2")


def test_rejoin_previews_with_dry_and_changes_nothing(story):
    control = "runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_controldata /var/lib/postgresql/15/main"
    before = story.lab.ssh("pg1", control).stdout
    output = story.dry("tasks/rejoin.py")
    assert "1 (pg1)" in previewed_on(output, "rejoin pg1: stop, rewind onto pg2")
    assert "[pg1] rejoin: " in output  # the planner's reason, without -v
    assert "1 (pg2)" in previewed_on(output, "checkpoint on pg2")
    assert "TimeLineID" in before and story.lab.ssh("pg1", control).stdout == before  # pg1 untouched


def test_rejoin_makes_the_old_master_a_standby_of_the_new_one(story):
    changed = story.run("tasks/rejoin.py")
    assert ("rejoin pg1: stop, rewind onto pg2", "pg1") in changed
    assert ("checkpoint on pg2 (its timeline in pg_control)", "pg2") in changed
    journal = story.lab.ssh("pg1", "journalctl -q -o cat -t pgcascade").stdout
    assert "rejoin: pg1 rewound onto pg2 (pg_rewind, " in journal  # not the base backup fallback
    lab = story.lab
    wait_until(lambda: lab.psql("pg1", "select sender_host, received_tli from pg_stat_wal_receiver "
                                       "where status = 'streaming'") == f"{lab.ip('pg2')}|2", 60, "pg1 under pg2")
    assert lab.psql("pg2", "select application_name, sync_state from pg_stat_replication order by 1") == \
        "standby_1|sync"
    assert story.run("tasks/rejoin.py") == set()  # idempotent


def test_switchover_refuses_a_lagging_standby(story):
    lab = story.lab
    wait_until(lambda: lab.psql("pg1", "select status from pg_stat_wal_receiver") == "streaming", 60,
               "pg1 streaming")
    lab.psql("pg1", "select pg_wal_replay_pause()")  # pg1 receives the workload's WAL but applies none
    try:
        wait_until(lambda: int(lab.psql("pg1", "select pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn()")) > 4096,
                   30, "pg1 behind in replay")
        output = story.refused("tasks/switchover.py", "--data", "max_lag_bytes=4096")
        assert "pg1 lags pg2 by" in output and "force=true" in output
    finally:
        lab.psql("pg1", "select pg_wal_replay_resume()")
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "f"


def test_switchover_previews_with_dry_and_changes_nothing(story):
    output = story.dry("tasks/switchover.py")
    assert "1 (pg2)" in previewed_on(output, "stop pg2 cleanly")
    assert "1 (pg1)" in previewed_on(output, "promote pg1 once it has pg2's last WAL")
    assert story.lab.psql("pg2", "select pg_is_in_recovery()") == "f"
    assert story.lab.psql("pg1", "select pg_is_in_recovery()") == "t"


def test_switchover_puts_the_inventory_roles_back_with_a_short_pause(story):
    wait_until(lambda: story.lab.psql("pg1", "select status from pg_stat_wal_receiver") == "streaming", 60,
               "pg1 streaming before the switchover")
    started = time.monotonic()
    story.run("tasks/switchover.py")
    lab, load = story.lab, story.load
    load.wait_for_acks(10, 60, after=started)
    assert lab.psql("pg1", "select pg_is_in_recovery()") == "f"
    assert lab.psql("pg2", "select sender_host from pg_stat_wal_receiver") == lab.ip("pg1")
    wait_until(lambda: lab.psql("pg3", "select sender_host from pg_stat_wal_receiver "
                                       "where status = 'streaming'") == lab.ip("pg2"), 30, "pg3 under pg2")
    assert load.first_ack_after(time.monotonic() - 1e9, node="pg1")  # pg1 acknowledges again
    acked = sorted(a.acked for a in load.acks_after(started - 5))
    pause = max(b - a for a, b in zip(acked, acked[1:]))
    print(f"switchover write pause: {pause:.2f} s")
    assert pause < 30
    assert story.run("tasks/switchover.py") == set()  # idempotent: the inventory's master is the primary


def test_no_acknowledged_row_is_lost_and_no_overlap(story):
    story.load.stop()
    acked = {a.n for a in story.load.acks}
    present = set(map(int, story.lab.psql("pg1", f"select n from {TABLE}").split()))
    assert acked - present == set()
    # In acknowledgement order, the servers take turns once each: pg1, then pg2 (failover), then
    # pg1 again (switchover); never back and forth, which would mean two masters at once.
    runs = []
    for ack in sorted(story.load.acks, key=lambda a: a.acked):
        if not runs or runs[-1] != ack.node:
            runs.append(ack.node)
    assert runs == ["pg1", "pg2", "pg1"]


def test_the_deploy_finds_the_inventory_tree_again(story):
    story.run("deploy.py")
    assert story.run("deploy.py") == set()
