"""The ad-hoc repair of a failed cascading standby (tasks/failover_cascade.py), one operation per
step. Each step is called on every host of the run and does nothing off-step, so the steps are
barriers: the standbys are re-pointed before the master stops waiting for the cascade.
"""
from __future__ import annotations

import shlex

import gevent
from pyinfra import host, inventory
from pyinfra.api import OperationError, operation
from pyinfra.api.exceptions import ConnectError
from pyinfra.operations import files

from operations.plans import go_ahead
from operations.postgres import pg_state, pg_states, poll_until
from planner import settings
from planner.failover_cascade import MASTER_SETTINGS, describe_changes, plan_failover_cascade
from planner.model import Topology
from planner.pgstate import PgStateDict, streams_from
from planner.render import template_path

CONNECT_TIMEOUT = 15  # seconds to reach the failed cascade's host (a hung one never answers)
STREAMING_TIMEOUT = 60  # seconds a re-pointed standby gets to stream from the master


def _reachable(name: str, try_connect: bool) -> bool:
    target = inventory.get_host(name)
    if target.connected:
        return True
    if not try_connect:
        return False
    try:
        with gevent.Timeout(CONNECT_TIMEOUT, ConnectError(f"no ssh answer within {CONNECT_TIMEOUT} s")):
            target.connect(show_errors=False, raise_exceptions=True)
    except ConnectError:
        return False
    return True


def failover_facts(topology: Topology, failed: str, try_connect: bool) -> dict[str, PgStateDict | None]:
    """PgState of the master, the failed cascade's standbys and the cascade (None: unreachable).

    The cascade is read only if its host is connected, or, with try_connect, once it connects
    (it is left out of the run with --exclude when it is down).
    """
    facts = pg_states(topology, [topology.master.name, *(n.name for n in topology.children(failed))],
                      settings=MASTER_SETTINGS)
    unread = () if _reachable(failed, try_connect) else (failed,)
    facts.update(pg_states(topology, [failed], settings=MASTER_SETTINGS, unread=unread))
    return facts


def _preview(plan) -> str:
    changes = describe_changes(plan)
    return plan.reason + (f"\n{changes}" if changes else "")


@operation()
def check_failover_cascade(topology: Topology, failed: str, force: bool):
    """
    On the master: the repair is still wanted and safe, from the live facts (refuses otherwise),
    and says what it changes. Elsewhere: nothing (a barrier before the changes).

    + topology: the inventory's cluster
    + failed: the failed cascade's inventory name
    + force: fail over a healthy cascade too
    """
    if host.name != topology.master.name:
        host.noop(f"checked on the master {topology.master.name}")
    else:
        plan = plan_failover_cascade(topology, failover_facts(topology, failed, try_connect=False), failed, force)
        go_ahead(plan.action, _preview(plan), "failover_cascade")
    yield from ()  # reads and decides only: the next steps act


def _step(node_name: str, topology_after: Topology) -> str:
    return "master" if topology_after.node(node_name).upstream is None else "standbys"


@operation()
def ensure_failover_include(topology_after: Topology, node_name: str, step: str, failed: str):
    """
    The include file of the cluster without the failed cascade, on the hosts of this step: the
    same file as the deploy's prepared variant (the cascade monitor then sees the switch done).

    + topology_after: the cluster without the failed cascade (planner.failover_cascade.without_cascade)
    + node_name: this host's inventory name
    + step: "standbys" (first) or "master" (then)
    + failed: the failed cascade's name
    """
    if step not in ("standbys", "master"):
        raise OperationError(f"unknown step {step!r}")
    if node_name == failed:  # a rebuild of the cascade runs this on every host, the target too
        host.noop(f"{node_name} is the cascade failed over from: its include file stays")
        return
    mine = _step(node_name, topology_after)
    if mine != step:
        host.noop(f"{node_name}: its include file is written in the {mine} step")
        return
    # The include file alone: the registry of the cluster without the cascade cannot be built whole
    # (heartbeat there has a single node), and only this file changes.
    dest = f"{topology_after.cluster.config_directory}/conf.d/{settings.INCLUDE_FILE_NAME}"
    yield from files.template._inner(
        src=template_path("pgcascade.conf.j2"), dest=dest, user="postgres", group="postgres",
        mode="0644", **settings.render_vars_pgconf(topology_after, node_name, variant_without=failed))


@operation()
def ensure_streaming_from_master(topology_after: Topology, node_name: str, repointed: list[str]):
    """
    A re-pointed standby streams from the master: polled with a deadline, fails if it does not.

    + topology_after: the cluster without the failed cascade
    + node_name: this host's inventory name
    + repointed: the former standbys of the failed cascade
    """
    if node_name not in repointed:
        host.noop(f"{node_name} was not re-pointed")
        return
    c = topology_after.cluster
    master = topology_after.master
    fact = pg_state(host, c.version, c.name, c.port)
    if streams_from(fact, master.address):
        host.noop(f"{node_name} streams from {master.name}")
        return
    query = ("select count(*) from pg_stat_wal_receiver where status = 'streaming' "
             f"and sender_host = '{master.address}'")
    yield poll_until(f"[ \"$(runuser -u postgres -- psql -XAtq -p {c.port} -d postgres -c {shlex.quote(query)})\" = 1 ]",
                     STREAMING_TIMEOUT,
                     f"{node_name} does not stream from {master.name} after {STREAMING_TIMEOUT} s: see its PostgreSQL log")
