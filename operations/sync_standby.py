"""Before a standby becomes synchronous: wait, on its upstream, until it has caught up
(hostrules.sync_standby, run there with python3; the same rule the planner applies)."""
from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.host import Host
from pyinfra.context import ctx_state

from facts.replication_looks import ReplicationLooks
from hostrules.sync_standby import caught_up, looked_row
from operations.postgres import AS_POSTGRES, poll_until
from operations.run_snapshot import read_fact
from planner.model import Topology
from planner.settings import LIB_DIRECTORY

CATCH_UP_TIMEOUT = 120  # seconds a standby gets to catch up before it is made synchronous

# Looks read while the deploy file runs, once per run and server (every host's run of it asks;
# two looks take over a second).
_LOOKS: dict[tuple[int, str, int], dict] = {}


def replication_looks(server: Host, port: int) -> dict:
    """The server's ReplicationLooks (hostrules.sync_standby.looks), read once per run."""
    key = (id(ctx_state.get()), server.name, port)
    if key not in _LOOKS:
        _LOOKS[key] = read_fact(server, ReplicationLooks, port=port, **AS_POSTGRES)
    return _LOOKS[key]


def caught_up_check(port: int, application_name: str) -> str:
    """A shell condition, true once the standby on this server has caught up and still replies
    (two looks at its row)."""
    return (f"(cd / && runuser -u postgres -- env PYTHONPATH={LIB_DIRECTORY} python3 -s -m hostrules.sync_standby "
            f"check {int(port)} {shlex.quote(application_name)} >/dev/null)")


@operation()
def wait_caught_up(topology: Topology, node_name: str, standby: str, seconds: int = CATCH_UP_TIMEOUT):
    """
    On the standby's upstream: poll until the standby streams and has caught up; fail after
    `seconds` (it is then not made synchronous: the next step does not run).

    + topology: the cluster in which `standby` is about to become synchronous
    + node_name: this host
    + standby: the standby's inventory name
    + seconds: the deadline
    """
    upstream = topology.node(standby).upstream
    if node_name != upstream:
        host.noop(f"{standby}'s catch-up is checked on {upstream}")
        return
    c = topology.cluster
    application_name = topology.node(standby).application_name or standby
    # Read when the operation runs: a rerun on a standby that streams and has caught up changes nothing.
    looks = read_fact(host, ReplicationLooks, port=c.port, **AS_POSTGRES)
    if caught_up(looked_row(looks, application_name)).ok:
        host.noop(f"{standby} streams from {upstream} and has caught up")
        return
    yield poll_until(caught_up_check(c.port, application_name), seconds,
                     f"{standby} has not caught up with {upstream} after {seconds} s (see its PostgreSQL log); "
                     f"it was not made synchronous: rerun once it has (or rebuild it)")
