"""Paths and timings on the hosts, shared by the planner, the operations and the templates."""
from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Paths on the hosts (shared with the operations)
# ---------------------------------------------------------------------------------------------

POSTGRES_HOME = "/var/lib/postgresql"
PGPASS_PATH = f"{POSTGRES_HOME}/.pgpass"
KNOWN_HOSTS_PATH = f"{POSTGRES_HOME}/.ssh/known_hosts"
# archive-wal's multiplexed ssh connections (one per child, %C: a hash of user, host and port)
ARCHIVE_SSH_CONTROL_PATH = f"{POSTGRES_HOME}/.ssh/archive-%C"
# archive-wal's backlog of WAL files for children that did not take them (hostrules.wal_backlog)
ARCHIVE_BACKLOG_DIRECTORY = f"{POSTGRES_HOME}/archive-backlog"
SOCKET_DIRECTORY = "/var/run/postgresql"
# The clone of a standby (pg_basebackup -l): its backup_label's LABEL. A base backup writes
# backup_label first and pg_control last, and recovery renames backup_label when it starts, so
# a data directory holding this label was copied by a clone and never run.
CLONE_LABEL = "pgcascade clone"


def clone_marker_path(version: int, cluster: str) -> str:
    """A clone in progress: written once the planner found the data directory worth nothing (it
    holds the system identifier of the never-used cluster it replaces, or "none"), removed once
    the clone runs as a standby; a run that finds it does an interrupted clone again."""
    return f"{POSTGRES_HOME}/.pgcascade-clone-{version}-{cluster}"


LIB_DIRECTORY = "/usr/local/lib/pgcascade"
ARCHIVE_WAL_PATH = f"{LIB_DIRECTORY}/archive-wal"
MAY_PROMOTE_PATH = f"{LIB_DIRECTORY}/may-promote"
HA_LIB_PATH = f"{LIB_DIRECTORY}/ha-lib"
BOOT_GUARD_PATH = f"{LIB_DIRECTORY}/boot-guard"
POSTGRES_RESTART_PATH = f"{LIB_DIRECTORY}/postgres-restart"  # starts a killed server again (hosts without heartbeat)
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
# Written by ha-watch as it hands the resources over (its primary hung or down): the resource
# stops that follow release at once; removed when hapostgres next sets the primary flag.
HAND_OVER_MARKER_PATH = f"{RUNTIME_DIRECTORY}/handing-over"
# Until when (epoch seconds, this host's clock) a restart of the cascade is planned, not a failure:
# written before a deploy or a rolling restart restarts it, on the standbys whose monitor watches it.
CASCADE_HOLD_PATH = f"{RUNTIME_DIRECTORY}/cascade-restart-planned"
REPLICATION_STATUS_PATH = f"{LIB_DIRECTORY}/replication-status"
HA_DIRECTORY = "/etc/ha.d"
# heartbeat's gratuitous-ARP sender, and where IPaddr2 keeps its pid (IPaddr2's stop ends it).
SEND_ARP_PATH = "/usr/libexec/heartbeat/send_arp"
SEND_ARP_PID_DIRECTORY = "/run/resource-agents"
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
# libpq's own minimum is 2 s). Every master failover waits this long once (the probes from here
# and from the witnesses run at once). A server silent from the
# cascade and a witness at once while heartbeat finds its node dead is hung or gone; were it
# only slow, promoting it away would cost an unneeded failover, never a split brain: it cannot
# acknowledge a commit once its synchronous standby, the cascade, is promoted.
PROBE_TIMEOUT = 0.3
HA_SSH_TIMEOUT = 3  # seconds for one ssh round trip to another cluster host (failover scripts)
WATCH_INTERVAL = 1  # seconds between two checks of ha-watch (a dead primary is restarted within about that)
# ha-watch asks heartbeat for the resources for the newest primary once it has held none for
# this many seconds (heartbeat settles after a restart: initdead, then the acquisition), and
# not more often than that.
RECLAIM_AFTER = 12

SUPPORTED_VERSIONS = range(13, 18)

