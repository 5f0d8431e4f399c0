"""heartbeat's delayed hand-over after a failed resource start, found so that ha-watch disarms it
(pure, stdlib only; ha-watch reads /proc and kills).

When a resource of the group fails to start (hapostgres start refused: may-promote said no),
heartbeat's ResourceManager gives the group up and leaves a background subshell behind:
`(sleep 30; hb_standby foreign|local) &`. Thirty seconds later it asks the cluster to move the
group, whatever happened meanwhile. heartbeat.service stops with KillMode=process, so a heartbeat
restart does not kill it. pgcascade retries promotions itself (ha-watch, retry-promotion), so this
request is never wanted, and on the lab it did harm: it fired on a node that had become the primary
since (a retried promotion), which asked to hand its resources away; heartbeat was then restarted
mid-way and the peer's heartbeat stayed in "standby in progress" for an hour, ignoring every later
request, and the cluster could not fail over.

    armed(processes) -> the pids to kill: each waiting subshell first, then its sleep
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Sequence

RESOURCE_MANAGER = "/usr/share/heartbeat/ResourceManager"
FUSE = ("sleep", "30")  # ResourceManager's `(sleep 30; $STANDBY ...) &`; its other sleep is `sleep 1`
SCAN_EVERY = 5.0  # seconds between two scans of /proc: well within the 30 s fuse


class Process(NamedTuple):
    ppid: int
    argv: Sequence[str]


def _is_resource_manager(process: Process) -> bool:
    return any(arg == RESOURCE_MANAGER or arg.endswith("/ResourceManager") for arg in process.argv[:3])


def armed(processes: Dict[int, Process]) -> List[int]:
    """The subshells waiting to run hb_standby and their sleeps (subshell first: killed, it never
    runs hb_standby; the sleep then has nothing to wake)."""
    pids: List[int] = []
    for pid, process in sorted(processes.items()):
        if tuple(process.argv) != FUSE:
            continue
        parent = processes.get(process.ppid)
        if parent is not None and _is_resource_manager(parent):
            pids.extend([process.ppid, pid])
    return pids
