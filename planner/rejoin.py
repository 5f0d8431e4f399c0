"""Rejoin: a former master (or any stale copy of the cluster) becomes a standby of the live
primary again, with pg_rewind (a fresh base backup if that fails). Pure decisions.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from planner.model import Topology
from planner.pgstate import PgStateDict, streams_from
from planner.roles import live_primary, with_master
from planner.standby_plan import describe, server_state


@dataclass(frozen=True)
class RejoinPlan:
    action: Literal["nothing", "rejoin", "refuse"]
    reason: str
    topology: Topology | None = None  # the cluster as it is now (the live primary as master)


def current_topology(inventory: Topology, facts_by_host: Mapping[str, PgStateDict | None]) -> tuple[Topology | None, str]:
    """The inventory's topology with the live primary as its master, or None and why not."""
    primary, reason = live_primary(facts_by_host)
    if primary is None:
        return None, reason
    if primary != inventory.master.name and inventory.node(primary).upstream != inventory.master.name:
        return None, f"{reason}, but it is not the master's direct standby: fix the inventory by hand"
    return with_master(inventory, primary), reason


def plan_rejoin(inventory: Topology, target: str, facts_by_host: Mapping[str, PgStateDict | None],
                force: bool = False) -> RejoinPlan:
    now, why = current_topology(inventory, facts_by_host)
    if now is None:
        return RejoinPlan("refuse", f"cannot rejoin {target}: {why}")
    master = now.master
    fact, master_fact = facts_by_host.get(target), facts_by_host[master.name]
    assert master_fact is not None  # current_topology made it the master: a running primary
    cluster = inventory.cluster
    if target == master.name:
        return RejoinPlan("refuse", f"{target} is the live primary ({why}): there is nothing to rejoin to")
    if fact is None:
        return RejoinPlan("refuse", f"{target} cannot be reached: restart it first")
    state = server_state(fact)
    if state in ("absent", "unreadable"):
        return RejoinPlan("refuse", f"{target} is {describe(fact, cluster)}: use tasks/rebuild.py for it")
    if fact["system_identifier"] != master_fact["system_identifier"]:
        return RejoinPlan("refuse", f"{target} holds another cluster (system identifier "
                                    f"{fact['system_identifier']}, {master.name} has "
                                    f"{master_fact['system_identifier']}): refusing to touch it")
    timeline, master_timeline = fact["timeline"] or 0, master_fact["timeline"] or 0
    upstream = now.upstream_of(now.node(target))
    if (state == "standby" and fact["running"] and streams_from(fact, upstream.address)
            and timeline == master_timeline):
        return RejoinPlan("nothing", f"{target} already streams from {upstream.name} on timeline {timeline}", now)
    if state == "primary" and timeline >= master_timeline and not force:
        return RejoinPlan("refuse", f"{target} is {describe(fact, cluster)}, not older than the primary "
                                    f"{master.name} (timeline {master_timeline}): it may hold the newest "
                                    "data. Check by hand; force=true rewinds it anyway")
    return RejoinPlan("rejoin", f"{target} is {describe(fact, cluster)}: rewind it onto {master.name}'s "
                                f"timeline {master_timeline} and make it a standby of {upstream.name}", now)
