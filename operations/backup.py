"""The pgBackRest repository host's operations. Each is called on every host of the run (so it
is a barrier in pyinfra's order: the cluster hosts' keys exist before the repository trusts them,
the standbys are cloned before the stanza is created) and acts on the repository host only."""
from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import Sha256File
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import files

from facts.backup import BackupRepositoryState
from operations.private_files import ensure_private_file
from operations.ssh_trust import ensure_ssh_keypair, ensure_ssh_trust
from planner import backup as bk
from planner.backup_info import STATUS_MISSING_STANZA_DATA, STATUS_MISSING_STANZA_PATH
from planner.settings import POSTGRES_HOME

AS_POSTGRES = ["runuser", "-u", "postgres", "--"]
NOT_HERE = "not the backup repository host"


def repository_state(host_obj, stanza: str) -> dict:
    return host_obj.get_fact(BackupRepositoryState, stanza=stanza, _sudo=True, _sudo_user="postgres")


@operation()
def ensure_repository_keypair(enabled: bool):
    """
    The repository host's postgres ssh key (it runs the backups on the cluster hosts over ssh).

    + enabled: this host is the repository host
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    yield from ensure_ssh_keypair._inner(user="postgres", home=POSTGRES_HOME)


@operation()
def ensure_repository_trust(enabled: bool, peers: dict):
    """
    The cluster hosts may push WAL as postgres; their host keys are pinned.

    + enabled: this host is the repository host
    + peers: {name: address} of the PostgreSQL hosts
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    yield from ensure_ssh_trust._inner(user="postgres", home=POSTGRES_HOME, peers=peers)


@operation()
def ensure_repository_files(enabled: bool, repo_path: str, config: str, script: str, units: dict):
    """
    The repository directory, pgbackrest.conf (0600: it holds the cipher pass), backup-run, and
    the systemd units of the scheduled runs (daemon-reload only when one changed).

    + enabled: this host is the repository host
    + repo_path: the repository directory
    + config: pgbackrest.conf's content (never printed)
    + script: backup-run's content
    + units: {path: content} of the systemd units
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    yield from files.directory._inner(path=repo_path, user="postgres", group="postgres", mode="750")
    yield from files.directory._inner(path=bk.RESULTS_DIRECTORY, user="postgres", group="postgres", mode="750")
    yield from files.directory._inner(path=bk.LOG_PATH, user="postgres", group="postgres", mode="750")
    yield from ensure_private_file._inner(dest=bk.CONFIG_PATH, content=config, user="postgres", group="postgres")
    yield from files.directory._inner(path=bk.BACKUP_RUN_PATH.rsplit("/", 1)[0], mode="755")
    yield from files.put._inner(src=StringIO(script), dest=bk.BACKUP_RUN_PATH, mode="755")
    changed = [path for path, content in sorted(units.items())
               if host.get_fact(Sha256File, path=path) != hashlib.sha256(content.encode()).hexdigest()]
    for path in sorted(units):
        yield from files.put._inner(src=StringIO(units[path]), dest=path, mode="644")
    if changed:
        yield "systemctl daemon-reload"


@operation()
def ensure_timers(enabled: bool, timers: list[str]):
    """
    The scheduled runs' timers are enabled and active.

    + enabled: this host is the repository host
    + timers: timer unit names
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    active = host.get_fact(SystemdStatus)
    is_enabled = host.get_fact(SystemdEnabled)
    missing = [t for t in timers if not active.get(t) or not is_enabled.get(t)]
    if not missing:
        host.noop(f"timers enabled and active: {', '.join(timers)}")
        return
    yield StringCommand("systemctl", "enable", "--now", *missing)


@operation()
def ensure_stanza(enabled: bool, stanza: str, addresses: list[str], port: int):
    """
    The stanza exists in the repository (pgbackrest stanza-create, reading the primary); once
    made, the primary's archiver is woken to push the WAL refused until then.

    + enabled: this host is the repository host
    + stanza: the stanza's name
    + addresses: the PostgreSQL hosts' addresses
    + port: the cluster's port
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    info = repository_state(host, stanza).get("stanzas", {}).get(stanza)
    if info and info["status_code"] not in (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
        host.noop(f"stanza {stanza} exists ({info['status']})")
        return
    host.log(f"stanza-create: stanza {stanza} is not in the repository yet")
    yield StringCommand("cd", "/", "&&", *AS_POSTGRES, bk.PGBACKREST, f"--stanza={stanza}", "stanza-create")
    yield f"cd / && runuser -u postgres -- sh -c {shlex.quote(bk.wake_archivers_command(addresses, port))}"


@operation()
def ensure_first_runs(enabled: bool, stanza: str):
    """
    The stanza has a backup and archiving was checked once: a full backup (backup-run, from a
    standby when one is healthy) when it has none, and a first check.

    + enabled: this host is the repository host
    + stanza: the stanza's name
    """
    if not enabled:
        host.noop(NOT_HERE)
        return
    state = repository_state(host, stanza)
    info = state.get("stanzas", {}).get(stanza) or {}
    todo = []
    if not info.get("backups"):
        host.log(f"first full backup: stanza {stanza} has no backup yet")
        todo.append("full")
    if "check" not in state.get("results", {}):
        todo.append("check")
    if not todo:
        host.noop(f"stanza {stanza} has {len(info['backups'])} backup(s); archiving was checked")
        return
    for kind in todo:  # what the timers start, here in the foreground: its errors in this output
        yield StringCommand("cd", "/", "&&", *AS_POSTGRES, bk.BACKUP_RUN_PATH, kind)
