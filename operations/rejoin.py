"""Rejoin a former master as a standby of the live primary: pg_rewind, else a base backup."""
from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from operations.plans import go_ahead
from operations.postgres import pg_state, pg_states, poll_until, psql, stop_unit, streaming, unit, wait_ready
from planner.model import Topology
from planner.pgstate import streams_from
from planner.quoting import conninfo
from planner.rejoin import plan_rejoin
from planner.settings import PGPASS_PATH


def _rewind_or_clone(now: Topology, target: str, method: str) -> StringCommand:
    """pg_rewind onto the new master (method "rewind"); if it cannot, or with method
    "basebackup", a fresh base backup from it."""
    c = now.cluster
    source = now.upstream_of(now.node(target))
    server: list[tuple[str, str | int]] = [("host", source.address), ("port", c.port), ("user", c.replication_user)]
    rewind_source = shlex.quote(conninfo([*server, ("dbname", "postgres"), ("passfile", PGPASS_PATH)]))
    basebackup = shlex.quote(conninfo([*server, ("passfile", PGPASS_PATH)]))
    as_postgres = "runuser -u postgres --"
    config = f"--config-file={c.config_directory}/postgresql.conf" if c.version >= 15 else ""
    rewind = "false" if method == "basebackup" else "true"
    # Which way it went, and how long it took, goes to the journal (`journalctl -t pgcascade`),
    # with pg_rewind's last words when it could not rewind: a DBA, and the bench, read it there.
    return StringCommand(
        "cd / && t0=$(date +%s%N) && elapsed() { awk -v a=\"$t0\" -v b=\"$(date +%s%N)\" "
        "'BEGIN { printf \"%.1f\", (b - a) / 1e9 }'; } && "
        f"if {rewind} && out=$({as_postgres} {c.bin_directory}/pg_rewind --target-pgdata={c.data_directory} "
        f"--source-server={rewind_source} {config} 2>&1); then "
        f"logger -t pgcascade \"rejoin: {target} rewound onto {source.name} (pg_rewind, $(elapsed) s)\"; else "
        f"printf '%s\\n' \"${{out:-}}\" >&2; "
        f"echo 'no pg_rewind ({method}): taking a fresh base backup from {source.name}' >&2; "
        f"find {c.data_directory} -mindepth 1 -delete && "
        f"{as_postgres} {c.bin_directory}/pg_basebackup --no-password -d {basebackup} "
        f"-D {c.data_directory} -X stream -c fast && "
        f"logger -t pgcascade \"rejoin: {target} re-cloned from {source.name} (base backup, $(elapsed) s; "
        f"method {method}; $(printf '%s' \"${{out:-pg_rewind not tried}}\" | tail -n 1))\"; fi && "
        f"{as_postgres} touch {c.data_directory}/standby.signal")


@operation()
def rewind_former_master(inventory_topology: Topology, node_name: str, target: str, force: bool = False,
                         method: str = "rewind"):
    """
    Stop the target, rewind it onto the live primary's timeline (or re-clone it), mark it a
    standby. Acts on `target` only; refuses when the facts say it could lose data.

    + inventory_topology: the cluster as the inventory describes it
    + node_name: this host
    + target: the host to rejoin
    + force: rewind even a primary on the live primary's timeline
    + method: "rewind" (pg_rewind, else a base backup) or "basebackup"
    """
    if method not in ("rewind", "basebackup"):
        raise OperationError(f"method {method!r}: use rewind or basebackup")
    if node_name != target:
        host.noop(f"not the host to rejoin ({target})")
        return
    plan = plan_rejoin(inventory_topology, target, pg_states(inventory_topology, unreadable_as_none=True), force=force)
    if not go_ahead(plan.action, plan.reason) or plan.topology is None:  # a rejoin plan has its topology
        return
    c = inventory_topology.cluster
    yield stop_unit(c.version, c.name)
    yield _rewind_or_clone(plan.topology, target, method)


@operation()
def start_standby_streaming(topology: Topology, node_name: str, target: str, seconds: int = 60):
    """
    Start the target as a standby and wait until it streams from its upstream.

    + topology: the cluster as it is now
    + node_name: this host
    + target: the host to start
    + seconds: deadline for streaming
    """
    if node_name != target:
        host.noop(f"not {target}")
        return
    c = topology.cluster
    fact = pg_state(host, c.version, c.name, c.port)
    upstream = topology.upstream_of(topology.node(target))
    if fact["running"] and streams_from(fact, upstream.address):
        host.noop(f"{target} streams from {upstream.name}")
        return
    yield StringCommand("systemctl", "start", unit(c.version, c.name))
    yield wait_ready(c.port)
    yield poll_until(streaming(c.port), seconds,
                     f"{target} does not stream from {upstream.name} after {seconds} s")


@operation()
def checkpoint_new_master(inventory_topology: Topology, node_name: str, target: str, force: bool = False):
    """
    A checkpoint on the live primary before a rewind, so its pg_control shows its new timeline:
    pg_rewind reads the timeline there, and a just-promoted server writes it only at its first
    checkpoint (without one, pg_rewind sees one timeline and "rewinds" nothing).

    + inventory_topology: the cluster as the inventory describes it
    + node_name: this host
    + target: the host to rejoin
    + force: as for rewind_former_master
    """
    plan = plan_rejoin(inventory_topology, target, pg_states(inventory_topology, unreadable_as_none=True), force=force)
    if plan.action != "rejoin" or plan.topology is None or node_name != plan.topology.master.name:
        host.noop("no rewind to prepare here")
        return
    yield psql(inventory_topology.cluster.port, "CHECKPOINT")
