"""Restores: the repository's state (parsed from a recorded `pgbackrest info`), PITR targets and
their refusals, the rebuild from the repository, and the status section."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from planner.backup_info import NOT_INSTALLED, NOW_MARK, RESULTS_MARK, parse_repository_state
from planner.backup_status import backup_json, render_backup_status
from planner.model import BackupRepository
from planner.restore import BadTarget, parse_target, plan_pitr, plan_rebuild_from_repository
from tests.unit.topologies import three

INFO = (Path(__file__).resolve().parents[1] / "fixtures" / "pgbackrest-info.json").read_text()
BACKUP_STOP = 1796139006  # the recorded backup's end (epoch s), LSN 0/8000138
NOW = BACKUP_STOP + 600


def state(info: str = INFO, results: list[str] = (), now: int = NOW) -> dict:
    return parse_repository_state(info.splitlines() + [RESULTS_MARK, *results, NOW_MARK, str(now)])


def topology():
    top = three()
    return replace(top, cluster=replace(top.cluster, backup=BackupRepository("pg4", "198.51.100.14")))


def test_the_recorded_info_is_parsed():
    s = state(results=["kind=full", "ok=1", "source=standby", f"finished={BACKUP_STOP}", "message=taken"])
    main = s["stanzas"]["main"]
    assert main["status_code"] == 0 and main["archive_max"] == "00000001000000000000000E"
    assert [(b["label"], b["type"], b["stop"], b["lsn_stop"]) for b in main["backups"]] == [
        ("20261201-152957F", "full", BACKUP_STOP, 0x8000138)]
    assert s["results"]["full"] == {"ok": True, "source": "standby", "finished": BACKUP_STOP, "message": "taken"}
    assert s["now"] == NOW


def test_a_host_without_pgbackrest():
    assert parse_repository_state([NOT_INSTALLED])["installed"] is False


@pytest.mark.parametrize("kwargs, kind, value", [
    ({"time": "2026-12-01 15:33:17+00"}, "time", "2026-12-01 15:33:17.000000+00"),
    ({"time": "2026-12-01T16:33:17+01:00"}, "time", "2026-12-01 15:33:17.000000+00"),
    ({"lsn": "0/c003f20"}, "lsn", "0/C003F20"),
    ({"restore_point": "before migration"}, "name", "before migration"),
])
def test_targets(kwargs, kind, value):
    target = parse_target(**kwargs)
    assert (target.kind, target.value) == (kind, value)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one recovery target"),
    ({"time": "2026-12-01 15:00:00+00", "lsn": "0/1"}, "exactly one recovery target"),
    ({"time": "2026-12-01 15:00:00"}, "has no time zone"),
    ({"time": "yesterday"}, "is not a timestamp"),
    ({"lsn": "12345"}, "is not an LSN"),
    ({"restore_point": "x'; drop"}, "restore point"),
])
def test_bad_targets_say_how_to_give_one(kwargs, message):
    with pytest.raises(BadTarget, match=message):
        parse_target(**kwargs)


def _pitr(target, repository=None, clusters=(), marker=None, cluster="pitr", port=5440, host="pg3",
          live_fact=None, confirm=None, newest_lsn=0xF000000):
    return plan_pitr(topology(), host, target, state() if repository is None else repository, list(clusters),
                     marker, cluster, port, now=NOW, newest_lsn=newest_lsn, live_fact=live_fact, confirm=confirm)


MAIN = {"version": 15, "cluster": "main", "port": 5432, "running": True}
STANDBY = {"running": True, "in_recovery": True}
PRIMARY = {"running": True, "in_recovery": False}


def _time(seconds_after_backup: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(BACKUP_STOP + seconds_after_backup, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


@pytest.mark.parametrize("target, kwargs, action, words", [
    (parse_target(time=_time(60)), {"clusters": [MAIN]}, "restore", "as a new cluster on port 5440; it will not archive"),
    (parse_target(time=_time(-60)), {}, "refuse", "before the oldest backup (20261201-152957F"),
    (parse_target(time=_time(6000)), {}, "refuse", "after the newest WAL"),
    (parse_target(lsn="0/7000000"), {}, "refuse", "before the end of the oldest backup"),
    (parse_target(lsn="0/F000001"), {}, "refuse", "after the newest WAL (the primary is at 0/F000000)"),
    (parse_target(lsn="0/9000000"), {}, "restore", "LSN 0/9000000"),
    (parse_target(restore_point="rp1"), {"clusters": [MAIN, {"version": 15, "cluster": "other", "port": 5440}]},
     "refuse", "port 5440 is taken by cluster 15/other"),
    (parse_target(restore_point="rp1"), {"clusters": [{"version": 15, "cluster": "pitr", "port": 5440, "running": True}],
                                         "marker": {"stanza": "main", "type": "name", "target": "rp1"}},
     "nothing", "already holds the restore to restore point rp1"),
    (parse_target(restore_point="rp2"), {"clusters": [{"version": 15, "cluster": "pitr", "port": 5440, "running": True}],
                                         "marker": {"stanza": "main", "type": "name", "target": "rp1"}},
     "refuse", "exists (restored to name rp1): drop it first"),
    (parse_target(restore_point="rp1"), {"clusters": [{"version": 15, "cluster": "pitr", "port": 5440}]},
     "refuse", "exists (not made by a restore of this task)"),
    (parse_target(restore_point="rp1"), {"cluster": "main", "live_fact": STANDBY}, "refuse",
     "is a live member of the cluster: restoring over it replaces its data; give confirm=pg3"),
    (parse_target(restore_point="rp1"), {"cluster": "main", "live_fact": STANDBY, "confirm": "pg3"}, "restore",
     "over the live member (confirmed)"),
    (parse_target(restore_point="rp1"), {"cluster": "main", "host": "pg1", "live_fact": PRIMARY, "confirm": "pg1"},
     "refuse", "is the cluster's running primary: never restored over"),
    (parse_target(restore_point="rp1"), {"repository": {}}, "refuse", "the backup repository host pg4"),
    (parse_target(restore_point="rp1"), {"repository": state(info="[]")}, "refuse",
     "stanza 'main' is not in the repository on pg4"),
    (parse_target(restore_point="rp1"), {"port": 80}, "refuse", "port 80"),
])
def test_pitr_plans(target, kwargs, action, words):
    plan = _pitr(target, **kwargs)
    assert (plan.action, words in plan.reason) == (action, True), plan.reason


def test_rebuild_from_the_repository_follows_the_rebuild_rules_then_the_repository():
    top = topology()
    healthy = {"installed": True, "cluster_exists": True, "running": True, "in_recovery": True,
               "system_identifier": "7", "timeline": 1,
               "wal_receiver": {"status": "streaming", "sender_host": "198.51.100.12"}}
    upstream = {**healthy, "wal_receiver": {"status": "streaming", "sender_host": "198.51.100.11"}}
    master = {"installed": True, "cluster_exists": True, "running": True, "in_recovery": False,
              "system_identifier": "7", "timeline": 1}
    assert plan_rebuild_from_repository(top, "pg3", healthy, upstream, master, state()).action == "nothing"
    forced = plan_rebuild_from_repository(top, "pg3", healthy, upstream, master, state(), force=True)
    assert forced.action == "restore" and "delta restore of backup 20261201-152957F" in forced.reason
    assert "streams from pg2" in forced.reason
    refused = plan_rebuild_from_repository(top, "pg3", healthy, upstream, master, None, force=True)
    assert refused.action == "refuse" and "cannot be reached" in refused.reason
    assert plan_rebuild_from_repository(top, "pg1", master, None, master, state()).action == "refuse"


def test_status_section_shows_the_last_backup_and_check():
    backup = topology().cluster.backup
    lines, problems = render_backup_status(backup, state(results=[
        "kind=full", "ok=1", "source=standby", f"finished={BACKUP_STOP}", "message=full backup taken from a standby",
        "kind=check", "ok=1", "source=-", f"finished={NOW - 30}", "message=WAL archiving into the repository works"]))
    text = "\n".join(lines)
    assert "last good backup: full 20261201-152957F, ended 10 min ago" in text
    assert "scheduled full: ok 10 min ago (full backup taken from a standby)" in text
    assert "archive check ok 30 s ago" in text
    assert problems == []


@pytest.mark.parametrize("results, now, words", [
    (["kind=check", "ok=0", "finished=1", "message=ERROR: [082]: WAL segment was not archived"], NOW,
     "the last archive check failed: ERROR: [082]"),
    ([], NOW, "archiving into the repository was never checked"),
    (["kind=check", "ok=1", "finished=1", "message=ok"], BACKUP_STOP + 3 * 86400, "more than 48 h"),
    (["kind=check", "ok=1", "finished=1", "message=ok", "kind=diff", "ok=0", f"finished={NOW}", "message=boom"], NOW,
     "the last scheduled backup failed: boom"),
])
def test_status_problems(results, now, words):
    _lines, problems = render_backup_status(topology().cluster.backup, state(results=results, now=now))
    assert any(words in p for p in problems), problems


def test_status_of_an_unreachable_repository():
    _lines, problems = render_backup_status(topology().cluster.backup, None, "down or unreachable (ssh: timeout)")
    assert problems == ["pg4: the backup repository cannot be read (down or unreachable (ssh: timeout))"]


def test_status_json_backup_key_says_what_the_text_says():
    backup = topology().cluster.backup
    repo = state(results=["kind=full", "ok=1", "source=standby", f"finished={BACKUP_STOP}", "message=taken"])
    _lines, problems = render_backup_status(backup, repo)
    doc = backup_json(backup, repo, None, problems)
    assert doc["reachable"] and doc["installed"] and doc["stanza_exists"]
    assert doc["last_backup"] == {"type": "full", "label": "20261201-152957F", "stop": BACKUP_STOP, "age_seconds": 600}
    assert doc["kept"] == {"full": 1, "diff": 0, "incr": 0}
    assert doc["wal"]["max"] == "00000001000000000000000E"
    assert doc["runs"]["full"]["ok"] is True and doc["runs"]["check"] is None
    assert doc["problems"] == problems and any("never checked" in p for p in problems)
    json.dumps(doc)  # serializable as it is


def test_status_json_backup_key_of_an_unreachable_repository():
    backup = topology().cluster.backup
    doc = backup_json(backup, None, "down or unreachable (ssh: timeout)", ["pg4: ..."])
    assert doc["reachable"] is False and doc["unreachable_reason"] == "down or unreachable (ssh: timeout)"
    assert doc["installed"] is None and doc["last_backup"] is None and doc["wal"] is None


def test_the_wal_switch_before_a_restore_commits_an_xid_first():
    """A time target needs a commit after it in the WAL, else recovery ends with a FATAL error
    (an idle cluster restored to "now")."""
    import subprocess

    from operations.restore import switch_and_wait_command

    command = str(switch_and_wait_command(5432, "main", seconds=5).get_raw_value())
    assert command.index("select txid_current()") < command.index("pg_switch_wal()")
    assert "set synchronous_commit = local" in command
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
