"""hostrules.sync_standby: only a caught-up standby that still replies may become synchronous."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostrules import sync_standby as ss


@pytest.mark.parametrize("row, ok, reason", [
    (None, False, ss.NOT_CONNECTED),
    ({}, False, ss.NOT_CONNECTED),
    ({"state": "startup", "flush_lag_bytes": 0}, False, ss.CATCHING_UP),
    ({"state": "catchup", "flush_lag_bytes": 0}, False, ss.CATCHING_UP),
    ({"state": "backup", "flush_lag_bytes": None}, False, ss.CATCHING_UP),
    ({"state": "streaming", "flush_lag_bytes": None}, False, ss.NO_POSITION),
    ({"state": "streaming", "flush_lag_bytes": ss.MAX_LAG_BYTES + 1}, False, ss.LAGGING),
    ({"state": "streaming", "flush_lag_bytes": ss.MAX_LAG_BYTES}, True, ss.CAUGHT_UP),
    ({"state": "streaming", "flush_lag_bytes": 0}, True, ss.CAUGHT_UP),
    ({"state": "streaming", "flush_lag_bytes": 0, "replied": True}, True, ss.CAUGHT_UP),
    # a row that outlived its standby's silence (a cut link): its last position, no reply since
    ({"state": "streaming", "flush_lag_bytes": 0, "replied": False}, False, ss.SILENT),
])
def test_caught_up(row, ok, reason):
    verdict = ss.caught_up(row)
    assert (verdict.ok, verdict.reason) == (ok, reason)
    assert verdict.message


def test_the_bound_is_a_parameter():
    assert not ss.caught_up({"state": "streaming", "flush_lag_bytes": 100}, max_lag_bytes=99).ok


def sender(pid, name, reply, state="streaming", lag=0):
    return {"pid": pid, "application_name": name, "state": state, "reply_time": reply, "flush_lag_bytes": lag}


@pytest.mark.parametrize("before, after, expected", [
    ([sender(1, "s1", "t1")], [sender(1, "s1", "t2")], True),  # a new reply
    ([sender(1, "s1", "t1")], [sender(1, "s1", "t1")], False),  # nothing since: silent
    ([sender(1, "s1", "t1")], [], False),  # gone
    ([sender(1, "s1", "t1")], [sender(2, "s1", "t0")], True),  # reconnected meanwhile, and replied
    ([], [sender(2, "s1", None, "startup")], False),  # connected, no reply yet
    ([sender(1, "s2", "t1")], [sender(1, "s2", "t2"), sender(3, "s1", "t1")], True),
    ([sender(1, "s1", "t1"), sender(2, "s2", "t1")], [sender(1, "s1", "t1"), sender(2, "s2", "t2")], False),
])
def test_replied_compares_a_standby_s_replies_with_each_other_only(before, after, expected):
    assert ss.replied(before, after, "s1") is expected


def test_the_looked_row_is_the_second_look_s_with_whether_it_replied():
    looks = {"before": [sender(1, "s1", "t1")], "after": [sender(1, "s1", "t1", lag=5)]}
    assert ss.looked_row(looks, "s1") == {**sender(1, "s1", "t1", lag=5), "replied": False}
    assert not ss.caught_up(ss.looked_row(looks, "s1")).ok
    looks["after"] = [sender(4, "s1", None, "catchup"), sender(1, "s1", "t9")]
    assert ss.looked_row(looks, "s1")["pid"] == 1  # the streaming row first
    assert ss.caught_up(ss.looked_row(looks, "s1")).ok
    assert ss.looked_row({"error": "psql: no"}, "s1") is None
    assert ss.looked_row(None, "s1") is None
    assert ss.looked_row(looks, "s2") is None


def fake_psql(tmp_path: Path, looks: list) -> dict:
    """A psql on PATH printing one look per call (the last one again when they run out)."""
    (tmp_path / "looks.json").write_text(json.dumps(looks))
    script = tmp_path / "psql"
    script.write_text(f"""#!{sys.executable}
import json, pathlib
state = pathlib.Path({str(tmp_path / "n")!r})
n = int(state.read_text()) if state.exists() else 0
state.write_text(str(n + 1))
looks = json.loads(pathlib.Path({str(tmp_path / "looks.json")!r}).read_text())
look = looks[min(n, len(looks) - 1)]
if look == "fail":
    raise SystemExit("psql: connection refused")
print(json.dumps(look))
""")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hostrules.sync_standby", *args], capture_output=True, text=True,
                          env=env, timeout=30)


@pytest.mark.parametrize("looks, code, reason", [
    ([[sender(1, "standby_1", "t1")], [sender(1, "standby_1", "t2")]], 0, ss.CAUGHT_UP),
    ([[sender(1, "standby_1", "t1")], [sender(1, "standby_1", "t1")]], 1, ss.SILENT),
    ([[sender(1, "standby_1", "t1", lag=ss.MAX_LAG_BYTES + 1)], [sender(1, "standby_1", "t2", lag=ss.MAX_LAG_BYTES + 1)]],
     1, ss.LAGGING),
    ([[], []], 1, ss.NOT_CONNECTED),
    (["fail"], 1, ss.NOT_CONNECTED),
])
def test_the_check_takes_two_looks_on_the_upstream(tmp_path, looks, code, reason):
    proc = run(fake_psql(tmp_path, looks), "check", "5432", "standby_1")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout.startswith(reason + ":")
    assert (tmp_path / "n").read_text() == ("1" if looks == ["fail"] else "2")


def test_looks_prints_both_or_the_error(tmp_path):
    env = fake_psql(tmp_path, [[sender(1, "s1", "t1")], [sender(1, "s1", "t2")]])
    assert json.loads(run(env, "looks", "5432").stdout) == {"before": [sender(1, "s1", "t1")],
                                                           "after": [sender(1, "s1", "t2")]}
    (tmp_path / "down").mkdir()
    proc = run(fake_psql(tmp_path / "down", ["fail"]), "looks", "5432")
    assert proc.returncode == 0 and "connection refused" in json.loads(proc.stdout)["error"]
    assert run(env, "nonsense").returncode == 2
