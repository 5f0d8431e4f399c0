"""plan_rebuild: replace a broken standby, never a primary, never from a bad upstream."""
from __future__ import annotations

import pytest

from planner.rebuild import plan_rebuild
from tests.unit.pg_states import CASCADE_UP, MASTER_UP, configured_standby, five_hosts_topology, pg_state


@pytest.mark.parametrize("host, fact, upstream, force, action, words", [
    ("pg3", configured_standby("pg3"), CASCADE_UP, False, "nothing", "streaming from pg2"),
    ("pg3", configured_standby("pg3"), CASCADE_UP, True, "clone", "fresh base backup from pg2"),
    ("pg3", configured_standby("pg3", "stopped_standby"), CASCADE_UP, False, "clone", "stopped standby"),
    ("pg3", pg_state("absent"), CASCADE_UP, False, "clone", "without"),
    ("pg3", pg_state("primary"), CASCADE_UP, True, "refuse", "may hold writes"),
    ("pg3", pg_state("stopped_primary"), CASCADE_UP, False, "refuse", "force=true"),
    ("pg3", pg_state("stopped_primary"), CASCADE_UP, True, "clone", "stopped primary"),
    ("pg3", None, CASCADE_UP, False, "refuse", "cannot be reached"),
    ("pg3", configured_standby("pg3", "stopped_standby"), None, False, "refuse", "would be cloned from pg2"),
    ("pg1", MASTER_UP, None, True, "refuse", "is the master"),
])
def test_plan_rebuild(host, fact, upstream, force, action, words):
    plan = plan_rebuild(five_hosts_topology(), host, fact, upstream, MASTER_UP, force=force)
    assert plan.action == action, plan.reason
    assert words in plan.reason
