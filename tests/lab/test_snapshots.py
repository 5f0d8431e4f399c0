"""Snapshots of a deployed cluster: `python -m lab up --from SNAP` boots it in seconds, the whole
cluster cold-booted at once (a rack that lost power) comes back as the deploy left it, a stale
snapshot is refused, and `down` leaves nothing behind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab import snapshots
from lab.client import Lab, holds_resources
from lab.deployed import ensure_deployed_snapshot
from lab.paths import STATE_ROOT
from tests.conftest import deployed_lab, lab_cli, test_lab_name, wait_until
from tests.lab.pyinfra_output import changes

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster():
    with deployed_lab("snp") as lab:
        yield lab


def test_boot_keeps_the_cluster_s_identity_and_roles(cluster):
    meta = snapshots.load(cluster.desc["snapshot"])
    assert meta["subnet"] == cluster.desc["subnet"]
    for host in ("pg1", "pg2", "pg3"):
        saved = meta["clusters"][host]["var/lib/postgresql/15/main"]["system_identifier"]
        assert cluster.psql(host, "select system_identifier from pg_control_system()") == saved
    assert cluster.psql("pg1", "select pg_is_in_recovery(), timeline_id from pg_control_checkpoint()") == "f|1"
    assert cluster.psql("pg1", "select application_name, state, sync_state from pg_stat_replication") == \
        "standby_1|streaming|sync"
    assert cluster.psql("pg2", "select application_name, state from pg_stat_replication") == "standby_2|streaming"


def test_the_cold_boot_failed_nothing_over(cluster):
    journal = cluster.ssh("pg2", "journalctl -b -t pgcascade --no-pager -o cat").stdout
    assert "promoting" not in journal
    assert cluster.psql("pg2", "select pg_is_in_recovery()") == "t"


def test_a_write_reaches_the_downstream(cluster):
    cluster.psql("pg1", "create table t_snap(id int); insert into t_snap values (7)")
    wait_until(lambda: cluster.psql("pg3", "select count(*) from t_snap") == "1", 30, "the row on pg3")


def test_a_deploy_after_the_cold_boot_changes_nothing(cluster):
    proc = cluster.pyinfra("-y", "inventories/lab.py", "deploy.py")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert changes(output) == set(), output[-4000:]


def test_a_second_lab_on_the_snapshot_s_subnet_is_refused(cluster):
    other = test_lab_name("snq")
    proc = lab_cli(other, "up", "--from", cluster.desc["snapshot"], check=False)
    assert proc.returncode == 1
    assert f"needs subnet {cluster.desc['subnet']}" in proc.stderr and repr(cluster.name) in proc.stderr
    assert not (STATE_ROOT / other).exists() or lab_cli(other, "down").returncode == 0


def test_a_stale_snapshot_is_refused_naming_what_changed(cluster, tmp_path):
    stale = f"stale-{test_lab_name('x')}"
    target = snapshots.snapshot_dir(stale)
    target.mkdir(parents=True, exist_ok=True)
    try:
        meta = snapshots.load(cluster.desc["snapshot"])
        meta["key"]["deploy"]["templates/ha.cf.j2"] = "an older version"
        (target / "snapshot.json").write_text(json.dumps(meta))
        proc = lab_cli(test_lab_name("snq"), "up", "--from", stale, check=False)
        assert proc.returncode == 1
        assert "is stale: deploy files changed since the snapshot: templates/ha.cf.j2" in proc.stderr
    finally:
        shutil.rmtree(target)


def test_snapshot_of_a_snapshot_booted_lab_is_refused(cluster):
    proc = cluster.cli("snapshot", "again", check=False)
    assert proc.returncode == 1 and "boots from snapshot" in proc.stderr
    assert "running" in cluster.cli("status").stdout  # nothing was stopped


def test_down_leaves_nothing_behind(cluster):
    name = cluster.name
    cluster.down()
    assert not (STATE_ROOT / name).exists()
    assert f"{STATE_ROOT}/{name}/" not in Path("/proc/self/mounts").read_text()
    assert not list(Path("/run/netns").glob(f"pgl-{name}-*"))
    assert not any(Path(tree, "pgl", name).exists() for tree in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"))
    assert f"v{name}-" not in lab_cli(name, "status", check=False).stdout
    assert snapshots.load(cluster.desc["snapshot"])  # the snapshot itself stays


@pytest.fixture
def master_alone():
    """The deployed cluster booted with pg1 alone (pg2 and pg3 stay off); a fixture, so that a
    failure's report carries the hosts' journals."""
    lab = Lab("snc", snapshot=ensure_deployed_snapshot(3), only="pg1")
    try:
        yield lab
    finally:
        lab.down()


def test_the_master_booting_alone_first_gets_its_resources_once_the_others_are_back(master_alone):
    """A power cut of the whole cluster, and the master boots well before the others: hapostgres
    refuses to start a primary nobody can vouch for (or heartbeat, its peer gone during the boot,
    counts the group acquired without starting it); once the standbys answer, the resources are
    started (by heartbeat as its peer joins, or by ha-watch: hb_takeover or the group's start),
    hapostgres restarting the old primary in place; nothing is promoted."""
    lab = master_alone
    wait_until(lambda: "Initial resource acquisition complete" in
               lab.ssh("pg1", "journalctl -b -u heartbeat --no-pager -o cat").stdout, 300,
               "pg1's heartbeat done with its initial resource acquisition")
    assert not holds_resources(lab, "pg1")
    lab.cli("restart", "pg2")
    lab.cli("restart", "pg3")
    wait_until(lambda: holds_resources(lab, "pg1"), 300, "pg1 holding the resources again")
    lab.wait_healthy(300)
    assert lab.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert "promoting" not in lab.ssh("pg2", "journalctl -b -t pgcascade --no-pager -o cat").stdout
    journal = lab.ssh("pg1", "journalctl -b -t pgcascade --no-pager -o cat").stdout
    assert "boot-guard: REFUSED" in journal, journal  # not started before anyone could vouch for it
    assert "hapostgres: start: PostgreSQL 15/main is the primary again" in journal, journal
