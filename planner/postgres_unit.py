"""Stopping the PostgreSQL unit: the one rule the operations and the failover scripts share."""
from __future__ import annotations

# A stop that cancels the unit's start job (a host just booted, its standby still starting) makes
# systemd send SIGTERM to every process of the server at once, not only to the postmaster
# (KillMode=control-group), and PostgreSQL 15 can then stay "shutting down" for good: a
# background writer the postmaster started again after the signal is never told to exit
# (seen on the lab). A stop therefore first lets a start in progress end, for at most this long.
START_SETTLE_S = 60


def settled_stop(unit: str, settle_s: int = START_SETTLE_S) -> str:
    """A shell command: wait while `unit` is activating (at most `settle_s`), then stop it."""
    return (f"end=$(($(date +%s) + {settle_s})); "
            f"while [ \"$(systemctl is-active {unit})\" = activating ] && [ \"$(date +%s)\" -lt \"$end\" ]; "
            f"do sleep 0.2; done; systemctl stop {unit}")
