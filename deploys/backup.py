"""Backups with pgBackRest (planner/backup.py): the repository host and the scheduled runs.

The PostgreSQL hosts get pgBackRest with their package list, its configuration with their
managed files and the WAL push in archive_command; the steps here act on the repository host and
are called on every host, so they keep their place in the run's order.
"""
from __future__ import annotations

from pyinfra import state
from pyinfra.api import deploy

from deploys.context import ClusterConfigError, Context
from operations.backup import (
    ensure_first_runs,
    ensure_repository_files,
    ensure_repository_keypair,
    ensure_repository_trust,
    ensure_stanza,
    ensure_timers,
)
from planner import backup as bk
from planner.render import render
from planner.secrets import BACKUP_CIPHER_PASS


def check_repository_reachable(ctx: Context) -> None:
    backup = ctx.cluster.backup
    if backup is None:
        return
    if backup.host not in {h.name for h in state.activated_hosts}:
        raise ClusterConfigError(
            f"cannot reach the backup repository host {backup.host} ({backup.address}): start it or repair ssh, "
            "or remove group backup from the inventory; nothing was changed")


@deploy("Backup repository host")
def prepare_backup_host(ctx: Context) -> None:
    """After the packages (deploys/packages.py installs pgBackRest there), before the cluster's
    ssh trust: the repository host's postgres ssh key."""
    if ctx.cluster.backup is None:
        return
    ensure_repository_keypair(name="postgres ssh key (ed25519)", enabled=ctx.is_backup_host)


def _repository_files(ctx: Context) -> dict:
    backup, cluster = ctx.cluster.repository, ctx.cluster
    config = render("pgbackrest-repository.conf.j2", bk.repository_config_vars(
        backup, cluster, ctx.topology.nodes, ctx.secrets[BACKUP_CIPHER_PASS]))
    units = {f"/etc/systemd/system/{bk.BACKUP_UNIT}": render("pgcascade-backup@.service.j2", {
        "stanza": backup.stanza, "backup_run_path": bk.BACKUP_RUN_PATH})}
    for kind in bk.BACKUP_KINDS:
        units[f"/etc/systemd/system/{bk.timer_unit(kind)}"] = render("pgcascade-backup.timer.j2",
                                                                     bk.timer_vars(backup, kind))
    return {"repo_path": backup.path, "config": config, "units": units,
            "script": render("backup-run.sh.j2", bk.backup_run_vars(backup))}


@deploy("Backup repository")
def configure_repository(ctx: Context) -> None:
    """Right after the standbys (the stanza reads the one primary; a standby's cluster from the
    package is a primary until its clone): trust, configuration, stanza. The WAL the primary could
    not push until then goes while the rest of the deploy runs, not during the first backup."""
    backup = ctx.cluster.backup
    if backup is None:
        return
    on_repository = ctx.is_backup_host
    peers = {n.name: n.address for n in ctx.topology.nodes}
    ensure_repository_trust(name="postgres authorized_keys and pinned known_hosts", enabled=on_repository,
                            peers=peers)
    wanted = _repository_files(ctx) if on_repository else {"repo_path": "", "config": "", "units": {},
                                                           "script": ""}
    ensure_repository_files(name="repository, pgbackrest.conf, backup-run and the schedule's units",
                            enabled=on_repository, **wanted)
    ensure_stanza(name=f"stanza {backup.stanza}", enabled=on_repository, stanza=backup.stanza,
                  addresses=list(peers.values()), port=ctx.cluster.port)


@deploy("Backups")
def configure_backups(ctx: Context) -> None:
    """Last: the schedule, the first backup and check."""
    backup = ctx.cluster.backup
    if backup is None:
        return
    on_repository = ctx.is_backup_host
    ensure_timers(name="scheduled full and differential backups, archive check", enabled=on_repository,
                  timers=[bk.timer_unit(kind) for kind in bk.BACKUP_KINDS])
    ensure_first_runs(name="first full backup and archive check", enabled=on_repository, stanza=backup.stanza)
