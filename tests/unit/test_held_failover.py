"""planner.held_failover: a deploy rerun restores the tree only once the failed-over cascade has
caught up; until then the master and the former downstreams keep the failover's files."""
from __future__ import annotations

import pytest

from planner import settings
from planner.failover_cascade import without_cascade
from planner.held_failover import held_failovers, include_topology
from planner.render import render
from tests.unit.topologies import three

TOPOLOGY = three()
TO_MASTER = "host=198.51.100.11 port=5432 user=replicator application_name=standby_2"
TO_CASCADE = "host=198.51.100.12 port=5432 user=replicator application_name=standby_2"


def facts(pg3_conninfo: str, *master_rows: dict) -> dict:
    return {
        "pg1": {"replication": list(master_rows)},
        "pg2": {"primary_conninfo": "host=198.51.100.11 port=5432 user=replicator application_name=standby_1"},
        "pg3": {"primary_conninfo": pg3_conninfo},
    }


def row(name: str, state: str = "streaming", lag: int | None = 0) -> dict:
    return {"application_name": name, "state": state, "flush_lag_bytes": lag, "sync_state": "async"}


def looks(case: dict, replying: bool = True) -> dict:
    """The master's two looks at the rows of `case` (each row its own WAL sender): a new reply in
    the second one unless not `replying`."""
    rows = case["pg1"]["replication"]
    before = [{**r, "pid": i, "reply_time": "t1"} for i, r in enumerate(rows)]
    after = [{**r, "pid": i, "reply_time": "t2" if replying else "t1"} for i, r in enumerate(rows)]
    return {"before": before, "after": after}


@pytest.mark.parametrize("case, held", [
    # the original tree: nothing to keep, whatever the cascade's state
    (facts(TO_CASCADE, row("standby_1")), False),
    (facts(TO_CASCADE), False),
    # failed over, the cascade streaming and caught up: the tree comes back
    (facts(TO_MASTER, row("standby_1"), row("standby_2")), False),
    # failed over, the cascade not caught up: the failover stays
    (facts(TO_MASTER, row("standby_2")), True),  # it does not stream (away longer than wal_keep_size)
    (facts(TO_MASTER, row("standby_1", "catchup", 10 ** 9), row("standby_2")), True),
    (facts(TO_MASTER, row("standby_1", "streaming", 10 ** 9), row("standby_2")), True),
    (facts(TO_MASTER, row("standby_1", "streaming", None), row("standby_2")), True),
    # an old row next to a streaming one (a reconnect): the streaming one counts
    (facts(TO_MASTER, row("standby_1", "startup", None), row("standby_1"), row("standby_2")), False),
])
def test_a_failover_stays_until_the_cascade_caught_up(case, held):
    assert bool(held_failovers(TOPOLOGY, case, looks(case))) is held


def test_a_cascade_that_sends_no_reply_is_not_caught_up_whatever_its_row_says():
    """Cut off from the master, its row reads 'streaming' at its last position until
    wal_sender_timeout: a deploy then must not make the master wait for it again."""
    case = facts(TO_MASTER, row("standby_1"), row("standby_2"))
    [why] = held_failovers(TOPOLOGY, case, looks(case, replying=False)).values()
    assert "(silent)" in why
    assert held_failovers(TOPOLOGY, case, None)  # the looks could not be taken: kept
    assert held_failovers(TOPOLOGY, case, {"error": "psql: timeout"})
    assert not held_failovers(TOPOLOGY, facts(TO_CASCADE, row("standby_1")), None)  # not failed over


def test_the_reason_says_what_to_do():
    case = facts(TO_MASTER, row("standby_2"))
    [why] = held_failovers(TOPOLOGY, case, looks(case)).values()
    assert why.startswith("pg2 is not streaming from its upstream (no pg_stat_replication row) on pg1 "
                          "(not-connected): the failover from it stays (pg3 stream from pg1")
    assert "tasks/rebuild.py --data target=pg2" in why


def test_held_include_files_are_the_prepared_variants_byte_for_byte():
    """The cascade monitor tells "failed over" from "watching" by comparing the two files."""
    held = {"pg2": "why"}
    for name in ("pg1", "pg3"):
        topology, variant = include_topology(TOPOLOGY, name, held)
        kept = render("pgcascade.conf.j2", settings.render_vars_pgconf(topology, name, variant_without=variant))
        prepared = render("pgcascade.conf.j2", settings.render_vars_pgconf(without_cascade(TOPOLOGY, "pg2"), name,
                                                                           variant_without="pg2"))
        assert kept == prepared
    assert include_topology(TOPOLOGY, "pg2", held) == (TOPOLOGY, "")
    assert include_topology(TOPOLOGY, "pg1", {}) == (TOPOLOGY, "")


def test_the_standby_keeps_streaming_from_the_master():
    topology, _ = include_topology(TOPOLOGY, "pg3", {"pg2": "why"})
    assert settings.primary_conninfo(topology, "pg3").startswith("host=198.51.100.11 ")
    assert settings.synchronous_standby_names(topology, "pg1") == 'FIRST 1 ("standby_2")'
