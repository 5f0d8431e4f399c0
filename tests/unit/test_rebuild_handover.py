"""planner.rebuild.plan_sync_handover: rebuilding the master's synchronous standby moves
synchronous commit to another standby first, or refuses without force."""
from __future__ import annotations

import pytest

from planner.model import Cluster, Topology
from planner.rebuild import plan_sync_handover
from tests.unit.topologies import node, three

TO_MASTER = "host=198.51.100.11 port=5432 user=replicator application_name=standby_2"
TO_CASCADE = "host=198.51.100.12 port=5432 user=replicator application_name=standby_2"


def facts(pg3_conninfo: str = TO_CASCADE, *rows: dict) -> dict:
    return {"pg1": {"replication": list(rows)}, "pg2": {}, "pg3": {"primary_conninfo": pg3_conninfo}}


def row(name: str, state: str = "streaming", lag: int | None = 0) -> dict:
    return {"application_name": name, "state": state, "flush_lag_bytes": lag}


def two_cascades() -> Topology:
    return Topology(Cluster(), (
        node("pg1", "master", "198.51.100.11"),
        node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
        node("pg4", "cascade", "198.51.100.14", "pg1", "standby_4", 1),
        node("pg3", "downstream", "198.51.100.13", "pg2", "standby_2", 2),
    ))


def no_downstream() -> Topology:
    return Topology(Cluster(), (
        node("pg1", "master", "198.51.100.11"),
        node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
    ))


@pytest.mark.parametrize("topology, target, case, force, action", [
    (three(), "pg2", facts(TO_CASCADE, row("standby_1")), False, "move"),
    (three(), "pg2", facts(TO_MASTER, row("standby_2")), False, "none"),  # already failed over
    (three(), "pg3", facts(TO_CASCADE, row("standby_1")), False, "none"),  # the master never waits for pg3
    (three(synchronous=False), "pg2", facts(), False, "none"),
    (two_cascades(), "pg2", facts(TO_CASCADE, row("standby_1"), row("standby_4")), False, "none"),
    (two_cascades(), "pg2", facts(TO_CASCADE, row("standby_1"), row("standby_4", "catchup")), False, "move"),
    (no_downstream(), "pg2", facts(), False, "refuse"),
    (no_downstream(), "pg2", facts(), True, "none"),
])
def test_plan_sync_handover(topology, target, case, force, action):
    assert plan_sync_handover(topology, target, case, looks(case), force).action == action


def looks(case: dict, replying: bool = True) -> dict:
    """The master's two looks at its rows in `case`: each replied in between unless not `replying`."""
    rows = case["pg1"]["replication"]
    return {"before": [{**r, "pid": i, "reply_time": "t1"} for i, r in enumerate(rows)],
            "after": [{**r, "pid": i, "reply_time": "t2" if replying else "t1"} for i, r in enumerate(rows)]}


def test_a_silent_sibling_does_not_take_over_synchronous_commit():
    """Its row still says streaming (a cut link): the master would wait for nobody that answers."""
    case = facts(TO_CASCADE, row("standby_1"), row("standby_4"))
    assert plan_sync_handover(two_cascades(), "pg2", case, looks(case, replying=False)).action == "move"
    assert plan_sync_handover(two_cascades(), "pg2", case, None).action == "move"


def test_the_refusal_says_why_and_how():
    plan = plan_sync_handover(no_downstream(), "pg2", facts(), None)
    assert plan.reason.startswith("pg2 is pg1's only synchronous standby: rebuilding it would hold every commit")
    assert "force=true" in plan.reason
