"""Restores from the pgBackRest repository (planner/restore.py decides, on live facts)."""
from __future__ import annotations

import json
import shlex

from pyinfra import host, inventory
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import FileContents

from facts.backup import BackupRepositoryState
from facts.clusters import PgClusters
from facts.pg_state import PgState
from operations.plans import go_ahead
from operations.postgres import AS_POSTGRES, poll_until, psql, stop_unit, unit, wait_ready
from operations.standby import _facts_around
from planner import backup as bk
from planner.model import Topology
from planner.restore import MARKER_NAME, Target, marker_text, newest_primary, plan_pitr, plan_rebuild_from_repository

RUNUSER = ["runuser", "-u", "postgres", "--"]
RESTORE_TIMEOUT = 900  # seconds the restored server may take to reach its target or to stream


def read_repository(topology: Topology) -> dict | None:
    """The repository's state from its host (None when the run has no connection to it)."""
    backup = topology.cluster.backup
    if backup is None:
        return None
    repo_host = inventory.get_host(backup.host)
    if repo_host is None or not repo_host.connected:
        return None
    return repo_host.get_fact(BackupRepositoryState, stanza=backup.stanza, _sudo=True, _sudo_user="postgres")


def _cluster_facts(topology: Topology) -> dict:
    """Every reachable cluster host's PgState (None for a host this run has no connection to)."""
    c = topology.cluster
    facts = {}
    for n in topology.nodes:
        other = inventory.get_host(n.name)
        facts[n.name] = (other.get_fact(PgState, version=c.version, cluster=c.name, port=c.port, **AS_POSTGRES)
                         if other.connected else None)
    return facts


def _marker(host_obj, config_directory: str) -> dict | None:
    lines = host_obj.get_fact(FileContents, path=f"{config_directory}/{MARKER_NAME}")
    if not lines:
        return None
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        return {"type": "unreadable", "target": "marker"}


def pitr_plan(topology: Topology, destination: str, target: Target, cluster_name: str, port: int,
              confirm: str | None):
    """The plan, from live facts (every PostgreSQL host, the repository, the destination)."""
    c = topology.cluster
    onto = inventory.get_host(destination)
    facts = _cluster_facts(topology)
    primary = newest_primary(facts)
    repository = read_repository(topology)
    clusters = onto.get_fact(PgClusters)
    marker = _marker(onto, f"/etc/postgresql/{c.version}/{cluster_name}")
    return plan_pitr(topology, destination, target, repository, clusters, marker, cluster_name, port,
                     now=(repository or {}).get("now"),
                     newest_lsn=((primary or {}).get("lsn") or {}).get("current"),
                     live_fact=facts.get(destination), confirm=confirm)


ARCHIVE_WAIT = 120  # seconds for the primary's switched WAL file to reach the repository


def switch_and_wait_command(port: int, stanza: str, seconds: int = ARCHIVE_WAIT) -> StringCommand:
    """On the primary: commit a transaction with an xid, end the current WAL file, then wait until
    the repository's newest segment is that one or a later one (pgbackrest info through the
    repository host).

    The commit matters for a time target: recovery stops at the first commit after the target, and
    PostgreSQL ends recovery with a FATAL error when the WAL runs out before one (an idle cluster
    restored to "now": the restored cluster never starts). Its commit record lies in the switched
    file, after any target the planner accepts (not after now). synchronous_commit=local: a
    synchronous standby that is down must not hold the restore."""
    newest = (f"runuser -u postgres -- {bk.PGBACKREST} --stanza={stanza} --output=json --log-level-console=off info"
              " | grep -oE '\"max\":\"[0-9A-F]{24}\"' | cut -d'\"' -f4 | sort | tail -n 1")
    return StringCommand(
        f"cd / && runuser -u postgres -- psql -XAtq -p {port} -d postgres -c 'set synchronous_commit = local' "
        "-c 'select txid_current()' >/dev/null && "
        f"seg=$(runuser -u postgres -- psql -XAtq -p {port} -d postgres "
        "-c 'select pg_walfile_name(pg_switch_wal())') && "
        f"for i in $(seq {seconds}); do max=$({newest}); "
        'test -n "$max" && test "$(printf \'%s\\n%s\\n\' "$seg" "$max" | sort | tail -n 1)" = "$max" && exit 0; '
        f"sleep 1; done; echo \"WAL file $seg did not reach the backup repository within {seconds} s "
        "(see archive-pgbackrest in the PostgreSQL log)\" >&2; exit 1")


@operation()
def archive_current_wal(topology: Topology, node_name: str, destination: str, target: Target, cluster_name: str,
                        port: int, confirm: str | None = None):
    """
    Before a restore, on the live primary: it ends its current WAL file and the file reaches the
    repository, so the restore can reach any time up to now.

    + topology: the validated cluster
    + node_name: this host's name (the others do nothing)
    + destination, target, cluster_name, port, confirm: the restore (nothing to restore: no switch)
    """
    facts = _cluster_facts(topology)
    primary = newest_primary(facts)
    primary_name = next((name for name, fact in facts.items() if fact is not None and fact is primary), None)
    if primary_name != node_name:
        host.noop(f"not the live primary ({primary_name or 'none reachable'})")
        return
    plan = pitr_plan(topology, destination, target, cluster_name, port, confirm)
    if plan.action != "restore":
        host.noop(f"no restore to prepare ({plan.reason})")
        return
    yield switch_and_wait_command(topology.cluster.port, topology.cluster.repository.stanza)


@operation()
def restore_pitr(topology: Topology, node_name: str, destination: str, target: Target, cluster_name: str,
                 port: int, confirm: str | None = None):
    """
    Point-in-time recovery of the stanza onto `destination` as cluster `cluster_name` (a new cluster
    that does not archive), promoted at the target; refused per planner.restore.

    + topology: the validated cluster
    + node_name: this host's name
    + destination: the host to restore onto
    + target: the recovery target
    + cluster_name: the Debian cluster to create (or the live one, with confirm)
    + port: its port
    + confirm: the destination's name, to restore over its live member
    """
    if node_name != destination:
        host.noop(f"not the host to restore onto ({destination})")
        return
    plan = pitr_plan(topology, destination, target, cluster_name, port, confirm)
    if not go_ahead(plan.action, plan.reason, "restore"):
        return
    c = topology.cluster
    data = f"/var/lib/postgresql/{c.version}/{cluster_name}"
    config = f"/etc/postgresql/{c.version}/{cluster_name}"
    live = cluster_name == c.name
    if live:
        yield stop_unit(c.version, c.name)
    else:
        # A new cluster: its configuration (Debian's defaults, this port, no archiving), then
        # its data directory comes from the repository.
        yield StringCommand("pg_createcluster", str(c.version), cluster_name, "--port", str(port),
                            "--start-conf=manual", "--", "--auth-local=peer", "--auth-host=scram-sha-256")
        yield StringCommand("find", data, "-mindepth", "1", "-delete")
    restore = [*RUNUSER, bk.PGBACKREST, f"--stanza={c.repository.stanza}", f"--pg1-path={data}",
               *(shlex.quote(a) for a in plan.target.pgbackrest_args()), "--target-action=promote",
               "--archive-mode=off", *(["--delta"] if live else []), "restore"]
    yield StringCommand("cd", "/", "&&", *restore)
    yield StringCommand("systemctl", "start", unit(c.version, cluster_name))
    port_now = c.port if live else port
    yield wait_ready(port_now, RESTORE_TIMEOUT)
    yield poll_until(
        f"test \"$(runuser -u postgres -- psql -XAtq -p {port_now} -d postgres -c 'select pg_is_in_recovery()')\" = f",
        RESTORE_TIMEOUT,
        f"{destination}: {c.version}/{cluster_name} did not reach {plan.target.describe()} within {RESTORE_TIMEOUT} s "
        f"(a restore point that is not in the WAL? see its log in /var/log/postgresql)")
    marker = shlex.quote(marker_text(plan.marker))
    yield StringCommand("printf", "%s", marker, ">", f"{config}/{MARKER_NAME}")


@operation()
def rebuild_from_repository(topology: Topology, node_name: str, target: str, force: bool = False):
    """
    Rebuild the standby `target` from the repository: delta restore of the newest backup, replay
    of the archive, then streaming from its upstream (only where planner.restore allows it).

    + topology: the validated cluster
    + node_name: this host's name
    + target: the standby to rebuild
    + force: rebuild a healthy standby too
    """
    if node_name != target:
        host.noop(f"not the host to rebuild ({target})")
        return
    fact, upstream_fact, master_fact = _facts_around(topology, node_name)
    plan = plan_rebuild_from_repository(topology, node_name, fact, upstream_fact, master_fact,
                                        read_repository(topology), force=force)
    if not go_ahead(plan.action, plan.reason, "rebuild from the repository"):
        return
    c = topology.cluster
    upstream_name = topology.node(node_name).upstream
    assert upstream_name is not None  # plan_rebuild refuses the master
    upstream = topology.node(upstream_name)
    yield stop_unit(c.version, c.name)
    # standby: standby.signal, and restore_command fetching from the repository until it streams
    yield StringCommand("cd", "/", "&&", *RUNUSER, bk.PGBACKREST, f"--stanza={c.repository.stanza}", "--delta",
                        "--type=standby", "restore")
    yield StringCommand("systemctl", "start", unit(c.version, c.name))
    yield wait_ready(c.port, RESTORE_TIMEOUT)
    query = "select status from pg_stat_wal_receiver where sender_host = \\$\\$" + upstream.address + "\\$\\$"
    yield poll_until(
        f"test \"$(runuser -u postgres -- psql -XAtq -p {c.port} -d postgres -c \"{query}\")\" = streaming",
        RESTORE_TIMEOUT, f"{target}: not streaming from {upstream.name} within {RESTORE_TIMEOUT} s after the restore")
    # From now on the managed restore_command (this host's WAL archive) applies again.
    yield psql(c.port, "ALTER SYSTEM RESET restore_command")
    yield StringCommand("systemctl", "reload", unit(c.version, c.name))
