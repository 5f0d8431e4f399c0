"""The safety core: inventory + PgState facts -> what to do with a PostgreSQL host, and why.

Pure decisions, no side effects. The rules, with a DBA's eyes:

* Never wipe a data directory that holds a running primary, data of another cluster than its
  upstream's, or a newer timeline than its upstream's. A base backup only replaces nothing (no
  cluster), or what the facts layer proved is worth nothing (`is_pristine`: an empty data
  directory, or Debian's never-used default cluster). A standby of the right cluster is never
  re-cloned: it is re-pointed.
* Acting on a standby (clone, repoint) needs proof that its upstream is right: reachable,
  running, in the role the inventory gives it (the master a primary, any other upstream a
  standby) and of the same cluster. Starting or leaving alone a correctly configured standby only
  needs the absence of contrary proof: starting it destroys nothing.
* When the facts disagree with the inventory (the master in recovery, a promoted cascade), stop
  and say what was found and what to do: a deploy never promotes, demotes or rewinds.

PgState dicts follow docs/architecture.md; a host that could not be read is None.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from .model import Cluster, Node, Topology
from .paths import CLONE_LABEL
from .pgstate import PgStateDict, ServerState, timeline_or_zero

StandbyAction = Literal["nothing", "start", "repoint", "clone", "refuse"]
PrimaryAction = Literal["nothing", "start", "create", "refuse"]
STANDBY_ACTIONS: tuple[StandbyAction, ...] = get_args(StandbyAction)
PRIMARY_ACTIONS: tuple[PrimaryAction, ...] = get_args(PrimaryAction)


@dataclass(frozen=True)
class StandbyPlan:
    """What to do with a standby.

    nothing: a running standby of the right upstream with the wanted settings.
    start:   the same, but stopped.
    repoint: a standby of this cluster whose primary_conninfo or standby settings differ:
             rewrite them and apply them (reload or restart, see restart_or_reload; no clone).
    clone:   no cluster, or one worth nothing: wipe it and take a base backup from the upstream.
    refuse:  acting could destroy data, or the facts disagree with the inventory.

    waits_for: set on a refusal caused only by the upstream not being ready yet (no cluster,
    not cloned, stopped): an earlier step of the same run may fix that, so an operation
    planning before that step (pyinfra's prepare) should not fail on it, and plan again later.
    """

    action: StandbyAction
    reason: str
    waits_for: str | None = None

    def __post_init__(self) -> None:
        if self.action not in STANDBY_ACTIONS:
            raise ValueError(f"unknown standby action {self.action!r}")
        if self.waits_for is not None and self.action != "refuse":
            raise ValueError("only a refusal waits for its upstream")


@dataclass(frozen=True)
class PrimaryPlan:
    """What to do with the inventory's master: nothing, start, create (no cluster yet), refuse."""

    action: PrimaryAction
    reason: str

    def __post_init__(self) -> None:
        if self.action not in PRIMARY_ACTIONS:
            raise ValueError(f"unknown primary action {self.action!r}")


# ---------------------------------------------------------------- reading a PgState


def server_state(fact: PgStateDict | None) -> ServerState:
    """One word for what a host holds.

    unreachable: no fact; absent: not installed or no cluster; unreadable: the cluster is stopped
    and its pg_control could not be read (empty data directory, interrupted base backup, damage);
    standby: in recovery (or stopped with standby.signal); primary: anything else.
    """
    if fact is None:
        return "unreachable"
    if not fact["installed"] or not fact["cluster_exists"]:
        return "absent"
    if not fact["running"] and not fact["system_identifier"]:
        return "unreadable"
    if fact["in_recovery"] or (not fact["running"] and fact["standby_signal"]):
        return "standby"
    return "primary"


def describe(fact: PgStateDict | None, cluster: Cluster) -> str:
    """`a running primary on timeline 2` and the like, for messages."""
    if fact is None:
        return "unreachable"
    state = server_state(fact)
    if state == "absent":
        if not fact["installed"]:
            return f"without PostgreSQL {cluster.version} installed"
        return f"without a cluster {cluster.version}/{cluster.name}"
    if state == "unreadable":
        return "a stopped cluster without a readable pg_control"
    running = "running" if fact["running"] else "stopped"
    timeline = fact["timeline"]
    on_timeline = f" on timeline {timeline}" if timeline is not None else ""
    return f"a {running} {state}{on_timeline}"


def _same_cluster(fact: PgStateDict | None, system_identifier: str | None) -> bool | None:
    """True/False when both identifiers are known, None when that cannot be told."""
    mine = fact["system_identifier"] if fact else None
    if not mine or not system_identifier:
        return None
    return str(mine) == str(system_identifier)


def _pristine(fact: PgStateDict, is_pristine: bool) -> bool:
    """The facts layer's verdict, double-checked: standbys and promoted clusters never are."""
    timeline = fact["timeline"]
    return bool(
        is_pristine
        and not fact["standby_signal"]
        and not fact["in_recovery"]
        and (timeline is None or timeline == 1)
    )


def interrupted_clone(fact: PgStateDict | None) -> str | None:
    """Why the stopped data directory is what an interrupted clone left (to be cloned again), or None.

    Only what a clone of ours leaves: a copy it made and never ran (its backup_label, written
    first by a base backup, kept until recovery starts), or, with its marker (written once the
    facts proved the data worth nothing), an empty or unreadable directory or the very
    never-used cluster it was replacing (the marker's system identifier, still on timeline 1).
    """
    if not fact or fact["running"]:
        return None
    if fact.get("backup_label") == CLONE_LABEL and not fact["standby_signal"]:
        return "holds a copy that a clone made and never ran (its backup_label)"
    marker = fact.get("clone_marker")
    if marker is None:
        return None
    state = server_state(fact)
    if state in ("absent", "unreadable"):
        return "holds what an interrupted clone left (its marker): no cluster, or one without a readable pg_control"
    if (state == "primary" and fact["timeline"] == 1 and not fact["standby_signal"]
            and fact["system_identifier"] and fact["system_identifier"] == marker):
        return "holds the never-used cluster that an interrupted clone was replacing (its marker), stopped"
    return None


def replaced_by_clone(is_standby: bool, fact: PgStateDict | None) -> bool:
    """The standby tier clones over what this host holds because it is a never-used cluster (the
    package's default): until then nothing else acts on it."""
    return bool(is_standby and fact and server_state(fact) == "primary" and _pristine(fact, bool(fact["pristine"])))


def _drop_hint(cluster: Cluster) -> str:
    return f"pg_dropcluster --stop {cluster.version} {cluster.name}"


# ---------------------------------------------------------------- primary_conninfo


def parse_conninfo(text: str) -> dict[str, str] | None:
    """libpq `key=value` pairs (bare or single-quoted values, backslash escapes); None if bad."""
    pairs: dict[str, str] = {}
    index, length = 0, len(text)
    while True:
        while index < length and text[index].isspace():
            index += 1
        if index >= length:
            return pairs
        start = index
        while index < length and text[index] != "=" and not text[index].isspace():
            index += 1
        key = text[start:index]
        while index < length and text[index].isspace():
            index += 1
        if not key or index >= length or text[index] != "=":
            return None
        index += 1
        while index < length and text[index].isspace():
            index += 1
        quoted = index < length and text[index] == "'"
        index += quoted
        chars = []
        while index < length:
            char = text[index]
            if char == "\\" and index + 1 < length:
                index += 1
                char = text[index]
            elif quoted and char == "'":
                break
            elif not quoted and char.isspace():
                break
            chars.append(char)
            index += 1
        if quoted:
            if index >= length:
                return None  # unterminated quote
            index += 1
        pairs[key] = "".join(chars)


def _redacted(conninfo: str) -> str:
    """The conninfo for a message: a password (one set by hand in primary_conninfo) is masked."""
    pairs = parse_conninfo(conninfo)
    if pairs is None:
        return "(unparsable)" if "password" in conninfo else repr(conninfo)
    if not pairs:
        return "unset"
    return " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in pairs.items())


def _same_conninfo(current: str, desired: str) -> bool:
    parsed_current, parsed_desired = parse_conninfo(current), parse_conninfo(desired)
    if parsed_current is None or parsed_desired is None:
        return current == desired
    return parsed_current == parsed_desired


def standby_differences(
    fact: PgStateDict, desired_conninfo: str, desired_settings: Mapping[str, str] | None = None
) -> list[str]:
    """What differs from a correctly configured standby, in words (empty when nothing).

    A stopped server reports its settings as None (unknown): they are not differences, since
    it starts with what the managed files say. A running one reports them all.
    """
    differences = []
    running = bool(fact["running"])
    current = fact["primary_conninfo"]
    if (current is not None or running) and not _same_conninfo(current or "", desired_conninfo):
        differences.append(
            f"primary_conninfo is {_redacted(current or '')} (wanted {_redacted(desired_conninfo)})"
        )
    if running and fact["in_recovery"] and not fact["standby_signal"]:
        differences.append("no standby.signal (its archive recovery would end in a promotion)")
    settings = fact["settings"] or {}
    for name, value in sorted((desired_settings or {}).items()):
        if settings.get(name) is None:
            if running:
                differences.append(f"{name} is not set (wanted {value!r})")
        elif settings[name] != value:
            differences.append(f"{name} is {settings[name]!r} (wanted {value!r})")
    return differences


# ---------------------------------------------------------------- the upstream


def _cluster_system_identifier(
    upstream_fact: PgStateDict | None, master_fact: PgStateDict | None
) -> str | None:
    """The cluster's identity: the master's system identifier, else the upstream's."""
    for fact in (master_fact, upstream_fact):
        if fact is not None and server_state(fact) in ("primary", "standby") and fact["system_identifier"]:
            return str(fact["system_identifier"])
    return None


def _upstream_check(
    topology: Topology, node: Node, upstream_fact: PgStateDict | None, master_fact: PgStateDict | None
) -> tuple[str, bool] | None:
    """(why the upstream cannot serve now, whether an earlier step of the run may fix it)."""
    cluster = topology.cluster
    upstream = topology.upstream_of(node)
    label = f"its upstream {upstream.name}"
    if upstream_fact is None:
        return f"{label} could not be reached (check it, then run the deploy again)", False
    state = server_state(upstream_fact)
    if state in ("absent", "unreadable"):
        return f"{label} is {describe(upstream_fact, cluster)} (deploy {upstream.name} first)", True
    if not upstream_fact["running"]:
        start = f"pg_ctlcluster {cluster.version} {cluster.name} start"
        return f"{label} is not running (start it: {start})", True
    if upstream.role == "master" and state != "primary":
        return (
            f"{label}, the master in the inventory, is in recovery (a standby): a failover may "
            "have happened; find the primary (pgcascade status) and fix the inventory"
        ), False
    if upstream.role != "master" and state != "standby":
        return (
            f"{label} is a primary, not a standby: it is not cloned yet (deploy {upstream.name} "
            "first) or it was promoted (then fix the inventory)"
        ), True
    if master_fact is not None and upstream.role != "master":
        master = topology.master
        if _same_cluster(upstream_fact, _cluster_system_identifier(None, master_fact)) is False:
            return (
                f"{label} holds another cluster (system identifier "
                f"{upstream_fact['system_identifier']}) than the master {master.name} "
                f"({master_fact['system_identifier']}): re-clone {upstream.name} first"
            ), False
    return None


def upstream_problem(
    topology: Topology,
    node: Node,
    upstream_fact: PgStateDict | None,
    master_fact: PgStateDict | None = None,
) -> str | None:
    """Why `node`'s upstream cannot serve a base backup or streaming now; None when it can."""
    check = _upstream_check(topology, node, upstream_fact, master_fact)
    return check[0] if check else None


def _blocked_by_upstream(
    topology: Topology,
    node: Node,
    upstream_fact: PgStateDict | None,
    master_fact: PgStateDict | None,
    what: str,
) -> StandbyPlan | None:
    """A refusal when the upstream cannot serve `what` (e.g. "pg3 is ..., but ..."), else None."""
    check = _upstream_check(topology, node, upstream_fact, master_fact)
    if check is None:
        return None
    problem, may_be_fixed_by_the_run = check
    waits_for = node.upstream if may_be_fixed_by_the_run else None
    return StandbyPlan("refuse", f"{what}, but {problem}", waits_for)


# ---------------------------------------------------------------- standbys


def _refuse_primary(
    topology: Topology,
    node: Node,
    fact: PgStateDict,
    upstream_fact: PgStateDict | None,
    cluster_system_identifier: str | None,
) -> StandbyPlan:
    """A standby host that holds a primary with real data: say which kind and what to do."""
    cluster = topology.cluster
    upstream = topology.upstream_of(node)
    drop = _drop_hint(cluster)
    found = f"{node.name} is {describe(fact, cluster)}"
    timeline = fact["timeline"]
    upstream_timeline = upstream_fact["timeline"] if upstream_fact else None
    if _same_cluster(fact, cluster_system_identifier) is False:
        reason = (
            f"{found} holding another cluster (system identifier {fact['system_identifier']},"
            f" the cluster's is {cluster_system_identifier}): refusing to replace its data. If it "
            f"is not needed, back it up and drop it on {node.name} ({drop}), then run the deploy "
            "again"
        )
    elif timeline is not None and upstream_timeline is not None and timeline > upstream_timeline:
        reason = (
            f"{found}, newer than its upstream {upstream.name} (timeline {upstream_timeline}): it "
            f"was promoted, probably by a failover. Refusing to clone over it. If {node.name} is "
            f"the primary now, make it the master in the inventory; if not, back it up and drop it "
            f"({drop}), then run the deploy again"
        )
    elif timeline is not None and upstream_timeline is not None and timeline < upstream_timeline:
        reason = (
            f"{found}, older than its upstream {upstream.name} (timeline {upstream_timeline}): it "
            f"looks like a former primary after a failover and may hold transactions "
            f"{upstream.name} never received. Refusing to clone over it: rewind it (pg_rewind), or "
            f"once its data is known to be unneeded drop it ({drop}), then run the deploy again"
        )
    elif not fact["running"]:
        reason = (
            f"{found}, where the inventory wants a standby of {upstream.name}; whether it was "
            f"ever used cannot be told while it is stopped: refusing to clone over it. Start it "
            f"(pg_ctlcluster {cluster.version} {cluster.name} start) and run the deploy again, or "
            f"if its data is not needed, back it up and drop it ({drop})"
        )
    else:
        reason = (
            f"{found} that holds data (not a never-used cluster), where the inventory wants a "
            f"standby of {upstream.name}: refusing to clone over it. If it should be the master, "
            f"fix the inventory; if its data is not needed, back it up and drop it ({drop}), then "
            "run the deploy again"
        )
    return StandbyPlan("refuse", reason)


def _clone(
    topology: Topology,
    node: Node,
    upstream_fact: PgStateDict | None,
    master_fact: PgStateDict | None,
    why: str,
) -> StandbyPlan:
    what = f"{node.name} {why}"
    if refusal := _blocked_by_upstream(topology, node, upstream_fact, master_fact, what):
        return refusal
    return StandbyPlan(
        "clone", f"{node.name} {why}: take a base backup from {node.upstream} (no data is lost)"
    )


def plan_standby(
    topology: Topology,
    node: Node,
    fact: PgStateDict | None,
    upstream_fact: PgStateDict | None,
    *,
    desired_conninfo: str,
    desired_settings: Mapping[str, str] | None = None,
    is_pristine: bool | None = None,
    master_fact: PgStateDict | None = None,
) -> StandbyPlan:
    """Decide what to do with the standby `node` (a cascade or a downstream).

    desired_conninfo: the primary_conninfo it must have (compared key by key).
    desired_settings: other standby settings as pg_settings shows them (restore_command, ...),
        compared with fact["settings"].
    is_pristine: the facts layer found nothing worth keeping in the data directory: it is empty,
        or holds a never-used cluster (only template0/template1/postgres, no roles of its own,
        nothing archived, timeline 1, not in recovery). None (the default) takes the fact's
        "pristine" key; unknown counts as not pristine.
    master_fact: the master's PgState when `node`'s upstream is not the master, to prove the
        upstream belongs to the same cluster.
    """
    if node.role == "master" or node.upstream is None:
        raise ValueError(f"{node.name} is the master: use plan_primary()")
    cluster = topology.cluster
    upstream = topology.upstream_of(node)
    state = server_state(fact)
    if is_pristine is None:
        is_pristine = bool(fact and fact["pristine"])
    if node.upstream == topology.master.name and master_fact is None:
        master_fact = upstream_fact
    cluster_system_identifier = _cluster_system_identifier(upstream_fact, master_fact)

    if fact is None:
        return StandbyPlan(
            "refuse", f"{node.name}: its PostgreSQL state could not be read: not touching it"
        )
    if redo := interrupted_clone(fact):
        return _clone(topology, node, upstream_fact, master_fact, redo)
    if state == "absent":
        return _clone(topology, node, upstream_fact, master_fact, f"is {describe(fact, cluster)}")
    if state == "unreadable":
        # No PG_VERSION either (the facts layer then reports in_recovery None): an empty
        # directory, e.g. what a failed pg_basebackup leaves after cleaning up.
        if is_pristine or fact["in_recovery"] is None:
            return _clone(
                topology, node, upstream_fact, master_fact,
                "has nothing worth keeping in its data directory (empty, or an interrupted base "
                "backup)",
            )
        return StandbyPlan(
            "refuse",
            f"{node.name}: cluster {cluster.version}/{cluster.name} is stopped and its pg_control "
            f"cannot be read, but the data directory {cluster.data_directory} is not empty: check "
            f"it by hand (an interrupted base backup can be removed with rm -rf "
            f"{cluster.data_directory}/*), then run the deploy again",
        )
    if state == "primary":
        if _pristine(fact, is_pristine):
            return _clone(
                topology, node, upstream_fact, master_fact,
                f"holds a never-used cluster {cluster.version}/{cluster.name} (the package's "
                "default), to be replaced",
            )
        return _refuse_primary(topology, node, fact, upstream_fact, cluster_system_identifier)

    # A standby: its data is part of some cluster's history, so it is never re-cloned here.
    if _same_cluster(fact, cluster_system_identifier) is False:
        return StandbyPlan(
            "refuse",
            f"{node.name} is {describe(fact, cluster)} of another cluster (system identifier "
            f"{fact['system_identifier']}, the cluster's is {cluster_system_identifier}): "
            f"refusing to replace its data. If it is not needed, drop it ({_drop_hint(cluster)}) "
            "and run the deploy again",
        )
    timeline = fact["timeline"]
    upstream_timeline = upstream_fact["timeline"] if upstream_fact else None
    if timeline is not None and upstream_timeline is not None and timeline > upstream_timeline:
        return StandbyPlan(
            "refuse",
            f"{node.name} is {describe(fact, cluster)}, newer than its upstream {upstream.name} "
            f"(timeline {upstream_timeline}): it followed another primary and cannot stream from "
            f"{upstream.name}. Find the primary on timeline {timeline} (pgcascade status) and fix "
            "the inventory",
        )
    differences = standby_differences(fact, desired_conninfo, desired_settings)
    if not differences:
        if fact["running"]:
            return StandbyPlan(
                "nothing", f"{node.name}: a running standby of {upstream.name} as configured"
            )
        note = ""
        if upstream_fact is None or not upstream_fact["running"]:
            note = (
                f" ({upstream.name} is down: it will replay its archive and connect when "
                f"{upstream.name} is back)"
            )
        return StandbyPlan(
            "start",
            f"{node.name}: a stopped standby of {upstream.name} as configured: start it{note}",
        )
    what = "; ".join(differences)
    if refusal := _blocked_by_upstream(
        topology, node, upstream_fact, master_fact, f"{node.name}: needs re-pointing ({what})"
    ):
        return refusal
    return StandbyPlan(
        "repoint",
        f"{node.name}: a standby of this cluster, but {what}: rewrite its standby settings and "
        "apply them (no clone)",
    )


# ---------------------------------------------------------------- the master


def pristine_hosts_of(facts_by_host: Mapping[str, PgStateDict | None]) -> frozenset[str]:
    """Hosts whose fact says "pristine" (a never-used cluster; None/absent means unknown: no),
    or that hold what an interrupted clone left (cloned again, like a never-used cluster)."""
    return frozenset(
        name for name, fact in facts_by_host.items()
        if fact and (fact["pristine"] is True or interrupted_clone(fact))
    )


def _other_primaries(
    topology: Topology,
    name: str,
    system_identifier: str | None,
    facts_by_host: Mapping[str, PgStateDict | None],
    pristine_hosts: Collection[str],
) -> list[str]:
    """Other hosts holding a primary of this cluster (same system identifier when known)."""
    return [
        n.name
        for n in topology.nodes
        if n.name != name
        and n.name not in pristine_hosts
        and server_state(facts_by_host.get(n.name)) == "primary"
        and _same_cluster(facts_by_host.get(n.name), system_identifier) is not False
    ]


def _newer_timelines(
    topology: Topology, name: str, fact: PgStateDict, facts_by_host: Mapping[str, PgStateDict | None]
) -> list[str]:
    """Other hosts of the same cluster on a newer timeline than `fact`'s.

    No host is skipped as pristine: a never-used cluster is on timeline 1, never newer.
    """
    timeline = fact["timeline"]
    if timeline is None:
        return []
    system_identifier = fact["system_identifier"]
    newer = []
    for other in topology.nodes:
        other_fact = facts_by_host.get(other.name)
        if other.name == name:
            continue
        if other_fact is None or server_state(other_fact) not in ("primary", "standby"):
            continue
        if _same_cluster(other_fact, system_identifier) is False:
            continue
        if timeline_or_zero(other_fact) > timeline:
            newer.append(other.name)
    return newer


def plan_primary(
    topology: Topology,
    node: Node,
    fact: PgStateDict | None,
    facts_by_host: Mapping[str, PgStateDict | None] | None = None,
    pristine_hosts: Collection[str] | None = None,
) -> PrimaryPlan:
    """Decide what to do with the inventory's master.

    facts_by_host: every host's PgState when known, to find a primary elsewhere after a
    failover. pristine_hosts: hosts holding a never-used cluster (default: from the facts'
    "pristine" key), ignored as primaries: on a lab built from one image they share the
    master's system identifier.
    """
    if node.role != "master":
        raise ValueError(f"{node.name} is not the master: use plan_standby()")
    cluster = topology.cluster
    facts_by_host = facts_by_host or {}
    if pristine_hosts is None:
        pristine_hosts = pristine_hosts_of(facts_by_host)
    if fact is None:
        return PrimaryPlan("refuse", f"{node.name}: its PostgreSQL state could not be read")
    state = server_state(fact)
    if state == "absent":
        return PrimaryPlan(
            "create", f"{node.name} (master) is {describe(fact, cluster)}: create the cluster"
        )
    if state == "unreadable":
        return PrimaryPlan(
            "refuse",
            f"{node.name} (master): cluster {cluster.version}/{cluster.name} is stopped and its "
            f"pg_control cannot be read: check {cluster.data_directory} by hand; pgcascade never "
            "initializes over an existing data directory",
        )
    system_identifier = fact["system_identifier"]
    if state == "standby":
        where = "running in recovery" if fact["running"] else "stopped with standby.signal"
        others = _other_primaries(
            topology, node.name, system_identifier, facts_by_host, pristine_hosts
        )
        # An older timeline cannot be where the master's recovery comes from.
        candidates = [
            name
            for name in others
            if timeline_or_zero(facts_by_host[name]) >= timeline_or_zero(fact)
        ]
        if candidates:
            found = "; ".join(f"{n} is {describe(facts_by_host[n], cluster)}" for n in candidates)
            fix = (
                f"make {candidates[0]} the master in the inventory (and re-point the others)"
                if len(candidates) == 1
                else "fence all but one primary, then make it the master in the inventory"
            )
        else:
            unknown = sorted(
                n.name for n in topology.nodes
                if n.name != node.name and n.name in facts_by_host and facts_by_host[n.name] is None
            )
            found = "no other host is a primary of this cluster" + (
                f" (could not read: {', '.join(unknown)})" if unknown else ""
            )
            fix = f"find the primary, or bring {node.name} out of recovery by hand"
        return PrimaryPlan(
            "refuse",
            f"{node.name}, the master in the inventory, is {where} (a standby) on timeline "
            f"{fact['timeline']}; {found}. A failover seems to have happened: {fix}. "
            "A deploy never promotes or demotes",
        )
    newer = _newer_timelines(topology, node.name, fact, facts_by_host)
    if newer:
        found = "; ".join(f"{n} is {describe(facts_by_host[n], cluster)}" for n in newer)
        return PrimaryPlan(
            "refuse",
            f"{node.name}, the master in the inventory, is {describe(fact, cluster)} but {found}: "
            f"a failover happened and {node.name} is a former primary (split-brain risk). Stop "
            f"{node.name} (pg_ctlcluster {cluster.version} {cluster.name} stop), make the new "
            f"primary the master in the inventory, then rewind (pg_rewind) or re-clone {node.name}",
        )
    if fact["running"]:
        return PrimaryPlan("nothing", f"{node.name}: the running primary")
    return PrimaryPlan("start", f"{node.name}: the primary, stopped: start it")


# ---------------------------------------------------------------- inventory vs reality


def check_cluster_roles(
    topology: Topology,
    facts_by_host: Mapping[str, PgStateDict | None],
    pristine_hosts: Collection[str] | None = None,
    include_drift: bool = True,
) -> list[str]:
    """Where reality disagrees with the inventory's roles, in words (empty when it agrees).

    include_drift=False leaves out what a deploy repairs by itself (a standby streaming from
    the wrong upstream): the deploy's preflight only stops on what it must not "fix".

    Hosts that could not be read, or hold no cluster yet, are skipped (they disagree with
    nothing); `pristine_hosts` (never-used clusters about to be cloned; default: from the
    facts' "pristine" key) too.
    """
    if pristine_hosts is None:
        pristine_hosts = pristine_hosts_of(facts_by_host)
    cluster = topology.cluster
    master = topology.master
    master_fact = facts_by_host.get(master.name)
    master_state = server_state(master_fact)
    system_identifier = _cluster_system_identifier(None, master_fact)
    master_timeline = (
        master_fact["timeline"] if master_fact is not None and master_state in ("primary", "standby") else None
    )
    problems = []

    if master_state in ("primary", "standby"):
        master_plan = plan_primary(topology, master, master_fact, facts_by_host, pristine_hosts)
        if master_plan.action == "refuse":
            problems.append(master_plan.reason)

    if master_state in ("absent", "unreadable"):
        holders = [n for n in topology.nodes if n.name != master.name and n.name not in pristine_hosts
                   and server_state(facts_by_host.get(n.name)) in ("primary", "standby")]
        if holders:  # a deploy would make an empty master beside them
            found = "; ".join(f"{n.name} is {describe(facts_by_host.get(n.name), cluster)}" for n in holders)
            problems.append(
                f"{master.name}, the master in the inventory, is {describe(master_fact, cluster)}, but {found}: "
                "the master's data is gone and a deploy never makes an empty master beside standbys that hold "
                "the cluster. Make the host with the newest data the master in the inventory (and re-point the "
                "others), or drop those clusters if their data is not needed")

    running_primaries = []
    if master_fact is not None and master_state == "primary" and master_fact["running"]:
        running_primaries.append(master.name)
    for node in topology.nodes:
        if node.role == "master" or node.name in pristine_hosts:
            continue
        fact = facts_by_host.get(node.name)
        if fact is None:
            continue
        state = server_state(fact)
        if state not in ("primary", "standby"):
            continue
        label = f"{node.name} ({node.role}, standby of {node.upstream} in the inventory)"
        if _same_cluster(fact, system_identifier) is False:
            problems.append(
                f"{label} is {describe(fact, cluster)} of another cluster (system identifier "
                f"{fact['system_identifier']}, the master {master.name} has "
                f"{system_identifier})"
            )
            continue
        timeline = fact["timeline"]
        newer = timeline is not None and master_timeline is not None and timeline > master_timeline
        if state == "primary":
            if fact["running"]:
                running_primaries.append(node.name)
            hint = " (promoted by a failover?)" if newer else ""
            problems.append(f"{label} is {describe(fact, cluster)}, not a standby{hint}")
            continue
        if newer:
            problems.append(
                f"{label} is on timeline {timeline}, newer than the master {master.name} "
                f"(timeline {master_timeline}): it follows another primary"
            )
        upstream = topology.upstream_of(node)
        receiver = fact["wal_receiver"]
        sender_host = receiver["sender_host"] if receiver else None
        sender_port = receiver["sender_port"] if receiver else None
        wrong_port = sender_port not in (None, cluster.port)
        if include_drift and sender_host and (sender_host != upstream.address or wrong_port):
            sender = f"{sender_host}:{sender_port}" if sender_port is not None else sender_host
            problems.append(
                f"{label} streams from {sender}, not from {upstream.name} "
                f"({upstream.address}:{cluster.port}): re-point it (run the deploy)"
            )
    if len(running_primaries) > 1:
        problems.append(
            f"{', '.join(running_primaries)}: {len(running_primaries)} running primaries of the "
            "same cluster (split-brain risk): stop every one but the real primary before anything "
            "else"
        )
    return problems


# ---------------------------------------------------------------- applying settings


def restart_or_reload(
    changed_settings: set[str], pending_restart: list[str], restart_contexts: set[str]
) -> str:
    """"restart", "reload" or "nothing" after a settings change; never both.

    restart_contexts: names of the settings that only take effect at server start
    (pg_settings.context = 'postmaster'). A restart also applies what a reload would, and
    pending_restart means an earlier change still waits for one.
    """
    changed = {name.lower() for name in changed_settings}
    if pending_restart or changed & {name.lower() for name in restart_contexts}:
        return "restart"
    if changed:
        return "reload"
    return "nothing"
