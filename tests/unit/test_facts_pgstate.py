"""PgState: parsing of recorded script outputs, and the command it renders.

The recordings in tests/fixtures/facts/pgstate/ are the raw stdout of PgState's script, run as
pyinfra runs it (sudo -u postgres bash -c ...) against PostgreSQL 15 clusters on 127.0.0.1:
main (primary, port 5432) -> stby (standby_1, 5433) -> down (downstream_1, 5434), recorded with
roles=["replicator"], settings=["archive_mode", "hot_standby", "max_wal_senders", "wal_level"]:

  not_installed            version 17 (not installed on that machine)
  cluster_missing          version 15, cluster "nosuch"
  primary_pristine         main, freshly created and started, nothing done yet
  primary_running          main with replicator, archiving, a pending restart, standby_1 attached
  standby_streaming        stby streaming from main, itself feeding downstream_1
  downstream_streaming     down streaming from stby
  standby_stopped          stby after pg_ctlcluster stop
  downstream_upstream_down down while stby is stopped (WAL receiver gone)
  downstream_promoted      down after pg_promote(): timeline 2, checkpoint still on 1
  standby_not_accepting    stby started with hot_standby=off (up, rejecting connections)
  primary_stopped          main after pg_ctlcluster stop
  wrong_os_user            main running, the script run as root instead of postgres
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.exceptions import FactProcessError

from facts.pg_state import _SCRIPT as SCRIPT
from facts.pg_state import PgState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts" / "pgstate"
SETTINGS = ["archive_mode", "hot_standby", "max_wal_senders", "wal_level"]
SYSTEM_IDENTIFIER = "7642011472967116994"  # of the recorded main and both its standbys

CONTRACT_KEYS = {
    "installed", "cluster_exists", "data_directory", "running", "in_recovery", "standby_signal",
    "system_identifier", "timeline", "lsn", "primary_conninfo", "wal_receiver", "replication",
    "pending_restart", "settings", "archiver", "roles", "pristine", "clone_marker", "backup_label",
}


def raw(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def lines(text: str) -> list[str]:
    """What pyinfra hands process(): stdout lines without their newlines."""
    return text.splitlines()


def parse(name: str) -> dict:
    return PgState().process(lines(raw(name)))


def assert_contract(state: dict) -> None:
    """Every key of docs/architecture.md, with the documented types (None = unknown)."""
    assert set(state) == CONTRACT_KEYS

    def typed(value, kind, nullable=True):
        if value is None:
            assert nullable
        else:
            assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), value

    for key in ("installed", "cluster_exists", "running", "standby_signal"):
        typed(state[key], bool, nullable=False)
    typed(state["in_recovery"], bool)
    typed(state["pristine"], bool)
    typed(state["data_directory"], str)
    typed(state["clone_marker"], str)
    typed(state["backup_label"], str)
    typed(state["system_identifier"], str)
    typed(state["primary_conninfo"], str)
    typed(state["timeline"], int)
    assert set(state["lsn"]) == {"current", "receive", "replay"}
    for value in state["lsn"].values():
        typed(value, int)
    if state["wal_receiver"] is not None:
        assert set(state["wal_receiver"]) == {"status", "sender_host", "sender_port", "received_tli"}
        typed(state["wal_receiver"]["sender_port"], int)
        typed(state["wal_receiver"]["received_tli"], int)
    assert isinstance(state["replication"], list)
    for row in state["replication"]:
        assert set(row) == {"application_name", "client_addr", "state", "sync_priority",
                            "sync_state", "replay_lag_bytes", "flush_lag_bytes"}
        typed(row["sync_priority"], int, nullable=False)
        typed(row["replay_lag_bytes"], int)
        typed(row["flush_lag_bytes"], int)
    assert isinstance(state["pending_restart"], list)
    assert all(isinstance(n, str) for n in state["pending_restart"])
    assert isinstance(state["settings"], dict)
    if state["archiver"] is not None:
        assert set(state["archiver"]) == {"archived_count", "failed_count",
                                          "last_archived_wal", "last_failed_wal"}
        typed(state["archiver"]["archived_count"], int, nullable=False)
        typed(state["archiver"]["failed_count"], int, nullable=False)
    if state["roles"] is not None:
        for role in state["roles"].values():
            assert set(role) == {"replication", "login", "password", "reads_all_stats", "can_rewind"}
    if not state["running"]:
        assert state["pristine"] is None and state["roles"] is None
        assert state["lsn"] == {"current": None, "receive": None, "replay": None}
        assert state["archiver"] is None and state["wal_receiver"] is None


RECORDINGS = sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "wrong_os_user")


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_recording_gives_exactly_the_contract(name):
    assert_contract(parse(name))


def test_recordings_are_one_json_line_each():
    for path in FIXTURES.glob("*.json"):
        assert len(lines(path.read_text())) == 1, path.name
        json.loads(path.read_text())


# -- not installed / no cluster ----------------------------------------------------------------


def test_not_installed():
    state = parse("not_installed")
    assert state["installed"] is False
    assert state["cluster_exists"] is False
    assert state["running"] is False
    assert state["data_directory"] is None
    assert state["in_recovery"] is None
    assert state["system_identifier"] is None and state["timeline"] is None
    assert state["settings"] == {name: None for name in SETTINGS}


def test_default_has_the_not_installed_shape():
    default = PgState.default()
    assert_contract(default)
    assert default == {**parse("not_installed"), "settings": {}}
    assert PgState.default() is not default  # a fresh dict each time


def test_cluster_missing():
    state = parse("cluster_missing")
    assert state["installed"] is True
    assert state["cluster_exists"] is False
    assert state["running"] is False
    assert state["data_directory"] is None
    assert state["in_recovery"] is None
    assert state["system_identifier"] is None


# -- running servers ---------------------------------------------------------------------------


def test_primary_pristine():
    state = parse("primary_pristine")
    assert state["running"] is True and state["in_recovery"] is False
    assert state["pristine"] is True
    assert state["timeline"] == 1
    assert state["roles"] == {}  # replicator not created yet
    assert state["replication"] == [] and state["pending_restart"] == []
    assert state["archiver"]["archived_count"] == 0
    assert state["primary_conninfo"] == ""
    assert state["system_identifier"] == SYSTEM_IDENTIFIER


def test_primary_running():
    state = parse("primary_running")
    assert state["running"] is True
    assert state["in_recovery"] is False and state["standby_signal"] is False
    assert state["data_directory"] == "/var/lib/postgresql/15/main"
    assert state["system_identifier"] == SYSTEM_IDENTIFIER
    assert state["timeline"] == 1
    assert state["lsn"]["current"] > 0
    assert state["lsn"]["receive"] is None and state["lsn"]["replay"] is None
    assert state["wal_receiver"] is None
    assert state["primary_conninfo"] == ""
    [row] = state["replication"]
    assert row["application_name"] == "standby_1"
    assert row["client_addr"] == "127.0.0.1"
    assert row["state"] == "streaming"
    assert (row["sync_priority"], row["sync_state"]) == (1, "sync")
    assert 0 <= row["replay_lag_bytes"] <= state["lsn"]["current"]
    assert state["pending_restart"] == ["max_connections"]
    assert state["settings"] == {"archive_mode": "on", "hot_standby": "on",
                                 "max_wal_senders": "10", "wal_level": "replica"}
    assert state["archiver"]["archived_count"] > 0 and state["archiver"]["failed_count"] == 0
    assert state["archiver"]["last_archived_wal"]
    replicator = state["roles"]["replicator"]
    assert replicator["replication"] is True and replicator["login"] is True
    assert replicator["password"].startswith("SCRAM-SHA-256$")
    assert state["pristine"] is False


def test_standby_streaming_from_the_primary():
    primary, standby = parse("primary_running"), parse("standby_streaming")
    assert standby["running"] is True
    assert standby["in_recovery"] is True and standby["standby_signal"] is True
    assert standby["system_identifier"] == primary["system_identifier"]
    assert standby["timeline"] == 1
    assert standby["lsn"]["current"] is None
    assert standby["lsn"]["receive"] >= standby["lsn"]["replay"] > 0
    assert standby["wal_receiver"] == {"status": "streaming", "sender_host": "127.0.0.1",
                                       "sender_port": 5432, "received_tli": 1}
    assert "application_name=standby_1" in standby["primary_conninfo"]
    assert "port=5432" in standby["primary_conninfo"]
    assert "password=********" in standby["primary_conninfo"]  # pg_basebackup -R wrote one
    assert "lab-secret" not in raw("standby_streaming")
    assert standby["pristine"] is False
    assert standby["roles"]["replicator"]["replication"] is True  # pg_authid, readable in recovery


def test_cascading_standby_reports_its_downstream():
    standby, downstream = parse("standby_streaming"), parse("downstream_streaming")
    [row] = standby["replication"]
    assert row["application_name"] == "downstream_1"
    assert row["state"] == "streaming"
    assert (row["sync_priority"], row["sync_state"]) == (0, "async")
    assert row["replay_lag_bytes"] is not None and row["replay_lag_bytes"] >= 0
    assert downstream["in_recovery"] is True
    assert downstream["system_identifier"] == standby["system_identifier"]
    assert downstream["wal_receiver"]["sender_port"] == 5433
    assert downstream["wal_receiver"]["status"] == "streaming"
    assert "application_name=downstream_1" in downstream["primary_conninfo"]
    assert downstream["replication"] == []


def test_standby_without_upstream_falls_back_to_the_checkpoint_timeline():
    state = parse("downstream_upstream_down")
    assert state["running"] is True and state["in_recovery"] is True
    assert state["wal_receiver"] is None
    assert state["timeline"] == 1


def test_promoted_standby_reports_its_new_timeline():
    state = parse("downstream_promoted")
    assert state["running"] is True
    assert state["in_recovery"] is False and state["standby_signal"] is False
    assert state["timeline"] == 2  # its checkpoint still said 1 when recorded
    assert state["lsn"]["current"] > 0
    assert state["wal_receiver"] is None
    assert state["system_identifier"] == SYSTEM_IDENTIFIER
    assert state["pristine"] is False


# -- stopped or not accepting connections: pg_controldata --------------------------------------


def test_standby_stopped():
    state = parse("standby_stopped")
    assert state["running"] is False
    assert state["cluster_exists"] is True
    assert state["data_directory"] == "/var/lib/postgresql/15/stby"
    assert state["standby_signal"] is True and state["in_recovery"] is True
    assert state["system_identifier"] == parse("primary_running")["system_identifier"]
    assert state["timeline"] == 1
    assert state["primary_conninfo"] is None and state["roles"] is None
    assert state["replication"] == [] and state["pending_restart"] == []
    assert state["settings"] == {name: None for name in SETTINGS}


def test_standby_up_but_not_accepting_connections_reads_like_stopped():
    state = parse("standby_not_accepting")
    assert state["running"] is False
    assert state["in_recovery"] is True
    assert state["system_identifier"] == SYSTEM_IDENTIFIER


def test_primary_stopped():
    state = parse("primary_stopped")
    assert state["running"] is False
    assert state["installed"] is True and state["cluster_exists"] is True
    assert state["standby_signal"] is False and state["in_recovery"] is False
    assert state["system_identifier"] == SYSTEM_IDENTIFIER
    assert state["timeline"] == 1
    assert state["pristine"] is None


# -- failures ----------------------------------------------------------------------------------


def test_query_failure_on_a_running_server_fails_the_fact_with_the_reason():
    with pytest.raises(FactProcessError, match=r'role "root" does not exist.*postgres'):
        parse("wrong_os_user")


@pytest.mark.parametrize(
    "output",
    [
        [],
        [""],
        ["not json"],
        ['{"installed": true'],
        ["[1, 2]"],
        ["null"],
        ["sudo: a password is required"],
        ['{"installed": "yes"}'],
    ],
)
def test_garbage_raises_fact_process_error(output):
    with pytest.raises(FactProcessError):
        PgState().process(output)


def _mutated(name, change):
    doc = json.loads(raw(name))
    change(doc)
    return [json.dumps(doc)]


@pytest.mark.parametrize(
    "name, change",
    [
        ("primary_running", lambda d: d.pop("installed")),
        ("primary_running", lambda d: d["server"].pop("timeline")),
        ("primary_running", lambda d: d["server"].update(timeline="1")),
        ("primary_running", lambda d: d["server"].update(timeline=True)),
        ("primary_running", lambda d: d["server"].update(timeline=1.5)),
        ("primary_running", lambda d: d["server"]["lsn"].update(current=float("nan"))),
        ("primary_running", lambda d: d["server"].update(in_recovery="f")),
        ("primary_running", lambda d: d["server"].update(replication={})),
        ("primary_running", lambda d: d["server"]["replication"][0].update(sync_priority="1")),
        ("primary_running", lambda d: d["server"]["replication"][0].pop("state")),
        ("primary_running", lambda d: d["server"].update(pending_restart=[1])),
        ("primary_running", lambda d: d["server"]["settings"].update(wal_level=5)),
        ("primary_running", lambda d: d["server"]["roles"]["replicator"].update(login=1)),
        ("primary_running", lambda d: d["server"].update(archiver=[])),
        ("standby_streaming", lambda d: d["server"]["wal_receiver"].update(sender_port="x")),
        ("standby_stopped", lambda d: d["controldata"].update(timeline="one")),
        ("standby_stopped", lambda d: d.update(server="down")),
    ],
)
def test_wrong_types_raise_fact_process_error(name, change):
    with pytest.raises(FactProcessError):
        PgState().process(_mutated(name, change))


def test_process_does_not_modify_or_keep_extra_keys():
    output = _mutated("primary_running", lambda d: d["server"].update(surprise=1))
    assert set(PgState().process(output)) == CONTRACT_KEYS


# -- command() ---------------------------------------------------------------------------------


def render(**kwargs):
    args = {"version": 15, "cluster": "main", "port": 5432, "roles": ["replicator"],
            "settings": ["wal_level", "pg_stat_statements.max"]}
    args.update(kwargs)
    return PgState().command(**args)


def test_command_is_valid_bash():
    assert PgState.shell_executable == "bash"
    for command in (render(), render(roles=(), settings=()), render(cluster="stby-2.a")):
        result = subprocess.run(["bash", "-n"], input=command, text=True, capture_output=True)
        assert result.returncode == 0, result.stderr


def test_command_is_deterministic_and_sorted():
    assert render(roles=["b", "a", "a"]) == render(roles=("a", "b"))
    assert "PG_SETTINGS_JSON='[\"pg_stat_statements.max\", \"wal_level\"]'" in render()
    # the query reaches psql intact through the shell quoting
    command = render(roles=["replicator", "repl_2"]).replace(SCRIPT, 'printf %s "$PG_SQL"')
    sql = subprocess.run(["bash", "-c", command], text=True, capture_output=True).stdout
    assert "rolname = any(ARRAY['repl_2', 'replicator']::text[])" in sql
    assert "unnest(ARRAY['pg_stat_statements.max', 'wal_level']::text[])" in sql
    assert r"'password\s*=\s*(''(\\.|[^''\\])*''|\S*)'" in sql


def test_fact_name_and_signature():
    assert PgState.name == "facts.pg_state.PgState"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_script_never_fails_where_postgresql_is_absent():
    """Run the real script for a version no machine has: a valid 'not installed' document."""
    command = render(version=99, cluster="nosuch", port=59999)
    result = subprocess.run(["bash", "-c", command], text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    state = PgState().process(lines(result.stdout))
    assert_contract(state)
    assert state["installed"] is False and state["cluster_exists"] is False
    assert state["settings"] == {"pg_stat_statements.max": None, "wal_level": None}


@pytest.mark.parametrize("marker, label, expected_marker, expected_label", [
    ("none\n", "LABEL: pgcascade clone\nSTART TIMELINE: 1\n", "none", "pgcascade clone"),
    ("7642011472967116994\nignored\n", None, "7642011472967116994", None),
    (None, "START WAL LOCATION: 0/2000028\nLABEL: pg_basebackup base backup\n", None, "pg_basebackup base backup"),
    (None, None, None, None),
])
def test_script_reads_the_clone_marker_and_the_backup_label(tmp_path, marker, label, expected_marker, expected_label):
    """The real script, with its configuration directory and marker moved into tmp_path."""
    conf, data = tmp_path / "conf", tmp_path / "data"
    conf.mkdir()
    data.mkdir()
    (conf / "postgresql.conf").write_text(f"data_directory = '{data}'\n")
    (data / "PG_VERSION").write_text("99\n")
    if label is not None:
        (data / "backup_label").write_text(label)
    if marker is not None:
        (tmp_path / "marker").write_text(marker)
    command = render(version=99, port=59999).replace(
        "conf_dir=/etc/postgresql/$PG_VERSION/$PG_CLUSTER", f"conf_dir={conf}").replace(
        "PG_CLONE_MARKER=/var/lib/postgresql/.pgcascade-clone-99-main", f"PG_CLONE_MARKER={tmp_path / 'marker'}")
    result = subprocess.run(["bash", "-c", command], text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    state = PgState().process(lines(result.stdout))
    assert_contract(state)
    assert state["data_directory"] == str(data)
    assert state["clone_marker"] == expected_marker
    assert state["backup_label"] == expected_label


@pytest.mark.parametrize(
    "kwargs",
    [
        {"version": "15"},
        {"version": True},
        {"version": 12},
        {"version": 15.0},
        {"port": "5432"},
        {"port": 0},
        {"port": 70000},
        {"cluster": "main; rm -rf /"},
        {"cluster": "../main"},
        {"cluster": ""},
        {"roles": "replicator"},
        {"roles": ["Replicator"]},
        {"roles": ["repl'icator"]},
        {"roles": [None]},
        {"roles": ["replicator", None, 3]},
        {"settings": ["wal_level; drop table t"]},
        {"settings": ["WAL_LEVEL"]},
        {"settings": "wal_level"},
        {"settings": 5},
    ],
)
def test_command_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="PgState"):
        render(**kwargs)
