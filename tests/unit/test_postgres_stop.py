"""The unit's stop command on hosts without heartbeat (templates/postgres-stop.sh.j2): it tells a
postmaster that ended without a shutdown (its postmaster.pid left) from one that shut down (the
file removed), the only witness, since systemd sees every end of it as clean; a killed one is
started again, at most KILLED_STARTS times in KILLED_STARTS_WINDOW_S."""
from __future__ import annotations

import os
import subprocess
import time

from planner import settings
from planner.file_vars import KILLED_STARTS, KILLED_STARTS_WINDOW_S
from planner.paths import RUNTIME_DIRECTORY
from planner.render import render
from tests.unit.managed_states import TOPOLOGY


def stub(directory, name: str, status: int) -> None:
    """An executable that appends its arguments to directory/calls and exits with `status`."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {directory}/calls\nexit {status}\n')
    path.chmod(0o755)


def run(tmp_path, pid: int | None) -> subprocess.CompletedProcess:
    """The script as rendered for the cluster, its data and runtime directories and pg_ctlcluster
    moved into tmp_path, systemctl a stub; postmaster.pid holding `pid` (None: no file)."""
    text = render("postgres-stop.sh.j2", settings.postgres_stop_vars(TOPOLOGY))
    data = TOPOLOGY.cluster.data_directory
    assert f"pidfile={data}/postmaster.pid" in text and "exec /usr/bin/pg_ctlcluster " in text
    text = (text.replace(data, str(tmp_path)).replace(RUNTIME_DIRECTORY, str(tmp_path / "run"))
            .replace("/usr/bin/pg_ctlcluster", str(tmp_path / "pg_ctlcluster")))
    script = tmp_path / "postgres-stop"
    script.write_text(text)
    script.chmod(0o755)
    stub(tmp_path, "pg_ctlcluster", 3)
    stub(tmp_path, "systemctl", 0)
    pidfile = tmp_path / "postmaster.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
    else:
        pidfile.write_text(f"{pid}\n{tmp_path}\n")
    return subprocess.run([str(script)], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})


def calls(tmp_path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_running_postmaster_is_stopped_by_debians_stop(tmp_path):
    proc = run(tmp_path, os.getpid())
    assert proc.returncode == 3 and calls(tmp_path) == ["pg_ctlcluster --skip-systemctl-redirect -m fast 15-main stop"]


def test_a_postmaster_that_shut_down_is_no_failure(tmp_path):
    proc = run(tmp_path, None)
    assert (proc.returncode, proc.stderr, calls(tmp_path)) == (0, "", [])


def test_a_killed_postmaster_is_started_again_a_few_times_then_left_down(tmp_path):
    for n in range(KILLED_STARTS):
        proc = run(tmp_path, dead_pid())
        assert proc.returncode == 1 and "killed or crashed" in proc.stderr and "starting it again" in proc.stderr
        assert calls(tmp_path) == ["systemctl --no-block start postgresql@15-main.service"] * (n + 1)
    proc = run(tmp_path, dead_pid())
    assert proc.returncode == 1 and "left down" in proc.stderr
    assert len(calls(tmp_path)) == KILLED_STARTS


def test_starts_older_than_the_window_no_longer_count(tmp_path):
    (tmp_path / "run").mkdir()
    old = int(time.time()) - KILLED_STARTS_WINDOW_S - 5
    (tmp_path / "run/killed-starts-15-main").write_text(f"{old}\n" * KILLED_STARTS)
    proc = run(tmp_path, dead_pid())
    assert "starting it again" in proc.stderr and len(calls(tmp_path)) == 1
    assert len((tmp_path / "run/killed-starts-15-main").read_text().split()) == 1
