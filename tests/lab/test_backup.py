"""Backups with pgBackRest on a 4-host lab (pg1 master, pg2 cascade, pg3 downstream, pg4 the
repository host), in sequence on one lab: the deploy's first backup, PITR to a time, a restore
point and an LSN onto a separate cluster with the live cluster untouched, the refusals, the
restore tasks' --dry, a scheduled backup from a standby in tasks.status, a standby rebuilt from
the repository, PITR on both sides of a master failover (a new timeline in the same stanza), then
WAL archiving as the primary moves on: the old master rejoined, a switchover and back, a cascade
failover, and a PITR across all those timelines."""
from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Lab, lab_cli, wait_until
from tests.lab.pyinfra_output import changes

pytestmark = pytest.mark.lab

DEPLOY = ("-y", "inventories/lab.py", "deploy.py")
PITR = ("inventories/lab.py", "tasks/pitr.py")
REBUILD = ("inventories/lab.py", "tasks/rebuild_from_backup.py")
AS_POSTGRES = "cd / && runuser -u postgres -- "
INFO = AS_POSTGRES + "pgbackrest --stanza=main --output=json --log-level-console=off info"
CONTROL = AS_POSTGRES + "/usr/lib/postgresql/15/bin/pg_controldata /var/lib/postgresql/15/main"
SEGMENT_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    # The demo's hosts: the cluster's packages pre-installed (test_deploy deploys on bare hosts).
    lab = Lab("bk", 4, backup=True, with_packages=True)
    try:
        proc = lab.pyinfra(*DEPLOY, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        yield lab
    finally:
        lab.down()


def run_ok(lab: Lab, *args: str, timeout: float = 900) -> str:
    proc = lab.pyinfra(*args, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def refused(lab: Lab, *args: str) -> str:
    proc = lab.pyinfra(*args, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "--> Starting operation" not in output, "a refused task must stop before any operation runs"
    return output


def rows(lab: Lab, host: str, port: int, table: str = "t_backup") -> str:
    return lab.psql(host, f"\\c postgres - - {port}\nselect count(*) || ',' || coalesce(max(id), 0) from {table}")


def clusters(lab: Lab, host: str) -> set[str]:
    return set(lab.ssh(host, "pg_lsclusters -h | awk '{print $2, $3, $4}'").stdout.split("\n")) - {""}


def previewed_on(output: str, operation: str) -> str:
    """The --dry summary line of an operation (its name, then the hosts it would change)."""
    return next(line for line in output.splitlines() if line.strip().startswith(operation))


def backups(lab: Lab) -> list[dict]:
    return json.loads(lab.ssh("pg4", INFO).stdout)[0]["backup"]


def archives_and_backs_up(lab: Lab, primary: str, step: str, timeline: int) -> None:
    """On the current primary: pgbackrest check passes, a row is committed, the WAL file that
    holds it (on `timeline`) can be fetched back from the repository, and a backup is taken."""
    assert lab.psql(primary, "select pg_is_in_recovery()") == "f"
    proc = lab.ssh(primary, AS_POSTGRES + "pgbackrest --stanza=main check", timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lab.psql(primary, f"insert into t_roles values ('{step}')")
    segment = lab.psql(primary, "select pg_walfile_name(pg_switch_wal())")
    assert int(segment[:8], 16) == timeline, segment
    fetched = f"/tmp/fetched-{segment}"
    wait_until(lambda: lab.ssh(primary, AS_POSTGRES + f"pgbackrest --stanza=main --log-level-console=off "
                                        f"archive-get {segment} {fetched}").returncode == 0,
               120, f"{segment} fetched back from the repository")
    assert lab.ssh(primary, f"stat -c %s {fetched} && rm -f {fetched}").stdout.strip() == str(SEGMENT_BYTES)
    before = len(backups(lab))
    proc = lab.ssh("pg4", "systemctl start pgcascade-backup@diff.service", timeout=600)
    assert proc.returncode == 0, proc.stderr
    taken = backups(lab)
    assert len(taken) == before + 1
    # the backup started on the primary's timeline
    assert int(taken[-1]["archive"]["start"][:8], 16) == timeline, taken[-1]["archive"]


def utc_now(lab: Lab, host: str = "pg1") -> str:
    return lab.psql(host, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def test_the_deploy_takes_the_first_backup_and_a_rerun_changes_nothing(cluster):
    info = cluster.ssh("pg4", INFO).stdout
    assert '"type":"full"' in info and '"cipher":"aes-256-cbc"' in info
    # the cipher pass is in pgbackrest.conf only, 0600, never in argv
    assert cluster.ssh("pg4", "stat -c '%a %U' /etc/pgbackrest.conf").stdout.strip() == "600 postgres"
    output = run_ok(cluster, *DEPLOY)
    ours = {(op, h) for op, h in changes(output)
            if op.startswith(("Backup", "PostgreSQL configuration", "Packages", "SSH trust"))}
    assert ours == set(), changes(output)
    status = cluster.status()
    assert status.returncode == 0, status.stdout[-3000:]
    assert "backups: repository on pg4, stanza main" in status.stdout
    assert "scheduled full: ok" in status.stdout and "taken from a standby" in status.stdout


def test_the_packages_layer_leaves_each_host_its_own_keys_and_heartbeat_only_where_the_vip_goes(cluster):
    keys = {}
    for name in ("pg1", "pg2", "pg3", "pg4"):
        proc = cluster.ssh(name, "sha256sum /etc/ssl/private/ssl-cert-snakeoil.key; systemctl is-enabled heartbeat")
        keys[name], enabled = proc.stdout.split()[0], proc.stdout.split()[-1]
        assert enabled == ("enabled" if name in ("pg1", "pg2") else "disabled"), (name, proc.stdout, proc.stderr)
    assert len(set(keys.values())) == 4, keys
    proc = lab_cli(cluster.name, "snapshot", "never", check=False)
    assert proc.returncode == 1 and "pre-installed packages layer" in proc.stderr, proc.stderr
    assert cluster.ssh("pg1", "true").returncode == 0  # refused before any host was powered off
    # The layer carries no cluster (each host's deploy makes its own): the repository host has
    # PostgreSQL's package and none.
    clusters = cluster.ssh("pg4", "pg_lsclusters --no-header; ls /etc/postgresql").stdout
    assert clusters.strip() == "", clusters


def test_pitr_to_a_time_a_restore_point_and_an_lsn_on_a_separate_cluster(cluster):
    lab = cluster
    lab.psql("pg1", "create table t_backup(id int primary key)")
    lab.psql("pg1", "insert into t_backup select generate_series(1, 10)")
    lab.psql("pg1", "select pg_create_restore_point('ten_rows')")
    time.sleep(1.1)
    at_ten = utc_now(lab)
    time.sleep(1.1)
    lab.psql("pg1", "insert into t_backup select generate_series(11, 20)")
    at_twenty = lab.psql("pg1", "select pg_current_wal_lsn()")
    lab.psql("pg1", "drop table t_backup")
    before = clusters(lab, "pg3")

    run_ok(lab, "-y", *PITR, "--data", "onto=pg3", "--data", f"time={at_ten}")
    assert rows(lab, "pg3", 5440) == "10,10"
    run_ok(lab, "-y", *PITR, "--data", "onto=pg3", "--data", "restore_point=ten_rows", "--data", "cluster=rp",
           "--data", "port=5441")
    assert rows(lab, "pg3", 5441) == "10,10"
    run_ok(lab, "-y", *PITR, "--data", "onto=pg3", "--data", f"lsn={at_twenty}", "--data", "cluster=lsn",
           "--data", "port=5442")
    assert rows(lab, "pg3", 5442) == "20,20"
    # the restored clusters are primaries of their own that do not archive
    assert lab.psql("pg3", "\\c postgres - - 5440\nselect pg_is_in_recovery(), current_setting('archive_mode')") \
        == "f|off"
    # the live cluster is untouched: the table stays dropped, pg3's own cluster still streams
    assert lab.psql("pg1", "select to_regclass('t_backup') is null") == "t"
    assert lab.psql("pg3", "select status from pg_stat_wal_receiver") == "streaming"
    assert clusters(lab, "pg3") == before | {"lsn 5442 online", "pitr 5440 online", "rp 5441 online"}
    # a second run changes nothing, on any host
    output = run_ok(lab, "-y", *PITR, "--data", "onto=pg3", "--data", f"time={at_ten}")
    assert changes(output) == set(), changes(output)


def test_bad_input_is_refused_before_any_host_is_touched(cluster):
    lab = cluster
    before = clusters(lab, "pg3")
    cases = {
        ("time=2001-01-01 00:00:00+00",): "is before the oldest backup",
        ("time=2100-01-01 00:00:00+00",): "is after the newest WAL",
        ("time=2026-01-01 00:00:00",): "has no time zone",
        ("lsn=FFFF/0",): "is after the newest WAL (the primary is at",
        ("restore_point=x", "stanza=other"): "unknown stanza 'other'",
        ("restore_point=x", "cluster=main"): "pg3: 15/main is a live member of the cluster",
        ("restore_point=x", "cluster=other", "port=5432"): "port 5432 is taken by cluster 15/main",
        ("restore_point=x", "cluster=lsn", "port=5442"): "15/lsn exists (restored to lsn",
    }
    for data, words in cases.items():
        args = [x for item in data for x in ("--data", item)]
        output = refused(lab, "-y", *PITR, "--data", "onto=pg3", *args)
        assert words in output, (data, output[-2000:])
    output = refused(lab, "-y", *PITR, "--data", "onto=pg1", "--data", "restore_point=x", "--data", "cluster=main",
                     "--data", "confirm=pg1")
    assert "pg1: 15/main is the cluster's running primary: never restored over" in output
    # the repository host is down
    lab.cli("crash", "pg4")
    try:
        output = refused(lab, "-y", *PITR, "--data", "onto=pg3", "--data", "restore_point=x")
        assert "pg4" in output
        output = refused(lab, "-y", *PITR, "--data", "onto=pg3", "--data", "restore_point=x", "--exclude", "pg4")
        assert "cannot reach the backup repository host pg4" in output
        output = refused(lab, "-y", *REBUILD, "--data", "target=pg3", "--exclude", "pg4")
        assert "cannot reach the backup repository host pg4" in output
    finally:
        lab.cli("restart", "pg4")
    assert clusters(lab, "pg3") == before


def test_the_restore_tasks_dry_run_changes_nothing(cluster):
    lab = cluster
    before = clusters(lab, "pg3"), lab.ssh("pg3", CONTROL).stdout
    started = lab.psql("pg3", "select pg_postmaster_start_time()")
    output = run_ok(lab, "--dry", *PITR, "--data", "onto=pg3", "--data", "restore_point=ten_rows",
                    "--data", "cluster=dry", "--data", "port=5459")
    assert "1 (pg3)" in previewed_on(output, "restore to restore point ten_rows onto pg3 as dry")
    output = run_ok(lab, "--dry", *REBUILD, "--data", "target=pg3", "--data", "force=true")
    assert "1 (pg3)" in previewed_on(output, "rebuild pg3 from the backup repository")
    # pg3 untouched: its clusters, pg_control (system identifier, checkpoint), its server never restarted
    assert "Database system identifier" in before[1]
    assert (clusters(lab, "pg3"), lab.ssh("pg3", CONTROL).stdout) == before
    assert lab.ssh("pg3", "test -e /var/lib/postgresql/15/dry").returncode != 0
    assert lab.psql("pg3", "select pg_postmaster_start_time()") == started
    assert lab.psql("pg3", "select status from pg_stat_wal_receiver") == "streaming"


def test_a_scheduled_backup_runs_from_the_standby_and_status_shows_it(cluster):
    lab = cluster
    for kind in ("full", "diff", "check"):
        assert lab.ssh("pg4", f"systemctl is-active pgcascade-backup-{kind}.timer").stdout.strip() == "active"
    # what the diff timer starts
    proc = lab.ssh("pg4", "systemctl start pgcascade-backup@diff.service", timeout=300)
    assert proc.returncode == 0, proc.stderr
    journal = lab.ssh("pg4", "journalctl -u pgcascade-backup@diff.service -o cat --no-pager").stdout
    assert "diff backup of stanza main taken from a standby" in journal
    assert '"type":"diff"' in lab.ssh("pg4", INFO).stdout
    status = lab.status()
    assert status.returncode == 0, status.stdout[-3000:]
    assert "scheduled diff: ok" in status.stdout and "diff backup taken from a standby" in status.stdout
    assert "archive check ok" in status.stdout


def test_a_standby_rebuilt_from_the_repository_streams_again(cluster):
    lab = cluster
    # its disk is lost
    assert lab.ssh("pg3", "systemctl stop postgresql@15-main && find /var/lib/postgresql/15/main -mindepth 1 -delete"
                   ).returncode == 0
    output = run_ok(lab, "-y", *REBUILD, "--data", "target=pg3")
    assert "a delta restore of backup" in output
    wait_until(lambda: lab.psql("pg3", "select status from pg_stat_wal_receiver") == "streaming", 60,
               "pg3 streaming again")
    assert lab.psql("pg3", "select sender_host from pg_stat_wal_receiver") == lab.ip("pg2")
    lab.psql("pg1", "create table t_rebuilt(id int); insert into t_rebuilt values (7)")
    wait_until(lambda: lab.psql("pg3", "select count(*) from pg_class where relname = 't_rebuilt'") == "1", 30,
               "a new table on the rebuilt standby")
    # the managed restore_command applies again (pgBackRest's own was for the catch-up only)
    assert "wal_archive" in lab.psql("pg3", "show restore_command")
    output = run_ok(lab, "-y", *REBUILD, "--data", "target=pg3")
    assert changes(output) == set(), changes(output)


def test_pitr_on_both_sides_of_a_master_failover(cluster):
    lab = cluster
    lab.psql("pg1", "create table t_failover(id int)")
    lab.psql("pg1", "insert into t_failover select generate_series(1, 5)")
    time.sleep(1.1)
    on_old_timeline = utc_now(lab, "pg1")
    time.sleep(1.1)
    lab.psql("pg1", "insert into t_failover select generate_series(6, 8)")
    lab.cli("crash", "pg1")
    wait_until(lambda: lab.psql("pg2", "select pg_is_in_recovery()") == "f", 60, "pg2 promoted")
    assert lab.psql("pg2", "select timeline_id from pg_control_checkpoint()") in ("1", "2")
    lab.psql("pg2", "insert into t_failover select generate_series(9, 12)")
    time.sleep(1.1)
    on_new_timeline = utc_now(lab, "pg2")
    time.sleep(1.1)
    lab.psql("pg2", "insert into t_failover select generate_series(13, 15)")

    run_ok(lab, "-y", *PITR, "--exclude", "pg1", "--data", "onto=pg3", "--data", f"time={on_old_timeline}",
           "--data", "cluster=old", "--data", "port=5450")
    assert rows(lab, "pg3", 5450, "t_failover") == "5,5"
    run_ok(lab, "-y", *PITR, "--exclude", "pg1", "--data", "onto=pg3", "--data", f"time={on_new_timeline}",
           "--data", "cluster=new", "--data", "port=5451")
    assert rows(lab, "pg3", 5451, "t_failover") == "12,12"
    # the new timeline goes on in the same stanza
    info = lab.ssh("pg4", INFO).stdout
    assert '"max":"00000002' in info, info[:600]


def test_archiving_after_the_old_master_rejoins(cluster):
    lab = cluster
    lab.cli("restart", "pg1")
    run_ok(lab, "-y", "inventories/lab.py", "tasks/rejoin.py")
    wait_until(lambda: lab.psql("pg1", "select status from pg_stat_wal_receiver") == "streaming", 90,
               "pg1 streaming from pg2")
    lab.psql("pg2", "create table t_roles(step text primary key)")
    archives_and_backs_up(lab, "pg2", "rejoin", 2)


def test_archiving_after_a_switchover_and_back(cluster):
    lab = cluster
    run_ok(lab, "-y", "inventories/lab.py", "tasks/switchover.py")  # the inventory's master pg1 again: timeline 3
    run_ok(lab, "-y", "inventories/lab.py", "tasks/switchover.py", "--data", "target=pg2")
    archives_and_backs_up(lab, "pg2", "switchover", 4)
    run_ok(lab, "-y", "inventories/lab.py", "tasks/switchover.py")
    archives_and_backs_up(lab, "pg1", "switch back", 5)


def test_archiving_after_a_cascade_failover(cluster):
    lab = cluster
    wait_until(lambda: lab.psql("pg3", "select sender_host from pg_stat_wal_receiver where status = 'streaming'")
               == lab.ip("pg2"), 60, "pg3 under pg2")
    lab.cli("crash", "pg2")
    wait_until(lambda: lab.psql("pg3", "select sender_host from pg_stat_wal_receiver where status = 'streaming'")
               == lab.ip("pg1"), 90, "pg3 streaming from pg1 (the cascade monitor's repair)")
    archives_and_backs_up(lab, "pg1", "cascade", 5)


def test_pitr_across_all_those_timelines_shows_each_steps_row(cluster):
    lab = cluster
    lab.psql("pg1", "select pg_create_restore_point('after_roles')")
    args = ("-y", *PITR, "--exclude", "pg2", "--data", "onto=pg3", "--data", "restore_point=after_roles",
            "--data", "cluster=roles", "--data", "port=5460")
    run_ok(lab, *args)
    assert rows(lab, "pg3", 5460, "t_failover") == "15,15"
    steps = lab.psql("pg3", "\\c postgres - - 5460\nselect string_agg(step, ',' order by step) from t_roles")
    assert steps == "cascade,rejoin,switch back,switchover"
    assert json.loads(lab.ssh("pg4", INFO).stdout)[0]["archive"][0]["max"].startswith("00000005")
    output = run_ok(lab, *args)
    assert changes(output) == set(), changes(output)
