"""PgClusters: the PostgreSQL clusters of a host, as Debian's ``pg_lsclusters`` reports them.

``pg_lsclusters --json`` (postgresql-common 2xx, Debian 12's 248 among them) is parsed; an older
postgresql-common without ``--json`` falls back to the plain columns of ``pg_lsclusters
--no-header`` (Ver Cluster Port Status Owner Data-directory Log-file). A host without
postgresql-common has no clusters (``[]``), and the fact never fails for that.

The JSON also carries each cluster's postgresql.conf settings (``config``): they are dropped
here, so nothing of them (a ``primary_conninfo``, say) ends up in the parsed fact.

Run it as root (the lab's ssh user, or ``--sudo``): as root pg_lsclusters sees standby.signal in
every data directory, so ``recovery`` is right for stopped clusters too.
"""
from __future__ import annotations

import json

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

_COMMAND = (
    "if command -v pg_lsclusters >/dev/null 2>&1; then "
    "pg_lsclusters --json 2>/dev/null || pg_lsclusters --no-header; "
    "else echo '[]'; fi"
)


def _version(value, where: str):
    """15 -> 15; '9.6' stays '9.6' (old clusters are listed, not managed)."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    if not text or any(c.isspace() for c in text):
        raise FactProcessError(f"PgClusters: {where}: bad version {value!r}")
    return text


def _port(value, where: str):
    if value is None or value == "<unknown>":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FactProcessError(f"PgClusters: {where}: bad port {value!r}") from None


def _unknown(value):
    return None if value in (None, "", "<unknown>") else value


def _status(running: bool, recovery: bool, extra: list[str]) -> str:
    """The Status column as pg_lsclusters writes it: online|down[,recovery][,...]."""
    return ",".join(["online" if running else "down"] + (["recovery"] if recovery else []) + extra)


def _from_json(doc) -> list[dict]:
    if not isinstance(doc, list):
        raise FactProcessError(f"PgClusters: pg_lsclusters --json did not print a list: {doc!r:.200}")
    clusters = []
    for info in doc:
        if not isinstance(info, dict) or "version" not in info or "cluster" not in info:
            raise FactProcessError(f"PgClusters: not a cluster entry: {info!r:.200}")
        where = f"{info['version']}/{info['cluster']}"
        running = bool(info.get("running"))
        recovery = bool(info.get("recovery"))
        extra = [info["supervisor"]] if info.get("supervisor") else []
        if info.get("binaries_missing"):
            extra.append("binaries_missing")
        clusters.append({
            "version": _version(info["version"], where),
            "cluster": str(info["cluster"]),
            "port": _port(info.get("port"), where),
            "status": _status(running, recovery, extra),
            "running": running,
            "recovery": recovery,
            "data_directory": _unknown(info.get("pgdata")),
            "log_file": _unknown(info.get("logfile")),
        })
    return clusters


def _from_columns(lines: list[str]) -> list[dict]:
    clusters = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split(None, 5)
        if len(fields) < 6 or fields[0] == "Ver":
            raise FactProcessError(f"PgClusters: not a pg_lsclusters line: {line!r:.200}")
        version, cluster, port, status, _owner, rest = fields
        words = status.split(",")
        if words[0] not in ("online", "down"):
            raise FactProcessError(f"PgClusters: {version}/{cluster}: unknown status {status!r}")
        paths = rest.split()  # "<data directory> <log destination>"
        clusters.append({
            "version": _version(version, f"{version}/{cluster}"),
            "cluster": cluster,
            "port": _port(port, f"{version}/{cluster}"),
            "status": status,
            "running": words[0] == "online",
            "recovery": "recovery" in words[1:],
            "data_directory": _unknown(" ".join(paths[:-1]) if len(paths) > 1 else paths[0]),
            "log_file": _unknown(paths[-1]) if len(paths) > 1 else None,
        })
    return clusters


def _order(cluster: dict):
    """9.6 before 15 before 16; then by name."""
    return tuple(int(part) for part in str(cluster["version"]).split(".") if part.isdigit()), cluster["cluster"]


class PgClusters(FactBase[list]):
    """
    The PostgreSQL clusters on a host, sorted by version and name, each a plain dict:

    .. code:: python

        {"version": 15, "cluster": "main", "port": 5432|None,
         "status": "online,recovery",   # pg_lsclusters' Status column
         "running": bool,               # online
         "recovery": bool,              # standby.signal / recovery.conf in its data directory
         "data_directory": str|None, "log_file": str|None}

    ``pyinfra INVENTORY fact facts.clusters.PgClusters`` prints it for every host.
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self) -> str:
        return _COMMAND

    def process(self, output) -> list[dict]:
        text = "\n".join(output).strip()
        if text.startswith("["):
            try:
                doc = json.loads(text)
            except ValueError as e:
                raise FactProcessError(f"PgClusters: pg_lsclusters --json is not JSON ({e}): {text!r:.300}") from None
            clusters = _from_json(doc)
        else:
            clusters = _from_columns(text.splitlines())
        return sorted(clusters, key=_order)
