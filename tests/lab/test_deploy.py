"""The deploy on bare lab hosts: master -> cascade -> downstream, idempotent reruns, drift repair, --dry,
and bad input refused before any host is touched. Real sshd, PostgreSQL and heartbeat."""
from __future__ import annotations

import textwrap

import pytest

from planner.postgres_unit import settled_stop
from tests.conftest import ROOT, Lab, deployed_lab, wait_until
from tests.lab.pyinfra_output import changes, started_any_operation

pytestmark = pytest.mark.lab

DEPLOY = ("-y", "inventories/lab.py", "deploy.py")
CONF = "PostgreSQL configuration | postgres files: PostgreSQL reads it on reload"
SOURCES = "PostgreSQL configuration | managed settings come from the include file only (ALTER SYSTEM, other files, roles)"
APPLY = "PostgreSQL configuration | PostgreSQL runs with its configuration (reload or restart)"
TRUST = "SSH trust | postgres authorized_keys and pinned known_hosts"
TIER2 = "Standby tier | tier 2: streaming standby of its upstream"
REPLICATION_ROWS = ("select application_name, state, sync_priority, sync_state from pg_stat_replication "
                    "order by application_name")


@pytest.fixture(scope="module")
def cluster():
    with deployed_lab("test", fresh=True) as lab:  # the first deploy on bare hosts is what is tested
        yield lab


def redeploy(lab: Lab) -> set:
    proc = lab.pyinfra(*DEPLOY)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return changes(output)


def streaming_from(lab: Lab, host: str) -> str:
    return lab.psql(host, "select sender_host from pg_stat_wal_receiver where status = 'streaming'")


def test_first_deploy_builds_the_seeds_cascade(cluster):
    assert cluster.psql("pg1", "select pg_is_in_recovery()") == "f"
    assert cluster.psql("pg1", REPLICATION_ROWS) == "standby_1|streaming|1|sync"
    assert cluster.psql("pg2", REPLICATION_ROWS) == "standby_2|streaming|0|async"
    assert cluster.psql("pg3", REPLICATION_ROWS) == ""
    assert cluster.psql("pg2", "select pg_is_in_recovery()") == "t"
    assert streaming_from(cluster, "pg2") == cluster.ip("pg1")
    assert streaming_from(cluster, "pg3") == cluster.ip("pg2")


def test_a_row_committed_on_the_master_is_read_on_the_downstream(cluster):
    cluster.psql("pg1", "create table if not exists t_deploy(id int); insert into t_deploy values (42);")
    wait_until(lambda: cluster.psql("pg3", "select count(*) from t_deploy where id = 42") == "1", 30,
               "the row on pg3")


def test_wal_segments_arrive_in_the_archives_without_failures(cluster):
    segment = cluster.psql("pg1", "insert into t_deploy values (1); select pg_walfile_name(pg_current_wal_lsn());"
                                  "select pg_switch_wal();").splitlines()[0]
    archive = "/var/lib/postgresql/wal_archive"
    # The master ships to the cascade; the cascade (archive_mode = always) relays to the downstream.
    for host in ("pg2", "pg3"):
        wait_until(lambda h=host: cluster.ssh(h, f"test -f {archive}/{segment}").returncode == 0, 60,
                   f"{segment} in {host}'s archive")
    for host in ("pg1", "pg2"):
        assert cluster.psql(host, "select failed_count from pg_stat_archiver") == "0"


def test_the_vip_answers_on_the_master_and_reaches_postgresql_there(cluster):
    vip = cluster.desc["vip"]
    wait_until(lambda: vip in cluster.ssh("pg1", "ip -4 -o addr show dev eth0").stdout, 60, "the VIP on pg1")
    assert vip not in cluster.ssh("pg2", "ip -4 -o addr show dev eth0").stdout
    password = cluster.secret("PGCASCADE_REPLICATION_PASSWORD")
    # A client on pg3 connects through the VIP (its own passfile, piped in: no password in argv).
    proc = cluster.ssh("pg3", "umask 077; cat >/tmp/vip.pgpass; cd /; runuser -u postgres -- true; "
                              "chown postgres /tmp/vip.pgpass; runuser -u postgres -- psql -XAtq "
                              f"'host={vip} user=replicator dbname=postgres passfile=/tmp/vip.pgpass' "
                              "-c 'select inet_server_addr(), pg_is_in_recovery()'; rm -f /tmp/vip.pgpass",
                       input=f"{vip}:5432:postgres:replicator:{password}\n")
    assert proc.stdout.strip() == f"{vip}|f", proc.stderr


def test_a_second_run_changes_nothing(cluster):
    assert redeploy(cluster) == set()


def test_a_hand_edited_managed_setting_is_repaired_alone(cluster):
    path = "/etc/postgresql/15/main/conf.d/pgcascade.conf"
    cluster.ssh("pg2", f"sed -i 's/^wal_keep_size.*/wal_keep_size = 64MB/' {path} && systemctl reload postgresql@15-main")
    wait_until(lambda: cluster.psql("pg2", "show wal_keep_size") == "64MB", 10, "the hand edit applied")
    assert redeploy(cluster) == {(CONF, "pg2"), (APPLY, "pg2")}
    wait_until(lambda: cluster.psql("pg2", "show wal_keep_size") == "512MB", 10, "the managed value back")


def test_a_removed_authorized_key_is_restored_alone(cluster):
    keys = "/var/lib/postgresql/.ssh/authorized_keys"
    cluster.ssh("pg1", f"truncate -s 0 {keys}")
    assert redeploy(cluster) == {(TRUST, "pg1")}
    assert cluster.ssh("pg1", f"wc -l < {keys}").stdout.strip() == "2"
    # The restored trust works: pg2 reaches pg1 as postgres, host key pinned.
    proc = cluster.ssh("pg2", f"cd / && runuser -u postgres -- ssh -o BatchMode=yes {cluster.ip('pg1')} uname -n")
    assert proc.stdout.strip() == "pg1", proc.stderr


def test_a_standby_pointed_at_the_wrong_upstream_is_repointed_without_a_clone(cluster):
    sysid = cluster.psql("pg3", "select system_identifier from pg_control_system()")
    wrong = (f"host={cluster.ip('pg1')} port=5432 user=replicator application_name=standby_2 "
             "passfile=/var/lib/postgresql/.pgpass")
    cluster.psql("pg3", f"alter system set primary_conninfo = '{wrong}'; select pg_reload_conf();")
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg1"), 30, "pg3 streaming from pg1")
    # ALTER SYSTEM overrides the include file: its entry is reset, and a reload repoints pg3.
    assert redeploy(cluster) == {(SOURCES, "pg3")}
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg2"), 30, "pg3 streaming from pg2 again")
    assert cluster.psql("pg3", "select system_identifier from pg_control_system()") == sysid


def test_dry_run_lists_the_repair_and_changes_nothing(cluster):
    cluster.ssh("pg3", "systemctl stop postgresql@15-main")
    proc = cluster.pyinfra("--dry", "inventories/lab.py", "deploy.py")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    tier2 = next(line for line in output.splitlines() if line.strip().startswith(TIER2))
    assert "1 (pg3)" in tier2
    assert cluster.ssh("pg3", "systemctl is-active postgresql@15-main").stdout.strip() == "inactive"


def test_a_stopped_standby_is_started_alone(cluster):
    if cluster.ssh("pg3", "systemctl is-active postgresql@15-main").stdout.strip() == "active":
        cluster.ssh("pg3", "systemctl stop postgresql@15-main")
    assert redeploy(cluster) == {(TIER2, "pg3")}
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg2"), 30, "pg3 streaming again")


def test_when_the_downstream_fails_writes_go_on_and_rebuild_brings_it_back(cluster):
    cluster.cli("crash", "pg3")
    # The master's synchronous standby is the cascade: commits do not wait for the downstream.
    cluster.psql("pg1", "set statement_timeout = '5s'; insert into t_deploy values (3);")
    cluster.cli("restart", "pg3")
    # its disk is lost (stopped once its start has ended: planner.postgres_unit)
    cluster.ssh("pg3", f"{settled_stop('postgresql@15-main')}; rm -rf /var/lib/postgresql/15/main/*", timeout=120)
    refused = cluster.pyinfra("-y", "inventories/lab.py", "tasks/rebuild.py", "--data", "target=pg1")
    assert refused.returncode != 0 and "pg1 is the master in the inventory: rebuild only replaces a standby" in (
        refused.stdout + refused.stderr)
    assert not started_any_operation(refused.stdout + refused.stderr)
    dry = cluster.pyinfra("--dry", "inventories/lab.py", "tasks/rebuild.py", "--data", "target=pg3")
    preview = dry.stdout + dry.stderr
    assert dry.returncode == 0, preview[-3000:]
    assert "[pg3] rebuild: " in preview  # the planner's reason, without -v
    assert "1 (pg3)" in next(line for line in preview.splitlines()
                             if line.strip().startswith("rebuild pg3 from its upstream"))
    assert cluster.ssh("pg3", "ls -A /var/lib/postgresql/15/main").stdout.strip() == ""  # --dry did nothing
    rebuild = ("-y", "inventories/lab.py", "tasks/rebuild.py", "--data", "target=pg3")
    proc = cluster.pyinfra(*rebuild)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # pg2 drops the WAL files it kept for pg3 while pg3 was down, when there were any.
    assert changes(proc.stdout + proc.stderr) - {("pg3's archive backlog on its upstream", "pg2")} == {
        ("rebuild pg3 from its upstream", "pg3")}
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg2"), 30, "pg3 streaming after its rebuild")
    wait_until(lambda: cluster.psql("pg3", "select count(*) from t_deploy where id = 3") == "1", 30, "the row")
    again = cluster.pyinfra(*rebuild)
    assert again.returncode == 0 and changes(again.stdout + again.stderr) == set()  # healthy: nothing to do


# ---- bad input: a clear error, and no operation started on any host --------------------------

def _inventory(tmp_path, body: str) -> str:
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(f"""\
        import runpy
        _lab = runpy.run_path({str(ROOT / 'inventories/lab.py')!r})
        master, cascade, downstream = _lab["master"], _lab["cascade"], _lab["downstream"]
        """) + textwrap.dedent(body))
    return str(path)


def _env_without_secrets(lab: Lab) -> dict:
    return {k: v for k, v in lab.env.items() if not k.startswith("PGCASCADE_") or k == "PGCASCADE_LAB"}


BAD_INVENTORIES = [
    ("missing-secret", 'master = [(n, {**d, "secrets_file": "/nonexistent/secrets.env"}) for n, d in master]\n'
                       'cascade = [(n, {**d, "secrets_file": "/nonexistent/secrets.env"}) for n, d in cascade]\n'
                       'downstream = [(n, {**d, "secrets_file": "/nonexistent/secrets.env"}) for n, d in downstream]\n',
     ["PGCASCADE_REPLICATION_PASSWORD", "/nonexistent/secrets.env"]),
    ("unknown-upstream", 'downstream = [(n, {**d, "pg_upstream": "pg9"}) for n, d in downstream]\n',
     ["pg3", "pg_upstream", "pg9"]),
    ("cycle", 'cascade = [(n, {**d, "pg_upstream": "pg3"}) for n, d in cascade]\n', ["cycle"]),
    ("two-masters", 'master = master + [(n, d) for n, d in cascade]\ncascade = []\n'
                    'downstream = [(n, {**d, "pg_upstream": "pg1"}) for n, d in downstream]\n',
     ["master"]),
]


@pytest.mark.parametrize("body, words", [c[1:] for c in BAD_INVENTORIES], ids=[c[0] for c in BAD_INVENTORIES])
def test_bad_input_is_refused_before_any_host_is_touched(cluster, tmp_path, body, words):
    before = cluster.ssh("pg1", "stat -c %Y /etc/postgresql/15/main/conf.d/pgcascade.conf").stdout
    proc = cluster.pyinfra("-y", _inventory(tmp_path, body), "deploy.py", env=_env_without_secrets(cluster))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert not started_any_operation(output), output[-3000:]
    for word in words:
        assert word in output, output[-3000:]
    assert cluster.ssh("pg1", "stat -c %Y /etc/postgresql/15/main/conf.d/pgcascade.conf").stdout == before


def test_an_unreachable_host_stops_the_run_before_any_change(cluster):
    cluster.cli("crash", "pg3")
    try:
        proc = cluster.pyinfra(*DEPLOY, timeout=300)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "pg3" in output and not started_any_operation(output), output[-3000:]
    finally:
        cluster.cli("restart", "pg3")
    wait_until(lambda: cluster.ssh("pg3", "systemctl is-active postgresql@15-main").stdout.strip() == "active",
               60, "PostgreSQL back on pg3 after its reboot")
