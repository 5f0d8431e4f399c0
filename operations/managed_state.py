"""Repairs of registry entries that no stock operation covers: a managed setting set anywhere
but our include file, heartbeat re-reading its files, and the run's last word on what it left
pending (never an implicit restart of the primary or move of resources)."""
from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.facts.files import FileContents

from facts.config_state import PgConfigState
from facts.managed import HeartbeatConfigState, ManagedState
from operations.plans import preparing
from operations.postgres import AS_POSTGRES, psql, unit
from operations.run_snapshot import read_fact
from planner import registry, settings

HEARTBEAT_BINARY = "/usr/libexec/heartbeat/heartbeat"
HEARTBEAT_REREAD_STAMP = "/run/pgcascade/heartbeat-reread"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def source_repair_commands(name: str, other: dict, in_recovery: bool) -> list:
    """The command that removes one other source of a managed setting (None: not here)."""
    kind = other.get("kind")
    if kind == "alter_system":
        return [f"ALTER SYSTEM RESET {name}"]
    if kind == "role" and not in_recovery:
        where = f" IN DATABASE {_ident(other['database'])}" if other.get("database") else ""
        return [f"ALTER ROLE {_ident(other['role'])}{where} RESET {name}"]
    if kind == "database" and not in_recovery:
        return [f"ALTER DATABASE {_ident(other['database'])} RESET {name}"]
    return []


@operation()
def ensure_setting_sources(version: int, cluster: str, port: int, include_file: str, main_config_file: str,
                           managed: list[str], guarded: list[str], role: str):
    """
    Every managed setting comes from our include file only: ALTER SYSTEM values reset, lines in
    other configuration files commented out, per-role/per-database values of the guarded
    settings (synchronous_commit) reset on the primary; then a reload.

    + version: PostgreSQL major version
    + cluster: cluster name
    + port: its port
    + include_file: our include file
    + main_config_file: the cluster's postgresql.conf
    + managed: the names our include file manages
    + guarded: names read too: no other source may weaken them on the primary (synchronous_commit)
    + role: the replication role (for the fact)
    """
    state = read_fact(host, ManagedState, paths=[], units=[], setting_names=sorted(set(managed) | set(guarded)),
                          port=port, role=role, home=settings.POSTGRES_HOME, _sudo=True)
    postgres = state.get("postgres")
    if not postgres:
        host.noop("PostgreSQL is not running: its files decide its settings")
        return
    sources = registry.setting_sources(postgres, include_file, main_config_file)
    statements, edits, found = [], [], []
    for name, other in registry.offending_sources(sources, managed, primary=not postgres.get("in_recovery")):
        found.append(f"{name} {registry.source_words(other)}")
        statements += source_repair_commands(name, other, bool(postgres.get("in_recovery")))
        if other.get("kind") == "file":
            edits.append((other["sourcefile"], int(other["sourceline"]), name))
    if not found:
        host.noop("every managed setting comes from the include file")
        return
    host.noop(f"managed settings set elsewhere: {'; '.join(found)}")
    if statements:
        yield psql(port, *statements)
    for path, line, name in edits:
        yield StringCommand("sed", "-i", f"'{line}s/^/# pgcascade manages {name} in its include file: /'", path)
    yield StringCommand("systemctl", "reload", unit(version, cluster))


@operation()
def ensure_heartbeat_config_read(reread_files: list[str], start_files: list[str], vip: str):
    """
    heartbeat runs with its files: `heartbeat -r` for ha.cf/authkeys (no resource moves), a
    restart for haresources on the node without the resources; pending on the holder.

    + reread_files: files heartbeat re-reads on SIGHUP
    + start_files: files it reads at start only
    + vip: the VIP address (who holds the resources)
    """
    state = read_fact(host, HeartbeatConfigState, files=[*reread_files, *start_files], stamp=HEARTBEAT_REREAD_STAMP,
                          started_copy_dir=settings.HEARTBEAT_STARTED_COPY_DIRECTORY, vip=vip)
    action, reason = registry.heartbeat_action(state, reread_files, start_files)
    if action in ("nothing", "pending"):
        host.noop(reason if action == "nothing" else f"PENDING: {reason}")
        return
    host.noop(f"{action}: {reason}")
    if action == "reread":
        yield StringCommand(HEARTBEAT_BINARY, "-r")
        yield StringCommand("install", "-d", "-m", "0755", HEARTBEAT_REREAD_STAMP.rsplit("/", 1)[0], "&&",
                            "touch", HEARTBEAT_REREAD_STAMP)
    else:
        yield StringCommand("systemctl", "restart", "heartbeat")


@operation()
def check_nothing_pending(port: int, heartbeat_start_files: list[str], vip: str, config_files: list[str] | None = None,
                          heartbeat_reread_files: list[str] | None = None):
    """
    The run's last step: fails, naming them, when changes are left for tasks/rolling_restart.py
    (a restart-only setting on the primary, haresources on the node holding the resources).

    + port: PostgreSQL's port
    + heartbeat_start_files: files heartbeat reads at start only ([] off the heartbeat nodes)
    + vip: the VIP address
    + config_files: PostgreSQL's managed files (read with them, the fact is the one the deploy read before)
    + heartbeat_reread_files: heartbeat's other files (the same: read, not judged here)
    """
    pending = []
    config = read_fact(host, PgConfigState, port=port, files=config_files or [], **AS_POSTGRES)
    if config["running"]:
        reason = registry.primary_restart_pending(config.get("in_recovery"),
                                                  sorted(set(config["unapplied"]) | set(config["pending_restart"])))
        if reason:
            pending.append(reason)
    if heartbeat_start_files:
        state = read_fact(host, HeartbeatConfigState, files=[*(heartbeat_reread_files or []), *heartbeat_start_files],
                          stamp=HEARTBEAT_REREAD_STAMP,
                              started_copy_dir=settings.HEARTBEAT_STARTED_COPY_DIRECTORY, vip=vip)
        action, reason = registry.heartbeat_action(state, [], heartbeat_start_files)
        if action == "pending":
            pending.append(reason)
    if pending:
        message = f"{host.name}: changed everything else; PENDING (not applied by a deploy): " + "; ".join(pending)
        if preparing():  # --dry: say it; the earlier steps may still change it
            host.log(f"as things are now: {message}")
            return
        raise OperationError(message)
    host.noop("nothing pending")
    return
    yield  # an operation is a generator


def _peer_public_keys(peers: list[str]) -> dict | None:
    """The other hosts' postgres public keys, read from them (None when one has none yet)."""
    keys = {}
    for peer in peers:
        lines = read_fact(inventory.get_host(peer), FileContents, path=f"{settings.POSTGRES_HOME}/.ssh/id_ed25519.pub")
        if not lines:
            return None
        keys[peer] = lines[0].strip()
    return keys


@operation()
def report_drift(entries: registry.HostRegistry, setting_names: list[str], port: int, role: str, vip: str):
    """
    Say, before anything changes (and with --dry), every drifted registry entry of this host:
    what, expected vs found, the repair and what it disturbs. Changes nothing.

    + entries: this host's registry
    + setting_names: the settings whose sources are read
    + port: PostgreSQL's port
    + role: the replication role
    + vip: the VIP address ('' without)
    """
    state = read_fact(host, ManagedState, paths=entries.paths(), units=[u.unit for u in entries.units],
                          setting_names=setting_names, port=port, role=role, home=settings.POSTGRES_HOME, vip=vip,
                          _sudo=True)
    postgres = state.get("postgres") or {}
    live = registry.Live(primary=postgres.get("in_recovery") is False, holds_resources=bool(state.get("vip")))
    peers = [p for e in entries.authorized_keys for p in e.peers]
    drifts = registry.diff_host(entries, state, live, peer_public_keys=_peer_public_keys(peers))
    if not drifts:
        host.noop("no drift: every managed entry is as the deploy leaves it")
        return
    for drift in drifts:
        pending = (" -- left pending for tasks/rolling_restart.py"
                   if registry.needs_rolling_restart(drift.disturbance) else "")
        host.log(f"drift: {drift.key}: expected {drift.expected}, found {drift.found}; repair: {drift.repair} "
                 f"(disturbs: {drift.disturbance}){pending}")
    return
    yield  # an operation is a generator
