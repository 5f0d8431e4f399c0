"""plan_rejoin: only an older copy of the same cluster is rewound, onto the live primary."""
from __future__ import annotations

import pytest

from planner.rejoin import plan_rejoin
from tests.unit.test_standby_plan import OTHER_SYSID, configured_standby, five_hosts_topology, pg_state

AFTER_FAILOVER = {  # pg2 promoted (timeline 2), pg3-pg5 follow it, pg1 is the stopped former master
    "pg1": pg_state("stopped_primary"),
    "pg2": pg_state("primary", timeline=2),
    "pg3": configured_standby("pg3", timeline=2), "pg4": configured_standby("pg4", timeline=2),
    "pg5": configured_standby("pg5", timeline=2),
}


def with_(**changes):
    return {**AFTER_FAILOVER, **changes}


@pytest.mark.parametrize("target, facts, force, action, words", [
    ("pg1", AFTER_FAILOVER, False, "rejoin", "standby of pg2"),
    ("pg1", with_(pg1=pg_state("primary")), False, "rejoin", "running primary on timeline 1"),
    ("pg2", AFTER_FAILOVER, False, "refuse", "is the live primary"),
    ("pg1", with_(pg1=pg_state("stopped_primary", timeline=2)), False, "refuse", "may hold the newest"),
    ("pg1", with_(pg1=pg_state("stopped_primary", timeline=2)), True, "rejoin", "rewind"),
    ("pg1", with_(pg1=pg_state("stopped_primary", system_identifier=OTHER_SYSID)), True, "refuse", "another cluster"),
    ("pg1", with_(pg1=None), False, "refuse", "cannot be reached"),
    ("pg1", with_(pg1=pg_state("absent")), False, "refuse", "rebuild"),
    ("pg1", with_(pg2=pg_state("stopped_primary", timeline=2)), False, "refuse", "no running primary"),
    ("pg1", with_(pg1=pg_state("primary", timeline=2)), False, "refuse", "split brain"),
])
def test_plan_rejoin(target, facts, force, action, words):
    plan = plan_rejoin(five_hosts_topology(), target, facts, force=force)
    assert plan.action == action, plan.reason
    assert words in plan.reason


def test_rejoin_targets_the_swapped_topology_and_is_idempotent():
    plan = plan_rejoin(five_hosts_topology(), "pg1", AFTER_FAILOVER)
    assert plan.topology.master.name == "pg2" and plan.topology.node("pg1").upstream == "pg2"
    rejoined = with_(pg1=pg_state("standby", timeline=2, wal_receiver={
        "status": "streaming", "sender_host": plan.topology.node("pg2").address, "sender_port": 5432,
        "received_tli": 2}))
    assert plan_rejoin(five_hosts_topology(), "pg1", rejoined).action == "nothing"
