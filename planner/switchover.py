"""Switchover: a planned change of master onto a caught-up standby, nothing lost. Pure decisions."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from planner.model import Topology
from planner.pgstate import PgStateDict, streams_from
from planner.rejoin import current_topology
from planner.roles import with_master

DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SwitchoverPlan:
    action: Literal["nothing", "switchover", "refuse"]
    reason: str
    now: Topology | None = None  # the cluster as it is (the live primary as master)
    after: Topology | None = None  # the cluster once the target is the master


def plan_switchover(inventory: Topology, target: str, facts_by_host: Mapping[str, PgStateDict | None],
                    max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES, force: bool = False) -> SwitchoverPlan:
    now, why = current_topology(inventory, facts_by_host)
    if now is None:
        return SwitchoverPlan("refuse", f"cannot switch over: {why}")
    primary = now.master
    if target == primary.name:
        return SwitchoverPlan("nothing", f"{target} is already the master ({why})", now, now)
    node = now.node(target)
    if node.upstream != primary.name:
        return SwitchoverPlan("refuse", f"{target} is not a direct standby of the primary {primary.name}: "
                                        "only the master's synchronous standby can take over")
    fact, primary_fact = facts_by_host.get(target), facts_by_host[primary.name]
    assert primary_fact is not None  # current_topology made it the master: a running primary
    if not (fact and fact["running"] and fact["in_recovery"] and streams_from(fact, primary.address)):
        return SwitchoverPlan("refuse", f"{target} is not a running standby streaming from {primary.name}: "
                                        "rejoin or start it first")
    if fact["timeline"] != primary_fact["timeline"]:
        return SwitchoverPlan("refuse", f"{target} is on timeline {fact['timeline']}, the primary on "
                                        f"{primary_fact['timeline']}: let it catch up first")
    current = primary_fact["lsn"]["current"]
    replayed = fact["lsn"]["replay"]
    lag = None if current is None or replayed is None else current - replayed
    if (lag is None or lag > max_lag_bytes) and not force:
        shown = "unknown" if lag is None else f"{lag} bytes"
        return SwitchoverPlan("refuse", f"{target} lags {primary.name} by {shown} (more than "
                                        f"{max_lag_bytes}): a switchover would pause writes too long. "
                                        "Wait, or force=true")
    return SwitchoverPlan("switchover", f"{primary.name} -> {target}: {target} streams from {primary.name}, "
                                        f"{lag} bytes behind", now, with_master(now, target))
