"""The variables of every other managed file's template (pg_hba.conf, .pgpass, heartbeat, the
scripts, the cascade failover automation), derived from the Topology."""
from __future__ import annotations

import re
from typing import NamedTuple

from planner.checks import (
    _SAFE_HA_KEY,
    _SAFE_HBA_WORD,
    _application_name,
    _check_address,
    _check_cluster,
    _host_address_spec,
    _is_ip,
    _node,
)
from planner.model import Cluster, Node, Topology
from planner.paths import (
    ARCHIVE_BACKLOG_DIRECTORY,
    ARCHIVE_SSH_CONTROL_PATH,
    BOOT_GUARD_PATH,
    CASCADE_HOLD_PATH,
    CONNECT_TIMEOUT,
    HA_DIRECTORY,
    HA_LIB_PATH,
    HA_SSH_TIMEOUT,
    HA_WATCH_PATH,
    HAND_OVER_MARKER_PATH,
    HEARTBEAT_UDP_PORT,
    INCLUDE_FILE_NAME,
    KNOWN_HOSTS_PATH,
    LIB_DIRECTORY,
    MAY_PROMOTE_PATH,
    PGPASS_PATH,
    POSTGRES_RESTART_PATH,
    PRIMARY_FLAG_PATH,
    PROBE_TIMEOUT,
    PROMOTE_TIMEOUT,
    READY_TIMEOUT,
    RECLAIM_AFTER,
    RUNTIME_DIRECTORY,
    SEND_ARP_PATH,
    SEND_ARP_PID_DIRECTORY,
    SOCKET_DIRECTORY,
    SSH_CONNECT_TIMEOUT,
    SYNCSET_PATH,
    WATCH_INTERVAL,
)
from planner.postgres_unit import settled_stop
from planner.quoting import conninfo, pgpass_escape, shell_quote

# ---------------------------------------------------------------------------------------------
# pg_hba.conf
# ---------------------------------------------------------------------------------------------


class HbaEntry(NamedTuple):
    """One pg_hba.conf line: TYPE DATABASE USER ADDRESS METHOD  # comment."""

    connection_type: str
    database: str
    user: str
    address: str
    method: str
    comment: str = ""


def _hba_word(value: str, what: str) -> str:
    if _SAFE_HBA_WORD.match(value):
        return value
    if any(c in value for c in '"\n\r') or not value:
        raise ValueError(f"{what}: {value!r} cannot be written in pg_hba.conf")
    return f'"{value}"'


def cluster_hba_entries(topology: Topology) -> list[HbaEntry]:
    """Per cluster host (every one, so the file is the same on every host and stays right
    whichever host becomes whose upstream; the host itself too, so the status script can reach
    its own server by address): streaming replication, and database postgres (pg_rewind and the
    monitor need a normal connection). From that host's own address (/32, /128), never a subnet.
    """
    cluster = topology.cluster
    _check_cluster(cluster)
    user = cluster.replication_user
    entries: list[HbaEntry] = []
    for other in topology.nodes:
        address = _host_address_spec(other.address, other.name)
        comment = f"{other.name} ({other.role})"
        entries.append(HbaEntry("host", "replication", user, address, "scram-sha-256", comment))
        entries.append(HbaEntry("host", "postgres", user, address, "scram-sha-256", comment))
    return entries


def app_hba_entries(topology: Topology) -> list[HbaEntry]:
    """Per application host: its database and user, from its own address (/32, /128)."""
    entries: list[HbaEntry] = []
    for app in topology.cluster.app_hosts:
        what = f"pg_app_hosts {app.address}"
        entries.append(
            HbaEntry(
                "host",
                _hba_word(app.database, what),
                _hba_word(app.user, what),
                _host_address_spec(app.address, what),
                "scram-sha-256",
                "application host",
            )
        )
    return entries


def render_vars_hba(topology: Topology, node_name: str) -> dict:
    """Variables of templates/pg_hba.conf.j2: the network entries, cluster hosts then application hosts.

    Debian's local entries come first in the file; the template writes them as they are.
    The VIP is no client: it never appears. Every method is scram-sha-256.
    """
    _node(topology, node_name)
    return {
        "node_name": node_name,
        "cluster_entries": cluster_hba_entries(topology),
        "app_entries": app_hba_entries(topology),
    }


# ---------------------------------------------------------------------------------------------
# .pgpass of the postgres user
# ---------------------------------------------------------------------------------------------


def pgpass_lines(topology: Topology, node_name: str, password: str) -> list[str]:
    """The postgres user's .pgpass: per cluster host (itself included), the replication user's
    password for streaming replication and for database postgres.
    """
    _node(topology, node_name)
    if not password:
        raise ValueError("the replication password is empty (PGCASCADE_REPLICATION_PASSWORD)")
    cluster = topology.cluster
    user = pgpass_escape(cluster.replication_user)
    secret = pgpass_escape(password)
    lines = []
    for other in topology.nodes:
        address = pgpass_escape(_check_address(other.address, other.name))
        for database in ("replication", "postgres"):
            lines.append(f"{address}:{cluster.port}:{database}:{user}:{secret}")
    return lines


def render_vars_pgpass(topology: Topology, node_name: str, password: str) -> dict:
    """Variables of templates/pgpass.j2 (secret: never --diff this file)."""
    return {"pgpass_lines": pgpass_lines(topology, node_name, password)}


# ---------------------------------------------------------------------------------------------
# heartbeat (master and cascade only)
# ---------------------------------------------------------------------------------------------


class UcastPeer(NamedTuple):
    interface: str
    address: str


def heartbeat_time(seconds: float) -> str:
    """ha.cf's form of a timing: whole seconds as before ("3"), else milliseconds ("2500ms")."""
    ms = round(seconds * 1000)
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms}ms"


def heartbeat_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/ha.cf.j2 and templates/haresources.j2 for a heartbeat node."""
    node = _node(topology, node_name)
    cluster = topology.cluster
    holders = topology.vip_holders
    if cluster.vip is None:
        raise ValueError("vip_address is not set: heartbeat needs the virtual IP")
    if node not in holders:
        raise ValueError(
            f"{node_name}: heartbeat runs on the master and the cascade only, not on a {node.role}"
        )
    if len(holders) != 2:
        raise ValueError(
            "heartbeat (v1, haresources) needs exactly two nodes, the master and one cascade;"
            f" the topology has {', '.join(n.name for n in holders)}"
        )
    vip = cluster.vip  # validated once, by planner.topology
    timings = cluster.heartbeat
    for holder in holders:
        _check_address(holder.address, holder.name)
    return {
        "node_name": node.name,
        "ha_nodes": [n.name for n in holders],
        "ha_ucast": [UcastPeer(vip.interface, n.address) for n in holders if n != node],
        "ha_keepalive": heartbeat_time(timings.keepalive),
        "ha_warntime": heartbeat_time(timings.warntime),
        "ha_deadtime": heartbeat_time(timings.deadtime),
        "ha_initdead": heartbeat_time(timings.initdead),
        "ha_udpport": HEARTBEAT_UDP_PORT,
        "ha_preferred_node": topology.master.name,
        "vip_address": vip.address,
        "vip_prefix": vip.prefix,
        "vip_interface": vip.interface,
    }


def authkeys_vars(heartbeat_key: str) -> dict:
    """Variables of templates/authkeys.j2 (secret: never --diff this file)."""
    if not heartbeat_key or not _SAFE_HA_KEY.match(heartbeat_key):
        raise ValueError(
            "the heartbeat key (PGCASCADE_HEARTBEAT_KEY) must be non-empty printable ASCII"
            " without spaces"
        )
    return {"heartbeat_key": heartbeat_key}


def ha_script_vars(topology: Topology) -> dict:
    """Variables of the failover scripts that source ha-lib: templates/hapostgres.j2,
    may-promote.sh.j2, boot-guard.sh.j2, ha-watch.sh.j2 (shell-quoted)."""
    cluster = topology.cluster
    _check_cluster(cluster)
    return {
        "pg_version": shell_quote(cluster.version),
        "pg_cluster": shell_quote(cluster.name),
        "ha_lib_path": shell_quote(HA_LIB_PATH),
        "lib_directory": shell_quote(LIB_DIRECTORY),
        "runtime_directory": shell_quote(RUNTIME_DIRECTORY),
    }


class HaHost(NamedTuple):
    """Another cluster host in ha-lib (shell-quoted words)."""

    name: str
    address: str


def _ha_peer(topology: Topology, node_name: str) -> Node:
    """The other heartbeat node: the one whose resources this node takes over (and back)."""
    node = _node(topology, node_name)
    if topology.cluster.vip is None:
        raise ValueError("vip_address is not set: the failover scripts need the virtual IP")
    holders = topology.vip_holders
    if node not in holders:
        raise ValueError(
            f"{node_name}: the failover scripts run on the master and the cascade only, not on a"
            f" {node.role}"
        )
    if len(holders) != 2:
        raise ValueError(
            "heartbeat (v1, haresources) needs exactly two nodes, the master and one cascade;"
            f" the topology has {', '.join(n.name for n in holders)}"
        )
    return next(n for n in holders if n != node)


def ha_lib_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/ha-lib.sh.j2 on a heartbeat node (shell-quoted).

    ha_peer: the other heartbeat node (the master, seen from the cascade, and the other way
    round). The other hosts, the witnesses and the timings are hostrules's (hostrules_config).
    """
    node = _node(topology, node_name)
    peer = _ha_peer(topology, node_name)
    cluster = topology.cluster
    _check_cluster(cluster)
    vip = cluster.vip  # validated once, by planner.topology
    if vip is None:  # _ha_peer refused it already
        raise ValueError("vip_address is not set: the failover scripts need the virtual IP")

    def ha_host(other: Node) -> HaHost:
        return HaHost(shell_quote(other.name), shell_quote(_check_address(other.address, other.name)))

    return {
        "node_name": shell_quote(node.name),
        "pg_version": shell_quote(cluster.version),
        "pg_cluster": shell_quote(cluster.name),
        "pg_port": shell_quote(cluster.port),
        "pg_bin_directory": shell_quote(cluster.bin_directory),
        "pg_data_directory": shell_quote(cluster.data_directory),
        "pg_socket_directory": shell_quote(SOCKET_DIRECTORY),
        "ha_peer": ha_host(peer),
        "vip_address": shell_quote(vip.address),
        "vip_prefix": shell_quote(vip.prefix),
        "vip_interface": shell_quote(vip.interface),
        "send_arp_path": shell_quote(SEND_ARP_PATH),
        "send_arp_pid_directory": shell_quote(SEND_ARP_PID_DIRECTORY),
        "may_promote_path": shell_quote(MAY_PROMOTE_PATH),
        "primary_flag": shell_quote(PRIMARY_FLAG_PATH),
        "hand_over_marker": shell_quote(HAND_OVER_MARKER_PATH),
        "runtime_directory": shell_quote(RUNTIME_DIRECTORY),
        "lib_directory": shell_quote(LIB_DIRECTORY),
        "ready_timeout": READY_TIMEOUT,
        "promote_timeout": PROMOTE_TIMEOUT,
        "stop_postgres_command": settled_stop('"$UNIT"'),
    }


def hostrules_config(topology: Topology, node_name: str) -> dict:
    """/etc/pgcascade/hostrules.json on every PostgreSQL host: hostrules.config reads it."""
    node = _node(topology, node_name)
    cluster = topology.cluster
    _check_cluster(cluster)
    holders = topology.vip_holders
    peer = None
    if cluster.vip is not None and node in holders and len(holders) == 2:
        peer = _ha_peer(topology, node_name).name
    vip = cluster.vip
    return {
        "_comment": "Managed by pgcascade: changes made here are overwritten by the next deploy.",
        "self": node.name,
        "version": cluster.version,
        "cluster": cluster.name,
        "port": cluster.port,
        "bin_directory": cluster.bin_directory,
        "data_directory": cluster.data_directory,
        "socket_directory": SOCKET_DIRECTORY,
        "hosts": [{"name": n.name, "address": _check_address(n.address, n.name), "role": n.role}
                  for n in topology.nodes],
        "ha_peer": peer,
        "ha_preferred": topology.master.name if peer else None,
        "syncset_path": SYNCSET_PATH,
        "runtime_directory": RUNTIME_DIRECTORY,
        "primary_flag": PRIMARY_FLAG_PATH,
        "hand_over_marker": HAND_OVER_MARKER_PATH,
        "known_hosts": KNOWN_HOSTS_PATH,
        "ssh_timeout": HA_SSH_TIMEOUT,
        "probe_timeout": PROBE_TIMEOUT,
        "vip_address": vip.address if vip else "",
        "vip_prefix": vip.prefix if vip else 32,
        "vip_interface": vip.interface if vip else "",
        "timings": {"watch_interval": WATCH_INTERVAL, "reclaim_after": RECLAIM_AFTER},
    }


def hostrules_config_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/hostrules.json.j2: the JSON, keys sorted."""
    import json

    return {"hostrules_json": json.dumps(hostrules_config(topology, node_name), indent=1, sort_keys=True)}


def vip_resource_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/pgcascade-vip.sh.j2 (shell-quoted)."""
    _ha_peer(topology, node_name)
    return {"node_name": node_name, "ipaddr2_path": shell_quote(f"{HA_DIRECTORY}/resource.d/IPaddr2"),
            "lib_directory": shell_quote(LIB_DIRECTORY), "ha_lib_path": shell_quote(HA_LIB_PATH)}


def boot_guard_dropin_path(cluster: Cluster) -> str:
    """The systemd drop-in of the cluster's unit that runs the boot guard before every start."""
    return (f"/etc/systemd/system/postgresql@{cluster.version}-{cluster.name}.service.d/"
            "pgcascade-boot-guard.conf")


def boot_guard_dropin_vars(topology: Topology) -> dict:
    """Variables of templates/postgresql-boot-guard.conf.j2."""
    cluster = topology.cluster
    _check_cluster(cluster)
    return {"boot_guard_path": BOOT_GUARD_PATH, "pg_version": cluster.version, "pg_cluster": cluster.name}


def restart_dropin_path(cluster: Cluster) -> str:
    """The systemd drop-in of the cluster's unit that starts a killed server again (hosts
    without heartbeat: on a heartbeat node ha-watch decides)."""
    return (f"/etc/systemd/system/postgresql@{cluster.version}-{cluster.name}.service.d/"
            "pgcascade-restart.conf")


def restart_unit_name(cluster: Cluster) -> str:
    """The oneshot unit the drop-in's OnFailure= starts (templates/pgcascade-postgres-restart.service.j2)."""
    return f"pgcascade-postgres-restart-{cluster.version}-{cluster.name}.service"


KILLED_STARTS = 3  # starts of a killed server within KILLED_STARTS_WINDOW_S before it stays down
KILLED_STARTS_WINDOW_S = 300


def postgres_restart_vars(topology: Topology) -> dict:
    """Variables of the drop-in, the unit and the script that start a killed server again
    (templates/postgresql-restart.conf.j2, pgcascade-postgres-restart.service.j2,
    postgres-restart.sh.j2; shell-quoted where the script uses them)."""
    cluster = topology.cluster
    _check_cluster(cluster)
    return {"pg_version": cluster.version, "pg_cluster": cluster.name, "restart_path": POSTGRES_RESTART_PATH,
            "restart_unit": restart_unit_name(cluster), "data_directory": shell_quote(cluster.data_directory),
            "runtime_directory": shell_quote(RUNTIME_DIRECTORY),
            "burst": KILLED_STARTS, "interval_s": KILLED_STARTS_WINDOW_S}


# Copies of the files heartbeat reads at start only, made as it starts (its unit's drop-in).
HEARTBEAT_STARTED_COPY_DIRECTORY = f"{RUNTIME_DIRECTORY}/heartbeat-started"
HEARTBEAT_START_FILES = (f"{HA_DIRECTORY}/haresources",)


def heartbeat_dropin_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/heartbeat-restart.conf.j2."""
    _ha_peer(topology, node_name)
    return {"node_name": node_name, "started_copy_dir": HEARTBEAT_STARTED_COPY_DIRECTORY,
            "start_files": list(HEARTBEAT_START_FILES)}


def ha_watch_unit_vars() -> dict:
    """Variables of templates/pgcascade-ha-watch.service.j2."""
    return {"ha_watch_path": HA_WATCH_PATH}


# ---------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------


def archive_wal_vars(cluster: Cluster | None = None) -> dict:
    """Variables of templates/archive-wal.sh.j2 (shell-quoted)."""
    cluster = cluster or Cluster()
    return {
        "backlog_directory": shell_quote(ARCHIVE_BACKLOG_DIRECTORY),
        "backlog_max_bytes": cluster.archive_backlog_mb * 1024 * 1024,
        "hostrules_directory": shell_quote(LIB_DIRECTORY),
        "archive_remote_user": shell_quote("postgres"),
        "ssh_known_hosts_file": KNOWN_HOSTS_PATH,  # no spaces: it goes into rsync -e too
        "ssh_control_path": ARCHIVE_SSH_CONTROL_PATH,  # the same
        "ssh_connect_timeout": SSH_CONNECT_TIMEOUT,
    }


class StatusHost(NamedTuple):
    """A cluster host in replication-status (shell-quoted words)."""

    name: str
    address: str
    role: str


def replication_status_vars(topology: Topology) -> dict:
    """Variables of templates/replication-status.sh.j2 (shell-quoted)."""
    cluster = topology.cluster
    _check_cluster(cluster)
    return {
        "status_hosts": [
            StatusHost(
                shell_quote(n.name),
                shell_quote(_check_address(n.address, n.name)),
                shell_quote(n.role),
            )
            for n in topology.nodes
        ],
        "pg_port": shell_quote(cluster.port),
        "replication_user": shell_quote(cluster.replication_user),
        "pgpass_path": shell_quote(PGPASS_PATH),
        "pg_bin_directory": shell_quote(cluster.bin_directory),
        "connect_timeout": CONNECT_TIMEOUT,
    }


# ---------------------------------------------------------------------------------------------
# /etc/hosts
# ---------------------------------------------------------------------------------------------


def hosts_entries(topology: Topology) -> list[tuple[str, str]]:
    """(address, name) per cluster host for /etc/hosts, in topology order.

    Hosts whose address is a DNS name are left out: /etc/hosts maps IP addresses.
    """
    return [(n.address, n.name) for n in topology.nodes if _is_ip(n.address)]


# ---------------------------------------------------------------------------------------------
# Which files a host gets, where, with which owner and mode
# ---------------------------------------------------------------------------------------------


class ManagedFile(NamedTuple):
    template: str  # name under templates/
    dest: str
    owner: str
    group: str
    mode: str
    secret: bool  # holds a secret: never show it in --diff


def managed_files(topology: Topology, node_name: str) -> tuple[ManagedFile, ...]:
    """The templated files of one host's PostgreSQL and heartbeat concerns, from the registry
    (planner.registry: the one list of managed things)."""
    from planner import registry  # the registry builds on this module

    _node(topology, node_name)
    return tuple(ManagedFile(f.template, f.path, f.owner, f.group, f.mode, f.secret)
                 for f in registry.entries(topology, node_name).files
                 if f.template and f.concern in (registry.POSTGRES, registry.HOSTRULES, registry.HEARTBEAT))


# ---------------------------------------------------------------------------------------------
# When the cascading standby fails (planner/failover_cascade.py): the variants of the include
# file prepared by the deploy, the switch script, and the downstream's cascade monitor
# ---------------------------------------------------------------------------------------------

CASCADE_FAILED_DIRECTORY = "/etc/pgcascade/cascade-failed"
CASCADE_FAILED_PATH = f"{LIB_DIRECTORY}/cascade-failed"
CASCADE_MONITOR_PATH = f"{LIB_DIRECTORY}/cascade-monitor"
CASCADE_MONITOR_UNIT = "pgcascade-cascade-monitor.service"
CASCADE_MONITOR_UNIT_PATH = f"/etc/systemd/system/{CASCADE_MONITOR_UNIT}"
CASCADE_MONITOR_INTERVAL = 1  # seconds between two probes of the cascade
CASCADE_PROBE_TIMEOUT = 0.8  # seconds the monitor waits for the cascade's own answer (within a look)
CONFIG_RELOAD_TIMEOUT = 10  # seconds cascade-failed waits for the server to read its new file


def cascade_variant_path(cascade_name: str) -> str:
    """Where a host keeps its include file for the cluster without `cascade_name`."""
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", cascade_name):
        raise ValueError(f"{cascade_name!r}: a cascade name must be letters, digits and _.-")
    return f"{CASCADE_FAILED_DIRECTORY}/{cascade_name}/{INCLUDE_FILE_NAME}"


def cascade_failed_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/cascade-failed.sh.j2 (shell-quoted): the master expects to be the
    primary, a standby to be in recovery."""
    node = _node(topology, node_name)
    cluster = topology.cluster
    _check_cluster(cluster)
    primary = node.upstream is None
    return {
        "node_name": node.name,
        "expected_role": "the primary" if primary else "a standby",
        "expect_recovery": "f" if primary else "t",
        "run_as_user": "postgres",
        "variants_directory": shell_quote(CASCADE_FAILED_DIRECTORY),
        "include_file": shell_quote(f"{cluster.config_directory}/conf.d/{INCLUDE_FILE_NAME}"),
        "pg_bin_directory": shell_quote(cluster.bin_directory),
        "socket_directory": shell_quote(SOCKET_DIRECTORY),
        "pg_port": shell_quote(cluster.port),
        "connect_timeout": CONNECT_TIMEOUT,
        "reload_timeout": CONFIG_RELOAD_TIMEOUT,
        "lib_directory": shell_quote(LIB_DIRECTORY),
    }


def cascade_monitor_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/cascade-monitor.sh.j2 (shell-quoted) for a standby of a cascade (the
    registry adds hostrules_digest, the package's digest)."""
    node = _node(topology, node_name)
    if node.upstream is None or _node(topology, node.upstream).upstream is None:
        raise ValueError(f"{node_name}: the cascade monitor runs on a standby of a cascading standby")
    cluster = topology.cluster
    _check_cluster(cluster)
    cascade = _node(topology, node.upstream)
    master = topology.master
    master_conninfo = conninfo([
        ("host", _check_address(master.address, master.name)),
        ("port", cluster.port),
        ("user", cluster.replication_user),
        ("dbname", "postgres"),
        ("passfile", PGPASS_PATH),
        ("connect_timeout", str(CONNECT_TIMEOUT)),
        ("application_name", "pgcascade-cascade-monitor"),
    ])
    return {
        "node_name": node.name,
        "cascade_name": shell_quote(cascade.name),
        "cascade_address": shell_quote(_check_address(cascade.address, cascade.name)),
        "master_name": shell_quote(master.name),
        "master_address": shell_quote(master.address),
        "master_conninfo": shell_quote(master_conninfo),
        # The cascade itself, asked whether it answers and is still in recovery.
        "cascade_conninfo": shell_quote(conninfo([
            ("host", _check_address(cascade.address, cascade.name)), ("port", cluster.port),
            ("user", cluster.replication_user), ("dbname", "postgres"), ("passfile", PGPASS_PATH),
            ("connect_timeout", str(CONNECT_TIMEOUT)), ("application_name", "pgcascade-cascade-monitor")])),
        "cascade_application_name": shell_quote(_application_name(cascade)),
        "hostrules_directory": shell_quote(LIB_DIRECTORY),
        "pg_port": shell_quote(cluster.port),
        "pg_bin_directory": shell_quote(cluster.bin_directory),
        "socket_directory": shell_quote(SOCKET_DIRECTORY),
        "include_file": shell_quote(f"{cluster.config_directory}/conf.d/{INCLUDE_FILE_NAME}"),
        "variant_file": shell_quote(cascade_variant_path(cascade.name)),
        "switch_path": shell_quote(CASCADE_FAILED_PATH),
        "ssh_known_hosts_file": shell_quote(KNOWN_HOSTS_PATH),
        "ssh_connect_timeout": SSH_CONNECT_TIMEOUT,
        "connect_timeout": CONNECT_TIMEOUT,
        "interval": CASCADE_MONITOR_INTERVAL,
        "probe_timeout": CASCADE_PROBE_TIMEOUT,
        "hold_path": shell_quote(CASCADE_HOLD_PATH),
    }


def cascade_monitor_unit_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/cascade-monitor.service.j2."""
    node = _node(topology, node_name)
    if node.upstream is None:
        raise ValueError(f"{node_name}: the cascade monitor runs on a standby of a cascading standby")
    cluster = topology.cluster
    return {
        "node_name": node.name,
        "cascade_name": node.upstream,
        "monitor_path": CASCADE_MONITOR_PATH,
        "postgresql_unit": f"postgresql@{cluster.version}-{cluster.name}.service",
    }
