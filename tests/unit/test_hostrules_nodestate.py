"""hostrules.nodestate: the one query's row and pg_controldata's output, parsed."""
from __future__ import annotations

import json

from hostrules.nodestate import NodeState, conninfo_application_name, parse_controldata, parse_query_row
from tests.unit.node_rows import PRIMARY_ROW, STANDBY_ROW, data_dir


def test_a_standby_row():
    node = NodeState(**parse_query_row(STANDBY_ROW))
    assert node.line() == "standby 2 7312345678901234567"
    assert node.lsn == 0x5000148 and node.application_name == "standby_1"
    assert node.streaming_from == "198.51.100.11"
    assert node.replication[0].flush_lsn == 0x5000100 and node.replication[0].client_addr == "198.51.100.13"


def test_a_primary_row_and_the_json_round_trip():
    node = NodeState(**parse_query_row(PRIMARY_ROW))
    assert (node.state, node.lsn, node.application_name, node.streaming_from) == ("primary", 0x1000000A0, "", "")
    assert NodeState.from_dict(json.loads(node.to_json())) == node
    assert NodeState.from_dict({"state": "garbage"}).state == "unreachable"


def test_conninfo_application_name():
    assert conninfo_application_name("host=a application_name='it\\'s me' port=1") == "it's me"
    assert conninfo_application_name("host=a") == ""


def test_controldata():
    text = ("Database system identifier:           7312345678901234567\n"
            "Latest checkpoint location:           0/3000060\n"
            "Latest checkpoint's TimeLineID:       3\n")
    assert parse_controldata(text) == {"system_identifier": "7312345678901234567", "timeline": 3, "lsn": 0x3000060}


# ---- read_local against stub commands (no server answering: from the files) ---------------------

def stub_bin(tmp_path, sysid="7312345678901234567", tli="3", running=False):
    import textwrap

    from tests.unit.executables import write_executable

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    write_executable(bin_dir / "psql", "#!/bin/sh\nexit 2\n")
    write_executable(bin_dir / "pg_controldata", textwrap.dedent(f"""\
        #!/bin/sh
        echo 'Database system identifier:           {sysid}'
        echo "Latest checkpoint's TimeLineID:       {tli}"
        """))
    write_executable(bin_dir / "pg_ctl", f"#!/bin/sh\nexit {0 if running else 3}\n")
    return str(bin_dir)


def read(tmp_path, monkeypatch, **kwargs):
    from hostrules.nodestate import read_local

    monkeypatch.setenv("PGCASCADE_HOSTRULES_AS_IS", "1")
    return read_local(stub_bin(tmp_path, **kwargs), str(tmp_path / "data"), 5432, "/nowhere", timeout=5)


def test_a_stopped_cluster_comes_from_pg_controldata(tmp_path, monkeypatch):
    data = data_dir(tmp_path)
    assert read(tmp_path, monkeypatch).line() == "stopped-primary 3 7312345678901234567"
    (data / "standby.signal").write_text("")
    assert read(tmp_path, monkeypatch).line() == "stopped-standby 3 7312345678901234567"
    assert read(tmp_path, monkeypatch, running=True).line() == "starting 3 7312345678901234567"


def test_a_running_postmaster_that_said_ready_but_does_not_answer_is_unresponsive(tmp_path, monkeypatch):
    data = data_dir(tmp_path)
    pidfile = "1234\n{}\n1700000000\n5432\n/var/run/postgresql\n*\n  5432001     12\n{}\n"
    (data / "postmaster.pid").write_text(pidfile.format(data, "ready   "))
    assert read(tmp_path, monkeypatch, running=True).line() == "unresponsive 3 7312345678901234567"
    (data / "postmaster.pid").write_text(pidfile.format(data, "starting"))  # crash recovery: starting
    assert read(tmp_path, monkeypatch, running=True).line() == "starting 3 7312345678901234567"
    (data / "postmaster.pid").write_text(pidfile.format(data, "ready   "))  # left by a killed postmaster
    assert read(tmp_path, monkeypatch, running=False).line() == "stopped-primary 3 7312345678901234567"


def test_the_newest_timeline_comes_from_history_files_with_its_history(tmp_path, monkeypatch):
    data = data_dir(tmp_path)
    (data / "pg_wal/00000002.history").write_text("1\t0/3000000\tno recovery target specified\n")
    (data / "pg_wal/0000000A.history").write_text("1\t0/3000000\tx\n2\t0/5000000\ty\n")
    node = read(tmp_path, monkeypatch)
    assert node.timeline == 10 and node.history == [(1, 0x3000000), (2, 0x5000000)]


def test_without_a_cluster(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    assert read(tmp_path, monkeypatch).line() == "absent 0 -"
