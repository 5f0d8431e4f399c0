"""A stale cascade is never promoted over the synchronous downstream (its own module: a module's
clusters are up together, and every cluster booted from the deployed snapshot takes its subnet)."""
from __future__ import annotations

import json
import time

import pytest

from lab.workload import TABLE
from tests.conftest import holds_resources, wait_until
from tests.lab.test_failover_master import assert_acknowledged_rows_on, journal, workload
from tests.lab.test_failover_retry import deployed

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def stale(tmp_path_factory):
    with deployed("fs", tmp_path_factory) as lab:
        yield lab


def test_a_stale_cascade_is_never_promoted_over_the_synchronous_downstream(stale):
    lab = stale
    with workload(lab) as load:
        load.wait_for_acks(20, 30)
        lab.cli("crash", "pg2")
        # The cascade monitor fails the cascade over: pg3 becomes the master's synchronous standby,
        # and cascade-failed records it on every reachable host.
        wait_until(lambda: json.loads(lab.ssh("pg3", "cat /var/lib/postgresql/pgcascade/syncset.json").stdout or "{}")
                   .get("synchronous") == ["standby_2"], 60, "the record naming pg3 synchronous")
        lab.cli("restart", "pg2")
        wait_until(lambda: lab.ssh("pg2", "cd / && runuser -u postgres -- psql -XAtc 'select 1'").returncode == 0,
                   60, "pg2's PostgreSQL back (a standby)")
        # Cut off from WAL: no stream (and its archive gets nothing since the cascade failover).
        lab.psql("pg2", "alter system set primary_conninfo = ''; select pg_reload_conf();")
        cut = time.monotonic()
        load.wait_for_acks(100, 60, after=cut)
        lab.cli("crash", "pg1")
        crashed = time.monotonic()
        wait_until(lambda: "[stale-candidate]" in journal(lab, "pg2") or "[sync-member-unreachable]" in journal(lab, "pg2"),
                   60, "pg2 refusing to be promoted")
        wait_until(lambda: time.monotonic() - crashed > 20, 30, "20 s after the crash", interval=1)
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert not holds_resources(lab, "pg2")
    assert "[stale-candidate]" in journal(lab, "pg2")
    acked_after_cut = [a for a in load.acks if a.acked > cut]
    assert len(acked_after_cut) >= 100
    # Every acknowledged row is on the downstream, nothing was promoted over it.
    last = max(a.n for a in load.acks)
    assert lab.psql("pg3", f"select count(*) from {TABLE} where n = {last}") == "1"
    assert_acknowledged_rows_on(lab, "pg3", load)
