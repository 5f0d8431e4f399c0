"""Rebuild a standby (a fresh base backup from its upstream): when, and when never.

The ad-hoc answer to "the downstream failed": a rerun of the deploy starts a standby that is
merely stopped and clones one whose disk is gone; `rebuild` also replaces a standby that runs
but cannot follow (broken, or behind what its upstream still has), when asked with force.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planner.model import Topology
from planner.standby_plan import _same_cluster, describe, server_state, upstream_problem


@dataclass(frozen=True)
class RebuildPlan:
    action: str  # "nothing" | "clone" | "refuse"
    reason: str


def not_a_standby(topology: Topology, node_name: str) -> str | None:
    """Why node_name cannot be rebuilt whatever the facts say (tasks/rebuild.py asks before any
    host is touched), or None."""
    if topology.node(node_name).role == "master":
        return f"{node_name} is the master in the inventory: rebuild only replaces a standby"
    return None


def plan_rebuild(topology: Topology, node_name: str, fact: Mapping | None, upstream_fact: Mapping | None,
                 master_fact: Mapping | None, force: bool = False) -> RebuildPlan:
    node = topology.node(node_name)
    cluster = topology.cluster
    if why := not_a_standby(topology, node_name):
        return RebuildPlan("refuse", why)
    state = server_state(fact)
    if state == "unreachable":
        return RebuildPlan("refuse", f"{node_name} cannot be reached: restart it (or repair it) first")
    if problem := upstream_problem(topology, node, upstream_fact, master_fact):
        return RebuildPlan("refuse", f"{node_name} would be cloned from {node.upstream}, but {problem}")
    if state == "primary" and (fact.get("running") or not force):
        return RebuildPlan(
            "refuse",
            f"{node_name} is {describe(fact, cluster)}: it may hold writes nobody else has. If it "
            "really is a stale copy, stop it first, then rebuild with force=true")
    if state == "standby":
        receiver = fact.get("wal_receiver") or {}
        upstream = topology.node(node.upstream)
        streaming = receiver.get("status") == "streaming" and receiver.get("sender_host") == upstream.address
        master_sysid = (master_fact or {}).get("system_identifier")
        if fact.get("running") and streaming and _same_cluster(fact, master_sysid) is not False and not force:
            return RebuildPlan("nothing", f"{node_name} is a running standby streaming from {node.upstream} "
                                          "(force=true rebuilds it anyway)")
    return RebuildPlan("clone", f"{node_name} is {describe(fact, cluster)}: a fresh base backup from "
                                f"{node.upstream} replaces it")
