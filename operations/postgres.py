"""PostgreSQL server operations: the replication role, applying configuration, running state."""
from __future__ import annotations

import math
import os
import shlex
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pyinfra import host, inventory
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.facts.files import File

from facts.config_state import PgConfigState
from facts.pg_state import PgState
from operations.private_files import ensure_private_file
from operations.run_snapshot import read_fact
from planner.apply_config import config_action
from planner.model import Topology
from planner.pgstate import PgStateDict
from planner.postgres_unit import create_cluster, settled_stop
from planner.registry import primary_restart_pending
from planner.scram import scram_matches, scram_verifier
from planner.standby_plan import replaced_by_clone

AS_POSTGRES = {"_sudo": True, "_sudo_user": "postgres"}
ROLE_SQL_PATH = "/var/lib/postgresql/.pgcascade-role.sql"
# What pg_rewind needs on its source server, short of superuser (PostgreSQL's documentation).
REWIND_FUNCTIONS = ("pg_catalog.pg_ls_dir(text, boolean, boolean)", "pg_catalog.pg_stat_file(text, boolean)",
                    "pg_catalog.pg_read_binary_file(text)",
                    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)")


def pg_state(host_obj: Host, version: int, cluster: str, port: int, *, roles: Iterable[str] = (),
             settings: Iterable[str] = ()) -> PgStateDict:
    """The host's live PgState of one cluster, read as the postgres OS user (inside an operation:
    at execute time)."""
    asked: dict[str, Any] = {}
    if roles:
        asked["roles"] = list(roles)
    if settings:
        asked["settings"] = list(settings)
    return read_fact(host_obj, PgState, version=version, cluster=cluster, port=port, **asked, **AS_POSTGRES)


def pg_states(topology: Topology, names: Iterable[str] | None = None, *, settings: Iterable[str] = (),
              unread: Collection[str] = (), unreadable_as_none: bool = False) -> dict[str, PgStateDict | None]:
    """Each named host's live PgState of the cluster (default: every PostgreSQL host), in that order.

    unread: hosts not to read (known to be unreachable): None. unreadable_as_none: a host whose
    fact cannot be read is None (the planner decides what that means) instead of an error.
    """
    c = topology.cluster
    states: dict[str, PgStateDict | None] = {}
    for name in [n.name for n in topology.nodes] if names is None else names:
        if name in unread:
            states[name] = None
            continue
        try:
            states[name] = pg_state(inventory.get_host(name), c.version, c.name, c.port, settings=settings)
        except Exception:
            if not unreadable_as_none:
                raise
            states[name] = None
    return states


def unit(version: int, cluster: str) -> str:
    return f"postgresql@{version}-{cluster}"


def stop_unit(version: int, cluster: str) -> StringCommand:
    """Stop the server, once a start in progress has ended (planner.postgres_unit)."""
    return StringCommand(settled_stop(unit(version, cluster)))


def poll_until(condition: str, seconds: float, failure: str, interval: float = 0.2,
               required: bool = True) -> StringCommand:
    """A deadline, never a bare sleep: the shell `condition` every `interval` s until it holds;
    once `seconds` of wall-clock time have passed, `failure` on stderr and exit 1 (exit 0 when
    not `required`: go on anyway). The deadline is the clock's, not a count of tries: a slow
    condition does not stretch it. One level of quoting in `condition`: pyinfra quotes the whole
    command for the remote shell."""
    limit = max(1, math.ceil(seconds))
    return StringCommand(f"cd / && end=$(($(date +%s) + {limit})); while :; do {condition} && exit 0; "
                         f"[ \"$(date +%s)\" -ge \"$end\" ] && break; sleep {interval}; done; "
                         f"echo {shlex.quote(failure)} >&2; exit {1 if required else 0}")


def wait_ready(port: int, seconds: int = 60) -> StringCommand:
    """Poll until the server accepts connections."""
    return poll_until(f"runuser -u postgres -- pg_isready -q -p {port}", seconds,
                      f"PostgreSQL on port {port} not ready after {seconds} s")


def streaming(port: int) -> str:
    """A shell condition for poll_until: this server's WAL receiver streams."""
    return (f"test \"$(runuser -u postgres -- psql -XAtq -p {port} "
            f"-c 'select status from pg_stat_wal_receiver')\" = streaming")


def still_a_standby(port: int) -> StringCommand:
    """Fails unless the server is in recovery right now: the facts a standby's restart was decided
    on are seconds old, and a promotion meanwhile (heartbeat's failover) makes it the primary,
    whose restart would be an outage."""
    return StringCommand(
        "cd / && test \"$(runuser -u postgres -- psql -XAtq -p", str(port), "-c 'select pg_is_in_recovery()')\" = t",
        "|| { echo 'no longer a standby (promoted since the facts were read): not restarting it' >&2; exit 1; }")


def psql(port: int, *statements: str) -> StringCommand:
    """psql as postgres, one transaction per statement (ALTER SYSTEM refuses a transaction block)."""
    args = []
    for statement in statements:
        args += ["-c", f"'{statement}'"]
    return StringCommand("cd", "/", "&&", "runuser", "-u", "postgres", "--", "psql", "-X", "-q",
                         "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", "postgres", *args)


@operation()
def ensure_cluster_exists(version: int, cluster: str, port: int, config_directory: str, data_directory: str):
    """
    The Debian cluster exists and runs: made (pg_createcluster --start) where the package made
    none (create_main_cluster = false) or it was dropped, never over a data directory holding
    files. A standby's new cluster is never used: its tier clones over it.

    + version: PostgreSQL major version
    + cluster: cluster name
    + port: its port
    + config_directory: /etc/postgresql/VERSION/CLUSTER
    + data_directory: its data directory
    """
    if read_fact(host, File, path=f"{config_directory}/postgresql.conf"):
        host.noop(f"cluster {version}/{cluster} exists")
        return
    host.log(f"create: {config_directory}/postgresql.conf is missing: pg_createcluster {version} {cluster}")
    yield create_cluster(version, cluster, port, config_directory, data_directory)


def planned_config_action(host_obj: Host, version: int, cluster: str, port: int, config_state: Mapping,
                          is_standby: bool) -> tuple[str, str]:
    """config_action for this host's PgConfigState, knowing whether the standby tier replaces its cluster."""
    replaced = is_standby and replaced_by_clone(True, pg_state(host_obj, version, cluster, port))
    return config_action(config_state, replaced_by_clone=replaced)


@operation()
def ensure_config_applied(version: int, cluster: str, port: int, files: list[str], is_standby: bool = False):
    """
    The running server uses what its files say: reload or restart, decided from the facts.

    + version: PostgreSQL major version
    + cluster: cluster name
    + port: its port
    + files: the managed configuration files (their change time is compared with the last load)
    + is_standby: the inventory has this host as a standby (a never-used cluster there is left
      alone: the standby tier clones over it)
    """
    state = read_fact(host, PgConfigState, port=port, files=files, **AS_POSTGRES)
    action, reason = planned_config_action(host, version, cluster, port, state, is_standby)
    if action == "refuse":
        raise OperationError(f"{host.name}: {reason}")
    if action == "nothing":
        host.noop(reason)
        return
    if action == "restart":
        needs = sorted(set(state["unapplied"]) | set(state["pending_restart"]))
        pending = primary_restart_pending(state.get("in_recovery"), needs)
        if pending and pg_state(host, version, cluster, port)["pristine"]:
            pending = primary_restart_pending(state.get("in_recovery"), needs, pristine=True)
        if pending:  # never an implicit outage: the run's last step fails naming it
            host.noop(f"PENDING: {pending}")
            if state["files_mtime"] > (state["conf_load_time"] or 0):
                yield StringCommand("systemctl", "reload", unit(version, cluster))  # the rest applies now
            return
    host.noop(f"{action}: {reason}")  # says why, in the output, before acting
    if action == "restart" and state.get("in_recovery"):
        yield still_a_standby(port)
    yield StringCommand("systemctl", action, unit(version, cluster))
    if action == "restart":
        yield wait_ready(port)


@operation()
def ensure_replication_role(version: int, cluster: str, port: int, role: str, password: str):
    """
    The replication role exists with REPLICATION LOGIN, pg_read_all_stats and this password (SCRAM).

    Compares the stored SCRAM verifier with the password, so an unchanged password changes
    nothing. The SQL carries a verifier, never the password, and goes through a 0600 file, not argv.

    + version: PostgreSQL major version
    + cluster: cluster name
    + port: its port
    + role: role name
    + password: its password (never printed)
    """
    fact = pg_state(host, version, cluster, port, roles=[role])
    current = (fact["roles"] or {}).get(role)
    if (current and current["replication"] and current["login"] and current["reads_all_stats"]
            and current["can_rewind"] and scram_matches(password, current["password"])):
        host.noop(f"role {role} has REPLICATION LOGIN, pg_read_all_stats, pg_rewind's functions and the wanted password")
        return
    if fact["running"] and fact["in_recovery"]:
        raise OperationError(f"{host.name}: is a standby (in recovery): the role is created on the master")
    verb = "ALTER" if current else "CREATE"
    # synchronous_commit = local: the master's synchronous standby may not exist yet.
    sql = ("SET synchronous_commit = local;\n"
           f"{verb} ROLE {role} WITH REPLICATION LOGIN PASSWORD '{scram_verifier(password, os.urandom(16))}';\n"
           # The monitoring script reads every host's pg_stat_replication as this role.
           f"GRANT pg_read_all_stats TO {role};\n"
           # pg_rewind (rejoin of a former master) reads the new master's files as this role.
           + "".join(f"GRANT EXECUTE ON FUNCTION {function} TO {role};\n" for function in REWIND_FUNCTIONS))
    yield from ensure_private_file._inner(dest=ROLE_SQL_PATH, content=sql, user="postgres", group="postgres")
    yield StringCommand("cd", "/", "&&", "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v",
                        "ON_ERROR_STOP=1", "-p", str(port), "-d", "postgres", "-f", ROLE_SQL_PATH,
                        ";", "status=$?;", "rm", "-f", ROLE_SQL_PATH, ";", "exit", "$status")
