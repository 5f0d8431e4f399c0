"""with_master and live_primary: the cluster after a failover, from data and facts."""
from __future__ import annotations

import pytest

from planner.roles import live_primary, with_master
from tests.unit.pg_states import five_hosts_topology, pg_state


def shape(topology):
    return [(n.name, n.role, n.upstream, n.application_name, n.tier) for n in topology.nodes]


def test_with_master_swaps_the_master_and_the_cascade():
    swapped = with_master(five_hosts_topology(), "pg2")
    assert shape(swapped) == [
        ("pg2", "master", None, None, 0),
        ("pg1", "cascade", "pg2", "standby_1", 1),
        ("pg3", "downstream", "pg1", "standby_2", 2),
        ("pg4", "downstream", "pg1", "standby_3", 2),
        ("pg5", "downstream", "pg4", "standby_4", 3),
    ]
    assert swapped.master.name == "pg2"
    assert [n.name for n in swapped.children("pg1")] == [n.name for n in five_hosts_topology().children("pg2")]
    assert with_master(swapped, "pg1").master.name == "pg1"


def test_with_master_of_the_master_is_the_same_topology_and_others_are_refused():
    topology = five_hosts_topology()
    assert with_master(topology, "pg1") == topology
    with pytest.raises(ValueError, match="not a direct standby"):
        with_master(topology, "pg3")


@pytest.mark.parametrize("facts, expected, words", [
    ({"pg1": pg_state("primary"), "pg2": pg_state("standby")}, "pg1", "timeline 1"),
    ({"pg1": pg_state("primary"), "pg2": pg_state("primary", timeline=2)}, "pg2", "timeline 2"),
    ({"pg1": pg_state("stopped_primary"), "pg2": pg_state("primary", timeline=2), "pg3": None}, "pg2", "pg2"),
    ({"pg1": None, "pg2": pg_state("standby")}, None, "no running primary"),
    ({"pg1": pg_state("primary", timeline=2), "pg2": pg_state("primary", timeline=2)}, None, "split brain"),
])
def test_live_primary(facts, expected, words):
    name, reason = live_primary(facts)
    assert name == expected and words in reason
