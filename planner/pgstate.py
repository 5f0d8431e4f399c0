"""The PgState contract: what facts.pg_state.PgState returns for one PostgreSQL host.

Typed here, in the pure planner, so that the planner and the operations read the same fields by
name (``fact["timeline"]``), and mypy checks each reader. Every key is always present (the fact
fills in None, [] or {} when a value is unknown); docs/architecture.md describes each one.
"""
from __future__ import annotations

from typing import Literal, TypedDict


class Lsn(TypedDict):
    """WAL positions in bytes from 0/0 (None when unknown or not applicable)."""

    current: int | None  # a primary's pg_current_wal_lsn()
    receive: int | None  # a standby's last received position
    replay: int | None  # a standby's last replayed position


class WalReceiver(TypedDict):
    """The row of pg_stat_wal_receiver."""

    status: str | None
    sender_host: str | None
    sender_port: int | None
    received_tli: int | None


class ReplicationRow(TypedDict):
    """One row of pg_stat_replication (a standby streaming from this server)."""

    application_name: str | None
    client_addr: str | None
    state: str | None
    sync_priority: int | None
    sync_state: str | None
    replay_lag_bytes: int | None
    flush_lag_bytes: int | None


class Archiver(TypedDict):
    """pg_stat_archiver's counters."""

    archived_count: int | None
    failed_count: int | None
    last_archived_wal: str | None
    last_failed_wal: str | None


class Role(TypedDict):
    """A role the fact was asked about, from pg_authid."""

    replication: bool
    login: bool
    password: str | None
    reads_all_stats: bool | None  # None: unknown (recordings older than the key)
    can_rewind: bool | None


class PgStateDict(TypedDict):
    """One PostgreSQL cluster on one host, as the PgState fact reports it."""

    installed: bool
    cluster_exists: bool
    data_directory: str | None
    running: bool
    in_recovery: bool | None
    standby_signal: bool
    system_identifier: str | None
    timeline: int | None
    lsn: Lsn
    primary_conninfo: str | None
    wal_receiver: WalReceiver | None
    replication: list[ReplicationRow]
    pending_restart: list[str]
    settings: dict[str, str | None]
    archiver: Archiver | None
    roles: dict[str, Role] | None
    pristine: bool | None
    clone_marker: str | None  # an interrupted clone's marker: what it replaces (paths.clone_marker_path)
    backup_label: str | None  # the LABEL of a backup_label in the data directory (a copy never run)


# What a host holds, in one word (planner.standby_plan.server_state).
ServerState = Literal["unreachable", "absent", "unreadable", "standby", "primary"]


def streams_from(fact: PgStateDict | None, address: str) -> bool:
    """Its WAL receiver streams from `address` (whether the server runs is the caller's to check)."""
    receiver = fact["wal_receiver"] if fact else None
    return bool(receiver and receiver["status"] == "streaming" and receiver["sender_host"] == address)


def timeline_or_zero(fact: PgStateDict | None) -> int:
    """The fact's timeline; 0 when unknown (no fact, or a cluster whose timeline could not be read)."""
    return (fact["timeline"] or 0) if fact else 0
