"""A registry's test material: the three-host topology, its secrets, and the ManagedState a freshly
deployed host reports (shared by the registry's and the status report's tests)."""
from __future__ import annotations

from deploys.hostrules_package import package_contents
from planner.registry import Live, entries, sha256
from planner.secrets import HEARTBEAT_KEY, REPLICATION_PASSWORD
from tests.unit.topologies import three

SECRETS = {REPLICATION_PASSWORD: "s3cret-pw", HEARTBEAT_KEY: "hb-key-1"}
TOPOLOGY = three()
HOSTRULES = package_contents()
INCLUDE = "/etc/postgresql/15/main/conf.d/pgcascade.conf"
MAIN_CONF = "/etc/postgresql/15/main/postgresql.conf"
PRIMARY = Live(primary=True, holds_resources=True)
STANDBY = Live(primary=False, holds_resources=False)
KEYS = {"pg1": "ssh-ed25519 AAAA1 postgres@pg1", "pg2": "ssh-ed25519 AAAA2 postgres@pg2",
        "pg3": "ssh-ed25519 AAAA3 postgres@pg3"}


def healthy(node: str) -> dict:
    """The ManagedState a freshly deployed host reports."""
    reg = entries(TOPOLOGY, node, SECRETS, hostrules=HOSTRULES)
    paths = {}
    for d in (d for d in reg.directories if d.present):
        paths[d.path] = {"type": "directory", "mode": d.mode, "owner": d.owner, "group": d.group, "sha256": None}
    for f in reg.files:
        if f.present:
            paths[f.path] = {"type": "file", "mode": f.mode, "owner": f.owner, "group": f.group,
                             "sha256": sha256(f.content) if f.content is not None else "x"}
    for s in reg.signals:
        if s.present:
            paths[s.path] = {"type": "file", "mode": "0600", "owner": "postgres", "group": "postgres", "sha256": "e"}
    units = {u.unit: {"enabled": "enabled" if u.present else "disabled", "active": "active" if u.present else "inactive"}
             for u in reg.units}
    settings = {s.name: {"setting": s.value, "source": "configuration file" if s.in_file else "default",
                         "sourcefile": INCLUDE if s.in_file else None, "sourceline": 1, "context": "sighup",
                         "pending_restart": False} for s in reg.settings}
    settings["synchronous_commit"] = {"setting": "on", "source": "default", "sourcefile": None, "context": "user"}
    settings["port"]["context"] = "postmaster"
    file_settings = [{"name": s.name, "setting": s.value, "sourcefile": INCLUDE, "sourceline": 1, "applied": True}
                     for s in reg.settings if s.in_file]
    file_settings.append({"name": "port", "setting": "5432", "sourcefile": MAIN_CONF, "sourceline": 64,
                          "applied": False})
    return {
        "paths": paths, "units": units,
        "authorized_keys": [KEYS[p] for p in sorted(KEYS) if p != node], "public_key": KEYS[node],
        "heartbeat": {"pid": 10, "seconds": 100, "resources": "local"} if node != "pg3" else None,
        "vip": node == "pg1", "now": 1000.0,
        "failover_view": {"node": node, "can_fail_over": True, "reasons": [], "checked_at": 998.0}
        if node != "pg3" else None,
        "postgres": {"in_recovery": node != "pg1", "settings": settings, "file_settings": file_settings,
                     "role_settings": [],
                     "roles": {"replicator": {"replication": True, "login": True, "reads_all_stats": True,
                                              "can_rewind": True}}},
    }
