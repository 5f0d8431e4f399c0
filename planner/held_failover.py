"""A failed-over cascade stays failed over until it has caught up (pure).

After the cascade failover, the master waits for the cascade's former standbys and they stream
from the master. A deploy rerun restores the inventory's tree, which names the cascade in the
master's synchronous_standby_names again: if the cascade is not streaming and caught up by then
(it was away longer than wal_keep_size, it cannot reach the master, ...), every commit would
wait for it. "Caught up" is judged on two looks at the master's pg_stat_replication (the
ReplicationLooks fact): a cascade cut off from the master keeps a 'streaming' row with its last
position until wal_sender_timeout, but sends no reply. So while the tree is failed over from a cascade that is not caught up
(hostrules.sync_standby), the deploy keeps the master's and the former downstreams' include
files as the failover made them (the prepared variant, byte for byte) and says why; the cascade
itself is set up as usual (a standby of the master) so that it can catch up, and the next
rerun after that restores the tree.
"""
from __future__ import annotations

from collections.abc import Mapping

from hostrules.sync_standby import caught_up, looked_row

from .failover_cascade import failable_cascades, without_cascade
from .model import Topology
from .standby_plan import parse_conninfo


def failed_over_from(topology: Topology, facts_by_host: Mapping[str, Mapping | None], cascade: str) -> bool:
    """Some standby of `cascade` is configured to stream from the master instead: the failover
    from it (the monitor's or the task's) is in place."""
    master = topology.master
    for child in topology.children(cascade):
        conninfo = parse_conninfo((facts_by_host.get(child.name) or {}).get("primary_conninfo") or "") or {}
        if conninfo.get("host") == master.address:
            return True
    return False


def failed_over_cascades(topology: Topology, facts_by_host: Mapping[str, Mapping | None]) -> list[str]:
    """The cascades (standbys of the master) the tree is failed over from."""
    master = topology.master
    return [c.name for c in failable_cascades(topology)
            if c.upstream == master.name and failed_over_from(topology, facts_by_host, c.name)]


def held_failovers(topology: Topology, facts_by_host: Mapping[str, Mapping | None],
                   master_looks: Mapping | None) -> dict[str, str]:
    """{cascade: why the failover from it stays} for every cascade the tree is failed over from
    and that has not caught up with the master. master_looks: the master's ReplicationLooks (None:
    not read, so nothing counts as caught up)."""
    held = {}
    master = topology.master
    for name in failed_over_cascades(topology, facts_by_host):
        cascade = topology.node(name)
        verdict = caught_up(looked_row(master_looks, cascade.application_name))
        if not verdict.ok:
            children = ", ".join(c.name for c in topology.children(cascade.name))
            held[cascade.name] = (
                f"{cascade.name} is {verdict.message} on {master.name} ({verdict.reason}): the failover from "
                f"it stays ({children} stream from {master.name}, which waits for them, not for "
                f"{cascade.name}); rerun the deploy once {cascade.name} has caught up, or rebuild it "
                f"(tasks/rebuild.py --data target={cascade.name}) if it cannot")
    return held


def include_topology(topology: Topology, node_name: str, held: Mapping[str, str]) -> tuple[Topology, str]:
    """(the topology the node's include file is rendered from, the variant's cascade or ''): the
    cluster without each held cascade for the master and that cascade's standbys."""
    node = topology.node(node_name)
    for cascade in held:
        if node.upstream is None or node.upstream == cascade:
            return without_cascade(topology, cascade), cascade
    return topology, ""
