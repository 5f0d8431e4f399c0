"""A rolling restart (pure): what tasks/rolling_restart.py applies, in which order, or why not.

What a deploy rerun leaves pending (a restart-only setting on the primary, heartbeat's
haresources on the node holding the resources) is applied without an outage: the standbys that
need it restart first (leaves first, the primary's synchronous standby last), then a switchover
onto the master's direct standby, the old primary starts again as a standby (with its new
settings) and heartbeat restarts there (it holds nothing then), then a switchover back. The
write pause is the switchovers'.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from planner.model import Topology
from planner.pgstate import PgStateDict
from planner.standby_plan import check_cluster_roles
from planner.switchover import DEFAULT_MAX_LAG_BYTES, plan_switchover


@dataclass(frozen=True)
class RollingPlan:
    action: Literal["nothing", "rolling", "refuse"]
    reason: str
    standbys: tuple[str, ...] = ()  # standbys to restart, in order (leaves first)
    primary_pending: tuple[str, ...] = ()  # what the primary waits for, in words
    via: str | None = None  # the standby that holds the writes meanwhile
    away: Topology | None = None  # the cluster while `via` is the master


def _pending_settings(fact: PgStateDict | None) -> list[str]:
    return sorted(fact["pending_restart"]) if fact else []


def plan_rolling_restart(topology: Topology, facts_by_host: Mapping[str, PgStateDict | None],
                         haresources_pending: Mapping[str, bool], force: bool = False,
                         max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES) -> RollingPlan:
    """haresources_pending: per heartbeat node, its haresources changed since heartbeat started."""
    problems = check_cluster_roles(topology, facts_by_host, include_drift=False)
    if problems:
        return RollingPlan("refuse", "the cluster does not match the inventory: " + "; ".join(problems))
    master = topology.master
    by_depth = sorted((n for n in topology.nodes if n.upstream is not None), key=lambda n: (-n.tier, n.name))
    standbys = tuple(n.name for n in by_depth if _pending_settings(facts_by_host.get(n.name)))
    primary_pending = []
    if names := _pending_settings(facts_by_host.get(master.name)):
        primary_pending.append(f"{master.name}: {', '.join(names)} (restart-only settings)")
    if haresources_pending.get(master.name):
        primary_pending.append(f"{master.name}: haresources (heartbeat reads it at start only)")
    off_holder = [f"{name}: haresources" for name, pending in sorted(haresources_pending.items())
                  if pending and name != master.name]
    if not standbys and not primary_pending and not off_holder and not force:
        return RollingPlan("nothing", "nothing is pending: no restart-only setting waits on any host and "
                                      "heartbeat runs with its haresources (force=true to roll anyway)")
    via = next((n.name for n in topology.children(master.name)), None)
    if via is None:
        return RollingPlan("refuse", f"{master.name} has no standby to hold the writes during its restart")
    switch = plan_switchover(topology, via, facts_by_host, max_lag_bytes=max_lag_bytes)
    if switch.action != "switchover":
        return RollingPlan("refuse", f"cannot switch over to {via}: {switch.reason}")
    pending = [f"{name}: {', '.join(_pending_settings(facts_by_host.get(name)))}" for name in standbys]
    words = "; ".join([*pending, *primary_pending, *off_holder]) or "nothing pending (forced)"
    return RollingPlan("rolling", f"restart {', '.join(standbys) or 'no standby'} first, then switch over to "
                                  f"{via}, restart {master.name} as its standby, and switch back ({words})",
                       standbys=standbys, primary_pending=tuple(primary_pending), via=via, away=switch.after)
