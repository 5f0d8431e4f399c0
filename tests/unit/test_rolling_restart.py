"""planner.rolling_restart: what tasks/rolling_restart.py does, in which order, or why not."""
from __future__ import annotations

from planner.rolling_restart import plan_rolling_restart
from tests.unit.topologies import three

TOPOLOGY = three()


def facts(**pending) -> dict:
    """A healthy seed cluster; pending: host -> restart-only settings waiting there."""
    ips = {"pg1": "198.51.100.11", "pg2": "198.51.100.12", "pg3": "198.51.100.13"}
    result = {}
    for name in ("pg1", "pg2", "pg3"):
        primary = name == "pg1"
        upstream = {"pg2": "pg1", "pg3": "pg2"}.get(name)
        result[name] = {
            "installed": True, "cluster_exists": True, "running": True, "in_recovery": not primary,
            "standby_signal": not primary, "system_identifier": "7", "timeline": 1,
            "lsn": {"current": 1000 if primary else None, "receive": 1000, "replay": 1000},
            "primary_conninfo": "", "wal_receiver": None if primary else {
                "status": "streaming", "sender_host": ips[upstream], "sender_port": 5432, "received_tli": 1},
            "replication": [], "pending_restart": list(pending.get(name, [])), "settings": {}, "archiver": None,
            "roles": {}, "pristine": False}
    return result


def test_nothing_pending_nothing_done():
    plan = plan_rolling_restart(TOPOLOGY, facts(), {"pg1": False, "pg2": False})
    assert plan.action == "nothing" and "force=true" in plan.reason


def test_the_primary_pending_rolls_through_its_direct_standby():
    plan = plan_rolling_restart(TOPOLOGY, facts(pg1=["max_connections"]), {})
    assert plan.action == "rolling", plan.reason
    assert plan.via == "pg2" and plan.away.master.name == "pg2"
    assert plan.primary_pending == ("pg1: max_connections (restart-only settings)",)
    assert "switch over to pg2" in plan.reason and "switch back" in plan.reason


def test_standbys_restart_leaves_first():
    plan = plan_rolling_restart(TOPOLOGY, facts(pg2=["max_connections"], pg3=["max_connections"]), {})
    assert plan.standbys == ("pg3", "pg2")


def test_haresources_on_the_holder_is_a_rolling_restart():
    plan = plan_rolling_restart(TOPOLOGY, facts(), {"pg1": True, "pg2": False})
    assert plan.action == "rolling" and "pg1: haresources" in plan.primary_pending[0]


def test_refused_when_the_standby_to_switch_to_lags_or_does_not_stream():
    f = facts(pg1=["max_connections"])
    f["pg2"]["wal_receiver"]["status"] = "stopping"
    plan = plan_rolling_restart(TOPOLOGY, f, {})
    assert plan.action == "refuse" and "cannot switch over to pg2" in plan.reason


def test_refused_when_the_cluster_does_not_match_the_inventory():
    f = facts(pg1=["max_connections"])
    f["pg1"]["in_recovery"] = True
    f["pg2"]["in_recovery"] = False
    plan = plan_rolling_restart(TOPOLOGY, f, {})
    assert plan.action == "refuse" and "does not match the inventory" in plan.reason
