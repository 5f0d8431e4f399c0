"""Every managed file's variables, derived from the Topology.

Pure: no pyinfra, no I/O. The deploys call these functions and pass the result to
``files.template`` (the templates live in ``templates/``; ``planner.render`` renders them the same
way for tests). Identical input gives identical output: everything is ordered.

Values that end up in a shell script are shell-quoted here (templates have no custom filters
under pyinfra), values for postgresql.conf are quoted here (``postgres_settings``), and the
inputs that reach a shell, a conf file and pg_hba.conf at once (addresses, the archive
directory, the replication user) are validated so that a bad inventory value fails with a clear
message instead of rendering a broken file.

Design decisions (the seed's howto gets these wrong):

- One include file ``conf.d/pgcascade.conf`` with the same keys on every PostgreSQL host;
  standby keys (primary_conninfo, restore_command, ...) are set on every host that has an
  upstream (PostgreSQL 12+ ignores them unless standby.signal exists). The master gets none.
- ``archive_mode = always`` on every host: the cascade relays WAL to its children's archives
  while it is still a standby, and a change of role or of children is a reload, not a restart.
- ``archive_command`` runs ``archive-wal`` with the child addresses baked in; a host without
  children uses ``/bin/true``.
- No password anywhere but the postgres user's ``.pgpass`` (0600).
- pg_hba.conf and .pgpass list every cluster host (the host itself included: the status script
  connects to each host by address, its own too), so they are the same on every host and stay
  valid whichever host becomes whose upstream after a failover.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from typing import NamedTuple

from planner.backup import CONFIG_PATH as PGBACKREST_CONFIG_PATH
from planner.backup import ARCHIVE_PGBACKREST_PATH, archive_push_command
from planner.model import Cluster, Node, Topology

# ---------------------------------------------------------------------------------------------
# Paths on the hosts (shared with the operations)
# ---------------------------------------------------------------------------------------------

POSTGRES_HOME = "/var/lib/postgresql"
PGPASS_PATH = f"{POSTGRES_HOME}/.pgpass"
KNOWN_HOSTS_PATH = f"{POSTGRES_HOME}/.ssh/known_hosts"
# archive-wal's multiplexed ssh connections (one per child, %C: a hash of user, host and port)
ARCHIVE_SSH_CONTROL_PATH = f"{POSTGRES_HOME}/.ssh/archive-%C"
SOCKET_DIRECTORY = "/var/run/postgresql"
LIB_DIRECTORY = "/usr/local/lib/pgcascade"
ARCHIVE_WAL_PATH = f"{LIB_DIRECTORY}/archive-wal"
MAY_PROMOTE_PATH = f"{LIB_DIRECTORY}/may-promote"
HA_LIB_PATH = f"{LIB_DIRECTORY}/ha-lib"
BOOT_GUARD_PATH = f"{LIB_DIRECTORY}/boot-guard"
HA_WATCH_PATH = f"{LIB_DIRECTORY}/ha-watch"
# The on-host decision rules (the hostrules package, stdlib-only python3) and where each host
# stands in the cluster for them; the synchronous-set record (postgres's, kept across reboots).
HOSTRULES_DIRECTORY = f"{LIB_DIRECTORY}/hostrules"
HOSTRULES_CONFIG_PATH = "/etc/pgcascade/hostrules.json"
SYNCSET_PATH = f"{POSTGRES_HOME}/pgcascade/syncset.json"
VIP_RESOURCE_PATH = "/etc/ha.d/resource.d/pgcascade-vip"
HA_WATCH_UNIT_PATH = "/etc/systemd/system/pgcascade-ha-watch.service"
HEARTBEAT_DROPIN_PATH = "/etc/systemd/system/heartbeat.service.d/pgcascade-restart.conf"
HB_STANDBY_PATH = "/usr/share/heartbeat/hb_standby"  # heartbeat v1: hand the resources to the peer
HB_TAKEOVER_PATH = "/usr/share/heartbeat/hb_takeover"  # heartbeat v1: ask the peer for the resources
# On tmpfs (gone after a reboot): set by hapostgres when it makes or confirms this host's primary;
# the boot guard lets PostgreSQL start as a primary only while it exists.
RUNTIME_DIRECTORY = "/run/pgcascade"
PRIMARY_FLAG_PATH = f"{RUNTIME_DIRECTORY}/primary-allowed"
REPLICATION_STATUS_PATH = f"{LIB_DIRECTORY}/replication-status"
HA_DIRECTORY = "/etc/ha.d"
HAPOSTGRES_PATH = f"{HA_DIRECTORY}/resource.d/hapostgres"
INCLUDE_FILE_NAME = "pgcascade.conf"

ARCHIVE_NOWHERE = "/bin/true"
HEARTBEAT_UDP_PORT = 694
SSH_CONNECT_TIMEOUT = 10  # seconds, archive-wal's ssh and rsync
CONNECT_TIMEOUT = 5  # seconds, libpq in the scripts
PROMOTE_TIMEOUT = 60  # seconds hapostgres waits for the promoted server to leave recovery
READY_TIMEOUT = 30  # seconds hapostgres waits for a (re)starting server to answer
# Failover probes (may-promote): a PostgreSQL that has not answered pg_isready within this many
# seconds is "silent" (a live one answers in milliseconds, 0.12 s on a lab machine at load 12;
# libpq's own minimum is 2 s). Every failover waits this long once. A server silent from the
# cascade and a witness at once while heartbeat finds its node dead is hung or gone; were it
# only slow, promoting it away would cost an unneeded failover, never a split brain: it cannot
# acknowledge a commit once its synchronous standby, the cascade, is promoted.
PROBE_TIMEOUT = 0.5
HA_SSH_TIMEOUT = 3  # seconds for one ssh round trip to another cluster host (failover scripts)
WATCH_INTERVAL = 1  # seconds between two checks of ha-watch (a dead primary is restarted within about that)
# ha-watch asks heartbeat for the resources for the newest primary once it has held none for
# this many seconds (heartbeat settles after a restart: initdead, then the acquisition), and
# not more often than that.
RECLAIM_AFTER = 12

SUPPORTED_VERSIONS = range(13, 18)

# ---------------------------------------------------------------------------------------------
# GUCs
# ---------------------------------------------------------------------------------------------

# Defaults an inventory may override through pg_settings (Cluster.settings).
TUNABLE_DEFAULTS: dict[str, str] = {
    # A connection that never sends its startup packet (its client was cut off while the VIP
    # moved) holds a clean shutdown until this runs out: a switchover, a restart (default 1min).
    "authentication_timeout": "10s",
    "hot_standby": "on",
    "listen_addresses": "*",
    "max_wal_senders": "10",
    "wal_keep_size": "512MB",
    # A standby retries its WAL sources (stream, archive) this often: after a failover, the
    # downstream reconnects to the promoted cascade within about a second (default 5s).
    "wal_retrieve_retry_interval": "1s",
    # A standby confirms its flush position at least this often. A commit waiting for a standby
    # that became synchronous after it had flushed that commit (a re-pointed tree, a switchover,
    # the cascade failover) is released at the next confirmation (default 10s).
    "wal_receiver_status_interval": "1s",
}

# Derived from the topology: pg_settings may not set them (that would break replication).
DERIVED_GUCS: tuple[str, ...] = (
    "archive_cleanup_command",
    "archive_command",
    "archive_mode",
    "password_encryption",
    "port",
    "primary_conninfo",
    "recovery_target_timeline",
    "restore_command",
    "synchronous_standby_names",
    "wal_level",
    "wal_log_hints",
)

# Every GUC pgcascade manages (without the inventory's extras): what the facts should read.
MANAGED_GUCS: tuple[str, ...] = tuple(sorted(set(TUNABLE_DEFAULTS) | set(DERIVED_GUCS)))

# Set only on hosts that have an upstream.
STANDBY_GUCS: tuple[str, ...] = (
    "archive_cleanup_command",
    "primary_conninfo",
    "recovery_target_timeline",
    "restore_command",
)

# Of those, only on hosts with an upstream (the others are on every host: see desired_values).
UPSTREAM_ONLY_GUCS: tuple[str, ...] = ("archive_cleanup_command", "primary_conninfo")

# Always written quoted: free-form strings.
_STRING_GUCS = frozenset(
    {
        "archive_cleanup_command",
        "archive_command",
        "listen_addresses",
        "password_encryption",
        "primary_conninfo",
        "recovery_target_timeline",
        "restore_command",
        "synchronous_standby_names",
    }
)

# Names that are directives, not settings, in postgresql.conf.
_CONF_DIRECTIVES = frozenset({"include", "include_dir", "include_if_exists"})

_GUC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# A value both PostgreSQL's and postgresql-common's conf parsers take unquoted.
# (An integer with an optional unit, a decimal without unit, or a word: 10, 512MB, -1, 0.9, on.)
_BARE_VALUE = re.compile(r"^(-?[0-9]+[A-Za-z]*|-?[0-9]+\.[0-9]+|[A-Za-z][A-Za-z0-9_]*)$")
_SAFE_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]*$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_SAFE_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_HBA_WORD = re.compile(r"^[A-Za-z0-9_.+-]+$")
_SAFE_CONNINFO_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")
_SAFE_HA_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no space


# ---------------------------------------------------------------------------------------------
# Quoting
# ---------------------------------------------------------------------------------------------


def conf_quote(value: str) -> str:
    """Quote a postgresql.conf string value: backslashes and single quotes doubled.

    (The conf parser treats a backslash as an escape inside quotes, so both need escaping.)
    """
    if "\n" in value or "\r" in value:
        raise ValueError(f"postgresql.conf value {value!r} contains a line break")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def conf_value(value: str) -> str:
    """A postgresql.conf value: bare when both parsers take it unquoted (10, 512MB, on), else quoted."""
    return value if _BARE_VALUE.match(value) else conf_quote(value)


def conninfo_value(value: str) -> str:
    """Quote a libpq conninfo value when needed: 'it\\'s'."""
    if _SAFE_CONNINFO_VALUE.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pgpass_escape(value: str) -> str:
    """Escape a .pgpass field: backslash and colon get a backslash."""
    if "\n" in value or "\r" in value:
        raise ValueError(".pgpass fields cannot contain a line break")
    return value.replace("\\", "\\\\").replace(":", "\\:")


def shell_quote(value: object) -> str:
    """Quote one word for a POSIX shell (unchanged when it is already safe)."""
    return shlex.quote(str(value))


def _percent_escape(value: str) -> str:
    """Escape % in a literal part of archive_command/restore_command/archive_cleanup_command."""
    return value.replace("%", "%%")


def _syncrep_name(name: str) -> str:
    """A standby name in synchronous_standby_names: double-quoted, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _node(topology: Topology, node_name: str) -> Node:
    try:
        return topology.node(node_name)
    except KeyError:
        known = ", ".join(n.name for n in topology.nodes)
        raise ValueError(
            f"{node_name}: not a PostgreSQL host of this topology (hosts: {known})"
        ) from None


def _check_cluster(cluster: Cluster) -> None:
    if cluster.version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"pg_version {cluster.version}: pgcascade supports PostgreSQL 13 to 17"
        )
    if not _SAFE_PATH.match(cluster.archive_dir):
        raise ValueError(
            f"pg_archive_dir {cluster.archive_dir!r}: use an absolute path of letters, digits"
            " and ._/+-"
        )
    if not _SAFE_ROLE.match(cluster.replication_user):
        raise ValueError(
            f"pg_replication_user {cluster.replication_user!r}: use a plain identifier"
            " (letters, digits, _)"
        )


def _check_address(address: str, what: str) -> str:
    if not _SAFE_ADDRESS.match(address):
        raise ValueError(
            f"{what}: address {address!r} is not an IP address or host name"
        )
    return address


def _application_name(node: Node) -> str:
    name = node.application_name or node.name
    if len(name) > 63 or not all(" " <= c <= "~" for c in name):
        raise ValueError(
            f"{node.name}: pg_application_name {name!r} must be at most 63 printable ASCII"
            " characters (PostgreSQL truncates or mangles anything else)"
        )
    return name


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _host_address_spec(address: str, what: str) -> str:
    """pg_hba.conf ADDRESS for one host: /32 or /128 for an IP, a host name as it is."""
    if "/" in address:
        raise ValueError(
            f"{what}: {address!r} is a network; pg_hba.conf entries here are per host,"
            " give the host's own address"
        )
    _check_address(address, what)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a host name: PostgreSQL checks it by reverse and forward lookup
    return f"{ip}/{ip.max_prefixlen}"


# ---------------------------------------------------------------------------------------------
# postgresql.conf: conf.d/pgcascade.conf
# ---------------------------------------------------------------------------------------------


def archive_targets(topology: Topology, node_name: str) -> tuple[Node, ...]:
    """The hosts whose WAL archive this host feeds: its children (the standbys streaming from it).

    The master feeds the cascade(s); the cascade feeds every downstream (archive_mode = always
    relays while it is in recovery); a leaf feeds nobody.
    """
    _node(topology, node_name)
    return topology.children(node_name)


def archive_command(topology: Topology, node_name: str) -> str:
    """Unquoted archive_command: archive-wal with the archive dir and the child addresses baked in."""
    _check_cluster(topology.cluster)
    return with_repository_push(topology.cluster, _children_archive_command(topology, node_name))


def _children_archive_command(topology: Topology, node_name: str) -> str:
    targets = archive_targets(topology, node_name)
    if not targets:
        return ARCHIVE_NOWHERE
    words = [ARCHIVE_WAL_PATH, "%p", "%f", _percent_escape(shell_quote(topology.cluster.archive_dir))]
    for child in targets:
        _check_address(child.address, child.name)
        words.append(_percent_escape(shell_quote(child.address)))
    return " ".join(words)


def with_repository_push(cluster: Cluster, command: str) -> str:
    """archive_command with, when the cluster has a backup repository, its push after the
    children's archives: a file counts as archived once both hold it (PostgreSQL retries both,
    and both take a second identical copy as done)."""
    if cluster.backup is None:
        return command
    push = archive_push_command(cluster.backup)
    return push if command == ARCHIVE_NOWHERE else f"{command} && {push}"


def restore_command(cluster: Cluster) -> str:
    """Unquoted restore_command: copy from this host's archive; a missing file is a quiet 'not yet'."""
    src = _percent_escape(shell_quote(cluster.archive_dir)) + "/%f"
    return f'test -f {src} && cp {src} "%p"'


def archive_cleanup_command(cluster: Cluster) -> str:
    """Unquoted archive_cleanup_command: pg_archivecleanup on this host's archive."""
    return (
        f"{cluster.bin_directory}/pg_archivecleanup "
        f"{_percent_escape(shell_quote(cluster.archive_dir))} %r"
    )


def primary_conninfo(topology: Topology, node_name: str) -> str:
    """Unquoted primary_conninfo pointing at the node's upstream; '' on the master.

    No password: libpq reads it from the postgres user's .pgpass (passfile).
    """
    node = _node(topology, node_name)
    if node.upstream is None:
        return ""
    upstream = _node(topology, node.upstream)
    cluster = topology.cluster
    parts = [
        ("host", _check_address(upstream.address, upstream.name)),
        ("port", str(cluster.port)),
        ("user", cluster.replication_user),
        ("application_name", _application_name(node)),
        ("passfile", PGPASS_PATH),
    ]
    return " ".join(f"{key}={conninfo_value(value)}" for key, value in parts)


def synchronous_standby_names(topology: Topology, node_name: str) -> str:
    """Unquoted synchronous_standby_names.

    With pg_synchronous, the master waits for its first direct standby (FIRST 1 over its
    children's application names, in topology order), and the cascade lists its own children:
    PostgreSQL ignores the setting while the cascade is in recovery, and it takes effect the
    moment the cascade is promoted (the seed's "standby_2 is now the synchronous standby").
    Other hosts are never promoted by heartbeat: '' (asynchronous), so a manual promotion
    cannot hang commits on a standby that may not exist.
    """
    node = _node(topology, node_name)
    children = topology.children(node_name)
    if not topology.cluster.synchronous or not children or node.role not in ("master", "cascade"):
        return ""
    names = ", ".join(_syncrep_name(_application_name(child)) for child in children)
    return f"FIRST 1 ({names})"


def _extra_settings(cluster: Cluster) -> dict[str, str]:
    """The inventory's pg_settings, names lower-cased, checked against what we derive."""
    extras: dict[str, str] = {}
    for raw_name, value in cluster.settings:
        name = raw_name.lower()
        if not _GUC_NAME.match(name) or name in _CONF_DIRECTIVES:
            raise ValueError(f"pg_settings: {raw_name!r} is not a setting name")
        if name in DERIVED_GUCS:
            raise ValueError(
                f"pg_settings: {name} is derived from the topology by pgcascade;"
                " remove it from pg_settings"
            )
        if name in extras:
            raise ValueError(f"pg_settings: {name} is set twice")
        value = str(value)
        if "\n" in value or "\r" in value:
            raise ValueError(f"pg_settings: the value of {name} contains a line break")
        extras[name] = value
    senders = extras.get("max_wal_senders")
    if senders is not None and (not senders.isdigit() or int(senders) < 10):
        raise ValueError(
            f"pg_settings: max_wal_senders = {senders!r}; use an integer of at least 10"
        )
    return extras


def desired_values(topology: Topology, node_name: str) -> dict[str, str]:
    """Every GUC of the node's include file, unquoted, sorted by name.

    Comparable with pg_settings.setting for the string settings; numbers with units
    (wal_keep_size) are as written in the inventory, not normalised.
    """
    cluster = topology.cluster
    _check_cluster(cluster)
    node = _node(topology, node_name)
    extras = _extra_settings(cluster)
    values: dict[str, str] = {
        name: extras.get(name, default) for name, default in TUNABLE_DEFAULTS.items()
    }
    values.update(
        {
            "archive_command": archive_command(topology, node_name),
            "archive_mode": "always",
            "password_encryption": "scram-sha-256",
            "port": str(cluster.port),
            "synchronous_standby_names": synchronous_standby_names(topology, node_name),
            "wal_level": "replica",
            "wal_log_hints": "on",
            # On every host, master included: these take a restart to change (restore_command
            # on PostgreSQL 13), so a change of role (rejoin, switchover) must not change them.
            # They do nothing without standby.signal.
            "recovery_target_timeline": "latest",
            "restore_command": restore_command(cluster),
        }
    )
    if node.upstream is not None:
        values.update(
            {
                "archive_cleanup_command": archive_cleanup_command(cluster),
                "primary_conninfo": primary_conninfo(topology, node_name),
            }
        )
    for name, value in extras.items():
        values.setdefault(name, value)
    return dict(sorted(values.items()))


def postgres_settings(topology: Topology, node_name: str) -> dict[str, str]:
    """GUC name -> value as written in postgresql.conf (quoted where needed), sorted by name."""
    return {
        name: conf_quote(value) if name in _STRING_GUCS else conf_value(value)
        for name, value in desired_values(topology, node_name).items()
    }


def guc_names(topology: Topology) -> tuple[str, ...]:
    """The GUC names the include file may set on any host of this topology, sorted."""
    return tuple(sorted(set(MANAGED_GUCS) | set(_extra_settings(topology.cluster))))


def config_file_paths(cluster) -> list[str]:
    """The managed configuration files PostgreSQL reads (ensure_config_applied compares their
    change time with the server's last load)."""
    return [f"{cluster.config_directory}/conf.d/{INCLUDE_FILE_NAME}", f"{cluster.config_directory}/pg_hba.conf"]


def render_vars_pgconf(topology: Topology, node_name: str, variant_without: str = "") -> dict:
    """Variables of templates/pgcascade.conf.j2. variant_without: the failed cascade, for the
    variant of the cluster without it (topology is then that cluster): its header says so, so
    that it never equals a regular include file byte for byte (the cascade monitor compares)."""
    node = _node(topology, node_name)
    settings = postgres_settings(topology, node_name)
    extras = _extra_settings(topology.cluster)
    return {
        "node_name": node.name,
        "node_role": node.role,
        "upstream_name": node.upstream or "",
        "variant_without": variant_without,
        "pg_version": topology.cluster.version,
        "settings": settings,
        "extra_settings": [
            (name, value)
            for name, value in settings.items()
            if name in extras and name not in TUNABLE_DEFAULTS
        ],
    }


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


def hba_entries(topology: Topology, node_name: str) -> list[HbaEntry]:
    """The network entries of the node's pg_hba.conf: cluster hosts, then application hosts.

    Debian's local entries come first in the file; the template writes them as they are.
    The VIP is no client: it never appears. Every method is scram-sha-256.
    """
    _node(topology, node_name)
    return cluster_hba_entries(topology) + app_hba_entries(topology)


def render_vars_hba(topology: Topology, node_name: str) -> dict:
    """Variables of templates/pg_hba.conf.j2."""
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
    vip = cluster.vip
    if not _is_ip(vip.address) or not re.match(r"^[A-Za-z0-9._-]+$", vip.interface):
        raise ValueError(f"vip: {vip.address}/{vip.prefix} on {vip.interface!r} is not valid")
    timings = cluster.heartbeat
    for holder in holders:
        _check_address(holder.address, holder.name)
    return {
        "node_name": node.name,
        "ha_nodes": [n.name for n in holders],
        "ha_ucast": [UcastPeer(vip.interface, n.address) for n in holders if n != node],
        "ha_keepalive": timings.keepalive,
        "ha_warntime": timings.warntime,
        "ha_deadtime": timings.deadtime,
        "ha_initdead": timings.initdead,
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
    vip = cluster.vip
    if not _is_ip(vip.address) or not re.match(r"^[A-Za-z0-9._-]+$", vip.interface):
        raise ValueError(f"vip: {vip.address}/{vip.prefix} on {vip.interface!r} is not valid")

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
        "may_promote_path": shell_quote(MAY_PROMOTE_PATH),
        "primary_flag": shell_quote(PRIMARY_FLAG_PATH),
        "runtime_directory": shell_quote(RUNTIME_DIRECTORY),
        "lib_directory": shell_quote(LIB_DIRECTORY),
        "ready_timeout": READY_TIMEOUT,
        "promote_timeout": PROMOTE_TIMEOUT,
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
            "lib_directory": shell_quote(LIB_DIRECTORY)}


def boot_guard_dropin_path(cluster: Cluster) -> str:
    """The systemd drop-in of the cluster's unit that runs the boot guard before every start."""
    return (f"/etc/systemd/system/postgresql@{cluster.version}-{cluster.name}.service.d/"
            "pgcascade-boot-guard.conf")


def boot_guard_dropin_vars(topology: Topology) -> dict:
    """Variables of templates/postgresql-boot-guard.conf.j2."""
    cluster = topology.cluster
    _check_cluster(cluster)
    return {"boot_guard_path": BOOT_GUARD_PATH, "pg_version": cluster.version, "pg_cluster": cluster.name}


def heartbeat_dropin_vars(topology: Topology, node_name: str) -> dict:
    """Variables of templates/heartbeat-restart.conf.j2."""
    _ha_peer(topology, node_name)
    return {"node_name": node_name}


def ha_watch_unit_vars() -> dict:
    """Variables of templates/pgcascade-ha-watch.service.j2."""
    return {"ha_watch_path": HA_WATCH_PATH}


# ---------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------


def archive_wal_vars() -> dict:
    """Variables of templates/archive-wal.sh.j2 (shell-quoted)."""
    return {
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
    """The templated files of one host (variables: the render_vars_* / *_vars functions)."""
    node = _node(topology, node_name)
    config = topology.cluster.config_directory
    files = [
        ManagedFile("pgcascade.conf.j2", f"{config}/conf.d/{INCLUDE_FILE_NAME}",
                    "postgres", "postgres", "0644", False),
        ManagedFile("pg_hba.conf.j2", f"{config}/pg_hba.conf", "postgres", "postgres", "0640", False),
        ManagedFile("pgpass.j2", PGPASS_PATH, "postgres", "postgres", "0600", True),
        ManagedFile("archive-wal.sh.j2", ARCHIVE_WAL_PATH, "root", "root", "0755", False),
        ManagedFile("replication-status.sh.j2", REPLICATION_STATUS_PATH, "root", "root", "0755", False),
        ManagedFile("hostrules.json.j2", HOSTRULES_CONFIG_PATH, "root", "root", "0644", False),
    ]
    if topology.cluster.backup is not None:
        files += [ManagedFile("pgbackrest-cluster-host.conf.j2", PGBACKREST_CONFIG_PATH,
                              "postgres", "postgres", "0640", False),
                  ManagedFile("archive-pgbackrest.sh.j2", ARCHIVE_PGBACKREST_PATH, "root", "root", "0755", False)]
    if node in topology.vip_holders and topology.cluster.vip is not None:
        files += [
            ManagedFile("ha.cf.j2", f"{HA_DIRECTORY}/ha.cf", "root", "root", "0644", False),
            ManagedFile("haresources.j2", f"{HA_DIRECTORY}/haresources", "root", "root", "0644", False),
            ManagedFile("authkeys.j2", f"{HA_DIRECTORY}/authkeys", "root", "root", "0600", True),
            ManagedFile("hapostgres.j2", HAPOSTGRES_PATH, "root", "root", "0755", False),
            ManagedFile("pgcascade-vip.sh.j2", VIP_RESOURCE_PATH, "root", "root", "0755", False),
            # The failover scripts: ha-lib is sourced by the others, never run.
            ManagedFile("ha-lib.sh.j2", HA_LIB_PATH, "root", "root", "0644", False),
            ManagedFile("may-promote.sh.j2", MAY_PROMOTE_PATH, "root", "root", "0755", False),
            ManagedFile("boot-guard.sh.j2", BOOT_GUARD_PATH, "root", "root", "0755", False),
            ManagedFile("ha-watch.sh.j2", HA_WATCH_PATH, "root", "root", "0755", False),
            ManagedFile("postgresql-boot-guard.conf.j2", boot_guard_dropin_path(topology.cluster),
                        "root", "root", "0644", False),
            ManagedFile("pgcascade-ha-watch.service.j2", HA_WATCH_UNIT_PATH, "root", "root", "0644", False),
            ManagedFile("heartbeat-restart.conf.j2", HEARTBEAT_DROPIN_PATH, "root", "root", "0644", False),
        ]
    return tuple(files)


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
CASCADE_MONITOR_FAILURES = 3  # consecutive probes without an answer: the cascade is down
CASCADE_PROBE_TIMEOUT = 1  # seconds ping and pg_isready wait for the cascade
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
    """Variables of templates/cascade-monitor.sh.j2 (shell-quoted) for a standby of a cascade."""
    node = _node(topology, node_name)
    if node.upstream is None or _node(topology, node.upstream).upstream is None:
        raise ValueError(f"{node_name}: the cascade monitor runs on a standby of a cascading standby")
    cluster = topology.cluster
    _check_cluster(cluster)
    cascade = _node(topology, node.upstream)
    master = topology.master
    conninfo = [
        ("host", _check_address(master.address, master.name)),
        ("port", str(cluster.port)),
        ("user", cluster.replication_user),
        ("dbname", "postgres"),
        ("passfile", PGPASS_PATH),
        ("connect_timeout", str(CONNECT_TIMEOUT)),
        ("application_name", "pgcascade-cascade-monitor"),
    ]
    return {
        "node_name": node.name,
        "cascade_name": shell_quote(cascade.name),
        "cascade_address": shell_quote(_check_address(cascade.address, cascade.name)),
        "master_name": shell_quote(master.name),
        "master_address": shell_quote(master.address),
        "master_conninfo": shell_quote(" ".join(f"{k}={conninfo_value(v)}" for k, v in conninfo)),
        # pg_isready as the replication role on a replication connection: the cascade's pg_hba
        # admits this host for it, so the server asks for the password, pg_isready (no password:
        # passfile /dev/null) hangs up, and nothing is logged (as another user the server would
        # log a rejected connection every second).
        "cascade_ping_conninfo": shell_quote(" ".join(f"{k}={conninfo_value(v)}" for k, v in [
            ("host", cascade.address), ("port", str(cluster.port)), ("user", cluster.replication_user),
            ("dbname", "replication"), ("replication", "true"), ("passfile", "/dev/null"),
            ("application_name", "pgcascade-cascade-monitor")])),
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
        "failures_needed": CASCADE_MONITOR_FAILURES,
        "probe_timeout": CASCADE_PROBE_TIMEOUT,
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


# The templates of the cascade failover automation (deploys/cascade_failover.py), outside
# managed_files(): which hosts get them depends on planner.failover_cascade.
CASCADE_FAILOVER_TEMPLATES = ("cascade-failed.sh.j2", "cascade-monitor.service.j2", "cascade-monitor.sh.j2")
