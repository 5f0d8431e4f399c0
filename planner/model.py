"""The validated cluster model: what the inventory says the cluster should be.

Pure data: built by planner.topology.build_topology(), read by every other layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Role = Literal["master", "cascade", "downstream"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True)
class Vip:
    address: str
    prefix: int
    interface: str


@dataclass(frozen=True)
class HeartbeatTimings:
    """Seconds (heartbeat takes them to the millisecond). The defaults detect a dead master within
    2.5 s of its last heartbeat and leave a machine that stalls 2 s (a GC-like pause) alone:
    heartbeats every 0.25 s, so the first one after the stall arrives 0.5 s before the dead time
    (bench/failover_timing.py measures both)."""

    keepalive: float = 0.25
    warntime: float = 1.5
    deadtime: float = 2.5
    initdead: float = 6


@dataclass(frozen=True)
class AppHost:
    address: str
    database: str = "all"
    user: str = "all"


@dataclass(frozen=True)
class BackupRepository:
    """The pgBackRest repository host (inventory group `backup`) and the cluster's stanza in it."""

    host: str  # inventory name of the repository host
    address: str  # what the cluster hosts use to reach it (ssh)
    stanza: str = "main"
    path: str = "/var/lib/pgbackrest"
    retention_full: int = 2  # full backups kept (with the WAL they need)
    retention_diff: int = 7  # differential backups kept
    full_schedule: str = "Sun *-*-* 01:00:00"  # systemd OnCalendar
    diff_schedule: str = "Mon..Sat *-*-* 01:00:00"
    check_schedule: str = "hourly"
    compress_type: str = "zst"
    process_max: int = 2
    max_age_hours: int = 48  # tasks.status: a problem when the last good backup is older


@dataclass(frozen=True)
class Cluster:
    """Cluster-wide settings, identical on every host."""

    version: int = 15
    name: str = "main"
    port: int = 5432
    replication_user: str = "replicator"
    archive_dir: str = "/var/lib/postgresql/wal_archive"
    synchronous: bool = True
    settings: tuple[tuple[str, str], ...] = ()  # extra GUCs, sorted by name
    app_hosts: tuple[AppHost, ...] = ()
    vip: Vip | None = None
    heartbeat: HeartbeatTimings = field(default_factory=HeartbeatTimings)
    apt_repository: dict | None = None
    secrets_file: str | None = None  # KEY=VALUE file read when a secret's env var is not set
    cascade_monitor: bool = True  # the cascade's standbys fail over by themselves when it dies
    backup: BackupRepository | None = None  # pgBackRest; None: no backups configured
    archive_backlog_mb: int = 1024  # WAL kept per child that does not take it, then: rebuild it

    @property
    def repository(self) -> BackupRepository:
        """The backup repository, for the steps that run only when one is configured."""
        if self.backup is None:
            raise ValueError("no backup repository in the inventory (its group backup is empty)")
        return self.backup

    @property
    def data_directory(self) -> str:
        return f"/var/lib/postgresql/{self.version}/{self.name}"

    @property
    def config_directory(self) -> str:
        return f"/etc/postgresql/{self.version}/{self.name}"

    @property
    def bin_directory(self) -> str:
        return f"/usr/lib/postgresql/{self.version}/bin"


@dataclass(frozen=True)
class Node:
    name: str  # inventory name; also the hostname (uname -n) heartbeat uses
    role: Role
    address: str  # what the other cluster hosts use to reach it
    upstream: str | None  # inventory name of its upstream; None on the master
    application_name: str | None  # None on the master
    tier: int  # 0 for the master, upstream's tier + 1 otherwise


@dataclass(frozen=True)
class Topology:
    cluster: Cluster
    nodes: tuple[Node, ...]  # ordered by tier, then name

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def upstream_of(self, node: Node) -> Node:
        if node.upstream is None:
            raise ValueError(f"{node.name} is the master: it has no upstream")
        return self.node(node.upstream)

    @property
    def master(self) -> Node:
        return next(n for n in self.nodes if n.role == "master")

    def children(self, name: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.upstream == name)

    def tiers(self) -> tuple[tuple[Node, ...], ...]:
        depth = max(n.tier for n in self.nodes)
        return tuple(tuple(n for n in self.nodes if n.tier == t) for t in range(depth + 1))

    @property
    def vip_holders(self) -> tuple[Node, ...]:
        """The master and the cascade: the heartbeat peers, between which the VIP moves."""
        return tuple(n for n in self.nodes if n.role in ("master", "cascade"))
