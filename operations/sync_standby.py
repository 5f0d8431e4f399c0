"""Before a standby becomes synchronous: wait, on its upstream, until it has caught up
(hostrules.sync_standby, run there with python3; the same rule the planner applies)."""
from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation

from hostrules.sync_standby import caught_up
from operations.postgres import pg_state, poll_until
from planner.model import Topology
from planner.settings import LIB_DIRECTORY

CATCH_UP_TIMEOUT = 120  # seconds a standby gets to catch up before it is made synchronous


def caught_up_check(port: int, application_name: str) -> str:
    """A shell condition, true once the standby's row on this server says it has caught up."""
    query = ("select state || '|' || coalesce(pg_wal_lsn_diff(case when pg_is_in_recovery() "
             "then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end, flush_lsn)::bigint::text, '') "
             f"from pg_stat_replication where application_name = '{application_name}' "
             "order by state = 'streaming' desc limit 1")
    row = f"$(runuser -u postgres -- psql -XAtq -p {port} -d postgres -c {shlex.quote(query)})"
    return (f"PYTHONPATH={LIB_DIRECTORY} python3 -s -m hostrules.sync_standby \"{row}\" >/dev/null")


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
    rows = pg_state(host, c.version, c.name, c.port)["replication"]
    row = next((r for r in rows if r["application_name"] == application_name and r["state"] == "streaming"), None)
    if caught_up(row).ok:
        host.noop(f"{standby} streams from {upstream} and has caught up")
        return
    yield poll_until(caught_up_check(c.port, application_name), seconds,
                     f"{standby} has not caught up with {upstream} after {seconds} s (see its PostgreSQL log); "
                     f"it was not made synchronous: rerun once it has (or rebuild it)")
