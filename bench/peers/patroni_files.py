"""What the Patroni peer's hosts get: etcd's, Patroni's and vip-manager's configuration, as text.

Pure: member list and timing in, file contents out (byte-identical for identical input), so the
bench deploy stays a list of file and service steps and these rules are unit-tested.

Timing profiles (Patroni's dynamic configuration, applied through its REST API):
- DEFAULTS: what Patroni uses when nothing is set (ttl 30, loop_wait 10, retry_timeout 10);
- FASTEST: the smallest values current Patroni accepts: ttl at least 20, loop_wait at least 1,
  retry_timeout at least 3, and loop_wait + 2 * retry_timeout <= ttl.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

SCOPE = "peers"
NAMESPACE = "/service/"
PG_VERSION = 15
DATA_DIR = f"/var/lib/postgresql/{PG_VERSION}/patroni"
CONFIG_PATH = "/etc/patroni/config.yml"
ETCD_DEFAULTS_PATH = "/etc/default/etcd"
VIP_MANAGER_DEFAULTS_PATH = "/etc/default/vip-manager"
REST_PORT = 8008
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380

DEFAULTS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
FASTEST = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
PROFILES = {"defaults": DEFAULTS, "fastest": FASTEST}
MINIMUMS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}


@dataclass(frozen=True)
class Member:
    name: str
    address: str


def timing_problems(timing: dict) -> list[str]:
    """Why current Patroni would refuse this timing (empty when it accepts it)."""
    problems = [f"{key} {timing[key]} is below Patroni's minimum {low}"
                for key, low in MINIMUMS.items() if timing[key] < low]
    if timing["loop_wait"] + 2 * timing["retry_timeout"] > timing["ttl"]:
        problems.append(f"loop_wait + 2 * retry_timeout = {timing['loop_wait'] + 2 * timing['retry_timeout']}"
                        f" exceeds ttl {timing['ttl']}")
    return problems


def leader_key() -> str:
    """The etcd (v2 API) key Patroni keeps the leader's name in; vip-manager watches it."""
    return f"{NAMESPACE}{SCOPE}/leader"


def etcd_defaults(me: Member, members: list[Member]) -> str:
    """/etc/default/etcd: a static three-node cluster; the v2 API on, since Patroni 3.0's `etcd`
    client and vip-manager 1.0 both speak v2 (etcd 3.4 turns it off by default)."""
    cluster = ",".join(f"{m.name}=http://{m.address}:{ETCD_PEER_PORT}" for m in members)
    lines = {
        "ETCD_NAME": me.name,
        "ETCD_DATA_DIR": "/var/lib/etcd/peers",
        "ETCD_LISTEN_PEER_URLS": f"http://{me.address}:{ETCD_PEER_PORT}",
        "ETCD_LISTEN_CLIENT_URLS": f"http://{me.address}:{ETCD_CLIENT_PORT},http://127.0.0.1:{ETCD_CLIENT_PORT}",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://{me.address}:{ETCD_PEER_PORT}",
        "ETCD_ADVERTISE_CLIENT_URLS": f"http://{me.address}:{ETCD_CLIENT_PORT}",
        "ETCD_INITIAL_CLUSTER": cluster,
        "ETCD_INITIAL_CLUSTER_STATE": "new",
        "ETCD_INITIAL_CLUSTER_TOKEN": f"{SCOPE}-etcd",
        "ETCD_ENABLE_V2": "true",
    }
    return "".join(f'{key}="{value}"\n' for key, value in lines.items())


def vip_manager_defaults(me: Member, members: list[Member], vip: str, prefix: int, interface: str) -> str:
    """/etc/default/vip-manager (read by Debian's vip-manager.service): hold the VIP while the
    leader key names this host; every etcd member as an endpoint; its default 1 s interval."""
    endpoints = ",".join(f"http://{m.address}:{ETCD_CLIENT_PORT}" for m in members)
    lines = {
        "VIP_IP": vip, "VIP_MASK": str(prefix), "VIP_IFACE": interface, "VIP_KEY": leader_key(),
        "VIP_HOST": me.name, "VIP_TYPE": "etcd", "VIP_ENDPOINT": endpoints,
    }
    return "".join(f'{key}="{value}"\n' for key, value in lines.items())


def patroni_config(me: Member, members: list[Member], *, subnet: str, replication_password: str,
                   superuser_password: str, timing: dict) -> str:
    """/etc/patroni/config.yml (JSON is YAML): synchronous mode on, pg_rewind on, replication
    slots, the same PostgreSQL 15 as pgcascade's hosts; clients and replication from the subnet."""
    problems = timing_problems(timing)
    if problems:
        raise ValueError(f"Patroni timing {timing}: " + "; ".join(problems))
    config = {
        "scope": SCOPE,
        "namespace": NAMESPACE,
        "name": me.name,
        "restapi": {"listen": f"{me.address}:{REST_PORT}", "connect_address": f"{me.address}:{REST_PORT}"},
        "etcd": {"hosts": [f"{m.address}:{ETCD_CLIENT_PORT}" for m in members]},
        "bootstrap": {
            "dcs": {
                **timing,
                "synchronous_mode": True,
                "maximum_lag_on_failover": 1048576,
                "postgresql": {
                    "use_pg_rewind": True,
                    "remove_data_directory_on_rewind_failure": True,
                    "use_slots": True,
                    "parameters": {"wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                                   "max_wal_senders": 10, "max_replication_slots": 10,
                                   "wal_keep_size": "512MB"},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
        },
        "postgresql": {
            "listen": "0.0.0.0:5432",
            "connect_address": f"{me.address}:5432",
            "data_dir": DATA_DIR,
            "bin_dir": f"/usr/lib/postgresql/{PG_VERSION}/bin",
            "pgpass": "/var/lib/postgresql/.pgpass-patroni",
            "use_unix_socket": True,
            "authentication": {
                "superuser": {"username": "postgres", "password": superuser_password},
                "replication": {"username": "replicator", "password": replication_password},
                "rewind": {"username": "postgres", "password": superuser_password},
            },
            "parameters": {"unix_socket_directories": "/var/run/postgresql", "password_encryption": "scram-sha-256"},
            "pg_hba": [
                "local all all peer",
                "host all all 127.0.0.1/32 scram-sha-256",
                # Patroni's own replication connection to its local server (IDENTIFY_SYSTEM: a
                # replica's timeline, which decides whether a former leader needs pg_rewind); the
                # line every Patroni sample configuration has. Without it a demoted leader never
                # learns its timeline, is never rewound, and the cluster has no synchronous standby.
                "host replication replicator 127.0.0.1/32 scram-sha-256",
                f"host replication replicator {subnet} scram-sha-256",
                f"host all all {subnet} scram-sha-256",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
