"""Backups with pgBackRest: the inventory's `backup` group and keys -> a BackupRepository, and
every file and command the deploy derives from it (pure: no pyinfra, no I/O).

One repository host holds one stanza per cluster. It reaches every PostgreSQL host over ssh as
postgres (the Debian package's user on both sides) and finds the primary among them itself, so
a failover or a switchover needs no change of its configuration: a new timeline goes on in the
same stanza. Every PostgreSQL host pushes the WAL it archives into the repository (archive_mode
is `always`, so every host runs archive_command), but only the primary pushes segments
(templates/archive-pgbackrest.sh.j2): pgBackRest takes one archiver per repository. After a promotion
the new primary pushes what the former one completed but had not pushed before it failed.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .model import BackupRepository
from .paths import POSTGRES_HOME

GROUP = "backup"
PGBACKREST = "/usr/bin/pgbackrest"
CONFIG_PATH = "/etc/pgbackrest.conf"  # the path Debian's package reads by default
LOG_PATH = "/var/log/pgbackrest"
REPOSITORY_USER = "postgres"  # Debian's pgbackrest package owns its repository as postgres
BACKUP_RUN_PATH = "/usr/local/lib/pgcascade/backup-run"
ARCHIVE_PGBACKREST_PATH = "/usr/local/lib/pgcascade/archive-pgbackrest"
RESULTS_DIRECTORY = "/var/lib/pgcascade-backup"  # the last scheduled runs' results (backup-run)
BACKUP_UNIT = "pgcascade-backup@.service"
BACKUP_KINDS = ("full", "diff", "check")
# The templates of backups: a PostgreSQL host's pgbackrest.conf (planner.settings.managed_files)
# and the repository host's files (deploys/backup.py).
TEMPLATES = ("pgbackrest-cluster-host.conf.j2", "archive-pgbackrest.sh.j2", "pgbackrest-repository.conf.j2", "backup-run.sh.j2",
             "pgcascade-backup@.service.j2", "pgcascade-backup.timer.j2")
ARCHIVE_TIMEOUT = 60  # seconds `pgbackrest check` and a backup wait for a WAL segment to arrive
# A backup waits longer: its start checks that the segment before it is in the repository, and
# after a burst of writes (a bulk load, a large UPDATE) the primary pushes a backlog of segments
# in order first (bench/backup.py: 1 GB loaded by pgbench, the backup failed at 60 s).
BACKUP_ARCHIVE_TIMEOUT = 1800

_DEFAULTS = BackupRepository(host="", address="")
# inventory key -> BackupRepository field
KEYS = {
    "backup_stanza": "stanza",
    "backup_repo_path": "path",
    "backup_retention_full": "retention_full",
    "backup_retention_diff": "retention_diff",
    "backup_full_schedule": "full_schedule",
    "backup_diff_schedule": "diff_schedule",
    "backup_check_schedule": "check_schedule",
    "backup_compress_type": "compress_type",
    "backup_process_max": "process_max",
    "backup_max_age_hours": "max_age_hours",
}
HOST_KEYS = ("backup_address",)
COMPRESS_TYPES = ("none", "gz", "bz2", "lz4", "zst")
_STANZA = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*\Z")
_CALENDAR = re.compile(r"[A-Za-z0-9 *:,./~+-]+\Z")  # systemd.time(7) calendar events
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]*\Z")


def _int_at_least(low: int):
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= low:
            return None
        return f"is {value!r} (use an integer of at least {low})"
    return check


def _matches(pattern: re.Pattern, what: str):
    def check(value: Any) -> str | None:
        if isinstance(value, str) and pattern.match(value):
            return None
        return f"is {value!r} ({what})"
    return check


_CHECKS = {
    "stanza": _matches(_STANZA, "use letters, digits and _ . -, starting with a letter or digit"),
    "path": _matches(_PATH, "use an absolute path of letters, digits and ._/+-"),
    "retention_full": _int_at_least(1),
    "retention_diff": _int_at_least(1),
    "full_schedule": _matches(_CALENDAR, "use a systemd OnCalendar expression, e.g. 'Sun *-*-* 01:00:00'"),
    "diff_schedule": _matches(_CALENDAR, "use a systemd OnCalendar expression, e.g. 'Mon..Sat *-*-* 01:00:00'"),
    "check_schedule": _matches(_CALENDAR, "use a systemd OnCalendar expression, e.g. 'hourly'"),
    "compress_type": lambda v: None if v in COMPRESS_TYPES else f"is {v!r} (use one of {', '.join(COMPRESS_TYPES)})",
    "process_max": _int_at_least(1),
    "max_age_hours": _int_at_least(1),
}


def backup_repository(hosts: Mapping[str, Mapping], cluster_data: Mapping,
                      cluster_name: str) -> tuple[BackupRepository | None, list[str]]:
    """The repository from the inventory (None without a `backup` group), and every problem.

    hosts: {name: {"groups": [...], "data": {...}}} as build_topology gets it; cluster_data: the
    reference PostgreSQL host's data (the cluster-wide keys); cluster_name: the stanza's default.
    """
    members = sorted(name for name, entry in hosts.items() if GROUP in (entry.get("groups") or ()))
    problems: list[str] = []
    unknown = sorted(k for k in cluster_data if isinstance(k, str) and k.startswith("backup_")
                     and k not in KEYS and k not in HOST_KEYS)
    for key in unknown:
        problems.append(f"inventory: {key} is not a pgcascade key (the backup keys are: "
                        f"{', '.join(sorted(KEYS))})")
    if not members:
        configured = sorted(k for k in cluster_data if k in KEYS)
        if configured:
            problems.append(f"inventory: {', '.join(configured)} set but no host in group backup "
                            "(add the repository host to group backup, or remove the keys)")
        return None, problems
    if len(members) > 1:
        problems.append(f"{', '.join(members)}: all in group backup (one repository host per cluster: "
                        "keep one)")
        return None, problems
    name = members[0]
    data = hosts[name].get("data") or {}
    others = [g for g in (hosts[name].get("groups") or ()) if g in ("master", "cascade", "downstream")]
    if others:
        problems.append(f"{name}: in groups backup and {' and '.join(others)} (the repository must be "
                        "another machine than the servers it protects: keep one group)")
    address = data.get("backup_address") or data.get("ssh_hostname") or name
    if not isinstance(address, str) or not _ADDRESS.match(address):
        problems.append(f"{name}: backup_address is {address!r} (use a host name or an IP address)")
    values: dict[str, Any] = {"stanza": cluster_name}
    for key, field_name in KEYS.items():
        value = cluster_data.get(key)
        if value is None:
            continue
        if problem := _CHECKS[field_name](value):
            problems.append(f"inventory: {key} {problem}")
            continue
        values[field_name] = value
    if problems:
        return None, problems
    defaults = {f.name: getattr(_DEFAULTS, f.name) for f in fields(BackupRepository)}
    return BackupRepository(**{**defaults, **values, "host": name, "address": address}), []


# ---------------------------------------------------------------------------------------------
# Files and commands
# ---------------------------------------------------------------------------------------------


def archive_push_command(backup: BackupRepository) -> str:
    """The part of archive_command that pushes a WAL file into the repository (archive-pgbackrest)."""
    return f"{ARCHIVE_PGBACKREST_PATH} %p %f"


def wake_archivers_command(addresses: list[str], port: int) -> str:
    """A shell command for the repository host's postgres user, run right after the stanza was
    made: the primary's archiver pushes the WAL the repository refused until then at once instead
    of within a minute. After three failed attempts in a row PostgreSQL's archiver waits up to
    60 s, or for the next finished WAL segment, before it tries again; a configuration reload
    (SIGHUP) wakes it. Every cluster host is asked and only a primary reloads (its configuration
    is already applied at this point). Best effort: a host that does not answer keeps its wait."""
    sql = "select pg_reload_conf() where not pg_is_in_recovery()"
    remote = shlex.join(["psql", "-p", str(port), "-d", "postgres", "-XAtqc", sql])
    return "; ".join(
        f"timeout 10 ssh -n -o BatchMode=yes -o ConnectTimeout=3 postgres@{shlex.quote(address)} "
        f"{shlex.quote(remote)} >/dev/null 2>&1" for address in addresses) + "; true"


def archive_pgbackrest_vars(backup: BackupRepository, cluster) -> dict:
    """Variables of templates/archive-pgbackrest.sh.j2 (shell-quoted)."""
    # In the postgres user's home, which it always owns: the data directory's parent is root's
    # when pg_createcluster made it (a host whose package created no cluster).
    marker = f"{POSTGRES_HOME}/.pgcascade-{cluster.version}-{cluster.name}-repo-backlog"
    return {
        "stanza": shlex.quote(backup.stanza),
        "pgbackrest": shlex.quote(PGBACKREST),
        "archive_dir": shlex.quote(cluster.archive_dir),
        "backlog_marker": shlex.quote(marker),
    }


def repository_config_vars(backup: BackupRepository, cluster, pg_hosts, cipher_pass: str) -> dict:
    """Variables of templates/pgbackrest-repository.conf.j2 (the repository host's file).

    pg_hosts: the cluster's nodes in topology order; pgBackRest asks each which is the primary.
    """
    if not cipher_pass or any(c in cipher_pass for c in "\n\r\0"):
        raise ValueError("the repository cipher pass is empty or not a single line (PGCASCADE_BACKUP_CIPHER_PASS)")
    return {
        "stanza": backup.stanza,
        "repo_path": backup.path,
        "retention_full": backup.retention_full,
        "retention_diff": backup.retention_diff,
        "compress_type": backup.compress_type,
        "process_max": backup.process_max,
        "archive_timeout": ARCHIVE_TIMEOUT,
        "cipher_pass": cipher_pass,
        "log_path": LOG_PATH,
        "pg_hosts": [
            {"index": index, "address": node.address, "path": cluster.data_directory, "port": cluster.port,
             "name": node.name}
            for index, node in enumerate(pg_hosts, start=1)
        ],
        "host_user": REPOSITORY_USER,
    }


def cluster_host_config_vars(backup: BackupRepository, cluster) -> dict:
    """Variables of templates/pgbackrest-cluster-host.conf.j2 (every PostgreSQL host's file)."""
    return {
        "stanza": backup.stanza,
        "repo_host": backup.address,
        "repo_host_user": REPOSITORY_USER,
        "repo_name": backup.host,
        "pg_path": cluster.data_directory,
        "pg_port": cluster.port,
        "socket_path": "/var/run/postgresql",
        "log_path": LOG_PATH,
        "process_max": backup.process_max,
        "archive_timeout": ARCHIVE_TIMEOUT,
    }


def backup_run_vars(backup: BackupRepository) -> dict:
    """Variables of templates/backup-run.sh.j2 (shell-quoted)."""
    return {
        "stanza": shlex.quote(backup.stanza),
        "pgbackrest": shlex.quote(PGBACKREST),
        "results_directory": shlex.quote(RESULTS_DIRECTORY),
        "backup_archive_timeout": BACKUP_ARCHIVE_TIMEOUT,
    }


def timer_vars(backup: BackupRepository, kind: str) -> dict:
    """Variables of templates/pgcascade-backup.timer.j2 for one kind of scheduled run."""
    schedule = {"full": backup.full_schedule, "diff": backup.diff_schedule, "check": backup.check_schedule}
    return {"kind": kind, "schedule": schedule[kind]}


def timer_unit(kind: str) -> str:
    return f"pgcascade-backup-{kind}.timer"


def service_instance(kind: str) -> str:
    return f"pgcascade-backup@{kind}.service"
