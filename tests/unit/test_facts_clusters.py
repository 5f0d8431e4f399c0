"""PgClusters: parsing of recorded pg_lsclusters outputs; the pure helpers of operations/clusters.py.

The recordings in tests/fixtures/facts/pgclusters/ are real outputs from lab hosts (Debian 12,
postgresql-common 248, PostgreSQL 15), `pg_lsclusters --json` (*.json) and, for the fallback of
an older postgresql-common, `pg_lsclusters --no-header` (*.txt), taken at the same moment:

  primary                     pg1: 15/main, the master, online
  standby_and_second_cluster  pg3: 15/main a standby (online,recovery) + 15/reports online on 5440
  second_cluster_down         pg3: the same, 15/reports stopped
  standby_down                pg3: 15/main stopped (down,recovery), 15/reports online
  no_clusters                 `PG_CLUSTER_CONF_ROOT=/nonexistent pg_lsclusters --json`: []
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyinfra.api import OperationValueError
from pyinfra.api.exceptions import FactProcessError

from facts.clusters import PgClusters
from operations.clusters import (
    check_arguments,
    confirm_refusal,
    describe_standbys,
    find_cluster,
    format_clusters,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts" / "pgclusters"
KEYS = {"version", "cluster", "port", "status", "running", "recovery", "data_directory", "log_file"}


def parse(filename: str) -> list[dict]:
    return PgClusters().process((FIXTURES / filename).read_text().splitlines())


def main(**overrides) -> dict:
    return {"version": 15, "cluster": "main", "port": 5432, "status": "online", "running": True,
            "recovery": False, "data_directory": "/var/lib/postgresql/15/main",
            "log_file": "/var/log/postgresql/postgresql-15-main.log", **overrides}


def reports(**overrides) -> dict:
    return main(cluster="reports", port=5440, data_directory="/var/lib/postgresql/15/reports",
                log_file="/var/log/postgresql/postgresql-15-reports.log", **overrides)


# -- the recordings ----------------------------------------------------------------------------


def test_primary():
    assert parse("primary.json") == [main()]


def test_standby_and_a_second_cluster():
    assert parse("standby_and_second_cluster.json") == [
        main(status="online,recovery", recovery=True),
        reports(),
    ]


def test_second_cluster_down():
    assert parse("second_cluster_down.json")[1] == reports(status="down", running=False)


def test_stopped_standby_keeps_its_recovery_flag():
    assert parse("standby_down.json")[0] == main(status="down,recovery", running=False, recovery=True)


def test_no_clusters():
    assert parse("no_clusters.json") == []


@pytest.mark.parametrize("state", ["standby_and_second_cluster", "second_cluster_down", "standby_down"])
def test_plain_columns_give_the_same_as_json(state):
    assert parse(f"{state}.txt") == parse(f"{state}.json")


def test_every_entry_has_exactly_the_documented_keys():
    for path in FIXTURES.iterdir():
        for cluster in parse(path.name):
            assert set(cluster) == KEYS, path.name
            assert isinstance(cluster["port"], int) and isinstance(cluster["version"], int)


def test_the_settings_pg_lsclusters_prints_are_dropped():
    raw = (FIXTURES / "standby_and_second_cluster.json").read_text()
    assert "primary_conninfo" in raw  # the recording has them...
    assert "primary_conninfo" not in json.dumps(parse("standby_and_second_cluster.json"))  # ...the fact not


# -- edge cases --------------------------------------------------------------------------------


def test_sorted_by_version_then_name():
    doc = [{"version": 16, "cluster": "b", "port": "5434", "running": 0},
           {"version": "9.6", "cluster": "old", "port": "5433", "running": 0},
           {"version": 15, "cluster": "z", "port": "5436", "running": 1},
           {"version": 15, "cluster": "a", "port": "5435", "running": 1}]
    names = [(c["version"], c["cluster"]) for c in PgClusters().process([json.dumps(doc)])]
    assert names == [("9.6", "old"), (15, "a"), (15, "z"), (16, "b")]


def test_unknown_port_data_directory_and_missing_binaries():
    doc = [{"version": 15, "cluster": "broken", "running": 0, "binaries_missing": 1}]
    (cluster,) = PgClusters().process([json.dumps(doc)])
    assert cluster["port"] is None and cluster["data_directory"] is None
    assert cluster["status"] == "down,binaries_missing"
    line = "15 broken <unknown> down,binaries_missing <unknown> <unknown> <unknown>"
    (cluster,) = PgClusters().process([line])
    assert cluster["port"] is None and cluster["data_directory"] is None and cluster["log_file"] is None


def test_command_degrades_to_no_clusters_without_postgresql_common():
    command = PgClusters().command()
    assert "pg_lsclusters --json" in command and "pg_lsclusters --no-header" in command
    assert "echo '[]'" in command
    assert PgClusters.default() == [] and PgClusters.default() is not PgClusters.default()


@pytest.mark.parametrize("output", [
    ["[{"],                                  # truncated JSON
    ['{"version": 15}'],                     # not a list
    ['[{"cluster": "main"}]'],               # no version
    ['[{"version": 15, "cluster": "x", "port": "five"}]'],
    ["Ver Cluster Port Status Owner Data directory Log file"],  # a header: --no-header ignored
    ["15 main 5432 sleeping postgres /d /l"],                   # unknown status
    ["Error: something went wrong"],
])
def test_garbage_is_a_fact_process_error(output):
    with pytest.raises(FactProcessError):
        PgClusters().process(output)


# -- pure helpers of operations/clusters.py ----------------------------------------------------


def test_format_clusters_is_an_aligned_table():
    lines = format_clusters(parse("standby_and_second_cluster.json"))
    assert lines == [
        "Ver Cluster Port Status          Data directory                 Log file",
        "15  main    5432 online,recovery /var/lib/postgresql/15/main    /var/log/postgresql/postgresql-15-main.log",
        "15  reports 5440 online          /var/lib/postgresql/15/reports /var/log/postgresql/postgresql-15-reports.log",
    ]
    assert format_clusters([]) == ["no PostgreSQL clusters"]


def test_find_cluster():
    clusters = parse("standby_and_second_cluster.json")
    assert find_cluster(clusters, 15, "reports")["port"] == 5440
    assert find_cluster(clusters, 16, "reports") is None
    assert find_cluster(clusters, 15, "nosuch") is None


def test_describe_standbys():
    rows = [{"application_name": "standby_1", "client_addr": "198.51.100.140", "state": "streaming",
             "sync_priority": 1, "sync_state": "sync", "replay_lag_bytes": 0},
            {"application_name": "", "client_addr": None, "state": "catchup",
             "sync_priority": 0, "sync_state": "async", "replay_lag_bytes": None}]
    assert describe_standbys(rows) == "standby_1 (198.51.100.140, streaming, sync), ? (local, catchup, async)"


def test_confirm_must_name_the_cluster():
    assert confirm_refusal("drop_cluster", 15, "reports", "reports") is None
    missing = confirm_refusal("drop_cluster", 15, "reports", None)
    assert "add confirm=reports" in missing and "15/reports" in missing
    wrong = confirm_refusal("clean", 15, "main", "reports")
    assert "confirm='reports' does not name it" in wrong and "add confirm=main" in wrong


@pytest.mark.parametrize("kwargs", [
    {"version": "15", "cluster": "main"},      # the CLI gives ints; a string is a mistake
    {"version": True, "cluster": "main"},
    {"version": 9, "cluster": "main"},
    {"version": 15, "cluster": "a/b"},
    {"version": 15, "cluster": 15},
    {"version": 15, "cluster": "main", "port": 0},
    {"version": 15, "cluster": "main", "port": "5440"},
    {"version": 15, "cluster": "main", "force": "yes"},
])
def test_bad_arguments(kwargs):
    with pytest.raises(OperationValueError):
        check_arguments(**kwargs)


def test_good_arguments():
    check_arguments(15, "reports", 5440, force=True)
    check_arguments(17, "my_cluster-2.x")
