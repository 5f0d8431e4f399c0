"""planner.failover_cascade: the cluster without a failed cascade, and the repair's decision."""
from __future__ import annotations

import pytest

from planner import settings
from planner.failover_cascade import (
    CascadeChoiceError,
    choose_failed_cascade,
    plan_failover_cascade,
    prepared_cascades,
    watched_cascade,
    without_cascade,
)
from planner.model import Cluster, Node, Topology
from planner.topology import InventoryError, build_topology

SYSID = "7300000000000000001"
OTHER_SYSID = "7399999999999999999"
ARCHIVE = "/usr/local/lib/pgcascade/archive-wal %p %f /var/lib/postgresql/wal_archive"


def node(name, role, address, upstream=None, app=None, tier=0):
    return Node(name, role, address, upstream, app, tier)


def three(**cluster) -> Topology:
    return Topology(Cluster(**cluster), (
        node("pg1", "master", "10.0.0.1"),
        node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
        node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
    ))


def fan() -> Topology:
    return Topology(Cluster(), (
        node("pg1", "master", "10.0.0.1"),
        node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
        node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
        node("pg4", "downstream", "10.0.0.4", "pg2", "standby_3", 2),
        node("pg5", "downstream", "10.0.0.5", "pg4", "standby_4", 3),
    ))


def two_cascades() -> Topology:
    return Topology(Cluster(), (
        node("pg1", "master", "10.0.0.1"),
        node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
        node("pg6", "cascade", "10.0.0.6", "pg1", "standby_6", 1),
        node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
        node("pg7", "downstream", "10.0.0.7", "pg6", "standby_7", 2),
    ))


# ---------------------------------------------------------------- without_cascade


def test_the_downstream_replicates_from_the_master_and_the_cascade_is_gone():
    after = without_cascade(three(), "pg2")
    assert [(n.name, n.upstream, n.tier, n.role) for n in after.nodes] == [
        ("pg1", None, 0, "master"), ("pg3", "pg1", 1, "downstream")]
    assert after.cluster == three().cluster


def test_the_settings_of_the_cluster_without_the_cascade_are_the_seeds_repair():
    after = without_cascade(three(), "pg2")
    assert settings.archive_command(after, "pg1") == f"{ARCHIVE} 10.0.0.3"
    assert settings.synchronous_standby_names(after, "pg1") == 'FIRST 1 ("standby_2")'
    assert settings.primary_conninfo(after, "pg3") == (
        "host=10.0.0.1 port=5432 user=replicator application_name=standby_2 "
        "passfile=/var/lib/postgresql/.pgpass connect_timeout=5")
    # The downstream's own settings are those of a leaf, as before.
    assert settings.archive_command(after, "pg3") == "/bin/true"
    assert settings.synchronous_standby_names(after, "pg3") == ""


def test_asynchronous_clusters_stay_asynchronous():
    after = without_cascade(three(synchronous=False), "pg2")
    assert settings.synchronous_standby_names(after, "pg1") == ""


def test_every_standby_of_the_cascade_moves_and_deeper_ones_keep_their_upstream():
    after = without_cascade(fan(), "pg2")
    assert [(n.name, n.upstream, n.tier) for n in after.nodes] == [
        ("pg1", None, 0), ("pg3", "pg1", 1), ("pg4", "pg1", 1), ("pg5", "pg4", 2)]
    assert settings.archive_command(after, "pg1") == f"{ARCHIVE} 10.0.0.3 10.0.0.4"
    assert settings.synchronous_standby_names(after, "pg1") == 'FIRST 1 ("standby_2", "standby_3")'
    assert settings.primary_conninfo(after, "pg5") == settings.primary_conninfo(fan(), "pg5")


def test_another_cascade_and_its_standbys_are_untouched():
    before, after = two_cascades(), without_cascade(two_cascades(), "pg2")
    # Topology order (tier, then name), as for any master with several direct standbys.
    assert settings.synchronous_standby_names(after, "pg1") == 'FIRST 1 ("standby_2", "standby_6")'
    for name in ("pg6", "pg7"):
        assert settings.desired_values(after, name) == settings.desired_values(before, name)


@pytest.mark.parametrize("failed, words", [
    ("pg1", ["pg1 is the master", "heartbeat"]),
    ("pg3", ["pg3 is the downstream"]),
    ("pg9", ["pg9: not a PostgreSQL host", "pg2"]),
])
def test_only_a_cascade_can_be_taken_out(failed, words):
    with pytest.raises(CascadeChoiceError) as error:
        without_cascade(three(), failed)
    for word in words:
        assert word in str(error.value)


def test_a_cascade_without_standbys_has_nothing_to_re_point():
    lonely = Topology(Cluster(), (node("pg1", "master", "10.0.0.1"),
                                  node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1)))
    with pytest.raises(CascadeChoiceError, match="no standbys of its own"):
        without_cascade(lonely, "pg2")


# ---------------------------------------------------------------- which cascade, which host


def test_the_only_cascade_is_the_default_and_several_need_a_name():
    assert choose_failed_cascade(three(), None) == "pg2"
    assert choose_failed_cascade(two_cascades(), "pg6") == "pg6"
    with pytest.raises(CascadeChoiceError, match="--data cascade=NAME"):
        choose_failed_cascade(two_cascades(), None)
    with pytest.raises(CascadeChoiceError, match="pg3 is the downstream"):
        choose_failed_cascade(three(), "pg3")


@pytest.mark.parametrize("build, name, prepared, watched", [
    (three, "pg1", ("pg2",), None),
    (three, "pg2", (), None),
    (three, "pg3", ("pg2",), "pg2"),
    (fan, "pg4", ("pg2",), "pg2"),
    (fan, "pg5", (), None),  # a standby of a downstream
    (two_cascades, "pg1", ("pg2", "pg6"), None),
    (two_cascades, "pg7", ("pg6",), "pg6"),
])
def test_which_hosts_are_prepared_and_which_watch(build, name, prepared, watched):
    assert prepared_cascades(build(), name) == prepared
    assert watched_cascade(build(), name) == watched


def test_pg_cascade_monitor_false_prepares_nothing():
    topology = three(cascade_monitor=False)
    assert [prepared_cascades(topology, n.name) for n in topology.nodes] == [(), (), ()]
    assert watched_cascade(topology, "pg3") is None


# ---------------------------------------------------------------- the decision


def pg_state(kind="primary", **overrides) -> dict:
    state = {
        "installed": True, "cluster_exists": True, "data_directory": "/var/lib/postgresql/15/main",
        "running": True, "in_recovery": False, "standby_signal": False, "system_identifier": SYSID,
        "timeline": 1, "lsn": {"current": 1, "receive": None, "replay": None}, "primary_conninfo": "",
        "wal_receiver": None, "replication": [], "pending_restart": [], "settings": {}, "archiver": None,
        "roles": {}, "pristine": False,
    }
    if kind == "standby":
        state.update(in_recovery=True, standby_signal=True)
    if kind == "stopped_standby":
        state.update(in_recovery=True, standby_signal=True, running=False, pristine=None)
    state.update(overrides)
    return state


def master(topology) -> dict:
    values = settings.desired_values(topology, "pg1")
    return pg_state("primary", settings={k: values[k] for k in ("archive_command", "synchronous_standby_names")})


def standby(topology, name, **overrides) -> dict:
    return pg_state("standby", primary_conninfo=settings.primary_conninfo(topology, name), **overrides)


BEFORE, AFTER = three(), without_cascade(three(), "pg2")


def facts(**overrides) -> dict:
    """The three-host cluster as deployed, the cascade unreachable; overrides per host."""
    found = {"pg1": master(BEFORE), "pg2": None, "pg3": standby(BEFORE, "pg3")}
    found.update(overrides)
    return found


# (id, facts, force, action, words in the reason)
CASES = [
    ("cascade-unreachable", facts(), False, "act",
     ["pg2 is unreachable", "pg3 replicates from pg1", "pg1 archives to pg3", 'waits for FIRST 1 ("standby_2")']),
    ("cascade-stopped", facts(pg2=pg_state("stopped_standby")), False, "act", ["pg2 is a stopped standby"]),
    ("cascade-healthy", facts(pg2=standby(BEFORE, "pg2")), False, "refuse",
     ["pg2 is a running standby on timeline 1", "the cascade is healthy", "--data force=true",
      "Nothing was changed"]),
    ("cascade-healthy-forced", facts(pg2=standby(BEFORE, "pg2")), True, "act", ["failing over as forced"]),
    ("cascade-promoted", facts(pg2=pg_state("primary", timeline=2)), True, "refuse",
     ["pg2 is a running primary on timeline 2", "no cascade failure"]),
    ("master-unreachable", facts(pg1=None), False, "refuse", ["the master pg1 could not be reached"]),
    ("master-in-recovery", facts(pg1=pg_state("standby")), True, "refuse",
     ["the master pg1 is a running standby", "not a running primary"]),
    ("master-stopped", facts(pg1=pg_state("primary", running=False)), False, "refuse",
     ["the master pg1 is a stopped primary"]),
    ("downstream-unreachable", facts(pg3=None), False, "refuse", ["pg3, a standby of pg2, could not be reached"]),
    ("downstream-promoted", facts(pg3=pg_state("primary", timeline=2)), False, "refuse",
     ["pg3 is a running primary on timeline 2, not a standby"]),
    ("downstream-ahead-of-the-master", facts(pg3=standby(BEFORE, "pg3", timeline=2)), False, "refuse",
     ["pg3 is on timeline 2, newer than the master pg1 (timeline 1)"]),
    ("downstream-of-another-cluster", facts(pg3=standby(BEFORE, "pg3", system_identifier=OTHER_SYSID)), False,
     "refuse", ["another cluster"]),
    ("already-done", facts(pg1=master(AFTER), pg3=standby(AFTER, "pg3")), False, "nothing",
     ["already failed over from pg2", "pg3 replicates from pg1"]),
    ("already-done-and-the-cascade-is-back", facts(pg1=master(AFTER), pg2=standby(BEFORE, "pg2"),
                                                   pg3=standby(AFTER, "pg3")), False, "nothing",
     ["already failed over"]),
    ("half-done-by-the-monitor", facts(pg3=standby(AFTER, "pg3")), False, "act", ["pg2 is unreachable"]),
    ("not-a-cascade", facts(), False, "refuse", ["pg3 is the downstream"]),
]


@pytest.mark.parametrize("found, force, action, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(found, force, action, words):
    failed = "pg3" if words == ["pg3 is the downstream"] else "pg2"
    plan = plan_failover_cascade(BEFORE, found, failed, force)
    assert plan.action == action, plan.reason
    for word in words:
        assert word in plan.reason


def test_the_plan_lists_exactly_what_changes_where():
    plan = plan_failover_cascade(BEFORE, facts(), "pg2")
    assert [host for host, _ in plan.changes] == ["pg1", "pg1", "pg3"]
    text = " | ".join(change for _, change in plan.changes)
    assert f"archive_command '{ARCHIVE} 10.0.0.2' -> '{ARCHIVE} 10.0.0.3'" in text
    assert """synchronous_standby_names 'FIRST 1 ("standby_1")' -> 'FIRST 1 ("standby_2")'""" in text
    assert "host=10.0.0.2" in text and "wanted host=10.0.0.1" in text


def test_once_the_downstream_is_re_pointed_only_the_master_is_left():
    plan = plan_failover_cascade(BEFORE, facts(pg3=standby(AFTER, "pg3")), "pg2")
    assert {host for host, _ in plan.changes} == {"pg1"}


def test_every_problem_is_said_at_once():
    plan = plan_failover_cascade(BEFORE, facts(pg1=pg_state("standby"), pg3=None), "pg2")
    assert plan.action == "refuse"
    assert "the master pg1 is a running standby" in plan.reason and "pg3" in plan.reason


def test_a_fan_out_re_points_every_standby_of_the_cascade():
    before = fan()
    found = {"pg1": master(before), "pg2": None, "pg3": standby(before, "pg3"), "pg4": standby(before, "pg4")}
    plan = plan_failover_cascade(before, found, "pg2")
    assert plan.action == "act"
    assert {host for host, _ in plan.changes} == {"pg1", "pg3", "pg4"}
    assert "pg3, pg4 replicate from pg1" in plan.reason


# ---------------------------------------------------------------- the inventory key


def inventory(**cluster_data) -> dict:
    def host(group, address, upstream=None, application_name=None):
        data = {"ssh_hostname": address, **cluster_data}
        if upstream:
            data.update(pg_upstream=upstream, pg_application_name=application_name)
        return {"groups": [group], "data": data}

    return {"pg1": host("master", "10.0.0.1"), "pg2": host("cascade", "10.0.0.2", "pg1", "standby_1"),
            "pg3": host("downstream", "10.0.0.3", "pg2", "standby_2")}


def test_pg_cascade_monitor_is_a_cluster_wide_boolean_on_by_default():
    assert build_topology(inventory()).cluster.cascade_monitor is True
    assert build_topology(inventory(pg_cascade_monitor=False)).cluster.cascade_monitor is False
    with pytest.raises(InventoryError, match=r"pg_cascade_monitor is 'no' \(use True or False\)"):
        build_topology(inventory(pg_cascade_monitor="no"))
    hosts = inventory()
    hosts["pg3"]["data"]["pg_cascade_monitor"] = False
    with pytest.raises(InventoryError, match="pg_cascade_monitor is False but True on pg1"):
        build_topology(hosts)
