"""Rebuild a standby (a fresh base backup from its upstream): when, and when never.

The ad-hoc answer to "the downstream failed": a rerun of the deploy starts a standby that is
merely stopped and clones one whose disk is gone; `rebuild` also replaces a standby that runs
but cannot follow (broken, or behind what its upstream still has), when asked with force.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hostrules.sync_standby import caught_up, looked_row
from planner.held_failover import failed_over_from
from planner.model import Topology
from planner.pgstate import PgStateDict, streams_from
from planner.standby_plan import _same_cluster, describe, server_state, upstream_problem


@dataclass(frozen=True)
class RebuildPlan:
    action: Literal["nothing", "clone", "refuse"]
    reason: str


def not_a_standby(topology: Topology, node_name: str) -> str | None:
    """Why node_name cannot be rebuilt whatever the facts say (tasks/rebuild.py asks before any
    host is touched), or None."""
    if topology.node(node_name).role == "master":
        return f"{node_name} is the master in the inventory: rebuild only replaces a standby"
    return None


def plan_rebuild(topology: Topology, node_name: str, fact: PgStateDict | None, upstream_fact: PgStateDict | None,
                 master_fact: PgStateDict | None, force: bool = False) -> RebuildPlan:
    node = topology.node(node_name)
    cluster = topology.cluster
    if why := not_a_standby(topology, node_name):
        return RebuildPlan("refuse", why)
    if fact is None:
        return RebuildPlan("refuse", f"{node_name} cannot be reached: restart it (or repair it) first")
    state = server_state(fact)
    if problem := upstream_problem(topology, node, upstream_fact, master_fact):
        return RebuildPlan("refuse", f"{node_name} would be cloned from {node.upstream}, but {problem}")
    if state == "primary" and (fact["running"] or not force):
        return RebuildPlan(
            "refuse",
            f"{node_name} is {describe(fact, cluster)}: it may hold writes nobody else has. If it "
            "really is a stale copy, stop it first, then rebuild with force=true")
    if state == "standby":
        streaming = streams_from(fact, topology.upstream_of(node).address)
        master_sysid = master_fact["system_identifier"] if master_fact else None
        if fact["running"] and streaming and _same_cluster(fact, master_sysid) is not False and not force:
            return RebuildPlan("nothing", f"{node_name} is a running standby streaming from {node.upstream} "
                                          "(force=true rebuilds it anyway)")
    return RebuildPlan("clone", f"{node_name} is {describe(fact, cluster)}: a fresh base backup from "
                                f"{node.upstream} replaces it")


# ---------------------------------------------------------------- synchronous commit first

HANDOVER_ACTIONS = ("none", "move", "refuse")


@dataclass(frozen=True)
class SyncHandover:
    """Before a rebuild: none (the master does not wait for the target), move (its standbys take
    over synchronous commit first: the cascade failover's files, applied in order), refuse."""

    action: str
    reason: str


def plan_sync_handover(topology: Topology, target: str, facts_by_host: Mapping[str, Mapping | None],
                       master_looks: Mapping | None, force: bool = False) -> SyncHandover:
    """A rebuild stops and wipes the target for the whole base backup: if the master waits for
    it (its synchronous standby), every commit would hang meanwhile. Its own standbys take over
    first (streaming from the master and caught up before the master waits for them); with none,
    refuse unless forced. master_looks: the master's ReplicationLooks (a sibling counts as caught
    up only on them; None: none does)."""
    node = topology.node(target)
    master = topology.master
    if not topology.cluster.synchronous or node.upstream != master.name:
        return SyncHandover("none", f"{master.name} does not wait for {target}")
    if failed_over_from(topology, facts_by_host, target):
        return SyncHandover("none", f"already failed over from {target}: {master.name} does not wait for it")
    for sibling in topology.children(master.name):
        if sibling.name != target and caught_up(looked_row(master_looks, sibling.application_name)).ok:
            return SyncHandover("none", f"{sibling.name} is caught up and takes over synchronous commit")
    children = topology.children(target)
    if children:
        names = ", ".join(c.name for c in children)
        return SyncHandover("move", f"{master.name} waits for {target}: first {names} stream from {master.name} "
                                    f"and, once caught up, become its synchronous standby (the cascade "
                                    f"failover's files); rerun the deploy after the rebuild, once {target} "
                                    "has caught up, to restore the tree")
    if force:
        return SyncHandover("none", f"{target} is {master.name}'s only synchronous standby: forced, every commit "
                                    f"on {master.name} waits until {target} streams again")
    return SyncHandover("refuse", f"{target} is {master.name}'s only synchronous standby: rebuilding it would hold "
                                  f"every commit on {master.name} for the whole base backup. Nothing was changed; "
                                  "force=true rebuilds it anyway")
