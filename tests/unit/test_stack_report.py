"""The whole-stack part of tasks.status (planner/stack_report.py) and the ManagedState parser."""
from __future__ import annotations

import os
import subprocess

from facts.managed import HeartbeatConfigState, parse_managed_state
from planner import registry, stack_report
from tests.unit.managed_states import SECRETS, TOPOLOGY, healthy

REGISTRIES = {n.name: registry.entries(TOPOLOGY, n.name, SECRETS) for n in TOPOLOGY.nodes}


def pg_state(node: str) -> dict:
    primary = node == "pg1"
    return {"installed": True, "cluster_exists": True, "running": True, "in_recovery": not primary,
            "standby_signal": not primary, "timeline": 1,
            "replication": [{"application_name": "standby_1", "sync_state": "sync", "state": "streaming"}]
            if primary else []}


def view(managed=None, facts=None):
    facts = facts or {n: pg_state(n) for n in REGISTRIES}
    managed = managed or {n: healthy(n) for n in REGISTRIES}
    return stack_report.stack_view(TOPOLOGY, REGISTRIES, facts, managed)


def test_healthy_stack():
    v = view()
    assert v["drift"] == [] and stack_report.stack_problems(v) == []
    assert v["synchronous_guarantee"]["on"] is True
    assert v["heartbeat"]["vip_holders"] == ["pg1"]
    assert v["heartbeat"]["nodes"]["pg2"] == {"running": True, "resources": "local", "vip": False}
    assert v["services"]["pg3"] == {"pgcascade-cascade-monitor.service": "active"}
    assert v["archive_backlog"] is None  # where the cascade's backlog figures plug in
    text = "\n".join(stack_report.stack_lines(v))
    assert "synchronous guarantee: on" in text and "none: every managed entry" in text


def test_can_fail_over_from_the_heartbeat_nodes_views():
    v = view()
    assert v["failover"]["can_fail_over"] is True and v["failover"]["line"] == "can fail over: yes"
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg2"]["failover_view"].update(can_fail_over=False, reasons=["heartbeat on pg2 sees pg1 as dead"])
    v = view(managed)
    assert v["failover"]["line"] == "can fail over: no, because heartbeat on pg2 sees pg1 as dead"
    assert v["failover"]["line"] in stack_report.stack_problems(v)


def test_a_stale_failover_view_is_no_view():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg1"]["failover_view"]["checked_at"] = 1000.0 - stack_report.FAILOVER_VIEW_MAX_AGE - 1
    v = view(managed)
    assert v["failover"]["can_fail_over"] is False and "no ha-watch report from pg1" in v["failover"]["line"]


def test_emptied_synchronous_standby_names_says_commits_do_not_wait():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg1"]["postgres"]["settings"]["synchronous_standby_names"]["setting"] = ""
    facts = {n: pg_state(n) for n in REGISTRIES}
    facts["pg1"]["replication"][0]["sync_state"] = "async"
    g = view(managed, facts)["synchronous_guarantee"]
    assert g["on"] is False and "do not wait" in g["reason"]


def test_weak_synchronous_commit_for_a_role_switches_the_guarantee_off():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg1"]["postgres"]["role_settings"] = [{"role": "app", "database": None, "config": ["synchronous_commit=off"]}]
    v = view(managed)
    assert v["synchronous_guarantee"]["on"] is False and "for role app" in v["synchronous_guarantee"]["reason"]
    assert any("synchronous_commit" in p for p in stack_report.stack_problems(v))


def test_heartbeat_down_and_two_vips_are_problems():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg2"]["heartbeat"] = None
    managed["pg2"]["vip"] = True
    problems = stack_report.stack_problems(view(managed))
    assert "pg2: heartbeat is not running (start it: systemctl start heartbeat)" in problems
    assert "the VIP is on pg1, pg2 at once" in problems


def test_unread_host_is_unknown_not_drift():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg3"] = None
    v = view(managed)
    assert v["drift"] == [] and v["services"]["pg3"] == {"pgcascade-cascade-monitor.service": None}


def test_archiving_failing():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg1"]["postgres"]["archiver"] = {"archived_count": 3, "failed_count": 2,
                                             "last_archived_wal": "000000010000000000000003",
                                             "last_failed_wal": "000000010000000000000004"}
    managed["pg1"]["postgres"]["current_wal"] = "000000010000000000000005"
    a = view(managed)["archiving"]["pg1"]
    assert a["failing"] and a["current_wal"] == "000000010000000000000005"


RECORDED = [
    "P\t/etc/ha.d/authkeys\tfile\t600 root root\tce24857c347e2f695804564fea0585bd1d1d0e6b9013c6a6cafbc4e4821743f4",
    "P\t/var/lib/postgresql/.ssh\tdirectory\t700 postgres postgres\t-",
    "U\theartbeat.service\tenabled\tactive",
    "A",
    "K\tssh-ed25519 AAAAC3 postgres@pg2",
    "Q\tssh-ed25519 AAAAC3x postgres@pg1",
    "H\t3356\t120\tlocal",
    "V",
    'S\t{"in_recovery" : false, "settings" : {"port" : {"setting" : "5432"}}}',
]


def test_managed_state_parses_its_records():
    state = parse_managed_state(RECORDED)
    assert state["paths"]["/etc/ha.d/authkeys"]["mode"] == "0600"
    assert state["paths"]["/var/lib/postgresql/.ssh"] == {"type": "directory", "mode": "0700", "owner": "postgres",
                                                          "group": "postgres", "sha256": None}
    assert state["units"]["heartbeat.service"] == {"enabled": "enabled", "active": "active"}
    assert state["authorized_keys"] == ["ssh-ed25519 AAAAC3 postgres@pg2"]
    assert state["heartbeat"] == {"pid": 3356, "seconds": 120, "resources": "local"}
    assert state["vip"] is True and state["postgres"]["in_recovery"] is False


def test_no_authorized_keys_file_is_none_and_an_empty_one_is_empty():
    assert parse_managed_state([])["authorized_keys"] is None
    assert parse_managed_state(["A"])["authorized_keys"] == []


def test_heartbeat_config_state_parses():
    state = HeartbeatConfigState().process(["started 1000", "reread 1100", "mtime 1050.5 /etc/ha.d/ha.cf", "vip",
                                            "sha ab /etc/ha.d/haresources", "started_sha cd /etc/ha.d/haresources"])
    assert state == {"running": True, "started": 1000.0, "reread": 1100.0, "mtimes": {"/etc/ha.d/ha.cf": 1050.5},
                     "holds_vip": True, "sha256": {"/etc/ha.d/haresources": "ab"},
                     "started_sha256": {"/etc/ha.d/haresources": "cd"}}


def test_a_file_written_in_the_same_second_as_the_reread_stamp_needs_no_second_reread(tmp_path):
    """The stamp's time is read as finely as the files': whole seconds made a file written at
    x.5 s look newer than a `heartbeat -r` stamped at x.9 s, and every rerun re-read again."""
    config, stamp = tmp_path / "ha.cf", tmp_path / "reread"
    config.write_text("x")
    os.utime(config, (1000.5, 1000.5))
    stamp.write_text("")
    os.utime(stamp, (1000.9, 1000.9))
    command = HeartbeatConfigState().command(files=[str(config)], stamp=str(stamp))
    output = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout
    state = {**HeartbeatConfigState().process(output.splitlines()), "running": True, "started": 900.0}
    assert registry.heartbeat_action(state, [str(config)], [])[0] == "nothing"


def failed_over_facts() -> dict:
    """pg1 (the inventory's master) is down; pg2 was promoted to timeline 2 with pg3 its sync standby."""
    facts = {n: pg_state(n) for n in REGISTRIES}
    facts["pg1"] = None
    facts["pg2"] = {**pg_state("pg1"), "timeline": 2, "standby_signal": False,
                    "replication": [{"application_name": "standby_2", "sync_state": "sync", "state": "streaming"}]}
    facts["pg3"]["timeline"] = 2
    return facts


def test_after_a_failover_the_promoted_primary_says_what_to_run():
    managed = {n: healthy(n) for n in REGISTRIES}
    managed["pg1"] = None
    signal = next(e.path for e in REGISTRIES["pg2"].signals)
    managed["pg2"]["paths"].pop(signal, None)  # a promoted standby has no standby.signal
    v = view(managed, failed_over_facts())
    assert v["failed_over"]["primary"] == "pg2" and v["failed_over"]["timeline"] == 2
    problems = stack_report.stack_problems(v)
    assert problems[0] == v["failed_over"]["line"] and "tasks/rejoin.py" in problems[0]
    # Not drift: recreating standby.signal on the running primary would demote it at its next restart.
    assert not [d for d in v["drift"] if d["category"] == "signal"]
    # The guarantee is the live primary's: pg3 is pg2's synchronous standby.
    assert v["synchronous_guarantee"] == {"on": True, "reason": "standby_2 synchronous on pg2"}


def test_a_standby_without_standby_signal_is_drift():
    managed = {n: healthy(n) for n in REGISTRIES}
    signal = next(e.path for e in REGISTRIES["pg3"].signals)
    managed["pg3"]["paths"].pop(signal, None)
    v = view(managed)
    assert [d["key"] for d in v["drift"] if d["category"] == "signal"] == [f"signal {signal}"]
    assert v["failed_over"] is None

