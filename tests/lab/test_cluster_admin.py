"""Cluster administration (operations/clusters.py) through the pyinfra CLI, on a deployed cascade.

One lab, `adm` (pg1 master -> pg2 cascade -> pg3 downstream), deployed once for the module; the
tests run in file order and each leaves the lab as the next one expects. Every check of the
result goes over ssh (pg_lsclusters, psql), not through the code under test.
"""
from __future__ import annotations

import pytest

from tests.conftest import Lab, deployed_lab

pytestmark = pytest.mark.lab

OPS = "operations.clusters"


@pytest.fixture(scope="module")
def adm():
    """The lab `adm`, bare, then the cascade deployed onto it; removed afterwards."""
    with deployed_lab("adm") as lab:
        yield lab


def run(lab: Lab, op: str, *args: str) -> tuple[int, str]:
    """pyinfra -y inventories/lab.py operations.clusters.OP ARGS; (exit code, all output)."""
    proc = lab.pyinfra("-y", "inventories/lab.py", f"{OPS}.{op}", *args)
    return proc.returncode, proc.stdout + proc.stderr


def status(lab: Lab, host: str, cluster: str) -> str | None:
    """pg_lsclusters' Status column for 15/<cluster> on host, None when it does not exist."""
    proc = lab.ssh(host, "pg_lsclusters --no-header")
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        fields = line.split()
        if fields[:2] == ["15", cluster]:
            return fields[3]
    return None


def psql(lab: Lab, host: str, sql: str) -> str:
    proc = lab.ssh(host, f"runuser -u postgres -- psql -XAtq -c \"{sql}\"")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_list_clusters_prints_each_hosts_table(adm):
    code, out = run(adm, "list_clusters")
    assert code == 0, out
    assert "[pg1] 15  main    5432 online " in out
    assert "[pg2] 15  main    5432 online,recovery" in out
    assert "[pg3] 15  main    5432 online,recovery" in out
    assert "] Success" not in out


def test_the_fact_works_from_the_cli(adm):
    proc = adm.pyinfra("inventories/lab.py", "fact", "facts.clusters.PgClusters", "--limit", "pg2")
    out = proc.stdout + proc.stderr  # pyinfra prints facts on stderr, with its log
    assert proc.returncode == 0, out
    assert '"status": "online,recovery"' in out and '"recovery": true' in out


def test_create_starts_a_second_cluster(adm):
    code, out = run(adm, "create_cluster", "version=15", "cluster=reports", "port=5440", "--limit", "pg3")
    assert code == 0, out
    assert "[pg3] create 15/reports on port 5440" in out and "[pg3] Success" in out
    assert status(adm, "pg3", "reports") == "online"
    assert psql(adm, "pg3", "select 1") == "1"  # 15/main still answers on 5432
    proc = adm.ssh("pg3", "runuser -u postgres -- psql -XAtq -p 5440 -c 'show server_encoding'")
    assert proc.stdout.strip() == "UTF8"


def test_second_create_changes_nothing(adm):
    code, out = run(adm, "create_cluster", "version=15", "cluster=reports", "port=5440", "--limit", "pg3")
    assert code == 0, out
    assert "[pg3] 15/reports already exists on port 5440 (online)" in out
    assert "[pg3] No changes" in out and "] Success" not in out


def test_create_on_another_port_is_refused(adm):
    code, out = run(adm, "create_cluster", "version=15", "cluster=reports", "port=5441", "--limit", "pg3")
    assert code != 0
    assert "15/reports already exists, on port 5440, not 5441" in out
    assert "Traceback" not in out
    assert status(adm, "pg3", "reports") == "online"


def test_stop_then_start(adm):
    code, out = run(adm, "stop_cluster", "version=15", "cluster=reports", "--limit", "pg3")
    assert code == 0 and "[pg3] stop 15/reports" in out, out
    assert status(adm, "pg3", "reports") == "down"
    code, out = run(adm, "stop_cluster", "version=15", "cluster=reports", "--limit", "pg3")
    assert code == 0 and "already stopped" in out and "] Success" not in out, out
    code, out = run(adm, "start_cluster", "version=15", "cluster=reports", "--limit", "pg3")
    assert code == 0 and "[pg3] start 15/reports" in out, out
    assert status(adm, "pg3", "reports") == "online"
    code, out = run(adm, "start_cluster", "version=15", "cluster=reports", "--limit", "pg3")
    assert code == 0 and "already running" in out and "] Success" not in out, out


def test_drop_without_confirm_is_refused(adm):
    code, out = run(adm, "drop_cluster", "version=15", "cluster=reports", "--limit", "pg3")
    assert code != 0
    assert "add confirm=reports" in out
    assert status(adm, "pg3", "reports") == "online"


def test_dry_drop_shows_the_change_and_keeps_the_cluster(adm):
    proc = adm.pyinfra("--dry", "inventories/lab.py", f"{OPS}.drop_cluster", "version=15", "cluster=reports",
                       "confirm=reports", "--limit", "pg3")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[pg3] drop 15/reports (port 5440, online): stop it, delete its data directory" in out
    assert "1 (pg3)" in out  # the "Detected changes" table
    assert status(adm, "pg3", "reports") == "online"


def test_drop_with_confirm_removes_it(adm):
    code, out = run(adm, "drop_cluster", "version=15", "cluster=reports", "confirm=reports", "--limit", "pg3")
    assert code == 0 and "[pg3] Success" in out, out
    assert status(adm, "pg3", "reports") is None
    assert adm.ssh("pg3", "test -e /var/lib/postgresql/15/reports || test -e /etc/postgresql/15/reports").returncode == 1
    code, out = run(adm, "drop_cluster", "version=15", "cluster=reports", "confirm=reports", "--limit", "pg3")
    assert code == 0 and "does not exist: nothing to drop" in out and "] Success" not in out, out


def test_clean_of_the_master_with_a_streaming_standby_is_refused(adm):
    code, out = run(adm, "clean", "version=15", "cluster=main", "confirm=main", "--limit", "pg1")
    assert code != 0
    assert "15/main is the upstream of 1 connected standby: standby_1 (" in out and "force=true" in out
    assert psql(adm, "pg1", "select application_name, state from pg_stat_replication") == "standby_1|streaming"
    assert psql(adm, "pg2", "select status from pg_stat_wal_receiver") == "streaming"


def test_dry_clean_with_force_says_who_would_be_cut_off_and_changes_nothing(adm):
    before = psql(adm, "pg1", "select system_identifier from pg_control_system()")
    proc = adm.pyinfra("--dry", "inventories/lab.py", f"{OPS}.clean", "version=15", "cluster=main",
                       "confirm=main", "force=true", "--limit", "pg1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[pg1] force=true: clean 15/main although it is the upstream of 1 connected standby: standby_1 (" in out
    assert "[pg1] clean 15/main (port 5432, online): stop -m immediate, drop it" in out
    assert psql(adm, "pg1", "select system_identifier from pg_control_system()") == before
    assert psql(adm, "pg2", "select status from pg_stat_wal_receiver") == "streaming"


def test_clean_of_the_downstream_makes_a_fresh_empty_cluster(adm):
    before = psql(adm, "pg3", "select system_identifier from pg_control_system()")
    assert psql(adm, "pg3", "select pg_is_in_recovery()") == "t"
    code, out = run(adm, "clean", "version=15", "cluster=main", "confirm=main", "--limit", "pg3")
    assert code == 0 and "[pg3] Success" in out, out
    after = psql(adm, "pg3", "select system_identifier from pg_control_system()")
    assert after != before
    assert f"[pg3] 15/main is a fresh, empty cluster on port 5432: system identifier {after}, not in recovery" in out
    assert psql(adm, "pg3", "select pg_is_in_recovery()") == "f"
    assert psql(adm, "pg3", "select count(*) from pg_database where datname not like 'template%'") == "1"
    assert status(adm, "pg3", "main") == "online"
