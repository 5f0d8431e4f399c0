"""What starts a killed server again on hosts without heartbeat (templates/postgres-restart.sh.j2:
noted by the unit's first stop command, started by its OnFailure=): it tells a postmaster that
ended without a shutdown (its postmaster.pid left) from one that shut down (the file removed),
the only witness, since systemd's unit fails either way; systemd's start limit bounds how often."""
from __future__ import annotations

import os
import subprocess

from planner import settings
from planner.file_vars import KILLED_STARTS, KILLED_STARTS_WINDOW_S
from planner.paths import RUNTIME_DIRECTORY
from planner.render import render
from tests.unit.managed_states import TOPOLOGY

UNIT = "postgresql@15-main.service"


def stub(directory, name: str, status: int) -> None:
    """An executable that appends its arguments to directory/calls and exits with `status`."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {directory}/calls\nexit {status}\n')
    path.chmod(0o755)


def run(tmp_path, pid: int | None, *args: str) -> subprocess.CompletedProcess:
    """The script as rendered for the cluster, its data and runtime directories moved into
    tmp_path, systemctl a stub; postmaster.pid holding `pid` (None: no file)."""
    text = render("postgres-restart.sh.j2", settings.postgres_restart_vars(TOPOLOGY))
    data = TOPOLOGY.cluster.data_directory
    assert f"pidfile={data}/postmaster.pid" in text and f"killed={RUNTIME_DIRECTORY}/" in text
    script = tmp_path / "postgres-restart"
    script.write_text(text.replace(data, str(tmp_path)).replace(RUNTIME_DIRECTORY, str(tmp_path / "run")))
    script.chmod(0o755)
    stub(tmp_path, "systemctl", 0)
    pidfile = tmp_path / "postmaster.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
    else:
        pidfile.write_text(f"{pid}\n{tmp_path}\n")
    return subprocess.run([str(script), *args], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})


def failed_unit(tmp_path, pid: int | None) -> subprocess.CompletedProcess:
    """What systemd runs when the server is gone: the note (first stop command), Debian's stop
    (it removes a stale postmaster.pid), then, the unit failed, the restart."""
    assert run(tmp_path, pid, "note").returncode == 0
    (tmp_path / "postmaster.pid").unlink(missing_ok=True)
    return run(tmp_path, None)


def calls(tmp_path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_postmaster_is_started_again(tmp_path):
    proc = failed_unit(tmp_path, dead_pid())
    assert proc.returncode == 0 and "killed or crashed" in proc.stdout and "starting it again" in proc.stdout
    assert calls(tmp_path) == [f"systemctl reset-failed {UNIT}", f"systemctl start --no-block {UNIT}"]
    assert list((tmp_path / "run").iterdir()) == []  # the note is used once


def test_a_postmaster_that_shut_down_is_left_stopped(tmp_path):
    proc = failed_unit(tmp_path, None)  # pg_ctl stop: the file went with the server
    assert proc.returncode == 0 and "left as it is" in proc.stdout and calls(tmp_path) == []


def test_a_pid_file_naming_a_live_process_that_is_not_postgres_is_a_dead_postmaster(tmp_path):
    proc = failed_unit(tmp_path, os.getpid())  # pytest's python: the pid was reused, the postmaster is gone
    assert "starting it again" in proc.stdout and len(calls(tmp_path)) == 2


def test_a_stop_of_a_running_postmaster_notes_nothing(tmp_path):
    postgres = tmp_path / "postgres"  # a process whose name is postgres
    postgres.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(postgres), "30"])
    try:
        assert run(tmp_path, proc.pid, "note").returncode == 0
        assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []
    finally:
        proc.kill()


def test_a_stale_note_does_not_outlive_the_next_stop(tmp_path):
    assert run(tmp_path, dead_pid(), "note").returncode == 0  # a kill noted...
    proc = failed_unit(tmp_path, None)  # ...then a later stop that was a shutdown
    assert "left as it is" in proc.stdout and calls(tmp_path) == []


def test_the_unit_bounds_the_restarts_and_the_drop_in_starts_it_on_failure():
    variables = settings.postgres_restart_vars(TOPOLOGY)
    unit = render("pgcascade-postgres-restart.service.j2", variables)
    assert f"StartLimitIntervalSec={KILLED_STARTS_WINDOW_S}\nStartLimitBurst={KILLED_STARTS}\n" in unit
    assert "Type=oneshot\nExecStart=/usr/local/lib/pgcascade/postgres-restart\n" in unit
    dropin = render("postgresql-restart.conf.j2", variables)
    assert "[Unit]\nOnFailure=pgcascade-postgres-restart-15-main.service\n" in dropin
    assert ("ExecStop=\nExecStop=-/usr/local/lib/pgcascade/postgres-restart note\n"
            "ExecStop=/usr/bin/pg_ctlcluster --skip-systemctl-redirect -m fast %i stop\n") in dropin
    assert "Restart=" not in dropin  # systemd would retry a start that fails, for ever
