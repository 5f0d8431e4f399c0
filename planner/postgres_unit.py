"""The PostgreSQL unit: how it is stopped (the one rule the operations and the failover scripts
share) and how a missing cluster is made."""
from __future__ import annotations

import shlex

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


def create_cluster(version: int, cluster: str, port: int, config_directory: str, data_directory: str) -> str:
    """A shell command: the Debian cluster made and started (pg_createcluster), where the package
    made none (create_main_cluster = false) or it was dropped. Never over a data directory that
    holds files; configuration files left without a postgresql.conf (an earlier run's managed
    files) are moved aside, since pg_createcluster refuses an existing configuration directory."""
    conf, data = shlex.quote(config_directory), shlex.quote(data_directory)
    refusal = (f"{data_directory} holds files but {config_directory}/postgresql.conf is missing: restore the "
               "configuration, or move the data directory away, then run the deploy again")
    return (f"if [ -d {data} ] && [ -n \"$(ls -A {data})\" ]; then echo {shlex.quote(refusal)} >&2; "
            "exit 1; fi; "
            f"if [ -d {conf} ]; then mv {conf} {conf}.pgcascade-moved-$(date +%Y%m%d%H%M%S); fi; "
            f"pg_createcluster --port {port} -d {data} --start {version} {shlex.quote(cluster)}")
