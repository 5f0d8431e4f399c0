"""Compound: the cascade's PostgreSQL dies on a live host and cannot start again (ha-watch's
restarts fail; the monitor fails over: the downstream becomes the master's synchronous standby),
then the master crashes (lab `cc`, a fresh cluster). The stale cascade, whose heartbeat still runs, must not be promoted with less
than the downstream holds: every row acknowledged through the VIP is on the downstream, and on
whichever server acknowledges writes afterwards; no two servers acknowledge at once."""
from __future__ import annotations

import os
import secrets
import time
from types import SimpleNamespace

import pytest

from lab.workload import Workload, client_inventory, install_sql
from tests.conftest import deployed_lab, holds_resources, wait_until
from tests.lab.test_failover_master import assert_acknowledged_rows_on

pytestmark = pytest.mark.lab

ROLE = "pgcascade_workload"
UNIT = "postgresql@15-main"
WRITE_BOUND = 10


@pytest.fixture
def cluster(tmp_path):
    """A cluster deployed onto bare hosts, the workload admitted."""
    with deployed_lab("cc", inventory="inventories/lab.py", fresh=True) as lab:
        proc = lab.pyinfra("-y", client_inventory(lab.desc, tmp_path, ROLE), "deploy.py")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        wait_until(lambda: holds_resources(lab, "pg1"), 90, "heartbeat giving pg1 the resources")
        lab.password = secrets.token_urlsafe(24)
        lab.psql("pg1", install_sql(ROLE, lab.password, os.urandom(16)))
        yield lab


def test_cascade_postgresql_dies_then_the_master_crashes(cluster):
    lab = cluster
    with Workload(lab.desc["vip"], 5432, ROLE, lab.password) as load:
        load.wait_for_acks(20, 30)
        # Its start fails from now on (a broken disk, a bad setting): ha-watch's restarts cannot help.
        cannot_start = f"/run/systemd/system/{UNIT}.service.d"
        lab.ssh("pg2", f"mkdir -p {cannot_start} && printf '[Service]\\nExecStartPre=/bin/false\\n' "
                       f">{cannot_start}/fail.conf && systemctl daemon-reload")
        killed = time.monotonic()
        lab.ssh("pg2", f"systemctl kill -s KILL {UNIT}")
        wait_until(lambda: lab.psql("pg1", "select count(*) from pg_stat_replication where application_name = "
                                           "'standby_2' and sync_state = 'sync'") == "1", 30,
                   "pg3 the master's synchronous standby")
        load.wait_for_acks(50, 30, after=time.monotonic())
        pause = load.longest_pause(killed, time.monotonic())
        assert pause <= WRITE_BOUND, f"commits stopped for {pause:.1f} s after the cascade's PostgreSQL died"
        crashed = time.monotonic()
        lab.cli("crash", "pg1")
        end = time.monotonic() + 40
        while time.monotonic() < end:
            time.sleep(0.5)
    assert not load.overlaps(), load.overlaps()
    before = [a for a in load.acks if a.acked < crashed]
    assert before and {a.node for a in before} == {"pg1"}
    # Every row pg1 acknowledged is on pg3, its synchronous standby (those acknowledged while the
    # crash command ran too: pg1 is gone, so they are checked there and not on pg1).
    by_pg1 = [a for a in load.acks if a.node == "pg1"]
    assert_acknowledged_rows_on(lab, "pg3", SimpleNamespace(acks=by_pg1))
    # Whoever took over (if anyone) holds them too: no stale cascade was promoted.
    after = {a.node for a in load.acks if a.acked > crashed} - {"pg1"}
    print(f"acknowledged after the master's crash by: {sorted(after) or 'nobody'}")
    for node in after:
        assert_acknowledged_rows_on(lab, node, load)
    if lab.ssh("pg2", "pg_isready -q").returncode == 0 and lab.psql("pg2", "select pg_is_in_recovery()") == "f":
        assert_acknowledged_rows_on(lab, "pg2", SimpleNamespace(acks=before))


def test_the_downstreams_postgresql_killed_then_the_cascade_crashes(cluster):
    """The downstream's PostgreSQL killed on a live host, then at once the cascade's machine
    crashes. The downstream's unit starts its server again (OnFailure=, no ha-watch there), its
    monitor then fails the lost cascade over and the master's commits resume, waiting for the
    downstream. Before, the downstream stayed down, its monitor could not act (its own PostgreSQL
    did not answer) and every commit waited for the lost cascade."""
    lab = cluster
    with Workload(lab.desc["vip"], 5432, ROLE, lab.password) as load:
        load.wait_for_acks(20, 30)
        killed = lab.ssh("pg3", "head -1 /var/lib/postgresql/15/main/postmaster.pid").stdout.strip()
        lab.ssh("pg3", f"kill -9 {killed}")
        crashed = time.monotonic()
        lab.cli("crash", "pg2")
        wait_until(lambda: lab.psql("pg1", "select count(*) from pg_stat_replication where application_name = "
                                           "'standby_2' and sync_state = 'sync'") == "1", 60,
                   "pg3 the master's synchronous standby")
        load.wait_for_acks(50, 30, after=time.monotonic())
        pause = load.longest_pause(crashed, time.monotonic())
    print(f"downstream killed, cascade crashed: commits stopped for {pause:.1f} s")
    # The downstream's start (about 2 s) and the monitor's 4 s without WAL flow, with room for load.
    assert pause <= 2 * WRITE_BOUND, f"commits stopped for {pause:.1f} s"
    assert not load.overlaps() and {a.node for a in load.acks} == {"pg1"}
    assert_acknowledged_rows_on(lab, "pg1", load)
