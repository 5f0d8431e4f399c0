"""Backups: the inventory's backup group, the archive_command push, the repository's files."""
from __future__ import annotations

import copy
import re
import subprocess

import pytest

from planner import settings
from planner.backup import archive_push_command, repository_config_vars, wake_archivers_command
from planner.model import BackupRepository
from planner.render import render
from planner.topology import InventoryError, build_topology
from tests.unit.executables import write_executable
from tests.unit.topologies import three


def _hosts(**cluster):
    def pg(group, address, upstream=None, app=None):
        data = {"ssh_hostname": address, **cluster}
        if upstream:
            data.update(pg_upstream=upstream, pg_application_name=app)
        return {"groups": [group], "data": data}
    return {
        "pg1": pg("master", "10.0.0.1"),
        "pg2": pg("cascade", "10.0.0.2", "pg1", "standby_1"),
        "pg3": pg("downstream", "10.0.0.3", "pg2", "standby_2"),
        "bk1": {"groups": ["backup"], "data": {"ssh_hostname": "10.0.0.9", **cluster}},
    }


def test_no_backup_group_means_no_repository():
    hosts = _hosts()
    del hosts["bk1"]
    assert build_topology(hosts).cluster.backup is None


def test_the_backup_group_gives_the_repository_with_defaults():
    backup = build_topology(_hosts()).cluster.backup
    assert (backup.host, backup.address, backup.stanza, backup.retention_full) == ("bk1", "10.0.0.9", "main", 2)
    assert build_topology(_hosts(pg_cluster="sales")).cluster.backup.stanza == "sales"


def test_backup_keys_are_read():
    backup = build_topology(_hosts(backup_stanza="prod", backup_retention_full=4, backup_compress_type="lz4",
                                   backup_full_schedule="Sat *-*-* 02:00:00")).cluster.backup
    assert (backup.stanza, backup.retention_full, backup.compress_type, backup.full_schedule) == \
        ("prod", 4, "lz4", "Sat *-*-* 02:00:00")


@pytest.mark.parametrize("edit, expected", [
    (lambda h: (h.pop("bk1"), h["pg3"]["groups"].append("backup")), "pg3: in groups backup and downstream"),
    (lambda h: h.update(bk2=copy.deepcopy(h["bk1"])), "bk1, bk2: all in group backup"),
    (lambda h: [e["data"].update(backup_retention_full=0) for e in h.values()],
     "backup_retention_full is 0 (use an integer of at least 1)"),
    (lambda h: [e["data"].update(backup_stanza="a b") for e in h.values()], "backup_stanza is 'a b'"),
    (lambda h: [e["data"].update(backup_compress_type="xz") for e in h.values()], "backup_compress_type is 'xz'"),
    (lambda h: [e["data"].update(backup_full_schedule="Sun\n") for e in h.values()], "backup_full_schedule is"),
    (lambda h: [e["data"].update(backup_retension_full=2) for e in h.values()],
     "backup_retension_full is not a pgcascade key"),
    (lambda h: (h.pop("bk1"), [e["data"].update(backup_stanza="x") for e in h.values()]),
     "backup_stanza set but no host in group backup"),
])
def test_bad_backup_inventories_are_refused_with_the_fix(edit, expected):
    hosts = _hosts()
    edit(hosts)
    with pytest.raises(InventoryError) as error:
        build_topology(hosts)
    assert expected in str(error.value)


def _with_backup(**kwargs):
    top = three()
    from dataclasses import replace
    return replace(top, cluster=replace(top.cluster, backup=BackupRepository("bk1", "10.0.0.9", **kwargs)))


@pytest.mark.parametrize("node, expected", [
    ("pg1", r"^/usr/local/lib/pgcascade/archive-wal %p %f '?/var/lib/postgresql/wal_archive'? 198\.51\.100\.12 "
            r"&& /usr/local/lib/pgcascade/archive-pgbackrest %p %f$"),
    ("pg2", r"archive-wal .* 198\.51\.100\.13 && /usr/local/lib/pgcascade/archive-pgbackrest %p %f$"),
    ("pg3", r"^/usr/local/lib/pgcascade/archive-pgbackrest %p %f$"),  # a leaf: only the push
])
def test_archive_command_pushes_after_the_children(node, expected):
    assert re.search(expected, settings.archive_command(_with_backup(), node))


def test_archive_command_without_repository_is_unchanged():
    assert settings.archive_command(three(), "pg3") == settings.ARCHIVE_NOWHERE
    assert "pgbackrest" not in settings.archive_command(three(), "pg1")


def test_archive_command_names_pgbackrest():
    """pgBackRest refuses to back up a cluster whose archive_command does not mention it."""
    assert "pgbackrest" in archive_push_command(BackupRepository("bk1", "10.0.0.9"))


def test_cluster_hosts_get_pgbackrest_conf_and_the_push_script_only_with_a_repository():
    with_repo = {m.dest for m in settings.managed_files(_with_backup(), "pg3")}
    without = {m.dest for m in settings.managed_files(three(), "pg3")}
    assert {"/etc/pgbackrest.conf", "/usr/local/lib/pgcascade/archive-pgbackrest"} <= with_repo
    assert not {"/etc/pgbackrest.conf", "/usr/local/lib/pgcascade/archive-pgbackrest"} & without


def test_repository_conf_lists_every_cluster_host_and_keeps_the_secret_in_the_file():
    top = _with_backup(retention_full=3)
    text = render("pgbackrest-repository.conf.j2",
                  repository_config_vars(top.cluster.backup, top.cluster, top.nodes, "s3cret-pass"))
    assert "repo1-cipher-pass=s3cret-pass\n" in text and "repo1-retention-full=3\n" in text
    assert re.findall(r"^pg(\d)-host=(\S+)$", text, re.M) == [
        ("1", "198.51.100.11"), ("2", "198.51.100.12"), ("3", "198.51.100.13")]
    assert "archive-mode-check=n" in text  # archive_mode=always, one archiver (archive-pgbackrest)


@pytest.mark.parametrize("bad", ["", "two\nlines"])
def test_repository_conf_refuses_an_unusable_cipher_pass(bad):
    top = _with_backup()
    with pytest.raises(ValueError, match="PGCASCADE_BACKUP_CIPHER_PASS"):
        repository_config_vars(top.cluster.backup, top.cluster, top.nodes, bad)


def test_cipher_pass_is_required_only_with_a_repository():
    from planner.secrets import BACKUP_CIPHER_PASS, required_secrets
    assert BACKUP_CIPHER_PASS in required_secrets(True)
    assert BACKUP_CIPHER_PASS not in required_secrets(False)


def test_the_repository_hosts_key_is_expected_in_authorized_keys_only_with_a_repository():
    from planner import registry
    with_repo = registry.entries(_with_backup(), "pg1").authorized_keys[0].peers
    without = registry.entries(three(), "pg1").authorized_keys[0].peers
    assert with_repo == ("pg2", "pg3", "bk1") and without == ("pg2", "pg3")


def test_the_registry_manages_the_pgbackrest_files_only_with_a_repository():
    from planner import registry
    files = {f.path: f for f in registry.entries(_with_backup(), "pg2").files}
    conf = files["/etc/pgbackrest.conf"]
    assert (conf.owner, conf.mode, conf.concern) == ("postgres", "0640", registry.POSTGRES)
    assert "repo1-host=10.0.0.9" in conf.content
    assert "/etc/pgbackrest.conf" not in {f.path for f in registry.entries(three(), "pg2").files}


def test_a_backup_waits_longer_than_the_check_for_the_wal_backlog():
    """After a bulk load the primary pushes a backlog of segments first: 60 s failed a 1 GB
    database's backup (bench/backup.py); the check keeps the conf's archive-timeout."""
    import subprocess

    from planner.backup import ARCHIVE_TIMEOUT, BACKUP_ARCHIVE_TIMEOUT, backup_run_vars

    script = render("backup-run.sh.j2", backup_run_vars(BackupRepository(host="pg4", address="10.0.0.4")))
    backups = [line for line in script.splitlines() if "--backup-standby=" in line]
    assert len(backups) == 2 and all('--archive-timeout="$BACKUP_ARCHIVE_TIMEOUT"' in line for line in backups)
    assert f"BACKUP_ARCHIVE_TIMEOUT={BACKUP_ARCHIVE_TIMEOUT}\n" in script
    assert BACKUP_ARCHIVE_TIMEOUT > ARCHIVE_TIMEOUT
    assert "--archive-timeout" not in next(line for line in script.splitlines() if " check 2>&1" in line)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_waking_the_archivers_asks_every_host_and_only_a_primary_reloads(tmp_path):
    calls = tmp_path / "calls"
    # ssh answers for the first host only; the second never does (timeout/ssh fail)
    write_executable(tmp_path / "ssh", f"""#!/bin/sh
printf "%s\\n" "$*" >> {calls}
case "$*" in *10.0.0.2*) exit 255;; esac
exit 0
""")
    write_executable(tmp_path / "timeout", '#!/bin/sh\nshift; exec "$@"\n')
    command = wake_archivers_command(["10.0.0.1", "10.0.0.2"], 5433)
    proc = subprocess.run(["sh", "-c", command], env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert proc.returncode == 0  # best effort: a host that does not answer only keeps its wait
    lines = calls.read_text().splitlines()
    assert len(lines) == 2
    for line, address in zip(lines, ("10.0.0.1", "10.0.0.2")):
        assert f"postgres@{address}" in line and "-o BatchMode=yes" in line
        assert "psql -p 5433 -d postgres -XAtqc 'select pg_reload_conf() where not pg_is_in_recovery()'" in line
