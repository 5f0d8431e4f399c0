"""Does a resource stop (heartbeat's hapostgres stop, and the VIP's) release a running primary?

heartbeat stops its resources when it is stopped (an admin, a reboot: a systemd stop job), when it
hands them over (hb_standby), and when it restarts: after a partition heals it restarts itself on
both nodes, and a deploy restarts it for a changed configuration. A stop *job* means the resources
are to go to the peer: the primary is stopped (fast: nothing acknowledged is lost) so that the
peer's may-promote finds it silent. Otherwise (heartbeat restarting, or asked to hand over) a
healthy primary that nobody replaced keeps running with its VIP: a link blip or a deploy rerun
causes no outage, and ha-watch asks heartbeat for the resources again if it does not give them back.
A primary whose peer is not a standby that could take over (dead, or a former primary) is kept too.
While ha-watch hands the resources over (it found its flagged server hung or down, and queued
its stop), the resource stops release at once: reading a hung server would only delay the peer.
"""
from __future__ import annotations

import os
import time
from typing import Optional

from hostrules.nodestate import NodeState
from hostrules.verdict import Verdict

HAND_OVER_FRESH = 30.0  # seconds a hand-over marker of ha-watch's counts (its hand-over takes a few)


def decide(local: Optional[NodeState], flag: bool, heartbeat_stop_job: bool, deposition: Optional[Verdict],
           peer: Optional[NodeState] = None, peer_name: str = "the peer", handing_over: bool = False) -> Verdict:
    """`local` is not read (None) while `handing_over`."""
    if handing_over or local is None:
        return Verdict("release", "handing-over",
                       "ha-watch is handing the resources over (its PostgreSQL hung or down; the stop is queued)")
    if local.state != "primary":
        return Verdict("release", "not-a-primary", f"PostgreSQL is '{local.line()}': nothing to keep")
    if deposition is not None and deposition.decision == "fence":
        return Verdict("release", "former-primary", deposition.message)
    if peer is not None and not (peer.state == "standby" and peer.system_identifier == local.system_identifier):
        return Verdict("keep", "peer-cannot-take-over",
                       f"{peer_name} is '{peer.line()}', not a standby that could take over: this primary, the "
                       "newest, keeps running")
    if heartbeat_stop_job:
        return Verdict("release", "heartbeat-stopping",
                       "heartbeat is being stopped (a stop job: an admin or a shutdown): the resources go to the peer")
    if not flag:
        return Verdict("release", "not-flagged", "hapostgres has not made this host the primary (no primary flag)")
    return Verdict("keep", "heartbeat-restarting",
                   "heartbeat releases the resources without being stopped (it restarts, or was asked to hand "
                   "over) while this is the newest primary: keeping it and the VIP, nobody replaced it")


def handing_over(marker: str, now: Optional[float] = None) -> bool:
    """Did ha-watch write its hand-over marker within HAND_OVER_FRESH seconds?"""
    try:
        age = (time.time() if now is None else now) - os.stat(marker).st_mtime
    except OSError:
        return False
    return 0 <= age < HAND_OVER_FRESH


def heartbeat_stop_job() -> bool:
    """A systemd stop job for heartbeat is queued or running (an admin's stop, a shutdown)."""
    import subprocess

    try:
        out = subprocess.run(["systemctl", "list-jobs", "--no-legend", "heartbeat.service"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=5).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return True  # cannot tell: the documented behaviour, the resources go
    words = (line.split() for line in out.splitlines())
    return any(len(w) >= 3 and w[1] == "heartbeat.service" and w[2] == "stop" for w in words)


def read_and_decide(c, flag: bool) -> Verdict:
    from hostrules import hostio, timeline
    from hostrules.nodestate import read_local

    # Without the primary flag the resources are being handed over (ha-watch, the switchover
    # task) or were never given: a hung server need not hold the hand-over up for long.
    local = read_local(c.bin_directory, c.data_directory, c.port, c.socket_directory, timeout=5 if flag else 1.5)
    deposition, others = None, {}
    if local.state == "primary":
        others = hostio.states_of(c, [h.name for h in c.others()])
        deposition = timeline.successor_verdict(local, others, {h.name: h.address for h in c.hosts})
    return decide(local, flag, heartbeat_stop_job(), deposition,
                  others.get(c.ha_peer) if c.ha_peer else None, c.ha_peer or "the peer")


def main() -> int:
    """Prints 'keep' or 'release', then the reason and the message (hapostgres stop, pgcascade-vip stop)."""
    from hostrules import config as configlib
    from hostrules import hostio

    c = configlib.load()
    hostio.ensure_ssh_directory(c)
    flag = os.path.exists(c.primary_flag)
    if handing_over(c.hand_over_marker):
        verdict = decide(None, flag, False, None, handing_over=True)
    else:
        verdict = read_and_decide(c, flag)
    print(f"{verdict.decision} {verdict.reason} {verdict.message}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
