"""planner.status_report: the status tree and the problems against the inventory."""
from __future__ import annotations

import copy

import pytest

from planner.status_report import lsn_text, render_status, table
from planner.topology import build_topology

SYSID = "7300000000000000001"
MASTER_LSN = 0x3000148


def topology_of(*hosts, **cluster_data):
    """hosts: (name, group, upstream, application_name); address 10.0.0.<n> from the name."""
    inventory = {}
    for name, group, upstream, application_name in hosts:
        data = {"ssh_hostname": f"10.0.0.{name[2:]}", **cluster_data}
        if upstream:
            data.update(pg_upstream=upstream, pg_application_name=application_name)
        inventory[name] = {"groups": [group], "data": data}
    return build_topology(inventory)


# 1 master + 1 cascade + 3 downstreams.
WIDE = topology_of(
    ("pg1", "master", None, None),
    ("pg2", "cascade", "pg1", "standby_1"),
    ("pg3", "downstream", "pg2", "standby_2"),
    ("pg4", "downstream", "pg2", "standby_3"),
    ("pg5", "downstream", "pg2", "standby_4"),
)
# master -> cascade -> downstream -> downstream
DEEP = topology_of(
    ("pg1", "master", None, None),
    ("pg2", "cascade", "pg1", "standby_1"),
    ("pg3", "downstream", "pg2", "standby_2"),
    ("pg4", "downstream", "pg3", "standby_3"),
)


def row(application_name, client_addr, sync_state="async", state="streaming", sync_priority=None):
    priority = sync_priority if sync_priority is not None else (1 if sync_state == "sync" else 0)
    return {"application_name": application_name, "client_addr": client_addr, "state": state,
            "sync_priority": priority, "sync_state": sync_state, "replay_lag_bytes": 0}


def healthy_facts(topology) -> dict:
    """What a healthy cluster reports: each host streams to its children, the master sync."""
    facts = {}
    for node in topology.nodes:
        children = topology.children(node.name)
        sync_state = "sync" if node.role == "master" and topology.cluster.synchronous else "async"
        fact = {
            "installed": True, "cluster_exists": True, "data_directory": "/var/lib/postgresql/15/main",
            "running": True, "in_recovery": node.role != "master", "standby_signal": node.role != "master",
            "system_identifier": SYSID, "timeline": 1,
            "lsn": {"current": MASTER_LSN, "receive": None, "replay": None},
            "primary_conninfo": "", "wal_receiver": None,
            "replication": [row(c.application_name, c.address, sync_state) for c in children],
            "pending_restart": [], "settings": {}, "archiver": None, "roles": {}, "pristine": False,
        }
        if node.role == "master":
            fact["archiver"] = {"archived_count": 3, "failed_count": 0,
                                "last_archived_wal": "000000010000000000000002", "last_failed_wal": None}
        else:
            upstream = topology.node(node.upstream)
            fact["lsn"] = {"current": None, "receive": MASTER_LSN, "replay": MASTER_LSN - 72}
            fact["wal_receiver"] = {"status": "streaming", "sender_host": upstream.address,
                                    "sender_port": 5432, "received_tli": 1}
        facts[node.name] = fact
    return facts


EXPECTED_WIDE = """\
cluster 15/main, port 5432, synchronous on

pg1 (master): a running primary on timeline 1
`-- pg2 (cascade): a running standby on timeline 1
    |-- pg3 (downstream): a running standby on timeline 1
    |-- pg4 (downstream): a running standby on timeline 1
    `-- pg5 (downstream): a running standby on timeline 1

pg1  master  10.0.0.1
  state:        a running primary on timeline 1
  in recovery:  no
  upstream:     none (the master)
  current:      0/3000148
  archiver:     3 archived, 0 failed, last 000000010000000000000002
  replication:
    application_name  client_addr  state      sync_priority  sync_state
    standby_1         10.0.0.2     streaming  1              sync

pg2  cascade  10.0.0.2
  state:        a running standby on timeline 1
  in recovery:  yes
  upstream:     pg1 (10.0.0.1:5432), streaming from 10.0.0.1:5432 (timeline 1)
  receive:      0/3000148, 0 bytes behind the master
  replay:       0/3000100, 72 bytes behind the master
  replication:
    application_name  client_addr  state      sync_priority  sync_state
    standby_2         10.0.0.3     streaming  0              async
    standby_3         10.0.0.4     streaming  0              async
    standby_4         10.0.0.5     streaming  0              async

pg3  downstream  10.0.0.3
  state:        a running standby on timeline 1
  in recovery:  yes
  upstream:     pg2 (10.0.0.2:5432), streaming from 10.0.0.2:5432 (timeline 1)
  receive:      0/3000148, 0 bytes behind the master
  replay:       0/3000100, 72 bytes behind the master
  replication:  (0 rows)

pg4  downstream  10.0.0.4
  state:        a running standby on timeline 1
  in recovery:  yes
  upstream:     pg2 (10.0.0.2:5432), streaming from 10.0.0.2:5432 (timeline 1)
  receive:      0/3000148, 0 bytes behind the master
  replay:       0/3000100, 72 bytes behind the master
  replication:  (0 rows)

pg5  downstream  10.0.0.5
  state:        a running standby on timeline 1
  in recovery:  yes
  upstream:     pg2 (10.0.0.2:5432), streaming from 10.0.0.2:5432 (timeline 1)
  receive:      0/3000148, 0 bytes behind the master
  replay:       0/3000100, 72 bytes behind the master
  replication:  (0 rows)

no problems: the cluster matches the inventory
"""


def test_healthy_wide_cluster_renders_exactly():
    text, problems = render_status(WIDE, healthy_facts(WIDE))
    assert problems == []
    assert text == EXPECTED_WIDE


def test_healthy_deep_chain_tree_and_no_problems():
    text, problems = render_status(DEEP, healthy_facts(DEEP))
    assert problems == []
    assert text.splitlines()[2:6] == [
        "pg1 (master): a running primary on timeline 1",
        "`-- pg2 (cascade): a running standby on timeline 1",
        "    `-- pg3 (downstream): a running standby on timeline 1",
        "        `-- pg4 (downstream): a running standby on timeline 1",
    ]


def test_output_is_deterministic_whatever_the_row_order():
    facts = healthy_facts(WIDE)
    shuffled = copy.deepcopy(facts)
    shuffled["pg2"]["replication"].reverse()
    shuffled = dict(reversed(list(shuffled.items())))
    assert render_status(WIDE, shuffled) == render_status(WIDE, facts)


def edit(topology, changes):
    """healthy facts of `topology`, then changes: {host: None | {key: value} | callable(fact)}."""
    facts = healthy_facts(topology)
    for name, change in changes.items():
        if change is None:
            facts[name] = None
        elif callable(change):
            change(facts[name])
        else:
            facts[name].update(change)
    return facts


def _set_row(index, **fields):
    return lambda fact: fact["replication"][index].update(fields)


def _append_row(new_row):
    return lambda fact: fact["replication"].append(new_row)


SYNC_OFF = topology_of(("pg1", "master", None, None), ("pg2", "cascade", "pg1", "standby_1"), pg_synchronous=False)

# (id, topology, changes, the exact problems)
PROBLEM_CASES = [
    ("host-down", WIDE, {"pg4": None, "pg2": lambda f: f["replication"].pop(1)}, [
        "pg2: standby_3 (pg4) is not connected (no row in pg_stat_replication)",
        "pg4: unreachable (its state could not be read)",
    ]),
    ("standby-stopped", WIDE, {"pg3": {"running": False, "wal_receiver": None}, "pg2": lambda f: f["replication"].pop(0)}, [
        "pg2: standby_2 (pg3) is not connected (no row in pg_stat_replication)",
        "pg3: PostgreSQL 15/main is not running (start it: pg_ctlcluster 15 main start)",
    ]),
    ("no-cluster-yet", WIDE, {"pg5": {"cluster_exists": False, "running": False, "system_identifier": None},
                               "pg2": lambda f: f["replication"].pop(2)}, [
        "pg2: standby_4 (pg5) is not connected (no row in pg_stat_replication)",
        "pg5: without a cluster 15/main (run the deploy)",
    ]),
    ("master-lost-its-sync-standby", WIDE, {"pg1": _set_row(0, sync_state="async", sync_priority=0)}, [
        "pg1: no synchronous standby (expected standby_1 with sync_state sync): commits wait until one is back",
    ]),
    ("master-has-no-client", WIDE, {"pg1": {"replication": []}}, [
        "pg1: standby_1 (pg2) is not connected (no row in pg_stat_replication)",
        "pg1: no synchronous standby (expected standby_1 with sync_state sync): commits wait until one is back",
    ]),
    ("cascade-failed-over-its-standby-is-synchronous", WIDE, {
        "pg1": lambda f: (f["replication"][0].update(state="catchup", sync_state="async", sync_priority=0),
                          f["replication"].append(row("standby_2", "10.0.0.3", sync_state="sync", sync_priority=1))),
        "pg3": lambda f: f["wal_receiver"].update(sender_host="10.0.0.1"),
        "pg2": lambda f: f["replication"].pop(0)}, [
        "pg3 (downstream, standby of pg2 in the inventory) streams from 10.0.0.1:5432, not from pg2 "
        "(10.0.0.2:5432): re-point it (run the deploy)",
        "pg1: standby_1 (pg2) is in state 'catchup', not streaming",
        "pg1: no synchronous standby (expected standby_1 with sync_state sync): commits wait for standby_2 instead "
        "(a cascade failover; the deploy puts the tree back once the cascade streams caught up)",
        "pg1: unexpected replication client 'standby_2' from 10.0.0.3 (the inventory expects: standby_1)",
        "pg2: standby_2 (pg3) is not connected (no row in pg_stat_replication)",
    ]),
    ("asynchronous-cluster-with-a-sync-row", SYNC_OFF, {"pg1": _set_row(0, sync_state="sync", sync_priority=1)}, [
        "pg1: standby_1 is 'sync', expected async",
    ]),
    ("cascade-child-not-async", WIDE, {"pg2": _set_row(1, sync_state="potential")}, [
        "pg2: standby_3 is 'potential', expected async",
    ]),
    ("child-catching-up", WIDE, {"pg2": _set_row(2, state="catchup")}, [
        "pg2: standby_4 (pg5) is in state 'catchup', not streaming",
    ]),
    ("leaf-with-a-client", WIDE, {"pg3": _append_row(row("standby_9", "10.0.0.9"))}, [
        "pg3: unexpected replication client 'standby_9' from 10.0.0.9 (the inventory expects: none)",
    ]),
    ("a-clone-in-progress-is-not-a-problem", WIDE, {"pg1": _append_row(row("pg_basebackup", "10.0.0.7", state="backup"))}, []),
    ("standby-on-an-old-timeline", WIDE, {"pg1": {"timeline": 2}, "pg2": {"timeline": 2}, "pg4": {"timeline": 2},
                                          "pg5": {"timeline": 2}}, [
        "pg3: on timeline 1, not the master's timeline 2",
    ]),
    ("standby-not-receiving", WIDE, {"pg3": {"wal_receiver": None}}, [
        "pg3: not receiving WAL from pg2 (WAL receiver: none)",
    ]),
    ("standby-receiver-waiting", WIDE, {"pg3": lambda f: f["wal_receiver"].update(status="waiting")}, [
        "pg3: not receiving WAL from pg2 (WAL receiver: waiting)",
    ]),
    ("archiving-failing", WIDE, {"pg1": {"archiver": {"archived_count": 3, "failed_count": 7,
                                                      "last_archived_wal": "000000010000000000000002",
                                                      "last_failed_wal": "000000010000000000000003"}}}, [
        "pg1: WAL archiving is failing (7 failures, last 000000010000000000000003): check archive_command "
        "and the ssh access to the standby",
    ]),
    ("archiving-recovered", WIDE, {"pg1": {"archiver": {"archived_count": 9, "failed_count": 7,
                                                        "last_archived_wal": "000000010000000000000009",
                                                        "last_failed_wal": "000000010000000000000003"}}}, []),
    ("streams-from-the-master-directly", WIDE, {"pg5": lambda f: f["wal_receiver"].update(sender_host="10.0.0.1"),
                                                "pg1": _append_row(row("standby_4", "10.0.0.5")),
                                                "pg2": lambda f: f["replication"].pop(2)}, [
        "pg5 (downstream, standby of pg2 in the inventory) streams from 10.0.0.1:5432, not from pg2 "
        "(10.0.0.2:5432): re-point it (run the deploy)",
        "pg1: unexpected replication client 'standby_4' from 10.0.0.5 (the inventory expects: standby_1)",
        "pg2: standby_4 (pg5) is not connected (no row in pg_stat_replication)",
    ]),
]


@pytest.mark.parametrize(
    "topology, changes, expected",
    [case[1:] for case in PROBLEM_CASES],
    ids=[case[0] for case in PROBLEM_CASES],
)
def test_problems_against_the_inventory(topology, changes, expected):
    text, problems = render_status(topology, edit(topology, changes))
    assert problems == expected
    if expected:
        assert f"{len(expected)} problem(s):" in text
        for problem in expected:
            assert f"  - {problem}" in text
    else:
        assert text.endswith("no problems: the cluster matches the inventory\n")


def test_failover_is_reported_with_what_to_do():
    facts = edit(WIDE, {
        "pg1": {"in_recovery": True, "standby_signal": True, "timeline": 2, "replication": [],
                "wal_receiver": {"status": "streaming", "sender_host": "10.0.0.2", "sender_port": 5432, "received_tli": 2}},
        "pg2": lambda f: f.update(in_recovery=False, standby_signal=False, timeline=2, wal_receiver=None,
                                  lsn={"current": MASTER_LSN, "receive": None, "replay": None}),
    })
    text, problems = render_status(WIDE, facts)
    assert problems[0].startswith("pg1, the master in the inventory, is running in recovery (a standby) on timeline 2")
    assert "make pg2 the master in the inventory" in problems[0]
    assert "pg2 (cascade, standby of pg1 in the inventory) is a running primary on timeline 2, not a standby" in problems[1]
    assert "`-- pg2 (cascade): a running primary on timeline 2" in text


def test_pristine_hosts_on_a_first_deploy_are_not_role_problems():
    facts = edit(WIDE, {n: {"in_recovery": False, "standby_signal": False, "wal_receiver": None, "pristine": True,
                            "replication": []} for n in ("pg2", "pg3", "pg4", "pg5")} | {"pg1": {"replication": []}})
    _, problems = render_status(WIDE, facts)
    assert not any("not a standby" in p or "running primaries" in p for p in problems)
    assert "pg1: standby_1 (pg2) is not connected (no row in pg_stat_replication)" in problems


@pytest.mark.parametrize(
    "master_change, standby_lsn, expected_receive_line",
    [
        ({}, {"receive": MASTER_LSN - 4096, "replay": MASTER_LSN - 4096},
         "  receive:      0/2FFF148, 4096 bytes behind the master"),
        ({}, {"receive": MASTER_LSN + 10, "replay": MASTER_LSN},  # read a moment after the master
         "  receive:      0/3000152, 0 bytes behind the master"),
        (None, {"receive": MASTER_LSN, "replay": MASTER_LSN},
         "  receive:      0/3000148, behind the master: unknown"),
        ({}, {"receive": None, "replay": MASTER_LSN}, "  receive:      none"),
        ({}, {"receive": 0x3000000, "replay": MASTER_LSN},  # a restarted WAL receiver, idle master
         "  receive:      0/3000148, 0 bytes behind the master (streaming restarted from 0/3000000)"),
    ],
    ids=["behind", "read-later-never-negative", "master-unreachable", "nothing-received-yet",
         "receiver-restarted-at-a-segment-start"],
)
def test_bytes_behind_the_master(master_change, standby_lsn, expected_receive_line):
    changes = {"pg3": lambda f: f["lsn"].update(standby_lsn), "pg1": master_change}
    text, _ = render_status(WIDE, edit(WIDE, changes))
    assert expected_receive_line in text.splitlines()


def test_stopped_standby_block_says_so():
    text, _ = render_status(WIDE, edit(WIDE, {"pg4": {"running": False, "wal_receiver": None}}))
    assert "  in recovery:  yes (stopped with standby.signal)" in text.splitlines()


def test_stopped_standby_lsns_are_unknown_not_none():
    facts = edit(WIDE, {"pg4": {"running": False, "wal_receiver": None,
                                "lsn": {"current": None, "receive": None, "replay": None}}})
    block = render_status(WIDE, facts)[0].split("\npg4  ")[1].split("\n\n")[0].splitlines()
    assert "  receive:      unknown (not running)" in block
    assert "  replay:       unknown (not running)" in block


def test_unreachable_reason_is_the_hosts_state_and_its_problem():
    facts = edit(WIDE, {"pg4": None, "pg2": lambda f: f["replication"].pop(1)})
    reason = "down or unreachable (ssh: Could not connect (timed out))"
    text, problems = render_status(WIDE, facts, unreachable_reasons={"pg4": reason, "pg9": "ignored"})
    assert problems == [
        "pg2: standby_3 (pg4) is not connected (no row in pg_stat_replication)",
        f"pg4: {reason}",
    ]
    lines = text.splitlines()
    assert "    |-- pg4 (downstream): unreachable" in lines
    block = text.split("\npg4  ")[1].split("\n\n")[0].splitlines()
    assert block == ["downstream  10.0.0.4", f"  state:        {reason}"]


def test_a_reason_for_a_host_that_was_read_changes_nothing():
    facts = healthy_facts(WIDE)
    assert render_status(WIDE, facts, unreachable_reasons={"pg3": "x"}) == render_status(WIDE, facts)


def test_pending_restart_is_shown():
    text, _ = render_status(WIDE, edit(WIDE, {"pg1": {"pending_restart": ["wal_level", "max_connections"]}}))
    assert "  pending restart: max_connections, wal_level" in text.splitlines()


@pytest.mark.parametrize(
    "lsn, expected",
    [(0, "0/0"), (MASTER_LSN, "0/3000148"), ((1 << 32) + 0x10, "1/10"), (None, "unknown")],
)
def test_lsn_text(lsn, expected):
    assert lsn_text(lsn) == expected


def test_table_aligns_and_shows_none_as_dash():
    assert table(("a", "bb"), [("xyz", None), (1, "2")], "  ") == ["  a    bb", "  xyz  -", "  1    2"]
