"""Restores from the pgBackRest repository: point-in-time recovery onto a chosen host as a new,
separate cluster, and the rebuild of a standby from the repository (pure: facts in, a plan out).

A PITR target is exactly one of a time (with its time zone), an LSN or a named restore point.
It is checked against the repository before any host is touched: a time before the oldest
backup ended or after now (no WAL can exist yet), an LSN before the oldest backup's end or after
the primary's current LSN, an unknown stanza, a repository without backups. A restore point's
name is only known to the WAL: recovery that does not find it stops, and the task says so.

The restored cluster never archives (archive_mode off): its new timeline must not enter the
live cluster's stanza.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .backup_info import STATUS_MISSING_STANZA_DATA, STATUS_MISSING_STANZA_PATH, lsn_bytes
from .model import Topology
from .pgstate import PgStateDict
from .rebuild import plan_rebuild

DEFAULT_CLUSTER = "pitr"
DEFAULT_PORT = 5440
MARKER_NAME = "pgcascade-restore.json"  # in the restored cluster's configuration directory
_RESTORE_POINT = re.compile(r"[A-Za-z0-9 _.:@+-]{1,63}\Z")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}\Z")


@dataclass(frozen=True)
class Target:
    """One recovery target: kind is time, lsn or name; value as pgBackRest takes it."""

    kind: str
    value: str
    epoch: float | None = None  # time targets
    lsn: int | None = None  # lsn targets

    def describe(self) -> str:
        return {"time": "time", "lsn": "LSN", "name": "restore point"}[self.kind] + f" {self.value}"

    def pgbackrest_args(self) -> list[str]:
        return [f"--type={self.kind}", f"--target={self.value}"]


@dataclass(frozen=True)
class RestorePlan:
    action: str  # "restore" | "nothing" | "refuse"
    reason: str
    target: Target | None = None
    marker: dict = field(default_factory=dict)  # what the restored cluster's marker file says


class BadTarget(ValueError):
    """The target the DBA gave cannot be used (the message says how to give it)."""


def _timestamp(text: str) -> datetime:
    raw = text.strip().replace("T", " ")
    if re.search(r"[+-]\d{2}$", raw):  # PostgreSQL's short offset: +00
        raw += ":00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadTarget(f"time {text!r} is not a timestamp (use e.g. '2026-12-01 15:30:00+00')") from None
    if value.tzinfo is None:
        raise BadTarget(f"time {text!r} has no time zone (add it, e.g. '{text.strip()}+00'): a time without "
                        "one is read in each server's own zone")
    return value


def parse_target(time: str | None = None, lsn: str | None = None, restore_point: str | None = None) -> Target:
    """Exactly one of the three; raises BadTarget."""
    given = [(k, v) for k, v in (("time", time), ("lsn", lsn), ("name", restore_point)) if v not in (None, "")]
    if len(given) != 1:
        raise BadTarget("give exactly one recovery target: --data time='YYYY-MM-DD HH:MM:SS+00', "
                        "--data lsn=X/Y or --data restore_point=NAME")
    kind, value = given[0]
    value = str(value)
    if kind == "time":
        stamp = _timestamp(value)
        text = stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        return Target("time", text, epoch=stamp.timestamp())
    if kind == "lsn":
        if not _LSN.match(value.strip()):
            raise BadTarget(f"lsn {value!r} is not an LSN (use X/Y in hexadecimal, e.g. 0/3000060)")
        high, low = value.strip().upper().split("/")
        text = f"{int(high, 16):X}/{int(low, 16):X}"
        return Target("lsn", text, lsn=lsn_bytes(text))
    if not _RESTORE_POINT.match(value):
        raise BadTarget(f"restore point {value!r}: use up to 63 letters, digits, spaces and _.:@+-")
    return Target("name", value)


def _when(epoch: float | int | None) -> str:
    if epoch is None:
        return "unknown"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def _lsn_text(lsn: int | None) -> str:
    return "unknown" if lsn is None else f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def stanza_problem(topology: Topology, stanza: str | None = None) -> str | None:
    """Why the cluster has no stanza of that name (None: the inventory's stanza, or none asked)."""
    backup = topology.cluster.backup
    if backup is None:
        return "the inventory has no backup repository (add a host to group backup and deploy)"
    if stanza and stanza != backup.stanza:
        return (f"unknown stanza {stanza!r}: this cluster's stanza in the repository on {backup.host} is "
                f"{backup.stanza!r}")
    return None


def repository_problem(topology: Topology, repository: Mapping | None, stanza: str | None = None,
                       repository_reached: bool = True) -> str | None:
    """Why the repository cannot serve a restore of this cluster, or None."""
    if problem := stanza_problem(topology, stanza):
        return problem
    backup = topology.cluster.repository
    if not repository_reached or not repository:
        return (f"the backup repository host {backup.host} ({backup.address}) cannot be reached: start it or "
                "repair ssh; nothing was changed")
    if not repository.get("installed"):
        return f"{backup.host} has no pgBackRest: run the deploy first"
    info = (repository.get("stanzas") or {}).get(backup.stanza)
    if not info or info["status_code"] in (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
        return f"stanza {backup.stanza!r} is not in the repository on {backup.host}: run the deploy first"
    if not info["backups"]:
        return f"stanza {backup.stanza!r} has no backup yet: take one (systemctl start pgcascade-backup@full on {backup.host})"
    return None


def target_problem(target: Target, backups: Sequence[Mapping], now: float | None,
                   newest_lsn: int | None) -> str | None:
    """Why the repository cannot reach this target, or None. backups: oldest first; now: the
    clock of the cluster (epoch s); newest_lsn: the primary's current WAL position."""
    oldest = backups[0]
    if target.kind == "time":
        if oldest.get("stop") is not None and target.epoch is not None and target.epoch < oldest["stop"]:
            return (f"target time {target.value} is before the oldest backup ({oldest['label']}, ended "
                    f"{_when(oldest['stop'])}): the earliest time this repository restores to is "
                    f"{_when(oldest['stop'])}")
        if now is not None and target.epoch is not None and target.epoch > now:
            return (f"target time {target.value} is after the newest WAL (the cluster's clock says "
                    f"{_when(now)}): nothing was written after now yet")
    if target.kind == "lsn":
        if oldest.get("lsn_stop") is not None and target.lsn is not None and target.lsn < oldest["lsn_stop"]:
            return (f"target LSN {target.value} is before the end of the oldest backup ({oldest['label']}, "
                    f"{_lsn_text(oldest['lsn_stop'])})")
        if newest_lsn is not None and target.lsn is not None and target.lsn > newest_lsn:
            return (f"target LSN {target.value} is after the newest WAL (the primary is at "
                    f"{_lsn_text(newest_lsn)})")
    return None


def marker_for(stanza: str, target: Target) -> dict:
    return {"stanza": stanza, "type": target.kind, "target": target.value}


def marker_text(marker: Mapping) -> str:
    return json.dumps(dict(marker), sort_keys=True) + "\n"


def plan_pitr(topology: Topology, host_name: str, target: Target, repository: Mapping | None, clusters: Sequence[Mapping],
              marker: Mapping | None, cluster_name: str, port: int, now: float | None, newest_lsn: int | None,
              live_fact: Mapping | None = None, confirm: str | None = None) -> RestorePlan:
    """Restore `target` onto host_name as cluster `cluster_name` (port `port`).

    clusters: the host's PgClusters; marker: the marker file of that cluster (None: none);
    live_fact: the host's PgState of the live cluster (a PostgreSQL host of the topology).
    """
    c = topology.cluster
    if not _CLUSTER_NAME.match(cluster_name):
        return RestorePlan("refuse", f"cluster name {cluster_name!r}: use letters, digits and _.-")
    if not isinstance(port, int) or not 1024 <= port <= 65535:
        return RestorePlan("refuse", f"port {port!r}: use a free port from 1024 to 65535")
    if problem := repository_problem(topology, repository):
        return RestorePlan("refuse", problem)
    assert repository is not None  # repository_problem names a missing one
    backups = repository["stanzas"][c.repository.stanza]["backups"]
    if problem := target_problem(target, backups, now, newest_lsn):
        return RestorePlan("refuse", problem)
    wanted = marker_for(c.repository.stanza, target)
    where = f"{host_name}: {c.version}/{cluster_name}"
    live = cluster_name == c.name and host_name in {n.name for n in topology.nodes}
    if live:
        fact = live_fact or {}
        if fact.get("running") and fact.get("in_recovery") is False:
            return RestorePlan("refuse", f"{where} is the cluster's running primary: never restored over "
                                         "(restore onto another host or cluster, or fail over first)")
        if confirm != host_name:
            return RestorePlan("refuse", f"{where} is a live member of the cluster: restoring over it replaces "
                                         f"its data; give confirm={host_name} to do it, or restore as a separate "
                                         f"cluster (the default, cluster={DEFAULT_CLUSTER})")
    existing = next((x for x in clusters if x.get("version") == c.version and x.get("cluster") == cluster_name),
                    None)
    if existing is not None and not live:
        if marker and dict(marker) == wanted and existing.get("running"):
            return RestorePlan("nothing", f"{where} already holds the restore to {target.describe()} "
                                          f"(port {existing.get('port')})", target, wanted)
        what = (f"restored to {marker.get('type')} {marker.get('target')}" if marker
                else "not made by a restore of this task")
        return RestorePlan("refuse", f"{where} exists ({what}): drop it first (pyinfra ... "
                                     f"operations.clusters.drop_cluster version={c.version} cluster={cluster_name} "
                                     f"confirm={cluster_name} --limit {host_name}) or give another cluster=NAME")
    if not live:
        taken = [x for x in clusters if x.get("port") == port]
        if taken:
            other = taken[0]
            return RestorePlan("refuse", f"{host_name}: port {port} is taken by cluster {other['version']}/"
                                         f"{other['cluster']}: give another port=N")
    how = "over the live member (confirmed)" if live else f"as a new cluster on port {port}"
    return RestorePlan("restore", f"{where}: restore of stanza {c.repository.stanza} to {target.describe()} "
                                  f"{how}; it will not archive", target, wanted)


def newest_primary(facts_by_host: Mapping[str, Mapping | None]) -> Mapping | None:
    """The running primary on the newest timeline among the cluster's facts (None: none)."""
    primaries = [f for f in facts_by_host.values()
                 if f and f.get("running") and f.get("in_recovery") is False]
    if not primaries:
        return None
    return max(primaries, key=lambda f: (f.get("timeline") or 0, (f.get("lsn") or {}).get("current") or 0))


def plan_rebuild_from_repository(topology: Topology, node_name: str, fact: PgStateDict | None,
                                 upstream_fact: PgStateDict | None, master_fact: PgStateDict | None,
                                 repository: Mapping | None, force: bool = False) -> RestorePlan:
    """Rebuild a standby from the repository (a delta restore, then streaming from its upstream):
    when planner.rebuild allows a base backup, and the repository has a backup of this cluster."""
    plan = plan_rebuild(topology, node_name, fact, upstream_fact, master_fact, force)
    if plan.action != "clone":
        return RestorePlan(plan.action, plan.reason)
    if problem := repository_problem(topology, repository):
        return RestorePlan("refuse", f"{node_name} cannot be rebuilt from the repository: {problem}")
    assert repository is not None  # repository_problem names a missing one
    backup = topology.cluster.repository
    newest = repository["stanzas"][backup.stanza]["backups"][-1]
    upstream = topology.node(node_name).upstream
    state = plan.reason.split(": a fresh base backup", 1)[0]
    return RestorePlan("restore", f"{state}: a delta restore of backup {newest['label']} from the repository on "
                                  f"{backup.host} replaces it, then it replays the archive and streams from {upstream}")
