"""Timelines compared with their history: does a newer timeline elsewhere depose this primary?

A host of the same cluster (system identifier) on a newer timeline means a promotion happened.
It is this primary's successor only if it branched off this primary's timeline at a point this
primary's acknowledged commits do not go beyond. A standby promoted by hand for a DR test branches
off while the master goes on committing with its synchronous standby: that standby, still
streaming from this primary on its timeline and past the switch point, proves the branch is not
a successor, so the master keeps running.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from hostrules import lsn as lsnlib
from hostrules.nodestate import NodeState
from hostrules.verdict import Verdict


def switch_point(history: List[tuple], timeline: int) -> Optional[int]:
    """Where a history left `timeline` (None when `timeline` is not one of its ancestors)."""
    for parent, point in history:
        if parent == timeline:
            return point
    return None


def successor_verdict(own: NodeState, others: Dict[str, NodeState], addresses: Dict[str, str]) -> Verdict:
    """keep | fence, for a running primary `own` among the other hosts' states.

    addresses: host name -> address (to tell which host a pg_stat_replication row is).
    """
    newer = {name: s for name, s in others.items()
             if s.system_identifier and s.system_identifier == own.system_identifier and s.timeline > own.timeline}
    if not newer:
        return Verdict("keep", "newest-timeline", f"no other host knows a timeline newer than {own.timeline}")
    by_address = {address: name for name, address in addresses.items()}
    for name, other in sorted(newer.items()):
        where = f"{name} ({other.state}, timeline {other.timeline})"
        if not other.history:
            return Verdict("fence", "newer-timeline",
                           f"{where} knows a newer timeline than {own.timeline} (no history to compare): "
                           "this is a former primary")
        point = switch_point(other.history, own.timeline)
        if point is None:
            continue  # another line of descent: not from this primary's timeline
        # A synchronous standby still streaming from this primary up to or past the switch point, and not
        # on the new timeline itself, holds commits the branch never had: the branch is no successor.
        for row in own.replication:
            holder = by_address.get(row.client_addr or "", row.client_addr or row.application_name)
            if (row.sync_state in ("sync", "quorum") and row.state == "streaming" and row.flush_lsn is not None
                    and row.flush_lsn >= point and holder not in newer):
                return Verdict("keep", "unrelated-branch",
                               f"{where} branched off timeline {own.timeline} at {lsnlib.format(point)}, but the "
                               f"synchronous standby {holder} still streams from this primary up to "
                               f"{lsnlib.format(row.flush_lsn)}: a promotion elsewhere (e.g. a DR test), not a "
                               "successor; keeping this primary")
        return Verdict("fence", "successor-timeline",
                       f"{where} branched off timeline {own.timeline} at {lsnlib.format(point)} and no "
                       "synchronous standby of this primary went beyond it: this is a former primary")
    return Verdict("keep", "unrelated-timeline",
                   f"{', '.join(sorted(newer))} on newer timelines that do not descend from timeline {own.timeline}")
