"""The standing check: can the cluster fail over right now? Each heartbeat node's ha-watch writes
its own view to /run/pgcascade/can-fail-over.json every check; `tasks.status` reads both
(`python3 -m hostrules.canfailover` prints this host's) and shows one line:
"can fail over: yes" or "can fail over: no, because ...".

On the node holding the resources: heartbeat runs and says it holds them, it sees its peer, and
the peer is a synchronous standby streaming from it and caught up. On the other node: heartbeat
runs, sees its peer, claims no resources, a witness answers (may-promote, which runs there, needs
one), and the local PostgreSQL is a standby streaming from the primary.
"""
from __future__ import annotations

import json
import sys
from typing import Dict, List, Optional

from hostrules import lsn as lsnlib
from hostrules.nodestate import NodeState

CAUGHT_UP_BYTES = 16 * 1024 * 1024  # a synchronous standby further behind than this is not caught up (replay)


def evaluate(self_name: str, peer_name: str, local: NodeState, flag: bool, heartbeat_state: str, rscstatus: str,
             peer_status: str, witnesses: Dict[str, NodeState], peer: Optional[NodeState],
             peer_address: str, holds: Optional[bool] = None) -> dict:
    """holds: whether heartbeat says this node holds the resource group (watch.holds_group; None:
    it does not say)."""
    reasons: List[str] = []
    if heartbeat_state != "active":
        reasons.append(f"heartbeat is {heartbeat_state or 'not running'} on {self_name}")
    elif peer_status not in ("active", "up"):
        reasons.append(f"heartbeat on {self_name} sees {peer_name} as {peer_status or 'unknown'}")
    unreachable = sorted(n for n, s in witnesses.items() if s.state == "unreachable")
    primary = local.state == "primary" and flag
    # may-promote runs on the standby and asks the witnesses from there: what the primary reaches
    # says nothing about a failover (a link cut between the master and the downstream is none).
    if not primary and witnesses and len(unreachable) == len(witnesses):
        reasons.append(f"no witness answers {self_name} ({', '.join(unreachable)}): may-promote needs one")
    if primary:
        if heartbeat_state == "active" and holds is not True:
            reasons.append(f"heartbeat on {self_name} says it holds '{rscstatus or 'unknown'}' resources while "
                           "it is the primary")
        row = next((r for r in local.replication if r.client_addr == peer_address), None)
        if row is None or row.state != "streaming":
            reasons.append(f"{peer_name} does not stream from {self_name}")
        elif row.sync_state not in ("sync", "quorum"):
            reasons.append(f"{peer_name} streams from {self_name} but is {row.sync_state}, not synchronous")
        elif peer is not None and peer.lsn is not None and local.lsn is not None and local.lsn - peer.lsn > CAUGHT_UP_BYTES:
            reasons.append(f"{peer_name} is {(local.lsn - peer.lsn) // 1024 // 1024} MB behind {self_name}")
    elif local.state == "standby":
        if heartbeat_state == "active" and holds is not False:
            reasons.append(f"heartbeat on {self_name} claims the resources ({rscstatus}) but {self_name} is a standby")
        if not local.streaming_from:
            reasons.append(f"{self_name} is a standby that does not stream")
    elif local.state != "primary":
        reasons.append(f"PostgreSQL on {self_name} is {local.state}")
    return {"node": self_name, "role": "primary" if local.state == "primary" else local.state,
            "can_fail_over": not reasons, "reasons": reasons, "lsn": lsnlib.format(local.lsn)}


def status_line(views: List[Optional[dict]], names: List[str]) -> str:
    """One line from the heartbeat nodes' views (None: a view that could not be read)."""
    reasons = []
    for name, view in zip(names, views):
        if view is None:
            reasons.append(f"no ha-watch report from {name} (is pgcascade-ha-watch running?)")
        else:
            reasons.extend(view.get("reasons") or [])
    return "can fail over: yes" if not reasons else "can fail over: no, because " + "; ".join(reasons)


def main() -> int:
    from hostrules import config as configlib

    c = configlib.load()
    try:
        with open(f"{c.runtime_directory}/can-fail-over.json") as f:
            print(json.dumps(json.load(f), sort_keys=True))
    except (OSError, ValueError):
        print("{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
