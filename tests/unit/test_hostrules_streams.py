"""hostrules' long-lived readers: the psql session a watcher keeps open (nodestate.Session) and
another host's state streamed over one ssh session (hostio.NodeStream), against stub commands."""
from __future__ import annotations

import json
import time

from hostrules import hostio
from hostrules.nodestate import NodeState, PsqlSession, Session, query_together, read_local
from lab.client import wait_until
from tests.unit.executables import write_executable
from tests.unit.node_rows import PRIMARY_ROW, data_dir

# A stub psql that answers each query (a statement ending in ';') with PRIMARY_ROW, and each \echo
# with its word, like psql -Atq reading a pipe (a PREPARE prints nothing; an EXECUTE of a statement
# it was not given prints nothing either: an error, on stderr); it counts its starts in a file next
# to it and writes the first word of each statement to another.
STUB_PSQL = f"""#!/usr/bin/env python3
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "starts"), "a") as f:
    f.write("x")
if os.path.exists(os.path.join(here, "refuse")):
    sys.exit(2)
statement, prepared = "", set()
for line in sys.stdin:
    if os.path.exists(os.path.join(here, "hang")):
        import time; time.sleep(60)
    if line.startswith("\\\\echo "):
        print(line.split(" ", 1)[1].strip(), flush=True)
        continue
    statement += line
    if not line.rstrip().endswith(";"):
        continue
    words, statement = statement.split(), ""
    with open(os.path.join(here, "statements"), "a") as f:
        f.write(words[0] + "\\n")
    if words[0] == "PREPARE":
        prepared.add(words[1])
    elif words[0] != "EXECUTE" or words[1].rstrip(";") in prepared:
        print({PRIMARY_ROW!r}, flush=True)
"""


def stub(tmp_path, monkeypatch):
    monkeypatch.setenv("PGCASCADE_HOSTRULES_AS_IS", "1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(bin_dir / "psql", STUB_PSQL)
    write_executable(bin_dir / "pg_controldata", "#!/bin/sh\nexit 1\n")
    write_executable(bin_dir / "pg_ctl", "#!/bin/sh\nexit 3\n")
    data_dir(tmp_path)
    return bin_dir


def starts(bin_dir) -> int:
    path = bin_dir / "starts"
    return len(path.read_text()) if path.exists() else 0


def test_one_psql_answers_every_read(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    session = Session(str(bin_dir), 5432, "/nowhere")
    try:
        for _ in range(3):
            node = read_local(str(bin_dir), str(tmp_path / "data"), 5432, "/nowhere", timeout=5, session=session)
            assert node.line() == "primary 1 7312345678901234567"
        assert starts(bin_dir) == 1
    finally:
        session.close()


def statements(bin_dir) -> list:
    path = bin_dir / "statements"
    return path.read_text().split() if path.exists() else []


def test_the_node_query_is_prepared_once_per_psql_then_executed(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    session = Session(str(bin_dir), 5432, "/nowhere")
    try:
        for _ in range(3):
            assert json.loads(session.query(5).strip())["in_recovery"] is False
        assert statements(bin_dir) == ["PREPARE", "EXECUTE", "EXECUTE", "EXECUTE"]
        session.proc.kill()  # the server restarted: the new psql prepares it again
        session.proc.wait()
        assert session.query(5).strip()
        assert statements(bin_dir)[4:] == ["PREPARE", "EXECUTE"]
    finally:
        session.close()


def test_an_empty_answer_to_a_prepared_query_closes_the_session(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    session = PsqlSession([str(bin_dir / "psql")], "select 1", prepare="p")
    try:
        assert session.query(5).strip() == PRIMARY_ROW
        session.prepare = "q"  # an EXECUTE the server does not know: no answer, psql goes on
        assert session.query(5) == "" and session.proc is None
        assert session.query(5).strip() == PRIMARY_ROW  # a new psql, prepared again
        assert starts(bin_dir) == 2
    finally:
        session.close()


def test_a_psql_that_ended_is_started_again_and_a_refused_one_reads_the_files(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    session = Session(str(bin_dir), 5432, "/nowhere")
    try:
        assert session.query(5) is not None
        session.proc.kill()  # the server restarted: psql ends with its connection
        session.proc.wait()
        assert json.loads(session.query(5).strip())["in_recovery"] is False
        assert starts(bin_dir) == 2
        (bin_dir / "refuse").write_text("")
        session.close()
        node = read_local(str(bin_dir), str(tmp_path / "data"), 5432, "/nowhere", timeout=5, session=session)
        assert node.state == "stopped-primary"  # from the files, as without a session
    finally:
        session.close()


def test_a_hung_psql_is_given_up_at_the_deadline(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    session = Session(str(bin_dir), 5432, "/nowhere")
    try:
        (bin_dir / "hang").write_text("")
        started = time.monotonic()
        assert session.query(1) is None
        assert time.monotonic() - started < 3 and session.proc is None
    finally:
        session.close()


def test_sessions_asked_together_wait_for_the_slowest_deadline_not_the_sum(tmp_path, monkeypatch):
    bin_dir = stub(tmp_path, monkeypatch)
    (bin_dir / "hang").write_text("")
    sessions = [PsqlSession([str(bin_dir / "psql")], "select 1") for _ in range(3)]
    try:
        started = time.monotonic()
        assert query_together([(s, 1.0) for s in sessions]) == [None, None, None]
        assert time.monotonic() - started < 2.5
        assert all(s.proc is None and s.error == "no answer within 1 s" for s in sessions)
        (bin_dir / "hang").unlink()
        answers = query_together([(s, 5) for s in sessions])
        assert [a.strip() for a in answers if a] == [PRIMARY_ROW] * 3
    finally:
        for s in sessions:
            s.close()


def test_a_session_keeping_errors_says_why_psql_ended(tmp_path):
    psql = tmp_path / "psql"
    write_executable(psql, "#!/bin/sh\necho 'psql: error: connection to server at \"10.0.0.1\" failed: refused' >&2\n"
                           "echo 'second line' >&2\nexit 2\n")
    session = PsqlSession([str(psql)], "select 1", keep_errors=True)
    assert session.query(5) is None
    assert session.error == 'psql: error: connection to server at "10.0.0.1" failed: refused'
    quiet = PsqlSession([str(psql)], "select 1")
    assert quiet.query(5) is None and quiet.error == "psql ended"


def test_a_streamed_state_is_current_then_unreachable_once_the_stream_stops(monkeypatch):
    line = NodeState("standby", timeline=2, system_identifier="7312345678901234567").to_json()
    script = f"import sys, time\nfor _ in range(3):\n    print({line!r}, flush=True)\n    time.sleep(0.2)\ntime.sleep(5)\n"
    monkeypatch.setattr(hostio, "ssh_argv", lambda config, address, command: ["python3", "-c", script])
    stream = hostio.NodeStream(config=None, address="pg2", interval=0.2, max_age=1.0)
    try:
        wait_until(lambda: stream.state().state == "standby", 10, "a streamed state", interval=0.05)
        assert stream.state().line() == "standby 2 7312345678901234567"
        # The stream went quiet (a frozen host): no longer counted as current.
        wait_until(lambda: stream.state().state == "unreachable", 10, "a quiet stream counted unreachable",
                   interval=0.05)
    finally:
        stream.close()  # its thread must not outlive the patched ssh_argv
    stream.thread.join(5)
    assert not stream.thread.is_alive()
