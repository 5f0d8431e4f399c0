"""A planned restart of a cascade is not its failure. Its standbys' monitors fail the cascade over
after a few seconds without WAL flow (hostrules.cascade_health), and a restart of a loaded
standby can take longer (a restartpoint at shutdown, WAL replay at start). So before the deploy
or a rolling restart restarts a cascade, each of its monitoring standbys gets a hold with a
deadline (the monitor waits while it lasts); after the restart the hold ends once that standby
streams from the cascade again (or at the deadline, whichever is first).

The master's commits wait for the cascade (its synchronous standby) while it restarts, held or
not: the hold trades a cascade failover for a commit pause as long as the restart, so it is
short: a restart longer than HOLD_SECONDS is treated as the failure it has become."""
from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File
from pyinfra.facts.systemd import SystemdStatus

from facts.config_state import PgConfigState
from operations.postgres import AS_POSTGRES, planned_config_action, poll_until, streaming
from operations.run_snapshot import read_fact
from planner.failover_cascade import watched_cascade
from planner.model import Topology
from planner.paths import CASCADE_HOLD_PATH, RUNTIME_DIRECTORY
from planner.settings import CASCADE_MONITOR_UNIT

HOLD_SECONDS = 30  # the longest a planned restart holds the monitors off (hostrules.cascade_health.HOLD_MAX: 300)
STREAM_AGAIN_SECONDS = 60  # after the restart: how long the hold waits for this host to stream again


@operation()
def hold_for_planned_restart(topology: Topology, node_name: str, files: list[str], tier: int | None = None):
    """
    On a standby whose monitor watches a cascade: when the cascade is about to restart (its
    facts: a setting only a restart applies), hold the monitor until the restart is over.

    + topology: the cluster
    + node_name: this host
    + files: the configuration files the restarting operation compares (as in its PgConfigState)
    + tier: only a cascade in this tier (a rolling restart's step); None: any
    """
    cascade = watched_cascade(topology, node_name)
    if cascade is None or (tier is not None and topology.node(cascade).tier != tier):
        host.noop(f"{node_name} watches no cascade that restarts in this step")
        return
    # A first deploy: no monitor runs here yet, and this host does not stream yet (its tier comes
    # later), so there is nothing to hold and nothing to wait for after the restart.
    if not read_fact(host, SystemdStatus, services=[CASCADE_MONITOR_UNIT]).get(CASCADE_MONITOR_UNIT):
        host.noop(f"no cascade monitor runs on {node_name}: nothing to hold")
        return
    c = topology.cluster
    cascade_host = inventory.get_host(cascade)
    state = read_fact(cascade_host, PgConfigState, port=c.port, files=files, **AS_POSTGRES)
    action, _ = planned_config_action(cascade_host, c.version, c.name, c.port, state, is_standby=True)
    if action != "restart":
        host.noop(f"{cascade} does not restart: its monitor here is not held")
        return
    host.log(f"{cascade} restarts: its monitor here waits (at most {HOLD_SECONDS} s) instead of failing it over")
    yield StringCommand("mkdir", "-p", "-m", "0755", RUNTIME_DIRECTORY)
    yield (f"echo $(( $(date +%s) + {HOLD_SECONDS} )) > {CASCADE_HOLD_PATH}.tmp "
           f"&& chmod 0644 {CASCADE_HOLD_PATH}.tmp && mv -f {CASCADE_HOLD_PATH}.tmp {CASCADE_HOLD_PATH}")


@operation()
def end_planned_restart_hold(topology: Topology, node_name: str):
    """
    After the restart: once this standby streams again (from the restarted cascade), its
    monitor judges again (the hold goes).

    + topology: the cluster
    + node_name: this host
    """
    if not read_fact(host, File, path=CASCADE_HOLD_PATH):
        host.noop(f"{node_name}: no planned restart holds its monitor")
        return
    port = topology.cluster.port
    yield poll_until(streaming(port), STREAM_AGAIN_SECONDS,
                     f"{node_name} does not stream again {STREAM_AGAIN_SECONDS} s after its upstream's restart: "
                     "its monitor judges again", required=False)
    yield StringCommand("rm", "-f", CASCADE_HOLD_PATH)
