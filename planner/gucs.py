"""The PostgreSQL settings of each host's include file conf.d/pgcascade.conf, derived from the
Topology (and the inventory's pg_settings)."""
from __future__ import annotations

from planner.backup import archive_push_command
from planner.checks import (
    _CONF_DIRECTIVES,
    _GUC_NAME,
    _application_name,
    _check_address,
    _check_cluster,
    _node,
)
from planner.model import Cluster, Node, Topology
from planner.paths import (
    ARCHIVE_NOWHERE,
    ARCHIVE_WAL_PATH,
    CONNECT_TIMEOUT,
    INCLUDE_FILE_NAME,
    PGPASS_PATH,
)
from planner.quoting import (
    _percent_escape,
    _syncrep_name,
    conf_quote,
    conf_value,
    conninfo,
    shell_quote,
)

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
    # A replication connection that hears nothing for this long is dropped, at both ends: a link
    # gone silent (a cut cable, a frozen host) is seen in seconds, and once it is back the standby
    # connects afresh instead of waiting on TCP's retransmission back-off. An idle connection is
    # never that silent: the standby confirms every wal_receiver_status_interval and asks its
    # upstream for an answer after half of wal_receiver_timeout (both default 1min).
    "wal_receiver_timeout": "10s",
    "wal_sender_timeout": "10s",
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
    """Unquoted archive_command: archive-wal with the archive dir and the child addresses baked in
    (and the push to the backup repository, when the cluster has one)."""
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

    No password: libpq reads it from the postgres user's .pgpass (passfile). connect_timeout:
    while the upstream is unreachable (a cut link) each connection attempt ends after it, and the
    next one follows wal_retrieve_retry_interval later, so streaming resumes within seconds of the
    link's return (without it an attempt waits on the kernel's SYN retries, two minutes).
    """
    node = _node(topology, node_name)
    if node.upstream is None:
        return ""
    upstream = _node(topology, node.upstream)
    cluster = topology.cluster
    return conninfo([
        ("host", _check_address(upstream.address, upstream.name)),
        ("port", cluster.port),
        ("user", cluster.replication_user),
        ("application_name", _application_name(node)),
        ("passfile", PGPASS_PATH),
        ("connect_timeout", CONNECT_TIMEOUT),
    ])


def synchronous_standby_names(topology: Topology, node_name: str) -> str:
    """Unquoted synchronous_standby_names.

    With pg_synchronous, the master waits for its first direct standby (FIRST 1 over its
    children's application names, in topology order), and the cascade lists its own children:
    PostgreSQL ignores the setting while the cascade is in recovery, and it takes effect the
    moment the cascade is promoted (its first child becomes the synchronous standby).
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


def wal_senders_needed(topology: Topology) -> int:
    """max_wal_senders, the same on every host (a hot standby needs at least its primary's): each
    child streams with one sender, and a base backup of a child (the deploy clones the children of a
    host at once) takes two more. At least 10, PostgreSQL's default."""
    children = max((sum(1 for n in topology.nodes if n.upstream == p.name) for p in topology.nodes), default=0)
    return max(int(TUNABLE_DEFAULTS["max_wal_senders"]), 3 * children + 2)


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
    values["max_wal_senders"] = extras.get("max_wal_senders", str(wal_senders_needed(topology)))
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


