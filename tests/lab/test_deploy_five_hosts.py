"""Topology is data: 1 master + 1 cascade + 3 downstream standbys deploy and replicate."""
from __future__ import annotations

import pytest

from tests.conftest import Lab, wait_until

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster5():
    lab = Lab("five", 5)
    try:
        yield lab
    finally:
        lab.down()


def test_one_master_one_cascade_three_downstreams(cluster5):
    proc = cluster5.pyinfra("-y", "inventories/lab.py", "deploy.py")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    rows = "select application_name, state, sync_state from pg_stat_replication order by 1"
    assert cluster5.psql("pg1", rows) == "standby_1|streaming|sync"
    assert cluster5.psql("pg2", rows).splitlines() == [
        "standby_2|streaming|async", "standby_3|streaming|async", "standby_4|streaming|async"]
    cluster5.psql("pg1", "create table t5(id int); insert into t5 values (5);")
    for host in ("pg3", "pg4", "pg5"):
        wait_until(lambda h=host: cluster5.psql(h, "select count(*) from t5") == "1", 30, f"the row on {host}")
