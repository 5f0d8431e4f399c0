"""May this standby be promoted? (may-promote, run by hapostgres before a promotion)

heartbeat only says that the peer's heartbeats stopped: that is also what a broken link, or this
host cut off from the network, looks like. And the peer being gone is not enough: the standby
must hold every commit the master acknowledged. So, in order:

  1. this node is a running standby;
  2. the peer's PostgreSQL is silent from here, from at least one witness (a cluster host that
     runs no heartbeat), and no witness still reaches it (with no witness answering at all, this
     host may be the isolated one);
  3. no witness is already a primary of this cluster (one on a timeline that branched off this
     standby's before what this standby received, a DR test's, does not count);
  4. the newest synchronous-set record (this host's and the witnesses' copies) names this standby
     and no other member of the set that answers received more WAL; or, when it does not name it
     (a cascade that came back asynchronous or cut off), every member of the set answers and none
     received more WAL than this standby: then no acknowledged commit can be lost.

Reason codes (stable: tests, status and the journal use them): promote: synchronous-standby,
most-advanced, no-record; refuse: not-a-standby, peer-answers, witness-reaches-peer,
no-witness, witness-is-primary, stale-candidate, sync-member-unreachable, other-cluster.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional

from hostrules import lsn as lsnlib
from hostrules import syncset
from hostrules.nodestate import NodeState
from hostrules.timeline import switch_point
from hostrules.verdict import Verdict


class Witness(NamedTuple):
    name: str
    probe: str  # does the peer's PostgreSQL answer from the witness? answers | silent | unknown | unreachable
    state: NodeState  # the witness's own node (unreachable when ssh failed)
    record: Optional[dict] = None  # its copy of the synchronous-set record


def _branch_behind(other: NodeState, own: NodeState) -> bool:
    point = switch_point(other.history, own.timeline) if other.timeline > own.timeline else None
    return point is not None and own.lsn is not None and own.lsn > point


def refuse(reason: str, message: str) -> Verdict:
    return Verdict("refuse", reason, message)


def _position(state: NodeState) -> str:
    return lsnlib.format(state.lsn)


def decide(own: NodeState, own_name: str, peer_name: str, peer_from_here: str,
           witnesses: List[Witness], own_record: Optional[dict]) -> Verdict:
    if own.state != "standby":
        return refuse("not-a-standby", f"the local PostgreSQL is '{own.line()}', not a standby")
    if peer_from_here != "silent":
        return refuse("peer-answers", f"{peer_name}'s PostgreSQL is '{peer_from_here}' from here: "
                                      "only heartbeat's link is down")
    vetoes = [w.name for w in witnesses if w.probe == "answers"]
    if vetoes:
        return refuse("witness-reaches-peer", f"{' '.join(vetoes)} can still reach {peer_name}'s PostgreSQL: "
                                              "it is alive, this host is cut off from it")
    confirmed = [w.name for w in witnesses if w.probe == "silent"]
    if not confirmed:
        names = " ".join(w.name for w in witnesses) or "none"
        return refuse("no-witness", f"no witness confirms that {peer_name}'s PostgreSQL is gone "
                                    f"(witnesses: {names}): this host may be the isolated one")
    same = [w for w in witnesses if w.state.system_identifier == own.system_identifier]
    # A primary elsewhere that branched off this standby's timeline at a point this standby went
    # beyond (a downstream promoted by hand for a DR test) is not the cluster's primary.
    primaries = [w for w in same if w.state.state == "primary" and not _branch_behind(w.state, own)]
    if primaries:
        w = primaries[0]
        return refuse("witness-is-primary", f"{w.name} is already a primary of this cluster (timeline "
                                            f"{w.state.timeline}): not promoting a second one")
    gone = f"{peer_name}'s PostgreSQL is silent from here and from {' '.join(confirmed)}"
    record = syncset.newest([own_record, *(w.record for w in witnesses)])
    if record and own.system_identifier and record.get("system_identifier") not in (None, "", own.system_identifier):
        return refuse("other-cluster", f"the synchronous-set record (generation {record['generation']}) is of "
                                       f"another cluster ({record.get('system_identifier')}): rewrite it from the primary")
    by_app = {w.state.application_name: w for w in same if w.state.application_name}
    ahead = [w for w in same if w.state.lsn is not None and own.lsn is not None and w.state.lsn > own.lsn
             and w.state.state == "standby"]
    if record is None:
        if ahead:
            w = max(ahead, key=lambda x: x.state.lsn or 0)
            return refuse("stale-candidate", f"{gone}, but there is no synchronous-set record and {w.name} received "
                                             f"more WAL ({_position(w.state)}) than this standby ({_position(own)})")
        return Verdict("promote", "no-record", f"agreed: {gone}; no synchronous-set record, and no witness "
                                               f"received more WAL than this standby ({_position(own)})")
    members = record.get("synchronous") or []
    generation = f"generation {record['generation']}, {record.get('primary')} waits for {record.get('setting') or 'nobody'}"
    if own.application_name and own.application_name in members:
        behind = [w for w in ahead if w.state.application_name in members]
        if behind:
            w = max(behind, key=lambda x: x.state.lsn or 0)
            return refuse("stale-candidate", f"{gone}, but {w.name}, also synchronous ({generation}), received "
                                             f"more WAL ({_position(w.state)}) than this standby ({_position(own)})")
        return Verdict("promote", "synchronous-standby",
                       f"agreed: {gone}; this standby ({own.application_name}, {_position(own)}, timeline "
                       f"{own.timeline}) is synchronous ({generation})")
    missing = [m for m in members if m not in by_app or by_app[m].state.state != "standby"]
    if missing:
        return refuse("sync-member-unreachable",
                      f"{gone}, but this standby ({own.application_name or own_name}) is not synchronous "
                      f"({generation}) and {', '.join(missing)} does not answer as a standby: it may hold "
                      "acknowledged commits this standby lacks")
    if ahead:
        w = max(ahead, key=lambda x: x.state.lsn or 0)
        return refuse("stale-candidate",
                      f"{gone}, but this standby ({own.application_name or own_name}) is not synchronous "
                      f"({generation}) and {w.name} received more WAL ({_position(w.state)}) than this "
                      f"standby ({_position(own)}): promoting here would lose acknowledged commits")
    return Verdict("promote", "most-advanced",
                   f"agreed: {gone}; this standby is not synchronous ({generation}) but no member of the "
                   f"set received more WAL than it ({_position(own)}): nothing acknowledged is lost")
