"""A standby of its upstream: cloned only when the facts say there is nothing to lose."""
from __future__ import annotations

import shlex

from pyinfra import host, inventory, state
from pyinfra.api import StringCommand, operation
from pyinfra.api.state import StateStage

from facts.archive_backlog import ArchiveBacklog
from hostrules.wal_backlog import MARKER_SUFFIX
from operations.plans import go_ahead
from operations.postgres import pg_state, psql, stop_unit, unit, wait_ready
from planner.model import Topology
from planner.paths import CLONE_LABEL, clone_marker_path
from planner.pgstate import PgStateDict
from planner.quoting import conninfo
from planner.rebuild import plan_rebuild
from planner.settings import ARCHIVE_BACKLOG_DIRECTORY, PGPASS_PATH, STANDBY_GUCS, primary_conninfo
from planner.standby_plan import plan_standby


def _facts_around(topology: Topology, node_name: str) -> tuple[PgStateDict, PgStateDict | None, PgStateDict]:
    """This host's, its upstream's and the master's live PgState (read at execute time)."""
    node, master, c = topology.node(node_name), topology.master, topology.cluster
    fact = pg_state(host, c.version, c.name, c.port)
    if node.upstream is None:  # the master: the planner refuses it
        return fact, None, fact
    upstream_fact = pg_state(inventory.get_host(node.upstream), c.version, c.name, c.port)
    master_fact = (upstream_fact if node.upstream == master.name
                   else pg_state(inventory.get_host(master.name), c.version, c.name, c.port))
    return fact, upstream_fact, master_fact


def stop_leftover_copy(data: str, user: str = "postgres") -> StringCommand:
    """A pg_basebackup of an interrupted clone copying into `data` (a dropped ssh session does
    not stop it) is stopped, and waited for (10 s at most), before this clone empties `data`.
    ([p]g: the pattern does not match the shell that carries it.)"""
    pattern = shlex.quote(f"[p]g_basebackup .* -D {data} ")
    return StringCommand(f"pkill -u {user} -f {pattern}; end=$(($(date +%s) + 10)); "
                         f"while pgrep -u {user} -f {pattern} >/dev/null; do "
                         f"[ \"$(date +%s)\" -ge \"$end\" ] && exit 1; sleep 0.2; done")


def clone_commands(topology: Topology, node_name: str, fact: PgStateDict) -> list[StringCommand]:
    """Marker, stop, empty the data directory, base backup from the upstream, standby.signal,
    start, no marker. Interrupted anywhere, the next run finds what it left and clones again
    (planner.standby_plan.interrupted_clone)."""
    c = topology.cluster
    marker = clone_marker_path(c.version, c.name)
    node = topology.node(node_name)
    upstream = topology.upstream_of(node)
    source = conninfo([("host", upstream.address), ("port", c.port), ("user", c.replication_user),
                       ("passfile", PGPASS_PATH), ("application_name", f"pgcascade_clone_{node.name}")])
    data = c.data_directory
    as_postgres = ["runuser", "-u", "postgres", "--"]
    return [
        StringCommand("printf", "'%s\\n'", fact["system_identifier"] or "none", ">", marker),
        stop_leftover_copy(data),
        stop_unit(c.version, c.name),
        # The planner allowed this only for an empty or never-used data directory.
        StringCommand("[", "!", "-d", data, "]", "||", "find", data, "-mindepth", "1", "-delete"),
        StringCommand(*as_postgres, f"{c.bin_directory}/pg_basebackup", "--no-password", "-d", shlex.quote(source),
                      "-D", data, "-X", "stream", "-c", "fast", "-l", shlex.quote(CLONE_LABEL)),
        StringCommand(*as_postgres, "touch", f"{data}/standby.signal"),
        StringCommand("systemctl", "start", unit(c.version, c.name)),
        wait_ready(c.port),
        StringCommand("rm", "-f", marker),
    ]


@operation()
def ensure_standby(topology: Topology, node_name: str, tier: int):
    """
    This host streams from its upstream: nothing, start, re-point, clone, or refuse (planner).

    + topology: the validated cluster
    + node_name: this host's inventory name
    + tier: the tier this step sets up (hosts of other tiers do nothing)
    """
    node = topology.node(node_name)
    if node.tier != tier:
        host.noop(f"tier {tier}: {node_name} is in tier {node.tier}")
        return
    fact, upstream_fact, master_fact = _facts_around(topology, node_name)
    plan = plan_standby(topology, node, fact, upstream_fact,
                        desired_conninfo=primary_conninfo(topology, node_name),
                        is_pristine=bool(fact["pristine"]), master_fact=master_fact)
    if plan.action == "refuse" and plan.waits_for and state.current_stage < StateStage.Execute:
        # Preparing: the upstream is set up by an earlier step of this same run.
        host.noop(f"decided when this step runs: {plan.reason}")
        return
    c = topology.cluster
    if fact.get("clone_marker") is not None and plan.action not in ("clone", "refuse"):
        host.log("the marker of a clone that was interrupted once its standby ran goes")
        yield StringCommand("rm", "-f", clone_marker_path(c.version, c.name))
    if not go_ahead(plan.action, plan.reason):
        return
    if plan.action == "start":
        yield StringCommand("systemctl", "start", unit(c.version, c.name))
        yield wait_ready(c.port)
    elif plan.action == "repoint":
        # Our include file already says the right thing: drop any ALTER SYSTEM override of the
        # standby settings, then reload (PostgreSQL 13+ restarts its WAL receiver on reload).
        yield psql(c.port, *(f"ALTER SYSTEM RESET {name}" for name in STANDBY_GUCS))
        if not fact["standby_signal"]:  # read at start only: without it a restart promotes
            yield StringCommand("runuser", "-u", "postgres", "--", "touch", f"{c.data_directory}/standby.signal")
        yield StringCommand("systemctl", "reload", unit(c.version, c.name))
    elif plan.action == "clone":
        yield from clone_commands(topology, node_name, fact)


@operation()
def rebuild_standby(topology: Topology, node_name: str, target: str, force: bool = False):
    """
    A fresh base backup from the upstream for `target` (only there), when the facts allow it.

    + topology: the validated cluster
    + node_name: this host's inventory name
    + target: the host to rebuild (others do nothing)
    + force: rebuild a healthy standby too, or a stopped primary known to be a stale copy
    """
    if node_name != target:
        host.noop(f"not the host to rebuild ({target})")
        return
    fact, upstream_fact, master_fact = _facts_around(topology, node_name)
    plan = plan_rebuild(topology, node_name, fact, upstream_fact, master_fact, force=force)
    if not go_ahead(plan.action, plan.reason, "rebuild"):
        return
    yield from clone_commands(topology, node_name, fact)


@operation()
def forget_archive_backlog(topology: Topology, node_name: str, target: str):
    """
    On the target's upstream, after the target was rebuilt: the WAL files kept for it and its
    "named for rebuild" mark go (hostrules.wal_backlog); archive-wal ships to it again.

    + topology: the validated cluster
    + node_name: this host's inventory name
    + target: the rebuilt host
    """
    node = topology.node(target)
    if node_name != node.upstream:
        host.noop(f"{target}'s backlog is kept on {node.upstream}")
        return
    spool = f"{ARCHIVE_BACKLOG_DIRECTORY}/{node.address}"
    # Read when the operation runs: no file kept and no mark, nothing to forget (a rerun changes nothing).
    kept = host.get_fact(ArchiveBacklog).get(node.address) or {}
    if not kept.get("files") and not kept.get("named_for_rebuild"):
        host.noop(f"no archive backlog for {target} on {node.upstream}")
        return
    yield StringCommand("rm", "-rf", "--", spool, f"{spool}{MARKER_SUFFIX}")
