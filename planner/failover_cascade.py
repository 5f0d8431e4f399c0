"""When the cascading standby fails: the cluster without it, and whether to repair (pure).

The master waits for its synchronous standby, the
cascade, so every commit hangs once the cascade is gone, and the downstreams stop receiving WAL.
The repair re-points the cascade's standbys (its children) to the master, makes the master ship
its WAL into their archives and wait for one of them instead, and reloads (no restart).

`without_cascade()` gives that cluster as a Topology, so the settings functions derive every
file from it exactly as for the inventory's own cluster; `plan_failover_cascade()` decides from
the hosts' PgState facts whether to act, with the reason in a DBA's words. PgState dicts follow
docs/architecture.md; a host that could not be read is None.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, get_args

from . import settings
from .model import Node, Topology
from .pgstate import PgStateDict
from .standby_plan import describe, server_state, standby_differences

FailoverAction = Literal["nothing", "act", "refuse"]
FAILOVER_ACTIONS: tuple[FailoverAction, ...] = get_args(FailoverAction)
# What the facts must report for the "already done" check (PgState(settings=...)).
MASTER_SETTINGS = ("archive_command", "synchronous_standby_names")


class CascadeChoiceError(ValueError):
    """The failed cascade cannot be told from the inventory and the arguments."""


@dataclass(frozen=True)
class CascadeFailoverPlan:
    """nothing: already repaired; act: repair now; refuse: the facts say not to (reason says why).

    changes: (host, what changes there) for every host whose settings change, for the preview.
    """

    action: FailoverAction
    reason: str
    changes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.action not in FAILOVER_ACTIONS:
            raise ValueError(f"unknown failover action {self.action!r}")


# ---------------------------------------------------------------- the cluster without it


def failable_cascades(topology: Topology) -> tuple[Node, ...]:
    """The cascades whose failure this repair handles: role cascade, with standbys of their own."""
    return tuple(n for n in topology.nodes if n.role == "cascade" and topology.children(n.name))


def _check_failable(topology: Topology, failed: str) -> Node:
    try:
        node = topology.node(failed)
    except KeyError:
        known = ", ".join(n.name for n in failable_cascades(topology)) or "none"
        raise CascadeChoiceError(
            f"{failed}: not a PostgreSQL host of the inventory (cascades with standbys: {known})"
        ) from None
    if node.role != "cascade":
        raise CascadeChoiceError(
            f"{failed} is the {node.role}, not a cascading standby: this repair is for a failed "
            "cascade (a failed master is heartbeat's case, a failed downstream blocks no commit)"
        )
    if not topology.children(failed):
        raise CascadeChoiceError(
            f"{failed} has no standbys of its own: its failure leaves nobody to re-point"
        )
    return node


def without_cascade(topology: Topology, failed: str) -> Topology:
    """The same cluster with the cascade `failed` gone: its children replicate from its upstream
    (the master), tiers recomputed, roles kept. Settings derived from it give the master an
    archive_command shipping to the former downstreams and a synchronous_standby_names naming
    them, and the downstreams a primary_conninfo pointing at the master.
    """
    gone = _check_failable(topology, failed)
    kept = [
        replace(n, upstream=gone.upstream) if n.upstream == failed else n
        for n in topology.nodes
        if n.name != failed
    ]
    by_name = {n.name: n for n in kept}
    tiers: dict[str, int] = {}

    def tier(name: str) -> int:
        if name not in tiers:
            upstream = by_name[name].upstream
            tiers[name] = 0 if upstream is None else tier(upstream) + 1
        return tiers[name]

    nodes = sorted((replace(n, tier=tier(n.name)) for n in kept), key=lambda n: (n.tier, n.name))
    return Topology(cluster=topology.cluster, nodes=tuple(nodes))


def prepared_cascades(topology: Topology, node_name: str) -> tuple[str, ...]:
    """The cascades whose failure `node_name` is prepared for (a variant of its include file
    each): every one on the master, its own upstream on a standby of a cascade, none elsewhere.
    Empty when the inventory turns the automation off (pg_cascade_monitor = False)."""
    node = topology.node(node_name)
    if not topology.cluster.cascade_monitor:
        return ()
    failable = [n.name for n in failable_cascades(topology)]
    if node.role == "master":
        return tuple(failable)
    return (node.upstream,) if node.upstream in failable else ()


def watched_cascade(topology: Topology, node_name: str) -> str | None:
    """The cascade `node_name` runs a monitor for: its upstream, when that is a cascade."""
    node = topology.node(node_name)
    if node.role == "master":
        return None
    cascades = prepared_cascades(topology, node_name)
    return cascades[0] if cascades else None


def choose_failed_cascade(topology: Topology, requested: str | None) -> str:
    """The cascade to fail over: the one named, else the inventory's only one."""
    if requested:
        _check_failable(topology, str(requested))
        return str(requested)
    candidates = failable_cascades(topology)
    if len(candidates) == 1:
        return candidates[0].name
    if not candidates:
        raise CascadeChoiceError("the inventory has no cascading standby with standbys of its own")
    names = ", ".join(n.name for n in candidates)
    raise CascadeChoiceError(
        f"the inventory has several cascades ({names}): name the failed one with "
        "--data cascade=NAME"
    )


# ---------------------------------------------------------------- deciding


def _changes(
    topology: Topology, after: Topology, facts_by_host: Mapping[str, PgStateDict | None], failed: str
) -> list[tuple[str, str]]:
    """What differs between the running settings and those of the cluster without `failed`."""
    changes = []
    master = topology.master.name
    wanted = settings.desired_values(after, master)
    master_fact = facts_by_host[master]
    current = master_fact["settings"] if master_fact else {}
    for name in MASTER_SETTINGS:
        if current.get(name) != wanted[name]:
            changes.append(
                (master, f"{name} {current.get(name)!r} -> {wanted[name]!r}")
            )
    for child in topology.children(failed):
        conninfo = settings.primary_conninfo(after, child.name)
        child_fact = facts_by_host[child.name]
        assert child_fact is not None  # plan_failover_cascade refused an unreachable child
        for difference in standby_differences(child_fact, conninfo):
            changes.append((child.name, difference))
    return changes


def _check_master(topology: Topology, fact: PgStateDict | None) -> str | None:
    master = topology.master
    what = describe(fact, topology.cluster)
    if fact is None:
        return f"the master {master.name} could not be reached: re-pointing standbys to it cannot work"
    if server_state(fact) != "primary" or not fact["running"]:
        return (
            f"the master {master.name} is {what}, not a running primary: re-pointing standbys to it "
            "would leave them on a server that takes no writes (a failover of the master may be "
            "under way: check `python -m tasks.status`)"
        )
    return None


def _check_child(topology: Topology, child: Node, fact: PgStateDict | None, master_fact: PgStateDict) -> str | None:
    master = topology.master
    cluster = topology.cluster
    if fact is None:
        return f"{child.name}, a standby of {child.upstream}, could not be reached: it cannot be re-pointed"
    if server_state(fact) != "standby":
        return f"{child.name} is {describe(fact, cluster)}, not a standby: not re-pointing it"
    mine, ours = fact["system_identifier"], master_fact["system_identifier"]
    if mine and ours and str(mine) != str(ours):
        return (
            f"{child.name} holds another cluster (system identifier {mine}) than the master "
            f"{master.name} ({ours}): it cannot stream from it"
        )
    timeline, master_timeline = fact["timeline"], master_fact["timeline"]
    if timeline is not None and master_timeline is not None and timeline > master_timeline:
        return (
            f"{child.name} is on timeline {timeline}, newer than the master {master.name} "
            f"(timeline {master_timeline}): {master.name} is not the primary it followed"
        )
    return None


def plan_failover_cascade(
    topology: Topology,
    facts_by_host: Mapping[str, PgStateDict | None],
    failed: str,
    force: bool = False,
) -> CascadeFailoverPlan:
    """Decide the repair of a failed cascade from the facts of the master, the cascade's
    standbys and the cascade itself (None when it could not be reached).

    Refuses when the master is not a reachable running primary, when a standby of the cascade is
    unreachable, not a standby, of another cluster or ahead of the master's timeline, and when
    the cascade is a running primary (promoted: not a cascade failure). Nothing when the running
    settings already are those of the cluster without the cascade. Refuses when the cascade is
    a running standby, unless forced (taking a healthy cascade out, for maintenance say).
    """
    try:
        _check_failable(topology, failed)
    except CascadeChoiceError as error:
        return CascadeFailoverPlan("refuse", str(error))
    cluster = topology.cluster
    master = topology.master
    master_fact = facts_by_host.get(master.name)
    problems = []
    if problem := _check_master(topology, master_fact):
        problems.append(problem)
    for child in topology.children(failed):
        if master_fact and (problem := _check_child(topology, child, facts_by_host.get(child.name), master_fact)):
            problems.append(problem)
    cascade_fact = facts_by_host.get(failed)
    cascade_state = server_state(cascade_fact)
    if cascade_fact is not None and cascade_state == "primary" and cascade_fact["running"]:
        problems.append(
            f"{failed} is {describe(cascade_fact, cluster)}: promoted, so this is no cascade "
            "failure (a failover of the master may have happened: check `python -m tasks.status`)"
        )
    if problems:
        return CascadeFailoverPlan("refuse", "; ".join(problems) + ". Nothing was changed")

    after = without_cascade(topology, failed)
    children = topology.children(failed)
    names = ", ".join(c.name for c in children)
    changes = tuple(_changes(topology, after, facts_by_host, failed))
    verb = "replicates" if len(children) == 1 else "replicate"
    summary = (
        f"{names} {verb} from {master.name}, {master.name} archives to {names}"
        + (f" and waits for {settings.synchronous_standby_names(after, master.name)}"
           if settings.synchronous_standby_names(after, master.name) else "")
    )
    if not changes:
        return CascadeFailoverPlan("nothing", f"already failed over from {failed}: {summary}")
    if cascade_fact is not None and cascade_state == "standby" and cascade_fact["running"]:
        if not force:
            return CascadeFailoverPlan(
                "refuse",
                f"{failed} is {describe(cascade_fact, cluster)}: the cascade is healthy, and "
                f"failing over would cut it out of the replication tree. Nothing was changed. To "
                "take it out anyway (maintenance), run again with --data force=true",
                changes,
            )
        why = f"{failed} is {describe(cascade_fact, cluster)}, failing over as forced"
    elif cascade_state == "unreachable":
        why = f"{failed} is unreachable"
    else:
        why = f"{failed} is {describe(cascade_fact, cluster)}"
    return CascadeFailoverPlan("act", f"{why}: after the repair {summary}", changes)


def describe_changes(plan: CascadeFailoverPlan) -> str:
    """The plan's changes, one `host: change` per line (the --dry preview's words)."""
    return "\n".join(f"{host}: {change}" for host, change in plan.changes)
