"""planner.apply_config: reload, restart or nothing after the files change; and which never-used
cluster is left alone because the standby tier clones over it."""
from __future__ import annotations

import pytest

from planner.apply_config import config_action
from planner.standby_plan import plan_standby, replaced_by_clone
from tests.unit.pg_states import MASTER_UP, STANDBY_SETTINGS, TOPOLOGY, conninfo, pg_state


def config_state(**overrides) -> dict:
    state = {"running": True, "in_recovery": False, "conf_load_time": 100.0, "files_mtime": 50.0,
             "unapplied": [], "pending_restart": [], "file_errors": [], "hba_errors": []}
    return {**state, **overrides}


@pytest.mark.parametrize("overrides, action, words", [
    ({}, "nothing", "runs with its files"),
    ({"files_mtime": 200.0}, "reload", "changed since"),
    ({"unapplied": ["archive_mode"], "files_mtime": 200.0}, "restart", "archive_mode only change at a restart"),
    ({"running": False, "unapplied": ["archive_mode"]}, "nothing", "not running"),
    ({"file_errors": ["line 3: syntax error"], "unapplied": ["archive_mode"]}, "refuse", "syntax error"),
])
def test_config_action(overrides, action, words):
    got, reason = config_action(config_state(**overrides))
    assert got == action
    assert words in reason


def test_a_cluster_replaced_by_the_clone_is_neither_restarted_nor_reloaded():
    state = config_state(unapplied=["archive_mode"], files_mtime=200.0)
    assert config_action(state, replaced_by_clone=True)[0] == "nothing"
    assert config_action(state, replaced_by_clone=False)[0] == "restart"


@pytest.mark.parametrize("is_standby, fact, expected", [
    (True, pg_state("primary", pristine=True), True),
    (False, pg_state("primary", pristine=True), False),  # the master's own default cluster
    (True, pg_state("primary", pristine=False), False),  # it holds data: the plan refuses
    (True, pg_state("primary", pristine=None), False),  # unknown counts as holding data
    (True, pg_state("primary", pristine=True, timeline=2), False),  # promoted once
    (True, pg_state("standby"), False),
    (True, pg_state("absent"), False),
    (True, None, False),
])
def test_replaced_by_clone(is_standby, fact, expected):
    assert replaced_by_clone(is_standby, fact) is expected


@pytest.mark.parametrize("fact", [
    pg_state("primary", pristine=True), pg_state("primary", pristine=False), pg_state("primary", pristine=None),
    pg_state("primary", pristine=True, timeline=2), pg_state("standby"),
])
def test_what_is_left_alone_is_what_the_standby_plan_clones_over(fact):
    plan = plan_standby(TOPOLOGY, TOPOLOGY.node("pg2"), fact, MASTER_UP, desired_conninfo=conninfo("pg2"),
                        desired_settings=STANDBY_SETTINGS)
    cloned_as_never_used = plan.action == "clone" and "never-used" in plan.reason
    assert replaced_by_clone(True, fact) is cloned_as_never_used
