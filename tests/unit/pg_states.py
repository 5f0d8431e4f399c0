"""PgState dicts (docs/architecture.md) the unit tests share: each kind of server on timeline 1
of our cluster, the five-host topology they belong to, and the cluster after a failover."""
from __future__ import annotations

from planner.topology import build_topology

SYSID = "7300000000000000001"  # the cluster (the master's system identifier)
OTHER_SYSID = "7399999999999999999"  # a cluster that is not ours


def pg_state(kind: str = "primary", **overrides) -> dict:
    """A PgState dict (docs/architecture.md) of a given kind, on timeline 1 of our cluster."""
    state = {
        "installed": True,
        "cluster_exists": True,
        "data_directory": "/var/lib/postgresql/15/main",
        "running": True,
        "in_recovery": False,
        "standby_signal": False,
        "system_identifier": SYSID,
        "timeline": 1,
        "lsn": {"current": 50331976, "receive": None, "replay": None},
        "primary_conninfo": "",
        "wal_receiver": None,
        "replication": [],
        "pending_restart": [],
        "settings": {},
        "archiver": None,
        "roles": {},
        "pristine": False,
        "clone_marker": None,
        "backup_label": None,
    }
    if kind in ("standby", "stopped_standby"):
        state.update(in_recovery=True, standby_signal=True, lsn={"current": None, "receive": 50331976, "replay": 50331976})
    if kind in ("stopped_primary", "stopped_standby"):
        state.update(running=False, wal_receiver=None, lsn={"current": None, "receive": None, "replay": None},
                     pristine=None)
    if kind == "absent":
        state.update(cluster_exists=False, data_directory=None, running=False, system_identifier=None, timeline=None)
    if kind == "not_installed":
        state.update(installed=False, cluster_exists=False, data_directory=None, running=False,
                     system_identifier=None, timeline=None)
    if kind == "unreadable":  # PG_VERSION but no readable pg_control: in_recovery is standby.signal
        state.update(running=False, system_identifier=None, timeline=None, in_recovery=False, pristine=None)
    if kind == "empty":  # no PG_VERSION: in_recovery unknown
        state.update(running=False, system_identifier=None, timeline=None, in_recovery=None, pristine=None)
    state.update(overrides)
    return state


def five_hosts_topology():
    def host(group, address, upstream=None, application_name=None):
        data = {"ssh_hostname": address}
        if upstream:
            data.update(pg_upstream=upstream, pg_application_name=application_name)
        return {"groups": [group], "data": data}

    return build_topology({
        "pg1": host("master", "10.0.0.1"),
        "pg2": host("cascade", "10.0.0.2", "pg1", "standby_1"),
        "pg3": host("downstream", "10.0.0.3", "pg2", "standby_2"),
        "pg4": host("downstream", "10.0.0.4", "pg2", "standby_3"),
        "pg5": host("downstream", "10.0.0.5", "pg4", "standby_4"),  # a deeper chain under pg4
    })


TOPOLOGY = five_hosts_topology()


def conninfo(name: str) -> str:
    node = TOPOLOGY.node(name)
    upstream = TOPOLOGY.node(node.upstream)
    return (
        f"host={upstream.address} port=5432 user=replicator application_name={node.application_name} "
        "passfile=/var/lib/postgresql/.pgpass"
    )


STANDBY_SETTINGS = {"restore_command": "cp /var/lib/postgresql/wal_archive/%f %p", "recovery_target_timeline": "latest"}


def configured_standby(name: str, kind: str = "standby", **overrides) -> dict:
    """A standby of our cluster with exactly the wanted settings."""
    upstream = TOPOLOGY.node(TOPOLOGY.node(name).upstream)
    extra = {}
    if kind == "standby":
        extra["wal_receiver"] = {"status": "streaming", "sender_host": upstream.address, "sender_port": 5432, "received_tli": 1}
    wanted = {"primary_conninfo": conninfo(name), "settings": dict(STANDBY_SETTINGS), **extra}
    return pg_state(kind, **{**wanted, **overrides})


MASTER_UP = pg_state("primary")
CASCADE_UP = configured_standby("pg2")
PG4_UP = configured_standby("pg4")


AFTER_FAILOVER = {  # pg2 promoted (timeline 2), pg3-pg5 follow it, pg1 is the stopped former master
    "pg1": pg_state("stopped_primary"),
    "pg2": pg_state("primary", timeline=2),
    "pg3": configured_standby("pg3", timeline=2), "pg4": configured_standby("pg4", timeline=2),
    "pg5": configured_standby("pg5", timeline=2),
}
