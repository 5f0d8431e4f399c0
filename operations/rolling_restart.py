"""A standby restarted for its pending settings, one tier at a time (tasks/rolling_restart.py)."""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from facts.config_state import PgConfigState
from operations.postgres import AS_POSTGRES, poll_until, streaming, unit, wait_ready
from planner.model import Topology


@operation()
def restart_pending_standby(topology: Topology, node_name: str, tier: int, seconds: int = 60):
    """
    Restart this standby if a setting waits for a restart, then wait until it streams again.

    + topology: the cluster
    + node_name: this host
    + tier: the tier this step restarts (others do nothing)
    + seconds: deadline for streaming again
    """
    node = topology.node(node_name)
    if node.tier != tier or node.upstream is None:
        host.noop(f"tier {tier}: {node_name} is in tier {node.tier}")
        return
    state = host.get_fact(PgConfigState, port=topology.cluster.port, files=[], **AS_POSTGRES)
    pending = sorted(set(state["unapplied"]) | set(state["pending_restart"]))
    if not state["running"] or not pending:
        host.noop(f"{node_name}: no setting waits for a restart")
        return
    if state.get("in_recovery") is False:
        raise OperationError(f"{node_name}: is a primary, not a standby: not restarting it (check tasks.status)")
    c = topology.cluster
    host.log(f"restart: {', '.join(pending)} only change at a restart")
    yield StringCommand("systemctl", "restart", unit(c.version, c.name))
    yield wait_ready(c.port)
    yield poll_until(streaming(c.port), seconds,
                     f"{node_name} does not stream from {node.upstream} {seconds} s after its restart")
