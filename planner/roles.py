"""Who is the master now: the topology after a failover, and the live primary from the facts.

After heartbeat promoted the cascade, the cluster is the inventory's with the master and the
cascade swapped: `with_master()` derives that topology, so rejoin and switchover render every
file with the same settings functions as the deploy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from planner.model import Topology
from planner.pgstate import PgStateDict
from planner.standby_plan import server_state


def with_master(topology: Topology, new_master: str) -> Topology:
    """The topology with `new_master` (a direct standby of the master) and the master swapped.

    The old master takes the new master's place: its upstream, its application_name and its
    children (the cascade's downstreams stream from it).
    """
    old = topology.master
    new = topology.node(new_master)
    if new.name == old.name:
        return topology
    if new.upstream != old.name:
        raise ValueError(f"{new_master} is not a direct standby of the master {old.name}")
    swapped = []
    for node in topology.nodes:
        if node.name == new.name:
            node = replace(node, role="master", upstream=None, application_name=None, tier=0)
        elif node.name == old.name:
            node = replace(node, role=new.role, upstream=new.name, application_name=new.application_name, tier=1)
        elif node.upstream == new.name:
            node = replace(node, upstream=old.name)
        elif node.upstream == old.name:
            node = replace(node, upstream=new.name)
        swapped.append(node)
    return replace(topology, nodes=tuple(sorted(swapped, key=lambda n: (n.tier, n.name))))


def live_primary(facts_by_host: Mapping[str, PgStateDict | None]) -> tuple[str | None, str]:
    """(host, reason): the running primary on the newest timeline, or None with the reason."""
    primaries = {name: fact for name, fact in facts_by_host.items()
                 if fact is not None and server_state(fact) == "primary" and fact["running"]}
    if not primaries:
        return None, "no running primary in the cluster"
    newest = max(fact["timeline"] or 0 for fact in primaries.values())
    on_newest = sorted(name for name, fact in primaries.items() if (fact["timeline"] or 0) == newest)
    if len(on_newest) > 1:
        return None, f"{', '.join(on_newest)} are running primaries on timeline {newest}: split brain, fix it by hand"
    return on_newest[0], f"{on_newest[0]} is the running primary on timeline {newest}"
