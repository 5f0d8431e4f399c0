"""plan_switchover: only onto the primary's caught-up direct standby."""
from __future__ import annotations

import pytest

from planner.switchover import plan_switchover
from tests.unit.pg_states import AFTER_FAILOVER, five_hosts_topology, pg_state


def rejoined(replay=100, timeline=2, status="streaming", sender="10.0.0.2"):
    """pg1 back as a standby of pg2 (the live primary after the failover)."""
    return {**AFTER_FAILOVER,
            "pg2": pg_state("primary", timeline=2, lsn={"current": 100, "receive": None, "replay": None}),
            "pg1": pg_state("standby", timeline=timeline, lsn={"current": None, "receive": replay, "replay": replay},
                            wal_receiver={"status": status, "sender_host": sender, "sender_port": 5432,
                                          "received_tli": timeline})}


@pytest.mark.parametrize("target, facts, force, action, words", [
    ("pg1", rejoined(), False, "switchover", "pg2 -> pg1"),
    ("pg2", rejoined(), False, "nothing", "already the master"),
    ("pg1", rejoined(replay=100 - 17 * 1024 * 1024), False, "refuse", "lags pg2"),
    ("pg1", rejoined(replay=100 - 17 * 1024 * 1024), True, "switchover", "pg2 -> pg1"),
    ("pg1", rejoined(status="stopping"), False, "refuse", "not a running standby streaming"),
    ("pg1", rejoined(timeline=1), False, "refuse", "timeline 1"),
    ("pg3", rejoined(), False, "refuse", "not a direct standby"),
    ("pg1", AFTER_FAILOVER, False, "refuse", "not a running standby"),
])
def test_plan_switchover(target, facts, force, action, words):
    plan = plan_switchover(five_hosts_topology(), target, facts, force=force)
    assert plan.action == action, plan.reason
    assert words in plan.reason


def test_switchover_back_to_the_inventory_master_gives_the_inventory_topology():
    plan = plan_switchover(five_hosts_topology(), "pg1", rejoined())
    assert plan.after == five_hosts_topology()
